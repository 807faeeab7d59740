/* vmm/vm_private.h - the VM as the core sees it.  Devices use vmm/vm.h. */
#ifndef VMM_VM_PRIVATE_H
#define VMM_VM_PRIVATE_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/limits.h"
#include "vmm/vm.h"

struct io_handler {
	uint64_t base, len;
	io_read_fn rd;
	io_write_fn wr;
	void *opaque;
};

struct vm_device {
	const char *name;
	void (*destroy)(void *);
	void *opaque;
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
};

#define VM_MAX_IO_HANDLERS	64
#define VM_MAX_DEVICES		64
#define VM_MAX_SNAP_SECTIONS	32
#define VM_SNAP_NAME_MAX	24	/* bytes of a section name, NUL included */

struct vm_snap_section {
	char name[VM_SNAP_NAME_MAX];
	const struct vm_snapshot_ops *ops;
	void *opaque;
};

struct vm {
	int kvm_fd, vm_fd;
	struct guest_mem mem;
	unsigned ncpus;
	struct vcpu vcpus[VMM_MAX_CPUS];
	struct kvm_cpuid2 *cpuid;	/* as KVM_GET_SUPPORTED_CPUID gave it */
	int run_mmap_size;
	int kick_signal;		/* vcpus_stop's (vcpu.c) */
	bool pvm_host;			/* /dev/kvm is kvm_pvm */
	pthread_t memslot_thread;	/* registers guest RAM in the background */
	bool memslot_pending;
	int memslot_errno;

	struct io_handler pio[VM_MAX_IO_HANDLERS], mmio[VM_MAX_IO_HANDLERS];
	unsigned npio, nmmio;

	char cmdline[VMM_CMDLINE_MAX];
	size_t cmdline_len;
	unsigned nvirtio;

	struct vm_device devices[VM_MAX_DEVICES];
	unsigned ndevices;

	/* The first vm_request_exit() wins; the main thread waits on exit_efd. */
	pthread_mutex_t exit_lock;
	bool exiting;		/* written under the lock; read atomically */
	bool guest_panicked;
	int exit_status;
	int exit_efd;

	/* The first vm_boot_ready() calls this (set by whoever composes the
	 * VM, before the vCPUs start; NULL: nothing to do). */
	void (*on_boot_ready)(struct vm *vm, void *opaque);
	void *on_boot_ready_opaque;
	bool boot_ready_seen;		/* atomic */
	/* The guest wrote the snapshot-request port (legacy.c): tell whoever
	 * composed the VM (vCPU thread; NULL: the port does nothing). */
	void (*on_snapshot_request)(struct vm *vm, void *opaque);
	void *on_snapshot_request_opaque;

	/* Snapshots: device sections, and parking the vCPUs (vcpu.c) */
	struct vm_snap_section snap[VM_MAX_SNAP_SECTIONS];
	unsigned nsnap;
	bool mem_from_file;		/* RAM is a private map of a snapshot */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;	/* parked changed, or pause ended */
	bool pause_wanted;		/* atomic */
	unsigned parked;		/* vCPUs parked (pause_lock) */
	unsigned unassigned_mmio_logged;	/* atomic: lines so far */
};

/* kvm.c */
int vm_create(struct vm *vm, uint64_t mem_size, unsigned ncpus, char *err,
	      size_t errlen);
/* The same with guest RAM a private (copy-on-write) map of mem_fd, a
 * snapshot's memory file of exactly mem_size bytes; -1: anonymous. */
int vm_create_from(struct vm *vm, uint64_t mem_size, unsigned ncpus,
		   int mem_fd, char *err, size_t errlen);
/* Wait until guest RAM is registered with KVM (before the vCPUs run). */
int vm_memory_ready(struct vm *vm, char *err, size_t errlen);
void vm_destroy_devices(struct vm *vm);
void vm_close(struct vm *vm);
const struct io_handler *vm_find_io(struct vm *vm, enum io_space space,
				    uint64_t addr);
bool host_is_pvm(void);
#endif
