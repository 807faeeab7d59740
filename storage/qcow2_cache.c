/* storage/qcow2_cache.c - the qcow2 metadata table cache and the ordered
 * write-back of what points at new metadata (QEMU's qcow2-cache.c is the
 * model).
 *
 * Invariants kept here:
 * - A slot's table_off is 0 or the host offset of the cluster its buffer
 *   holds; a dirty slot holds entries newer than the file's, and is written
 *   back before the slot is reused (eviction), at FLUSH and at close.
 * - Nothing that makes clusters reachable (a dirty L2 table, a new L1 or
 *   refcount table entry) reaches the file before one fdatasync barrier
 *   (q2_meta_barrier) has made every refcount and new table written before
 *   it durable: a crash or power loss leaves at most leaked clusters.
 * - References replaced by entries that only live in a dirty table
 *   (deferred_frees) are dropped only after that table is written back.
 * All synchronous: pread/pwrite on the metadata fd.
 */
#include "storage/qcow2.h"
#include "storage/io_record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int q2_cache_init(struct q2cache *c, unsigned slots, uint64_t table_size)
{
	unsigned i;

	c->slots = slots;
	c->clock = 0;
	c->table_off = calloc(slots, sizeof(*c->table_off));
	c->last_used = calloc(slots, sizeof(*c->last_used));
	c->buf = calloc(slots, sizeof(*c->buf));
	c->dirty = calloc(slots, sizeof(*c->dirty));
	if (!c->table_off || !c->last_used || !c->buf || !c->dirty)
		return -ENOMEM;
	for (i = 0; i < slots; i++)
		if (posix_memalign((void **)&c->buf[i], 4096, table_size))
			return -ENOMEM;
	return 0;
}

void q2_cache_free(struct q2cache *c)
{
	unsigned i;

	if (c->buf)
		for (i = 0; i < c->slots; i++)
			free(c->buf[i]);
	free(c->buf);
	free(c->table_off);
	free(c->last_used);
	free(c->dirty);
	memset(c, 0, sizeof(*c));
}

void q2_cache_invalidate(struct q2cache *c, uint64_t off)
{
	unsigned i;

	for (i = 0; i < c->slots; i++)
		if (c->table_off[i] == off) {
			c->table_off[i] = 0;
			c->dirty[i] = false;
		}
}

void q2_cache_mark_dirty(struct q2cache *c, uint64_t off)
{
	unsigned i;

	for (i = 0; i < c->slots; i++)
		if (c->table_off[i] == off)
			c->dirty[i] = true;
}

/* The table cached for host offset from now stands for host offset to
 * (a copy was just written there). */
void q2_cache_rekey(struct q2cache *c, uint64_t from, uint64_t to)
{
	unsigned i;

	for (i = 0; i < c->slots; i++)
		if (c->table_off[i] == from)
			c->table_off[i] = to;
}

/* The table at host offset off if it is cached, else NULL. */
uint8_t *q2_cache_peek(struct q2cache *c, uint64_t off)
{
	unsigned i;

	for (i = 0; i < c->slots; i++)
		if (c->table_off[i] == off)
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

	for (i = 0; i < c->slots; i++) {
		if (c->table_off[i] == off) {
			c->last_used[i] = ++c->clock;
			*buf = c->buf[i];
			return 0;
		}
		if (c->last_used[i] < c->last_used[victim])
			victim = i;
	}
	if (off == 0 || off + im->cluster_size > im->file_size) {
		q2_report(im, "metadata table at %#llx lies outside the file",
			  (unsigned long long)off);
		return -EIO;
	}
	if (c->dirty[victim]) {	/* write it back before reuse */
		ret = q2_meta_commit(im, true);
		if (!ret)
			ret = q2_pwrite(im->fd, c->buf[victim], im->cluster_size,
					c->table_off[victim]);
		if (ret)
			return ret;
		c->dirty[victim] = false;
	}
	c->table_off[victim] = 0;
	ret = q2_pread(im->fd, c->buf[victim], im->cluster_size, off);
	if (ret < 0)
		return ret;
	c->table_off[victim] = off;
	c->last_used[victim] = ++c->clock;
	*buf = c->buf[victim];
	return 0;
}

/* Before a write that makes clusters reachable (an L2 table written back,
 * an L1 entry, a refcount table entry): make the refcounts and new tables
 * written so far durable, so the order of the crash rules holds across a
 * power loss too (against a killed process, write order alone does it).
 * Allocation itself syncs nothing: new L1 and refcount table entries wait
 * in memory like dirty L2 tables, and the barrier comes once, at FLUSH,
 * close or the eviction of a dirty L2 table (q2_meta_commit). */
