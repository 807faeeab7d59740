/* guest/kernel/cmd_blk.c - block device commands (see README.md). */
#include "virtio_blk.h"
#include "guest/common/pattern.h"

static int wait_arg(struct cmd_args *a, struct blk_dev *d);

static struct blk_dev *dev_arg(struct cmd_args *a)
{
	uint64_t n = arg_num(a, "dev", 0);
	struct blk_dev *d;

	if (n == UINT64_MAX)
		return NULL;
	d = blk_get((unsigned)n);
	if (!d) {
		fail_why(a, "no virtio-blk device %lu (%u found)", n, nblk);
		return NULL;
	}
	if (!d->ok && blk_reinit(d) < 0) {
		fail_why(a, "device %lu unusable: %s", n, d->v.why);
		return NULL;
	}
	if (wait_arg(a, d) < 0)
		return NULL;
	return d;
}

/* wait=hybrid (default: spin=50 us, then halt for an interrupt), wait=irq
 * (halt at once) or wait=poll (spin only); spin=US */
static int wait_arg(struct cmd_args *a, struct blk_dev *d)
{
	char buf[16];
	const char *w = arg_str(a, "wait", "hybrid", buf, sizeof(buf));
	uint64_t spin = arg_num(a, "spin", BLK_SPIN_DEFAULT);

	if (spin == UINT64_MAX)
		return -1;
	if (!strcmp(w, "poll"))
		spin = BLK_SPIN_POLL;
	else if (!strcmp(w, "irq"))
		spin = 0;
	else if (strcmp(w, "hybrid"))
		return fail_why(a, "wait must be poll, irq or hybrid");
	blk_set_wait(d, spin);
	return 0;
}

static void done_with(struct blk_dev *d)
{
	if (d)
		blk_set_wait(d, BLK_SPIN_POLL);
}

/* value x1000 as "12.345" */
static const char *fix3(char *buf, size_t len, uint64_t x1000)
{
	ksnprintf(buf, len, "%lu.%03lu", x1000 / 1000, x1000 % 1000);
	return buf;
}

static void print_info(struct blk_dev *d)
{
	char serial[24] = "-";
	uint8_t *id = page_alloc(1);

	if (id && blk_rw(d, VIRTIO_BLK_T_GET_ID, 0, id, 20) == 0) {
		memcpy(serial, id, 20);
		serial[20] = 0;
	}
	kprintf("blkinfo: dev=%u base=%#lx irq=%u sectors=%lu bytes=%lu "
		"blk_size=%u ro=%d flush=%d size_max=%u seg_max=%u queue=%u "
		"queues=%u indirect=%d event_idx=%d discard=%d write_zeroes=%d "
		"features=%#lx serial=%s\n",
		d->index, d->v.base, d->v.irq, d->capacity, d->capacity * 512,
		d->blk_size, d->ro, !!(d->v.features & (1ULL << VIRTIO_BLK_F_FLUSH)),
		d->size_max, d->seg_max, d->q->vq.qsize, d->nq,
		!!(d->v.features & (1ULL << VIRTIO_F_INDIRECT_DESC)),
		!!(d->v.features & (1ULL << VIRTIO_F_EVENT_IDX)),
		!!(d->v.features & (1ULL << VIRTIO_BLK_F_DISCARD)),
		!!(d->v.features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES)), d->v.features,
		serial[0] ? serial : "-");
}

/* blkinfo[:dev=N] - every device unless dev= is given */
static int cmd_blkinfo(struct cmd_args *a)
{
	char tmp[8];

	if (arg_str(a, "dev", NULL, tmp, sizeof(tmp))) {
		struct blk_dev *d = dev_arg(a);

		if (!d)
			return -1;
		print_info(d);
		return 0;
	}
	if (blk_probe() == 0)
		return fail_why(a, "no virtio-blk devices");
	for (unsigned i = 0; i < nblk; i++) {
		if (!blk_devs[i].ok) {
			kprintf("blkinfo: dev=%u unusable: %s\n", i,
				blk_devs[i].v.why);
			return fail_why(a, "device %u unusable", i);
		}
		print_info(&blk_devs[i]);
	}
	return 0;
}

#define CHECK_ST(st, what)						\
	do {								\
		int st_ = (st);						\
		if (st_ != VIRTIO_BLK_S_OK) {				\
			fail_why(a, "%s: %s", what, blk_status_name(st_)); \
			goto out;					\
		}							\
	} while (0)

/* blktest[:dev=N:wait=poll|irq|hybrid] - read sector 0, 8 sectors, sector 100; write sector
 * 1000, read it back, verify, restore it. */
