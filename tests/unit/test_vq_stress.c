/* tests/unit/test_vq_stress.c - the used-ring publish and notification
 * suppression of devices/virtqueue.c under two real threads: a driver
 * thread (written here the way a guest driver does it) and a device thread
 * (virtq_pop/push/publish/should_interrupt, enable/disable_notify), each
 * sleeping on an eventfd when it has nothing to do, as vmm's device thread
 * and a halted vCPU do.
 *
 * A missing barrier shows up as a lost wakeup: both sides asleep with work
 * pending.  Either side that sleeps for WAKE_MS with work waiting for the
 * other reports which wakeup was lost (a notify: entries available, the
 * device asleep; an interrupt: used entries published, the driver asleep)
 * and the test fails.  With EVENT_IDX and with the flag-based suppression.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtqueue.h"
#include "tests/unit/check_main.h"

void vm_log(const char *who, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", who);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define QSZ	64
#define DESC	0x1000ULL
#define AVAIL	0x2000ULL
#define USED	0x3000ULL
#define BUF	0x10000ULL
#define RAM	0x20000ULL
#define WAKE_MS	5000		/* asleep this long with work pending: lost */
#define RUN_NS	2000000000ULL	/* per case, or... */
#define MAX_REQS 400000		/* ...this many requests, whichever first */

static uint8_t *ram;
static struct guest_mem mem;
static struct virtq q;
static int stop;		/* atomic: both threads end (stopped()) */

static bool stopped(void)
{
	return __atomic_load_n(&stop, __ATOMIC_ACQUIRE);
}
static char failure[200];	/* the first lost wakeup, "" if none */
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static uint16_t *avail_ring(void) { return (uint16_t *)(ram + AVAIL); }
static uint16_t *used_hdr(void) { return (uint16_t *)(ram + USED); }
static struct vring_used_elem *used_ring(void)
{
	return (struct vring_used_elem *)(ram + USED + 4);
}
static uint16_t *used_event(void) { return avail_ring() + 2 + QSZ; }
static uint16_t *avail_event(void)
{
	return (uint16_t *)(ram + USED + 4 + 8 * QSZ);
}

/* seq_cst: a store then a load of another field keep their order (what
 * the driver's full barrier does; ThreadSanitizer models this, not fences) */
