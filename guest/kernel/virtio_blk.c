/* guest/kernel/virtio_blk.c - virtio-blk (virtio 1.2: 5.2) on the shared
 * virtio-mmio transport and split virtqueue of virtio.c.
 *
 * Exits are the expensive thing on a PVM host (~25-60 us each), so the data
 * path batches: requests are queued without a notify, blk_kick() publishes a
 * whole batch with one avail->idx store and notifies only when the device
 * asked for it (EVENT_IDX avail_event, or NO_NOTIFY without EVENT_IDX), and
 * completions are polled from the used ring with device interrupts
 * suppressed (used_event kept far ahead).  One descriptor per request when
 * INDIRECT_DESC is negotiated.  The driver runs on the BSP only.
 */
#include "virtio_blk.h"

#define QUEUE_SIZE_WANT	256
#define MAX_REQ_BYTES	(4ULL << 20)

struct blk_dev blk_devs[MAX_BLK];
unsigned nblk;
static bool probed;

uint32_t blk_status(struct blk_dev *d)
{
	return virtio_status(&d->v);
}

static void *alloc_bytes(uint64_t bytes)
{
	return page_alloc(ALIGN_UP(bytes, PAGE_SIZE) / PAGE_SIZE);
}

/* The rings and request slots survive commands: allocated once per device
 * (and re-used by blk_reinit). */
static int setup_queue(struct blk_dev *d, unsigned qi)
{
	struct blk_vq *q = &d->vqs[qi];
	uint16_t old_size = q->vq.qsize;

	if (virtq_setup(&d->v, &q->vq, qi, QUEUE_SIZE_WANT) < 0)
		return -1;
	if (!q->reqs || q->vq.qsize != old_size) {
		q->reqs = alloc_bytes(sizeof(struct blk_req) * q->vq.qsize);
		q->by_head = alloc_bytes(sizeof(struct blk_req *) *
					 q->vq.qsize);
		if (!q->reqs || !q->by_head)
			return virtio_fail(&d->v, "out of memory for the queue");
	} else {
		memset(q->reqs, 0, sizeof(struct blk_req) * q->vq.qsize);
		memset(q->by_head, 0, sizeof(struct blk_req *) * q->vq.qsize);
	}
	return 0;
}

void blk_select_queue(struct blk_dev *d, unsigned qi)
{
	d->q = &d->vqs[qi < d->nq ? qi : 0];
}

/* vmmtest.blk_off=indirect,event_idx,...: features the driver declines,
 * to exercise the other paths of driver and device. */
static uint64_t features_off(void)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "indirect", VIRTIO_F_INDIRECT_DESC },
		{ "event_idx", VIRTIO_F_EVENT_IDX },
		{ "flush", VIRTIO_BLK_F_FLUSH },
		{ "size_max", VIRTIO_BLK_F_SIZE_MAX },
		{ "seg_max", VIRTIO_BLK_F_SEG_MAX },
		{ "discard", VIRTIO_BLK_F_DISCARD },
		{ "write_zeroes", VIRTIO_BLK_F_WRITE_ZEROES },
		{ "mq", VIRTIO_BLK_F_MQ },
	};
	char val[128];
	uint64_t off = 0;

	if (cmdline_get("vmmtest.blk_off", 0, val, sizeof(val)) < 0)
		return 0;
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++) {
		size_t n = strlen(names[i].name);

		for (const char *p = val; *p;) {
			if (!strncmp(p, names[i].name, n) &&
			    (p[n] == ',' || !p[n]))
				off |= 1ULL << names[i].bit;
			while (*p && *p != ',')
				p++;
			if (*p)
				p++;
		}
	}
	return off;
}

