/* tests/unit/test_raw.c - the block layer (blk_*) over the raw backend:
 * data round trips, flush, discard and write-zeroes, read-only and range
 * checks, the image lock, cache=none, and open errors. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest/common/pattern.h"
#include "storage/block.h"
#include "tests/unit/check_main.h"
#include "tests/unit/storage_fixture.h"

#define MiB (1024 * 1024)

static char dir[256];
static char img[300];
static struct io_engine *eng;

static void setup(void)
{
	storage_fixture_setup(dir, sizeof(dir), "raw", 64, &eng);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
}

static void teardown(void)
{
	storage_fixture_teardown(dir, eng);
}

static void make_image(const char *path, uint64_t size)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static struct blk_dev *open_img(const char *path, bool ro, enum blk_cache c,
				char *err, size_t errlen)
{
	struct blk_opts o = { .path = path, .format = BLK_FMT_RAW,
			      .readonly = ro, .cache = c };

	err[0] = 0;
	return blk_open(&o, eng, err, errlen);
}

static struct blk_dev *open_ok(const char *path, bool ro, enum blk_cache c)
{
	char err[256];
	struct blk_dev *d = open_img(path, ro, c, err, sizeof(err));

	ck_assert_msg(d, "blk_open: %s", err);
	return d;
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

/* Run one request to completion; returns its result. */
static int run(struct blk_dev *d, enum blk_op op, uint64_t off, void *buf,
	       uint64_t len, bool may_unmap)
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
	s.r.may_unmap = may_unmap;
	s.r.done = sync_done;
	blk_submit(d, &s.r);
	io_engine_submit(eng);
	while (s.calls == 0)
		ck_assert_int_ge(io_engine_wait(eng), 0);
	ck_assert_int_eq(s.calls, 1);
	ck_assert_uint_eq(io_engine_inflight(eng), 0);
	return s.result;
}

static void *abuf(size_t len)
{
	void *p = NULL;

	ck_assert_int_eq(posix_memalign(&p, 4096, len), 0);
	return p;
}

START_TEST(format_parse)
{
	ck_assert_int_eq(blk_format_parse("raw"), BLK_FMT_RAW);
	ck_assert_int_eq(blk_format_parse("qcow2"), BLK_FMT_QCOW2);
	ck_assert_int_eq(blk_format_parse("RAW"), -1);
	ck_assert_int_eq(blk_format_parse("vmdk"), -1);
	ck_assert_int_eq(blk_format_parse(""), -1);
	ck_assert_int_eq(blk_format_parse(NULL), -1);
}
END_TEST

START_TEST(write_read_flush)
{
	struct blk_dev *d;
	uint8_t *w = abuf(MiB), *r = abuf(MiB);
	uint8_t *file = malloc(MiB);
	int fd;

	make_image(img, 4 * MiB);
	d = open_ok(img, false, BLK_CACHE_WRITEBACK);
	ck_assert_uint_eq(blk_size(d), 4 * MiB);
	ck_assert(!blk_readonly(d));
	ck_assert_uint_eq(blk_alignment(d), 1);
	ck_assert(blk_can_write_zeroes(d));
	pattern_fill(w, 42, 12345, MiB);
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 12345, w, MiB, false), 0);
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0, false), 0);
	ck_assert_int_eq(run(d, BLK_OP_READ, 12345, r, MiB, false), 0);
	ck_assert_uint_eq(pattern_check(r, 42, 12345, MiB), MiB);
	/* the bytes are in the file, where a host tool would look */
	fd = open(img, O_RDONLY);
	ck_assert_int_eq(pread(fd, file, MiB, 12345), MiB);
	ck_assert_uint_eq(pattern_check(file, 42, 12345, MiB), MiB);
	close(fd);
	/* zero-length transfers are fine */
	ck_assert_int_eq(run(d, BLK_OP_READ, 4 * MiB, r, 0, false), 0);
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 0, w, 0, false), 0);
	blk_close(d);
	free(w);
	free(r);
	free(file);
}
END_TEST

