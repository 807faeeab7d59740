/* guest/kernel/virtio_vsock.c - virtio-vsock (virtio 1.2, 5.10), driver
 * side, on the transport of virtio.c.  See virtio_vsock.h.
 *
 * Rings: rx holds RXBUFS buffers of one descriptor each (header + 64 KiB),
 * given back as soon as a packet is handled; tx packets are a header slot
 * (indexed by the chain's head) plus, for data, a second descriptor that
 * points at the sender's bytes (no copy) or at a copy slot of the head.
 * Notifies follow the device's EVENT_IDX wishes (virtq_kick); interrupts
 * stay suppressed unless vsock_wait() arms one.
 */
#include "virtio_vsock.h"

#define QSIZE		256
#define RXBUFS		64
#define RXBUF_PAGES	17		/* header + 64 KiB payload */
#define TXCOPY		8192		/* bytes of a copied packet */
#define EVBUFS		4

static struct vsock_dev dev;
struct vsock_dev *vsock;

static uint8_t *rxbuf[QSIZE];		/* by descriptor index */
static struct vsock_hdr *txhdr;		/* [QSIZE], by head */
static uint8_t *txcopy;			/* [QSIZE][TXCOPY], by head */
static uint16_t tx_second[QSIZE];	/* the data descriptor, by head */
static uint8_t tx_ndesc[QSIZE];
static uint32_t *evbuf;
static uint16_t ev_desc[EVBUFS];
static bool irqs_on;
uint64_t vsock_spin_us = 50;	/* vsock_wait's spinning before a halt */

static void *alloc_bytes(uint64_t bytes)
{
	return page_alloc(ALIGN_UP(bytes, PAGE_SIZE) / PAGE_SIZE);
}

uint32_t vsock_status(void)
{
	return vsock ? virtio_status(&dev.v) : 0;
}

/* Every rx and event buffer to the device. */
static void post_buffers(void)
{
	for (unsigned i = 0; i < RXBUFS; i++) {
		uint16_t d;

		if (virtq_alloc_descs(&dev.rxq, 1, &d) < 0)
			break;
		if (!rxbuf[d])
			rxbuf[d] = page_alloc(RXBUF_PAGES);
		dev.rxq.desc[d] = (struct vring_desc){
			(uint64_t)rxbuf[d], VSOCK_HDR + VSOCK_MAX_PKT,
			VRING_DESC_F_WRITE, 0 };
		virtq_add(&dev.rxq, d);
	}
	for (unsigned i = 0; i < EVBUFS; i++) {
		if (virtq_alloc_descs(&dev.evq, 1, &ev_desc[i]) < 0)
			break;
		dev.evq.desc[ev_desc[i]] = (struct vring_desc){
			(uint64_t)&evbuf[i], 4, VRING_DESC_F_WRITE, 0 };
		virtq_add(&dev.evq, ev_desc[i]);
	}
}

static int start(void)
{
	uint64_t want = (1ULL << VIRTIO_F_VERSION_1) |
			(1ULL << VIRTIO_F_EVENT_IDX);

	dev.ok = false;
	if (virtio_negotiate(&dev.v, want) < 0 ||
	    virtq_setup(&dev.v, &dev.rxq, 0, QSIZE) < 0 ||
	    virtq_setup(&dev.v, &dev.txq, 1, QSIZE) < 0 ||
	    virtq_setup(&dev.v, &dev.evq, 2, EVBUFS * 2) < 0)
		return -1;
	if (!txhdr) {
		txhdr = alloc_bytes(sizeof(struct vsock_hdr) * QSIZE);
		txcopy = alloc_bytes((uint64_t)TXCOPY * QSIZE);
		evbuf = alloc_bytes(4 * EVBUFS);
		if (!txhdr || !txcopy || !evbuf)
			return virtio_fail(&dev.v, "out of memory");
	}
	post_buffers();
	dev.cid = virtio_cfg64(&dev.v, 0);
	memset(dev.conns, 0, sizeof(dev.conns));
	dev.next_port = 0x40000;
	virtio_driver_ok(&dev.v);
	virtq_kick(&dev.rxq);
	virtq_kick(&dev.evq);
	dev.ok = true;
	return 0;
}

void vsock_probe_all(void)
{
	if (virtio_find(VIRTIO_ID_VSOCK, &dev.v, 1) == 0)
		return;
	if (start() < 0) {
		kprintf("virtio-vsock: %s\n", dev.v.why);
		return;
	}
	vsock = &dev;
	kprintf("virtio-vsock: cid %lu, rx %u x %u bytes\n", dev.cid, RXBUFS,
		VSOCK_HDR + VSOCK_MAX_PKT);
}

