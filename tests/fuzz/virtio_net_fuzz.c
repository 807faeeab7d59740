/* tests/fuzz/virtio_net_fuzz.c - virtio-net TX and RX (devices/
 * virtio_net.c): TX chains with fuzzed virtio-net headers and frames, RX
 * buffers of any shape, frames arriving from the host with any header and
 * length, control-queue commands, behind the real transport.
 *
 * The TAP is fake: this target links with ld --wrap=open,--wrap=ioctl, and
 * an open of /dev/net/tun returns one end of a SOCK_SEQPACKET socket pair
 * (a frame per message, cut to the reader's room, like a TAP queue); the
 * TAP ioctls succeed.  The harness holds the other ends: what the guest
 * sends arrives there, and frames written there reach the device's RX
 * path.  No root, no network namespace, no kernel network stack involved.
 *
 * Input: a feature word (CSUM, GUEST_CSUM, HOST/GUEST_TSO4/6, MRG_RXBUF,
 * CTRL_VQ, MQ, EVENT_IDX, INDIRECT_DESC), the queue size, then operations
 * (see the switch below).  Two queue pairs and the control queue.
 * Checked (besides the harness's invariants): every frame that reaches
 * the TAP is at least a virtio-net header and an Ethernet header long and
 * no longer than a 64 KiB GSO frame allows.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/registry.h"
#include "tests/fuzz/fuzz_harness.h"

#define RAM_SIZE	(512u << 10)
#define DATA_START	0x10000u
#define PAIRS		2
#define NQ		(2 * PAIRS + 1)
#define HDR_LEN		12u	/* struct virtio_net_hdr_mrg_rxbuf */
#define FRAME_MAX	(HDR_LEN + 18 + 40 + 65535)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the fake TAP ---- */

static int tap_host[PAIRS];	/* our ends, by TAP queue */
static int tap_dev[PAIRS];	/* the device's ends */
static unsigned tap_opened;

int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);
int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);

int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;
	int sv[2];

	if (strcmp(path, "/dev/net/tun") != 0) {
		va_start(ap, flags);
		if (flags & (O_CREAT | O_TMPFILE))
			mode = va_arg(ap, mode_t);
		va_end(ap);
		return __real_open(path, flags, mode);
	}
	if (tap_opened == PAIRS ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       0, sv) < 0) {
		errno = EBUSY;
		return -1;
	}
	tap_dev[tap_opened] = sv[0];
	tap_host[tap_opened++] = sv[1];
	return sv[0];
}

static bool is_tap(int fd)
{
	for (unsigned i = 0; i < tap_opened; i++)
		if (fd == tap_dev[i])
			return true;
	return false;
}

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	struct ifreq *ifr;
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	ifr = arg;
	if (is_tap(fd)) {
		switch (req) {
		case TUNSETIFF:
			snprintf(ifr->ifr_name, IFNAMSIZ, "fztap0");
			return 0;
		case TUNSETQUEUE:
		case TUNSETVNETHDRSZ:
		case TUNSETOFFLOAD:
			return 0;
		}
		errno = ENOTTY;
		return -1;
	}
	/* the interface ioctls on the throwaway socket */
	if ((req == SIOCGIFMTU || req == SIOCSIFMTU || req == SIOCGIFFLAGS ||
	     req == SIOCSIFFLAGS) && !strncmp(ifr->ifr_name, "fztap", 5)) {
		if (req == SIOCGIFMTU)
			ifr->ifr_mtu = 1500;
		if (req == SIOCGIFFLAGS)
			ifr->ifr_flags = 0;
		return 0;
	}
	return __real_ioctl(fd, req, arg);
}

/* ---- the target ---- */

static struct fz_ram ram;
static unsigned long frames_seen;

static void setup(void)
{
	const struct device_type *t = device_type_find("net");
	char opt[] = "queues=2", err[256];
	void *cfg;

	setenv("VMM_NET_POLL_US", "0", 1);
	fz_ram_init(&ram, RAM_SIZE);
	ram.bump_start = ram.bump = DATA_START;
	fz_vm_set_ram(&ram);
	if (!t || !(cfg = calloc(1, t->config_size)) ||
	    t->parse(opt, cfg, 0, err, sizeof(err)) != 0 ||
	    t->create(fz_vm(), cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "virtio_net_fuzz: cannot create: %s\n", err);
		abort();
	}
	free(cfg);	/* the device copied what it needs */
}

/* Read what the guest sent; each frame must be one the device checked. */
static void drain_tx(void)
{
	static uint8_t buf[FRAME_MAX + 64];

	for (unsigned i = 0; i < tap_opened; i++) {
		ssize_t n;

		while ((n = recv(tap_host[i], buf, sizeof(buf),
				 MSG_DONTWAIT | MSG_TRUNC)) >= 0) {
			FZ_CHECK(n >= (ssize_t)HDR_LEN + 14 &&
				 n <= (ssize_t)FRAME_MAX,
				 "TX frame of %zd bytes reached the TAP", n);
			frames_seen++;
		}
	}
}

