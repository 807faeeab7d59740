/* vmm/events.c - a VM's JSON-lines event stream (see events.h). */
#include "vmm/events.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/thread.h"
#include "vmm/vm.h"

/* device-error lines stop when the pipe holds this much unread, keeping
 * room for the exit line whatever the pipe's size */
#define EVENTS_RESERVE	(2 * EVENTS_LINE_MAX)

struct vm_events {
	pthread_mutex_t lock;
	int rd, wr;		/* the pipe; wr -1 once closed */
	int extra_fd;		/* --events file/fd, -1: none */
	int pipe_size;
	unsigned device_errors;	/* reported */
	unsigned device_lines;	/* written */
};

struct vm_events *vm_events_create(int extra_fd, char *err, size_t errlen)
{
	struct vm_events *ev = calloc(1, sizeof(*ev));
	int p[2];

	if (!ev || pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "event pipe: %s", strerror(errno));
		free(ev);
		if (extra_fd >= 0)
			close(extra_fd);
		return NULL;
	}
	/* a reader that never reads must not stall the VM */
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	ev->pipe_size = fcntl(p[1], F_GETPIPE_SZ);
	if (ev->pipe_size <= 0)
		ev->pipe_size = 4096;
	pthread_mutex_init(&ev->lock, NULL);
	ev->rd = p[0];
	ev->wr = p[1];
	ev->extra_fd = extra_fd;
	return ev;
}

int vm_events_fd(const struct vm_events *ev)
{
	return ev->rd;
}

/* With ev->lock held: write one formatted line everywhere.  device: a
 * device-error line, written only while the pipe has room to spare. */
static void emit_locked(struct vm_events *ev, bool device, const char *line,
			size_t n)
{
	int queued = 0;

	if (ev->wr < 0)
		return;
	if (device && (ioctl(ev->rd, FIONREAD, &queued) < 0 ||
		       queued + (int)n + EVENTS_RESERVE > ev->pipe_size))
		return;
	/* one write of at most PIPE_BUF bytes: whole or not at all */
	if (write(ev->wr, line, n) < 0 && errno != EAGAIN)
		return;
	if (ev->extra_fd >= 0)
		write_all(ev->extra_fd, line, n);	/* reader gone: nothing to tell */
}

static size_t format_line(char *line, const char *event, const char *fmt,
			  va_list ap)
{
	int n = snprintf(line, EVENTS_LINE_MAX, "{\"event\":\"%s\"", event);

	if (fmt[0] && n < EVENTS_LINE_MAX - 3) {
		line[n++] = ',';
		n += vsnprintf(line + n, (size_t)(EVENTS_LINE_MAX - 3 - n), fmt, ap);
	}
	if (n > EVENTS_LINE_MAX - 3)
		n = EVENTS_LINE_MAX - 3;	/* callers keep well below */
	line[n++] = '}';
	line[n++] = '\n';
	line[n] = '\0';
	return (size_t)n;
}

void vm_events_emit(struct vm_events *ev, const char *event,
		    const char *fmt, ...)
{
	char line[EVENTS_LINE_MAX];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = format_line(line, event, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&ev->lock);
	emit_locked(ev, false, line, n);
	pthread_mutex_unlock(&ev->lock);
}

void vm_events_device_error(const char *device, const char *msg)
{
	struct vm_events *ev = vm_thread_events();
	char dev[64], text[300], line[EVENTS_LINE_MAX];
	size_t n;

	if (!ev)
		return;
	json_escape(dev, sizeof(dev), device ? device : "");
	json_escape(text, sizeof(text), msg);
	n = (size_t)snprintf(line, sizeof(line),
			     "{\"event\":\"device-error\",\"device\":\"%s\","
			     "\"kind\":\"%s\",\"message\":\"%s\"}\n", dev,
			     strncmp(msg, "I/O error", 9) ? "guest" : "io", text);
	pthread_mutex_lock(&ev->lock);
	ev->device_errors++;
	if (ev->device_lines < EVENTS_DEVICE_ERRORS) {
		ev->device_lines++;
		emit_locked(ev, true, line, n);
	}
	pthread_mutex_unlock(&ev->lock);
}

unsigned vm_events_device_errors(struct vm_events *ev)
{
	unsigned n;

	pthread_mutex_lock(&ev->lock);
	n = ev->device_errors;
	pthread_mutex_unlock(&ev->lock);
	return n;
}

void vm_events_close(struct vm_events *ev)
{
	pthread_mutex_lock(&ev->lock);
	if (ev->wr >= 0)
		close(ev->wr);
	ev->wr = -1;
	pthread_mutex_unlock(&ev->lock);
}

void vm_events_destroy(struct vm_events *ev)
{
	if (!ev)
		return;
	vm_events_close(ev);
	close(ev->rd);
	if (ev->extra_fd >= 0)
		close(ev->extra_fd);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}

char *json_escape(char *out, size_t out_size, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[7];
		size_t k = 0;

		if (c == '"' || c == '\\') {
			esc[k++] = '\\';
			esc[k++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			/* bytes as code points: valid JSON whatever the input */
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			k = 6;
		} else {
			esc[k++] = (char)c;
		}
		if (o + k + 1 > out_size)
			break;
		memcpy(out + o, esc, k);
		o += k;
	}
	if (out_size)
		out[o] = '\0';
	return out;
}