int q2_meta_barrier(struct q2img *im)
{
	if (!im->meta_unsynced)
		return 0;
	int ret = q2_fdatasync(im->fd);

	if (ret)
		return ret;
	im->meta_unsynced = false;
	return 0;
}

/* Write entries [r.lo, r.hi] of a host-endian table at off. */
static int write_entries(struct q2img *im, const uint64_t *table,
			 struct q2range r, uint64_t off)
{
	uint64_t n = r.hi - r.lo + 1, i;
	uint8_t *b = malloc(n * 8);
	int ret;

	if (!b)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		qcow2_put_be64(b + i * 8, table[r.lo + i]);
	ret = q2_pwrite(im->fd, b, n * 8, off + r.lo * 8);
	free(b);
	return ret;
}

/* Write what points at new metadata or clusters: first a barrier (see
 * q2_meta_barrier), then the dirty refcount table and L1 entries.  The
 * caller writes dirty L2 tables after this (all under the one barrier). */
int q2_meta_commit(struct q2img *im, bool l2_follows)
{
	bool ptrs = !q2_range_empty(&im->l1_dirty) ||
		    !q2_range_empty(&im->reftable_dirty);
	int ret;

	if (!ptrs && !l2_follows)
		return 0;
	ret = q2_meta_barrier(im);
	if (!ret && !q2_range_empty(&im->reftable_dirty)) {
		ret = write_entries(im, im->reftable, im->reftable_dirty,
				    im->reftable_off);
		if (!ret)
			im->reftable_dirty = Q2_RANGE_EMPTY;
		/* the new refcount blocks' table entries before the L1/L2
		 * pointers that make their clusters reachable */
		im->meta_unsynced = true;
		if (!ret)
			ret = q2_meta_barrier(im);
	}
	if (!ret && !q2_range_empty(&im->l1_dirty)) {
		ret = write_entries(im, im->l1, im->l1_dirty, im->l1_off);
		if (!ret)
			im->l1_dirty = Q2_RANGE_EMPTY;
	}
	if (ret)
		q2_report(im, "cannot write a metadata table: %s", strerror(-ret));
	return ret;
}

/* Remember an L2 entry whose clusters lose a reference once the entry that
 * replaced it is in the file. */
int q2_free_later(struct q2img *im, uint64_t e)
{
	uint64_t h;
	enum qcow2_kind k = qcow2_l2_kind(e, im->version, im->cluster_bits, &h);

	if (k == QCOW2_UNALLOC || k == QCOW2_BAD || (k == QCOW2_ZERO && !h))
		return 0;
	if (im->n_deferred_frees == im->deferred_frees_cap) {
		size_t cap = im->deferred_frees_cap ? im->deferred_frees_cap * 2 : 64;
		uint64_t *n = realloc(im->deferred_frees, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;	/* the caller leaks the cluster */
		im->deferred_frees = n;
		im->deferred_frees_cap = cap;
	}
	im->deferred_frees[im->n_deferred_frees++] = e;
	return 0;
}

/* Write every dirty L2 table, then drop the references they (and
 * write-zeroes/discard, and L2 tables copied from snapshots) replaced.
 * Refcounts for the new clusters were made durable when reserved, and
 * their data writes have completed: the order of the crash rules holds. */
int q2_l2_writeback(struct q2img *im)
{
	struct q2cache *c = &im->l2_cache;
	unsigned i;
	size_t j;
	int ret;

	for (i = 0; i < c->slots && !c->dirty[i]; i++)
		;
	ret = q2_meta_commit(im, i < c->slots);
	if (ret)
		return ret;
	for (i = 0; i < c->slots; i++) {
		if (!c->dirty[i])
			continue;
		ret = q2_pwrite(im->fd, c->buf[i], im->cluster_size, c->table_off[i]);
		if (ret) {
			q2_report(im, "cannot write an L2 table: %s",
				  strerror(-ret));
			return ret;
		}
		c->dirty[i] = false;
	}
	/* what held the references is out of the file; a barrier before
	 * they drop, or a power loss could keep the old entry and lose its
	 * refcount (and the cluster could be reused meanwhile) */
	if (im->n_deferred_frees && (ret = q2_fdatasync(im->fd))) {
		q2_report(im, "cannot sync the image: %s", strerror(-ret));
		return ret;
	}
	for (j = 0; j < im->n_deferred_frees; j++)
		q2_free_entry(im, im->deferred_frees[j]);	/* at worst a leak */
	im->n_deferred_frees = 0;
	return 0;
}