static int cmd_blktest(struct cmd_args *a)
{
	struct blk_dev *d = dev_arg(a);
	uint8_t *one, *eight, *orig, *pat;
	uint64_t seed = rdtsc();
	int rc = -1;

	if (!d)
		return -1;
	one = page_alloc(1), eight = page_alloc(1);
	orig = page_alloc(1), pat = page_alloc(1);
	if (!one || !eight || !orig || !pat) {
		fail_why(a, "out of memory");
		goto out;
	}
	if (d->capacity < 1001) {
		fail_why(a, "disk too small (%lu sectors, need 1001)", d->capacity);
		goto out;
	}
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, 0, one, 512), "read sector 0");
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, 0, eight, 4096), "read 8 sectors");
	if (memcmp(one, eight, 512)) {
		fail_why(a, "sector 0 differs between a 1- and an 8-sector read");
		goto out;
	}
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, 100, one, 512), "read sector 100");
	if (d->ro) {
		kprintf("blktest: dev=%u is read-only: write part skipped\n",
			d->index);
		rc = 0;
		goto out;
	}
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, 1000, orig, 512), "read sector 1000");
	pattern_fill(pat, seed, 1000 * 512, 512);
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_OUT, 1000, pat, 512), "write sector 1000");
	memset(one, 0, 512);
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, 1000, one, 512), "read back sector 1000");
	if (memcmp(one, pat, 512)) {
		fail_why(a, "sector 1000 read back differs from what was written");
		goto out;
	}
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_OUT, 1000, orig, 512), "restore sector 1000");
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, 1000, one, 512), "re-read sector 1000");
	if (memcmp(one, orig, 512)) {
		fail_why(a, "sector 1000 not restored");
		goto out;
	}
	kprintf("blktest: dev=%u reads, write, read-back and restore ok "
		"(%lu notifies, %lu interrupts)\n", d->index, d->v.notifies, d->v.irqs);
	rc = 0;
out:
	done_with(d);
	return rc;
}

/* blkirq[:dev=N:n=8] - the interrupt path, deterministically: ask for an
 * interrupt before each read is kicked, then halt until it arrives (the
 * 10 ms backstop timer lets us give up after 1 s). */
static int cmd_blkirq(struct cmd_args *a)
{
	struct blk_dev *d = dev_arg(a);
	uint64_t n = arg_num(a, "n", 8), irqs0;
	uint8_t *buf = page_alloc(1);
	int rc = -1;

	if (!d || n == UINT64_MAX)
		goto out;
	if (!buf) {
		fail_why(a, "out of memory");
		goto out;
	}
	blk_set_wait(d, 0);	/* route the IRQ, start the backstop timer */
	irqs0 = d->v.irqs;
	for (uint64_t i = 0; i < n; i++) {
		struct blk_req *r = blk_req_get(d);
		struct blk_seg seg = { (uint64_t)buf, 512 };
		uint64_t before = d->v.irqs, t0 = rdtsc();

		if (!r || blk_queue(d, r, VIRTIO_BLK_T_IN, i, &seg, 1, true) < 0) {
			fail_why(a, "cannot queue");
			goto out;
		}
		blk_arm_irq(d, true);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		blk_kick(d);
		while (d->v.irqs == before && tsc_us(rdtsc() - t0) < 1000000)
			irq_wait();
		blk_arm_irq(d, false);
		if (d->v.irqs == before) {
			fail_why(a, "no interrupt within 1 s for read %lu "
				 "(status %s)", i, blk_status_name(r->result));
			goto out;
		}
		if (blk_wait(d, r, 1000000) != VIRTIO_BLK_S_OK) {
			fail_why(a, "read %lu: %s", i, blk_status_name(r->result));
			goto out;
		}
		blk_req_put(d, r);
	}
	kprintf("blkirq: dev=%u %lu reads, %lu interrupts\n", d->index, n,
		d->v.irqs - irqs0);
	rc = 0;
out:
	done_with(d);
	return rc;
}

/* Move [off, off+len) between buf and the disk in 64 KiB requests spread
 * over all queues (chunk k on queue (k + shift) % nq), up to qd in flight
 * per queue.  Returns 0 or a status; counts requests per queue. */
