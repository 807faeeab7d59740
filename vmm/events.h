/* vmm/events.h - a VM's machine-readable events: one JSON object per line
 * (`{"event":"boot-ready",...}`, `{"event":"exit",...}`,
 * `{"event":"device-error",...}`; README "Events" has the list), written
 * to a pipe whose read end the library hands out (vmm_event_fd) and, with
 * --events file=PATH|fd=N, to that file or descriptor too.
 *
 * Bounded: at most EVENTS_DEVICE_ERRORS device-error lines per VM (each
 * at most EVENTS_LINE_MAX bytes), so a VM's whole life fits in the pipe
 * even if nobody reads it, and a write never blocks a vCPU or a device
 * thread; the exit line is always the last, then the pipe's write end is
 * closed (the reader sees end-of-file).
 *
 * Threads: emitting is thread safe (lines are written whole, in order).
 */
#ifndef VMM_EVENTS_H
#define VMM_EVENTS_H

#include <stddef.h>

#define EVENTS_LINE_MAX		512
#define EVENTS_DEVICE_ERRORS	64

struct vm_events;

/* extra_fd: where --events also writes (taken over: closed at destroy;
 * -1: nowhere).  NULL with one line in err. */
struct vm_events *vm_events_create(int extra_fd, char *err, size_t errlen);
/* The read end of the event pipe (owned by ev). */
int vm_events_fd(const struct vm_events *ev);
/* One line: fmt makes the members after "event" ("" for none), e.g.
 * vm_events_emit(ev, "boot-ready", "\"wall_ms\":%.3f", ms). */
void vm_events_emit(struct vm_events *ev, const char *event,
		    const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* vm_events_device_error(device, msg): declared in vmm/vm.h (devices
 * call it: the budgeted guest logger), defined in events.c. */
/* How many device errors were reported (also those past the cap). */
unsigned vm_events_device_errors(struct vm_events *ev);
/* No more lines: the reader sees end-of-file after what was written. */
void vm_events_close(struct vm_events *ev);
void vm_events_destroy(struct vm_events *ev);

/* s as the inside of a JSON string (quotes, backslashes, control and
 * non-ASCII bytes escaped), cut at out_size - 1 bytes; returns out. */
char *json_escape(char *out, size_t out_size, const char *s);

#endif
