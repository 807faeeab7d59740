/* guest/kernel/cmd_vsock.c - vsock commands: echo server, bulk streams,
 * guest-initiated connections, hostile packets, reset. */
#include "virtio_vsock.h"

#define ECHO_RING	(256 * 1024)	/* = the buf_alloc we advertise */

static uint64_t ms_to_tsc(uint64_t ms)
{
	return ms * tsc_khz;
}

static int need_dev(struct cmd_args *a)
{
	if (!vsock)
		return fail_why(a, "no virtio-vsock device (--vsock)");
	if (!vsock->ok && vsock_reinit() < 0)
		return fail_why(a, "device does not start: %s", vsock->v.why);
	return 0;
}

/* Wait (polling the device) until done(arg) or timeout; 0 or -1. */
static int wait_for(bool (*done)(void *), void *arg, uint64_t ms)
{
	uint64_t t0 = rdtsc();

	for (;;) {
		vsock_poll();
		if (done(arg))
			return 0;
		if (rdtsc() - t0 > ms_to_tsc(ms))
			return -1;
		vsock_wait();
	}
}

static bool conn_settled(void *p)
{
	struct vsock_conn *c = p;

	return c->state != VS_CONNECTING;
}

static bool conn_closed(void *p)
{
	struct vsock_conn *c = p;

	return c->state == VS_CLOSED;
}

/* ---- vsockecho ---- */

struct echo {
	uint8_t *ring;
	uint32_t head, len;
	char first[4];
	unsigned nfirst;
	bool overflow;
};

static struct echo echoes[VSOCK_MAX_CONNS];
static uint8_t *echo_mem;

static void echo_data(struct vsock_conn *c, const uint8_t *p, uint32_t n)
{
	struct echo *e = c->owner;

	for (uint32_t i = 0; i < n && e->nfirst < 4; i++)
		e->first[e->nfirst++] = (char)p[i];
	if (e->len + n > ECHO_RING) {
		e->overflow = true;	/* the host broke our credit */
		return;
	}
	for (uint32_t i = 0; i < n;) {
		uint32_t tail = (e->head + e->len) % ECHO_RING;
		uint32_t k = ECHO_RING - tail < n - i ? ECHO_RING - tail : n - i;

		memcpy(e->ring + tail, p + i, k);
		e->len += k;
		i += k;
	}
}

static void echo_accept(struct vsock_conn *c)
{
	struct echo *e = &echoes[c - vsock->conns];

	e->ring = echo_mem + (uint64_t)(c - vsock->conns) * ECHO_RING;
	e->head = e->len = e->nfirst = 0;
	e->overflow = false;
	c->owner = e;
	c->on_data = echo_data;
	c->buf_alloc = ECHO_RING;
}

static int cmd_vsockecho(struct cmd_args *a)
{
	char pb[16];
	uint64_t port = 5000, tmo = arg_num(a, "timeout", 120), conns = 0,
		 bytes = 0, t0 = rdtsc();
	bool quit = false;

	if (need_dev(a))
		return -1;
	if (cmdline_get("vmmtest.vsock_port", 0, pb, sizeof(pb)) == 0 &&
	    parse_size(pb, &port) < 0)
		return fail_why(a, "bad vmmtest.vsock_port=%s", pb);
	port = arg_num(a, "port", port);
	if (port == UINT64_MAX || tmo == UINT64_MAX)
		return -1;
	echo_mem = page_alloc((uint64_t)VSOCK_MAX_CONNS * ECHO_RING / PAGE_SIZE);
	if (!echo_mem)
		return fail_why(a, "out of memory");
	vsock->listen_port = (uint32_t)port;
	vsock->on_accept = echo_accept;
	vsock_irqs(true);
	kprintf("vsockecho: listening on port %lu\n", port);
	while (!quit) {
		bool moved = vsock_poll() > 0;

		for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
			struct vsock_conn *c = &vsock->conns[i];
			struct echo *e = c->owner;

			if (c->state == VS_FREE || !e)
				continue;
			if (c->state == VS_OPEN && e->overflow) {
				vsock_ctrl(c, VSOCK_OP_RST, 0);
				c->state = VS_CLOSED;
			}
			while (c->state == VS_OPEN && e->len && !c->peer_no_recv) {
				uint32_t k = ECHO_RING - e->head < e->len ?
					     ECHO_RING - e->head : e->len;
				uint32_t s = vsock_send(c, e->ring + e->head, k, true);

				if (!s)
					break;
				e->head = (e->head + s) % ECHO_RING;
				e->len -= s;
				vsock_consumed(c, s);
				moved = true;
			}
			if (c->state == VS_OPEN && c->peer_no_recv) {
				/* the host closed: nothing more to say */
				vsock_ctrl(c, VSOCK_OP_RST, 0);
				c->state = VS_CLOSED;
			} else if (c->state == VS_OPEN && c->peer_no_send &&
				   !e->len && !c->we_shut) {
				/* all echoed: we are done too; the device
				 * answers with RST */
				vsock_ctrl(c, VSOCK_OP_SHUTDOWN,
					   VSOCK_SHUT_RCV | VSOCK_SHUT_SEND);
				c->we_shut = true;
			}
			if (c->state == VS_CLOSED) {
				conns++;
				bytes += c->bytes_out;
				if (e->nfirst == 4 && !memcmp(e->first, "quit", 4))
					quit = true;
				c->owner = NULL;
				vsock_free_conn(c);
				moved = true;
			}
		}
		vsock_flush();
		if (rdtsc() - t0 > tmo * 1000 * tsc_khz) {
			vsock->listen_port = 0;
			vsock_irqs(false);
			return fail_why(a, "no quit within %lu s (%lu connections)",
					tmo, conns);
		}
		if (!moved)
			vsock_wait();
	}
	vsock->listen_port = 0;
	vsock->on_accept = NULL;
	vsock_irqs(false);
	kprintf("VSOCKECHO connections=%lu bytes=%lu\n", conns, bytes);
	return 0;
}

