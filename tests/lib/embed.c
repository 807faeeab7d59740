/* tests/lib/embed.c - libvmm embedded in a program: N VMs at once in one
 * process, each booting the test kernel with its own raw disk running
 * blktest; every status, console and event stream is checked.  Built
 * against the INSTALLED library (pkg-config vmm), linked dynamically and
 * statically (tests/lib/module.mk); run by tests/integration/lib-embed.sh.
 *
 *   embed --kernel PATH --dir DIR [--vms 8] [--memory 32M]
 *   embed --kernel PATH --dir DIR --bench [--runs 5]
 *
 * --bench: seven idle VMs run (the test kernel halted, after boot-ready);
 * then an eighth is created, started and booted --runs times, and its
 * start-to-boot-ready time and the process's RSS growth are printed.
 *
 * It is also the example of README "Embedding": create from any thread,
 * start, then one poll loop over every VM's console and event fds.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vmm.h>

#define MAX_VMS		16
#define DISK_BYTES	(8 << 20)
#define OUT_MAX		(64 << 10)

struct guest {
	int index;
	struct vmm *vm;
	char disk[512];
	char console[OUT_MAX];	/* what the console said */
	size_t console_len;
	bool console_eof;
	char events[8192];	/* the event lines */
	size_t events_len;
	bool events_eof;
	int status;
};

static const char *kernel, *dir, *memory = "32M";
static struct guest guests[MAX_VMS];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("embed: FAIL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* A raw image with a pattern, so blktest reads real data. */
static void make_disk(struct guest *g)
{
	static char block[4096];
	int fd;

	snprintf(g->disk, sizeof(g->disk), "%s/disk-%d.img", dir, g->index);
	fd = open(g->disk, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("%s: %s", g->disk, strerror(errno));
	for (int i = 0; i < DISK_BYTES / (int)sizeof(block); i++) {
		memset(block, 'a' + (g->index + i) % 26, sizeof(block));
		if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
			die("%s: write: %s", g->disk, strerror(errno));
	}
	close(fd);
}

/* The whole configuration of one guest, option by option. */
static struct vmm *create_guest(struct guest *g, const char *run, bool disk)
{
	struct vmm_config *c = vmm_config_new();
	char val[600];
	struct vmm *v;

	if (!c)
		die("vmm_config_new: %s", strerror(errno));
	snprintf(val, sizeof(val), "size=%s", memory);
	if (vmm_config_set(c, "kernel", kernel) ||
	    vmm_config_set(c, "memory", val) ||
	    vmm_config_set(c, "timeout", "300"))
		die("config: %s", vmm_config_error(c));
	snprintf(val, sizeof(val), "vmmtest.run=%s marker=guest-%d", run, g->index);
	if (vmm_config_set(c, "cmdline", val))
		die("config: %s", vmm_config_error(c));
	if (disk) {
		snprintf(val, sizeof(val), "path=%s,format=raw,serial=guest-%d",
			 g->disk, g->index);
		if (vmm_config_set(c, "disk", val))
			die("config: %s", vmm_config_error(c));
	}
	v = vmm_create(c);
	vmm_config_free(c);	/* the VM has its own copy */
	if (!v)
		die("guest %d: vmm_create: %s (%s)", g->index, vmm_error(NULL),
		    strerror(errno));
	return v;
}

static void *create_thread(void *arg)
{
	struct guest *g = arg;

	g->vm = create_guest(g, "blkinfo,blktest", true);
	return NULL;
}

/* Read what is there on fd into buf; true at end-of-file. */
static bool drain(int fd, char *buf, size_t *len, size_t max)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n < 0)
		return errno != EAGAIN && errno != EINTR;
	if (n == 0)
		return true;
	if (*len + (size_t)n >= max)
		die("more output than expected (%zu bytes)", *len + (size_t)n);
	memcpy(buf + *len, tmp, (size_t)n);
	*len += (size_t)n;
	buf[*len] = '\0';
	return false;
}

/* One loop over every guest's console and events until all have ended
 * (end-of-file on both), or until the bound. */
