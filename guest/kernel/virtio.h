/* guest/kernel/virtio.h - the test kernel's virtio-mmio (version 2)
 * transport and split virtqueue (driver side), shared by every device
 * driver (virtio_blk.c, virtio_net.c, ...).
 *
 * A driver finds its devices among the virtio_mmio.device= entries by
 * device ID (virtio_find), negotiates features (virtio_negotiate), sets up
 * its queues (virtq_setup), and then moves chains: allocate descriptors,
 * fill them in, virtq_add() the head (invisible to the device), virtq_kick()
 * a whole batch with one avail->idx store (notifying only when the device
 * asked: EVENT_IDX avail_event or NO_NOTIFY), harvest with virtq_get_used()
 * and give the descriptors back.  Interrupts stay suppressed (used_event far
 * ahead) unless a waiter arms one (virtq_arm_irq).  Everything runs on the
 * BSP with interrupts off except the interrupt handler, which only counts.
 */
#ifndef GUEST_KERNEL_VIRTIO_H
#define GUEST_KERNEL_VIRTIO_H

#include "kernel.h"

/* Transport feature bits (virtio 1.2, 6) */
#define VIRTIO_F_INDIRECT_DESC	28
#define VIRTIO_F_EVENT_IDX	29
#define VIRTIO_F_VERSION_1	32

#define VIRTIO_STATUS_NEEDS_RESET 64

/* Device IDs (virtio 1.2, 5) */
#define VIRTIO_ID_NET		1
#define VIRTIO_ID_BLOCK		2
#define VIRTIO_ID_VSOCK		19

#define VIRTIO_MAX_DEVS		32	/* virtio_mmio.device= entries looked at */

/* virtio-mmio registers (virtio 1.2, 4.2.2) */
#define MMIO_MAGIC		0x000
#define MMIO_VERSION		0x004
#define MMIO_DEVICE_ID		0x008
#define MMIO_DEV_FEATURES	0x010
#define MMIO_DEV_FEATURES_SEL	0x014
#define MMIO_DRV_FEATURES	0x020
#define MMIO_DRV_FEATURES_SEL	0x024
#define MMIO_QUEUE_SEL		0x030
#define MMIO_QUEUE_NUM_MAX	0x034
#define MMIO_QUEUE_NUM		0x038
#define MMIO_QUEUE_READY	0x044
#define MMIO_QUEUE_NOTIFY	0x050
#define MMIO_INT_STATUS		0x060
#define MMIO_INT_ACK		0x064
#define MMIO_STATUS		0x070
#define MMIO_QUEUE_DESC		0x080
#define MMIO_QUEUE_DRIVER	0x090
#define MMIO_QUEUE_DEVICE	0x0a0
#define MMIO_CONFIG_GEN		0x0fc
#define MMIO_CONFIG		0x100

/* Status bits */
#define S_ACK		1
#define S_DRIVER	2
#define S_DRIVER_OK	4
#define S_FEATURES_OK	8
#define S_FAILED	128

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
#define VRING_DESC_F_NEXT	1
#define VRING_DESC_F_WRITE	2
#define VRING_DESC_F_INDIRECT	4

/* One virtio-mmio device. */
struct virtio_dev {
	uint64_t base;
	unsigned irq;
	unsigned slot;			/* its virtio_mmio.device= entry; the
					 * interrupt vector is VEC_VIRTIO+slot */
	uint32_t device_id;
	uint64_t dev_features, features;	/* offered, negotiated */
	char why[96];			/* why probing/initialising failed */
	bool irq_routed;
	/* statistics */
	volatile uint64_t irqs;		/* interrupts taken */
	uint64_t notifies;		/* QueueNotify writes, all queues */
};

/* One split virtqueue (driver side). */
struct virtq {
	struct virtio_dev *dev;
	unsigned index;
	uint16_t qsize;
	struct vring_desc *desc;
	volatile uint16_t *avail;	/* flags, idx, ring[qsize], used_event */
	volatile uint16_t *used_hdr;	/* flags, idx; ring; avail_event */
	volatile uint32_t *used_ring;	/* id, len pairs */
	uint16_t free_head, num_free;
	uint16_t avail_idx;		/* next avail idx (driver's shadow) */
	uint16_t kicked_idx;		/* avail idx at the last kick */
	uint16_t last_used;
	bool event_idx;			/* EVENT_IDX negotiated */
};

static inline uint32_t virtio_rd(struct virtio_dev *d, unsigned reg)
{
	return mmio_read32(d->base + reg);
}

static inline void virtio_wr(struct virtio_dev *d, unsigned reg, uint32_t v)
{
	mmio_write32(d->base + reg, v);
}

