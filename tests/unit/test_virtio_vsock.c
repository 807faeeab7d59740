/* tests/unit/test_virtio_vsock.c - the virtio-vsock device driven through
 * its registers by a small driver written here, on crafted rings in a fake
 * struct vm (guest RAM is plain memory, notifies are the eventfds the
 * device hands to "KVM"), with the real device thread and real host Unix
 * sockets in a temporary directory. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/guest_log.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_vsock.h"
#include "devices/virtqueue.h"
#include "vmm/tsan.h"
#include "vmm/vm.h"
#include "tests/unit/check_main.h"

/* ---- fake struct vm: tests/unit/fake_vm.h ---- */
#define RAM_SIZE	(16u << 20)
#include "tests/unit/fake_vm.h"

/* ---- a small vsock driver on crafted rings ---- */
#define QSZ		64
#define QBASE(q)	(0x10000ULL * ((q) + 1))	/* desc, +0x400 avail, +0x800 used */
#define RXBUF(i)	(0x100000ULL + (i) * 0x2000ULL)	/* header at +0, data at +0x100 */
#define RXDATA		4096
#define TXBUF(i)	(0x200000ULL + (i) * 0x12000ULL)
#define TXSLOTS		16
#define EVBUF		0x600000ULL
#define HDR		((uint32_t)sizeof(struct virtio_vsock_hdr))
#define CID		3
#define RX 0
#define TX 1
#define EV 2

static uint8_t *ram;
static char dir[64], uds[128];
static struct vsock_dev *dev;
static uint16_t avail_idx[3], seen_used[3];
static unsigned tx_next;



static struct vring_desc *desc(unsigned q, unsigned i)
{
	return (struct vring_desc *)(ram + QBASE(q)) + i;
}

static uint16_t *avail(unsigned q) { return (uint16_t *)(ram + QBASE(q) + 0x400); }
/* acquire, as a driver reads it: the used entries, the buffers filled
 * and the device's last look at the descriptors come first */
static uint16_t used_idx(unsigned q)
{
	return __atomic_load_n((uint16_t *)(ram + QBASE(q) + 0x800 + 2),
			       __ATOMIC_ACQUIRE);
}
static struct vring_used_elem *used_elem(unsigned q, uint16_t i)
{
	return (struct vring_used_elem *)(ram + QBASE(q) + 0x800 + 4) + i % QSZ;
}

static void offer(unsigned q, uint16_t head)
{
	avail(q)[2 + avail_idx[q] % QSZ] = head;
	avail_idx[q]++;
	__atomic_store_n(&avail(q)[1], avail_idx[q], __ATOMIC_RELEASE);
}

static void notify(unsigned q)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(fvm.dev[0].notify_fd[q], &one, 8), 8);
}

/* RX buffer i: descriptors 2i (header) and 2i+1 (data), as Linux 6.1. */
static void post_rx(unsigned i)
{
	*desc(RX, 2 * i) = (struct vring_desc){ RXBUF(i), HDR,
		VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)(2 * i + 1) };
	*desc(RX, 2 * i + 1) = (struct vring_desc){ RXBUF(i) + 0x100, RXDATA,
		VIRTQ_DESC_F_WRITE, 0 };
	offer(RX, (uint16_t)(2 * i));
}

static bool rx_posted;

/* Every rx buffer, once (rx_get offers each again after use). */
static void post_rx_all(void)
{
	if (rx_posted)
		return;
	rx_posted = true;
	for (unsigned i = 0; i < QSZ / 2; i++)
		post_rx(i);
	notify(RX);
}