/* Scatter-gather: one request over several iovecs */
START_TEST(scatter_gather)
{
	struct blk_dev *d;
	char a[100], b[3000], c[1];
	char ra[100], rb[3000], rc[1];
	struct iovec wv[3] = { { a, 100 }, { b, 3000 }, { c, 1 } };
	struct iovec rv[3] = { { ra, 100 }, { rb, 3000 }, { rc, 1 } };
	struct sync_req s;

	make_image(img, 8192);
	d = open_ok(img, false, BLK_CACHE_WRITEBACK);
	pattern_fill(a, 7, 5000, 100);
	pattern_fill(b, 7, 5100, 3000);
	pattern_fill(c, 7, 8100, 1);
	memset(&s, 0, sizeof(s));
	s.r.op = BLK_OP_WRITE;
	s.r.offset = 5000;
	s.r.len = 3101;
	s.r.iov = wv;
	s.r.iovcnt = 3;
	s.r.done = sync_done;
	blk_submit(d, &s.r);
	io_engine_submit(eng);
	while (!s.calls)
		io_engine_wait(eng);
	ck_assert_int_eq(s.result, 0);
	memset(&s, 0, sizeof(s));
	s.r.op = BLK_OP_READ;
	s.r.offset = 5000;
	s.r.len = 3101;
	s.r.iov = rv;
	s.r.iovcnt = 3;
	s.r.done = sync_done;
	blk_submit(d, &s.r);
	io_engine_submit(eng);
	while (!s.calls)
		io_engine_wait(eng);
	ck_assert_int_eq(s.result, 0);
	ck_assert_uint_eq(pattern_check(ra, 7, 5000, 100), 100);
	ck_assert_uint_eq(pattern_check(rb, 7, 5100, 3000), 3000);
	ck_assert_uint_eq(pattern_check(rc, 7, 8100, 1), 1);
	/* a length that disagrees with the iovec is refused */
	memset(&s, 0, sizeof(s));
	s.r.op = BLK_OP_READ;
	s.r.offset = 0;
	s.r.len = 3100;
	s.r.iov = rv;
	s.r.iovcnt = 3;
	s.r.done = sync_done;
	blk_submit(d, &s.r);
	ck_assert_int_eq(s.calls, 1);
	ck_assert_int_eq(s.result, -EINVAL);
	blk_close(d);
}
END_TEST

static void expect_zero(const uint8_t *p, uint64_t len)
{
	uint64_t i = 0;

	/* one assertion, not one per byte: each is a message to Check's
	 * parent process (a write(2); minutes for 2 MiB under TSan) */
	while (i < len && p[i] == 0)
		i++;
	ck_assert_msg(i == len, "byte %lu is %u", (unsigned long)i,
		      i < len ? p[i] : 0);
}

