/* guest/kernel/virtio_net.c - virtio-net (virtio 1.2: 5.1), one queue
 * pair, on the shared virtio-mmio transport of virtio.c.
 *
 * Negotiates MAC, MTU, STATUS, CSUM/GUEST_CSUM, HOST/GUEST_TSO4/6,
 * MRG_RXBUF and EVENT_IDX (vmmtest.net_off=mrg,tso,csum,event_idx declines
 * some, to exercise the device's other paths).  As in virtio_blk.c the data
 * path batches: frames are queued without a notify, one avail->idx store
 * and at most one notify (when the device asked) per batch, and used
 * entries are polled with interrupts suppressed unless a waiter arms one.
 */
#include "virtio_net.h"

struct net_dev net_devs[MAX_NET];
unsigned nnet;
static bool probed;

static void *alloc_bytes(uint64_t bytes)
{
	return page_alloc(ALIGN_UP(bytes, PAGE_SIZE) / PAGE_SIZE);
}

/* vmmtest.net_off=mrg,tso,csum,event_idx */
static uint64_t features_off(void)
{
	static const struct { const char *name; uint64_t bits; } names[] = {
		{ "mrg", 1ULL << VIRTIO_NET_F_MRG_RXBUF },
		{ "tso", 1ULL << VIRTIO_NET_F_HOST_TSO4 |
			 1ULL << VIRTIO_NET_F_HOST_TSO6 |
			 1ULL << VIRTIO_NET_F_GUEST_TSO4 |
			 1ULL << VIRTIO_NET_F_GUEST_TSO6 },
		{ "csum", 1ULL << VIRTIO_NET_F_CSUM |
			  1ULL << VIRTIO_NET_F_GUEST_CSUM },
		{ "event_idx", 1ULL << VIRTIO_F_EVENT_IDX },
	};
	char val[128];
	uint64_t off = 0;

	if (cmdline_get("vmmtest.net_off", 0, val, sizeof(val)) < 0)
		return 0;
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++) {
		size_t n = strlen(names[i].name);

		for (const char *p = val; *p;) {
			if (!strncmp(p, names[i].name, n) &&
			    (p[n] == ',' || !p[n]))
				off |= names[i].bits;
			while (*p && *p != ',')
				p++;
			if (*p)
				p++;
		}
	}
	return off;
}

