/* tests/unit/test_qcow2_format.c - the pure qcow2 arithmetic: L2 entry
 * classification and encoding, compressed cluster descriptors, refcount
 * block indexing for every refcount width, L1 sizing. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "storage/qcow2_format.h"
#include "tests/unit/check_main.h"

START_TEST(l2_entry_kinds)
{
	uint64_t h;

	ck_assert_int_eq(qcow2_l2_kind(0, 3, 16, &h), QCOW2_UNALLOC);
	ck_assert_int_eq(qcow2_l2_kind(0x50000 | QCOW2_OFLAG_COPIED, 3, 16, &h),
			 QCOW2_DATA);
	ck_assert_uint_eq(h, 0x50000);
	/* without COPIED (refcount > 1) it is still data */
	ck_assert_int_eq(qcow2_l2_kind(0x50000, 2, 16, &h), QCOW2_DATA);
	/* zero flag: v3 only; may keep a preallocated offset */
	ck_assert_int_eq(qcow2_l2_kind(QCOW2_OFLAG_ZERO, 3, 16, &h), QCOW2_ZERO);
	ck_assert_uint_eq(h, 0);
	ck_assert_int_eq(qcow2_l2_kind(0x70000 | QCOW2_OFLAG_ZERO |
				       QCOW2_OFLAG_COPIED, 3, 16, &h),
			 QCOW2_ZERO);
	ck_assert_uint_eq(h, 0x70000);
	ck_assert_int_eq(qcow2_l2_kind(QCOW2_OFLAG_ZERO, 2, 16, &h), QCOW2_BAD);
	/* misaligned for 64 KiB clusters, fine for 512 B ones */
	ck_assert_int_eq(qcow2_l2_kind(0x50200, 3, 16, &h), QCOW2_BAD);
	ck_assert_int_eq(qcow2_l2_kind(0x50200, 3, 9, &h), QCOW2_DATA);
	/* reserved bits 1..8 and 56..61 */
	ck_assert_int_eq(qcow2_l2_kind(0x50000 | 2, 3, 16, &h), QCOW2_BAD);
	ck_assert_int_eq(qcow2_l2_kind(0x50000 | (1ULL << 56), 3, 16, &h),
			 QCOW2_BAD);
	/* COPIED without an offset only exists with external data files */
	ck_assert_int_eq(qcow2_l2_kind(QCOW2_OFLAG_COPIED, 3, 16, &h),
			 QCOW2_BAD);
	ck_assert_int_eq(qcow2_l2_kind(QCOW2_OFLAG_COMPRESSED | 0x1234, 3, 16, &h),
			 QCOW2_COMPRESSED);
	ck_assert_int_eq(qcow2_l2_kind(QCOW2_OFLAG_COMPRESSED |
				       QCOW2_OFLAG_COPIED | 0x1234, 3, 16, &h),
			 QCOW2_BAD);
	ck_assert_uint_eq(qcow2_l2_data_entry(0x1230000),
			  0x1230000 | QCOW2_OFLAG_COPIED);
}
END_TEST

START_TEST(compressed_descriptors)
{
	unsigned cb;

	/* the field split moves with the cluster size */
	ck_assert_uint_eq(qcow2_csize_shift(16), 54);
	ck_assert_uint_eq(qcow2_csize_shift(9), 61);
	ck_assert_uint_eq(qcow2_csize_shift(21), 49);
	for (cb = 9; cb <= 21; cb++) {
		uint64_t maxsec = 1ULL << (cb - 8);	/* field holds count - 1 */
		uint64_t off = ((1ULL << qcow2_csize_shift(cb)) - 1) & ~7ULL;
		uint64_t e = qcow2_cdesc_encode(off, maxsec, cb);
		struct qcow2_cdesc d = qcow2_cdesc_decode(e, cb);

		ck_assert(e & QCOW2_OFLAG_COMPRESSED);
		ck_assert(!(e & QCOW2_OFLAG_COPIED));
		ck_assert_uint_eq(d.offset, off);
		ck_assert_uint_eq(d.nb_sectors, maxsec);
		d = qcow2_cdesc_decode(qcow2_cdesc_encode(12345, 1, cb), cb);
		ck_assert_uint_eq(d.offset, 12345);
		ck_assert_uint_eq(d.nb_sectors, 1);
	}
	/* a real entry from qemu-img convert -c (64 KiB clusters): data at
	 * 0x50123, 3 extra sectors */
	{
		uint64_t e = QCOW2_OFLAG_COMPRESSED | (3ULL << 54) | 0x50123;
		struct qcow2_cdesc d = qcow2_cdesc_decode(e, 16);
		uint64_t first, count;

		ck_assert_uint_eq(d.offset, 0x50123);
		ck_assert_uint_eq(d.nb_sectors, 4);
		/* from 0x50123 to the end of sector 0x50000 + 4 * 512 */
		ck_assert_uint_eq(qcow2_cdesc_bytes(d), 0x50800 - 0x50123);
		qcow2_cdesc_clusters(d, 16, &first, &count);
		ck_assert_uint_eq(first, 5);
		ck_assert_uint_eq(count, 1);
	}
	/* data crossing into the next host cluster holds both */
	{
		struct qcow2_cdesc d = { 0x5ff00, 3 };
		uint64_t first, count;

		qcow2_cdesc_clusters(d, 16, &first, &count);
		ck_assert_uint_eq(first, 5);
		ck_assert_uint_eq(count, 2);
		ck_assert_uint_eq(qcow2_cdesc_bytes(d), 0x100 + 1024);
		/* 512 B clusters: one cluster per sector */
		qcow2_cdesc_clusters(d, 9, &first, &count);
		ck_assert_uint_eq(first, 0x5fe00 >> 9);
		ck_assert_uint_eq(count, 3);
	}
}
END_TEST

