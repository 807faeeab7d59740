/* storage/qcow2_meta.c - qcow2 metadata: the L2/refcount-block caches,
 * mapping a guest range through the chain, decompression, refcounts and
 * cluster allocation.  All synchronous (pread/pwrite on the metadata fd);
 * the guest data path in qcow2_io.c only comes here on a cache miss or
 * when it allocates.
 *
 * Crash rules kept here: a refcount is written before anything points to
 * the cluster; a new table (L2, refcount block, refcount table) is written
 * before the entry or header field that points to it; an entry is cleared
 * (or replaced, and its table written back) before the refcount of what it
 * pointed to drops.  A kill between any two writes therefore leaves at most
 * leaked clusters.
 */
#include "storage/qcow2.h"
#include "storage/io_record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

static int meta_commit(struct q2img *im, bool l2_follows);

/* ---- table cache ---- */

int q2_cache_init(struct q2cache *c, unsigned n, uint64_t cs)
{
	unsigned i;

	c->n = n;
	c->tick = 0;
	c->key = calloc(n, sizeof(*c->key));
	c->used = calloc(n, sizeof(*c->used));
	c->buf = calloc(n, sizeof(*c->buf));
	c->dirty = calloc(n, sizeof(*c->dirty));
	if (!c->key || !c->used || !c->buf || !c->dirty)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (posix_memalign((void **)&c->buf[i], 4096, cs))
			return -ENOMEM;
	return 0;
}

void q2_cache_free(struct q2cache *c)
{
	unsigned i;

	if (c->buf)
		for (i = 0; i < c->n; i++)
			free(c->buf[i]);
	free(c->buf);
	free(c->key);
	free(c->used);
	free(c->dirty);
	memset(c, 0, sizeof(*c));
}

void q2_cache_invalidate(struct q2cache *c, uint64_t off)
{
	unsigned i;

	for (i = 0; i < c->n; i++)
		if (c->key[i] == off) {
			c->key[i] = 0;
			c->dirty[i] = false;
		}
}

void q2_cache_mark_dirty(struct q2cache *c, uint64_t off)
{
	unsigned i;

	for (i = 0; i < c->n; i++)
		if (c->key[i] == off)
			c->dirty[i] = true;
}

/* Remember an L2 entry whose clusters lose a reference once the entry that
 * replaced it is in the file. */
