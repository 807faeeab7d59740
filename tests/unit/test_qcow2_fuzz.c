/* tests/unit/test_qcow2_fuzz.c - a deterministic mutation fuzzer for the
 * qcow2 header and table parsing and the I/O paths behind them: valid
 * images from qemu-img (512 B clusters with a backing file, 4 KiB clusters
 * compressed, 64 KiB v2) get random bytes and fields overwritten; each
 * mutant is opened (read-only and writable), read end to end, written,
 * discarded, zeroed and flushed.  Any outcome but a crash, a hang or a
 * sanitizer report is fine: errors must be clean.  QCOW2_FUZZ_ITERS sets
 * the mutants per image (default 150). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest/common/pattern.h"
#include "storage/block_backend.h"
#include "storage/qcow2.h"
#include "tests/unit/check_main.h"
#include "tests/unit/storage_fixture.h"

static char dir[256];
static struct io_engine *eng;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static unsigned opened, refused;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void setup(void)
{
	storage_fixture_setup(dir, sizeof(dir), "qfuzz", 64, &eng);
}

static void teardown(void)
{
	storage_fixture_teardown(dir, eng);
}

static void sh(const char *cmd)
{
	char full[2400];

	snprintf(full, sizeof(full), "cd '%s' && %s", dir, cmd);
	ck_assert_msg(system(full) == 0, "failed: %s", cmd);
}

/* One request, waited for; returns its result. */
static int io(struct blk_dev *d, enum blk_op op, uint64_t off, void *buf,
	      uint64_t len)
{
	struct req q;

	if (off >= d->size)
		return 0;
	if (len > d->size - off)
		len = d->size - off;
	req_start(d, &q, op, off, buf, len);
	while (!q.done) {
		io_engine_submit(eng);
		ck_assert_int_ge(io_engine_wait(eng), 0);
	}
	return q.result;
}

static uint8_t *load(const char *name, uint64_t *len)
{
	char p[400];
	struct stat st;
	uint8_t *b;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	b = malloc(st.st_size);
	ck_assert_int_eq(q2_pread(fd, b, st.st_size, 0), 0);
	close(fd);
	*len = st.st_size;
	return b;
}

static void exercise(const char *p, bool ro)
{
	struct blk_opts o = { .path = p, .format = BLK_FMT_QCOW2,
			      .readonly = ro, .cache = BLK_CACHE_WRITEBACK };
	char err[512];
	struct blk_dev *d = qcow2_open(&o, eng, err, sizeof(err));
	static uint8_t buf[256 * 1024];
	uint64_t off;
	int i;

	if (!d) {
		ck_assert_msg(err[0] && !strchr(err, '\n'), "bad error '%s'", err);
		refused++;
		return;
	}
	opened++;
	/* the size may be absurd but accepted: touch a bounded window */
	for (off = 0; off < d->size && off < 4 * 1024 * 1024; off += sizeof(buf))
		if (io(d, BLK_OP_READ, off, buf, sizeof(buf)))
			break;
	io(d, BLK_OP_READ, d->size > 4096 ? d->size - 4096 : 0, buf, 4096);
	if (!ro) {
		for (i = 0; i < 6; i++) {
			uint64_t wo = rnd() % (d->size ? d->size : 1);
			uint64_t wl = rnd() % 70000 + 1;

			pattern_fill(buf, i, wo, wl);
			io(d, BLK_OP_WRITE, wo, buf, wl);
		}
		io(d, BLK_OP_DISCARD, rnd() % (d->size ? d->size : 1), NULL,
		   rnd() % 300000);
		io(d, BLK_OP_WRITE_ZEROES, rnd() % (d->size ? d->size : 1), NULL,
		   rnd() % 300000);
		io(d, BLK_OP_FLUSH, 0, NULL, 0);
		io(d, BLK_OP_READ, 0, buf, sizeof(buf));
	}
	d->ops->close(d);
}

static void fuzz_image(const char *name, uint64_t hot)
{
	uint64_t len, n = 150, it;
	uint8_t *orig = load(name, &len), *m = malloc(len);
	const char *env = getenv("QCOW2_FUZZ_ITERS");
	char p[400];

	if (env)
		n = strtoull(env, NULL, 0);
	snprintf(p, sizeof(p), "%s/mutant.qcow2", dir);
	for (it = 0; it < n; it++) {
		uint64_t k = rnd() % 8 + 1, j, mlen = len;
		int fd;

		memcpy(m, orig, len);
		for (j = 0; j < k; j++) {
			/* mostly in the metadata-heavy start of the file */
			uint64_t span = (rnd() & 3) ? (hot < len ? hot : len) : len;
			uint64_t at = rnd() % span;

			switch (rnd() % 4) {
			case 0:	/* a random byte */
				m[at] = (uint8_t)rnd();
				break;
			case 1:	/* a header field set to an extreme */
				at = (rnd() % 14) * 8;
				qcow2_put_be64(m + at, (rnd() & 1) ? ~0ULL
						: rnd() >> (rnd() % 64));
				break;
			case 2:	/* an 8-byte table entry, aligned */
				at &= ~7ULL;
				if (at + 8 <= len)
					qcow2_put_be64(m + at, rnd() >> (rnd() % 64));
				break;
			default:	/* a flipped bit */
				m[at] ^= (uint8_t)(1u << (rnd() % 8));
				break;
			}
		}
		if ((rnd() % 8) == 0)	/* sometimes truncated */
			mlen = rnd() % len;
		fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(q2_pwrite(fd, m, mlen, 0), 0);
		close(fd);
		exercise(p, true);
		exercise(p, false);
	}
	free(orig);
	free(m);
	/* the mutants must reach the I/O paths, not only the open checks */
	printf("%s: %u opened, %u refused\n", name, opened, refused);
	ck_assert_msg(opened > n / 4, "only %u of %llu opens got through", opened,
		      (unsigned long long)(2 * n));
}

START_TEST(fuzz_small_clusters_with_backing)
{
	sh("qemu-img create -q -f raw base.raw 1M && "
	   "qemu-io -f raw -c 'write -P 7 0 1M' base.raw >/dev/null && "
	   "qemu-img create -q -f qcow2 -o cluster_size=512 -b base.raw -F raw "
	   "a.qcow2 2M && qemu-io -f qcow2 -c 'write -P 1 4k 100k' "
	   "-c 'write -z 300k 64k' a.qcow2 >/dev/null");
	fuzz_image("a.qcow2", 8192);
}
END_TEST

START_TEST(fuzz_compressed)
{
	sh("qemu-img create -q -f raw src.raw 1M && "
	   "qemu-io -f raw -c 'write -P 3 0 100k' -c 'write -P 9 512k 3k' src.raw "
	   ">/dev/null && qemu-img convert -c -O qcow2 -o cluster_size=4096 "
	   "src.raw c.qcow2");
	fuzz_image("c.qcow2", 64 * 1024);
}
END_TEST

START_TEST(fuzz_v2)
{
	sh("qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 4M && "
	   "qemu-io -f qcow2 -c 'write -P 5 0 200k' -c 'write -P 6 3M 64k' "
	   "v2.qcow2 >/dev/null");
	fuzz_image("v2.qcow2", 5 * 65536);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qcow2_fuzz");
	TCase *tc = tcase_create("qcow2_fuzz");

	tcase_set_timeout(tc, 240);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, fuzz_small_clusters_with_backing);
	tcase_add_test(tc, fuzz_compressed);
	tcase_add_test(tc, fuzz_v2);
	suite_add_tcase(s, tc);
	return check_run(s);
}
