/* tools/blkreplay.c - rebuild an image as a power cut would leave it, from
 * the log vmm writes with VMM_IO_RECORD=PATH (storage/io_record.h).
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
 *   blkreplay writethrough --log L --image P
 *       every data record of P is covered by a barrier logged before the
 *       next data record of P (and the last by one at all): what a device
 *       without a write cache must do when the guest submits one write at
 *       a time.  Names the first write that was not durable in time.
 *
 * P is the image the log was recorded on (its device and inode pick its
 * records; its contents are not read).  Exit status: 0 done / holds, 1 the
 * check failed, 2 bad usage, an unreadable log or I/O error.
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
#include <sys/stat.h>
#include <unistd.h>

#include "storage/io_record.h"

struct rec {
	struct io_rec r;
	long data_pos;		/* WRITE: where its bytes are in the log */
};

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
"       blkreplay writethrough --log L --image P\n");
}

/* The records of the file at image, in log order. */
static void load(FILE *f, const char *logpath, const char *image,
		 struct log *l)
{
	struct stat st;
	struct io_rec r;

	if (stat(image, &st) < 0)
		die("%s: cannot stat the image", image);
	memset(l, 0, sizeof(*l));
	while (fread(&r, sizeof(r), 1, f) == 1) {
		long pos = ftell(f);

		if (r.magic != IO_REC_MAGIC || r.type < IO_REC_WRITE ||
		    r.type > IO_REC_SYNC)
			die("%s: not a vmm I/O log (bad record)", logpath);
		if (r.type == IO_REC_WRITE &&
		    (r.len > (uint64_t)1 << 40 || fseek(f, (long)r.len, SEEK_CUR)))
			die("%s: truncated write record", logpath);
		if (r.dev != (uint64_t)st.st_dev || r.ino != (uint64_t)st.st_ino)
			continue;
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 1024;
			l->v = realloc(l->v, l->cap * sizeof(*l->v));
			if (!l->v)
				die("%s", "out of memory");
		}
		l->v[l->n].r = r;
		l->v[l->n].data_pos = pos;
		l->n++;
	}
	if (ferror(f) || !feof(f))
		die("%s: read error", logpath);
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

static void apply(FILE *f, int out, const struct io_rec *r, long data_pos)
{
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

static int cmd_build(FILE *f, const struct log *l, const char *base,
		     const char *outpath, unsigned long k, bool mix,
		     uint64_t seed)
{
	uint64_t covers = 0, next = UINT64_MAX, rng = seed * 2 + 1;
	unsigned long b = 0, applied = 0, mixed = 0;
	size_t i;
	int out;

	for (i = 0; i < l->n; i++) {
		if (!is_barrier(&l->v[i].r))
			continue;
		b++;
		if (b == k)
			covers = l->v[i].r.seq;
		else if (b == k + 1)
			next = l->v[i].r.seq;
	}
	if (k > b) {
		fprintf(stderr, "blkreplay: barrier %lu: the log has %lu\n", k,
			b);
		return 2;
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
			apply(f, out, r, l->v[i].data_pos);
			applied++;
		} else if (mix && r->seq < next && (xorshift(&rng) & 1)) {
			apply(f, out, r, l->v[i].data_pos);
			mixed++;
		}
	}
	if (close(out) < 0)
		die("%s: write error", outpath);
	printf("built %s: barrier %lu covers %" PRIu64 " records, %lu applied"
	       ", %lu mixed in\n", outpath, k, covers, applied, mixed);
	return 0;
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *logpath = NULL, *image = NULL, *base = NULL, *out = NULL;
	const char *cmd;
	unsigned long k = 0;
	uint64_t seed = 0;
	bool have_k = false, mix = false;
	struct log l;
	FILE *f;
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
		case 'l': logpath = optarg; break;
		case 'i': image = optarg; break;
		case 'b': base = optarg; break;
		case 'o': out = optarg; break;
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
	    strcmp(cmd, "writethrough"))
		die("unknown command '%s'", cmd);
	if (!logpath || !image)
		die("%s: --log and --image are required", cmd);
	if (!strcmp(cmd, "build") && (!base || !out || !have_k))
		die("%s", "build: --base, --out and --barrier are required");
	f = fopen(logpath, "r");
	if (!f)
		die("%s: cannot open the log", logpath);
	load(f, logpath, image, &l);
	if (!strcmp(cmd, "list"))
		ret = cmd_list(&l);
	else if (!strcmp(cmd, "build"))
		ret = cmd_build(f, &l, base, out, k, mix, seed);
	else
		ret = cmd_writethrough(&l);
	fclose(f);
	free(l.v);
	return ret;
}