int q2_free_later(struct q2img *im, uint64_t e)
{
	uint64_t h;
	enum qcow2_kind k = qcow2_l2_kind(e, im->version, im->cb, &h);

	if (k == QCOW2_UNALLOC || k == QCOW2_BAD || (k == QCOW2_ZERO && !h))
		return 0;
	if (im->npfree == im->pfree_cap) {
		size_t cap = im->pfree_cap ? im->pfree_cap * 2 : 64;
		uint64_t *n = realloc(im->pfree, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;	/* the caller leaks the cluster */
		im->pfree = n;
		im->pfree_cap = cap;
	}
	im->pfree[im->npfree++] = e;
	return 0;
}

/* Write every dirty L2 table, then drop the references they replaced.
 * Refcounts for the new clusters were made durable when reserved, and
 * their data writes have completed: the order of the crash rules holds. */
int q2_l2_writeback(struct q2img *im)
{
	struct q2cache *c = &im->l2c;
	unsigned i;
	size_t j;
	int ret;

	for (i = 0; i < c->n && !c->dirty[i]; i++)
		;
	ret = meta_commit(im, i < c->n);
	if (ret)
		return ret;
	for (i = 0; i < c->n; i++) {
		if (!c->dirty[i])
			continue;
		ret = q2_pwrite(im->fd, c->buf[i], im->cs, c->key[i]);
		if (ret) {
			q2_report(im, "cannot write an L2 table: %s",
				  strerror(-ret));
			return ret;
		}
		c->dirty[i] = false;
	}
	for (j = 0; j < im->npfree; j++)
		q2_free_entry(im, im->pfree[j]);	/* at worst a leak */
	im->npfree = 0;
	return 0;
}

/* The table at host offset off if it is cached, else NULL. */
uint8_t *q2_cache_peek(struct q2cache *c, uint64_t off)
{
	unsigned i;

	for (i = 0; i < c->n; i++)
		if (c->key[i] == off)
			return c->buf[i];
	return NULL;
}

/* The table at host offset off, loaded if needed.  The pointer stays valid
 * until the next q2_cache_get on the same cache. */
int q2_cache_get(struct q2img *im, struct q2cache *c, uint64_t off,
		 uint8_t **buf)
{
	unsigned i, victim = 0;
	int ret;

	for (i = 0; i < c->n; i++) {
		if (c->key[i] == off) {
			c->used[i] = ++c->tick;
			*buf = c->buf[i];
			return 0;
		}
		if (c->used[i] < c->used[victim])
			victim = i;
	}
	if (off == 0 || off + im->cs > im->file_size) {
		q2_report(im, "metadata table at %#llx lies outside the file",
			  (unsigned long long)off);
		return -EIO;
	}
	if (c->dirty[victim]) {	/* write it back before reuse */
		ret = meta_commit(im, true);
		if (!ret)
			ret = q2_pwrite(im->fd, c->buf[victim], im->cs,
					c->key[victim]);
		if (ret)
			return ret;
		c->dirty[victim] = false;
	}
	c->key[victim] = 0;
	ret = q2_pread(im->fd, c->buf[victim], im->cs, off);
	if (ret < 0)
		return ret;
	c->key[victim] = off;
	c->used[victim] = ++c->tick;
	*buf = c->buf[victim];
	return 0;
}

/* ---- mapping ---- */

/* Map [off, off + len) of one image (no backing lookup).  The result covers
 * at most the rest of one L2 table; consecutive clusters of one kind (and,
 * for data, contiguous on the host) are merged. */
int q2_map(struct q2img *im, uint64_t off, uint64_t len, struct q2map *m)
{
	uint64_t ci, in, l1i, l2i, room, e, host, covered, j;
	enum qcow2_kind kind;
	uint8_t *t;
	int ret;

	memset(m, 0, sizeof(*m));
	m->im = im;
	if (im->raw) {
		if (off >= im->size) {
			m->kind = QCOW2_ZERO;
			m->len = len;
		} else {
			m->kind = QCOW2_DATA;
			m->host = off;
			m->len = len < im->size - off ? len : im->size - off;
		}
		return 0;
	}
	ci = off >> im->cb;
	in = off & (im->cs - 1);
	l1i = ci >> im->l2_bits;
	l2i = ci & (im->l2_n - 1);
	room = ((im->l2_n - l2i) << im->cb) - in;
	if (len > room)
		len = room;
	if (l1i >= im->l1_size || !(im->l1[l1i] & QCOW2_OFFSET_MASK)) {
		m->kind = QCOW2_UNALLOC;
		m->len = len;
		return 0;
	}
	ret = q2_cache_get(im, &im->l2c, im->l1[l1i] & QCOW2_OFFSET_MASK, &t);
	if (ret)
		return ret;
	e = qcow2_be64(t + l2i * 8);
	kind = qcow2_l2_kind(e, im->version, im->cb, &host);
	if (kind == QCOW2_BAD) {
		q2_report(im, "invalid L2 entry %#llx for guest offset %#llx",
			  (unsigned long long)e, (unsigned long long)off);
		return -EIO;
	}
	m->kind = kind;
	m->entry = e;
	m->copied = (e & QCOW2_OFLAG_COPIED) != 0;
	if (kind == QCOW2_DATA)
		m->host = host + in;
	covered = im->cs - in;
	if (kind != QCOW2_COMPRESSED) {
		for (j = l2i + 1; covered < len; j++) {
			uint64_t e2 = qcow2_be64(t + j * 8), h2;

			if (qcow2_l2_kind(e2, im->version, im->cb, &h2) != kind)
				break;
			if (kind == QCOW2_DATA &&
			    (h2 != host + ((j - l2i) << im->cb) ||
			     ((e2 ^ e) & QCOW2_OFLAG_COPIED)))
				break;
			covered += im->cs;
		}
	}
	m->len = len < covered ? len : covered;
	return 0;
}

/* Map through the backing chain: the result is DATA (of some image),
 * ZERO or COMPRESSED, never UNALLOC. */
int q2_resolve(struct q2img *im, uint64_t off, uint64_t len, struct q2map *m)
{
	for (;;) {
		int ret = q2_map(im, off, len, m);

		if (ret)
			return ret;
		if (m->kind != QCOW2_UNALLOC)
			return 0;
		len = m->len;
		if (!im->backing || off >= im->backing->size) {
			m->kind = QCOW2_ZERO;
			return 0;
		}
		if (len > im->backing->size - off)
			len = im->backing->size - off;
		im = im->backing;
	}
}

/* ---- compressed clusters ---- */

static int inflate_raw(const uint8_t *in, uint64_t inlen, uint8_t *out,
		       uint64_t outlen)
{
	z_stream z;
	int ret;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -15) != Z_OK)	/* raw deflate, no header */
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	ret = inflate(&z, Z_FINISH);
	inflateEnd(&z);
	/* decompression stops once a full cluster came out: trailing bytes
	 * of the last sector are not part of the stream */
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR || ret == Z_OK) &&
	    z.avail_out == 0)
		return 0;
	return -EIO;
}

