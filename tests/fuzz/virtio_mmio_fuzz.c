/* tests/fuzz/virtio_mmio_fuzz.c - the virtio-mmio register interface
 * (devices/virtio_mmio.c, devices/virtio_dev.c) under random register
 * read/write sequences: any offset in the window, any width, any value,
 * interleaved with notifies and the device thread's work.  The device
 * behind it is a virtio-blk disk on a memfd image; guest RAM starts every
 * input with one valid request on a ring at 0x0/0x1000/0x2000 (size 8), so
 * a sequence that sets the queue up there makes the device work.
 *
 * Checked after every access: the identification registers never change,
 * DRIVER_OK is never shown without FEATURES_OK, a read of an unknown or
 * write-only register gives 0, and a final reset returns the status to 0
 * with nothing left in flight (plus the harness's chain invariants).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "devices/virtio_blk.h"
#include "devices/virtio_mmio.h"
#include "tests/fuzz/fuzz_harness.h"

#define RAM_SIZE	(64u << 10)
#define DISK_SIZE	(256u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_ram ram;
static int disk_fd;

/* the registers, so that most accesses hit one */
static const uint16_t regs[] = {
	VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_VERSION, VIRTIO_MMIO_DEVICE_ID,
	VIRTIO_MMIO_VENDOR_ID, VIRTIO_MMIO_DEVICE_FEATURES,
	VIRTIO_MMIO_DEVICE_FEATURES_SEL, VIRTIO_MMIO_DRIVER_FEATURES,
	VIRTIO_MMIO_DRIVER_FEATURES_SEL, VIRTIO_MMIO_QUEUE_SEL,
	VIRTIO_MMIO_QUEUE_NUM_MAX, VIRTIO_MMIO_QUEUE_NUM,
	VIRTIO_MMIO_QUEUE_READY, VIRTIO_MMIO_QUEUE_NOTIFY,
	VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_INTERRUPT_ACK,
	VIRTIO_MMIO_STATUS, VIRTIO_MMIO_QUEUE_DESC_LOW,
	VIRTIO_MMIO_QUEUE_DESC_HIGH, VIRTIO_MMIO_QUEUE_AVAIL_LOW,
	VIRTIO_MMIO_QUEUE_AVAIL_HIGH, VIRTIO_MMIO_QUEUE_USED_LOW,
	VIRTIO_MMIO_QUEUE_USED_HIGH, VIRTIO_MMIO_SHM_SEL,
	VIRTIO_MMIO_SHM_LEN_LOW, VIRTIO_MMIO_SHM_LEN_HIGH,
	VIRTIO_MMIO_SHM_BASE_LOW, VIRTIO_MMIO_SHM_BASE_HIGH,
	VIRTIO_MMIO_QUEUE_RESET, VIRTIO_MMIO_CONFIG_GENERATION,
	VIRTIO_MMIO_CONFIG,
};
#define NREGS	(sizeof(regs) / sizeof(regs[0]))

static void setup(void)
{
	struct virtio_blk_opts o = { .index = 0 };
	char path[64], err[256];

	setenv("VMM_IO_ENGINE", "sync", 1);
	setenv("VMM_BLK_POLL_US", "0", 1);
	fz_ram_init(&ram, RAM_SIZE);
	ram.bump_start = ram.bump = 0x4000;
	fz_vm_set_ram(&ram);
	disk_fd = memfd_create("fuzz-disk", 0);
	if (disk_fd < 0 || ftruncate(disk_fd, DISK_SIZE) < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", disk_fd);
	o.blk.path = path;
	o.blk.format = BLK_FMT_RAW;
	if (virtio_blk_create(fz_vm(), &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "virtio_mmio_fuzz: %s\n", err);
		abort();
	}
}

/* One valid read request (header, 512 bytes, status) on the ring. */
static void fill_ram(void)
{
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = 1 };
	struct fz_ring q;
	struct fz_desc d[3] = {
		{ 0x4000, sizeof(h), 0 },
		{ 0x4200, 512, VRING_DESC_F_WRITE },
		{ 0x4400, 1, VRING_DESC_F_WRITE },
	};

	memset(ram.mem.host, 0, RAM_SIZE);
	memcpy(ram.mem.host + 0x4000, &h, sizeof(h));
	fz_ring_init(&q, &ram, 8, 0x0, 0x1000, 0x2000);
	fz_ring_add(&q, d, 3, false, 0);
	fz_ring_kick(&q);
}

static void check_regs(void)
{
	uint32_t st = fz_mmio_read32(0, VIRTIO_MMIO_STATUS);

	FZ_CHECK(fz_mmio_read32(0, VIRTIO_MMIO_MAGIC_VALUE) ==
		 VIRTIO_MMIO_MAGIC, "magic");
	FZ_CHECK(fz_mmio_read32(0, VIRTIO_MMIO_VERSION) == 2, "version");
	FZ_CHECK(fz_mmio_read32(0, VIRTIO_MMIO_DEVICE_ID) == VIRTIO_ID_BLOCK,
		 "device id");
	FZ_CHECK(!(st & VIRTIO_CONFIG_S_DRIVER_OK) ||
		 (st & VIRTIO_CONFIG_S_FEATURES_OK),
		 "status %#x: DRIVER_OK without FEATURES_OK", st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	unsigned steps = 0;

	if (!ram.map)
		setup();
	fill_ram();
	fz_drv_reset(0);
	while (fz_more(&in) && steps++ < 512) {
		uint8_t op = fz_u8(&in);
		uint64_t off, v = 0;
		unsigned width = 1u << ((op >> 3) & 3);

		/* offsets: a register (most), or anywhere in the window */
		if (op & 0x20)
			off = fz_u16(&in) % (VMM_VIRTIO_MMIO_SIZE + 8);
		else
			off = regs[fz_u8(&in) % NREGS] +
			      (op & 0x40 ? fz_u8(&in) % 8 : 0);
		if (!(op & 0x80))
			width = 4;	/* drivers use 32-bit accesses */
		switch (op & 7) {
		case 0:
		case 1:
		case 2:	/* write */
			v = fz_u64(&in);
			fz_mmio_access(0, true, off, &v, width);
			break;
		case 3:
		case 4:	/* read */
			fz_mmio_access(0, false, off, &v, width);
			/* unknown and write-only registers read as 0 */
			if (width == 4 && off < VIRTIO_MMIO_CONFIG &&
			    (off == VIRTIO_MMIO_QUEUE_NOTIFY ||
			     off == VIRTIO_MMIO_INTERRUPT_ACK ||
			     off == VIRTIO_MMIO_DRIVER_FEATURES ||
			     off == VIRTIO_MMIO_QUEUE_SEL))
				FZ_CHECK(v == 0, "write-only register %#llx "
					 "read %#llx", (unsigned long long)off,
					 (unsigned long long)v);
			break;
		case 5:	/* a notify caught by the ioeventfd */
			fz_notify(0, fz_u8(&in) % 4);
			break;
		case 6:	/* the device thread runs */
			fz_pump(8);
			break;
		case 7: {	/* the driver writes RAM */
			uint16_t at = fz_u16(&in) % RAM_SIZE;

			fz_ram_poke(&ram, &in, at, fz_u8(&in) % 16);
			break;
		}
		}
		check_regs();
	}
	fz_pump(8);
	fz_drv_reset(0);
	return 0;
}
