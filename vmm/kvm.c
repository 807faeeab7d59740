/* vmm/kvm.c - the KVM VM: guest RAM, in-kernel irqchip and PIT, the port and
 * MMIO handler tables, and the vm.h services devices use. */
#include "vmm/vm_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/thread.h"
#include "vmm/tsan.h"

/* VMX wants these two pages somewhere no RAM or MMIO lives. */
#define KVM_TSS_GPA		0xfffbd000
#define KVM_IDENTITY_MAP_GPA	0xfffbc000

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

bool host_is_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

/* Is there enough host memory to back size bytes?  MAP_NORESERVE would let
 * an absurd size through and the guest would die later, at random. */
static int check_host_memory(uint64_t size, char *err, size_t errlen)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long total_kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &total_kb) == 1)
			break;
	fclose(f);
	if (total_kb && size / 1024 > total_kb) {
		snprintf(err, errlen,
			 "--memory: %llu MiB is more than this host has (%llu MiB)",
			 (unsigned long long)(size >> 20), total_kb >> 10);
		return -1;
	}
	return 0;
}

static int set_memslot(struct vm *vm, unsigned slot, uint64_t gpa,
		       uint64_t size, void *host)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

static void *memslot_thread(void *arg)
{
	struct vm *vm = arg;
	uint64_t high = vm->mem.size - vm->mem.low_size;

	vm->memslot_errno = 0;
	if (set_memslot(vm, 0, 0, vm->mem.low_size, vm->mem.host) < 0 ||
	    (high && set_memslot(vm, 1, VMM_MMIO_HOLE_END, high,
				 vm->mem.host + vm->mem.low_size) < 0))
		vm->memslot_errno = errno;
	return NULL;
}

int vm_memory_ready(struct vm *vm, char *err, size_t errlen)
{
	if (vm->memslot_pending) {
		pthread_join(vm->memslot_thread, NULL);
		vm->memslot_pending = false;
	}
	if (vm->memslot_errno) {
		snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION (%llu MiB): %s",
			 (unsigned long long)(vm->mem.size >> 20),
			 strerror(vm->memslot_errno));
		return -1;
	}
	return 0;
}

int vm_create(struct vm *vm, uint64_t mem_size, unsigned ncpus, char *err,
	      size_t errlen)
{
	return vm_create_from(vm, mem_size, ncpus, -1, err, errlen);
}

int vm_create_from(struct vm *vm, uint64_t mem_size, unsigned ncpus,
		   int mem_fd, char *err, size_t errlen)
{
	struct kvm_pit_config pit = { .flags = 0 };
	int n, version;

	vm->kvm_fd = vm->vm_fd = vm->exit_efd = -1;
	for (n = 0; n < VMM_MAX_CPUS; n++)
		vm->vcpus[n].fd = -1;
	pthread_mutex_init(&vm->exit_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	vm->ncpus = ncpus;
	vm->pvm_host = host_is_pvm();

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		snprintf(err, errlen, "/dev/kvm: %s%s", strerror(errno),
			 errno == ENOENT ? " (no KVM on this host: load kvm_intel/kvm_amd)" :
			 errno == EACCES ? " (add yourself to the kvm group, or run as root)" : "");
		return -1;
	}
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm: KVM API version %d, need %d",
			 version, KVM_API_VERSION);
		return -1;
	}
	n = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (n > 0 && ncpus > (unsigned)n) {
		snprintf(err, errlen, "--cpus: %u vCPUs requested, KVM allows %d",
			 ncpus, n);
		return -1;
	}
	if (!ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) ||
	    !ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD)) {
		snprintf(err, errlen, "/dev/kvm: ioeventfd and irqfd are required");
		return -1;
	}
	vm->run_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_mmap_size <= 0) {
		snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -1;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		return -1;
	}
	/* On PVM these VMX-only calls are harmless no-ops or unsupported. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_GPA) < 0 && !vm->pvm_host) {
		snprintf(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -1;
	}
	{
		uint64_t idmap = KVM_IDENTITY_MAP_GPA;

		ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		snprintf(err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		snprintf(err, errlen, "KVM_CREATE_PIT2: %s", strerror(errno));
		return -1;
	}

	/* Guest RAM */
	if (check_host_memory(mem_size, err, errlen))
		return -1;
	vm->mem.size = mem_size;
	vm->mem.low_size = mem_size < VMM_MMIO_HOLE_START ? mem_size :
			   VMM_MMIO_HOLE_START;
	/* A snapshot's RAM: private, so pages are read lazily from the
	 * file (shared page cache between restores) and copied on write. */
	vm->mem.host = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_NORESERVE |
			    (mem_fd >= 0 ? 0 : MAP_ANONYMOUS), mem_fd, 0);
	if (vm->mem.host == MAP_FAILED) {
		vm->mem.host = NULL;
		snprintf(err, errlen, "--memory: cannot map %llu MiB: %s",
			 (unsigned long long)(mem_size >> 20), strerror(errno));
		return -1;
	}
	vm->mem_from_file = mem_fd >= 0;
	tsan_guest_ram(vm->mem.host, mem_size);
	/* Big pages make guest page walks cheaper; fine if THP is off. */
	if (mem_fd < 0)
		madvise(vm->mem.host, mem_size, MADV_HUGEPAGE);
	/* Registering RAM costs milliseconds (an SRCU grace period), the
	 * largest single item of boot time: do it while the rest is set up. */
	n = vm_thread_create(&vm->memslot_thread, memslot_thread, vm);
	if (n) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(n));
		return -1;
	}
	vm->memslot_pending = true;

	vm->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->exit_efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct guest_mem *vm_mem(struct vm *vm)
{
	return &vm->mem;
}