#ifdef HAVE_ZSTD
static int unzstd(struct q2img *im, const uint8_t *in, uint64_t inlen,
		  uint8_t *out, uint64_t outlen)
{
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { out, outlen, 0 };

	if (!im->zstd) {
		im->zstd = ZSTD_createDCtx();
		if (!im->zstd)
			return -ENOMEM;
	}
	ZSTD_DCtx_reset(im->zstd, ZSTD_reset_session_only);
	while (ob.pos < ob.size) {
		size_t before_in = ib.pos, before_out = ob.pos;
		size_t r = ZSTD_decompressStream(im->zstd, &ob, &ib);

		if (ZSTD_isError(r))
			return -EIO;
		if (ib.pos == before_in && ob.pos == before_out)
			return -EIO;	/* truncated stream */
	}
	return 0;
}
#endif

/* Decompress the cluster an L2 entry describes; *out (cs bytes) is valid
 * until the next call for this image. */
int q2_decompress(struct q2img *im, uint64_t entry, const uint8_t **out)
{
	struct qcow2_cdesc d = qcow2_cdesc_decode(entry, im->cb);
	uint64_t n = qcow2_cdesc_bytes(d);
	int ret;

	if (im->cbuf_valid && im->cbuf_entry == entry) {
		*out = im->cbuf;
		return 0;
	}
	if (!im->cbuf) {
		im->cbuf = malloc(im->cs);
		im->cin = malloc(2 * im->cs + 512);
		if (!im->cbuf || !im->cin)
			return -ENOMEM;
	}
	if (d.offset < im->cs || d.offset >= im->file_size) {
		q2_report(im, "compressed cluster at %#llx lies outside the file",
			  (unsigned long long)d.offset);
		return -EIO;
	}
	/* the last sector may run past the end of the file */
	if (n > im->file_size - d.offset)
		n = im->file_size - d.offset;
	im->cbuf_valid = false;
	ret = q2_pread(im->fd, im->cin, n, d.offset);
	if (ret < 0)
		return ret;
	if (im->compression == QCOW2_COMPRESS_ZLIB)
		ret = inflate_raw(im->cin, n, im->cbuf, im->cs);
#ifdef HAVE_ZSTD
	else if (im->compression == QCOW2_COMPRESS_ZSTD)
		ret = unzstd(im, im->cin, n, im->cbuf, im->cs);
#endif
	else
		ret = -ENOTSUP;
	if (ret) {
		q2_report(im, "cannot decompress the cluster at %#llx",
			  (unsigned long long)d.offset);
		return -EIO;
	}
	im->cbuf_entry = entry;
	im->cbuf_valid = true;
	*out = im->cbuf;
	return 0;
}

