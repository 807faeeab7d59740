/* devices/virtio_mmio.h - the virtio-mmio (version 2) transport.
 *
 * Knows registers, feature negotiation, the status state machine and the
 * queues' ring addresses; nothing of what a device does.  A device gives an
 * ops table and its event loop: queue notifies arrive through ioeventfd on
 * that loop's thread (ops->notify), interrupts leave through irqfd.
 *
 * Threads: register accesses come on vCPU threads and are serialised by the
 * transport's lock, which also covers ops->config_*, ops->activate and
 * ops->reset.  The device thread never takes that lock; what it may call
 * (virtio_mmio_interrupt, virtio_mmio_set_needs_reset,
 * virtio_mmio_config_changed) is lock-free.
 */
#ifndef DEVICES_VIRTIO_MMIO_H
#define DEVICES_VIRTIO_MMIO_H

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtqueue.h"

struct vm;
struct event_loop;
struct virtio_mmio;

/* Register offsets (virtio 1.2, 4.2.2) and InterruptStatus bits come from
 * <linux/virtio_mmio.h>, status bits from <linux/virtio_config.h>
 * (VIRTIO_CONFIG_S_*).  The spec's names where the uapi has older ones: */
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW	VIRTIO_MMIO_QUEUE_AVAIL_LOW
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH	VIRTIO_MMIO_QUEUE_AVAIL_HIGH
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW	VIRTIO_MMIO_QUEUE_USED_LOW
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH	VIRTIO_MMIO_QUEUE_USED_HIGH
#ifndef VIRTIO_MMIO_QUEUE_RESET		/* newer than this uapi */
#define VIRTIO_MMIO_QUEUE_RESET		0x0c0
#endif

#define VIRTIO_MMIO_MAGIC		0x74726976	/* "virt" */
#define VIRTIO_MMIO_VENDOR		0x00564d4d	/* "MMV" */

/* Older names for the status bits, kept until the devices written against
 * them have landed; new code uses VIRTIO_CONFIG_S_*. */
#define VIRTIO_STATUS_ACKNOWLEDGE	VIRTIO_CONFIG_S_ACKNOWLEDGE
#define VIRTIO_STATUS_DRIVER		VIRTIO_CONFIG_S_DRIVER
#define VIRTIO_STATUS_DRIVER_OK		VIRTIO_CONFIG_S_DRIVER_OK
#define VIRTIO_STATUS_FEATURES_OK	VIRTIO_CONFIG_S_FEATURES_OK
#define VIRTIO_STATUS_NEEDS_RESET	VIRTIO_CONFIG_S_NEEDS_RESET
#define VIRTIO_STATUS_FAILED		VIRTIO_CONFIG_S_FAILED

/* Queues per device: a multi-queue net device needs 2 x pairs + 1. */
#define VIRTIO_MMIO_MAX_QUEUES		16

/* What a device provides to the transport. */
struct virtio_dev_ops {
	uint32_t device_id;
	unsigned num_queues;		/* <= VIRTIO_MMIO_MAX_QUEUES */
	uint16_t queue_max;		/* QueueNumMax */
	uint32_t config_size;		/* bytes of device config space */
	/* off + size <= config_size (the transport checks).  vCPU thread. */
	void (*config_read)(void *dev, uint32_t off, void *data,
			    unsigned size);
	void (*config_write)(void *dev, uint32_t off, const void *data,
			     unsigned size);	/* NULL: read-only */
	/* DRIVER_OK: the ready queues are set up (virtio_mmio_queue()) with
	 * the negotiated features.  vCPU thread.  0, or -1: NEEDS_RESET. */
	int (*activate)(void *dev, uint64_t features);
	/* Queue q was notified.  On the device's event loop thread. */
	void (*notify)(void *dev, unsigned q);
	/* Device reset: when this returns the device no longer touches the
	 * queues or guest memory (in-flight I/O drained).  vCPU thread. */
	void (*reset)(void *dev);
};

/* Claim a window and IRQ (vm_add_virtio_mmio), register the handlers,
 * ioeventfds (on loop) and irqfd.  features: what the device offers
 * (VIRTIO_F_VERSION_1 is added).  NULL and one line in err on failure. */
struct virtio_mmio *virtio_mmio_create(struct vm *vm, const char *name,
				       const struct virtio_dev_ops *ops,
				       void *dev, uint64_t features,
				       struct event_loop *loop, char *err,
				       size_t errlen);
/* Remove the ioeventfds and irqfd and free.  The loop's thread must be
 * stopped (or the notify fds deleted from it) and the vCPUs no longer
 * running. */
void virtio_mmio_destroy(struct virtio_mmio *t);

/* Queue i as set up at DRIVER_OK, or NULL if the driver left it off. */
struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned i);

/* Used buffers: set InterruptStatus.VRING, then signal the irqfd. */
void virtio_mmio_interrupt(struct virtio_mmio *t);
/* The guest broke the rules in a way only a reset recovers from:
 * status gets NEEDS_RESET and the driver a config-change interrupt. */
void virtio_mmio_set_needs_reset(struct virtio_mmio *t);
/* Config space changed: bump ConfigGeneration, interrupt. */
void virtio_mmio_config_changed(struct virtio_mmio *t);
bool virtio_mmio_needs_reset(struct virtio_mmio *t);

/* The device's guest-log budget (devices/guest_log.h), shared by the
 * transport, its queues and the device: pass it to guest_log(). */
int *virtio_mmio_log_budget(struct virtio_mmio *t);
const char *virtio_mmio_name(const struct virtio_mmio *t);

/* The register handlers (for tests driving the transport directly). */
void virtio_mmio_read(void *opaque, uint64_t off, void *data, unsigned size);
void virtio_mmio_write(void *opaque, uint64_t off, const void *data,
		       unsigned size);

/* Snapshot: append the transport's registers and queue positions to b
 * (with the vCPUs parked and the device's lock held: it takes no lock);
 * load them back into a transport of the same device (on a restore,
 * before the vCPUs run: a device that was running is activated again
 * with its queues where they were).  Load: 0, or -1 with one line in
 * err. */
struct snap_buf;
struct snap_reader;
void virtio_mmio_save(struct virtio_mmio *t, struct snap_buf *b);
int virtio_mmio_load(struct virtio_mmio *t, struct snap_reader *r, char *err,
		     size_t errlen);

uint64_t virtio_mmio_base(const struct virtio_mmio *t);
unsigned virtio_mmio_irq(const struct virtio_mmio *t);

#endif
