/* guest/kernel/virtio_blk.h - the test kernel's virtio-blk driver (on the
 * shared transport and virtqueue of virtio.h). */
#ifndef GUEST_KERNEL_VIRTIO_BLK_H
#define GUEST_KERNEL_VIRTIO_BLK_H

#include "virtio.h"

#define MAX_BLK		16

/* virtio-blk request types and status */
#define VIRTIO_BLK_T_IN		0
#define VIRTIO_BLK_T_OUT	1
#define VIRTIO_BLK_T_FLUSH	4
#define VIRTIO_BLK_T_GET_ID	8
#define VIRTIO_BLK_T_DISCARD	11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK		0
#define VIRTIO_BLK_S_IOERR	1
#define VIRTIO_BLK_S_UNSUPP	2
#define BLK_S_TIMEOUT		0x100	/* ours: the device never answered */
#define BLK_S_PENDING		0x101	/* ours: not completed yet */
#define BLK_S_NEEDS_RESET	0x102	/* ours: device set NEEDS_RESET */

/* feature bits */
#define VIRTIO_BLK_F_SIZE_MAX	1
#define VIRTIO_BLK_F_SEG_MAX	2
#define VIRTIO_BLK_F_RO		5
#define VIRTIO_BLK_F_BLK_SIZE	6
#define VIRTIO_BLK_F_FLUSH	9
#define VIRTIO_BLK_F_DISCARD	13
#define VIRTIO_BLK_F_WRITE_ZEROES 14
#define VIRTIO_BLK_F_MQ		12

/* Per-request state; one per queue slot, preallocated. */
#define BLK_MAX_SEGS	64	/* data segments per request */
struct blk_req {
	/* device-visible */
	struct {
		uint32_t type, reserved;
		uint64_t sector;
	} hdr;
	uint8_t status;
	uint8_t pad[7];
	struct vring_desc indirect[BLK_MAX_SEGS + 2];
	/* driver state */
	volatile int result;		/* BLK_S_PENDING until done */
	uint16_t head, ndesc;
	uint16_t slots[BLK_MAX_SEGS + 2];	/* ring descriptors used */
	uint32_t used_len;
	bool in_use;
	void *cookie;
};

#define BLK_MAX_QUEUES	4

struct blk_vq {
	struct virtq vq;
	struct blk_req *reqs;		/* [qsize] request slots */
	struct blk_req **by_head;	/* head -> request */
};

struct blk_dev {
	struct virtio_dev v;		/* transport, features, irqs, notifies */
	unsigned index;			/* dev=N */
	uint64_t capacity;		/* 512-byte sectors */
	uint32_t blk_size, size_max, seg_max;
	uint32_t max_discard, discard_align, max_wz;	/* sectors */
	bool wz_may_unmap;
	bool ro, ok;

	/* request queues (MQ: up to BLK_MAX_QUEUES); q is the one the
	 * request functions use (blk_select_queue) */
	struct blk_vq vqs[BLK_MAX_QUEUES];
	unsigned nq;
	struct blk_vq *q;

	/* How to wait for completions: spin on the used ring for up to spin_us,
	 * then (unless spin_us is ~0, "poll") arm a completion interrupt and
	 * halt.  Spinning alone starves the device thread when the host's
	 * CPUs are busy; halting costs an interrupt (~100 us on PVM). */
	uint64_t spin_us;
	bool use_irq;			/* interrupts routed and handled */

	/* statistics (notifies and interrupts: in v) */
	uint64_t completed, submitted;
};

extern struct blk_dev blk_devs[MAX_BLK];
extern unsigned nblk;

/* Probe the virtio_mmio.device= entries (once); returns the number of
 * blk devices found (some may have failed to initialise: see ok/why). */
unsigned blk_probe(void);
struct blk_dev *blk_get(unsigned index);
/* The queue the request functions below use (0 after init). */
void blk_select_queue(struct blk_dev *d, unsigned qi);
/* Reset and re-initialise (after NEEDS_RESET). */
int blk_reinit(struct blk_dev *d);
/* Reset only (status 0, waited for); the device is unusable until reinit. */
int blk_reset(struct blk_dev *d);
/* Reset and offer exactly feats: 1 accepted, 0 refused, -1 no reset. */
int blk_try_features(struct blk_dev *d, uint64_t feats);
uint32_t blk_status(struct blk_dev *d);

/* Asynchronous requests: get a free slot, fill in the data segments, queue
 * it (visible to the device only after blk_kick), then poll. */
struct blk_req *blk_req_get(struct blk_dev *d);
/* Queue a request of type at sector with segs data segments (addr, len);
 * write=true when the device writes the data (reads).  Returns 0 or -1. */
struct blk_seg {
	uint64_t addr;
	uint32_t len;
};
int blk_queue(struct blk_dev *d, struct blk_req *r, uint32_t type,
	      uint64_t sector, const struct blk_seg *segs, unsigned nsegs,
	      bool device_writes);
/* Queue a raw, hand-made chain (for blkhostile): ndesc descriptors copied
 * into free ring slots, their next fields remapped unless raw_next. */
int blk_queue_raw(struct blk_dev *d, struct blk_req *r,
		  const struct vring_desc *chain, unsigned ndesc, bool raw_next);
/* Publish queued requests and notify the device if it asked for it. */
void blk_kick(struct blk_dev *d);
/* Harvest completions; returns the number completed (their ->result set). */
unsigned blk_poll(struct blk_dev *d);
void blk_req_put(struct blk_dev *d, struct blk_req *r);
/* Wait until r completes or timeout_us passes; returns r->result,
 * BLK_S_TIMEOUT, or BLK_S_NEEDS_RESET (d->ok is then cleared). */
int blk_wait(struct blk_dev *d, struct blk_req *r, uint64_t timeout_us);
/* Wait until the used ring moves (or a short while): spin, then halt. */
void blk_wait_used(struct blk_dev *d);
/* wait= argument: "poll" (spin only), "irq" (halt at once), or "hybrid"
 * (spin spin_us, then halt; the default). */
#define BLK_SPIN_POLL	UINT64_MAX
#define BLK_SPIN_DEFAULT 50
void blk_set_wait(struct blk_dev *d, uint64_t spin_us);
/* Ask for (or suppress) an interrupt at the next completion. */
void blk_arm_irq(struct blk_dev *d, bool on);

/* Synchronous helpers.  Return a virtio status (0 = OK) or BLK_S_*. */
int blk_rw(struct blk_dev *d, uint32_t type, uint64_t sector, void *buf,
	   uint64_t len);
int blk_flush(struct blk_dev *d);
/* DISCARD or WRITE_ZEROES (type) of [sector, +nsect), split at the device's
 * limits; unmap: WRITE_ZEROES may punch holes. */
int blk_discard_zero(struct blk_dev *d, uint32_t type, uint64_t sector,
		     uint64_t nsect, bool unmap);
/* Byte-granular read/write (read-modify-write of partial sectors). */
int blk_pread(struct blk_dev *d, uint64_t off, void *buf, uint64_t len);
int blk_pwrite(struct blk_dev *d, uint64_t off, const void *buf, uint64_t len);
const char *blk_status_name(int s);
/* Largest data length of one request (SIZE_MAX x SEG_MAX, our cap). */
uint64_t blk_max_req(struct blk_dev *d);

#endif
