/* tests/unit/test_io_record.c - the power-loss log (storage/io_record.h)
 * and what it shows about durability, on both engines (io_uring and the
 * synchronous fallback): every FLUSH reaches the file as exactly one sync
 * that covers every write completed before it; a FLUSH with nothing new
 * costs one sync and no more; qcow2's own barriers are logged too. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/block.h"
#include "storage/io_record.h"
#include "tests/unit/check_main.h"
#include "tests/unit/storage_fixture.h"

#define KiB 1024u
#define MiB (1024u * 1024)

static char dir[256], img[300], logpath[300];
static struct io_engine *eng;

static void setup(void)
{
	storage_fixture_setup(dir, sizeof(dir), "iorec", 64, &eng);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(logpath, sizeof(logpath), "%s/io.log", dir);
	ck_assert_int_eq(io_record_start(logpath), 0);
}

static void setup_sync(void)
{
	setenv("VMM_IO_ENGINE", "sync", 1);
	setup();
}

static void teardown(void)
{
	io_record_stop();
	storage_fixture_teardown(dir, eng);
}

/* The log, records only (data skipped), of the file at img. */
struct log {
	struct io_rec r[256];
	unsigned n;
	unsigned flushes, syncs, data;
};

static void read_log(struct log *l)
{
	FILE *f = fopen(logpath, "r");
	struct stat st;
	struct io_rec r;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(stat(img, &st), 0);
	memset(l, 0, sizeof(*l));
	while (fread(&r, sizeof(r), 1, f) == 1) {
		ck_assert_uint_eq(r.magic, IO_REC_MAGIC);
		if (r.type == IO_REC_WRITE)
			ck_assert_int_eq(fseek(f, (long)r.len, SEEK_CUR), 0);
		if (r.ino != (uint64_t)st.st_ino)
			continue;
		ck_assert_uint_lt(l->n, 256);
		l->r[l->n++] = r;
		if (r.type == IO_REC_FLUSH)
			l->flushes++;
		else if (r.type == IO_REC_SYNC)
			l->syncs++;
		else
			l->data++;
	}
	ck_assert(feof(f));
	fclose(f);
}

struct sync_req {
	struct blk_req r;
	int result, calls;
};

static void sync_done(struct blk_req *r, int result)
{
	struct sync_req *s = (struct sync_req *)r;

	s->result = result;
	s->calls++;
}

static int run(struct blk_dev *d, enum blk_op op, uint64_t off, void *buf,
	       uint64_t len)
{
	struct iovec iov = { buf, len };
	struct sync_req s;

	memset(&s, 0, sizeof(s));
	s.r.op = op;
	s.r.offset = off;
	s.r.len = len;
	if (op == BLK_OP_READ || op == BLK_OP_WRITE) {
		s.r.iov = &iov;
		s.r.iovcnt = 1;
	}
	s.r.done = sync_done;
	blk_submit(d, &s.r);
	io_engine_submit(eng);
	while (s.calls == 0)
		ck_assert_int_ge(io_engine_wait(eng), 0);
	ck_assert_int_eq(s.calls, 1);
	return s.result;
}

static struct blk_dev *open_img(enum blk_format fmt, enum blk_cache c)
{
	struct blk_opts o = { .path = img, .format = fmt, .cache = c };
	char err[256] = "";
	struct blk_dev *d = blk_open(&o, eng, err, sizeof(err));

	if (!d && c == BLK_CACHE_NONE && strstr(err, "not supported"))
		return NULL;	/* no O_DIRECT in TMPDIR */
	ck_assert_msg(d, "%s", err);
	return d;
}

/* Each FLUSH is one FLUSH record covering every data record logged before
 * it; returns how many SYNC records came between FLUSH i-1 and FLUSH i in
 * syncs_before[i]. */
static void check_flushes(const struct log *l, unsigned want,
			  unsigned *syncs_before)
{
	unsigned i, f = 0, syncs = 0;
	uint64_t max_seq = 0;
	bool any = false;

	for (i = 0; i < l->n; i++) {
		const struct io_rec *r = &l->r[i];

		if (r->type == IO_REC_SYNC) {
			syncs++;
		} else if (r->type == IO_REC_FLUSH) {
			ck_assert_uint_lt(f, want);
			ck_assert_msg(!any || r->seq > max_seq, "FLUSH %u covers "
				      "%llu records, not the %llu before it", f,
				      (unsigned long long)r->seq,
				      (unsigned long long)max_seq + 1);
			syncs_before[f++] = syncs;
			syncs = 0;
		} else {
			any = true;
			max_seq = r->seq;
		}
	}
	ck_assert_msg(f == want, "%u FLUSH records for %u FLUSH requests", f,
		      want);
}

