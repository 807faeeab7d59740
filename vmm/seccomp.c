/* vmm/seccomp.c - the per-thread-kind seccomp filters (see seccomp.h).
 *
 * The lists below are what each kind of thread calls once the VM runs,
 * read from the code and checked by running the integration tests with
 * --seccomp log (docs/seccomp.md says how).  Where a call was in doubt
 * (a rare path: a reset from the guest, a device error) it is allowed:
 * killing a user's run is worse than a wider filter.  Arguments are
 * checked where that is cheap: ioctl request numbers, socket families,
 * prctl operations, no executable mappings, signals only to ourselves.
 *
 * io_uring: the engine's rings do their reads and writes without system
 * calls, so the filters cannot see them; io_uring_setup/enter/register
 * are allowed to the device threads that own the engines (the fallback
 * engine, VMM_IO_ENGINE=sync, uses preadv/pwritev/fdatasync/fallocate). */
#include "vmm/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "vmm/limits.h"

#define EXIT_SECCOMP	70	/* VMM_EXIT_INTERNAL: a forbidden call */
#define NAMED_SYSCALLS	512	/* the handler names calls below this */

/* ---- the lists ---- */

/* Every kind: memory, locks, time, its own descriptors, thread exit. */
static const int common_calls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv),
	SCMP_SYS(pwritev), SCMP_SYS(close), SCMP_SYS(lseek),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(fcntl),
	SCMP_SYS(futex), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(brk),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(restart_syscall),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(sched_yield),
	/* malloc's arena count check (glibc __get_nprocs_sched) */
	SCMP_SYS(sched_getaffinity), SCMP_SYS(getrandom),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(poll), SCMP_SYS(ppoll),
	/* events (events.c) and the console write from any thread */
	SCMP_SYS(eventfd2),
};

/* The sanitizer runtime (SANITIZE=1 builds) on a thread's way out: its
 * alternate signal stack is taken down. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_BUILD 1
#endif
static const int sanitizer_calls[] = {
	SCMP_SYS(sigaltstack),
};

/* A device's event loop: block I/O (raw, qcow2, both engines), TAP,
 * vsock's Unix sockets, the 9p server's file system calls, timers. */
static const int device_calls[] = {
	/* storage: flushes, discard/zeroes, qcow2 growing its file */
	SCMP_SYS(fdatasync), SCMP_SYS(fsync), SCMP_SYS(fallocate),
	SCMP_SYS(ftruncate), SCMP_SYS(preadv2), SCMP_SYS(pwritev2),
	SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter),
	SCMP_SYS(io_uring_register), SCMP_SYS(flock),
	/* vsock: host connections (socket: AF_UNIX only, below) */
	SCMP_SYS(connect), SCMP_SYS(accept4), SCMP_SYS(accept),
	SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg),
	SCMP_SYS(recvmsg), SCMP_SYS(shutdown), SCMP_SYS(getsockopt),
	SCMP_SYS(getsockname), SCMP_SYS(getpeername),
	SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),
	/* 9p (devices/p9_server.c): everything below a share's root */
	SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(statx),
	SCMP_SYS(fstatfs), SCMP_SYS(mkdirat), SCMP_SYS(mknodat),
	SCMP_SYS(symlinkat), SCMP_SYS(linkat), SCMP_SYS(unlinkat),
	SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(readlinkat),
	SCMP_SYS(fchmodat), SCMP_SYS(fchownat), SCMP_SYS(fchmod),
	SCMP_SYS(fchown), SCMP_SYS(utimensat), SCMP_SYS(getdents64),
	SCMP_SYS(fgetxattr), SCMP_SYS(fsetxattr), SCMP_SYS(flistxattr),
	SCMP_SYS(fremovexattr), SCMP_SYS(dup), SCMP_SYS(fadvise64),
	SCMP_SYS(geteuid), SCMP_SYS(getuid), SCMP_SYS(getegid),
	SCMP_SYS(getgid),
};

/* A vCPU: KVM_RUN and what its exits run here (UART, the exit port,
 * virtio-mmio registers: a device's activate and reset; the boot-ready
 * report's rusage and /proc/self/smaps, opened read-only). */
