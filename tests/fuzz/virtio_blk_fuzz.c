/* tests/fuzz/virtio_blk_fuzz.c - virtio-blk request parsing and execution
 * (devices/virtio_blk.c over the real block layer and raw backend on a
 * 1 MiB memfd image, the io_engine in its synchronous mode) behind the
 * real virtio-mmio transport, on the fake vm of fuzz_harness.c.
 *
 * Input: a feature byte (which of FLUSH, MQ, INDIRECT_DESC, EVENT_IDX,
 * DISCARD, WRITE_ZEROES the driver accepts; the read-only disk or the
 * writable one), the queue size, then operations: well-formed requests of
 * any type with fuzzed fields and layouts (header split, data in either
 * direction, indirect tables, status byte anywhere), raw descriptor chains
 * with arbitrary addresses, lengths and flags, raw writes into guest RAM,
 * config space reads, and kicks (the device thread's work runs).  The
 * driver resets the device at the end.
 *
 * Besides the harness's invariants (RAM bounds, used lengths, heads in
 * flight): after a kick every chain is answered or the device reports
 * NEEDS_RESET (the image is memory: nothing stays pending), and the image
 * never grows past its size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/virtio_blk.h>

#include "devices/virtio_blk.h"
#include "devices/virtio_mmio.h"
#include "tests/fuzz/fuzz_harness.h"

#define RAM_SIZE	(256u << 10)
#define DISK_SIZE	(1u << 20)
#define DATA_START	0x8000u
#define MAX_SEGS	6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_ram ram;
static int disk_fd[2];

static void setup(void)
{
	char path[64], err[256];

	setenv("VMM_IO_ENGINE", "sync", 1);
	setenv("VMM_BLK_POLL_US", "0", 1);
	fz_ram_init(&ram, RAM_SIZE);
	ram.bump_start = ram.bump = DATA_START;
	fz_vm_set_ram(&ram);
	for (unsigned i = 0; i < 2; i++) {
		struct virtio_blk_opts o = { .index = i };

		disk_fd[i] = memfd_create("fuzz-disk", 0);
		if (disk_fd[i] < 0 || ftruncate(disk_fd[i], DISK_SIZE) < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", disk_fd[i]);
		o.blk.path = path;
		o.blk.format = BLK_FMT_RAW;
		o.blk.readonly = i == 1;
		if (virtio_blk_create(fz_vm(), &o, err, sizeof(err)) < 0) {
			fprintf(stderr, "virtio_blk_fuzz: %s\n", err);
			abort();
		}
	}
	/* the io_engine's one line about its synchronous mode is out */
}

/* A request as a driver builds it, with the input choosing every field
 * and the layout. */
static void add_request(struct fz_in *in, struct fz_ring *q)
{
	static const uint32_t types[] = {
		VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
		VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_DISCARD,
		VIRTIO_BLK_T_WRITE_ZEROES, 0xffffffffu, 7,
	};
	/* shape: bits 0-2 type, 3 no status byte, 4 split header, 5 data in
	 * the wrong direction, 6 any sector, 7 any type; segs: bits 0-6
	 * data segments, 7 indirect */
	uint8_t shape = fz_u8(in), segs = fz_u8(in);
	unsigned nseg = (segs & 0x7f) % (MAX_SEGS + 1);
	struct virtio_blk_outhdr h;
	struct fz_desc d[2 + MAX_SEGS + 2];
	unsigned n = 0;
	uint32_t len;
	uint64_t a;
	bool write_data;

	h.type = shape & 0x80 ? fz_u32(in) : types[shape & 7];
	h.ioprio = 0;
	/* mostly inside the disk, sometimes past its end or absurd */
	h.sector = shape & 0x40 ? fz_u64(in) :
		   fz_u16(in) % (2 * DISK_SIZE / 512);
	write_data = h.type == VIRTIO_BLK_T_OUT ||
		     h.type == VIRTIO_BLK_T_DISCARD ||
		     h.type == VIRTIO_BLK_T_WRITE_ZEROES;
	if (shape & 0x20)
		write_data = !write_data;	/* the wrong direction */
	/* the header, whole or split in two */
	n += fz_put_header(&ram, &h, sizeof(h), shape & 0x10 ? 7 : 0, &d[n]);
	for (unsigned i = 0; i < nseg; i++) {
		uint16_t l = fz_u16(in);

		/* sector multiples mostly; odd sizes and empties too */
		len = l & 0x8000 ? l & 0x7fff : (uint32_t)(l % 17) * 512;
		a = fz_alloc(&ram, &len);
		if (!write_data)
			d[n++] = (struct fz_desc){ a, len, VRING_DESC_F_WRITE };
		else {
			/* payload (discard segments: the 16-byte range) */
			fz_bytes(in, ram.mem.host + a, len < 32 ? len : 32);
			d[n++] = (struct fz_desc){ a, len, 0 };
		}
	}
	if (!(shape & 0x08)) {
		len = 1;
		a = fz_alloc(&ram, &len);
		ram.mem.host[a] = 0xee;
		d[n++] = (struct fz_desc){ a, len, VRING_DESC_F_WRITE };
	}
	fz_ring_add_chain(q, d, n, segs & 0x80);
}