#define MQ_CHUNK	65536
static int mq_transfer(struct blk_dev *d, bool write, uint8_t *buf,
		       uint64_t off, uint64_t len, unsigned qd, unsigned shift,
		       uint64_t *per_queue)
{
	uint64_t nchunks = len / MQ_CHUNK, next[BLK_MAX_QUEUES], done = 0;
	unsigned inflight[BLK_MAX_QUEUES] = { 0 };
	uint64_t t0 = rdtsc();

	for (unsigned qi = 0; qi < d->nq; qi++)	/* first chunk of queue qi */
		next[qi] = (qi + d->nq - shift % d->nq) % d->nq;
	while (done < nchunks) {
		for (unsigned qi = 0; qi < d->nq; qi++) {
			blk_select_queue(d, qi);
			while (inflight[qi] < qd && next[qi] < nchunks) {
				struct blk_req *r = blk_req_get(d);
				struct blk_seg seg = {
					(uint64_t)buf + next[qi] * MQ_CHUNK, MQ_CHUNK };

				if (!r || blk_queue(d, r, write ? VIRTIO_BLK_T_OUT :
						    VIRTIO_BLK_T_IN,
						    (off + next[qi] * MQ_CHUNK) / 512,
						    &seg, 1, !write) < 0)
					return BLK_S_TIMEOUT;
				inflight[qi]++;
				per_queue[qi]++;
				next[qi] += d->nq;
			}
			blk_kick(d);
		}
		for (unsigned qi = 0; qi < d->nq; qi++) {
			blk_select_queue(d, qi);
			if (!blk_poll(d))
				continue;
			for (unsigned i = 0; i < d->q->vq.qsize; i++) {
				struct blk_req *r = &d->q->reqs[i];

				if (!r->in_use || r->result == BLK_S_PENDING)
					continue;
				if (r->result != VIRTIO_BLK_S_OK) {
					int st = r->result;

					blk_select_queue(d, 0);
					return st;
				}
				blk_req_put(d, r);
				inflight[qi]--;
				done++;
			}
		}
		if (tsc_us(rdtsc() - t0) > 30000000) {
			blk_select_queue(d, 0);
			return BLK_S_TIMEOUT;
		}
		cpu_relax();
	}
	blk_select_queue(d, 0);
	return VIRTIO_BLK_S_OK;
}

/* blkmq[:dev=N:qd=4:off=0:len=4M:seed=S] - every request queue (MQ) at
 * once: write the pattern in 64 KiB requests spread over all queues, read
 * it back with each chunk on a different queue than it was written on,
 * verify.  Overwrites the range (the host can check the pattern). */
static int cmd_blkmq(struct cmd_args *a)
{
	struct blk_dev *d = dev_arg(a);
	uint64_t qd = arg_num(a, "qd", 4), off = arg_num(a, "off", 0);
	uint64_t len = arg_num(a, "len", 4 << 20), seed = arg_num(a, "seed", 1);
	uint64_t wq[BLK_MAX_QUEUES] = { 0 }, rq[BLK_MAX_QUEUES] = { 0 }, bad;
	uint8_t *buf;
	int st, rc = -1;

	if (!d || qd == UINT64_MAX || off == UINT64_MAX || len == UINT64_MAX ||
	    seed == UINT64_MAX)
		goto out;
	if (off % 512 || len % MQ_CHUNK || !len || !qd || qd > 64 ||
	    off + len > d->capacity * 512) {
		fail_why(a, "need off%%512 == 0, len a multiple of 64K inside "
			 "the disk, qd 1..64");
		goto out;
	}
	buf = page_alloc(len / PAGE_SIZE);
	if (!buf) {
		fail_why(a, "out of memory");
		goto out;
	}
	blk_set_wait(d, BLK_SPIN_POLL);
	pattern_fill(buf, seed, off, len);
	st = mq_transfer(d, true, buf, off, len, (unsigned)qd, 0, wq);
	if (st) {
		fail_why(a, "write: %s", blk_status_name(st));
		goto out;
	}
	memset(buf, 0, len);
	st = mq_transfer(d, false, buf, off, len, (unsigned)qd, 1, rq);
	if (st) {
		fail_why(a, "read: %s", blk_status_name(st));
		goto out;
	}
	bad = pattern_check(buf, seed, off, len);
	if (bad != len) {
		fail_why(a, "mismatch at byte %lu", off + bad);
		goto out;
	}
	kprintf("blkmq: dev=%u queues=%u writes per queue %lu/%lu/%lu/%lu, "
		"reads %lu/%lu/%lu/%lu, data ok\n", d->index, d->nq, wq[0], wq[1],
		wq[2], wq[3], rq[0], rq[1], rq[2], rq[3]);
	rc = 0;
out:
	done_with(d);
	return rc;
}

/* blkbytes[:dev=N:off=1M] - the unaligned byte-level helpers: writes at odd
 * offsets and lengths, each checked against a shadow copy of the whole 64 KiB
 * area (so neighbours must be untouched too); the area is restored. */