static uint64_t allocated(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void discard_and_zeroes(const char *path, bool expect_discard)
{
	struct blk_dev *d;
	uint8_t *w = abuf(4 * MiB), *r = abuf(4 * MiB);
	uint64_t alloc;
	struct stat st;

	make_image(path, 4 * MiB);
	d = open_ok(path, false, BLK_CACHE_WRITEBACK);
	ck_assert(blk_can_discard(d) == expect_discard);
	pattern_fill(w, 1, 0, 4 * MiB);
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 0, w, 4 * MiB, false), 0);
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0, false), 0);

	/* WRITE_ZEROES without unmap keeps the space: [64K, 64K+1M+512) */
	alloc = allocated(path);
	ck_assert_int_eq(run(d, BLK_OP_WRITE_ZEROES, 65536, NULL, MiB + 512,
			     false), 0);
	ck_assert_uint_ge(allocated(path), alloc);
	/* WRITE_ZEROES with unmap may free it: [2M, 2M+1M) */
	ck_assert_int_eq(run(d, BLK_OP_WRITE_ZEROES, 2 * MiB, NULL, MiB,
			     true), 0);
	if (expect_discard)
		ck_assert_uint_le(allocated(path) + MiB / 2, alloc);
	ck_assert_int_eq(run(d, BLK_OP_READ, 0, r, 4 * MiB, false), 0);
	ck_assert_uint_eq(pattern_check(r, 1, 0, 65536), 65536);
	expect_zero(r + 65536, MiB + 512);
	ck_assert_uint_eq(pattern_check(r + 65536 + MiB + 512, 1,
					65536 + MiB + 512,
					2 * MiB - 65536 - MiB - 512),
			  2 * MiB - 65536 - MiB - 512);
	expect_zero(r + 2 * MiB, MiB);
	ck_assert_uint_eq(pattern_check(r + 3 * MiB, 1, 3 * MiB, MiB), MiB);

	if (expect_discard) {
		uint64_t before = allocated(path);

		/* DISCARD: the range is deallocated (and reads zero here) */
		ck_assert_int_eq(run(d, BLK_OP_DISCARD, 3 * MiB, NULL, MiB,
				     false), 0);
		ck_assert_uint_le(allocated(path) + MiB / 2, before);
		ck_assert_int_eq(run(d, BLK_OP_READ, 3 * MiB, r, MiB, false),
				 0);
		expect_zero(r, MiB);
	} else {
		ck_assert_int_eq(run(d, BLK_OP_DISCARD, 3 * MiB, NULL, MiB,
				     false), -EOPNOTSUPP);
	}
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 4 * MiB);	/* size kept */
	blk_close(d);
	free(w);
	free(r);
}

START_TEST(discard_write_zeroes)
{
	discard_and_zeroes(img, true);
}
END_TEST

/* tmpfs has hole punching but no ZERO_RANGE: WRITE_ZEROES without unmap
 * falls back to writing zeroes. */
START_TEST(write_zeroes_fallback_tmpfs)
{
	char path[128];

	if (access("/dev/shm", W_OK) != 0)
		return;	/* nothing to exercise here */
	snprintf(path, sizeof(path), "/dev/shm/vmm-test-raw-%d.img",
		 (int)getpid());
	discard_and_zeroes(path, true);
	unlink(path);
}
END_TEST

START_TEST(readonly_refuses_writes)
{
	struct blk_dev *d;
	uint8_t buf[4096];
	uint8_t before[4096], after[4096];
	int fd;

	make_image(img, 65536);
	fd = open(img, O_RDWR);
	pattern_fill(before, 3, 0, sizeof(before));
	ck_assert_int_eq(pwrite(fd, before, sizeof(before), 0), 4096);
	close(fd);
	d = open_ok(img, true, BLK_CACHE_WRITEBACK);
	ck_assert(blk_readonly(d));
	ck_assert(!blk_can_discard(d));
	ck_assert(!blk_can_write_zeroes(d));
	memset(buf, 0xee, sizeof(buf));
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 0, buf, 4096, false), -EROFS);
	ck_assert_int_eq(run(d, BLK_OP_DISCARD, 0, NULL, 4096, false), -EROFS);
	ck_assert_int_eq(run(d, BLK_OP_WRITE_ZEROES, 0, NULL, 4096, true),
			 -EROFS);
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0, false), 0);
	ck_assert_int_eq(run(d, BLK_OP_READ, 0, buf, 4096, false), 0);
	ck_assert_uint_eq(pattern_check(buf, 3, 0, 4096), 4096);
	blk_close(d);
	fd = open(img, O_RDONLY);
	ck_assert_int_eq(pread(fd, after, sizeof(after), 0), 4096);
	close(fd);
	ck_assert(memcmp(before, after, 4096) == 0);
}
END_TEST

