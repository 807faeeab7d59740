/* devices/virtio_mmio.c - virtio-mmio version 2 transport (virtio 1.2, 4.2).
 *
 * Register accesses trap on vCPU threads; all transport state lives under
 * t->lock.  The device's own thread only sees the queues after activation
 * and talks back through atomics (InterruptStatus, NEEDS_RESET) and the
 * irqfd, so it never waits for a vCPU.
 */
#include "devices/virtio_mmio.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/event_loop.h"
#include "vmm/vm.h"

struct queue_regs {
	uint32_t num;
	uint32_t ready;
	uint64_t desc, driver, device;
};

struct notify_src {
	struct virtio_mmio *t;
	unsigned idx;
	int fd;
	bool ioeventfd;		/* registered with KVM (else MMIO exits) */
	bool registered;	/* watched by the device's event loop */
};

struct virtio_mmio {
	struct vm *vm;
	char name[32];
	const struct virtio_dev_ops *ops;
	void *dev;
	struct event_loop *loop;
	uint64_t base;
	unsigned irq;
	int irqfd;		/* -1: fall back to vm_irq_line */

	pthread_mutex_t lock;
	uint64_t dev_features, drv_features;
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel, shm_sel;
	uint32_t status;	/* written under lock; read by the device too */
	uint32_t isr;		/* atomic: InterruptStatus */
	bool needs_reset;	/* atomic */
	uint32_t config_gen;	/* atomic */
	bool warned_width;
	int log_budget;		/* guest-triggered lines left (atomic) */
	struct queue_regs qr[VIRTIO_MMIO_MAX_QUEUES];
	struct virtq vq[VIRTIO_MMIO_MAX_QUEUES];
	bool vq_live[VIRTIO_MMIO_MAX_QUEUES];
	struct notify_src notify[VIRTIO_MMIO_MAX_QUEUES];
	/* per queue, the heads in flight (virtq_track_in_flight) */
	uint64_t *in_flight_bits;
	size_t in_flight_words;
};

uint64_t virtio_mmio_base(const struct virtio_mmio *t)
{
	return t->base;
}

unsigned virtio_mmio_irq(const struct virtio_mmio *t)
{
	return t->irq;
}

struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned i)
{
	return i < t->ops->num_queues && t->vq_live[i] ? &t->vq[i] : NULL;
}

int *virtio_mmio_log_budget(struct virtio_mmio *t)
{
	return &t->log_budget;
}

const char *virtio_mmio_name(const struct virtio_mmio *t)
{
	return t->name;
}

/* A log line about something the guest did: from the device's budget. */
#define guest_warn(t, ...) guest_log(&(t)->log_budget, (t)->name, __VA_ARGS__)

