/* storage/block.h - block backends (raw, qcow2) behind one asynchronous
 * interface.  Knows nothing about virtio: a device turns its guest requests
 * into struct blk_req and gets a callback with 0 or -errno.
 *
 * Threading: a blk_dev and its io_engine belong to one thread.
 */
#ifndef STORAGE_BLOCK_H
#define STORAGE_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "storage/io_engine.h"

enum blk_format { BLK_FMT_RAW, BLK_FMT_QCOW2 };
enum blk_cache { BLK_CACHE_WRITEBACK, BLK_CACHE_NONE };

struct blk_opts {
	const char *path;
	enum blk_format format;	/* always explicit: never probed */
	bool readonly;
	enum blk_cache cache;
};

enum blk_op {
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,		/* data and metadata durable when done */
	BLK_OP_DISCARD,		/* may deallocate; reads return zeroes or old data */
	BLK_OP_WRITE_ZEROES,	/* reads return zeroes afterwards */
};

struct blk_req {
	enum blk_op op;
	uint64_t offset;	/* bytes from the start of the disk */
	uint64_t len;		/* bytes; for READ/WRITE the iovec total */
	const struct iovec *iov;	/* READ/WRITE only */
	int iovcnt;
	bool may_unmap;		/* WRITE_ZEROES: deallocation is allowed */
	/* Called exactly once with 0 or -errno; may run inside blk_submit()
	 * (immediate errors, metadata work) or from io_engine_complete(). */
	void (*done)(struct blk_req *req, int result);
	void *opaque;		/* the caller's */
	/* backend private */
	struct io_cb cb;
	void *priv;
	uint64_t priv_u64;
};

struct blk_dev;

/* Open an image: validates format, size and lock.  On failure returns NULL
 * and writes one line naming the problem into err. */
struct blk_dev *blk_open(const struct blk_opts *o, struct io_engine *e,
			 char *err, size_t errlen);
/* Completes (waits for) nothing: the caller drains its requests first. */
void blk_close(struct blk_dev *d);

uint64_t blk_size(const struct blk_dev *d);	/* virtual size, bytes */
bool blk_readonly(const struct blk_dev *d);
/* Smallest I/O size and buffer alignment the backend needs (512 with
 * cache=none, else 1). */
unsigned blk_alignment(const struct blk_dev *d);
/* What the backend can do natively (DISCARD/WRITE_ZEROES advertised to the
 * guest only when true). */
bool blk_can_discard(const struct blk_dev *d);
bool blk_can_write_zeroes(const struct blk_dev *d);

/* Start a request.  Out-of-range or read-only violations complete with
 * -EINVAL / -EROFS (the device maps them to its own status). */
void blk_submit(struct blk_dev *d, struct blk_req *r);

/* Guest buffers that do not meet blk_alignment() (cache=none) are copied
 * through bounce buffers, BLK_BOUNCE_CHUNK bytes per backend I/O (or one
 * alignment unit if larger).  A device bounces at most BLK_BOUNCE_SLOTS
 * requests at a time, so it never holds more than
 * BLK_BOUNCE_SLOTS x BLK_BOUNCE_CHUNK bytes (4 MiB) of bounce memory,
 * allocated at first use and kept until blk_close(); further misaligned
 * requests wait, in order, for a slot (they are never failed for it). */
#define BLK_BOUNCE_CHUNK	(1u << 20)
#define BLK_BOUNCE_SLOTS	4
/* Bounce memory the device holds now (bytes), and the most requests it
 * has bounced at once (for tests). */
size_t blk_bounce_held(const struct blk_dev *d);
unsigned blk_bounce_peak(const struct blk_dev *d);

/* Parse "raw"/"qcow2"; -1 if unknown. */
int blk_format_parse(const char *s);

#endif