static inline bool virtio_has(const struct virtio_dev *d, unsigned bit)
{
	return d->features & (1ULL << bit);
}

/* Device config fields, read with their own width (virtio 1.2 4.2.2.2). */
static inline uint8_t virtio_cfg8(struct virtio_dev *d, unsigned off)
{
	return *(volatile uint8_t *)(d->base + MMIO_CONFIG + off);
}
static inline uint16_t virtio_cfg16(struct virtio_dev *d, unsigned off)
{
	return *(volatile uint16_t *)(d->base + MMIO_CONFIG + off);
}
static inline uint32_t virtio_cfg32(struct virtio_dev *d, unsigned off)
{
	return virtio_rd(d, MMIO_CONFIG + off);
}
/* A 64-bit field, consistent across the generation counter. */
uint64_t virtio_cfg64(struct virtio_dev *d, unsigned off);

/* Fill out[0..max) with the devices of device_id among the
 * virtio_mmio.device= entries (magic and version 2 checked; entries that
 * do not parse are reported once).  Returns how many. */
unsigned virtio_find(uint32_t device_id, struct virtio_dev *out, unsigned max);

/* Record why, set FAILED in the status register, return -1. */
int virtio_fail(struct virtio_dev *d, const char *why);
/* Reset: status 0, waited for (bounded).  0 or -1. */
int virtio_reset(struct virtio_dev *d);
/* Reset, ACKNOWLEDGE, DRIVER, read the offered features, negotiate
 * offered & want (VERSION_1 required), FEATURES_OK.  0, or -1 with why. */
int virtio_negotiate(struct virtio_dev *d, uint64_t want);
/* Reset and offer exactly feats: 1 accepted, 0 refused, -1 no reset.  The
 * device is left unusable until it is negotiated again. */
int virtio_try_features(struct virtio_dev *d, uint64_t feats);
void virtio_driver_ok(struct virtio_dev *d);
uint32_t virtio_status(struct virtio_dev *d);

/* Interrupts: route the device's IRQ to the BSP at VEC_VIRTIO + slot (or
 * mask it).  The handler acknowledges both InterruptStatus bits without
 * reading them (one exit, not two) and counts d->irqs. */
void virtio_route_irq(struct virtio_dev *d, bool on);

/* Waiting for a device by halting: route its IRQ and run a 10 ms backstop
 * timer (it catches a wake-up lost between setting the PVM native
 * interrupt flag and HLT) when on; stop both for a device that polls. */
void virtio_halt_mode(struct virtio_dev *d, bool on);

/* Set up queue qi with at most want entries (a power of two, lowered to
 * QueueNumMax).  The rings are allocated on the first call and kept (same
 * size) on later ones: call before the per-command allocator marks.
 * Interrupts start suppressed.  0, or -1 with why. */
int virtq_setup(struct virtio_dev *d, struct virtq *q, unsigned qi,
		uint16_t want);

/* Take n free descriptors (indices into out), or -1 if too few. */
int virtq_alloc_descs(struct virtq *q, unsigned n, uint16_t *out);
/* Give n descriptors back. */
void virtq_free_descs(struct virtq *q, const uint16_t *slots, unsigned n);
/* Put head in the avail ring; invisible to the device until virtq_kick. */
void virtq_add(struct virtq *q, uint16_t head);
/* Publish what was added (one avail->idx store) and notify the device if
 * it asked for it.  Returns true when it notified (one exit). */
bool virtq_kick(struct virtq *q);
/* Next used entry: true and (*id, *len), or false when none. */
bool virtq_get_used(struct virtq *q, uint32_t *id, uint32_t *len);
static inline bool virtq_used_pending(const struct virtq *q)
{
	return READ_ONCE(q->used_hdr[1]) != q->last_used;
}
/* Keep interrupts suppressed after harvesting (EVENT_IDX: used_event far
 * ahead of what was consumed). */
void virtq_suppress_irq(struct virtq *q);
/* Ask for (or suppress) an interrupt at the next used entry. */
void virtq_arm_irq(struct virtq *q, bool on);
/* Spin up to spin_us for a used entry on any of the n queues, then halt
 * until one comes, with interrupts armed on the queues in arm_mask (bit i
 * = qs[i]).  Commands run with interrupts off: irq_wait() opens them only
 * for the halt, so one raised after the last check stays pending until
 * then. */
void virtq_wait_used(struct virtq *const *qs, unsigned n, unsigned arm_mask,
		     uint64_t spin_us);

/* EVENT_IDX arithmetic (virtio 1.2, 2.7.7.2): has the index moved past
 * event_idx when going from old to new? */
static inline bool vring_need_event(uint16_t event_idx, uint16_t new_idx,
				    uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

#endif