static void raise_irq(struct virtio_mmio *t, uint32_t why)
{
	uint64_t one = 1;

	/* the bit is visible before the interrupt can be taken */
	__atomic_fetch_or(&t->isr, why, __ATOMIC_SEQ_CST);
	if (t->irqfd >= 0) {
		if (write(t->irqfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			vm_log(t->name, "irqfd write: %s", strerror(errno));
	} else {
		vm_irq_line(t->vm, t->irq, -1);
	}
}

void virtio_mmio_interrupt(struct virtio_mmio *t)
{
	raise_irq(t, VIRTIO_MMIO_INT_VRING);
}

void virtio_mmio_set_needs_reset(struct virtio_mmio *t)
{
	if (__atomic_exchange_n(&t->needs_reset, true, __ATOMIC_SEQ_CST))
		return;
	/* only a driver that is running is told (virtio 1.2, 2.1.2) */
	if (__atomic_load_n(&t->status, __ATOMIC_ACQUIRE) &
	    VIRTIO_CONFIG_S_DRIVER_OK)
		raise_irq(t, VIRTIO_MMIO_INT_CONFIG);
}

bool virtio_mmio_needs_reset(struct virtio_mmio *t)
{
	return __atomic_load_n(&t->needs_reset, __ATOMIC_ACQUIRE);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	__atomic_fetch_add(&t->config_gen, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&t->status, __ATOMIC_ACQUIRE) &
	    VIRTIO_CONFIG_S_DRIVER_OK)
		raise_irq(t, VIRTIO_MMIO_INT_CONFIG);
}

static void on_notify(void *opaque)
{
	struct notify_src *n = opaque;
	uint64_t v;

	/* clear the eventfd first: a notify after this read fires again */
	if (read(n->fd, &v, sizeof(v)) < 0)
		return;
	n->t->ops->notify(n->t->dev, n->idx);
}

/* Called with t->lock held. */
static void do_reset(struct virtio_mmio *t)
{
	t->ops->reset(t->dev);
	__atomic_store_n(&t->status, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->needs_reset, false, __ATOMIC_RELEASE);
	__atomic_store_n(&t->isr, 0, __ATOMIC_RELEASE);
	t->drv_features = 0;
	t->dev_feat_sel = t->drv_feat_sel = t->queue_sel = t->shm_sel = 0;
	memset(t->qr, 0, sizeof(t->qr));
	memset(t->vq, 0, sizeof(t->vq));
	memset(t->vq_live, 0, sizeof(t->vq_live));
}

static bool features_ok(struct virtio_mmio *t)
{
	uint64_t extra = t->drv_features & ~t->dev_features;

	if (!(t->drv_features & (1ULL << VIRTIO_F_VERSION_1))) {
		guest_warn(t, "driver did not accept VERSION_1 (legacy "
		       "drivers are not supported); FEATURES_OK refused");
		return false;
	}
	if (extra) {
		guest_warn(t, "driver accepted features %#" PRIx64 " that "
		       "were not offered; FEATURES_OK refused", extra);
		return false;
	}
	return true;
}

/* DRIVER_OK: set up the ready queues and start the device.  Lock held. */
static bool activate(struct virtio_mmio *t)
{
	struct guest_mem *mem = vm_mem(t->vm);
	char err[160];
	unsigned i;

	for (i = 0; i < t->ops->num_queues; i++) {
		struct queue_regs *r = &t->qr[i];

		if (!r->ready)
			continue;
		if (r->num > t->ops->queue_max) {
			guest_warn(t, "queue %u: size %u exceeds the maximum "
			       "%u", i, r->num, t->ops->queue_max);
			return false;
		}
		if (virtq_init(&t->vq[i], mem, t->name, (uint16_t)r->num,
			       r->desc, r->driver, r->device, t->drv_features,
			       err, sizeof(err)) < 0) {
			guest_warn(t, "queue %u: %s", i, err);
			return false;
		}
		t->vq[i].log_budget = &t->log_budget;
		virtq_track_in_flight(&t->vq[i], t->in_flight_bits +
				      i * t->in_flight_words);
		t->vq_live[i] = true;
	}
	if (t->ops->activate(t->dev, t->drv_features) < 0)
		return false;
	return true;
}

static void write_status(struct virtio_mmio *t, uint32_t v)
{
	uint32_t old = t->status, added;
	bool failed = false;

	if (v == 0) {
		do_reset(t);
		return;
	}
	v &= ~VIRTIO_CONFIG_S_NEEDS_RESET;	/* the device's bit */
	if (old & ~v) {
		guest_warn(t, "driver cleared status bits (%#x -> %#x) "
		       "without a reset; ignored", old, v);
		return;
	}
	added = v & ~old;
	if ((added & VIRTIO_CONFIG_S_FEATURES_OK) && !features_ok(t))
		v &= ~VIRTIO_CONFIG_S_FEATURES_OK;
	if (added & VIRTIO_CONFIG_S_DRIVER_OK) {
		if (!(v & VIRTIO_CONFIG_S_FEATURES_OK)) {
			guest_warn(t, "DRIVER_OK without FEATURES_OK");
			v &= ~VIRTIO_CONFIG_S_DRIVER_OK;
			__atomic_store_n(&t->needs_reset, true,
					 __ATOMIC_RELEASE);
		} else if (!activate(t)) {
			memset(t->vq_live, 0, sizeof(t->vq_live));
			__atomic_store_n(&t->needs_reset, true,
					 __ATOMIC_RELEASE);
			guest_warn(t, "device not started; needs reset");
			failed = true;
		}
	}
	__atomic_store_n(&t->status, v, __ATOMIC_RELEASE);
	/* the driver thinks it is running: tell it (config change) */
	if (failed)
		raise_irq(t, VIRTIO_MMIO_INT_CONFIG);
}

static uint32_t read_reg(struct virtio_mmio *t, uint64_t off)
{
	struct queue_regs *q = t->queue_sel < t->ops->num_queues ?
			       &t->qr[t->queue_sel] : NULL;

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return t->dev_feat_sel < 2 ?
		       (uint32_t)(t->dev_features >> (32 * t->dev_feat_sel)) : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? t->ops->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return __atomic_load_n(&t->isr, __ATOMIC_ACQUIRE);
	case VIRTIO_MMIO_STATUS:
		return t->status |
		       (__atomic_load_n(&t->needs_reset, __ATOMIC_ACQUIRE) ?
			VIRTIO_CONFIG_S_NEEDS_RESET : 0);
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return 0xffffffff;	/* no shared memory regions: length -1 */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return __atomic_load_n(&t->config_gen, __ATOMIC_ACQUIRE);
	default:
		return 0;	/* write-only and reserved registers */
	}
}