/* raw: a FLUSH is one fdatasync, nothing more, whatever came before */
static void raw_flushes(enum blk_cache c)
{
	uint8_t *buf = NULL;
	struct blk_dev *d;
	struct log l;
	unsigned syncs[4], i;
	int fd = open(img, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, MiB), 0);
	close(fd);
	ck_assert_int_eq(posix_memalign((void **)&buf, 4096, 8 * KiB), 0);
	memset(buf, 0xa5, 8 * KiB);
	d = open_img(BLK_FMT_RAW, c);
	if (!d) {
		free(buf);
		return;
	}
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 0, buf, 4 * KiB), 0);
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 8 * KiB, buf, 8 * KiB), 0);
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0), 0);
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 64 * KiB, buf, 4 * KiB), 0);
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0), 0);
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0), 0);	/* nothing new */
	ck_assert_int_eq(run(d, BLK_OP_WRITE_ZEROES, 128 * KiB, NULL, 8 * KiB),
			 0);
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0), 0);
	blk_close(d);
	read_log(&l);
	check_flushes(&l, 4, syncs);
	for (i = 0; i < 4; i++)
		ck_assert_uint_eq(syncs[i], 0);
	ck_assert_uint_eq(l.syncs, 0);
	/* the writes as the file saw them, then the zeroing */
	ck_assert_uint_eq(l.r[0].type, IO_REC_WRITE);
	ck_assert_uint_eq(l.r[0].off, 0);
	ck_assert_uint_eq(l.r[0].len, 4 * KiB);
	ck_assert_uint_eq(l.r[1].off, 8 * KiB);
	ck_assert_uint_eq(l.r[1].len, 8 * KiB);
	ck_assert_uint_eq(l.r[2].type, IO_REC_FLUSH);
	ck_assert_uint_eq(l.r[2].seq, l.r[1].seq + 1);
	ck_assert_uint_eq(l.r[4].type, IO_REC_FLUSH);
	ck_assert_uint_eq(l.r[5].type, IO_REC_FLUSH);
	ck_assert_uint_eq(l.r[5].seq, l.r[4].seq);
	ck_assert_uint_eq(l.r[6].off, 128 * KiB);	/* zero range or writes */
	ck_assert_uint_eq(l.r[l.n - 1].type, IO_REC_FLUSH);
	free(buf);
}

START_TEST(raw_writeback_one_sync_per_flush)
{
	raw_flushes(BLK_CACHE_WRITEBACK);
}
END_TEST

START_TEST(raw_cache_none_one_sync_per_flush)
{
	raw_flushes(BLK_CACHE_NONE);
}
END_TEST

/* qcow2: allocating writes put metadata in the file only at FLUSH (or
 * eviction), behind a barrier; the FLUSH's sync covers all of it, and a
 * FLUSH after nothing new costs one sync */
