/* tests/fuzz/fuzz_harness.c - see fuzz_harness.h. */
#include "tests/fuzz/fuzz_harness.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/virtio_dev.h"
#include "devices/virtio_mmio.h"
#include "vmm/event_loop.h"

/* The unit tests' fake vm, with room for the few devices a target makes;
 * devices log quietly (libFuzzer's own output is what matters) unless
 * FUZZ_VERBOSE is set. */
#define FAKE_MAX_DEV	4
#define FAKE_LOG_ENV	"FUZZ_VERBOSE"
#include "tests/unit/fake_vm.h"

void fz_fail(const char *file, int line, const char *cond, const char *fmt,
	     ...)
{
	va_list ap;

	fprintf(stderr, "fuzz invariant broken at %s:%d: %s: ", file, line,
		cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ---- input ---- */

bool fz_more(const struct fz_in *in)
{
	return in->n > 0;
}

size_t fz_bytes(struct fz_in *in, void *dst, size_t n)
{
	size_t k = n < in->n ? n : in->n;

	if (k)
		memcpy(dst, in->p, k);
	if (n > k)
		memset((uint8_t *)dst + k, 0, n - k);
	in->p += k;
	in->n -= k;
	return k;
}

uint64_t fz_uint(struct fz_in *in, unsigned n)
{
	uint64_t v = 0;

	/* the low n bytes, as x86 (little-endian) stores them */
	fz_bytes(in, &v, n < sizeof(v) ? n : sizeof(v));
	return v;
}

/* ---- guest RAM ---- */

void fz_ram_init(struct fz_ram *r, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t body = (size + page - 1) / page * page;

	memset(r, 0, sizeof(*r));
	r->map_len = body + 2 * page;
	r->map = mmap(NULL, r->map_len, PROT_NONE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->map == MAP_FAILED)
		abort();
	/* RAM ends exactly at the upper guard page: a one-byte overrun
	 * faults */
	r->mem.host = r->map + page + (body - size);
	if (mprotect(r->map + page, body, PROT_READ | PROT_WRITE) < 0)
		abort();
	r->mem.size = size;
	r->mem.low_size = size;
}

void fz_ram_free(struct fz_ram *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	r->map = NULL;
}

bool fz_in_ram(const struct fz_ram *r, const void *p, size_t len)
{
	const uint8_t *b = p;

	return b >= r->mem.host && len <= r->mem.size &&
	       (size_t)(b - r->mem.host) <= r->mem.size - len;
}

void fz_ram_poke(struct fz_ram *r, struct fz_in *in, uint64_t at,
		 unsigned n)
{
	if (at >= r->mem.size)
		return;
	if (n > r->mem.size - at)
		n = (unsigned)(r->mem.size - at);
	fz_bytes(in, r->mem.host + at, n);
}

void fz_ram_scribble(struct fz_ram *r, struct fz_in *in)
{
	uint32_t at = (uint32_t)(fz_u32(in) % r->mem.size);

	fz_ram_poke(r, in, at, fz_u8(in) % 16);
}

uint64_t fz_alloc(struct fz_ram *r, uint32_t *len)
{
	uint64_t room = r->mem.size - r->bump_start, a;

	if (*len > room)
		*len = (uint32_t)room;
	if (r->bump + *len > r->mem.size || r->bump < r->bump_start)
		r->bump = r->bump_start;
	a = r->bump;
	r->bump += *len;
	return a;
}

unsigned fz_put_header(struct fz_ram *r, const void *h, uint32_t len,
		       uint32_t split, struct fz_desc *d)
{
	uint64_t a = fz_alloc(r, &len);

	memcpy(r->mem.host + a, h, len);
	if (split && split < len) {
		d[0] = (struct fz_desc){ a, split, 0 };
		d[1] = (struct fz_desc){ a + split, len - split, 0 };
		return 2;
	}
	d[0] = (struct fz_desc){ a, len, 0 };
	return 1;
}

/* ---- rings ---- */

void fz_ring_init(struct fz_ring *q, struct fz_ram *ram, uint16_t size,
		  uint64_t desc, uint64_t avail, uint64_t used)
{
	memset(q, 0, sizeof(*q));
	q->ram = ram;
	q->size = size;
	q->desc = desc;
	q->avail = avail;
	q->used = used;
	memset(ram->mem.host + desc, 0, 16u * size);
	memset(ram->mem.host + avail, 0, 6u + 2u * size);
	memset(ram->mem.host + used, 0, 6u + 8u * size);
}

/* Descriptor i of the table at gpa (tables need not be aligned: bytes). */
static void fz_put_desc(struct fz_ring *q, uint64_t gpa, unsigned i,
			uint64_t addr, uint32_t len, uint16_t flags,
			uint16_t next)
{
	struct vring_desc d = { .addr = addr, .len = len, .flags = flags,
				.next = next };

	memcpy(q->ram->mem.host + gpa + 16u * i, &d, sizeof(d));
}

uint16_t fz_ring_add(struct fz_ring *q, const struct fz_desc *d, unsigned n,
		     bool indirect, uint64_t table_gpa)
{
	uint16_t head = q->next_desc % q->size, *avail;

	if (indirect) {
		for (unsigned i = 0; i < n; i++)
			fz_put_desc(q, table_gpa, i, d[i].addr, d[i].len,
				    d[i].flags |
				    (i + 1 < n ? VRING_DESC_F_NEXT : 0),
				    (uint16_t)(i + 1));
		fz_put_desc(q, q->desc, head, table_gpa, 16u * n,
			    VRING_DESC_F_INDIRECT, 0);
		q->next_desc++;
	} else {
		for (unsigned i = 0; i < n; i++) {
			uint16_t slot = q->next_desc++ % q->size;

			fz_put_desc(q, q->desc, slot, d[i].addr, d[i].len,
				    d[i].flags |
				    (i + 1 < n ? VRING_DESC_F_NEXT : 0),
				    q->next_desc % q->size);
		}
	}
	avail = (uint16_t *)(q->ram->mem.host + q->avail);
	avail[2 + q->avail_idx % q->size] = head;
	q->avail_idx++;
	return head;
}

uint16_t fz_ring_add_chain(struct fz_ring *q, const struct fz_desc *d,
			   unsigned n, bool indirect)
{
	uint32_t len = 16u * n;
	/* taken either way: where later buffers land does not depend on
	 * the indirect bit */
	uint64_t table = fz_alloc(q->ram, &len);

	return fz_ring_add(q, d, n, indirect, table);
}

void fz_ring_kick(struct fz_ring *q)
{
	uint16_t *avail = (uint16_t *)(q->ram->mem.host + q->avail);

	__atomic_store_n(&avail[1], q->avail_idx, __ATOMIC_RELEASE);
}

/* ---- the fake vm: the vm.h services the devices use (most come from
 * tests/unit/fake_vm.h, included above) ---- */

struct vm *fz_vm(void)
{
	/* interrupts through vm_irq_line: no irqfd to drain */
	fvm.no_irqfd = true;
	return &fvm;
}

void fz_vm_set_ram(struct fz_ram *r)
{
	fvm.mem = r->mem;
}

unsigned fz_log_lines(void)
{
	return (unsigned)__atomic_load_n(&log_count, __ATOMIC_SEQ_CST);
}

void vm_events_device_error(const char *device, const char *msg)
{
	(void)device;
	(void)msg;
}

int vm_cmdline_append(struct vm *vm, const char *fmt, ...)
{
	(void)vm;
	(void)fmt;
	return 0;
}

void fz_vm_destroy_devices(void)
{
	fake_destroy_all();
}

void fz_mmio_access(unsigned dev, bool write, uint64_t off, void *data,
		    unsigned size)
{
	struct vm *vm = &fvm;

	if (dev >= vm->ndev || !vm->dev[dev].rd)
		abort();
	if (write)
		vm->dev[dev].wr(vm->dev[dev].opaque, off, data, size);
	else
		vm->dev[dev].rd(vm->dev[dev].opaque, off, data, size);
}

void fz_mmio_write32(unsigned dev, uint64_t off, uint32_t v)
{
	fz_mmio_access(dev, true, off, &v, 4);
}

uint32_t fz_mmio_read32(unsigned dev, uint64_t off)
{
	uint32_t v;

	fz_mmio_access(dev, false, off, &v, 4);
	return v;
}

void fz_notify(unsigned dev, unsigned q)
{
	struct vm *vm = &fvm;
	uint64_t one = 1;

	if (dev < vm->ndev && q < VIRTIO_MMIO_MAX_QUEUES &&
	    vm->dev[dev].notify_fd[q] >= 0 &&
	    write(vm->dev[dev].notify_fd[q], &one, sizeof(one)) < 0)
		abort();
}

/* ---- event loops, run by fz_pump() on this thread ---- */

#define FZ_MAX_WATCH	64

struct event_loop {
	int unused;
};

static struct fz_watch {
	struct event_loop *loop;
	int fd;
	event_fn fn;
	void *opaque;
} fz_watch[FZ_MAX_WATCH];
static unsigned fz_nwatch;

struct event_loop *event_loop_create(const char *name)
{
	(void)name;
	return calloc(1, sizeof(struct event_loop));
}

int event_loop_add(struct event_loop *l, int fd, event_fn fn, void *opaque)
{
	if (fz_nwatch == FZ_MAX_WATCH)
		return -1;
	fz_watch[fz_nwatch++] = (struct fz_watch){ l, fd, fn, opaque };
	return 0;
}

int event_loop_del(struct event_loop *l, int fd)
{
	for (unsigned i = 0; i < fz_nwatch; i++)
		if (fz_watch[i].loop == l && fz_watch[i].fd == fd) {
			fz_watch[i] = fz_watch[--fz_nwatch];
			return 0;
		}
	return -1;
}

int event_loop_start(struct event_loop *l)
{
	(void)l;
	return 0;
}

void event_loop_destroy(struct event_loop *l)
{
	if (!l)
		return;
	for (unsigned i = 0; i < fz_nwatch;)
		if (fz_watch[i].loop == l)
			fz_watch[i] = fz_watch[--fz_nwatch];
		else
			i++;
	free(l);
}

unsigned fz_pump(unsigned rounds)
{
	unsigned ran = 0;

	while (rounds--) {
		struct pollfd pfd[FZ_MAX_WATCH];
		unsigned n = fz_nwatch, hits = 0;

		for (unsigned i = 0; i < n; i++)
			pfd[i] = (struct pollfd){ .fd = fz_watch[i].fd,
						  .events = POLLIN };
		if (poll(pfd, n, 0) <= 0)
			break;
		for (unsigned i = 0; i < n && i < fz_nwatch; i++)
			if (pfd[i].revents && fz_watch[i].fd == pfd[i].fd) {
				fz_watch[i].fn(fz_watch[i].opaque);
				hits++;
			}
		ran += hits;
		if (!hits)
			break;
	}
	return ran;
}

/* ---- the driver ---- */

uint64_t fz_drv_begin(unsigned dev, uint64_t want)
{
	uint64_t offered, acc;

	fz_mmio_write32(dev, VIRTIO_MMIO_STATUS, 0);
	fz_track_reset();
	fz_mmio_write32(dev, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	fz_mmio_write32(dev, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE |
			VIRTIO_CONFIG_S_DRIVER);
	fz_mmio_write32(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	offered = fz_mmio_read32(dev, VIRTIO_MMIO_DEVICE_FEATURES);
	fz_mmio_write32(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)fz_mmio_read32(dev, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	acc = (offered & want) | (1ULL << VIRTIO_F_VERSION_1);
	fz_mmio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	fz_mmio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)acc);
	fz_mmio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fz_mmio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(acc >> 32));
	fz_mmio_write32(dev, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE |
			VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
	return acc;
}

uint64_t fz_features(uint32_t word, const unsigned *bits, unsigned n)
{
	uint64_t want = 0;

	for (unsigned i = 0; i < n && i < 32; i++)
		if (word & (1u << i))
			want |= 1ULL << bits[i];
	return want;
}

void fz_drv_queue(unsigned dev, unsigned q, const struct fz_ring *r)
{
	fz_mmio_write32(dev, VIRTIO_MMIO_QUEUE_SEL, q);
	fz_mmio_write32(dev, VIRTIO_MMIO_QUEUE_NUM, r->size);
	fz_mmio_write32(dev, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)r->desc);
	fz_mmio_write32(dev, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(r->desc >> 32));
	fz_mmio_write32(dev, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)r->avail);
	fz_mmio_write32(dev, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(r->avail >> 32));
	fz_mmio_write32(dev, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)r->used);
	fz_mmio_write32(dev, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(r->used >> 32));
	fz_mmio_write32(dev, VIRTIO_MMIO_QUEUE_READY, 1);
}

