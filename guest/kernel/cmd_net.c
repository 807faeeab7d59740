/* guest/kernel/cmd_net.c - network commands (see README.md): netinfo,
 * netping (ARP + ICMP echo to the host), netperf (bulk test frames of
 * guest/common/netframe.h to or from tools/netio on the host). */
#include "virtio_net.h"
#include "guest/common/netframe.h"

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* wait=hybrid|irq|poll, spin=US (default spin0) */
static int wait_arg(struct cmd_args *a, struct net_dev *d, uint64_t spin0)
{
	char buf[16];
	const char *w = arg_str(a, "wait", "hybrid", buf, sizeof(buf));
	uint64_t spin = arg_num(a, "spin", spin0);

	if (spin == UINT64_MAX)
		return -1;
	if (!strcmp(w, "poll"))
		spin = NET_SPIN_POLL;
	else if (!strcmp(w, "irq"))
		spin = 0;
	else if (strcmp(w, "hybrid"))
		return fail_why(a, "wait must be poll, irq or hybrid");
	net_set_wait(d, spin);
	return 0;
}

/* dev=N; waits: also wait= and spin= (default spin0 us) */
static struct net_dev *dev_arg(struct cmd_args *a, bool waits, uint64_t spin0)
{
	uint64_t n = arg_num(a, "dev", 0);
	struct net_dev *d;

	if (n == UINT64_MAX)
		return NULL;
	d = net_get((unsigned)n);
	if (!d) {
		fail_why(a, "no virtio-net device %lu (%u found)", n, nnet);
		return NULL;
	}
	if (!d->ok && net_reinit(d) < 0) {
		fail_why(a, "device %lu unusable: %s", n, d->v.why);
		return NULL;
	}
	if (waits && wait_arg(a, d, spin0) < 0)
		return NULL;
	return d;
}

static void done_with(struct net_dev *d)
{
	if (d)
		net_set_wait(d, NET_SPIN_POLL);
}

static const char *fix3(char *buf, size_t len, uint64_t x1000)
{
	ksnprintf(buf, len, "%lu.%03lu", x1000 / 1000, x1000 % 1000);
	return buf;
}

static const char *mac_str(char *buf, size_t len, const uint8_t m[6])
{
	ksnprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
		  m[3], m[4], m[5]);
	return buf;
}

/* netinfo[:dev=N] - every device unless dev= is given */
static int cmd_netinfo(struct cmd_args *a)
{
	char tmp[8], mac[24];
	unsigned from = 0, to;

	if (arg_str(a, "dev", NULL, tmp, sizeof(tmp))) {
		struct net_dev *d = dev_arg(a, false, 0);

		if (!d)
			return -1;
		from = d->index;
		to = from + 1;
	} else {
		to = net_probe();
		if (!to)
			return fail_why(a, "no virtio-net devices");
	}
	for (unsigned i = from; i < to; i++) {
		struct net_dev *d = &net_devs[i];

		if (!d->ok)
			return fail_why(a, "device %u unusable: %s", i,
					d->v.why);
		kprintf("netinfo: dev=%u base=%#lx irq=%u mac=%s mtu=%u "
			"link=%s queue=%u max_pairs=%u mrg=%d csum=%d tso=%d "
			"guest_tso=%d event_idx=%d features=%#lx\n",
			i, d->v.base, d->v.irq,
			mac_str(mac, sizeof(mac), d->mac), d->mtu,
			net_link_status(d) & VIRTIO_NET_S_LINK_UP ? "up" : "down",
			d->rx.qsize, d->max_pairs,
			virtio_has(&d->v, VIRTIO_NET_F_MRG_RXBUF),
			virtio_has(&d->v, VIRTIO_NET_F_CSUM),
			virtio_has(&d->v, VIRTIO_NET_F_HOST_TSO4),
			virtio_has(&d->v, VIRTIO_NET_F_GUEST_TSO4),
			virtio_has(&d->v, VIRTIO_F_EVENT_IDX), d->v.features);
	}
	return 0;
}

/* --- a little IPv4 --- */