static int dev_init(struct blk_dev *d)
{
	struct virtio_dev *v = &d->v;
	uint64_t want;

	d->ok = false;
	want = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_SIZE_MAX |
	       1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_RO |
	       1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_FLUSH |
	       1ULL << VIRTIO_F_INDIRECT_DESC | 1ULL << VIRTIO_F_EVENT_IDX |
	       1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES |
	       1ULL << VIRTIO_BLK_F_MQ;
	if (virtio_negotiate(v, want & ~features_off()) < 0)
		return -1;

	d->capacity = virtio_cfg64(v, 0);
	d->size_max = virtio_has(v, VIRTIO_BLK_F_SIZE_MAX) ?
		      virtio_cfg32(v, 8) : 0;
	d->seg_max = virtio_has(v, VIRTIO_BLK_F_SEG_MAX) ?
		     virtio_cfg32(v, 12) : 0;
	d->blk_size = virtio_has(v, VIRTIO_BLK_F_BLK_SIZE) ?
		      virtio_cfg32(v, 20) : 512;
	d->ro = virtio_has(v, VIRTIO_BLK_F_RO);
	if (virtio_has(v, VIRTIO_BLK_F_DISCARD)) {
		d->max_discard = virtio_cfg32(v, 36);
		d->discard_align = virtio_cfg32(v, 44);
	}
	if (virtio_has(v, VIRTIO_BLK_F_WRITE_ZEROES)) {
		d->max_wz = virtio_cfg32(v, 48);
		d->wz_may_unmap = virtio_cfg8(v, 56);
	}
	d->nq = 1;
	if (virtio_has(v, VIRTIO_BLK_F_MQ)) {
		uint16_t nq = virtio_cfg16(v, 34);	/* num_queues */

		d->nq = nq < 1 ? 1 : nq > BLK_MAX_QUEUES ? BLK_MAX_QUEUES : nq;
	}
	for (unsigned qi = 0; qi < d->nq; qi++)
		if (setup_queue(d, qi) < 0)
			return -1;
	d->q = &d->vqs[0];
	virtio_driver_ok(v);
	d->ok = true;
	return 0;
}

int blk_reinit(struct blk_dev *d)
{
	return dev_init(d);
}

/* Device reset: write 0, wait until it reads 0 (bounded).  0 or -1. */
int blk_reset(struct blk_dev *d)
{
	d->ok = false;
	return virtio_reset(&d->v);
}

/* Negotiation probe: reset, then offer exactly feats.  Returns 1 if the
 * device accepted them (FEATURES_OK stuck), 0 if refused, -1 if it did not
 * reset.  The device is left unusable: blk_reinit() it afterwards. */
int blk_try_features(struct blk_dev *d, uint64_t feats)
{
	d->ok = false;
	return virtio_try_features(&d->v, feats);
}

unsigned blk_probe(void)
{
	static struct virtio_dev found[MAX_BLK];

	if (probed)
		return nblk;
	probed = true;
	nblk = virtio_find(VIRTIO_ID_BLOCK, found, MAX_BLK);
	for (unsigned i = 0; i < nblk; i++) {
		struct blk_dev *d = &blk_devs[i];

		d->v = found[i];
		d->index = i;
		if (dev_init(d) < 0)
			kprintf("virtio-blk %u at %#lx: %s\n", d->index,
				d->v.base, d->v.why);
	}
	return nblk;
}

unsigned blk_probe_all(void)
{
	unsigned n = blk_probe();

	kprintf("virtio-blk: %u device%s\n", n, n == 1 ? "" : "s");
	return n;
}

struct blk_dev *blk_get(unsigned index)
{
	blk_probe();
	return index < nblk ? &blk_devs[index] : NULL;
}

uint64_t blk_max_req(struct blk_dev *d)
{
	uint64_t seg = d->size_max ? d->size_max : MAX_REQ_BYTES;
	uint64_t nseg = BLK_MAX_SEGS, max;

	if (d->seg_max && d->seg_max < nseg)
		nseg = d->seg_max;
	if (!virtio_has(&d->v, VIRTIO_F_INDIRECT_DESC) &&
	    nseg > d->q->vq.qsize - 2u)
		nseg = d->q->vq.qsize - 2u;
	max = seg * nseg;
	if (max > MAX_REQ_BYTES)
		max = MAX_REQ_BYTES;
	return max & ~511ULL;
}

/* --- request slots --- */

struct blk_req *blk_req_get(struct blk_dev *d)
{
	for (unsigned i = 0; i < d->q->vq.qsize; i++)
		if (!d->q->reqs[i].in_use) {
			d->q->reqs[i].in_use = true;
			d->q->reqs[i].result = BLK_S_PENDING;
			return &d->q->reqs[i];
		}
	return NULL;
}

