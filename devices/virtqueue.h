/* devices/virtqueue.h - the device side of a virtio split virtqueue.
 *
 * Independent of the transport: a struct virtq is three guest-physical ring
 * addresses, a size and the negotiated ring features, so it can be driven on
 * crafted rings in plain memory (tests/unit/test_virtqueue.c).
 *
 * Not thread safe: one thread (the device's) pops and pushes.  Every guest
 * address and length goes through guest_mem_ptr() before use; descriptors
 * are copied once, so a guest rewriting them underneath cannot change what
 * was checked.
 */
#ifndef DEVICES_VIRTQUEUE_H
#define DEVICES_VIRTQUEUE_H

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/guest_log.h"
#include "vmm/vm.h"

/* Ring layout, flags and struct vring_desc / vring_used_elem /
 * vring_need_event() come from <linux/virtio_ring.h> (virtio 1.2, 2.7: all
 * little-endian, as the host is).  The spec's names for the ring feature
 * bits: */
#define VIRTIO_F_INDIRECT_DESC	VIRTIO_RING_F_INDIRECT_DESC
#define VIRTIO_F_EVENT_IDX	VIRTIO_RING_F_EVENT_IDX
/* Older names, kept until the devices written against them have landed;
 * new code uses the uapi ones (VRING_*). */
#define VIRTQ_DESC_F_NEXT	VRING_DESC_F_NEXT
#define VIRTQ_DESC_F_WRITE	VRING_DESC_F_WRITE
#define VIRTQ_DESC_F_INDIRECT	VRING_DESC_F_INDIRECT
#define VIRTQ_AVAIL_F_NO_INTERRUPT	VRING_AVAIL_F_NO_INTERRUPT
#define VIRTQ_USED_F_NO_NOTIFY	VRING_USED_F_NO_NOTIFY

#define VIRTQ_MAX_SIZE		32768
/* uint64_t words of an in-flight bitmap for a queue of n descriptors */
#define VIRTQ_IN_FLIGHT_WORDS(n)	(((n) + 63) / 64)

struct virtq {
	const struct guest_mem *mem;
	const char *name;		/* log prefix */
	int *log_budget;		/* shared line budget, NULL: unlimited */
	uint16_t size;			/* descriptors (QueueNum) */
	bool indirect;			/* INDIRECT_DESC negotiated */
	bool event_idx;			/* EVENT_IDX negotiated */
	bool broken;			/* fatal guest error: no more use */
	/* One bit per head popped and not yet pushed (NULL: not tracked).
	 * A head the driver makes available again while we still own it is
	 * refused: the driver may not (virtio 1.2, 2.7.13), and neither
	 * chain could be answered unambiguously. */
	uint64_t *in_flight;
	uint16_t last_head;		/* of the last pop, for virtq_unpop */

	/* host views of the rings, checked at init */
	struct vring_desc *desc;
	uint16_t *avail;		/* flags, idx, ring[size], used_event */
	uint16_t *used_hdr;		/* flags, idx */
	struct vring_used_elem *used_ring;	/* [size], then avail_event */
	uint16_t *avail_event;

	uint16_t last_avail;		/* next avail entry to pop */
	uint16_t seen_avail;		/* avail->idx at our last look */
	uint16_t used_idx;		/* next used entry (published or not) */
	uint16_t published_used;	/* used->idx as last written */
	uint16_t signalled_used;	/* used idx when we last interrupted */
	bool signalled_valid;
};

/* One popped chain: iov[0..n_out) device-readable, iov[n_out..n_out+n_in)
 * device-writable, zero-length descriptors dropped. */
struct virtq_elem {
	uint16_t head;
	unsigned n_out, n_in;
	uint64_t out_len, in_len;	/* bytes, each direction */
	struct iovec *iov;		/* caller's array */
};

/* Set up q on the rings at the given guest addresses (sizes and alignment
 * per the spec).  features: the negotiated ones (INDIRECT_DESC, EVENT_IDX).
 * Returns 0, or -1 and one line in err when a ring is outside guest RAM,
 * misaligned, or size is not 1..VIRTQ_MAX_SIZE. */
int virtq_init(struct virtq *q, const struct guest_mem *mem, const char *name,
	       uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa,
	       uint64_t used_gpa, uint64_t features, char *err, size_t errlen);

/* Entries the driver has made available and we have not popped yet; a jump
 * of more than size marks the queue broken (returns 0 then). */
unsigned virtq_avail_count(struct virtq *q);

/* Pop the next available chain into e (iov has room for max_iov entries;
 * a chain needing more is an error).
 *   1: popped;  0: ring empty;
 *  -1: fatal (q->broken set, logged): loop, chain too long, descriptor
 *      outside RAM, bad indirect table, writable before readable, avail
 *      index jump, head already in flight (when tracked).  The device
 *      should enter NEEDS_RESET. */
int virtq_pop(struct virtq *q, struct virtq_elem *e, struct iovec *iov,
	      unsigned max_iov);

/* Give back a popped chain unconsumed (pops are in order, so only the last
 * one popped). */
void virtq_unpop(struct virtq *q);

/* Put (head, len) in the used ring without making it visible yet. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* Make every pushed entry visible (one used->idx store). */
void virtq_publish(struct virtq *q);
/* After virtq_publish(): should the driver be interrupted for the entries
 * published since the last time this returned true?  Honours EVENT_IDX
 * (used_event) or VIRTQ_AVAIL_F_NO_INTERRUPT.  Call once per batch. */
bool virtq_should_interrupt(struct virtq *q);

/* Notification suppression while the device is busy with the ring.
 * virtq_disable_notify(): the driver need not notify us (we will look).
 * virtq_enable_notify(): ask for a notify at the next new entry; returns
 * true if entries arrived since the device last looked at the ring (a pop
 * or virtq_avail_count) or last called this: the caller must pop again, as
 * no notify will come for them.  Entries it saw and chose to leave (a net
 * device's receive buffers beyond what it needs now) do not count, or its
 * thread would never sleep. */
void virtq_disable_notify(struct virtq *q);
bool virtq_enable_notify(struct virtq *q);

/* Track the heads in flight in bits (VIRTQ_IN_FLIGHT_WORDS(q->size) words,
 * cleared here; NULL stops tracking): from now on a pop of a head still in
 * flight is fatal (-1, NEEDS_RESET), and virtq_push() ends a head's flight. */
void virtq_track_in_flight(struct virtq *q, uint64_t *bits);

/* iovec helpers for devices that parse headers/trailers out of a chain
 * without assuming its framing (VERSION_1 implies ANY_LAYOUT). */
/* Copy up to n bytes from the front of iov[0..*cnt) into buf, consuming
 * them (entries are trimmed/advanced in place).  Returns bytes copied. */
size_t iov_pull(struct iovec **iov, unsigned *cnt, void *buf, size_t n);
/* Remove the last byte of iov[0..*cnt) and return a pointer to it (NULL if
 * the list is empty). */
uint8_t *iov_take_last_byte(struct iovec *iov, unsigned *cnt);
/* Copy n bytes from buf into iov[0..cnt); returns bytes copied. */
size_t iov_fill(const struct iovec *iov, unsigned cnt, const void *buf,
		size_t n);
uint64_t iov_total(const struct iovec *iov, unsigned cnt);

#endif