static int cmd_blkbytes(struct cmd_args *a)
{
	static const struct { uint32_t off, len; } cases[] = {
		{ 1, 1 }, { 511, 2 }, { 1000, 5000 }, { 4096 + 7, 3 * 512 + 100 },
		{ 8192, 512 }, { 20003, 20000 }, { 65535, 1 }, { 0, 65536 },
	};
	struct blk_dev *d = dev_arg(a);
	uint64_t base = arg_num(a, "off", 1 << 20), seed = rdtsc();
	uint8_t *orig, *shadow, *buf, *rd;
	int rc = -1;

	if (!d || base == UINT64_MAX)
		return -1;
	base &= ~511ULL;
	orig = page_alloc(16), shadow = page_alloc(16);
	buf = page_alloc(16), rd = page_alloc(16);
	if (!orig || !shadow || !buf || !rd) {
		fail_why(a, "out of memory");
		goto out;
	}
	if (d->ro || (base + 65536) / 512 > d->capacity) {
		fail_why(a, "need a writable disk of at least %lu bytes",
			 base + 65536);
		goto out;
	}
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, base / 512, orig, 65536), "save area");
	memcpy(shadow, orig, 65536);
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t off = base + cases[i].off, len = cases[i].len;

		pattern_fill(buf, seed + i, off, len);
		CHECK_ST(blk_pwrite(d, off, buf, len), "pwrite");
		memcpy(shadow + cases[i].off, buf, len);
		memset(rd, 0, len);
		CHECK_ST(blk_pread(d, off, rd, len), "pread");
		if (pattern_check(rd, seed + i, off, len) != len) {
			fail_why(a, "pread of [%lu,+%lu) differs from pwrite", off,
				 len);
			goto out;
		}
		CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, base / 512, rd, 65536),
			 "read area");
		if (memcmp(rd, shadow, 65536)) {
			fail_why(a, "after pwrite [%lu,+%lu) the area differs from "
				 "its shadow (neighbours touched?)", off, len);
			goto out;
		}
	}
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_OUT, base / 512, orig, 65536),
		 "restore area");
	kprintf("blkbytes: dev=%u %u unaligned cases ok\n", d->index,
		(unsigned)ARRAY_SIZE(cases));
	rc = 0;
out:
	done_with(d);
	return rc;
}

/* Queue one request over explicit segments and wait for it. */
static int rw_segs(struct blk_dev *d, uint32_t type, uint64_t sector,
		   const struct blk_seg *segs, unsigned n)
{
	struct blk_req *r = blk_req_get(d);
	int st;

	if (!r)
		return BLK_S_TIMEOUT;
	if (blk_queue(d, r, type, sector, segs, n, type == VIRTIO_BLK_T_IN) < 0) {
		blk_req_put(d, r);
		return BLK_S_TIMEOUT;
	}
	blk_kick(d);
	st = blk_wait(d, r, 10000000);
	if (st != BLK_S_TIMEOUT && st != BLK_S_NEEDS_RESET)
		blk_req_put(d, r);
	return st;
}

/* blkalign[:dev=N:off=2M] - virtio puts no alignment rule on guest buffers:
 * reads and writes through buffers at odd memory addresses, and through
 * chains of odd-sized segments (e.g. 100 + 400 + 12 bytes for a sector),
 * must work on any backend (cache=none included).  Restores the area. */
