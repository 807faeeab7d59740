/* tests/unit/test_virtio_blk.c - the virtio-mmio transport and virtio-blk
 * device driven through their register handlers by a small driver written
 * here, on a fake struct vm (guest RAM is plain memory, notifies and
 * interrupts are the eventfds the device hands to "KVM"), with the real
 * device thread, io_engine and raw backend on a temporary image. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio_blk.h"
#include "devices/virtio_mmio.h"
#include "devices/virtqueue.h"
#include "vmm/tsan.h"
#include "vmm/vm.h"
#include "tests/unit/check_main.h"

/* ---- fake struct vm: tests/unit/fake_vm.h ---- */
#define RAM_SIZE	(8u << 20)
#include "tests/unit/fake_vm.h"

/* ---- a small driver ---- */
#define QSZ	64
#define DESC	0x1000ULL
#define AVAIL	0x2000ULL
#define USED	0x3000ULL
#define HDRS	0x10000ULL	/* per slot: header, status at +0x80 */
#define TABLES	0x20000ULL	/* per slot: indirect table */
#define DATA	0x100000ULL	/* per slot: 64 KiB */
#define SLOT_DATA	0x10000ULL

static uint8_t *ram;
static char img[64];		/* disk 0's image; disk N adds ".N" */
static char imgs[FAKE_MAX_DEV][80];



static uint64_t cfg64(uint32_t off)
{
	uint64_t v;

	fvm.dev[cur].rd(fvm.dev[cur].opaque, VIRTIO_MMIO_CONFIG + off, &v, 8);
	return v;
}

static uint32_t cfg32(uint32_t off)
{
	uint32_t v;

	fvm.dev[cur].rd(fvm.dev[cur].opaque, VIRTIO_MMIO_CONFIG + off, &v, 4);
	return v;
}



static uint16_t *avail(void) { return (uint16_t *)(ram + AVAIL); }
/* acquire, as a driver reads it: the used entries, the data and status
 * written and the device's last look at the descriptors come first */
static uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)(ram + USED + 2), __ATOMIC_ACQUIRE);
}
static struct vring_used_elem *used_ring(void)
{
	return (struct vring_used_elem *)(ram + USED + 4);
}
static struct vring_desc *desc(unsigned i)
{
	return (struct vring_desc *)(ram + DESC) + i;
}

static uint16_t seen_used;

