/* tests/lib/embed.c - libvmm embedded in a program: N VMs at once in one
 * process, each booting the test kernel with its own raw disk running
 * blktest; every status, console and event stream is checked.  Built
 * against the INSTALLED library (pkg-config vmm), linked dynamically and
 * statically (tests/lib/module.mk); run by tests/integration/lib-embed.sh.
 *
 *   embed --kernel PATH --dir DIR [--vms 8] [--memory 32M]
 *   embed --kernel PATH --dir DIR --bench [--runs 5]
 *
 * --bench: an eighth VM (the test kernel's hello) is created, started and
 * booted --runs times alone in the process (the baseline), then again
 * while seven idle VMs run (booted, then halted); its start-to-boot-ready
 * time and the process's RSS growth (guest RAM and the rest) are printed
 * as medians, in tools/bench's format (tools/bench-lib.sh).
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

/* The process's RSS split: guest RAM (vmm advises MADV_HUGEPAGE on it
 * and on nothing else: VmFlags "hg"; adjacent guest mappings may merge,
 * so not by size) and the rest, in KiB. */
static void rss_split(long *guest, long *other)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	long kib, rss = 0;

	*guest = *other = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Rss: %ld kB", &kib) == 1)
			rss = kib;
		else if (!strncmp(line, "VmFlags:", 8)) {	/* a mapping's last line */
			*(strstr(line, " hg") ? guest : other) += rss;
			rss = 0;
		}
	}
	fclose(f);
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

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Boot the eighth guest runs times beside what runs already: its
 * start-to-boot-ready times (ms) and RSS growth (KiB: guest RAM, the
 * rest), medians. */
static void boot_eighth(int runs, const char *label, double *ms,
			double *guest_kib, double *other_kib, double *first_other)
{
	double t[32], g[32], o[32];
	for (int r = 0; r < runs; r++) {
		struct guest *gu = &guests[7];
		long g0, o0, g1, o1;
		double t0, ev;

		memset(gu, 0, sizeof(*gu));
		gu->index = 7;
		rss_split(&g0, &o0);
		gu->vm = create_guest(gu, "hello", false);
		t0 = now_ms();
		if (vmm_start(gu->vm))
			die("vmm_start: %s", vmm_error(gu->vm));
		ev = wait_boot_ready(gu, 120e3);
		t[r] = now_ms() - t0;
		rss_split(&g1, &o1);
		g[r] = (double)(g1 - g0);
		o[r] = (double)(o1 - o0);
		run_until_done(gu, 1, 120e3);
		if (vmm_wait(gu->vm, 10000) != 0)
			die("eighth VM: status %d: %s", vmm_wait(gu->vm, 0), gu->console);
		vmm_destroy(gu->vm);
		printf("bench: %s run %d: start to boot-ready %.1f ms (event run_ms %.1f), "
		       "RSS +%.0f KiB guest RAM, +%.0f KiB other\n", label, r, t[r], ev,
		       g[r], o[r]);
	}
	*first_other = o[0];
	*ms = median(t, runs);
	*guest_kib = median(g, runs);
	*other_kib = median(o, runs);
}

static int bench(int runs)
{
	double alone_ms, alone_g, alone_o, alone_first, ms, g, o, first;
	long g0, o0, g7, o7;

	if (runs > 32)
		runs = 32;
	/* one boot not counted: the first pays for cold caches and page faults */
	boot_eighth(1, "warm-up", &alone_ms, &alone_g, &alone_o, &alone_first);
	/* the baseline, same run: the same VM alone in the process */
	boot_eighth(runs, "alone", &alone_ms, &alone_g, &alone_o, &alone_first);
	rss_split(&g0, &o0);
	/* seven running: booted, then halted (idle) */
	for (int i = 0; i < 7; i++) {
		guests[i].index = i;
		guests[i].vm = create_guest(&guests[i], "hang", false);
		if (vmm_start(guests[i].vm))
			die("vmm_start: %s", vmm_error(guests[i].vm));
	}
	for (int i = 0; i < 7; i++)
		wait_boot_ready(&guests[i], 120e3);
	rss_split(&g7, &o7);
	boot_eighth(runs, "beside 7", &ms, &g, &o, &first);
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
	printf("lib_8th_vm_start_to_boot_ready: %.2f ms (baseline: the same VM alone "
	       "in the process %.2f ms, ratio %.2f; median of %d)\n", ms, alone_ms,
	       ms / alone_ms, runs);
	printf("lib_8th_vm_rss: +%.0f KiB guest RAM touched, +%.0f KiB beyond guest "
	       "RAM at its first boot (%.0f KiB later: memory reused), while 7 run "
	       "(alone: +%.0f, +%.0f, %.0f KiB)\n", g, first, o, alone_g,
	       alone_first, alone_o);
	printf("lib_vm_rss_beyond_guest_ram: %.0f KiB per idle VM (the process: %ld KiB "
	       "with none, %ld KiB with 7; guest RAM touched %ld KiB)\n",
	       (o7 - o0) / 7.0, o0, o7, g7);
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
