/* storage/qcow2_io.c - guest requests on a qcow2 image.
 *
 * A request is cut at mapping boundaries into pieces.  Guest data moves only
 * through the io_uring engine, straight between the guest iovecs and the
 * image (or a backing file): reads and overwrites of allocated clusters need
 * no metadata I/O once the L2 table is cached.
 *
 * An allocating write references fresh clusters (refcounts written), writes
 * the data (with the old contents of partial head/tail clusters gathered
 * from the backing file, a compressed cluster or zeroes into bounce
 * buffers), and only when that write has completed points the L2 entries at
 * the new clusters (with COPIED) in the cached table, which is written back
 * at the next FLUSH (or close, or eviction); the references of what they
 * replaced are dropped after that write-back.  So an allocating write costs
 * no synchronous metadata I/O (refcounts come from a reservation made in
 * bulk).  Guest clusters with an allocation in flight are listed in
 * s->allocs: any later write, discard or write-zeroes touching one waits
 * until it is done, then carries on from where it stopped, so a cluster is
 * never allocated twice.  Reads do not wait: they see the old mapping until
 * the new one is in place.
 */
#include "storage/qcow2.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define ALLOC_MAX 512	/* clusters per allocating write op */

struct q2req {
	struct qcow2 *s;
	struct blk_req *r;
	uint64_t cursor, end;
	int pending;	/* ops in flight + 1 while the request is processed */
	int err;
	struct q2req *wnext;	/* in a q2alloc's waiter list */
};

struct q2alloc {
	struct q2alloc *next;
	uint64_t first_cluster, count;	/* guest clusters allocated */
	uint64_t host;		/* their new host clusters, contiguous */
	uint64_t l2off, l2i;
	struct q2req *waiters;
	uint64_t old[];		/* the entries being replaced */
};

struct q2op {
	struct io_cb cb;
	struct q2req *q;
	struct q2alloc *a;
	struct q2op *prev, *next;	/* s->ops_head list (data ops) */
	uint64_t seq;			/* 0: not a data op */
	void *bounce[2];
	int iovcnt;
	struct iovec iov[];
};

static void write_run(struct q2req *q);
static void zero_run(struct q2req *q);

static int iov_slice(const struct iovec *src, int cnt, uint64_t skip,
		     uint64_t len, struct iovec *dst)
{
	int i, n = 0;

	for (i = 0; i < cnt && len; i++) {
		uint64_t l = src[i].iov_len, take;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		take = l - skip < len ? l - skip : len;
		if (dst) {
			dst[n].iov_base = (char *)src[i].iov_base + skip;
			dst[n].iov_len = take;
		}
		n++;
		len -= take;
		skip = 0;
	}
	return n;
}

/* Copy data (or zeroes if data is NULL) into bytes [skip, skip+len) of an
 * iovec. */
static void iov_put(const struct iovec *iov, int cnt, uint64_t skip,
		    const uint8_t *data, uint64_t len)
{
	int i;

	for (i = 0; i < cnt && len; i++) {
		uint64_t l = iov[i].iov_len, take;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		take = l - skip < len ? l - skip : len;
		if (data) {
			memcpy((char *)iov[i].iov_base + skip, data, take);
			data += take;
		} else {
			memset((char *)iov[i].iov_base + skip, 0, take);
		}
		len -= take;
		skip = 0;
	}
}

static void req_put(struct q2req *q)
{
	if (--q->pending == 0) {
		struct blk_req *r = q->r;
		int err = q->err;

		free(q);
		r->done(r, err);
	}
}

static void set_err(struct q2req *q, int err)
{
	if (err < 0 && !q->err)
		q->err = err;
}

static struct q2alloc *alloc_find(struct qcow2 *s, uint64_t c)
{
	struct q2alloc *a;

	for (a = s->allocs; a; a = a->next)
		if (c >= a->first_cluster && c < a->first_cluster + a->count)
			return a;
	return NULL;
}

static void resume(struct q2req *q)
{
	if (q->r->op == BLK_OP_WRITE)
		write_run(q);
	else
		zero_run(q);
}

/* The data write of an allocating write is over.  On success the L2
 * entries now point at the new clusters (in the cached table, written back
 * at the next FLUSH: q2_l2_writeback), and what they replaced is freed
 * after that write-back.  Then other writes to these guest clusters may go
 * ahead. */
