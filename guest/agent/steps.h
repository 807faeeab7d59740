/* guest/agent/steps.h - the operations a job step can name. */
#ifndef GUEST_AGENT_STEPS_H
#define GUEST_AGENT_STEPS_H

#include <stdbool.h>
#include <stddef.h>

#include "guest/agent/job.h"
#include "guest/agent/report.h"

/* What a failed step says: errno (0 if the failure has none) and why. */
struct step_result {
	int err;
	bool bad_args;	/* the step was written wrong: expect= cannot pass it */
	char msg[256];
};

struct step_op {
	const char *name;
	/* the arguments it takes, space separated ("expect" is always allowed) */
	const char *keys;
	/* 0 on success; -1 with res filled in.  Adds its own fields to r. */
	int (*run)(const struct job_step *st, struct report *r,
		   struct step_result *res);
};

const struct step_op *step_op_find(const char *name);

/* Fill res for a failed step and return -1: the message, err (its
 * strerror appended unless the step was written wrong, bad) and bad. */
int step_fail(struct step_result *res, int err, bool bad, const char *fmt,
	      ...) __attribute__((format(printf, 4, 5)));

/* Read a small file (/proc and /sys ones come in pieces) to its end, at
 * most size - 1 bytes, NUL-terminated: its length, or -1 (errno) when it
 * cannot be opened. */
int read_file(const char *path, char *buf, size_t size);

/* Find the block device whose /sys/block/NAME/serial is serial; writes
 * "/dev/NAME" to dev.  0, or -1 if there is none. */
int find_disk_by_serial(const char *serial, char *dev, size_t devlen);

/* Unmount, newest first, what the job mounted and left mounted.  Returns
 * how many failed (reported one line each). */
int steps_unmount_all(void);

#endif
