/* vmm/thread.c - VMM threads: every signal blocked, VM context inherited
 * (see thread.h). */
#include "vmm/thread.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

static __thread struct vm_events *thread_events;

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

struct thread_start {
	void *(*fn)(void *);
	void *arg;
	struct vm_events *events;
};

static void *thread_main(void *p)
{
	struct thread_start s = *(struct thread_start *)p;

	free(p);
	thread_events = s.events;
	return s.fn(s.arg);
}

int vm_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	struct thread_start *s = malloc(sizeof(*s));
	sigset_t all, old;
	int r;

	if (!s)
		return ENOMEM;
	*s = (struct thread_start){ fn, arg, thread_events };
	/* the new thread inherits the mask in force at pthread_create */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(t, NULL, thread_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		free(s);
	return r;
}