static int alloc_end(struct qcow2 *s, struct q2alloc *a, int data_res)
{
	struct q2img *im = s->img;
	struct q2alloc **pp;
	struct q2req *w;
	uint8_t *t;
	uint64_t j;
	int ret = 0;

	for (pp = &s->allocs; *pp != a; pp = &(*pp)->next)
		;
	*pp = a->next;
	if (data_res < 0) {
		/* nothing points at the new clusters: give them back */
		q2_refcount_update(im, a->host, a->count << im->cluster_bits, -1);
		ret = data_res;
	} else {
		ret = q2_cache_get(im, &im->l2_cache, a->l2off, &t);
		if (!ret) {
			for (j = 0; j < a->count; j++)
				qcow2_put_be64(t + (a->l2i + j) * 8,
					       qcow2_l2_data_entry(a->host +
								   (j << im->cluster_bits)));
			q2_cache_mark_dirty(&im->l2_cache, a->l2off);
			/* the new clusters' data before the entry: barrier */
			im->meta_unsynced = true;
			for (j = 0; j < a->count; j++)
				q2_free_later(im, a->old[j]);	/* else a leak */
		}
	}
	w = a->waiters;
	free(a);
	while (w) {
		struct q2req *next = w->wnext;

		resume(w);
		w = next;
	}
	return ret;
}

static void op_done(struct io_cb *cb, int64_t res)
{
	struct q2op *op = (struct q2op *)((char *)cb - offsetof(struct q2op, cb));
	struct q2req *q = op->q;
	struct qcow2 *s = q->s;

	if (op->seq) {	/* no longer in flight: see q2img.seq_oldest */
		if (op->prev)
			op->prev->next = op->next;
		else
			s->ops_head = op->next;
		if (op->next)
			op->next->prev = op->prev;
		else
			s->ops_tail = op->prev;
		s->img->seq_oldest = s->ops_head ? s->ops_head->seq : UINT64_MAX;
	}
	set_err(q, res < 0 ? (int)res : 0);
	if (op->a)
		set_err(q, alloc_end(s, op->a, res < 0 ? (int)res : 0));
	free(op->bounce[0]);
	free(op->bounce[1]);
	free(op);
	req_put(q);
}

static struct q2op *op_new(struct q2req *q, int iovcnt)
{
	struct q2op *op = calloc(1, sizeof(*op) + iovcnt * sizeof(struct iovec));

	if (!op)
		return NULL;
	op->q = q;
	op->cb.fn = op_done;
	return op;
}

/* Queue an op; it counts as pending until op_done. */
static void op_start(struct q2op *op, bool write, int fd, uint64_t off)
{
	struct qcow2 *s = op->q->s;
	struct io_engine *e = s->dev.engine;
	int ret;

	op->seq = ++s->op_seq;
	s->img->seq_now = op->seq;
	op->prev = s->ops_tail;
	op->next = NULL;
	if (s->ops_tail)
		s->ops_tail->next = op;
	else
		s->ops_head = op;
	s->ops_tail = op;
	s->img->seq_oldest = s->ops_head->seq;
	op->q->pending++;
	ret = write ? io_engine_writev(e, fd, op->iov, op->iovcnt, off, &op->cb)
		    : io_engine_readv(e, fd, op->iov, op->iovcnt, off, &op->cb);
	if (ret < 0)
		op_done(&op->cb, ret);
}

/* An op for guest bytes [off, off+len) of the request (or zeroes), between
 * optional head and tail bounce buffers. */
static struct q2op *data_op(struct q2req *q, uint64_t off, uint64_t len,
			    bool zero, void *head_buf, uint64_t head_len,
			    void *tail_buf, uint64_t tail_len)
{
	const struct blk_req *r = q->r;
	uint64_t cluster_size = q->s->img->cluster_size, skip = off - r->offset;
	int n, k = 0;
	struct q2op *op;

	n = zero ? (int)((len + cluster_size - 1) / cluster_size)
		 : iov_slice(r->iov, r->iovcnt, skip, len, NULL);
	op = op_new(q, n + (head_len != 0) + (tail_len != 0));
	if (!op)
		return NULL;
	if (head_len) {
		op->iov[k].iov_base = head_buf;
		op->iov[k++].iov_len = head_len;
	}
	if (zero) {
		uint64_t left = len;

		for (; left; k++) {
			op->iov[k].iov_base = q->s->zero_buf;
			op->iov[k].iov_len = left < cluster_size ? left : cluster_size;
			left -= op->iov[k].iov_len;
		}
	} else {
		k += iov_slice(r->iov, r->iovcnt, skip, len, op->iov + k);
	}
	if (tail_len) {
		op->iov[k].iov_base = tail_buf;
		op->iov[k++].iov_len = tail_len;
	}
	op->iovcnt = k;
	op->bounce[0] = head_buf;
	op->bounce[1] = tail_buf;
	return op;
}

