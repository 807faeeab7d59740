/* guest/agent/step_plan.c - stat, chown, statfs and count: what the test
 * plans (tools/plans/) check of files in the guest, done by the agent
 * itself so a plan needs no shell step (and no busybox) for them. */
#include "guest/agent/step_plan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "guest/agent/steps.h"

#define COUNT_READ_MAX	(1 << 20)

static int need_path(const struct job_step *st, const char **path,
		     struct step_result *res)
{
	*path = job_get(st, "path");
	if (!*path || !**path)
		return step_fail(res, EINVAL, true, "path= is required");
	return 0;
}

/* A decimal or octal number argument; -1 if absent, -2 if malformed. */
static long num_arg(const struct job_step *st, const char *key, int base)
{
	const char *v = job_get(st, key);
	char *end;
	long n;

	if (!v)
		return -1;
	errno = 0;
	n = strtol(v, &end, base);
	if (!*v || *end || errno || n < 0)
		return -2;
	return n;
}

int op_stat(const struct job_step *st, struct report *r,
	    struct step_result *res)
{
	const char *path, *want = job_get(st, "want");
	char got[64];
	struct stat sb;

	if (need_path(st, &path, res))
		return -1;
	report_str(r, "path", path);
	if (lstat(path, &sb))
		return step_fail(res, errno, false, "stat %s", path);
	snprintf(got, sizeof(got), "%u:%u:%o", (unsigned)sb.st_uid,
		 (unsigned)sb.st_gid, (unsigned)(sb.st_mode & 07777));
	report_int(r, "uid", sb.st_uid);
	report_int(r, "gid", sb.st_gid);
	report_str(r, "owner", got);
	report_int(r, "size", sb.st_size);
	report_int(r, "nlink", (int64_t)sb.st_nlink);
	if (want && strcmp(want, got))
		return step_fail(res, 0, false, "%s is %s, not %s", path, got, want);
	return 0;
}

int op_chown(const struct job_step *st, struct report *r,
	     struct step_result *res)
{
	const char *path;
	long uid = num_arg(st, "uid", 10), gid = num_arg(st, "gid", 10);
	long mode = num_arg(st, "mode", 8);

	if (need_path(st, &path, res))
		return -1;
	if (uid == -2 || gid == -2 || mode == -2 || mode > 07777)
		return step_fail(res, EINVAL, true,
				 "uid=/gid= take decimal ids, mode= an octal mode");
	report_str(r, "path", path);
	if ((uid >= 0 || gid >= 0) &&
	    lchown(path, uid >= 0 ? (uid_t)uid : (uid_t)-1,
		   gid >= 0 ? (gid_t)gid : (gid_t)-1))
		return step_fail(res, errno, false, "chown %s", path);
	if (mode >= 0 && chmod(path, (mode_t)mode))
		return step_fail(res, errno, false, "chmod %s", path);
	return 0;
}

int op_statfs(const struct job_step *st, struct report *r,
	      struct step_result *res)
{
	const char *path;
	char type[24];
	struct statfs sf;

	if (need_path(st, &path, res))
		return -1;
	report_str(r, "path", path);
	if (statfs(path, &sf))
		return step_fail(res, errno, false, "statfs %s", path);
	snprintf(type, sizeof(type), "0x%lx", (unsigned long)sf.f_type);
	report_str(r, "type", type);
	report_int(r, "size_kib", (int64_t)(sf.f_blocks * sf.f_bsize / 1024));
	report_int(r, "free_kib", (int64_t)(sf.f_bavail * sf.f_bsize / 1024));
	return 0;
}

int op_count(const struct job_step *st, struct report *r,
	     struct step_result *res)
{
	const char *path, *match = job_get(st, "match");
	long want = num_arg(st, "want", 10);
	char *buf;
	int lines = 0;

	if (need_path(st, &path, res))
		return -1;
	if (!match || !*match || want == -2)
		return step_fail(res, EINVAL, true,
				 "match=TEXT is required; want= takes a count");
	report_str(r, "path", path);
	report_str(r, "match", match);
	buf = malloc(COUNT_READ_MAX + 1);
	if (!buf)
		return step_fail(res, ENOMEM, false, "buffer");
	if (read_file(path, buf, COUNT_READ_MAX + 1) < 0) {
		step_fail(res, errno, false, "open %s", path);
		free(buf);
		return -1;
	}
	for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strstr(line, match))
			lines++;
	}
	free(buf);
	report_int(r, "count", lines);
	if (want >= 0 && lines != want)
		return step_fail(res, 0, false, "%d lines of %s hold '%s', not %ld",
				 lines, path, match, want);
	return 0;
}

int op_disklink(const struct job_step *st, struct report *r,
		struct step_result *res)
{
	const char *serial = job_get(st, "serial"), *path;
	char dev[64];

	if (need_path(st, &path, res))
		return -1;
	if (!serial || !*serial)
		return step_fail(res, EINVAL, true, "serial= is required");
	report_str(r, "serial", serial);
	if (find_disk_by_serial(serial, dev, sizeof(dev)))
		return step_fail(res, ENODEV, false, "no disk with serial '%s'", serial);
	report_str(r, "dev", dev);
	report_str(r, "path", path);
	unlink(path);
	if (symlink(dev, path))
		return step_fail(res, errno, false, "symlink %s", path);
	return 0;
}
