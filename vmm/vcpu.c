/* vmm/vcpu.c - vCPUs: creation (CPUID, MSRs, FPU, LAPIC), one thread each
 * running KVM_RUN, exit dispatch, and the register dump on a guest crash. */
#include "vmm/vcpu.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/thread.h"

/* vcpus_stop() kicks a vCPU out of KVM_RUN with a signal (vm->kick_signal,
 * the process default when the VM was made: SIGRTMAX - 1 unless
 * vcpu_set_kick_signal() chose another).  The vCPU thread keeps it
 * blocked, like every signal (vm_thread_create), and lets KVM unblock it
 * only inside KVM_RUN (KVM_SET_SIGNAL_MASK): a kick then ends KVM_RUN with
 * EINTR and is never delivered, so no handler (no process-wide signal
 * disposition) is needed, and a kick that lands between two KVM_RUNs stays
 * pending and ends the next one at once. */
#define CPUID_MAX_ENTRIES	256

static int kick_signal_chosen;	/* atomic; 0: the default */

int vcpu_kick_signal(void)
{
	int s = __atomic_load_n(&kick_signal_chosen, __ATOMIC_RELAXED);

	return s ? s : SIGRTMAX - 1;
}

int vcpu_set_kick_signal(int signo)
{
	if (signo != SIGUSR1 && signo != SIGUSR2 &&
	    (signo < SIGRTMIN || signo > SIGRTMAX))
		return -EINVAL;
	__atomic_store_n(&kick_signal_chosen, signo, __ATOMIC_RELAXED);
	return 0;
}

/* Reset values Linux expects (as Firecracker and QEMU set them). */
static const struct {
	uint32_t index;
	uint64_t value;
} boot_msrs[] = {
	{ 0x174, 0 },			/* IA32_SYSENTER_CS */
	{ 0x175, 0 },			/* IA32_SYSENTER_ESP */
	{ 0x176, 0 },			/* IA32_SYSENTER_EIP */
	{ 0xc0000081, 0 },		/* STAR */
	{ 0xc0000082, 0 },		/* LSTAR */
	{ 0xc0000083, 0 },		/* CSTAR */
	{ 0xc0000084, 0 },		/* SYSCALL_MASK */
	{ 0xc0000102, 0 },		/* KERNEL_GS_BASE */
	{ 0x10, 0 },			/* IA32_TSC */
	{ 0x1a0, 1 },			/* IA32_MISC_ENABLE: fast strings */
	{ 0x2ff, (1 << 11) | 6 },	/* MTRRdefType: enabled, write-back */
};

static bool vm_is_exiting(struct vm *vm)
{
	return __atomic_load_n(&vm->exiting, __ATOMIC_ACQUIRE);
}

static unsigned ceil_log2(unsigned n)
{
	unsigned s = 0;

	while ((1u << s) < n)
		s++;
	return s;
}

/* Per-vCPU view of the supported CPUID: APIC ID, and a topology of one
 * package with ncpus cores of one thread each. */
void cpuid_for_vcpu(struct kvm_cpuid2 *c, unsigned id, unsigned ncpus)
{
	unsigned i;

	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0xffff) | (id << 24) |
				 ((ncpus > 255 ? 255 : ncpus) << 16);
			e->ecx |= 1u << 31;	/* running under a hypervisor */
			if (ncpus > 1)
				e->edx |= 1u << 28;	/* HTT: EBX[23:16] valid */
			break;
		case 4:
			e->eax = (e->eax & 0x03ffffff) | ((ncpus - 1) << 26);
			break;
		case 0xb:
		case 0x1f:
			e->edx = id;
			if (e->index == 0) {		/* SMT level */
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1 << 8;
			} else if (e->index == 1) {	/* core level */
				e->eax = ceil_log2(ncpus);
				e->ebx = ncpus;
				e->ecx = 2 << 8 | 1;
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		}
	}
}

