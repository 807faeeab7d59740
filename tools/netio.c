/* tools/netio.c - the host end of the network tests: sends and receives the
 * sequence-numbered frames of guest/common/netframe.h on a TAP interface,
 * and measures the TAP path alone (the ceiling the guest's figures are
 * compared with).
 *
 *   netio sink   --if NAME [--seconds S] [--idle-ms MS] [--wait-ms MS]
 *                [--count N] [--verify full|sample] [--ready FILE]
 *   netio source --if NAME --frame LEN [--seconds S] [--count N] [--sync]
 *                [--wait-ms MS]
 *   netio bench  --tap NAME --dir tx|rx --frame LEN [--seconds S]
 *
 * sink: a packet socket on interface NAME counts the test frames arriving
 * there (from the guest), checks their contents and sequence numbers, and
 * stops S seconds after the first one, after --idle-ms (2000) without
 * one, at N frames, or when none came within --wait-ms (30000).  --ready:
 * create FILE once the socket listens (a test starts the guest then).
 * source: sends N frames (or for S seconds) out of interface NAME, i.e. to
 * whoever reads the TAP (the guest); with --sync only once a test frame
 * came in (the guest's netperf rx sends one when it is ready).  Frames longer than NETFRAME_MSS+54
 * go as one TSO frame (a virtio header with GSO TCPV4).
 * bench: opens TAP NAME itself, as vmm would (IFF_VNET_HDR, TSO offloads
 * on), and moves frames through it for S seconds: tx = written to the TAP
 * fd and counted by a sink thread (the guest->host path), rx = sent by a
 * source thread and read from the TAP fd (host->guest).
 *
 * Each prints one JSON line: frames, bytes, seconds, gbps (10^9 bit/s of
 * Ethernet frame bytes), fps, and for sinks lost / reordered / bad.
 * Exit status: 0 done (sink: at least one frame and none bad or missing
 * from --count), 1 a check failed, 2 bad usage or the interface cannot be
 * used.  Run it inside the test's network namespace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "guest/common/netframe.h"

#define BATCH		64
/* virtio header before each frame: 12 bytes on the TAP (as the device
 * sets it), 10 on a packet socket (PACKET_VNET_HDR) */
#define VHDR		((int)sizeof(struct virtio_net_hdr_mrg_rxbuf))
#define PS_VHDR		((int)sizeof(struct virtio_net_hdr))

struct opts {
	const char *ifname, *tap, *dir, *ready;
	uint32_t frame;
	double seconds;
	unsigned idle_ms, wait_ms;
	uint64_t count;
	bool full, sync;
};

struct stats {
	uint64_t frames, bytes, lost, reordered, bad, next_seq;
	double seconds;
};

static volatile int stop_flag;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "netio: [name: ]what: errno text", exit 2 */
static void die(const char *name, const char *what)
{
	fprintf(stderr, "netio: %s%s%s: %s\n", name ? name : "",
		name ? ": " : "", what, strerror(errno));
	exit(2);
}

static int packet_socket(const char *ifname, bool vnet_hdr)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_ALL) };
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	int one = 1, big = 64 << 20;

	if (fd < 0)
		die(NULL, "packet socket");
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (!sll.sll_ifindex)
		die(ifname, "no such interface");
	if (vnet_hdr && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one,
				   sizeof(one)) < 0)
		die(ifname, "PACKET_VNET_HDR");
	/* a big receive buffer: the sink must not be what drops frames */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		die(ifname, "bind");
	return fd;
}

static void sink_account(struct stats *st, const struct opts *o,
			 const uint8_t *f, uint32_t len)
{
	uint64_t seq;
	int r = netframe_check(f, len, o->full, &seq);

	if (r == 0 || seq == UINT64_MAX)
		return;		/* not ours, or a guest's "ready" frame */
	st->frames++;
	st->bytes += len;
	if (r < 0) {
		if (st->bad++ < 5)
			fprintf(stderr, "netio: bad frame seq %" PRIu64
				" len %u\n", seq, len);
		return;
	}
	if (seq >= st->next_seq) {
		st->lost += seq - st->next_seq;
		st->next_seq = seq + 1;
	} else {
		st->reordered++;
		if (st->lost)
			st->lost--;
	}
}

/* Receive test frames on fd until a limit (see the header comment);
 * fills st. */
