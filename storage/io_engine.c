/* storage/io_engine.c - the io_uring engine under every block backend.
 *
 * One ring per engine, with an eventfd registered for completions.  Ops get
 * an SQE when queued but reach the kernel only in io_engine_submit() (one
 * io_uring_submit per batch); the SQ is flushed early only when it is full.
 * No more ops are in the kernel than the CQ can hold, so the CQ never
 * overflows: ops beyond that wait on a FIFO (linked through io_cb.next) and
 * get SQEs as completions free room.
 *
 * Short transfers are resumed here: the op's iovec is advanced (a
 * pointer into the caller's array on a segment boundary, io_cb.small_iov
 * when one segment is left, else a heap copy - rare) and requeued.  Vectors
 * longer than IOV_MAX go to the kernel IOV_MAX segments at a time, resumed
 * the same way.  A read that hits end of file (0 bytes) zero-fills the rest of
 * the buffer and succeeds: image files (qcow2, sparse raw tails) can end
 * before the last byte a caller may read, and what lies beyond a file's end
 * reads as zeroes.  A write that makes no progress fails with -EIO.
 * -EAGAIN and -EINTR results are retried.
 *
 * The hot path (queue, submit, reap) allocates nothing.
 *
 * Where io_uring is not available (seccomp in containers, the
 * kernel.io_uring_disabled sysctl) or VMM_IO_ENGINE=sync is set, the engine
 * runs each op synchronously (preadv/pwritev/fdatasync/fallocate) when it is
 * submitted and signals the eventfd: same interface and semantics, none of
 * the speed.  A warning says so once per process.
 *
 * Every write, fallocate and fsync that completes is also reported to the
 * io_record.h log, which is off except in power-loss tests.
 *
 * A ring is created disabled and enabled only after io_uring's own
 * restrictions allow the operations above and nothing else (no openat,
 * connect, ... : io_uring does its work without system calls, so seccomp
 * cannot stop a subverted thread from using a ring for those).
 */
#include "storage/io_engine.h"
#include "storage/io_record.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>

enum {
	OP_READ = 1,
	OP_WRITE,
	OP_FSYNC,
	OP_FALLOC,
	OP_MASK = 0x0f,
	OP_IOV_HEAP = 0x80,	/* cb->iov is our malloc'd copy */
};

#define REAP_BATCH 64
#define FIXED_CHUNK ((size_t)1 << 30)
#define FIXED_MAX 1024		/* registered buffers per ring (UIO_MAXIOV) */

struct io_engine {
	struct io_uring ring;
	int efd;
	unsigned cq_cap;	/* most ops in the kernel at once */
	unsigned in_kernel;	/* ops holding an SQE (queued or submitted) */
	unsigned inflight;	/* ops accepted whose callback has not run */
	struct io_cb *wait_head, *wait_tail;	/* accepted, no SQE yet */
	bool sync;		/* no io_uring: ops run in io_engine_submit() */
	/* io_engine_register_memory(): registered buffer i is the GiB at
	 * fixed_base + i * FIXED_CHUNK (the kernel takes at most 1 GiB each) */
	uint8_t *fixed_base;
	size_t fixed_len;
	struct io_cb *done_head, *done_tail;	/* sync: ran, callback due */
};

/* Allow the ring the operations prep() builds and buffer registration,
 * then enable it.  No SQE flags are allowed: prep() sets none. */
static int restrict_ring(struct io_uring *ring)
{
	static const uint8_t ops[] = {
		IORING_OP_READ, IORING_OP_WRITE, IORING_OP_READV,
		IORING_OP_WRITEV, IORING_OP_READ_FIXED, IORING_OP_WRITE_FIXED,
		IORING_OP_FSYNC, IORING_OP_FALLOCATE,
	};
	struct io_uring_restriction res[sizeof(ops) + 2];
	unsigned n = 0;
	int ret;

	memset(res, 0, sizeof(res));
	for (unsigned i = 0; i < sizeof(ops); i++) {
		res[n].opcode = IORING_RESTRICTION_SQE_OP;
		res[n++].sqe_op = ops[i];
	}
	res[n].opcode = IORING_RESTRICTION_REGISTER_OP;
	res[n++].register_op = IORING_REGISTER_BUFFERS;
	res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[n++].sqe_flags = 0;
	/* the raw register call: Debian's liburing 2.3 declares
	 * io_uring_register_restrictions/enable_rings but does not export
	 * them */
	ret = io_uring_register(ring->ring_fd, IORING_REGISTER_RESTRICTIONS,
				res, n);
	if (ret < 0)
		return ret;
	return io_uring_register(ring->ring_fd, IORING_REGISTER_ENABLE_RINGS,
				 NULL, 0);
}