static const int vcpu_calls[] = {
	SCMP_SYS(rt_sigtimedwait),	/* taking a pending kick */
	SCMP_SYS(getrusage),
	/* a device reset from the guest: connections, fids, timers go */
	SCMP_SYS(shutdown), SCMP_SYS(timerfd_settime),
	SCMP_SYS(fdatasync), SCMP_SYS(fsync),
};

/* The per-VM service thread: console pipe, timeout, the exit (stopping
 * and joining the vCPUs, the register dump on a timeout). */
static const int service_calls[] = {
	SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(shutdown),
	SCMP_SYS(getrusage),
};

/* The command line's main thread after vmm_start: stdin/stdout, signals
 * by signalfd, the terminal, and vmm_destroy (every device's teardown:
 * the device set), then exit. */
static const int main_calls[] = {
	SCMP_SYS(rt_sigtimedwait), SCMP_SYS(unlink), SCMP_SYS(getrusage),
	SCMP_SYS(rt_sigaction),		/* the exit path (atexit, abort) */
};

/* ---- snapshot writer (issue #13): the calls a snapshot taken while the
 * VM runs needs.  Allowed to main and service, where the writer may run;
 * a writer on another kind of thread adds it there (see kinds[]).  The
 * vCPU state ioctls it reads are in snapshot_ioctls below. ---- */
static const int snapshot_calls[] = {
	SCMP_SYS(openat), SCMP_SYS(write), SCMP_SYS(pwrite64),
	SCMP_SYS(ftruncate), SCMP_SYS(fdatasync), SCMP_SYS(fsync),
	SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(renameat2),
	SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(mkdir),
	SCMP_SYS(mkdirat), SCMP_SYS(close), SCMP_SYS(lseek),
	SCMP_SYS(pread64),	/* /proc/self/pagemap: pages never touched */
	SCMP_SYS(fstat), SCMP_SYS(newfstatat),
};
static const unsigned long snapshot_ioctls[] = {
	KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_FPU, KVM_GET_MSRS,
	KVM_GET_LAPIC, KVM_GET_XSAVE, KVM_GET_XCRS, KVM_GET_VCPU_EVENTS,
	KVM_GET_DEBUGREGS, KVM_GET_MP_STATE, KVM_GET_IRQCHIP, KVM_GET_PIT2,
	KVM_GET_CLOCK, KVM_GET_XSAVE2, KVM_GET_CPUID2, KVM_GET_TSC_KHZ,
	KVM_GET_MSR_INDEX_LIST, KVM_CHECK_EXTENSION,
};
/* ---- end of the snapshot writer's place ---- */

/* ioctl requests by number (only the low 32 bits count: the kernel's
 * cmd is an unsigned int). */
static const unsigned long device_ioctls[] = {
	KVM_IRQ_LINE, KVM_IRQFD, KVM_IOEVENTFD,	/* interrupts, notifies */
	TUNSETOFFLOAD, TUNSETQUEUE,		/* TAP queues, offloads */
	FIONREAD,				/* events: what is queued */
};
static const unsigned long vcpu_ioctls[] = {
	KVM_RUN, KVM_SET_SIGNAL_MASK, KVM_GET_REGS, KVM_GET_SREGS,
	KVM_IRQ_LINE, KVM_IRQFD, KVM_IOEVENTFD,
	TUNSETOFFLOAD, TUNSETQUEUE, FIONREAD,
};
static const unsigned long service_ioctls[] = {
	KVM_GET_REGS, KVM_GET_SREGS,	/* the dump when the timeout fires */
	KVM_IRQ_LINE, FIONREAD,
};
static const unsigned long main_ioctls[] = {
	TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ,	/* restoring the tty */
	KVM_IRQ_LINE, KVM_IRQFD, KVM_IOEVENTFD, TUNSETOFFLOAD, TUNSETQUEUE,
	FIONREAD, KVM_GET_REGS, KVM_GET_SREGS,
};

#define LIST(a) { a, sizeof(a) / sizeof(a[0]) }
struct call_list { const int *nr; size_t n; };
struct ioctl_list { const unsigned long *req; size_t n; };