static void sink_run(int fd, const struct opts *o, struct stats *st)
{
	static uint8_t bufs[BATCH][NETFRAME_MAX + 64];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_ll from[BATCH];
	double start = now(), first = 0, last = 0;

	memset(st, 0, sizeof(*st));
	while (!stop_flag) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		double t = now(), deadline;
		int n;

		/* the next moment we give up waiting */
		if (!first)
			deadline = start + o->wait_ms / 1000.0;
		else if (o->seconds > 0 &&
			 first + o->seconds < last + o->idle_ms / 1000.0)
			deadline = first + o->seconds;
		else
			deadline = last + o->idle_ms / 1000.0;
		if (t >= deadline)
			break;
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
			msgs[i].msg_hdr = (struct msghdr){
				.msg_name = &from[i],
				.msg_namelen = sizeof(from[i]),
				.msg_iov = &iov[i], .msg_iovlen = 1 };
		}
		n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			poll(&pfd, 1, (int)((deadline - t) * 1000) + 1);
			continue;
		}
		for (int i = 0; i < n; i++) {
			uint64_t before = st->frames;

			if (from[i].sll_pkttype == PACKET_OUTGOING)
				continue;
			sink_account(st, o, bufs[i], msgs[i].msg_len);
			if (st->frames != before) {
				if (!first)
					first = t;
				last = t;
			}
		}
		if (o->count && st->frames >= o->count)
			break;
	}
	st->seconds = last > first ? last - first : 0;
}

static void print_stats(const char *mode, const struct opts *o,
			const struct stats *st, bool sink)
{
	double s = st->seconds > 0 ? st->seconds : 1e-9;

	printf("{\"mode\":\"%s\",\"frame\":%u,\"frames\":%" PRIu64
	       ",\"bytes\":%" PRIu64 ",\"seconds\":%.3f,\"gbps\":%.3f,"
	       "\"fps\":%.0f", mode, o->frame, st->frames, st->bytes,
	       st->seconds, (double)st->bytes * 8 / s / 1e9,
	       (double)st->frames / s);
	if (sink)
		printf(",\"lost\":%" PRIu64 ",\"reordered\":%" PRIu64
		       ",\"bad\":%" PRIu64, st->lost, st->reordered, st->bad);
	printf("}\n");
	fflush(stdout);
}

/* A frame and its virtio header (hlen bytes) for seq, into buf. */
static void make_frame(uint8_t *buf, int hlen, uint32_t len, uint64_t seq,
		       const uint8_t dst[6], const uint8_t src[6])
{
	struct virtio_net_hdr_mrg_rxbuf *h = (void *)buf;
	uint8_t *f = buf + hlen;

	memset(h, 0, (size_t)hlen);
	netframe_headers(f, len, dst, src);
	netframe_stamp(f, len, seq);
	netframe_fill_payload(f, len, seq);
	if (len > NETFRAME_HDR_LEN + NETFRAME_MSS) {
		h->hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h->hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
		h->hdr.gso_size = NETFRAME_MSS;
		h->hdr.hdr_len = NETFRAME_HDR_LEN;
		h->hdr.csum_start = NETFRAME_CSUM_START;
		h->hdr.csum_offset = NETFRAME_CSUM_OFFSET;
	}
}

/* Frames in slot buffers: filled once per slot, stamped per frame. */
struct frames {
	uint8_t *buf[NETFRAME_SLOTS];
	uint32_t len;
	int hlen;	/* virtio header bytes before each frame */
};

static void frames_init(struct frames *fr, int hlen, uint32_t len,
			const uint8_t dst[6], const uint8_t src[6])
{
	fr->len = len;
	fr->hlen = hlen;
	for (unsigned i = 0; i < NETFRAME_SLOTS; i++) {
		fr->buf[i] = malloc((size_t)len + (size_t)hlen);
		if (!fr->buf[i])
			die(NULL, "malloc");
		make_frame(fr->buf[i], hlen, len, i, dst, src);
	}
}

static void frames_free(struct frames *fr)
{
	for (unsigned i = 0; i < NETFRAME_SLOTS; i++)
		free(fr->buf[i]);
}

/* Slot buffer of seq, stamped; fr->hlen + fr->len bytes. */
static uint8_t *frame_for(struct frames *fr, uint64_t seq)
{
	uint8_t *b = fr->buf[seq % NETFRAME_SLOTS];

	netframe_stamp(b + fr->hlen, fr->len, seq);
	return b;
}

/* Wait for any test frame on fd (a packet socket with virtio headers). */
static bool wait_hello(int fd, unsigned wait_ms)
{
	static uint8_t buf[PS_VHDR + NETFRAME_MAX + 64];
	double end = now() + wait_ms / 1000.0;

	while (now() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		uint64_t seq;
		ssize_t n;

		if (poll(&pfd, 1, (int)((end - now()) * 1000) + 1) <= 0)
			continue;
		n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
			     (struct sockaddr *)&from, &fl);
		if (n > PS_VHDR && from.sll_pkttype != PACKET_OUTGOING &&
		    netframe_check(buf + PS_VHDR, (uint32_t)(n - PS_VHDR), false,
				   &seq) != 0)
			return true;
	}
	return false;
}