/* Read guest bytes of an image synchronously (copy-on-write sources). */
int q2_read_sync(struct q2img *im, uint64_t off, void *buf, uint64_t len)
{
	uint8_t *p = buf;

	while (len) {
		struct q2map m;
		const uint8_t *c;
		int ret = q2_resolve(im, off, len, &m);

		if (ret)
			return ret;
		switch (m.kind) {
		case QCOW2_DATA:
			ret = q2_pread(m.im->fd, p, m.len, m.host);
			break;
		case QCOW2_COMPRESSED:
			ret = q2_decompress(m.im, m.entry, &c);
			if (!ret)
				memcpy(p, c + (off & (m.im->cs - 1)), m.len);
			break;
		default:
			memset(p, 0, m.len);
			break;
		}
		if (ret < 0)
			return ret;
		p += m.len;
		off += m.len;
		len -= m.len;
	}
	return 0;
}

/* The current contents of bytes [in_off, in_off + len) of the guest cluster
 * starting at guest offset gc, whose L2 entry is entry: what a partial
 * write must keep. */
int q2_fill_old(struct q2img *im, uint64_t entry, uint64_t gc,
		uint64_t in_off, uint8_t *buf, uint64_t len)
{
	uint64_t host;
	const uint8_t *c;
	int ret;

	switch (qcow2_l2_kind(entry, im->version, im->cb, &host)) {
	case QCOW2_DATA:
		ret = q2_pread(im->fd, buf, len, host + in_off);
		return ret < 0 ? ret : 0;
	case QCOW2_COMPRESSED:
		ret = q2_decompress(im, entry, &c);
		if (!ret)
			memcpy(buf, c + in_off, len);
		return ret;
	case QCOW2_ZERO:
		memset(buf, 0, len);
		return 0;
	case QCOW2_UNALLOC: {
		uint64_t off = gc + in_off, n = 0;

		memset(buf, 0, len);
		if (!im->backing || off >= im->backing->size)
			return 0;
		n = im->backing->size - off;
		return q2_read_sync(im->backing, off, buf, len < n ? len : n);
	}
	default:
		return -EIO;
	}
}

/* ---- refcounts ---- */

/* Write refcount metadata (blocks, table entries); what it changes must
 * reach the disk before any new reference to it: see q2_meta_barrier. */
static int rc_pwrite(struct q2img *im, const void *buf, uint64_t len,
		     uint64_t off)
{
	im->meta_unsynced = true;
	return q2_pwrite(im->fd, buf, len, off);
}

/* Before a write that makes clusters reachable (an L2 table written back,
 * an L1 entry, a refcount table entry): make the refcounts and new tables
 * written so far durable, so the order of the crash rules holds across a
 * power loss too (against a killed process, write order alone does it).
 * Allocation itself syncs nothing: new L1 and refcount table entries wait
 * in memory like dirty L2 tables, and the barrier comes once, at FLUSH,
 * close or the eviction of a dirty L2 table (meta_commit). */
int q2_meta_barrier(struct q2img *im)
{
	if (!im->meta_unsynced)
		return 0;
	if (fdatasync(im->fd) < 0)
		return -errno;
	io_record_sync(im->fd);
	im->meta_unsynced = false;
	return 0;
}

static void mark_dirty(uint64_t *lo, uint64_t *hi, uint64_t i)
{
	if (*lo > *hi) {
		*lo = *hi = i;
	} else {
		if (i < *lo)
			*lo = i;
		if (i > *hi)
			*hi = i;
	}
}

/* Write entries [lo, hi] of a host-endian table at off. */
static int write_entries(struct q2img *im, const uint64_t *t, uint64_t lo,
			 uint64_t hi, uint64_t off)
{
	uint64_t n = hi - lo + 1, i;
	uint8_t *b = malloc(n * 8);
	int ret;

	if (!b)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		qcow2_put_be64(b + i * 8, t[lo + i]);
	ret = q2_pwrite(im->fd, b, n * 8, off + lo * 8);
	free(b);
	return ret;
}

/* Write what points at new metadata or clusters: first a barrier (see
 * q2_meta_barrier), then the dirty refcount table and L1 entries.  The
 * caller writes dirty L2 tables after this (all under the one barrier). */