static void run_until_done(struct guest *gs, int n, double bound_ms)
{
	double end = now_ms() + bound_ms;

	for (;;) {
		struct pollfd p[2 * MAX_VMS];
		int open = 0;

		for (int i = 0; i < n; i++) {
			p[2 * i] = (struct pollfd){
				.fd = gs[i].console_eof ? -1 : vmm_console_fd(gs[i].vm),
				.events = POLLIN };
			p[2 * i + 1] = (struct pollfd){
				.fd = gs[i].events_eof ? -1 : vmm_event_fd(gs[i].vm),
				.events = POLLIN };
			open += !gs[i].console_eof + !gs[i].events_eof;
		}
		if (!open)
			return;
		if (now_ms() > end)
			die("guests still running after %.0f ms", bound_ms);
		if (poll(p, (nfds_t)(2 * n), 1000) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct guest *g = &gs[i];

			if (p[2 * i].revents)
				g->console_eof = drain(p[2 * i].fd, g->console,
						       &g->console_len, sizeof(g->console));
			if (p[2 * i + 1].revents)
				g->events_eof = drain(p[2 * i + 1].fd, g->events,
						      &g->events_len, sizeof(g->events));
		}
	}
}

static void expect(const struct guest *g, const char *buf, const char *what)
{
	if (!strstr(buf, what))
		die("guest %d: no \"%s\" in:\n%s", g->index, what, buf);
}

/* Everything the library hands out is close-on-exec. */
static void check_cloexec(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int checked = 0;

	if (!d)
		die("/proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), flags;

		if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d))
			continue;
		flags = fcntl(fd, F_GETFD);
		if (flags >= 0 && !(flags & FD_CLOEXEC)) {
			char link[64], target[256] = "";

			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			if (readlink(link, target, sizeof(target) - 1) < 0)
				target[0] = '\0';
			die("descriptor %d (%s) is not close-on-exec", fd, target);
		}
		checked++;
	}
	closedir(d);
	printf("embed: %d descriptors, all close-on-exec\n", checked);
}

static int many(int n)
{
	pthread_t t[MAX_VMS];
	double t0;

	for (int i = 0; i < n; i++) {
		guests[i].index = i;
		make_disk(&guests[i]);
	}
	/* vmm_create is safe from several threads at once */
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, create_thread, &guests[i]))
			die("pthread_create");
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	t0 = now_ms();
	for (int i = 0; i < n; i++)
		if (vmm_start(guests[i].vm))
			die("guest %d: vmm_start: %s", i, vmm_error(guests[i].vm));
	check_cloexec();
	run_until_done(guests, n, 290e3);
	for (int i = 0; i < n; i++) {
		struct guest *g = &guests[i];
		char want[128];

		g->status = vmm_wait(g->vm, 10000);
		if (g->status != 0)
			die("guest %d: status %d (%s), console:\n%s", i, g->status,
			    vmm_error(g->vm), g->console);
		/* its own disk (the serial), its own command line */
		snprintf(want, sizeof(want), "serial=guest-%d", i);
		expect(g, g->console, want);
		snprintf(want, sizeof(want), "marker=guest-%d", i);
		expect(g, g->console, want);
		expect(g, g->console, "PASS blktest");
		expect(g, g->console, "vmmtest: 2 passed, 0 failed");
		expect(g, g->events, "{\"event\":\"boot-ready\",\"wall_ms\":");
		expect(g, g->events, "{\"event\":\"exit\",\"status\":0,\"reason\":\"guest\"");
		if (strstr(g->events, "device-error"))
			die("guest %d: device errors: %s", i, g->events);
		vmm_destroy(g->vm);
	}
	printf("embed: %d VMs passed blktest concurrently in %.0f ms\n", n,
	       now_ms() - t0);
	return 0;
}

