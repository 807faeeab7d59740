/* storage/block.c - the format dispatch and the checks every backend relies
 * on: a backend's submit() sees only requests that are in range, allowed on
 * the device, aligned as it asked, and whose iovec matches their length.
 *
 * With an alignment > 1 (cache=none), offsets and lengths must be aligned
 * (-EINVAL otherwise: virtio-blk works in sectors), but buffers need not be:
 * a request whose iovec bases or lengths are not aligned goes through an
 * aligned bounce buffer here, so every backend sees aligned memory.  Guests
 * that use aligned buffers (Linux: pages) never pay for the copy.
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

void blk_close(struct blk_dev *d)
{
	if (d)
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

/* --- bounce buffers for misaligned memory -------------------------------- */
struct bounce {
	struct blk_req inner;	/* what the backend sees */
	struct blk_req *outer;	/* the caller's request */
	struct iovec iov;
};

static bool iov_aligned(const struct blk_req *r, unsigned align)
{
	int i;

	for (i = 0; i < r->iovcnt; i++)
		if (((uintptr_t)r->iov[i].iov_base | r->iov[i].iov_len) %
		    align)
			return false;
	return true;
}

static void iov_copy(const struct iovec *iov, int iovcnt, uint8_t *buf,
		     bool to_buf)
{
	int i;

	for (i = 0; i < iovcnt; i++) {
		if (to_buf)
			memcpy(buf, iov[i].iov_base, iov[i].iov_len);
		else
			memcpy(iov[i].iov_base, buf, iov[i].iov_len);
		buf += iov[i].iov_len;
	}
}

static void bounce_done(struct blk_req *inner, int result)
{
	struct bounce *b = inner->opaque;
	struct blk_req *r = b->outer;

	if (result == 0 && r->op == BLK_OP_READ)
		iov_copy(r->iov, r->iovcnt, b->iov.iov_base, false);
	free(b->iov.iov_base);
	free(b);
	r->done(r, result);
}

static void bounce_submit(struct blk_dev *d, struct blk_req *r)
{
	size_t align = d->alignment < 4096 ? 4096 : d->alignment;
	struct bounce *b = calloc(1, sizeof(*b));
	void *buf = NULL;

	if (!b || r->len > SIZE_MAX || posix_memalign(&buf, align, r->len)) {
		free(b);
		r->done(r, -ENOMEM);
		return;
	}
	if (r->op == BLK_OP_WRITE)
		iov_copy(r->iov, r->iovcnt, buf, true);
	b->outer = r;
	b->iov.iov_base = buf;
	b->iov.iov_len = r->len;
	b->inner.op = r->op;
	b->inner.offset = r->offset;
	b->inner.len = r->len;
	b->inner.iov = &b->iov;
	b->inner.iovcnt = 1;
	b->inner.done = bounce_done;
	b->inner.opaque = b;
	d->ops->submit(d, &b->inner);
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
