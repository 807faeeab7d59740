/* tests/unit/test_virtio_net.c - the virtio-net device driven through its
 * registers by a small driver written here, on a fake struct vm (guest RAM
 * is plain memory; notifies and interrupts are the eventfds the device
 * hands to "KVM"), with crafted rings, against a real TAP.
 *
 * Every test that needs a TAP runs in its own network namespace (each
 * Check test is a forked process that unshare()s one): the TAP, its
 * addresses and the packet socket that plays the far end exist only there.
 * Without root or /dev/net/tun only the option parser is tested (main()
 * says so).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devices/registry.h"
#include "devices/virtio_mmio.h"
#include "devices/virtqueue.h"
#include "vmm/tsan.h"
#include "vmm/vm.h"
#include "tests/unit/check_main.h"

extern const struct device_type virtio_net_type;

/* ---- fake struct vm: tests/unit/fake_vm.h ---- */
#define RAM_SIZE	(16u << 20)
#define FAKE_MAX_DEV	4
#include "tests/unit/fake_vm.h"

/* ---- the network namespace, the TAP and the far end ---- */
#define TEST_ETHERTYPE	0x88b5	/* IEEE local experimental */
static const uint8_t far_mac[6] = { 0x02, 0, 0, 0, 0, 1 };
static bool have_tap;		/* root, /dev/net/tun, unshare: main() */

static void enter_netns(void)
{
	int fd;

	ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare: %s",
		      strerror(errno));
	/* no IPv6 chatter (router solicitations) on the new interfaces */
	fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY);
	if (fd >= 0) {
		ck_assert_int_eq(write(fd, "1", 1), 1);
		close(fd);
	}
}

static void sh(const char *fmt, ...)
{
	char cmd[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
}

/* A persistent TAP made here (flags as given), then let go of. */
static void make_tap(const char *name, bool multi_queue)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR);

	ck_assert_int_ge(fd, 0);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
			(multi_queue ? IFF_MULTI_QUEUE : 0);
	ck_assert_int_eq(ioctl(fd, TUNSETIFF, &ifr), 0);
	ck_assert_int_eq(ioctl(fd, TUNSETPERSIST, 1), 0);
	close(fd);
	sh("ip link set %s up", name);
}

/* Once a TAP has a reader its carrier comes up, but the kernel's link
 * watcher swaps the drop-everything qdisc for a real one only up to a
 * second later: frames sent before that are lost.  Wait for it. */
static void wait_carrier(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	ck_assert_int_ge(s, 0);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	for (int i = 0; i < 300; i++) {
		/* IFF_RUNNING: operstate up, set by the link watcher just
		 * before it activates the qdisc */
		if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 &&
		    (ifr.ifr_flags & IFF_RUNNING)) {
			close(s);
			usleep(20000);
			return;
		}
		usleep(10000);
	}
	close(s);
	ck_abort_msg("%s: carrier never came up", ifname);
}

/* The far end: a packet socket on the TAP interface. */
static int psock_open(const char *ifname, bool vnet_hdr)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_ALL) };
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
	int one = 1;

	ck_assert_int_ge(fd, 0);
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	ck_assert_int_gt(sll.sll_ifindex, 0);
	if (vnet_hdr)
		ck_assert_int_eq(setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR,
					    &one, sizeof(one)), 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
	return fd;
}

/* Next incoming test frame (our ethertype, not our own sends) within
 * timeout_ms; its length (with the vnet header if the socket has one), or
 * -1. */
static ssize_t psock_recv(int fd, void *buf, size_t len, unsigned hdr,
			  int timeout_ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n = recvfrom(fd, buf, len, 0, (struct sockaddr *)&from,
				     &fl);
		int waited;

		if (n >= (ssize_t)(hdr + 14) &&
		    from.sll_pkttype != PACKET_OUTGOING &&
		    ((uint8_t *)buf)[hdr + 12] == (TEST_ETHERTYPE >> 8) &&
		    ((uint8_t *)buf)[hdr + 13] == (TEST_ETHERTYPE & 0xff))
			return n;
		if (n >= 0)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (int)((t.tv_sec - t0.tv_sec) * 1000 +
			       (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (waited >= timeout_ms)
			return -1;
		poll(&pfd, 1, timeout_ms - waited);
	}
}

/* A test frame: dst, src, our ethertype, then bytes seq, seq+1, ... */
static size_t make_frame(uint8_t *f, size_t len, const uint8_t dst[6],
			 const uint8_t src[6], uint8_t seq)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = TEST_ETHERTYPE >> 8;
	f[13] = TEST_ETHERTYPE & 0xff;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seq + i);
	return len;
}

/* ---- a small driver ---- */
#define QSZ		64
#define QBASE(q)	(0x10000ULL * (q))	/* desc, +0x1000 avail, +0x2000 used */
#define BUFS		0x200000ULL		/* data buffers */

static uint8_t *ram;



/* Config space in accesses of 1, 2 or 4 bytes, as a driver does. */

static uint16_t cfg16(uint32_t off)
{
	uint16_t v;

	cfg_read(off, &v, 2);
	return v;
}


struct tq {
	unsigned idx;
	uint16_t next_desc, seen_used;
	bool event_idx;
};
static struct tq tq[VIRTIO_MMIO_MAX_QUEUES];

static struct vring_desc *desc(unsigned q, unsigned i)
{
	return (struct vring_desc *)(ram + QBASE(q)) + i;
}
static uint16_t *avail(unsigned q)
{
	return (uint16_t *)(ram + QBASE(q) + 0x1000);
}
/* acquire, as a driver reads it: the used entries, the buffers filled
 * and the device's last look at the descriptors come first */
static uint16_t used_idx(unsigned q)
{
	return __atomic_load_n((uint16_t *)(ram + QBASE(q) + 0x2000 + 2),
			       __ATOMIC_ACQUIRE);
}
static struct vring_used_elem *used_elem(unsigned q, unsigned i)
{
	return (struct vring_used_elem *)(ram + QBASE(q) + 0x2000 + 4) +
	       i % QSZ;
}