static void read_run(struct q2req *q)
{
	struct q2img *im = q->s->img;
	const struct blk_req *r = q->r;

	while (q->cursor < q->end && !q->err) {
		uint64_t off = q->cursor, skip = off - r->offset;
		const uint8_t *c;
		struct q2map m;
		struct q2op *op;
		int ret = q2_resolve(im, off, q->end - off, &m);

		if (ret) {
			set_err(q, ret);
			break;
		}
		switch (m.kind) {
		case QCOW2_DATA:
			op = data_op(q, off, m.len, false, NULL, 0, NULL, 0);
			if (!op) {
				set_err(q, -ENOMEM);
				break;
			}
			op_start(op, false, m.im->data_fd, m.host);
			break;
		case QCOW2_COMPRESSED:
			ret = q2_decompress(m.im, m.entry, &c);
			if (ret)
				set_err(q, ret);
			else
				iov_put(r->iov, r->iovcnt, skip,
					c + (off & (m.im->cluster_size - 1)), m.len);
			break;
		default:
			iov_put(r->iov, r->iovcnt, skip, NULL, m.len);
			break;
		}
		q->cursor += m.len;
	}
	req_put(q);
}

/* References waiting for the next write-back (q2_free_later) are capped
 * at QCOW2_MAX_DEFERRED_FREES (512 KiB), whatever a guest discards or
 * overwrites between flushes: at the cap, write back now.  Called where
 * every deferred free's replacement entry is in place in memory. */
static int bound_deferred_frees(struct q2img *im)
{
	if (im->n_deferred_frees < QCOW2_MAX_DEFERRED_FREES)
		return 0;
	return q2_l2_writeback(im);
}

/* Write guest bytes [off, off+len) (or zeroes): one op.  Returns the bytes
 * handled, 0 if the request now waits for an allocation in flight, or
 * -errno. */
