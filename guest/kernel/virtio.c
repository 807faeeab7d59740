/* guest/kernel/virtio.c - virtio-mmio version 2 transport and split
 * virtqueue, driver side (virtio 1.2: 2.7, 3.1, 4.2).  See virtio.h.
 */
#include "virtio.h"

static struct virtio_dev *by_slot[VIRTIO_MAX_DEVS];

uint64_t virtio_cfg64(struct virtio_dev *d, unsigned off)
{
	uint32_t gen, lo, hi;

	do {
		gen = virtio_rd(d, MMIO_CONFIG_GEN);
		lo = virtio_rd(d, MMIO_CONFIG + off);
		hi = virtio_rd(d, MMIO_CONFIG + off + 4);
	} while (gen != virtio_rd(d, MMIO_CONFIG_GEN));
	return (uint64_t)hi << 32 | lo;
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

unsigned virtio_find(uint32_t device_id, struct virtio_dev *out, unsigned max)
{
	static bool reported;	/* bad entries are reported by the first scan */
	char val[64];
	unsigned found = 0;

	for (unsigned i = 0; i < VIRTIO_MAX_DEVS && found < max &&
	     cmdline_get("virtio_mmio.device", i, val, sizeof(val)) == 0; i++) {
		uint64_t base;
		unsigned irq;
		uint32_t ver;

		if (parse_mmio_entry(val, &base, &irq) < 0) {
			if (!reported)
				kprintf("virtio: cannot parse virtio_mmio.device=%s\n",
					val);
			continue;
		}
		if (base < VMM_MMIO_HOLE_START || base >= VMM_MMIO_HOLE_END) {
			if (!reported)
				kprintf("virtio: %#lx is outside the MMIO hole\n",
					base);
			continue;
		}
		if (mmio_read32(base + MMIO_MAGIC) != 0x74726976) {
			if (!reported)
				kprintf("virtio: no virtio-mmio magic at %#lx\n",
					base);
			continue;
		}
		ver = mmio_read32(base + MMIO_VERSION);
		if (ver != 2) {
			if (!reported)
				kprintf("virtio: %#lx: version %u, want 2\n",
					base, ver);
			continue;
		}
		if (mmio_read32(base + MMIO_DEVICE_ID) != device_id)
			continue;
		memset(&out[found], 0, sizeof(out[found]));
		out[found].base = base;
		out[found].irq = irq;
		out[found].slot = i;
		out[found].device_id = device_id;
		found++;
	}
	reported = true;
	return found;
}

int virtio_fail(struct virtio_dev *d, const char *why)
{
	ksnprintf(d->why, sizeof(d->why), "%s", why);
	virtio_wr(d, MMIO_STATUS, virtio_rd(d, MMIO_STATUS) | S_FAILED);
	return -1;
}

uint32_t virtio_status(struct virtio_dev *d)
{
	return virtio_rd(d, MMIO_STATUS);
}

int virtio_reset(struct virtio_dev *d)
{
	virtio_wr(d, MMIO_STATUS, 0);
	for (int i = 0; i < 1000 && virtio_rd(d, MMIO_STATUS); i++)
		cpu_relax();
	return virtio_rd(d, MMIO_STATUS) ? -1 : 0;
}

static void write_features(struct virtio_dev *d, uint64_t feats)
{
	virtio_wr(d, MMIO_DRV_FEATURES_SEL, 0);
	virtio_wr(d, MMIO_DRV_FEATURES, (uint32_t)feats);
	virtio_wr(d, MMIO_DRV_FEATURES_SEL, 1);
	virtio_wr(d, MMIO_DRV_FEATURES, (uint32_t)(feats >> 32));
}

int virtio_negotiate(struct virtio_dev *d, uint64_t want)
{
	if (virtio_reset(d) < 0)
		return virtio_fail(d, "device does not reset");
	virtio_wr(d, MMIO_STATUS, S_ACK);
	virtio_wr(d, MMIO_STATUS, S_ACK | S_DRIVER);
	virtio_wr(d, MMIO_DEV_FEATURES_SEL, 0);
	d->dev_features = virtio_rd(d, MMIO_DEV_FEATURES);
	virtio_wr(d, MMIO_DEV_FEATURES_SEL, 1);
	d->dev_features |= (uint64_t)virtio_rd(d, MMIO_DEV_FEATURES) << 32;
	if (!(d->dev_features & (1ULL << VIRTIO_F_VERSION_1)))
		return virtio_fail(d, "device does not offer VERSION_1");
	d->features = d->dev_features & (want | 1ULL << VIRTIO_F_VERSION_1);
	write_features(d, d->features);
	virtio_wr(d, MMIO_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(virtio_rd(d, MMIO_STATUS) & S_FEATURES_OK))
		return virtio_fail(d, "device refused our features");
	return 0;
}

int virtio_try_features(struct virtio_dev *d, uint64_t feats)
{
	if (virtio_reset(d) < 0)
		return -1;
	virtio_wr(d, MMIO_STATUS, S_ACK);
	virtio_wr(d, MMIO_STATUS, S_ACK | S_DRIVER);
	write_features(d, feats);
	virtio_wr(d, MMIO_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	return (virtio_rd(d, MMIO_STATUS) & S_FEATURES_OK) ? 1 : 0;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	virtio_wr(d, MMIO_STATUS,
		  S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	d->why[0] = 0;
}

/* Completion interrupt: only a wake-up (the used ring says what is done).
 * Acknowledge without reading InterruptStatus: one exit instead of two. */
static void virtio_irq(unsigned vector)
{
	unsigned slot = vector - VEC_VIRTIO;
	struct virtio_dev *d = slot < VIRTIO_MAX_DEVS ? by_slot[slot] : NULL;

	if (d) {
		virtio_wr(d, MMIO_INT_ACK, 3);
		d->irqs++;
	}
	lapic_eoi();
}

void virtio_route_irq(struct virtio_dev *d, bool on)
{
	if (d->slot >= VIRTIO_MAX_DEVS || on == d->irq_routed)
		return;
	d->irq_routed = on;
	if (on) {
		by_slot[d->slot] = d;
		irq_register(VEC_VIRTIO + d->slot, virtio_irq);
		ioapic_route(d->irq, VEC_VIRTIO + d->slot, cpus[0]->apic_id);
	} else {
		ioapic_mask(d->irq);
	}
}

static void backstop_tick(unsigned vector)
{
	(void)vector;
	this_cpu()->ticks++;
	lapic_eoi();
}

void virtio_halt_mode(struct virtio_dev *d, bool on)
{
	if (on) {
		virtio_route_irq(d, true);
		irq_register(VEC_TIMER, backstop_tick);
		lapic_timer_periodic(10000);
	} else {
		lapic_timer_stop();
		virtio_route_irq(d, false);
	}
}

static bool any_used(struct virtq *const *qs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (virtq_used_pending(qs[i]))
			return true;
	return false;
}

void virtq_wait_used(struct virtq *const *qs, unsigned n, unsigned arm_mask,
		     uint64_t spin_us)
{
	uint64_t t0 = rdtsc(), spin = spin_us * tsc_khz / 1000;

	while (rdtsc() - t0 < spin)
		if (any_used(qs, n))
			return;
		else
			cpu_relax();
	for (unsigned i = 0; i < n; i++)
		virtq_arm_irq(qs[i], arm_mask & 1u << i);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!any_used(qs, n))
		irq_wait();
	for (unsigned i = 0; i < n; i++)
		virtq_arm_irq(qs[i], false);
}

static void *alloc_bytes(uint64_t bytes)
{
	return page_alloc(ALIGN_UP(bytes, PAGE_SIZE) / PAGE_SIZE);
}

int virtq_setup(struct virtio_dev *d, struct virtq *q, unsigned qi,
		uint16_t want)
{
	uint32_t max;
	uint16_t n = want;

	virtio_wr(d, MMIO_QUEUE_SEL, qi);
	if (virtio_rd(d, MMIO_QUEUE_READY))
		return virtio_fail(d, "queue already live after reset");
	max = virtio_rd(d, MMIO_QUEUE_NUM_MAX);
	if (max == 0)
		return virtio_fail(d, "queue not available (QueueNumMax 0)");
	while (n > max)
		n >>= 1;
	q->dev = d;
	q->index = qi;
	if (!q->desc || q->qsize != n) {
		q->qsize = n;
		q->desc = alloc_bytes(16ULL * n);
		q->avail = alloc_bytes(6 + 2ULL * n);
		q->used_hdr = alloc_bytes(6 + 8ULL * n);
		if (!q->desc || !q->avail || !q->used_hdr)
			return virtio_fail(d, "out of memory for the queue");
	} else {
		memset(q->desc, 0, 16ULL * n);
		memset((void *)q->avail, 0, 6 + 2ULL * n);
		memset((void *)q->used_hdr, 0, 6 + 8ULL * n);
	}
	q->used_ring = (volatile uint32_t *)(q->used_hdr + 2);
	for (uint16_t i = 0; i < n; i++)
		q->desc[i].next = (uint16_t)(i + 1);
	q->free_head = 0;
	q->num_free = n;
	q->avail_idx = q->kicked_idx = q->last_used = 0;
	q->event_idx = virtio_has(d, VIRTIO_F_EVENT_IDX);
	/* interrupts suppressed until someone wants them */
	if (q->event_idx)
		q->avail[2 + n] = 0x8000;
	else
		q->avail[0] = 1;	/* VRING_AVAIL_F_NO_INTERRUPT */

	virtio_wr(d, MMIO_QUEUE_NUM, n);
	virtio_wr(d, MMIO_QUEUE_DESC, (uint32_t)(uint64_t)q->desc);
	virtio_wr(d, MMIO_QUEUE_DESC + 4, (uint32_t)((uint64_t)q->desc >> 32));
	virtio_wr(d, MMIO_QUEUE_DRIVER, (uint32_t)(uint64_t)q->avail);
	virtio_wr(d, MMIO_QUEUE_DRIVER + 4,
		  (uint32_t)((uint64_t)q->avail >> 32));
	virtio_wr(d, MMIO_QUEUE_DEVICE, (uint32_t)(uint64_t)q->used_hdr);
	virtio_wr(d, MMIO_QUEUE_DEVICE + 4,
		  (uint32_t)((uint64_t)q->used_hdr >> 32));
	virtio_wr(d, MMIO_QUEUE_READY, 1);
	return 0;
}

int virtq_alloc_descs(struct virtq *q, unsigned n, uint16_t *out)
{
	if (q->num_free < n)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		out[i] = q->free_head;
		q->free_head = q->desc[q->free_head].next;
	}
	q->num_free -= (uint16_t)n;
	return 0;
}

void virtq_free_descs(struct virtq *q, const uint16_t *slots, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		q->desc[slots[i]].next = q->free_head;
		q->free_head = slots[i];
		q->num_free++;
	}
}

