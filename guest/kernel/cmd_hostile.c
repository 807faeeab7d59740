/* guest/kernel/cmd_hostile.c - blkhostile: submit malformed descriptor
 * chains.  The device must answer each with an error status or by entering
 * NEEDS_RESET (then we reset it and check it works again); it must never
 * report success for a request it cannot have carried out, never go silent,
 * and other disks must keep working. */
#include "virtio_blk.h"

#define BAD_GPA		(1ULL << 40)	/* far beyond any RAM we are given */
#define WAIT_US		2000000

enum expect { MUST_FAIL, ANY };

struct hostile_case {
	const char *name;
	enum expect expect;
};

/* Build the chain of case i into c[]; returns its length, 0 to skip.
 * next fields are indices into c[] (blk_queue_raw remaps them). */
static unsigned build(unsigned i, struct blk_dev *d, struct blk_req *r,
		      uint8_t *data, struct vring_desc *tbl,
		      struct vring_desc *c)
{
	const uint16_t N = VRING_DESC_F_NEXT, W = VRING_DESC_F_WRITE;
	uint64_t hdr = (uint64_t)&r->hdr, st = (uint64_t)&r->status;

	r->hdr.type = VIRTIO_BLK_T_IN;
	r->hdr.reserved = 0;
	r->hdr.sector = 0;
	r->status = 0xff;
	switch (i) {
	case 0:		/* data buffer outside guest RAM */
		c[0] = (struct vring_desc){ hdr, 16, N, 1 };
		c[1] = (struct vring_desc){ BAD_GPA, 4096, N | W, 2 };
		c[2] = (struct vring_desc){ st, 1, W, 0 };
		return 3;
	case 1:		/* data buffer on the device's own MMIO window */
		c[0] = (struct vring_desc){ hdr, 16, N, 1 };
		c[1] = (struct vring_desc){ d->v.base, 512, N | W, 2 };
		c[2] = (struct vring_desc){ st, 1, W, 0 };
		return 3;
	case 2:		/* a loop: the last descriptor points back to the data */
		c[0] = (struct vring_desc){ hdr, 16, N, 1 };
		c[1] = (struct vring_desc){ (uint64_t)data, 512, N | W, 2 };
		c[2] = (struct vring_desc){ st, 1, N | W, 1 };
		return 3;
	case 3:		/* zero-length data descriptor */
		c[0] = (struct vring_desc){ hdr, 16, N, 1 };
		c[1] = (struct vring_desc){ (uint64_t)data, 0, N | W, 2 };
		c[2] = (struct vring_desc){ st, 1, W, 0 };
		return 3;
	case 4:		/* read whose data buffer is device-readable */
		c[0] = (struct vring_desc){ hdr, 16, N, 1 };
		c[1] = (struct vring_desc){ (uint64_t)data, 512, N, 2 };
		c[2] = (struct vring_desc){ st, 1, W, 0 };
		return 3;
	case 5:		/* status byte device-readable */
		c[0] = (struct vring_desc){ hdr, 16, N, 1 };
		c[1] = (struct vring_desc){ (uint64_t)data, 512, N | W, 2 };
		c[2] = (struct vring_desc){ st, 1, 0, 0 };
		return 3;
	case 6:		/* huge length running off the end of RAM */
		c[0] = (struct vring_desc){ hdr, 16, N, 1 };
		c[1] = (struct vring_desc){ (uint64_t)data, 0xfffff000, N | W, 2 };
		c[2] = (struct vring_desc){ st, 1, W, 0 };
		return 3;
	case 7:		/* header only: no status descriptor at all */
		c[0] = (struct vring_desc){ hdr, 16, 0, 0 };
		return 1;
	case 8:		/* header device-writable, i.e. writable before readable */
		c[0] = (struct vring_desc){ hdr, 16, N | W, 1 };
		c[1] = (struct vring_desc){ (uint64_t)data, 512, N | W, 2 };
		c[2] = (struct vring_desc){ st, 1, W, 0 };
		return 3;
	case 9:		/* indirect table outside RAM */
		if (!(d->v.features & (1ULL << VIRTIO_F_INDIRECT_DESC)))
			return 0;
		c[0] = (struct vring_desc){ BAD_GPA, 48, VRING_DESC_F_INDIRECT, 0 };
		return 1;
	case 10:	/* nested indirect table */
		if (!(d->v.features & (1ULL << VIRTIO_F_INDIRECT_DESC)))
			return 0;
		tbl[0] = (struct vring_desc){ hdr, 16, N, 1 };
		tbl[1] = (struct vring_desc){ (uint64_t)&tbl[4], 48,
					      N | VRING_DESC_F_INDIRECT, 2 };
		tbl[2] = (struct vring_desc){ st, 1, W, 0 };
		tbl[4] = (struct vring_desc){ (uint64_t)data, 512, W, 0 };
		c[0] = (struct vring_desc){ (uint64_t)tbl, 48,
					    VRING_DESC_F_INDIRECT, 0 };
		return 1;
	case 11:	/* indirect table whose chain loops */
		if (!(d->v.features & (1ULL << VIRTIO_F_INDIRECT_DESC)))
			return 0;
		tbl[0] = (struct vring_desc){ hdr, 16, N, 1 };
		tbl[1] = (struct vring_desc){ (uint64_t)data, 512, N | W, 0 };
		c[0] = (struct vring_desc){ (uint64_t)tbl, 32,
					    VRING_DESC_F_INDIRECT, 0 };
		return 1;
	case 12:	/* read past the end of the disk */
		r->hdr.sector = d->capacity - 1;
		c[0] = (struct vring_desc){ hdr, 16, N, 1 };
		c[1] = (struct vring_desc){ (uint64_t)data, 1024, N | W, 2 };
		c[2] = (struct vring_desc){ st, 1, W, 0 };
		return 3;
	case 13:	/* data length not a multiple of 512 */
		c[0] = (struct vring_desc){ hdr, 16, N, 1 };
		c[1] = (struct vring_desc){ (uint64_t)data, 100, N | W, 2 };
		c[2] = (struct vring_desc){ st, 1, W, 0 };
		return 3;
	}
	return 0;
}

