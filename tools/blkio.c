/* tools/blkio.c - a host tool over storage/: write and check the seeded
 * pattern of guest/common/pattern.h in an image, zero or discard ranges,
 * show what the block layer sees, and measure host io_uring throughput (the
 * baseline the guest's figures are compared with).
 *
 *   blkio fill    --image P --format F --seed S [--offset O] [--length L]
 *   blkio verify  --image P --format F --seed S [--offset O] [--length L]
 *   blkio zero    --image P --format F --offset O --length L [--unmap]
 *   blkio discard --image P --format F --offset O --length L
 *   blkio info    --image P --format F
 *   blkio dump    --image P --format F --out FILE [--offset O] [--length L]
 *   blkio bench   --image P --format F --mode seqread|seqwrite|randread
 *                 [--bs B] [--qd Q] [--size N] [--seconds T]
 * common: [--bs B] [--qd Q] [--cache none|writeback]
 *
 * Sizes take K, M, G, T suffixes (powers of 1024).  Exit status: 0 done,
 * 1 a verify mismatch or an I/O error, 2 bad usage or an image that does
 * not open.  MBps in the bench line is 10^6 bytes per second.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "guest/common/pattern.h"
#include "storage/block.h"

#define MAX_QD 1024
#define MAX_BS (64u << 20)
#define HUGE_2M ((size_t)2 << 20)

enum cmd { CMD_FILL, CMD_VERIFY, CMD_ZERO, CMD_DISCARD, CMD_INFO, CMD_BENCH,
	   CMD_DUMP };
enum mode { MODE_SEQREAD, MODE_SEQWRITE, MODE_RANDREAD };

/* options, and which commands take them */
enum {
	O_IMAGE = 1 << 0, O_FORMAT = 1 << 1, O_SEED = 1 << 2,
	O_OFFSET = 1 << 3, O_LENGTH = 1 << 4, O_BS = 1 << 5, O_QD = 1 << 6,
	O_CACHE = 1 << 7, O_MODE = 1 << 8, O_SIZE = 1 << 9,
	O_SECONDS = 1 << 10, O_UNMAP = 1 << 11, O_OUT = 1 << 12,
	O_FIXED = 1 << 13,
};

static const struct {
	const char *name;
	unsigned allowed, required;
} cmds[] = {
	[CMD_FILL] = { "fill", O_IMAGE | O_FORMAT | O_SEED | O_OFFSET |
		       O_LENGTH | O_BS | O_QD | O_CACHE | O_FIXED,
		       O_IMAGE | O_FORMAT | O_SEED },
	[CMD_VERIFY] = { "verify", O_IMAGE | O_FORMAT | O_SEED | O_OFFSET |
			 O_LENGTH | O_BS | O_QD | O_CACHE | O_FIXED,
			 O_IMAGE | O_FORMAT | O_SEED },
	[CMD_ZERO] = { "zero", O_IMAGE | O_FORMAT | O_OFFSET | O_LENGTH |
		       O_CACHE | O_UNMAP,
		       O_IMAGE | O_FORMAT | O_OFFSET | O_LENGTH },
	[CMD_DISCARD] = { "discard", O_IMAGE | O_FORMAT | O_OFFSET |
			  O_LENGTH | O_CACHE,
			  O_IMAGE | O_FORMAT | O_OFFSET | O_LENGTH },
	[CMD_INFO] = { "info", O_IMAGE | O_FORMAT | O_CACHE,
		       O_IMAGE | O_FORMAT },
	[CMD_BENCH] = { "bench", O_IMAGE | O_FORMAT | O_BS | O_QD | O_CACHE |
			O_MODE | O_SIZE | O_SECONDS | O_FIXED,
			O_IMAGE | O_FORMAT | O_MODE },
	[CMD_DUMP] = { "dump", O_IMAGE | O_FORMAT | O_OFFSET | O_LENGTH | O_BS |
		       O_QD | O_CACHE | O_OUT | O_FIXED,
		       O_IMAGE | O_FORMAT | O_OUT },
};