void virtq_add(struct virtq *q, uint16_t head)
{
	q->avail[2 + q->avail_idx % q->qsize] = head;
	q->avail_idx++;
}

bool virtq_kick(struct virtq *q)
{
	uint16_t old = q->kicked_idx, now = q->avail_idx;
	bool notify;

	if (old == now)
		return false;
	barrier();
	WRITE_ONCE(q->avail[1], now);
	/* the idx store must be visible before we read the device's wish */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx)
		notify = vring_need_event(q->used_hdr[2 + 4 * q->qsize], now,
					  old);
	else
		notify = !(q->used_hdr[0] & 1);	/* VRING_USED_F_NO_NOTIFY */
	q->kicked_idx = now;
	if (notify) {
		virtio_wr(q->dev, MMIO_QUEUE_NOTIFY, q->index);
		q->dev->notifies++;
	}
	return notify;
}

bool virtq_get_used(struct virtq *q, uint32_t *id, uint32_t *len)
{
	unsigned slot;

	if (READ_ONCE(q->used_hdr[1]) == q->last_used)
		return false;
	barrier();	/* the entry is read after the index (x86: in order) */
	slot = q->last_used % q->qsize;
	*id = q->used_ring[2 * slot];
	*len = q->used_ring[2 * slot + 1];
	q->last_used++;
	return true;
}

void virtq_suppress_irq(struct virtq *q)
{
	if (q->event_idx)
		q->avail[2 + q->qsize] = (uint16_t)(q->last_used + 0x8000);
}

void virtq_arm_irq(struct virtq *q, bool on)
{
	if (q->event_idx)
		q->avail[2 + q->qsize] = on ? q->last_used :
					 (uint16_t)(q->last_used + 0x8000);
	else
		q->avail[0] = on ? 0 : 1;
}
