/* tests/fuzz/virtio_vsock_fuzz.c - virtio-vsock packets (devices/
 * virtio_vsock.c): the guest's tx packets with fuzzed headers (any op,
 * ports, lengths, credit fields, CIDs) and payloads in any layout, rx and
 * event buffers of any shape, and the host side of the bridge acting in
 * between (host processes connecting with "CONNECT <port>" lines of any
 * content, accepting, sending, half-closing and closing), behind the real
 * transport on the fake vm.
 *
 * The Unix sockets live in a private temporary directory: the device's
 * listener (uds), and listeners for host ports 1000 (backlog 1) and 1001
 * that guest connections reach.  Every input starts from a reset device
 * (all connections dropped) and closes the host ends it made.
 *
 * Checked, besides the harness's invariants: every packet the device puts
 * on the rx queue is a whole header with a consistent length (len bytes of
 * payload follow within the used length, only RW carries payload), comes
 * from the host CID to the guest's, and is of a known op.
 */
#include <errno.h>
#include <linux/virtio_vsock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio_vsock.h"
#include "tests/fuzz/fuzz_harness.h"

#define RAM_SIZE	(256u << 10)
#define DATA_START	0x10000u
#define GUEST_CID	3
#define HDR		((uint32_t)sizeof(struct virtio_vsock_hdr))
#define MAX_HOST	16
#define NQ		3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_ram ram;
static char dir[64], uds[96];
static int listener[2];		/* host ports 1000 and 1001 */
static int host_fd[MAX_HOST];	/* host ends this input made */
static unsigned nhost;

static int listen_at(uint32_t port, int backlog)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", uds, port);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, backlog) < 0)
		abort();
	return fd;
}

static void cleanup(void)
{
	char p[128];

	for (unsigned i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s_%u", uds, 1000 + i);
		unlink(p);
	}
	fz_vm_destroy_devices();	/* unlinks uds */
	rmdir(dir);
}