static void driver_init(void)
{
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	wr32(VIRTIO_MMIO_STATUS, 0);
	memset(ram, 0, 0x100000);
	memset(avail_idx, 0, sizeof(avail_idx));
	memset(seen_used, 0, sizeof(seen_used));
	tx_next = 0;
	rx_posted = false;
	wr32(VIRTIO_MMIO_STATUS, st);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES, 1u << VIRTIO_F_EVENT_IDX);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES, 1);	/* VERSION_1 */
	st |= VIRTIO_STATUS_FEATURES_OK;
	wr32(VIRTIO_MMIO_STATUS, st);
	ck_assert(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < 3; q++) {
		wr32(VIRTIO_MMIO_QUEUE_SEL, q);
		wr32(VIRTIO_MMIO_QUEUE_NUM, QSZ);
		wr32(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)QBASE(q));
		wr32(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)QBASE(q) + 0x400);
		wr32(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)QBASE(q) + 0x800);
		wr32(VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr32(VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	ck_assert(!(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET));
}

struct pkt {
	struct virtio_vsock_hdr h;
	uint8_t data[RXDATA];
};

/* The next packet the device put on the rx queue (the buffer is offered
 * again); false after timeout_ms. */
static bool rx_get(struct pkt *p, int timeout_ms)
{
	for (int t = 0; t <= timeout_ms; t++) {
		if (used_idx(RX) != seen_used[RX]) {
			struct vring_used_elem *u = used_elem(RX, seen_used[RX]++);
			unsigned i = u->id / 2;

			ck_assert_uint_ge(u->len, HDR);
			memcpy(&p->h, ram + RXBUF(i), HDR);
			ck_assert_uint_eq(u->len, HDR + p->h.len);
			memcpy(p->data, ram + RXBUF(i) + 0x100, p->h.len);
			post_rx(i);
			notify(RX);
			return true;
		}
		usleep(1000);
	}
	return false;
}

/* The next packet that is not a credit update. */
static bool rx_get_nc(struct pkt *p, int timeout_ms)
{
	while (rx_get(p, timeout_ms))
		if (p->h.op != VIRTIO_VSOCK_OP_CREDIT_UPDATE)
			return true;
	return false;
}

static void tx_wait_all(void)
{
	for (int t = 0; t < 5000 && used_idx(TX) != avail_idx[TX]; t++)
		usleep(1000);
	ck_assert_uint_eq(used_idx(TX), avail_idx[TX]);
}

/* Queue a packet (header fields as given) on the tx queue and kick. */
static void tx_raw(const struct virtio_vsock_hdr *h, uint32_t hdr_bytes,
		   const void *data, uint32_t data_bytes)
{
	unsigned s = tx_next++ % TXSLOTS;

	if (tx_next > TXSLOTS && (uint16_t)(avail_idx[TX] - used_idx(TX)) >= TXSLOTS)
		tx_wait_all();
	memcpy(ram + TXBUF(s), h, hdr_bytes);
	*desc(TX, 2 * s) = (struct vring_desc){ TXBUF(s), hdr_bytes,
		data_bytes ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(2 * s + 1) };
	if (data_bytes) {
		memcpy(ram + TXBUF(s) + 0x100, data, data_bytes);
		*desc(TX, 2 * s + 1) = (struct vring_desc){ TXBUF(s) + 0x100,
			data_bytes, 0, 0 };
	}
	offer(TX, (uint16_t)(2 * s));
	notify(TX);
}

static uint32_t guest_fwd;	/* bytes the "guest application" consumed */
static uint32_t guest_buf = 256 * 1024;	/* the buf_alloc it advertises */

static void tx(uint16_t op, uint32_t src_port, uint32_t dst_port,
	       uint32_t flags, const void *data, uint32_t len)
{
	struct virtio_vsock_hdr h = {
		.src_cid = CID, .dst_cid = VSOCK_HOST_CID,
		.src_port = src_port, .dst_port = dst_port, .len = len,
		.type = VIRTIO_VSOCK_TYPE_STREAM, .op = op, .flags = flags,
		.buf_alloc = guest_buf, .fwd_cnt = guest_fwd,
	};

	tx_raw(&h, HDR, data, len);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_uint_lt(strlen(path), sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path));
	ck_assert_int_ge(fd, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_uint_lt(strlen(path), sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path));
	unlink(path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 128), 0);
	return fd;
}

/* Read up to n bytes with a timeout; returns bytes, 0 at EOF, -1 timeout. */
static ssize_t read_tmo(int fd, void *buf, size_t n, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return read(fd, buf, n);
}

/* Exactly n bytes (ck fails otherwise). */
static void read_exact(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read_tmo(fd, (char *)buf + got, n - got, 5000);

		ck_assert_msg(r > 0, "read %zd after %zu of %zu bytes", r, got, n);
		got += (size_t)r;
	}
}

/* The peer closed: end of file, or a reset when it closed with our data
 * unread. */
static bool at_eof(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;
	ssize_t r;

	if (poll(&p, 1, 5000) != 1)
		return false;
	r = read(fd, &c, 1);
	return r == 0 || (r < 0 && errno == ECONNRESET);
}