static const struct kind_rules {
	const char *name;
	struct call_list calls[3];
	struct ioctl_list ioctls[2];
	bool threads;		/* may start threads (clone with CLONE_THREAD) */
	bool any_open;		/* openat with any flags (else read-only) */
} kinds[VM_THREAD_KINDS] = {
	[VM_THREAD_PLAIN] = { .name = "plain" },
	[VM_THREAD_VCPU] = {
		"vcpu", { LIST(vcpu_calls) },
		{ LIST(vcpu_ioctls), LIST(snapshot_ioctls) }, false, false },
	[VM_THREAD_DEVICE] = {
		"device", { LIST(device_calls) }, { LIST(device_ioctls) },
		false, true },
	[VM_THREAD_SERVICE] = {
		"service", { LIST(service_calls), LIST(snapshot_calls) },
		{ LIST(service_ioctls), LIST(snapshot_ioctls) }, true, true },
	[VM_THREAD_MAIN] = {
		"main", { LIST(main_calls), LIST(device_calls),
			  LIST(snapshot_calls) },
		{ LIST(main_ioctls), LIST(snapshot_ioctls) }, true, true },
};

const char *vm_thread_kind_name(enum vm_thread_kind kind)
{
	return kind < VM_THREAD_KINDS ? kinds[kind].name : "?";
}

int vm_seccomp_parse(const char *s, enum vm_seccomp_mode *out)
{
	if (!s)
		return -1;
	if (!strcmp(s, "off"))
		*out = VM_SECCOMP_OFF;
	else if (!strcmp(s, "log"))
		*out = VM_SECCOMP_LOG;
	else if (!strcmp(s, "on"))
		*out = VM_SECCOMP_ON;
	else
		return -1;
	return 0;
}

int vm_seccomp_resolve(int value, enum vm_seccomp_mode *out, char *err,
		       size_t errlen)
{
	const char *env = getenv("VMM_SECCOMP");

	if (value >= 0) {
		*out = (enum vm_seccomp_mode)value;
		return 0;
	}
	if (!env || !*env) {
		*out = VM_SECCOMP_DEFAULT;
		return 0;
	}
	if (vm_seccomp_parse(env, out)) {
		snprintf(err, errlen,
			 "VMM_SECCOMP='%s' in the environment: expected on, log or off",
			 env);
		return -1;
	}
	return 0;
}

const char *vm_seccomp_mode_name(enum vm_seccomp_mode mode)
{
	return mode == VM_SECCOMP_OFF ? "off" : mode == VM_SECCOMP_LOG ? "log" : "on";
}

/* ---- the SIGSYS handler ---- */

/* Names looked up before any filter exists: the handler may only write. */
static const char *syscall_names[NAMED_SYSCALLS];
static enum vm_thread_kind violate_kind = VM_THREAD_KINDS;	/* none */
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static int setup_errno;

static size_t put_str(char *p, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		p[at++] = *s++;
	return at;
}

static size_t put_num(char *p, size_t at, size_t cap, long v)
{
	char d[24];
	int n = 0;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;

	do
		d[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < (int)sizeof(d));
	if (v < 0 && at < cap)
		p[at++] = '-';
	while (n && at < cap)
		p[at++] = d[--n];
	return at;
}

/* Async-signal-safe: only write, prctl(PR_GET_NAME) and exit_group. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char line[160], comm[17] = "";
	size_t n = 0;
	int nr = si->si_syscall;

	(void)sig;
	(void)uc;
	prctl(PR_GET_NAME, comm, 0, 0, 0);
	n = put_str(line, n, sizeof(line), "\nvmm: seccomp: forbidden syscall ");
	n = put_str(line, n, sizeof(line),
		    nr >= 0 && nr < NAMED_SYSCALLS && syscall_names[nr] ?
		    syscall_names[nr] : "?");
	n = put_str(line, n, sizeof(line), " (");
	n = put_num(line, n, sizeof(line), nr);
	n = put_str(line, n, sizeof(line), ") in thread ");
	n = put_str(line, n, sizeof(line), comm);
	n = put_str(line, n, sizeof(line), "\n");
	/* a leading newline: the console may be mid-line */
	if (write(STDERR_FILENO, line, n) < 0)
		n = 0;
	/* the raw call: a sanitizer's _exit would first scan for leaks */
	syscall(SYS_exit_group, EXIT_SECCOMP);
}