int vm_register_io(struct vm *vm, enum io_space space, uint64_t base,
		   uint64_t len, io_read_fn rd, io_write_fn wr, void *opaque)
{
	struct io_handler *tab = space == IO_SPACE_PIO ? vm->pio : vm->mmio;
	unsigned *n = space == IO_SPACE_PIO ? &vm->npio : &vm->nmmio;
	unsigned i;

	if (!len || base + len < base)
		return -EINVAL;
	for (i = 0; i < *n; i++)
		if (base < tab[i].base + tab[i].len && tab[i].base < base + len)
			return -EBUSY;
	if (*n == VM_MAX_IO_HANDLERS)
		return -ENOSPC;
	tab[*n] = (struct io_handler){ base, len, rd, wr, opaque };
	(*n)++;
	return 0;
}

/* Handlers are registered before the vCPUs start and never change after,
 * so lookups need no lock. */
const struct io_handler *vm_find_io(struct vm *vm, enum io_space space,
				    uint64_t addr)
{
	const struct io_handler *tab = space == IO_SPACE_PIO ? vm->pio : vm->mmio;
	unsigned n = space == IO_SPACE_PIO ? vm->npio : vm->nmmio, i;

	for (i = 0; i < n; i++)
		if (addr >= tab[i].base && addr - tab[i].base < tab[i].len)
			return &tab[i];
	return NULL;
}