static void setup(void)
{
	struct virtio_vsock_cfg cfg = { .cid = CID };
	char err[256] = "";

	memset(&fvm, 0, sizeof(fvm));
	ram = aligned_alloc(4096, RAM_SIZE);
	/* the test plays the guest in it: as in a VM (vm_create) */
	tsan_guest_ram(ram, RAM_SIZE);
	memset(ram, 0, RAM_SIZE);
	fvm.mem = (struct guest_mem){ ram, RAM_SIZE, RAM_SIZE };
	snprintf(dir, sizeof(dir), "/tmp/vsock-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	cfg.uds = uds;
	log_count = 0;
	guest_fwd = 0;
	guest_buf = 256 * 1024;
	dev = virtio_vsock_create(&fvm, &cfg, err, sizeof(err));
	ck_assert_msg(dev != NULL, "create: %s", err);
	driver_init();
}

static void teardown(void)
{
	char cmd[200];

	fake_destroy_all();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", dir);
	free(ram);
}

/* Host connects with line; the guest sees a REQUEST to port and accepts
 * (or resets).  Returns the host fd; *host_port the port vmm gave it. */
static int host_connect(const char *line, uint32_t port, bool accept_it,
			uint32_t *host_port)
{
	struct pkt p;
	int fd = unix_connect(uds);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	ck_assert_msg(rx_get_nc(&p, 5000), "no REQUEST for '%s'", line);
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	ck_assert_uint_eq(p.h.src_cid, VSOCK_HOST_CID);
	ck_assert_uint_eq(p.h.dst_cid, CID);
	ck_assert_uint_eq(p.h.dst_port, port);
	ck_assert_uint_eq(p.h.type, VIRTIO_VSOCK_TYPE_STREAM);
	ck_assert_uint_eq(p.h.buf_alloc, VSOCK_BUF_ALLOC);
	*host_port = p.h.src_port;
	tx(accept_it ? VIRTIO_VSOCK_OP_RESPONSE : VIRTIO_VSOCK_OP_RST, port,
	   p.h.src_port, 0, NULL, 0);
	return fd;
}

static int established_host_conn(uint32_t port, uint32_t *host_port)
{
	char line[40], ok[40];
	int fd;

	snprintf(line, sizeof(line), "CONNECT %u\n", port);
	post_rx_all();
	fd = host_connect(line, port, true, host_port);
	snprintf(line, sizeof(line), "OK %u\n", *host_port);
	read_exact(fd, ok, strlen(line));
	ok[strlen(line)] = 0;
	ck_assert_str_eq(ok, line);
	return fd;
}

/* The device closes a host connection without asking the guest. */
static void refused_host_conn(uint32_t port)
{
	char line[40];
	int fd = unix_connect(uds);

	ck_assert_int_ge(fd, 0);
	snprintf(line, sizeof(line), "CONNECT %u\n", port);
	post_rx_all();
	ck_assert_int_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	ck_assert(at_eof(fd));
	close(fd);
}

START_TEST(registers_and_config)
{
	uint64_t cid;

	ck_assert_uint_eq(rd32(VIRTIO_MMIO_DEVICE_ID), 19);
	fvm.dev[0].rd(fvm.dev[0].opaque, VIRTIO_MMIO_CONFIG, &cid, 8);
	ck_assert_uint_eq(cid, CID);
}
END_TEST

START_TEST(option_parsing)
{
	const struct device_type *t = &virtio_vsock_type;
	struct virtio_vsock_cfg c;
	char v[300], err[200];
	static const char *bad[] = {
		"cid=2,uds=/tmp/x", "cid=0,uds=/tmp/x", "cid=x,uds=/tmp/x",
		"cid=4294967295,uds=/tmp/x", "cid=-3,uds=/tmp/x", "uds=/tmp/x",
		"cid=3", "cid=3,uds=", "cid=3,uds=/tmp/x,port=1", "cid=3,uds",
	};

	ck_assert_str_eq(t->option, "vsock");
	ck_assert_uint_eq(t->max, 1);
	ck_assert_uint_eq(t->config_size, sizeof(c));
	memset(&c, 0, sizeof(c));
	snprintf(v, sizeof(v), "cid=42,uds=/run/v.sock");
	ck_assert_int_eq(t->parse(v, &c, 0, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.cid, 42);
	ck_assert_str_eq(c.uds, "/run/v.sock");
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&c, 0, sizeof(c));
		snprintf(v, sizeof(v), "%s", bad[i]);
		err[0] = 0;
		ck_assert_msg(t->parse(v, &c, 0, err, sizeof(err)) == -1,
			      "accepted %s", bad[i]);
		ck_assert_msg(err[0] && !strchr(err, '\n'), "no line for %s", bad[i]);
	}
	memset(&c, 0, sizeof(c));
	memset(v, 'a', sizeof(v));
	memcpy(v, "cid=3,uds=/", 11);
	v[120] = 0;
	ck_assert_int_eq(t->parse(v, &c, 0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "too long"));
}
END_TEST

START_TEST(host_initiated_data_both_ways)
{
	uint32_t hp;
	struct pkt p;
	char buf[64];
	int fd;

	post_rx_all();
	/* bytes right after the line are the first data */
	fd = host_connect("CONNECT 5000\nearly", 5000, true, &hp);
	ck_assert_uint_eq(hp, VSOCK_LOCAL_PORT_FIRST);
	read_exact(fd, buf, 14);
	ck_assert(!memcmp(buf, "OK 1073741824\n", 14));
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RW);
	ck_assert_uint_eq(p.h.len, 5);
	ck_assert(!memcmp(p.data, "early", 5));
	ck_assert_int_eq(write(fd, "hello", 5), 5);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RW);
	ck_assert_uint_eq(p.h.src_port, hp);
	ck_assert_uint_eq(p.h.dst_port, 5000);
	ck_assert_uint_eq(p.h.len, 5);
	ck_assert(!memcmp(p.data, "hello", 5));
	tx(VIRTIO_VSOCK_OP_RW, 5000, hp, 0, "world!", 6);
	read_exact(fd, buf, 6);
	ck_assert(!memcmp(buf, "world!", 6));
	/* the host closes: SHUTDOWN(RCV|SEND), the guest answers RST */
	close(fd);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	ck_assert_uint_eq(p.h.flags, 3);
	tx(VIRTIO_VSOCK_OP_RST, 5000, hp, 0, NULL, 0);
	/* a second connection gets the next port */
	fd = established_host_conn(5001, &hp);
	ck_assert_uint_eq(hp, VSOCK_LOCAL_PORT_FIRST + 1);
	close(fd);
	ck_assert_int_eq(log_count, 0);
}
END_TEST

