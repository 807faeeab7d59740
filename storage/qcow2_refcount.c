/* storage/qcow2_refcount.c - refcounts and cluster allocation: reading
 * and updating refcounts, creating refcount blocks, growing the refcount
 * table, the reservation clusters are handed out from, and the quarantine
 * of freed clusters (QEMU's qcow2-refcount.c is the model).
 *
 * Invariants kept here:
 * - A refcount is written before anything can point to its cluster, and
 *   dropped only after what pointed to it is gone from the file (the
 *   callers order it; here refcount blocks are written through).
 * - A new refcount block is written (counting itself) before the refcount
 *   table entry that points to it, which waits in memory for the next
 *   commit; a grown refcount table is complete on disk, synced, before the
 *   header points to it, and the old one is freed after.
 * - The header cluster is never allocated; a refcount never goes below 0 or
 *   above its maximum (the update fails with -EIO instead).
 * - A freed cluster is handed out again only after every data op in flight
 *   when it was freed has completed (quarantine).
 */
#include "storage/qcow2.h"
#include "storage/io_record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Write refcount metadata (blocks, table entries); what it changes must
 * reach the disk before any new reference to it: see q2_meta_barrier. */
static int refcount_pwrite(struct q2img *im, const void *buf, uint64_t len,
		     uint64_t off)
{
	im->meta_unsynced = true;
	return q2_pwrite(im->fd, buf, len, off);
}

int q2_refcount_get(struct q2img *im, uint64_t cluster, uint64_t *val)
{
	uint64_t bi = cluster / im->refblock_entries;
	uint8_t *b;
	int ret;

	*val = 0;
	if (bi >= im->reftable_entries || !im->reftable[bi])
		return 0;
	ret = q2_cache_get(im, &im->refblock_cache, im->reftable[bi], &b);
	if (ret)
		return ret;
	*val = qcow2_rc_get(b, im->refcount_order, cluster % im->refblock_entries);
	return 0;
}

/* The refcount block for block index bi is missing: every cluster it would
 * cover is free, so put the block in the first of them, counting itself. */
static int create_refblock(struct q2img *im, uint64_t bi)
{
	uint64_t host = bi * im->refblock_entries * im->cluster_size;
	uint8_t *b;
	int ret;

	if (posix_memalign((void **)&b, 4096, im->cluster_size))
		return -ENOMEM;
	memset(b, 0, im->cluster_size);
	qcow2_rc_set(b, im->refcount_order, 0, 1);
	ret = refcount_pwrite(im, b, im->cluster_size, host);
	free(b);
	if (ret)
		return ret;
	if (host + im->cluster_size > im->file_size)
		im->file_size = host + im->cluster_size;
	if (host + im->cluster_size > im->alloc_end)
		im->alloc_end = host + im->cluster_size;
	im->reftable[bi] = host;
	q2_cache_invalidate(&im->refblock_cache, host);
	/* the table entry goes out at the next commit, after a barrier */
	q2_range_add(&im->reftable_dirty, bi);
	return 0;
}

/* Grow the refcount table to at least min_entries.  The new table and the
 * refcount blocks that cover it go together at the end of the image, each
 * block counting the clusters of that area it covers; the header switches
 * to the new table only when all of it is on disk, then the old table's
 * clusters are freed. */
