/* tests/unit/test_p9_fuzz.c - the 9P fuzz target (tests/fuzz/
 * p9_server_fuzz.c) run as a plain test: every seed of
 * tests/fuzz/corpus/p9, then deterministic mutations of them (bit flips,
 * interesting values, cuts, splices; P9_FUZZ_ITERS, default 3000).  Each
 * must leave no descriptor open behind it and the file next to the share
 * untouched.
 *
 * P9_FUZZ_WRITE_SEEDS=DIR build/tests/unit/test_p9_fuzz writes the seed
 * corpus (sessions built with tests/unit/p9_wire.h) into DIR and exits.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/p9_server_fuzz.c"
#include "tests/unit/check_main.h"
#include "tests/unit/p9_wire.h"

/* ---- the seeds ---- */

static struct p9w_msg one;
static uint8_t seed[65536];
static size_t seed_len;
static uint16_t seed_tag;

static void s_begin(uint8_t mode)
{
	seed[0] = mode;
	seed_len = 1;
	seed_tag = 1;
}

static void s_msg(uint8_t type)
{
	p9w_start(&one, type, seed_tag++);
}

static void s_end(void)
{
	p9w_end(&one);
	if (seed_len + one.n <= sizeof(seed)) {
		memcpy(seed + seed_len, one.b, one.n);
		seed_len += one.n;
	}
}

static void s_walk(uint32_t fid, uint32_t nfid, int n, const char **names)
{
	s_msg(P9_TWALK);
	p9w_32(&one, fid);
	p9w_32(&one, nfid);
	p9w_16(&one, (uint16_t)n);
	for (int i = 0; i < n; i++)
		p9w_str(&one, names[i]);
	s_end();
}

static void s_walk1(uint32_t fid, uint32_t nfid, const char *name)
{
	s_walk(fid, nfid, name ? 1 : 0, &name);
}

static void s_fid(uint8_t type, uint32_t fid)
{
	s_msg(type);
	p9w_32(&one, fid);
	s_end();
}

static void s_fid32(uint8_t type, uint32_t fid, uint32_t v)
{
	s_msg(type);
	p9w_32(&one, fid);
	p9w_32(&one, v);
	s_end();
}

static void s_rw(uint8_t type, uint32_t fid, uint64_t off, uint32_t count,
		 const char *data)
{
	s_msg(type);
	p9w_32(&one, fid);
	p9w_64(&one, off);
	p9w_32(&one, data ? (uint32_t)strlen(data) : count);
	if (data)
		p9w_put(&one, data, strlen(data));
	s_end();
}

static void s_named(uint8_t type, uint32_t fid, const char *name,
		    int nwords, uint32_t w0, uint32_t w1, uint32_t w2)
{
	uint32_t w[3] = { w0, w1, w2 };

	s_msg(type);
	p9w_32(&one, fid);
	p9w_str(&one, name);
	for (int i = 0; i < nwords; i++)
		p9w_32(&one, w[i]);
	s_end();
}

static void s_lock(uint8_t type, uint32_t fid, uint8_t ltype, uint32_t flags)
{
	s_msg(type);
	p9w_32(&one, fid);
	p9w_8(&one, ltype);
	if (type == P9_TLOCK)
		p9w_32(&one, flags);
	p9w_64(&one, 0);
	p9w_64(&one, 100);
	p9w_32(&one, 1);
	p9w_str(&one, "fuzz");
	s_end();
}

static void s_write_file(const char *dir, const char *name)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "wb");
	if (!f || fwrite(seed, 1, seed_len, f) != seed_len || fclose(f)) {
		perror(p);
		exit(1);
	}
}