START_TEST(host_initiated_refused)
{
	uint32_t hp;
	int fd;

	post_rx_all();
	fd = host_connect("CONNECT 6000\n", 6000, false, &hp);
	ck_assert_msg(at_eof(fd), "host connection not closed after RST");
	close(fd);
}
END_TEST

START_TEST(connect_line_rules)
{
	static const char *bad[] = {
		"BOGUS 1\n", "CONNECT\n", "CONNECT x\n", "CONNECT 4294967296\n",
		"CONNECT 1 2\n", "CONNECT -1\n",
		"CONNECT 00000000000000000000000000000001\n",	/* > 32 bytes */
	};
	uint32_t hp;
	struct pkt p;
	int fd;

	post_rx_all();
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = unix_connect(uds);
		ck_assert_int_eq(write(fd, bad[i], strlen(bad[i])),
				 (ssize_t)strlen(bad[i]));
		ck_assert_msg(at_eof(fd), "'%s' not refused", bad[i]);
		close(fd);
	}
	/* 32 bytes without a newline: over-long */
	fd = unix_connect(uds);
	ck_assert_int_eq(write(fd, "CONNECT 5                       ", 32), 32);
	ck_assert(at_eof(fd));
	close(fd);
	ck_assert(!rx_get(&p, 50));	/* the guest heard of none of them */
	/* case and spacing as Firecracker's parser; the line in pieces */
	fd = unix_connect(uds);
	ck_assert_int_eq(write(fd, "  CoNnEcT ", 10), 10);
	usleep(20000);
	ck_assert(!rx_get(&p, 20));
	ck_assert_int_eq(write(fd, " 77\r\n", 5), 5);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	ck_assert_uint_eq(p.h.dst_port, 77);
	tx(VIRTIO_VSOCK_OP_RESPONSE, 77, p.h.src_port, 0, NULL, 0);
	{
		char ok[32];
		ssize_t n = read_tmo(fd, ok, sizeof(ok), 5000);

		ck_assert_int_gt(n, 3);
		ck_assert(!memcmp(ok, "OK ", 3));
	}
	close(fd);
	(void)hp;
}
END_TEST

START_TEST(guest_initiated)
{
	char path[160], buf[64];
	int lfd, hfd;
	struct pkt p;

	snprintf(path, sizeof(path), "%s_5001", uds);
	lfd = unix_listen(path);
	post_rx_all();
	tx(VIRTIO_VSOCK_OP_REQUEST, 1234, 5001, 0, NULL, 0);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RESPONSE);
	ck_assert_uint_eq(p.h.src_port, 5001);
	ck_assert_uint_eq(p.h.dst_port, 1234);
	hfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(hfd, 0);
	tx(VIRTIO_VSOCK_OP_RW, 1234, 5001, 0, "ping", 4);
	read_exact(hfd, buf, 4);
	ck_assert(!memcmp(buf, "ping", 4));
	ck_assert_int_eq(write(hfd, "pong", 4), 4);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RW);
	ck_assert(!memcmp(p.data, "pong", 4));
	/* nobody at PATH_5002: RST */
	tx(VIRTIO_VSOCK_OP_REQUEST, 1235, 5002, 0, NULL, 0);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert_uint_eq(p.h.src_port, 5002);
	ck_assert_uint_eq(p.h.dst_port, 1235);
	/* guest RST closes the host side */
	tx(VIRTIO_VSOCK_OP_RST, 1234, 5001, 0, NULL, 0);
	ck_assert(at_eof(hfd));
	close(hfd);
	close(lfd);
}
END_TEST

/* Linux caps what it sends unacknowledged at its own buf_alloc (256 KiB),
 * below our 1 MiB: the credit update must come before it has used that,
 * or it waits for credit forever (a 10 MiB exec stalled at 256 KiB). */
START_TEST(credit_update_within_guest_window)
{
	static uint8_t chunk[16384], buf[16384];
	char path[160];
	int lfd, hfd;
	struct pkt p;
	uint32_t sent = 0;
	bool updated = false;

	snprintf(path, sizeof(path), "%s_7001", uds);
	lfd = unix_listen(path);
	post_rx_all();
	tx(VIRTIO_VSOCK_OP_REQUEST, 11, 7001, 0, NULL, 0);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RESPONSE);
	hfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(hfd, 0);
	/* the host reads everything: the device forwards at once */
	while (sent < 256 * 1024 && !updated) {
		tx(VIRTIO_VSOCK_OP_RW, 11, 7001, 0, chunk, sizeof(chunk));
		sent += sizeof(chunk);
		tx_wait_all();
		read_exact(hfd, buf, sizeof(buf));
		while (rx_get(&p, 0))
			if (p.h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE &&
			    p.h.fwd_cnt > 0)
				updated = true;
	}
	for (int t = 0; !updated && t < 1000; t++)
		if (rx_get(&p, 5) && p.h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE)
			updated = true;
	ck_assert_msg(updated, "no credit update within the guest's 256 KiB "
		      "window (%u bytes sent)", sent);
	ck_assert_int_eq(log_count, 0);
	close(hfd);
	close(lfd);
}
END_TEST