static int grow_reftable(struct q2img *im, uint64_t min_entries)
{
	uint64_t per_cluster = im->cluster_size / 8;	/* table entries */
	uint64_t per_block = im->refblock_entries;
	uint64_t entries, table_clusters, n_blocks = 0, area, i, bi;
	uint64_t *new_table = NULL, *new_blocks = NULL, n_new = 0;
	uint8_t *table_buf = NULL, *blk = NULL, hdr[12];
	uint64_t old_off = im->reftable_off, old_clusters = im->reftable_clusters;
	int ret = -ENOMEM;

	area = im->alloc_end >> im->cluster_bits; /* first cluster of the area */
	entries = im->reftable_entries * 2;
	if (entries < min_entries)
		entries = min_entries;
	for (;;) {
		uint64_t need = 0, last;

		entries = (entries + per_cluster - 1) / per_cluster * per_cluster;
		table_clusters = entries / per_cluster;
		last = area + n_blocks + table_clusters - 1;
		if (last / per_block >= entries) {
			entries = last / per_block + 1;
			continue;
		}
		for (bi = area / per_block; bi <= last / per_block; bi++)
			if (bi >= im->reftable_entries || !im->reftable[bi])
				need++;
		if (need == n_blocks)
			break;
		n_blocks = need;
	}
	if (table_clusters * im->cluster_size > QCOW2_MAX_RT_BYTES) {
		q2_report(im, "refcount table would exceed %u bytes",
			  QCOW2_MAX_RT_BYTES);
		return -ENOSPC;
	}
	new_table = calloc(entries, sizeof(*new_table));
	new_blocks = calloc(n_blocks ? n_blocks : 1, sizeof(*new_blocks));
	if (posix_memalign((void **)&blk, 4096, im->cluster_size))
		blk = NULL;
	if (!new_table || !new_blocks || !blk)
		goto out;
	memcpy(new_table, im->reftable,
	       im->reftable_entries * sizeof(*new_table));
	/* refcount blocks first (clusters area .. area + n_blocks - 1), then
	 * the table */
	for (bi = area / per_block;
	     bi <= (area + n_blocks + table_clusters - 1) / per_block; bi++)
		if (bi >= im->reftable_entries || !im->reftable[bi]) {
			new_table[bi] = (area + n_new) << im->cluster_bits;
			new_blocks[n_new++] = bi;
		}
	for (i = 0; i < n_new; i++) {
		uint64_t c;

		bi = new_blocks[i];
		memset(blk, 0, im->cluster_size);
		for (c = area; c < area + n_blocks + table_clusters; c++)
			if (c / per_block == bi)
				qcow2_rc_set(blk, im->refcount_order,
					     c % per_block, 1);
		ret = q2_pwrite(im->fd, blk, im->cluster_size, new_table[bi]);
		if (ret)
			goto out;
	}
	/* area clusters covered by blocks that already exist */
	for (i = area; i < area + n_blocks + table_clusters; i++) {
		bi = i / per_block;
		if (bi < im->reftable_entries && im->reftable[bi]) {
			ret = q2_refcount_update(im, i << im->cluster_bits,
						 im->cluster_size, 1);
			if (ret)
				goto out;
		}
	}
	if (posix_memalign((void **)&table_buf, 4096,
			   table_clusters * im->cluster_size)) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < entries; i++)
		qcow2_put_be64(table_buf + i * 8, new_table[i]);
	ret = q2_pwrite(im->fd, table_buf, table_clusters * im->cluster_size,
			(area + n_blocks) << im->cluster_bits);
	if (!ret)
		ret = q2_fdatasync(im->fd);
	if (ret)
		goto out;
	qcow2_put_be64(hdr, (area + n_blocks) << im->cluster_bits);
	qcow2_put_be32(hdr + 8, (uint32_t)table_clusters);
	ret = q2_pwrite(im->fd, hdr, 12, QH_RT_OFF);
	if (!ret)
		ret = q2_fdatasync(im->fd);
	if (ret)
		goto out;
	free(im->reftable);
	im->reftable = new_table;
	new_table = NULL;
	im->reftable_dirty = Q2_RANGE_EMPTY;	/* all of it was written above */
	im->reftable_entries = entries;
	im->reftable_off = (area + n_blocks) << im->cluster_bits;
	im->reftable_clusters = (uint32_t)table_clusters;
	im->alloc_end = (area + n_blocks + table_clusters) << im->cluster_bits;
	if (im->alloc_end > im->file_size)
		im->file_size = im->alloc_end;
	ret = q2_refcount_update(im, old_off,
				 old_clusters << im->cluster_bits, -1);
out:
	free(new_table);
	free(new_blocks);
	free(blk);
	free(table_buf);
	return ret;
}

/* A cluster whose refcount just dropped to 0. */
static void cluster_freed(struct q2img *im, uint64_t c)
{
	struct q2quarantine *q;

	if (im->seq_oldest == UINT64_MAX) {	/* nothing in flight */
		if (c < im->free_hint)
			im->free_hint = c;
		return;
	}
	q = im->n_quarantine ? &im->quarantine[im->n_quarantine - 1] : NULL;
	if (q && q->seq == im->seq_now && q->first + q->count == c) {
		q->count++;
		return;
	}
	if (im->n_quarantine == im->quarantine_cap) {
		size_t cap = im->quarantine_cap ? im->quarantine_cap * 2 : 16;
		struct q2quarantine *nq = realloc(im->quarantine, cap * sizeof(*nq));

		if (!nq)	/* no memory: leave it out of the allocator */
			return;	/* until the next open (a leak of nothing) */
		im->quarantine = nq;
		im->quarantine_cap = cap;
	}
	im->quarantine[im->n_quarantine++] =
		(struct q2quarantine){ c, 1, im->seq_now };
}