/* Send frames out of a packet socket (with virtio headers) until a limit.
 * Frames the interface drops are counted as sent: the receiver counts
 * what arrived. */
static void source_run(int fd, const struct opts *o, struct stats *st,
		       struct frames *fr)
{
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	double t0 = now();
	uint64_t seq = 0;

	memset(st, 0, sizeof(*st));
	while (!stop_flag) {
		unsigned n = BATCH;
		int r;

		if (o->count && o->count - seq < n)
			n = (unsigned)(o->count - seq);
		if (n == 0)
			break;
		for (unsigned i = 0; i < n; i++) {
			iov[i] = (struct iovec){ frame_for(fr, seq + i),
						 (size_t)(fr->len + fr->hlen) };
			msgs[i].msg_hdr = (struct msghdr){ .msg_iov = &iov[i],
							   .msg_iovlen = 1 };
		}
		r = sendmmsg(fd, msgs, n, 0);
		if (r < 0) {
			/* the first frame was dropped on the way (full queue,
			 * no carrier): counted as sent, the sink counts what
			 * arrived */
			if (errno != ENOBUFS && errno != EAGAIN &&
			    errno != ENETDOWN)
				die(NULL, "send");
			r = 1;
		}
		seq += (unsigned)r;
		if (o->seconds > 0 && now() - t0 >= o->seconds)
			break;
	}
	st->frames = seq;
	st->bytes = seq * fr->len;
	st->seconds = now() - t0;
}

static int tap_open(const char *name)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), hdr = VHDR;

	if (fd < 0)
		die(NULL, "/dev/net/tun");
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (!if_nametoindex(name))
		die(name, "no such interface");
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		die(name, "TUNSETIFF");
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0)
		die(name, "TAP offloads");
	return fd;
}

struct bench {
	const struct opts *o;
	int tap, ps;
	struct frames fr;
	struct stats st;
};

/* tx: write frames into the TAP fd (as the device does for the guest). */
static void *bench_tap_writer(void *arg)
{
	struct bench *b = arg;
	uint64_t seq = 0;

	while (!stop_flag) {
		uint8_t *f = frame_for(&b->fr, seq);

		if (write(b->tap, f, (size_t)(b->fr.len + b->fr.hlen)) < 0 &&
		    errno != EAGAIN && errno != ENOBUFS)
			die(NULL, "TAP write");
		seq++;
	}
	return NULL;
}

/* rx: read frames from the TAP fd (as the device does for the guest). */
static void *bench_tap_reader(void *arg)
{
	struct bench *b = arg;
	static uint8_t buf[VHDR + NETFRAME_MAX + 64];
	double t0 = 0, t = 0;

	while (!stop_flag) {
		struct pollfd pfd = { .fd = b->tap, .events = POLLIN };
		ssize_t n = read(b->tap, buf, sizeof(buf));
		uint64_t seq;

		if (n < 0) {
			if (errno != EAGAIN)
				die(NULL, "TAP read");
			poll(&pfd, 1, 100);
			continue;
		}
		if (n <= VHDR || netframe_check(buf + VHDR, (uint32_t)(n - VHDR),
						b->o->full, &seq) != 1)
			continue;
		t = now();
		if (!t0)
			t0 = t;
		b->st.frames++;
		b->st.bytes += (uint64_t)(n - VHDR);
		if (t - t0 >= b->o->seconds)
			break;
	}
	b->st.seconds = t - t0;
	stop_flag = 1;
	return NULL;
}

static int bench(const struct opts *o)
{
	static const uint8_t host[6] = NETFRAME_HOST_MAC,
			     guest[6] = NETFRAME_GUEST_MAC;
	struct opts bo = *o;
	struct bench b = { .o = &bo };
	pthread_t th;
	struct stats src;

	/* the device checks nothing either: the bench only samples */
	bo.full = false;
	o = &bo;
	b.tap = tap_open(o->tap);
	/* the source sends virtio headers (TSO); the sink reads frames */
	b.ps = packet_socket(o->tap, !strcmp(o->dir, "rx"));
	if (!strcmp(o->dir, "tx")) {
		frames_init(&b.fr, VHDR, o->frame, host, guest);
		fcntl(b.tap, F_SETFL, O_NONBLOCK);
		pthread_create(&th, NULL, bench_tap_writer, &b);
		{
			struct opts so = *o;

			so.idle_ms = 1000;
			so.wait_ms = 5000;
			so.full = false;
			sink_run(b.ps, &so, &b.st);
		}
		stop_flag = 1;
		pthread_join(th, NULL);
		print_stats("bench-tx", o, &b.st, true);
	} else {
		frames_init(&b.fr, PS_VHDR, o->frame, guest, host);
		fcntl(b.tap, F_SETFL, O_NONBLOCK);
		pthread_create(&th, NULL, bench_tap_reader, &b);
		{
			struct opts so = *o;

			so.seconds = 0;
			so.count = 0;
			source_run(b.ps, &so, &src, &b.fr);
		}
		pthread_join(th, NULL);
		print_stats("bench-rx", o, &b.st, false);
	}
	frames_free(&b.fr);
	return b.st.frames ? 0 : 1;
}