START_TEST(out_of_range)
{
	struct blk_dev *d;
	uint8_t buf[1024];

	make_image(img, 65536);
	d = open_ok(img, false, BLK_CACHE_WRITEBACK);
	ck_assert_int_eq(run(d, BLK_OP_READ, 65536, buf, 1, false), -EINVAL);
	ck_assert_int_eq(run(d, BLK_OP_READ, 65536 - 512, buf, 1024, false),
			 -EINVAL);
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 65536 + 512, buf, 512, false),
			 -EINVAL);
	ck_assert_int_eq(run(d, BLK_OP_WRITE, UINT64_MAX - 100, buf, 512,
			     false), -EINVAL);
	ck_assert_int_eq(run(d, BLK_OP_DISCARD, UINT64_MAX - 100, NULL, 4096,
			     false), -EINVAL);
	ck_assert_int_eq(run(d, BLK_OP_WRITE_ZEROES, 4096, NULL, 65536,
			     false), -EINVAL);
	/* the last byte is in range */
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 65535, buf, 1, false), 0);
	blk_close(d);
}
END_TEST

START_TEST(lock_conflicts)
{
	struct blk_dev *a, *b, *c;
	char err[256];

	make_image(img, 65536);
	a = open_ok(img, false, BLK_CACHE_WRITEBACK);
	/* OFD locks conflict between open file descriptions, even here */
	ck_assert_ptr_null(open_img(img, false, BLK_CACHE_WRITEBACK, err,
				    sizeof(err)));
	ck_assert_msg(strstr(err, "image is in use by another process "
			      "(locked)") && strstr(err, img), "%s", err);
	ck_assert_ptr_null(open_img(img, true, BLK_CACHE_WRITEBACK, err,
				    sizeof(err)));
	ck_assert(strstr(err, "locked"));
	blk_close(a);
	/* shared read locks coexist; a writer is kept out */
	b = open_ok(img, true, BLK_CACHE_WRITEBACK);
	c = open_ok(img, true, BLK_CACHE_WRITEBACK);
	ck_assert_ptr_null(open_img(img, false, BLK_CACHE_WRITEBACK, err,
				    sizeof(err)));
	ck_assert(strstr(err, "locked"));
	blk_close(b);
	blk_close(c);
	a = open_ok(img, false, BLK_CACHE_WRITEBACK);
	blk_close(a);
}
END_TEST

START_TEST(cache_none)
{
	struct blk_dev *d;
	char err[256];
	uint8_t *w = abuf(MiB), *r = abuf(MiB);
	unsigned al;

	make_image(img, 4 * MiB + 100);	/* tail shorter than a block */
	d = open_img(img, false, BLK_CACHE_NONE, err, sizeof(err));
	if (!d && strstr(err, "not supported")) {
		free(w);
		free(r);
		return;	/* TMPDIR on a file system without O_DIRECT */
	}
	ck_assert_msg(d, "%s", err);
	al = blk_alignment(d);
	ck_assert_uint_ge(al, 512);
	ck_assert_uint_eq(al & (al - 1), 0);
	ck_assert_uint_eq(blk_size(d), 4 * MiB);	/* rounded down */
	pattern_fill(w, 9, 4096, MiB);
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 4096, w, MiB, false), 0);
	ck_assert_int_eq(run(d, BLK_OP_FLUSH, 0, NULL, 0, false), 0);
	ck_assert_int_eq(run(d, BLK_OP_READ, 4096, r, MiB, false), 0);
	ck_assert_uint_eq(pattern_check(r, 9, 4096, MiB), MiB);
	/* misaligned offset or length is refused before the kernel sees it */
	ck_assert_int_eq(run(d, BLK_OP_READ, 100, r, 4096, false), -EINVAL);
	ck_assert_int_eq(run(d, BLK_OP_READ, 0, r, 100, false), -EINVAL);
	/* write-zeroes works with O_DIRECT too */
	ck_assert_int_eq(run(d, BLK_OP_WRITE_ZEROES, 4096, NULL, 65536,
			     false), 0);
	ck_assert_int_eq(run(d, BLK_OP_READ, 4096, r, 65536, false), 0);
	expect_zero(r, 65536);
	blk_close(d);
	free(w);
	free(r);
}
END_TEST