/* Reset, negotiate, set up queues 0..nq-1, DRIVER_OK; the status read
 * back. */
static uint32_t driver_init(uint64_t features, unsigned nq)
{
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	wr32(VIRTIO_MMIO_STATUS, 0);
	memset(ram, 0, BUFS);
	memset(tq, 0, sizeof(tq));
	wr32(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr32(VIRTIO_MMIO_STATUS, st);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	st |= VIRTIO_STATUS_FEATURES_OK;
	wr32(VIRTIO_MMIO_STATUS, st);
	if (!(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
		return rd32(VIRTIO_MMIO_STATUS);
	for (unsigned q = 0; q < nq; q++) {
		tq[q].idx = q;
		tq[q].event_idx = features & (1ULL << VIRTIO_F_EVENT_IDX);
		wr32(VIRTIO_MMIO_QUEUE_SEL, q);
		ck_assert_uint_ge(rd32(VIRTIO_MMIO_QUEUE_NUM_MAX), QSZ);
		wr32(VIRTIO_MMIO_QUEUE_NUM, QSZ);
		wr32(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)QBASE(q));
		wr32(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
		wr32(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)QBASE(q) + 0x1000);
		wr32(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
		wr32(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)QBASE(q) + 0x2000);
		wr32(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
		wr32(VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr32(VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	return rd32(VIRTIO_MMIO_STATUS);
}

static const uint64_t std_features =
	1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_EVENT_IDX |
	1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_MTU |
	1ULL << VIRTIO_NET_F_STATUS | 1ULL << VIRTIO_NET_F_MRG_RXBUF |
	1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM |
	1ULL << VIRTIO_NET_F_HOST_TSO4 | 1ULL << VIRTIO_NET_F_GUEST_TSO4;

/* Add a chain of n (addr, len, write) buffers to queue q (no kick). */
struct buf {
	uint64_t addr;
	uint32_t len;
	bool write;
};

static uint16_t add_chain(unsigned q, const struct buf *b, unsigned n)
{
	uint16_t head = tq[q].next_desc % QSZ, idx = avail(q)[1];

	for (unsigned i = 0; i < n; i++) {
		unsigned d = (tq[q].next_desc + i) % QSZ;

		*desc(q, d) = (struct vring_desc){
			b[i].addr, b[i].len,
			(uint16_t)((b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				   (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
			(uint16_t)((d + 1) % QSZ) };
	}
	tq[q].next_desc = (uint16_t)(tq[q].next_desc + n);
	avail(q)[2 + idx % QSZ] = head;
	__atomic_store_n(&avail(q)[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
	return head;
}

static void kick(unsigned q)
{
	int fd = fvm.dev[cur].notify_fd[q];
	uint64_t one = 1;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, &one, 8), 8);	/* as KVM would */
}

/* Wait until queue q has n more used entries (5 s bound). */
static bool wait_used(unsigned q, unsigned n)
{
	for (int i = 0; i < 5000; i++) {
		if ((uint16_t)(used_idx(q) - tq[q].seen_used) >= n)
			return true;
		usleep(1000);
	}
	return false;
}

static struct vring_used_elem take_used(unsigned q)
{
	struct vring_used_elem e = *used_elem(q, tq[q].seen_used);

	tq[q].seen_used++;
	return e;
}

static uint64_t irq_count(void)
{
	uint64_t v = 0;

	if (read(fvm.dev[cur].irqfd, &v, 8) < 0)
		return 0;
	return v;
}

static uint32_t status(void)
{
	return rd32(VIRTIO_MMIO_STATUS);
}

static bool wait_needs_reset(void)
{
	for (int i = 0; i < 2000; i++) {
		if (status() & VIRTIO_STATUS_NEEDS_RESET)
			return true;
		usleep(1000);
	}
	return false;
}

/* Parse value with the device type's parser and create the device. */
static int create(const char *value, char *err, size_t errlen)
{
	static char buf[4][128];
	static uint8_t cfg[4][256];
	unsigned n = fvm.ndev;
	int r;

	ck_assert_uint_le(virtio_net_type.config_size, sizeof(cfg[0]));
	snprintf(buf[n], sizeof(buf[n]), "%s", value);
	memset(cfg[n], 0, sizeof(cfg[n]));
	err[0] = 0;
	r = virtio_net_type.parse(buf[n], cfg[n], n, err, errlen);
	ck_assert_msg(r == 0, "parse %s: %s", value, err);
	r = virtio_net_type.create(&fvm, cfg[n], err, errlen);
	if (r == 0)
		cur = (int)fvm.ndev - 1;
	return r;
}

static void setup(void)
{
	memset(&fvm, 0, sizeof(fvm));
	ram = aligned_alloc(4096, RAM_SIZE);
	/* the test plays the guest in it: as in a VM (vm_create) */
	tsan_guest_ram(ram, RAM_SIZE);
	memset(ram, 0, RAM_SIZE);
	fvm.mem = (struct guest_mem){ ram, RAM_SIZE, RAM_SIZE };
	log_count = 0;
	cur = 0;
	enter_netns();
}

static void teardown(void)
{
	fake_destroy_all();
	free(ram);
}

/* The common case: TAP vt0 made here, a device on it, a packet socket. */
static int setup_dev(const char *extra, bool vnet_hdr)
{
	char opt[128], err[256];

	make_tap("vt0", false);
	snprintf(opt, sizeof(opt), "tap=vt0%s", extra);
	ck_assert_msg(create(opt, err, sizeof(err)) == 0, "%s", err);
	wait_carrier("vt0");
	return psock_open("vt0", vnet_hdr);
}

/* ---- parser (no TAP needed) ---- */

static int parse_only(const char *value, char *err, size_t errlen)
{
	char buf[128];
	uint8_t cfg[256];

	snprintf(buf, sizeof(buf), "%s", value);
	return virtio_net_type.parse(buf, cfg, 0, err, errlen);
}

START_TEST(parse_options)
{
	char err[200];
	static const char *const good[] = {
		"tap=vt0", "tap=vt0,mac=52:54:00:12:34:56", "tap=x,queues=2",
		"tap=x,mtu=9000", "mac=02:00:00:00:00:01", "",
	};
	static const char *const bad[] = {
		"tap=", "tap=0123456789abcdef", "tap=a/b", "tap=vmm%d",
		"mac=52:54:00:12:34", "mac=01:00:00:00:00:01",
		"mac=00:00:00:00:00:00", "mac=52:54:00:12:34:567",
		"mac=zz:54:00:12:34:56", "queues=0", "queues=99",
		"queues=-1", "queues=1x", "mtu=67", "mtu=65536", "mtu=",
		"speed=10", "tap",
	};

	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(parse_only(good[i], err, sizeof(err)) == 0,
			      "%s: %s", good[i], err);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		ck_assert_msg(parse_only(bad[i], err, sizeof(err)) < 0,
			      "%s accepted", bad[i]);
		ck_assert_msg(err[0] && !strchr(err, '\n'), "%s: no one-line "
			      "reason", bad[i]);
	}
	ck_assert_str_eq(virtio_net_type.option, "net");
}
END_TEST

/* ---- creation errors ---- */

START_TEST(missing_tap)
{
	char err[256];

	ck_assert_int_eq(create("tap=nosuch0", err, sizeof(err)),
			 VMM_EXIT_BAD_INPUT);
	ck_assert_msg(strstr(err, "nosuch0") && strstr(err, "no such"), "%s",
		      err);
}
END_TEST

START_TEST(not_a_tap)
{
	char err[256];

	ck_assert_int_eq(create("tap=lo", err, sizeof(err)),
			 VMM_EXIT_BAD_INPUT);
	ck_assert_msg(strstr(err, "not a TAP"), "%s", err);
}
END_TEST

START_TEST(busy_tap)
{
	struct ifreq ifr = { 0 };
	char err[256];
	int fd;

	make_tap("vt0", false);
	fd = open("/dev/net/tun", O_RDWR);
	snprintf(ifr.ifr_name, IFNAMSIZ, "vt0");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	ck_assert_int_eq(ioctl(fd, TUNSETIFF, &ifr), 0);
	ck_assert_int_eq(create("tap=vt0", err, sizeof(err)),
			 VMM_EXIT_UNAVAILABLE);
	ck_assert_msg(strstr(err, "busy"), "%s", err);
	close(fd);
	/* a plain TAP for queues=2 is refused, not half used */
	ck_assert_int_eq(create("tap=vt0,queues=2", err, sizeof(err)),
			 VMM_EXIT_BAD_INPUT);
	ck_assert_msg(strstr(err, "multi_queue"), "%s", err);
}
END_TEST

/* ---- registers and config ---- */

START_TEST(registers_and_config)
{
	uint64_t f;
	uint8_t mac[6];
	int ps = setup_dev(",mac=52:54:00:ab:cd:ef,mtu=1400", false);

	(void)ps;
	f = dev_features();
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_DEVICE_ID), 1);
	for (unsigned b = 0; b < 64; b++) {
		bool want = b == VIRTIO_F_VERSION_1 || b == VIRTIO_F_EVENT_IDX ||
			    b == VIRTIO_F_INDIRECT_DESC ||
			    b == VIRTIO_NET_F_MAC || b == VIRTIO_NET_F_MTU ||
			    b == VIRTIO_NET_F_STATUS ||
			    b == VIRTIO_NET_F_CSUM ||
			    b == VIRTIO_NET_F_GUEST_CSUM ||
			    b == VIRTIO_NET_F_HOST_TSO4 ||
			    b == VIRTIO_NET_F_HOST_TSO6 ||
			    b == VIRTIO_NET_F_GUEST_TSO4 ||
			    b == VIRTIO_NET_F_GUEST_TSO6 ||
			    b == VIRTIO_NET_F_MRG_RXBUF;

		ck_assert_msg(!!(f & (1ULL << b)) == want, "feature bit %u", b);
	}
	cfg_read(0, mac, 6);
	ck_assert_mem_eq(mac, ((uint8_t[]){ 0x52, 0x54, 0, 0xab, 0xcd, 0xef }),
			 6);
	ck_assert_uint_eq(cfg16(6), VIRTIO_NET_S_LINK_UP);
	ck_assert_uint_eq(cfg16(8), 1);
	ck_assert_uint_eq(cfg16(10), 1400);
	/* two queues: 2 and up do not exist */
	wr32(VIRTIO_MMIO_QUEUE_SEL, 1);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
	wr32(VIRTIO_MMIO_QUEUE_SEL, 2);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
}
END_TEST

START_TEST(default_mac_is_stable)
{
	uint8_t m1[6], m2[6];
	char err[256];

	make_tap("vt0", false);
	make_tap("vt1", false);
	ck_assert_int_eq(create("tap=vt0", err, sizeof(err)), 0);
	cfg_read(0, m1, 6);
	fake_destroy_all();
	memset(&fvm, 0, sizeof(fvm));
	fvm.mem = (struct guest_mem){ ram, RAM_SIZE, RAM_SIZE };
	ck_assert_int_eq(create("tap=vt0", err, sizeof(err)), 0);
	cfg_read(0, m2, 6);
	ck_assert_mem_eq(m1, m2, 6);
	ck_assert(m1[0] == 0x52 && m1[1] == 0x54 && m1[2] == 0);
	ck_assert_int_eq(create("tap=vt1", err, sizeof(err)), 0);
	cfg_read(0, m2, 6);
	ck_assert_mem_ne(m1, m2, 6);
}
END_TEST

START_TEST(creates_tap_without_name)
{
	char err[256];
	int ps;

	ck_assert_int_eq(create("", err, sizeof(err)), 0);
	ck_assert_msg(strstr(last_log, "created TAP vmmtap0"), "%s", last_log);
	ck_assert_uint_gt(if_nametoindex("vmmtap0"), 0);
	ps = psock_open("vmmtap0", false);	/* it is up */
	close(ps);
	fake_destroy_all();
	ck_assert_uint_eq(if_nametoindex("vmmtap0"), 0);
}
END_TEST

/* ---- TX ---- */

/* Queue a TX frame (header + frame in two buffers) at slot s. */
static void tx_frame(unsigned s, const struct virtio_net_hdr_mrg_rxbuf *h,
		     const uint8_t *frame, size_t len)
{
	uint64_t a = BUFS + s * 0x11000ULL;
	struct buf b[2] = { { a, sizeof(*h), false },
			    { a + 0x100, (uint32_t)len, false } };

	memcpy(ram + a, h, sizeof(*h));
	memcpy(ram + a + 0x100, frame, len);
	add_chain(1, b, 2);
}

START_TEST(tx_batch_one_interrupt)
{
	int ps = setup_dev("", false);
	struct virtio_net_hdr_mrg_rxbuf h = { 0 };
	uint8_t f[1514], got[2048];
	uint64_t irqs;

	ck_assert_uint_eq(driver_init(std_features, 2) &
			  VIRTIO_STATUS_NEEDS_RESET, 0);
	/* interrupt when all 8 are done: used_event = 7 */
	avail(1)[2 + QSZ] = 7;
	irq_count();
	for (unsigned i = 0; i < 8; i++) {
		make_frame(f, sizeof(f) - i, far_mac, far_mac, (uint8_t)i);
		tx_frame(i, &h, f, sizeof(f) - i);
	}
	kick(1);
	for (unsigned i = 0; i < 8; i++) {
		ssize_t n = psock_recv(ps, got, sizeof(got), 0, 2000);

		ck_assert_int_eq(n, (ssize_t)(sizeof(f) - i));
		make_frame(f, sizeof(f) - i, far_mac, far_mac, (uint8_t)i);
		ck_assert_mem_eq(got, f, (size_t)n);
	}
	ck_assert(wait_used(1, 8));
	for (unsigned i = 0; i < 8; i++)
		ck_assert_uint_eq(take_used(1).len, 0);
	usleep(20000);
	irqs = irq_count();
	ck_assert_uint_eq(irqs, 1);
	close(ps);
}
END_TEST

START_TEST(tx_tso_frame_passes_whole)
{
	int ps = setup_dev("", true);
	struct virtio_net_hdr_mrg_rxbuf h = { 0 }, gh;
	static uint8_t f[60000], got[70000];
	ssize_t n;

	driver_init(std_features, 2);
	/* Ethernet + IPv4 + TCP, 60000 bytes, segmented at 1448 */
	make_frame(f, sizeof(f), far_mac, far_mac, 1);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(f + 14, 0, 40);
	f[14] = 0x45;
	f[16] = (uint8_t)((sizeof(f) - 14) >> 8);
	f[17] = (uint8_t)(sizeof(f) - 14);
	f[22] = 64;
	f[23] = 6;			/* TCP */
	memcpy(f + 26, (uint8_t[]){ 10, 0, 0, 2, 10, 0, 0, 1 }, 8);
	f[46] = 0x50;			/* data offset 5 */
	h.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h.hdr.gso_size = 1448;
	h.hdr.hdr_len = 54;
	h.hdr.csum_start = 34;
	h.hdr.csum_offset = 16;
	tx_frame(0, &h, f, sizeof(f));
	kick(1);
	/* the packet socket sees the ethertype at 12 of the frame: IPv4 */
	for (;;) {
		struct pollfd pfd = { .fd = ps, .events = POLLIN };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);

		ck_assert_int_gt(poll(&pfd, 1, 2000), 0);
		n = recvfrom(ps, got, sizeof(got), 0, (struct sockaddr *)&from,
			     &fl);
		if (n > 0 && from.sll_pkttype != PACKET_OUTGOING &&
		    got[10 + 12] == 0x08)
			break;
	}
	ck_assert_int_eq(n, (ssize_t)(10 + sizeof(f)));
	memcpy(&gh.hdr, got, 10);
	ck_assert_uint_eq(gh.hdr.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	ck_assert_uint_eq(gh.hdr.gso_size, 1448);
	ck_assert_mem_eq(got + 10 + 54, f + 54, sizeof(f) - 54);
	ck_assert(wait_used(1, 1));
	close(ps);
}
END_TEST

/* Malformed TX chains are completed (len 0) and dropped, logged within the
 * budget; the device keeps working. */
START_TEST(tx_hostile_headers_dropped)
{
	int ps = setup_dev("", false);
	struct virtio_net_hdr_mrg_rxbuf h;
	uint8_t f[200], got[2048];
	struct buf shortb[1] = { { BUFS + 0x80000, 8, false } };
	struct buf writable[2] = { { BUFS + 0x80000, 12, false },
				   { BUFS + 0x81000, 100, true } };
	unsigned sent = 0;

	driver_init(std_features & ~(1ULL << VIRTIO_NET_F_HOST_TSO4), 2);
	make_frame(f, sizeof(f), far_mac, far_mac, 9);
	/* checksum offsets beyond the frame */
	memset(&h, 0, sizeof(h));
	h.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.hdr.csum_start = 190;
	h.hdr.csum_offset = 16;
	tx_frame(sent++, &h, f, sizeof(f));
	/* TSO without HOST_TSO4 */
	memset(&h, 0, sizeof(h));
	h.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h.hdr.gso_size = 100;
	h.hdr.csum_start = 34;
	h.hdr.csum_offset = 16;
	tx_frame(sent++, &h, f, sizeof(f));
	/* unknown GSO type, unknown flags */
	memset(&h, 0, sizeof(h));
	h.hdr.gso_type = 77;
	tx_frame(sent++, &h, f, sizeof(f));
	memset(&h, 0, sizeof(h));
	h.hdr.flags = 0x80;
	tx_frame(sent++, &h, f, sizeof(f));
	/* shorter than the header; writable buffers; a runt frame */
	add_chain(1, shortb, 1);
	sent++;
	add_chain(1, writable, 2);
	sent++;
	memset(&h, 0, sizeof(h));
	tx_frame(sent++, &h, f, 10);
	/* and a good one */
	tx_frame(sent++, &h, f, sizeof(f));
	kick(1);
	ck_assert(wait_used(1, sent));
	for (unsigned i = 0; i < sent; i++)
		ck_assert_uint_eq(take_used(1).len, 0);
	ck_assert_int_eq(psock_recv(ps, got, sizeof(got), 0, 2000),
			 (ssize_t)sizeof(f));
	ck_assert_mem_eq(got, f, sizeof(f));
	ck_assert_int_eq(psock_recv(ps, got, sizeof(got), 0, 100), -1);
	ck_assert_uint_eq(status() & VIRTIO_STATUS_NEEDS_RESET, 0);
	ck_assert_int_ge(log_count, (int)sent - 1);
	close(ps);
}
END_TEST

/* ---- RX ---- */

/* Give queue 0 n chains of one writable buffer of len bytes each. */
static void rx_buffers(unsigned n, uint32_t len)
{
	for (unsigned i = 0; i < n; i++) {
		struct buf b = { BUFS + 0x400000 + (tq[0].next_desc % QSZ) *
				 0x11000ULL, len, true };

		add_chain(0, &b, 1);
	}
}

static void far_send(int ps, const uint8_t *f, size_t len)
{
	ck_assert_int_eq(send(ps, f, len, 0), (ssize_t)len);
}

START_TEST(rx_mergeable)
{
	int ps = setup_dev(",mtu=9000", false);
	static uint8_t f[9014];
	struct virtio_net_hdr_mrg_rxbuf h;
	uint8_t mac[6];
	struct vring_used_elem u[3];

	driver_init(std_features, 2);
	cfg_read(0, mac, 6);
	rx_buffers(32, 4096);
	kick(0);
	/* a 1500-byte frame in one buffer */
	make_frame(f, 1514, mac, far_mac, 3);
	far_send(ps, f, 1514);
	ck_assert(wait_used(0, 1));
	u[0] = take_used(0);
	ck_assert_uint_eq(u[0].len, 12 + 1514);
	memcpy(&h, ram + desc(0, u[0].id)->addr, 12);
	ck_assert_uint_eq(h.num_buffers, 1);
	ck_assert_mem_eq(ram + desc(0, u[0].id)->addr + 12, f, 1514);
	/* a 9014-byte frame over three */
	make_frame(f, sizeof(f), mac, far_mac, 4);
	far_send(ps, f, sizeof(f));
	ck_assert(wait_used(0, 3));
	for (unsigned i = 0; i < 3; i++)
		u[i] = take_used(0);
	memcpy(&h, ram + desc(0, u[0].id)->addr, 12);
	ck_assert_uint_eq(h.num_buffers, 3);
	ck_assert_uint_eq(u[0].len, 4096);
	ck_assert_uint_eq(u[1].len, 4096);
	ck_assert_uint_eq(u[2].len, 12 + sizeof(f) - 8192);
	ck_assert_mem_eq(ram + desc(0, u[0].id)->addr + 12, f, 4096 - 12);
	ck_assert_mem_eq(ram + desc(0, u[1].id)->addr, f + 4084, 4096);
	ck_assert_mem_eq(ram + desc(0, u[2].id)->addr, f + 8180,
			 sizeof(f) - 8180);
	close(ps);
}
END_TEST

START_TEST(rx_without_mergeable)
{
	int ps = setup_dev("", false);
	uint8_t f[1514], mac[6];
	struct virtio_net_hdr_mrg_rxbuf h;
	struct vring_used_elem u;

	driver_init(std_features & ~(1ULL << VIRTIO_NET_F_MRG_RXBUF |
				     1ULL << VIRTIO_NET_F_GUEST_TSO4), 2);
	cfg_read(0, mac, 6);
	/* one chain: header + frame in two buffers */
	{
		struct buf b[2] = { { BUFS + 0x400000, 12, true },
				    { BUFS + 0x401000, 1514, true } };

		add_chain(0, b, 2);
	}
	kick(0);
	make_frame(f, sizeof(f), mac, far_mac, 5);
	far_send(ps, f, sizeof(f));
	ck_assert(wait_used(0, 1));
	u = take_used(0);
	ck_assert_uint_eq(u.len, 12 + sizeof(f));
	memcpy(&h, ram + BUFS + 0x400000, 12);
	ck_assert_uint_eq(h.num_buffers, 1);
	ck_assert_mem_eq(ram + BUFS + 0x401000, f, sizeof(f));
	close(ps);
}
END_TEST

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* No room: the device stops reading the TAP and does not spin; a refill
 * notify brings the frames that waited in the TAP. */
START_TEST(rx_starved_waits_for_refill)
{
	int ps = setup_dev("", false);
	uint8_t f[600], mac[6];
	double c0;

	driver_init(std_features, 2);
	cfg_read(0, mac, 6);
	usleep(50000);	/* past the device's polling window */
	c0 = cpu_seconds();
	for (unsigned i = 0; i < 20; i++) {
		make_frame(f, sizeof(f), mac, far_mac, (uint8_t)i);
		far_send(ps, f, sizeof(f));
	}
	usleep(300000);
	ck_assert_msg(cpu_seconds() - c0 < 0.1, "device spun: %.3f s CPU",
		      cpu_seconds() - c0);
	ck_assert_uint_eq(used_idx(0), 0);
	rx_buffers(32, 2048);
	kick(0);
	ck_assert(wait_used(0, 20));
	for (unsigned i = 0; i < 20; i++) {
		struct vring_used_elem u = take_used(0);

		make_frame(f, sizeof(f), mac, far_mac, (uint8_t)i);
		ck_assert_uint_eq(u.len, 12 + sizeof(f));
		ck_assert_mem_eq(ram + desc(0, u.id)->addr + 12, f, sizeof(f));
	}
	close(ps);
}
END_TEST

/* Fewer buffers than the largest frame needs (GUEST_TSO4): small frames
 * still flow, and a frame longer than what is there waits (its tail in the
 * device's spill area) for the next buffers and arrives whole. */
START_TEST(rx_frame_waits_for_more_buffers)
{
	int ps = setup_dev(",mtu=9000", false);
	static uint8_t f[5000];
	uint8_t mac[6];
	struct virtio_net_hdr_mrg_rxbuf h;
	struct vring_used_elem u[3];

	driver_init(std_features, 2);
	cfg_read(0, mac, 6);
	rx_buffers(3, 2048);
	kick(0);
	make_frame(f, 100, mac, far_mac, 1);
	far_send(ps, f, 100);
	ck_assert(wait_used(0, 1));
	ck_assert_uint_eq(take_used(0).len, 112);
	make_frame(f, sizeof(f), mac, far_mac, 2);
	far_send(ps, f, sizeof(f));
	usleep(100000);
	ck_assert_uint_eq(used_idx(0), 1);	/* 4096 bytes are not enough */
	rx_buffers(1, 2048);
	kick(0);
	ck_assert(wait_used(0, 3));
	for (unsigned i = 0; i < 3; i++)
		u[i] = take_used(0);
	memcpy(&h, ram + desc(0, u[0].id)->addr, 12);
	ck_assert_uint_eq(h.num_buffers, 3);
	ck_assert_uint_eq(u[0].len + u[1].len + u[2].len, 12 + sizeof(f));
	ck_assert_mem_eq(ram + desc(0, u[0].id)->addr + 12, f, 2036);
	ck_assert_mem_eq(ram + desc(0, u[1].id)->addr, f + 2036, 2048);
	ck_assert_mem_eq(ram + desc(0, u[2].id)->addr, f + 4084,
			 sizeof(f) - 4084);
	close(ps);
}
END_TEST

/* A reset while the device holds posted receive buffers (and the tail of
 * a frame that did not fit) returns at once and the device starts over. */
START_TEST(reset_with_buffers_held)
{
	int ps = setup_dev(",mtu=9000", false);
	static uint8_t f[5000];
	uint8_t mac[6];
	struct timespec t0, t1;

	driver_init(std_features, 2);
	cfg_read(0, mac, 6);
	rx_buffers(2, 2048);
	kick(0);
	make_frame(f, sizeof(f), mac, far_mac, 1);
	far_send(ps, f, sizeof(f));		/* spills: 4096 bytes posted */
	usleep(100000);
	ck_assert_uint_eq(used_idx(0), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_uint_eq(driver_init(std_features, 2) &
			  VIRTIO_STATUS_NEEDS_RESET, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 2);
	rx_buffers(8, 2048);
	kick(0);
	make_frame(f, 1000, mac, far_mac, 2);
	far_send(ps, f, 1000);
	ck_assert(wait_used(0, 1));
	{
		struct vring_used_elem u = take_used(0);

		ck_assert_uint_eq(u.len, 12 + 1000);
		ck_assert_mem_eq(ram + desc(0, u.id)->addr + 12, f, 1000);
	}
	close(ps);
}
END_TEST

/* A 64 KiB TSO frame from the far end reaches a GUEST_TSO4 driver whole,
 * with its GSO header. */
START_TEST(rx_tso_frame_whole)
{
	int ps = setup_dev("", true);
	static uint8_t pkt[10 + 60000];
	struct virtio_net_hdr *vh = (struct virtio_net_hdr *)pkt;
	uint8_t *f = pkt + 10, mac[6];
	struct virtio_net_hdr_mrg_rxbuf h;
	unsigned nb = 0;
	uint32_t total = 0;

	driver_init(std_features, 2);
	cfg_read(0, mac, 6);
	rx_buffers(60, 4096);
	kick(0);
	make_frame(f, 60000, mac, far_mac, 1);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(f + 14, 0, 40);
	f[14] = 0x45;
	f[16] = (uint8_t)((60000 - 14) >> 8);
	f[17] = (uint8_t)(60000 - 14);
	f[22] = 64;
	f[23] = 6;
	memcpy(f + 26, (uint8_t[]){ 10, 0, 0, 1, 10, 0, 0, 2 }, 8);
	f[46] = 0x50;
	memset(vh, 0, sizeof(*vh));
	vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	vh->gso_size = 1448;
	vh->hdr_len = 54;
	vh->csum_start = 34;
	vh->csum_offset = 16;
	ck_assert_int_eq(send(ps, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
	ck_assert(wait_used(0, 1));
	{
		struct vring_used_elem u = *used_elem(0, 0);

		memcpy(&h, ram + desc(0, u.id)->addr, 12);
	}
	ck_assert_uint_eq(h.hdr.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	ck_assert_uint_eq(h.hdr.gso_size, 1448);
	nb = h.num_buffers;
	ck_assert(wait_used(0, nb));
	for (unsigned i = 0; i < nb; i++)
		total += take_used(0).len;
	ck_assert_uint_eq(total, 12 + 60000);
	ck_assert_uint_eq(nb, (12 + 60000 + 4095) / 4096);
	close(ps);
}
END_TEST

START_TEST(rx_hostile_chains_need_reset)
{
	static const char *const cases[] = {
		"readable", "short", "twice", "outside",
	};

	int ps = setup_dev("", false);

	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		driver_init(std_features, 2);
		if (c == 0) {
			struct buf b = { BUFS + 0x400000, 4096, false };

			add_chain(0, &b, 1);
		} else if (c == 1) {
			struct buf b = { BUFS + 0x400000, 8, true };

			add_chain(0, &b, 1);
		} else if (c == 2) {
			struct buf b = { BUFS + 0x400000, 4096, true };
			uint16_t head = add_chain(0, &b, 1);
			uint16_t idx = avail(0)[1];

			avail(0)[2 + idx % QSZ] = head;
			avail(0)[1] = (uint16_t)(idx + 1);
		} else {
			struct buf b = { RAM_SIZE - 100, 4096, true };

			add_chain(0, &b, 1);
		}
		kick(0);
		ck_assert_msg(wait_needs_reset(), "%s: no NEEDS_RESET",
			      cases[c]);
		/* a reset and a normal start work again */
		ck_assert_uint_eq(driver_init(std_features, 2) &
				  VIRTIO_STATUS_NEEDS_RESET, 0);
		{
			uint8_t f[100], mac[6];

			cfg_read(0, mac, 6);
			rx_buffers(4, 2048);
			kick(0);
			make_frame(f, sizeof(f), mac, far_mac, 1);
			far_send(ps, f, sizeof(f));
			ck_assert_msg(wait_used(0, 1), "%s: no RX after reset",
				      cases[c]);
		}
	}
	close(ps);
}
END_TEST

/* A frame bigger than a non-mergeable chain is dropped, not cut. */
START_TEST(rx_too_small_buffer_drops)
{
	int ps = setup_dev("", false);
	uint8_t f[1514], mac[6];
	struct buf b = { BUFS + 0x400000, 500, true };

	driver_init(std_features & ~(1ULL << VIRTIO_NET_F_MRG_RXBUF |
				     1ULL << VIRTIO_NET_F_GUEST_TSO4), 2);
	cfg_read(0, mac, 6);
	add_chain(0, &b, 1);
	kick(0);
	make_frame(f, sizeof(f), mac, far_mac, 1);
	far_send(ps, f, sizeof(f));
	make_frame(f, 300, mac, far_mac, 2);
	far_send(ps, f, 300);
	/* the small frame lands in the chain the big one could not use */
	ck_assert(wait_used(0, 1));
	ck_assert_uint_eq(take_used(0).len, 12 + 300);
	ck_assert_mem_eq(ram + BUFS + 0x400000 + 12, f, 300);
	close(ps);
}
END_TEST

/* ---- the rest ---- */

START_TEST(feature_dependencies)
{
	int ps = setup_dev("", false);

	/* GUEST_TSO4 needs GUEST_CSUM */
	ck_assert(driver_init(std_features &
			      ~(1ULL << VIRTIO_NET_F_GUEST_CSUM), 2) &
		  VIRTIO_STATUS_NEEDS_RESET);
	/* HOST_TSO4 needs CSUM */
	ck_assert(driver_init(std_features & ~(1ULL << VIRTIO_NET_F_CSUM), 2) &
		  VIRTIO_STATUS_NEEDS_RESET);
	/* no TX queue */
	ck_assert(driver_init(std_features, 1) & VIRTIO_STATUS_NEEDS_RESET);
	ck_assert_uint_eq(driver_init(std_features, 2) &
			  VIRTIO_STATUS_NEEDS_RESET, 0);
	close(ps);
}
END_TEST

START_TEST(notify_on_unset_queue)
{
	int ps = setup_dev("", false);
	uint8_t f[100];
	struct virtio_net_hdr_mrg_rxbuf h = { 0 };

	/* RX only set up: notifies of queue 1 and beyond are harmless */
	driver_init(std_features, 1);
	for (unsigned q = 1; q < 8; q++)
		wr32(VIRTIO_MMIO_QUEUE_NOTIFY, q);
	kick(1);
	usleep(20000);
	ck_assert_uint_eq(driver_init(std_features, 2) &
			  VIRTIO_STATUS_NEEDS_RESET, 0);
	make_frame(f, sizeof(f), far_mac, far_mac, 1);
	tx_frame(0, &h, f, sizeof(f));
	kick(1);
	ck_assert(wait_used(1, 1));
	close(ps);
}
END_TEST

START_TEST(tap_deleted_link_down)
{
	int ps = setup_dev("", false);
	uint8_t f[100];
	struct virtio_net_hdr_mrg_rxbuf h = { 0 };
	double c0;

	driver_init(std_features, 2);
	rx_buffers(8, 2048);
	kick(0);
	irq_count();
	close(ps);
	sh("ip link del vt0");
	/* the next TX finds the TAP gone (the RX side may find it first) */
	make_frame(f, sizeof(f), far_mac, far_mac, 1);
	tx_frame(0, &h, f, sizeof(f));
	kick(1);
	ck_assert(wait_used(1, 1));
	for (int i = 0; i < 200 && (cfg16(6) & VIRTIO_NET_S_LINK_UP); i++)
		usleep(5000);
	ck_assert_uint_eq(cfg16(6) & VIRTIO_NET_S_LINK_UP, 0);
	ck_assert(rd32(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	ck_assert_msg(strstr(last_log, "link down"), "%s", last_log);
	/* later frames complete (dropped); nothing spins */
	usleep(50000);
	c0 = cpu_seconds();
	tx_frame(1, &h, f, sizeof(f));
	kick(1);
	ck_assert(wait_used(1, 2));
	usleep(300000);
	ck_assert_msg(cpu_seconds() - c0 < 0.1, "device spun: %.3f s CPU",
		      cpu_seconds() - c0);
}
END_TEST

/* The TAP goes while no driver runs the device: no spin either. */
START_TEST(tap_deleted_while_inactive)
{
	int ps = setup_dev("", false);
	double c0;

	close(ps);
	usleep(50000);
	c0 = cpu_seconds();
	sh("ip link del vt0");
	usleep(300000);
	ck_assert_msg(cpu_seconds() - c0 < 0.1, "device spun: %.3f s CPU",
		      cpu_seconds() - c0);
	/* a driver still starts it; its frames are dropped */
	ck_assert_uint_eq(driver_init(std_features, 2) &
			  VIRTIO_STATUS_NEEDS_RESET, 0);
	{
		uint8_t f[100];
		struct virtio_net_hdr_mrg_rxbuf h = { 0 };

		make_frame(f, sizeof(f), far_mac, far_mac, 1);
		tx_frame(0, &h, f, sizeof(f));
		kick(1);
		ck_assert(wait_used(1, 1));
	}
	for (int i = 0; i < 200 && (cfg16(6) & VIRTIO_NET_S_LINK_UP); i++)
		usleep(5000);
	ck_assert_uint_eq(cfg16(6) & VIRTIO_NET_S_LINK_UP, 0);
}
END_TEST

/* queues=2: five queues (two pairs and control); VQ_PAIRS_SET answers OK
 * for 1..2 and ERR beyond; a frame on pair 1's TX queue goes out. */
static uint8_t ctrl_cmd(uint8_t cls, uint8_t cmd, uint16_t arg)
{
	uint64_t a = BUFS + 0x300000;
	struct buf b[3] = { { a, 2, false }, { a + 16, 2, false },
			    { a + 32, 1, true } };

	ram[a] = cls;
	ram[a + 1] = cmd;
	memcpy(ram + a + 16, &arg, 2);
	ram[a + 32] = 0xee;
	add_chain(4, b, 3);
	kick(4);
	ck_assert(wait_used(4, 1));
	ck_assert_uint_eq(take_used(4).len, 1);
	return ram[a + 32];
}

START_TEST(multiqueue)
{
	char err[256];
	int ps;
	uint8_t f[200];
	struct virtio_net_hdr_mrg_rxbuf h = { 0 };
	uint64_t feats = std_features | 1ULL << VIRTIO_NET_F_MQ |
			 1ULL << VIRTIO_NET_F_CTRL_VQ;

	make_tap("vt0", true);
	ck_assert_msg(create("tap=vt0,queues=2", err, sizeof(err)) == 0, "%s",
		      err);
	wait_carrier("vt0");
	ps = psock_open("vt0", false);
	ck_assert(dev_features() & (1ULL << VIRTIO_NET_F_MQ));
	ck_assert_uint_eq(cfg16(8), 2);
	ck_assert_uint_eq(driver_init(feats, 5) & VIRTIO_STATUS_NEEDS_RESET, 0);
	ck_assert_uint_eq(ctrl_cmd(VIRTIO_NET_CTRL_MQ,
				   VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 2),
			  VIRTIO_NET_OK);
	ck_assert_uint_eq(ctrl_cmd(VIRTIO_NET_CTRL_MQ,
				   VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 3),
			  VIRTIO_NET_ERR);
	ck_assert_uint_eq(ctrl_cmd(VIRTIO_NET_CTRL_RX, 0, 1), VIRTIO_NET_ERR);
	make_frame(f, sizeof(f), far_mac, far_mac, 7);
	{
		uint64_t a = BUFS + 0x500000;
		struct buf b[2] = { { a, 12, false }, { a + 0x100, 200, false } };

		memcpy(ram + a, &h, 12);
		memcpy(ram + a + 0x100, f, 200);
		add_chain(3, b, 2);
		kick(3);
	}
	ck_assert(wait_used(3, 1));
	{
		uint8_t got[2048];

		ck_assert_int_eq(psock_recv(ps, got, sizeof(got), 0, 2000),
				 200);
		ck_assert_mem_eq(got, f, 200);
	}
	close(ps);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_net");
	TCase *p = tcase_create("parse");
	TCase *t = tcase_create("tap");

	tcase_add_test(p, parse_options);
	suite_add_tcase(s, p);
	if (!have_tap)
		return s;
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 30);
	tcase_add_test(t, missing_tap);
	tcase_add_test(t, not_a_tap);
	tcase_add_test(t, busy_tap);
	tcase_add_test(t, registers_and_config);
	tcase_add_test(t, default_mac_is_stable);
	tcase_add_test(t, creates_tap_without_name);
	tcase_add_test(t, tx_batch_one_interrupt);
	tcase_add_test(t, tx_tso_frame_passes_whole);
	tcase_add_test(t, tx_hostile_headers_dropped);
	tcase_add_test(t, rx_mergeable);
	tcase_add_test(t, rx_without_mergeable);
	tcase_add_test(t, rx_starved_waits_for_refill);
	tcase_add_test(t, rx_frame_waits_for_more_buffers);
	tcase_add_test(t, rx_tso_frame_whole);
	tcase_add_test(t, reset_with_buffers_held);
	tcase_add_test(t, rx_hostile_chains_need_reset);
	tcase_add_test(t, rx_too_small_buffer_drops);
	tcase_add_test(t, feature_dependencies);
	tcase_add_test(t, notify_on_unset_queue);
	tcase_add_test(t, tap_deleted_link_down);
	tcase_add_test(t, tap_deleted_while_inactive);
	tcase_add_test(t, multiqueue);
	suite_add_tcase(s, t);
	return s;
}

/* Can this process make a network namespace with a TAP in it? */
static bool tap_possible(void)
{
	pid_t pid;
	int st;

	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0)
		return false;
	pid = fork();
	if (pid == 0)
		_exit(unshare(CLONE_NEWNET) == 0 ? 0 : 1);
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	       WEXITSTATUS(st) == 0;
}

int main(void)
{
	have_tap = tap_possible();
	if (!have_tap)
		printf("virtio_net: not root, no /dev/net/tun or no network "
		       "namespaces: TAP tests skipped, parser only\n");
	return check_run(suite());
}
