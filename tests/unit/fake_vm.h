/* tests/unit/fake_vm.h - a fake struct vm for driving a virtio device
 * through its register handlers without KVM: guest RAM is plain memory,
 * queue notifies and interrupts are the eventfds the device hands to
 * "KVM", vm_log lines are counted.  Include in one test file only (it
 * defines the vm.h services the library would otherwise provide).
 * FAKE_MAX_DEV (defined before the include) sizes the device table;
 * the environment variable FAKE_LOG_ENV names (VMM_TEST_LOG unless
 * defined before the include) echoes vm_log lines to stderr when set.
 * The fuzz harness (tests/fuzz/fuzz_harness.c) uses this fake vm too. */
#ifndef TESTS_UNIT_FAKE_VM_H
#define TESTS_UNIT_FAKE_VM_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_mmio.h"
#include "vmm/vm.h"

#ifndef FAKE_MAX_DEV
#define FAKE_MAX_DEV	VMM_VIRTIO_MAX_DEVICES
#endif
#ifndef FAKE_LOG_ENV
#define FAKE_LOG_ENV	"VMM_TEST_LOG"
#endif

struct vm {
	struct guest_mem mem;
	unsigned ndev;
	struct {
		uint64_t base;
		io_read_fn rd;
		io_write_fn wr;
		void *opaque;
		int notify_fd[VIRTIO_MMIO_MAX_QUEUES];
		int irqfd;
	} dev[FAKE_MAX_DEV];
	void (*destroy[FAKE_MAX_DEV])(void *);
	void *destroy_opaque[FAKE_MAX_DEV];
	unsigned ndestroy;
	bool no_ioeventfd;	/* make vm_ioeventfd fail: MMIO notifies */
	bool no_irqfd;		/* make vm_irqfd fail: vm_irq_line */
	unsigned irq_lines;	/* vm_irq_line calls (no irqfd) */
};

static struct vm fvm;
static int log_count;
static char last_log[256];

void vm_log(const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
	va_end(ap);
	if (getenv(FAKE_LOG_ENV))
		fprintf(stderr, "log: %s: %s\n", who, last_log);
	__atomic_fetch_add(&log_count, 1, __ATOMIC_SEQ_CST);
}

struct guest_mem *vm_mem(struct vm *vm)
{
	return &vm->mem;
}

static int fake_dev_of(struct vm *vm, uint64_t addr)
{
	for (unsigned i = 0; i < vm->ndev; i++)
		if (addr >= vm->dev[i].base &&
		    addr < vm->dev[i].base + VMM_VIRTIO_MMIO_SIZE)
			return (int)i;
	return -1;
}

int vm_register_io(struct vm *vm, enum io_space space, uint64_t base,
		   uint64_t len, io_read_fn rd, io_write_fn wr, void *opaque)
{
	int i = fake_dev_of(vm, base);

	if (space != IO_SPACE_MMIO || i < 0 || len != VMM_VIRTIO_MMIO_SIZE)
		return -EINVAL;
	vm->dev[i].rd = rd;
	vm->dev[i].wr = wr;
	vm->dev[i].opaque = opaque;
	return 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t mmio_addr, unsigned len, bool match,
		 uint64_t value, int efd)
{
	int i = fake_dev_of(vm, mmio_addr);

	if (vm->no_ioeventfd)
		return -ENOSYS;
	if (i < 0 || len != 4 || !match || value >= VIRTIO_MMIO_MAX_QUEUES ||
	    mmio_addr - vm->dev[i].base != VIRTIO_MMIO_QUEUE_NOTIFY)
		return -EINVAL;
	vm->dev[i].notify_fd[value] = efd;
	return 0;
}

int vm_ioeventfd_remove(struct vm *vm, uint64_t mmio_addr, unsigned len,
			bool match, uint64_t value, int efd)
{
	int i = fake_dev_of(vm, mmio_addr);

	(void)len;
	(void)match;
	if (i < 0 || value >= VIRTIO_MMIO_MAX_QUEUES ||
	    vm->dev[i].notify_fd[value] != efd)
		return -ENOENT;
	vm->dev[i].notify_fd[value] = -1;
	return 0;
}

int vm_irqfd(struct vm *vm, unsigned gsi, int efd)
{
	unsigned i = gsi - VMM_VIRTIO_IRQ_BASE;

	if (vm->no_irqfd)
		return -ENOSYS;
	if (i >= vm->ndev)
		return -EINVAL;
	vm->dev[i].irqfd = efd;
	return 0;
}

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
	(void)gsi;
	(void)level;
	__atomic_fetch_add(&vm->irq_lines, 1, __ATOMIC_SEQ_CST);
	return 0;
}

int vm_add_virtio_mmio(struct vm *vm, uint64_t *base, unsigned *irq)
{
	unsigned i = vm->ndev;

	if (i == FAKE_MAX_DEV)
		return -ENOSPC;
	*base = VMM_VIRTIO_MMIO_BASE + i * VMM_VIRTIO_MMIO_SIZE;
	*irq = VMM_VIRTIO_IRQ_BASE + i;
	vm->dev[i].base = *base;
	vm->dev[i].irqfd = -1;
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		vm->dev[i].notify_fd[q] = -1;
	vm->ndev++;
	return 0;
}

/* snapshots are vm.c's business: nothing to register here */
int vm_add_snapshot_section(struct vm *vm, const char *name,
			    const struct vm_snapshot_ops *ops, void *opaque)
{
	(void)vm;
	(void)name;
	(void)ops;
	(void)opaque;
	return 0;
}

int vm_add_device(struct vm *vm, const char *name, void (*destroy)(void *),
		  void *opaque)
{
	(void)name;
	if (vm->ndestroy == FAKE_MAX_DEV)
		return -ENOSPC;
	vm->destroy[vm->ndestroy] = destroy;
	vm->destroy_opaque[vm->ndestroy++] = opaque;
	return 0;
}

static void fake_destroy_all(void)
{
	while (fvm.ndestroy) {
		fvm.ndestroy--;
		fvm.destroy[fvm.ndestroy](fvm.destroy_opaque[fvm.ndestroy]);
	}
}

/* ---- the registers of device `cur`, as the test's driver reads them ---- */
static int cur;		/* index of the device the driver talks to */

static inline uint32_t rd32(uint64_t off)
{
	uint32_t v;

	fvm.dev[cur].rd(fvm.dev[cur].opaque, off, &v, 4);
	return v;
}

static inline void wr32(uint64_t off, uint32_t v)
{
	fvm.dev[cur].wr(fvm.dev[cur].opaque, off, &v, 4);
}

/* Config space in accesses of 1, 2 or 4 bytes, as a driver does. */
static inline void cfg_read(uint32_t off, void *v, unsigned size)
{
	uint8_t *p = v;

	for (unsigned i = 0; i < size;) {
		unsigned n = size - i >= 4 && !((off + i) & 3) ? 4 :
			     size - i >= 2 && !((off + i) & 1) ? 2 : 1;

		fvm.dev[cur].rd(fvm.dev[cur].opaque,
				VIRTIO_MMIO_CONFIG + off + i, p + i, n);
		i += n;
	}
}

static inline uint64_t dev_features(void)
{
	uint64_t f;

	wr32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	f = rd32(VIRTIO_MMIO_DEVICE_FEATURES);
	wr32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return f | (uint64_t)rd32(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

static inline void set_features(uint64_t f)
{
	wr32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

#endif