static int64_t write_step(struct q2req *q, uint64_t off, uint64_t len,
			  bool zero)
{
	struct qcow2 *s = q->s;
	struct q2img *im = s->img;
	uint64_t c = off >> im->cluster_bits, l1i, l2i, l2off, n, maxc, host, got;
	uint64_t head, tail, dend, run_end;
	void *head_buf = NULL, *tail_buf = NULL;
	struct q2alloc *a;
	struct q2map m;
	struct q2op *op;
	uint8_t *t;
	int ret;

	if (zero && len > ((uint64_t)ALLOC_MAX << im->cluster_bits))
		len = (uint64_t)ALLOC_MAX << im->cluster_bits;	/* iovec count */
	ret = bound_deferred_frees(im);
	if (ret)
		return ret;
	a = alloc_find(s, c);
	if (a) {
		q->wnext = a->waiters;
		a->waiters = q;
		return 0;
	}
	ret = q2_map(im, off, len, &m);
	if (ret)
		return ret;
	if (m.kind == QCOW2_DATA && m.copied) {
		/* overwrite in place: the hot path, data only; a data cluster
		 * over the header or the top-level tables means corruption */
		if (m.host < im->cluster_size ||
		    (m.host < im->l1_off + (uint64_t)im->l1_size * 8 &&
		     m.host + m.len > im->l1_off) ||
		    (m.host < im->reftable_off +
			      ((uint64_t)im->reftable_clusters << im->cluster_bits) &&
		     m.host + m.len > im->reftable_off)) {
			q2_report(im, "data cluster at %#llx overlaps metadata; "
				  "refusing to write", (unsigned long long)m.host);
			return -EIO;
		}
		op = data_op(q, off, m.len, zero, NULL, 0, NULL, 0);
		if (!op)
			return -ENOMEM;
		op_start(op, true, im->data_fd, m.host);
		return (int64_t)m.len;
	}

	l1i = c >> im->l2_bits;
	l2i = c & (im->l2_entries - 1);
	ret = q2_l2_prepare(im, l1i, &l2off);
	if (ret)
		return ret;
	maxc = im->l2_entries - l2i < ALLOC_MAX ? im->l2_entries - l2i : ALLOC_MAX;
	a = malloc(sizeof(*a) + maxc * sizeof(uint64_t));
	if (!a)
		return -ENOMEM;
	ret = q2_cache_get(im, &im->l2_cache, l2off, &t);
	if (ret)
		goto fail;
	for (n = 0; n < maxc && ((c + n) << im->cluster_bits) < off + len; n++) {
		uint64_t e = qcow2_be64(t + (l2i + n) * 8), h;
		enum qcow2_kind k = qcow2_l2_kind(e, im->version, im->cluster_bits, &h);

		if (k == QCOW2_BAD) {
			q2_report(im, "invalid L2 entry %#llx",
				  (unsigned long long)e);
			ret = -EIO;
			goto fail;
		}
		if (n && ((k == QCOW2_DATA && (e & QCOW2_OFLAG_COPIED)) ||
			  alloc_find(s, c + n)))
			break;
		a->old[n] = e;
	}
	ret = q2_alloc_clusters(im, n, &host, &got);
	if (ret)
		goto fail;
	n = got;
	head = off - (c << im->cluster_bits);
	run_end = (c + n) << im->cluster_bits;
	dend = off + len < run_end ? off + len : run_end;
	tail = run_end - dend;
	if ((head && posix_memalign(&head_buf, 4096, head)) ||
	    (tail && posix_memalign(&tail_buf, 4096, tail))) {
		ret = -ENOMEM;
		goto fail_clusters;
	}
	if (head)
		ret = q2_fill_old(im, a->old[0], c << im->cluster_bits, 0, head_buf, head);
	if (!ret && tail)
		ret = q2_fill_old(im, a->old[n - 1], (c + n - 1) << im->cluster_bits,
				  im->cluster_size - tail, tail_buf, tail);
	if (ret)
		goto fail_clusters;
	op = data_op(q, off, dend - off, zero, head_buf, head, tail_buf, tail);
	if (!op) {
		ret = -ENOMEM;
		goto fail_clusters;
	}
	a->first_cluster = c;
	a->count = n;
	a->host = host;
	a->l2off = l2off;
	a->l2i = l2i;
	a->waiters = NULL;
	a->next = s->allocs;
	s->allocs = a;
	op->a = a;
	op_start(op, true, im->data_fd, host);
	return (int64_t)(dend - off);

fail_clusters:
	q2_refcount_update(im, host, n << im->cluster_bits, -1);
	free(head_buf);
	free(tail_buf);
fail:
	free(a);
	return ret;
}

static void write_run(struct q2req *q)
{
	while (q->cursor < q->end && !q->err) {
		int64_t n = write_step(q, q->cursor, q->end - q->cursor, false);

		if (n == 0)
			return;		/* resumed when the allocation is done */
		if (n < 0) {
			set_err(q, (int)n);
			break;
		}
		q->cursor += n;
	}
	req_put(q);
}

/* DISCARD / WRITE_ZEROES of [off, off+len): partial clusters are written
 * with zeroes (WRITE_ZEROES) or left alone (DISCARD); whole clusters become
 * unallocated, or zero clusters when unallocated would show the backing
 * file.  v2 has no zero clusters: with a backing file, whole clusters are
 * written with zeroes (WRITE_ZEROES) or left alone (DISCARD).  The new
 * entries are written at once; the clusters they released are freed at
 * the next write-back (q2_l2_writeback). */