/* The guest sends more than the credit it was given: RST, host closed. */
START_TEST(credit_overrun)
{
	static uint8_t chunk[VSOCK_MAX_PKT];
	char path[160];
	int lfd, hfd;
	struct pkt p;
	uint32_t sent = 0;

	snprintf(path, sizeof(path), "%s_7000", uds);
	lfd = unix_listen(path);
	post_rx_all();
	/* a guest whose own window is ours: no credit update before half
	 * of it, by which time the unread host socket holds data back */
	guest_buf = VSOCK_BUF_ALLOC;
	tx(VIRTIO_VSOCK_OP_REQUEST, 10, 7000, 0, NULL, 0);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RESPONSE);
	hfd = accept(lfd, NULL, NULL);
	/* no rx buffers now: no credit update can reach the guest */
	while (sent + VSOCK_MAX_PKT <= VSOCK_BUF_ALLOC) {
		tx(VIRTIO_VSOCK_OP_RW, 10, 7000, 0, chunk, VSOCK_MAX_PKT);
		sent += VSOCK_MAX_PKT;
		tx_wait_all();
	}
	ck_assert_int_eq(log_count, 0);
	tx(VIRTIO_VSOCK_OP_RW, 10, 7000, 0, chunk, 1);
	tx_wait_all();
	ck_assert_int_eq(log_count, 1);
	for (;;) {
		ck_assert(rx_get(&p, 5000));
		if (p.h.op != VIRTIO_VSOCK_OP_CREDIT_UPDATE)
			break;
	}
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert_uint_eq(p.h.dst_port, 10);
	/* the host got at most what was within credit (an RST drops what
	 * waited in the device), then the end */
	{
		static uint8_t buf[VSOCK_BUF_ALLOC + 1];
		size_t got = 0;
		ssize_t r;

		while ((r = read_tmo(hfd, buf + got, sizeof(buf) - got, 5000)) > 0)
			got += (size_t)r;
		ck_assert_int_eq(r, 0);
		ck_assert_uint_le(got, VSOCK_BUF_ALLOC);
	}
	close(hfd);
	close(lfd);
}
END_TEST

START_TEST(malformed_packets)
{
	struct virtio_vsock_hdr h = {
		.src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = 50,
		.dst_port = 60, .type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = VIRTIO_VSOCK_OP_RW, .buf_alloc = 4096,
	};
	struct virtio_vsock_hdr b;
	uint32_t hp;
	struct pkt p;
	char buf[8];
	int fd = established_host_conn(9000, &hp);

	/* wrong source CID, wrong destination CID, bad op, bad type,
	 * payload shorter than len, a control packet with payload, an
	 * oversized len, data for no connection: each is answered with
	 * RST to the sender's port */
	b = h; b.src_cid = 77; tx_raw(&b, HDR, NULL, 0);
	b = h; b.dst_cid = 9; tx_raw(&b, HDR, NULL, 0);
	b = h; b.op = 99; tx_raw(&b, HDR, NULL, 0);
	b = h; b.op = 0; tx_raw(&b, HDR, NULL, 0);
	b = h; b.type = VIRTIO_VSOCK_TYPE_SEQPACKET; tx_raw(&b, HDR, NULL, 0);
	b = h; b.len = 100; tx_raw(&b, HDR, "short", 5);
	b = h; b.op = VIRTIO_VSOCK_OP_CREDIT_UPDATE; b.len = 4; tx_raw(&b, HDR, "abcd", 4);
	b = h; b.len = VSOCK_MAX_PKT + 1; tx_raw(&b, HDR, "x", 1);
	b = h; b.len = 3; tx_raw(&b, HDR, "abc", 3);
	for (int i = 0; i < 9; i++) {
		ck_assert_msg(rx_get_nc(&p, 5000), "no reply %d", i);
		ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RST);
		ck_assert_uint_eq(p.h.dst_port, 50);
		ck_assert_uint_eq(p.h.src_port, 60);
	}
	/* a header cut short: dropped (nothing to answer), logged */
	tx_raw(&h, 20, NULL, 0);
	/* an RST for no connection: ignored, never answered */
	b = h; b.op = VIRTIO_VSOCK_OP_RST; tx_raw(&b, HDR, NULL, 0);
	tx_wait_all();
	ck_assert(!rx_get(&p, 100));
	ck_assert_int_ge(log_count, 9);
	/* the established connection did not notice */
	tx(VIRTIO_VSOCK_OP_RW, 9000, hp, 0, "still", 5);
	read_exact(fd, buf, 5);
	ck_assert(!memcmp(buf, "still", 5));
	ck_assert(!(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET));
	close(fd);
}
END_TEST

