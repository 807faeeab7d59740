/* storage/qcow2.h - the qcow2 backend's private state, shared by its files
 * (qcow2.c: open and validation; qcow2_cache.c: the table cache and the
 * ordered metadata write-back; qcow2_cluster.c: mapping and L2 tables;
 * qcow2_compress.c: compressed clusters; qcow2_refcount.c: refcounts and
 * allocation; qcow2_io.c: guest requests).  Private to storage/.
 */
#ifndef STORAGE_QCOW2_H
#define STORAGE_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/block_backend.h"
#include "storage/qcow2_format.h"

/* A small LRU of cluster-sized metadata tables (L2 tables or refcount
 * blocks), keyed by host offset.  Refcount blocks are written through.  L2
 * tables may be dirty: the entries of completed allocating writes are
 * written back at FLUSH, close or eviction (q2_l2_writeback), so a stream
 * of allocating writes costs no metadata I/O; a crash loses only what was
 * not flushed, which the guest may not rely on anyway. */
struct q2cache {
	unsigned slots;
	uint64_t clock;		/* bumped on every hit, for LRU */
	uint64_t *table_off;	/* host offset of each slot's table, 0 = empty */
	uint64_t *last_used;	/* clock of the slot's last hit */
	uint8_t **buf;
	bool *dirty;
};

/* Entries [lo, hi] of an in-memory table changed and not yet written;
 * lo > hi: none. */
struct q2range {
	uint64_t lo, hi;
};
#define Q2_RANGE_EMPTY ((struct q2range){ 1, 0 })

static inline bool q2_range_empty(const struct q2range *r)
{
	return r->lo > r->hi;
}

static inline void q2_range_add(struct q2range *r, uint64_t i)
{
	if (q2_range_empty(r)) {
		r->lo = r->hi = i;
		return;
	}
	if (i < r->lo)
		r->lo = i;
	if (i > r->hi)
		r->hi = i;
}

/* Clusters [first, first + count) were freed while data op number seq was
 * the latest started: they stay out of the allocator until every op up to
 * seq has completed. */
struct q2quarantine {
	uint64_t first, count, seq;
};

#define QCOW2_MAX_DEFERRED_FREES 65536

/* One image of a chain: the top qcow2 or a read-only backing file (qcow2 or
 * raw). */
struct q2img {
	char *path;
	int fd;			/* metadata, buffered; also raw backing data */
	int data_fd;		/* guest data (O_DIRECT with cache=none) */
	bool raw;
	bool writable;
	uint64_t size;		/* virtual size */
	uint64_t file_size;
	struct q2img *backing;
	bool err_reported;

	/* qcow2 only */
	int version;
	unsigned cluster_bits;
	uint64_t cluster_size;
	unsigned l2_bits;	/* log2 of entries per L2 table */
	uint64_t l2_entries;	/* entries per L2 table */
	uint32_t l1_size;	/* entries */
	uint64_t l1_off;
	uint64_t *l1;		/* host endian */
	uint64_t reftable_off;
	uint32_t reftable_clusters;
	uint64_t reftable_entries;
	uint64_t *reftable;	/* host endian */
	unsigned refcount_order;	/* refcount bits = 1 << order */
	uint64_t refblock_entries;	/* refcounts per refcount block */
	int compression;
	uint32_t nb_snapshots;
	struct q2cache l2_cache, refblock_cache;
	/* L2 entries (or L2 tables) replaced by entries that are not yet
	 * in the file, or not yet behind a barrier: their clusters are freed
	 * after the next write-back; at most QCOW2_MAX_DEFERRED_FREES */
	uint64_t *deferred_frees;
	size_t n_deferred_frees, deferred_frees_cap;
	uint8_t *zero_cluster;	/* cluster_size zero bytes, aligned */

	/* allocator: clusters below free_hint are in use; alloc_end is past
	 * every cluster in use or allocated (file end or beyond) */
	uint64_t free_hint;	/* cluster index */
	uint64_t alloc_end;	/* bytes, cluster aligned */
	/* the reservation: clusters referenced (refcount 1), not yet used */
	uint64_t reserved_first, reserved_count;	/* cluster index, count */
	uint64_t next_reservation;	/* clusters the next one asks for */
	uint64_t open_file_size;	/* the file's length when opened */
	bool extended;		/* the file was made longer for a reservation */
	bool meta_unsynced;	/* metadata written since the last fdatasync */
	/* L1 / refcount table entries set in memory, not yet written */
	struct q2range l1_dirty, reftable_dirty;