static const struct option longopts[] = {
	{ "image", required_argument, NULL, 'i' },
	{ "format", required_argument, NULL, 'f' },
	{ "seed", required_argument, NULL, 's' },
	{ "offset", required_argument, NULL, 'o' },
	{ "length", required_argument, NULL, 'l' },
	{ "bs", required_argument, NULL, 'b' },
	{ "qd", required_argument, NULL, 'q' },
	{ "cache", required_argument, NULL, 'c' },
	{ "mode", required_argument, NULL, 'm' },
	{ "size", required_argument, NULL, 'S' },
	{ "seconds", required_argument, NULL, 'T' },
	{ "unmap", no_argument, NULL, 'u' },
	{ "out", required_argument, NULL, 'O' },
	{ "fixed-buffers", no_argument, NULL, 'F' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const char *const optnames[] = {
	"--image", "--format", "--seed", "--offset", "--length", "--bs",
	"--qd", "--cache", "--mode", "--size", "--seconds", "--unmap", "--out",
	"--fixed-buffers",
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: blkio fill|verify --image P --format raw|qcow2 --seed S\n"
"                         [--offset O] [--length L] [--bs B] [--qd Q]\n"
"       blkio zero    --image P --format F --offset O --length L [--unmap]\n"
"       blkio discard --image P --format F --offset O --length L\n"
"       blkio info    --image P --format F\n"
"       blkio dump    --image P --format F --out FILE [--offset O] [--length L]\n"
"       blkio bench   --image P --format F --mode seqread|seqwrite|randread\n"
"                     [--bs B] [--qd Q] [--size N] [--seconds T]\n"
"       every command: [--cache none|writeback]\n"
"       fill, verify, dump, bench: [--fixed-buffers] (io_uring registered buffers)\n"
"sizes take K, M, G, T suffixes (x1024)\n");
}

static void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "blkio: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (blkio --help)\n");
	exit(2);
}

/* A byte count: decimal or 0x hex, optional K/M/G/T suffix. */
static uint64_t parse_size(const char *opt, const char *s)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		goto bad;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		goto bad;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end)
		goto bad;
	if (shift && v > (UINT64_MAX >> shift))
		goto bad;
	return (uint64_t)v << shift;
bad:
	fprintf(stderr, "blkio: %s: bad number '%s'\n", opt, s);
	exit(2);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- a job: one range or a timed run, Q requests in flight ------------- */
struct job;

struct slot {
	struct blk_req req;
	struct iovec iov;
	uint8_t *buf;
	struct job *job;
};

struct job {
	struct blk_dev *d;
	struct io_engine *e;
	enum blk_op op;
	bool pattern, verify, random, timed, fixed;
	int outfd;			/* dump: bytes go here, at off - start */
	uint64_t seed;
	uint64_t start, end, next, bs;	/* [start, end), next to issue */
	uint64_t ops_left;		/* random: requests still to issue */
	uint64_t rng;
	double deadline;
	unsigned active;
	bool stop;
	/* results */
	uint64_t bytes, ops;
	int err;
	uint64_t err_off;
	uint64_t mismatch;		/* first bad offset, UINT64_MAX if none */
	uint8_t mismatch_got;		/* the byte found there */
};

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void slot_done(struct blk_req *r, int result);