/* The event lines so far until boot-ready: its run_ms. */
static double wait_boot_ready(struct guest *g, double bound_ms)
{
	double end = now_ms() + bound_ms;
	const char *p;

	while (!(p = strstr(g->events, "\"event\":\"boot-ready\""))) {
		struct pollfd pf = { .fd = vmm_event_fd(g->vm), .events = POLLIN };

		if (now_ms() > end || g->events_eof)
			die("guest %d: no boot-ready (events: %s)", g->index, g->events);
		if (poll(&pf, 1, 1000) > 0)
			g->events_eof = drain(pf.fd, g->events, &g->events_len,
					      sizeof(g->events));
	}
	p = strstr(p, "\"run_ms\":");
	return p ? atof(p + 9) : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int bench(int runs)
{
	double start_ms[32], event_ms[32];
	long rss_before[32], rss_after[32];

	if (runs > 32)
		runs = 32;
	/* seven running: booted, then halted (idle) */
	for (int i = 0; i < 7; i++) {
		guests[i].index = i;
		guests[i].vm = create_guest(&guests[i], "hang", false);
		if (vmm_start(guests[i].vm))
			die("vmm_start: %s", vmm_error(guests[i].vm));
	}
	for (int i = 0; i < 7; i++)
		wait_boot_ready(&guests[i], 120e3);
	for (int r = 0; r < runs; r++) {
		struct guest *g = &guests[7];
		double t0;

		memset(g, 0, sizeof(*g));
		g->index = 7;
		rss_before[r] = rss_kib();
		g->vm = create_guest(g, "hello", false);
		t0 = now_ms();
		if (vmm_start(g->vm))
			die("vmm_start: %s", vmm_error(g->vm));
		event_ms[r] = wait_boot_ready(g, 120e3);
		start_ms[r] = now_ms() - t0;
		rss_after[r] = rss_kib();
		run_until_done(g, 1, 120e3);
		if (vmm_wait(g->vm, 10000) != 0)
			die("eighth VM: status %d: %s", vmm_wait(g->vm, 0), g->console);
		vmm_destroy(g->vm);
		printf("bench: run %d: start to boot-ready %.1f ms (event run_ms %.1f), "
		       "RSS %ld -> %ld KiB (+%ld)\n", r, start_ms[r], event_ms[r],
		       rss_before[r], rss_after[r], rss_after[r] - rss_before[r]);
	}
	for (int i = 0; i < 7; i++) {
		int st;

		if (vmm_wait(guests[i].vm, 0) != -ETIMEDOUT)
			die("idle guest %d ended early", i);
		vmm_stop(guests[i].vm);
		st = vmm_wait(guests[i].vm, 60000);
		if (st != 143)
			die("idle guest %d: status %d after vmm_stop", i, st);
		vmm_destroy(guests[i].vm);
	}
	qsort(start_ms, (size_t)runs, sizeof(double), cmp_double);
	printf("bench: 8th VM beside 7 running: start-to-boot-ready median %.1f ms "
	       "(min %.1f, max %.1f, %d runs); RSS +%ld KiB while booted "
	       "(process %ld KiB)\n", start_ms[runs / 2], start_ms[0],
	       start_ms[runs - 1], runs, rss_after[runs / 2] - rss_before[runs / 2],
	       rss_after[runs / 2]);
	return 0;
}

int main(int argc, char **argv)
{
	int n = 8, runs = 5;
	bool do_bench = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--bench")) {
			do_bench = true;
			continue;
		}
		if (!v)
			die("%s needs a value", a);
		if (!strcmp(a, "--kernel"))
			kernel = v;
		else if (!strcmp(a, "--dir"))
			dir = v;
		else if (!strcmp(a, "--vms"))
			n = atoi(v);
		else if (!strcmp(a, "--memory"))
			memory = v;
		else if (!strcmp(a, "--runs"))
			runs = atoi(v);
		else
			die("unknown argument %s", a);
		i++;
	}
	if (!kernel || !dir || n < 1 || n > MAX_VMS || runs < 1)
		die("usage: embed --kernel PATH --dir DIR [--vms N] [--memory SIZE] "
		    "[--bench [--runs N]]");
	printf("embed: libvmm %s (header %s)\n", vmm_version(), VMM_VERSION);
	return do_bench ? bench(runs) : many(n);
}