static int dev_init(struct net_dev *d)
{
	struct virtio_dev *v = &d->v;
	uint64_t want, off = features_off();
	uint32_t rxbuf;

	d->ok = false;
	/* TSO needs the checksum offloads; big receive frames without
	 * MRG_RXBUF would need 64 KiB buffers: not offered then */
	if (off & (1ULL << VIRTIO_NET_F_CSUM))
		off |= 1ULL << VIRTIO_NET_F_HOST_TSO4 |
		       1ULL << VIRTIO_NET_F_HOST_TSO6 |
		       1ULL << VIRTIO_NET_F_GUEST_TSO4 |
		       1ULL << VIRTIO_NET_F_GUEST_TSO6;
	if (off & (1ULL << VIRTIO_NET_F_MRG_RXBUF))
		off |= 1ULL << VIRTIO_NET_F_GUEST_TSO4 |
		       1ULL << VIRTIO_NET_F_GUEST_TSO6;
	want = 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_MTU |
	       1ULL << VIRTIO_NET_F_STATUS | 1ULL << VIRTIO_NET_F_CSUM |
	       1ULL << VIRTIO_NET_F_GUEST_CSUM |
	       1ULL << VIRTIO_NET_F_HOST_TSO4 | 1ULL << VIRTIO_NET_F_HOST_TSO6 |
	       1ULL << VIRTIO_NET_F_GUEST_TSO4 |
	       1ULL << VIRTIO_NET_F_GUEST_TSO6 |
	       1ULL << VIRTIO_NET_F_MRG_RXBUF | 1ULL << VIRTIO_F_EVENT_IDX;
	if (virtio_negotiate(v, want & ~off) < 0)
		return -1;
	for (unsigned i = 0; i < 6; i++)
		d->mac[i] = virtio_has(v, VIRTIO_NET_F_MAC) ?
			    virtio_cfg8(v, i) : (uint8_t)(i ? 0x10 + i : 0x02);
	d->mtu = virtio_has(v, VIRTIO_NET_F_MTU) ? virtio_cfg16(v, 10) : 1500;
	d->max_pairs = virtio_cfg16(v, 8);
	if (virtq_setup(v, &d->rx, 0, NET_QUEUE_WANT) < 0 ||
	    virtq_setup(v, &d->tx, 1, NET_QUEUE_WANT) < 0)
		return -1;
	rxbuf = virtio_has(v, VIRTIO_NET_F_MRG_RXBUF) ? NET_RXBUF :
		(uint32_t)ALIGN_UP(d->mtu + 14 + 4 + NET_HDR_LEN, NET_RXBUF);
	if (!d->rx_mem || d->rxbuf != rxbuf) {
		d->rxbuf = rxbuf;
		d->rx_mem = alloc_bytes((uint64_t)rxbuf * d->rx.qsize);
		d->tx_busy = alloc_bytes(sizeof(bool) * d->tx.qsize);
		if (!d->rx_mem || !d->tx_busy)
			return virtio_fail(v, "out of memory for buffers");
	}
	memset(d->tx_busy, 0, sizeof(bool) * d->tx.qsize);
	d->tx_inflight = 0;
	d->tx_mem = NULL;
	/* every receive buffer to the device before DRIVER_OK */
	for (uint16_t i = 0; i < d->rx.qsize; i++) {
		d->rx.desc[i] = (struct vring_desc){
			(uint64_t)(d->rx_mem + (uint64_t)i * rxbuf), rxbuf,
			VRING_DESC_F_WRITE, 0 };
		virtq_add(&d->rx, i);
	}
	d->rx_posted = d->rx.qsize;
	virtio_driver_ok(v);
	virtq_kick(&d->rx);
	d->ok = true;
	return 0;
}

int net_reinit(struct net_dev *d)
{
	return dev_init(d);
}

uint16_t net_link_status(struct net_dev *d)
{
	return virtio_has(&d->v, VIRTIO_NET_F_STATUS) ? virtio_cfg16(&d->v, 6) :
	       VIRTIO_NET_S_LINK_UP;
}

unsigned net_probe(void)
{
	static struct virtio_dev found[MAX_NET];

	if (probed)
		return nnet;
	probed = true;
	nnet = virtio_find(VIRTIO_ID_NET, found, MAX_NET);
	for (unsigned i = 0; i < nnet; i++) {
		struct net_dev *d = &net_devs[i];

		d->v = found[i];
		d->index = i;
		d->spin_us = NET_SPIN_POLL;
		if (dev_init(d) < 0)
			kprintf("virtio-net %u at %#lx: %s\n", i, d->v.base,
				d->v.why);
	}
	if (nnet)
		kprintf("virtio-net: %u device%s\n", nnet, nnet == 1 ? "" : "s");
	return nnet;
}

struct net_dev *net_get(unsigned index)
{
	net_probe();
	return index < nnet ? &net_devs[index] : NULL;
}

/* --- TX --- */

void net_tx_slots(struct net_dev *d, uint8_t *mem, uint32_t slot_bytes)
{
	d->tx_mem = mem;
	d->tx_slot = slot_bytes;
}

int net_tx_queue(struct net_dev *d, unsigned i, uint32_t len)
{
	if (i >= d->tx.qsize || d->tx_busy[i] || !d->tx_mem ||
	    len + NET_HDR_LEN > d->tx_slot)
		return -1;
	/* one descriptor: header and frame together (VERSION_1 implies
	 * any layout) */
	d->tx.desc[i] = (struct vring_desc){ (uint64_t)net_tx_slot(d, i),
					     len + NET_HDR_LEN, 0, 0 };
	d->tx_busy[i] = true;
	d->tx_inflight++;
	virtq_add(&d->tx, (uint16_t)i);
	return 0;
}