/* Full init; returns the status read back after FEATURES_OK. */
static uint32_t driver_init(uint64_t features)
{
	uint32_t st;

	wr32(VIRTIO_MMIO_STATUS, 0);
	memset(ram, 0, DATA);
	seen_used = 0;
	wr32(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr32(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE |
	     VIRTIO_STATUS_DRIVER);
	set_features(features);
	st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
	     VIRTIO_STATUS_FEATURES_OK;
	wr32(VIRTIO_MMIO_STATUS, st);
	st = rd32(VIRTIO_MMIO_STATUS);
	if (!(st & VIRTIO_STATUS_FEATURES_OK))
		return st;
	wr32(VIRTIO_MMIO_QUEUE_SEL, 0);
	ck_assert_uint_ge(rd32(VIRTIO_MMIO_QUEUE_NUM_MAX), QSZ);
	wr32(VIRTIO_MMIO_QUEUE_NUM, QSZ);
	wr32(VIRTIO_MMIO_QUEUE_DESC_LOW, DESC);
	wr32(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_DRIVER_LOW, AVAIL);
	wr32(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_DEVICE_LOW, USED);
	wr32(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_READY, 1);
	wr32(VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	return rd32(VIRTIO_MMIO_STATUS);
}

static const uint64_t std_features =
	(1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX) |
	(1ULL << VIRTIO_F_INDIRECT_DESC) | (1ULL << VIRTIO_BLK_F_FLUSH) |
	(1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE);

static void offer(uint16_t head)
{
	uint16_t idx = avail()[1];

	avail()[2 + idx % QSZ] = head;
	__atomic_store_n(&avail()[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static void kick(void)
{
	int fd = fvm.dev[cur].notify_fd[0];
	uint64_t one = 1;

	if (fd >= 0)
		ck_assert_int_eq(write(fd, &one, 8), 8);	/* as KVM would */
	else
		wr32(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static uint8_t *status_of(unsigned slot)
{
	return ram + HDRS + slot * 0x100 + 0x80;
}

/* Slot s uses descriptors 3s..3s+2: header, data, status. */
static void prep(unsigned slot, uint32_t type, uint64_t sector,
		 uint32_t len, bool data_in)
{
	uint64_t h = HDRS + slot * 0x100;
	struct virtio_blk_outhdr hdr = { .type = type, .sector = sector };
	unsigned d = slot * 3;

	memcpy(ram + h, &hdr, sizeof(hdr));
	*status_of(slot) = 0xee;
	*desc(d) = (struct vring_desc){ h, 16, VIRTQ_DESC_F_NEXT, d + 1 };
	if (len) {
		*desc(d + 1) = (struct vring_desc){
			DATA + slot * SLOT_DATA, len,
			VIRTQ_DESC_F_NEXT | (data_in ? VIRTQ_DESC_F_WRITE : 0),
			d + 2 };
	} else {
		desc(d)->next = d + 2;
	}
	*desc(d + 2) = (struct vring_desc){ h + 0x80, 1, VIRTQ_DESC_F_WRITE, 0 };
	offer(d);
}

/* Wait until the device has used n more entries (5 s bound). */
static bool wait_used(unsigned n)
{
	for (int i = 0; i < 5000; i++) {
		if ((uint16_t)(used_idx() - seen_used) >= n) {
			seen_used += n;
			return true;
		}
		usleep(1000);
	}
	return false;
}

static uint8_t do_req(unsigned slot, uint32_t type, uint64_t sector,
		      uint32_t len, bool data_in)
{
	prep(slot, type, sector, len, data_in);
	kick();
	ck_assert_msg(wait_used(1), "request type %u never completed", type);
	return *status_of(slot);
}

static uint64_t irq_count(void)
{
	uint64_t v = 0;

	if (read(fvm.dev[cur].irqfd, &v, 8) < 0)
		return 0;
	return v;
}

static int make_disk(const char *serial, bool readonly, uint64_t size)
{
	unsigned n = fvm.ndev;
	struct virtio_blk_opts o = {
		.blk = { .path = imgs[n], .format = BLK_FMT_RAW,
			 .readonly = readonly, .cache = BLK_CACHE_WRITEBACK },
		.serial = serial, .index = fvm.ndev,
	};
	char err[256];
	int fd;

	if (n)
		snprintf(imgs[n], sizeof(imgs[n]), "%s.%u", img, n);
	else
		snprintf(imgs[n], sizeof(imgs[n]), "%s", img);
	fd = open(imgs[n], O_RDWR | O_CREAT, 0600);

	ck_assert_int_ge(fd, 0);
	if (size || n)
		ck_assert_int_eq(ftruncate(fd, (off_t)(size ? size : 1 << 20)),
				 0);
	close(fd);
	err[0] = 0;
	if (virtio_blk_create(&fvm, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "create: %s\n", err);
		return -1;
	}
	cur = (int)fvm.ndev - 1;
	return 0;
}

static void setup(void)
{
	memset(&fvm, 0, sizeof(fvm));
	ram = aligned_alloc(4096, RAM_SIZE);
	/* the test plays the guest in it: as in a VM (vm_create) */
	tsan_guest_ram(ram, RAM_SIZE);
	memset(ram, 0, RAM_SIZE);
	fvm.mem = (struct guest_mem){ ram, RAM_SIZE, RAM_SIZE };
	snprintf(img, sizeof(img), "/tmp/vblk-test-%d.img", getpid());
	unlink(img);
	log_count = 0;
	ck_assert_int_eq(make_disk(NULL, false, 1 << 20), 0);
}

static void teardown(void)
{
	fake_destroy_all();
	for (unsigned i = 0; i < FAKE_MAX_DEV; i++)
		if (imgs[i][0])
			unlink(imgs[i]);
	memset(imgs, 0, sizeof(imgs));
	free(ram);
}

START_TEST(registers)
{
	uint64_t f = dev_features();

	ck_assert_uint_eq(rd32(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_VERSION), 2);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_DEVICE_ID), 2);
	ck_assert(f & (1ULL << VIRTIO_F_VERSION_1));
	ck_assert(f & (1ULL << VIRTIO_F_EVENT_IDX));
	ck_assert(f & (1ULL << VIRTIO_F_INDIRECT_DESC));
	ck_assert(f & (1ULL << VIRTIO_BLK_F_FLUSH));
	ck_assert(f & (1ULL << VIRTIO_BLK_F_SEG_MAX));
	ck_assert(f & (1ULL << VIRTIO_BLK_F_SIZE_MAX));
	ck_assert(f & (1ULL << VIRTIO_BLK_F_BLK_SIZE));
	ck_assert(!(f & (1ULL << VIRTIO_BLK_F_RO)));
	wr32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_DEVICE_FEATURES), 0);
	ck_assert_uint_eq(cfg64(VIRTIO_BLK_CFG_CAPACITY), (1 << 20) / 512);
	ck_assert_uint_eq(cfg32(VIRTIO_BLK_CFG_SEG_MAX), VIRTIO_BLK_SEG_MAX);
	ck_assert_uint_eq(cfg32(VIRTIO_BLK_CFG_BLK_SIZE), 512);
	/* config beyond its size reads as zero */
	ck_assert_uint_eq(cfg32(VIRTIO_BLK_CFG_SIZE), 0);
	wr32(VIRTIO_MMIO_QUEUE_SEL, 0);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_BLK_QUEUE_SIZE);
	wr32(VIRTIO_MMIO_QUEUE_SEL, VIRTIO_BLK_NUM_QUEUES - 1);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_BLK_QUEUE_SIZE);
	wr32(VIRTIO_MMIO_QUEUE_SEL, VIRTIO_BLK_NUM_QUEUES);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	ck_assert(f & (1ULL << VIRTIO_BLK_F_MQ));
	uint16_t nq;
	fvm.dev[cur].rd(fvm.dev[cur].opaque,
			VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_NUM_QUEUES, &nq, 2);
	ck_assert_uint_eq(nq, VIRTIO_BLK_NUM_QUEUES);
	/* no shared memory regions: length -1 */
	wr32(VIRTIO_MMIO_SHM_SEL, 0);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffff);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_CONFIG_GENERATION), 0);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_STATUS), 0);
	/* queue registers are frozen while QueueReady is 1; 0 reads back 0 */
	wr32(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr32(VIRTIO_MMIO_QUEUE_NUM, 16);
	wr32(VIRTIO_MMIO_QUEUE_READY, 1);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_QUEUE_READY), 1);
	wr32(VIRTIO_MMIO_QUEUE_READY, 0);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_QUEUE_READY), 0);
	/* writes to a queue that does not exist go nowhere */
	wr32(VIRTIO_MMIO_QUEUE_SEL, VIRTIO_BLK_NUM_QUEUES);
	wr32(VIRTIO_MMIO_QUEUE_READY, 1);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_QUEUE_READY), 0);
	/* a 2-byte access to a register is ignored, with one log line */
	uint16_t v16 = 0xffff;
	fvm.dev[cur].rd(fvm.dev[cur].opaque, VIRTIO_MMIO_MAGIC_VALUE, &v16, 2);
	ck_assert_uint_eq(v16, 0);
	ck_assert_int_eq(log_count, 1);
}
END_TEST

START_TEST(needs_version_1)
{
	uint32_t st = driver_init(std_features & ~(1ULL << VIRTIO_F_VERSION_1));

	ck_assert(!(st & VIRTIO_STATUS_FEATURES_OK));
	ck_assert(strstr(last_log, "VERSION_1"));
}
END_TEST