void blk_req_put(struct blk_dev *d, struct blk_req *r)
{
	(void)d;
	r->in_use = false;
}

static void make_available(struct blk_dev *d, struct blk_req *r, uint16_t head,
			   unsigned ndesc)
{
	r->head = head;
	r->ndesc = (uint16_t)ndesc;
	r->result = BLK_S_PENDING;
	d->q->by_head[head] = r;
	virtq_add(&d->q->vq, head);
	d->submitted++;
}

int blk_queue(struct blk_dev *d, struct blk_req *r, uint32_t type,
	      uint64_t sector, const struct blk_seg *segs, unsigned nsegs,
	      bool device_writes)
{
	struct vring_desc chain[BLK_MAX_SEGS + 2];
	unsigned n = 0;
	uint16_t idx[BLK_MAX_SEGS + 2];

	if (nsegs > BLK_MAX_SEGS)
		return -1;
	r->hdr.type = type;
	r->hdr.reserved = 0;
	r->hdr.sector = sector;
	r->status = 0xff;
	chain[n++] = (struct vring_desc){ (uint64_t)&r->hdr, 16, 0, 0 };
	for (unsigned i = 0; i < nsegs; i++)
		chain[n++] = (struct vring_desc){ segs[i].addr, segs[i].len,
			device_writes ? VRING_DESC_F_WRITE : 0, 0 };
	chain[n++] = (struct vring_desc){ (uint64_t)&r->status, 1,
					  VRING_DESC_F_WRITE, 0 };

	if (virtio_has(&d->v, VIRTIO_F_INDIRECT_DESC)) {
		for (unsigned i = 0; i < n; i++) {
			r->indirect[i] = chain[i];
			if (i + 1 < n) {
				r->indirect[i].flags |= VRING_DESC_F_NEXT;
				r->indirect[i].next = (uint16_t)(i + 1);
			}
		}
		if (virtq_alloc_descs(&d->q->vq, 1, idx) < 0)
			return -1;
		d->q->vq.desc[idx[0]] = (struct vring_desc){
			(uint64_t)r->indirect,
			(uint32_t)(n * sizeof(struct vring_desc)),
			VRING_DESC_F_INDIRECT, 0 };
		r->slots[0] = idx[0];
		make_available(d, r, idx[0], 1);
		return 0;
	}
	return blk_queue_raw(d, r, chain, n, false);
}

int blk_queue_raw(struct blk_dev *d, struct blk_req *r,
		  const struct vring_desc *chain, unsigned n, bool raw_next)
{
	uint16_t idx[BLK_MAX_SEGS + 2];

	if (n == 0 || n > BLK_MAX_SEGS + 2 ||
	    virtq_alloc_descs(&d->q->vq, n, idx) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		struct vring_desc *e = &d->q->vq.desc[idx[i]];

		*e = chain[i];
		if (raw_next) {
			/* chain[i].next is an index into this chain */
			if (chain[i].next < n)
				e->next = idx[chain[i].next];
		} else if (i + 1 < n) {
			e->flags |= VRING_DESC_F_NEXT;
			e->next = idx[i + 1];
		}
	}
	for (unsigned i = 0; i < n; i++)
		r->slots[i] = idx[i];
	make_available(d, r, idx[0], n);
	return 0;
}

void blk_kick(struct blk_dev *d)
{
	virtq_kick(&d->q->vq);
}

unsigned blk_poll(struct blk_dev *d)
{
	struct virtq *q = &d->q->vq;
	unsigned n = 0;
	uint32_t id, len;

	while (virtq_get_used(q, &id, &len)) {
		struct blk_req *r = id < q->qsize ? d->q->by_head[id] : NULL;

		if (!r) {
			kprintf("virtio-blk %u: device returned unknown id %u\n",
				d->index, id);
			continue;
		}
		d->q->by_head[id] = NULL;
		virtq_free_descs(q, r->slots, r->ndesc);
		r->used_len = len;
		barrier();
		r->result = r->status;
		n++;
	}
	d->completed += n;
	if (n)
		virtq_suppress_irq(q);
	return n;
}

/* Interrupts are routed (and a 10 ms timer backs up a wake-up lost between
 * setting the PVM native interrupt flag and HLT) while a command uses the
 * device in a mode that halts. */
