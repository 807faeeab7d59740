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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtqueue.h"

struct vm;
struct event_loop;
struct virtio_mmio;

/* Register offsets (virtio 1.2, 4.2.2) */
#define VIRTIO_MMIO_MAGIC_VALUE		0x000
#define VIRTIO_MMIO_VERSION		0x004
#define VIRTIO_MMIO_DEVICE_ID		0x008
#define VIRTIO_MMIO_VENDOR_ID		0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL	0x014
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL	0x024
#define VIRTIO_MMIO_QUEUE_SEL		0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034
#define VIRTIO_MMIO_QUEUE_NUM		0x038
#define VIRTIO_MMIO_QUEUE_READY		0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY	0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064
#define VIRTIO_MMIO_STATUS		0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW	0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH	0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW	0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH	0x0a4
#define VIRTIO_MMIO_SHM_SEL		0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW		0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH	0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW	0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH	0x0bc
#define VIRTIO_MMIO_QUEUE_RESET		0x0c0
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc
#define VIRTIO_MMIO_CONFIG		0x100

#define VIRTIO_MMIO_MAGIC		0x74726976	/* "virt" */
#define VIRTIO_MMIO_VENDOR		0x00564d4d	/* "MMV" */

/* Device status bits (virtio 1.2, 2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE	1
#define VIRTIO_STATUS_DRIVER		2
#define VIRTIO_STATUS_DRIVER_OK		4
#define VIRTIO_STATUS_FEATURES_OK	8
#define VIRTIO_STATUS_NEEDS_RESET	64
#define VIRTIO_STATUS_FAILED		128

/* InterruptStatus bits */
#define VIRTIO_MMIO_INT_VRING		1
#define VIRTIO_MMIO_INT_CONFIG		2

#define VIRTIO_MMIO_MAX_QUEUES		8

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

/* The register handlers (for tests driving the transport directly). */
void virtio_mmio_read(void *opaque, uint64_t off, void *data, unsigned size);
void virtio_mmio_write(void *opaque, uint64_t off, const void *data,
		       unsigned size);

uint64_t virtio_mmio_base(const struct virtio_mmio *t);
unsigned virtio_mmio_irq(const struct virtio_mmio *t);

#endif