START_TEST(guest_errors_logged_boundedly)
{
	for (int i = 0; i < 60; i++)
		driver_init(std_features & ~(1ULL << VIRTIO_F_VERSION_1));
	ck_assert_int_eq(log_count, 50);
	ck_assert(strstr(last_log, "further guest errors not logged"));
}
END_TEST

START_TEST(unoffered_feature_refused)
{
	uint32_t st = driver_init(std_features | (1ULL << 40));

	ck_assert(!(st & VIRTIO_STATUS_FEATURES_OK));
	ck_assert(strstr(last_log, "not offered"));
}
END_TEST

START_TEST(status_state_machine)
{
	uint32_t st;

	/* DRIVER_OK before FEATURES_OK: refused, device needs reset */
	wr32(VIRTIO_MMIO_STATUS, 3);
	wr32(VIRTIO_MMIO_STATUS, 3 | VIRTIO_STATUS_DRIVER_OK);
	st = rd32(VIRTIO_MMIO_STATUS);
	ck_assert(!(st & VIRTIO_STATUS_DRIVER_OK));
	ck_assert(st & VIRTIO_STATUS_NEEDS_RESET);
	/* reset clears everything */
	wr32(VIRTIO_MMIO_STATUS, 0);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_STATUS), 0);
	/* clearing a bit without a reset is ignored */
	wr32(VIRTIO_MMIO_STATUS, 3);
	wr32(VIRTIO_MMIO_STATUS, 1);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_STATUS), 3);
	/* the driver cannot set NEEDS_RESET */
	wr32(VIRTIO_MMIO_STATUS, 3 | VIRTIO_STATUS_NEEDS_RESET);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_STATUS), 3);
	/* features are frozen once FEATURES_OK is accepted */
	set_features(std_features);
	wr32(VIRTIO_MMIO_STATUS, 11);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_STATUS), 11);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES, 0);	/* would drop VERSION_1 */
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_STATUS), 11);
	/* DRIVER_OK without a ready queue: the device cannot start */
	wr32(VIRTIO_MMIO_STATUS, 15);
	ck_assert(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	ck_assert(strstr(last_log, "needs reset"));
	/* and a full, proper init after a reset works */
	st = driver_init(std_features);
	ck_assert_uint_eq(st, 15);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_FLUSH, 0, 0, false),
			 VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(config_generation)
{
	struct virtio_mmio *t = fvm.dev[cur].opaque;

	/* before DRIVER_OK: the generation moves, no interrupt */
	irq_count();
	virtio_mmio_config_changed(t);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_CONFIG_GENERATION), 1);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	ck_assert_uint_eq(irq_count(), 0);
	/* a running driver gets a config-change interrupt */
	driver_init(std_features);
	virtio_mmio_config_changed(t);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_CONFIG_GENERATION), 2);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_INTERRUPT_STATUS),
			  VIRTIO_MMIO_INT_CONFIG);
	ck_assert_uint_eq(irq_count(), 1);
	wr32(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	ck_assert(!virtio_mmio_needs_reset(t));
	ck_assert_uint_eq(virtio_mmio_base(t), VMM_VIRTIO_MMIO_BASE);
	ck_assert_uint_eq(virtio_mmio_irq(t), VMM_VIRTIO_IRQ_BASE);
}
END_TEST

START_TEST(write_read_roundtrip)
{
	uint8_t buf[8192];
	int fd;

	ck_assert_uint_eq(driver_init(std_features) &
			  (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET),
			  VIRTIO_STATUS_DRIVER_OK);
	for (unsigned i = 0; i < 8192; i++)
		ram[DATA + i] = (uint8_t)(i * 7 + 3);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_OUT, 10, 8192, false),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_ring()[0].len, 1);
	/* the host sees it in the file */
	fd = open(img, O_RDONLY);
	ck_assert_int_eq(pread(fd, buf, 8192, 10 * 512), 8192);
	close(fd);
	ck_assert(memcmp(buf, ram + DATA, 8192) == 0);
	/* and the guest reads it back */
	memset(ram + DATA + SLOT_DATA, 0, 8192);
	ck_assert_int_eq(do_req(1, VIRTIO_BLK_T_IN, 10, 8192, true),
			 VIRTIO_BLK_S_OK);
	ck_assert(memcmp(buf, ram + DATA + SLOT_DATA, 8192) == 0);
	ck_assert_uint_eq(used_ring()[1].len, 8193);
	ck_assert_uint_eq(used_ring()[1].id, 3);
	ck_assert_int_eq(do_req(2, VIRTIO_BLK_T_FLUSH, 0, 0, false),
			 VIRTIO_BLK_S_OK);
	ck_assert_int_eq(log_count, 0);
}
END_TEST

START_TEST(batch_of_requests)
{
	/* many requests, one notify, interrupts only as EVENT_IDX allows */
	const unsigned n = 20;

	driver_init(std_features);
	irq_count();
	avail()[2 + QSZ] = n - 1;	/* used_event: after the last one */
	for (unsigned s = 0; s < n; s++) {
		memset(ram + DATA + s * SLOT_DATA, (int)s + 1, 4096);
		prep(s, VIRTIO_BLK_T_OUT, s * 8, 4096, false);
	}
	kick();
	ck_assert(wait_used(n));
	for (unsigned s = 0; s < n; s++)
		ck_assert_int_eq(*status_of(s), VIRTIO_BLK_S_OK);
	usleep(20000);
	ck_assert_uint_le(irq_count(), 1);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_INTERRUPT_STATUS) &
			  VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_INT_VRING);
	wr32(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* avail_event tells the driver where to notify next */
	ck_assert_uint_eq(*(uint16_t *)(ram + USED + 4 + 8 * QSZ), n);
	/* read them back in one batch too */
	for (unsigned s = 0; s < n; s++)
		prep(s, VIRTIO_BLK_T_IN, s * 8, 4096, true);
	memset(ram + DATA, 0, n * SLOT_DATA);
	kick();
	ck_assert(wait_used(n));
	for (unsigned s = 0; s < n; s++) {
		ck_assert_int_eq(*status_of(s), VIRTIO_BLK_S_OK);
		ck_assert_int_eq(ram[DATA + s * SLOT_DATA + 4095], s + 1);
	}
}
END_TEST