int vsock_reinit(void)
{
	bool irq = irqs_on;

	vsock_irqs(false);
	/* same ring sizes, same descriptor numbers: the rx buffers are
	 * re-used (nothing is allocated inside a command) */
	if (start() < 0)
		return -1;
	vsock_irqs(irq);
	return 0;
}

/* ---- sending ---- */

static void fill_hdr(struct vsock_hdr *h, const struct vsock_conn *c,
		     uint16_t op, uint32_t len, uint32_t flags)
{
	*h = (struct vsock_hdr){
		.src_cid = dev.cid, .dst_cid = VSOCK_HOST_CID,
		.src_port = c->lport, .dst_port = c->pport, .len = len,
		.type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
		.buf_alloc = c->buf_alloc, .fwd_cnt = c->fwd_cnt,
	};
}

/* Queue one packet: header h, n bytes at p (copied into the head's slot
 * when copy).  0, or -1 when the ring is full. */
static int tx_packet(const struct vsock_hdr *h, const void *p, uint32_t n,
		     bool copy)
{
	uint16_t d[2];
	unsigned nd = n ? 2 : 1;

	if (virtq_alloc_descs(&dev.txq, nd, d) < 0) {
		vsock_poll();		/* take completions, then once more */
		if (virtq_alloc_descs(&dev.txq, nd, d) < 0)
			return -1;
	}
	txhdr[d[0]] = *h;
	dev.txq.desc[d[0]] = (struct vring_desc){ (uint64_t)&txhdr[d[0]],
		VSOCK_HDR, n ? VRING_DESC_F_NEXT : 0, n ? d[1] : 0 };
	if (n) {
		uint8_t *src = (uint8_t *)p;

		if (copy) {
			src = txcopy + (uint64_t)d[0] * TXCOPY;
			memcpy(src, p, n);
		}
		dev.txq.desc[d[1]] = (struct vring_desc){ (uint64_t)src, n, 0, 0 };
		tx_second[d[0]] = d[1];
	}
	tx_ndesc[d[0]] = (uint8_t)nd;
	virtq_add(&dev.txq, d[0]);
	return 0;
}

void vsock_flush(void)
{
	virtq_kick(&dev.txq);
}

bool vsock_tx_idle(void)
{
	return dev.txq.num_free == dev.txq.qsize;
}

int vsock_ctrl(struct vsock_conn *c, uint16_t op, uint32_t flags)
{
	struct vsock_hdr h;

	fill_hdr(&h, c, op, 0, flags);
	c->last_fwd_sent = c->fwd_cnt;
	return tx_packet(&h, NULL, 0, false);
}

int vsock_raw(const struct vsock_hdr *h, const void *p, uint32_t n)
{
	return tx_packet(h, p, n, n <= TXCOPY);
}

uint32_t vsock_credit(const struct vsock_conn *c)
{
	uint32_t used = c->tx_cnt - c->peer_fwd_cnt;

	return used >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - used;
}

uint32_t vsock_send(struct vsock_conn *c, const void *p, uint32_t n, bool copy)
{
	uint32_t max = vsock_credit(c);
	struct vsock_hdr h;

	if (c->state != VS_OPEN || c->peer_no_recv)
		return 0;
	if (max > VSOCK_MAX_PKT)
		max = VSOCK_MAX_PKT;
	if (copy && max > TXCOPY)
		max = TXCOPY;
	if (n > max)
		n = max;
	if (n == 0)
		return 0;
	fill_hdr(&h, c, VSOCK_OP_RW, n, 0);
	if (tx_packet(&h, p, n, copy) < 0)
		return 0;
	c->last_fwd_sent = c->fwd_cnt;
	c->tx_cnt += n;
	c->bytes_out += n;
	return n;
}

void vsock_consumed(struct vsock_conn *c, uint32_t n)
{
	c->fwd_cnt += n;
	/* the peer thinks we have buf_alloc - (rx_cnt - last_fwd_sent) */
	if (c->state == VS_OPEN && c->fwd_cnt != c->last_fwd_sent &&
	    c->rx_cnt - c->last_fwd_sent > c->buf_alloc / 2)
		vsock_ctrl(c, VSOCK_OP_CREDIT_UPDATE, 0);
}

static struct vsock_conn *conn_alloc(void)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (dev.conns[i].state == VS_FREE) {
			memset(&dev.conns[i], 0, sizeof(dev.conns[i]));
			return &dev.conns[i];
		}
	return NULL;
}

void vsock_free_conn(struct vsock_conn *c)
{
	c->state = VS_FREE;
}

struct vsock_conn *vsock_connect(uint32_t port, uint32_t buf_alloc)
{
	struct vsock_conn *c = conn_alloc();

	if (!c)
		return NULL;
	c->state = VS_CONNECTING;
	c->lport = dev.next_port++;
	c->pport = port;
	c->buf_alloc = buf_alloc;
	if (vsock_ctrl(c, VSOCK_OP_REQUEST, 0) < 0) {
		c->state = VS_FREE;
		return NULL;
	}
	vsock_flush();
	return c;
}

