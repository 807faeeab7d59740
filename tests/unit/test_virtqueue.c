/* tests/unit/test_virtqueue.c - the split virtqueue walker on crafted rings
 * in plain memory: normal and indirect chains, hostile chains (loops,
 * outside RAM, too long, wrong direction, nested indirect), zero lengths,
 * EVENT_IDX decisions and used ring wraparound. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtqueue.h"
#include "tests/unit/check_main.h"

/* test double for the one vm.h service virtqueue.c uses */
static int log_count;
static char last_log[256];

void vm_log(const char *who, const char *fmt, ...)
{
	va_list ap;

	(void)who;
	va_start(ap, fmt);
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
	va_end(ap);
	log_count++;
}

/* Guest RAM: 512 KiB low + 512 KiB at 4 GiB. */
#define LOW	0x80000ULL
#define HIGH	0x100000000ULL
#define DESC	0x1000ULL
#define AVAIL	0x2000ULL
#define USED	0x3000ULL
#define TABLE	0x4000ULL
#define BUF	0x10000ULL
#define QSZ	8

static uint8_t *ram;
static struct guest_mem mem;
static struct virtq q;
static struct iovec iov[64];
static struct virtq_elem e;

static struct vring_desc *desc_at(uint64_t gpa)
{
	return (struct vring_desc *)(ram + gpa);
}

static uint16_t *avail(void) { return (uint16_t *)(ram + AVAIL); }
static uint16_t *used(void) { return (uint16_t *)(ram + USED); }
static struct vring_used_elem *used_ring(void)
{
	return (struct vring_used_elem *)(ram + USED + 4);
}

static void set_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct vring_desc *d = desc_at(table) + i;

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

/* make head available as the next entry */
static void offer(uint16_t head)
{
	uint16_t idx = avail()[1];

	avail()[2 + idx % q.size] = head;
	avail()[1] = idx + 1;
}

static void setup_features(uint64_t features)
{
	char err[128];

	memset(ram, 0, 2 * LOW);
	log_count = 0;
	last_log[0] = 0;
	ck_assert_int_eq(virtq_init(&q, &mem, "vq-test", QSZ, DESC, AVAIL, USED,
				    features, err, sizeof(err)), 0);
}

static void setup(void)
{
	ram = aligned_alloc(4096, 2 * LOW);
	mem.host = ram;
	mem.size = 2 * LOW;
	mem.low_size = LOW;
	setup_features((1ULL << VIRTIO_F_INDIRECT_DESC) |
		       (1ULL << VIRTIO_F_EVENT_IDX));
}

static void teardown(void)
{
	free(ram);
}

static void expect_fatal(const char *what)
{
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), -1);
	ck_assert(q.broken);
	ck_assert_int_eq(log_count, 1);
	ck_assert_msg(strstr(last_log, what), "log '%s' lacks '%s'", last_log,
		      what);
	/* stays broken, logs once */
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), -1);
	ck_assert_int_eq(log_count, 1);
}

START_TEST(empty_ring)
{
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 0);
	ck_assert(!q.broken);
}
END_TEST