struct io_engine *io_engine_create(unsigned entries, char *err, size_t errlen)
{
	struct io_uring_params p;
	struct io_engine *e;
	const char *env;
	int ret;

	if (entries == 0 || entries > 32768) {
		snprintf(err, errlen, "io_uring: bad queue size %u (1..32768)",
			 entries);
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "io_uring: out of memory");
		return NULL;
	}
	io_record_from_env();
	env = getenv("VMM_IO_ENGINE");
	if (env && strcmp(env, "sync") == 0) {
		ret = -ENOSYS;
	} else {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED;
		ret = io_uring_queue_init_params(entries, &e->ring, &p);
		if (ret == -EINVAL) {	/* kernel older than 5.18 */
			memset(&p, 0, sizeof(p));
			p.flags = IORING_SETUP_R_DISABLED;
			ret = io_uring_queue_init_params(entries, &e->ring, &p);
		}
		if (ret == -ENOSYS || ret == -EPERM || ret == -EACCES) {
			static bool warned;	/* once per process (atomic) */

			if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
				fprintf(stderr, "vmm: io_uring unavailable (%s): "
					"storage I/O runs synchronously (slow)\n",
					strerror(-ret));
		}
	}
	if (ret == -ENOSYS || ret == -EPERM || ret == -EACCES) {
		e->sync = true;
		e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (e->efd < 0) {
			snprintf(err, errlen, "eventfd: %s", strerror(errno));
			free(e);
			return NULL;
		}
		return e;
	}
	if (ret < 0) {
		snprintf(err, errlen, "io_uring setup failed: %s%s",
			 strerror(-ret),
			 ret == -ENOSYS || ret == -EPERM ?
			 " (io_uring disabled on this host?)" : "");
		free(e);
		return NULL;
	}
	e->cq_cap = p.cq_entries;
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	ret = io_uring_register_eventfd(&e->ring, e->efd);
	if (ret < 0) {
		snprintf(err, errlen, "io_uring_register_eventfd: %s",
			 strerror(-ret));
		close(e->efd);
		goto fail;
	}
	ret = restrict_ring(&e->ring);
	if (ret < 0) {
		snprintf(err, errlen, "io_uring restrictions: %s",
			 strerror(-ret));
		close(e->efd);
		goto fail;
	}
	return e;
fail:
	io_uring_queue_exit(&e->ring);
	free(e);
	return NULL;
}

void io_engine_destroy(struct io_engine *e)
{
	if (!e)
		return;
	/* The caller drained its ops; anything left is abandoned, and
	 * queue_exit waits for the kernel to let go of the buffers. */
	if (!e->sync)
		io_uring_queue_exit(&e->ring);
	close(e->efd);
	free(e);
}

int io_engine_eventfd(const struct io_engine *e)
{
	return e->efd;
}

unsigned io_engine_inflight(const struct io_engine *e)
{
	return e->inflight;
}

int io_engine_register_memory(struct io_engine *e, void *base, size_t len)
{
	struct iovec *iov;
	size_t n, i;
	int ret;

	if (e->sync)
		return -EOPNOTSUPP;
	if (e->fixed_len)
		return -EBUSY;
	if (!base || len == 0)
		return -EINVAL;
	n = (len + FIXED_CHUNK - 1) / FIXED_CHUNK;
	if (n > FIXED_MAX)
		return -E2BIG;
	iov = calloc(n, sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		iov[i].iov_base = (uint8_t *)base + i * FIXED_CHUNK;
		iov[i].iov_len = i + 1 < n ? FIXED_CHUNK : len - i * FIXED_CHUNK;
	}
	ret = io_uring_register_buffers(&e->ring, iov, (unsigned)n);
	free(iov);
	if (ret < 0)
		return ret;
	e->fixed_base = base;
	e->fixed_len = len;
	return 0;
}