static int parse_ip4(const char *s, uint8_t ip[4], const char **end)
{
	for (int i = 0; i < 4; i++) {
		unsigned v = 0, n = 0;

		while (*s >= '0' && *s <= '9' && n < 4) {
			v = v * 10 + (unsigned)(*s++ - '0');
			n++;
		}
		if (!n || v > 255 || (i < 3 && *s++ != '.'))
			return -1;
		ip[i] = (uint8_t)v;
	}
	*end = s;
	return 0;
}

/* vmmtest.net=A.B.C.D/P,gw=E.F.G.H: our address and the peer (gw) */
static int net_config(struct cmd_args *a, uint8_t me[4], uint8_t gw[4])
{
	char val[64], buf[20];
	const char *p, *to;

	if (cmdline_get("vmmtest.net", 0, val, sizeof(val)) < 0)
		return fail_why(a, "no vmmtest.net=ADDR/PREFIX,gw=ADDR on the "
				"command line");
	if (parse_ip4(val, me, &p) < 0 || *p != '/')
		return fail_why(a, "vmmtest.net=%s: bad address", val);
	while (*p && *p != ',')
		p++;
	if (strncmp(p, ",gw=", 4) || parse_ip4(p + 4, gw, &p) < 0)
		return fail_why(a, "vmmtest.net=%s: no gw=ADDR", val);
	/* to=ADDR: ping someone else on the link */
	to = arg_str(a, "to", NULL, buf, sizeof(buf));
	if (to && (parse_ip4(to, gw, &p) < 0 || *p))
		return fail_why(a, "to=%s: not an IPv4 address", to);
	return 0;
}

