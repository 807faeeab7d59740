/* devices/virtqueue.c - device side of the virtio split virtqueue (virtio
 * 1.2, 2.7): chain walking with INDIRECT_DESC, used ring batching, EVENT_IDX.
 *
 * The rings are shared with a guest that may be hostile or racing us:
 * every field is loaded once into a local before it is checked and used,
 * every address goes through guest_mem_ptr(), and any violation of the
 * driver requirements that we cannot answer with a per-request error marks
 * the queue broken (the transport then sets NEEDS_RESET).
 */
#include "devices/virtqueue.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Guest-shared 16-bit fields: single, untorn accesses the compiler cannot
 * repeat or merge. */
static inline uint16_t ld16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void st16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static void fatal(struct virtq *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fatal(struct virtq *q, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the first violation says it all: the queue is dead after it */
	if (!q->broken)
		guest_log(q->log_budget, q->name, "%s; device needs reset", msg);
	q->broken = true;
}

int virtq_init(struct virtq *q, const struct guest_mem *mem, const char *name,
	       uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa,
	       uint64_t used_gpa, uint64_t features, char *err, size_t errlen)
{
	uint64_t dlen = 16ULL * size, alen = 6 + 2ULL * size,
		 ulen = 6 + 8ULL * size;
	void *d, *a, *u;

	memset(q, 0, sizeof(*q));
	q->mem = mem;
	q->name = name;
	if (size == 0 || size > VIRTQ_MAX_SIZE) {
		snprintf(err, errlen, "queue size %u not in 1..%u", size,
			 VIRTQ_MAX_SIZE);
		return -1;
	}
	if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3)) {
		snprintf(err, errlen,
			 "misaligned ring (desc %#" PRIx64 ", driver %#" PRIx64
			 ", device %#" PRIx64 ")", desc_gpa, avail_gpa, used_gpa);
		return -1;
	}
	d = guest_mem_ptr(mem, desc_gpa, dlen);
	a = guest_mem_ptr(mem, avail_gpa, alen);
	u = guest_mem_ptr(mem, used_gpa, ulen);
	if (!d || !a || !u) {
		snprintf(err, errlen,
			 "%s ring at %#" PRIx64 " (size %u) is outside guest RAM",
			 !d ? "descriptor" : !a ? "driver" : "device",
			 !d ? desc_gpa : !a ? avail_gpa : used_gpa, size);
		return -1;
	}
	q->size = size;
	q->desc = d;
	q->avail = a;
	q->used_hdr = u;
	q->used_ring = (struct vring_used_elem *)(q->used_hdr + 2);
	q->avail_event = (uint16_t *)(q->used_ring + size);
	q->indirect = features & (1ULL << VIRTIO_F_INDIRECT_DESC);
	q->event_idx = features & (1ULL << VIRTIO_F_EVENT_IDX);
	/* both rings start at index 0 after (re)initialisation */
	q->used_idx = q->published_used = q->signalled_used = 0;
	q->last_avail = 0;
	return 0;
}

void virtq_track_in_flight(struct virtq *q, uint64_t *bits)
{
	q->in_flight = bits;
	if (bits)
		memset(bits, 0, VIRTQ_IN_FLIGHT_WORDS(q->size) * sizeof(*bits));
}

static bool head_in_flight(const struct virtq *q, uint16_t head)
{
	return q->in_flight && (q->in_flight[head / 64] >> (head % 64) & 1);
}

static void set_in_flight(struct virtq *q, uint16_t head, bool on)
{
	uint64_t bit = 1ULL << (head % 64);

	if (!q->in_flight)
		return;
	if (on)
		q->in_flight[head / 64] |= bit;
	else
		q->in_flight[head / 64] &= ~bit;
}

unsigned virtq_avail_count(struct virtq *q)
{
	uint16_t idx, n;

	if (q->broken)
		return 0;
	/* acquire: ring entries and descriptors are read after the index */
	idx = __atomic_load_n(&q->avail[1], __ATOMIC_ACQUIRE);
	q->seen_avail = idx;
	n = idx - q->last_avail;
	if (n > q->size) {
		fatal(q, "driver ring index jumped from %u to %u (queue size %u)",
		      q->last_avail, idx, q->size);
		return 0;
	}
	return n;
}

/* One descriptor, loaded once.  Indirect tables need not be aligned, so
 * copy bytes; the barrier keeps the compiler from re-reading guest memory
 * in place of the copy. */
static inline void load_desc(struct vring_desc *d, const struct vring_desc *src)
{
	memcpy(d, src, sizeof(*d));
	__asm__ volatile("" ::: "memory");
}