static const struct hostile_case cases[] = {
	{ "outside-ram", MUST_FAIL }, { "mmio-window", MUST_FAIL },
	{ "loop", MUST_FAIL }, { "zero-length", ANY },
	{ "wrong-dir-data", MUST_FAIL }, { "wrong-dir-status", MUST_FAIL },
	{ "huge-length", MUST_FAIL }, { "no-status", MUST_FAIL },
	{ "writable-header", MUST_FAIL }, { "indirect-outside-ram", MUST_FAIL },
	{ "nested-indirect", MUST_FAIL }, { "indirect-loop", MUST_FAIL },
	{ "past-end", MUST_FAIL }, { "odd-length", ANY },
	{ "bad-head", MUST_FAIL },
};

/* A plain write + read-back + restore of one sector (or a read if RO). */
static int sanity(struct blk_dev *d, uint64_t sector, char *why, size_t len)
{
	static uint8_t orig[512], buf[512], back[512];
	int st = blk_rw(d, VIRTIO_BLK_T_IN, sector, orig, 512);

	if (st || d->ro) {
		if (st)
			ksnprintf(why, len, "read: %s", blk_status_name(st));
		return st ? -1 : 0;
	}
	for (unsigned i = 0; i < 512; i++)
		buf[i] = (uint8_t)(orig[i] ^ 0x5a ^ i);
	if ((st = blk_rw(d, VIRTIO_BLK_T_OUT, sector, buf, 512)) ||
	    (st = blk_rw(d, VIRTIO_BLK_T_IN, sector, back, 512)) ||
	    (st = blk_rw(d, VIRTIO_BLK_T_OUT, sector, orig, 512))) {
		ksnprintf(why, len, "write/read: %s", blk_status_name(st));
		return -1;
	}
	if (memcmp(buf, back, 512)) {
		ksnprintf(why, len, "read back differs");
		return -1;
	}
	return 0;
}

/* Queue an avail entry naming a descriptor index beyond the ring. */
static void queue_bad_head(struct blk_dev *d)
{
	virtq_add(&d->q->vq, (uint16_t)(d->q->vq.qsize + 7));
}

