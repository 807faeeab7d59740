/* guest/agent/report.c - JSON result lines (see report.h). */
#include "guest/agent/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Room kept free for the closing "}\n".  Callers cap their strings so a
 * line never needs cutting (the longest, sh output, is 1 KiB before escaping). */
#define REPORT_RESERVE 8

static void put(struct report *r, const char *s, size_t n)
{
	size_t room = sizeof(r->buf) - REPORT_RESERVE - r->len;

	if (n > room)
		n = room;
	memcpy(r->buf + r->len, s, n);
	r->len += n;
}

static void puts_(struct report *r, const char *s)
{
	put(r, s, strlen(s));
}

static void key(struct report *r, const char *k)
{
	if (!r->first)
		put(r, ",", 1);
	r->first = false;
	put(r, "\"", 1);
	puts_(r, k);
	put(r, "\":", 2);
}

void report_begin(struct report *r)
{
	r->len = 0;
	r->first = true;
	put(r, "{", 1);
}

void report_strn(struct report *r, const char *k, const char *val, size_t n)
{
	key(r, k);
	put(r, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)val[i];
		char esc[8];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(r, esc, 2);
		} else if (c == '\n') {
			put(r, "\\n", 2);
		} else if (c == '\t') {
			put(r, "\\t", 2);
		} else if (c < 0x20 || c >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(r, esc, 6);
		} else {
			put(r, (const char *)&c, 1);
		}
	}
	put(r, "\"", 1);
}

void report_str(struct report *r, const char *k, const char *val)
{
	report_strn(r, k, val, strlen(val));
}

void report_int(struct report *r, const char *k, int64_t val)
{
	char num[24];

	key(r, k);
	snprintf(num, sizeof(num), "%" PRId64, val);
	puts_(r, num);
}

void report_bool(struct report *r, const char *k, bool val)
{
	key(r, k);
	puts_(r, val ? "true" : "false");
}

void report_end(struct report *r)
{
	const char *p = r->buf;
	size_t n;

	memcpy(r->buf + r->len, "}\n", 2);
	r->len += 2;
	n = r->len;
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		n -= (size_t)w;
	}
	/* Wait until the UART has sent it: the kernel's console messages
	 * bypass the tty buffer and would land inside a line still queued
	 * (e.g. the mount message of the next step).  ENOTTY off a console. */
	tcdrain(STDOUT_FILENO);
}
