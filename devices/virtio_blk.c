/* devices/virtio_blk.c - virtio-blk (virtio 1.2, 5.2) over a storage/
 * backend.
 *
 * Each disk has its own event loop thread and io_engine.  A notify pops
 * every available chain, turns each into a blk_req whose iovecs point
 * straight into guest memory, and hands them all to the kernel with one
 * io_engine_submit().  Completions are reaped right after the submit (page
 * cache hits complete inside it), while polling, or on the engine's
 * eventfd; the used ring is published once per round and the guest
 * interrupted at most once per round (EVENT_IDX permitting).  See
 * run_queue() for the polling that keeps a streaming guest from exiting.
 *
 * Locking: d->lock covers the request state.  The loop thread holds it
 * while it works; reset (a vCPU thread) takes it to stop the device and
 * then waits on d->drained for in-flight I/O, so no completion can touch
 * the rings or guest buffers after reset returns.
 */
#include "devices/virtio_blk.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "devices/registry.h"
#include "devices/virtio_mmio.h"
#include "devices/virtqueue.h"
#include "vmm/event_loop.h"
#include "vmm/vm.h"

#define SECTOR_SHIFT	9

struct vblk;

struct vblk_req {
	struct blk_req br;
	struct vblk *d;
	struct vblk_req *next_free;
	struct virtq *q;	/* the queue it came from */
	unsigned qi;		/* and its index */
	uint16_t head;
	uint8_t *status;	/* the chain's last writable byte */
	uint32_t used_len;	/* bytes written into the chain on success */
	bool flush_after;	/* writethrough: flush before completing */
	struct iovec iov[VIRTIO_BLK_QUEUE_SIZE];
};

struct vblk {
	struct vm *vm;
	char name[24];
	struct io_engine *eng;
	struct blk_dev *blk;
	struct event_loop *loop;
	struct virtio_mmio *t;
	uint8_t config[VIRTIO_BLK_CFG_SIZE];
	char serial[VIRTIO_BLK_ID_BYTES];
	bool readonly;

	pthread_mutex_t lock;
	pthread_cond_t drained;
	bool active;		/* DRIVER_OK and not reset */
	bool broken;		/* a queue broke: NEEDS_RESET, no more work */
	struct virtq *vq[VIRTIO_BLK_NUM_QUEUES];	/* in use (NULL: not) */
	unsigned nq;		/* vq[0..nq) may be in use */
	uint64_t features;
	bool writethrough;	/* FLUSH not negotiated */
	bool stalled;		/* stopped popping: no free request */
	uint32_t pending_used;	/* queues (bits) with unpublished entries */
	unsigned inflight;
	struct vblk_req *reqs, *free_list;
	unsigned log_budget;	/* malformed-request lines left to print */
	uint64_t poll_ns;	/* keep polling this long after the last work */
	unsigned poll_misses, poll_skip, poll_streak;
	int kick_fd;		/* the work loop reschedules itself */
	int lock_wanted;	/* atomic: a vCPU waits for d->lock */
};

#define DEFAULT_POLL_US	200

/* VMM_BLK_POLL_US overrides the polling window (0: never poll), for
 * measurements. */
static uint64_t blk_poll_ns(void)
{
	const char *s = getenv("VMM_BLK_POLL_US");
	char *end;
	unsigned long v;

	if (!s || !*s)
		return DEFAULT_POLL_US * 1000ULL;
	v = strtoul(s, &end, 10);
	return *end || v > 100000 ? DEFAULT_POLL_US * 1000ULL : v * 1000ULL;
}

static void put_le16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put_le32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_le64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* A guest can send malformed requests as fast as it likes: log the first
 * few, then say that we stopped. */