static int vcpu_setup(struct vm *vm, struct vcpu *c, char *err, size_t errlen)
{
	struct kvm_cpuid2 *cpuid;
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	struct kvm_lapic_state lapic;
	size_t sz = sizeof(*cpuid) + vm->cpuid->nent * sizeof(cpuid->entries[0]);
	unsigned i;

	c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, c->id);
	if (c->fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VCPU %u: %s", c->id, strerror(errno));
		return -1;
	}
	c->run = mmap(NULL, (size_t)vm->run_mmap_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		snprintf(err, errlen, "mmap kvm_run: %s", strerror(errno));
		return -1;
	}

	cpuid = malloc(sz);
	if (!cpuid) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(cpuid, vm->cpuid, sz);
	cpuid_for_vcpu(cpuid, c->id, vm->ncpus);
	i = ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0;
	free(cpuid);
	if (i) {
		snprintf(err, errlen, "KVM_SET_CPUID2: %s", strerror(errno));
		return -1;
	}

	/* One at a time: a host may lack one of them; that is not fatal. */
	for (i = 0; i < sizeof(boot_msrs) / sizeof(boot_msrs[0]); i++) {
		struct {
			struct kvm_msrs hdr;
			struct kvm_msr_entry e;
		} m = { .hdr.nmsrs = 1,
			.e = { .index = boot_msrs[i].index, .data = boot_msrs[i].value } };

		ioctl(c->fd, KVM_SET_MSRS, &m);
	}
	if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0) {
		snprintf(err, errlen, "KVM_SET_FPU: %s", strerror(errno));
		return -1;
	}
	/* LINT0 = ExtINT (the PIC's virtual wire), LINT1 = NMI, as a BIOS leaves them */
	if (ioctl(c->fd, KVM_GET_LAPIC, &lapic) == 0) {
		uint32_t *lvt0 = (uint32_t *)(lapic.regs + 0x350);
		uint32_t *lvt1 = (uint32_t *)(lapic.regs + 0x360);

		*lvt0 = (*lvt0 & ~0x700u) | (7 << 8);
		*lvt1 = (*lvt1 & ~0x700u) | (4 << 8);
		ioctl(c->fd, KVM_SET_LAPIC, &lapic);
	}
	return 0;
}

int vcpus_create(struct vm *vm, char *err, size_t errlen)
{
	unsigned i;

	vm->cpuid = calloc(1, sizeof(*vm->cpuid) +
			   CPUID_MAX_ENTRIES * sizeof(vm->cpuid->entries[0]));
	if (!vm->cpuid) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	vm->cpuid->nent = CPUID_MAX_ENTRIES;
	vm->kick_signal = vcpu_kick_signal();
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid) < 0) {
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return -1;
	}
	/* The LAPIC timer's TSC-deadline mode: KVM emulates it but leaves
	 * the CPUID bit to the VMM (QEMU and Firecracker set it too).
	 * Without it Linux calibrates the LAPIC timer against the PIT, and
	 * where that measurement is off (an emulated or busy host: "APIC
	 * timer disabled due to verification failure") it keeps the PIT as
	 * its only clock event device, whose interrupts stopped coming after
	 * a few: the guest's timers then never fired (sleeps, poll timeouts). */
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		for (i = 0; i < vm->cpuid->nent; i++)
			if (vm->cpuid->entries[i].function == 1)
				vm->cpuid->entries[i].ecx |= 1u << 24;
	for (i = 0; i < vm->ncpus; i++) {
		vm->vcpus[i].vm = vm;
		vm->vcpus[i].id = i;
		if (vcpu_setup(vm, &vm->vcpus[i], err, errlen))
			return -1;
	}
	return 0;
}

/* Walk the guest's 4-level page tables: gva -> gpa, or -1. */
static int64_t guest_translate(struct vm *vm, const struct kvm_sregs *s,
			       uint64_t gva)
{
	uint64_t table = s->cr3 & 0x000ffffffffff000ULL;
	int level;

	if (!(s->cr0 & 0x80000000))
		return (int64_t)gva;
	if (!(s->efer & 0x400))
		return -1;	/* only long mode is worth decoding */
	for (level = 3; level >= 0; level--) {
		uint64_t *e = guest_mem_ptr(&vm->mem,
					    table + ((gva >> (12 + 9 * level)) & 511) * 8, 8);

		if (!e || !(*e & 1))
			return -1;
		if (level == 0 || (level <= 2 && (*e & 0x80))) {
			uint64_t mask = (1ULL << (12 + 9 * level)) - 1;

			return (int64_t)((*e & 0x000ffffffffff000ULL & ~mask) | (gva & mask));
		}
		table = *e & 0x000ffffffffff000ULL;
	}
	return -1;
}

