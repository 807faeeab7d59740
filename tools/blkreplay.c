/* tools/blkreplay.c - rebuild an image as a power cut would leave it, from
 * the log vmm writes with VMM_IO_RECORD=PATH (storage/io_record.h), and
 * check what a power cut may leave.
 *
 *   blkreplay list  --log L --image P
 *       every record of P's file in log order, then a summary line:
 *         data N write|zero|extend off=O len=L
 *         barrier K flush|sync covers=C
 *         summary data=N barriers=B flushes=F syncs=S
 *   blkreplay build --log L --image P --base B --out O --barrier K [--mix S]
 *       O = B plus every data record of P that barrier K (1..B; 0: none)
 *       covers, in log order: what a crash right after barrier K keeps at
 *       least.  --mix S adds a pseudo-random half (seed S) of the records
 *       after it, up to what barrier K+1 covers (to the end after the last):
 *       writes the disk may or may not have kept, in any combination.
 *   blkreplay check --log L --image P --base B --format raw|qcow2
 *                   [--rounds SEED:OFF:LEN,...] [--mix N] [--dir D]
 *       builds the image at every barrier (and N mixes after each): qcow2
 *       images must pass `qemu-img check` (exit 0, or 3: leaked clusters
 *       only); round j (the seeded pattern of guest/common/pattern.h) was
 *       written and then FLUSHed, so at the j-th FLUSH barrier rounds 1..j
 *       must read back (later rounds win where they overlap).
 *   blkreplay writethrough --log L --image P
 *       every data record of P is covered by a barrier logged before the
 *       next data record of P (and the last by one at all): what a device
 *       without a write cache must do when the guest submits one write at
 *       a time.  Names the first write that was not durable in time.
 *
 * --log may be given several times: logs of consecutive processes on the
 * same image, replayed in order.  P is the image the log was recorded on
 * (its device and inode pick its records; its contents are not read).
 * Exit status: 0 done / holds, 1 the check failed, 2 bad usage, an
 * unreadable log or I/O error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/common/pattern.h"
#include "storage/io_record.h"

struct rec {
	struct io_rec r;	/* seq made global over all the logs */
	unsigned logi;		/* which log */
	long data_pos;		/* WRITE: where its bytes are in that log */
};

#define MAX_LOGS 64
static FILE *logs[MAX_LOGS];
static unsigned nlogs;

struct log {
	struct rec *v;
	size_t n, cap;
};

static void die(const char *fmt, const char *arg)
	__attribute__((noreturn));

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "blkreplay: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(2);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: blkreplay list  --log L --image P\n"
"       blkreplay build --log L --image P --base B --out O --barrier K [--mix SEED]\n"
"       blkreplay check --log L --image P --base B --format raw|qcow2\n"
"                       [--rounds SEED:OFF:LEN,...] [--mix N] [--dir D]\n"
"       blkreplay writethrough --log L --image P\n"
"       (--log may repeat: consecutive logs of one image)\n");
}

/* Add the records of the file at image from log logi (after those of the
 * logs before it: sequence numbers continue where they ended). */
static void load(unsigned logi, const char *logpath, const char *image,
		 struct log *l, uint64_t *base_seq)
{
	FILE *f = logs[logi];
	uint64_t next = *base_seq;
	struct stat st;
	struct io_rec r;

	if (stat(image, &st) < 0)
		die("%s: cannot stat the image", image);
	while (fread(&r, sizeof(r), 1, f) == 1) {
		long pos = ftell(f);

		if (r.magic != IO_REC_MAGIC || r.type < IO_REC_WRITE ||
		    r.type > IO_REC_SYNC)
			die("%s: not a vmm I/O log (bad record)", logpath);
		if (r.type == IO_REC_WRITE &&
		    (r.len > (uint64_t)1 << 40 || fseek(f, (long)r.len, SEEK_CUR)))
			die("%s: truncated write record", logpath);
		r.seq += *base_seq;
		if (r.type < IO_REC_FLUSH && r.seq + 1 > next)
			next = r.seq + 1;
		if (r.dev != (uint64_t)st.st_dev || r.ino != (uint64_t)st.st_ino)
			continue;
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 1024;
			l->v = realloc(l->v, l->cap * sizeof(*l->v));
			if (!l->v)
				die("%s", "out of memory");
		}
		l->v[l->n].r = r;
		l->v[l->n].logi = logi;
		l->v[l->n].data_pos = pos;
		l->n++;
	}
	if (ferror(f) || !feof(f))
		die("%s: read error", logpath);
	*base_seq = next;
}

