/* guest/agent/steps.c - the job step operations: mount, tmpfs, write,
 * verify, sh, sync, umount, mkdir, echo, sleep, poweroff. */
#include "guest/agent/steps.h"
#include "guest/agent/vsock_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest/agent/step_net.h"
#include "guest/agent/step_plan.h"
#include "guest/common/pattern.h"
#include "guest/common/vmm_abi.h"

#define SH_OUTPUT_MAX	1024	/* bytes of a command's output reported */
#define MAX_MOUNTS	16

static char mounted[MAX_MOUNTS][256];
static int nmounted;

static int step_vfail(struct step_result *res, int err, bool bad,
		      const char *fmt, va_list ap)
{
	size_t n;

	vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
	res->err = err;
	res->bad_args = bad;
	if (err && !bad) {
		n = strlen(res->msg);
		snprintf(res->msg + n, sizeof(res->msg) - n, ": %s", strerror(err));
	}
	return -1;
}

int step_fail(struct step_result *res, int err, bool bad, const char *fmt,
	      ...)
{
	va_list ap;

	va_start(ap, fmt);
	step_vfail(res, err, bad, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail(struct step_result *res, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct step_result *res, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	step_vfail(res, err, false, fmt, ap);
	va_end(ap);
	return -1;
}

/* A mistake in the job itself, not a failure of the operation. */
static int bad_args(struct step_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad_args(struct step_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	step_vfail(res, EINVAL, true, fmt, ap);
	va_end(ap);
	return -1;
}

int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;

	if (fd < 0)
		return -1;
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (int)len;
}

static int need(const struct job_step *st, const char *key, const char **val,
		struct step_result *res)
{
	*val = job_get(st, key);
	if (!*val || !**val)
		return bad_args(res, "%s= is required", key);
	return 0;
}

static int size_arg(const struct job_step *st, const char *key, uint64_t dflt,
		    uint64_t *out, struct step_result *res)
{
	const char *v = job_get(st, key);

	*out = dflt;
	if (v && job_parse_size(v, out))
		return bad_args(res, "%s=%s is not a size", key, v);
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[256];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, mode) && errno != EEXIST)
				return -1;
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

static void remember_mount(const char *at)
{
	if (nmounted < MAX_MOUNTS)
		snprintf(mounted[nmounted++], sizeof(mounted[0]), "%s", at);
}

static void forget_mount(const char *at)
{
	for (int i = nmounted - 1; i >= 0; i--) {
		if (!strcmp(mounted[i], at)) {
			memmove(mounted[i], mounted[i + 1],
				(size_t)(nmounted - i - 1) * sizeof(mounted[0]));
			nmounted--;
			return;
		}
	}
}

int find_disk_by_serial(const char *serial, char *dev, size_t devlen)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int found = -1;

	if (!d)
		return -1;
	while (found && (e = readdir(d))) {
		char path[300], buf[64];
		ssize_t n;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/serial", e->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n < 0)
			continue;
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' ||
				 buf[n - 1] == '\0'))
			n--;
		buf[n] = '\0';
		if (!strcmp(buf, serial)) {
			snprintf(dev, devlen, "/dev/%s", e->d_name);
			found = 0;
		}
	}
	closedir(d);
	return found;
}

/* mount serial=S|dev=NAME at=DIR [fs=ext4] [opts=ro:noatime:...] */
static int op_mount(const struct job_step *st, struct report *r,
		    struct step_result *res)
{
	static const struct {
		const char *name;
		unsigned long flag;
	} flags[] = {
		{ "ro", MS_RDONLY }, { "rw", 0 }, { "noatime", MS_NOATIME },
		{ "relatime", MS_RELATIME }, { "nodev", MS_NODEV },
		{ "nosuid", MS_NOSUID }, { "noexec", MS_NOEXEC },
		{ "sync", MS_SYNCHRONOUS }, { "dirsync", MS_DIRSYNC },
	};
	const char *serial = job_get(st, "serial"), *dev = job_get(st, "dev");
	const char *fs = job_get(st, "fs"), *opts = job_get(st, "opts");
	const char *at;
	char devpath[64], optbuf[256], data[256] = "";
	unsigned long mflags = 0;
	struct stat sb;

