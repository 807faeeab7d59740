/* guest/agent/job.h - the agent's job language: parsed into steps.
 *
 * A job is a list of steps separated by newlines or ';'.  A step is an
 * operation name followed by key=value arguments, separated by spaces, tabs
 * or commas:   write path=/mnt/a/f,seed=7,size=1M
 * Values are %XX-decoded, so any byte can be given on a kernel command line.
 * The key "cmd" takes the rest of the step verbatim (spaces and commas
 * included).  Lines starting with '#' are comments.  See guest/linux/README.md.
 */
#ifndef GUEST_AGENT_JOB_H
#define GUEST_AGENT_JOB_H

#include <stddef.h>
#include <stdint.h>

#define JOB_MAX_STEPS	64
#define JOB_MAX_ARGS	12

struct job_arg {
	char *key;
	char *val;
};

struct job_step {
	char *op;
	int nargs;
	struct job_arg args[JOB_MAX_ARGS];
};

struct job {
	int nsteps;
	struct job_step steps[JOB_MAX_STEPS];
};

/* Parse text (modified in place; must outlive the job).  Returns 0, or -1
 * with a message in err naming the step at fault. */
int job_parse(char *text, struct job *job, char *err, size_t errlen);

/* The value of key in step, or NULL. */
const char *job_get(const struct job_step *step, const char *key);

/* Parse "123", "64K", "1M", "2G" (binary units) into *out; 0 or -1. */
int job_parse_size(const char *s, uint64_t *out);

/* Errno names the agent understands (for expect=), and back. */
int job_errno_from_name(const char *name);
const char *job_errno_name(int err);

#endif
