/* devices/virtio_dev.c - the device thread, work loop, in-flight accounting
 * and reset handshake shared by the virtio devices (see virtio_dev.h).
 *
 * vd->lock covers all request state.  The device thread holds it while it
 * works; activate/reset (vCPU threads) announce themselves in lock_wanted
 * so that a busy work loop yields within one round, and reset then waits
 * on vd->drained until the device thread has completed every chain in
 * flight.
 */
#include "devices/virtio_dev.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <linux/virtio_ids.h>
#include <unistd.h>

#include "devices/guest_log.h"
#include "vmm/event_loop.h"
#include "vmm/vm.h"

#define MAX_WATCHES	4	/* device fds besides notifies and the kick */

_Static_assert(VIRTIO_MMIO_MAX_QUEUES <= 32, "pending_used is 32 bits");

struct fd_watch {
	struct virtio_dev *vd;
	int (*fn)(void *dev);
};

struct virtio_dev {
	struct vm *vm;
	char name[32];
	const struct virtio_dev_class *cls;
	void *dev;
	struct virtio_dev_ops mmio_ops;	/* the transport's view of us */
	struct virtio_mmio *t;
	struct event_loop *loop;
	int kick_fd;		/* the work loop reschedules itself */
	struct fd_watch watches[MAX_WATCHES];
	unsigned nwatches;

	pthread_mutex_t lock;
	pthread_cond_t drained;
	int lock_wanted;	/* atomic: a vCPU waits for the lock */
	bool active;		/* DRIVER_OK and not reset */
	bool broken;		/* NEEDS_RESET: no more work */
	bool stalled;		/* stopped popping: no free request slot */
	uint64_t features;
	struct virtq *vq[VIRTIO_MMIO_MAX_QUEUES];	/* served (NULL: not) */
	unsigned nq;		/* vq[0..nq) may be served */
	uint32_t pending_used;	/* queues (bits) with unpublished entries */
	unsigned inflight;	/* chains popped and not yet ended */

	uint64_t poll_ns;	/* keep polling this long after the last work */
	unsigned poll_misses, poll_skip, poll_streak;
};

/* ---- accessors ---- */

struct virtq *virtio_dev_queue(struct virtio_dev *vd, unsigned i)
{
	return i < vd->nq ? vd->vq[i] : NULL;
}

unsigned virtio_dev_num_queues(const struct virtio_dev *vd)
{
	return vd->nq;
}

bool virtio_dev_active(const struct virtio_dev *vd)
{
	return vd->active;
}

uint64_t virtio_dev_features(const struct virtio_dev *vd)
{
	return vd->features;
}

const char *virtio_dev_name(const struct virtio_dev *vd)
{
	return vd->name;
}

struct virtio_mmio *virtio_dev_transport(struct virtio_dev *vd)
{
	return vd->t;
}

void virtio_dev_set_poll_ns(struct virtio_dev *vd, uint64_t ns)
{
	vd->poll_ns = ns;
}

void virtio_dev_guest_error(struct virtio_dev *vd, const char *fmt, ...)
{
	char msg[240];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	guest_log(virtio_mmio_log_budget(vd->t), vd->name, "%s", msg);
}

/* ---- requests ---- */

void virtio_dev_set_broken(struct virtio_dev *vd)
{
	vd->broken = true;
	virtio_mmio_set_needs_reset(vd->t);
}

void virtio_dev_stall(struct virtio_dev *vd)
{
	vd->stalled = true;
}

int virtio_dev_pop(struct virtio_dev *vd, unsigned qi, struct virtq_elem *e,
		   struct iovec *iov, unsigned max_iov)
{
	struct virtq *q = virtio_dev_queue(vd, qi);
	int ret;

	if (!q || !vd->active || vd->broken)
		return 0;
	ret = virtq_pop(q, e, iov, max_iov);
	if (ret < 0) {
		virtio_dev_set_broken(vd);
		return -1;
	}
	vd->inflight += (unsigned)ret;
	return ret;
}

static void end_flight(struct virtio_dev *vd)
{
	if (--vd->inflight == 0 && !vd->active)
		pthread_cond_broadcast(&vd->drained);
}