static void setup_process(void)
{
	struct sigaction sa;
	const char *v = getenv("VMM_TEST_SECCOMP_VIOLATE");

	for (int nr = 0; nr < NAMED_SYSCALLS; nr++)
		syscall_names[nr] = seccomp_syscall_resolve_num_arch(
			SCMP_ARCH_NATIVE, nr);
	for (unsigned k = VM_THREAD_VCPU; v && k < VM_THREAD_KINDS; k++)
		if (!strcmp(v, kinds[k].name))
			violate_kind = (enum vm_thread_kind)k;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL))
		setup_errno = errno;
}

/* ---- building a filter ---- */

static int add_calls(scmp_filter_ctx ctx, const struct call_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, l->nr[i], 0);

		/* -EEXIST: listed twice (kinds share lists) */
		if (r && r != -EEXIST)
			return r;
	}
	return 0;
}

static int add_ioctls(scmp_filter_ctx ctx, const struct ioctl_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					 SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL,
						 l->req[i] & 0xffffffffUL));

		if (r && r != -EEXIST)
			return r;
	}
	return 0;
}

/* The rules with arguments, and the calls every kind shares. */
static int add_checked(scmp_filter_ctx ctx, const struct kind_rules *k)
{
	pid_t pid = getpid();
	int r = 0;

	r |= add_calls(ctx, &(struct call_list)LIST(common_calls));
#ifdef SANITIZER_BUILD
	r |= add_calls(ctx, &(struct call_list)LIST(sanitizer_calls));
#else
	(void)sanitizer_calls;
#endif
	/* no executable memory */
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
			      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
			      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* thread names (pthread_setname_np on itself, the handler) */
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			      SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			      SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME));
	/* signals only within this process: the vCPU kick, abort() */
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
			      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)pid));
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigqueueinfo), 1,
			      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)pid));
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_tgsigqueueinfo), 1,
			      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)pid));
	/* glibc tries clone3 first and falls back to clone, whose flags a
	 * filter can see */
	r |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (k->threads)
		r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
					      CLONE_THREAD));
	/* vsock's host side is Unix sockets */
	if (k == &kinds[VM_THREAD_DEVICE] || k == &kinds[VM_THREAD_MAIN])
		r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				      SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	if (!k->any_open)	/* read-only opens (/proc/self/smaps) */
		r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ,
					      O_ACCMODE | O_CREAT | O_TRUNC,
					      O_RDONLY));
	return r;
}

int vm_seccomp_install(enum vm_thread_kind kind, enum vm_seccomp_mode mode,
		       char *err, size_t errlen)
{
	const struct kind_rules *k;
	scmp_filter_ctx ctx;
	uint32_t deny;
	int r;

	if (mode == VM_SECCOMP_OFF || kind == VM_THREAD_PLAIN ||
	    kind >= VM_THREAD_KINDS)
		return 0;
	k = &kinds[kind];
	pthread_once(&setup_once, setup_process);
	if (setup_errno) {
		snprintf(err, errlen, "seccomp: SIGSYS handler: %s",
			 strerror(setup_errno));
		return -setup_errno;
	}
	deny = mode == VM_SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
	ctx = seccomp_init(deny);
	if (!ctx) {
		snprintf(err, errlen, "seccomp: cannot create the %s filter",
			 k->name);
		return -ENOMEM;
	}
	/* another architecture's calls (int 0x80) get the same answer */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, deny);
	if (!r)
		r = add_checked(ctx, k) ? -EINVAL : 0;
	for (unsigned i = 0; !r && i < 3; i++)
		r = add_calls(ctx, &k->calls[i]);
	for (unsigned i = 0; !r && i < 2; i++)
		r = add_ioctls(ctx, &k->ioctls[i]);
	if (!r) {
		sigset_t sys;

		/* VMM threads block every signal: a blocked SIGSYS from a
		 * filter kills without a word, so this thread takes it */
		sigemptyset(&sys);
		sigaddset(&sys, SIGSYS);
		pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
		r = seccomp_load(ctx);
	}
	seccomp_release(ctx);
	if (r) {
		snprintf(err, errlen, "seccomp: cannot install the %s filter: %s",
			 k->name, strerror(-r));
		return r;
	}
	if (kind == violate_kind)	/* test-only: see seccomp.h */
		syscall(SYS_getppid);
	return 0;
}
