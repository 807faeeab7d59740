/* vmm/seccomp.h - the seccomp-bpf sandbox: one filter per thread kind,
 * installed by each VMM thread on itself once setup is over.
 *
 * A filter allows the system calls (and ioctl requests, by number) its
 * kind of thread needs and nothing else.  With mode ON anything else
 * traps: a SIGSYS handler writes one line naming the call and the thread,
 *   vmm: seccomp: forbidden syscall openat (257) in thread vcpu0
 * and ends the process with status 70 (VMM_EXIT_INTERNAL).  With LOG the
 * call goes through and the kernel logs it (audit type 1326, dmesg).
 * Filters are per thread: a program embedding the library keeps its own
 * threads unfiltered; only the command line's main thread filters itself
 * (vm_seccomp_install(VM_THREAD_MAIN, ...) after vmm_start). */
#ifndef VMM_SECCOMP_H
#define VMM_SECCOMP_H

#include <stddef.h>

enum vm_seccomp_mode { VM_SECCOMP_OFF, VM_SECCOMP_LOG, VM_SECCOMP_ON };

/* The default of --seccomp: on, except in sanitizer builds, whose runtime
 * (LeakSanitizer's exit-time scan attaches to every thread with ptrace
 * from a clone) makes calls no VMM thread does: there it is log. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VM_SECCOMP_DEFAULT VM_SECCOMP_LOG
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VM_SECCOMP_DEFAULT VM_SECCOMP_LOG
#endif
#endif
#ifndef VM_SECCOMP_DEFAULT
#define VM_SECCOMP_DEFAULT VM_SECCOMP_ON
#endif

/* What a thread does decides what it may call (see seccomp.c). */
enum vm_thread_kind {
	VM_THREAD_PLAIN,	/* never filtered: setup helpers, tests */
	VM_THREAD_VCPU,		/* KVM_RUN and the exits it hands us */
	VM_THREAD_DEVICE,	/* a device's event loop: its I/O */
	VM_THREAD_SERVICE,	/* per VM: console, timeout, the exit */
	VM_THREAD_MAIN,		/* the command line's main thread */
	VM_THREAD_KINDS
};

/* A config's mode: value (an enum vm_seccomp_mode, or -1 when no
 * --seccomp was given: then VMM_SECCOMP from the environment if set, else
 * VM_SECCOMP_DEFAULT).  0, or -1 with one line in err (a bad VMM_SECCOMP). */
int vm_seccomp_resolve(int value, enum vm_seccomp_mode *out, char *err,
		       size_t errlen);

/* "vcpu", "device", "service", "main" ("plain"). */
const char *vm_thread_kind_name(enum vm_thread_kind kind);

/* "off", "log", "on" <-> the mode; parse returns -1 for anything else. */
int vm_seccomp_parse(const char *s, enum vm_seccomp_mode *out);
const char *vm_seccomp_mode_name(enum vm_seccomp_mode mode);

/* Install kind's filter on the calling thread (nothing for OFF or
 * VM_THREAD_PLAIN); the first call also installs the process's SIGSYS
 * handler.  0, or -errno with one line in err.  If
 * VMM_TEST_SECCOMP_VIOLATE names kind (test-only, read once per process),
 * the thread then makes a forbidden call on purpose. */
int vm_seccomp_install(enum vm_thread_kind kind, enum vm_seccomp_mode mode,
		       char *err, size_t errlen);

#endif