/* cache=none: buffers at any address and segments of any length work (the
 * block layer bounces them); offsets and lengths stay sector-aligned. */
START_TEST(cache_none_misaligned_buffers)
{
	struct blk_dev *d;
	char err[256];
	uint8_t *w = abuf(MiB + 4096), *r = abuf(MiB + 4096);
	struct iovec wv[3], rv[4];
	struct sync_req s;

	make_image(img, 4 * MiB);
	d = open_img(img, false, BLK_CACHE_NONE, err, sizeof(err));
	if (!d && strstr(err, "not supported")) {
		free(w);
		free(r);
		return;
	}
	ck_assert_msg(d, "%s", err);
	/* one segment at an odd address */
	pattern_fill(w + 1, 13, 8192, 65536);
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 8192, w + 1, 65536, false), 0);
	memset(r, 0, MiB);
	ck_assert_int_eq(run(d, BLK_OP_READ, 8192, r + 3, 65536, false), 0);
	ck_assert_uint_eq(pattern_check(r + 3, 13, 8192, 65536), 65536);
	/* segments of odd lengths adding up to whole sectors */
	pattern_fill(w, 14, MiB, 3 * 4096);
	wv[0] = (struct iovec){ w, 100 };
	wv[1] = (struct iovec){ w + 100, 5000 };
	wv[2] = (struct iovec){ w + 5100, 3 * 4096 - 5100 };
	memset(&s, 0, sizeof(s));
	s.r = (struct blk_req){ .op = BLK_OP_WRITE, .offset = MiB,
				.len = 3 * 4096, .iov = wv, .iovcnt = 3,
				.done = sync_done };
	blk_submit(d, &s.r);
	io_engine_submit(eng);
	while (!s.calls)
		io_engine_wait(eng);
	ck_assert_int_eq(s.result, 0);
	memset(r, 0xff, 3 * 4096 + 64);
	rv[0] = (struct iovec){ r + 1, 511 };
	rv[1] = (struct iovec){ r + 512 + 7, 1 };
	rv[2] = (struct iovec){ r + 1024, 4096 };
	rv[3] = (struct iovec){ r + 8192, 3 * 4096 - 4608 };
	memset(&s, 0, sizeof(s));
	s.r = (struct blk_req){ .op = BLK_OP_READ, .offset = MiB,
				.len = 3 * 4096, .iov = rv, .iovcnt = 4,
				.done = sync_done };
	blk_submit(d, &s.r);
	io_engine_submit(eng);
	while (!s.calls)
		io_engine_wait(eng);
	ck_assert_int_eq(s.result, 0);
	ck_assert_uint_eq(pattern_check(r + 1, 14, MiB, 511), 511);
	ck_assert_uint_eq(pattern_check(r + 519, 14, MiB + 511, 1), 1);
	ck_assert_uint_eq(pattern_check(r + 1024, 14, MiB + 512, 4096), 4096);
	ck_assert_uint_eq(pattern_check(r + 8192, 14, MiB + 4608,
					3 * 4096 - 4608), 3 * 4096 - 4608);
	/* the caller's untouched bytes stay untouched */
	ck_assert_uint_eq(r[0], 0xff);
	ck_assert_uint_eq(r[512], 0xff);
	/* misaligned offsets and lengths are still refused */
	ck_assert_int_eq(run(d, BLK_OP_READ, 100, r + 1, 512, false), -EINVAL);
	ck_assert_int_eq(run(d, BLK_OP_WRITE, 0, w + 1, 513, false), -EINVAL);
	blk_close(d);
	free(w);
	free(r);
}
END_TEST