/* A second queue (index qi) at Q2 with its own rings; slot s uses its
 * descriptors 3s..3s+2 and the same header/data areas as queue 0's slots
 * 32 + s. */
#define Q2	0x40000ULL
static void setup_queue(unsigned qi, uint64_t base)
{
	wr32(VIRTIO_MMIO_QUEUE_SEL, qi);
	wr32(VIRTIO_MMIO_QUEUE_NUM, QSZ);
	wr32(VIRTIO_MMIO_QUEUE_DESC_LOW, base);
	wr32(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_DRIVER_LOW, base + 0x1000);
	wr32(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_DEVICE_LOW, base + 0x2000);
	wr32(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_READY, 1);
}

START_TEST(multiqueue)
{
	const uint64_t f = std_features | (1ULL << VIRTIO_BLK_F_MQ);
	struct vring_desc *d2 = (struct vring_desc *)(ram + Q2);
	uint16_t *avail2 = (uint16_t *)(ram + Q2 + 0x1000);
	volatile uint16_t *used2 = (volatile uint16_t *)(ram + Q2 + 0x2000);
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		      VIRTIO_STATUS_FEATURES_OK;
	uint64_t one = 1;

	/* queues 0 and 2 (a driver may use a subset), then DRIVER_OK */
	wr32(VIRTIO_MMIO_STATUS, 0);
	memset(ram, 0, DATA);
	wr32(VIRTIO_MMIO_STATUS, 3);
	set_features(f);
	wr32(VIRTIO_MMIO_STATUS, st);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_STATUS), st);
	setup_queue(0, DESC);
	setup_queue(2, Q2);
	wr32(VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_STATUS), st | VIRTIO_STATUS_DRIVER_OK);
	ck_assert_int_ge(fvm.dev[cur].notify_fd[2], 0);

	/* a write on queue 2, notified on queue 2's eventfd */
	for (unsigned i = 0; i < 4096; i++)
		ram[DATA + i] = (uint8_t)(i ^ 0x5a);
	struct virtio_blk_outhdr hdr = { .type = VIRTIO_BLK_T_OUT, .sector = 40 };
	memcpy(ram + HDRS, &hdr, 16);
	ram[HDRS + 0x80] = 0xee;
	d2[0] = (struct vring_desc){ HDRS, 16, VIRTQ_DESC_F_NEXT, 1 };
	d2[1] = (struct vring_desc){ DATA, 4096, VIRTQ_DESC_F_NEXT, 2 };
	d2[2] = (struct vring_desc){ HDRS + 0x80, 1, VIRTQ_DESC_F_WRITE, 0 };
	avail2[2] = 0;
	__atomic_store_n(&avail2[1], 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(write(fvm.dev[cur].notify_fd[2], &one, 8), 8);
	for (int i = 0; i < 5000 && used2[1] != 1; i++)
		usleep(1000);
	ck_assert_uint_eq(used2[1], 1);
	ck_assert_int_eq(ram[HDRS + 0x80], VIRTIO_BLK_S_OK);
	/* queue 0 untouched; it reads the data back */
	ck_assert_uint_eq(used_idx(), 0);
	memset(ram + DATA + SLOT_DATA, 0, 4096);
	ck_assert_int_eq(do_req(1, VIRTIO_BLK_T_IN, 40, 4096, true),
			 VIRTIO_BLK_S_OK);
	ck_assert(memcmp(ram + DATA, ram + DATA + SLOT_DATA, 4096) == 0);
}
END_TEST

