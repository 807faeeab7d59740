/* tests/unit/test_qcow2_io.c - the qcow2 backend against qemu-img as the
 * referee: whole-disk reads of compressed images (zlib, zstd) and of a
 * three-level backing chain equal `qemu-img convert -O raw`; many
 * allocating writes in flight on the same clusters all land; writes to
 * images with internal snapshots leave the snapshots as they were; malformed
 * headers and tables are refused with a clear error. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/common/pattern.h"
#include "storage/block_backend.h"
#include "storage/qcow2.h"
#include "tests/unit/check_main.h"
#include "tests/unit/storage_fixture.h"

#define KiB 1024ULL
#define MiB (1024ULL * 1024)

static char dir[256];
static struct io_engine *eng;

static void setup(void)
{
	storage_fixture_setup(dir, sizeof(dir), "qcow2", 128, &eng);
}

static void teardown(void)
{
	storage_fixture_teardown(dir, eng);
}

/* run a shell command in the test directory */
static void sh(const char *fmt, ...)
{
	char cmd[2048], full[2400];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "cd '%s' && %s", dir, cmd);
	rc = system(full);
	ck_assert_msg(rc == 0, "command failed (%d): %s", rc, cmd);
}

static char *path(const char *name)
{
	static char p[8][400];
	static int i;

	i = (i + 1) % 8;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static struct blk_dev *open_q(const char *name, bool ro, char *err,
			      size_t errlen)
{
	struct blk_opts o = { .path = path(name), .format = BLK_FMT_QCOW2,
			      .readonly = ro, .cache = BLK_CACHE_WRITEBACK };

	err[0] = 0;
	return qcow2_open(&o, eng, err, errlen);
}

static struct blk_dev *open_ok(const char *name, bool ro)
{
	char err[512];
	struct blk_dev *d = open_q(name, ro, err, sizeof(err));

	ck_assert_msg(d, "open %s: %s", name, err);
	return d;
}

static void wait_all(struct req *q, int n)
{
	int i;

	for (;;) {
		for (i = 0; i < n && q[i].done; i++)
			;
		if (i == n)
			break;
		io_engine_submit(eng);
		ck_assert_int_ge(io_engine_wait(eng), 0);
	}
	for (i = 0; i < n; i++)
		ck_assert_msg(q[i].result == 0, "request %d failed: %d", i,
			      q[i].result);
}

static void do_io(struct blk_dev *d, enum blk_op op, uint64_t off, void *buf,
		  uint64_t len)
{
	struct req q;

	req_start(d, &q, op, off, buf, len);
	wait_all(&q, 1);
}

static uint8_t *slurp(const char *name, uint64_t *len)
{
	int fd = open(path(name), O_RDONLY);
	struct stat st;
	uint8_t *b;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	b = malloc(st.st_size + 1);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(q2_pread(fd, b, st.st_size, 0), 0);
	close(fd);
	*len = st.st_size;
	return b;
}

static void write_file(const char *name, const void *buf, uint64_t len)
{
	int fd = open(path(name), O_CREAT | O_TRUNC | O_WRONLY, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(q2_pwrite(fd, buf, len, 0), 0);
	close(fd);
}

/* Read the whole disk in uneven pieces, several in flight, and compare it
 * with qemu-img's own conversion to raw. */
static void compare_with_qemu(const char *name)
{
	struct blk_dev *d;
	uint64_t size, reflen, off = 0, seed = 1;
	uint8_t *ref, *got;
	struct req q[4];

	/* first: our read lock keeps qemu-img out while we have it open */
	sh("qemu-img convert -O raw %s ref.raw", name);
	ref = slurp("ref.raw", &reflen);
	d = open_ok(name, true);
	size = d->size;
	got = malloc(size);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(reflen, size);
	while (off < size) {
		int n;

		for (n = 0; n < 4 && off < size; n++) {
			uint64_t len = (pattern_word(seed++, 0) % (300 * KiB)) + 1;

			if (len > size - off)
				len = size - off;
			req_start(d, &q[n], BLK_OP_READ, off, got + off, len);
			off += len;
		}
		wait_all(q, n);
	}
	for (off = 0; off < size && got[off] == ref[off]; off++)
		;
	ck_assert_msg(off == size, "%s: byte %llu differs from qemu-img", name,
		      (unsigned long long)off);
	d->ops->close(d);
	free(got);
	free(ref);
}

/* src.raw: the pattern in 3000-byte islands every 128 KiB, zeroes between:
 * compressible, and any misplaced byte shows. */
static void make_islands(const char *name, uint64_t size)
{
	uint8_t *b = calloc(1, size);
	uint64_t off;

	for (off = 0; off < size; off += 128 * KiB)
		pattern_fill(b + off + 700, 5, off + 700, 3000);
	write_file(name, b, size);
	free(b);
}

START_TEST(read_compressed)
{
	make_islands("src.raw", 8 * MiB);
	sh("qemu-img convert -c -O qcow2 -o compression_type=zlib src.raw z.qcow2");
	compare_with_qemu("z.qcow2");
	sh("qemu-img convert -c -O qcow2 -o compat=0.10,cluster_size=4096 "
	   "src.raw z2.qcow2");
	compare_with_qemu("z2.qcow2");
#ifdef HAVE_ZSTD
	sh("qemu-img convert -c -O qcow2 -o compression_type=zstd src.raw s.qcow2");
	compare_with_qemu("s.qcow2");
#endif
}
END_TEST

START_TEST(read_backing_chain)
{
	uint8_t *b = malloc(6 * MiB);

	pattern_fill(b, 1, 0, 6 * MiB);
	write_file("base.raw", b, 6 * MiB);	/* smaller than the overlays */
	free(b);
	sh("qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4096 "
	   "-b base.raw -F raw mid.qcow2 8M");
	sh("qemu-io -f qcow2 -c 'write -P 0x5a 1M 300k' -c 'write -P 0x11 5M 2M' "
	   "mid.qcow2 >/dev/null");
	sh("qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 10M");
	sh("qemu-io -f qcow2 -c 'write -P 0x33 100k 10k' -c 'write -z 5M 64k' "
	   "-c 'write -P 0x44 9M 100k' top.qcow2 >/dev/null");
	compare_with_qemu("top.qcow2");
	compare_with_qemu("mid.qcow2");
}
END_TEST

/* 32 writes of 4 KiB into two clusters, all in flight at once: each
 * cluster is allocated once, every write lands, qemu-img check is clean. */
static void concurrent_writes(bool backing)
{
	uint64_t size = 4 * MiB, i, reflen;
	uint8_t *model = malloc(size), *bufs[32], *ref;
	struct req q[32];
	struct blk_dev *d;

	ck_assert_ptr_nonnull(model);
	memset(model, 0, size);
	if (backing) {
		pattern_fill(model, 9, 0, size);
		write_file("base.raw", model, size);
		sh("qemu-img create -q -f qcow2 -b base.raw -F raw c.qcow2");
	} else {
		sh("qemu-img create -q -f qcow2 c.qcow2 4M");
	}
	d = open_ok("c.qcow2", false);
	for (i = 0; i < 32; i++) {
		/* cluster 3 (64 KiB) gets 16 writes, cluster 7 the others;
		 * slot order is scrambled so later ones start mid-cluster */
		uint64_t c = i < 16 ? 3 : 7, slot = (i * 7) % 16;
		uint64_t off = c * 64 * KiB + slot * 4 * KiB;

		bufs[i] = malloc(4 * KiB);
		pattern_fill(bufs[i], 100 + i, off, 4 * KiB);
		memcpy(model + off, bufs[i], 4 * KiB);
		req_start(d, &q[i], BLK_OP_WRITE, off, bufs[i], 4 * KiB);
	}
	wait_all(q, 32);
	do_io(d, BLK_OP_FLUSH, 0, NULL, 0);
	d->ops->close(d);
	for (i = 0; i < 32; i++)
		free(bufs[i]);
	sh("qemu-img check -q c.qcow2");
	sh("qemu-img convert -O raw c.qcow2 out.raw");
	ref = slurp("out.raw", &reflen);
	ck_assert_uint_eq(reflen, size);
	ck_assert_msg(memcmp(ref, model, size) == 0,
		      "concurrent writes lost data");
	free(ref);
	free(model);
}

START_TEST(concurrent_alloc)
{
	concurrent_writes(false);
}
END_TEST

START_TEST(concurrent_alloc_cow)
{
	concurrent_writes(true);
}
END_TEST

/* A cluster freed while a read of it is in flight is not handed out again
 * until that read is done (else the read could return another cluster's
 * new data).  2 MiB clusters so the allocation reservation (32 MiB) runs
 * out and the next one would start at the freed cluster. */
START_TEST(freed_cluster_waits_for_readers)
{
	uint64_t cs = 2 * MiB, host_a;
	uint8_t *big = malloc(15 * cs), *rbuf = malloc(cs);
	struct blk_dev *d;
	struct qcow2 *s;
	struct q2map m;
	struct req q[4];

	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(rbuf);
	sh("qemu-img create -q -f qcow2 -o cluster_size=2M f.qcow2 64M");
	d = open_ok("f.qcow2", false);
	s = (struct qcow2 *)d;
	pattern_fill(big, 1, 0, 15 * cs);
	do_io(d, BLK_OP_WRITE, 0, big, 15 * cs);	/* uses the reservation */
	ck_assert_int_eq(q2_map(s->img, 0, cs, &m), 0);
	ck_assert_int_eq(m.kind, QCOW2_DATA);
	host_a = m.host;
	req_start(d, &q[0], BLK_OP_READ, 0, rbuf, cs);	/* in flight */
	req_start(d, &q[1], BLK_OP_DISCARD, 0, NULL, cs);
	req_start(d, &q[2], BLK_OP_FLUSH, 0, NULL, 0);	/* frees host_a */
	pattern_fill(big, 2, 20 * cs, cs);
	req_start(d, &q[3], BLK_OP_WRITE, 20 * cs, big, cs);	/* allocates */
	wait_all(q, 4);
	ck_assert_int_eq(q2_map(s->img, 20 * cs, cs, &m), 0);
	ck_assert_int_eq(m.kind, QCOW2_DATA);
	ck_assert_msg(m.host != host_a,
		      "a cluster was reused while a read of it was in flight");
	ck_assert_uint_eq(pattern_check(rbuf, 1, 0, cs), cs);
	/* once idle, the freed cluster is reusable */
	req_start(d, &q[0], BLK_OP_WRITE, 30 * cs, big, cs);
	wait_all(q, 1);
	d->ops->close(d);
	sh("qemu-img check -q f.qcow2");
	free(big);
	free(rbuf);
}
END_TEST

/* The file is made long enough for an allocation reservation at once, so
 * data writes fill holes instead of extending the file (which ext4 does one
 * at a time with O_DIRECT); a clean close trims it back to what is used. */
START_TEST(reservation_extends_then_trims)
{
	uint8_t *b = malloc(MiB);
	struct blk_dev *d;
	struct stat st;

	ck_assert_ptr_nonnull(b);
	sh("qemu-img create -q -f qcow2 x.qcow2 256M");
	d = open_ok("x.qcow2", false);
	pattern_fill(b, 3, 0, MiB);
	do_io(d, BLK_OP_WRITE, 0, b, MiB);
	ck_assert_int_eq(stat(path("x.qcow2"), &st), 0);
	ck_assert_msg(st.st_size >= 32 * (off_t)MiB,
		      "file not extended for the reservation: %lld bytes",
		      (long long)st.st_size);
	d->ops->close(d);
	ck_assert_int_eq(stat(path("x.qcow2"), &st), 0);
	ck_assert_msg(st.st_size > (off_t)MiB && st.st_size < 2 * (off_t)MiB,
		      "file not trimmed at close: %lld bytes",
		      (long long)st.st_size);
	sh("qemu-img check -q x.qcow2");
	d = open_ok("x.qcow2", true);
	memset(b, 0, MiB);
	do_io(d, BLK_OP_READ, 0, b, MiB);
	ck_assert_uint_eq(pattern_check(b, 3, 0, MiB), MiB);
	d->ops->close(d);
	free(b);
}
END_TEST

/* Discards drop references only at the next write-back (after a barrier);
 * what waits is capped, however much a guest discards between flushes. */
static void expect_crash_consistent(const char *name, const char *what);

START_TEST(deferred_frees_bounded)
{
	uint64_t size = 48 * MiB, off;
	uint8_t *b = malloc(MiB);
	struct blk_dev *d;
	struct qcow2 *s;

	ck_assert_ptr_nonnull(b);
	sh("qemu-img create -q -f qcow2 -o cluster_size=512 x.qcow2 48M");
	d = open_ok("x.qcow2", false);
	s = (struct qcow2 *)d;
	for (off = 0; off < size; off += MiB) {
		pattern_fill(b, 4, off, MiB);
		do_io(d, BLK_OP_WRITE, off, b, MiB);
	}
	do_io(d, BLK_OP_FLUSH, 0, NULL, 0);
	/* 98304 clusters discarded, no flush */
	do_io(d, BLK_OP_DISCARD, 0, NULL, size);
	ck_assert_uint_le(s->img->n_deferred_frees, QCOW2_MAX_DEFERRED_FREES);
	ck_assert_uint_gt(s->img->n_deferred_frees, 0);
	expect_crash_consistent("x.qcow2", "a discard of 48 MiB, unflushed");
	do_io(d, BLK_OP_READ, 5 * MiB, b, MiB);
	for (off = 0; off < MiB && !b[off]; off++)
		;
	ck_assert_msg(off == MiB, "discarded range reads back data");
	d->ops->close(d);
	sh("qemu-img check -q x.qcow2");
	free(b);
}
END_TEST

/* ---- internal snapshots ---- */

/* Apply one request to the image and to the model of the disk. */
static void model_io(struct blk_dev *d, uint8_t *model, enum blk_op op,
		     uint64_t off, uint64_t len, uint64_t seed)
{
	uint8_t *b = NULL;

	if (op == BLK_OP_WRITE) {
		b = malloc(len);
		ck_assert_ptr_nonnull(b);
		pattern_fill(b, seed, off, len);
		memcpy(model + off, b, len);
	} else {
		memset(model + off, 0, len);	/* no backing file: zeroes */
	}
	do_io(d, op, off, b, len);
	free(b);
}

static void expect_image(const char *name, const uint8_t *model,
			 uint64_t size, const char *what)
{
	uint64_t len, off;
	uint8_t *got;

	sh("qemu-img check -q %s", name);
	sh("qemu-img convert -O raw %s cmp.raw", name);
	got = slurp("cmp.raw", &len);
	ck_assert_uint_eq(len, size);
	for (off = 0; off < size && got[off] == model[off]; off++)
		;
	ck_assert_msg(off == size, "%s: byte %#llx differs", what,
		      (unsigned long long)off);
	free(got);
}

/* The file as a kill would leave it now (every write so far done, nothing
 * more): qemu-img check may find leaks (exit 3), never corruption. */
static void expect_crash_consistent(const char *name, const char *what)
{
	char cmd[600];
	int rc;

	sh("cp %s crash.qcow2", name);
	snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s' >/dev/null 2>&1",
		 path("crash.qcow2"));
	rc = system(cmd);
	ck_assert_msg(WIFEXITED(rc) && (WEXITSTATUS(rc) == 0 ||
					WEXITSTATUS(rc) == 3),
		      "%s: a crash now leaves a corrupt image (check %d)", what,
		      WEXITSTATUS(rc));
}

/* Writes of every kind into an image with internal snapshots (qemu-img
 * snapshot -c): partial and whole clusters, runs across L2 tables, write
 * zeroes, discard; a second snapshot then more writes (refcounts of 3).
 * qemu-img check stays clean, the active disk is what was written, and
 * qemu-img snapshot -a brings back each snapshot's data unchanged. */
static void snapshot_writes(const char *opts, uint64_t cs)
{
	uint64_t size = 8 * MiB, l2_span = cs / 8 * cs;
	uint8_t *model = malloc(size), *snap1, *snap2;
	struct blk_dev *d;

	ck_assert_ptr_nonnull(model);
	sh("rm -f s.qcow2 && qemu-img create -q -f qcow2 -o %s s.qcow2 8M",
	   opts);
	sh("qemu-io -f qcow2 -c 'write -P 0x11 0 3M' -c 'write -P 0x22 5M 2M' "
	   "-c 'write -c -P 0x33 7M 512k' s.qcow2 >/dev/null");
	sh("qemu-img snapshot -c s1 s.qcow2");
	sh("qemu-img convert -O raw s.qcow2 snap1.raw");
	snap1 = slurp("snap1.raw", &size);
	memcpy(model, snap1, size);

	d = open_ok("s.qcow2", false);
	model_io(d, model, BLK_OP_WRITE, cs + 100, 3 * cs, 1);	/* partial */
	model_io(d, model, BLK_OP_WRITE, 8 * cs, 4 * cs, 2);	/* whole */
	model_io(d, model, BLK_OP_WRITE, 5 * MiB + 3, 5000, 3);
	model_io(d, model, BLK_OP_WRITE, 7 * MiB + 700, 2 * cs, 4); /* compressed */
	if (l2_span < 6 * MiB)	/* a run across two L2 tables */
		model_io(d, model, BLK_OP_WRITE, l2_span - cs - 10, 2 * cs + 20, 5);
	model_io(d, model, BLK_OP_WRITE_ZEROES, 16 * cs, 2 * cs, 0);
	expect_crash_consistent("s.qcow2", "writes over s1, unflushed");
	model_io(d, model, BLK_OP_DISCARD, 20 * cs, 3 * cs, 0);
	expect_crash_consistent("s.qcow2", "discard over s1");
	model_io(d, model, BLK_OP_WRITE, 4 * MiB, 3 * cs + 1, 6); /* was empty */
	do_io(d, BLK_OP_FLUSH, 0, NULL, 0);
	model_io(d, model, BLK_OP_WRITE, cs + 200, 100, 7);	/* now COPIED */
	d->ops->close(d);
	expect_image("s.qcow2", model, size, "after writes over s1");

	sh("qemu-img snapshot -c s2 s.qcow2");
	snap2 = malloc(size);
	ck_assert_ptr_nonnull(snap2);
	memcpy(snap2, model, size);
	d = open_ok("s.qcow2", false);
	model_io(d, model, BLK_OP_WRITE, 0, 2 * cs + 5, 8);	/* refcount 3 */
	model_io(d, model, BLK_OP_WRITE, cs + 150, 300, 9);
	model_io(d, model, BLK_OP_DISCARD, 8 * cs, cs, 0);
	expect_crash_consistent("s.qcow2", "discard over s2");
	model_io(d, model, BLK_OP_WRITE, 6 * MiB, MiB, 10);
	d->ops->close(d);
	expect_image("s.qcow2", model, size, "after writes over s2");

	sh("qemu-img snapshot -a s2 s.qcow2");
	expect_image("s.qcow2", snap2, size, "snapshot s2 applied");
	sh("qemu-img snapshot -a s1 s.qcow2");
	expect_image("s.qcow2", snap1, size, "snapshot s1 applied");
	/* and writes after applying one land as well */
	d = open_ok("s.qcow2", false);
	memcpy(model, snap1, size);
	model_io(d, model, BLK_OP_WRITE, 2 * cs - 7, 20, 11);
	d->ops->close(d);
	expect_image("s.qcow2", model, size, "written after applying s1");
	free(model);
	free(snap1);
	free(snap2);
}

START_TEST(write_with_snapshots)
{
	snapshot_writes("cluster_size=65536", 64 * KiB);
	snapshot_writes("compat=0.10,cluster_size=4096", 4 * KiB);
	snapshot_writes("cluster_size=512", 512);
}
END_TEST

/* ---- malformed images ---- */

static void patch(const char *name, uint64_t off, const void *b, size_t n)
{
	int fd = open(path(name), O_WRONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(q2_pwrite(fd, b, n, off), 0);
	close(fd);
}

static void patch32(const char *name, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	qcow2_put_be32(b, v);
	patch(name, off, b, 4);
}

static void patch64(const char *name, uint64_t off, uint64_t v)
{
	uint8_t b[8];

	qcow2_put_be64(b, v);
	patch(name, off, b, 8);
}

static void expect_refused(const char *name, bool ro, const char *what)
{
	char err[512];
	struct blk_dev *d = open_q(name, ro, err, sizeof(err));

	if (d)
		d->ops->close(d);
	ck_assert_msg(!d, "%s: opened, expected '%s'", name, what);
	ck_assert_msg(strstr(err, what), "%s: error '%s' lacks '%s'", name,
		      err, what);
	ck_assert_msg(!strchr(err, '\n'), "error is more than one line");
}

static void fresh(const char *name)
{
	sh("qemu-img create -q -f qcow2 %s 64M", name);
	sh("qemu-io -f qcow2 -c 'write -P 1 0 128k' %s >/dev/null", name);
}

START_TEST(malformed_headers)
{
	char err[512];
	struct blk_dev *d;

	fresh("m.qcow2");
	sh("head -c 50 m.qcow2 > t.qcow2");
	expect_refused("t.qcow2", true, "truncated");
	sh("cp m.qcow2 a.qcow2");
	patch32("a.qcow2", QH_MAGIC, 0x12345678);
	expect_refused("a.qcow2", true, "not a qcow2");
	sh("cp m.qcow2 a.qcow2");
	patch32("a.qcow2", QH_VERSION, 4);
	expect_refused("a.qcow2", true, "version 4");
	sh("cp m.qcow2 a.qcow2");
	patch32("a.qcow2", QH_CLUSTER_BITS, 30);
	expect_refused("a.qcow2", true, "cluster_bits");
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", QH_L1_OFF, 1ULL << 40);
	expect_refused("a.qcow2", true, "L1 table");
	sh("cp m.qcow2 a.qcow2");
	patch32("a.qcow2", QH_L1_SIZE, 100000000);
	expect_refused("a.qcow2", true, "L1 table");
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", QH_SIZE, 1ULL << 62);
	expect_refused("a.qcow2", true, "too large");
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", QH_RT_OFF, 1ULL << 40);
	expect_refused("a.qcow2", true, "refcount table");
	sh("cp m.qcow2 a.qcow2");	/* refcount table over the L1 table */
	{
		uint64_t flen;
		uint8_t *f = slurp("m.qcow2", &flen);

		patch64("a.qcow2", QH_RT_OFF, qcow2_be64(f + QH_L1_OFF));
		free(f);
	}
	expect_refused("a.qcow2", true, "overlap");
	sh("cp m.qcow2 a.qcow2");
	patch32("a.qcow2", QH_CRYPT, 1);
	expect_refused("a.qcow2", true, "encrypted");
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", QH_INCOMPAT, 1ULL << 9);
	expect_refused("a.qcow2", true, "unknown incompatible feature bit 9");
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", QH_INCOMPAT, QCOW2_INCOMPAT_DIRTY);
	expect_refused("a.qcow2", true, "dirty");
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", QH_INCOMPAT, QCOW2_INCOMPAT_EXTL2);
	expect_refused("a.qcow2", true, "extended L2");
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", QH_INCOMPAT, QCOW2_INCOMPAT_DATA_FILE);
	expect_refused("a.qcow2", true, "external data file");
	sh("cp m.qcow2 a.qcow2");
	patch32("a.qcow2", QH_HDR_LEN, 105);
	expect_refused("a.qcow2", true, "header length");
	sh("cp m.qcow2 a.qcow2");	/* an extension longer than the cluster */
	{
		uint64_t flen;
		uint8_t *f = slurp("m.qcow2", &flen);
		uint32_t hl = qcow2_be32(f + QH_HDR_LEN);

		free(f);
		patch32("a.qcow2", hl, 0x12345678);
		patch32("a.qcow2", hl + 4, 0x7fffffff);
	}
	expect_refused("a.qcow2", true, "header extension");
	/* corrupt: read-only only */
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", QH_INCOMPAT, QCOW2_INCOMPAT_CORRUPT);
	expect_refused("a.qcow2", false, "corrupt");
	d = open_q("a.qcow2", true, err, sizeof(err));
	ck_assert_msg(d, "corrupt image read-only: %s", err);
	d->ops->close(d);
}
END_TEST

START_TEST(malformed_tables)
{
	uint64_t flen, l1off, rtoff;
	uint8_t *f;

	fresh("m.qcow2");
	f = slurp("m.qcow2", &flen);
	l1off = qcow2_be64(f + QH_L1_OFF);
	rtoff = qcow2_be64(f + QH_RT_OFF);
	free(f);
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", l1off, (1ULL << 40) | QCOW2_OFLAG_COPIED);
	expect_refused("a.qcow2", true, "L1 entry 0");
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", l1off, rtoff | QCOW2_OFLAG_COPIED);
	expect_refused("a.qcow2", true, "L1 entry 0");
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", l1off, 0x10000 | 0x100);	/* reserved bits */
	expect_refused("a.qcow2", true, "L1 entry 0");
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", rtoff + 8, 1ULL << 40);
	expect_refused("a.qcow2", true, "refcount table entry 1");
	sh("cp m.qcow2 a.qcow2");
	patch64("a.qcow2", rtoff, 0);
	expect_refused("a.qcow2", true, "no block for the header");
	/* truncated: the tables lie past the end */
	sh("head -c 70000 m.qcow2 > t.qcow2");
	expect_refused("t.qcow2", true, "past the end");
}
END_TEST

START_TEST(backing_errors)
{
	char err[512];
	struct blk_dev *d;
	int i;

	/* a loop: a -> b -> a */
	sh("qemu-img create -q -f qcow2 a.qcow2 1M");
	sh("qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 b.qcow2");
	sh("qemu-img rebase -u -b b.qcow2 -F qcow2 a.qcow2");
	expect_refused("a.qcow2", true, "loop");
	expect_refused("b.qcow2", false, "loop");
	/* a name but no format extension: never probed */
	sh("qemu-img create -q -f qcow2 n.qcow2 1M");
	patch("n.qcow2", 0x800, "base.raw", 8);
	patch64("n.qcow2", QH_BACKING_OFF, 0x800);
	patch32("n.qcow2", QH_BACKING_LEN, 8);
	sh("truncate -s 1M base.raw");
	expect_refused("n.qcow2", true, "no recorded format");
	/* a name past the first cluster */
	patch64("n.qcow2", QH_BACKING_OFF, 0x20000);
	expect_refused("n.qcow2", true, "backing file name");
	/* missing backing file */
	sh("qemu-img create -q -f qcow2 -b gone.raw -F raw -u g.qcow2 1M");
	expect_refused("g.qcow2", true, "gone.raw");
	/* too deep: 20 levels */
	sh("qemu-img create -q -f raw l0.img 1M");
	for (i = 1; i <= 20; i++)
		sh("qemu-img create -q -f qcow2 -u -b l%d.img -F %s l%d.img 1M",
		   i - 1, i == 1 ? "raw" : "qcow2", i);
	expect_refused("l20.img", true, "deeper than");
	d = open_q("l10.img", true, err, sizeof(err));
	ck_assert_msg(d, "10 levels: %s", err);
	d->ops->close(d);
	/* relative names are relative to the image that names them */
	sh("mkdir sub && qemu-img create -q -f raw sub/b.raw 1M && "
	   "qemu-img create -q -f qcow2 -b b.raw -F raw sub/o.qcow2");
	d = open_q("sub/o.qcow2", false, err, sizeof(err));
	ck_assert_msg(d, "relative backing: %s", err);
	d->ops->close(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qcow2_io");
	TCase *tc = tcase_create("qcow2_io");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, read_compressed);
	tcase_add_test(tc, read_backing_chain);
	tcase_add_test(tc, concurrent_alloc);
	tcase_add_test(tc, concurrent_alloc_cow);
	tcase_add_test(tc, freed_cluster_waits_for_readers);
	tcase_add_test(tc, write_with_snapshots);
	tcase_add_test(tc, reservation_extends_then_trims);
	tcase_add_test(tc, deferred_frees_bounded);
	tcase_add_test(tc, malformed_headers);
	tcase_add_test(tc, malformed_tables);
	tcase_add_test(tc, backing_errors);
	suite_add_tcase(s, tc);
	return check_run(s);
}