START_TEST(refcount_widths)
{
	uint8_t blk[512];
	unsigned order;

	for (order = 0; order <= 6; order++) {
		uint64_t n = qcow2_rb_entries(9, order), i, max = qcow2_rc_max(order);

		ck_assert_uint_eq(n, 512 * 8 >> order);
		memset(blk, 0, sizeof(blk));
		for (i = 0; i < n; i++)
			qcow2_rc_set(blk, order, i, (i * 2654435761ULL) & max);
		for (i = 0; i < n; i++)
			ck_assert_uint_eq(qcow2_rc_get(blk, order, i),
					  (i * 2654435761ULL) & max);
		/* changing one entry leaves its neighbours */
		qcow2_rc_set(blk, order, 5, max);
		ck_assert_uint_eq(qcow2_rc_get(blk, order, 5), max);
		ck_assert_uint_eq(qcow2_rc_get(blk, order, 4),
				  (4 * 2654435761ULL) & max);
		ck_assert_uint_eq(qcow2_rc_get(blk, order, 6),
				  (6 * 2654435761ULL) & max);
	}
	ck_assert_uint_eq(qcow2_rc_max(0), 1);
	ck_assert_uint_eq(qcow2_rc_max(4), 65535);
	ck_assert_uint_eq(qcow2_rc_max(6), UINT64_MAX);
	/* 16-bit refcounts are big endian; 1-bit ones start at the LSB */
	memset(blk, 0, sizeof(blk));
	qcow2_rc_set(blk, 4, 1, 0x0102);
	ck_assert_uint_eq(blk[2], 1);
	ck_assert_uint_eq(blk[3], 2);
	memset(blk, 0, sizeof(blk));
	qcow2_rc_set(blk, 0, 9, 1);
	ck_assert_uint_eq(blk[1], 2);
	{
		uint64_t first, len;

		qcow2_rc_byte_range(4, 10, &first, &len);
		ck_assert_uint_eq(first, 20);
		ck_assert_uint_eq(len, 2);
		qcow2_rc_byte_range(1, 10, &first, &len);
		ck_assert_uint_eq(first, 2);
		ck_assert_uint_eq(len, 1);
	}
	/* default 64 KiB clusters, 16-bit: 32768 clusters (2 GiB) per block */
	ck_assert_uint_eq(qcow2_rb_entries(16, 4), 32768);
}
END_TEST

START_TEST(l1_sizing)
{
	/* 64 KiB clusters: one L2 table maps 512 MiB */
	ck_assert_uint_eq(qcow2_l1_entries_for(0, 16), 0);
	ck_assert_uint_eq(qcow2_l1_entries_for(1, 16), 1);
	ck_assert_uint_eq(qcow2_l1_entries_for(512ULL << 20, 16), 1);
	ck_assert_uint_eq(qcow2_l1_entries_for((512ULL << 20) + 1, 16), 2);
	/* 512 B clusters: 64 entries per table, 32 KiB per table */
	ck_assert_uint_eq(qcow2_l1_entries_for(1ULL << 20, 9), 32);
	/* 2 MiB clusters: 256K entries, 512 GiB per table */
	ck_assert_uint_eq(qcow2_l1_entries_for(1ULL << 40, 21), 2);
}
END_TEST

START_TEST(big_endian_helpers)
{
	uint8_t b[8];

	qcow2_put_be64(b, 0x0102030405060708ULL);
	ck_assert_uint_eq(b[0], 1);
	ck_assert_uint_eq(b[7], 8);
	ck_assert_uint_eq(qcow2_be64(b), 0x0102030405060708ULL);
	qcow2_put_be32(b, QCOW2_MAGIC);
	ck_assert(memcmp(b, "QFI\xfb", 4) == 0);
	ck_assert_uint_eq(qcow2_be32(b), QCOW2_MAGIC);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qcow2_format");
	TCase *tc = tcase_create("format");

	tcase_add_test(tc, l2_entry_kinds);
	tcase_add_test(tc, compressed_descriptors);
	tcase_add_test(tc, refcount_widths);
	tcase_add_test(tc, l1_sizing);
	tcase_add_test(tc, big_endian_helpers);
	suite_add_tcase(s, tc);
	return check_run(s);
}
