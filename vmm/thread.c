/* vmm/thread.c - VMM threads: every signal blocked, VM context inherited,
 * each kind under its seccomp filter (see thread.h). */
#include "vmm/thread.h"

#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vm.h"

static __thread struct vm_events *thread_events;
static __thread enum vm_seccomp_mode thread_seccomp;

struct vm_events *vm_thread_events(void)
{
	return thread_events;
}

struct vm_events *vm_thread_set_events(struct vm_events *ev)
{
	struct vm_events *old = thread_events;

	thread_events = ev;
	return old;
}

enum vm_seccomp_mode vm_thread_seccomp(void)
{
	return thread_seccomp;
}

enum vm_seccomp_mode vm_thread_set_seccomp(enum vm_seccomp_mode mode)
{
	enum vm_seccomp_mode old = thread_seccomp;

	thread_seccomp = mode;
	return old;
}

/* On the creator's stack until the new thread posts ready. */
struct thread_start {
	void *(*fn)(void *);
	void *arg;
	struct vm_events *events;
	enum vm_seccomp_mode seccomp;
	enum vm_thread_kind kind;
	const char *name;
	sem_t ready;
	int result;		/* 0, or -errno: the filter failed */
	char err[160];
};

static void *thread_main(void *p)
{
	struct thread_start *s = p;
	void *(*fn)(void *) = s->fn;
	void *arg = s->arg;

	thread_events = s->events;
	thread_seccomp = s->seccomp;
	if (s->name)	/* before the filter: the SIGSYS line names it */
		pthread_setname_np(pthread_self(), s->name);
	s->result = vm_seccomp_install(s->kind, s->seccomp, s->err,
				       sizeof(s->err));
	if (s->result) {
		sem_post(&s->ready);
		return NULL;
	}
	sem_post(&s->ready);	/* s is gone from here on */
	return fn(arg);
}

int vm_thread_create_kind(pthread_t *t, enum vm_thread_kind kind,
			  const char *name, void *(*fn)(void *), void *arg)
{
	struct thread_start s = {
		.fn = fn, .arg = arg, .events = thread_events,
		.seccomp = thread_seccomp, .kind = kind, .name = name,
	};
	sigset_t all, old;
	int r;

	if (sem_init(&s.ready, 0, 0))
		return errno;
	/* the new thread inherits the mask in force at pthread_create */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(t, NULL, thread_main, &s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!r) {
		while (sem_wait(&s.ready) && errno == EINTR)
			;
		if (s.result) {
			pthread_join(*t, NULL);
			vm_log("vmm", "%s", s.err);
			r = -s.result;
		}
	}
	sem_destroy(&s.ready);
	return r;
}

int vm_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	return vm_thread_create_kind(t, VM_THREAD_PLAIN, NULL, fn, arg);
}