static int cmd_blkalign(struct cmd_args *a)
{
	static const uint32_t mem_off[] = { 1, 7, 511, 513, 2048, 4095 };
	static const uint32_t split[][4] = {
		{ 100, 400, 12, 0 }, { 1, 511, 0, 0 }, { 4095, 1, 3584, 512 },
		{ 511, 1, 511, 513 },
	};
	struct blk_dev *d = dev_arg(a);
	uint64_t off = arg_num(a, "off", 2 << 20), seed = rdtsc(), sector;
	uint8_t *orig, *buf, *chk;
	int rc = -1;

	if (!d || off == UINT64_MAX)
		return -1;
	off &= ~511ULL;
	sector = off / 512;
	orig = page_alloc(4), buf = page_alloc(5), chk = page_alloc(4);
	if (!orig || !buf || !chk) {
		fail_why(a, "out of memory");
		goto out;
	}
	if (d->ro || off + 16384 > d->capacity * 512) {
		fail_why(a, "need a writable disk of at least %lu bytes",
			 off + 16384);
		goto out;
	}
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, sector, orig, 16384), "save area");
	for (unsigned i = 0; i < ARRAY_SIZE(mem_off); i++) {
		uint8_t *p = buf + mem_off[i];
		struct blk_seg seg = { (uint64_t)p, 8192 };

		int st;

		pattern_fill(p, seed + i, off, 8192);
		st = rw_segs(d, VIRTIO_BLK_T_OUT, sector, &seg, 1);
		if (st) {
			fail_why(a, "write from memory offset %u: %s", mem_off[i],
				 blk_status_name(st));
			goto out;
		}
		CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, sector, chk, 8192), "read back");
		if (pattern_check(chk, seed + i, off, 8192) != 8192) {
			fail_why(a, "write from memory offset %u: wrong data",
				 mem_off[i]);
			goto out;
		}
		memset(p, 0, 8192);
		CHECK_ST(rw_segs(d, VIRTIO_BLK_T_IN, sector, &seg, 1),
			 "read into an odd address");
		if (pattern_check(p, seed + i, off, 8192) != 8192) {
			fail_why(a, "read into memory offset %u: wrong data",
				 mem_off[i]);
			goto out;
		}
	}
	for (unsigned i = 0; i < ARRAY_SIZE(split); i++) {
		struct blk_seg segs[4];
		uint64_t total = 0, pos = 3;	/* odd start in memory */
		unsigned n = 0;

		for (; n < 4 && split[i][n]; n++) {
			segs[n].addr = (uint64_t)buf + pos;
			segs[n].len = split[i][n];
			pos += split[i][n] + 5;	/* gaps between segments */
			total += split[i][n];
		}
		pattern_fill(chk, seed + 100 + i, off, total);
		for (unsigned k = 0, o = 0; k < n; o += segs[k].len, k++)
			memcpy((void *)segs[k].addr, chk + o, segs[k].len);
		CHECK_ST(rw_segs(d, VIRTIO_BLK_T_OUT, sector, segs, n),
			 "write of odd segments");
		CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, sector, chk, total), "read back");
		if (pattern_check(chk, seed + 100 + i, off, total) != total) {
			fail_why(a, "odd-segment write %u: wrong data", i);
			goto out;
		}
		for (unsigned k = 0; k < n; k++)
			memset((void *)segs[k].addr, 0, segs[k].len);
		CHECK_ST(rw_segs(d, VIRTIO_BLK_T_IN, sector, segs, n),
			 "read into odd segments");
		for (unsigned k = 0, o = 0; k < n; o += segs[k].len, k++)
			if (pattern_check((void *)segs[k].addr, seed + 100 + i,
					  off + o, segs[k].len) != segs[k].len) {
				fail_why(a, "odd-segment read %u: wrong data in "
					 "segment %u", i, k);
				goto out;
			}
	}
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_OUT, sector, orig, 16384), "restore area");
	kprintf("blkalign: dev=%u %u odd addresses, %u odd segment chains ok\n",
		d->index, (unsigned)ARRAY_SIZE(mem_off),
		(unsigned)ARRAY_SIZE(split));
	rc = 0;
out:
	done_with(d);
	return rc;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* One blkperf run: keep qd requests of bs bytes in flight until bytes are
 * done.  Sequential from offset 0, or random bs-aligned over span. */
static int perf_run(struct cmd_args *a, struct blk_dev *d, const char *mode,
		    uint64_t bs, uint64_t qd, uint64_t bytes, uint64_t span)
{
	bool write = !strcmp(mode, "write") || !strcmp(mode, "randwrite");
	bool rnd = !strncmp(mode, "rand", 4);
	uint64_t nreq = bytes / bs, issued = 0, done = 0, t0, us, n;
	uint64_t n0 = d->v.notifies, i0 = d->v.irqs, rng = rdtsc() | 1;
	uint64_t max = blk_max_req(d), blocks = span / bs;
	uint8_t *bufs;
	struct blk_req *reqs[256];
	char f1[32], f2[32];

	if (bs > max)
		return fail_why(a, "bs %lu above the device's request limit %lu",
				bs, max);
	if (qd > d->q->vq.qsize || qd > ARRAY_SIZE(reqs))
		return fail_why(a, "qd %lu above the queue size %u", qd, d->q->vq.qsize);
	if (nreq == 0 || blocks == 0)
		return fail_why(a, "size/span smaller than bs");
	if (!rnd && bytes > span)
		return fail_why(a, "size %lu beyond the disk (%lu bytes)", bytes,
				span);
	bufs = page_alloc(qd * bs / PAGE_SIZE);
	if (!bufs)
		return fail_why(a, "no memory for %lu x %lu bytes", qd, bs);
	for (uint64_t i = 0; i < qd; i++) {
		reqs[i] = blk_req_get(d);
		if (!reqs[i])
			return fail_why(a, "no free request slot");
		reqs[i]->cookie = bufs + i * bs;
		reqs[i]->result = VIRTIO_BLK_S_OK;	/* "free to issue" */
	}

	t0 = rdtsc();
	while (done < nreq) {
		bool queued = false;

		for (uint64_t i = 0; i < qd; i++) {
			struct blk_req *r = reqs[i];
			struct blk_seg seg;
			uint64_t off;

			if (r->result == BLK_S_PENDING)
				continue;
			if (r->result != VIRTIO_BLK_S_OK)
				return fail_why(a, "%s request failed: %s", mode,
						blk_status_name(r->result));
			if (issued >= nreq)
				continue;
			off = rnd ? (xorshift(&rng) % blocks) * bs : issued * bs;
			seg.addr = (uint64_t)r->cookie;
			seg.len = (uint32_t)bs;
			if (blk_queue(d, r, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
				      off / 512, &seg, 1, !write) < 0)
				return fail_why(a, "ring full");
			issued++;
			queued = true;
		}
		if (queued)
			blk_kick(d);
		while (!(n = blk_poll(d))) {
			if (tsc_us(rdtsc() - t0) > 120000000)
				return fail_why(a, "%s: no completion for too long",
						mode);
			blk_wait_used(d);
		}
		done += n;
	}
	us = tsc_us(rdtsc() - t0);
	if (!us)
		us = 1;
	for (uint64_t i = 0; i < qd; i++) {
		if (reqs[i]->result != VIRTIO_BLK_S_OK)
			return fail_why(a, "%s request failed: %s", mode,
					blk_status_name(reqs[i]->result));
		blk_req_put(d, reqs[i]);
	}
	kprintf("BLKPERF dev=%u mode=%s bs=%lu qd=%lu wait=%s bytes=%lu usec=%lu "
		"MBps=%s IOPS=%lu reqs=%lu notifies=%lu irqs=%lu "
		"exits_per_req=%s\n", d->index, mode, bs, qd,
		d->spin_us == BLK_SPIN_POLL ? "poll" : d->spin_us ? "hybrid" : "irq",
		nreq * bs, us,
		fix3(f1, sizeof(f1), nreq * bs * 1000 / us),
		nreq * 1000000 / us, nreq, d->v.notifies - n0, d->v.irqs - i0,
		fix3(f2, sizeof(f2),
		     (d->v.notifies - n0 + 2 * (d->v.irqs - i0)) * 1000 / nreq));
	return 0;
}