static bool is_barrier(const struct io_rec *r)
{
	return r->type == IO_REC_FLUSH || r->type == IO_REC_SYNC;
}

static const char *type_name(uint32_t t)
{
	static const char *const names[] = { "?", "write", "zero", "extend",
					     "flush", "sync" };

	return t <= IO_REC_SYNC ? names[t] : "?";
}

static int cmd_list(const struct log *l)
{
	unsigned long data = 0, barriers = 0, flushes = 0, syncs = 0;
	size_t i;

	for (i = 0; i < l->n; i++) {
		const struct io_rec *r = &l->v[i].r;

		if (is_barrier(r)) {
			barriers++;
			if (r->type == IO_REC_FLUSH)
				flushes++;
			else
				syncs++;
			printf("barrier %lu %s covers=%" PRIu64 "\n", barriers,
			       type_name(r->type), r->seq);
		} else {
			data++;
			printf("data %" PRIu64 " %s off=%" PRIu64 " len=%" PRIu64
			       "\n", r->seq, type_name(r->type), r->off, r->len);
		}
	}
	printf("summary data=%lu barriers=%lu flushes=%lu syncs=%lu\n", data,
	       barriers, flushes, syncs);
	return 0;
}

static void copy_file(const char *from, const char *to)
{
	static uint8_t buf[1 << 20], zero[1 << 20];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	struct stat st;
	off_t pos = 0;

	if (in < 0 || fstat(in, &st) < 0)
		die("%s: cannot read the base image", from);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		die("%s: cannot create", to);
	for (;;) {
		ssize_t n = pread(in, buf, sizeof(buf), pos);

		if (n < 0)
			die("%s: read error", from);
		if (n == 0)
			break;
		/* zero blocks stay holes: images are mostly sparse */
		if (memcmp(buf, zero, (size_t)n) &&
		    pwrite(out, buf, (size_t)n, pos) != n)
			die("%s: write error", to);
		pos += n;
	}
	if (ftruncate(out, st.st_size) < 0 || close(out) < 0)
		die("%s: write error", to);
	close(in);
}

static void apply(int out, const struct rec *rec)
{
	const struct io_rec *r = &rec->r;
	FILE *f = logs[rec->logi];
	long data_pos = rec->data_pos;
	static uint8_t buf[1 << 20];
	uint64_t done = 0;
	struct stat st;

	switch (r->type) {
	case IO_REC_WRITE:
		if (fseek(f, data_pos, SEEK_SET))
			die("%s", "log seek failed");
		while (done < r->len) {
			size_t n = r->len - done < sizeof(buf) ?
				   (size_t)(r->len - done) : sizeof(buf);

			if (fread(buf, 1, n, f) != n)
				die("%s", "truncated write record");
			if (pwrite(out, buf, n, (off_t)(r->off + done)) !=
			    (ssize_t)n)
				die("%s", "write to the output failed");
			done += n;
		}
		break;
	case IO_REC_ZERO:
		if (fallocate(out, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)r->off, (off_t)r->len) < 0)
			die("punching the output: %s", strerror(errno));
		break;
	case IO_REC_EXTEND:
		if (fstat(out, &st) == 0 &&
		    (uint64_t)st.st_size < r->off + r->len &&
		    ftruncate(out, (off_t)(r->off + r->len)) < 0)
			die("extending the output: %s", strerror(errno));
		break;
	}
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static unsigned long count_barriers(const struct log *l)
{
	unsigned long b = 0;
	size_t i;

	for (i = 0; i < l->n; i++)
		b += is_barrier(&l->v[i].r);
	return b;
}