/* VmRSS or VmHWM of this process, KiB. */
static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	long v = -1;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	ck_assert_int_ge(v, 0);
	return v;
}

/* Submit n requests at once and wait for all; returns the most the engine
 * had in flight right after the submits. */
static unsigned run_many(struct blk_dev *d, struct sync_req *s, unsigned n)
{
	unsigned i, pending, most;

	for (i = 0; i < n; i++)
		blk_submit(d, &s[i].r);
	most = io_engine_inflight(eng);
	io_engine_submit(eng);
	do {
		ck_assert_int_ge(io_engine_wait(eng), 0);
		pending = 0;
		for (i = 0; i < n; i++)
			pending += s[i].calls == 0;
	} while (pending);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(s[i].calls, 1);
		ck_assert_int_eq(s[i].result, 0);
	}
	return most;
}

/* cache=none with misaligned guest buffers: the length of a request (the
 * guest's choice) never sizes an allocation.  Many large requests whose
 * segments all point at one misaligned 1 MiB buffer (as a hostile guest
 * can) go through the fixed bounce pool: at most BLK_BOUNCE_SLOTS of them
 * reach the backend at once, the rest wait and then complete, and the
 * process grows by about the pool, not by the requests. */
START_TEST(cache_none_bounce_bounded)
{
	enum { NREQ = 16, SEGS = 16 };
	static struct sync_req s[NREQ];
	static struct iovec big[SEGS];
	struct iovec wv[5], rv[3];
	struct blk_dev *d;
	char err[256];
	uint8_t *w = abuf(4 * MiB + 4096), *r = abuf(4 * MiB + 4096);
	uint8_t *one = abuf(MiB + 4096);
	const uint64_t len = 3 * MiB + 512 * 7;	/* several chunks, a tail */
	long rss0, hwm;
	unsigned i, most;

	make_image(img, 16 * MiB + 256 * MiB);
	d = open_img(img, false, BLK_CACHE_NONE, err, sizeof(err));
	if (!d && strstr(err, "not supported")) {
		free(w);
		free(r);
		free(one);
		return;
	}
	ck_assert_msg(d, "%s", err);

	/* data crosses chunk and segment boundaries intact, both ways */
	pattern_fill(w + 3, 21, 8 * MiB, len);
	wv[0] = (struct iovec){ w + 3, 1000 };
	wv[1] = (struct iovec){ w + 1003, MiB - 1000 + 17 };
	wv[2] = (struct iovec){ w + 3 + MiB + 17, MiB };
	wv[3] = (struct iovec){ w + 3 + 2 * MiB + 17, 5 };
	wv[4] = (struct iovec){ w + 3 + 2 * MiB + 22, len - 2 * MiB - 22 };
	memset(s, 0, sizeof(s));
	s[0].r = (struct blk_req){ .op = BLK_OP_WRITE, .offset = 8 * MiB,
				   .len = len, .iov = wv, .iovcnt = 5,
				   .done = sync_done };
	run_many(d, s, 1);
	memset(r, 0, 4 * MiB);
	rv[0] = (struct iovec){ r + 1, 2 * MiB - 9 };
	rv[1] = (struct iovec){ r + 2 * MiB, 9 };
	rv[2] = (struct iovec){ r + 2 * MiB + 4096 + 1, len - 2 * MiB };
	memset(s, 0, sizeof(s));
	s[0].r = (struct blk_req){ .op = BLK_OP_READ, .offset = 8 * MiB,
				   .len = len, .iov = rv, .iovcnt = 3,
				   .done = sync_done };
	run_many(d, s, 1);
	ck_assert_uint_eq(pattern_check(r + 1, 21, 8 * MiB, 2 * MiB - 9),
			  2 * MiB - 9);
	ck_assert_uint_eq(pattern_check(r + 2 * MiB, 21, 10 * MiB - 9, 9), 9);
	ck_assert_uint_eq(pattern_check(r + 2 * MiB + 4097, 21, 10 * MiB,
					len - 2 * MiB), len - 2 * MiB);

	/* requests over one misaligned 1 MiB buffer: 8 writes of 2 MiB, then
	 * 16 reads of 16 MiB (of a hole, so the disk is not what is timed) */
	memset(one, 0x5a, MiB + 4096);
	for (i = 0; i < SEGS; i++)
		big[i] = (struct iovec){ one + 1, MiB };
	rss0 = status_kib("VmRSS:");
	for (int op = 0; op < 2; op++) {
		unsigned n = op ? NREQ : NREQ / 2, segs = op ? SEGS : 2;

		memset(s, 0, sizeof(s));
		for (i = 0; i < n; i++)
			s[i].r = (struct blk_req){
				.op = op ? BLK_OP_READ : BLK_OP_WRITE,
				.offset = op ? 16 * MiB + (uint64_t)i * SEGS * MiB
					     : (uint64_t)i * 2 * MiB,
				.len = segs * MiB, .iov = big, .iovcnt = (int)segs,
				.done = sync_done };
		if (op)
			memset(one, 0x77, MiB + 4096);
		most = run_many(d, s, n);
		ck_assert_msg(most <= BLK_BOUNCE_SLOTS, "%u requests at the "
			      "backend at once (at most %u may bounce)", most,
			      BLK_BOUNCE_SLOTS);
	}
	hwm = status_kib("VmHWM:");
	ck_assert_msg(hwm - rss0 < 64 * 1024, "RSS grew by %ld KiB for "
		      "bounced requests (pool: %u KiB)", hwm - rss0,
		      BLK_BOUNCE_SLOTS * (BLK_BOUNCE_CHUNK >> 10));
	/* the reads (of a hole) landed in the caller's buffer, no further */
	ck_assert_uint_eq(one[1], 0);
	ck_assert_uint_eq(one[MiB], 0);
	ck_assert_uint_eq(one[0], 0x77);
	ck_assert_uint_eq(one[MiB + 1], 0x77);
	/* and the writes reached the file */
	memset(s, 0, sizeof(s));
	s[0].r = (struct blk_req){ .op = BLK_OP_READ, .offset = 14 * MiB,
				   .len = 2 * MiB, .iov = big, .iovcnt = 2,
				   .done = sync_done };
	run_many(d, s, 1);
	ck_assert_uint_eq(one[1], 0x5a);
	ck_assert_uint_eq(one[MiB], 0x5a);
	ck_assert_uint_eq(blk_bounce_peak(d), BLK_BOUNCE_SLOTS);
	ck_assert_uint_le(blk_bounce_held(d),
			  (size_t)BLK_BOUNCE_SLOTS * BLK_BOUNCE_CHUNK);
	blk_close(d);
	free(w);
	free(r);
	free(one);
}
END_TEST