/* The registered buffer holding all of [p, p + len), or -1. */
static int fixed_index(const struct io_engine *e, const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)e->fixed_base;
	size_t i;

	if (!e->fixed_len || a < b || a - b > e->fixed_len ||
	    len > e->fixed_len - (a - b) || len == 0)
		return -1;
	i = (a - b) / FIXED_CHUNK;
	return (a - b + len - 1) / FIXED_CHUNK == i ? (int)i : -1;
}

static void prep_sqe(struct io_engine *e, struct io_uring_sqe *sqe,
		     struct io_cb *cb)
{
	int op = cb->op & OP_MASK;
	/* One segment goes as plain READ/WRITE: the kernel need not import
	 * an iovec array (its length field is 32 bits, hence the bound).
	 * (For FSYNC/FALLOC, iovcnt holds a flag and iov is NULL.) */
	bool one = (op == OP_READ || op == OP_WRITE) && cb->iovcnt == 1 &&
		   cb->iov[0].iov_len <= INT32_MAX;
	/* The kernel takes at most IOV_MAX segments per call: a longer
	 * vector goes in pieces, each completing "short" and resumed. */
	unsigned nseg = cb->iovcnt > IOV_MAX ? IOV_MAX : (unsigned)cb->iovcnt;

	int fixed = one ? fixed_index(e, cb->iov[0].iov_base,
				      cb->iov[0].iov_len) : -1;

	switch (op) {
	case OP_READ:
		if (fixed >= 0)	/* no page pinning per op */
			io_uring_prep_read_fixed(sqe, cb->fd, cb->iov[0].iov_base,
						 (unsigned)cb->iov[0].iov_len,
						 cb->off + cb->done, fixed);
		else if (one)
			io_uring_prep_read(sqe, cb->fd, cb->iov[0].iov_base,
					   (unsigned)cb->iov[0].iov_len,
					   cb->off + cb->done);
		else
			io_uring_prep_readv(sqe, cb->fd, cb->iov, nseg,
					    cb->off + cb->done);
		break;
	case OP_WRITE:
		if (fixed >= 0)
			io_uring_prep_write_fixed(sqe, cb->fd,
						  cb->iov[0].iov_base,
						  (unsigned)cb->iov[0].iov_len,
						  cb->off + cb->done, fixed);
		else if (one)
			io_uring_prep_write(sqe, cb->fd, cb->iov[0].iov_base,
					    (unsigned)cb->iov[0].iov_len,
					    cb->off + cb->done);
		else
			io_uring_prep_writev(sqe, cb->fd, cb->iov, nseg,
					     cb->off + cb->done);
		break;
	case OP_FSYNC:
		io_uring_prep_fsync(sqe, cb->fd,
				    cb->iovcnt ? IORING_FSYNC_DATASYNC : 0);
		break;
	case OP_FALLOC:
		io_uring_prep_fallocate(sqe, cb->fd, cb->iovcnt,
					(off_t)cb->off, (off_t)cb->total);
		break;
	}
	io_uring_sqe_set_data(sqe, cb);
}

/* An SQE, flushing a full SQ to the kernel first if need be. */
static struct io_uring_sqe *get_sqe(struct io_engine *e)
{
	struct io_uring_sqe *sqe;

	if (e->in_kernel >= e->cq_cap)
		return NULL;
	sqe = io_uring_get_sqe(&e->ring);
	if (!sqe) {
		io_uring_submit(&e->ring);
		sqe = io_uring_get_sqe(&e->ring);
	}
	return sqe;
}

