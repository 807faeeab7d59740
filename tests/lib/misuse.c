/* tests/lib/misuse.c - libvmm used wrongly or unluckily: NULL handles,
 * unknown options and bad values, a bad kernel, start twice, wait before
 * start and after stop, stop before start, destroy while running, one VM
 * failing or timing out beside others that must not notice; plus console
 * input and the event stream.  Every case must end in an error return
 * with a message (or the documented status), never a crash: it also runs
 * under ASan+UBSan (make SANITIZE=1).  Built against the installed
 * library; run by tests/integration/lib-misuse.sh.
 *
 *   misuse --kernel PATH --dir DIR [--no-kvm]
 *
 * --no-kvm: only the cases that need no /dev/kvm.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vmm.h>

static const char *kernel, *dir;
static int checks;

#define CHECK(cond, ...) do {						\
	checks++;							\
	if (!(cond)) {							\
		fprintf(stderr, "misuse: FAIL line %d: %s: ", __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		exit(1);						\
	}								\
} while (0)

/* r is -want and msg (the error line) contains text */
static void expect_err(int r, int want, const char *msg, const char *text,
		       int line)
{
	checks++;
	if (r != -want || !msg || !strstr(msg, text)) {
		fprintf(stderr, "misuse: FAIL line %d: got %d \"%s\", want %d "
			"with \"%s\"\n", line, r, msg ? msg : "(null)", -want, text);
		exit(1);
	}
}
#define EXPECT_ERR(r, want, msg, text) expect_err(r, want, msg, text, __LINE__)

static struct vmm_config *config(const char *run, const char *timeout)
{
	struct vmm_config *c = vmm_config_new();

	CHECK(c, "vmm_config_new");
	CHECK(!vmm_config_set(c, "kernel", kernel), "%s", vmm_config_error(c));
	CHECK(!vmm_config_set(c, "--memory", "size=32M"), "%s", vmm_config_error(c));
	if (run) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "vmmtest.run=%s", run);
		CHECK(!vmm_config_set(c, "cmdline", cmd), "%s", vmm_config_error(c));
	}
	if (timeout)
		CHECK(!vmm_config_set(c, "timeout", timeout), "%s",
		      vmm_config_error(c));
	return c;
}

static struct vmm *vm(const char *run, const char *timeout)
{
	struct vmm_config *c = config(run, timeout);
	struct vmm *v = vmm_create(c);

	CHECK(v, "vmm_create: %s", vmm_error(NULL));
	vmm_config_free(c);
	return v;
}