static int ioeventfd(struct vm *vm, uint64_t addr, unsigned len, bool match,
		     uint64_t value, int efd, bool remove)
{
	struct kvm_ioeventfd io = {
		.datamatch = value,
		.addr = addr,
		.len = len,
		.fd = efd,
		.flags = (match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (remove ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
	};

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t mmio_addr, unsigned len, bool match,
		 uint64_t value, int efd)
{
	return ioeventfd(vm, mmio_addr, len, match, value, efd, false);
}

int vm_ioeventfd_remove(struct vm *vm, uint64_t mmio_addr, unsigned len,
			bool match, uint64_t value, int efd)
{
	return ioeventfd(vm, mmio_addr, len, match, value, efd, true);
}

int vm_irqfd(struct vm *vm, unsigned gsi, int efd)
{
	struct kvm_irqfd irq = { .fd = (uint32_t)efd, .gsi = gsi };

	return ioctl(vm->vm_fd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi };

	if (level < 0) {
		l.level = 1;
		if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
			return -errno;
		l.level = 0;
	} else {
		l.level = level ? 1 : 0;
	}
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

int vm_cmdline_append(struct vm *vm, const char *fmt, ...)
{
	size_t room = sizeof(vm->cmdline) - vm->cmdline_len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(vm->cmdline + vm->cmdline_len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 2 > room) {
		vm->cmdline[vm->cmdline_len] = '\0';
		return -ENOSPC;
	}
	/* keep one space between words, no leading space */
	if (vm->cmdline_len && n) {
		memmove(vm->cmdline + vm->cmdline_len + 1,
			vm->cmdline + vm->cmdline_len, (size_t)n + 1);
		vm->cmdline[vm->cmdline_len] = ' ';
		n++;
	}
	vm->cmdline_len += (size_t)n;
	return 0;
}

int vm_add_virtio_mmio(struct vm *vm, uint64_t *base, unsigned *irq)
{
	int r;

	if (vm->nvirtio == VMM_VIRTIO_MAX_DEVICES)
		return -ENOSPC;
	*base = VMM_VIRTIO_MMIO_BASE + (uint64_t)vm->nvirtio * VMM_VIRTIO_MMIO_SIZE;
	*irq = VMM_VIRTIO_IRQ_BASE + vm->nvirtio;
	r = vm_cmdline_append(vm, "virtio_mmio.device=4K@0x%llx:%u",
			      (unsigned long long)*base, *irq);
	if (r)
		return r;
	vm->nvirtio++;
	return 0;
}

int vm_add_device(struct vm *vm, const char *name, void (*destroy)(void *),
		  void *opaque)
{
	if (vm->ndevices == VM_MAX_DEVICES)
		return -ENOSPC;
	vm->devices[vm->ndevices++] = (struct vm_device){ name, destroy, opaque };
	return 0;
}

void vm_destroy_devices(struct vm *vm)
{
	while (vm->ndevices) {
		struct vm_device *d = &vm->devices[--vm->ndevices];

		if (d->destroy)
			d->destroy(d->opaque);
	}
}

void vm_request_exit(struct vm *vm, int status)
{
	uint64_t one = 1;
	bool first;

	pthread_mutex_lock(&vm->exit_lock);
	first = !vm->exiting;
	if (status == 0 && vm->guest_panicked)
		status = VMM_EXIT_GUEST_PANIC;
	if (first) {
		/* atomic: vCPU threads poll it without the lock */
		__atomic_store_n(&vm->exiting, true, __ATOMIC_RELEASE);
		vm->exit_status = status;
	}
	pthread_mutex_unlock(&vm->exit_lock);
	if (first && write(vm->exit_efd, &one, sizeof(one)) < 0)
		vm_log("vm", "cannot signal exit: %s", strerror(errno));
}

int vm_add_snapshot_section(struct vm *vm, const char *name,
			    const struct vm_snapshot_ops *ops, void *opaque)
{
	struct vm_snap_section *sec;

	if (strlen(name) >= VM_SNAP_NAME_MAX)
		return -EINVAL;
	if (vm->nsnap == VM_MAX_SNAP_SECTIONS)
		return -ENOSPC;
	sec = &vm->snap[vm->nsnap++];
	snprintf(sec->name, sizeof(sec->name), "%s", name);
	sec->ops = ops;
	sec->opaque = opaque;
	return 0;
}

void vm_snapshot_request(struct vm *vm)
{
	if (vm->on_snapshot_request)
		vm->on_snapshot_request(vm, vm->on_snapshot_request_opaque);
}

void vm_boot_ready(struct vm *vm)
{
	if (__atomic_exchange_n(&vm->boot_ready_seen, true, __ATOMIC_ACQ_REL))
		return;
	if (vm->on_boot_ready)
		vm->on_boot_ready(vm, vm->on_boot_ready_opaque);
}

void vm_note_guest_panic(struct vm *vm)
{
	pthread_mutex_lock(&vm->exit_lock);
	vm->guest_panicked = true;
	pthread_mutex_unlock(&vm->exit_lock);
}

void vm_close(struct vm *vm)
{
	unsigned i;

	if (vm->memslot_pending)
		pthread_join(vm->memslot_thread, NULL);

	for (i = 0; i < vm->ncpus; i++) {
		if (vm->vcpus[i].run)
			munmap(vm->vcpus[i].run, (size_t)vm->run_mmap_size);
		if (vm->vcpus[i].fd >= 0)
			close(vm->vcpus[i].fd);
	}
	if (vm->mem.host)
		munmap(vm->mem.host, vm->mem.size);
	free(vm->cpuid);
	if (vm->exit_efd >= 0)
		close(vm->exit_efd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
}