/* blkhostile[:dev=0:other=1] */
static int cmd_blkhostile(struct cmd_args *a)
{
	uint64_t dn = arg_num(a, "dev", 0), on = arg_num(a, "other", UINT64_MAX);
	struct blk_dev *d = blk_get((unsigned)dn), *o = NULL;
	struct vring_desc c[8];
	struct vring_desc *tbl = page_alloc(1);
	uint8_t *data = page_alloc(1);
	unsigned resets = 0, errors = 0;
	char why[96];

	if (dn == UINT64_MAX || !d)
		return fail_why(a, "no virtio-blk device %lu", dn);
	if (!d->ok && blk_reinit(d) < 0)
		return fail_why(a, "device %lu unusable: %s", dn, d->v.why);
	if (on != UINT64_MAX && !(o = blk_get((unsigned)on)))
		return fail_why(a, "no virtio-blk device %lu", on);
	if (!tbl || !data)
		return fail_why(a, "out of memory");
	blk_set_wait(d, BLK_SPIN_POLL);

	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		struct blk_req *r = blk_req_get(d);
		unsigned n = 0;
		uint64_t t0;
		const char *outcome;
		int st = BLK_S_PENDING;
		uint32_t dstat;

		if (!r)
			return fail_why(a, "no free request slot");
		if (!strcmp(cases[i].name, "bad-head")) {
			queue_bad_head(d);
		} else {
			n = build(i, d, r, data, tbl, c);
			if (!n) {
				blk_req_put(d, r);
				kprintf("blkhostile: %-20s skipped (no INDIRECT_DESC)\n",
					cases[i].name);
				continue;
			}
			if (blk_queue_raw(d, r, c, n, true) < 0)
				return fail_why(a, "%s: ring full", cases[i].name);
		}
		blk_kick(d);
		/* wait for the completion or NEEDS_RESET, checking the status
		 * register (an exit) only every ~10 ms */
		t0 = rdtsc();
		for (uint64_t next_check = 0;;) {
			uint64_t us;

			blk_poll(d);
			st = r->result;
			if (st != BLK_S_PENDING)
				break;
			us = tsc_us(rdtsc() - t0);
			if (us > WAIT_US)
				break;
			if (us >= next_check) {
				next_check = us + 10000;
				if (blk_status(d) & VIRTIO_STATUS_NEEDS_RESET)
					break;
			}
			cpu_relax();
		}
		dstat = blk_status(d);
		if (st != BLK_S_PENDING) {
			outcome = blk_status_name(st);
			if (st == VIRTIO_BLK_S_OK && cases[i].expect == MUST_FAIL) {
				kprintf("blkhostile: %-20s completed OK\n",
					cases[i].name);
				errors++;
			}
		} else if (dstat & VIRTIO_STATUS_NEEDS_RESET) {
			outcome = "NEEDS_RESET";
		} else {
			kprintf("blkhostile: %-20s no answer in %u ms and no "
				"NEEDS_RESET (status %#x)\n", cases[i].name,
				WAIT_US / 1000, dstat);
			errors++;
			outcome = "silent";
		}
		blk_req_put(d, r);
		/* after NEEDS_RESET (or silence) reset and re-initialise */
		if (st == BLK_S_PENDING || (dstat & VIRTIO_STATUS_NEEDS_RESET)) {
			resets++;
			if (blk_reinit(d) < 0)
				return fail_why(a, "%s: re-init failed: %s",
						cases[i].name, d->v.why);
		}
		if (sanity(d, 1000, why, sizeof(why)) < 0)
			return fail_why(a, "after %s: device broken: %s",
					cases[i].name, why);
		kprintf("blkhostile: %-20s -> %s%s, device ok\n", cases[i].name,
			outcome, st == BLK_S_PENDING ||
			(dstat & VIRTIO_STATUS_NEEDS_RESET) ? " (reset)" : "");
	}
	if (o && sanity(o, 1000, why, sizeof(why)) < 0)
		return fail_why(a, "other disk %lu broken: %s", on, why);
	kprintf("blkhostile: dev=%lu %u cases, %u resets%s\n", dn,
		(unsigned)ARRAY_SIZE(cases), resets,
		o ? ", other disk ok" : "");
	if (errors)
		return fail_why(a, "%u cases mishandled by the device", errors);
	return 0;
}