static void write_seeds(const char *dir)
{
	const char *path[] = { "dir", "sub", "deep" };
	const char *up[] = { "..", "..", "dir", "..", "link", "x" };
	uint8_t junk[16] = { 3, 0, 0, 0, 110, 1, 0, 0xff, 0xff, 0xff };

	mkdir(dir, 0755);
	/* a file read, written, synced and looked at */
	s_begin(0);
	s_walk1(0, 1, "file");
	s_fid32(P9_TLOPEN, 1, 2);
	s_rw(P9_TREAD, 1, 0, 100, NULL);
	s_rw(P9_TWRITE, 1, 3, 0, "abc");
	s_fid32(P9_TFSYNC, 1, 1);
	s_msg(P9_TGETATTR); p9w_32(&one, 1); p9w_64(&one, 0x3fff); s_end();
	s_fid(P9_TSTATFS, 0);
	s_fid(P9_TCLUNK, 1);
	s_write_file(dir, "file-rw");
	/* a directory listed in two steps */
	s_begin(0);
	s_walk(0, 1, 2, path);
	s_fid32(P9_TLOPEN, 1, 0);
	s_rw(P9_TREADDIR, 1, 0, 40, NULL);
	s_rw(P9_TREADDIR, 1, 0, 4096, NULL);
	s_fid(P9_TCLUNK, 1);
	s_write_file(dir, "readdir");
	/* create, write, truncate, remove */
	s_begin(0);
	s_walk1(0, 1, NULL);
	s_named(P9_TLCREATE, 1, "new", 3, 2, 0644, 0);
	s_rw(P9_TWRITE, 1, 0, 0, "new data");
	s_msg(P9_TSETATTR); p9w_32(&one, 1); p9w_32(&one, 0x1f);
	p9w_32(&one, 0600); p9w_32(&one, 0); p9w_32(&one, 0); p9w_64(&one, 3);
	for (int i = 0; i < 4; i++) p9w_64(&one, 5);
	s_end();
	s_named(P9_TUNLINKAT, 0, "new", 1, 0, 0, 0);
	s_write_file(dir, "create");
	/* names: mkdir, mknod, symlink, link, rename, renameat, remove */
	s_begin(0);
	s_named(P9_TMKDIR, 0, "d", 2, 0755, 0, 0);
	s_msg(P9_TMKNOD); p9w_32(&one, 0); p9w_str(&one, "fifo2");
	p9w_32(&one, 010644); p9w_32(&one, 0); p9w_32(&one, 0); p9w_32(&one, 0);
	s_end();
	s_msg(P9_TSYMLINK); p9w_32(&one, 0); p9w_str(&one, "sl");
	p9w_str(&one, "../../etc"); p9w_32(&one, 0); s_end();
	s_walk1(0, 1, "sl");
	s_fid(P9_TREADLINK, 1);
	s_walk1(0, 2, "file");
	s_msg(P9_TLINK); p9w_32(&one, 0); p9w_32(&one, 2); p9w_str(&one, "hl");
	s_end();
	s_walk1(0, 3, "d");
	s_msg(P9_TRENAMEAT); p9w_32(&one, 0); p9w_str(&one, "hl");
	p9w_32(&one, 3); p9w_str(&one, "hl2"); s_end();
	s_msg(P9_TRENAME); p9w_32(&one, 1); p9w_32(&one, 3); p9w_str(&one, "sl2");
	s_end();
	s_fid(P9_TREMOVE, 1);
	s_named(P9_TUNLINKAT, 0, "d", 1, P9_DOTL_AT_REMOVEDIR, 0, 0);
	s_write_file(dir, "names");
	/* locks: one conflicts and parks, an unlock frees it, a flush */
	s_begin(0);
	s_walk1(0, 1, "file");
	s_fid32(P9_TLOPEN, 1, 2);
	s_walk1(0, 2, "file");
	s_fid32(P9_TLOPEN, 2, 2);
	s_lock(P9_TLOCK, 1, P9_LOCK_TYPE_WRLCK, 0);
	s_lock(P9_TLOCK, 2, P9_LOCK_TYPE_WRLCK, P9_LOCK_FLAGS_BLOCK);
	s_lock(P9_TGETLOCK, 2, P9_LOCK_TYPE_RDLCK, 0);
	s_lock(P9_TLOCK, 1, P9_LOCK_TYPE_UNLCK, 0);
	s_lock(P9_TLOCK, 1, P9_LOCK_TYPE_RDLCK, P9_LOCK_FLAGS_BLOCK);
	s_msg(P9_TFLUSH); p9w_16(&one, (uint16_t)(seed_tag - 1)); s_end();
	s_write_file(dir, "locks");
	/* xattrs: set, get, list */
	s_begin(0);
	s_walk1(0, 1, "file");
	s_msg(P9_TXATTRCREATE); p9w_32(&one, 1); p9w_str(&one, "user.k");
	p9w_64(&one, 3); p9w_32(&one, 0); s_end();
	s_rw(P9_TWRITE, 1, 0, 0, "val");
	s_fid(P9_TCLUNK, 1);
	s_msg(P9_TXATTRWALK); p9w_32(&one, 0); p9w_32(&one, 2);
	p9w_str(&one, "user.k"); s_end();
	s_rw(P9_TREAD, 2, 0, 64, NULL);
	s_msg(P9_TXATTRWALK); p9w_32(&one, 0); p9w_32(&one, 3);
	p9w_str(&one, ""); s_end();
	s_rw(P9_TREAD, 3, 0, 64, NULL);
	s_write_file(dir, "xattr");
	/* escapes: "..", symlinks mid-path, special files */
	s_begin(0);
	s_walk(0, 1, 6, up);
	s_walk(0, 2, 4, up);
	s_walk1(0, 3, "fifo");
	s_fid32(P9_TLOPEN, 3, 0);
	s_walk1(0, 4, "link");
	s_fid32(P9_TLOPEN, 4, 0);
	s_named(P9_TLCREATE, 0, "link", 3, 2, 0644, 0);
	s_write_file(dir, "escapes");
	/* readonly: changes refused */
	s_begin(1);
	s_walk1(0, 1, "file");
	s_fid32(P9_TLOPEN, 1, 2);
	s_named(P9_TMKDIR, 0, "d", 2, 0755, 0, 0);
	s_fid32(P9_TLOPEN, 1, 0);
	s_rw(P9_TREAD, 1, 0, 100, NULL);
	s_write_file(dir, "readonly");
	/* a new version mid-session, a second attach, junk after it */
	s_begin(0);
	s_walk1(0, 1, "dir");
	s_msg(P9_TVERSION); p9w_32(&one, 8192); p9w_str(&one, "9P2000.L");
	s_end();
	s_msg(P9_TATTACH); p9w_32(&one, 5); p9w_32(&one, P9_NOFID);
	p9w_str(&one, "u"); p9w_str(&one, "a"); p9w_32(&one, 1000); s_end();
	s_fid(P9_TCLUNK, 1);
	memcpy(seed + seed_len, junk, sizeof(junk));
	seed_len += sizeof(junk);
	s_write_file(dir, "version");
}