	if (need(st, "at", &at, res))
		return -1;
	if (!fs)
		fs = "ext4";
	if (!serial == !dev)
		return bad_args(res, "give one of serial= or dev=");
	if (serial) {
		report_str(r, "serial", serial);
		if (find_disk_by_serial(serial, devpath, sizeof(devpath)))
			return fail(res, ENODEV, "no disk with serial '%s'", serial);
	} else {
		snprintf(devpath, sizeof(devpath), "%s%s",
			 dev[0] == '/' ? "" : "/dev/", dev);
	}
	report_str(r, "dev", devpath);
	report_str(r, "at", at);
	report_str(r, "fs", fs);
	if (stat(devpath, &sb))
		return fail(res, errno == ENOENT ? ENODEV : errno,
			    "no disk %s", devpath);
	snprintf(optbuf, sizeof(optbuf), "%s", opts ? opts : "rw");
	report_str(r, "opts", optbuf);
	for (char *save = NULL, *o = strtok_r(optbuf, ":", &save); o;
	     o = strtok_r(NULL, ":", &save)) {
		size_t i;

		for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
			if (!strcmp(o, flags[i].name))
				break;
		if (i < sizeof(flags) / sizeof(flags[0])) {
			mflags |= flags[i].flag;
		} else {	/* fs-specific: passed on as mount data */
			size_t n = strlen(data);

			snprintf(data + n, sizeof(data) - n, "%s%s", n ? "," : "", o);
		}
	}
	if (mkdir_p(at, 0755))
		return fail(res, errno, "mkdir %s", at);
	if (mount(devpath, at, fs, mflags, data[0] ? data : NULL))
		return fail(res, errno, "mount %s on %s (%s)", devpath, at, fs);
	remember_mount(at);
	return 0;
}

/* mount9p tag=T at=DIR [opts=ro:noatime:cache=loose:...] [msize=N]: a
 * host directory shared by vmm's --fs (virtio-9p, 9P2000.L).  opts are
 * the mount step's flags; the others go to 9p after trans=virtio,
 * version=9p2000.L,msize=N (default 512000, the most Linux 6.1's virtio
 * transport takes). */
static int op_mount9p(const struct job_step *st, struct report *r,
		      struct step_result *res)
{
	static const struct {
		const char *name;
		unsigned long flag;
	} flags[] = {
		{ "ro", MS_RDONLY }, { "rw", 0 }, { "noatime", MS_NOATIME },
		{ "relatime", MS_RELATIME }, { "nodev", MS_NODEV },
		{ "nosuid", MS_NOSUID }, { "noexec", MS_NOEXEC },
		{ "sync", MS_SYNCHRONOUS }, { "dirsync", MS_DIRSYNC },
	};
	const char *tag, *at, *opts = job_get(st, "opts");
	char optbuf[256], data[400];
	unsigned long mflags = 0;
	uint64_t msize;

	if (need(st, "tag", &tag, res) || need(st, "at", &at, res) ||
	    size_arg(st, "msize", 512000, &msize, res))
		return -1;
	report_str(r, "tag", tag);
	report_str(r, "at", at);
	snprintf(data, sizeof(data), "trans=virtio,version=9p2000.L,msize=%llu",
		 (unsigned long long)msize);
	snprintf(optbuf, sizeof(optbuf), "%s", opts ? opts : "rw");
	report_str(r, "opts", optbuf);
	for (char *save = NULL, *o = strtok_r(optbuf, ":", &save); o;
	     o = strtok_r(NULL, ":", &save)) {
		size_t i, n = strlen(data);

		for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
			if (!strcmp(o, flags[i].name))
				break;
		if (i < sizeof(flags) / sizeof(flags[0]))
			mflags |= flags[i].flag;
		else
			snprintf(data + n, sizeof(data) - n, ",%s", o);
	}
	if (mkdir_p(at, 0755))
		return fail(res, errno, "mkdir %s", at);
	if (mount(tag, at, "9p", mflags, data))
		return fail(res, errno, "mount 9p tag '%s' on %s", tag, at);
	remember_mount(at);
	return 0;
}

/* tmpfs at=DIR [size=N] [mode=0755] */
static int op_tmpfs(const struct job_step *st, struct report *r,
		    struct step_result *res)
{
	const char *at, *mode = job_get(st, "mode");
	char data[128] = "";
	uint64_t size;