/* blkperf[:dev=0:mode=read|write|randread|randwrite|all:bs=1M:qd=16:size=256M:
 *         span=DISK:wait=hybrid:spin=50] */
static int cmd_blkperf(struct cmd_args *a)
{
	struct blk_dev *d = dev_arg(a);
	char mode[16];
	const char *m;
	uint64_t bs, qd, size, span, disk;
	int rc = 0;

	if (!d)
		return -1;
	m = arg_str(a, "mode", "all", mode, sizeof(mode));
	disk = d->capacity * 512;
	bs = arg_num(a, "bs", !strncmp(m, "rand", 4) ? 4096 : 1 << 20);
	qd = arg_num(a, "qd", 16);
	size = arg_num(a, "size", disk < (256 << 20) ? disk : 256 << 20);
	span = arg_num(a, "span", disk);
	if (bs == UINT64_MAX || qd == UINT64_MAX || size == UINT64_MAX ||
	    span == UINT64_MAX)
		rc = -1;
	else if (bs == 0 || bs % 4096 || qd == 0)
		rc = fail_why(a, "bs must be a multiple of 4K and qd > 0");
	else if (span > disk)
		rc = fail_why(a, "span beyond the disk");
	else if (!strcmp(m, "all")) {
		rc = perf_run(a, d, "read", bs, qd, size, span);
		if (!rc && !d->ro)
			rc = perf_run(a, d, "write", bs, qd, size, span);
		if (!rc)
			rc = perf_run(a, d, "randread", 4096, qd, size / 16, span);
	} else if (!strcmp(m, "read") || !strcmp(m, "write") ||
		   !strcmp(m, "randread") || !strcmp(m, "randwrite")) {
		rc = perf_run(a, d, m, bs, qd, size, span);
	} else {
		rc = fail_why(a, "mode must be read, write, randread, randwrite "
			      "or all");
	}
	done_with(d);
	return rc;
}

/* Pattern range arguments: seed (default 1), off (default 0), len (default
 * to the end of the disk). */
static int range_args(struct cmd_args *a, struct blk_dev *d, uint64_t *seed,
		      uint64_t *off, uint64_t *len)
{
	uint64_t disk = d->capacity * 512;

	*seed = arg_num(a, "seed", 1);
	*off = arg_num(a, "off", 0);
	if (*seed == UINT64_MAX || *off == UINT64_MAX)
		return -1;
	if (*off > disk)
		return fail_why(a, "off beyond the disk (%lu bytes)", disk);
	*len = arg_num(a, "len", disk - *off);
	if (*len == UINT64_MAX)
		return -1;
	if (*off + *len > disk || *off + *len < *off)
		return fail_why(a, "range beyond the disk (%lu bytes)", disk);
	return 0;
}