START_TEST(qcow2_flush_covers_metadata)
{
	char cmd[600];
	uint8_t *buf = NULL;
	struct blk_dev *d;
	struct log l;
	unsigned syncs[4], i;

	snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 '%s' 16M", img);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(posix_memalign((void **)&buf, 4096, 256 * KiB), 0);
	memset(buf, 0x3c, 256 * KiB);
	d = open_img(BLK_FMT_QCOW2, BLK_CACHE_WRITEBACK);
	for (i = 0; i < 4; i++)	/* allocating, one L2 table */
		ck_assert_int_eq(run(d, BLK_OP_WRITE, i * MiB, buf,
				     256 * KiB), 0);
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0), 0);
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 64 * KiB, buf, 4 * KiB), 0);
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0), 0);	/* in place */
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0), 0);	/* nothing */
	/* allocating again, from clusters already counted (no refcount
	 * changes): the data must still be durable before its L2 entries */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(run(d, BLK_OP_WRITE, 8 * MiB + i * MiB, buf,
				     256 * KiB), 0);
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0), 0);
	blk_close(d);
	read_log(&l);
	check_flushes(&l, 4, syncs);
	/* the first FLUSH made allocations reachable: refcounts first */
	ck_assert_uint_le(syncs[0], 2);
	ck_assert_uint_eq(syncs[1], 0);
	ck_assert_uint_eq(syncs[2], 0);
	ck_assert_uint_le(syncs[3], 2);
	/* metadata went to the file (more data records than the 8 writes) */
	ck_assert_uint_gt(l.data, 8);
	/* after the third FLUSH: the 256 KiB data writes, then a barrier
	 * covering them before any metadata write */
	{
		unsigned f = 0, last_data = 0, j;

		for (j = 0; j < l.n && f < 3; j++)
			f += l.r[j].type == IO_REC_FLUSH;
		for (; j < l.n && l.r[j].type == IO_REC_WRITE &&
		       l.r[j].len == 256 * KiB; j++)
			last_data = j;
		ck_assert_uint_gt(last_data, 0);
		for (; j < l.n && l.r[j].type != IO_REC_WRITE; j++)
			if (l.r[j].type == IO_REC_SYNC &&
			    l.r[j].seq > l.r[last_data].seq)
				break;
		ck_assert_msg(j < l.n && l.r[j].type == IO_REC_SYNC,
			      "metadata reached the file before a barrier "
			      "covering the data of the clusters it points to");
	}
	free(buf);
}
END_TEST

/* The log's own records: writev data, fallocate ranges, barrier covers. */
START_TEST(log_records)
{
	int fd = open(img, O_CREAT | O_TRUNC | O_RDWR, 0644);
	struct iovec v[2] = { { "abc", 3 }, { "defg", 4 } };
	struct log l;
	char data[8] = "";
	FILE *f;

	ck_assert_int_ge(fd, 0);
	io_record_writev(fd, v, 2, 100);
	ck_assert_uint_eq(io_record_mark(), 1);
	io_record_sync(fd);
	io_record_fallocate(fd, 0x10 /* ZERO_RANGE */, 4096, 8192);
	io_record_fallocate(fd, 0x01 | 0x02 /* KEEP_SIZE | PUNCH */, 0, 512);
	io_record_barrier(fd, 2, IO_REC_FLUSH);
	close(fd);
	read_log(&l);
	ck_assert_uint_eq(l.n, 6);
	ck_assert_uint_eq(l.r[0].type, IO_REC_WRITE);
	ck_assert_uint_eq(l.r[0].off, 100);
	ck_assert_uint_eq(l.r[0].len, 7);
	ck_assert_uint_eq(l.r[0].seq, 0);
	ck_assert_uint_eq(l.r[1].type, IO_REC_SYNC);
	ck_assert_uint_eq(l.r[1].seq, 1);
	ck_assert_uint_eq(l.r[2].type, IO_REC_ZERO);	/* zero range... */
	ck_assert_uint_eq(l.r[3].type, IO_REC_EXTEND);	/* ...may extend */
	ck_assert_uint_eq(l.r[3].off + l.r[3].len, 4096 + 8192);
	ck_assert_uint_eq(l.r[4].type, IO_REC_ZERO);	/* a punch does not */
	ck_assert_uint_eq(l.r[4].seq, 3);
	ck_assert_uint_eq(l.r[5].type, IO_REC_FLUSH);
	ck_assert_uint_eq(l.r[5].seq, 2);
	f = fopen(logpath, "r");
	ck_assert_int_eq(fseek(f, sizeof(struct io_rec), SEEK_SET), 0);
	ck_assert_uint_eq(fread(data, 1, 7, f), 7);
	ck_assert_str_eq(data, "abcdefg");
	fclose(f);
	/* stopped: nothing more is logged */
	io_record_stop();
	io_record_write(0, "x", 1, 0);
	ck_assert_uint_eq(io_record_mark(), 0);
}
END_TEST

static void add_tests(TCase *tc, bool sync)
{
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, sync ? setup_sync : setup, teardown);
	tcase_add_test(tc, raw_writeback_one_sync_per_flush);
	tcase_add_test(tc, raw_cache_none_one_sync_per_flush);
	tcase_add_test(tc, qcow2_flush_covers_metadata);
	tcase_add_test(tc, log_records);
}

int main(void)
{
	Suite *s = suite_create("io_record");
	TCase *tc = tcase_create("io_uring"), *ts = tcase_create("sync-engine");

	add_tests(tc, false);
	add_tests(ts, true);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, ts);
	return check_run(s);
}