uint32_t fz_drv_ok(unsigned dev)
{
	fz_mmio_write32(dev, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE |
			VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
			VIRTIO_CONFIG_S_DRIVER_OK);
	return fz_mmio_read32(dev, VIRTIO_MMIO_STATUS);
}

void fz_drv_start(unsigned dev, struct fz_ring *q, unsigned n,
		  unsigned ready, struct fz_ram *ram, uint16_t size,
		  uint32_t stride)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t at = (uint64_t)stride * i;

		fz_ring_init(&q[i], ram, size, at, at + 0x1000, at + 0x2000);
		if (i < ready)
			fz_drv_queue(dev, i, &q[i]);
	}
	fz_drv_ok(dev);
	fz_pump(8);
}

/* Publish q[qi]'s avail index and notify queue qi. */
static void fz_drv_publish(unsigned dev, struct fz_ring *q, unsigned qi)
{
	fz_ring_kick(&q[qi]);
	fz_notify(dev, qi);
}

void fz_drv_kick(unsigned dev, struct fz_ring *q, unsigned qi)
{
	fz_drv_publish(dev, q, qi);
	fz_pump(16);
}

void fz_drv_kick_all(unsigned dev, struct fz_ring *q, unsigned n)
{
	/* every notify first, then the device works: one pass sees them all */
	for (unsigned i = 0; i < n; i++)
		fz_drv_publish(dev, q, i);
	fz_pump(16);
}