static int meta_commit(struct q2img *im, bool l2_follows)
{
	bool ptrs = im->l1_dlo <= im->l1_dhi || im->rt_dlo <= im->rt_dhi;
	int ret;

	if (!ptrs && !l2_follows)
		return 0;
	ret = q2_meta_barrier(im);
	if (!ret && im->rt_dlo <= im->rt_dhi) {
		ret = write_entries(im, im->rt, im->rt_dlo, im->rt_dhi, im->rt_off);
		if (!ret)
			im->rt_dlo = 1, im->rt_dhi = 0;
		im->meta_unsynced = true;
		if (!ret)
			ret = q2_meta_barrier(im);
	}
	if (!ret && im->l1_dlo <= im->l1_dhi) {
		ret = write_entries(im, im->l1, im->l1_dlo, im->l1_dhi, im->l1_off);
		if (!ret)
			im->l1_dlo = 1, im->l1_dhi = 0;
	}
	if (ret)
		q2_report(im, "cannot write a metadata table: %s", strerror(-ret));
	return ret;
}

int q2_rc_get(struct q2img *im, uint64_t cluster, uint64_t *val)
{
	uint64_t bi = cluster / im->rb_n;
	uint8_t *b;
	int ret;

	*val = 0;
	if (bi >= im->rt_size || !im->rt[bi])
		return 0;
	ret = q2_cache_get(im, &im->rbc, im->rt[bi], &b);
	if (ret)
		return ret;
	*val = qcow2_rc_get(b, im->rc_order, cluster % im->rb_n);
	return 0;
}

/* The refcount block for block index bi is missing: every cluster it would
 * cover is free, so put the block in the first of them, counting itself. */
static int create_refblock(struct q2img *im, uint64_t bi)
{
	uint64_t host = bi * im->rb_n * im->cs;
	uint8_t *b;
	int ret;

	if (posix_memalign((void **)&b, 4096, im->cs))
		return -ENOMEM;
	memset(b, 0, im->cs);
	qcow2_rc_set(b, im->rc_order, 0, 1);
	ret = rc_pwrite(im, b, im->cs, host);
	free(b);
	if (ret)
		return ret;
	if (host + im->cs > im->file_size)
		im->file_size = host + im->cs;
	if (host + im->cs > im->alloc_end)
		im->alloc_end = host + im->cs;
	im->rt[bi] = host;
	q2_cache_invalidate(&im->rbc, host);
	/* the table entry goes out at the next commit, after a barrier */
	mark_dirty(&im->rt_dlo, &im->rt_dhi, bi);
	return 0;
}

/* Grow the refcount table to at least min_entries.  The new table and the
 * refcount blocks that cover it go together at the end of the image, each
 * block counting the clusters of that area it covers; the header switches
 * to the new table only when all of it is on disk, then the old table's
 * clusters are freed. */