static void setup(void)
{
	struct virtio_vsock_cfg cfg = { .cid = GUEST_CID };
	char err[256];

	fz_ram_init(&ram, RAM_SIZE);
	ram.bump_start = ram.bump = DATA_START;
	fz_vm_set_ram(&ram);
	snprintf(dir, sizeof(dir), "/tmp/vsockfuzz.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(uds, sizeof(uds), "%s/v", dir);
	cfg.uds = uds;
	if (!virtio_vsock_create(fz_vm(), &cfg, err, sizeof(err))) {
		fprintf(stderr, "virtio_vsock_fuzz: %s\n", err);
		abort();
	}
	listener[0] = listen_at(1000, 1);
	listener[1] = listen_at(1001, 16);
	atexit(cleanup);
}

static void host_add(int fd)
{
	if (fd < 0)
		return;
	if (nhost == MAX_HOST) {
		close(fd);
		return;
	}
	host_fd[nhost++] = fd;
}

/* What a host process does. */
static void host_act(struct fz_in *in)
{
	uint8_t what = fz_u8(in), arg = fz_u8(in);
	int fd = nhost ? host_fd[arg % nhost] : -1;

	switch (what % 6) {
	case 0: {	/* connect to the device and ask for a guest port */
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		char line[40];
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
			       SOCK_CLOEXEC, 0);
		size_t n;

		snprintf(a.sun_path, sizeof(a.sun_path), "%s", uds);
		if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
			if (s >= 0)
				close(s);
			break;
		}
		if (what & 0x80) {	/* any line at all */
			n = fz_u8(in) % sizeof(line);
			fz_bytes(in, line, n);
		} else {
			n = (size_t)snprintf(line, sizeof(line), "CONNECT %u\n",
					     arg & 1 ? fz_u32(in) : 52);
		}
		if (send(s, line, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
		    errno != EAGAIN)
			; /* the device may have closed it: fine */
		host_add(s);
		break;
	}
	case 1:	/* accept what guests connected to ports 1000/1001 */
		host_add(accept4(listener[arg & 1], NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC));
		break;
	case 2: {	/* send bytes */
		static uint8_t buf[65536];
		size_t n = arg & 0x80 ? sizeof(buf) : (size_t)fz_u16(in) % 4096;

		if (fd >= 0) {
			memset(buf, arg, n);
			if (send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				; /* full or closed: both are the host's right */
		}
		break;
	}
	case 3: {	/* read what the guest sent */
		static uint8_t buf[65536];

		if (fd >= 0)
			while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
				;
		break;
	}
	case 4:	/* half-close */
		if (fd >= 0)
			shutdown(fd, arg & 1 ? SHUT_WR : SHUT_RD);
		break;
	case 5:	/* close */
		if (fd >= 0) {
			close(fd);
			nhost--;
			host_fd[arg % (nhost + 1)] = host_fd[nhost];
		}
		break;
	}
}

static void add_tx(struct fz_in *in, struct fz_ring *q)
{
	static const uint32_t ports[] = { 1000, 1001, 52, 1u << 30, 7 };
	struct virtio_vsock_hdr h;
	uint8_t shape = fz_u8(in), sel = fz_u8(in);
	struct fz_desc d[4];
	unsigned n = 0;
	uint32_t len, plen;
	uint64_t a;

	memset(&h, 0, sizeof(h));
	if (shape & 0x80) {
		fz_bytes(in, &h, sizeof(h));	/* any header */
	} else {
		h.src_cid = GUEST_CID;
		h.dst_cid = VSOCK_HOST_CID;
		/* guest port 52 answers host connections ("CONNECT 52") */
		h.src_port = sel & 0x80 ? 52 : 5000 + (sel & 3);
		h.dst_port = ports[(sel >> 2) % 5];
		if (sel & 0x80)	/* a host-initiated connection's port */
			h.dst_port = (1u << 30) + (sel & 0x1f);
		h.type = VIRTIO_VSOCK_TYPE_STREAM;
		h.op = 1 + shape % 7;
		h.buf_alloc = shape & 0x40 ? fz_u32(in) : 256 * 1024;
		h.fwd_cnt = shape & 0x40 ? fz_u32(in) : 0;
		h.flags = h.op == VIRTIO_VSOCK_OP_SHUTDOWN ? 1 + (sel >> 5) % 3 :
			  0;
	}
	plen = h.op == VIRTIO_VSOCK_OP_RW ? fz_u16(in) % 8192 : 0;
	if (!(shape & 0x80))
		h.len = shape & 0x20 ? fz_u32(in) : plen;	/* lying len */
	/* the header whole, or split */
	n += fz_put_header(&ram, &h, HDR, shape & 0x10 ? 10 : 0, &d[n]);
	if (plen) {
		len = plen;
		a = fz_alloc(&ram, &len);
		memset(ram.mem.host + a, 'g', len);
		d[n++] = (struct fz_desc){ a, len, shape & 0x08 ?
					   VRING_DESC_F_WRITE : 0 };
	}
	fz_ring_add_chain(q, d, n, sel & 0x40);
}

static void add_buffers(struct fz_in *in, struct fz_ring *q)
{
	uint8_t shape = fz_u8(in), count = 1 + fz_u8(in) % 8;

	for (unsigned c = 0; c < count; c++) {
		struct fz_desc d[2];
		unsigned n = shape & 1 ? 2 : 1;
		uint32_t len;
		uint64_t a;

		for (unsigned i = 0; i < n; i++) {
			/* Linux's (header + 4 KiB), split, or any size */
			len = shape & 2 ? (i ? 4096 : HDR) :
			      shape & 4 ? fz_u16(in) % 300 : HDR + 4096;
			a = fz_alloc(&ram, &len);
			d[i] = (struct fz_desc){ a, len, shape & 8 && i == 0 ?
						 0 : VRING_DESC_F_WRITE };
		}
		len = 32;
		a = fz_alloc(&ram, &len);
		fz_ring_add(q, d, n, shape & 0x10, a);
	}
}

/* Every packet the device puts on the rx queue, as it completes it. */
static const struct vring_desc *rx_desc;

static void check_rx(const struct virtq *q, uint16_t head, uint32_t len,
		     const struct iovec *first_in)
{
	struct virtio_vsock_hdr h;

	(void)head;
	/* rx only, and only headers whole in the first buffer (a driver
	 * may split them; those are not checked here) */
	if (q->desc != rx_desc || !first_in || first_in->iov_len < HDR)
		return;
	memcpy(&h, first_in->iov_base, HDR);
	FZ_CHECK(h.src_cid == VSOCK_HOST_CID && h.dst_cid == GUEST_CID,
		 "rx packet from cid %llu to %llu",
		 (unsigned long long)h.src_cid, (unsigned long long)h.dst_cid);
	FZ_CHECK(h.type == VIRTIO_VSOCK_TYPE_STREAM, "type %u", h.type);
	FZ_CHECK(h.op >= VIRTIO_VSOCK_OP_REQUEST &&
		 h.op <= VIRTIO_VSOCK_OP_CREDIT_REQUEST, "op %u", h.op);
	FZ_CHECK(h.op == VIRTIO_VSOCK_OP_RW || h.len == 0,
		 "op %u with len %u", h.op, h.len);
	FZ_CHECK(h.len <= VSOCK_MAX_PKT, "len %u", h.len);
	FZ_CHECK((uint64_t)HDR + h.len == len,
		 "used length %u for a %u-byte packet", len, HDR + h.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* by bit of the feature byte (bit 2: queues 0 and 1 only) */
	static const unsigned feature_bits[] = {
		VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC,
	};
	struct fz_in in = { data, size };
	struct fz_ring q[NQ];
	uint8_t feat = fz_u8(&in);
	uint16_t qsize = 1 + fz_u8(&in);

	if (!ram.map) {
		setup();
		fz_push_hook = check_rx;
	}
	memset(ram.mem.host, 0, RAM_SIZE);
	ram.bump = DATA_START;
	fz_drv_begin(0, fz_features(feat, feature_bits,
				    FZ_NELEM(feature_bits)));
	/* rx (queue 0) has its descriptors at 0 (fz_drv_start); known
	 * before DRIVER_OK, from when the device may push */
	rx_desc = (const struct vring_desc *)ram.mem.host;
	fz_drv_start(0, q, NQ, feat & 4 ? 2 : NQ, &ram, qsize, 0x4000);
	while (fz_more(&in)) {
		uint8_t op = fz_u8(&in);

		switch (op & 7) {
		case 0:
		case 1:	/* a packet from the guest */
			add_tx(&in, &q[1]);
			break;
		case 2:	/* rx (or event) buffers */
			add_buffers(&in, &q[op & 0x80 ? 2 : 0]);
			break;
		case 3:	/* the host side acts */
			host_act(&in);
			break;
		case 4:	/* notify a queue; the device works */
			fz_drv_kick(0, q, (op >> 4) % NQ);
			break;
		case 5:	/* the device's own sockets and timers */
			fz_pump(16);
			break;
		case 6: /* the driver scribbles on RAM */
			fz_ram_scribble(&ram, &in);
			break;
		case 7:	/* config space */
			fz_drv_config_read(0, &in, 12);
			break;
		}
	}
	fz_drv_kick_all(0, q, NQ);
	fz_drv_reset(0);
	/* the host ends this input made, and guest connections nobody
	 * accepted, go */
	while (nhost)
		close(host_fd[--nhost]);
	for (unsigned i = 0; i < 2; i++) {
		int fd;

		while ((fd = accept4(listener[i], NULL, NULL, SOCK_CLOEXEC)) >= 0)
			close(fd);
	}
	fz_pump(4);
	return 0;
}