/* blknego[:dev=N] - the device refuses a driver without VERSION_1 and a
 * feature it did not offer, and works after a normal negotiation. */
static int cmd_blknego(struct cmd_args *a)
{
	uint64_t dn = arg_num(a, "dev", 0), unoffered = 0;
	struct blk_dev *d = blk_get((unsigned)dn);
	static uint8_t buf[512];
	uint64_t base;
	int r, st;

	if (dn == UINT64_MAX || !d)
		return fail_why(a, "no virtio-blk device %lu", dn);
	blk_set_wait(d, BLK_SPIN_POLL);
	base = d->v.features ? d->v.features : 1ULL << VIRTIO_F_VERSION_1;
	for (unsigned b = 40; b < 64 && !unoffered; b++)
		if (!(d->v.dev_features & (1ULL << b)))
			unoffered = 1ULL << b;
	r = blk_try_features(d, base & ~(1ULL << VIRTIO_F_VERSION_1));
	kprintf("blknego: without VERSION_1: %s\n",
		r == 1 ? "accepted" : r == 0 ? "refused" : "no reset");
	if (r != 0)
		return fail_why(a, "features without VERSION_1 %s",
				r == 1 ? "accepted" : "(device did not reset)");
	if (unoffered) {
		r = blk_try_features(d, base | unoffered);
		kprintf("blknego: unoffered feature %#lx: %s\n", unoffered,
			r == 1 ? "accepted" : r == 0 ? "refused" : "no reset");
		if (r != 0)
			return fail_why(a, "unoffered feature %#lx %s", unoffered,
					r == 1 ? "accepted" : "(no reset)");
	}
	if (blk_reinit(d) < 0)
		return fail_why(a, "normal negotiation failed: %s", d->v.why);
	st = blk_rw(d, VIRTIO_BLK_T_IN, 0, buf, 512);
	if (st)
		return fail_why(a, "read after negotiation: %s",
				blk_status_name(st));
	kprintf("blknego: dev=%lu normal negotiation ok, features %#lx\n", dn,
		d->v.features);
	return 0;
}

/* blkreset[:dev=N:rounds=10:qd=16] - reset the device with reads in
 * flight, re-initialise, and check it reads the same data as before. */
static int cmd_blkreset(struct cmd_args *a)
{
	uint64_t dn = arg_num(a, "dev", 0), rounds = arg_num(a, "rounds", 10);
	uint64_t qd = arg_num(a, "qd", 16), rng = rdtsc() | 1;
	struct blk_dev *d = blk_get((unsigned)dn);
	uint8_t *ref = page_alloc(16), *chk = page_alloc(16);
	uint8_t *bufs = page_alloc(16 * qd);
	uint64_t sectors;
	int st;

	if (dn == UINT64_MAX || rounds == UINT64_MAX || qd == UINT64_MAX)
		return -1;
	if (!d)
		return fail_why(a, "no virtio-blk device %lu", dn);
	if (!ref || !chk || !bufs)
		return fail_why(a, "out of memory");
	if (!d->ok && blk_reinit(d) < 0)
		return fail_why(a, "device %lu unusable: %s", dn, d->v.why);
	if (qd == 0 || qd > d->q->vq.qsize || qd > 64)
		return fail_why(a, "qd must be 1..min(64, queue size)");
	blk_set_wait(d, BLK_SPIN_POLL);
	sectors = d->capacity > 128 ? d->capacity - 128 : 0;
	if ((st = blk_rw(d, VIRTIO_BLK_T_IN, 0, ref, 65536)))
		return fail_why(a, "reference read: %s", blk_status_name(st));
	for (uint64_t round = 0; round < rounds; round++) {
		for (uint64_t i = 0; i < qd; i++) {
			struct blk_req *r = blk_req_get(d);
			struct blk_seg seg = { (uint64_t)bufs + i * 65536, 65536 };

			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			if (!r || blk_queue(d, r, VIRTIO_BLK_T_IN,
					    sectors ? rng % sectors : 0, &seg, 1,
					    true) < 0)
				return fail_why(a, "cannot queue");
		}
		blk_kick(d);
		if (round & 1)	/* odd rounds: let some complete first */
			udelay(50);
		if (blk_reset(d) < 0)
			return fail_why(a, "round %lu: device did not reset", round);
		if (blk_reinit(d) < 0)
			return fail_why(a, "round %lu: re-init: %s", round, d->v.why);
		memset(chk, 0, 65536);
		if ((st = blk_rw(d, VIRTIO_BLK_T_IN, 0, chk, 65536)))
			return fail_why(a, "round %lu: read after reset: %s", round,
					blk_status_name(st));
		if (memcmp(ref, chk, 65536))
			return fail_why(a, "round %lu: data differs after reset",
					round);
	}
	kprintf("blkreset: dev=%lu %lu resets with %lu reads in flight ok\n",
		dn, rounds, qd);
	return 0;
}