/* ---- receiving ---- */

static struct vsock_conn *find(uint32_t lport, uint32_t pport)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &dev.conns[i];

		if (c->state != VS_FREE && c->lport == lport && c->pport == pport)
			return c;
	}
	return NULL;
}

static void rst_reply(const struct vsock_hdr *h)
{
	struct vsock_hdr r = {
		.src_cid = dev.cid, .dst_cid = VSOCK_HOST_CID,
		.src_port = h->dst_port, .dst_port = h->src_port,
		.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST,
	};

	tx_packet(&r, NULL, 0, false);
}

static void handle(uint8_t *buf, uint32_t len)
{
	struct vsock_hdr *h = (struct vsock_hdr *)buf;
	struct vsock_conn *c;

	if (len < VSOCK_HDR || h->len > len - VSOCK_HDR ||
	    h->src_cid != VSOCK_HOST_CID || h->dst_cid != dev.cid ||
	    h->type != VSOCK_TYPE_STREAM) {
		dev.bad_pkts++;
		return;
	}
	c = find(h->dst_port, h->src_port);
	if (!c) {
		if (h->op == VSOCK_OP_REQUEST && dev.listen_port &&
		    h->dst_port == dev.listen_port && (c = conn_alloc())) {
			c->state = VS_OPEN;
			c->lport = h->dst_port;
			c->pport = h->src_port;
			c->peer_buf_alloc = h->buf_alloc;
			c->peer_fwd_cnt = h->fwd_cnt;
			c->buf_alloc = 256 * 1024;
			if (dev.on_accept)
				dev.on_accept(c);
			vsock_ctrl(c, VSOCK_OP_RESPONSE, 0);
		} else if (h->op == VSOCK_OP_RST) {
			dev.rsts_unknown++;
		} else {
			rst_reply(h);
		}
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		if (c->state == VS_CONNECTING)
			c->state = VS_OPEN;
		break;
	case VSOCK_OP_RST:
		if (c->state == VS_CONNECTING)
			c->refused = true;
		c->state = VS_CLOSED;
		break;
	case VSOCK_OP_SHUTDOWN:
		if (h->flags & VSOCK_SHUT_SEND)
			c->peer_no_send = true;
		if (h->flags & VSOCK_SHUT_RCV)
			c->peer_no_recv = true;
		break;
	case VSOCK_OP_RW:
		c->rx_cnt += h->len;
		c->bytes_in += h->len;
		if (c->on_data)
			c->on_data(c, buf + VSOCK_HDR, h->len);
		else
			vsock_consumed(c, h->len);
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		vsock_ctrl(c, VSOCK_OP_CREDIT_UPDATE, 0);
		break;
	default:
		break;
	}
}

unsigned vsock_poll(void)
{
	uint32_t id, len;
	unsigned n = 0, rx = 0;

	if (!vsock)
		return 0;
	while (virtq_get_used(&dev.txq, &id, &len)) {
		if (id < QSIZE && tx_ndesc[id]) {
			uint16_t d[2] = { (uint16_t)id, tx_second[id] };

			virtq_free_descs(&dev.txq, d, tx_ndesc[id]);
			tx_ndesc[id] = 0;
		}
		n++;
	}
	while (virtq_get_used(&dev.rxq, &id, &len)) {
		if (id < QSIZE && rxbuf[id]) {
			handle(rxbuf[id], len);
			virtq_add(&dev.rxq, (uint16_t)id);	/* the buffer again */
		}
		rx++;
	}
	while (virtq_get_used(&dev.evq, &id, &len)) {
		for (unsigned i = 0; i < EVBUFS; i++)
			if (ev_desc[i] == id && len >= 4 && evbuf[i] == 0)
				dev.events++;
		virtq_add(&dev.evq, (uint16_t)id);
		n++;
	}
	if (rx) {
		virtq_kick(&dev.rxq);
		virtq_suppress_irq(&dev.rxq);
	}
	virtq_kick(&dev.evq);
	vsock_flush();
	return n + rx;
}

void vsock_irqs(bool on)
{
	if (on != irqs_on)
		virtio_halt_mode(&dev.v, on);
	irqs_on = on;
}

void vsock_wait(void)
{
	struct virtq *const qs[] = { &dev.rxq, &dev.txq };
	uint64_t t0 = rdtsc(), spin = vsock_spin_us * tsc_khz / 1000;

	if (irqs_on) {
		virtq_wait_used(qs, 2, 3, vsock_spin_us);
		return;
	}
	while (rdtsc() - t0 < spin && !virtq_used_pending(&dev.rxq) &&
	       !virtq_used_pending(&dev.txq))
		cpu_relax();
}