#define CHUNK	(1 << 20)

/* blkfill:dev=N:seed=S:off=O:len=L - write the pattern.h pattern */
static int cmd_blkfill(struct cmd_args *a)
{
	struct blk_dev *d = dev_arg(a);
	uint64_t seed, off, len, pos;
	uint8_t *buf;
	int rc = -1;

	if (!d || range_args(a, d, &seed, &off, &len) < 0)
		goto out;
	buf = page_alloc(CHUNK / PAGE_SIZE);
	if (!buf) {
		fail_why(a, "out of memory");
		goto out;
	}
	for (pos = off; pos < off + len;) {
		/* chunks end on CHUNK boundaries so the middle is aligned */
		uint64_t l = CHUNK - pos % CHUNK;

		if (l > off + len - pos)
			l = off + len - pos;
		pattern_fill(buf, seed, pos, l);
		CHECK_ST(blk_pwrite(d, pos, buf, l), "write");
		pos += l;
	}
	kprintf("blkfill: dev=%u seed=%lu off=%lu len=%lu written\n", d->index,
		seed, off, len);
	rc = 0;
out:
	done_with(d);
	return rc;
}

/* blkverify:dev=N:seed=S:off=O:len=L - check the pattern */
static int cmd_blkverify(struct cmd_args *a)
{
	struct blk_dev *d = dev_arg(a);
	uint64_t seed, off, len, pos;
	uint8_t *buf, *want;
	int rc = -1;

	if (!d || range_args(a, d, &seed, &off, &len) < 0)
		goto out;
	buf = page_alloc(CHUNK / PAGE_SIZE);
	want = page_alloc(CHUNK / PAGE_SIZE);
	if (!buf || !want) {
		fail_why(a, "out of memory");
		goto out;
	}
	for (pos = off; pos < off + len;) {
		uint64_t l = CHUNK - pos % CHUNK, bad;

		if (l > off + len - pos)
			l = off + len - pos;
		CHECK_ST(blk_pread(d, pos, buf, l), "read");
		/* word-wise fill + compare: 8x fewer pattern words than a
		 * byte-wise check */
		pattern_fill(want, seed, pos, l);
		bad = memcmp(buf, want, l) ? pattern_check(buf, seed, pos, l) : l;
		if (bad != l) {
			fail_why(a, "mismatch at byte %lu: %#x, expected %#x",
				 pos + bad, buf[bad], pattern_byte(seed, pos + bad));
			goto out;
		}
		pos += l;
	}
	kprintf("blkverify: dev=%u seed=%lu off=%lu len=%lu ok\n", d->index,
		seed, off, len);
	rc = 0;
out:
	done_with(d);
	return rc;
}

/* blkro[:dev=N] - the device says RO, a write fails with IOERR, and the
 * sector is unchanged. */
static int cmd_blkro(struct cmd_args *a)
{
	struct blk_dev *d = dev_arg(a);
	uint8_t *before, *buf;
	int st, rc = -1;

	if (!d)
		return -1;
	before = page_alloc(1), buf = page_alloc(1);
	if (!before || !buf) {
		fail_why(a, "out of memory");
		goto out;
	}
	if (!d->ro) {
		fail_why(a, "device %u does not offer VIRTIO_BLK_F_RO", d->index);
		goto out;
	}
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, 0, before, 512), "read sector 0");
	for (unsigned i = 0; i < 512; i++)
		buf[i] = (uint8_t)~before[i];
	st = blk_rw(d, VIRTIO_BLK_T_OUT, 0, buf, 512);
	if (st != VIRTIO_BLK_S_IOERR) {
		fail_why(a, "write to a read-only disk: %s, expected IOERR",
			 blk_status_name(st));
		goto out;
	}
	CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, 0, buf, 512), "re-read sector 0");
	if (memcmp(before, buf, 512)) {
		fail_why(a, "sector 0 changed on a read-only disk");
		goto out;
	}
	kprintf("blkro: dev=%u write refused with IOERR, data unchanged\n",
		d->index);
	rc = 0;
out:
	done_with(d);
	return rc;
}

/* blkflush[:dev=N] - a FLUSH request completes OK */
static int cmd_blkflush(struct cmd_args *a)
{
	struct blk_dev *d = dev_arg(a);
	int rc = -1;

	if (!d)
		return -1;
	if (!(d->v.features & (1ULL << VIRTIO_BLK_F_FLUSH))) {
		fail_why(a, "device %u: VIRTIO_BLK_F_FLUSH not negotiated",
			 d->index);
		goto out;
	}
	CHECK_ST(blk_flush(d), "flush");
	kprintf("blkflush: dev=%u flushed\n", d->index);
	rc = 0;
out:
	done_with(d);
	return rc;
}