/* ---- vsockconnect ---- */

static char reply[256];
static unsigned reply_len;

static void keep_reply(struct vsock_conn *c, const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i < n && reply_len < sizeof(reply) - 1; i++)
		reply[reply_len++] = (char)p[i];
	vsock_consumed(c, n);
}

static bool peer_done(void *p)
{
	struct vsock_conn *c = p;

	return c->peer_no_send || c->state == VS_CLOSED;
}

static int cmd_vsockconnect(struct cmd_args *a)
{
	static const char hello[] = "hello from the test kernel\n";
	uint64_t port = arg_num(a, "port", 5001),
		 refused = arg_num(a, "refused", 5002);
	struct vsock_conn *c;

	if (need_dev(a))
		return -1;
	if (port == UINT64_MAX || refused == UINT64_MAX)
		return -1;
	vsock_irqs(true);
	c = vsock_connect((uint32_t)port, 65536);
	if (!c || wait_for(conn_settled, c, 5000) < 0 || c->state != VS_OPEN) {
		vsock_irqs(false);
		return fail_why(a, "connection to host port %lu %s", port,
				c && c->refused ? "refused" : "timed out");
	}
	reply_len = 0;
	c->on_data = keep_reply;
	vsock_send(c, hello, sizeof(hello) - 1, true);
	vsock_ctrl(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUT_SEND);
	vsock_flush();
	if (wait_for(peer_done, c, 5000) < 0) {
		vsock_irqs(false);
		return fail_why(a, "the host never closed port %lu", port);
	}
	reply[reply_len] = 0;
	kprintf("vsockconnect: port %lu answered %u bytes: %s", port, reply_len,
		reply);
	vsock_ctrl(c, VSOCK_OP_RST, 0);
	vsock_free_conn(c);
	if (reply_len != sizeof(hello) - 1 || memcmp(reply, hello, reply_len)) {
		vsock_irqs(false);
		return fail_why(a, "the echo differs");
	}
	/* nobody at PATH_refused: the device resets our request */
	c = vsock_connect((uint32_t)refused, 65536);
	if (!c || wait_for(conn_settled, c, 5000) < 0 || !c->refused) {
		vsock_irqs(false);
		return fail_why(a, "connection to host port %lu was not refused",
				refused);
	}
	vsock_free_conn(c);
	vsock_irqs(false);
	kprintf("vsockconnect: port %lu refused (RST), as it should\n", refused);
	return 0;
}

/* ---- vsockperf ---- */

static uint64_t sink_bytes;

static void sink(struct vsock_conn *c, const uint8_t *p, uint32_t n)
{
	(void)p;
	sink_bytes += n;
	vsock_consumed(c, n);
}

static void perf_line(const char *dir, uint64_t bytes, uint64_t tsc,
		      uint64_t exits)
{
	uint64_t us = tsc_us(tsc);
	uint64_t mbps_x1000 = us ? bytes * 1000 / us : 0;	/* MB/s x 1000 */
	uint64_t epm_x1000 = bytes ? exits * 1000000ULL * 1000 / bytes : 0;

	kprintf("VSOCKPERF {\"dir\":\"%s\",\"bytes\":%lu,\"usec\":%lu,"
		"\"MBps\":%lu.%03lu,\"exits_per_MB\":%lu.%03lu}\n", dir, bytes,
		us, mbps_x1000 / 1000, mbps_x1000 % 1000, epm_x1000 / 1000,
		epm_x1000 % 1000);
}