/* outpath = base + what barrier k covers (+ a seeded mix of what follows);
 * returns how many records went in. */
static unsigned long build(const struct log *l, const char *base,
			   const char *outpath, unsigned long k, bool mix,
			   uint64_t seed, unsigned long *mixed)
{
	uint64_t covers = 0, next = UINT64_MAX, rng = seed * 2 + 1;
	unsigned long b = 0, applied = 0;
	size_t i;
	int out;

	*mixed = 0;
	for (i = 0; i < l->n; i++) {
		if (!is_barrier(&l->v[i].r))
			continue;
		b++;
		if (b == k)
			covers = l->v[i].r.seq;
		else if (b == k + 1)
			next = l->v[i].r.seq;
	}
	copy_file(base, outpath);
	out = open(outpath, O_WRONLY | O_CLOEXEC);
	if (out < 0)
		die("%s: cannot open", outpath);
	for (i = 0; i < 16; i++)
		xorshift(&rng);
	for (i = 0; i < l->n; i++) {
		const struct io_rec *r = &l->v[i].r;

		if (is_barrier(r))
			continue;
		if (r->seq < covers) {
			apply(out, &l->v[i]);
			applied++;
		} else if (mix && r->seq < next && (xorshift(&rng) & 1)) {
			apply(out, &l->v[i]);
			(*mixed)++;
		}
	}
	if (close(out) < 0)
		die("%s: write error", outpath);
	return applied;
}

static int cmd_build(const struct log *l, const char *base,
		     const char *outpath, unsigned long k, bool mix,
		     uint64_t seed)
{
	unsigned long b = count_barriers(l), applied, mixed;

	if (k > b) {
		fprintf(stderr, "blkreplay: barrier %lu: the log has %lu\n", k,
			b);
		return 2;
	}
	applied = build(l, base, outpath, k, mix, seed, &mixed);
	printf("built %s: barrier %lu, %lu records applied, %lu mixed in\n",
	       outpath, k, applied, mixed);
	return 0;
}

/* --- check ------------------------------------------------------------ */
struct round {
	uint64_t seed, off, len;
};

/* Run argv with stdout and stderr into outfile; its exit status, or -1. */
static int run_tool(char *const argv[], const char *outfile)
{
	posix_spawn_file_actions_t fa;
	extern char **environ;
	pid_t pid;
	int st;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, outfile,
					 O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ)) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void show(const char *path)
{
	char line[256];
	FILE *f = fopen(path, "r");
	int n = 0;

	while (f && fgets(line, sizeof(line), f) && n++ < 20)
		fprintf(stderr, "    %s", line);
	if (f)
		fclose(f);
}

/* qemu-img check: 0 clean, 3 leaks only (a crash may leak); 2 corrupt. */
static bool qcow2_ok(const char *img, const char *dir, const char *what)
{
	char out[600];
	char *argv[] = { "qemu-img", "check", "-f", "qcow2", (char *)img,
			 NULL };
	int rc;

	snprintf(out, sizeof(out), "%s/qemu-img.out", dir);
	rc = run_tool(argv, out);
	if (rc == 0 || rc == 3)
		return true;
	fprintf(stderr, "blkreplay: %s: qemu-img check exit %d%s:\n", what, rc,
		rc == 2 ? " (corrupt)" : "");
	show(out);
	return false;
}