static uint64_t num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end) {
		fprintf(stderr, "netio: %s: not a number: %s\n", what, s);
		exit(2);
	}
	return v;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: netio sink --if NAME [--seconds S] [--idle-ms MS] "
		"[--wait-ms MS] [--count N] [--verify full|sample] "
		"[--ready FILE]\n"
		"       netio source --if NAME --frame LEN [--seconds S] "
		"[--count N] [--sync] [--wait-ms MS]\n"
		"       netio bench --tap NAME --dir tx|rx --frame LEN "
		"[--seconds S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "if", required_argument, NULL, 'i' },
		{ "tap", required_argument, NULL, 't' },
		{ "dir", required_argument, NULL, 'd' },
		{ "frame", required_argument, NULL, 'f' },
		{ "seconds", required_argument, NULL, 's' },
		{ "idle-ms", required_argument, NULL, 'I' },
		{ "count", required_argument, NULL, 'c' },
		{ "wait-ms", required_argument, NULL, 'W' },
		{ "sync", no_argument, NULL, 'S' },
		{ "ready", required_argument, NULL, 'R' },
		{ "verify", required_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .idle_ms = 2000, .wait_ms = 30000, .frame = 1514,
			  .full = true };
	const char *cmd;
	struct stats st;
	int c;

	if (argc < 2)
		usage();
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'i': o.ifname = optarg; break;
		case 't': o.tap = optarg; break;
		case 'd': o.dir = optarg; break;
		case 'f': o.frame = (uint32_t)num(optarg, "--frame"); break;
		case 's': o.seconds = (double)num(optarg, "--seconds"); break;
		case 'I': o.idle_ms = (unsigned)num(optarg, "--idle-ms"); break;
		case 'c': o.count = num(optarg, "--count"); break;
		case 'W': o.wait_ms = (unsigned)num(optarg, "--wait-ms"); break;
		case 'S': o.sync = true; break;
		case 'R': o.ready = optarg; break;
		case 'v':
			if (strcmp(optarg, "full") && strcmp(optarg, "sample"))
				usage();
			o.full = !strcmp(optarg, "full");
			break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (o.frame < NETFRAME_MIN || o.frame > NETFRAME_MAX) {
		fprintf(stderr, "netio: --frame must be %d..%d\n", NETFRAME_MIN,
			NETFRAME_MAX);
		return 2;
	}
	if (!strcmp(cmd, "sink") && o.ifname) {
		int fd = packet_socket(o.ifname, false);

		if (o.ready) {
			FILE *f = fopen(o.ready, "w");

			if (!f)
				die(o.ready, "cannot create");
			fclose(f);
		}

		sink_run(fd, &o, &st);
		print_stats("sink", &o, &st, true);
		return st.frames && !st.bad &&
		       (!o.count || st.frames >= o.count) ? 0 : 1;
	}
	if (!strcmp(cmd, "source") && o.ifname && (o.seconds > 0 || o.count)) {
		static const uint8_t host[6] = NETFRAME_HOST_MAC,
				     guest[6] = NETFRAME_GUEST_MAC;
		struct frames fr;
		int fd = packet_socket(o.ifname, true);

		frames_init(&fr, PS_VHDR, o.frame, guest, host);
		if (o.sync && !wait_hello(fd, o.wait_ms)) {
			fprintf(stderr, "netio: no frame from the guest within "
				"%u ms\n", o.wait_ms);
			frames_free(&fr);
			return 1;
		}
		source_run(fd, &o, &st, &fr);
		print_stats("source", &o, &st, false);
		/* freed, not left to exit: LeakSanitizer would fail the
		 * status a test chains the next source on */
		frames_free(&fr);
		return 0;
	}
	if (!strcmp(cmd, "bench") && o.tap && o.dir && o.seconds > 0 &&
	    (!strcmp(o.dir, "tx") || !strcmp(o.dir, "rx")))
		return bench(&o);
	usage();
	return 2;
}
