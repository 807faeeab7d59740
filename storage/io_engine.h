/* storage/io_engine.h - the asynchronous I/O engine (io_uring) under every
 * block backend.  One engine per device thread; not thread safe.
 *
 * Ops are queued with io_engine_{readv,writev,fsync,fallocate}() and handed to
 * the kernel in one batch by io_engine_submit() (or earlier, when the
 * submission queue fills).  Completions are signalled on io_engine_eventfd();
 * io_engine_complete() runs their callbacks.  Short reads/writes are resumed
 * by the engine, so a callback sees either the full length or -errno.
 * Buffers are used in place (no bounce copies): they must stay valid until
 * the callback runs.
 */
#ifndef STORAGE_IO_ENGINE_H
#define STORAGE_IO_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct io_engine;

/* Embed in the caller's request; fn gets the byte count or -errno. */
struct io_cb {
	void (*fn)(struct io_cb *cb, int64_t res);
	/* engine private: resume state for short transfers */
	int fd;
	uint8_t op;
	int iovcnt;
	struct iovec *iov;
	uint64_t off, done, total;
	struct iovec small_iov[1];
	struct io_cb *next;	/* engine private: waiting for a free SQE */
	/* engine private, for the io_record.h log: the caller's iovec as
	 * queued (writes), or what a barrier covers (fsync) */
	const struct iovec *iov0;
	int iovcnt0;
	uint64_t rec_covers;
};

struct io_engine *io_engine_create(unsigned entries, char *err, size_t errlen);
void io_engine_destroy(struct io_engine *e);

/* eventfd that becomes readable when completions are waiting */
int io_engine_eventfd(const struct io_engine *e);

/* Queue one op.  Return 0, or -errno if it cannot be queued (the callback is
 * then not called).  The iovec array is copied only when needed for resume:
 * the caller keeps it valid until the callback. */
int io_engine_readv(struct io_engine *e, int fd, const struct iovec *iov,
		    int iovcnt, uint64_t off, struct io_cb *cb);
int io_engine_writev(struct io_engine *e, int fd, const struct iovec *iov,
		     int iovcnt, uint64_t off, struct io_cb *cb);
int io_engine_fsync(struct io_engine *e, int fd, bool datasync,
		    struct io_cb *cb);
int io_engine_fallocate(struct io_engine *e, int fd, int mode, uint64_t off,
			uint64_t len, struct io_cb *cb);

/* Hand everything queued to the kernel in one system call. */
void io_engine_submit(struct io_engine *e);
/* Reap completions and run callbacks; returns how many ran.  Ends with a
 * submit of whatever is queued then (ops the callbacks queued, resumed short
 * transfers), so callback-driven chains need no submit of their own. */
int io_engine_complete(struct io_engine *e);
/* The same without draining the eventfd (one system call less), for loops
 * that poll while they have work: the eventfd may then wake the caller once
 * more for nothing, and its handler must call io_engine_complete(). */
int io_engine_poll(struct io_engine *e);
/* Block until at least one op completes, then run callbacks (tools, tests). */
int io_engine_wait(struct io_engine *e);
/* Ops submitted or queued and not yet completed. */
unsigned io_engine_inflight(const struct io_engine *e);

/* Optional: register [base, base + len) (e.g. all guest RAM) with the
 * kernel once, so single-segment reads/writes inside it skip the per-op
 * page pinning (IORING_OP_READ_FIXED/WRITE_FIXED; ~20% more 4 KiB IOPS
 * here).  This pins the whole region (it is faulted in, and counts against
 * RLIMIT_MEMLOCK for non-root), which must stay mapped and unchanged until
 * io_engine_destroy().  Once per engine; 0 or -errno (-EBUSY, -ENOMEM,
 * -EOPNOTSUPP without io_uring): on failure the engine works as before. */
int io_engine_register_memory(struct io_engine *e, void *base, size_t len);

#endif