/* Release what the ops in flight can no longer touch. */
static void quarantine_prune(struct q2img *im)
{
	size_t i, j = 0;

	for (i = 0; i < im->n_quarantine; i++) {
		if (im->quarantine[i].seq < im->seq_oldest) {
			if (im->quarantine[i].first < im->free_hint)
				im->free_hint = im->quarantine[i].first;
		} else {
			im->quarantine[j++] = im->quarantine[i];
		}
	}
	im->n_quarantine = j;
}

static bool quarantined(const struct q2img *im, uint64_t c)
{
	size_t i;

	for (i = 0; i < im->n_quarantine; i++)
		if (c >= im->quarantine[i].first &&
		    c < im->quarantine[i].first + im->quarantine[i].count)
			return true;
	return false;
}

/* Add delta (+1/-1) to the refcount of every cluster in [off, off+len). */
int q2_refcount_update(struct q2img *im, uint64_t off, uint64_t len, int delta)
{
	uint64_t c = off >> im->cluster_bits;
	uint64_t end = (off + len + im->cluster_size - 1) >> im->cluster_bits;
	uint64_t max = qcow2_rc_max(im->refcount_order);

	while (c < end) {
		uint64_t bi = c / im->refblock_entries, first = c % im->refblock_entries, idx;
		uint64_t lo = UINT64_MAX, hi = 0, b0, bl;
		uint8_t *b;
		int ret;

		if (bi >= im->reftable_entries || !im->reftable[bi]) {
			/* alloc_run creates blocks before counting */
			q2_report(im, "cluster %#llx has no refcount block",
				  (unsigned long long)(c << im->cluster_bits));
			return -EIO;
		}
		ret = q2_cache_get(im, &im->refblock_cache, im->reftable[bi], &b);
		if (ret)
			return ret;
		for (idx = first; idx < im->refblock_entries && c < end; idx++, c++) {
			uint64_t v = qcow2_rc_get(b, im->refcount_order, idx);

			if ((delta < 0 && v == 0) || (delta > 0 && v == max)) {
				q2_report(im, "refcount of cluster %#llx would %s",
					  (unsigned long long)(c << im->cluster_bits),
					  delta < 0 ? "go below 0" : "overflow");
				if (hi)
					q2_pwrite(im->fd, b + lo, hi - lo,
						  im->reftable[bi] + lo);
				return -EIO;
			}
			v += delta;
			qcow2_rc_set(b, im->refcount_order, idx, v);
			qcow2_rc_byte_range(im->refcount_order, idx, &b0, &bl);
			if (b0 < lo)
				lo = b0;
			if (b0 + bl > hi)
				hi = b0 + bl;
			if (v == 0) {
				/* the cluster may be reused for anything */
				cluster_freed(im, c);
				q2_cache_invalidate(&im->l2_cache, c << im->cluster_bits);
				im->decompressed_valid = false;
			}
		}
		ret = refcount_pwrite(im, b + lo, hi - lo, im->reftable[bi] + lo);
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

	quarantine_prune(im);
	c = im->free_hint;
	if (c == 0)
		c = 1;	/* never the header, whatever the refcounts say */
	/* first free cluster; below it all are used or quarantined */
	for (;;) {
		bi = c / im->refblock_entries;
		if ((bi >= im->reftable_entries || !im->reftable[bi]) && !quarantined(im, c))
			break;
		ret = q2_refcount_get(im, c, &v);
		if (ret)
			return ret;
		if (v == 0 && !quarantined(im, c))
			break;
		c++;
	}
	im->free_hint = c;
	start = c;
	for (cnt = 1; cnt < n; cnt++) {
		ret = q2_refcount_get(im, start + cnt, &v);
		if (ret)
			return ret;
		if (v || quarantined(im, start + cnt))
			break;
	}
	/* A missing refcount block goes into the first cluster it covers,
	 * which may be inside this run: create it, then search again. */
	for (bi = start / im->refblock_entries;
	     bi <= (start + cnt - 1) / im->refblock_entries; bi++) {
		if (bi < im->reftable_entries && im->reftable[bi])
			continue;
		ret = bi >= im->reftable_entries ? grow_reftable(im, bi + 1)
					: create_refblock(im, bi);
		if (ret)
			return ret;
		return alloc_run(im, n, host, got);
	}
	ret = q2_refcount_update(im, start << im->cluster_bits,
				 cnt << im->cluster_bits, 1);
	if (ret)
		return ret;
	im->free_hint = start + cnt;
	if (((start + cnt) << im->cluster_bits) > im->alloc_end)
		im->alloc_end = (start + cnt) << im->cluster_bits;
	if (im->alloc_end > im->file_size)	/* reads past EOF give zeroes */
		im->file_size = im->alloc_end;
	*host = start << im->cluster_bits;
	*got = cnt;
	return 0;
}

/* Clusters are handed out from a reservation: a run of free clusters whose
 * refcounts were raised in one go (so a stream of allocations costs no
 * refcount I/O).  Nothing can point at them on disk before the next
 * q2_meta_barrier.  Reservations start at 32 MiB and double while the
 * image keeps allocating (up to 256 MiB or 64Ki clusters).  A crash leaks
 * at most the unused rest (a hole at the end of the file, mostly: no
 * space), and a clean close gives it back and trims the file.
 *
 * The file is made long enough for the whole reservation at once (a
 * sparse ftruncate): data written past the end of a file is an extending
 * write, which the file system serializes and waits for (ext4 with
 * O_DIRECT: a journalled orphan entry and a synchronous wait per write),
 * while writes into holes inside it go in parallel like a sparse raw
 * file's. */
#define QCOW2_RESV_MIN (32ULL << 20)
#define QCOW2_RESV_MAX (256ULL << 20)

/* Make the file at least end bytes long (never shorter: metadata may lie
 * past what we last knew).  A failure only costs speed. */
static void extend_file(struct q2img *im, uint64_t end)
{
	struct stat st;

	if (fstat(im->fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size < end && ftruncate(im->fd, (off_t)end) == 0)
		im->extended = true;
}

int q2_alloc_clusters(struct q2img *im, uint64_t n, uint64_t *host,
		      uint64_t *got)
{
	if (im->reserved_count == 0) {
		uint64_t want, h, g, max = QCOW2_RESV_MAX >> im->cluster_bits;
		int ret;

		if (max > 65536)
			max = 65536;
		if (im->next_reservation == 0)
			im->next_reservation = QCOW2_RESV_MIN >> im->cluster_bits;
		want = im->next_reservation;
		im->next_reservation = want * 2 < max ? want * 2 : max;

		ret = alloc_run(im, n > want ? n : want, &h, &g);
		if (ret)
			return ret;
		im->reserved_first = h >> im->cluster_bits;
		im->reserved_count = g;
		extend_file(im, h + (g << im->cluster_bits));
	}
	*got = n < im->reserved_count ? n : im->reserved_count;
	*host = im->reserved_first << im->cluster_bits;
	im->reserved_first += *got;
	im->reserved_count -= *got;
	return 0;
}

/* Give back what is left of the reservation, and the file space past
 * every cluster in use that extend_file added (clean close). */
int q2_release_reservation(struct q2img *im)
{
	uint64_t first = im->reserved_first << im->cluster_bits;
	uint64_t len = im->reserved_count << im->cluster_bits;
	struct stat st;
	int ret = 0;

	if (len) {
		ret = q2_refcount_update(im, first, len, -1);
		/* nothing lies past a reservation that ends the image */
		if (!ret && first + len == im->alloc_end)
			im->alloc_end = first;
	}
	im->reserved_count = 0;
	if (!ret && im->extended && fstat(im->fd, &st) == 0) {
		uint64_t end = im->alloc_end > im->open_file_size ?
			       im->alloc_end : im->open_file_size;

		if (end < (uint64_t)st.st_size && ftruncate(im->fd, (off_t)end))
			ret = -errno;
	}
	return ret;
}

/* Drop the references an L2 entry held (after the entry is gone). */
int q2_free_entry(struct q2img *im, uint64_t e)
{
	uint64_t host, first, count;
	struct qcow2_cdesc d;

	switch (qcow2_l2_kind(e, im->version, im->cluster_bits, &host)) {
	case QCOW2_DATA:
	case QCOW2_ZERO:
		return host ? q2_refcount_update(im, host, im->cluster_size, -1) : 0;
	case QCOW2_COMPRESSED:
		d = qcow2_cdesc_decode(e, im->cluster_bits);
		qcow2_cdesc_clusters(d, im->cluster_bits, &first, &count);
		return q2_refcount_update(im, first << im->cluster_bits,
					  count << im->cluster_bits, -1);
	default:
		return 0;
	}
}