void virtio_dev_complete(struct virtio_dev *vd, unsigned qi, uint16_t head,
			 uint32_t len)
{
	struct virtq *q = virtio_dev_queue(vd, qi);

	if (vd->active && q) {
		virtq_push(q, head, len);
		vd->pending_used |= 1U << qi;
	}
	end_flight(vd);
}

void virtio_dev_abandon(struct virtio_dev *vd, unsigned qi)
{
	struct virtq *q = virtio_dev_queue(vd, qi);

	if (q)
		q->broken = true;
	virtio_dev_set_broken(vd);
	end_flight(vd);
}

/* ---- the work loop (device thread, lock held) ---- */

/* Publish every queue's new used entries; one interrupt for all of them
 * (virtio-mmio has one line per device anyway). */
static void flush_used(struct virtio_dev *vd)
{
	bool irq = false;

	while (vd->pending_used) {
		unsigned i = (unsigned)__builtin_ctz(vd->pending_used);

		vd->pending_used &= vd->pending_used - 1;
		virtq_publish(vd->vq[i]);
		if (virtq_should_interrupt(vd->vq[i]))
			irq = true;
	}
	if (irq)
		virtio_mmio_interrupt(vd->t);
}

static void notify_off(struct virtio_dev *vd)
{
	for (unsigned i = 0; i < vd->nq; i++)
		if (vd->vq[i])
			virtq_disable_notify(vd->vq[i]);
}

