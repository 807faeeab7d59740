/* guest/agent/report.h - one JSON object per line on stdout (the console).
 * Each line is built in memory and written with a single write(2), so a
 * kernel message cannot land in the middle of it more than it must.
 */
#ifndef GUEST_AGENT_REPORT_H
#define GUEST_AGENT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct report {
	char buf[8192];
	size_t len;
	bool first;
};

void report_begin(struct report *r);
void report_str(struct report *r, const char *key, const char *val);
/* val of length n, bytes outside printable ASCII escaped */
void report_strn(struct report *r, const char *key, const char *val, size_t n);
void report_int(struct report *r, const char *key, int64_t val);
void report_bool(struct report *r, const char *key, bool val);
void report_end(struct report *r);	/* appends "}\n" and writes it */

#endif