START_TEST(open_errors)
{
	char err[256], path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/missing.img", dir);
	ck_assert_ptr_null(open_img(path, false, BLK_CACHE_WRITEBACK, err,
				    sizeof(err)));
	ck_assert_msg(strstr(err, "no such file") && strstr(err, path), "%s",
		      err);
	ck_assert_ptr_null(open_img(dir, true, BLK_CACHE_WRITEBACK, err,
				    sizeof(err)));
	ck_assert_msg(strstr(err, "directory"), "%s", err);
	ck_assert_ptr_null(open_img(dir, false, BLK_CACHE_WRITEBACK, err,
				    sizeof(err)));
	ck_assert_msg(strstr(err, "directory"), "%s", err);
	make_image(img, 0);
	ck_assert_ptr_null(open_img(img, false, BLK_CACHE_WRITEBACK, err,
				    sizeof(err)));
	ck_assert_msg(strstr(err, "empty"), "%s", err);
	ck_assert_ptr_null(open_img("/dev/null", true, BLK_CACHE_WRITEBACK,
				    err, sizeof(err)));
	ck_assert_msg(strstr(err, "not a regular file"), "%s", err);
	make_image(img, 4096);
	ck_assert_int_eq(chmod(img, 0), 0);
	fd = open(img, O_RDONLY);
	if (fd < 0) {	/* not root: permissions apply */
		ck_assert_ptr_null(open_img(img, true, BLK_CACHE_WRITEBACK,
					    err, sizeof(err)));
		ck_assert_msg(strstr(err, "permission denied"), "%s", err);
	} else {
		close(fd);
	}
	{
		struct blk_opts o = { .path = "", .format = BLK_FMT_RAW };

		ck_assert_ptr_null(blk_open(&o, eng, err, sizeof(err)));
		o.path = img;
		o.format = (enum blk_format)77;
		ck_assert_ptr_null(blk_open(&o, eng, err, sizeof(err)));
		ck_assert_msg(strstr(err, "format"), "%s", err);
	}
}
END_TEST