/* ---- running them ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n++;
	closedir(d);
	return n;
}

static void check_outside(void)
{
	char p[128], buf[64] = "";
	DIR *d;
	struct dirent *e;
	int fd, entries = 0;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/sentinel", fuzz_top);
	fd = open(p, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert_int_eq(n, 8);
	ck_assert_str_eq(buf, "outside\n");
	d = opendir(fuzz_top);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			entries++;
	closedir(d);
	ck_assert_int_eq(entries, 2);	/* share and sentinel */
}

static uint8_t *corpus[64];
static size_t corpus_len[64];
static int ncorpus;

static void load_corpus(void)
{
	const char *top = getenv("TOP");
	char dir[512];
	DIR *d;
	struct dirent *e;

	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/p9",
		 top && *top ? top : ".");
	d = opendir(dir);
	ck_assert_msg(d != NULL, "no seed corpus at %s", dir);
	while ((e = readdir(d)) && ncorpus < 64) {
		char p[800];
		struct stat st;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		fd = open(p, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(fstat(fd, &st), 0);
		corpus[ncorpus] = malloc((size_t)st.st_size + 1);
		ck_assert_ptr_nonnull(corpus[ncorpus]);
		ck_assert_int_eq(read(fd, corpus[ncorpus], (size_t)st.st_size),
				 st.st_size);
		corpus_len[ncorpus++] = (size_t)st.st_size;
		close(fd);
	}
	closedir(d);
	ck_assert_int_ge(ncorpus, 8);
}

