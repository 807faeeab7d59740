/* storage/raw.c - raw images: a regular file or a block device, the disk
 * byte for byte.  Data goes straight between the caller's iovecs and the
 * file through the I/O engine (io_uring).
 *
 * - An OFD lock over the whole file (write lock read-write, read lock
 *   readonly) keeps two VMMs from using one writable image.
 * - cache=none is O_DIRECT; the alignment comes from statx(STATX_DIOALIGN)
 *   or the device's logical block size, never less than 512.  The virtual
 *   size is then rounded down to the alignment (a tail shorter than one
 *   aligned block cannot be read with O_DIRECT).
 * - DISCARD punches a hole.  It is offered (can_discard) only where a probe
 *   at open could punch, and it is advisory: should punching later fail
 *   with EOPNOTSUPP, it completes as a no-op.  WRITE_ZEROES is ZERO_RANGE,
 *   or PUNCH_HOLE when the caller allows unmapping; where the file system
 *   supports neither, zeroes are written.
 */
#include "storage/block_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZERO_CHUNK (1u << 20)	/* bytes per write of the zero fallback */

struct raw_dev {
	struct blk_dev dev;
	int fd;
	bool is_blockdev;
	bool punch_ok;		/* PUNCH_HOLE|KEEP_SIZE works */
	bool zero_range_ok;	/* ZERO_RANGE works (cleared on EOPNOTSUPP) */
	void *zero_buf;		/* ZERO_CHUNK bytes of zero pages, lazily */
};

#define to_raw(d) ((struct raw_dev *)(d))
#define req_of(c) ((struct blk_req *)((char *)(c) - offsetof(struct blk_req, cb)))

static void raw_rw_done(struct io_cb *cb, int64_t res)
{
	struct blk_req *r = req_of(cb);

	r->done(r, res < 0 ? (int)res : 0);
}

static void raw_fail(struct blk_req *r, int ret)
{
	r->done(r, ret);
}

/* --- WRITE_ZEROES by writing zeroes, one chunk at a time --------------
 * Rare (file systems without ZERO_RANGE), so a small allocation per request
 * is fine.  r->priv holds it, r->priv_u64 counts bytes done. */
struct zero_write {
	struct iovec iov;	/* the engine reads it until the callback */
	struct raw_dev *rd;
};

static void zero_write_next(struct blk_req *r);

static void zero_write_end(struct blk_req *r, int ret)
{
	free(r->priv);
	r->priv = NULL;
	r->done(r, ret);
}

static void zero_write_done(struct io_cb *cb, int64_t res)
{
	struct blk_req *r = req_of(cb);

	if (res < 0) {
		zero_write_end(r, (int)res);
		return;
	}
	r->priv_u64 += (uint64_t)res;
	if (r->priv_u64 >= r->len)
		zero_write_end(r, 0);
	else
		zero_write_next(r);
}

static void zero_write_next(struct blk_req *r)
{
	struct zero_write *zw = r->priv;
	uint64_t left = r->len - r->priv_u64;
	int ret;

	zw->iov.iov_base = zw->rd->zero_buf;
	zw->iov.iov_len = left < ZERO_CHUNK ? left : ZERO_CHUNK;
	r->cb.fn = zero_write_done;
	ret = io_engine_writev(zw->rd->dev.engine, zw->rd->fd, &zw->iov, 1,
			       r->offset + r->priv_u64, &r->cb);
	if (ret)
		zero_write_end(r, ret);
}

static void zero_write_start(struct raw_dev *rd, struct blk_req *r)
{
	struct zero_write *zw;

	if (!rd->zero_buf) {
		/* never written, so every page is the shared zero page */
		void *p = mmap(NULL, ZERO_CHUNK, PROT_READ,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			raw_fail(r, -ENOMEM);
			return;
		}
		rd->zero_buf = p;
	}
	zw = calloc(1, sizeof(*zw));
	if (!zw) {
		raw_fail(r, -ENOMEM);
		return;
	}
	zw->rd = rd;
	r->priv = zw;
	r->priv_u64 = 0;
	zero_write_next(r);
}

/* --- DISCARD / WRITE_ZEROES through fallocate --------------------------
 * r->priv_u64 holds the fallocate mode in flight, r->priv the device. */
static void falloc_submit(struct raw_dev *rd, struct blk_req *r, int mode);

