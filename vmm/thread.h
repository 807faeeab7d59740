/* vmm/thread.h - the threads the VMM creates (vCPUs, device loops, the
 * per-VM service thread), and which VM a thread works for.
 *
 * Library rules these enforce: a VMM thread blocks every signal, so the
 * embedding program's signals (SIGINT, SIGCHLD, SIGPIPE from a closed
 * pipe...) are never taken by one of ours; only KVM_RUN unblocks the vCPU
 * kick (vcpu.c).  And each thread knows its VM's event sink (the "thread
 * VM context"), inherited from the thread that created it, so code that
 * has no struct vm at hand (the budgeted guest logger) can still report to
 * the right VM when several run in one process.
 */
#ifndef VMM_THREAD_H
#define VMM_THREAD_H

#include <pthread.h>

#include "vmm/seccomp.h"

struct vm_events;

/* pthread_create with every signal blocked in the new thread and the
 * caller's VM context inherited.  0 or a positive errno (as pthread).
 * Never filtered (VM_THREAD_PLAIN): threads that do setup only. */
int vm_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);

/* The same for a thread of the given kind, named name (comm, at most 15
 * bytes): it installs its seccomp filter (the mode of the calling
 * thread's VM context, vm_thread_set_seccomp) before fn runs.  A filter
 * that cannot be installed is an error (logged; the thread never runs fn
 * and is joined here). */
int vm_thread_create_kind(pthread_t *t, enum vm_thread_kind kind,
			  const char *name, void *(*fn)(void *), void *arg);

/* The calling thread's seccomp mode for the threads it creates (inherited
 * like the event sink; VM_SECCOMP_OFF when never set), and setting it
 * (returns the previous one). */
enum vm_seccomp_mode vm_thread_seccomp(void);
enum vm_seccomp_mode vm_thread_set_seccomp(enum vm_seccomp_mode mode);

/* The calling thread's VM event sink (NULL: none), and setting it
 * (returns the previous one, to restore). */
struct vm_events *vm_thread_events(void);
struct vm_events *vm_thread_set_events(struct vm_events *ev);

#endif
