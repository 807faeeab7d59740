/* tests/integration/fs-escape.c - run inside the Linux test guest on a 9p
 * share by tests/integration/linux-fs-escape.sh (built static on the
 * host, shipped in a readonly share).  Each check tries to reach or change
 * something outside the share, or to contend on a POSIX lock, and says
 * PASS or FAIL; the exit status is the number of failures.
 *
 *   fs-escape escapes SHARE SECRET   the escape attempts; SECRET is the
 *                                    text of the host's sentinel file,
 *                                    which must never be read
 *   fs-escape locks SHARE            two guest processes on one lock, and
 *                                    a host process (see hostlock) waiting
 *   fs-escape hostlock FILE          (on the host) exit 0 if a write lock
 *                                    on FILE is refused (someone holds it)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
static const char *secret;

/* The racing loops stop after this long or their count, whichever comes
 * first: an emulated guest kernel does a few hundred 9p requests a
 * second at best. */
#define RACE_SECS	20

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now(void);
static double t_start;

static void check(int ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s [%5.1fs] ", ok ? "PASS" : "FAIL", now() - t_start);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		failures++;
}

/* Read what path leads to (following symlinks as any program would).
 * 1 if it holds the secret, 0 if not or it cannot be read. */
static int leaks(const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NONBLOCK);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strstr(buf, secret) != NULL;
}

/* Every name under dir (depth-bounded), read through: no secret. */
static unsigned walk_tree(const char *dir, int depth)
{
	unsigned bad = 0;
	struct dirent *e;
	DIR *d;

	if (depth > 8 || !(d = opendir(dir)))
		return 0;
	while ((e = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (leaks(p)) {
			printf("  secret read through %s\n", p);
			bad++;
		}
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			bad += walk_tree(p, depth + 1);
	}
	closedir(d);
	return bad;
}

static int do_escapes(const char *share)
{
	char p[PATH_MAX], q[PATH_MAX];
	struct stat st;
	int fd;

	/* ".." chains from the root of the mount */
	snprintf(p, sizeof(p), "%s/../../../../../../outside/sentinel", share);
	check(!leaks(p), ".. chain from the share root");
	snprintf(p, sizeof(p), "%s/dir/../../../outside/sentinel", share);
	check(!leaks(p), ".. chain through a directory");
	/* symlinks the host planted, pointing out: absolute, relative, and
	 * a directory link used mid-path */
	snprintf(p, sizeof(p), "%s/abs_link", share);
	check(!leaks(p), "absolute symlink to the sentinel");
	snprintf(p, sizeof(p), "%s/rel_link", share);
	check(!leaks(p), "relative symlink to the sentinel");
	snprintf(p, sizeof(p), "%s/dir_link/sentinel", share);
	check(!leaks(p), "symlinked directory mid-path");
	/* everything reachable, read */
	check(walk_tree(share, 0) == 0, "no file in the share reads as the "
	      "sentinel");
	/* hard links to outside files and renames out of the share */
	snprintf(p, sizeof(p), "%s/passwd_link", share);
	check(link("/init", p) == -1 && errno == EXDEV,
	      "hard link from outside the share: EXDEV");
	snprintf(p, sizeof(p), "%s/file", share);
	check(rename(p, "/tmp/stolen") == -1 && errno == EXDEV,
	      "rename out of the share: EXDEV");
	/* device nodes cannot be made */
	snprintf(p, sizeof(p), "%s/blockdev", share);
	check(mknod(p, S_IFBLK | 0666, makedev(8, 0)) == -1 &&
	      errno == EPERM, "mknod of a block device: EPERM");
	snprintf(p, sizeof(p), "%s/chardev", share);
	check(mknod(p, S_IFCHR | 0666, makedev(1, 1)) == -1 &&
	      errno == EPERM, "mknod of a char device: EPERM");
	snprintf(p, sizeof(p), "%s/fifo", share);
	check(mknod(p, S_IFIFO | 0644, 0) == 0, "mknod of a fifo works");
	/* a mount point below the share (the host made one): not entered */
	snprintf(p, sizeof(p), "%s/mnt/inmount", share);
	{
		int e1 = stat(p, &st) ? errno : 0, e2;

		snprintf(q, sizeof(q), "%s/mnt", share);
		e2 = stat(q, &st) ? errno : 0;
		check(e1 != 0, "file inside a mount below the share not "
		      "visible (%s; the mount point: %s)", strerror(e1),
		      e2 ? strerror(e2) : "visible");
	}
	/* symlinks made in the guest are kept as text, resolved here */
	snprintf(p, sizeof(p), "%s/guest_link", share);
	check(symlink("/etc/../../outside/sentinel", p) == 0 && !leaks(p),
	      "guest-made symlink pointing out");
	/* a symlink swapped with a file while another process opens it */
	{
		double end = now() + RACE_SECS;
		int bad = 0, status, opens = 0;
		pid_t pid;

		snprintf(p, sizeof(p), "%s/race", share);
		snprintf(q, sizeof(q), "%s/race.tmp", share);
		pid = fork();
		if (pid == 0) {
			char r[PATH_MAX];

			snprintf(r, sizeof(r), "%s/race.file", share);
			for (int i = 0; i < 300 && now() < end; i++) {
				unlink(q);
				if (i % 2) {
					if (symlink("../outside/sentinel", q))
						_exit(2);
				} else {
					fd = open(q, O_CREAT | O_WRONLY, 0644);
					if (fd < 0 || write(fd, "inside\n", 7) != 7)
						_exit(2);
					close(fd);
				}
				if (rename(q, p))
					_exit(2);
			}
			_exit(0);
		}
		for (; opens < 600 && now() < end; opens++)
			bad += leaks(p);
		waitpid(pid, &status, 0);
		check(!bad && WIFEXITED(status) && !WEXITSTATUS(status),
		      "symlink/file swapped during %d opens: never the "
		      "sentinel", opens);
	}
	/* the host swaps a symlink in and out (linux-fs-escape.sh) */
	snprintf(p, sizeof(p), "%s/hrace", share);
	{
		double end = now() + RACE_SECS;
		int bad = 0, opens = 0;

		for (; opens < 600 && now() < end; opens++)
			bad += leaks(p);
		check(!bad, "host-swapped symlink, %d opens: never the sentinel",
		      opens);
	}
	/* last (it would spoil the reads above if it got through): write
	 * through the links; the host checks the sentinel afterwards */
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/%s", share,
			 i ? "rel_link" : "abs_link");
		fd = open(p, O_WRONLY | O_TRUNC | O_APPEND);
		if (fd >= 0) {
			(void)!write(fd, "x", 1);
			close(fd);
		}
	}
	check(1, "writes through the symlinks tried (the host checks the "
	      "sentinel)");
	return failures;
}

