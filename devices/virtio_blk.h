/* devices/virtio_blk.h - a virtio-blk device over a storage/ backend. */
#ifndef DEVICES_VIRTIO_BLK_H
#define DEVICES_VIRTIO_BLK_H

#include <stddef.h>
#include <stdint.h>

#include "storage/block.h"

struct vm;

struct virtio_blk_opts {
	struct blk_opts blk;	/* path, format, readonly, cache */
	const char *serial;	/* GET_ID answer; NULL: a stable default */
	unsigned index;		/* 0 for the first --disk, 1 for the next... */
};

#define VIRTIO_BLK_MAX_DISKS	8	/* --disk at most this often */

/* Open the image, claim a virtio-mmio window and IRQ, start the device
 * thread, and register teardown with vm_add_device().  On failure returns
 * -1 with one line naming the problem in err. */
int virtio_blk_create(struct vm *vm, const struct virtio_blk_opts *o,
		      char *err, size_t errlen);

/* Protocol constants (virtio 1.2, 5.2) */
#define VIRTIO_ID_BLOCK			2
#define VIRTIO_BLK_F_SIZE_MAX		1
#define VIRTIO_BLK_F_SEG_MAX		2
#define VIRTIO_BLK_F_RO			5
#define VIRTIO_BLK_F_BLK_SIZE		6
#define VIRTIO_BLK_F_FLUSH		9
#define VIRTIO_BLK_F_MQ			12
#define VIRTIO_BLK_F_DISCARD		13
#define VIRTIO_BLK_F_WRITE_ZEROES	14

#define VIRTIO_BLK_T_IN			0
#define VIRTIO_BLK_T_OUT		1
#define VIRTIO_BLK_T_FLUSH		4
#define VIRTIO_BLK_T_GET_ID		8
#define VIRTIO_BLK_T_DISCARD		11
#define VIRTIO_BLK_T_WRITE_ZEROES	13

#define VIRTIO_BLK_S_OK			0
#define VIRTIO_BLK_S_IOERR		1
#define VIRTIO_BLK_S_UNSUPP		2

#define VIRTIO_BLK_ID_BYTES		20
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP	1

/* What the device offers */
#define VIRTIO_BLK_QUEUE_SIZE		256
#define VIRTIO_BLK_SEG_MAX		(VIRTIO_BLK_QUEUE_SIZE - 2)
#define VIRTIO_BLK_SIZE_MAX		(4U << 20)	/* bytes per segment */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS	(1U << 22)	/* 2 GiB */
#define VIRTIO_BLK_NUM_QUEUES		4	/* with MQ; else queue 0 only */

/* Config space offsets (struct virtio_blk_config) */
#define VIRTIO_BLK_CFG_CAPACITY		0
#define VIRTIO_BLK_CFG_SIZE_MAX		8
#define VIRTIO_BLK_CFG_SEG_MAX		12
#define VIRTIO_BLK_CFG_BLK_SIZE		20
#define VIRTIO_BLK_CFG_NUM_QUEUES	34
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS	36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG	40
#define VIRTIO_BLK_CFG_DISCARD_ALIGN	44
#define VIRTIO_BLK_CFG_MAX_WZ_SECTORS	48
#define VIRTIO_BLK_CFG_MAX_WZ_SEG	52
#define VIRTIO_BLK_CFG_WZ_MAY_UNMAP	56
#define VIRTIO_BLK_CFG_SIZE		60

struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

#endif
