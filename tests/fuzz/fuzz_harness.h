/* tests/fuzz/fuzz_harness.h - what the libFuzzer targets share: an input
 * reader, guest RAM between guard pages, a split-ring builder, a fake
 * struct vm whose event loops run on the fuzzing thread, a small virtio-mmio
 * driver, and checks on every chain a device pops and pushes.
 *
 * No /dev/kvm, no threads: devices are created with their usual create
 * functions on the fake vm; their device thread's work runs when a target
 * calls fz_pump() (the fake event_loop_* below replace vmm/event_loop.c at
 * link time), so every run is deterministic.
 *
 * Invariants checked for every device target (abort() on violation, which
 * libFuzzer reports as a crash with the input):
 *  - every access stays inside guest RAM: RAM sits between PROT_NONE guard
 *    pages (a stray access faults; ASan reports it) and every iovec a pop
 *    returns is checked to lie inside it;
 *  - a pushed used entry names a head that was popped and not yet pushed,
 *    with a used length no larger than the chain's device-writable bytes
 *    (virtq_pop/virtq_push are wrapped with ld --wrap);
 *  - after a device reset nothing is left in flight;
 *  - no leaks (LeakSanitizer, through libFuzzer's -detect_leaks).
 */
#ifndef TESTS_FUZZ_FUZZ_HARNESS_H
#define TESTS_FUZZ_FUZZ_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/virtqueue.h"
#include "vmm/vm.h"

/* Abort with a line naming the broken invariant. */
#define FZ_CHECK(cond, ...) do { \
	if (!(cond)) \
		fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
} while (0)
void fz_fail(const char *file, int line, const char *cond, const char *fmt,
	     ...) __attribute__((noreturn, format(printf, 4, 5)));

/* ---- the input, consumed front to back (zeroes once it runs out) ---- */
struct fz_in {
	const uint8_t *p;
	size_t n;
};
bool fz_more(const struct fz_in *in);
/* An unsigned integer from the next n (at most 8) bytes. */
uint64_t fz_uint(struct fz_in *in, unsigned n);
static inline uint8_t fz_u8(struct fz_in *in) { return (uint8_t)fz_uint(in, 1); }
static inline uint16_t fz_u16(struct fz_in *in) { return (uint16_t)fz_uint(in, 2); }
static inline uint32_t fz_u32(struct fz_in *in) { return (uint32_t)fz_uint(in, 4); }
static inline uint64_t fz_u64(struct fz_in *in) { return fz_uint(in, 8); }
/* Copy up to n bytes into dst, zero the rest; returns bytes taken. */
size_t fz_bytes(struct fz_in *in, void *dst, size_t n);

/* ---- guest RAM: [0, size) at mem.host, a PROT_NONE page on each side ---- */
struct fz_ram {
	struct guest_mem mem;
	uint8_t *map;
	size_t map_len;
	uint64_t bump, bump_start;	/* fz_alloc's next address, its floor */
};
void fz_ram_init(struct fz_ram *r, size_t size);
void fz_ram_free(struct fz_ram *r);
/* A guest address for len bytes from the data area (wraps around to
 * bump_start when full; len is cut to fit). */
uint64_t fz_alloc(struct fz_ram *r, uint32_t *len);
/* True if [p, p + len) lies inside RAM. */
bool fz_in_ram(const struct fz_ram *r, const void *p, size_t len);
/* The driver writes the next n input bytes at guest address at (cut at
 * the end of RAM). */
void fz_ram_poke(struct fz_ram *r, struct fz_in *in, uint64_t at,
		 unsigned n);
/* The driver scribbles up to 15 input bytes anywhere in RAM (rings too). */
void fz_ram_scribble(struct fz_ram *r, struct fz_in *in);

/* ---- a split ring in guest RAM, as a driver fills it ---- */
struct fz_ring {
	struct fz_ram *ram;
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx;	/* next avail entry */
	uint16_t next_desc;	/* next descriptor slot (round robin) */
};
/* Rings at desc/avail/used (sizes per the spec), zeroed. */
void fz_ring_init(struct fz_ring *q, struct fz_ram *ram, uint16_t size,
		  uint64_t desc, uint64_t avail, uint64_t used);
struct fz_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
};
/* A device-readable header of len bytes copied from h to the data area
 * (fz_alloc), as one descriptor in d, or two split at `split` bytes when
 * that falls inside it (0: no split).  Returns descriptors written. */