static uint64_t exits(void)
{
	return vsock->v.notifies + 2 * vsock->v.irqs;
}

static int cmd_vsockperf(struct cmd_args *a)
{
	static uint8_t chunk[VSOCK_MAX_PKT] __attribute__((aligned(4096)));
	uint64_t port = arg_num(a, "port", 5001),
		 size = arg_num(a, "size", 256ULL << 20), sent = 0, t0, e0,
		 spin = arg_num(a, "spin", 200);
	char line[48];
	struct vsock_conn *c;
	int n;

	if (need_dev(a))
		return -1;
	if (port == UINT64_MAX || size == UINT64_MAX || spin == UINT64_MAX)
		return -1;
	/* a stream's next packet is due in microseconds: spin rather than
	 * pay for an interrupt (two exits) */
	vsock_spin_us = spin;
	for (unsigned i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 7);
	vsock_irqs(true);

	/* guest -> host: "recv SIZE\n", then SIZE bytes, until the host has
	 * read them all and closed */
	c = vsock_connect((uint32_t)port, 65536);
	if (!c || wait_for(conn_settled, c, 5000) < 0 || c->state != VS_OPEN) {
		vsock_irqs(false);
		return fail_why(a, "no host listener on port %lu (PATH_%lu)",
				port, port);
	}
	n = ksnprintf(line, sizeof(line), "recv %lu\n", size);
	vsock_send(c, line, (uint32_t)n, true);
	t0 = rdtsc();
	e0 = exits();
	while (sent < size) {
		uint64_t k = size - sent < sizeof(chunk) ? size - sent : sizeof(chunk);
		uint32_t s = vsock_send(c, chunk, (uint32_t)k, false);

		if (c->state != VS_OPEN)
			break;
		sent += s;
		/* credit updates are picked up as they come (reading the
		 * used index costs no exit), so the window never runs dry
		 * while the device has room */
		if (!vsock_poll() && !s)
			vsock_wait();
	}
	vsock_ctrl(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUT_SEND);
	vsock_flush();
	if (sent < size || wait_for(peer_done, c, 60000) < 0) {
		vsock_irqs(false);
		return fail_why(a, "guest->host stream stopped after %lu of %lu "
				"bytes", sent, size);
	}
	perf_line("guest_to_host", size, rdtsc() - t0, exits() - e0);
	vsock_ctrl(c, VSOCK_OP_RST, 0);
	vsock_free_conn(c);

	/* host -> guest: "send SIZE\n", then count until the host closes */
	c = vsock_connect((uint32_t)port, 4U << 20);
	if (!c || wait_for(conn_settled, c, 5000) < 0 || c->state != VS_OPEN) {
		vsock_irqs(false);
		return fail_why(a, "second connection to port %lu failed", port);
	}
	sink_bytes = 0;
	c->on_data = sink;
	n = ksnprintf(line, sizeof(line), "send %lu\n", size);
	vsock_send(c, line, (uint32_t)n, true);
	vsock_flush();
	t0 = rdtsc();
	e0 = exits();
	if (wait_for(peer_done, c, 60000) < 0 || sink_bytes != size) {
		vsock_irqs(false);
		return fail_why(a, "host->guest stream: %lu of %lu bytes",
				sink_bytes, size);
	}
	perf_line("host_to_guest", size, rdtsc() - t0, exits() - e0);
	vsock_ctrl(c, VSOCK_OP_RST, 0);
	vsock_free_conn(c);
	vsock_flush();
	vsock_irqs(false);
	vsock_spin_us = 50;
	return 0;
}

/* ---- vsockhostile ---- */

static uint64_t want_rsts;

static bool rsts_arrived(void *p)
{
	(void)p;
	return vsock->rsts_unknown >= want_rsts;
}