	if (need(st, "at", &at, res) || size_arg(st, "size", 0, &size, res))
		return -1;
	report_str(r, "at", at);
	if (size) {
		snprintf(data, sizeof(data), "size=%llu", (unsigned long long)size);
		report_int(r, "size", (int64_t)size);
	}
	if (mode) {
		size_t n = strlen(data);

		if (strspn(mode, "01234567") != strlen(mode))
			return bad_args(res, "mode=%s is not octal", mode);
		snprintf(data + n, sizeof(data) - n, "%smode=%s", n ? "," : "", mode);
		report_str(r, "mode", mode);
	}
	if (mkdir_p(at, 0755))
		return fail(res, errno, "mkdir %s", at);
	if (mount("tmpfs", at, "tmpfs", 0, data))
		return fail(res, errno, "mount tmpfs on %s", at);
	remember_mount(at);
	return 0;
}

/* write path=F seed=S size=N [offset=0] [bs=256K] [fsync=1]: the pattern
 * of [offset, offset+size) at that offset of the file. */
static int op_write(const struct job_step *st, struct report *r,
		    struct step_result *res)
{
	const char *path, *seed_s, *fs = job_get(st, "fsync");
	uint64_t seed, size, off, bs, done = 0;
	int fd, ret = 0;
	char *buf;

	if (need(st, "path", &path, res) || need(st, "seed", &seed_s, res) ||
	    size_arg(st, "seed", 0, &seed, res) ||
	    size_arg(st, "size", 0, &size, res) ||
	    size_arg(st, "offset", 0, &off, res) ||
	    size_arg(st, "bs", 256 << 10, &bs, res))
		return -1;
	if (!job_get(st, "size"))
		return bad_args(res, "size= is required");
	if (bs == 0 || bs > (64 << 20))
		return bad_args(res, "bs= must be 1 byte to 64M");
	report_str(r, "path", path);
	report_int(r, "seed", (int64_t)seed);
	report_int(r, "size", (int64_t)size);
	if (off)
		report_int(r, "offset", (int64_t)off);
	buf = malloc(bs);
	if (!buf)
		return fail(res, ENOMEM, "buffer of %llu bytes", (unsigned long long)bs);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = fail(res, errno, "open %s", path);
		goto out;
	}
	while (done < size) {
		uint64_t n = size - done < bs ? size - done : bs;
		ssize_t w;

		pattern_fill(buf, seed, off + done, n);
		w = pwrite(fd, buf, n, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			ret = fail(res, w < 0 ? errno : ENOSPC, "write %s at %llu",
				   path, (unsigned long long)(off + done));
			break;
		}
		done += (uint64_t)w;
	}
	if (!ret && !(fs && !strcmp(fs, "0")) && fsync(fd))
		ret = fail(res, errno, "fsync %s", path);
	if (close(fd) && !ret)
		ret = fail(res, errno, "close %s", path);
out:
	report_int(r, "written", (int64_t)done);
	free(buf);
	return ret;
}

/* verify path=F seed=S size=N [offset=0] */
static int op_verify(const struct job_step *st, struct report *r,
		     struct step_result *res)
{
	const char *path, *seed_s;
	uint64_t seed, size, off, done = 0, bs = 256 << 10;
	int fd, ret = 0;
	char *buf;