void vcpu_dump(struct vcpu *c, const char *why)
{
	struct vm *vm = c->vm;
	struct kvm_regs r;
	struct kvm_sregs s;
	char code[3 * 16 + 1] = "";
	int64_t gpa;

	if (ioctl(c->fd, KVM_GET_REGS, &r) < 0 || ioctl(c->fd, KVM_GET_SREGS, &s) < 0) {
		vm_log("vcpu", "%u: %s (registers unavailable: %s)", c->id, why,
		       strerror(errno));
		return;
	}
	gpa = guest_translate(vm, &s, r.rip + s.cs.base * !(s.efer & 0x400));
	if (gpa >= 0) {
		uint8_t *p = guest_mem_ptr(&vm->mem, (uint64_t)gpa, 16);
		int i;

		for (i = 0; p && i < 16; i++)
			sprintf(code + 3 * i, "%02x ", p[i]);
	}
	vm_log("vcpu", "%u: %s\n"
	       "  rip %016llx rsp %016llx rflags %08llx\n"
	       "  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
	       "  rsi %016llx rdi %016llx rbp %016llx\n"
	       "  r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
	       "  cr0 %08llx cr2 %016llx cr3 %016llx cr4 %08llx efer %llx\n"
	       "  cs %04x (base %llx l %d db %d) ss %04x\n"
	       "  code at rip: %s",
	       c->id, why,
	       r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi,
	       r.rbp, r.r8, r.r9, r.r10, r.r11, s.cr0, s.cr2, s.cr3, s.cr4,
	       s.efer, s.cs.selector, s.cs.base, s.cs.l, s.cs.db, s.ss.selector,
	       *code ? code : "(not in RAM)");
}

static void guest_crashed(struct vcpu *c, const char *why)
{
	/* only the first crash report is useful; later ones are fallout */
	if (!vm_is_exiting(c->vm))
		vcpu_dump(c, why);
	vm_request_exit(c->vm, VMM_EXIT_GUEST_CRASH);
}

static void handle_io(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	const struct io_handler *h = vm_find_io(c->vm, IO_SPACE_PIO, run->io.port);
	uint32_t i;

	for (i = 0; i < run->io.count; i++, data += run->io.size) {
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			if (h && h->wr)
				h->wr(h->opaque, run->io.port - h->base, data, run->io.size);
		} else if (h && h->rd) {
			h->rd(h->opaque, run->io.port - h->base, data, run->io.size);
		} else {
			memset(data, 0xff, run->io.size);	/* nothing there */
		}
	}
}

static void handle_mmio(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint64_t addr = run->mmio.phys_addr;
	const struct io_handler *h = vm_find_io(c->vm, IO_SPACE_MMIO, addr);

	if (run->mmio.len > 8)
		return;
	if (h && run->mmio.is_write && h->wr) {
		h->wr(h->opaque, addr - h->base, run->mmio.data, run->mmio.len);
	} else if (h && !run->mmio.is_write && h->rd) {
		h->rd(h->opaque, addr - h->base, run->mmio.data, run->mmio.len);
	} else {
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, run->mmio.len);
		/* a guest probing the void is normal; say so a few times only */
		if (__atomic_fetch_add(&c->vm->unassigned_mmio_logged, 1,
				       __ATOMIC_RELAXED) < 4)
			vm_log("vcpu", "%u: %s of %u bytes at unassigned MMIO %#llx",
			       c->id, run->mmio.is_write ? "write" : "read",
			       run->mmio.len, (unsigned long long)addr);
	}
}

/* Block the kick signal on this thread, and have KVM_RUN run with this
 * thread's mask minus the kick.  0 or -errno. */
static int kick_signal_setup(struct vcpu *c)
{
	struct {
		struct kvm_signal_mask m;
		uint8_t bits[8];	/* the kernel's sigset_t on x86_64 */
	} kmask;
	sigset_t kick, mask;
	int r;

	sigemptyset(&kick);
	sigaddset(&kick, c->vm->kick_signal);
	r = pthread_sigmask(SIG_BLOCK, &kick, &mask);
	if (r)
		return -r;
	sigdelset(&mask, c->vm->kick_signal);
	kmask.m.len = sizeof(kmask.bits);
	memcpy(kmask.bits, &mask, sizeof(kmask.bits));
	if (ioctl(c->fd, KVM_SET_SIGNAL_MASK, &kmask) < 0)
		return -errno;
	return 0;
}

/* KVM_RUN ended with EINTR: take a pending kick so that the next KVM_RUN
 * does not end at once again. */
static void eat_kick(int signo)
{
	static const struct timespec zero;
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, signo);
	while (sigtimedwait(&kick, NULL, &zero) > 0)
		;
}

/* A snapshot wants this vCPU still: complete the last exit inside KVM
 * (KVM_RUN with immediate_exit finishes a port or MMIO access and
 * returns at once: the registers are then consistent), and wait until the
 * pause ends or the VM exits. */
static void park(struct vcpu *c)
{
	struct vm *vm = c->vm;

	/* atomic: vcpus_pause() and vcpus_stop() set it from other threads */
	__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_RELAXED);
	if (ioctl(c->fd, KVM_RUN, 0) < 0 && errno == EINTR)
		eat_kick(vm->kick_signal);
	__atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_RELAXED);
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (__atomic_load_n(&vm->pause_wanted, __ATOMIC_ACQUIRE) &&
	       !vm_is_exiting(vm))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

