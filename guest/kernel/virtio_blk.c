/* guest/kernel/virtio_blk.c - virtio-blk over virtio-mmio version 2 with
 * one split virtqueue (virtio 1.2: 2.7, 4.2, 5.2).
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

#define S_ACK		1
#define S_DRIVER	2
#define S_DRIVER_OK	4
#define S_FEATURES_OK	8
#define S_FAILED	128

#define QUEUE_SIZE_WANT	256
#define MAX_REQ_BYTES	(4ULL << 20)

struct blk_dev blk_devs[MAX_BLK];
unsigned nblk;
static bool probed;

static uint32_t rd(struct blk_dev *d, unsigned reg)
{
	return mmio_read32(d->base + reg);
}

static void wr(struct blk_dev *d, unsigned reg, uint32_t v)
{
	mmio_write32(d->base + reg, v);
}

static int init_fail(struct blk_dev *d, const char *why)
{
	ksnprintf(d->why, sizeof(d->why), "%s", why);
	wr(d, MMIO_STATUS, rd(d, MMIO_STATUS) | S_FAILED);
	d->ok = false;
	return -1;
}

uint32_t blk_status(struct blk_dev *d)
{
	return rd(d, MMIO_STATUS);
}

/* Device config fields are read with their own width (virtio 1.2 4.2.2.2) */
static uint16_t cfg16(struct blk_dev *d, unsigned off)
{
	return *(volatile uint16_t *)(d->base + MMIO_CONFIG + off);
}

static uint8_t cfg8(struct blk_dev *d, unsigned off)
{
	return *(volatile uint8_t *)(d->base + MMIO_CONFIG + off);
}

