/* vmm/event_loop.c - an epoll loop on its own thread (see event_loop.h). */
#include "vmm/event_loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/thread.h"
#include "vmm/vm.h"

#define MAX_EVENTS 32

struct event_source {
	int fd;
	event_fn fn;
	void *opaque;
	struct event_source *next;
};

struct event_loop {
	char name[16];
	int epfd, stop_fd;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;		/* guards sources */
	struct event_source *sources;
};

struct event_loop *event_loop_create(const char *name)
{
	struct event_loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!l)
		return NULL;
	strncpy(l->name, name, sizeof(l->name) - 1);
	pthread_mutex_init(&l->lock, NULL);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ev.data.ptr = NULL;	/* NULL marks the stop fd */
	if (l->epfd < 0 || l->stop_fd < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stop_fd, &ev) < 0) {
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->stop_fd >= 0)
			close(l->stop_fd);
		free(l);
		return NULL;
	}
	return l;
}

int event_loop_add(struct event_loop *l, int fd, event_fn fn, void *opaque)
{
	struct event_source *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!s)
		return -ENOMEM;
	s->fd = fd;
	s->fn = fn;
	s->opaque = opaque;
	ev.data.ptr = s;
	pthread_mutex_lock(&l->lock);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = -errno;

		pthread_mutex_unlock(&l->lock);
		free(s);
		return e;
	}
	s->next = l->sources;
	l->sources = s;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

/* Only safe from the loop thread itself or when the loop is not running:
 * the source is freed at once. */
int event_loop_del(struct event_loop *l, int fd)
{
	struct event_source **pp, *s;
	int r = -ENOENT;

	pthread_mutex_lock(&l->lock);
	for (pp = &l->sources; (s = *pp); pp = &s->next)
		if (s->fd == fd) {
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
			*pp = s->next;
			free(s);
			r = 0;
			break;
		}
	pthread_mutex_unlock(&l->lock);
	return r;
}

static void *loop_thread(void *arg)
{
	struct event_loop *l = arg;
	struct epoll_event evs[MAX_EVENTS];
	int n, i;

	pthread_setname_np(pthread_self(), l->name);
	for (;;) {
		n = epoll_wait(l->epfd, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			vm_log(l->name, "epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (i = 0; i < n; i++) {
			struct event_source *s = evs[i].data.ptr;

			if (!s)
				return NULL;	/* stop requested */
			s->fn(s->opaque);
		}
	}
}

int event_loop_start(struct event_loop *l)
{
	int r = vm_thread_create_kind(&l->thread, VM_THREAD_DEVICE, l->name,
				      loop_thread, l);

	if (r)
		return -r;
	l->started = true;
	return 0;
}

void event_loop_destroy(struct event_loop *l)
{
	uint64_t one = 1;

	if (!l)
		return;
	if (l->started) {
		if (write(l->stop_fd, &one, sizeof(one)) < 0)
			vm_log(l->name, "cannot stop loop: %s", strerror(errno));
		pthread_join(l->thread, NULL);
	}
	while (l->sources) {
		struct event_source *s = l->sources;

		l->sources = s->next;
		free(s);
	}
	close(l->epfd);
	close(l->stop_fd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