/* Issue the slot's next request; false when the job has no more. */
static bool slot_start(struct slot *s)
{
	struct job *j = s->job;
	uint64_t off, len;

	if (j->stop)
		return false;
	if (j->timed && now() >= j->deadline)
		return false;
	if (j->random) {
		uint64_t blocks = (j->end - j->start) / j->bs;

		if (!j->timed && j->ops_left == 0)
			return false;
		j->ops_left--;
		off = j->start + (xorshift(&j->rng) % blocks) * j->bs;
		len = j->bs;
	} else {
		if (j->next >= j->end) {
			if (!j->timed)
				return false;
			j->next = j->start;	/* timed: go round again */
		}
		off = j->next;
		len = j->end - off < j->bs ? j->end - off : j->bs;
		j->next += len;
	}
	if (j->pattern)
		pattern_fill(s->buf, j->seed, off, len);
	memset(&s->req, 0, sizeof(s->req));
	s->req.op = j->op;
	s->req.offset = off;
	s->req.len = len;
	s->iov.iov_base = s->buf;
	s->iov.iov_len = len;
	s->req.iov = &s->iov;
	s->req.iovcnt = 1;
	s->req.done = slot_done;
	s->req.opaque = s;
	j->active++;
	blk_submit(j->d, &s->req);
	return true;
}

static void slot_done(struct blk_req *r, int result)
{
	struct slot *s = r->opaque;
	struct job *j = s->job;

	j->active--;
	if (result < 0) {
		if (!j->err || r->offset < j->err_off) {
			j->err = result;
			j->err_off = r->offset;
		}
		j->stop = true;
		return;
	}
	j->bytes += r->len;
	j->ops++;
	if (j->outfd >= 0) {
		ssize_t n = pwrite(j->outfd, s->buf, r->len,
				   (off_t)(r->offset - j->start));

		if (n != (ssize_t)r->len) {
			fprintf(stderr, "blkio: writing the dump: %s\n",
				n < 0 ? strerror(errno) : "short write");
			exit(1);
		}
	}
	if (j->verify) {
		uint64_t m = pattern_check(s->buf, j->seed, r->offset, r->len);

		if (m < r->len) {
			/* issued in order: whatever is unissued lies beyond */
			if (r->offset + m < j->mismatch) {
				j->mismatch = r->offset + m;
				j->mismatch_got = s->buf[m];
			}
			j->stop = true;
			return;
		}
	}
	slot_start(s);
}

/* Run j with qd slots of bs bytes; returns 0 or -errno of the engine. */
static int job_run(struct job *j, unsigned qd, unsigned align)
{
	struct slot *slots = calloc(qd, sizeof(*slots));
	size_t balign = align > 4096 ? align : 4096;
	size_t stride = (j->bs + balign - 1) / balign * balign;
	size_t total = stride * qd, maplen;
	uint8_t *map, *base;
	unsigned i;
	int ret = 0;

	if (!slots) {
		fprintf(stderr, "blkio: out of memory\n");
		exit(1);
	}
	/* One 2 MiB-aligned region with transparent huge pages, like the
	 * VMM's guest RAM: O_DIRECT then pins few pages per request, so the
	 * baseline is not handicapped against the guest. */
	maplen = total + HUGE_2M;
	map = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED) {
		fprintf(stderr, "blkio: out of memory for %u buffers of %"
			PRIu64 " bytes\n", qd, j->bs);
		exit(1);
	}
	base = (uint8_t *)(((uintptr_t)map + HUGE_2M - 1) & ~(uintptr_t)
			   (HUGE_2M - 1));
	madvise(base, total, MADV_HUGEPAGE);
	if (j->fixed) {
		int r = io_engine_register_memory(j->e, base, total);

		if (r) {
			fprintf(stderr, "blkio: --fixed-buffers: cannot register"
				" the buffers: %s\n", strerror(-r));
			exit(1);
		}
	}
	j->mismatch = UINT64_MAX;
	for (i = 0; i < qd; i++) {
		uint8_t *p = base + (size_t)i * stride;

		if (!j->pattern)	/* bench writes: any non-zero data */
			pattern_fill(p, 1, 0, j->bs);
		slots[i].buf = p;
		slots[i].job = j;
	}
	for (i = 0; i < qd; i++)
		if (!slot_start(&slots[i]))
			break;
	io_engine_submit(j->e);
	while (j->active > 0) {
		ret = io_engine_wait(j->e);
		if (ret < 0) {
			fprintf(stderr, "blkio: io_uring wait: %s\n",
				strerror(-ret));
			exit(1);
		}
		ret = 0;
	}
	munmap(map, maplen);
	free(slots);
	return ret;
}

