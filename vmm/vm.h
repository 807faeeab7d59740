/* vmm/vm.h - the services the VMM core offers to devices: guest memory,
 * port/MMIO dispatch, interrupts, ioeventfd/irqfd and the kernel command line.
 * Devices include this and nothing else from vmm/ (plus event_loop.h).
 */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest/common/vmm_abi.h"

/* Guest RAM is one host mapping: GPA [0, low_size) at host[0], and GPA
 * [4 GiB, 4 GiB + size - low_size) at host[low_size]. */
struct guest_mem {
	uint8_t *host;
	uint64_t size;		/* all RAM, bytes */
	uint64_t low_size;	/* RAM below VMM_MMIO_HOLE_START */
};

/* Host pointer for [gpa, gpa + len) when it lies wholly inside one RAM
 * range; NULL otherwise (outside RAM, across the hole, or overflowing).
 * Every guest-supplied address goes through this before use. */
static inline void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa,
				  uint64_t len)
{
	uint64_t end = gpa + len;

	if (end < gpa)
		return NULL;
	if (end <= m->low_size)
		return m->host + gpa;
	if (gpa >= VMM_MMIO_HOLE_END &&
	    end - VMM_MMIO_HOLE_END <= m->size - m->low_size)
		return m->host + m->low_size + (gpa - VMM_MMIO_HOLE_END);
	return NULL;
}

/* Register access handlers.  They run on the vCPU thread that trapped, so a
 * device whose state is shared with its own thread must lock.  off is
 * relative to base; size is 1, 2, 4 or 8. */
typedef void (*io_read_fn)(void *opaque, uint64_t off, void *data,
			   unsigned size);
typedef void (*io_write_fn)(void *opaque, uint64_t off, const void *data,
			    unsigned size);

enum io_space { IO_SPACE_PIO, IO_SPACE_MMIO };

struct vm;

struct guest_mem *vm_mem(struct vm *vm);

/* Claim [base, base + len) in a space; -EBUSY on overlap. */
int vm_register_io(struct vm *vm, enum io_space space, uint64_t base,
		   uint64_t len, io_read_fn rd, io_write_fn wr, void *opaque);

/* Signal efd on a guest write to mmio_addr (of len bytes; if match, only of
 * value) without an exit to user space.  0 or -errno. */
int vm_ioeventfd(struct vm *vm, uint64_t mmio_addr, unsigned len, bool match,
		 uint64_t value, int efd);
int vm_ioeventfd_remove(struct vm *vm, uint64_t mmio_addr, unsigned len,
			bool match, uint64_t value, int efd);
/* Raise edge-triggered interrupt gsi whenever efd is written. */
int vm_irqfd(struct vm *vm, unsigned gsi, int efd);
/* Set a level (1/0) or pulse (level < 0) on an interrupt line. */
int vm_irq_line(struct vm *vm, unsigned gsi, int level);

/* Next free virtio-mmio window and its IRQ; -ENOSPC when all are used.
 * Also appends "virtio_mmio.device=4K@<base>:<irq>" to the command line. */
int vm_add_virtio_mmio(struct vm *vm, uint64_t *base, unsigned *irq);

/* Append " <text>" to the guest command line (before boot). */
int vm_cmdline_append(struct vm *vm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Devices the VMM tears down, in reverse order, before it exits. */
int vm_add_device(struct vm *vm, const char *name, void (*destroy)(void *),
		  void *opaque);

/* Snapshot and restore (vmm/snapshot.c, docs/snapshot.md).  A device with
 * state of its own registers a section: in a snapshot its bytes are saved
 * under name (unique per VM, stable across runs: the restore finds them by
 * it), and a restore hands them back to load on a VM built the same way.
 *   pause: stop touching guest memory and finish what is in flight (the
 *     vCPUs are parked already); 0, or -1 with one line in err (the
 *     snapshot is then refused).  Until resume.  NULL: nothing to do.
 *   save: append the state with vm_snap_put; 0 or -1 (err).
 *   resume: after the snapshot was written (or refused).  NULL: nothing.
 *   load: on a restore, before any vCPU runs: take the state back with
 *     vm_snap_get (a short read is an error); 0, or an exit status
 *     (enum vmm_exit: VMM_EXIT_BAD_INPUT when the state does not fit this
 *     device, e.g. a disk of another size) with one line in err.
 * All on the thread that takes or restores the snapshot. */
struct snap_buf;
struct snap_reader;
struct vm_snapshot_ops {
	int (*pause)(void *opaque, char *err, size_t errlen);
	int (*save)(void *opaque, struct snap_buf *b, char *err, size_t errlen);
	void (*resume)(void *opaque);
	int (*load)(void *opaque, struct snap_reader *r, char *err,
		    size_t errlen);
};
/* Before the vCPUs start.  0 or -ENOSPC / -EINVAL (name too long). */
int vm_add_snapshot_section(struct vm *vm, const char *name,
			    const struct vm_snapshot_ops *ops, void *opaque);
/* Append n bytes to a section being saved (growing; an allocation
 * failure is reported once when the snapshot is written). */
void vm_snap_put(struct snap_buf *b, const void *data, size_t n);
/* Take the next n bytes of a section being loaded: 0, or -1 when fewer
 * are left (nothing copied). */
int vm_snap_get(struct snap_reader *r, void *data, size_t n);
/* Bytes of the section not taken yet. */
size_t vm_snap_left(const struct snap_reader *r);

/* Exit statuses of ./vmm beyond the guest's own 0-63 (see README). */
enum vmm_exit {
	VMM_EXIT_USAGE = 64,
	VMM_EXIT_BAD_INPUT = 65,
	VMM_EXIT_UNAVAILABLE = 69,
	VMM_EXIT_INTERNAL = 70,
	VMM_EXIT_TIMEOUT = 124,
	VMM_EXIT_GUEST_CRASH = 125,
	VMM_EXIT_GUEST_PANIC = 126,
};

/* Stop the VM; ./vmm exits with status.  The first request wins; thread
 * safe, returns at once. */
void vm_request_exit(struct vm *vm, int status);
/* The console showed a kernel panic: a later reboot exits with
 * VMM_EXIT_GUEST_PANIC, not 0. */
void vm_note_guest_panic(struct vm *vm);
/* The guest says it has booted (boot-ready marker): the first time, tell
 * whoever composed the VM (its on_boot_ready hook, e.g. the boot timer). */
void vm_boot_ready(struct vm *vm);
/* The guest asks for a snapshot (the snapshot-request port): tell whoever
 * composed the VM (--snapshot-to when=request takes it). */
void vm_snapshot_request(struct vm *vm);

/* CLOCK_MONOTONIC in seconds. */
double now_seconds(void);

/* Format one error line into err and return -1: the way every setup
 * function reports a problem to its caller. */
int errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Write all n bytes to fd, through short writes and EINTR: 0, or -1 (errno
 * set; a reader that went away ends it). */
int write_all(int fd, const void *buf, size_t n);

/* A device error (a disk I/O error, a guest breaking the virtio rules)
 * for the event stream of the VM the calling thread works for (vmm/events.h;
 * a thread no VM made: dropped).  devices/guest_log.c calls it for every
 * line it logs.  Thread safe. */
void vm_events_device_error(const char *device, const char *msg);

/* Report a device error (one line on stderr, prefixed with the device name).
 * Thread safe. */
void vm_log(const char *who, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