static void set_half(uint64_t *v, bool high, uint32_t x)
{
	if (high)
		*v = (*v & 0xffffffffULL) | ((uint64_t)x << 32);
	else
		*v = (*v & ~0xffffffffULL) | x;
}

static void write_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct queue_regs *q = t->queue_sel < t->ops->num_queues ?
			       &t->qr[t->queue_sel] : NULL;
	bool features_locked = t->status & VIRTIO_CONFIG_S_FEATURES_OK;

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->dev_feat_sel = v;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (features_locked || t->drv_feat_sel >= 2)
			return;
		set_half(&t->drv_features, t->drv_feat_sel == 1, v);
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->drv_feat_sel = v;
		return;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = v;
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* Only when the ioeventfd did not catch it (e.g. a 2-byte
		 * write): hand it to the device thread all the same. */
		if (v < t->ops->num_queues) {
			uint64_t one = 1;

			if (write(t->notify[v].fd, &one, sizeof(one)) < 0 &&
			    errno != EAGAIN)
				vm_log(t->name, "notify: %s", strerror(errno));
		}
		return;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		__atomic_fetch_and(&t->isr, ~v, __ATOMIC_SEQ_CST);
		return;
	case VIRTIO_MMIO_STATUS:
		write_status(t, v);
		return;
	case VIRTIO_MMIO_SHM_SEL:
		t->shm_sel = v;
		return;
	}
	if (!q)
		return;
	if (off == VIRTIO_MMIO_QUEUE_READY) {
		/* Linux writes 0 when it tears queues down (after a reset)
		 * and checks it reads back 0.  A queue already handed to the
		 * device at DRIVER_OK stays in use until the next reset. */
		q->ready = v & 1;
		return;
	}
	/* the other queue registers only while the queue is not enabled */
	if (q->ready)
		return;
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		q->num = v;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_half(&q->desc, off & 4, v);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		set_half(&q->driver, off & 4, v);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		set_half(&q->device, off & 4, v);
		break;
	}
}

static bool config_access(struct virtio_mmio *t, uint64_t off, unsigned size)
{
	uint64_t c = off - VIRTIO_MMIO_CONFIG;

	return off >= VIRTIO_MMIO_CONFIG && (size == 1 || size == 2 ||
					     size == 4 || size == 8) &&
	       c + size <= t->ops->config_size;
}

static void bad_width(struct virtio_mmio *t, uint64_t off, unsigned size)
{
	if (!t->warned_width)
		guest_warn(t, "%u-byte access at register %#" PRIx64
		       " ignored (32-bit aligned accesses only)", size, off);
	t->warned_width = true;
}