/* Guest-triggered log lines stop after a budget. */
START_TEST(logging_is_bounded)
{
	struct virtio_vsock_hdr h = {
		.src_cid = 99, .dst_cid = VSOCK_HOST_CID, .src_port = 1,
		.dst_port = 2, .type = 1, .op = VIRTIO_VSOCK_OP_RST,
	};

	for (int i = 0; i < 200; i++) {
		tx_raw(&h, HDR, NULL, 0);
		if (i % 8 == 7)
			tx_wait_all();
	}
	tx_wait_all();
	ck_assert_int_eq(log_count, GUEST_LOG_LINES);
}
END_TEST

/* A flood of requests to dead ports while the guest gives no rx buffers:
 * the device stops taking tx packets (bounded memory), then answers every
 * one once buffers come. */
START_TEST(request_flood)
{
	unsigned rst = 0, sent = 0;
	struct pkt p;
	uint32_t hp;
	int fd;

	/* no rx buffers: the device takes requests until it owes
	 * VSOCK_CTRL_QUEUE answers, then leaves the tx ring alone */
	while (sent < 600) {
		if ((uint16_t)(avail_idx[TX] - used_idx(TX)) >= TXSLOTS) {
			usleep(200000);
			if ((uint16_t)(avail_idx[TX] - used_idx(TX)) >= TXSLOTS)
				break;
			continue;
		}
		tx(VIRTIO_VSOCK_OP_REQUEST, 20000 + sent, 40000 + sent, 0, NULL, 0);
		sent++;
	}
	ck_assert_uint_eq(used_idx(TX), VSOCK_CTRL_QUEUE);
	/* buffers come: every request is answered, the rest go through */
	post_rx_all();
	while (rst < 600) {
		while (sent < 600 &&
		       (uint16_t)(avail_idx[TX] - used_idx(TX)) < TXSLOTS) {
			tx(VIRTIO_VSOCK_OP_REQUEST, 20000 + sent, 40000 + sent,
			   0, NULL, 0);
			sent++;
		}
		ck_assert_msg(rx_get(&p, 5000), "%u answers of 600", rst);
		ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RST);
		ck_assert_uint_eq(p.h.dst_port, 20000 + rst);
		rst++;
	}
	fd = established_host_conn(1, &hp);
	close(fd);
}
END_TEST

START_TEST(connection_limit)
{
	char path[160];
	int lfd, hfd[VSOCK_MAX_CONNS], fd;
	struct pkt p;

	snprintf(path, sizeof(path), "%s_80", uds);
	lfd = unix_listen(path);
	post_rx_all();
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		tx(VIRTIO_VSOCK_OP_REQUEST, 100 + i, 80, 0, NULL, 0);
		ck_assert(rx_get_nc(&p, 5000));
		ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RESPONSE);
		hfd[i] = accept(lfd, NULL, NULL);
	}
	tx(VIRTIO_VSOCK_OP_REQUEST, 999, 80, 0, NULL, 0);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert_uint_eq(p.h.dst_port, 999);
	/* a host connection beyond the limit: closed before any OK */
	fd = unix_connect(uds);
	ck_assert_int_ge(fd, 0);
	ck_assert(at_eof(fd));
	close(fd);
	/* one closed by the guest frees a slot */
	tx(VIRTIO_VSOCK_OP_RST, 100, 80, 0, NULL, 0);
	ck_assert(at_eof(hfd[0]));
	tx(VIRTIO_VSOCK_OP_REQUEST, 999, 80, 0, NULL, 0);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RESPONSE);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		close(hfd[i]);
	close(lfd);
}
END_TEST

/* A host reader that stops stalls only its own connection. */
START_TEST(full_host_socket_stalls_one_connection)
{
	static uint8_t chunk[VSOCK_MAX_PKT], got[4 * VSOCK_MAX_PKT];
	char path[160], buf[8];
	int lfd, a, b;
	struct pkt p;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s_90", uds);
	lfd = unix_listen(path);
	post_rx_all();
	tx(VIRTIO_VSOCK_OP_REQUEST, 1, 90, 0, NULL, 0);
	ck_assert(rx_get_nc(&p, 5000));
	a = accept(lfd, NULL, NULL);
	tx(VIRTIO_VSOCK_OP_REQUEST, 2, 90, 0, NULL, 0);
	ck_assert(rx_get_nc(&p, 5000));
	b = accept(lfd, NULL, NULL);
	/* fill a's host socket and the device's buffer for it */
	for (unsigned i = 0; i < 4; i++) {
		memset(chunk, 'a' + i, sizeof(chunk));
		tx(VIRTIO_VSOCK_OP_RW, 1, 90, 0, chunk, VSOCK_MAX_PKT);
	}
	tx_wait_all();
	tx(VIRTIO_VSOCK_OP_RW, 2, 90, 0, "bbbb", 4);
	read_exact(b, buf, 4);
	ck_assert(!memcmp(buf, "bbbb", 4));
	/* now a's reader catches up: every byte, in order */
	while (n < sizeof(got)) {
		ssize_t r = read_tmo(a, got + n, sizeof(got) - n, 5000);

		ck_assert_int_gt(r, 0);
		n += (size_t)r;
	}
	for (unsigned i = 0; i < 4; i++)
		for (unsigned j = 0; j < VSOCK_MAX_PKT; j += 4099)
			ck_assert_int_eq(got[i * VSOCK_MAX_PKT + j], 'a' + i);
	ck_assert_int_eq(log_count, 0);
	close(a);
	close(b);
	close(lfd);
}
END_TEST