/* All of fd until end-of-file (bounded). */
static char *slurp(int fd, int bound_ms)
{
	static char buf[65536];
	size_t len = 0;

	for (int waited = 0; waited < bound_ms;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0) {
			waited += 100;
			continue;
		}
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

static void no_kvm_cases(void)
{
	struct vmm_config *c = vmm_config_new();
	struct vmm *v;
	char path[512];
	int fd;

	/* NULL everywhere */
	EXPECT_ERR(vmm_config_set(NULL, "kernel", "x"), EINVAL, vmm_error(NULL), "NULL");
	EXPECT_ERR(vmm_config_set(c, NULL, "x"), EINVAL, vmm_config_error(c), "no option");
	EXPECT_ERR(vmm_config_set(c, "", "x"), EINVAL, vmm_config_error(c), "no option");
	EXPECT_ERR(vmm_config_set(c, "kernel", NULL), EINVAL, vmm_config_error(c),
		   "needs a value");
	EXPECT_ERR(vmm_start(NULL), EINVAL, vmm_error(NULL), "NULL");
	EXPECT_ERR(vmm_wait(NULL, 0), EINVAL, vmm_error(NULL), "NULL");
	EXPECT_ERR(vmm_stop(NULL), EINVAL, vmm_error(NULL), "NULL");
	EXPECT_ERR(vmm_console_fd(NULL), EINVAL, vmm_error(NULL), "NULL");
	EXPECT_ERR(vmm_event_fd(NULL), EINVAL, vmm_error(NULL), "NULL");
	vmm_destroy(NULL);
	vmm_config_free(NULL);
	errno = 0;
	CHECK(!vmm_create(NULL) && errno == EINVAL, "vmm_create(NULL)");
	CHECK(strstr(vmm_config_error(NULL), "NULL"), "thread error");

	/* unknown options and bad values: -EINVAL, the parser's message */
	EXPECT_ERR(vmm_config_set(c, "frobnicate", "1"), EINVAL, vmm_config_error(c),
		   "unknown option '--frobnicate'");
	EXPECT_ERR(vmm_config_set(c, "help", NULL), EINVAL, vmm_config_error(c),
		   "unknown option");
	EXPECT_ERR(vmm_config_set(c, "memory", "size=1M"), EINVAL,
		   vmm_config_error(c), "too small");
	EXPECT_ERR(vmm_config_set(c, "memory", "lots"), EINVAL,
		   vmm_config_error(c), "invalid size");
	EXPECT_ERR(vmm_config_set(c, "cpus", "boot=0"), EINVAL,
		   vmm_config_error(c), "invalid count");
	EXPECT_ERR(vmm_config_set(c, "timeout", "-3"), EINVAL,
		   vmm_config_error(c), "invalid number of seconds");
	EXPECT_ERR(vmm_config_set(c, "disk", "path=x.img"), EINVAL,
		   vmm_config_error(c), "format= is required");
	EXPECT_ERR(vmm_config_set(c, "disk", "path=x.img,format=vmdk"), EINVAL,
		   vmm_config_error(c), "unknown format 'vmdk'");
	EXPECT_ERR(vmm_config_set(c, "serial", "nowhere"), EINVAL,
		   vmm_config_error(c), "expected tty, file=PATH or off");
	EXPECT_ERR(vmm_config_set(c, "events", "socket=1"), EINVAL,
		   vmm_config_error(c), "expected file=PATH or fd=N");
	EXPECT_ERR(vmm_config_set(c, "boot-timer", "maybe"), EINVAL,
		   vmm_config_error(c), "expected on or off");
	CHECK(!vmm_config_set(c, "boot-timer", NULL), "%s", vmm_config_error(c));
	for (int i = 0; i < 8; i++)
		CHECK(!vmm_config_set(c, "disk", "path=x.img,format=raw"), "%s",
		      vmm_config_error(c));
	EXPECT_ERR(vmm_config_set(c, "disk", "path=x.img,format=raw"), EINVAL,
		   vmm_config_error(c), "at most 8");

	/* no kernel; a kernel that is missing or is not one */
	errno = 0;
	CHECK(!vmm_create(c) && errno == EINVAL, "no kernel: errno %d", errno);
	CHECK(strstr(vmm_error(NULL), "kernel is required"), "%s", vmm_error(NULL));
	CHECK(vmm_exit_status(-EINVAL) == 64, "status 64");
	vmm_config_free(c);

	c = vmm_config_new();
	snprintf(path, sizeof(path), "%s/missing-kernel", dir);
	CHECK(!vmm_config_set(c, "kernel", path), "%s", vmm_config_error(c));
	errno = 0;
	CHECK(!vmm_create(c) && errno == ENOEXEC, "missing kernel: errno %d", errno);
	CHECK(strstr(vmm_error(NULL), "No such file"), "%s", vmm_error(NULL));
	CHECK(vmm_exit_status(-ENOEXEC) == 65, "status 65");
	snprintf(path, sizeof(path), "%s/text-kernel", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && write(fd, "not a kernel at all\n", 20) == 20, "write");
	close(fd);
	/* a later set replaces the kernel; the failed ones above changed nothing */
	CHECK(!vmm_config_set(c, "kernel", path), "%s", vmm_config_error(c));
	v = vmm_create(c);
	/* bad input is found before /dev/kvm is opened, or /dev/kvm is missing */
	CHECK(!v && (errno == ENOEXEC || errno == ENODEV), "text kernel: errno %d", errno);
	CHECK(errno != ENOEXEC || strstr(vmm_error(NULL), "not a kernel") ||
	      strstr(vmm_error(NULL), "too small") ||
	      strstr(vmm_error(NULL), "truncated"), "%s", vmm_error(NULL));
	vmm_config_free(c);

	/* the kick signal: only real-time or SIGUSR1/2 */
	{
		int old = vmm_kick_signal();

		CHECK(old >= SIGRTMIN && old <= SIGRTMAX, "default kick %d", old);
		EXPECT_ERR(vmm_set_kick_signal(SIGKILL), EINVAL, vmm_error(NULL),
			   "not SIGUSR1");
		EXPECT_ERR(vmm_set_kick_signal(0), EINVAL, vmm_error(NULL), "real-time");
		CHECK(!vmm_set_kick_signal(SIGRTMIN + 2), "set kick");
		CHECK(vmm_kick_signal() == SIGRTMIN + 2, "kick now");
		CHECK(!vmm_set_kick_signal(old), "restore kick");
	}
	CHECK(!strcmp(vmm_version(), VMM_VERSION), "version %s", vmm_version());
}

static void lifecycle_cases(void)
{
	struct vmm *v;
	char *out;
	int st;

	/* wait before start; start twice; wait with a timeout; stop; wait
	 * after stop, twice; stop again changes nothing */
	v = vm("hang", NULL);
	EXPECT_ERR(vmm_wait(v, 0), EINVAL, vmm_error(v), "never started");
	CHECK(!vmm_start(v), "start: %s", vmm_error(v));
	EXPECT_ERR(vmm_start(v), EALREADY, vmm_error(v), "already started");
	EXPECT_ERR(vmm_wait(v, 200), ETIMEDOUT, vmm_error(v), "still running");
	CHECK(!vmm_stop(v), "stop");
	st = vmm_wait(v, 60000);
	CHECK(st == 143, "status after stop: %d", st);
	CHECK(vmm_wait(v, 0) == 143, "wait again");
	CHECK(!vmm_stop_status(v, 1), "stop again");
	CHECK(vmm_wait(v, -1) == 143, "the first stop wins");
	EXPECT_ERR(vmm_stop_status(v, 300), EINVAL, vmm_error(NULL), "not 0-255");
	out = slurp(vmm_event_fd(v), 10000);
	CHECK(strstr(out, "\"event\":\"exit\",\"status\":143,\"reason\":\"signal\""),
	      "events: %s", out);
	vmm_destroy(v);

	/* stop before start: done at once, start refuses */
	v = vm("hello", NULL);
	CHECK(!vmm_stop(v), "stop");
	CHECK(vmm_wait(v, 0) == 143, "wait after early stop");
	EXPECT_ERR(vmm_start(v), EINVAL, vmm_error(v), "stopped before it started");
	vmm_destroy(v);

	/* destroy without start, and while running */
	vmm_destroy(vm("hello", NULL));
	v = vm("hang", NULL);
	CHECK(!vmm_start(v), "start: %s", vmm_error(v));
	vmm_destroy(v);

	/* a guest status, the console to end-of-file, the events */
	v = vm("hello,fail", NULL);
	CHECK(!vmm_start(v), "start: %s", vmm_error(v));
	out = slurp(vmm_console_fd(v), 60000);
	CHECK(strstr(out, "PASS hello") && strstr(out, "FAIL fail"), "console: %s", out);
	CHECK(vmm_wait(v, 10000) == 1, "status %d", vmm_wait(v, 0));
	out = slurp(vmm_event_fd(v), 10000);
	CHECK(strstr(out, "{\"event\":\"boot-ready\",\"wall_ms\":") &&
	      strstr(out, "{\"event\":\"exit\",\"status\":1,\"reason\":\"guest\""),
	      "events: %s", out);
	vmm_destroy(v);

	/* console input reaches the guest's UART */
	v = vm("readline", NULL);
	CHECK(!vmm_start(v), "start: %s", vmm_error(v));
	CHECK(write(vmm_console_fd(v), "typed-by-a-rig\n", 15) == 15, "write");
	out = slurp(vmm_console_fd(v), 60000);
	CHECK(strstr(out, "readline: got \"typed-by-a-rig\""), "console: %s", out);
	CHECK(vmm_wait(v, 10000) == 0, "status %d", vmm_wait(v, 0));
	vmm_destroy(v);
}

/* One VM times out, one faults, one is stopped: a fourth beside them
 * runs on (busy reading its console all along) and ends normally once it
 * gets its line.  (Not a timed sleep: the nested test rig's timers are
 * too erratic to bound one.) */
static void isolation_cases(void)
{
	struct vmm *calm = vm("readline:timeout_ms=200000,hello", "300");
	struct vmm *hung = vm("hang", "2");
	struct vmm *faulty = vm("fault", NULL);
	struct vmm *stopped = vm("hang", NULL);
	char *out;
	int st;

	CHECK(!vmm_start(calm) && !vmm_start(hung) && !vmm_start(faulty) &&
	      !vmm_start(stopped), "start");
	CHECK(!vmm_stop_status(stopped, 130), "stop");
	st = vmm_wait(faulty, 60000);
	CHECK(st == 2, "faulty: %d", st);
	st = vmm_wait(hung, 60000);
	CHECK(st == 124, "hung: %d", st);
	out = slurp(vmm_event_fd(hung), 10000);
	CHECK(strstr(out, "\"status\":124,\"reason\":\"timeout\""), "events: %s", out);
	CHECK(vmm_wait(stopped, 60000) == 130, "stopped");
	vmm_destroy(faulty);
	vmm_destroy(hung);
	vmm_destroy(stopped);
	/* the calm one never noticed */
	CHECK(vmm_wait(calm, 0) == -ETIMEDOUT, "calm ended early: %d", vmm_wait(calm, 0));
	CHECK(write(vmm_console_fd(calm), "still-here\n", 11) == 11, "write");
	out = slurp(vmm_console_fd(calm), 200000);
	CHECK(strstr(out, "readline: got \"still-here\"") && strstr(out, "PASS hello"),
	      "console: %s", out);
	CHECK(vmm_wait(calm, 10000) == 0, "calm: %d", vmm_wait(calm, 0));
	vmm_destroy(calm);
}

int main(int argc, char **argv)
{
	bool kvm = true;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-kvm"))
			kvm = false;
		else if (!strcmp(argv[i], "--kernel") && i + 1 < argc)
			kernel = argv[++i];
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else {
			fprintf(stderr, "usage: misuse --kernel PATH --dir DIR [--no-kvm]\n");
			return 2;
		}
	}
	if (!kernel || !dir) {
		fprintf(stderr, "usage: misuse --kernel PATH --dir DIR [--no-kvm]\n");
		return 2;
	}
	no_kvm_cases();
	if (kvm) {
		lifecycle_cases();
		isolation_cases();
	}
	printf("misuse: %d checks passed%s\n", checks, kvm ? "" : " (no KVM cases)");
	return 0;
}