	/* Freed clusters stay out of the allocator until every data op that
	 * was in flight when they were freed has completed (a read or an
	 * in-place write issued before a discard must not land in a cluster
	 * that already belongs to someone else).  The I/O code numbers its
	 * data ops and keeps these two up to date. */
	uint64_t seq_now;	/* number of the latest data op started */
	uint64_t seq_oldest;	/* oldest data op in flight; UINT64_MAX: none */
	struct q2quarantine *quarantine;
	size_t n_quarantine, quarantine_cap;

	/* last decompressed cluster (sequential reads of a compressed image
	 * touch one cluster many times) */
	uint8_t *decompressed;	/* cluster_size bytes */
	uint8_t *compressed;	/* the compressed input, read from the file */
	uint64_t decompressed_entry;	/* the L2 entry it came from */
	bool decompressed_valid;
	void *zstd_dctx;
};

struct q2alloc;
struct q2op;

struct qcow2 {
	struct blk_dev dev;	/* first: block.c sees a blk_dev */
	struct q2img *img;
	struct q2alloc *allocs;	/* allocating writes in flight */
	uint8_t *zero_buf;	/* cs zero bytes for WRITE_ZEROES data */
	struct q2op *ops_head, *ops_tail;	/* data ops in flight, oldest first */
	uint64_t op_seq;
};

/* qcow2.c */
void q2_report(struct q2img *im, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int q2_pread(int fd, void *buf, uint64_t len, uint64_t off);
int q2_pwrite(int fd, const void *buf, uint64_t len, uint64_t off);
/* fdatasync, recorded for the power-loss replay (storage/io_record.h) as
 * every barrier must be: 0 or -errno. */
int q2_fdatasync(int fd);
void q2_img_close(struct q2img *im);

/* qcow2_cache.c */
int q2_cache_init(struct q2cache *c, unsigned slots, uint64_t table_size);
void q2_cache_free(struct q2cache *c);
void q2_cache_invalidate(struct q2cache *c, uint64_t off);
uint8_t *q2_cache_peek(struct q2cache *c, uint64_t off);
void q2_cache_mark_dirty(struct q2cache *c, uint64_t off);
void q2_cache_rekey(struct q2cache *c, uint64_t from, uint64_t to);
int q2_cache_get(struct q2img *im, struct q2cache *c, uint64_t off,
		 uint8_t **buf);
int q2_meta_barrier(struct q2img *im);
int q2_meta_commit(struct q2img *im, bool l2_follows);
int q2_free_later(struct q2img *im, uint64_t entry);
int q2_l2_writeback(struct q2img *im);

/* qcow2_cluster.c */
struct q2map {
	enum qcow2_kind kind;	/* never QCOW2_BAD */
	uint64_t len;		/* bytes from the offset with this mapping */
	uint64_t host;		/* DATA: host byte offset of the offset */
	uint64_t entry;		/* the L2 entry (COMPRESSED, allocation) */
	bool copied;
	struct q2img *im;	/* which image of the chain */
};
int q2_map(struct q2img *im, uint64_t off, uint64_t len, struct q2map *m);
int q2_resolve(struct q2img *im, uint64_t off, uint64_t len,
	       struct q2map *m);
int q2_read_sync(struct q2img *im, uint64_t off, void *buf, uint64_t len);
int q2_fill_old(struct q2img *im, uint64_t entry, uint64_t guest_cluster,
		uint64_t in_off, uint8_t *buf, uint64_t len);
int q2_l2_prepare(struct q2img *im, uint64_t l1i, uint64_t *l2off);

/* qcow2_compress.c */
int q2_decompress(struct q2img *im, uint64_t entry, const uint8_t **out);

/* qcow2_refcount.c */
int q2_refcount_get(struct q2img *im, uint64_t cluster, uint64_t *val);
int q2_refcount_update(struct q2img *im, uint64_t off, uint64_t len,
		       int delta);
int q2_alloc_clusters(struct q2img *im, uint64_t n, uint64_t *host,
		      uint64_t *got);
int q2_release_reservation(struct q2img *im);
int q2_free_entry(struct q2img *im, uint64_t entry);

/* qcow2_io.c */
void q2_submit(struct blk_dev *d, struct blk_req *r);

#endif