/* A guest that streams as Linux does (never beyond the credit it heard of)
 * to a host that reads in small bites: every byte arrives, in order, with
 * no reset, through the device's buffer and its credit updates. */
START_TEST(stream_with_credit)
{
	static uint8_t chunk[VSOCK_MAX_PKT], got[64 * 1024];
	const uint64_t total = 24ULL << 20;
	uint64_t sent = 0, recvd = 0;
	uint32_t peer_alloc = 0, peer_fwd = 0;
	char path[160];
	int lfd, hfd;
	struct pkt p;

	snprintf(path, sizeof(path), "%s_91", uds);
	lfd = unix_listen(path);
	post_rx_all();
	tx(VIRTIO_VSOCK_OP_REQUEST, 5, 91, 0, NULL, 0);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RESPONSE);
	peer_alloc = p.h.buf_alloc;
	peer_fwd = p.h.fwd_cnt;
	hfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(hfd, 0);
	while (recvd < total) {
		uint32_t credit = peer_alloc - (uint32_t)(sent - peer_fwd);
		ssize_t r;

		while (rx_get(&p, 0)) {
			ck_assert_msg(p.h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE,
				      "op %u after %lu bytes", p.h.op,
				      (unsigned long)sent);
			peer_alloc = p.h.buf_alloc;
			peer_fwd = p.h.fwd_cnt;
			credit = peer_alloc - (uint32_t)(sent - peer_fwd);
		}
		if (sent < total && credit > 0 &&
		    (uint16_t)(avail_idx[TX] - used_idx(TX)) < TXSLOTS) {
			uint32_t n = credit < VSOCK_MAX_PKT ? credit : VSOCK_MAX_PKT;

			if (n > total - sent)
				n = (uint32_t)(total - sent);
			for (uint32_t i = 0; i < n; i++)
				chunk[i] = (uint8_t)((sent + i) * 13 >> 8);
			tx(VIRTIO_VSOCK_OP_RW, 5, 91, 0, chunk, n);
			sent += n;
		}
		/* the host reads a little at a time */
		r = read_tmo(hfd, got, sizeof(got) / (1 + (recvd >> 20) % 4), 0);
		if (r > 0) {
			for (ssize_t i = 0; i < r; i += 997)
				ck_assert_int_eq(got[i], (uint8_t)((recvd + (uint64_t)i) * 13 >> 8));
			recvd += (uint64_t)r;
		} else if (recvd == sent && sent < total && credit == 0) {
			/* all out and read: the device owes us credit */
			ck_assert_msg(rx_get(&p, 5000), "no credit update after "
				      "%lu bytes", (unsigned long)sent);
			ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
			peer_alloc = p.h.buf_alloc;
			peer_fwd = p.h.fwd_cnt;
		} else if (sent == total || credit == 0) {
			r = read_tmo(hfd, got, sizeof(got), 5000);
			ck_assert_msg(r > 0, "stalled at %lu of %lu bytes (sent %lu)",
				      (unsigned long)recvd, (unsigned long)total,
				      (unsigned long)sent);
			for (ssize_t i = 0; i < r; i += 997)
				ck_assert_int_eq(got[i], (uint8_t)((recvd + (uint64_t)i) * 13 >> 8));
			recvd += (uint64_t)r;
		}
	}
	ck_assert_int_eq(log_count, 0);
	close(hfd);
	close(lfd);
}
END_TEST

START_TEST(shutdown_half_and_full)
{
	uint32_t hp;
	struct pkt p;
	char buf[8];
	int fd = established_host_conn(3000, &hp);

	/* host stops writing: the guest hears SHUTDOWN(SEND) and can still
	 * send */
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	ck_assert_uint_eq(p.h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	tx(VIRTIO_VSOCK_OP_RW, 3000, hp, 0, "after", 5);
	read_exact(fd, buf, 5);
	ck_assert(!memcmp(buf, "after", 5));
	/* guest closes both ways: RST back, host sees the end */
	tx(VIRTIO_VSOCK_OP_SHUTDOWN, 3000, hp, 3, NULL, 0);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert(at_eof(fd));
	close(fd);

	/* host closes: SHUTDOWN(RCV|SEND), data sent before it first */
	fd = established_host_conn(3001, &hp);
	ck_assert_int_eq(write(fd, "last", 4), 4);
	close(fd);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RW);
	ck_assert(!memcmp(p.data, "last", 4));
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	ck_assert_uint_eq(p.h.flags, 3);
	tx(VIRTIO_VSOCK_OP_RST, 3001, hp, 0, NULL, 0);

	/* guest stops sending: the host reads EOF and may still write */
	fd = established_host_conn(3002, &hp);
	tx(VIRTIO_VSOCK_OP_SHUTDOWN, 3002, hp, VIRTIO_VSOCK_SHUTDOWN_SEND, NULL, 0);
	ck_assert(at_eof(fd));
	ck_assert_int_eq(write(fd, "more", 4), 4);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RW);
	close(fd);
	ck_assert_int_eq(log_count, 0);
}
END_TEST