void blk_set_wait(struct blk_dev *d, uint64_t spin_us)
{
	bool irq = spin_us != BLK_SPIN_POLL;

	d->spin_us = spin_us;
	if (irq != d->use_irq)
		virtio_halt_mode(&d->v, irq);
	d->use_irq = irq;
}

void blk_arm_irq(struct blk_dev *d, bool on)
{
	virtq_arm_irq(&d->q->vq, on);
}

void blk_wait_used(struct blk_dev *d)
{
	struct virtq *const q = &d->q->vq;

	if (!d->use_irq) {
		cpu_relax();
		return;
	}
	virtq_wait_used(&q, 1, 1, d->spin_us);
}

/* A device that gave up (NEEDS_RESET) answers nothing more: look at the
 * status register (one exit) every 10 ms of waiting, and mark the device
 * for re-initialisation by the next command. */
int blk_wait(struct blk_dev *d, struct blk_req *r, uint64_t timeout_us)
{
	uint64_t t0 = rdtsc(), limit = timeout_us * tsc_khz / 1000;
	uint64_t check = 10000 * tsc_khz / 1000, next = t0 + check;

	for (;;) {
		uint64_t now;

		blk_poll(d);
		if (r->result != BLK_S_PENDING)
			return r->result;
		now = rdtsc();
		if (now - t0 > limit)
			return BLK_S_TIMEOUT;
		if (now > next) {
			next = now + check;
			if (blk_status(d) & VIRTIO_STATUS_NEEDS_RESET) {
				d->ok = false;
				return BLK_S_NEEDS_RESET;
			}
		}
		blk_wait_used(d);
	}
}

/* Split [buf, buf+len) into segments of at most size_max. */
static unsigned make_segs(struct blk_dev *d, void *buf, uint64_t len,
			  struct blk_seg *segs)
{
	uint64_t seg = d->size_max ? d->size_max : MAX_REQ_BYTES;
	unsigned n = 0;

	for (uint64_t off = 0; off < len && n < BLK_MAX_SEGS; n++) {
		uint64_t l = len - off < seg ? len - off : seg;

		segs[n].addr = (uint64_t)buf + off;
		segs[n].len = (uint32_t)l;
		off += l;
	}
	return n;
}

int blk_rw(struct blk_dev *d, uint32_t type, uint64_t sector, void *buf,
	   uint64_t len)
{
	uint64_t max = blk_max_req(d), done = 0;
	struct blk_seg segs[BLK_MAX_SEGS];

	if (!d->ok)
		return BLK_S_TIMEOUT;
	do {
		uint64_t l = len - done < max ? len - done : max;
		unsigned n = make_segs(d, (uint8_t *)buf + done, l, segs);
		struct blk_req *r = blk_req_get(d);
		int st;

		if (!r)
			return BLK_S_TIMEOUT;
		if (blk_queue(d, r, type, sector + done / 512, segs, n,
			      type == VIRTIO_BLK_T_IN ||
			      type == VIRTIO_BLK_T_GET_ID) < 0) {
			blk_req_put(d, r);
			return BLK_S_TIMEOUT;
		}
		blk_kick(d);
		st = blk_wait(d, r, 10000000);
		if (st == BLK_S_TIMEOUT || st == BLK_S_NEEDS_RESET) {
			/* the slot stays in use: the device may still answer */
			return st;
		}
		blk_req_put(d, r);
		if (st != VIRTIO_BLK_S_OK)
			return st;
		done += l;
	} while (done < len);
	return VIRTIO_BLK_S_OK;
}