/* Phase 1: the next available head, checked (range, not in flight). */
static int next_head(struct virtq *q, uint16_t *head)
{
	uint16_t h;

	if (q->broken)
		return -1;
	if (virtq_avail_count(q) == 0)
		return q->broken ? -1 : 0;
	h = ld16(&q->avail[2 + q->last_avail % q->size]);
	if (h >= q->size) {
		fatal(q, "chain head %u out of range (queue size %u)", h,
		      q->size);
		return -1;
	}
	if (head_in_flight(q, h)) {
		fatal(q, "chain head %u made available again while in flight",
		      h);
		return -1;
	}
	*head = h;
	return 1;
}

/* Phase 2a: an INDIRECT descriptor d: check it and find its table. */
static const struct vring_desc *indirect_table(struct virtq *q,
					       const struct vring_desc *d,
					       bool in_indirect, uint16_t head,
					       unsigned *tsize)
{
	const struct vring_desc *table;

	if (!q->indirect) {
		fatal(q, "indirect descriptor at head %u but INDIRECT_DESC not "
		      "negotiated", head);
		return NULL;
	}
	if (in_indirect) {
		fatal(q, "nested indirect table at head %u", head);
		return NULL;
	}
	if (d->flags & VRING_DESC_F_NEXT) {
		fatal(q, "indirect descriptor with NEXT at head %u", head);
		return NULL;
	}
	if (d->len == 0 || d->len % sizeof(struct vring_desc) ||
	    d->len / sizeof(struct vring_desc) > q->size) {
		fatal(q, "indirect table of %u bytes at head %u (must be "
		      "16..%u, a multiple of 16)", d->len, head, 16U * q->size);
		return NULL;
	}
	table = guest_mem_ptr(q->mem, d->addr, d->len);
	if (!table) {
		fatal(q, "indirect table [%#" PRIx64 ", +%u) at head %u is "
		      "outside guest RAM", (uint64_t)d->addr, d->len, head);
		return NULL;
	}
	*tsize = d->len / sizeof(struct vring_desc);
	return table;
}

/* Phase 2b: a buffer descriptor d into e's iovecs (zero lengths are
 * dropped; readable ones must come before writable ones). */
static int add_buffer(struct virtq *q, struct virtq_elem *e,
		      unsigned max_iov, const struct vring_desc *d,
		      bool *seen_write)
{
	unsigned nbuf = e->n_out + e->n_in;
	void *p;

	if (d->flags & VRING_DESC_F_WRITE) {
		*seen_write = true;
	} else if (*seen_write) {
		fatal(q, "device-readable descriptor after a device-writable "
		      "one at head %u", e->head);
		return -1;
	}
	if (!d->len)
		return 0;	/* transfers nothing: no iovec */
	p = guest_mem_ptr(q->mem, d->addr, d->len);
	if (!p) {
		fatal(q, "buffer [%#" PRIx64 ", +%u) at head %u is outside "
		      "guest RAM", (uint64_t)d->addr, d->len, e->head);
		return -1;
	}
	if (nbuf >= max_iov || nbuf >= q->size) {
		fatal(q, "chain at head %u has more than %u buffers", e->head,
		      max_iov < q->size ? max_iov : q->size);
		return -1;
	}
	e->iov[nbuf].iov_base = p;
	e->iov[nbuf].iov_len = d->len;
	if (d->flags & VRING_DESC_F_WRITE) {
		e->n_in++;
		e->in_len += d->len;
	} else {
		e->n_out++;
		e->out_len += d->len;
	}
	return 0;
}

int virtq_pop(struct virtq *q, struct virtq_elem *e, struct iovec *iov,
	      unsigned max_iov)
{
	const struct vring_desc *table = q->desc;
	unsigned tsize = q->size, visited = 0;
	bool in_indirect = false, seen_write = false;
	struct vring_desc d;
	uint16_t head, i;
	int ret = next_head(q, &head);

	if (ret <= 0)
		return ret;
	e->head = head;
	e->n_out = e->n_in = 0;
	e->out_len = e->in_len = 0;
	e->iov = iov;
	/* Phase 2: walk the chain, through at most one indirect table */
	for (i = head;; i = d.next) {
		/* Each table can be walked at most once per entry: more
		 * steps than entries means the chain loops. */
		if (++visited > tsize) {
			fatal(q, "chain at head %u loops or is longer than its "
			      "table (%u entries)", head, tsize);
			return -1;
		}
		load_desc(&d, &table[i]);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			table = indirect_table(q, &d, in_indirect, head, &tsize);
			if (!table)
				return -1;
			in_indirect = true;
			visited = 0;
			d.next = 0;	/* the walk goes on at its entry 0 */
			continue;
		}
		if (add_buffer(q, e, max_iov, &d, &seen_write) < 0)
			return -1;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= tsize) {
			fatal(q, "next index %u out of range (%u entries) at "
			      "head %u", d.next, tsize, head);
			return -1;
		}
	}
	/* Phase 3: the chain is ours until pushed */
	q->last_avail++;
	q->last_head = head;
	set_in_flight(q, head, true);
	return 1;
}