static int cmd_vsockhostile(struct cmd_args *a)
{
	uint64_t port = arg_num(a, "port", 5001);
	struct vsock_hdr h = {
		.dst_cid = VSOCK_HOST_CID, .src_port = 7000, .dst_port = 7001,
		.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW,
	}, b;
	struct vsock_conn *c;
	uint64_t r0;
	static uint8_t junk[2 << 20];	/* twice the device's window */

	if (need_dev(a))
		return -1;
	if (port == UINT64_MAX)
		return -1;
	vsock_irqs(true);
	h.src_cid = vsock->cid;
	r0 = vsock->rsts_unknown;
	/* each malformed packet is answered with an RST */
	b = h; b.src_cid = 99; b.src_port = 7000; vsock_raw(&b, NULL, 0);
	b = h; b.op = 42; b.src_port = 7001; vsock_raw(&b, NULL, 0);
	b = h; b.type = 2; b.src_port = 7002; vsock_raw(&b, NULL, 0);
	b = h; b.len = 1000; b.src_port = 7003; vsock_raw(&b, "short", 5);
	b = h; b.dst_cid = 77; b.src_port = 7004; vsock_raw(&b, NULL, 0);
	b = h; b.len = 3; b.src_port = 7005; vsock_raw(&b, "abc", 3);
	/* a flood of requests to ports nobody listens on */
	for (unsigned i = 0; i < 300; i++) {
		b = h;
		b.op = VSOCK_OP_REQUEST;
		b.src_port = 8000 + i;
		b.dst_port = 60000 + i;
		while (vsock_raw(&b, NULL, 0) < 0) {
			vsock_flush();
			vsock_poll();
		}
	}
	vsock_flush();
	want_rsts = r0 + 306;
	if (wait_for(rsts_arrived, NULL, 10000) < 0) {
		vsock_irqs(false);
		return fail_why(a, "%lu of 306 malformed packets answered with RST",
				vsock->rsts_unknown - r0);
	}
	if (vsock_status() & VIRTIO_STATUS_NEEDS_RESET) {
		vsock_irqs(false);
		return fail_why(a, "device needs reset after per-packet errors");
	}
	/* a credit overrun on a real connection: RST for it */
	c = vsock_connect((uint32_t)port, 65536);
	if (!c || wait_for(conn_settled, c, 5000) < 0 || c->state != VS_OPEN) {
		vsock_irqs(false);
		return fail_why(a, "no host listener on port %lu", port);
	}
	/* twice the credit in one batch: the device sees it all before it
	 * can tell us of any progress */
	for (unsigned i = 0; i < sizeof(junk) / VSOCK_MAX_PKT; i++) {
		struct vsock_hdr d = h;

		d.src_port = c->lport;
		d.dst_port = c->pport;
		d.len = VSOCK_MAX_PKT;
		d.buf_alloc = 65536;
		if (vsock_raw(&d, junk + (uint64_t)i * VSOCK_MAX_PKT,
			      VSOCK_MAX_PKT) < 0) {
			vsock_irqs(false);
			return fail_why(a, "tx ring full");
		}
	}
	vsock_flush();
	if (wait_for(conn_closed, c, 5000) < 0) {
		vsock_irqs(false);
		return fail_why(a, "no RST after a credit overrun");
	}
	vsock_free_conn(c);
	/* and a normal connection still works */
	c = vsock_connect((uint32_t)port, 65536);
	if (!c || wait_for(conn_settled, c, 5000) < 0 || c->state != VS_OPEN) {
		vsock_irqs(false);
		return fail_why(a, "a connection after the hostile packets failed");
	}
	vsock_ctrl(c, VSOCK_OP_RST, 0);
	vsock_free_conn(c);
	vsock_flush();
	vsock_irqs(false);
	kprintf("vsockhostile: %lu RSTs for malformed packets, overrun reset, "
		"device fine\n", vsock->rsts_unknown - r0);
	return 0;
}

/* ---- vsockreset ---- */

static uint64_t want_events;

static bool event_arrived(void *p)
{
	(void)p;
	return vsock->events >= want_events;
}

static int cmd_vsockreset(struct cmd_args *a)
{
	if (need_dev(a))
		return -1;
	want_events = vsock->events + 1;
	if (vsock_reinit() < 0)
		return fail_why(a, "re-initialisation failed: %s", vsock->v.why);
	vsock_irqs(true);
	if (wait_for(event_arrived, NULL, 2000) < 0) {
		vsock_irqs(false);
		return fail_why(a, "no TRANSPORT_RESET event after the reset");
	}
	vsock_irqs(false);
	kprintf("vsockreset: TRANSPORT_RESET received, cid %lu\n", vsock->cid);
	return 0;
}

const struct command vsock_commands[] = {
	{ "vsockecho", cmd_vsockecho, "[port=5000:timeout=120] echo every connection's bytes; ends after a connection that sent quit" },
	{ "vsockconnect", cmd_vsockconnect, "[port=5001:refused=5002] connect to a host listener (echo expected); a port nobody listens on is refused" },
	{ "vsockperf", cmd_vsockperf, "[port=5001:size=256M:spin=200] bulk guest->host and host->guest through the host listener at PATH_port" },
	{ "vsockhostile", cmd_vsockhostile, "[port=5001] malformed packets, a request flood, a credit overrun: RSTs, device fine" },
	{ "vsockreset", cmd_vsockreset, "reset the device: TRANSPORT_RESET arrives on the event queue" },
	{ NULL, NULL, NULL },
};