static int grow_reftable(struct q2img *im, uint64_t min_entries)
{
	uint64_t per_cluster = im->cs / 8, entries, m, k = 0, a, i, bi;
	uint64_t *nrt = NULL, *newblk = NULL, nnew = 0;
	uint8_t *tbuf = NULL, *blk = NULL, hdr[12];
	uint64_t old_off = im->rt_off, old_clusters = im->rt_clusters;
	int ret = -ENOMEM;

	a = im->alloc_end >> im->cb;	/* first free cluster of the area */
	entries = im->rt_size * 2 > min_entries ? im->rt_size * 2 : min_entries;
	for (;;) {
		uint64_t need = 0, last;

		entries = (entries + per_cluster - 1) / per_cluster * per_cluster;
		m = entries / per_cluster;
		last = a + k + m - 1;
		if (last / im->rb_n >= entries) {
			entries = last / im->rb_n + 1;
			continue;
		}
		for (bi = a / im->rb_n; bi <= last / im->rb_n; bi++)
			if (bi >= im->rt_size || !im->rt[bi])
				need++;
		if (need == k)
			break;
		k = need;
	}
	if (m * im->cs > QCOW2_MAX_RT_BYTES) {
		q2_report(im, "refcount table would exceed %u bytes",
			  QCOW2_MAX_RT_BYTES);
		return -ENOSPC;
	}
	nrt = calloc(entries, sizeof(*nrt));
	newblk = calloc(k ? k : 1, sizeof(*newblk));
	if (posix_memalign((void **)&blk, 4096, im->cs))
		blk = NULL;
	if (!nrt || !newblk || !blk)
		goto out;
	memcpy(nrt, im->rt, im->rt_size * sizeof(*nrt));
	/* refcount blocks first (clusters a .. a+k-1), then the table */
	for (bi = a / im->rb_n; bi <= (a + k + m - 1) / im->rb_n; bi++)
		if (bi >= im->rt_size || !im->rt[bi]) {
			nrt[bi] = (a + nnew) << im->cb;
			newblk[nnew++] = bi;
		}
	for (i = 0; i < nnew; i++) {
		uint64_t c;

		bi = newblk[i];
		memset(blk, 0, im->cs);
		for (c = a; c < a + k + m; c++)
			if (c / im->rb_n == bi)
				qcow2_rc_set(blk, im->rc_order, c % im->rb_n, 1);
		ret = q2_pwrite(im->fd, blk, im->cs, nrt[bi]);
		if (ret)
			goto out;
	}
	/* area clusters covered by blocks that already exist */
	for (i = a; i < a + k + m; i++) {
		bi = i / im->rb_n;
		if (bi < im->rt_size && im->rt[bi]) {
			ret = q2_rc_update(im, i << im->cb, im->cs, 1);
			if (ret)
				goto out;
		}
	}
	if (posix_memalign((void **)&tbuf, 4096, m * im->cs)) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < entries; i++)
		qcow2_put_be64(tbuf + i * 8, nrt[i]);
	ret = q2_pwrite(im->fd, tbuf, m * im->cs, (a + k) << im->cb);
	if (!ret && fdatasync(im->fd))
		ret = -errno;
	else if (!ret)
		io_record_sync(im->fd);
	if (ret)
		goto out;
	qcow2_put_be64(hdr, (a + k) << im->cb);
	qcow2_put_be32(hdr + 8, (uint32_t)m);
	ret = q2_pwrite(im->fd, hdr, 12, QH_RT_OFF);
	if (!ret && fdatasync(im->fd))
		ret = -errno;
	else if (!ret)
		io_record_sync(im->fd);
	if (ret)
		goto out;
	free(im->rt);
	im->rt = nrt;
	nrt = NULL;
	im->rt_dlo = 1, im->rt_dhi = 0;	/* all of it was written above */
	im->rt_size = entries;
	im->rt_off = (a + k) << im->cb;
	im->rt_clusters = (uint32_t)m;
	im->alloc_end = (a + k + m) << im->cb;
	if (im->alloc_end > im->file_size)
		im->file_size = im->alloc_end;
	ret = q2_rc_update(im, old_off, old_clusters << im->cb, -1);
out:
	free(nrt);
	free(newblk);
	free(blk);
	free(tbuf);
	return ret;
}

/* A cluster whose refcount just dropped to 0. */
static void cluster_freed(struct q2img *im, uint64_t c)
{
	struct q2quar *q;

	if (im->seq_oldest == UINT64_MAX) {	/* nothing in flight */
		if (c < im->free_hint)
			im->free_hint = c;
		return;
	}
	q = im->nquar ? &im->quar[im->nquar - 1] : NULL;
	if (q && q->seq == im->seq_now && q->c + q->n == c) {
		q->n++;
		return;
	}
	if (im->nquar == im->quar_cap) {
		size_t cap = im->quar_cap ? im->quar_cap * 2 : 16;
		struct q2quar *nq = realloc(im->quar, cap * sizeof(*nq));

		if (!nq)	/* no memory: leave it out of the allocator */
			return;	/* until the next open (a leak of nothing) */
		im->quar = nq;
		im->quar_cap = cap;
	}
	im->quar[im->nquar++] = (struct q2quar){ c, 1, im->seq_now };
}

/* Release what the ops in flight can no longer touch. */
static void quar_prune(struct q2img *im)
{
	size_t i, j = 0;

	for (i = 0; i < im->nquar; i++) {
		if (im->quar[i].seq < im->seq_oldest) {
			if (im->quar[i].c < im->free_hint)
				im->free_hint = im->quar[i].c;
		} else {
			im->quar[j++] = im->quar[i];
		}
	}
	im->nquar = j;
}

static bool quarantined(const struct q2img *im, uint64_t c)
{
	size_t i;

	for (i = 0; i < im->nquar; i++)
		if (c >= im->quar[i].c && c < im->quar[i].c + im->quar[i].n)
			return true;
	return false;
}