static uint16_t ld(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void st(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static void report(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_lock);
	if (!failure[0]) {
		va_start(ap, fmt);
		vsnprintf(failure, sizeof(failure), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&fail_lock);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A wakeup channel: a counter and an eventfd.  The sleeper takes a ticket
 * (the count) before it checks for work, and sleeps until the count moves:
 * in eventfd mode blocked in poll() at once (as vmm's device thread and a
 * halted vCPU do), in spin mode spinning a while first, so that while both
 * threads run the racing windows come around without a system call. */
struct waker {
	int fd;
	unsigned long count;
};
static struct waker notify_w, irq_w;
static bool spin_mode;

static unsigned long ticket(struct waker *w)
{
	return __atomic_load_n(&w->count, __ATOMIC_SEQ_CST);
}

/* Sleep until the count moves past t (1), or WAKE_MS pass (0). */
static int sleep_on(struct waker *w, unsigned long t)
{
	uint64_t deadline = now_ns() + WAKE_MS * 1000000ULL, v;

	if (spin_mode)
		for (int i = 0; i < 5000; i++) {
			if (__atomic_load_n(&w->count, __ATOMIC_ACQUIRE) != t)
				return 1;
			__builtin_ia32_pause();
		}
	while (__atomic_load_n(&w->count, __ATOMIC_ACQUIRE) == t) {
		struct pollfd p = { .fd = w->fd, .events = POLLIN };
		uint64_t now = now_ns();

		if (now >= deadline)
			return 0;
		if (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) > 0 &&
		    read(w->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return 0;
	}
	return 1;
}

static void wake(struct waker *w)
{
	uint64_t one = 1;

	__atomic_fetch_add(&w->count, 1, __ATOMIC_SEQ_CST);
	if (write(w->fd, &one, sizeof(one)) < 0)
		report("eventfd write: %s", strerror(errno));
}

struct stats {
	unsigned long reqs, notifies, irqs, device_sleeps, driver_sleeps;
};
static struct stats st_dev, st_drv;

/* ---- the device: what vmm's device thread does around the ring ---- */
static void *device_thread(void *arg)
{
	struct iovec iov[4];
	struct virtq_elem e;
	unsigned seed = 12345;

	(void)arg;
	while (!stopped()) {
		unsigned long t = ticket(&notify_w);
		int ret = 0;

		virtq_disable_notify(&q);
		/* pop in small batches, publish after each, interrupt at most
		 * once per batch */
		for (;;) {
			unsigned batch = 1 + rand_r(&seed) % 8, n = 0;

			while (n < batch &&
			       (ret = virtq_pop(&q, &e, iov, 4)) == 1) {
				virtq_push(&q, e.head, 16);
				n++;
			}
			if (ret < 0) {
				report("virtq_pop failed (ring broken)");
				return NULL;
			}
			if (!n)
				break;
			st_dev.reqs += n;
			virtq_publish(&q);
			if (virtq_should_interrupt(&q)) {
				st_dev.irqs++;
				wake(&irq_w);
			}
		}
		if (virtq_enable_notify(&q))
			continue;	/* entries came meanwhile: no notify */
		st_dev.device_sleeps++;
		if (!sleep_on(&notify_w, t) && !stopped() &&
		    ld(&avail_ring()[1]) != q.last_avail)
			report("lost notify: %u entries available, the device "
			       "asleep %d ms", (uint16_t)(ld(&avail_ring()[1]) -
							  q.last_avail),
			       WAKE_MS);
	}
	return NULL;
}

/* ---- the driver: what a guest driver does (Linux's virtio_ring) ---- */
struct driver {
	bool event_idx;
	uint16_t avail_idx, last_used;
	uint16_t free_heads[QSZ];
	unsigned nfree;
	unsigned seed;
};

static void driver_submit(struct driver *d, unsigned k)
{
	uint16_t old = d->avail_idx;
	bool need;

	for (unsigned i = 0; i < k; i++) {
		uint16_t h = d->free_heads[--d->nfree];
		struct vring_desc *desc = (struct vring_desc *)(ram + DESC) + h;

		desc->addr = BUF + h * 64ULL;
		desc->len = 16;
		desc->flags = VRING_DESC_F_WRITE;
		desc->next = 0;
		avail_ring()[2 + d->avail_idx % QSZ] = h;
		d->avail_idx++;
	}
	st(&avail_ring()[1], d->avail_idx);
	/* the index store before the load of the device's wish (seq_cst) */
	if (d->event_idx)
		need = vring_need_event(ld(avail_event()), d->avail_idx, old);
	else
		need = !(ld(&used_hdr()[0]) & VRING_USED_F_NO_NOTIFY);
	if (need) {
		st_drv.notifies++;
		wake(&notify_w);
	}
}

static unsigned driver_harvest(struct driver *d)
{
	uint16_t used = ld(&used_hdr()[1]);
	unsigned n = 0;

	while (d->last_used != used) {
		struct vring_used_elem *u = &used_ring()[d->last_used % QSZ];
		uint32_t id = __atomic_load_n(&u->id, __ATOMIC_RELAXED);

		if (id >= QSZ || d->nfree >= QSZ) {
			report("used entry with id %u (free %u)", id, d->nfree);
			return n;
		}
		d->free_heads[d->nfree++] = (uint16_t)id;
		d->last_used++;
		n++;
	}
	st_drv.reqs += n;
	return n;
}

static void interrupts(struct driver *d, bool on)
{
	if (d->event_idx)	/* far behind: no interrupt until re-armed */
		st(used_event(), on ? d->last_used
				    : (uint16_t)(d->last_used + 0x8000));
	else
		st(&avail_ring()[0], on ? 0 : VRING_AVAIL_F_NO_INTERRUPT);
}

static void run_case(uint64_t features, bool spin)
{
	struct driver d = { .event_idx = features &
				(1ULL << VIRTIO_F_EVENT_IDX), .seed = 777 };
	char err[128];
	pthread_t dev;
	unsigned long t;
	uint64_t t0;

	ram = aligned_alloc(4096, RAM);
	memset(ram, 0, RAM);
	mem = (struct guest_mem){ ram, RAM, RAM };
	ck_assert_int_eq(virtq_init(&q, &mem, "stress", QSZ, DESC, AVAIL, USED,
				    features, err, sizeof(err)), 0);
	spin_mode = spin;
	notify_w = (struct waker){ eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), 0 };
	irq_w = (struct waker){ eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), 0 };
	ck_assert(notify_w.fd >= 0 && irq_w.fd >= 0);
	for (unsigned i = 0; i < QSZ; i++)
		d.free_heads[d.nfree++] = (uint16_t)i;
	interrupts(&d, false);
	ck_assert_int_eq(pthread_create(&dev, NULL, device_thread, NULL), 0);

	t0 = now_ns();
	while (!stopped() && st_drv.reqs < MAX_REQS && now_ns() - t0 < RUN_NS) {
		/* a random number of new requests, then what completed */
		if (d.nfree) {
			unsigned k = 1 + rand_r(&d.seed) % d.nfree;

			driver_submit(&d, k);
		}
		if (driver_harvest(&d) || d.nfree == QSZ)
			continue;
		/* sometimes poll a little, as a driver with a spin phase */
		if (rand_r(&d.seed) % 4 == 0) {
			for (int i = 0; i < 200 && ld(&used_hdr()[1]) == d.last_used; i++)
				__builtin_ia32_pause();
			if (driver_harvest(&d))
				continue;
		}
		/* nothing: ask for an interrupt, check again, halt */
		t = ticket(&irq_w);
		interrupts(&d, true);	/* seq_cst store, then the load */
		if (ld(&used_hdr()[1]) == d.last_used) {
			st_drv.driver_sleeps++;
			if (!sleep_on(&irq_w, t) && !stopped()) {
				if (ld(&used_hdr()[1]) != d.last_used)
					report("lost interrupt: %u used entries "
					       "published, the driver asleep "
					       "%d ms", (uint16_t)(ld(&used_hdr()[1])
						- d.last_used), WAKE_MS);
				else
					report("both asleep: %u requests out, "
					       "nothing used, no interrupt",
					       QSZ - d.nfree);
			}
		}
		interrupts(&d, false);
	}
	/* everything out comes back */
	while (!stopped() && d.nfree < QSZ) {
		t = ticket(&irq_w);
		interrupts(&d, true);	/* seq_cst store, then the load */
		if (!driver_harvest(&d) && !sleep_on(&irq_w, t) &&
		    !driver_harvest(&d))
			report("%u requests never completed", QSZ - d.nfree);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	wake(&notify_w);
	pthread_join(dev, NULL);
	fprintf(stderr, "%s, %s: %lu requests, %lu notifies, %lu interrupts, "
		"device slept %lu times, driver %lu\n",
		d.event_idx ? "event_idx" : "flags", spin ? "spin" : "eventfd",
		st_drv.reqs,
		st_drv.notifies, st_dev.irqs, st_dev.device_sleeps,
		st_drv.driver_sleeps);
	ck_assert_msg(!failure[0], "%s", failure);
	ck_assert_uint_eq(st_drv.reqs, st_dev.reqs);
	ck_assert_uint_gt(st_drv.reqs, 1000);
	/* both sides really slept and were woken (the paths under test) */
	ck_assert_uint_gt(st_dev.device_sleeps, 10);
	ck_assert_uint_gt(st_drv.driver_sleeps, 10);
	close(notify_w.fd);
	close(irq_w.fd);
	free(ram);
}

/* ---- the race itself, round by round ----
 * Both threads meet at a start line, then at once: the driver makes one
 * entry available and decides whether to notify, while the device
 * re-enables notifies and checks for new entries (virtq_enable_notify); or
 * the device publishes one used entry and decides whether to interrupt
 * (virtq_publish + virtq_should_interrupt), while the driver re-arms its
 * interrupt and checks for new used entries.  In every round at least one
 * side must see the other: a round where neither does is a lost wakeup.
 * Only rounds where both threads really run at the same time can show it,
 * so they are many and short. */
#define RACE_ROUNDS	1000000
#define RACE_NS		3000000000ULL

/* round r: the driver starts it (go), both race, the device says it is
 * done, the driver tidies up for the next round (clean), the device too
 * (cleaned) */
static unsigned long race_go, race_done, race_clean, race_cleaned;
static bool race_notify;		/* else: the interrupt race */
static bool race_dev_saw;

static bool meet(unsigned long *line, unsigned long want)
{
	uint64_t deadline = now_ns() + WAKE_MS * 1000000ULL;
	unsigned n = 0;

	while (__atomic_load_n(line, __ATOMIC_ACQUIRE) < want) {
		__builtin_ia32_pause();
		if ((++n & 1023) == 0) {
			if (stopped() || now_ns() > deadline)
				return false;
			sched_yield();
		}
	}
	return true;
}

static void *race_device(void *arg)
{
	struct iovec iov[4];
	struct virtq_elem *e = arg;	/* the entry in flight */
	unsigned long r;

	for (r = 1; !stopped(); r++) {
		if (!meet(&race_go, r))
			break;
		if (race_notify) {
			race_dev_saw = virtq_enable_notify(&q);
		} else {
			virtq_push(&q, e->head, 16);
			virtq_publish(&q);
			race_dev_saw = virtq_should_interrupt(&q);
		}
		__atomic_store_n(&race_done, r, __ATOMIC_RELEASE);
		if (!meet(&race_clean, r))
			break;
		/* the driver's new entry: answer it (notify race) or keep
		 * it for the next round (interrupt race) */
		if (virtq_pop(&q, e, iov, 4) != 1) {
			report("round %lu: no entry to pop", r);
			break;
		}
		if (race_notify) {
			virtq_disable_notify(&q);
			virtq_push(&q, e->head, 16);
			virtq_publish(&q);
			virtq_should_interrupt(&q);
		}
		__atomic_store_n(&race_cleaned, r, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void run_race(uint64_t features, bool notify)
{
	struct driver d = { .event_idx = features &
				(1ULL << VIRTIO_F_EVENT_IDX) };
	unsigned long r, rounds = 0, lost = 0;
	struct virtq_elem e;
	struct iovec iov[4];
	char err[128];
	pthread_t dev;
	uint64_t t0;

	ram = aligned_alloc(4096, RAM);
	memset(ram, 0, RAM);
	mem = (struct guest_mem){ ram, RAM, RAM };
	ck_assert_int_eq(virtq_init(&q, &mem, "race", QSZ, DESC, AVAIL, USED,
				    features, err, sizeof(err)), 0);
	notify_w = (struct waker){ eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), 0 };
	irq_w = (struct waker){ eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), 0 };
	for (unsigned i = 0; i < QSZ; i++)
		d.free_heads[d.nfree++] = (uint16_t)i;
	race_notify = notify;
	race_go = race_done = race_clean = race_cleaned = 0;
	interrupts(&d, false);
	virtq_disable_notify(&q);
	if (!notify) {	/* the device holds one entry to answer in round 1 */
		driver_submit(&d, 1);
		ck_assert_int_eq(virtq_pop(&q, &e, iov, 4), 1);
	}
	ck_assert_int_eq(pthread_create(&dev, NULL, race_device, &e), 0);
	t0 = now_ns();
	for (r = 1; r <= RACE_ROUNDS && now_ns() - t0 < RACE_NS && !stopped();
	     r++) {
		uint16_t last_used = d.last_used;
		bool saw;

		__atomic_store_n(&race_go, r, __ATOMIC_RELEASE);
		if (notify) {
			uint64_t before = st_drv.notifies;

			driver_submit(&d, 1);	/* notifies if it must */
			saw = st_drv.notifies != before;
		} else {
			interrupts(&d, true);
			saw = ld(&used_hdr()[1]) != last_used;
		}
		if (!meet(&race_done, r))
			break;
		rounds++;
		if (!saw && !race_dev_saw)
			lost++;
		if (!notify) {	/* take the answer, offer the next entry */
			driver_harvest(&d);
			interrupts(&d, false);
			driver_submit(&d, 1);
		}
		__atomic_store_n(&race_clean, r, __ATOMIC_RELEASE);
		if (!meet(&race_cleaned, r))
			break;
		if (notify)
			driver_harvest(&d);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(dev, NULL);
	fprintf(stderr, "%s race, %s: %lu rounds, %lu lost wakeups\n",
		notify ? "notify" : "interrupt",
		d.event_idx ? "event_idx" : "flags", rounds, lost);
	ck_assert_msg(lost == 0, "%lu of %lu rounds lost a wakeup (%s)", lost,
		      rounds, notify ? "a notify: the device would sleep on "
		      "new entries" : "an interrupt: the driver would sleep on "
		      "used entries");
	ck_assert_msg(!failure[0], "%s", failure);
	ck_assert_uint_gt(rounds, 100);
	close(notify_w.fd);
	close(irq_w.fd);
	free(ram);
}

#define F_EVENT_IDX	((1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_VERSION_1))
#define F_FLAGS		(1ULL << VIRTIO_F_VERSION_1)

START_TEST(event_idx_eventfd)
{
	run_case(F_EVENT_IDX, false);
}
END_TEST

START_TEST(flags_eventfd)
{
	run_case(F_FLAGS, false);
}
END_TEST

START_TEST(event_idx_spin)
{
	run_case(F_EVENT_IDX, true);
}
END_TEST

START_TEST(flags_spin)
{
	run_case(F_FLAGS, true);
}
END_TEST

START_TEST(notify_race_event_idx)
{
	run_race(F_EVENT_IDX, true);
}
END_TEST

START_TEST(notify_race_flags)
{
	run_race(F_FLAGS, true);
}
END_TEST

START_TEST(interrupt_race_event_idx)
{
	run_race(F_EVENT_IDX, false);
}
END_TEST

START_TEST(interrupt_race_flags)
{
	run_race(F_FLAGS, false);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vq_stress");
	TCase *tc = tcase_create("two threads");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, event_idx_eventfd);
	tcase_add_test(tc, flags_eventfd);
	tcase_add_test(tc, event_idx_spin);
	tcase_add_test(tc, flags_spin);
	tcase_add_test(tc, notify_race_event_idx);
	tcase_add_test(tc, notify_race_flags);
	tcase_add_test(tc, interrupt_race_event_idx);
	tcase_add_test(tc, interrupt_race_flags);
	suite_add_tcase(s, tc);
	return check_run(s);
}