static uint16_t ip_csum(const uint8_t *p, uint32_t len)
{
	uint32_t s = 0;

	for (uint32_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	return (uint16_t)~netframe_csum_fold(s);
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

struct ping {
	struct net_dev *d;
	uint8_t me[4], peer[4], peer_mac[6];
	bool have_mac;
	unsigned next_slot;
	uint16_t id, want_seq;
	bool got_reply;
	uint64_t bad;
	bool serve;			/* netserve: answer echo requests */
	uint64_t answered, serve_until;
};

static bool served_enough(struct ping *p)
{
	return p->answered >= p->serve_until;
}

/* A slot to build a frame in (reclaiming, waiting a little if needed). */
static uint8_t *tx_frame(struct ping *p, unsigned *slot)
{
	struct net_dev *d = p->d;

	for (int i = 0; i < 100000 && d->tx_busy[p->next_slot]; i++) {
		net_tx_reclaim(d);
		if (d->tx_busy[p->next_slot])
			net_wait(d);
	}
	if (d->tx_busy[p->next_slot])
		return NULL;
	*slot = p->next_slot;
	p->next_slot = (p->next_slot + 1) % d->tx.qsize;
	memset(net_tx_slot(d, *slot), 0, NET_HDR_LEN);
	return net_tx_slot(d, *slot) + NET_HDR_LEN;
}

static int send_arp(struct ping *p, uint16_t op, const uint8_t *tha,
		    const uint8_t *tpa)
{
	unsigned slot;
	uint8_t *f = tx_frame(p, &slot);

	if (!f)
		return -1;
	memset(f, 0, 60);
	memcpy(f, op == 1 ? bcast : tha, 6);
	memcpy(f + 6, p->d->mac, 6);
	f[12] = 0x08, f[13] = 0x06;
	f[15] = 1;			/* Ethernet */
	f[16] = 0x08;			/* IPv4 */
	f[18] = 6, f[19] = 4;
	f[21] = (uint8_t)op;
	memcpy(f + 22, p->d->mac, 6);
	memcpy(f + 28, p->me, 4);
	if (op == 2)
		memcpy(f + 32, tha, 6);
	memcpy(f + 38, tpa, 4);
	if (net_tx_queue(p->d, slot, 60) < 0)
		return -1;
	net_tx_kick(p->d);
	return 0;
}

#define PING_DATA	56

static int send_echo(struct ping *p, uint16_t seq)
{
	unsigned slot, len = 14 + 20 + 8 + PING_DATA;
	uint8_t *f = tx_frame(p, &slot), *ip, *icmp;

	if (!f)
		return -1;
	memcpy(f, p->peer_mac, 6);
	memcpy(f + 6, p->d->mac, 6);
	f[12] = 0x08, f[13] = 0x00;
	ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	netframe_put_be16(ip + 2, (uint16_t)(len - 14));
	netframe_put_be16(ip + 4, seq);
	ip[8] = 64;
	ip[9] = 1;			/* ICMP */
	memcpy(ip + 12, p->me, 4);
	memcpy(ip + 16, p->peer, 4);
	netframe_put_be16(ip + 10, ip_csum(ip, 20));
	icmp = ip + 20;
	memset(icmp, 0, 8);
	icmp[0] = 8;			/* echo request */
	netframe_put_be16(icmp + 4, p->id);
	netframe_put_be16(icmp + 6, seq);
	pattern_fill(icmp + 8, seq, 0, PING_DATA);
	netframe_put_be16(icmp + 2, ip_csum(icmp, 8 + PING_DATA));
	if (net_tx_queue(p->d, slot, len) < 0)
		return -1;
	net_tx_kick(p->d);
	return 0;
}

/* Echo request to us: the same frame back with addresses swapped, type 0
 * and the checksums redone (any length up to a slot). */
static void answer_echo(struct ping *p, const struct net_frame *fr)
{
	uint32_t len = fr->total - NET_HDR_LEN, ip_len;
	unsigned slot;
	uint8_t *f, *ip, *icmp, tmp[6];

	if (len > 2048 - NET_HDR_LEN || len < 14 + 20 + 8)
		return;
	f = tx_frame(p, &slot);
	if (!f)
		return;
	net_frame_copy(fr, NET_HDR_LEN, f, len);
	ip = f + 14;
	ip_len = be16(ip + 2);
	if (ip_len < 28 || 14 + ip_len > len || ip_csum(ip, 20) != 0) {
		p->bad++;
		return;
	}
	memcpy(f, f + 6, 6);
	memcpy(f + 6, p->d->mac, 6);
	memcpy(tmp, ip + 12, 4);
	memcpy(ip + 12, ip + 16, 4);
	memcpy(ip + 16, tmp, 4);
	ip[8] = 64;
	ip[10] = ip[11] = 0;
	netframe_put_be16(ip + 10, ip_csum(ip, 20));
	icmp = ip + 20;
	icmp[0] = 0;
	icmp[2] = icmp[3] = 0;
	netframe_put_be16(icmp + 2, ip_csum(icmp, ip_len - 20));
	if (net_tx_queue(p->d, slot, 14 + ip_len) == 0) {
		net_tx_kick(p->d);
		p->answered++;
	}
}

/* Look at one received frame: ARP for us (answered), ARP reply from the
 * peer, echo reply (netserve: echo requests are answered). */
static void ping_rx(struct ping *p, const struct net_frame *fr)
{
	static uint8_t f[128];
	uint32_t n = net_frame_copy(fr, NET_HDR_LEN, f, sizeof(f));

	if (n < 42)
		return;
	if (f[12] == 0x08 && f[13] == 0x06 && be16(f + 14) == 1 &&
	    be16(f + 16) == 0x0800) {
		uint16_t op = be16(f + 20);

		if (op == 1 && !memcmp(f + 38, p->me, 4))
			send_arp(p, 2, f + 22, f + 28);
		else if (op == 2 && !memcmp(f + 28, p->peer, 4)) {
			memcpy(p->peer_mac, f + 22, 6);
			p->have_mac = true;
		}
		return;
	}
	if (p->serve && f[12] == 0x08 && f[13] == 0x00 && n >= 14 + 20 + 8 &&
	    f[14] == 0x45 && f[23] == 1 && !memcmp(f + 30, p->me, 4) &&
	    f[34] == 8) {
		answer_echo(p, fr);
		return;
	}
	if (f[12] == 0x08 && f[13] == 0x00 && n >= 14 + 20 + 8 + PING_DATA &&
	    (f[14] >> 4) == 4 && f[23] == 1 && !memcmp(f + 26, p->peer, 4) &&
	    !memcmp(f + 30, p->me, 4)) {
		uint32_t ihl = (f[14] & 15) * 4u;
		uint8_t *icmp = f + 14 + ihl;

		if (ihl < 20 || 14 + ihl + 8 + PING_DATA > n || icmp[0] != 0 ||
		    be16(icmp + 4) != p->id || be16(icmp + 6) != p->want_seq)
			return;
		if (pattern_check(icmp + 8, p->want_seq, 0, PING_DATA) !=
		    PING_DATA || ip_csum(icmp, 8 + PING_DATA) != 0) {
			p->bad++;
			return;
		}
		p->got_reply = true;
	}
}

/* Handle received frames until done() or timeout_us; true if done. */
static bool ping_until(struct ping *p, bool (*done)(struct ping *),
		       uint64_t timeout_us)
{
	uint64_t t0 = rdtsc();
	struct net_frame fr;

	while (!done(p)) {
		int r = net_rx_next(p->d, &fr);

		if (r < 0) {
			p->bad++;
			return false;
		}
		if (r > 0) {
			ping_rx(p, &fr);
			net_rx_done(p->d, &fr);
			net_rx_kick(p->d);
			continue;
		}
		net_tx_reclaim(p->d);
		if (tsc_us(rdtsc() - t0) > timeout_us)
			return false;
		net_wait(p->d);
	}
	return true;
}

static bool have_mac(struct ping *p)
{
	return p->have_mac;
}

static bool have_reply(struct ping *p)
{
	return p->got_reply;
}

/* What netping and netserve share: the device, vmmtest.net's addresses and
 * 2 KiB TX slots.  The device, or NULL when the command failed (args_ok
 * false: its arguments did not parse). */
static struct net_dev *ping_setup(struct cmd_args *a, struct ping *p,
				  bool args_ok)
{
	struct net_dev *d = dev_arg(a, true, NET_SPIN_DEFAULT);
	uint8_t *slots;

	memset(p, 0, sizeof(*p));
	if (!d || !args_ok || net_config(a, p->me, p->peer) < 0) {
		done_with(d);
		return NULL;
	}
	p->d = d;
	slots = page_alloc(d->tx.qsize / 2);
	if (!slots) {
		done_with(d);
		fail_why(a, "no memory for TX slots");
		return NULL;
	}
	net_tx_slots(d, slots, 2048);
	return d;
}

/* netping[:dev=N:count=3:timeout_ms=2000:to=ADDR] */
static int cmd_netping(struct cmd_args *a)
{
	static struct ping p;
	uint64_t count = arg_num(a, "count", 3);
	uint64_t tmo = arg_num(a, "timeout_ms", 2000);
	uint64_t rtt_min = UINT64_MAX, rtt_max = 0, rtt_sum = 0;
	struct net_dev *d = ping_setup(a, &p, count != UINT64_MAX &&
				       tmo != UINT64_MAX);
	char mac[24];
	int rc = 0;

	if (!d)
		return -1;
	p.id = (uint16_t)rdtsc();
	for (int tries = 0; tries < 4 && !p.have_mac; tries++) {
		if (send_arp(&p, 1, NULL, p.peer) < 0) {
			rc = fail_why(a, "cannot queue an ARP request");
			goto out;
		}
		ping_until(&p, have_mac, tmo * 1000 / 4);
	}
	if (!p.have_mac) {
		rc = fail_why(a, "no ARP reply from %u.%u.%u.%u", p.peer[0],
			      p.peer[1], p.peer[2], p.peer[3]);
		goto out;
	}
	for (uint64_t i = 1; i <= count; i++) {
		uint64_t t0 = rdtsc(), us;

		p.want_seq = (uint16_t)i;
		p.got_reply = false;
		if (send_echo(&p, (uint16_t)i) < 0) {
			rc = fail_why(a, "cannot queue an echo request");
			goto out;
		}
		if (!ping_until(&p, have_reply, tmo * 1000)) {
			rc = fail_why(a, "no echo reply %lu from %u.%u.%u.%u "
				      "within %lu ms", i, p.peer[0], p.peer[1],
				      p.peer[2], p.peer[3], tmo);
			goto out;
		}
		us = tsc_us(rdtsc() - t0);
		rtt_sum += us;
		rtt_min = us < rtt_min ? us : rtt_min;
		rtt_max = us > rtt_max ? us : rtt_max;
	}
	if (p.bad) {
		rc = fail_why(a, "%lu malformed replies", p.bad);
		goto out;
	}
	kprintf("netping: %lu/%lu replies from %u.%u.%u.%u (%s), rtt_us "
		"min=%lu avg=%lu max=%lu\n", count, count, p.peer[0],
		p.peer[1], p.peer[2], p.peer[3],
		mac_str(mac, sizeof(mac), p.peer_mac), count ? rtt_min : 0,
		count ? rtt_sum / count : 0, rtt_max);
out:
	/* no frame may stay queued from slots that are released now */
	for (int i = 0; i < 1000 && d->tx_inflight; i++) {
		net_tx_reclaim(d);
		udelay(100);
	}
	net_tx_slots(d, NULL, 0);
	done_with(d);
	return rc;
}

static bool never(struct ping *p)
{
	(void)p;
	return false;
}

/* netserve[:dev=N:seconds=10:pings=N] - answer ARP and ICMP echo for
 * vmmtest.net's address for a while (or until pings echo requests were
 * answered): the far end of another guest's netping. */
static int cmd_netserve(struct cmd_args *a)
{
	static struct ping p;
	uint64_t secs = arg_num(a, "seconds", 10);
	uint64_t pings = arg_num(a, "pings", 0);
	struct net_dev *d = ping_setup(a, &p, secs != UINT64_MAX &&
				       pings != UINT64_MAX);
	int rc = 0;

	if (!d)
		return -1;
	p.serve = true;
	p.serve_until = pings;
	ping_until(&p, pings ? served_enough : never, secs * 1000000);
	kprintf("netserve: answered %lu echo requests\n", p.answered);
	if (pings && p.answered < pings)
		rc = fail_why(a, "%lu of %lu echo requests within %lu s",
			      p.answered, pings, secs);
	for (int i = 0; i < 1000 && d->tx_inflight; i++) {
		net_tx_reclaim(d);
		udelay(100);
	}
	net_tx_slots(d, NULL, 0);
	done_with(d);
	return rc;
}

/* --- netperf --- */

#define NETPERF_SPIN	200

struct perf {
	struct net_dev *d;
	uint32_t frame;
	uint64_t seconds_us, count, seq0;
	bool full;
	uint64_t frames, lost, reordered, bad, next_seq;
};

static void perf_print(struct perf *p, const char *dir, uint64_t us,
		       uint64_t n0, uint64_t i0)
{
	struct net_dev *d = p->d;
	uint64_t notifies = d->v.notifies - n0, irqs = d->v.irqs - i0;
	uint64_t bits = p->frames * p->frame * 8;
	char s[24], g[24], e[24];

	if (!us)
		us = 1;
	kprintf("NETPERF {\"dev\":%u,\"dir\":\"%s\",\"frame\":%u,"
		"\"seconds\":%s,\"frames\":%lu,\"bytes\":%lu,\"gbps\":%s,"
		"\"fps\":%lu,\"notifies\":%lu,\"irqs\":%lu,"
		"\"exits_per_frame\":%s,\"lost\":%lu,\"reordered\":%lu,"
		"\"bad\":%lu,\"wait\":\"%s\"}\n",
		d->index, dir, p->frame, fix3(s, sizeof(s), us / 1000),
		p->frames, p->frames * p->frame,
		fix3(g, sizeof(g), bits / us), p->frames * 1000000 / us,
		notifies, irqs,
		fix3(e, sizeof(e), p->frames ?
		     (notifies + 2 * irqs) * 1000 / p->frames : 0),
		p->lost, p->reordered, p->bad,
		d->spin_us == NET_SPIN_POLL ? "poll" :
		d->spin_us ? "hybrid" : "irq");
}

static int perf_tx(struct cmd_args *a, struct perf *p)
{
	static const uint8_t host[6] = NETFRAME_HOST_MAC;
	struct net_dev *d = p->d;
	uint32_t slot_bytes = (uint32_t)ALIGN_UP(NET_HDR_LEN + p->frame, 64);
	bool tso = p->frame > NETFRAME_HDR_LEN + NETFRAME_MSS;
	uint64_t n0 = d->v.notifies, i0 = d->v.irqs, seq = p->seq0, t0, us;
	uint8_t *mem;

	if (tso && !virtio_has(&d->v, VIRTIO_NET_F_HOST_TSO4))
		return fail_why(a, "frame=%u needs HOST_TSO4 (not negotiated)",
				p->frame);
	if (!tso && p->frame > d->mtu + 14u)
		return fail_why(a, "frame=%u above the MTU %u", p->frame,
				d->mtu);
	mem = page_alloc(ALIGN_UP((uint64_t)slot_bytes * d->tx.qsize,
				  PAGE_SIZE) / PAGE_SIZE);
	if (!mem)
		return fail_why(a, "no memory for %u x %u-byte TX slots",
				d->tx.qsize, slot_bytes);
	net_tx_slots(d, mem, slot_bytes);
	/* every slot holds its frame; per frame only the tag is stamped */
	for (unsigned i = 0; i < d->tx.qsize; i++) {
		struct virtio_net_hdr *h = (void *)net_tx_slot(d, i);
		uint8_t *f = net_tx_slot(d, i) + NET_HDR_LEN;

		memset(h, 0, NET_HDR_LEN);
		if (tso) {
			h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
			h->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
			h->gso_size = NETFRAME_MSS;
			h->hdr_len = NETFRAME_HDR_LEN;
			h->csum_start = NETFRAME_CSUM_START;
			h->csum_offset = NETFRAME_CSUM_OFFSET;
		}
		netframe_headers(f, p->frame, host, d->mac);
		netframe_fill_payload(f, p->frame, i);
	}
	if (d->tx.qsize != NETFRAME_SLOTS)
		return fail_why(a, "TX queue of %u entries, want %u", d->tx.qsize,
				NETFRAME_SLOTS);
	t0 = rdtsc();
	for (;;) {
		bool queued = false;

		net_tx_reclaim(d);
		us = tsc_us(rdtsc() - t0);
		if (p->count ? seq - p->seq0 >= p->count : us >= p->seconds_us)
			break;
		while (d->tx_inflight < d->tx.qsize &&
		       (!p->count || seq - p->seq0 < p->count)) {
			unsigned i = (unsigned)(seq % d->tx.qsize);
			uint8_t *f = net_tx_slot(d, i) + NET_HDR_LEN;

			/* the payload depends on seq % 256 only: slot i
			 * holds it already */
			netframe_stamp(f, p->frame, seq);
			if (net_tx_queue(d, i, p->frame) < 0)
				break;
			seq++;
			queued = true;
		}
		if (queued)
			net_tx_kick(d);
		else
			net_wait(d);
		if (us > p->seconds_us + 30000000)
			return fail_why(a, "TX stalled");
	}
	/* the last frames leave before the slots go */
	while (d->tx_inflight && tsc_us(rdtsc() - t0) < p->seconds_us + 5000000) {
		if (!net_tx_reclaim(d))
			net_wait(d);
	}
	us = tsc_us(rdtsc() - t0);
	if (d->tx_inflight)
		return fail_why(a, "%u frames never completed", d->tx_inflight);
	p->frames = seq - p->seq0;
	perf_print(p, "tx", us, n0, i0);
	return 0;
}

/* Check one received frame against netframe.h; counts into p. */
static void perf_check(struct perf *p, const struct net_frame *fr)
{
	static uint8_t whole[NETFRAME_MAX + 64];
	uint8_t head[NETFRAME_MIN + 8], tail[8];
	uint32_t len = fr->total - NET_HDR_LEN;
	uint64_t seq;
	int r;

	if (p->full || fr->nseg == 1) {
		const uint8_t *f = fr->seg[0] + NET_HDR_LEN;

		if (fr->nseg > 1) {
			if (len > sizeof(whole))
				return;
			net_frame_copy(fr, NET_HDR_LEN, whole, len);
			f = whole;
		}
		r = netframe_check(f, len, p->full, &seq);
	} else {
		/* tag and the first and last 8 pattern bytes, gathered */
		if (len < sizeof(head) + sizeof(tail))
			return;
		net_frame_copy(fr, NET_HDR_LEN, head, sizeof(head));
		net_frame_copy(fr, NET_HDR_LEN + len - 8, tail, 8);
		/* head alone is short of the tag's length: 0 or -1 */
		r = netframe_check(head, sizeof(head), false, &seq);
		if (r != 0) {
			/* the tag's length is the whole frame's: check it */
			uint32_t tl = head[NETFRAME_HDR_LEN + 4] |
				      head[NETFRAME_HDR_LEN + 5] << 8 |
				      head[NETFRAME_HDR_LEN + 6] << 16 |
				      (uint32_t)head[NETFRAME_HDR_LEN + 7] << 24;
			uint64_t slot = seq % NETFRAME_SLOTS;

			r = tl == len &&
			    pattern_check(head + NETFRAME_MIN, slot, 0, 8) == 8 &&
			    pattern_check(tail, slot, len - NETFRAME_MIN - 8,
					  8) == 8 ? 1 : -1;
		}
	}
	if (r == 0 || len != p->frame)
		return;		/* not a test frame of this run */
	p->frames++;
	if (r < 0) {
		if (p->bad++ < 3)
			kprintf("netperf: bad frame seq %lu len %u\n", seq, len);
		return;
	}
	if (seq >= p->next_seq) {
		p->lost += seq - p->next_seq;
		p->next_seq = seq + 1;
	} else {
		p->reordered++;
	}
}

/* "Ready": one short test frame (seq ~0) to the host, which netio source
 * --sync waits for before it sends. */
static int send_hello(struct net_dev *d, unsigned n)
{
	static const uint8_t host[6] = NETFRAME_HOST_MAC;
	unsigned i = n % d->tx.qsize;
	uint8_t *f;

	if (!d->tx_mem) {
		uint8_t *mem = page_alloc(ALIGN_UP(128ULL * d->tx.qsize,
						   PAGE_SIZE) / PAGE_SIZE);

		if (!mem)
			return -1;
		net_tx_slots(d, mem, 128);
	}
	net_tx_reclaim(d);
	memset(net_tx_slot(d, i), 0, NET_HDR_LEN);
	f = net_tx_slot(d, i) + NET_HDR_LEN;
	netframe_headers(f, NETFRAME_MIN, host, d->mac);
	netframe_stamp(f, NETFRAME_MIN, UINT64_MAX);
	if (net_tx_queue(d, i, NETFRAME_MIN) < 0)
		return -1;
	net_tx_kick(d);
	return 0;
}

static int perf_rx(struct cmd_args *a, struct perf *p, uint64_t wait_us)
{
	struct net_dev *d = p->d;
	uint64_t n0 = d->v.notifies, i0 = d->v.irqs, t0 = rdtsc(), first = 0;
	uint64_t now, us = 0;
	struct net_frame fr;

	uint64_t hello_at = t0;
	unsigned hellos = 0;

	p->next_seq = p->seq0;
	if (send_hello(d, hellos++) < 0)
		return fail_why(a, "cannot send the ready frame");
	for (;;) {
		bool got = false;
		int r;

		while ((r = net_rx_next(d, &fr)) > 0) {
			uint64_t before = p->frames;

			perf_check(p, &fr);
			net_rx_done(d, &fr);
			if (p->frames != before && !first) {
				first = rdtsc();
				n0 = d->v.notifies;
				i0 = d->v.irqs;
			}
			got = true;
			if (p->count && p->frames >= p->count)
				break;
		}
		if (r < 0)
			return fail_why(a, "the device returned a malformed "
					"used entry");
		if (got)
			net_rx_kick(d);
		now = rdtsc();
		if (first) {
			us = tsc_us(now - first);
			if (p->count ? p->frames >= p->count :
			    us >= p->seconds_us)
				break;
			if (p->count && us > wait_us)
				return fail_why(a, "%lu of %lu frames within "
						"%lu ms", p->frames, p->count,
						wait_us / 1000);
		} else if (tsc_us(now - t0) > wait_us) {
			return fail_why(a, "no test frame within %lu ms",
					wait_us / 1000);
		} else if (tsc_us(now - hello_at) > 500000) {
			/* again, in case the host side was not listening */
			hello_at = now;
			if (send_hello(d, hellos++) < 0)
				return fail_why(a, "cannot send the ready "
						"frame");
		}
		net_tx_reclaim(d);
		if (!got)
			net_wait(d);
	}
	for (int i = 0; i < 1000 && d->tx_inflight; i++) {
		net_tx_reclaim(d);
		udelay(100);
	}
	perf_print(p, "rx", us, n0, i0);
	if (p->bad)
		return fail_why(a, "%lu bad frames", p->bad);
	return 0;
}

/* netperf[:dev=N:dir=tx|rx:frame=1514:seconds=2:count=N:seq=0:
 *         verify=sample|full:wait_ms=30000:wait=hybrid:spin=50] */
static int cmd_netperf(struct cmd_args *a)
{
	static struct perf p;
	char dirbuf[8], verbuf[8];
	const char *dir, *ver;
	uint64_t frame = arg_num(a, "frame", 1514);
	uint64_t secs = arg_num(a, "seconds", 2);
	uint64_t wait_ms = arg_num(a, "wait_ms", 30000);
	/* bulk: spin longer than one frame takes to arrive (64 KiB at
	 * 10 Gbit/s: ~50 us) before paying for an interrupt (~100 us) */
	struct net_dev *d = dev_arg(a, true, NETPERF_SPIN);
	int rc;

	memset(&p, 0, sizeof(p));
	p.count = arg_num(a, "count", 0);
	p.seq0 = arg_num(a, "seq", 0);
	dir = arg_str(a, "dir", "tx", dirbuf, sizeof(dirbuf));
	ver = arg_str(a, "verify", "sample", verbuf, sizeof(verbuf));
	if (!d || frame == UINT64_MAX || secs == UINT64_MAX ||
	    p.count == UINT64_MAX || p.seq0 == UINT64_MAX ||
	    wait_ms == UINT64_MAX) {
		done_with(d);
		return -1;
	}
	if (frame < NETFRAME_MIN || frame > NETFRAME_MAX) {
		done_with(d);
		return fail_why(a, "frame must be %u..%u", NETFRAME_MIN,
				NETFRAME_MAX);
	}
	if (strcmp(ver, "sample") && strcmp(ver, "full")) {
		done_with(d);
		return fail_why(a, "verify must be sample or full");
	}
	p.d = d;
	p.frame = (uint32_t)frame;
	p.seconds_us = secs * 1000000;
	p.full = !strcmp(ver, "full");
	if (!strcmp(dir, "tx"))
		rc = perf_tx(a, &p);
	else if (!strcmp(dir, "rx"))
		rc = perf_rx(a, &p, wait_ms * 1000);
	else
		rc = fail_why(a, "dir must be tx or rx");
	net_tx_slots(d, NULL, 0);
	done_with(d);
	return rc;
}

const struct command net_commands[] = {
	{ "netinfo", cmd_netinfo, "MAC, MTU, link, features per NIC" },
	{ "netping", cmd_netping, "ARP + ICMP echo to vmmtest.net's gw" },
	{ "netperf", cmd_netperf, "bulk frames: dir=tx|rx:frame=1514:seconds=2" },
	{ "netserve", cmd_netserve, "answer ARP and ping: netserve:seconds=10" },
	{ NULL, NULL, NULL },
};