START_TEST(queue_1_ignored_without_mq)
{
	/* without MQ only queue 0 is used, even if the driver set up more */
	struct vring_desc *d2 = (struct vring_desc *)(ram + Q2);
	uint16_t *avail2 = (uint16_t *)(ram + Q2 + 0x1000);
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		      VIRTIO_STATUS_FEATURES_OK;
	uint64_t one = 1;

	wr32(VIRTIO_MMIO_STATUS, 0);
	memset(ram, 0, DATA);
	wr32(VIRTIO_MMIO_STATUS, 3);
	set_features(std_features);
	wr32(VIRTIO_MMIO_STATUS, st);
	setup_queue(0, DESC);
	setup_queue(1, Q2);
	wr32(VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	d2[0] = (struct vring_desc){ 0xd0000000ULL, 16, 0, 0 };	/* bad */
	avail2[2] = 0;
	__atomic_store_n(&avail2[1], 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(write(fvm.dev[cur].notify_fd[1], &one, 8), 8);
	usleep(20000);
	ck_assert(!(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET));
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_IN, 0, 512, true),
			 VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(buffers_before_driver_ok)
{
	/* a chain made available (and even notified) before DRIVER_OK is
	 * served once the device starts, without another notify */
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		      VIRTIO_STATUS_FEATURES_OK;

	wr32(VIRTIO_MMIO_STATUS, 0);
	memset(ram, 0, DATA);
	seen_used = 0;
	wr32(VIRTIO_MMIO_STATUS, 3);
	set_features(std_features);
	wr32(VIRTIO_MMIO_STATUS, st);
	setup_queue(0, DESC);
	prep(0, VIRTIO_BLK_T_GET_ID, 0, 20, true);
	kick();
	usleep(10000);
	ck_assert_uint_eq(used_idx(), 0);	/* not before DRIVER_OK */
	wr32(VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	ck_assert(wait_used(1));
	ck_assert_int_eq(*status_of(0), VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(mmio_notify_fallback)
{
	/* without ioeventfd, a QueueNotify write still reaches the device */
	fake_destroy_all();
	memset(&fvm, 0, sizeof(fvm));
	fvm.mem = (struct guest_mem){ ram, RAM_SIZE, RAM_SIZE };
	fvm.no_ioeventfd = true;
	ck_assert_int_eq(make_disk(NULL, false, 1 << 20), 0);
	ck_assert_int_eq(fvm.dev[cur].notify_fd[0], -1);
	driver_init(std_features);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_IN, 0, 512, true),
			 VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(get_id)
{
	driver_init(std_features);
	memset(ram + DATA, 0xff, 20);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_GET_ID, 0, 20, true),
			 VIRTIO_BLK_S_OK);
	ck_assert_str_eq((char *)ram + DATA, "vmm-disk0");
	ck_assert_uint_eq(used_ring()[0].len, 21);
	/* a second disk with a full 20-byte serial: no NUL */
	ck_assert_int_eq(make_disk("ABCDEFGHIJKLMNOPQRST", false, 0), 0);
	ck_assert_int_eq(cur, 1);
	driver_init(std_features);
	memset(ram + DATA, 0, 32);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_GET_ID, 0, 20, true),
			 VIRTIO_BLK_S_OK);
	ck_assert(memcmp(ram + DATA, "ABCDEFGHIJKLMNOPQRST", 20) == 0);
}
END_TEST

START_TEST(serial_too_long)
{
	ck_assert_int_eq(make_disk("ABCDEFGHIJKLMNOPQRSTU", false, 0), -1);
}
END_TEST

START_TEST(errors)
{
	driver_init(std_features);
	/* unknown type */
	ck_assert_int_eq(do_req(0, 99, 0, 512, true), VIRTIO_BLK_S_UNSUPP);
	/* beyond the end of the disk */
	ck_assert_int_eq(do_req(1, VIRTIO_BLK_T_IN, 2048, 512, true),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(do_req(2, VIRTIO_BLK_T_OUT, 2047, 1024, false),
			 VIRTIO_BLK_S_IOERR);
	/* sector whose byte offset overflows */
	ck_assert_int_eq(do_req(3, VIRTIO_BLK_T_IN, 1ULL << 60, 512, true),
			 VIRTIO_BLK_S_IOERR);
	/* not a multiple of 512 */
	ck_assert_int_eq(do_req(4, VIRTIO_BLK_T_IN, 0, 100, true),
			 VIRTIO_BLK_S_IOERR);
	/* data in the wrong direction for the type */
	ck_assert_int_eq(do_req(6, VIRTIO_BLK_T_IN, 0, 512, false),
			 VIRTIO_BLK_S_IOERR);
	ck_assert(strstr(last_log, "device-readable bytes after its header"));
	ck_assert_int_eq(do_req(7, VIRTIO_BLK_T_OUT, 0, 512, true),
			 VIRTIO_BLK_S_IOERR);
	ck_assert(strstr(last_log, "device-writable bytes before its status"));
	/* the device carries on */
	ck_assert_int_eq(do_req(5, VIRTIO_BLK_T_IN, 2047, 512, true),
			 VIRTIO_BLK_S_OK);
	ck_assert(!(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET));
}
END_TEST

START_TEST(malformed_logging_is_bounded)
{
	/* one budget per device: transport, queues and requests share it */
	driver_init(std_features);
	for (unsigned i = 0; i < GUEST_LOG_LINES + 10; i++)
		ck_assert_int_eq(do_req(i % 16, VIRTIO_BLK_T_IN, 0, 512, false),
				 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(log_count, GUEST_LOG_LINES);
	ck_assert(strstr(last_log, "not logged"));
}
END_TEST

START_TEST(short_header)
{
	driver_init(std_features);
	prep(0, VIRTIO_BLK_T_IN, 0, 512, true);
	desc(0)->len = 8;
	kick();
	ck_assert(wait_used(1));
	ck_assert_int_eq(*status_of(0), VIRTIO_BLK_S_IOERR);
	ck_assert(strstr(last_log, "header shorter"));
}
END_TEST

START_TEST(header_split_across_descriptors)
{
	/* ANY_LAYOUT: the header in two pieces, status inside the data
	 * descriptor's tail */
	struct virtio_blk_outhdr hdr = { .type = VIRTIO_BLK_T_IN, .sector = 0 };

	driver_init(std_features);
	memcpy(ram + HDRS, &hdr, 16);
	*desc(0) = (struct vring_desc){ HDRS, 4, VIRTQ_DESC_F_NEXT, 1 };
	*desc(1) = (struct vring_desc){ HDRS + 4, 12, VIRTQ_DESC_F_NEXT, 2 };
	*desc(2) = (struct vring_desc){ DATA, 513, VIRTQ_DESC_F_WRITE, 0 };
	ram[DATA + 512] = 0xee;
	offer(0);
	kick();
	ck_assert(wait_used(1));
	ck_assert_int_eq(ram[DATA + 512], VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(no_status_byte_needs_reset)
{
	driver_init(std_features);
	irq_count();
	prep(0, VIRTIO_BLK_T_OUT, 0, 512, false);
	desc(1)->flags = 0;	/* data readable, end of chain */
	kick();
	for (int i = 0; i < 2000 &&
	     !(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	ck_assert(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	ck_assert(strstr(last_log, "status byte"));
}
END_TEST

START_TEST(hostile_chain_needs_reset_then_recovers)
{
	driver_init(std_features);
	irq_count();
	/* a loop */
	prep(0, VIRTIO_BLK_T_IN, 0, 512, true);
	desc(2)->flags |= VIRTQ_DESC_F_NEXT;
	desc(2)->next = 0;
	desc(0)->flags = VIRTQ_DESC_F_NEXT;
	kick();
	for (int i = 0; i < 2000 &&
	     !(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	ck_assert(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	/* config-change interrupt */
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_INTERRUPT_STATUS) &
			  VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_CONFIG);
	ck_assert_uint_ge(irq_count(), 1);
	ck_assert_int_eq(log_count, 1);
	/* a reset and a fresh start bring it back */
	ck_assert_uint_eq(driver_init(std_features) & ~0u,
			  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_IN, 0, 512, true),
			 VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(outside_ram_needs_reset)
{
	driver_init(std_features);
	prep(0, VIRTIO_BLK_T_IN, 0, 512, true);
	desc(1)->addr = RAM_SIZE - 256;	/* runs off the end of RAM */
	kick();
	for (int i = 0; i < 2000 &&
	     !(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	ck_assert(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	ck_assert(strstr(last_log, "outside guest RAM"));
}
END_TEST

START_TEST(bad_ring_address_at_driver_ok)
{
	uint32_t st;

	wr32(VIRTIO_MMIO_STATUS, 0);
	wr32(VIRTIO_MMIO_STATUS, 3);
	set_features(std_features);
	wr32(VIRTIO_MMIO_STATUS, 11);
	wr32(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr32(VIRTIO_MMIO_QUEUE_NUM, QSZ);
	wr32(VIRTIO_MMIO_QUEUE_DESC_LOW, 0xd0000000);	/* MMIO hole */
	wr32(VIRTIO_MMIO_QUEUE_DRIVER_LOW, AVAIL);
	wr32(VIRTIO_MMIO_QUEUE_DEVICE_LOW, USED);
	wr32(VIRTIO_MMIO_QUEUE_READY, 1);
	irq_count();
	wr32(VIRTIO_MMIO_STATUS, 15);
	st = rd32(VIRTIO_MMIO_STATUS);
	ck_assert(st & VIRTIO_STATUS_NEEDS_RESET);
	ck_assert(strstr(last_log, "needs reset"));
	/* and the driver hears of it */
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_INTERRUPT_STATUS),
			  VIRTIO_MMIO_INT_CONFIG);
	ck_assert_uint_eq(irq_count(), 1);
}
END_TEST

START_TEST(readonly_disk)
{
	uint8_t before[4096], after[4096];
	int fd = open(img, O_RDWR);

	memset(before, 0x5a, sizeof(before));
	ck_assert_int_eq(pwrite(fd, before, 4096, 0), 4096);
	close(fd);
	fake_destroy_all();
	memset(&fvm, 0, sizeof(fvm));
	fvm.mem = (struct guest_mem){ ram, RAM_SIZE, RAM_SIZE };
	ck_assert_int_eq(make_disk(NULL, true, 0), 0);
	ck_assert(dev_features() & (1ULL << VIRTIO_BLK_F_RO));
	driver_init(std_features | (1ULL << VIRTIO_BLK_F_RO));
	memset(ram + DATA, 0, 4096);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_OUT, 0, 4096, false),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(do_req(1, VIRTIO_BLK_T_IN, 0, 4096, true),
			 VIRTIO_BLK_S_OK);
	ck_assert(memcmp(ram + DATA + SLOT_DATA, before, 4096) == 0);
	fd = open(img, O_RDONLY);
	ck_assert_int_eq(pread(fd, after, 4096, 0), 4096);
	close(fd);
	ck_assert(memcmp(before, after, 4096) == 0);
}
END_TEST

START_TEST(writethrough_without_flush_feature)
{
	/* the write completes (after its implicit flush) */
	driver_init(std_features & ~(1ULL << VIRTIO_BLK_F_FLUSH));
	memset(ram + DATA, 0x77, 512);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_OUT, 3, 512, false),
			 VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(discard_and_write_zeroes)
{
	uint64_t f = dev_features();
	struct virtio_blk_discard_write_zeroes seg = { 8, 8, 0 };
	uint8_t buf[4096];
	int fd;

	if (!(f & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES)))
		return;		/* backend cannot: not offered */
	driver_init(std_features | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES) |
		    (f & (1ULL << VIRTIO_BLK_F_DISCARD)));
	memset(ram + DATA, 0x33, 8192);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_OUT, 0, 8192, false),
			 VIRTIO_BLK_S_OK);
	memcpy(ram + DATA + SLOT_DATA, &seg, sizeof(seg));
	ck_assert_int_eq(do_req(1, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
			 VIRTIO_BLK_S_OK);
	fd = open(img, O_RDONLY);
	ck_assert_int_eq(pread(fd, buf, 4096, 4096), 4096);
	for (unsigned i = 0; i < 4096; i++)
		ck_assert_int_eq(buf[i], 0);
	ck_assert_int_eq(pread(fd, buf, 4096, 0), 4096);
	ck_assert_int_eq(buf[0], 0x33);
	close(fd);
	/* unknown flag bits: UNSUPP */
	seg.flags = 0x80;
	memcpy(ram + DATA + 2 * SLOT_DATA, &seg, sizeof(seg));
	ck_assert_int_eq(do_req(2, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
			 VIRTIO_BLK_S_UNSUPP);
	if (f & (1ULL << VIRTIO_BLK_F_DISCARD)) {
		seg.flags = 0;
		memcpy(ram + DATA + 3 * SLOT_DATA, &seg, sizeof(seg));
		ck_assert_int_eq(do_req(3, VIRTIO_BLK_T_DISCARD, 0, 16, false),
				 VIRTIO_BLK_S_OK);
	}
}
END_TEST

START_TEST(indirect_request)
{
	struct virtio_blk_outhdr hdr = { .type = VIRTIO_BLK_T_IN, .sector = 1 };
	struct vring_desc *t = (struct vring_desc *)(ram + TABLES);

	driver_init(std_features);
	memcpy(ram + HDRS, &hdr, 16);
	/* header, 4 x 512 data segments, status */
	t[0] = (struct vring_desc){ HDRS, 16, VIRTQ_DESC_F_NEXT, 1 };
	for (unsigned i = 1; i <= 4; i++)
		t[i] = (struct vring_desc){ DATA + (i - 1) * 1024, 512,
			VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, i + 1 };
	t[5] = (struct vring_desc){ HDRS + 0x80, 1, VIRTQ_DESC_F_WRITE, 0 };
	*desc(0) = (struct vring_desc){ TABLES, 6 * 16, VIRTQ_DESC_F_INDIRECT,
					0 };
	offer(0);
	kick();
	ck_assert(wait_used(1));
	ck_assert_int_eq(*status_of(0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_ring()[0].len, 2049);
}
END_TEST

START_TEST(reset_with_io_in_flight)
{
	/* reset right after a notify: returns only when the device is quiet,
	 * and the device works again afterwards */
	for (int round = 0; round < 20; round++) {
		driver_init(std_features);
		for (unsigned s = 0; s < 16; s++)
			prep(s, VIRTIO_BLK_T_IN, s * 8, 4096, true);
		kick();
		if (round & 1)
			usleep(100);
		wr32(VIRTIO_MMIO_STATUS, 0);
		ck_assert_uint_eq(rd32(VIRTIO_MMIO_STATUS), 0);
		ck_assert_uint_eq(rd32(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
		/* nothing touches the used ring after reset */
		uint16_t u = used_idx();
		usleep(2000);
		ck_assert_uint_eq(used_idx(), u);
	}
	driver_init(std_features);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_IN, 0, 4096, true),
			 VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(eight_disks)
{
	for (unsigned i = 1; i < 8; i++)
		ck_assert_int_eq(make_disk(NULL, false, 0), 0);
	ck_assert_int_eq(fvm.ndev, 8);
	ck_assert_uint_eq(fvm.dev[7].base, VMM_VIRTIO_MMIO_BASE + 7 * 0x1000);
	cur = 7;
	driver_init(std_features);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_GET_ID, 0, 20, true),
			 VIRTIO_BLK_S_OK);
	ck_assert_str_eq((char *)ram + DATA, "vmm-disk7");
}
END_TEST

START_TEST(head_offered_twice_needs_reset)
{
	/* the same head twice in the ring before the device used it */
	driver_init(std_features);
	prep(0, VIRTIO_BLK_T_IN, 0, 4096, true);
	avail()[2 + 1] = 0;
	__atomic_store_n(&avail()[1], 2, __ATOMIC_RELEASE);
	kick();
	for (int i = 0; i < 2000 &&
	     !(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	ck_assert(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	ck_assert(strstr(last_log, "made available again while in flight"));
	/* a reset drains the first one, and the device works again */
	ck_assert_uint_eq(driver_init(std_features), 15);
	ck_assert_int_eq(do_req(0, VIRTIO_BLK_T_IN, 0, 512, true),
			 VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(driver_ok_without_queue_logged_boundedly)
{
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		      VIRTIO_STATUS_FEATURES_OK;

	/* a guest cycling reset / DRIVER_OK without a queue, forever */
	for (int i = 0; i < 2 * GUEST_LOG_LINES; i++) {
		wr32(VIRTIO_MMIO_STATUS, 0);
		wr32(VIRTIO_MMIO_STATUS, 3);
		set_features(std_features);
		wr32(VIRTIO_MMIO_STATUS, st);
		wr32(VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
		ck_assert(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	}
	ck_assert_int_eq(log_count, GUEST_LOG_LINES);
}
END_TEST

/* ---- vblk_parse_request on chains in plain memory ---- */

static uint8_t pbuf[1 << 16], pstatus;
static struct iovec piov[VIRTIO_BLK_QUEUE_SIZE + 2];
static struct vblk_params pparams = {
	.features = (1ULL << VIRTIO_BLK_F_FLUSH) |
		    (1ULL << VIRTIO_BLK_F_WRITE_ZEROES),
};
static char pmsg[200];

/* A chain of header, nseg data segments of seglen bytes each (readable
 * for OUT, writable otherwise; all on pbuf: parsing does not copy data),
 * status byte. */
static struct virtq_elem chain(uint32_t type, unsigned nseg, size_t seglen)
{
	static struct virtio_blk_outhdr hdr;
	struct virtq_elem e = { .head = 7, .iov = piov };
	bool out = type == VIRTIO_BLK_T_OUT;
	unsigned i = 0;

	hdr = (struct virtio_blk_outhdr){ .type = type, .sector = 8 };
	piov[i++] = (struct iovec){ &hdr, sizeof(hdr) };
	for (unsigned k = 0; k < nseg; k++)
		piov[i++] = (struct iovec){ pbuf, seglen };
	piov[i++] = (struct iovec){ &pstatus, 1 };
	e.n_out = 1 + (out ? nseg : 0);
	e.n_in = i - e.n_out;
	return e;
}

static struct vblk_request parse_chain(struct virtq_elem e)
{
	struct vblk_request r;

	vblk_parse_request(&pparams, &e, &r, pmsg, sizeof(pmsg));
	return r;
}

START_TEST(parse_read_write)
{
	struct vblk_request r = parse_chain(chain(VIRTIO_BLK_T_IN, 2, 4096));

	ck_assert_int_eq(r.action, VBLK_SUBMIT);
	ck_assert_int_eq(r.op, BLK_OP_READ);
	ck_assert_uint_eq(r.offset, 8 * 512);
	ck_assert_uint_eq(r.len, 8192);
	ck_assert_uint_eq(r.iovcnt, 2);
	ck_assert_uint_eq(r.used_len, 8193);
	ck_assert_ptr_eq(r.status_byte, &pstatus);
	ck_assert_str_eq(pmsg, "");
	r = parse_chain(chain(VIRTIO_BLK_T_OUT, 1, 512));
	ck_assert_int_eq(r.action, VBLK_SUBMIT);
	ck_assert_int_eq(r.op, BLK_OP_WRITE);
	ck_assert_uint_eq(r.used_len, 1);
	/* read-only: writes fail, reads do not */
	pparams.readonly = true;
	r = parse_chain(chain(VIRTIO_BLK_T_OUT, 1, 512));
	ck_assert_int_eq(r.action, VBLK_ANSWER);
	ck_assert_int_eq(r.status, VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(parse_chain(chain(VIRTIO_BLK_T_IN, 1, 512)).action,
			 VBLK_SUBMIT);
	pparams.readonly = false;
}
END_TEST

START_TEST(parse_enforces_seg_max)
{
	/* SEG_MAX segments pass, one more is an error */
	struct vblk_request r = parse_chain(chain(VIRTIO_BLK_T_IN,
						  VIRTIO_BLK_SEG_MAX, 512));

	ck_assert_int_eq(r.action, VBLK_SUBMIT);
	ck_assert_uint_eq(r.iovcnt, VIRTIO_BLK_SEG_MAX);
	r = parse_chain(chain(VIRTIO_BLK_T_OUT, VIRTIO_BLK_SEG_MAX + 1, 512));
	ck_assert_int_eq(r.action, VBLK_ANSWER);
	ck_assert_int_eq(r.status, VIRTIO_BLK_S_IOERR);
	ck_assert(strstr(pmsg, "seg_max"));
}
END_TEST

START_TEST(parse_enforces_size_max)
{
	/* parsing never touches the data: a big length on a small buffer
	 * is fine here */
	struct vblk_request r = parse_chain(chain(VIRTIO_BLK_T_IN, 1,
						  VIRTIO_BLK_SIZE_MAX));

	ck_assert_int_eq(r.action, VBLK_SUBMIT);
	r = parse_chain(chain(VIRTIO_BLK_T_IN, 1, VIRTIO_BLK_SIZE_MAX + 512));
	ck_assert_int_eq(r.action, VBLK_ANSWER);
	ck_assert_int_eq(r.status, VIRTIO_BLK_S_IOERR);
	ck_assert(strstr(pmsg, "size_max"));
	r = parse_chain(chain(VIRTIO_BLK_T_OUT, 3, VIRTIO_BLK_SIZE_MAX + 512));
	ck_assert_int_eq(r.status, VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(parse_other_types)
{
	struct virtq_elem e = chain(VIRTIO_BLK_T_FLUSH, 0, 0);
	struct vblk_request r = parse_chain(e);

	ck_assert_int_eq(r.action, VBLK_SUBMIT);
	ck_assert_int_eq(r.op, BLK_OP_FLUSH);
	r = parse_chain(chain(VIRTIO_BLK_T_GET_ID, 1, 20));
	ck_assert_int_eq(r.action, VBLK_GET_ID);
	ck_assert_uint_eq(r.iovcnt, 1);
	r = parse_chain(chain(99, 0, 0));
	ck_assert_int_eq(r.action, VBLK_ANSWER);
	ck_assert_int_eq(r.status, VIRTIO_BLK_S_UNSUPP);
	/* DISCARD not negotiated: UNSUPP; WRITE_ZEROES is */
	r = parse_chain(chain(VIRTIO_BLK_T_DISCARD, 0, 0));
	ck_assert_int_eq(r.status, VIRTIO_BLK_S_UNSUPP);
	/* no status byte: cannot be answered */
	e = chain(VIRTIO_BLK_T_OUT, 1, 512);
	e.n_in = 0;
	r = parse_chain(e);
	ck_assert_int_eq(r.action, VBLK_ABANDON);
	ck_assert(strstr(pmsg, "status byte"));
	/* the header split over two descriptors still parses */
	e = chain(VIRTIO_BLK_T_IN, 1, 512);
	memmove(&piov[1], &piov[0], 3 * sizeof(piov[0]));
	piov[0].iov_len = 4;
	piov[1].iov_base = (uint8_t *)piov[1].iov_base + 4;
	piov[1].iov_len = 12;
	e.n_out = 2;
	r = parse_chain(e);
	ck_assert_int_eq(r.action, VBLK_SUBMIT);
	ck_assert_uint_eq(r.len, 512);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_blk");
	TCase *t = tcase_create("mmio+blk");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 30);
	tcase_add_test(t, registers);
	tcase_add_test(t, needs_version_1);
	tcase_add_test(t, unoffered_feature_refused);
	tcase_add_test(t, guest_errors_logged_boundedly);
	tcase_add_test(t, status_state_machine);
	tcase_add_test(t, config_generation);
	tcase_add_test(t, write_read_roundtrip);
	tcase_add_test(t, batch_of_requests);
	tcase_add_test(t, multiqueue);
	tcase_add_test(t, queue_1_ignored_without_mq);
	tcase_add_test(t, buffers_before_driver_ok);
	tcase_add_test(t, mmio_notify_fallback);
	tcase_add_test(t, get_id);
	tcase_add_test(t, serial_too_long);
	tcase_add_test(t, errors);
	tcase_add_test(t, short_header);
	tcase_add_test(t, malformed_logging_is_bounded);
	tcase_add_test(t, header_split_across_descriptors);
	tcase_add_test(t, no_status_byte_needs_reset);
	tcase_add_test(t, hostile_chain_needs_reset_then_recovers);
	tcase_add_test(t, outside_ram_needs_reset);
	tcase_add_test(t, bad_ring_address_at_driver_ok);
	tcase_add_test(t, readonly_disk);
	tcase_add_test(t, writethrough_without_flush_feature);
	tcase_add_test(t, discard_and_write_zeroes);
	tcase_add_test(t, indirect_request);
	tcase_add_test(t, reset_with_io_in_flight);
	tcase_add_test(t, eight_disks);
	tcase_add_test(t, head_offered_twice_needs_reset);
	tcase_add_test(t, driver_ok_without_queue_logged_boundedly);
	suite_add_tcase(s, t);

	TCase *p = tcase_create("parse");
	tcase_add_test(p, parse_read_write);
	tcase_add_test(p, parse_enforces_seg_max);
	tcase_add_test(p, parse_enforces_size_max);
	tcase_add_test(p, parse_other_types);
	suite_add_tcase(s, p);
	return s;
}

int main(void)
{
	return check_run(suite());
}