/* Add delta (+1/-1) to the refcount of every cluster in [off, off+len). */
int q2_rc_update(struct q2img *im, uint64_t off, uint64_t len, int delta)
{
	uint64_t c = off >> im->cb, end = (off + len + im->cs - 1) >> im->cb;
	uint64_t max = qcow2_rc_max(im->rc_order);

	while (c < end) {
		uint64_t bi = c / im->rb_n, first = c % im->rb_n, idx;
		uint64_t lo = UINT64_MAX, hi = 0, b0, bl;
		uint8_t *b;
		int ret;

		if (bi >= im->rt_size || !im->rt[bi]) {
			/* alloc_run creates blocks before counting */
			q2_report(im, "cluster %#llx has no refcount block",
				  (unsigned long long)(c << im->cb));
			return -EIO;
		}
		ret = q2_cache_get(im, &im->rbc, im->rt[bi], &b);
		if (ret)
			return ret;
		for (idx = first; idx < im->rb_n && c < end; idx++, c++) {
			uint64_t v = qcow2_rc_get(b, im->rc_order, idx);

			if ((delta < 0 && v == 0) || (delta > 0 && v == max)) {
				q2_report(im, "refcount of cluster %#llx would %s",
					  (unsigned long long)(c << im->cb),
					  delta < 0 ? "go below 0" : "overflow");
				if (hi)
					q2_pwrite(im->fd, b + lo, hi - lo,
						  im->rt[bi] + lo);
				return -EIO;
			}
			v += delta;
			qcow2_rc_set(b, im->rc_order, idx, v);
			qcow2_rc_byte_range(im->rc_order, idx, &b0, &bl);
			if (b0 < lo)
				lo = b0;
			if (b0 + bl > hi)
				hi = b0 + bl;
			if (v == 0) {
				/* the cluster may be reused for anything */
				cluster_freed(im, c);
				q2_cache_invalidate(&im->l2c, c << im->cb);
				im->cbuf_valid = false;
			}
		}
		ret = rc_pwrite(im, b + lo, hi - lo, im->rt[bi] + lo);
		if (ret)
			return ret;
	}
	return 0;
}

/* Find and reference up to n contiguous free clusters (at least one);
 * *host gets the first, *got how many. */
static int alloc_run(struct q2img *im, uint64_t n, uint64_t *host,
		     uint64_t *got)
{
	uint64_t c, start, cnt, v, bi;
	int ret;

	quar_prune(im);
	c = im->free_hint;
	if (c == 0)
		c = 1;	/* never the header, whatever the refcounts say */
	/* first free cluster; below it all are used or quarantined */
	for (;;) {
		bi = c / im->rb_n;
		if ((bi >= im->rt_size || !im->rt[bi]) && !quarantined(im, c))
			break;
		ret = q2_rc_get(im, c, &v);
		if (ret)
			return ret;
		if (v == 0 && !quarantined(im, c))
			break;
		c++;
	}
	im->free_hint = c;
	start = c;
	for (cnt = 1; cnt < n; cnt++) {
		ret = q2_rc_get(im, start + cnt, &v);
		if (ret)
			return ret;
		if (v || quarantined(im, start + cnt))
			break;
	}
	/* A missing refcount block goes into the first cluster it covers,
	 * which may be inside this run: create it, then search again. */
	for (bi = start / im->rb_n; bi <= (start + cnt - 1) / im->rb_n; bi++) {
		if (bi < im->rt_size && im->rt[bi])
			continue;
		ret = bi >= im->rt_size ? grow_reftable(im, bi + 1)
					: create_refblock(im, bi);
		if (ret)
			return ret;
		return alloc_run(im, n, host, got);
	}
	ret = q2_rc_update(im, start << im->cb, cnt << im->cb, 1);
	if (ret)
		return ret;
	im->free_hint = start + cnt;
	if (((start + cnt) << im->cb) > im->alloc_end)
		im->alloc_end = (start + cnt) << im->cb;
	if (im->alloc_end > im->file_size)	/* reads past EOF give zeroes */
		im->file_size = im->alloc_end;
	*host = start << im->cb;
	*got = cnt;
	return 0;
}