void fz_drv_config_read(unsigned dev, struct fz_in *in, unsigned span)
{
	uint64_t v;
	uint8_t w = fz_u8(in);

	fz_mmio_access(dev, false, VIRTIO_MMIO_CONFIG + (w >> 2) % span, &v,
		       1u << (w & 3));
}

void fz_drv_reset(unsigned dev)
{
	/* a reset waits for every popped chain to end: one the device
	 * forgot would hang here, and libFuzzer reports the timeout */
	fz_mmio_write32(dev, VIRTIO_MMIO_STATUS, 0);
	FZ_CHECK(fz_mmio_read32(dev, VIRTIO_MMIO_STATUS) == 0,
		 "status after reset");
	fz_track_reset();
}

/* ---- chain accounting: ld --wrap=virtq_pop,--wrap=virtq_push,
 * --wrap=virtq_init,--wrap=virtio_dev_create ---- */

#define FZ_MAX_Q	32

static struct fz_track {
	const struct virtq *q;
	uint64_t in_len[VIRTQ_MAX_SIZE / 64];	/* by head, while in flight */
	uint16_t heads[VIRTQ_MAX_SIZE / 64];
	struct iovec first_in[VIRTQ_MAX_SIZE / 64];
} *fz_track;
void (*fz_push_hook)(const struct virtq *q, uint16_t head, uint32_t len,
		     const struct iovec *first_in);