static void falloc_done(struct io_cb *cb, int64_t res)
{
	struct blk_req *r = req_of(cb);
	struct raw_dev *rd = r->priv;
	int mode = (int)r->priv_u64;

	if (res != -EOPNOTSUPP) {
		r->done(r, res < 0 ? (int)res : 0);
		return;
	}
	if (r->op == BLK_OP_DISCARD) {
		rd->punch_ok = false;	/* later ones complete at once */
		r->done(r, 0);	/* advisory: the old data may stay */
		return;
	}
	if (mode & FALLOC_FL_ZERO_RANGE) {
		rd->zero_range_ok = false;
	} else {
		rd->punch_ok = false;
		if (rd->zero_range_ok) {
			falloc_submit(rd, r, FALLOC_FL_ZERO_RANGE |
					     FALLOC_FL_KEEP_SIZE);
			return;
		}
	}
	zero_write_start(rd, r);
}

static void falloc_submit(struct raw_dev *rd, struct blk_req *r, int mode)
{
	int ret;

	r->priv = rd;
	r->priv_u64 = (uint64_t)mode;
	r->cb.fn = falloc_done;
	ret = io_engine_fallocate(rd->dev.engine, rd->fd, mode, r->offset,
				  r->len, &r->cb);
	if (ret)
		raw_fail(r, ret);
}

static void raw_submit(struct blk_dev *d, struct blk_req *r)
{
	struct raw_dev *rd = to_raw(d);
	const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	int ret;

	switch (r->op) {
	case BLK_OP_READ:
		r->cb.fn = raw_rw_done;
		ret = io_engine_readv(d->engine, rd->fd, r->iov, r->iovcnt,
				      r->offset, &r->cb);
		break;
	case BLK_OP_WRITE:
		r->cb.fn = raw_rw_done;
		ret = io_engine_writev(d->engine, rd->fd, r->iov, r->iovcnt,
				       r->offset, &r->cb);
		break;
	case BLK_OP_FLUSH:
		if (d->readonly) {
			r->done(r, 0);	/* nothing of ours to make durable */
			return;
		}
		r->cb.fn = raw_rw_done;
		ret = io_engine_fsync(d->engine, rd->fd, true, &r->cb);
		break;
	case BLK_OP_DISCARD:
		if (!rd->punch_ok) {
			r->done(r, 0);
			return;
		}
		falloc_submit(rd, r, punch);
		return;
	case BLK_OP_WRITE_ZEROES:
		if (r->may_unmap && rd->punch_ok)
			falloc_submit(rd, r, punch);
		else if (rd->zero_range_ok)
			falloc_submit(rd, r, FALLOC_FL_ZERO_RANGE |
					     FALLOC_FL_KEEP_SIZE);
		else
			zero_write_start(rd, r);
		return;
	default:
		ret = -EINVAL;
		break;
	}
	if (ret)
		raw_fail(r, ret);
}

static void raw_close(struct blk_dev *d)
{
	struct raw_dev *rd = to_raw(d);

	close(rd->fd);	/* drops the OFD lock */
	if (rd->zero_buf)
		munmap(rd->zero_buf, ZERO_CHUNK);
	free(rd);
}

static const struct blk_backend_ops raw_ops = {
	.name = "raw",
	.submit = raw_submit,
	.close = raw_close,
};

/* O_DIRECT alignment of a regular file, 0 if O_DIRECT is unsupported. */
static unsigned file_dio_align(int fd)
{
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN)) {
		unsigned a = stx.stx_dio_offset_align;

		if (a == 0)
			return 0;
		if (stx.stx_dio_mem_align > a)
			a = stx.stx_dio_mem_align;
		return a < 512 ? 512 : a;
	}
#endif
	(void)fd;
	return 512;	/* the usual sector size; wrong sizes fail with EINVAL */
}

static int open_error(const char *path, int err, bool readonly, bool direct,
		      char *buf, size_t len)
{
	const char *why;

	switch (err) {
	case ENOENT:
		why = "no such file";
		break;
	case EACCES:
	case EPERM:
		why = readonly ? "permission denied"
			       : "permission denied (readonly=on may help)";
		break;
	case EISDIR:
		why = "is a directory, not an image";
		break;
	case EROFS:
		why = "read-only file system (use readonly=on)";
		break;
	case EINVAL:
		why = direct ? "cache=none (O_DIRECT) is not supported here"
			     : strerror(err);
		break;
	default:
		why = strerror(err);
	}
	snprintf(buf, len, "%s: %s", path, why);
	return -err;
}

/* Phase 1: open the image and check it is something we can serve.
 * Returns the fd, or -1 with err filled. */
