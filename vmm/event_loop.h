/* vmm/event_loop.h - an epoll loop on its own thread.  Devices hang their
 * eventfds (queue notifies, io_uring completions) on one so that no device
 * work runs on a vCPU thread. */
#ifndef VMM_EVENT_LOOP_H
#define VMM_EVENT_LOOP_H

struct event_loop;

typedef void (*event_fn)(void *opaque);

/* name shows up in thread names (comm) and log lines */
struct event_loop *event_loop_create(const char *name);
/* Call fn(opaque) on the loop thread whenever fd is readable.  Allowed
 * before or after start, from any thread. */
int event_loop_add(struct event_loop *l, int fd, event_fn fn, void *opaque);
int event_loop_del(struct event_loop *l, int fd);
int event_loop_start(struct event_loop *l);
/* Stop the thread (after the handler that is running returns) and free. */
void event_loop_destroy(struct event_loop *l);

#endif
