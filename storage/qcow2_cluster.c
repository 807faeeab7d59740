/* storage/qcow2_cluster.c - mapping guest offsets to host clusters through
 * the L1 and L2 tables and the backing chain, reading what a partial write
 * must keep, and making an L2 table writable (QEMU's qcow2-cluster.c is the
 * model).
 *
 * Invariants kept here:
 * - A mapping never spans two L2 tables, and merges only entries of one
 *   kind (for data: contiguous on the host, same COPIED flag).
 * - An entry with reserved bits or a misaligned offset is never followed:
 *   the request fails with -EIO and one line about the image.
 * - An L1 entry points at a new L2 table only after the table (zeroed) and
 *   its refcount were written; the entry itself waits for the next commit
 *   (qcow2_cache.c), after a barrier.
 */
#include "storage/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Map [off, off + len) of one image (no backing lookup).  The result covers
 * at most the rest of one L2 table; consecutive clusters of one kind (and,
 * for data, contiguous on the host) are merged. */
int q2_map(struct q2img *im, uint64_t off, uint64_t len, struct q2map *m)
{
	uint64_t guest_cluster, in_cluster, l1i, l2i, room, e, host, covered, j;
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
	guest_cluster = off >> im->cluster_bits;
	in_cluster = off & (im->cluster_size - 1);
	l1i = guest_cluster >> im->l2_bits;
	l2i = guest_cluster & (im->l2_entries - 1);
	room = ((im->l2_entries - l2i) << im->cluster_bits) - in_cluster;
	if (len > room)
		len = room;
	if (l1i >= im->l1_size || !(im->l1[l1i] & QCOW2_OFFSET_MASK)) {
		m->kind = QCOW2_UNALLOC;
		m->len = len;
		return 0;
	}
	ret = q2_cache_get(im, &im->l2_cache, im->l1[l1i] & QCOW2_OFFSET_MASK, &t);
	if (ret)
		return ret;
	e = qcow2_be64(t + l2i * 8);
	kind = qcow2_l2_kind(e, im->version, im->cluster_bits, &host);
	if (kind == QCOW2_BAD) {
		q2_report(im, "invalid L2 entry %#llx for guest offset %#llx",
			  (unsigned long long)e, (unsigned long long)off);
		return -EIO;
	}
	m->kind = kind;
	m->entry = e;
	m->copied = (e & QCOW2_OFLAG_COPIED) != 0;
	if (kind == QCOW2_DATA)
		m->host = host + in_cluster;
	covered = im->cluster_size - in_cluster;
	if (kind != QCOW2_COMPRESSED) {
		for (j = l2i + 1; covered < len; j++) {
			uint64_t e2 = qcow2_be64(t + j * 8), h2;

			if (qcow2_l2_kind(e2, im->version, im->cluster_bits, &h2) != kind)
				break;
			if (kind == QCOW2_DATA &&
			    (h2 != host + ((j - l2i) << im->cluster_bits) ||
			     ((e2 ^ e) & QCOW2_OFLAG_COPIED)))
				break;
			covered += im->cluster_size;
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
				memcpy(p, c + (off & (m.im->cluster_size - 1)), m.len);
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

	switch (qcow2_l2_kind(entry, im->version, im->cluster_bits, &host)) {
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

/* The L2 table at old is shared with a snapshot (refcount > 1): copy it
 * into a fresh cluster for the active L1 table (copy on write).  The copy
 * keeps every entry but drops the COPIED flags: what a shared table points
 * to is shared too, and a stale flag must not let a write land in a
 * snapshot's cluster.  The old table loses the active image's reference
 * only once the L1 entry pointing at the copy is in the file (after the
 * next commit: q2_free_later), so a crash in between leaks at most. */
static int l2_copy(struct q2img *im, uint64_t old, uint64_t *copy)
{
	uint64_t off, got, i;
	uint8_t *t;
	int ret = q2_alloc_clusters(im, 1, &off, &got);

	if (ret)
		return ret;
	q2_cache_invalidate(&im->l2_cache, off);
	ret = q2_cache_get(im, &im->l2_cache, old, &t);
	if (ret)
		goto fail;
	for (i = 0; i < im->l2_entries; i++) {
		uint64_t e = qcow2_be64(t + i * 8);

		if (e & QCOW2_OFLAG_COPIED)
			qcow2_put_be64(t + i * 8, e & ~QCOW2_OFLAG_COPIED);
	}
	/* the cached table now holds the copy (the old one is the
	 * snapshot's alone from here, and never read again) */
	q2_cache_rekey(&im->l2_cache, old, off);
	ret = q2_pwrite(im->fd, t, im->cluster_size, off);
	if (ret) {
		q2_cache_invalidate(&im->l2_cache, off);
		goto fail;
	}
	if (off + im->cluster_size > im->file_size)
		im->file_size = off + im->cluster_size;
	im->meta_unsynced = true;
	q2_free_later(im, old);		/* no memory: the old table leaks */
	*copy = off;
	return 0;
fail:
	q2_refcount_update(im, off, im->cluster_size, -1);
	return ret;
}

/* Make the L2 table of L1 index l1i writable: allocate it (zeroed) if
 * missing, copy it if shared with a snapshot.  A table without the COPIED
 * flag is shared unless its refcount is 1 (then only the flag was
 * stale). */
int q2_l2_prepare(struct q2img *im, uint64_t l1i, uint64_t *l2off)
{
	uint64_t e = im->l1[l1i], off = e & QCOW2_OFFSET_MASK, got, v;
	int ret;

	if (off && (e & QCOW2_OFLAG_COPIED)) {
		*l2off = off;
		return 0;
	}
	if (off) {
		ret = q2_refcount_get(im, off >> im->cluster_bits, &v);
		if (ret)
			return ret;
		if (v == 0) {
			q2_report(im, "L2 table at %#llx has refcount 0",
				  (unsigned long long)off);
			return -EIO;
		}
		if (v > 1) {
			ret = l2_copy(im, off, &off);
			if (ret)
				return ret;
		}
	} else {
		ret = q2_alloc_clusters(im, 1, &off, &got);
		if (ret)
			return ret;
		q2_cache_invalidate(&im->l2_cache, off);
		ret = q2_pwrite(im->fd, im->zero_cluster, im->cluster_size, off);
		if (ret)
			return ret;
		if (off + im->cluster_size > im->file_size)
			im->file_size = off + im->cluster_size;
		im->meta_unsynced = true;
	}
	/* the L1 entry goes out at the next commit, after a barrier makes
	 * the table and its refcount durable */
	im->l1[l1i] = off | QCOW2_OFLAG_COPIED;
	q2_range_add(&im->l1_dirty, l1i);
	*l2off = off;
	return 0;
}