/* Many requests in flight at once, completing in any order */
START_TEST(queue_depth)
{
	enum { N = 64, BS = 8192 };
	struct blk_dev *d;
	static struct sync_req s[N];
	static struct iovec iov[N];
	uint8_t *buf = abuf(N * BS);
	int i, pending;

	make_image(img, N * BS);
	d = open_ok(img, false, BLK_CACHE_WRITEBACK);
	for (int pass = 0; pass < 2; pass++) {
		memset(s, 0, sizeof(s));
		if (pass == 0)
			pattern_fill(buf, 5, 0, N * BS);
		else
			memset(buf, 0, N * BS);
		for (i = 0; i < N; i++) {
			iov[i].iov_base = buf + (size_t)i * BS;
			iov[i].iov_len = BS;
			s[i].r.op = pass == 0 ? BLK_OP_WRITE : BLK_OP_READ;
			s[i].r.offset = (uint64_t)i * BS;
			s[i].r.len = BS;
			s[i].r.iov = &iov[i];
			s[i].r.iovcnt = 1;
			s[i].r.done = sync_done;
			blk_submit(d, &s[i].r);
		}
		io_engine_submit(eng);
		do {
			io_engine_wait(eng);
			pending = 0;
			for (i = 0; i < N; i++)
				pending += s[i].calls == 0;
		} while (pending);
		for (i = 0; i < N; i++) {
			ck_assert_int_eq(s[i].calls, 1);
			ck_assert_int_eq(s[i].result, 0);
		}
	}
	ck_assert_uint_eq(pattern_check(buf, 5, 0, N * BS), N * BS);
	blk_close(d);
	free(buf);
}
END_TEST

static void setup_sync(void)
{
	setenv("VMM_IO_ENGINE", "sync", 1);	/* the no-io_uring fallback */
	setup();
}

static void add_tests(TCase *tc, bool sync)
{
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, sync ? setup_sync : setup, teardown);
	tcase_add_test(tc, format_parse);
	tcase_add_test(tc, write_read_flush);
	tcase_add_test(tc, scatter_gather);
	tcase_add_test(tc, discard_write_zeroes);
	tcase_add_test(tc, write_zeroes_fallback_tmpfs);
	tcase_add_test(tc, readonly_refuses_writes);
	tcase_add_test(tc, out_of_range);
	tcase_add_test(tc, lock_conflicts);
	tcase_add_test(tc, cache_none);
	tcase_add_test(tc, cache_none_misaligned_buffers);
	tcase_add_test(tc, cache_none_bounce_bounded);
	tcase_add_test(tc, open_errors);
	tcase_add_test(tc, queue_depth);
}

int main(void)
{
	Suite *s = suite_create("raw");
	TCase *tc = tcase_create("raw"), *ts = tcase_create("raw-sync-engine");

	add_tests(tc, false);
	add_tests(ts, true);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, ts);
	return check_run(s);
}
