/* storage/block.c - the format dispatch and the checks every backend relies
 * on: a backend's submit() sees only requests that are in range, allowed on
 * the device, aligned as it asked, and whose iovec matches their length.
 *
 * With an alignment > 1 (cache=none), offsets and lengths must be aligned
 * (-EINVAL otherwise: virtio-blk works in sectors), but buffers need not be:
 * a request whose iovec bases or lengths are not aligned goes through
 * aligned bounce buffers here, so every backend sees aligned memory.  Guests
 * that use aligned buffers (Linux: pages) never pay for the copy.  The
 * bounce memory is a fixed pool per device, whatever the guest asks for
 * (BLK_BOUNCE_* in block.h).
 */
#include "storage/block_backend.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int blk_format_parse(const char *s)
{
	if (!s)
		return -1;
	if (strcmp(s, "raw") == 0)
		return BLK_FMT_RAW;
	if (strcmp(s, "qcow2") == 0)
		return BLK_FMT_QCOW2;
	return -1;
}

struct blk_dev *blk_open(const struct blk_opts *o, struct io_engine *e,
			 char *err, size_t errlen)
{
	struct blk_dev *d;

	if (!o || !o->path || !o->path[0]) {
		snprintf(err, errlen, "disk: no image path given");
		return NULL;
	}
	if (!e) {
		snprintf(err, errlen, "%s: no I/O engine", o->path);
		return NULL;
	}
	if (o->cache != BLK_CACHE_WRITEBACK && o->cache != BLK_CACHE_NONE) {
		snprintf(err, errlen, "%s: unknown cache mode", o->path);
		return NULL;
	}
	switch (o->format) {
	case BLK_FMT_RAW:
		d = raw_open(o, e, err, errlen);
		break;
	case BLK_FMT_QCOW2:
		d = qcow2_open(o, e, err, errlen);
		break;
	default:
		snprintf(err, errlen, "%s: unknown image format", o->path);
		return NULL;
	}
	if (d && d->alignment == 0)
		d->alignment = 1;
	return d;
}

static void bounce_free(struct blk_bounce *b);

void blk_close(struct blk_dev *d)
{
	if (!d)
		return;
	bounce_free(d->bounce);
	d->ops->close(d);
}

uint64_t blk_size(const struct blk_dev *d)
{
	return d->size;
}

bool blk_readonly(const struct blk_dev *d)
{
	return d->readonly;
}

unsigned blk_alignment(const struct blk_dev *d)
{
	return d->alignment;
}

bool blk_can_discard(const struct blk_dev *d)
{
	return d->can_discard && !d->readonly;
}

bool blk_can_write_zeroes(const struct blk_dev *d)
{
	return d->can_write_zeroes && !d->readonly;
}

static int check_req(const struct blk_dev *d, const struct blk_req *r)
{
	uint64_t end;

	switch (r->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE: {
		uint64_t total = 0;
		int i;

		if (r->iovcnt < 0 || (r->iovcnt > 0 && !r->iov))
			return -EINVAL;
		for (i = 0; i < r->iovcnt; i++)
			total += r->iov[i].iov_len;
		if (total != r->len)
			return -EINVAL;
		if (r->op == BLK_OP_WRITE && d->readonly)
			return -EROFS;
		break;
	}
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		if (d->readonly)
			return -EROFS;
		if (r->op == BLK_OP_DISCARD ? !d->can_discard
					    : !d->can_write_zeroes)
			return -EOPNOTSUPP;
		break;
	case BLK_OP_FLUSH:
		return 0;
	default:
		return -EINVAL;
	}
	end = r->offset + r->len;
	if (end < r->offset || end > d->size)
		return -EINVAL;
	if (d->alignment > 1 &&
	    (r->offset % d->alignment || r->len % d->alignment))
		return -EINVAL;
	return 0;
}

/* --- bounce buffers for misaligned memory --------------------------------
 * The request length comes from the guest (up to SEG_MAX x SIZE_MAX, and
 * several requests at once), so it never sizes an allocation: a misaligned
 * request is copied through one slot's BLK_BOUNCE_CHUNK buffer, one chunk
 * after the other.  A device has BLK_BOUNCE_SLOTS slots; requests that find
 * none free wait in order (linked through their priv field, unused while
 * they are ours) and start as slots free up.
 *
 * Chunks may complete inside the backend's submit (errors, zero reads), so
 * all progress happens in pump(): a completion only records what happened,
 * and a nested pump() call just asks the running one for another pass. */
struct bounce_slot {
	struct blk_req inner;	/* the current chunk, as the backend sees it */
	struct blk_req *outer;	/* the caller's request; NULL: slot free */
	struct blk_dev *dev;
	struct iovec iov;
	uint8_t *buf;		/* chunk bytes, aligned; allocated at first use */
	uint64_t done;		/* bytes of outer finished */
	int result;
	enum { SLOT_FREE, SLOT_NEXT, SLOT_BUSY, SLOT_DONE } state;
};

struct blk_bounce {
	struct bounce_slot slot[BLK_BOUNCE_SLOTS];
	struct blk_req *wait_head, *wait_tail;
	unsigned busy, peak;	/* slots holding a request, now and at most */
	bool pumping, again;
};

static size_t bounce_chunk(const struct blk_dev *d)
{
	return d->alignment > BLK_BOUNCE_CHUNK ? d->alignment : BLK_BOUNCE_CHUNK;
}

static bool iov_aligned(const struct blk_req *r, unsigned align)
{
	int i;

	for (i = 0; i < r->iovcnt; i++)
		if (((uintptr_t)r->iov[i].iov_base | r->iov[i].iov_len) %
		    align)
			return false;
	return true;
}