/* Ask for notifies again; true if work arrived meanwhile. */
static bool notify_on(struct virtio_dev *vd)
{
	bool more = false;

	for (unsigned i = 0; i < vd->nq; i++)
		if (vd->vq[i] && virtq_enable_notify(vd->vq[i]))
			more = true;
	return more;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static void kick(struct virtio_dev *vd)
{
	uint64_t one = 1;

	if (write(vd->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vm_log(vd->name, "kick: %s", strerror(errno));
}

/* Polling only pays when this thread and the vCPU run on different cores:
 * sharing one, the vCPU cannot refill the ring while we spin.  So when
 * windows keep expiring empty (a shared core, or an idle guest) we stop
 * polling for a number of wake-ups that doubles with every such streak
 * (the scheduler may place the threads apart later: we look again), and
 * one window that pays resets it. */
#define RUN_SLICE_NS	1000000	/* longest stay in one work loop */
#define POLL_MISSES_MAX	3	/* empty windows in a row before backing off */
#define POLL_BACKOFF	32	/* wake-ups without polling after that, */
#define POLL_BACKOFF_MAX 8192	/* doubling with each streak up to this */

/* A polling window expired empty: back off after too many. */
static void poll_missed(struct virtio_dev *vd)
{
	unsigned b;

	if (++vd->poll_misses < POLL_MISSES_MAX)
		return;
	b = POLL_BACKOFF << vd->poll_streak;
	vd->poll_misses = 0;
	vd->poll_skip = b < POLL_BACKOFF_MAX ? b : POLL_BACKOFF_MAX;
	if (b < POLL_BACKOFF_MAX)
		vd->poll_streak++;
}

static void run(struct virtio_dev *vd)
{
	uint64_t idle_since = 0, start = now_ns();
	bool polling = vd->poll_ns && vd->poll_skip == 0;

	if (vd->poll_skip)
		vd->poll_skip--;
	for (;;) {
		int moved;

		if (!vd->active || vd->broken)
			break;
		/* A guest streaming requests keeps us here: give the lock to
		 * a waiting reset and the thread to the event loop (teardown)
		 * now and then; the kick brings us back with notifies off. */
		if (__atomic_load_n(&vd->lock_wanted, __ATOMIC_RELAXED) ||
		    now_ns() - start > RUN_SLICE_NS) {
			kick(vd);
			break;
		}
		notify_off(vd);
		vd->stalled = false;
		moved = vd->cls->work(vd->dev);
		flush_used(vd);
		if (moved > 0) {
			if (idle_since)	/* polling paid */
				vd->poll_misses = vd->poll_streak = 0;
			idle_since = 0;
			continue;
		}
		if (!vd->active || vd->broken)
			break;
		if (polling) {
			uint64_t t = now_ns();

			if (!idle_since)
				idle_since = t;
			if (t - idle_since < vd->poll_ns) {
				__builtin_ia32_pause();
				continue;
			}
			poll_missed(vd);
			polling = vd->poll_skip == 0;
		}
		/* Going to sleep: drain the completion eventfds (the polls
		 * above left them set) so they wake us only for new ones. */
		if (vd->cls->before_sleep && vd->cls->before_sleep(vd->dev) > 0) {
			flush_used(vd);
			idle_since = 0;
			continue;
		}
		/* stalled: notifies stay off, a completion wakes us */
		if (vd->stalled || !notify_on(vd))
			break;
		idle_since = 0;
	}
	flush_used(vd);
}

static void on_kick(void *opaque)
{
	struct virtio_dev *vd = opaque;
	uint64_t v;

	if (read(vd->kick_fd, &v, sizeof(v)) < 0)
		return;
	pthread_mutex_lock(&vd->lock);
	if (vd->active && !vd->broken)
		run(vd);
	pthread_mutex_unlock(&vd->lock);
}

static void on_watch(void *opaque)
{
	struct fd_watch *w = opaque;
	struct virtio_dev *vd = w->vd;

	pthread_mutex_lock(&vd->lock);
	/* also while inactive: a reset waits for these to drain */
	if (w->fn(vd->dev) > 0 && vd->active) {
		if (!vd->broken)
			run(vd);
		else
			flush_used(vd);
	}
	pthread_mutex_unlock(&vd->lock);
}

/* ---- the transport's callbacks ---- */

static void mmio_notify(void *opaque, unsigned qi)
{
	struct virtio_dev *vd = opaque;

	(void)qi;	/* a round looks at every served queue */
	pthread_mutex_lock(&vd->lock);
	if (vd->active && !vd->broken)
		run(vd);
	pthread_mutex_unlock(&vd->lock);
}

static void mmio_config_read(void *opaque, uint32_t off, void *data,
			     unsigned size)
{
	struct virtio_dev *vd = opaque;

	vd->cls->config_read(vd->dev, off, data, size);
}

static void mmio_config_write(void *opaque, uint32_t off, const void *data,
			      unsigned size)
{
	struct virtio_dev *vd = opaque;

	vd->cls->config_write(vd->dev, off, data, size);
}

/* A vCPU takes the lock: the work loop yields to it within one round. */
static void lock_from_vcpu(struct virtio_dev *vd)
{
	__atomic_fetch_add(&vd->lock_wanted, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&vd->lock);
	__atomic_fetch_sub(&vd->lock_wanted, 1, __ATOMIC_SEQ_CST);
}

static void forget_activation(struct virtio_dev *vd)
{
	memset(vd->vq, 0, sizeof(vd->vq));
	vd->nq = 0;
	vd->features = 0;
	vd->stalled = vd->broken = false;
	vd->pending_used = 0;
}

static int mmio_activate(void *opaque, uint64_t features)
{
	struct virtio_dev *vd = opaque;
	unsigned n = vd->cls->num_queues;
	int served;

	lock_from_vcpu(vd);
	for (unsigned i = 0; i < n; i++)
		vd->vq[i] = virtio_mmio_queue(vd->t, i);
	vd->nq = n;
	vd->features = features;
	vd->stalled = vd->broken = false;
	vd->pending_used = 0;
	served = vd->cls->activate(vd->dev, features);
	if (served < 0 || (unsigned)served > n) {
		forget_activation(vd);
		pthread_mutex_unlock(&vd->lock);
		return -1;
	}
	for (unsigned i = (unsigned)served; i < n; i++)
		vd->vq[i] = NULL;
	vd->nq = (unsigned)served;
	vd->active = true;
	pthread_mutex_unlock(&vd->lock);
	/* buffers made available before DRIVER_OK (a notify then was
	 * ignored) are not left waiting for the next one */
	kick(vd);
	return 0;
}

static void mmio_reset(void *opaque)
{
	struct virtio_dev *vd = opaque;

	lock_from_vcpu(vd);
	vd->active = false;
	if (vd->cls->cancel)
		vd->cls->cancel(vd->dev);
	/* the device thread keeps reaping; completions now only count */
	while (vd->inflight)
		pthread_cond_wait(&vd->drained, &vd->lock);
	if (vd->cls->reset)
		vd->cls->reset(vd->dev);
	forget_activation(vd);
	pthread_mutex_unlock(&vd->lock);
}

/* ---- snapshot (vm.h's section callbacks) ---- */

#define SNAP_DRAIN_MS	2000	/* in-flight requests get this long */

/* The vCPUs are parked: finish what is in flight, then keep the lock (the
 * device thread stays off the rings and guest memory) until resume. */
static int snap_pause(void *opaque, char *err, size_t errlen)
{
	struct virtio_dev *vd = opaque;

	lock_from_vcpu(vd);
	if (vd->active && vd->cls->quiesce)
		vd->cls->quiesce(vd->dev);
	for (int ms = 0; vd->inflight && ms < SNAP_DRAIN_MS; ms++) {
		pthread_mutex_unlock(&vd->lock);
		usleep(1000);
		lock_from_vcpu(vd);
	}
	if (vd->inflight) {
		snprintf(err, errlen, "%u requests still in flight after %d ms "
			 "(a device that holds buffers cannot be snapshotted)",
			 vd->inflight, SNAP_DRAIN_MS);
		pthread_mutex_unlock(&vd->lock);
		return -1;
	}
	/* used entries of the last round are out before the rings are saved */
	flush_used(vd);
	return 0;
}

static void snap_resume(void *opaque)
{
	struct virtio_dev *vd = opaque;

	pthread_mutex_unlock(&vd->lock);
}

/* The transport, then the config space: a restore checks it is the same
 * device (a disk of the same size, the same MAC, CID or tag). */
static int snap_save(void *opaque, struct snap_buf *b, char *err,
		     size_t errlen)
{
	struct virtio_dev *vd = opaque;
	uint8_t config[256];
	uint32_t n = vd->cls->config_size;

	(void)err;
	(void)errlen;
	if (n > sizeof(config))
		n = sizeof(config);
	memset(config, 0, sizeof(config));
	for (uint32_t off = 0; off < n; off++)
		vd->cls->config_read(vd->dev, off, config + off, 1);
	vm_snap_put(b, &n, sizeof(n));
	vm_snap_put(b, config, n);
	virtio_mmio_save(vd->t, b);
	return 0;
}

static int snap_load(void *opaque, struct snap_reader *r, char *err,
		     size_t errlen)
{
	struct virtio_dev *vd = opaque;
	uint8_t saved[256], here[256];
	uint32_t n;

	/* the config first: a different device is bad input, refused
	 * before the transport starts anything */
	if (vm_snap_get(r, &n, sizeof(n)) || n > sizeof(saved) ||
	    vm_snap_get(r, saved, n))
		goto malformed;
	for (uint32_t off = 0; off < n && off < vd->cls->config_size; off++)
		vd->cls->config_read(vd->dev, off, here + off, 1);
	if (n != (vd->cls->config_size < sizeof(saved) ? vd->cls->config_size :
		  sizeof(saved)) || memcmp(saved, here, n)) {
		uint64_t was = 0, is = 0;

		if (n >= 8) {
			memcpy(&was, saved, 8);
			memcpy(&is, here, 8);
		}
		if (vd->cls->device_id == VIRTIO_ID_BLOCK && was != is) {
			snprintf(err, errlen, "the disk has %llu bytes, the "
				 "snapshot's had %llu (restore on the image as "
				 "it was at snapshot time)",
				 (unsigned long long)is << 9,
				 (unsigned long long)was << 9);
		} else {
			snprintf(err, errlen, "the device's configuration "
				 "differs from the snapshot's (another MAC, CID, "
				 "tag, or disk format or cache mode?)");
		}
		return VMM_EXIT_BAD_INPUT;
	}
	if (virtio_mmio_load(vd->t, r, err, errlen))
		return VMM_EXIT_BAD_INPUT;
	if (vm_snap_left(r))
		goto malformed;
	if (vd->cls->restored)
		vd->cls->restored(vd->dev);
	return 0;
malformed:
	snprintf(err, errlen, "malformed state");
	return VMM_EXIT_BAD_INPUT;
}

static const struct vm_snapshot_ops snap_ops = {
	.pause = snap_pause,
	.save = snap_save,
	.resume = snap_resume,
	.load = snap_load,
};

/* ---- life cycle ---- */

struct virtio_dev *virtio_dev_create(struct vm *vm, const char *name,
				     const struct virtio_dev_class *cls,
				     void *dev, uint64_t features,
				     char *err, size_t errlen)
{
	struct virtio_dev *vd = calloc(1, sizeof(*vd));

	if (!vd) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	vd->vm = vm;
	snprintf(vd->name, sizeof(vd->name), "%s", name);
	vd->cls = cls;
	vd->dev = dev;
	vd->poll_ns = VIRTIO_DEV_POLL_US * 1000ULL;
	pthread_mutex_init(&vd->lock, NULL);
	pthread_cond_init(&vd->drained, NULL);
	vd->mmio_ops = (struct virtio_dev_ops){
		.device_id = cls->device_id,
		.num_queues = cls->num_queues,
		.queue_max = cls->queue_max,
		.config_size = cls->config_size,
		.config_read = mmio_config_read,
		.config_write = cls->config_write ? mmio_config_write : NULL,
		.activate = mmio_activate,
		.notify = mmio_notify,
		.reset = mmio_reset,
	};
	vd->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (vd->kick_fd < 0) {
		snprintf(err, errlen, "%s: eventfd: %s", name, strerror(errno));
		goto fail;
	}
	vd->loop = event_loop_create(name);
	if (!vd->loop || event_loop_add(vd->loop, vd->kick_fd, on_kick, vd) < 0) {
		snprintf(err, errlen, "%s: cannot create the device thread",
			 name);
		goto fail;
	}
	/* last: nothing after it can fail, so nothing points at a freed vd */
	vd->t = virtio_mmio_create(vm, name, &vd->mmio_ops, vd, features,
				   vd->loop, err, errlen);
	if (!vd->t)
		goto fail;
	if (vm_add_snapshot_section(vm, name, &snap_ops, vd) < 0)
		vm_log(name, "no snapshot section left: snapshots will lack it");
	return vd;
fail:
	event_loop_destroy(vd->loop);
	if (vd->kick_fd >= 0)
		close(vd->kick_fd);
	pthread_cond_destroy(&vd->drained);
	pthread_mutex_destroy(&vd->lock);
	free(vd);
	return NULL;
}

int virtio_dev_add_fd(struct virtio_dev *vd, int fd, int (*fn)(void *dev))
{
	struct fd_watch *w;

	if (vd->nwatches == MAX_WATCHES)
		return -1;
	w = &vd->watches[vd->nwatches];
	w->vd = vd;
	w->fn = fn;
	if (event_loop_add(vd->loop, fd, on_watch, w) < 0)
		return -1;
	vd->nwatches++;
	return 0;
}

int virtio_dev_start(struct virtio_dev *vd, char *err, size_t errlen)
{
	if (event_loop_start(vd->loop) < 0)
		return errf(err, errlen, "%s: cannot start the device thread",
			    vd->name);
	return 0;
}

void virtio_dev_destroy(struct virtio_dev *vd)
{
	if (!vd)
		return;
	event_loop_destroy(vd->loop);
	/* the thread is gone: what is still in flight drains on this one */
	pthread_mutex_lock(&vd->lock);
	vd->active = false;
	if (vd->cls->drain)
		vd->cls->drain(vd->dev);
	pthread_mutex_unlock(&vd->lock);
	virtio_mmio_destroy(vd->t);
	close(vd->kick_fd);
	pthread_cond_destroy(&vd->drained);
	pthread_mutex_destroy(&vd->lock);
	free(vd);
}
