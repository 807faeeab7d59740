/* storage/block_backend.h - what a block backend (raw.c, qcow2.c) provides
 * to block.c.  Private to storage/. */
#ifndef STORAGE_BLOCK_BACKEND_H
#define STORAGE_BLOCK_BACKEND_H

#include "storage/block.h"

struct blk_backend_ops {
	const char *name;
	/* r is in range and allowed (block.c checked size and read-only) */
	void (*submit)(struct blk_dev *d, struct blk_req *r);
	void (*close)(struct blk_dev *d);
};

/* First member of every backend's own struct. */
struct blk_dev {
	const struct blk_backend_ops *ops;
	struct io_engine *engine;
	uint64_t size;
	bool readonly;
	unsigned alignment;
	bool can_discard, can_write_zeroes;
	struct blk_bounce *bounce;	/* block.c's, for misaligned buffers */
};

/* Each returns NULL and fills err on failure. */
struct blk_dev *raw_open(const struct blk_opts *o, struct io_engine *e,
			 char *err, size_t errlen);
struct blk_dev *qcow2_open(const struct blk_opts *o, struct io_engine *e,
			   char *err, size_t errlen);

#endif
