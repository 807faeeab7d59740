/* devices/virtio_blk.h - a virtio-blk device over a storage/ backend. */
#ifndef DEVICES_VIRTIO_BLK_H
#define DEVICES_VIRTIO_BLK_H

#include <stddef.h>

#include "storage/block.h"

struct vm;

struct virtio_blk_opts {
	struct blk_opts blk;	/* path, format, readonly, cache */
	const char *serial;	/* GET_ID answer; NULL: a stable default */
	unsigned index;		/* 0 for the first --disk, 1 for the next... */
};

/* Open the image, claim a virtio-mmio window and IRQ, start the device
 * thread, and register teardown with vm_add_device().  On failure returns
 * -1 with one line naming the problem in err. */
int virtio_blk_create(struct vm *vm, const struct virtio_blk_opts *o,
		      char *err, size_t errlen);

#endif