static uint64_t config_read64(struct blk_dev *d, unsigned off)
{
	uint32_t gen, lo, hi;

	do {
		gen = rd(d, MMIO_CONFIG_GEN);
		lo = rd(d, MMIO_CONFIG + off);
		hi = rd(d, MMIO_CONFIG + off + 4);
	} while (gen != rd(d, MMIO_CONFIG_GEN));
	return (uint64_t)hi << 32 | lo;
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
	uint32_t max;
	uint16_t n = QUEUE_SIZE_WANT;

	wr(d, MMIO_QUEUE_SEL, qi);
	if (rd(d, MMIO_QUEUE_READY))
		return init_fail(d, "queue already live after reset");
	max = rd(d, MMIO_QUEUE_NUM_MAX);
	if (max == 0)
		return init_fail(d, "queue not available (QueueNumMax 0)");
	while (n > max)
		n >>= 1;
	q->index = qi;
	if (!q->desc || q->qsize != n) {
		q->qsize = n;
		q->desc = alloc_bytes(16ULL * n);
		q->avail = alloc_bytes(6 + 2ULL * n);
		q->used_hdr = alloc_bytes(6 + 8ULL * n);
		q->reqs = alloc_bytes(sizeof(struct blk_req) * n);
		q->by_head = alloc_bytes(sizeof(struct blk_req *) * n);
		if (!q->desc || !q->avail || !q->used_hdr || !q->reqs ||
		    !q->by_head)
			return init_fail(d, "out of memory for the queue");
	} else {
		memset(q->desc, 0, 16ULL * n);
		memset((void *)q->avail, 0, 6 + 2ULL * n);
		memset((void *)q->used_hdr, 0, 6 + 8ULL * n);
		memset(q->reqs, 0, sizeof(struct blk_req) * n);
		memset(q->by_head, 0, sizeof(struct blk_req *) * n);
	}
	q->used_ring = (volatile uint32_t *)(q->used_hdr + 2);
	for (uint16_t i = 0; i < n; i++)
		q->desc[i].next = (uint16_t)(i + 1);
	q->free_head = 0;
	q->num_free = n;
	q->avail_idx = q->kicked_idx = q->last_used = 0;
	/* interrupts suppressed until someone wants them */
	if (d->features & (1ULL << VIRTIO_F_EVENT_IDX))
		q->avail[2 + n] = 0x8000;
	else
		q->avail[0] = 1;	/* VRING_AVAIL_F_NO_INTERRUPT */

	wr(d, MMIO_QUEUE_NUM, n);
	wr(d, MMIO_QUEUE_DESC, (uint32_t)(uint64_t)q->desc);
	wr(d, MMIO_QUEUE_DESC + 4, (uint32_t)((uint64_t)q->desc >> 32));
	wr(d, MMIO_QUEUE_DRIVER, (uint32_t)(uint64_t)q->avail);
	wr(d, MMIO_QUEUE_DRIVER + 4, (uint32_t)((uint64_t)q->avail >> 32));
	wr(d, MMIO_QUEUE_DEVICE, (uint32_t)(uint64_t)q->used_hdr);
	wr(d, MMIO_QUEUE_DEVICE + 4, (uint32_t)((uint64_t)q->used_hdr >> 32));
	wr(d, MMIO_QUEUE_READY, 1);
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
	uint64_t want;
	uint32_t st;

	d->ok = false;
	wr(d, MMIO_STATUS, 0);			/* reset */
	for (int i = 0; i < 1000 && rd(d, MMIO_STATUS); i++)
		cpu_relax();
	if (rd(d, MMIO_STATUS))
		return init_fail(d, "device does not reset");
	wr(d, MMIO_STATUS, S_ACK);
	wr(d, MMIO_STATUS, S_ACK | S_DRIVER);
	wr(d, MMIO_DEV_FEATURES_SEL, 0);
	d->dev_features = rd(d, MMIO_DEV_FEATURES);
	wr(d, MMIO_DEV_FEATURES_SEL, 1);
	d->dev_features |= (uint64_t)rd(d, MMIO_DEV_FEATURES) << 32;
	if (!(d->dev_features & (1ULL << VIRTIO_F_VERSION_1)))
		return init_fail(d, "device does not offer VERSION_1");
	want = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_SIZE_MAX |
	       1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_RO |
	       1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_FLUSH |
	       1ULL << VIRTIO_F_INDIRECT_DESC | 1ULL << VIRTIO_F_EVENT_IDX |
	       1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES |
	       1ULL << VIRTIO_BLK_F_MQ;
	d->features = d->dev_features & want & ~features_off();
	wr(d, MMIO_DRV_FEATURES_SEL, 0);
	wr(d, MMIO_DRV_FEATURES, (uint32_t)d->features);
	wr(d, MMIO_DRV_FEATURES_SEL, 1);
	wr(d, MMIO_DRV_FEATURES, (uint32_t)(d->features >> 32));
	wr(d, MMIO_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	st = rd(d, MMIO_STATUS);
	if (!(st & S_FEATURES_OK))
		return init_fail(d, "device refused our features");

	d->capacity = config_read64(d, 0);
	d->size_max = d->features & (1ULL << VIRTIO_BLK_F_SIZE_MAX) ?
		      rd(d, MMIO_CONFIG + 8) : 0;
	d->seg_max = d->features & (1ULL << VIRTIO_BLK_F_SEG_MAX) ?
		     rd(d, MMIO_CONFIG + 12) : 0;
	d->blk_size = d->features & (1ULL << VIRTIO_BLK_F_BLK_SIZE) ?
		      rd(d, MMIO_CONFIG + 20) : 512;
	d->ro = d->features & (1ULL << VIRTIO_BLK_F_RO);
	if (d->features & (1ULL << VIRTIO_BLK_F_DISCARD)) {
		d->max_discard = rd(d, MMIO_CONFIG + 36);
		d->discard_align = rd(d, MMIO_CONFIG + 44);
	}
	if (d->features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES)) {
		d->max_wz = rd(d, MMIO_CONFIG + 48);
		d->wz_may_unmap = cfg8(d, 56);
	}
	d->nq = 1;
	if (d->features & (1ULL << VIRTIO_BLK_F_MQ)) {
		uint16_t nq = cfg16(d, 34);	/* num_queues */

		d->nq = nq < 1 ? 1 : nq > BLK_MAX_QUEUES ? BLK_MAX_QUEUES : nq;
	}
	for (unsigned qi = 0; qi < d->nq; qi++)
		if (setup_queue(d, qi) < 0)
			return -1;
	d->q = &d->vqs[0];
	wr(d, MMIO_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	d->ok = true;
	d->why[0] = 0;
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
	wr(d, MMIO_STATUS, 0);
	for (int i = 0; i < 1000 && rd(d, MMIO_STATUS); i++)
		cpu_relax();
	return rd(d, MMIO_STATUS) ? -1 : 0;
}

/* Negotiation probe: reset, then offer exactly feats.  Returns 1 if the
 * device accepted them (FEATURES_OK stuck), 0 if refused, -1 if it did not
 * reset.  The device is left unusable: blk_reinit() it afterwards. */
int blk_try_features(struct blk_dev *d, uint64_t feats)
{
	if (blk_reset(d) < 0)
		return -1;
	wr(d, MMIO_STATUS, S_ACK);
	wr(d, MMIO_STATUS, S_ACK | S_DRIVER);
	wr(d, MMIO_DRV_FEATURES_SEL, 0);
	wr(d, MMIO_DRV_FEATURES, (uint32_t)feats);
	wr(d, MMIO_DRV_FEATURES_SEL, 1);
	wr(d, MMIO_DRV_FEATURES, (uint32_t)(feats >> 32));
	wr(d, MMIO_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	return (rd(d, MMIO_STATUS) & S_FEATURES_OK) ? 1 : 0;
}

/* "4K@0xd0000000:5" */
static int parse_mmio_entry(const char *s, uint64_t *base, unsigned *irq)
{
	char tmp[48];
	const char *at = s, *colon;
	uint64_t v;
	size_t n;

	while (*at && *at != '@')
		at++;
	colon = at;
	while (*colon && *colon != ':')
		colon++;
	if (!*at || !*colon)
		return -1;
	n = (size_t)(colon - at - 1);
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, at + 1, n);
	tmp[n] = 0;
	if (parse_size(tmp, base) < 0 || parse_size(colon + 1, &v) < 0 ||
	    v > 23)
		return -1;
	*irq = (unsigned)v;
	return 0;
}

unsigned blk_probe(void)
{
	char val[64];

	if (probed)
		return nblk;
	probed = true;
	for (unsigned i = 0; nblk < MAX_BLK &&
	     cmdline_get("virtio_mmio.device", i, val, sizeof(val)) == 0; i++) {
		struct blk_dev *d = &blk_devs[nblk];
		uint64_t base;
		unsigned irq;

		if (parse_mmio_entry(val, &base, &irq) < 0) {
			kprintf("virtio: cannot parse virtio_mmio.device=%s\n", val);
			continue;
		}
		if (base < VMM_MMIO_HOLE_START || base >= VMM_MMIO_HOLE_END) {
			kprintf("virtio: %#lx is outside the MMIO hole\n", base);
			continue;
		}
		d->base = base;
		d->irq = irq;
		if (mmio_read32(base + MMIO_MAGIC) != 0x74726976) {
			kprintf("virtio: no virtio-mmio magic at %#lx\n", base);
			continue;
		}
		if (mmio_read32(base + MMIO_VERSION) != 2) {
			kprintf("virtio: %#lx: version %u, want 2\n", base,
				mmio_read32(base + MMIO_VERSION));
			continue;
		}
		if (mmio_read32(base + MMIO_DEVICE_ID) != 2)
			continue;	/* not a block device */
		d->index = nblk++;
		if (dev_init(d) < 0)
			kprintf("virtio-blk %u at %#lx: %s\n", d->index, base,
				d->why);
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
	if (!(d->features & (1ULL << VIRTIO_F_INDIRECT_DESC)) &&
	    nseg > d->q->qsize - 2u)
		nseg = d->q->qsize - 2u;
	max = seg * nseg;
	if (max > MAX_REQ_BYTES)
		max = MAX_REQ_BYTES;
	return max & ~511ULL;
}

/* --- request slots --- */

struct blk_req *blk_req_get(struct blk_dev *d)
{
	for (unsigned i = 0; i < d->q->qsize; i++)
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

static int alloc_descs(struct blk_dev *d, unsigned n, uint16_t *out)
{
	if (d->q->num_free < n)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		out[i] = d->q->free_head;
		d->q->free_head = d->q->desc[d->q->free_head].next;
	}
	d->q->num_free -= (uint16_t)n;
	return 0;
}

static void make_available(struct blk_dev *d, struct blk_req *r, uint16_t head,
			   unsigned ndesc)
{
	r->head = head;
	r->ndesc = (uint16_t)ndesc;
	r->result = BLK_S_PENDING;
	d->q->by_head[head] = r;
	d->q->avail[2 + d->q->avail_idx % d->q->qsize] = head;
	d->q->avail_idx++;
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

	if (d->features & (1ULL << VIRTIO_F_INDIRECT_DESC)) {
		for (unsigned i = 0; i < n; i++) {
			r->indirect[i] = chain[i];
			if (i + 1 < n) {
				r->indirect[i].flags |= VRING_DESC_F_NEXT;
				r->indirect[i].next = (uint16_t)(i + 1);
			}
		}
		if (alloc_descs(d, 1, idx) < 0)
			return -1;
		d->q->desc[idx[0]] = (struct vring_desc){ (uint64_t)r->indirect,
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

	if (n == 0 || n > BLK_MAX_SEGS + 2 || alloc_descs(d, n, idx) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		struct vring_desc *e = &d->q->desc[idx[i]];

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
	uint16_t old = d->q->kicked_idx, now = d->q->avail_idx;
	bool notify;

	if (old == now)
		return;
	barrier();
	WRITE_ONCE(d->q->avail[1], now);
	/* the idx store must be visible before we read the device's wish */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->features & (1ULL << VIRTIO_F_EVENT_IDX)) {
		uint16_t ev = d->q->used_hdr[2 + 4 * d->q->qsize];

		notify = (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
	} else {
		notify = !(d->q->used_hdr[0] & 1);	/* VRING_USED_F_NO_NOTIFY */
	}
	d->q->kicked_idx = now;
	if (notify) {
		wr(d, MMIO_QUEUE_NOTIFY, d->q->index);
		d->notifies++;
	}
}

static void free_chain(struct blk_dev *d, struct blk_req *r)
{
	for (unsigned i = 0; i < r->ndesc; i++) {
		uint16_t s = r->slots[i];

		d->q->desc[s].next = d->q->free_head;
		d->q->free_head = s;
		d->q->num_free++;
	}
}

unsigned blk_poll(struct blk_dev *d)
{
	uint16_t used = READ_ONCE(d->q->used_hdr[1]);
	unsigned n = 0;

	barrier();
	while (d->q->last_used != used) {
		unsigned slot = d->q->last_used % d->q->qsize;
		uint32_t id = d->q->used_ring[2 * slot], len = d->q->used_ring[2 * slot + 1];
		struct blk_req *r = id < d->q->qsize ? d->q->by_head[id] : NULL;

		d->q->last_used++;
		if (!r) {
			kprintf("virtio-blk %u: device returned unknown id %u\n",
				d->index, id);
			continue;
		}
		d->q->by_head[id] = NULL;
		free_chain(d, r);
		r->used_len = len;
		barrier();
		r->result = r->status;
		n++;
	}
	d->completed += n;
	if (n && (d->features & (1ULL << VIRTIO_F_EVENT_IDX)))
		/* keep interrupts suppressed: used_event stays far ahead */
		d->q->avail[2 + d->q->qsize] = (uint16_t)(d->q->last_used + 0x8000);
	return n;
}

/* Completion interrupt: only a wake-up (the used ring says what is done).
 * Acknowledge without reading InterruptStatus: one exit instead of two. */
static void virtio_irq(unsigned vector)
{
	struct blk_dev *d = &blk_devs[vector - VEC_VIRTIO];

	wr(d, MMIO_INT_ACK, 1);
	d->irqs++;
	lapic_eoi();
}

static void backstop_tick(unsigned vector)
{
	(void)vector;
	this_cpu()->ticks++;
	lapic_eoi();
}

/* Interrupts are routed (and a 10 ms timer backs up a wake-up lost between
 * setting the PVM native interrupt flag and HLT) while a command uses the
 * device in a mode that halts. */
void blk_set_wait(struct blk_dev *d, uint64_t spin_us)
{
	bool irq = spin_us != BLK_SPIN_POLL;

	d->spin_us = spin_us;
	if (irq == d->use_irq)
		return;
	d->use_irq = irq;
	if (irq) {
		irq_register(VEC_VIRTIO + d->index, virtio_irq);
		irq_register(VEC_TIMER, backstop_tick);
		ioapic_route(d->irq, VEC_VIRTIO + d->index, cpus[0]->apic_id);
		lapic_timer_periodic(10000);
	} else {
		lapic_timer_stop();
		ioapic_mask(d->irq);
	}
}

void blk_arm_irq(struct blk_dev *d, bool on)
{
	if (d->features & (1ULL << VIRTIO_F_EVENT_IDX))
		d->q->avail[2 + d->q->qsize] = on ? d->q->last_used :
					 (uint16_t)(d->q->last_used + 0x8000);
	else
		d->q->avail[0] = on ? 0 : 1;
}

void blk_wait_used(struct blk_dev *d)
{
	uint64_t t0 = rdtsc(), spin;

	if (!d->use_irq) {
		cpu_relax();
		return;
	}
	spin = d->spin_us * tsc_khz / 1000;
	while (rdtsc() - t0 < spin)
		if (READ_ONCE(d->q->used_hdr[1]) != d->q->last_used)
			return;
		else
			cpu_relax();
	/* commands run with interrupts off: irq_wait() opens them only for the
	 * halt, and an interrupt raised after the check below stays pending
	 * until then */
	blk_arm_irq(d, true);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (READ_ONCE(d->q->used_hdr[1]) == d->q->last_used)
		irq_wait();
	blk_arm_irq(d, false);
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