static int64_t zero_step(struct q2req *q, uint64_t off, uint64_t len)
{
	struct qcow2 *s = q->s;
	struct q2img *im = s->img;
	bool discard = q->r->op == BLK_OP_DISCARD;
	uint64_t cstart = off & ~(im->cluster_size - 1), c, l1i, l2i, nfull, newe, j;
	uint64_t l2off, *olds;
	struct q2alloc *a;
	uint8_t *t;
	int ret;

	ret = bound_deferred_frees(im);
	if (ret)
		return ret;
	if (off != cstart || len < im->cluster_size) {
		uint64_t cluster_end = cstart + im->cluster_size;
		uint64_t plen = cluster_end - off < len ? cluster_end - off : len;

		return discard ? (int64_t)plen : write_step(q, off, plen, true);
	}
	c = off >> im->cluster_bits;
	l1i = c >> im->l2_bits;
	l2i = c & (im->l2_entries - 1);
	nfull = len >> im->cluster_bits;
	if (nfull > im->l2_entries - l2i)
		nfull = im->l2_entries - l2i;
	if (im->version < 3 && im->backing)
		return discard ? (int64_t)(nfull << im->cluster_bits)
			       : write_step(q, off, nfull << im->cluster_bits, true);
	newe = im->backing ? QCOW2_OFLAG_ZERO : 0;
	a = alloc_find(s, c);
	if (a) {
		q->wnext = a->waiters;
		a->waiters = q;
		return 0;
	}
	for (j = 1; j < nfull; j++)
		if (alloc_find(s, c + j))
			nfull = j;
	if (!(im->l1[l1i] & QCOW2_OFFSET_MASK) && newe == 0)
		return (int64_t)(nfull << im->cluster_bits);	/* already unallocated */
	ret = q2_l2_prepare(im, l1i, &l2off);
	if (ret)
		return ret;
	ret = q2_cache_get(im, &im->l2_cache, l2off, &t);
	if (ret)
		return ret;
	olds = malloc(nfull * sizeof(*olds));
	if (!olds)
		return -ENOMEM;
	for (j = 0; j < nfull; j++) {
		uint64_t h;

		olds[j] = qcow2_be64(t + (l2i + j) * 8);
		if (qcow2_l2_kind(olds[j], im->version, im->cluster_bits, &h) ==
		    QCOW2_BAD) {
			q2_report(im, "invalid L2 entry %#llx",
				  (unsigned long long)olds[j]);
			free(olds);
			return -EIO;
		}
	}
	for (j = 0; j < nfull; j++)
		qcow2_put_be64(t + (l2i + j) * 8, newe);
	ret = q2_pwrite(im->fd, t + l2i * 8, nfull * 8, l2off + l2i * 8);
	if (ret) {
		q2_cache_invalidate(&im->l2_cache, l2off);
		free(olds);
		return ret;
	}
	/* the entries are gone from the file; their clusters lose these
	 * references at the next write-back, after the L1 entry of a table
	 * just copied from a snapshot's and after a barrier */
	for (j = 0; j < nfull; j++)
		if (olds[j] != newe)
			q2_free_later(im, olds[j]);	/* else a leak */
	free(olds);
	return (int64_t)(nfull << im->cluster_bits);
}

static void zero_run(struct q2req *q)
{
	while (q->cursor < q->end && !q->err) {
		int64_t n = zero_step(q, q->cursor, q->end - q->cursor);

		if (n == 0)
			return;
		if (n < 0) {
			set_err(q, (int)n);
			break;
		}
		q->cursor += n;
	}
	req_put(q);
}

void q2_submit(struct blk_dev *d, struct blk_req *r)
{
	struct qcow2 *s = (struct qcow2 *)d;
	struct q2req *q = malloc(sizeof(*q));
	struct q2op *op;
	int ret;

	if (!q) {
		r->done(r, -ENOMEM);
		return;
	}
	q->s = s;
	q->r = r;
	q->cursor = r->offset;
	q->end = r->offset + r->len;
	q->pending = 1;
	q->err = 0;
	q->wnext = NULL;
	switch (r->op) {
	case BLK_OP_READ:
		read_run(q);
		break;
	case BLK_OP_WRITE:
		write_run(q);
		break;
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		zero_run(q);
		break;
	case BLK_OP_FLUSH:
		/* the dirty L2 tables go to the file (the other metadata is
		 * written through), then one fdatasync makes them and the
		 * completed data durable */
		ret = s->img->writable ? q2_l2_writeback(s->img) : 0;
		op = ret ? NULL : op_new(q, 0);
		if (ret) {
			set_err(q, ret);
		} else if (!op) {
			set_err(q, -ENOMEM);
		} else {
			q->pending++;
			ret = io_engine_fsync(d->engine, s->img->fd, true,
					      &op->cb);
			if (ret < 0)
				op_done(&op->cb, ret);
		}
		req_put(q);
		break;
	default:
		set_err(q, -EINVAL);
		req_put(q);
		break;
	}
}