void virtio_mmio_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct virtio_mmio *t = opaque;
	uint32_t v;

	memset(data, 0, size);
	pthread_mutex_lock(&t->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		if (config_access(t, off, size))
			t->ops->config_read(t->dev,
					    (uint32_t)(off - VIRTIO_MMIO_CONFIG),
					    data, size);
	} else if (size != 4 || (off & 3)) {
		bad_width(t, off, size);
	} else {
		v = read_reg(t, off);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_write(void *opaque, uint64_t off, const void *data,
		       unsigned size)
{
	struct virtio_mmio *t = opaque;
	uint32_t v;

	pthread_mutex_lock(&t->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		if (config_access(t, off, size) && t->ops->config_write)
			t->ops->config_write(t->dev,
					     (uint32_t)(off - VIRTIO_MMIO_CONFIG),
					     data, size);
	} else if (size != 4 || (off & 3)) {
		bad_width(t, off, size);
	} else {
		memcpy(&v, data, 4);
		write_reg(t, off, v);
	}
	pthread_mutex_unlock(&t->lock);
}

/* ---- snapshot ---- */

/* The transport as saved: registers, and per queue its ring addresses and
 * where the device was in it. */
struct mmio_queue_state {
	uint32_t num, ready;
	uint64_t desc, driver, device;
	uint16_t last_avail, used_idx, published_used, signalled_used;
	uint8_t live, signalled_valid, broken, reserved[5];
};

struct mmio_state {
	uint32_t device_id, num_queues;
	uint64_t dev_features, drv_features;
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel, shm_sel;
	uint32_t status, isr, needs_reset, config_gen;
	struct mmio_queue_state q[VIRTIO_MMIO_MAX_QUEUES];
};

/* No transport lock here: the vCPUs are parked (they are the only
 * writers of the registers, and parking orders their writes before this)
 * and the caller holds the device's lock (the queues' positions are the
 * device thread's), and taking t->lock under the device's lock would
 * invert the order a guest's reset takes them in. */
void virtio_mmio_save(struct virtio_mmio *t, struct snap_buf *b)
{
	struct mmio_state st;

	memset(&st, 0, sizeof(st));
	st.device_id = t->ops->device_id;
	st.num_queues = t->ops->num_queues;
	st.dev_features = t->dev_features;
	st.drv_features = t->drv_features;
	st.dev_feat_sel = t->dev_feat_sel;
	st.drv_feat_sel = t->drv_feat_sel;
	st.queue_sel = t->queue_sel;
	st.shm_sel = t->shm_sel;
	st.status = t->status;
	st.isr = __atomic_load_n(&t->isr, __ATOMIC_ACQUIRE);
	st.needs_reset = __atomic_load_n(&t->needs_reset, __ATOMIC_ACQUIRE);
	st.config_gen = __atomic_load_n(&t->config_gen, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < t->ops->num_queues; i++) {
		struct mmio_queue_state *q = &st.q[i];
		const struct virtq *vq = &t->vq[i];

		q->num = t->qr[i].num;
		q->ready = t->qr[i].ready;
		q->desc = t->qr[i].desc;
		q->driver = t->qr[i].driver;
		q->device = t->qr[i].device;
		q->live = t->vq_live[i];
		if (!q->live)
			continue;
		q->last_avail = vq->last_avail;
		q->used_idx = vq->used_idx;
		q->published_used = vq->published_used;
		q->signalled_used = vq->signalled_used;
		q->signalled_valid = vq->signalled_valid;
		q->broken = vq->broken;
	}
	vm_snap_put(b, &st, sizeof(st));
}

int virtio_mmio_load(struct virtio_mmio *t, struct snap_reader *r, char *err,
		     size_t errlen)
{
	struct guest_mem *mem = vm_mem(t->vm);
	struct mmio_state st;
	int ret = 0;

	if (vm_snap_get(r, &st, sizeof(st)))
		return errf(err, errlen, "malformed transport state");
	if (st.device_id != t->ops->device_id ||
	    st.num_queues != t->ops->num_queues)
		return errf(err, errlen, "the snapshot's device is of another "
			    "kind (virtio id %u, %u queues; here %u, %u)",
			    st.device_id, st.num_queues, t->ops->device_id,
			    t->ops->num_queues);
	if (st.dev_features != t->dev_features)
		return errf(err, errlen, "the device offers features %#" PRIx64
			    ", the snapshot's offered %#" PRIx64 " (another "
			    "disk format, readonly or cache setting?)", t->dev_features, st.dev_features);
	pthread_mutex_lock(&t->lock);
	t->drv_features = st.drv_features;
	t->dev_feat_sel = st.dev_feat_sel;
	t->drv_feat_sel = st.drv_feat_sel;
	t->queue_sel = st.queue_sel;
	t->shm_sel = st.shm_sel;
	__atomic_store_n(&t->isr, st.isr, __ATOMIC_RELEASE);
	__atomic_store_n(&t->needs_reset, st.needs_reset != 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->config_gen, st.config_gen, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < t->ops->num_queues; i++) {
		t->qr[i].num = st.q[i].num;
		t->qr[i].ready = st.q[i].ready;
		t->qr[i].desc = st.q[i].desc;
		t->qr[i].driver = st.q[i].driver;
		t->qr[i].device = st.q[i].device;
	}
	/* a running device: its queues where the device left them, then the
	 * device started as at DRIVER_OK */
	for (unsigned i = 0; i < t->ops->num_queues && !ret; i++) {
		struct mmio_queue_state *q = &st.q[i];
		char msg[160];

		if (!q->live)
			continue;
		if (q->num > t->ops->queue_max ||
		    virtq_init(&t->vq[i], mem, t->name, (uint16_t)q->num,
			       q->desc, q->driver, q->device, t->drv_features,
			       msg, sizeof(msg)) < 0) {
			ret = errf(err, errlen, "queue %u: bad saved ring", i);
			break;
		}
		t->vq[i].log_budget = &t->log_budget;
		virtq_track_in_flight(&t->vq[i], t->in_flight_bits +
				      i * t->in_flight_words);
		t->vq[i].last_avail = q->last_avail;
		t->vq[i].used_idx = q->used_idx;
		t->vq[i].published_used = q->published_used;
		t->vq[i].signalled_used = q->signalled_used;
		t->vq[i].signalled_valid = q->signalled_valid;
		t->vq[i].broken = q->broken;
		t->vq_live[i] = true;
	}
	__atomic_store_n(&t->status, st.status, __ATOMIC_RELEASE);
	if (!ret && (st.status & VIRTIO_CONFIG_S_DRIVER_OK) && !st.needs_reset &&
	    t->ops->activate(t->dev, t->drv_features) < 0)
		ret = errf(err, errlen, "the device refused the saved queues");
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* Undo what virtio_mmio_create set up; nothing points at t any more.
 * loop_alive: the event loop still exists (else it is already gone). */
static void free_transport(struct virtio_mmio *t, bool loop_alive)
{
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		struct notify_src *n = &t->notify[i];

		if (n->fd < 0)
			continue;
		if (n->registered && loop_alive)
			event_loop_del(t->loop, n->fd);
		if (n->ioeventfd)
			vm_ioeventfd_remove(t->vm, t->base +
					    VIRTIO_MMIO_QUEUE_NOTIFY, 4, true,
					    i, n->fd);
		close(n->fd);
	}
	if (t->irqfd >= 0)
		close(t->irqfd);
	pthread_mutex_destroy(&t->lock);
	free(t->in_flight_bits);
	free(t);
}

struct virtio_mmio *virtio_mmio_create(struct vm *vm, const char *name,
				       const struct virtio_dev_ops *ops,
				       void *dev, uint64_t features,
				       struct event_loop *loop, char *err,
				       size_t errlen)
{
	size_t words = VIRTQ_IN_FLIGHT_WORDS(ops->queue_max);
	struct virtio_mmio *t;
	unsigned i;
	int ret;

	if (ops->num_queues == 0 || ops->num_queues > VIRTIO_MMIO_MAX_QUEUES ||
	    ops->queue_max == 0 || ops->queue_max > VIRTQ_MAX_SIZE) {
		snprintf(err, errlen, "%s: bad queue layout", name);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	t->vm = vm;
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->ops = ops;
	t->dev = dev;
	t->loop = loop;
	t->dev_features = features | (1ULL << VIRTIO_F_VERSION_1);
	t->irqfd = -1;
	t->log_budget = GUEST_LOG_LINES;
	for (i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		t->notify[i].fd = -1;
	pthread_mutex_init(&t->lock, NULL);
	t->in_flight_words = words;
	t->in_flight_bits = calloc(ops->num_queues * words, sizeof(uint64_t));
	if (!t->in_flight_bits) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}

	ret = vm_add_virtio_mmio(vm, &t->base, &t->irq);
	if (ret < 0) {
		snprintf(err, errlen, "%s: no virtio-mmio window left (%s)",
			 name, strerror(-ret));
		goto fail;
	}
	for (i = 0; i < ops->num_queues; i++) {
		struct notify_src *n = &t->notify[i];

		n->t = t;
		n->idx = i;
		n->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (n->fd < 0) {
			snprintf(err, errlen, "%s: eventfd: %s", name,
				 strerror(errno));
			goto fail;
		}
		/* no exit to user space for a notify: KVM signals the fd */
		n->ioeventfd = vm_ioeventfd(vm, t->base +
					    VIRTIO_MMIO_QUEUE_NOTIFY, 4, true,
					    i, n->fd) == 0;
		if (!n->ioeventfd)
			vm_log(name, "no ioeventfd for queue %u: notifies "
			       "will exit to the VMM", i);
		if (event_loop_add(loop, n->fd, on_notify, n) < 0) {
			snprintf(err, errlen, "%s: cannot watch queue %u "
				 "notifies", name, i);
			goto fail;
		}
		n->registered = true;
	}
	t->irqfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->irqfd >= 0 && vm_irqfd(vm, t->irq, t->irqfd) < 0) {
		vm_log(name, "no irqfd for IRQ %u: interrupts go through the "
		       "VMM", t->irq);
		close(t->irqfd);
		t->irqfd = -1;
	}
	/* Last: once the handlers point at t, the guest can reach it, and
	 * vm.h cannot take a registration back. */
	ret = vm_register_io(vm, IO_SPACE_MMIO, t->base, VMM_VIRTIO_MMIO_SIZE,
			     virtio_mmio_read, virtio_mmio_write, t);
	if (ret < 0) {
		snprintf(err, errlen, "%s: cannot register MMIO window at "
			 "%#" PRIx64 ": %s", name, t->base, strerror(-ret));
		goto fail;
	}
	return t;
fail:
	/* A claimed window stays claimed (vm.h cannot give it back). */
	free_transport(t, true);
	return NULL;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	if (t)
		free_transport(t, false);
}