static unsigned fz_ntrack, fz_flying;
/* virtq_enable_notify() said "more arrived" this often with no pop or
 * push since: a device that sleeps never sees that many in a row (the
 * fake driver adds nothing while the device works) */
static unsigned fz_idle_more;
#define FZ_SPIN_MAX	64
/* heads tracked per queue: the devices' queues are at most 256 */
#define FZ_TRACK_HEADS	(VIRTQ_MAX_SIZE / 64)

int __real_virtq_pop(struct virtq *q, struct virtq_elem *e, struct iovec *iov,
		     unsigned max_iov);
void __real_virtq_push(struct virtq *q, uint16_t head, uint32_t len);
int __real_virtq_init(struct virtq *q, const struct guest_mem *mem,
		      const char *name, uint16_t size, uint64_t desc_gpa,
		      uint64_t avail_gpa, uint64_t used_gpa, uint64_t features,
		      char *err, size_t errlen);
struct virtio_dev *__real_virtio_dev_create(struct vm *vm, const char *name,
					    const struct virtio_dev_class *cls,
					    void *dev, uint64_t features,
					    char *err, size_t errlen);

/* each wrapper has its real function's signature */
__typeof__(__real_virtq_pop) __wrap_virtq_pop;
__typeof__(__real_virtq_push) __wrap_virtq_push;
__typeof__(__real_virtq_init) __wrap_virtq_init;
__typeof__(__real_virtio_dev_create) __wrap_virtio_dev_create;