int vcpus_pause(struct vm *vm, int timeout_ms)
{
	struct timespec end;
	int r = 0;

	__atomic_store_n(&vm->pause_wanted, true, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *c = &vm->vcpus[i];

		if (!c->thread_started)
			continue;
		__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		for (int tries = 0; pthread_kill(c->thread, vm->kick_signal) == EAGAIN &&
				    tries < 1000; tries++)
			usleep(1000);
	}
	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += timeout_ms / 1000;
	end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (end.tv_nsec >= 1000000000) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->parked < vm->ncpus && !vm_is_exiting(vm) && r == 0)
		r = pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &end);
	r = vm->parked == vm->ncpus && !vm_is_exiting(vm) ? 0 : -1;
	pthread_mutex_unlock(&vm->pause_lock);
	return r;
}

void vcpus_pause_request(struct vm *vm)
{
	__atomic_store_n(&vm->pause_wanted, true, __ATOMIC_SEQ_CST);
}

void vcpus_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	__atomic_store_n(&vm->pause_wanted, false, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct vm *vm = c->vm;
	struct kvm_run *run = c->run;
	char name[16];
	char why[96];
	int r;

	snprintf(name, sizeof(name), "vcpu%u", c->id);
	pthread_setname_np(pthread_self(), name);
	r = kick_signal_setup(c);
	if (r < 0) {
		vm_log("vcpu", "%u: KVM_SET_SIGNAL_MASK: %s", c->id, strerror(-r));
		vm_request_exit(vm, VMM_EXIT_INTERNAL);
		return NULL;
	}

	while (!vm_is_exiting(vm)) {
		if (__atomic_load_n(&vm->pause_wanted, __ATOMIC_ACQUIRE)) {
			park(c);
			continue;
		}
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				if (errno == EINTR)
					eat_kick(vm->kick_signal);
				/* atomic: vcpus_stop() sets it from another
				 * thread (it also sets exiting first, which
				 * the loop checks next) */
				__atomic_store_n(&run->immediate_exit, 0,
						 __ATOMIC_RELAXED);
				continue;
			}
			snprintf(why, sizeof(why), "KVM_RUN failed: %s", strerror(errno));
			guest_crashed(c, why);
			break;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			handle_io(c);
			break;
		case KVM_EXIT_MMIO:
			handle_mmio(c);
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_HLT:
			/* only without an in-kernel LAPIC; don't spin */
			usleep(1000);
			break;
		case KVM_EXIT_SHUTDOWN:
			guest_crashed(c, "guest shut down (triple fault)");
			break;
		case KVM_EXIT_FAIL_ENTRY:
			snprintf(why, sizeof(why), "VM entry failed (reason %#llx)",
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			guest_crashed(c, why);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			snprintf(why, sizeof(why), "KVM internal error (suberror %u)",
				 run->internal.suberror);
			guest_crashed(c, why);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH) {
				guest_crashed(c, "guest reported a crash");
			} else {
				vm_log("vcpu", "%u: guest %s", c->id,
				       run->system_event.type == KVM_SYSTEM_EVENT_RESET ?
				       "reset" : "shut down");
				vm_request_exit(vm, 0);
			}
			break;
		default:
			snprintf(why, sizeof(why), "unhandled KVM exit %u", run->exit_reason);
			guest_crashed(c, why);
			break;
		}
	}
	return NULL;
}

int vcpus_start(struct vm *vm, char *err, size_t errlen)
{
	unsigned i;
	int r = 0;

	/* threads start with every signal blocked, the kick included: a kick
	 * before kick_signal_setup() must not find it deliverable */
	for (i = 0; i < vm->ncpus; i++) {
		char name[16];

		snprintf(name, sizeof(name), "vcpu%u", i);
		r = vm_thread_create_kind(&vm->vcpus[i].thread, VM_THREAD_VCPU,
					  name, vcpu_thread, &vm->vcpus[i]);
		if (r)
			break;
		vm->vcpus[i].thread_started = true;
	}
	if (r) {
		snprintf(err, errlen, "cannot start vCPU thread: %s", strerror(r));
		return -1;
	}
	return 0;
}

void vcpus_stop(struct vm *vm)
{
	unsigned i;

	for (i = 0; i < vm->ncpus; i++) {
		struct vcpu *c = &vm->vcpus[i];

		if (!c->thread_started)
			continue;
		/* immediate_exit covers a kick that lands outside KVM_RUN */
		__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_RELAXED);
		/* a real-time signal is queued: EAGAIN at RLIMIT_SIGPENDING */
		for (int tries = 0; pthread_kill(c->thread, vm->kick_signal) == EAGAIN &&
				    tries < 1000; tries++)
			usleep(1000);
	}
	/* parked vCPUs look at the exit flag when woken */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	for (i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].thread_started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].thread_started = false;
		}
}