unsigned fz_put_header(struct fz_ram *r, const void *h, uint32_t len,
		       uint32_t split, struct fz_desc *d);
/* Write n descriptors chained with NEXT (flags given add to that) into
 * the next slots and make the chain available; returns its head.  With
 * indirect, the descriptors go into a table at table_gpa instead and one
 * INDIRECT descriptor points at it. */
uint16_t fz_ring_add(struct fz_ring *q, const struct fz_desc *d, unsigned n,
		     bool indirect, uint64_t table_gpa);
/* fz_ring_add with the table (16 bytes a descriptor) from fz_alloc. */
uint16_t fz_ring_add_chain(struct fz_ring *q, const struct fz_desc *d,
			   unsigned n, bool indirect);
/* Publish avail_idx (the driver's index store). */
void fz_ring_kick(struct fz_ring *q);

/* ---- the fake vm ---- */
struct vm;
struct vm *fz_vm(void);
void fz_vm_set_ram(struct fz_ram *r);
/* The n-th device's register handlers (in creation order). */
void fz_mmio_write32(unsigned dev, uint64_t off, uint32_t v);
uint32_t fz_mmio_read32(unsigned dev, uint64_t off);
void fz_mmio_access(unsigned dev, bool write, uint64_t off, void *data,
		    unsigned size);
/* What KVM does on a QueueNotify write caught by an ioeventfd. */
void fz_notify(unsigned dev, unsigned q);
/* Run what the device threads would: every ready fd's handler, until none
 * is ready or rounds run out.  Returns handlers run. */
unsigned fz_pump(unsigned rounds);
/* Tear down every device the fake vm holds (vm_add_device order reversed). */
void fz_vm_destroy_devices(void);
/* Log lines the devices wrote (vm_log), this process so far. */
unsigned fz_log_lines(void);

/* ---- a virtio-mmio driver ---- */
/* The features a driver asks for: bits[i] where bit i of word is set
 * (i < n, 32). */
uint64_t fz_features(uint32_t word, const unsigned *bits, unsigned n);
#define FZ_NELEM(a)	(sizeof(a) / sizeof((a)[0]))
/* Reset, ACKNOWLEDGE|DRIVER, accept want & offered features (VERSION_1
 * always), FEATURES_OK.  Returns the accepted features. */
uint64_t fz_drv_begin(unsigned dev, uint64_t want);
/* Queue q at its rings, ready. */
void fz_drv_queue(unsigned dev, unsigned q, const struct fz_ring *r);
/* DRIVER_OK; returns the status read back. */
uint32_t fz_drv_ok(unsigned dev);
/* Rings for queues 0..n-1, queue i at stride * i (descriptors, avail
 * and used 4 KiB apart), zeroed; the first `ready` handed to the device
 * (a driver may leave the rest unused); DRIVER_OK; the device's first
 * work (fz_pump). */
void fz_drv_start(unsigned dev, struct fz_ring *q, unsigned n,
		  unsigned ready, struct fz_ram *ram, uint16_t size,
		  uint32_t stride);
/* Publish q[qi]'s avail index, notify queue qi; the device works. */
void fz_drv_kick(unsigned dev, struct fz_ring *q, unsigned qi);
/* The same for queues 0..n-1 together (the end of an input). */
void fz_drv_kick_all(unsigned dev, struct fz_ring *q, unsigned n);
/* A config-space read of 1, 2, 4 or 8 bytes at an offset below span,
 * both from one input byte. */
void fz_drv_config_read(unsigned dev, struct fz_in *in, unsigned span);
/* Status 0 (reset), then check nothing stayed in flight. */
void fz_drv_reset(unsigned dev);

/* ---- chain accounting (the --wrap'ed virtq_pop / virtq_push) ---- */
/* Chains popped and not yet pushed, over all queues. */
unsigned fz_in_flight(void);
/* Forget every queue (a new input). */
void fz_track_reset(void);
/* Called for every used entry a device pushes, before it goes into the
 * ring, with the chain's first device-writable buffer as popped (NULL if
 * none): a target checks what the device wrote there.  NULL: no hook. */
extern void (*fz_push_hook)(const struct virtq *q, uint16_t head,
			    uint32_t len, const struct iovec *first_in);

#endif
