/* storage/qcow2.h - the qcow2 backend's private state, shared by its files
 * (qcow2.c: open and validation; qcow2_meta.c: caches, refcounts, cluster
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
	unsigned n;
	uint64_t tick;
	uint64_t *key;		/* host offset, 0 = empty slot */
	uint64_t *used;
	uint8_t **buf;
	bool *dirty;
};

/* One image of a chain: the top qcow2 or a read-only backing file (qcow2 or
 * raw). */
struct q2img {
	char *path;
	int fd;			/* metadata, buffered; also raw backing data */
	int dfd;		/* guest data (O_DIRECT with cache=none) */
	bool raw;
	bool writable;
	uint64_t size;		/* virtual size */
	uint64_t file_size;
	struct q2img *backing;
	bool err_reported;

	/* qcow2 only */
	int version;
	unsigned cb;		/* cluster_bits */
	uint64_t cs;		/* cluster size */
	unsigned l2_bits;	/* log2 of entries per L2 table */
	uint64_t l2_n;
	uint32_t l1_size;
	uint64_t l1_off;
	uint64_t *l1;		/* host endian */
	uint64_t rt_off;
	uint32_t rt_clusters;
	uint64_t rt_size;	/* entries */
	uint64_t *rt;		/* host endian */
	unsigned rc_order;
	uint64_t rb_n;		/* entries per refcount block */
	int compression;
	uint32_t nb_snapshots;
	struct q2cache l2c, rbc;
	/* L2 entries replaced by allocations whose new entries are only in
	 * a dirty table: their clusters are freed after the write-back */
	uint64_t *pfree;
	size_t npfree, pfree_cap;
	uint8_t *zero_cluster;	/* cs zero bytes, aligned */

	/* allocator: clusters below free_hint are in use; alloc_end is past
	 * every cluster in use or allocated (file end or beyond) */
	uint64_t free_hint;	/* cluster index */
	uint64_t alloc_end;	/* bytes, cluster aligned */
	uint64_t resv_c, resv_n;	/* referenced, synced, not yet used */
	uint64_t resv_next;		/* clusters for the next reservation */
	bool meta_unsynced;	/* metadata written since the last fdatasync */
	/* L1 / refcount table entries set in memory, not yet written
	 * (index ranges; lo > hi: none) */
	uint64_t l1_dlo, l1_dhi, rt_dlo, rt_dhi;

	/* Freed clusters stay out of the allocator until every data op that
	 * was in flight when they were freed has completed (a read or an
	 * in-place write issued before a discard must not land in a cluster
	 * that already belongs to someone else).  The I/O code numbers its
	 * data ops and keeps these two up to date. */
	uint64_t seq_now;	/* number of the latest data op started */
	uint64_t seq_oldest;	/* oldest data op in flight; UINT64_MAX: none */
	struct q2quar { uint64_t c, n, seq; } *quar;
	size_t nquar, quar_cap;

	/* last decompressed cluster (sequential reads of a compressed image
	 * touch one cluster many times) */
	uint8_t *cbuf, *cin;
	uint64_t cbuf_entry;
	bool cbuf_valid;
	void *zstd;
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
void q2_img_close(struct q2img *im);

/* qcow2_meta.c */
int q2_cache_init(struct q2cache *c, unsigned n, uint64_t cs);
void q2_cache_free(struct q2cache *c);
void q2_cache_invalidate(struct q2cache *c, uint64_t off);
uint8_t *q2_cache_peek(struct q2cache *c, uint64_t off);
void q2_cache_mark_dirty(struct q2cache *c, uint64_t off);
int q2_l2_writeback(struct q2img *im);
int q2_meta_barrier(struct q2img *im);
int q2_free_later(struct q2img *im, uint64_t entry);
int q2_cache_get(struct q2img *im, struct q2cache *c, uint64_t off,
		 uint8_t **buf);

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
int q2_decompress(struct q2img *im, uint64_t entry, const uint8_t **out);
int q2_read_sync(struct q2img *im, uint64_t off, void *buf, uint64_t len);
int q2_fill_old(struct q2img *im, uint64_t entry, uint64_t guest_cluster,
		uint64_t in_off, uint8_t *buf, uint64_t len);

int q2_rc_get(struct q2img *im, uint64_t cluster, uint64_t *val);
int q2_rc_update(struct q2img *im, uint64_t off, uint64_t len, int delta);
int q2_alloc_clusters(struct q2img *im, uint64_t n, uint64_t *host,
		      uint64_t *got);
int q2_release_reservation(struct q2img *im);
int q2_free_entry(struct q2img *im, uint64_t entry);
int q2_l2_prepare(struct q2img *im, uint64_t l1i, uint64_t *l2off);

/* qcow2_io.c */
void q2_submit(struct blk_dev *d, struct blk_req *r);

#endif
