/* guest/agent/job.c - parse the agent's job text into steps (see job.h). */
#include "guest/agent/job.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode %XX in place; a '%' not followed by two hex digits stays as is. */
static void percent_decode(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*w++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

static int is_sep(char c)
{
	return c == ' ' || c == '\t' || c == ',' || c == '\r';
}

/* Parse one step (a NUL-terminated piece of the job text). */
static int parse_step(char *s, struct job_step *st, int n, char *err,
		      size_t errlen)
{
	memset(st, 0, sizeof(*st));
	while (is_sep(*s))
		s++;
	st->op = s;
	while (*s && !is_sep(*s))
		s++;
	if (*s)
		*s++ = '\0';
	for (;;) {
		char *key, *eq;

		while (is_sep(*s))
			s++;
		if (!*s)
			break;
		key = s;
		eq = NULL;
		while (*s && !is_sep(*s)) {
			if (*s == '=' && !eq) {
				eq = s;
				if (s - key == 3 && !strncmp(key, "cmd", 3))
					break;	/* cmd= takes the rest */
			}
			s++;
		}
		if (!eq) {
			if (*s)
				*s = '\0';
			snprintf(err, errlen, "step %d (%s): argument '%s' is not key=value",
				 n, st->op, key);
			return -1;
		}
		if (st->nargs == JOB_MAX_ARGS) {
			snprintf(err, errlen, "step %d (%s): more than %d arguments",
				 n, st->op, JOB_MAX_ARGS);
			return -1;
		}
		*eq = '\0';
		st->args[st->nargs].key = key;
		st->args[st->nargs].val = eq + 1;
		st->nargs++;
		if (!strcmp(key, "cmd")) {
			char *end = eq + 1 + strlen(eq + 1);

			while (end > eq + 1 && (end[-1] == ' ' || end[-1] == '\r'))
				*--end = '\0';
			break;
		}
		if (*s)
			*s++ = '\0';
	}
	for (int i = 0; i < st->nargs; i++)
		percent_decode(st->args[i].val);
	return 0;
}

int job_parse(char *text, struct job *job, char *err, size_t errlen)
{
	char *s = text;

	job->nsteps = 0;
	while (*s) {
		char *end = s + strcspn(s, ";\n");
		char *p = s;
		int last = (*end == '\0');

		*end = '\0';
		while (is_sep(*p))
			p++;
		if (*p && *p != '#') {
			if (job->nsteps == JOB_MAX_STEPS) {
				snprintf(err, errlen, "more than %d steps", JOB_MAX_STEPS);
				return -1;
			}
			if (parse_step(p, &job->steps[job->nsteps], job->nsteps + 1,
				       err, errlen))
				return -1;
			job->nsteps++;
		}
		if (last)
			break;
		s = end + 1;
	}
	if (job->nsteps == 0) {
		snprintf(err, errlen, "the job has no steps");
		return -1;
	}
	return 0;
}

const char *job_get(const struct job_step *step, const char *key)
{
	for (int i = 0; i < step->nargs; i++)
		if (!strcmp(step->args[i].key, key))
			return step->args[i].val;
	return NULL;
}

int job_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end || (shift && v > (~0ULL >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static const struct {
	int err;
	const char *name;
} errnames[] = {
	{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { EIO, "EIO" },
	{ ENXIO, "ENXIO" }, { EBADF, "EBADF" }, { EACCES, "EACCES" },
	{ EBUSY, "EBUSY" }, { EEXIST, "EEXIST" }, { ENODEV, "ENODEV" },
	{ ENOTDIR, "ENOTDIR" }, { EISDIR, "EISDIR" }, { EINVAL, "EINVAL" },
	{ EFBIG, "EFBIG" }, { ENOSPC, "ENOSPC" }, { EROFS, "EROFS" },
	{ ENAMETOOLONG, "ENAMETOOLONG" }, { ENOTBLK, "ENOTBLK" },
	{ EDQUOT, "EDQUOT" }, { ETIMEDOUT, "ETIMEDOUT" },
	{ EUCLEAN, "EUCLEAN" }, { ENOMEM, "ENOMEM" }, { EFAULT, "EFAULT" },
	{ ENOTEMPTY, "ENOTEMPTY" }, { EOPNOTSUPP, "EOPNOTSUPP" },
	{ ENOEXEC, "ENOEXEC" }, { ECHILD, "ECHILD" }, { EILSEQ, "EILSEQ" },
};

int job_errno_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (!strcmp(errnames[i].name, name))
			return errnames[i].err;
	return 0;
}

const char *job_errno_name(int err)
{
	static char buf[16];

	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].err == err)
			return errnames[i].name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}
