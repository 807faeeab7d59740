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

struct vm_events;

/* pthread_create with every signal blocked in the new thread and the
 * caller's VM context inherited.  0 or a positive errno (as pthread). */
int vm_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);

/* The calling thread's VM event sink (NULL: none), and setting it
 * (returns the previous one, to restore). */
struct vm_events *vm_thread_events(void);
struct vm_events *vm_thread_set_events(struct vm_events *ev);

#endif