/* Sector-aligned off/len arguments (default: the whole disk). */
static int sector_range(struct cmd_args *a, struct blk_dev *d, uint64_t *off,
			uint64_t *len)
{
	uint64_t disk = d->capacity * 512;

	*off = arg_num(a, "off", 0);
	if (*off == UINT64_MAX)
		return -1;
	*len = arg_num(a, "len", *off < disk ? disk - *off : 0);
	if (*len == UINT64_MAX)
		return -1;
	if (*off % 512 || *len % 512 || *len == 0)
		return fail_why(a, "off and len must be multiples of 512, len > 0");
	if (*off + *len > disk || *off + *len < *off)
		return fail_why(a, "range beyond the disk (%lu bytes)", disk);
	return 0;
}

/* blkzero:dev=N:off=O:len=L[:unmap=1] - WRITE_ZEROES, then the range
 * reads back as zeroes */
static int cmd_blkzero(struct cmd_args *a)
{
	struct blk_dev *d = dev_arg(a);
	uint64_t off, len, unmap = arg_num(a, "unmap", 0);
	uint8_t *buf;
	int rc = -1;

	if (!d || unmap == UINT64_MAX || sector_range(a, d, &off, &len) < 0)
		goto out;
	if (!(d->v.features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES))) {
		fail_why(a, "device %u does not offer WRITE_ZEROES", d->index);
		goto out;
	}
	buf = page_alloc(CHUNK / PAGE_SIZE);
	if (!buf) {
		fail_why(a, "out of memory");
		goto out;
	}
	CHECK_ST(blk_discard_zero(d, VIRTIO_BLK_T_WRITE_ZEROES, off / 512,
				  len / 512, unmap == 1), "write zeroes");
	for (uint64_t pos = off; pos < off + len;) {
		uint64_t l = off + len - pos < CHUNK ? off + len - pos : CHUNK;

		CHECK_ST(blk_rw(d, VIRTIO_BLK_T_IN, pos / 512, buf, l), "read");
		for (uint64_t i = 0; i < l; i++)
			if (buf[i]) {
				fail_why(a, "byte %lu is %#x after WRITE_ZEROES",
					 pos + i, buf[i]);
				goto out;
			}
		pos += l;
	}
	kprintf("blkzero: dev=%u off=%lu len=%lu unmap=%lu zeroed\n", d->index,
		off, len, unmap);
	rc = 0;
out:
	done_with(d);
	return rc;
}

/* blkdiscard:dev=N:off=O:len=L - DISCARD completes OK (the data is then
 * undefined; the host looks at the file) */
static int cmd_blkdiscard(struct cmd_args *a)
{
	struct blk_dev *d = dev_arg(a);
	uint64_t off, len;
	int rc = -1;

	if (!d || sector_range(a, d, &off, &len) < 0)
		goto out;
	if (!(d->v.features & (1ULL << VIRTIO_BLK_F_DISCARD))) {
		fail_why(a, "device %u does not offer DISCARD", d->index);
		goto out;
	}
	CHECK_ST(blk_discard_zero(d, VIRTIO_BLK_T_DISCARD, off / 512, len / 512,
				  false), "discard");
	kprintf("blkdiscard: dev=%u off=%lu len=%lu discarded (alignment %u "
		"sectors)\n", d->index, off, len, d->discard_align);
	rc = 0;
out:
	done_with(d);
	return rc;
}

const struct command blk_commands[] = {
	{ "blkinfo", cmd_blkinfo, "capacity, sector size, features, ro" },
	{ "blktest", cmd_blktest, "reads, write sector 1000, verify, restore" },
	{ "blkirq", cmd_blkirq, "completion interrupts arrive: blkirq[:n=8]" },
	{ "blkmq", cmd_blkmq, "all request queues at once (MQ)" },
	{ "blkbytes", cmd_blkbytes, "unaligned byte-level read/write helpers" },
	{ "blkalign", cmd_blkalign, "odd buffer addresses and segment sizes" },
	{ "blkperf", cmd_blkperf, "throughput: mode=read|write|randread|all" },
	{ "blkfill", cmd_blkfill, "write the seeded pattern over a range" },
	{ "blkverify", cmd_blkverify, "verify the seeded pattern" },
	{ "blkro", cmd_blkro, "a write to a read-only disk fails (IOERR)" },
	{ "blkflush", cmd_blkflush, "FLUSH completes" },
	{ "blkzero", cmd_blkzero, "WRITE_ZEROES a range, reads back zeroes" },
	{ "blkdiscard", cmd_blkdiscard, "DISCARD a range" },
	{ NULL, NULL, NULL },
};