/* Copy len bytes between buf and the iovec's bytes [skip, skip + len). */
static void iov_copy_at(const struct iovec *iov, int iovcnt, uint64_t skip,
			uint8_t *buf, size_t len, bool to_buf)
{
	int i;

	for (i = 0; i < iovcnt && len; i++) {
		size_t n;
		uint8_t *p;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		p = (uint8_t *)iov[i].iov_base + skip;
		n = iov[i].iov_len - skip;
		if (n > len)
			n = len;
		if (to_buf)
			memcpy(buf, p, n);
		else
			memcpy(p, buf, n);
		buf += n;
		len -= n;
		skip = 0;
	}
}

static void pump(struct blk_dev *d);

static void chunk_done(struct blk_req *inner, int result)
{
	struct bounce_slot *s = inner->opaque;
	struct blk_req *r = s->outer;

	if (result == 0 && r->op == BLK_OP_READ)
		iov_copy_at(r->iov, r->iovcnt, s->done, s->buf,
			    (size_t)inner->len, false);
	s->done += inner->len;
	if (result) {
		s->result = result;
		s->state = SLOT_DONE;
	} else {
		s->state = s->done >= r->len ? SLOT_DONE : SLOT_NEXT;
	}
	pump(s->dev);
}

static void chunk_start(struct blk_dev *d, struct bounce_slot *s)
{
	struct blk_req *r = s->outer;
	size_t chunk = bounce_chunk(d);
	uint64_t left = r->len - s->done;
	size_t len = left < chunk ? (size_t)left : chunk;

	if (!s->buf) {
		void *p = NULL;
		size_t align = d->alignment < 4096 ? 4096 : d->alignment;

		if (posix_memalign(&p, align, chunk)) {
			s->result = -ENOMEM;
			s->state = SLOT_DONE;
			return;
		}
		s->buf = p;
	}
	if (r->op == BLK_OP_WRITE)
		iov_copy_at(r->iov, r->iovcnt, s->done, s->buf, len, true);
	s->iov.iov_base = s->buf;
	s->iov.iov_len = len;
	memset(&s->inner, 0, sizeof(s->inner));
	s->inner.op = r->op;
	s->inner.offset = r->offset + s->done;
	s->inner.len = len;
	s->inner.iov = &s->iov;
	s->inner.iovcnt = 1;
	s->inner.done = chunk_done;
	s->inner.opaque = s;
	s->state = SLOT_BUSY;
	d->ops->submit(d, &s->inner);
}

/* Finish requests, hand free slots to waiters, start chunks; until nothing
 * changes (callbacks may submit more). */
static void pump(struct blk_dev *d)
{
	struct blk_bounce *b = d->bounce;
	unsigned i;

	if (b->pumping) {
		b->again = true;
		return;
	}
	b->pumping = true;
	do {
		b->again = false;
		for (i = 0; i < BLK_BOUNCE_SLOTS; i++) {
			struct bounce_slot *s = &b->slot[i];

			if (s->state == SLOT_DONE) {
				struct blk_req *r = s->outer;

				s->outer = NULL;
				s->state = SLOT_FREE;
				b->busy--;
				r->done(r, s->result);
			}
			if (s->state == SLOT_FREE && b->wait_head) {
				s->outer = b->wait_head;
				b->wait_head = s->outer->priv;
				if (!b->wait_head)
					b->wait_tail = NULL;
				s->done = 0;
				s->result = 0;
				s->state = SLOT_NEXT;
				if (++b->busy > b->peak)
					b->peak = b->busy;
			}
			if (s->state == SLOT_NEXT)
				chunk_start(d, s);
			/* completed inside the submit, or failed to start */
			if (s->state == SLOT_NEXT || s->state == SLOT_DONE)
				b->again = true;
		}
	} while (b->again);
	b->pumping = false;
}

static void bounce_submit(struct blk_dev *d, struct blk_req *r)
{
	struct blk_bounce *b = d->bounce;
	unsigned i;

	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b) {
			r->done(r, -ENOMEM);
			return;
		}
		for (i = 0; i < BLK_BOUNCE_SLOTS; i++)
			b->slot[i].dev = d;
		d->bounce = b;
	}
	r->priv = NULL;
	if (b->wait_tail)
		b->wait_tail->priv = r;
	else
		b->wait_head = r;
	b->wait_tail = r;
	pump(d);
}

static void bounce_free(struct blk_bounce *b)
{
	unsigned i;

	if (!b)
		return;
	for (i = 0; i < BLK_BOUNCE_SLOTS; i++)
		free(b->slot[i].buf);
	free(b);
}

size_t blk_bounce_held(const struct blk_dev *d)
{
	size_t n = 0;
	unsigned i;

	if (!d->bounce)
		return 0;
	for (i = 0; i < BLK_BOUNCE_SLOTS; i++)
		if (d->bounce->slot[i].buf)
			n += bounce_chunk(d);
	return n;
}

unsigned blk_bounce_peak(const struct blk_dev *d)
{
	return d->bounce ? d->bounce->peak : 0;
}

void blk_submit(struct blk_dev *d, struct blk_req *r)
{
	int ret = check_req(d, r);

	if (ret) {
		r->done(r, ret);
		return;
	}
	if (r->len == 0 && r->op != BLK_OP_FLUSH) {
		r->done(r, 0);
		return;
	}
	if (d->alignment > 1 &&
	    (r->op == BLK_OP_READ || r->op == BLK_OP_WRITE) &&
	    !iov_aligned(r, d->alignment)) {
		bounce_submit(d, r);
		return;
	}
	d->ops->submit(d, r);
}