static struct fz_track *fz_track_of(const struct virtq *q, bool add)
{
	if (!fz_track) {
		fz_track = calloc(FZ_MAX_Q, sizeof(*fz_track));
		if (!fz_track)
			abort();
	}
	for (unsigned i = 0; i < fz_ntrack; i++)
		if (fz_track[i].q == q)
			return &fz_track[i];
	if (!add)
		return NULL;
	FZ_CHECK(fz_ntrack < FZ_MAX_Q, "too many queues");
	memset(&fz_track[fz_ntrack], 0, sizeof(fz_track[0]));
	fz_track[fz_ntrack].q = q;
	return &fz_track[fz_ntrack++];
}

void fz_track_reset(void)
{
	if (fz_track)
		memset(fz_track, 0, fz_ntrack * sizeof(*fz_track));
	fz_ntrack = 0;
	fz_flying = 0;
	fz_idle_more = 0;
}

unsigned fz_in_flight(void)
{
	return fz_flying;
}

int __wrap_virtq_init(struct virtq *q, const struct guest_mem *mem,
		      const char *name, uint16_t size, uint64_t desc_gpa,
		      uint64_t avail_gpa, uint64_t used_gpa, uint64_t features,
		      char *err, size_t errlen)
{
	struct fz_track *t = fz_track_of(q, false);

	/* a queue set up again starts with nothing in flight */
	if (t) {
		for (unsigned h = 0; h < FZ_TRACK_HEADS; h++)
			if (t->heads[h])
				fz_flying--;
		memset(t->in_len, 0, sizeof(t->in_len));
		memset(t->heads, 0, sizeof(t->heads));
	}
	return __real_virtq_init(q, mem, name, size, desc_gpa, avail_gpa,
				 used_gpa, features, err, errlen);
}