static void add_tx(struct fz_in *in, struct fz_ring *q)
{
	struct virtio_net_hdr_mrg_rxbuf h;
	uint8_t shape = fz_u8(in), nseg = fz_u8(in) % 5;
	struct fz_desc d[8];
	unsigned n = 0;
	uint32_t len;
	uint64_t a;

	fz_bytes(in, &h, sizeof(h));
	if (!(shape & 1))
		memset(&h, 0, sizeof(h));	/* plain frames mostly */
	/* the header whole, or split over two buffers */
	n += fz_put_header(&ram, &h, HDR_LEN, shape & 2 ? 5 : 0, &d[n]);
	for (unsigned i = 0; i < nseg; i++) {
		uint16_t l = fz_u16(in);

		len = shape & 4 ? (uint32_t)l * 2 : l % 1600;
		a = fz_alloc(&ram, &len);
		fz_bytes(in, ram.mem.host + a, len < 16 ? len : 16);
		d[n++] = (struct fz_desc){ a, len,
					   shape & 8 ? VRING_DESC_F_WRITE : 0 };
	}
	fz_ring_add_chain(q, d, n, shape & 0x10);
}

static void add_rx(struct fz_in *in, struct fz_ring *q)
{
	uint8_t shape = fz_u8(in), chains = 1 + fz_u8(in) % 8;

	for (unsigned c = 0; c < chains; c++) {
		unsigned n = 1 + (shape >> 4) % 3;
		struct fz_desc d[4];
		uint32_t len;
		uint64_t a;

		for (unsigned i = 0; i < n; i++) {
			uint16_t l = fz_u16(in);

			/* Linux's sizes (1526, 64 KiB + header) and any */
			len = shape & 1 ? 1526 : shape & 2 ? 65562 : l;
			a = fz_alloc(&ram, &len);
			d[i] = (struct fz_desc){ a, len, shape & 4 && i == 0 ?
						 0 : VRING_DESC_F_WRITE };
		}
		fz_ring_add_chain(q, d, n, shape & 8);
	}
}

static void host_frame(struct fz_in *in)
{
	static uint8_t buf[FRAME_MAX];
	uint8_t which = fz_u8(in);
	uint16_t l = fz_u16(in);
	size_t len;

	memset(buf, 0, 64);
	fz_bytes(in, buf, which & 1 ? HDR_LEN + 14 : 0);
	len = which & 2 ? (size_t)l * 2 : l % 1600;
	if (len > sizeof(buf))
		len = sizeof(buf);
	if (send(tap_host[(which >> 2) % PAIRS], buf, len, MSG_DONTWAIT) < 0 &&
	    errno != EAGAIN && errno != EMSGSIZE && errno != ENOBUFS)
		abort();
}

static void add_ctrl(struct fz_in *in, struct fz_ring *q)
{
	uint8_t shape = fz_u8(in);
	uint8_t cmd[4] = { fz_u8(in), fz_u8(in), fz_u8(in), fz_u8(in) };
	struct fz_desc d[3];
	unsigned n = 0;
	uint32_t len = 4;
	uint64_t a;

	if (!(shape & 1)) {	/* MQ_VQ_PAIRS_SET, mostly */
		cmd[0] = VIRTIO_NET_CTRL_MQ;
		cmd[1] = VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET;
		cmd[3] = 0;
	}
	a = fz_alloc(&ram, &len);
	memcpy(ram.mem.host + a, cmd, len);
	d[n++] = (struct fz_desc){ a, shape & 2 ? 2 : len, 0 };
	if (!(shape & 4)) {
		len = 1;
		a = fz_alloc(&ram, &len);
		d[n++] = (struct fz_desc){ a, len, VRING_DESC_F_WRITE };
	}
	fz_ring_add(q, d, n, false, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned feature_bits[] = {
		VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM,
		VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6,
		VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
		VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_F_CTRL_VQ,
		VIRTIO_NET_F_MQ, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC,
		VIRTIO_NET_F_MAC,
	};
	struct fz_in in = { data, size };
	struct fz_ring q[NQ];
	uint16_t feat = fz_u16(&in), qsize = 1 + fz_u8(&in);

	if (!ram.map)
		setup();
	memset(ram.mem.host, 0, RAM_SIZE);
	ram.bump = DATA_START;
	fz_drv_begin(0, fz_features(feat, feature_bits,
				    FZ_NELEM(feature_bits)));
	/* every queue set up (a driver without MQ leaves 2.. unused) */
	fz_drv_start(0, q, NQ, feat & 0x8000 ? 2 : NQ, &ram, qsize, 0x3000);
	while (fz_more(&in)) {
		uint8_t op = fz_u8(&in);
		unsigned pair = (op >> 7) % PAIRS;

		switch (op & 7) {
		case 0:
		case 1:	/* a TX frame */
			add_tx(&in, &q[2 * pair + 1]);
			break;
		case 2:	/* RX buffers */
			add_rx(&in, &q[2 * pair]);
			break;
		case 3:	/* a frame from the host */
			host_frame(&in);
			break;
		case 4:	/* notify a queue; the device works */
			fz_drv_kick(0, q, (op >> 4) % NQ);
			drain_tx();
			break;
		case 5:	/* a control command */
			add_ctrl(&in, &q[NQ - 1]);
			break;
		case 6: /* the driver scribbles on RAM */
			fz_ram_scribble(&ram, &in);
			break;
		case 7:	/* config space */
			fz_drv_config_read(0, &in, 16);
			break;
		}
	}
	fz_drv_kick_all(0, q, NQ);
	drain_tx();
	fz_drv_reset(0);
	/* frames the guest did not take would be the next input's noise */
	for (unsigned i = 0; i < tap_opened; i++)
		while (recv(tap_dev[i], ram.mem.host, 64, MSG_DONTWAIT |
			    MSG_TRUNC) >= 0)
			;
	return 0;
}