/* ---- blkhog: a guest that tries to make the VMM hold host memory ----
 * Requests whose segments all point at one buffer at an odd address: with
 * cache=none the VMM must copy them through bounce memory, and the guest
 * chooses their length (up to SEG_MAX x SIZE_MAX, ~1 GiB, from a few MiB of
 * its own RAM) and how many are in flight.  The host measures its RSS
 * (tests/integration/blk-hostile-memory.sh); here we check the answers:
 * requests within the advertised limits complete OK (a cap makes them wait,
 * never fail), requests beyond them fail, and a head made available again
 * while in flight is not answered twice (the device may put itself in
 * NEEDS_RESET for it: we reset and go on). */
#define HOG_WAIT_US	300000000ULL	/* 300 s: TCG-nested hosts are slow */

struct hog {
	struct blk_dev *d;
	struct vring_desc *tables;	/* one page per request */
	uint8_t *buf;			/* seglen + 1 bytes, used from +1 */
	struct blk_req *r[256];
	unsigned n;
	uint64_t reqlen;		/* bytes per request */
};

/* Queue request i: segs segments of seglen bytes (the last seglen_last) at
 * buf + 1, one indirect descriptor in the ring, its table on page i of
 * h->tables (on pages i and i + 1 when longer than a page). */
static int hog_queue(struct hog *h, unsigned i, bool write, uint64_t sector,
		     unsigned segs, uint32_t seglen, uint32_t seglen_last)
{
	const uint16_t N = VRING_DESC_F_NEXT, W = VRING_DESC_F_WRITE;
	struct vring_desc *t = h->tables + i * (PAGE_SIZE / sizeof(*t));
	struct blk_req *r = blk_req_get(h->d);
	struct vring_desc c;
	unsigned k;

	if (!r)
		return -1;
	r->hdr.type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	r->hdr.reserved = 0;
	r->hdr.sector = sector;
	r->status = 0xff;
	t[0] = (struct vring_desc){ (uint64_t)&r->hdr, 16, N, 1 };
	for (k = 1; k <= segs; k++)
		t[k] = (struct vring_desc){ (uint64_t)h->buf + 1,
			k == segs ? seglen_last : seglen,
			(uint16_t)(N | (write ? 0 : W)), (uint16_t)(k + 1) };
	t[segs + 1] = (struct vring_desc){ (uint64_t)&r->status, 1, W, 0 };
	c = (struct vring_desc){ (uint64_t)t, (segs + 2) * 16,
				 VRING_DESC_F_INDIRECT, 0 };
	if (blk_queue_raw(h->d, r, &c, 1, true) < 0) {
		blk_req_put(h->d, r);
		return -1;
	}
	h->r[i] = r;
	return 0;
}

/* Wait until requests [0, h->n) are answered or the device asks for a
 * reset.  Returns 1 on NEEDS_RESET, 0 when all answered, -1 on timeout. */
static int hog_wait(struct hog *h)
{
	uint64_t t0 = rdtsc(), next = 0;

	for (;;) {
		unsigned left = 0;

		blk_poll(h->d);
		for (unsigned i = 0; i < h->n; i++)
			left += h->r[i]->result == BLK_S_PENDING;
		if (!left)
			return 0;
		if (tsc_us(rdtsc() - t0) > HOG_WAIT_US)
			return -1;
		if (tsc_us(rdtsc() - t0) >= next) {
			next = tsc_us(rdtsc() - t0) + 10000;
			if (blk_status(h->d) & VIRTIO_STATUS_NEEDS_RESET)
				return 1;
		}
		blk_wait_used(h->d);
	}
}