/* A host connection the guest never answers is closed after the request
 * timeout, and the guest hears RST. */
START_TEST(request_timeout)
{
	struct pkt p;
	int fd = unix_connect(uds);

	post_rx_all();
	ck_assert_int_eq(write(fd, "CONNECT 5\n", 10), 10);
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	ck_assert(at_eof(fd));
	ck_assert(rx_get_nc(&p, 5000));
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RST);
	close(fd);
}
END_TEST

/* Device reset closes every host connection; the driver that starts again
 * gets TRANSPORT_RESET.  So does virtio_vsock_transport_reset(). */
START_TEST(reset_and_transport_reset_event)
{
	uint32_t hp;
	int fd = established_host_conn(4000, &hp);

	wr32(VIRTIO_MMIO_STATUS, 0);
	ck_assert(at_eof(fd));
	close(fd);
	driver_init();
	*desc(EV, 0) = (struct vring_desc){ EVBUF, 4, VIRTQ_DESC_F_WRITE, 0 };
	memset(ram + EVBUF, 0xff, 4);
	offer(EV, 0);
	notify(EV);
	for (int t = 0; t < 5000 && used_idx(EV) == 0; t++)
		usleep(1000);
	ck_assert_uint_eq(used_idx(EV), 1);
	ck_assert_uint_eq(used_elem(EV, 0)->len, 4);
	ck_assert_uint_eq(*(uint32_t *)(ram + EVBUF), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);

	/* until the driver gives an event buffer back (it has handled the
	 * reset), a host connection is closed without OK: the guest would
	 * reset one it accepted before handling the event */
	refused_host_conn(4001);
	memset(ram + EVBUF, 0xff, 4);
	offer(EV, 0);
	fd = established_host_conn(4001, &hp);
	virtio_vsock_transport_reset(dev);
	ck_assert(at_eof(fd));
	for (int t = 0; t < 5000 && used_idx(EV) == 1; t++)
		usleep(1000);
	ck_assert_uint_eq(used_idx(EV), 2);
	ck_assert_uint_eq(*(uint32_t *)(ram + EVBUF), 0);
	close(fd);
	refused_host_conn(4002);
	/* and it works on once handled */
	offer(EV, 0);
	fd = established_host_conn(4002, &hp);
	close(fd);
}
END_TEST

START_TEST(socket_path_rules)
{
	struct virtio_vsock_cfg cfg = { .cid = 5 };
	struct vm other;
	char p[160], err[256];
	int fd;

	memset(&other, 0, sizeof(other));
	other.mem = fvm.mem;
	/* in use by a live device */
	cfg.uds = uds;
	ck_assert_ptr_null(virtio_vsock_create(&other, &cfg, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "in use"));
	/* not a socket */
	snprintf(p, sizeof(p), "%s/file", dir);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	close(fd);
	cfg.uds = p;
	memset(&other, 0, sizeof(other));
	ck_assert_ptr_null(virtio_vsock_create(&other, &cfg, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not a socket"));
	/* a directory that does not exist */
	snprintf(p, sizeof(p), "%s/none/v.sock", dir);
	memset(&other, 0, sizeof(other));
	ck_assert_ptr_null(virtio_vsock_create(&other, &cfg, err, sizeof(err)));
	/* a stale socket (its owner is gone) is replaced */
	snprintf(p, sizeof(p), "%s/stale.sock", dir);
	close(unix_listen(p));
	memset(&other, 0, sizeof(other));
	cfg.uds = p;
	ck_assert_ptr_nonnull(virtio_vsock_create(&other, &cfg, err, sizeof(err)));
	other.destroy[0](other.destroy_opaque[0]);
	ck_assert_int_ne(access(p, F_OK), 0);	/* removed at teardown */
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_vsock");
	TCase *t = tcase_create("device");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, registers_and_config);
	tcase_add_test(t, option_parsing);
	tcase_add_test(t, host_initiated_data_both_ways);
	tcase_add_test(t, host_initiated_refused);
	tcase_add_test(t, connect_line_rules);
	tcase_add_test(t, guest_initiated);
	tcase_add_test(t, credit_overrun);
	tcase_add_test(t, malformed_packets);
	tcase_add_test(t, logging_is_bounded);
	tcase_add_test(t, request_flood);
	tcase_add_test(t, connection_limit);
	tcase_add_test(t, full_host_socket_stalls_one_connection);
	tcase_add_test(t, stream_with_credit);
	tcase_add_test(t, shutdown_half_and_full);
	tcase_add_test(t, request_timeout);
	tcase_add_test(t, reset_and_transport_reset_event);
	tcase_add_test(t, socket_path_rules);
	tcase_add_test(t, credit_update_within_guest_window);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return check_run(suite());
}