static int raw_open_file(const struct blk_opts *o, struct stat *st, char *err,
			 size_t errlen)
{
	bool direct = o->cache == BLK_CACHE_NONE;
	int flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC |
		    (direct ? O_DIRECT : 0);
	int fd = open(o->path, flags);

	if (fd < 0) {
		open_error(o->path, errno, o->readonly, direct, err, errlen);
		return -1;
	}
	if (fstat(fd, st) < 0) {
		snprintf(err, errlen, "%s: %s", o->path, strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st->st_mode)) {
		snprintf(err, errlen, "%s: is a directory, not an image",
			 o->path);
		goto fail;
	}
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
		snprintf(err, errlen,
			 "%s: not a regular file or block device", o->path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* Phase 2: an OFD lock over the whole file (read lock when readonly), so
 * two VMMs never write one image.  0, or -1 with err filled. */
static int raw_lock(int fd, const struct blk_opts *o, char *err, size_t errlen)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = o->readonly ? F_RDLCK : F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		snprintf(err, errlen, "%s: image is in use by another "
			 "process (locked)", o->path);
	else
		snprintf(err, errlen, "%s: cannot lock image: %s", o->path,
			 strerror(errno));
	return -1;
}

/* Phase 3: the size the guest sees and the alignment I/O needs (O_DIRECT:
 * the size rounds down to it).  0, or -1 with err filled. */
static int raw_geometry(int fd, const struct stat *st, const struct blk_opts *o,
			uint64_t *sizep, unsigned *alignp, char *err,
			size_t errlen)
{
	bool direct = o->cache == BLK_CACHE_NONE;
	unsigned align = 1;
	uint64_t size;

	if (S_ISBLK(st->st_mode)) {
		int lbs = 512;

		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			snprintf(err, errlen, "%s: BLKGETSIZE64: %s", o->path,
				 strerror(errno));
			return -1;
		}
		if (direct) {
			if (ioctl(fd, BLKSSZGET, &lbs) < 0 || lbs < 512)
				lbs = 512;
			align = (unsigned)lbs;
		}
	} else {
		size = (uint64_t)st->st_size;
		if (direct) {
			align = file_dio_align(fd);
			if (align == 0) {
				snprintf(err, errlen, "%s: cache=none (O_DIRECT)"
					 " is not supported here", o->path);
				return -1;
			}
		}
	}
	if (size == 0) {
		snprintf(err, errlen, "%s: image is empty (0 bytes)", o->path);
		return -1;
	}
	size -= size % align;
	if (size == 0) {
		snprintf(err, errlen, "%s: image is smaller than one %u-byte "
			 "block (cache=none)", o->path, align);
		return -1;
	}
	*sizep = size;
	*alignp = align;
	return 0;
}

/* Phase 4: what DISCARD and WRITE_ZEROES can use on this file. */
static void raw_probe_zeroing(struct raw_dev *rd, const struct stat *st)
{
	if (rd->dev.readonly)
		return;
	if (rd->is_blockdev) {
		/* the kernel turns both into discard / zeroout */
		rd->punch_ok = true;
	} else {
		/* a hole punched past EOF changes nothing, but fails where
		 * the file system cannot punch */
		rd->punch_ok = fallocate(rd->fd, FALLOC_FL_PUNCH_HOLE |
					 FALLOC_FL_KEEP_SIZE,
					 (off_t)st->st_size, 4096) == 0;
	}
	rd->zero_range_ok = true;
	rd->dev.can_discard = rd->punch_ok;
	/* always: writing zeroes is the last resort */
	rd->dev.can_write_zeroes = true;
}

struct blk_dev *raw_open(const struct blk_opts *o, struct io_engine *e,
			 char *err, size_t errlen)
{
	struct raw_dev *rd;
	struct stat st;
	unsigned align;
	uint64_t size;
	int fd = raw_open_file(o, &st, err, errlen);

	if (fd < 0)
		return NULL;
	if (raw_lock(fd, o, err, errlen) ||
	    raw_geometry(fd, &st, o, &size, &align, err, errlen))
		goto fail;
	rd = calloc(1, sizeof(*rd));
	if (!rd) {
		snprintf(err, errlen, "%s: out of memory", o->path);
		goto fail;
	}
	rd->fd = fd;
	rd->is_blockdev = S_ISBLK(st.st_mode);
	rd->dev.ops = &raw_ops;
	rd->dev.engine = e;
	rd->dev.size = size;
	rd->dev.readonly = o->readonly;
	rd->dev.alignment = align;
	raw_probe_zeroing(rd, &st);
	return &rd->dev;
fail:
	close(fd);
	return NULL;
}