	if (need(st, "path", &path, res) || need(st, "seed", &seed_s, res) ||
	    size_arg(st, "seed", 0, &seed, res) ||
	    size_arg(st, "size", 0, &size, res) ||
	    size_arg(st, "offset", 0, &off, res))
		return -1;
	if (!job_get(st, "size"))
		return bad_args(res, "size= is required");
	report_str(r, "path", path);
	report_int(r, "seed", (int64_t)seed);
	report_int(r, "size", (int64_t)size);
	if (off)
		report_int(r, "offset", (int64_t)off);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(res, errno, "open %s", path);
	buf = malloc(bs);
	if (!buf) {
		close(fd);
		return fail(res, ENOMEM, "buffer");
	}
	while (done < size) {
		uint64_t n = size - done < bs ? size - done : bs, bad;
		ssize_t got = pread(fd, buf, n, (off_t)(off + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ret = fail(res, errno, "read %s at %llu", path,
				   (unsigned long long)(off + done));
			break;
		}
		if (got == 0) {
			ret = fail(res, 0, "%s ends at %llu, before %llu", path,
				   (unsigned long long)(off + done),
				   (unsigned long long)(off + size));
			break;
		}
		bad = pattern_check(buf, seed, off + done, (uint64_t)got);
		if (bad < (uint64_t)got) {
			report_int(r, "mismatch_at", (int64_t)(off + done + bad));
			ret = fail(res, 0, "%s differs from pattern seed %llu at offset %llu",
				   path, (unsigned long long)seed,
				   (unsigned long long)(off + done + bad));
			break;
		}
		done += (uint64_t)got;
	}
	report_int(r, "verified", (int64_t)done);
	free(buf);
	close(fd);
	return ret;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sh cmd=... [timeout=30] [status=0]: /bin/sh -c cmd, output captured. */
static int op_sh(const struct job_step *st, struct report *r,
		 struct step_result *res)
{
	const char *cmd, *want_s = job_get(st, "status");
	uint64_t tmo;
	char out[SH_OUTPUT_MAX];
	size_t outlen = 0;
	int pfd[2], status = 0, want = 0, timed_out = 0;
	int64_t deadline;
	pid_t pid;

	if (need(st, "cmd", &cmd, res) || size_arg(st, "timeout", 30, &tmo, res))
		return -1;
	if (want_s) {
		char *end;

		want = (int)strtol(want_s, &end, 10);
		if (*end || !*want_s)
			return bad_args(res, "status=%s is not a number", want_s);
	}
	report_str(r, "cmd", cmd);
	if (access("/bin/sh", X_OK))
		return fail(res, errno, "no /bin/sh in this initramfs (initramfs-min.cpio has none; use initramfs.cpio)");
	if (pipe2(pfd, O_CLOEXEC))
		return fail(res, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return fail(res, errno, "fork");
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		setsid();	/* its own process group, killed as one */
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	deadline = now_ms() + (int64_t)tmo * 1000;
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int64_t left = deadline - now_ms();
		char tmp[512];
		ssize_t n;

		if (left <= 0) {
			timed_out = 1;
			break;
		}
		if (poll(&p, 1, (int)(left > 60000 ? 60000 : left)) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!p.revents)
			continue;
		n = read(pfd[0], tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* EOF: the command (and its children) closed it */
		if (outlen < sizeof(out)) {
			size_t c = (size_t)n < sizeof(out) - outlen ?
				   (size_t)n : sizeof(out) - outlen;

			memcpy(out + outlen, tmp, c);
			outlen += c;
		}
	}
	close(pfd[0]);
	if (timed_out)
		kill(-pid, SIGKILL);
	/* EOF can come before exit; a command that closed its output but
	 * keeps running still has its deadline */
	while (waitpid(pid, &status, timed_out ? 0 : WNOHANG) == 0) {
		if (now_ms() >= deadline) {
			timed_out = 1;
			kill(-pid, SIGKILL);
			continue;
		}
		usleep(10000);
	}
	report_strn(r, "output", out, outlen);
	if (timed_out)
		return fail(res, ETIMEDOUT, "'%s' timed out after %llu s", cmd,
			    (unsigned long long)tmo);
	if (WIFSIGNALED(status)) {
		report_int(r, "signal", WTERMSIG(status));
		return fail(res, 0, "'%s' killed by signal %d", cmd, WTERMSIG(status));
	}
	report_int(r, "status", WEXITSTATUS(status));
	if (WEXITSTATUS(status) != want)
		return fail(res, 0, "'%s' exited with %d, expected %d", cmd,
			    WEXITSTATUS(status), want);
	return 0;
}

static int op_sync(const struct job_step *st, struct report *r,
		   struct step_result *res)
{
	(void)st, (void)r, (void)res;
	sync();
	return 0;
}

static int op_umount(const struct job_step *st, struct report *r,
		     struct step_result *res)
{
	const char *at;

	if (need(st, "at", &at, res))
		return -1;
	report_str(r, "at", at);
	if (umount2(at, 0))
		return fail(res, errno, "umount %s", at);
	forget_mount(at);
	return 0;
}

static int op_mkdir(const struct job_step *st, struct report *r,
		    struct step_result *res)
{
	const char *path, *mode_s = job_get(st, "mode");
	unsigned long mode = 0755;

	if (need(st, "path", &path, res))
		return -1;
	if (mode_s) {
		char *end;

		mode = strtoul(mode_s, &end, 8);
		if (*end || !*mode_s || mode > 07777)
			return bad_args(res, "mode=%s is not octal", mode_s);
	}
	report_str(r, "path", path);
	if (mkdir_p(path, (mode_t)mode))
		return fail(res, errno, "mkdir %s", path);
	return 0;
}

static int op_echo(const struct job_step *st, struct report *r,
		   struct step_result *res)
{
	const char *text = job_get(st, "text");

	(void)res;
	report_str(r, "text", text ? text : "");
	return 0;
}

static int op_sleep(const struct job_step *st, struct report *r,
		    struct step_result *res)
{
	uint64_t ms;

	if (size_arg(st, "ms", 0, &ms, res))
		return -1;
	report_int(r, "ms_asked", (int64_t)ms);
	usleep((useconds_t)(ms > 600000 ? 600000 : ms) * 1000);
	return 0;
}

/* Ask the VMM for a snapshot (--snapshot-to DIR,when=request): what the
 * job did so far is setup, every restore goes on with the next step.
 * sync first, so the disks hold what the guest wrote (a restore runs on an
 * overlay of them as they are now).  As a plain process (the host test
 * harness) there is no port: the step fails with EPERM. */
static int op_snapshot(const struct job_step *st, struct report *r,
		       struct step_result *res)
{
	struct timespec t0, t1;

	(void)st;
	sync();
	if (getpid() != 1 || ioperm(VMM_PORT_SNAPSHOT, 1, 1))
		return fail(res, EPERM, "no snapshot-request port");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	__asm__ volatile("outb %b0, %w1" : : "a"((unsigned char)VMM_SNAPSHOT_MAGIC),
			 "Nd"((unsigned short)VMM_PORT_SNAPSHOT));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* in a restored VM this is the first thing that runs */
	report_int(r, "resumed_after_ms",
		   (int64_t)((t1.tv_sec - t0.tv_sec) * 1000 +
			     (t1.tv_nsec - t0.tv_nsec) / 1000000));
	return 0;
}

/* The runner ends the job at poweroff; the step itself does nothing. */
static int op_poweroff(const struct job_step *st, struct report *r,
		       struct step_result *res)
{
	(void)st, (void)r, (void)res;
	return 0;
}

static const struct step_op ops[] = {
	{ "mount", "serial dev at fs opts", op_mount },
	{ "tmpfs", "at size mode", op_tmpfs },
	{ "mount9p", "tag at opts msize", op_mount9p },
	{ "write", "path seed size offset bs fsync", op_write },
	{ "verify", "path seed size offset", op_verify },
	{ "sh", "cmd timeout status", op_sh },
	{ "sync", "", op_sync },
	{ "umount", "at", op_umount },
	{ "mkdir", "path mode", op_mkdir },
	{ "echo", "text", op_echo },
	{ "sleep", "ms", op_sleep },
	{ "poweroff", "", op_poweroff },
	{ "snapshot", "", op_snapshot },
	{ "net", "dev addr gw mtu wait_ms", op_net },
	{ "serve", "", op_serve },	/* vsock_server.c */
	{ "stat", "path want", op_stat },	/* step_plan.c */
	{ "chown", "path uid gid mode", op_chown },
	{ "statfs", "path", op_statfs },
	{ "count", "path match want", op_count },
	{ "disklink", "serial path", op_disklink },
};

const struct step_op *step_op_find(const char *name)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(ops[i].name, name))
			return &ops[i];
	return NULL;
}

int steps_unmount_all(void)
{
	int failed = 0;

	while (nmounted > 0) {
		const char *at = mounted[nmounted - 1];

		if (umount2(at, 0)) {
			struct report r;

			report_begin(&r);
			report_str(&r, "op", "cleanup");
			report_str(&r, "at", at);
			report_bool(&r, "ok", false);
			report_str(&r, "errno", job_errno_name(errno));
			report_str(&r, "error", strerror(errno));
			report_end(&r);
			failed++;
		}
		nmounted--;
	}
	return failed;
}
