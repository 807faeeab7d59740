/* devices/virtio_blk.h - a virtio-blk device over a storage/ backend. */
#ifndef DEVICES_VIRTIO_BLK_H
#define DEVICES_VIRTIO_BLK_H

#include <linux/virtio_blk.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "storage/block.h"

struct vm;
struct virtq_elem;

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

/* Protocol constants and structs (virtio 1.2, 5.2): VIRTIO_BLK_F_*,
 * VIRTIO_BLK_T_*, VIRTIO_BLK_S_*, struct virtio_blk_config / _outhdr /
 * _discard_write_zeroes come from <linux/virtio_blk.h>. */

/* What the device offers */
#define VIRTIO_BLK_QUEUE_SIZE		256
#define VIRTIO_BLK_SEG_MAX		(VIRTIO_BLK_QUEUE_SIZE - 2)
#define VIRTIO_BLK_SIZE_MAX		(4U << 20)	/* bytes per segment */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS	(1U << 22)	/* 2 GiB */
#define VIRTIO_BLK_NUM_QUEUES		4	/* with MQ; else queue 0 only */

/* Config space offsets, as the tests read them */
#define VIRTIO_BLK_CFG_CAPACITY		offsetof(struct virtio_blk_config, capacity)
#define VIRTIO_BLK_CFG_SIZE_MAX		offsetof(struct virtio_blk_config, size_max)
#define VIRTIO_BLK_CFG_SEG_MAX		offsetof(struct virtio_blk_config, seg_max)
#define VIRTIO_BLK_CFG_BLK_SIZE		offsetof(struct virtio_blk_config, blk_size)
#define VIRTIO_BLK_CFG_NUM_QUEUES	offsetof(struct virtio_blk_config, num_queues)
/* the device implements the config up to write_zeroes_may_unmap (no
 * secure erase) */
#define VIRTIO_BLK_CFG_SIZE		offsetof(struct virtio_blk_config, max_secure_erase_sectors)

/* ---- request parsing, apart from execution so it can be tested alone ---- */

/* What the device is, as parsing needs it. */
struct vblk_params {
	uint64_t features;	/* negotiated */
	bool readonly;
};

enum vblk_action {
	VBLK_ANSWER,	/* complete at once with status */
	VBLK_SUBMIT,	/* hand op/offset/len/iov to the backend */
	VBLK_GET_ID,	/* copy the serial into iov */
	VBLK_ABANDON,	/* no status byte: cannot answer; NEEDS_RESET */
};

/* A chain, checked.  Pointers point into the chain's iovecs (e->iov). */
struct vblk_request {
	enum vblk_action action;
	uint8_t status;		/* VBLK_ANSWER: VIRTIO_BLK_S_* */
	uint8_t *status_byte;	/* the chain's last device-writable byte */
	uint32_t type;		/* VIRTIO_BLK_T_* (0 if no header) */
	enum blk_op op;
	uint64_t offset, len;	/* bytes */
	struct iovec *iov;	/* data (READ/WRITE) or GET_ID buffer */
	unsigned iovcnt;
	bool may_unmap;
	uint32_t used_len;	/* bytes written into the chain on success */
};

/* Check a popped chain against the protocol and what the device offers
 * (pure: reads the chain's header and segments, writes nothing; the
 * iovecs in e are trimmed in place).  A guest mistake worth a log line
 * leaves one in msg ("" otherwise). */
void vblk_parse_request(const struct vblk_params *p, struct virtq_elem *e,
			struct vblk_request *r, char *msg, size_t msglen);

#endif