static int wait_for(const char *path, double secs)
{
	double end = now() + secs;

	while (access(path, F_OK)) {
		if (now() > end)
			return -1;
		usleep(50000);
	}
	return 0;
}

static int lock_fd(int fd, int cmd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	return fcntl(fd, cmd, &fl);
}

static int do_locks(const char *share)
{
	char p[PATH_MAX], m[PATH_MAX];
	int fd, pfd[2], back[2], status;	/* child->parent, parent->child */
	pid_t pid;
	double t0;

	snprintf(p, sizeof(p), "%s/lockfile", share);
	fd = open(p, O_RDWR | O_CREAT, 0644);
	if (fd < 0 || pipe(pfd) || pipe(back)) {
		check(0, "open %s: %s", p, strerror(errno));
		return failures;
	}
	check(lock_fd(fd, F_SETLKW, F_WRLCK) == 0, "parent takes the lock");
	pid = fork();
	if (pid == 0) {
		int cfd = open(p, O_RDWR);
		char c = 0;

		/* try: refused; then wait for it */
		if (cfd < 0 || lock_fd(cfd, F_SETLK, F_WRLCK) == 0 ||
		    (errno != EAGAIN && errno != EACCES))
			_exit(2);
		if (write(pfd[1], "t", 1) != 1)
			_exit(3);
		if (lock_fd(cfd, F_SETLKW, F_WRLCK))
			_exit(4);
		if (write(pfd[1], "g", 1) != 1 || read(back[0], &c, 1) < 0)
			_exit(5);
		_exit(0);
	}
	{
		char c;

		check(read(pfd[0], &c, 1) == 1 && c == 't',
		      "second process: F_SETLK refused while held");
		t0 = now();
		sleep(1);
		check(lock_fd(fd, F_SETLK, F_UNLCK) == 0, "parent unlocks");
		check(read(pfd[0], &c, 1) == 1 && c == 'g' && now() - t0 >= 0.9,
		      "second process: F_SETLKW waited %.2f s, then got it",
		      now() - t0);
		if (write(back[1], "x", 1) != 1)
			check(0, "pipe");
		waitpid(pid, &status, 0);
		check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "second process exited %d",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	/* a host process must see the guest's lock: say we hold it, wait
	 * until the host checked */
	check(lock_fd(fd, F_SETLK, F_WRLCK) == 0, "lock again for the host");
	snprintf(m, sizeof(m), "%s/locked", share);
	close(open(m, O_CREAT | O_WRONLY, 0644));
	snprintf(m, sizeof(m), "%s/host-checked", share);
	check(wait_for(m, 120) == 0, "the host checked the lock");
	check(lock_fd(fd, F_SETLK, F_UNLCK) == 0, "unlock for the host");
	close(fd);
	return failures;
}

int main(int argc, char **argv)
{
	t_start = now();
	if (argc == 4 && !strcmp(argv[1], "escapes")) {
		secret = argv[3];
		do_escapes(argv[2]);
	} else if (argc == 3 && !strcmp(argv[1], "locks")) {
		do_locks(argv[2]);
	} else if (argc == 3 && !strcmp(argv[1], "hostlock")) {
		int fd = open(argv[2], O_RDWR);

		if (fd < 0)
			return 2;
		return lock_fd(fd, F_SETLK, F_WRLCK) == -1 &&
		       (errno == EAGAIN || errno == EACCES) ? 0 : 1;
	} else {
		fprintf(stderr, "usage: fs-escape escapes SHARE SECRET | "
			"locks SHARE | hostlock FILE\n");
		return 64;
	}
	printf("%s: %d failed\n", argv[1], failures);
	return failures > 125 ? 125 : failures;
}