/* Give an accepted op an SQE, or park it until one is free (FIFO order). */
static void push(struct io_engine *e, struct io_cb *cb)
{
	struct io_uring_sqe *sqe = NULL;

	if (!e->wait_head && !e->sync)
		sqe = get_sqe(e);
	if (!sqe) {
		cb->next = NULL;
		if (e->wait_tail)
			e->wait_tail->next = cb;
		else
			e->wait_head = cb;
		e->wait_tail = cb;
		return;
	}
	prep_sqe(e, sqe, cb);
	e->in_kernel++;
}

static void drain_waiting(struct io_engine *e)
{
	while (e->wait_head) {
		struct io_uring_sqe *sqe = get_sqe(e);
		struct io_cb *cb = e->wait_head;

		if (!sqe)
			return;
		e->wait_head = cb->next;
		if (!e->wait_head)
			e->wait_tail = NULL;
		prep_sqe(e, sqe, cb);
		e->in_kernel++;
	}
}

static int iov_total(const struct iovec *iov, int iovcnt, uint64_t *total)
{
	uint64_t t = 0;
	int i;

	if (iovcnt < 0 || (iovcnt && !iov))
		return -EINVAL;
	for (i = 0; i < iovcnt; i++)
		t += iov[i].iov_len;
	*total = t;
	return 0;
}

static int queue_rw(struct io_engine *e, uint8_t op, int fd,
		    const struct iovec *iov, int iovcnt, uint64_t off,
		    struct io_cb *cb)
{
	uint64_t total;
	int ret = iov_total(iov, iovcnt, &total);

	if (ret)
		return ret;
	if (off > (uint64_t)INT64_MAX || total > (uint64_t)INT64_MAX - off)
		return -EINVAL;
	cb->fd = fd;
	cb->op = op;
	/* The kernel reads the array only while submitting; we copy it only
	 * to resume a short transfer, so it is never written through. */
	cb->iov = (struct iovec *)iov;
	cb->iovcnt = iovcnt;
	cb->iov0 = iov;
	cb->iovcnt0 = iovcnt;
	cb->off = off;
	cb->done = 0;
	cb->total = total;
	e->inflight++;
	push(e, cb);
	return 0;
}

int io_engine_readv(struct io_engine *e, int fd, const struct iovec *iov,
		    int iovcnt, uint64_t off, struct io_cb *cb)
{
	return queue_rw(e, OP_READ, fd, iov, iovcnt, off, cb);
}

int io_engine_writev(struct io_engine *e, int fd, const struct iovec *iov,
		     int iovcnt, uint64_t off, struct io_cb *cb)
{
	return queue_rw(e, OP_WRITE, fd, iov, iovcnt, off, cb);
}

int io_engine_fsync(struct io_engine *e, int fd, bool datasync,
		    struct io_cb *cb)
{
	cb->fd = fd;
	cb->op = OP_FSYNC;
	cb->iovcnt = datasync;	/* no iovec: the field holds the flag */
	cb->iov = NULL;
	cb->off = cb->done = cb->total = 0;
	/* what is logged as complete now is what this sync makes durable */
	cb->rec_covers = io_record_mark();
	e->inflight++;
	push(e, cb);
	return 0;
}

int io_engine_fallocate(struct io_engine *e, int fd, int mode, uint64_t off,
			uint64_t len, struct io_cb *cb)
{
	if (off > (uint64_t)INT64_MAX || len == 0 ||
	    len > (uint64_t)INT64_MAX - off)
		return -EINVAL;
	cb->fd = fd;
	cb->op = OP_FALLOC;
	cb->iovcnt = mode;	/* no iovec: the field holds the mode */
	cb->iov = NULL;
	cb->off = off;
	cb->total = len;
	cb->done = 0;
	e->inflight++;
	push(e, cb);
	return 0;
}

static void sync_run_all(struct io_engine *e);

static void flush_sq(struct io_engine *e)
{
	int ret;

	if (e->sync) {
		sync_run_all(e);
		return;
	}
	drain_waiting(e);
	if (!io_uring_sq_ready(&e->ring))
		return;
	/* A failed enter leaves the SQEs in the ring; the next submit or
	 * wait hands them over again. */
	do
		ret = io_uring_submit(&e->ring);
	while (ret == -EINTR);
}