/* One request with no data (FLUSH, DISCARD, WRITE_ZEROES), synchronously. */
struct one {
	struct blk_req req;
	int result;
	bool done;
};

static void one_done(struct blk_req *r, int result)
{
	struct one *o = (struct one *)r;

	o->result = result;
	o->done = true;
}

static int run_one(struct blk_dev *d, struct io_engine *e, enum blk_op op,
		   uint64_t off, uint64_t len, bool unmap)
{
	struct one o;

	memset(&o, 0, sizeof(o));
	o.req.op = op;
	o.req.offset = off;
	o.req.len = len;
	o.req.may_unmap = unmap;
	o.req.done = one_done;
	blk_submit(d, &o.req);
	io_engine_submit(e);
	while (!o.done) {
		int ret = io_engine_wait(e);

		if (ret < 0)
			return ret;
	}
	return o.result;
}

int main(int argc, char **argv)
{
	const char *image = NULL, *format = NULL, *cache = "writeback";
	const char *modestr = NULL, *outpath = NULL;
	uint64_t seed = 0, offset = 0, length = 0, bs = 1 << 20, size = 0;
	uint64_t qd = 8, seconds = 0;
	bool unmap = false, fixed = false;
	unsigned given = 0, i;
	enum cmd cmd;
	enum mode mode = MODE_SEQREAD;
	struct blk_opts bo;
	struct io_engine *e;
	struct blk_dev *d;
	char err[512];
	int c, fmt, status = 0;

	if (argc < 2)
		die_usage("no command given%s", "");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (cmd = 0; cmd < sizeof(cmds) / sizeof(cmds[0]); cmd++)
		if (!strcmp(argv[1], cmds[cmd].name))
			break;
	if (cmd == sizeof(cmds) / sizeof(cmds[0]))
		die_usage("unknown command '%s'", argv[1]);

	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		unsigned bit;

		switch (c) {
		case 'i': bit = O_IMAGE; image = optarg; break;
		case 'f': bit = O_FORMAT; format = optarg; break;
		case 's': bit = O_SEED; seed = parse_size("--seed", optarg);
			break;
		case 'o': bit = O_OFFSET;
			offset = parse_size("--offset", optarg); break;
		case 'l': bit = O_LENGTH;
			length = parse_size("--length", optarg); break;
		case 'b': bit = O_BS; bs = parse_size("--bs", optarg); break;
		case 'q': bit = O_QD; qd = parse_size("--qd", optarg); break;
		case 'c': bit = O_CACHE; cache = optarg; break;
		case 'm': bit = O_MODE; modestr = optarg; break;
		case 'S': bit = O_SIZE; size = parse_size("--size", optarg);
			break;
		case 'T': bit = O_SECONDS;
			seconds = parse_size("--seconds", optarg); break;
		case 'u': bit = O_UNMAP; unmap = true; break;
		case 'O': bit = O_OUT; outpath = optarg; break;
		case 'F': bit = O_FIXED; fixed = true; break;
		case 'h': usage(stdout); return 0;
		case ':':
			die_usage("option %s needs a value", argv[optind - 1]);
			return 2;
		default:
			die_usage("unknown option '%s'", argv[optind - 1]);
			return 2;
		}
		if (!(cmds[cmd].allowed & bit)) {
			fprintf(stderr, "blkio: %s does not take %s\n",
				cmds[cmd].name,
				optnames[__builtin_ctz(bit)]);
			return 2;
		}
		given |= bit;
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	for (i = 0; i < sizeof(optnames) / sizeof(optnames[0]); i++) {
		if ((cmds[cmd].required & (1u << i)) && !(given & (1u << i))) {
			fprintf(stderr, "blkio: %s needs %s\n", cmds[cmd].name,
				optnames[i]);
			return 2;
		}
	}
	fmt = blk_format_parse(format);
	if (fmt < 0)
		die_usage("unknown format '%s' (raw or qcow2)", format);
	if (strcmp(cache, "none") && strcmp(cache, "writeback"))
		die_usage("unknown cache mode '%s' (none or writeback)", cache);
	if (modestr) {
		if (!strcmp(modestr, "seqread"))
			mode = MODE_SEQREAD;
		else if (!strcmp(modestr, "seqwrite"))
			mode = MODE_SEQWRITE;
		else if (!strcmp(modestr, "randread"))
			mode = MODE_RANDREAD;
		else
			die_usage("unknown mode '%s' (seqread, seqwrite, "
				  "randread)", modestr);
	}
	if (bs == 0 || bs > MAX_BS) {
		fprintf(stderr, "blkio: --bs must be 1 .. %u\n", MAX_BS);
		return 2;
	}
	if (qd == 0 || qd > MAX_QD) {
		fprintf(stderr, "blkio: --qd must be 1 .. %u\n", MAX_QD);
		return 2;
	}

	e = io_engine_create((unsigned)qd < 16 ? 16 : (unsigned)qd, err,
			     sizeof(err));
	if (!e) {
		fprintf(stderr, "blkio: %s\n", err);
		return 1;
	}
	memset(&bo, 0, sizeof(bo));
	bo.path = image;
	bo.format = (enum blk_format)fmt;
	bo.cache = strcmp(cache, "none") ? BLK_CACHE_WRITEBACK : BLK_CACHE_NONE;
	bo.readonly = cmd == CMD_VERIFY || cmd == CMD_INFO || cmd == CMD_DUMP ||
		      (cmd == CMD_BENCH && mode != MODE_SEQWRITE);
	d = blk_open(&bo, e, err, sizeof(err));
	if (!d) {
		fprintf(stderr, "blkio: %s\n", err);
		io_engine_destroy(e);
		return 2;
	}

	if (cmd == CMD_INFO) {
		/* opened read-only: discard/write-zeroes support is not
		 * probed, so not shown */
		printf("format: %s\nvirtual-size: %" PRIu64 "\nalignment: %u\n"
		       "cache: %s\n", format, blk_size(d), blk_alignment(d),
		       cache);
		goto out;
	}

	{
		uint64_t dsize = blk_size(d), al = blk_alignment(d);

		if (cmd == CMD_BENCH) {
			offset = 0;
			length = (given & O_SIZE) ? size : dsize;
			if (length == 0)
				die_usage("%s: --size must not be 0", "bench");
		} else if (!(given & O_LENGTH)) {
			length = offset < dsize ? dsize - offset : 0;
		}
		if (offset > dsize || length > dsize - offset) {
			fprintf(stderr, "blkio: %s: range %" PRIu64 "+%" PRIu64
				" is beyond the image size %" PRIu64 "\n",
				image, offset, length, dsize);
			status = 2;
			goto out;
		}
		if (al > 1 && (offset % al || length % al || bs % al)) {
			fprintf(stderr, "blkio: with cache=%s, offset, length "
				"and bs must be multiples of %" PRIu64 "\n",
				cache, al);
			status = 2;
			goto out;
		}
		if (cmd == CMD_BENCH && length < bs) {
			fprintf(stderr, "blkio: bench: --size %" PRIu64
				" is smaller than --bs %" PRIu64 "\n",
				length, bs);
			status = 2;
			goto out;
		}
	}

	if (cmd == CMD_ZERO || cmd == CMD_DISCARD) {
		int ret = run_one(d, e, cmd == CMD_ZERO ? BLK_OP_WRITE_ZEROES
							: BLK_OP_DISCARD,
				  offset, length, unmap);

		if (!ret)
			ret = run_one(d, e, BLK_OP_FLUSH, 0, 0, false);
		if (ret) {
			fprintf(stderr, "blkio: %s: %s %" PRIu64 "+%" PRIu64
				" failed: %s\n", image, cmds[cmd].name, offset,
				length, strerror(-ret));
			status = 1;
		}
		goto out;
	}

	{
		struct job j;
		double t0, t1;

		memset(&j, 0, sizeof(j));
		j.outfd = -1;
		if (cmd == CMD_DUMP) {
			j.outfd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC |
				       O_CLOEXEC, 0644);
			if (j.outfd < 0 || ftruncate(j.outfd, (off_t)length)) {
				fprintf(stderr, "blkio: %s: %s\n", outpath,
					strerror(errno));
				status = 2;
				goto out;
			}
		}
		j.d = d;
		j.e = e;
		j.fixed = fixed;
		j.seed = seed;
		j.start = j.next = offset;
		j.end = offset + length;
		j.bs = bs;
		if (cmd == CMD_FILL) {
			j.op = BLK_OP_WRITE;
			j.pattern = true;
		} else if (cmd == CMD_VERIFY) {
			j.op = BLK_OP_READ;
			j.verify = true;
		} else if (cmd == CMD_DUMP) {
			j.op = BLK_OP_READ;
		} else {
			j.op = mode == MODE_SEQWRITE ? BLK_OP_WRITE
						     : BLK_OP_READ;
			j.random = mode == MODE_RANDREAD;
			j.end = offset + length - (j.random ? length % bs : 0);
			j.ops_left = length / bs;
			j.rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)time(NULL);
			j.timed = seconds > 0;
		}
		t0 = now();
		j.deadline = t0 + (double)seconds;
		job_run(&j, (unsigned)qd, blk_alignment(d));
		t1 = now();
		if (!j.err && cmd == CMD_FILL)
			j.err = run_one(d, e, BLK_OP_FLUSH, 0, 0, false);
		if (j.outfd >= 0 && close(j.outfd) < 0 && !j.err) {
			fprintf(stderr, "blkio: %s: %s\n", outpath,
				strerror(errno));
			status = 1;
		}
		if (j.err) {
			fprintf(stderr, "blkio: %s: %s at offset %" PRIu64
				" failed: %s\n", image,
				j.op == BLK_OP_READ ? "read" : "write",
				j.err_off, strerror(-j.err));
			status = 1;
		} else if (j.mismatch != UINT64_MAX) {
			fprintf(stderr, "blkio: %s: verify failed: first "
				"mismatch at offset %" PRIu64 " (expected "
				"0x%02x, found 0x%02x)\n", image, j.mismatch,
				pattern_byte(seed, j.mismatch), j.mismatch_got);
			status = 1;
		} else if (cmd == CMD_BENCH) {
			double secs = t1 - t0;

			if (secs <= 0)
				secs = 1e-9;
			printf("{\"tool\":\"blkio\",\"mode\":\"%s\",\"bs\":%"
			       PRIu64 ",\"qd\":%" PRIu64 ",\"bytes\":%" PRIu64
			       ",\"seconds\":%.3f,\"MBps\":%.1f,\"iops\":%.0f,"
			       "\"cache\":\"%s\",\"format\":\"%s\","
			       "\"fixed_buffers\":%s}\n",
			       modestr, bs, qd, j.bytes, secs,
			       (double)j.bytes / 1e6 / secs,
			       (double)j.ops / secs, cache, format,
			       fixed ? "true" : "false");
		} else if (cmd == CMD_DUMP) {
			if (!status)
				printf("%s: dumped %" PRIu64 " bytes at offset %"
				       PRIu64 " to %s\n", image, j.bytes,
				       offset, outpath);
		} else {
			printf("%s: %s %" PRIu64 " bytes at offset %" PRIu64
			       " (seed %" PRIu64 ")\n", image,
			       cmd == CMD_FILL ? "filled" : "verified",
			       j.bytes, offset, seed);
		}
	}
out:
	blk_close(d);
	io_engine_destroy(e);
	return status;
}