START_TEST(normal_chain)
{
	/* blk-like: 16-byte header, 4 KiB data in, status byte */
	set_desc(DESC, 3, BUF, 16, VIRTQ_DESC_F_NEXT, 5);
	set_desc(DESC, 5, BUF + 0x1000, 4096,
		 VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
	set_desc(DESC, 0, BUF + 0x3000, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(3);
	ck_assert_int_eq(virtq_avail_count(&q), 1);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	ck_assert_int_eq(e.head, 3);
	ck_assert_int_eq(e.n_out, 1);
	ck_assert_int_eq(e.n_in, 2);
	ck_assert_uint_eq(e.out_len, 16);
	ck_assert_uint_eq(e.in_len, 4097);
	ck_assert_ptr_eq(iov[0].iov_base, ram + BUF);
	ck_assert_ptr_eq(iov[1].iov_base, ram + BUF + 0x1000);
	ck_assert_uint_eq(iov[1].iov_len, 4096);
	ck_assert_ptr_eq(iov[2].iov_base, ram + BUF + 0x3000);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 0);
	ck_assert_int_eq(log_count, 0);
}
END_TEST

START_TEST(high_memory)
{
	/* GPA 4 GiB + x lives at host[low_size + x] */
	set_desc(DESC, 0, HIGH + 0x100, 512, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	ck_assert_ptr_eq(iov[0].iov_base, ram + LOW + 0x100);
}
END_TEST

START_TEST(indirect_chain)
{
	set_desc(TABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(TABLE, 1, BUF + 0x1000, 8192, VIRTQ_DESC_F_NEXT, 2);
	set_desc(TABLE, 2, BUF + 0x4000, 1, VIRTQ_DESC_F_WRITE, 0);
	set_desc(DESC, 1, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(1);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	ck_assert_int_eq(e.head, 1);
	ck_assert_int_eq(e.n_out, 2);
	ck_assert_int_eq(e.n_in, 1);
	ck_assert_uint_eq(e.out_len, 16 + 8192);
	ck_assert_ptr_eq(iov[1].iov_base, ram + BUF + 0x1000);
	ck_assert_ptr_eq(iov[2].iov_base, ram + BUF + 0x4000);
}
END_TEST

START_TEST(direct_then_indirect)
{
	/* spec: zero or more direct descriptors, then one indirect */
	set_desc(DESC, 2, BUF, 16, VIRTQ_DESC_F_NEXT, 4);
	set_desc(DESC, 4, TABLE, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_desc(TABLE, 0, BUF + 0x1000, 512, VIRTQ_DESC_F_WRITE |
		 VIRTQ_DESC_F_NEXT, 1);
	set_desc(TABLE, 1, BUF + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(2);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	ck_assert_int_eq(e.n_out, 1);
	ck_assert_int_eq(e.n_in, 2);
}
END_TEST

START_TEST(indirect_not_negotiated)
{
	setup_features(0);
	set_desc(DESC, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_desc(TABLE, 0, BUF, 16, 0, 0);
	offer(0);
	expect_fatal("INDIRECT_DESC not negotiated");
}
END_TEST

START_TEST(indirect_nested)
{
	set_desc(DESC, 0, TABLE, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_desc(TABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(TABLE, 1, TABLE, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_fatal("nested indirect");
}
END_TEST

START_TEST(indirect_with_next)
{
	set_desc(DESC, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT,
		 1);
	set_desc(TABLE, 0, BUF, 16, 0, 0);
	offer(0);
	expect_fatal("indirect descriptor with NEXT");
}
END_TEST

START_TEST(indirect_bad_length)
{
	set_desc(DESC, 0, TABLE, 24, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_fatal("indirect table of 24 bytes");
}
END_TEST

START_TEST(indirect_zero_length)
{
	set_desc(DESC, 0, TABLE, 0, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_fatal("indirect table of 0 bytes");
}
END_TEST

START_TEST(indirect_too_big)
{
	/* more entries than the queue size */
	set_desc(DESC, 0, TABLE, (QSZ + 1) * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_fatal("indirect table of 144 bytes");
}
END_TEST

START_TEST(indirect_outside_ram)
{
	set_desc(DESC, 0, LOW - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_fatal("outside guest RAM");
}
END_TEST

START_TEST(indirect_loop)
{
	set_desc(DESC, 0, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_desc(TABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(TABLE, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
	set_desc(TABLE, 2, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	offer(0);
	expect_fatal("loops");
}
END_TEST

START_TEST(indirect_next_out_of_range)
{
	set_desc(DESC, 0, TABLE, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_desc(TABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(TABLE, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
	offer(0);
	expect_fatal("next index 2 out of range");
}
END_TEST

START_TEST(direct_loop)
{
	set_desc(DESC, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 0);
	offer(0);
	expect_fatal("loops");
}
END_TEST

START_TEST(self_loop)
{
	set_desc(DESC, 6, BUF, 16, VIRTQ_DESC_F_NEXT, 6);
	offer(6);
	expect_fatal("loops");
}
END_TEST

START_TEST(full_length_chain_ok)
{
	/* a chain using every descriptor once is legal */
	for (unsigned i = 0; i < QSZ; i++)
		set_desc(DESC, i, BUF + i * 16, 16,
			 i + 1 < QSZ ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	offer(0);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	ck_assert_int_eq(e.n_out, QSZ);
}
END_TEST

START_TEST(too_many_buffers)
{
	for (unsigned i = 0; i < QSZ; i++)
		set_desc(DESC, i, BUF + i * 16, 16,
			 i + 1 < QSZ ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	offer(0);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 4), -1);
	ck_assert(strstr(last_log, "more than 4 buffers"));
}
END_TEST

START_TEST(next_out_of_range)
{
	set_desc(DESC, 0, BUF, 16, VIRTQ_DESC_F_NEXT, QSZ);
	offer(0);
	expect_fatal("next index 8 out of range");
}
END_TEST

START_TEST(head_out_of_range)
{
	offer(QSZ + 3);
	expect_fatal("chain head 11 out of range");
}
END_TEST

START_TEST(buffer_outside_ram)
{
	set_desc(DESC, 0, 0xd0000000ULL, 16, 0, 0);	/* MMIO hole */
	offer(0);
	expect_fatal("outside guest RAM");
}
END_TEST

START_TEST(buffer_straddles_end_of_low_ram)
{
	set_desc(DESC, 0, LOW - 8, 16, 0, 0);
	offer(0);
	expect_fatal("outside guest RAM");
}
END_TEST

START_TEST(buffer_beyond_high_ram)
{
	set_desc(DESC, 0, HIGH + LOW - 8, 16, 0, 0);
	offer(0);
	expect_fatal("outside guest RAM");
}
END_TEST

START_TEST(huge_length)
{
	set_desc(DESC, 0, BUF, 0xffffffffU, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	expect_fatal("outside guest RAM");
}
END_TEST

START_TEST(address_wraps)
{
	set_desc(DESC, 0, 0xfffffffffffff000ULL, 0x2000, 0, 0);
	offer(0);
	expect_fatal("outside guest RAM");
}
END_TEST

START_TEST(wrong_direction)
{
	set_desc(DESC, 0, BUF, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC, 1, BUF + 16, 16, 0, 0);
	offer(0);
	expect_fatal("device-readable descriptor after a device-writable");
}
END_TEST

START_TEST(zero_length_descriptors)
{
	/* zero-length buffers are skipped, even with a bogus address */
	set_desc(DESC, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC, 1, 0xdeadbeef0000ULL, 0, VIRTQ_DESC_F_NEXT, 2);
	set_desc(DESC, 2, BUF + 0x1000, 0, VIRTQ_DESC_F_WRITE |
		 VIRTQ_DESC_F_NEXT, 3);
	set_desc(DESC, 3, BUF + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	ck_assert_int_eq(e.n_out, 1);
	ck_assert_int_eq(e.n_in, 1);
	ck_assert_ptr_eq(iov[1].iov_base, ram + BUF + 0x2000);
	ck_assert_int_eq(log_count, 0);
}
END_TEST

START_TEST(zero_length_wrong_direction)
{
	set_desc(DESC, 0, BUF, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC, 1, BUF, 0, 0, 0);
	offer(0);
	expect_fatal("device-readable descriptor after");
}
END_TEST

START_TEST(avail_index_jump)
{
	avail()[1] = QSZ + 1;
	expect_fatal("driver ring index jumped from 0 to 9");
	ck_assert_int_eq(virtq_avail_count(&q), 0);
}
END_TEST

START_TEST(avail_full_ring_ok)
{
	set_desc(DESC, 0, BUF, 16, 0, 0);
	for (unsigned i = 0; i < QSZ; i++)
		offer(0);	/* the same head, repeatedly: hostile but safe */
	ck_assert_int_eq(virtq_avail_count(&q), QSZ);
	for (unsigned i = 0; i < QSZ; i++)
		ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 0);
}
END_TEST

START_TEST(unpop)
{
	set_desc(DESC, 0, BUF, 16, 0, 0);
	offer(0);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	virtq_unpop(&q);
	ck_assert_int_eq(virtq_avail_count(&q), 1);
}
END_TEST

/* A head the driver makes available again while the device still owns it
 * is refused (NEEDS_RESET); once used it may come back. */
START_TEST(head_in_flight_refused)
{
	uint64_t bits[VIRTQ_IN_FLIGHT_WORDS(QSZ)];

	virtq_track_in_flight(&q, bits);
	set_desc(DESC, 2, BUF, 16, 0, 0);
	offer(2);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	/* used, then offered again: fine */
	virtq_push(&q, 2, 0);
	offer(2);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	ck_assert_int_eq(e.head, 2);
	/* offered again while still in flight */
	offer(2);
	expect_fatal("head 2 made available again while in flight");
}
END_TEST

START_TEST(unpop_ends_flight)
{
	uint64_t bits[VIRTQ_IN_FLIGHT_WORDS(QSZ)];

	virtq_track_in_flight(&q, bits);
	set_desc(DESC, 1, BUF, 16, 0, 0);
	offer(1);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	virtq_unpop(&q);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	ck_assert_int_eq(log_count, 0);
}
END_TEST

START_TEST(used_batch_and_publish)
{
	virtq_push(&q, 3, 100);
	virtq_push(&q, 5, 1);
	/* nothing visible before publish */
	ck_assert_int_eq(used()[1], 0);
	ck_assert_int_eq(used_ring()[0].id, 3);
	ck_assert_int_eq(used_ring()[0].len, 100);
	ck_assert_int_eq(used_ring()[1].id, 5);
	virtq_publish(&q);
	ck_assert_int_eq(used()[1], 2);
}
END_TEST

START_TEST(used_wraparound)
{
	/* start both rings just below the 16-bit wrap */
	uint16_t start = 65533;

	q.last_avail = q.used_idx = q.published_used = q.signalled_used = start;
	avail()[1] = start;
	used()[1] = start;
	set_desc(DESC, 0, BUF, 16, 0, 0);
	set_desc(DESC, 1, BUF, 16, 0, 0);
	for (unsigned round = 0; round < 3 * QSZ; round++) {
		uint16_t head = round & 1;

		offer(head);
		ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
		ck_assert_int_eq(e.head, head);
		uint16_t slot = (uint16_t)(start + round) % QSZ;
		virtq_push(&q, head, round);
		virtq_publish(&q);
		ck_assert_int_eq(used()[1], (uint16_t)(start + round + 1));
		ck_assert_int_eq(used_ring()[slot].id, head);
		ck_assert_int_eq(used_ring()[slot].len, round);
	}
	ck_assert_int_eq(log_count, 0);
}
END_TEST

START_TEST(event_idx_interrupts)
{
	uint16_t *used_event = &avail()[2 + QSZ];

	/* nothing published: no interrupt */
	ck_assert(!virtq_should_interrupt(&q));
	/* driver wants an interrupt after entry 0 (used_event = 0) */
	*used_event = 0;
	virtq_push(&q, 0, 1);
	virtq_publish(&q);
	ck_assert(virtq_should_interrupt(&q));
	/* nothing new: no second interrupt */
	ck_assert(!virtq_should_interrupt(&q));
	/* driver asks only after entry 4: entries 1..3 stay quiet */
	*used_event = 4;
	for (int i = 0; i < 3; i++) {
		virtq_push(&q, 0, 1);
		virtq_publish(&q);
		ck_assert(!virtq_should_interrupt(&q));
	}
	/* a batch crossing entry 4 (4 and 5 together) interrupts once */
	virtq_push(&q, 0, 1);
	virtq_push(&q, 0, 1);
	virtq_publish(&q);
	ck_assert(virtq_should_interrupt(&q));
	ck_assert(!virtq_should_interrupt(&q));
	/* NO_INTERRUPT flag is ignored under EVENT_IDX */
	avail()[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
	*used_event = 6;
	virtq_push(&q, 0, 1);
	virtq_publish(&q);
	ck_assert(virtq_should_interrupt(&q));
}
END_TEST

START_TEST(event_idx_wraps)
{
	uint16_t *used_event = &avail()[2 + QSZ];

	q.used_idx = q.published_used = q.signalled_used = 65534;
	*used_event = 65535;
	virtq_push(&q, 0, 1);	/* 65534 */
	virtq_publish(&q);
	ck_assert(!virtq_should_interrupt(&q));
	virtq_push(&q, 0, 1);	/* 65535: the one asked for */
	virtq_push(&q, 0, 1);	/* 0 */
	virtq_publish(&q);
	ck_assert_int_eq(used()[1], 1);
	ck_assert(virtq_should_interrupt(&q));
}
END_TEST

START_TEST(no_interrupt_flag)
{
	setup_features(0);
	avail()[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
	virtq_push(&q, 0, 1);
	virtq_publish(&q);
	ck_assert(!virtq_should_interrupt(&q));
	avail()[0] = 0;
	virtq_push(&q, 0, 1);
	virtq_publish(&q);
	ck_assert(virtq_should_interrupt(&q));
}
END_TEST

START_TEST(notify_suppression_event_idx)
{
	uint16_t *avail_event = (uint16_t *)(ram + USED + 4 + 8 * QSZ);

	set_desc(DESC, 0, BUF, 16, 0, 0);
	offer(0);
	offer(0);
	virtq_disable_notify(&q);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	/* one still pending, but the pop saw it: left by choice (a device
	 * keeping buffers for later), not news -- else its thread would
	 * never sleep (found by tests/fuzz/virtio_net_fuzz.c) */
	ck_assert(!virtq_enable_notify(&q));
	ck_assert_int_eq(*avail_event, 1);
	/* an entry made available after that look is news, once */
	offer(0);
	ck_assert(virtq_enable_notify(&q));
	ck_assert(!virtq_enable_notify(&q));
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), 1);
	ck_assert(!virtq_enable_notify(&q));
	ck_assert_int_eq(*avail_event, 3);
	/* the used flags are left alone under EVENT_IDX */
	ck_assert_int_eq(used()[0], 0);
}
END_TEST

START_TEST(notify_suppression_flags)
{
	setup_features(0);
	virtq_disable_notify(&q);
	ck_assert_int_eq(used()[0], VIRTQ_USED_F_NO_NOTIFY);
	ck_assert(!virtq_enable_notify(&q));
	ck_assert_int_eq(used()[0], 0);
	set_desc(DESC, 0, BUF, 16, 0, 0);
	offer(0);
	ck_assert(virtq_enable_notify(&q));
}
END_TEST

START_TEST(init_rejects_bad_rings)
{
	char err[128];
	struct virtq t;

	ck_assert_int_eq(virtq_init(&t, &mem, "t", 0, DESC, AVAIL, USED, 0, err,
				    sizeof(err)), -1);
	ck_assert(strstr(err, "queue size 0"));
	ck_assert_int_eq(virtq_init(&t, &mem, "t", 8, DESC + 8, AVAIL, USED, 0,
				    err, sizeof(err)), -1);
	ck_assert(strstr(err, "misaligned"));
	ck_assert_int_eq(virtq_init(&t, &mem, "t", 8, DESC, AVAIL + 1, USED, 0,
				    err, sizeof(err)), -1);
	ck_assert_int_eq(virtq_init(&t, &mem, "t", 8, DESC, AVAIL, USED + 2, 0,
				    err, sizeof(err)), -1);
	ck_assert_int_eq(virtq_init(&t, &mem, "t", 8, 0xd0000000ULL, AVAIL,
				    USED, 0, err, sizeof(err)), -1);
	ck_assert(strstr(err, "descriptor ring"));
	/* used ring running off the end of low RAM */
	ck_assert_int_eq(virtq_init(&t, &mem, "t", 256, DESC, AVAIL,
				    LOW - 64, 0, err, sizeof(err)), -1);
	ck_assert(strstr(err, "device ring"));
	ck_assert_int_eq(virtq_init(&t, &mem, "t", 256, DESC, AVAIL, USED, 0,
				    err, sizeof(err)), 0);
}
END_TEST

/* Random rings: whatever the guest writes, the walker returns -1, 0 or
 * chains whose every buffer lies inside guest RAM (ASan/UBSan watch the
 * reads), and never loops. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static uint64_t rnd_addr(void)
{
	switch (rnd() % 6) {
	case 0: return rnd();				/* anywhere */
	case 1: return LOW - (rnd() % 64);		/* end of low RAM */
	case 2: return HIGH + LOW - (rnd() % 64);	/* end of high RAM */
	case 3: return 0xd0000000ULL + rnd() % 4096;	/* MMIO hole */
	case 4: return HIGH + rnd() % LOW;		/* high RAM */
	default: return BUF + rnd() % (LOW - BUF);	/* low RAM */
	}
}

static uint32_t rnd_len(void)
{
	switch (rnd() % 4) {
	case 0: return 0;
	case 1: return (uint32_t)rnd();
	case 2: return 16 * (uint32_t)(rnd() % (QSZ + 2));
	default: return (uint32_t)(rnd() % 8192);
	}
}

static void rnd_table(uint64_t gpa, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t flags = (uint16_t)(rnd() % 8);
		uint64_t addr = rnd_addr();

		/* point some indirect descriptors at the spare table */
		if ((flags & VIRTQ_DESC_F_INDIRECT) && rnd() % 2)
			addr = TABLE + 16 * (rnd() % 4);
		set_desc(gpa, i, addr, rnd_len(), flags,
			 (uint16_t)(rnd() % (QSZ + 2)));
	}
}

START_TEST(random_rings)
{
	unsigned popped = 0, fatal_n = 0;

	for (unsigned round = 0; round < 20000; round++) {
		setup_features(rnd() % 2 ? (1ULL << VIRTIO_F_INDIRECT_DESC) : 0);
		rnd_table(DESC, QSZ);
		rnd_table(TABLE, 2 * QSZ);
		unsigned n = (unsigned)(rnd() % (QSZ + 3));
		for (unsigned i = 0; i < n; i++)
			offer((uint16_t)(rnd() % (QSZ + 1)));
		for (unsigned k = 0; k < QSZ + 3; k++) {
			int r = virtq_pop(&q, &e, iov, 64);

			if (r <= 0) {
				fatal_n += r < 0;
				break;
			}
			popped++;
			ck_assert_uint_le(e.n_out + e.n_in, QSZ);
			for (unsigned j = 0; j < e.n_out + e.n_in; j++) {
				uint8_t *b = iov[j].iov_base;

				ck_assert(iov[j].iov_len > 0);
				ck_assert(b >= ram && b + iov[j].iov_len <= ram +
					  2 * LOW);
			}
		}
	}
	/* the generator reaches both outcomes */
	ck_assert_uint_gt(popped, 100);
	ck_assert_uint_gt(fatal_n, 100);
}
END_TEST

START_TEST(log_budget)
{
	int budget = 2;

	q.log_budget = &budget;
	offer(QSZ + 1);		/* bad head */
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), -1);
	ck_assert_int_eq(log_count, 1);
	ck_assert(!strstr(last_log, "not logged"));
	setup_features(0);
	q.log_budget = &budget;
	offer(QSZ + 1);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), -1);
	ck_assert(strstr(last_log, "further guest errors not logged"));
	setup_features(0);
	q.log_budget = &budget;
	offer(QSZ + 1);
	ck_assert_int_eq(virtq_pop(&q, &e, iov, 64), -1);
	ck_assert(q.broken);
	ck_assert_int_eq(log_count, 0);	/* setup reset the count: none new */
	ck_assert_int_eq(budget, 0);
}
END_TEST

START_TEST(iov_helpers)
{
	uint8_t a[10], b[3], c[5], hdr[16];
	struct iovec v[3] = {
		{ a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) },
	};
	struct iovec *p = v;
	unsigned n = 3;

	for (unsigned i = 0; i < 10; i++)
		a[i] = i;
	for (unsigned i = 0; i < 3; i++)
		b[i] = 10 + i;
	ck_assert_uint_eq(iov_total(v, 3), 18);
	ck_assert_uint_eq(iov_pull(&p, &n, hdr, 12), 12);
	for (unsigned i = 0; i < 12; i++)
		ck_assert_int_eq(hdr[i], i);
	ck_assert_int_eq(n, 2);
	ck_assert_ptr_eq(p, &v[1]);
	ck_assert_uint_eq(p->iov_len, 1);
	ck_assert_ptr_eq(iov_take_last_byte(p, &n), &c[4]);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(iov_total(p, n), 5);
	ck_assert_uint_eq(iov_fill(p, n, "ABCDEFGH", 8), 5);
	ck_assert_int_eq(b[2], 'A');
	ck_assert_int_eq(c[3], 'E');
	/* pulling more than there is stops at the end */
	ck_assert_uint_eq(iov_pull(&p, &n, hdr, 16), 5);
	ck_assert_int_eq(n, 0);
	ck_assert_ptr_null(iov_take_last_byte(p, &n));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtqueue");
	TCase *t = tcase_create("split");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, empty_ring);
	tcase_add_test(t, head_in_flight_refused);
	tcase_add_test(t, unpop_ends_flight);
	tcase_add_test(t, normal_chain);
	tcase_add_test(t, high_memory);
	tcase_add_test(t, indirect_chain);
	tcase_add_test(t, direct_then_indirect);
	tcase_add_test(t, indirect_not_negotiated);
	tcase_add_test(t, indirect_nested);
	tcase_add_test(t, indirect_with_next);
	tcase_add_test(t, indirect_bad_length);
	tcase_add_test(t, indirect_zero_length);
	tcase_add_test(t, indirect_too_big);
	tcase_add_test(t, indirect_outside_ram);
	tcase_add_test(t, indirect_loop);
	tcase_add_test(t, indirect_next_out_of_range);
	tcase_add_test(t, direct_loop);
	tcase_add_test(t, self_loop);
	tcase_add_test(t, full_length_chain_ok);
	tcase_add_test(t, too_many_buffers);
	tcase_add_test(t, next_out_of_range);
	tcase_add_test(t, head_out_of_range);
	tcase_add_test(t, buffer_outside_ram);
	tcase_add_test(t, buffer_straddles_end_of_low_ram);
	tcase_add_test(t, buffer_beyond_high_ram);
	tcase_add_test(t, huge_length);
	tcase_add_test(t, address_wraps);
	tcase_add_test(t, wrong_direction);
	tcase_add_test(t, zero_length_descriptors);
	tcase_add_test(t, zero_length_wrong_direction);
	tcase_add_test(t, avail_index_jump);
	tcase_add_test(t, avail_full_ring_ok);
	tcase_add_test(t, unpop);
	tcase_add_test(t, used_batch_and_publish);
	tcase_add_test(t, used_wraparound);
	tcase_add_test(t, event_idx_interrupts);
	tcase_add_test(t, event_idx_wraps);
	tcase_add_test(t, no_interrupt_flag);
	tcase_add_test(t, notify_suppression_event_idx);
	tcase_add_test(t, notify_suppression_flags);
	tcase_add_test(t, init_rejects_bad_rings);
	tcase_add_test(t, random_rings);
	tcase_add_test(t, log_budget);
	tcase_add_test(t, iov_helpers);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return check_run(suite());
}