void io_engine_submit(struct io_engine *e)
{
	flush_sq(e);
}

/* Drop the first n bytes of cb's remaining iovec. */
static int advance_iov(struct io_cb *cb, uint64_t n)
{
	struct iovec *v = cb->iov;
	int cnt = cb->iovcnt;

	while (cnt > 0 && n >= v->iov_len) {
		n -= v->iov_len;
		v++;
		cnt--;
	}
	if (cnt <= 0)
		return -EIO;	/* the kernel reported more than we asked */
	if (n == 0 && !(cb->op & OP_IOV_HEAP)) {
		/* on a segment boundary: the rest of the caller's array */
		cb->iov = v;
		cb->iovcnt = cnt;
		return 0;
	}
	if (cb->op & OP_IOV_HEAP) {
		memmove(cb->iov, v, (size_t)cnt * sizeof(*v));
	} else if (cnt == 1) {
		struct iovec last = *v;

		cb->small_iov[0] = last;
		cb->iov = cb->small_iov;
	} else {
		struct iovec *copy = malloc((size_t)cnt * sizeof(*v));

		if (!copy)
			return -ENOMEM;
		memcpy(copy, v, (size_t)cnt * sizeof(*v));
		cb->iov = copy;
		cb->op |= OP_IOV_HEAP;
	}
	cb->iov[0].iov_base = (char *)cb->iov[0].iov_base + n;
	cb->iov[0].iov_len -= n;
	cb->iovcnt = cnt;
	return 0;
}

static void zero_rest(struct io_cb *cb)
{
	int i;

	for (i = 0; i < cb->iovcnt; i++)
		memset(cb->iov[i].iov_base, 0, cb->iov[i].iov_len);
}

/* An op reached the file: tell the power-loss log (off but in tests). */
static void record(const struct io_cb *cb, int64_t res)
{
	if (res < 0 || !io_record_on())
		return;
	switch (cb->op & OP_MASK) {
	case OP_WRITE:
		io_record_writev(cb->fd, cb->iov0, cb->iovcnt0, cb->off);
		break;
	case OP_FALLOC:
		io_record_fallocate(cb->fd, cb->iovcnt, cb->off, cb->total);
		break;
	case OP_FSYNC:
		io_record_barrier(cb->fd, cb->rec_covers, IO_REC_FLUSH);
		break;
	}
}

static void finish(struct io_engine *e, struct io_cb *cb, int64_t res)
{
	record(cb, res);
	if (cb->op & OP_IOV_HEAP) {
		free(cb->iov);
		cb->op &= (uint8_t)~OP_IOV_HEAP;
	}
	cb->iov = NULL;
	e->inflight--;
	cb->fn(cb, res);
}

/* Returns 1 if the callback ran, 0 if the op was requeued. */
static int handle_cqe(struct io_engine *e, struct io_cb *cb, int res)
{
	int op = cb->op & OP_MASK;
	int ret;

	if (res == -EAGAIN || res == -EINTR) {
		push(e, cb);
		return 0;
	}
	if (res < 0) {
		finish(e, cb, res);
		return 1;
	}
	if (op == OP_FSYNC || op == OP_FALLOC) {
		finish(e, cb, 0);
		return 1;
	}
	cb->done += (uint64_t)res;
	if (cb->done >= cb->total) {
		finish(e, cb, (int64_t)cb->total);
		return 1;
	}
	if (res == 0) {
		if (op == OP_READ) {	/* end of file: zeroes beyond */
			zero_rest(cb);
			finish(e, cb, (int64_t)cb->total);
		} else {
			finish(e, cb, -EIO);
		}
		return 1;
	}
	ret = advance_iov(cb, (uint64_t)res);
	if (ret) {
		finish(e, cb, ret);
		return 1;
	}
	push(e, cb);
	return 0;
}

int io_engine_complete(struct io_engine *e)
{
	uint64_t val;

	/* Drain first: a completion posted after this read signals again. */
	if (read(e->efd, &val, sizeof(val)) < 0 && errno != EAGAIN)
		return -errno;
	return io_engine_poll(e);
}