void virtq_unpop(struct virtq *q)
{
	q->last_avail--;
	set_in_flight(q, q->last_head, false);
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	struct vring_used_elem *u = &q->used_ring[q->used_idx % q->size];

	__atomic_store_n(&u->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&u->len, len, __ATOMIC_RELAXED);
	q->used_idx++;
	if (head < q->size)
		set_in_flight(q, head, false);
}

void virtq_publish(struct virtq *q)
{
	if (q->published_used == q->used_idx)
		return;
	/* release: the entries are visible before the index that covers them;
	 * seq_cst, not a fence in virtq_should_interrupt(): it must also be
	 * ordered before that function's loads of the driver's suppression
	 * state (store then load), and ThreadSanitizer models this but not
	 * fences. */
	__atomic_store_n(&q->used_hdr[1], q->used_idx, __ATOMIC_SEQ_CST);
	q->published_used = q->used_idx;
}

bool virtq_should_interrupt(struct virtq *q)
{
	uint16_t old = q->signalled_used, new_idx = q->published_used;

	if (old == new_idx)
		return false;
	/* The index store (seq_cst in virtq_publish) must be visible before
	 * we read the driver's suppression state, or we race with a driver
	 * re-enabling interrupts after seeing the old index: seq_cst store
	 * then seq_cst load is the store-load order. */
	q->signalled_used = new_idx;
	if (!q->event_idx)
		return !(__atomic_load_n(&q->avail[0], __ATOMIC_SEQ_CST) &
			 VRING_AVAIL_F_NO_INTERRUPT);
	return vring_need_event(__atomic_load_n(&q->avail[2 + q->size],
						__ATOMIC_SEQ_CST), new_idx, old);
}

void virtq_disable_notify(struct virtq *q)
{
	/* With EVENT_IDX, leaving avail_event behind last_avail suppresses
	 * notifies by itself. */
	if (!q->event_idx)
		st16(&q->used_hdr[0], VRING_USED_F_NO_NOTIFY);
}

bool virtq_enable_notify(struct virtq *q)
{
	uint16_t idx;
	bool more;

	if (q->broken)
		return false;
	/* store (enable) then load (avail idx): a driver adding an entry
	 * concurrently either sees notifies enabled or we see its entry.
	 * seq_cst store and load give that order (a fence would too, but
	 * ThreadSanitizer does not model fences). */
	if (q->event_idx)
		__atomic_store_n(q->avail_event, q->last_avail, __ATOMIC_SEQ_CST);
	else
		__atomic_store_n(&q->used_hdr[0], 0, __ATOMIC_SEQ_CST);
	idx = __atomic_load_n(&q->avail[1], __ATOMIC_SEQ_CST);
	/* only entries new since our last look: ones the device saw and
	 * left are its choice (it comes back for them when it needs them) */
	more = idx != q->seen_avail;
	q->seen_avail = idx;
	return more;
}

size_t iov_pull(struct iovec **iovp, unsigned *cnt, void *buf, size_t n)
{
	struct iovec *iov = *iovp;
	uint8_t *out = buf;
	size_t done = 0;

	while (*cnt && done < n) {
		size_t k = iov->iov_len < n - done ? iov->iov_len : n - done;

		memcpy(out + done, iov->iov_base, k);
		done += k;
		iov->iov_base = (uint8_t *)iov->iov_base + k;
		iov->iov_len -= k;
		if (iov->iov_len == 0) {
			iov++;
			(*cnt)--;
		}
	}
	*iovp = iov;
	return done;
}

uint8_t *iov_take_last_byte(struct iovec *iov, unsigned *cnt)
{
	while (*cnt) {
		struct iovec *last = &iov[*cnt - 1];

		if (last->iov_len) {
			last->iov_len--;
			uint8_t *p = (uint8_t *)last->iov_base + last->iov_len;
			if (last->iov_len == 0)
				(*cnt)--;
			return p;
		}
		(*cnt)--;
	}
	return NULL;
}

size_t iov_fill(const struct iovec *iov, unsigned cnt, const void *buf,
		size_t n)
{
	const uint8_t *in = buf;
	size_t done = 0;

	for (unsigned i = 0; i < cnt && done < n; i++) {
		size_t k = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;

		memcpy(iov[i].iov_base, in + done, k);
		done += k;
	}
	return done;
}

uint64_t iov_total(const struct iovec *iov, unsigned cnt)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < cnt; i++)
		t += iov[i].iov_len;
	return t;
}