/* Any chain at all: addresses anywhere (in RAM, across its end, far off),
 * any lengths and flags; the walker and the device must cope. */
static void add_raw_chain(struct fz_in *in, struct fz_ring *q)
{
	uint8_t n = 1 + fz_u8(in) % 8, ind = fz_u8(in);
	struct fz_desc d[8];

	for (unsigned i = 0; i < n; i++) {
		uint8_t f = fz_u8(in);

		d[i].addr = f & 0x80 ? fz_u64(in) : fz_u32(in) % (RAM_SIZE + 64);
		d[i].len = f & 0x40 ? fz_u32(in) : fz_u16(in) % 4096;
		d[i].flags = f & (VRING_DESC_F_WRITE | VRING_DESC_F_INDIRECT);
	}
	fz_ring_add_chain(q, d, n, ind & 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* by bit of the feature byte */
	static const unsigned feature_bits[] = {
		VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_MQ, VIRTIO_F_INDIRECT_DESC,
		VIRTIO_F_EVENT_IDX, VIRTIO_BLK_F_DISCARD,
		VIRTIO_BLK_F_WRITE_ZEROES,
	};
	struct fz_in in = { data, size };
	struct fz_ring q[2];
	uint8_t feat = fz_u8(&in), qn = fz_u8(&in);
	unsigned dev = feat >> 7, nq;
	uint16_t qsize = 1 + qn % VIRTIO_BLK_QUEUE_SIZE;
	uint64_t acc;
	struct stat st;

	if (!ram.map)
		setup();
	/* a fresh, empty image for every input */
	if (ftruncate(disk_fd[dev], 0) < 0 ||
	    ftruncate(disk_fd[dev], DISK_SIZE) < 0)
		abort();
	memset(ram.mem.host, 0, RAM_SIZE);
	ram.bump = DATA_START;
	acc = fz_drv_begin(dev, fz_features(feat, feature_bits,
					     FZ_NELEM(feature_bits)));
	nq = acc & (1ULL << VIRTIO_BLK_F_MQ) ? 2 : 1;
	fz_drv_start(dev, q, nq, nq, &ram, qsize, 0x4000);
	while (fz_more(&in)) {
		uint8_t op = fz_u8(&in);
		struct fz_ring *r = &q[(op >> 7) % nq];

		switch (op & 7) {
		case 0:
		case 1:
		case 2:
			add_request(&in, r);
			break;
		case 3:
			add_raw_chain(&in, r);
			break;
		case 4:	/* publish and notify: the device works */
			fz_drv_kick(dev, q, (unsigned)(r - q));
			break;
		case 5: /* the driver scribbles on RAM (rings too) */
			fz_ram_scribble(&ram, &in);
			break;
		case 6:	/* config space, any width and offset */
			fz_drv_config_read(dev, &in, 72);
			break;
		case 7:	/* the ring index jumps (a driver bug) */
			r->avail_idx += fz_u8(&in);
			break;
		}
	}
	fz_drv_kick_all(dev, q, nq);
	/* nothing is left pending on a memory-backed disk: every chain
	 * popped was answered (or the device gave up on the ring) */
	FZ_CHECK(fz_in_flight() == 0 ||
		 (fz_mmio_read32(dev, VIRTIO_MMIO_STATUS) &
		  VIRTIO_CONFIG_S_NEEDS_RESET),
		 "%u chains still in flight", fz_in_flight());
	fz_drv_reset(dev);
	FZ_CHECK(fstat(disk_fd[dev], &st) == 0 && st.st_size == DISK_SIZE,
		 "image size changed to %lld", (long long)st.st_size);
	return 0;
}