/* The rounds 1..j as the image must hold them, checked on a raw file. */
static bool rounds_ok(const char *raw, const struct round *rd, unsigned j,
		      const char *what)
{
	int fd = open(raw, O_RDONLY | O_CLOEXEC);
	uint8_t buf[65536];
	unsigned k, m;

	if (fd < 0)
		die("%s: cannot open", raw);
	for (k = 0; k < j; k++) {
		uint64_t pos = rd[k].off, end = rd[k].off + rd[k].len;

		while (pos < end) {
			uint64_t n = end - pos < sizeof(buf) ? end - pos
							     : sizeof(buf);
			uint64_t bad;
			ssize_t got;

			/* skip what a later round (up to j) overwrote */
			for (m = k + 1; m < j; m++)
				if (pos >= rd[m].off &&
				    pos < rd[m].off + rd[m].len)
					break;
			if (m < j) {
				pos = rd[m].off + rd[m].len;
				continue;
			}
			for (m = k + 1; m < j; m++)
				if (rd[m].off > pos && rd[m].off < pos + n)
					n = rd[m].off - pos;
			got = pread(fd, buf, n, (off_t)pos);
			if (got < 0)
				die("%s: read error", raw);
			if ((uint64_t)got < n)	/* past the end: zeroes */
				memset(buf + got, 0, n - (uint64_t)got);
			bad = pattern_check(buf, rd[k].seed, pos, n);
			if (bad < n) {
				fprintf(stderr, "blkreplay: %s: round %u (seed "
					"%" PRIu64 ") lost: byte %" PRIu64
					" is 0x%02x, expected 0x%02x\n", what,
					k + 1, rd[k].seed, pos + bad, buf[bad],
					pattern_byte(rd[k].seed, pos + bad));
				close(fd);
				return false;
			}
			pos += n;
		}
	}
	close(fd);
	return true;
}

/* The image state at barrier k is built incrementally: one working copy
 * advances from barrier to barrier (data records are numbered in log
 * order, so what a barrier covers is a prefix of them).  A mix applies its
 * records with an undo log (old bytes and the old size) and is rolled back
 * after its check, so no state costs more than the records it adds. */
struct undo {
	uint64_t off, len;
	uint8_t *old;
};

static void read_range(int fd, uint64_t off, uint8_t *buf, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));

		if (n < 0)
			die("%s", "reading the working image failed");
		if (n == 0) {	/* past the end */
			memset(buf + done, 0, len - done);
			break;
		}
		done += (uint64_t)n;
	}
}