int blk_flush(struct blk_dev *d)
{
	return blk_rw(d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
}

int blk_discard_zero(struct blk_dev *d, uint32_t type, uint64_t sector,
		     uint64_t nsect, bool unmap)
{
	static struct {
		uint64_t sector;
		uint32_t num_sectors, flags;
	} seg __attribute__((aligned(16)));
	uint32_t max = type == VIRTIO_BLK_T_DISCARD ? d->max_discard : d->max_wz;

	if (!max)
		max = 1u << 22;
	while (nsect) {
		uint32_t n = nsect < max ? (uint32_t)nsect : max;
		struct blk_seg sg = { (uint64_t)&seg, sizeof(seg) };
		struct blk_req *r = blk_req_get(d);
		int st;

		if (!r)
			return BLK_S_TIMEOUT;
		seg.sector = sector;
		seg.num_sectors = n;
		seg.flags = unmap && type == VIRTIO_BLK_T_WRITE_ZEROES ? 1 : 0;
		if (blk_queue(d, r, type, 0, &sg, 1, false) < 0) {
			blk_req_put(d, r);
			return BLK_S_TIMEOUT;
		}
		blk_kick(d);
		st = blk_wait(d, r, 10000000);
		if (st == BLK_S_TIMEOUT || st == BLK_S_NEEDS_RESET)
			return st;
		blk_req_put(d, r);
		if (st)
			return st;
		sector += n, nsect -= n;
	}
	return VIRTIO_BLK_S_OK;
}

const char *blk_status_name(int s)
{
	switch (s) {
	case VIRTIO_BLK_S_OK: return "OK";
	case VIRTIO_BLK_S_IOERR: return "IOERR";
	case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
	case BLK_S_TIMEOUT: return "no answer";
	case BLK_S_NEEDS_RESET: return "device needs reset";
	case 0xff: return "status not written";
	default: return "bad status";
	}
}

/* Byte-granular access.  Whole sectors go straight to/from the caller's
 * buffer when it is page aligned in memory; partial head and tail sectors
 * (read-modify-write on writes), and whole sectors of a misaligned buffer,
 * go through page-aligned bounce buffers: virtio allows any alignment, but a
 * device backed by O_DIRECT is faster (or, if it does not bounce itself,
 * only correct) with aligned memory. */
#define BOUNCE_BIG	(256 * 1024)
static uint8_t bounce[512] __attribute__((aligned(PAGE_SIZE)));
static uint8_t bounce_big[BOUNCE_BIG] __attribute__((aligned(PAGE_SIZE)));

int blk_pread(struct blk_dev *d, uint64_t off, void *buf, uint64_t len)
{
	uint8_t *p = buf;
	int st;

	while (len) {
		uint64_t in = off % 512, l;

		if (in || len < 512) {
			l = 512 - in < len ? 512 - in : len;
			st = blk_rw(d, VIRTIO_BLK_T_IN, off / 512, bounce, 512);
			if (st)
				return st;
			memcpy(p, bounce + in, l);
		} else if ((uint64_t)p % PAGE_SIZE) {
			l = len & ~511ULL;
			if (l > BOUNCE_BIG)
				l = BOUNCE_BIG;
			st = blk_rw(d, VIRTIO_BLK_T_IN, off / 512, bounce_big, l);
			if (st)
				return st;
			memcpy(p, bounce_big, l);
		} else {
			l = len & ~511ULL;
			st = blk_rw(d, VIRTIO_BLK_T_IN, off / 512, p, l);
			if (st)
				return st;
		}
		p += l, off += l, len -= l;
	}
	return VIRTIO_BLK_S_OK;
}

int blk_pwrite(struct blk_dev *d, uint64_t off, const void *buf, uint64_t len)
{
	const uint8_t *p = buf;
	int st;

	while (len) {
		uint64_t in = off % 512, l;

		if (in || len < 512) {
			l = 512 - in < len ? 512 - in : len;
			st = blk_rw(d, VIRTIO_BLK_T_IN, off / 512, bounce, 512);
			if (st)
				return st;
			memcpy(bounce + in, p, l);
			st = blk_rw(d, VIRTIO_BLK_T_OUT, off / 512, bounce, 512);
		} else if ((uint64_t)p % PAGE_SIZE) {
			l = len & ~511ULL;
			if (l > BOUNCE_BIG)
				l = BOUNCE_BIG;
			memcpy(bounce_big, p, l);
			st = blk_rw(d, VIRTIO_BLK_T_OUT, off / 512, bounce_big, l);
		} else {
			l = len & ~511ULL;
			st = blk_rw(d, VIRTIO_BLK_T_OUT, off / 512, (void *)p, l);
		}
		if (st)
			return st;
		p += l, off += l, len -= l;
	}
	return VIRTIO_BLK_S_OK;
}