int __wrap_virtq_pop(struct virtq *q, struct virtq_elem *e, struct iovec *iov,
		     unsigned max_iov)
{
	int ret = __real_virtq_pop(q, e, iov, max_iov);
	const struct guest_mem *m = q->mem;
	uint64_t out = 0, in = 0;
	struct fz_track *t;

	if (ret <= 0)
		return ret;
	FZ_CHECK(e->head < q->size, "head %u, size %u", e->head, q->size);
	FZ_CHECK(e->n_out + e->n_in <= max_iov, "%u+%u iovecs, room %u",
		 e->n_out, e->n_in, max_iov);
	for (unsigned i = 0; i < e->n_out + e->n_in; i++) {
		const uint8_t *b = iov[i].iov_base;

		FZ_CHECK(iov[i].iov_len > 0, "empty iovec %u", i);
		FZ_CHECK(b >= m->host && iov[i].iov_len <= m->size &&
			 (uint64_t)(b - m->host) <= m->size - iov[i].iov_len,
			 "iovec %u outside guest RAM", i);
		if (i < e->n_out)
			out += iov[i].iov_len;
		else
			in += iov[i].iov_len;
	}
	FZ_CHECK(out == e->out_len && in == e->in_len,
		 "lengths %llu/%llu, iovecs %llu/%llu",
		 (unsigned long long)e->out_len, (unsigned long long)e->in_len,
		 (unsigned long long)out, (unsigned long long)in);
	t = fz_track_of(q, true);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "pop %s size %u: head %u, %u+%u buffers, "
			"%llu+%llu bytes\n", q->name, q->size, e->head,
			e->n_out, e->n_in, (unsigned long long)e->out_len,
			(unsigned long long)e->in_len);
	fz_idle_more = 0;
	if (e->head < FZ_TRACK_HEADS) {
		/* with in-flight tracking (as the transport sets it up) the
		 * walker must refuse a head it handed out already; without,
		 * the later chain's length counts */
		FZ_CHECK(!q->in_flight || !t->heads[e->head],
			 "head %u popped twice", e->head);
		if (!t->heads[e->head])
			fz_flying++;
		t->heads[e->head] = 1;
		t->in_len[e->head] = in;
		t->first_in[e->head] = e->n_in ? iov[e->n_out] :
				       (struct iovec){ NULL, 0 };
	}
	return ret;
}

void __wrap_virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	struct fz_track *t = fz_track_of(q, false);

	FZ_CHECK(head < q->size, "push of head %u, size %u", head, q->size);
	if (head < FZ_TRACK_HEADS && (q->in_flight || (t && t->heads[head]))) {
		FZ_CHECK(t && t->heads[head], "push of head %u not in flight",
			 head);
		FZ_CHECK(len <= t->in_len[head],
			 "used length %u > %llu writable bytes (head %u)", len,
			 (unsigned long long)t->in_len[head], head);
		t->heads[head] = 0;
		fz_flying--;
		if (fz_push_hook)
			fz_push_hook(q, head, len, t->first_in[head].iov_base ?
				     &t->first_in[head] : NULL);
	}
	fz_idle_more = 0;
	__real_virtq_push(q, head, len);
}

bool __real_virtq_enable_notify(struct virtq *q);
bool __wrap_virtq_enable_notify(struct virtq *q);

bool __wrap_virtq_enable_notify(struct virtq *q)
{
	bool more = __real_virtq_enable_notify(q);

	if (more)
		FZ_CHECK(++fz_idle_more < FZ_SPIN_MAX, "the device thread "
			 "spins: %u rounds told of new entries without a pop "
			 "or push (queue %s size %u, avail idx %u, last_avail "
			 "%u)", fz_idle_more, q->name, q->size,
			 q->avail[1], q->last_avail);
	return more;
}

void virtq_unpop(struct virtq *q);
void __real_virtq_unpop(struct virtq *q);
void __wrap_virtq_unpop(struct virtq *q);

void __wrap_virtq_unpop(struct virtq *q)
{
	struct fz_track *t = fz_track_of(q, false);

	if (t && q->last_head < FZ_TRACK_HEADS && t->heads[q->last_head]) {
		t->heads[q->last_head] = 0;
		fz_flying--;
	}
	__real_virtq_unpop(q);
}

struct virtio_dev *__wrap_virtio_dev_create(struct vm *vm, const char *name,
					    const struct virtio_dev_class *cls,
					    void *dev, uint64_t features,
					    char *err, size_t errlen)
{
	struct virtio_dev *vd = __real_virtio_dev_create(vm, name, cls, dev,
							 features, err,
							 errlen);

	/* no busy polling on the fuzzing thread (a device may set its own
	 * window after this: the targets set VMM_*_POLL_US=0 too) */
	if (vd)
		virtio_dev_set_poll_ns(vd, 0);
	return vd;
}