/* --- the synchronous fallback ------------------------------------------ */
static int64_t sync_exec(struct io_cb *cb)
{
	int op = cb->op & OP_MASK;

	for (;;) {
		ssize_t n;
		int ret;

		if (op == OP_FSYNC || op == OP_FALLOC) {
			ret = op == OP_FSYNC
				? (cb->iovcnt ? fdatasync(cb->fd) : fsync(cb->fd))
				: fallocate(cb->fd, cb->iovcnt, (off_t)cb->off,
					    (off_t)cb->total);
			if (ret == 0)
				return 0;
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (cb->done >= cb->total)
			return (int64_t)cb->total;
		n = op == OP_READ
			? preadv(cb->fd, cb->iov, cb->iovcnt > IOV_MAX ? IOV_MAX
					: cb->iovcnt, (off_t)(cb->off + cb->done))
			: pwritev(cb->fd, cb->iov, cb->iovcnt > IOV_MAX ? IOV_MAX
					: cb->iovcnt, (off_t)(cb->off + cb->done));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0) {
			if (op != OP_READ)
				return -EIO;
			zero_rest(cb);	/* end of file, as above */
			return (int64_t)cb->total;
		}
		cb->done += (uint64_t)n;
		if (cb->done >= cb->total)
			return (int64_t)cb->total;
		ret = advance_iov(cb, (uint64_t)n);
		if (ret)
			return ret;
	}
}

/* Run every queued op; results wait in cb->done for io_engine_poll(). */
static void sync_run_all(struct io_engine *e)
{
	bool any = false;

	while (e->wait_head) {
		struct io_cb *cb = e->wait_head;

		e->wait_head = cb->next;
		if (!e->wait_head)
			e->wait_tail = NULL;
		cb->done = (uint64_t)sync_exec(cb);	/* now the result */
		record(cb, (int64_t)cb->done);
		if (cb->op & OP_IOV_HEAP) {
			free(cb->iov);
			cb->op &= (uint8_t)~OP_IOV_HEAP;
		}
		cb->iov = NULL;
		cb->next = NULL;
		if (e->done_tail)
			e->done_tail->next = cb;
		else
			e->done_head = cb;
		e->done_tail = cb;
		any = true;
	}
	if (any) {
		uint64_t one = 1;

		if (write(e->efd, &one, sizeof(one)) < 0) {
			/* the counter is saturated: readable anyway */
		}
	}
}

static int sync_poll(struct io_engine *e)
{
	struct io_cb *cb = e->done_head;
	int ran = 0;

	e->done_head = e->done_tail = NULL;	/* callbacks may queue more */
	while (cb) {
		struct io_cb *next = cb->next;

		e->inflight--;
		cb->fn(cb, (int64_t)cb->done);
		ran++;
		cb = next;
	}
	sync_run_all(e);
	return ran;
}

int io_engine_poll(struct io_engine *e)
{
	struct io_uring_cqe *cqes[REAP_BATCH];
	struct io_cb *cbs[REAP_BATCH];
	int res[REAP_BATCH];
	int ran = 0;

	if (e->sync)
		return sync_poll(e);

	for (;;) {
		unsigned n = io_uring_peek_batch_cqe(&e->ring, cqes,
						     REAP_BATCH), i;

		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			cbs[i] = io_uring_cqe_get_data(cqes[i]);
			res[i] = cqes[i]->res;
		}
		/* Release the CQ slots before callbacks queue more ops. */
		io_uring_cq_advance(&e->ring, n);
		e->in_kernel -= n;
		for (i = 0; i < n; i++)
			ran += handle_cqe(e, cbs[i], res[i]);
	}
	/* Resumed ops and ops queued by callbacks go out in one batch. */
	flush_sq(e);
	return ran;
}

int io_engine_wait(struct io_engine *e)
{
	for (;;) {
		int n = io_engine_complete(e), ret;

		if (n != 0 || e->inflight == 0)
			return n;
		if (e->sync) {
			sync_run_all(e);
			continue;
		}
		ret = io_uring_submit_and_wait(&e->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN &&
		    ret != -EBUSY)
			return ret;
	}
}