START_TEST(seed_corpus)
{
	int base;

	load_corpus();
	fuzz_init();
	base = count_fds();
	for (int i = 0; i < ncorpus; i++) {
		LLVMFuzzerTestOneInput(corpus[i], corpus_len[i]);
		ck_assert_int_eq(count_fds(), base);
	}
	check_outside();
	p9_fuzz_cleanup();
}
END_TEST

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

START_TEST(mutations)
{
	static const uint32_t interesting[] = {
		0, 1, 7, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 4096,
		65536, 0x7fffffff, 0x80000000, 0xffffffff, P9_NOFID - 1,
	};
	static uint8_t buf[70000];
	const char *it = getenv("P9_FUZZ_ITERS");
	unsigned iters = it ? (unsigned)strtoul(it, NULL, 10) : 3000;
	int base;

	load_corpus();
	fuzz_init();
	base = count_fds();
	for (unsigned n = 0; n < iters; n++) {
		int k = (int)(rnd() % (uint64_t)ncorpus);
		size_t len = corpus_len[k];
		unsigned edits = 1 + (unsigned)(rnd() % 6);

		memcpy(buf, corpus[k], len);
		while (edits--) {
			size_t at = len ? (size_t)(rnd() % len) : 0;

			switch (rnd() % 6) {
			case 0:		/* bit flip */
				if (len)
					buf[at] ^= (uint8_t)(1u << (rnd() % 8));
				break;
			case 1: {	/* an interesting value */
				uint32_t v = interesting[rnd() %
					(sizeof(interesting) /
					 sizeof(interesting[0]))];
				size_t w = 1u << (rnd() % 3);

				if (at + w <= len)
					memcpy(buf + at, &v, w);
				break;
			}
			case 2:		/* cut the tail */
				len = at;
				break;
			case 3: {	/* splice in a piece of another seed */
				int o = (int)(rnd() % (uint64_t)ncorpus);
				size_t from = corpus_len[o] ?
					(size_t)(rnd() % corpus_len[o]) : 0;
				size_t n2 = corpus_len[o] - from;

				if (n2 > 200)
					n2 = 200;
				if (at + n2 <= sizeof(buf)) {
					memcpy(buf + at, corpus[o] + from, n2);
					if (at + n2 > len)
						len = at + n2;
				}
				break;
			}
			case 4:		/* a random byte */
				if (len)
					buf[at] = (uint8_t)rnd();
				break;
			default:	/* duplicate a stretch */
				if (at + 32 <= len && len + 32 <= sizeof(buf)) {
					memmove(buf + at + 32, buf + at,
						len - at);
					len += 32;
				}
				break;
			}
		}
		LLVMFuzzerTestOneInput(buf, len);
		if (n % 256 == 0)
			ck_assert_int_eq(count_fds(), base);
	}
	ck_assert_int_eq(count_fds(), base);
	check_outside();
	p9_fuzz_cleanup();
}
END_TEST

int main(void)
{
	const char *out = getenv("P9_FUZZ_WRITE_SEEDS");
	Suite *s;
	TCase *t;

	if (out && *out) {
		write_seeds(out);
		return 0;
	}
	s = suite_create("p9_fuzz");
	t = tcase_create("corpus");
	tcase_set_timeout(t, 240);
	tcase_add_test(t, seed_corpus);
	tcase_add_test(t, mutations);
	suite_add_tcase(s, t);
	return check_run(s);
}