void net_tx_kick(struct net_dev *d)
{
	virtq_kick(&d->tx);
}

unsigned net_tx_reclaim(struct net_dev *d)
{
	uint32_t id, len;
	unsigned n = 0;

	while (virtq_get_used(&d->tx, &id, &len)) {
		if (id >= d->tx.qsize || !d->tx_busy[id]) {
			kprintf("virtio-net %u: TX used id %u not in flight\n",
				d->index, id);
			continue;
		}
		d->tx_busy[id] = false;
		d->tx_inflight--;
		n++;
	}
	if (n)
		virtq_suppress_irq(&d->tx);
	d->tx_frames += n;
	return n;
}

/* --- RX --- */

int net_rx_next(struct net_dev *d, struct net_frame *f)
{
	struct virtq *q = &d->rx;
	uint16_t visible = (uint16_t)(READ_ONCE(q->used_hdr[1]) - q->last_used);
	uint32_t id, len, nb = 1;

	if (!visible)
		return 0;
	barrier();
	id = q->used_ring[2 * (q->last_used % q->qsize)];
	if (id >= q->qsize)
		return -1;
	if (virtio_has(&d->v, VIRTIO_NET_F_MRG_RXBUF)) {
		struct virtio_net_hdr *h = (void *)(d->rx_mem +
						    (uint64_t)id * d->rxbuf);

		nb = h->num_buffers;
		if (nb == 0 || nb > NET_MAX_SEGS)
			return -1;
	}
	if (visible < nb)
		return 0;
	f->nseg = 0;
	f->total = 0;
	for (uint32_t i = 0; i < nb; i++) {
		virtq_get_used(q, &id, &len);
		if (id >= q->qsize || len > d->rxbuf)
			return -1;
		f->seg[i] = d->rx_mem + (uint64_t)id * d->rxbuf;
		f->len[i] = len;
		f->desc[i] = (uint16_t)id;
		f->total += len;
		f->nseg++;
	}
	d->rx_posted -= (uint16_t)nb;
	virtq_suppress_irq(q);
	d->rx_frames++;
	return f->total >= NET_HDR_LEN ? 1 : -1;
}

void net_rx_done(struct net_dev *d, const struct net_frame *f)
{
	for (unsigned i = 0; i < f->nseg; i++)
		virtq_add(&d->rx, f->desc[i]);
	d->rx_posted += (uint16_t)f->nseg;
}

void net_rx_kick(struct net_dev *d)
{
	virtq_kick(&d->rx);
}

uint32_t net_frame_copy(const struct net_frame *f, uint32_t off, void *out,
			uint32_t len)
{
	uint8_t *o = out;
	uint32_t done = 0;

	for (unsigned i = 0; i < f->nseg && done < len; i++) {
		uint32_t k;

		if (off >= f->len[i]) {
			off -= f->len[i];
			continue;
		}
		k = f->len[i] - off < len - done ? f->len[i] - off : len - done;
		memcpy(o + done, f->seg[i] + off, k);
		done += k;
		off = 0;
	}
	return done;
}

/* --- waiting --- */

void net_set_wait(struct net_dev *d, uint64_t spin_us)
{
	bool irq = spin_us != NET_SPIN_POLL;

	d->spin_us = spin_us;
	if (irq != d->use_irq)
		virtio_halt_mode(&d->v, irq);
	d->use_irq = irq;
}

void net_wait(struct net_dev *d)
{
	struct virtq *const qs[] = { &d->rx, &d->tx };

	if (!d->use_irq) {
		cpu_relax();
		return;
	}
	virtq_wait_used(qs, 2, d->tx_inflight > 0 ? 3 : 1, d->spin_us);
}