static int open_work(const char *base, const char *state)
{
	int fd;

	copy_file(base, state);
	fd = open(state, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("%s: cannot open", state);
	return fd;
}

static bool state_checks(const char *state, const char *raw, const char *dir,
			 bool qcow2, const struct round *rd, unsigned nrounds,
			 unsigned long flushes, bool flush, const char *what)
{
	char what2[96];

	if (qcow2 && !qcow2_ok(state, dir, what))
		return false;
	if (!flush || flushes > nrounds)
		return true;
	if (qcow2) {
		char *argv[] = { "qemu-img", "convert", "-f", "qcow2", "-O",
				 "raw", (char *)state, (char *)raw, NULL };
		char out[600];

		snprintf(out, sizeof(out), "%s/convert.out", dir);
		if (run_tool(argv, out)) {
			fprintf(stderr, "blkreplay: %s: qemu-img convert "
				"failed\n", what);
			show(out);
			return false;
		}
	}
	snprintf(what2, sizeof(what2), "FLUSH %lu (%s)", flushes, what);
	return rounds_ok(qcow2 ? raw : state, rd, (unsigned)flushes, what2);
}

static int cmd_check(const struct log *l, const char *base, bool qcow2,
		     const struct round *rd, unsigned nrounds,
		     unsigned long mixes, const char *dir)
{
	unsigned long nb = count_barriers(l), k, flushes = 0, states = 0, m;
	char state[600], raw[600], what[64];
	size_t i = 0, next_rec = 0, j;
	uint64_t applied = 0;
	struct undo *undo = malloc((l->n + 1) * sizeof(*undo));
	bool ok = true;
	int w;

	if (!undo)
		die("%s", "out of memory");
	snprintf(state, sizeof(state), "%s/state.img", dir);
	snprintf(raw, sizeof(raw), "%s/state.raw", dir);
	w = open_work(base, state);
	for (k = 0; k <= nb && ok; k++) {
		uint64_t covers = 0, next = UINT64_MAX;
		bool flush = false;
		size_t bi;

		/* barrier k is the next one in the log; k + 1 the one after */
		if (k > 0) {
			while (!is_barrier(&l->v[i].r))
				i++;
			flush = l->v[i].r.type == IO_REC_FLUSH;
			covers = l->v[i].r.seq;
			i++;
		}
		for (bi = i; bi < l->n && !is_barrier(&l->v[bi].r); bi++)
			;
		if (bi < l->n)
			next = l->v[bi].r.seq;
		if (flush)
			flushes++;
		if (covers < applied) {
			/* overlapping syncs: this one covers less than an
			 * earlier one did: start again from the base */
			close(w);
			w = open_work(base, state);
			next_rec = 0;
		}
		for (; next_rec < l->n; next_rec++) {
			const struct rec *r = &l->v[next_rec];

			if (is_barrier(&r->r))
				continue;
			if (r->r.seq >= covers)
				break;
			apply(w, r);
		}
		applied = covers;
		states++;
		snprintf(what, sizeof(what), "barrier %lu", k);
		if (!state_checks(state, raw, dir, qcow2, rd, nrounds, flushes,
				  flush, what)) {
			ok = false;
			break;
		}
		for (m = 0; m < mixes && qcow2 && ok; m++) {
			uint64_t rng = (k * 1000 + m) * 2 + 1, size0;
			struct stat st;
			size_t nu = 0;

			for (j = 0; j < 16; j++)
				xorshift(&rng);
			if (fstat(w, &st) < 0)
				die("%s", "stat of the working image failed");
			size0 = (uint64_t)st.st_size;
			for (j = next_rec; j < l->n; j++) {
				const struct rec *r = &l->v[j];

				if (is_barrier(&r->r))
					continue;
				if (r->r.seq >= next)
					break;
				if (!(xorshift(&rng) & 1))
					continue;
				undo[nu].off = r->r.off;
				undo[nu].len = r->r.type == IO_REC_EXTEND ? 0
								  : r->r.len;
				undo[nu].old = malloc(undo[nu].len ? undo[nu].len
								   : 1);
				if (!undo[nu].old)
					die("%s", "out of memory");
				read_range(w, undo[nu].off, undo[nu].old,
					   undo[nu].len);
				nu++;
				apply(w, r);
			}
			states++;
			snprintf(what, sizeof(what), "barrier %lu + mix %lu",
				 k, m);
			ok = qcow2_ok(state, dir, what);
			while (nu--) {
				if (undo[nu].len &&
				    pwrite(w, undo[nu].old, undo[nu].len,
					   (off_t)undo[nu].off) !=
				    (ssize_t)undo[nu].len)
					die("%s", "undo write failed");
				free(undo[nu].old);
			}
			if (ftruncate(w, (off_t)size0) < 0)
				die("%s", "undo truncate failed");
		}
	}
	close(w);
	free(undo);
	if (ok && flushes < nrounds) {
		fprintf(stderr, "blkreplay: %u rounds were FLUSHed, but only "
			"%lu FLUSHes reached the image file\n", nrounds,
			flushes);
		ok = false;
	}
	printf("check: %lu barriers (%lu FLUSH), %lu states built%s%s\n", nb,
	       flushes, states, qcow2 ? ", qemu-img check on each" : "",
	       ok ? ": ok" : ": FAILED");
	return ok ? 0 : 1;
}

static unsigned parse_rounds(char *spec, struct round *rd, unsigned max)
{
	unsigned n = 0;
	char *tok, *save = NULL;

	for (tok = strtok_r(spec, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		unsigned long long a, b, c;
		char extra;

		if (n == max || sscanf(tok, "%llu:%llu:%llu%c", &a, &b, &c,
				       &extra) != 3 || c == 0)
			die("bad round '%s' (SEED:OFF:LEN, decimal)", tok);
		rd[n++] = (struct round){ a, b, c };
	}
	return n;
}

static int cmd_writethrough(const struct log *l)
{
	size_t i, j;
	unsigned long writes = 0;

	for (i = 0; i < l->n; i++) {
		const struct io_rec *w = &l->v[i].r;
		bool durable = false;

		if (is_barrier(w))
			continue;
		writes++;
		for (j = i + 1; j < l->n && !durable; j++) {
			const struct io_rec *r = &l->v[j].r;

			if (is_barrier(r))
				durable = r->seq > w->seq;
			else
				break;	/* the guest moved on */
		}
		if (!durable) {
			printf("write record %" PRIu64 " (off=%" PRIu64 " len=%"
			       PRIu64 ") was not durable before %s\n", w->seq,
			       w->off, w->len, j < l->n ? "the next write" :
			       "the end of the log");
			return 1;
		}
	}
	printf("writethrough: %lu writes, each durable before the next\n",
	       writes);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "image", required_argument, NULL, 'i' },
		{ "base", required_argument, NULL, 'b' },
		{ "out", required_argument, NULL, 'o' },
		{ "barrier", required_argument, NULL, 'k' },
		{ "mix", required_argument, NULL, 'm' },
		{ "format", required_argument, NULL, 'f' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct round rounds[256];
	const char *logpath[MAX_LOGS], *image = NULL, *base = NULL;
	const char *out = NULL, *format = NULL, *dir = ".", *cmd;
	unsigned long k = 0;
	uint64_t seed = 0;
	unsigned nrounds = 0, i;
	bool have_k = false, mix = false;
	struct log l;
	uint64_t seq = 0;
	char *end;
	int c, ret;

	if (argc < 2)
		die("%s", "no command given (blkreplay --help)");
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (nlogs == MAX_LOGS)
				die("%s", "too many --log");
			logpath[nlogs++] = optarg;
			break;
		case 'i': image = optarg; break;
		case 'b': base = optarg; break;
		case 'o': out = optarg; break;
		case 'f': format = optarg; break;
		case 'd': dir = optarg; break;
		case 'r':
			nrounds = parse_rounds(optarg, rounds,
					       sizeof(rounds) / sizeof(rounds[0]));
			break;
		case 'k':
			errno = 0;
			k = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg)
				die("bad --barrier '%s'", optarg);
			have_k = true;
			break;
		case 'm':
			errno = 0;
			seed = strtoull(optarg, &end, 10);
			if (errno || *end || !*optarg)
				die("bad --mix '%s'", optarg);
			mix = true;
			break;
		case 'h': usage(stdout); return 0;
		case ':': die("option %s needs a value", argv[optind - 1]);
		default: die("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	if (strcmp(cmd, "list") && strcmp(cmd, "build") &&
	    strcmp(cmd, "writethrough") && strcmp(cmd, "check"))
		die("unknown command '%s'", cmd);
	if (!nlogs || !image)
		die("%s: --log and --image are required", cmd);
	if (!strcmp(cmd, "build") && (!base || !out || !have_k))
		die("%s", "build: --base, --out and --barrier are required");
	if (!strcmp(cmd, "check") && (!base || !format ||
				      (strcmp(format, "raw") &&
				       strcmp(format, "qcow2"))))
		die("%s", "check: --base and --format raw|qcow2 are required");
	memset(&l, 0, sizeof(l));
	for (i = 0; i < nlogs; i++) {
		logs[i] = fopen(logpath[i], "r");
		if (!logs[i])
			die("%s: cannot open the log", logpath[i]);
		load(i, logpath[i], image, &l, &seq);
	}
	if (!strcmp(cmd, "list"))
		ret = cmd_list(&l);
	else if (!strcmp(cmd, "build"))
		ret = cmd_build(&l, base, out, k, mix, seed);
	else if (!strcmp(cmd, "check"))
		ret = cmd_check(&l, base, !strcmp(format, "qcow2"), rounds,
				nrounds, mix ? (unsigned long)seed : 0, dir);
	else
		ret = cmd_writethrough(&l);
	for (i = 0; i < nlogs; i++)
		fclose(logs[i]);
	free(l.v);
	return ret;
}