static void hog_put_all(struct hog *h)
{
	for (unsigned i = 0; i < h->n; i++)
		blk_req_put(h->d, h->r[i]);
	h->n = 0;
}

/* blkhog[:dev=0:n=16:segs=4:seglen=SIZE_MAX:rounds=2:repost=4] */
static int cmd_blkhog(struct cmd_args *a)
{
	uint64_t dn = arg_num(a, "dev", 0), n = arg_num(a, "n", 16);
	uint64_t segs, seglen, rounds = arg_num(a, "rounds", 2);
	uint64_t repost = arg_num(a, "repost", 4), span;
	struct blk_dev *d = blk_get((unsigned)dn);
	struct hog h = { .d = d };
	unsigned resets = 0, failed_ok = 0;
	char why[96];
	int w;

	if (dn == UINT64_MAX || n == UINT64_MAX || rounds == UINT64_MAX ||
	    repost == UINT64_MAX)
		return -1;
	if (!d)
		return fail_why(a, "no virtio-blk device %lu", dn);
	if (!d->ok && blk_reinit(d) < 0)
		return fail_why(a, "device %lu unusable: %s", dn, d->v.why);
	if (!(d->v.features & (1ULL << VIRTIO_F_INDIRECT_DESC)) ||
	    !d->seg_max || !d->size_max)
		return fail_why(a, "needs INDIRECT_DESC, SEG_MAX and SIZE_MAX");
	segs = arg_num(a, "segs", d->seg_max);
	seglen = arg_num(a, "seglen", d->size_max);
	if (segs == UINT64_MAX || seglen == UINT64_MAX)
		return -1;
	if (n == 0 || n > 64 || n > d->q->vq.qsize / 2 || segs == 0 ||
	    segs > d->seg_max || seglen < 1024 || seglen % 512 ||
	    seglen > d->size_max || segs + 2 > PAGE_SIZE / 16)
		return fail_why(a, "n 1..64 (half the queue), segs 1..seg_max, "
				"seglen 1K..size_max in sectors");
	h.reqlen = segs * seglen;
	if (h.reqlen + 512 > d->capacity * 512)
		return fail_why(a, "disk smaller than one request (%lu bytes)",
				h.reqlen);
	span = d->capacity * 512 / h.reqlen;	/* requests that fit */
	h.tables = page_alloc(n + 2);	/* + 2 for one oversized table */
	h.buf = page_alloc(seglen / PAGE_SIZE + 2);
	if (!h.tables || !h.buf)
		return fail_why(a, "out of memory");
	for (uint64_t i = 0; i < seglen + 1; i++)
		h.buf[i] = (uint8_t)(i * 7);
	blk_set_wait(d, BLK_SPIN_DEFAULT);

	for (uint64_t round = 0; round < rounds; round++) {
		bool write = round & 1;

		uint16_t used0 = d->q->vq.last_used;

		/* n maximal requests at once, all over one odd buffer */
		for (unsigned i = 0; i < n; i++, h.n++)
			if (hog_queue(&h, i, write, (i % span) * (h.reqlen / 512),
				      (unsigned)segs, (uint32_t)seglen,
				      (uint32_t)seglen) < 0)
				return fail_why(a, "round %lu: cannot queue", round);
		/* and the first head offered again, repost times */
		for (uint64_t k = 0; k < repost; k++) {
			d->q->vq.avail[2 + d->q->vq.avail_idx % d->q->vq.qsize] =
				h.r[0]->head;
			d->q->vq.avail_idx++;
		}
		blk_kick(d);
		w = hog_wait(&h);
		if (w < 0)
			return fail_why(a, "round %lu: no answer in %llu s", round,
					HOG_WAIT_US / 1000000);
		if (w == 0 && repost) {	/* late second answers, if any */
			uint64_t t0 = rdtsc();

			while (tsc_us(rdtsc() - t0) < 100000)
				blk_poll(d), cpu_relax();
		}
		if ((uint16_t)(d->q->vq.last_used - used0) > n)
			return fail_why(a, "round %lu: %u answers for %lu "
					"requests (a head answered twice)", round,
					(uint16_t)(d->q->vq.last_used - used0), n);
		if (w == 1) {
			resets++;
			hog_put_all(&h);
			if (blk_reinit(d) < 0)
				return fail_why(a, "re-init: %s", d->v.why);
			blk_set_wait(d, BLK_SPIN_DEFAULT);
			kprintf("blkhog: round %lu: %s of %lu x %lu bytes: "
				"NEEDS_RESET (head offered again), reset\n",
				round, write ? "writes" : "reads", n, h.reqlen);
			continue;
		}
		for (unsigned i = 0; i < n; i++)
			if (h.r[i]->result != VIRTIO_BLK_S_OK)
				return fail_why(a, "round %lu: request %u: %s "
						"(within the limits: must "
						"succeed)", round, i,
						blk_status_name(h.r[i]->result));
		kprintf("blkhog: round %lu: %lu %s of %lu bytes ok%s\n", round,
			n, write ? "writes" : "reads", h.reqlen,
			repost ? " (re-offered head not answered twice)" : "");
		hog_put_all(&h);
	}

	/* beyond the limits: one segment too many, one segment too long */
	for (unsigned k = 0; k < 2; k++) {
		unsigned ns = k == 0 ? d->seg_max + 1 : 1;
		uint32_t sl = k == 0 ? 512 : d->size_max + 512;

		if (ns + 2 > 2 * PAGE_SIZE / 16 || (k == 1 && d->size_max >
						     (1u << 31)))
			continue;
		if (k == 1 && (uint64_t)sl > seglen + 1) {
			/* the buffer is seglen + 1 bytes: one longer segment
			 * needs a larger one */
			uint8_t *big = page_alloc(sl / PAGE_SIZE + 2);

			if (!big)
				return fail_why(a, "out of memory");
			h.buf = big;
		}
		/* its table (up to 2 pages) goes after the n others */
		if (hog_queue(&h, (unsigned)n, false, 0, ns, sl, sl) < 0)
			return fail_why(a, "cannot queue an oversized request");
		h.r[0] = h.r[n];
		h.n = 1;
		blk_kick(d);
		w = hog_wait(&h);
		if (w < 0)
			return fail_why(a, "oversized request: no answer");
		if (w == 0 && h.r[0]->result == VIRTIO_BLK_S_OK)
			failed_ok++;
		kprintf("blkhog: %s: %s\n", k == 0 ? "seg_max + 1 segments" :
			"a segment of size_max + 512", w == 1 ? "NEEDS_RESET" :
			blk_status_name(h.r[0]->result));
		hog_put_all(&h);
		if (w == 1) {
			resets++;
			if (blk_reinit(d) < 0)
				return fail_why(a, "re-init: %s", d->v.why);
		}
	}
	if (failed_ok)
		return fail_why(a, "%u requests beyond SEG_MAX/SIZE_MAX completed OK",
				failed_ok);
	if (sanity(d, 1000, why, sizeof(why)) < 0)
		return fail_why(a, "device broken afterwards: %s", why);
	blk_set_wait(d, BLK_SPIN_POLL);
	kprintf("blkhog: dev=%lu %lu rounds of %lu x %lu bytes, %u resets, "
		"device ok\n", dn, rounds, n, h.reqlen, resets);
	return 0;
}

const struct command hostile_commands[] = {
	{ "blkhostile", cmd_blkhostile,
	  "malformed chains: blkhostile[:dev=0:other=1]" },
	{ "blknego", cmd_blknego, "refused feature sets, then a normal one" },
	{ "blkreset", cmd_blkreset, "reset with reads in flight: rounds=10:qd=16" },
	{ "blkhog", cmd_blkhog, "huge misaligned requests, re-offered heads: "
	  "blkhog[:dev=0:n=16:segs=SEG_MAX:seglen=SIZE_MAX:rounds=2:repost=4]" },
	{ NULL, NULL, NULL },
};