/* Clusters are handed out from a reservation: a run of free clusters whose
 * refcounts were raised in one go (so a stream of allocations costs no
 * refcount I/O).  Nothing can point at them on disk before the next
 * q2_meta_barrier.  Reservations start at 32 MiB and double while the
 * image keeps allocating (up to 256 MiB or 64Ki clusters).  A crash leaks
 * at most the unused rest (clusters past the end of the file, mostly: no
 * space), and a clean close gives it back. */
#define QCOW2_RESV_MIN (32ULL << 20)
#define QCOW2_RESV_MAX (256ULL << 20)

int q2_alloc_clusters(struct q2img *im, uint64_t n, uint64_t *host,
		      uint64_t *got)
{
	if (im->resv_n == 0) {
		uint64_t want, h, g, max = QCOW2_RESV_MAX >> im->cb;
		int ret;

		if (max > 65536)
			max = 65536;
		if (im->resv_next == 0)
			im->resv_next = QCOW2_RESV_MIN >> im->cb;
		want = im->resv_next;
		im->resv_next = want * 2 < max ? want * 2 : max;

		ret = alloc_run(im, n > want ? n : want, &h, &g);
		if (ret)
			return ret;
		im->resv_c = h >> im->cb;
		im->resv_n = g;

	}
	*got = n < im->resv_n ? n : im->resv_n;
	*host = im->resv_c << im->cb;
	im->resv_c += *got;
	im->resv_n -= *got;
	return 0;
}

/* Give back what is left of the reservation (clean close). */
int q2_release_reservation(struct q2img *im)
{
	int ret = 0;

	if (im->resv_n)
		ret = q2_rc_update(im, im->resv_c << im->cb,
				   im->resv_n << im->cb, -1);
	im->resv_n = 0;
	return ret;
}

/* Drop the references an L2 entry held (after the entry is gone). */
int q2_free_entry(struct q2img *im, uint64_t e)
{
	uint64_t host, first, count;
	struct qcow2_cdesc d;

	switch (qcow2_l2_kind(e, im->version, im->cb, &host)) {
	case QCOW2_DATA:
	case QCOW2_ZERO:
		return host ? q2_rc_update(im, host, im->cs, -1) : 0;
	case QCOW2_COMPRESSED:
		d = qcow2_cdesc_decode(e, im->cb);
		qcow2_cdesc_clusters(d, im->cb, &first, &count);
		return q2_rc_update(im, first << im->cb, count << im->cb, -1);
	default:
		return 0;
	}
}

/* Make the L2 table of L1 index l1i writable: allocate it (zeroed) if
 * missing.  A table without the COPIED flag is shared with a snapshot
 * unless its refcount is 1 (then only the flag was stale). */
int q2_l2_prepare(struct q2img *im, uint64_t l1i, uint64_t *l2off)
{
	uint64_t e = im->l1[l1i], off = e & QCOW2_OFFSET_MASK, got, v;
	int ret;

	if (off && (e & QCOW2_OFLAG_COPIED)) {
		*l2off = off;
		return 0;
	}
	if (off) {
		ret = q2_rc_get(im, off >> im->cb, &v);
		if (ret)
			return ret;
		if (v != 1) {
			q2_report(im, "L2 table at %#llx is shared (refcount %llu): "
				  "writing images with internal snapshots is not supported",
				  (unsigned long long)off, (unsigned long long)v);
			return -ENOTSUP;
		}
	} else {
		ret = q2_alloc_clusters(im, 1, &off, &got);
		if (ret)
			return ret;
		q2_cache_invalidate(&im->l2c, off);
		ret = q2_pwrite(im->fd, im->zero_cluster, im->cs, off);
		if (ret)
			return ret;
		if (off + im->cs > im->file_size)
			im->file_size = off + im->cs;
		im->meta_unsynced = true;
	}
	/* the L1 entry goes out at the next commit, after a barrier makes
	 * the table and its refcount durable */
	im->l1[l1i] = off | QCOW2_OFLAG_COPIED;
	mark_dirty(&im->l1_dlo, &im->l1_dhi, l1i);
	*l2off = off;
	return 0;
}