static void req_warn(struct vblk *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void req_warn(struct vblk *d, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	if (d->log_budget == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (--d->log_budget == 0)
		vm_log(d->name, "%s (further malformed requests not logged)",
		       msg);
	else
		vm_log(d->name, "%s", msg);
}

/* Publish every queue's new used entries; one interrupt for all of them
 * (virtio-mmio has one line per device anyway). */
static void flush_used(struct vblk *d)
{
	bool irq = false;

	while (d->pending_used) {
		unsigned i = (unsigned)__builtin_ctz(d->pending_used);

		d->pending_used &= d->pending_used - 1;
		virtq_publish(d->vq[i]);
		if (virtq_should_interrupt(d->vq[i]))
			irq = true;
	}
	if (irq)
		virtio_mmio_interrupt(d->t);
}

/* A queue broke (the walker logged why): the device needs a reset. */
static void device_broken(struct vblk *d)
{
	d->broken = true;
	virtio_mmio_set_needs_reset(d->t);
}

static void release(struct vblk *d, struct vblk_req *r)
{
	r->next_free = d->free_list;
	d->free_list = r;
	if (--d->inflight == 0 && !d->active)
		pthread_cond_broadcast(&d->drained);
}

/* Complete r: status byte, used entry (published later, in a batch). */
static void finish(struct vblk *d, struct vblk_req *r, uint8_t status)
{
	if (d->active) {
		*r->status = status;
		virtq_push(r->q, r->head,
			   status == VIRTIO_BLK_S_OK ? r->used_len : 1);
		d->pending_used |= 1U << r->qi;
	}
	release(d, r);
}

static void req_done(struct blk_req *br, int res)
{
	struct vblk_req *r = (struct vblk_req *)br;
	struct vblk *d = r->d;

	if (res == 0 && r->flush_after && d->active) {
		/* writethrough: durable before the guest hears of it */
		r->flush_after = false;
		memset(br, 0, sizeof(*br));
		br->op = BLK_OP_FLUSH;
		br->done = req_done;
		blk_submit(d->blk, br);
		return;
	}
	if (res < 0 && res != -EROFS && res != -EINVAL)
		vm_log(d->name, "I/O error at sector %" PRIu64 ": %s",
		       br->offset >> SECTOR_SHIFT, strerror(-res));
	finish(d, r, res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
}

/* DISCARD / WRITE_ZEROES: one segment (max_*_seg is 1). */
static int range_req(struct vblk *d, struct vblk_req *r, uint32_t type,
		     struct iovec *out, unsigned n_out)
{
	struct virtio_blk_discard_write_zeroes seg;
	bool wz = type == VIRTIO_BLK_T_WRITE_ZEROES;

	if (!(d->features & (1ULL << (wz ? VIRTIO_BLK_F_WRITE_ZEROES :
				      VIRTIO_BLK_F_DISCARD))))
		return VIRTIO_BLK_S_UNSUPP;
	if (iov_total(out, n_out) != sizeof(seg)) {
		req_warn(d, "%s request with %" PRIu64 " bytes of segments "
			 "(one 16-byte segment supported)",
		       wz ? "write-zeroes" : "discard", iov_total(out, n_out));
		return VIRTIO_BLK_S_IOERR;
	}
	iov_pull(&out, &n_out, &seg, sizeof(seg));
	if (seg.flags & ~(uint32_t)(wz ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0))
		return VIRTIO_BLK_S_UNSUPP;
	if (seg.num_sectors > VIRTIO_BLK_MAX_DISCARD_SECTORS ||
	    seg.sector > (UINT64_MAX >> SECTOR_SHIFT) - seg.num_sectors)
		return VIRTIO_BLK_S_IOERR;
	r->br.op = wz ? BLK_OP_WRITE_ZEROES : BLK_OP_DISCARD;
	r->br.offset = seg.sector << SECTOR_SHIFT;
	r->br.len = (uint64_t)seg.num_sectors << SECTOR_SHIFT;
	r->br.may_unmap = seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	r->used_len = 1;
	return -1;
}

/* Turn a popped chain into a backend request, or complete it at once. */
static void start_request(struct vblk *d, struct vblk_req *r,
			  const struct virtq_elem *e)
{
	struct iovec *out = e->iov, *in = e->iov + e->n_out;
	unsigned n_out = e->n_out, n_in = e->n_in;
	struct virtio_blk_outhdr hdr;
	int status = -1;
	uint64_t len;

	r->head = e->head;
	r->flush_after = false;
	memset(&r->br, 0, sizeof(r->br));
	r->br.done = req_done;
	d->inflight++;
	r->status = iov_take_last_byte(in, &n_in);
	if (!r->status) {
		/* nowhere to report an error: only a reset recovers */
		req_warn(d, "request at head %u has no device-writable "
			 "status byte; device needs reset", e->head);
		r->q->broken = true;
		device_broken(d);
		release(d, r);
		return;
	}
	r->used_len = 1;
	if (iov_pull(&out, &n_out, &hdr, sizeof(hdr)) < sizeof(hdr)) {
		req_warn(d, "request at head %u: header shorter than 16 bytes",
			 e->head);
		finish(d, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	/* Data in the wrong direction for the type (e.g. a read whose buffer
	 * the device may not write) is a malformed request, not a short
	 * transfer. */
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_FLUSH:
	case VIRTIO_BLK_T_GET_ID:
		if (n_out) {
			req_warn(d, "request at head %u (type %u) has %" PRIu64
				 " device-readable bytes after its header",
				 e->head, hdr.type, iov_total(out, n_out));
			finish(d, r, VIRTIO_BLK_S_IOERR);
			return;
		}
		break;
	case VIRTIO_BLK_T_OUT:
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (n_in) {
			req_warn(d, "request at head %u (type %u) has %" PRIu64
				 " device-writable bytes before its status",
				 e->head, hdr.type, iov_total(in, n_in));
			finish(d, r, VIRTIO_BLK_S_IOERR);
			return;
		}
		break;
	}
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool wr = hdr.type == VIRTIO_BLK_T_OUT;
		struct iovec *data = wr ? out : in;
		unsigned n = wr ? n_out : n_in;

		len = iov_total(data, n);
		if (len % 512 || hdr.sector > (UINT64_MAX >> SECTOR_SHIFT) ||
		    (wr && d->readonly)) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		r->br.op = wr ? BLK_OP_WRITE : BLK_OP_READ;
		r->br.offset = hdr.sector << SECTOR_SHIFT;
		r->br.len = len;
		r->br.iov = data;
		r->br.iovcnt = (int)n;
		/* used length counts what we write into the chain (a u32:
		 * absurdly long chains saturate) */
		r->used_len = wr ? 1 : len >= UINT32_MAX ? UINT32_MAX :
			      (uint32_t)(len + 1);
		r->flush_after = wr && d->writethrough;
		break;
	}
	case VIRTIO_BLK_T_FLUSH:
		r->br.op = BLK_OP_FLUSH;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = iov_fill(in, n_in, d->serial, VIRTIO_BLK_ID_BYTES);

		/* shorter serials are NUL-terminated, 20 bytes are not */
		r->used_len = (uint32_t)n + 1;
		status = VIRTIO_BLK_S_OK;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		status = range_req(d, r, hdr.type, out, n_out);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (status >= 0) {
		finish(d, r, (uint8_t)status);
		return;
	}
	/* may complete inside (range or read-only errors): finish() runs */
	blk_submit(d->blk, &r->br);
}

/* Pop and start what is available on every queue.  Lock held, device
 * active. */
static unsigned pop_requests(struct vblk *d)
{
	struct virtq_elem e;
	unsigned n = 0;

	for (unsigned i = 0; i < d->nq; i++) {
		struct virtq *q = d->vq[i];

		while (q && d->active && !d->broken) {
			struct vblk_req *r = d->free_list;
			int ret;

			if (!r) {
				/* every slot in flight: a completion
				 * restarts us */
				d->stalled = true;
				return n;
			}
			ret = virtq_pop(q, &e, r->iov, VIRTIO_BLK_QUEUE_SIZE);
			if (ret == 0)
				break;
			if (ret < 0) {
				device_broken(d);
				return n;
			}
			d->free_list = r->next_free;
			r->q = q;
			r->qi = i;
			start_request(d, r, &e);
			n++;
		}
	}
	return n;
}

static void notify_off(struct vblk *d)
{
	for (unsigned i = 0; i < d->nq; i++)
		if (d->vq[i])
			virtq_disable_notify(d->vq[i]);
}

/* Ask for notifies again; true if work arrived meanwhile. */
static bool notify_on(struct vblk *d)
{
	bool more = false;

	for (unsigned i = 0; i < d->nq; i++)
		if (d->vq[i] && virtq_enable_notify(d->vq[i]))
			more = true;
	return more;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* The device's work loop, lock held.  Each round pops everything new,
 * hands it to the kernel in one submit, reaps what completed (page cache
 * hits complete inside the submit) and publishes the used ring once.
 *
 * While there is work, and for poll_ns after it, notifies stay suppressed
 * and we poll the ring and the engine instead: a guest streaming requests
 * then costs no notify exits (~25-60 us each here) and no thread wake-ups.
 * Polling only pays when this thread and the vCPU run on different cores:
 * sharing one, the vCPU cannot refill the ring while we spin.  So when
 * windows keep expiring empty (a shared core, or an idle guest) we stop
 * polling for a number of wake-ups that doubles with every such streak
 * (the scheduler may place the threads apart later: we look again), and
 * one window that pays resets it.  Then notifies are re-enabled and we go
 * back to sleep in the event loop. */
#define RUN_SLICE_NS	1000000	/* longest stay in one work loop */
#define POLL_MISSES_MAX	3	/* empty windows in a row before backing off */
#define POLL_BACKOFF	32	/* wake-ups without polling after that, */
#define POLL_BACKOFF_MAX 8192	/* doubling with each streak up to this */

static void run_queue(struct vblk *d)
{
	uint64_t idle_since = 0, start = now_ns();
	bool polling = d->poll_ns && d->poll_skip == 0;

	if (d->poll_skip)
		d->poll_skip--;
	for (;;) {
		unsigned popped;
		int reaped = 0;

		if (!d->active || d->broken)
			break;
		/* A guest streaming requests keeps us here: give the lock to
		 * a waiting reset and the thread to the event loop (teardown)
		 * now and then; the kick brings us back with notifies off. */
		if (__atomic_load_n(&d->lock_wanted, __ATOMIC_RELAXED) ||
		    now_ns() - start > RUN_SLICE_NS) {
			uint64_t one = 1;

			if (write(d->kick_fd, &one, sizeof(one)) < 0)
				vm_log(d->name, "kick: %s", strerror(errno));
			break;
		}
		notify_off(d);
		d->stalled = false;
		popped = pop_requests(d);
		if (popped)
			io_engine_submit(d->eng);
		if (io_engine_inflight(d->eng))
			reaped = io_engine_poll(d->eng);
		flush_used(d);
		if (popped || reaped > 0) {
			if (idle_since)	/* polling paid */
				d->poll_misses = d->poll_streak = 0;
			idle_since = 0;
			continue;
		}
		if (!d->active || d->broken)
			break;
		if (polling) {
			uint64_t t = now_ns();

			if (!idle_since)
				idle_since = t;
			if (t - idle_since < d->poll_ns) {
				__builtin_ia32_pause();
				continue;
			}
			if (++d->poll_misses >= POLL_MISSES_MAX) {
				unsigned b = POLL_BACKOFF << d->poll_streak;

				d->poll_misses = 0;
				d->poll_skip = b < POLL_BACKOFF_MAX ? b :
					       POLL_BACKOFF_MAX;
				if (b < POLL_BACKOFF_MAX)
					d->poll_streak++;
				polling = false;
			}
		}
		/* Going to sleep: drain the completion eventfd (the polls above
		 * left it set) so it wakes us only for new completions. */
		if (io_engine_complete(d->eng) > 0) {
			flush_used(d);
			idle_since = 0;
			continue;
		}
		/* stalled: notifies stay off, the completion eventfd wakes us */
		if (d->stalled || !notify_on(d))
			break;
		idle_since = 0;
	}
	flush_used(d);
}

static void vblk_notify(void *opaque, unsigned qi)
{
	struct vblk *d = opaque;

	(void)qi;
	pthread_mutex_lock(&d->lock);
	if (d->active && !d->broken)
		run_queue(d);
	pthread_mutex_unlock(&d->lock);
}

static void vblk_on_kick(void *opaque)
{
	struct vblk *d = opaque;
	uint64_t v;

	if (read(d->kick_fd, &v, sizeof(v)) < 0)
		return;
	pthread_mutex_lock(&d->lock);
	if (d->active && !d->broken)
		run_queue(d);
	pthread_mutex_unlock(&d->lock);
}

static void vblk_on_complete(void *opaque)
{
	struct vblk *d = opaque;

	pthread_mutex_lock(&d->lock);
	/* also while inactive: a reset waits for these to drain */
	if (io_engine_complete(d->eng) > 0 && d->active) {
		if (!d->broken)
			run_queue(d);
		else
			flush_used(d);
	}
	pthread_mutex_unlock(&d->lock);
}

static void vblk_config_read(void *opaque, uint32_t off, void *data,
			     unsigned size)
{
	struct vblk *d = opaque;

	memcpy(data, d->config + off, size);
}

static int vblk_activate(void *opaque, uint64_t features)
{
	struct vblk *d = opaque;
	bool mq = features & (1ULL << VIRTIO_BLK_F_MQ);
	unsigned nq = mq ? VIRTIO_BLK_NUM_QUEUES : 1;
	uint64_t one = 1;

	if (!virtio_mmio_queue(d->t, 0)) {
		vm_log(d->name, "DRIVER_OK without request queue 0");
		return -1;
	}
	__atomic_fetch_add(&d->lock_wanted, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&d->lock);
	__atomic_fetch_sub(&d->lock_wanted, 1, __ATOMIC_SEQ_CST);
	/* with MQ the driver may use any subset of the queues */
	for (unsigned i = 0; i < VIRTIO_BLK_NUM_QUEUES; i++)
		d->vq[i] = i < nq ? virtio_mmio_queue(d->t, i) : NULL;
	d->nq = nq;
	d->features = features;
	d->writethrough = !(features & (1ULL << VIRTIO_BLK_F_FLUSH));
	d->stalled = d->broken = false;
	d->pending_used = 0;
	d->active = true;
	pthread_mutex_unlock(&d->lock);
	/* buffers made available before DRIVER_OK (a notify then was
	 * ignored) are not left waiting for the next one */
	if (write(d->kick_fd, &one, sizeof(one)) < 0)
		vm_log(d->name, "kick: %s", strerror(errno));
	return 0;
}

static void vblk_reset(void *opaque)
{
	struct vblk *d = opaque;

	__atomic_fetch_add(&d->lock_wanted, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&d->lock);
	__atomic_fetch_sub(&d->lock_wanted, 1, __ATOMIC_SEQ_CST);
	d->active = false;
	/* the loop thread keeps reaping; completions now only free slots */
	while (d->inflight)
		pthread_cond_wait(&d->drained, &d->lock);
	memset(d->vq, 0, sizeof(d->vq));
	d->nq = 0;
	d->stalled = d->broken = false;
	d->pending_used = 0;
	pthread_mutex_unlock(&d->lock);
}

static const struct virtio_dev_ops vblk_ops = {
	.device_id = VIRTIO_ID_BLOCK,
	.num_queues = VIRTIO_BLK_NUM_QUEUES,
	.queue_max = VIRTIO_BLK_QUEUE_SIZE,
	.config_size = VIRTIO_BLK_CFG_SIZE,
	.config_read = vblk_config_read,
	.config_write = NULL,
	.activate = vblk_activate,
	.notify = vblk_notify,
	.reset = vblk_reset,
};

static void vblk_free(struct vblk *d)
{
	if (d->loop)
		event_loop_destroy(d->loop);
	/* the thread is gone: drain what is in flight on this one */
	pthread_mutex_lock(&d->lock);
	d->active = false;
	pthread_mutex_unlock(&d->lock);
	while (d->eng && io_engine_inflight(d->eng) > 0)
		if (io_engine_wait(d->eng) < 0)
			break;
	virtio_mmio_destroy(d->t);
	if (d->blk)
		blk_close(d->blk);
	if (d->eng)
		io_engine_destroy(d->eng);
	if (d->kick_fd >= 0)
		close(d->kick_fd);
	pthread_cond_destroy(&d->drained);
	pthread_mutex_destroy(&d->lock);
	free(d->reqs);
	free(d);
}

static void vblk_destroy(void *opaque)
{
	vblk_free(opaque);
}

static void build_config(struct vblk *d)
{
	unsigned align = blk_alignment(d->blk);
	uint32_t bs = align > 512 ? align : 512;

	memset(d->config, 0, sizeof(d->config));
	put_le64(d->config + VIRTIO_BLK_CFG_CAPACITY,
		 blk_size(d->blk) >> SECTOR_SHIFT);
	put_le32(d->config + VIRTIO_BLK_CFG_SIZE_MAX, VIRTIO_BLK_SIZE_MAX);
	put_le32(d->config + VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_SEG_MAX);
	put_le32(d->config + VIRTIO_BLK_CFG_BLK_SIZE, bs);
	put_le16(d->config + VIRTIO_BLK_CFG_NUM_QUEUES, VIRTIO_BLK_NUM_QUEUES);
	put_le32(d->config + VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS,
		 VIRTIO_BLK_MAX_DISCARD_SECTORS);
	put_le32(d->config + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, 1);
	/* hole punching works in file system blocks */
	put_le32(d->config + VIRTIO_BLK_CFG_DISCARD_ALIGN,
		 (bs > 4096 ? bs : 4096) >> SECTOR_SHIFT);
	put_le32(d->config + VIRTIO_BLK_CFG_MAX_WZ_SECTORS,
		 VIRTIO_BLK_MAX_DISCARD_SECTORS);
	put_le32(d->config + VIRTIO_BLK_CFG_MAX_WZ_SEG, 1);
	d->config[VIRTIO_BLK_CFG_WZ_MAY_UNMAP] = 1;
}

int virtio_blk_create(struct vm *vm, const struct virtio_blk_opts *o,
		      char *err, size_t errlen)
{
	struct vblk *d;
	uint64_t features;
	char e2[200];
	unsigned i;

	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "virtio-blk: out of memory");
		return -1;
	}
	d->vm = vm;
	d->kick_fd = -1;
	d->log_budget = 20;
	d->poll_ns = blk_poll_ns();
	snprintf(d->name, sizeof(d->name), "virtio-blk%u", o->index);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->drained, NULL);
	if (o->serial && strlen(o->serial) > VIRTIO_BLK_ID_BYTES) {
		snprintf(err, errlen, "%s: serial '%s' is longer than %u bytes",
			 o->blk.path ? o->blk.path : "disk", o->serial,
			 VIRTIO_BLK_ID_BYTES);
		goto fail;
	}
	if (o->serial)
		memcpy(d->serial, o->serial, strlen(o->serial));
	else
		snprintf(d->serial, sizeof(d->serial), "vmm-disk%u", o->index);

	d->reqs = calloc(VIRTIO_BLK_QUEUE_SIZE, sizeof(*d->reqs));
	if (!d->reqs) {
		snprintf(err, errlen, "%s: out of memory", d->name);
		goto fail;
	}
	for (i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++) {
		d->reqs[i].d = d;
		d->reqs[i].next_free = d->free_list;
		d->free_list = &d->reqs[i];
	}
	/* room for every request plus a flush each (writethrough) */
	d->eng = io_engine_create(2 * VIRTIO_BLK_QUEUE_SIZE, e2, sizeof(e2));
	if (!d->eng) {
		snprintf(err, errlen, "%s: %s", d->name, e2);
		goto fail;
	}
	d->blk = blk_open(&o->blk, d->eng, err, errlen);
	if (!d->blk)
		goto fail;
	d->readonly = blk_readonly(d->blk);
	build_config(d);

	features = (1ULL << VIRTIO_BLK_F_SIZE_MAX) |
		   (1ULL << VIRTIO_BLK_F_SEG_MAX) |
		   (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		   (1ULL << VIRTIO_BLK_F_FLUSH) |
		   (1ULL << VIRTIO_BLK_F_MQ) |
		   (1ULL << VIRTIO_F_INDIRECT_DESC) |
		   (1ULL << VIRTIO_F_EVENT_IDX);
	if (d->readonly)
		features |= 1ULL << VIRTIO_BLK_F_RO;
	if (blk_can_discard(d->blk))
		features |= 1ULL << VIRTIO_BLK_F_DISCARD;
	if (blk_can_write_zeroes(d->blk))
		features |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;

	d->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->kick_fd < 0) {
		snprintf(err, errlen, "%s: eventfd: %s", d->name,
			 strerror(errno));
		goto fail;
	}
	d->loop = event_loop_create(d->name);
	if (!d->loop) {
		snprintf(err, errlen, "%s: cannot create the device thread",
			 d->name);
		goto fail;
	}
	d->t = virtio_mmio_create(vm, d->name, &vblk_ops, d, features, d->loop,
				  err, errlen);
	if (!d->t)
		goto fail_leak;
	if (event_loop_add(d->loop, io_engine_eventfd(d->eng),
			   vblk_on_complete, d) < 0 ||
	    event_loop_add(d->loop, d->kick_fd, vblk_on_kick, d) < 0 ||
	    event_loop_start(d->loop) < 0) {
		snprintf(err, errlen, "%s: cannot start the device thread",
			 d->name);
		goto fail_leak;
	}
	if (vm_add_device(vm, d->name, vblk_destroy, d) < 0) {
		snprintf(err, errlen, "%s: cannot register the device",
			 d->name);
		goto fail_leak;
	}
	return 0;
fail:
	vblk_free(d);
	return -1;
fail_leak:
	/* The transport's MMIO handlers may point at d: keep it (the VMM
	 * exits on this error), only stop the thread. */
	event_loop_destroy(d->loop);
	return -1;
}

/* One --disk value, e.g. "path=a.img,format=raw,readonly=on". */
static int vblk_parse(char *s, void *cfg, unsigned index, char *err,
		      size_t errlen)
{
	struct virtio_blk_opts *d = cfg;
	char *save = NULL, *kv;
	bool have_format = false;

	memset(d, 0, sizeof(*d));
	d->index = index;
	d->blk.cache = BLK_CACHE_WRITEBACK;
	for (kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');

		if (!v)
			return errf(err, errlen, "'%s' is not key=value", kv);
		*v++ = '\0';
		if (!strcmp(kv, "path")) {
			if (!*v)
				return errf(err, errlen, "empty path");
			d->blk.path = v;
		} else if (!strcmp(kv, "format")) {
			int f = blk_format_parse(v);

			if (f < 0)
				return errf(err, errlen,
					    "unknown format '%s' (raw or qcow2)", v);
			d->blk.format = (enum blk_format)f;
			have_format = true;
		} else if (!strcmp(kv, "readonly")) {
			if (device_parse_onoff(v, &d->blk.readonly))
				return errf(err, errlen,
					    "readonly=%s: expected on or off", v);
		} else if (!strcmp(kv, "cache")) {
			if (!strcmp(v, "none"))
				d->blk.cache = BLK_CACHE_NONE;
			else if (!strcmp(v, "writeback"))
				d->blk.cache = BLK_CACHE_WRITEBACK;
			else
				return errf(err, errlen,
					    "cache=%s: expected none or writeback", v);
		} else if (!strcmp(kv, "serial")) {
			/* GET_ID answers 20 bytes: refuse, don't truncate */
			if (strlen(v) > VIRTIO_BLK_ID_BYTES)
				return errf(err, errlen,
					    "serial '%s' is longer than 20 characters", v);
			d->serial = v;
		} else {
			return errf(err, errlen, "unknown key '%s'", kv);
		}
	}
	if (!d->blk.path)
		return errf(err, errlen, "path= is required");
	if (!have_format)
		return errf(err, errlen,
			    "%s: format= is required (raw or qcow2; never probed)",
			    d->blk.path);
	return 0;
}

static int vblk_type_create(struct vm *vm, const void *cfg, char *err,
			    size_t errlen)
{
	/* an image that cannot be opened is bad input, as is all else here */
	return virtio_blk_create(vm, cfg, err, errlen) ? VMM_EXIT_BAD_INPUT : 0;
}

const struct device_type virtio_blk_type = {
	.option = "disk",
	.usage =
"  --disk path=P,format=raw|qcow2[,readonly=on][,cache=none|writeback][,serial=S]\n"
"                         a virtio-blk disk (repeatable, up to 8)\n",
	.max = VIRTIO_BLK_MAX_DISKS,
	.config_size = sizeof(struct virtio_blk_opts),
	.parse = vblk_parse,
	.create = vblk_type_create,
};
