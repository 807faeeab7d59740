/* tests/unit/test_seccomp.c - the seccomp sandbox without /dev/kvm: modes
 * and the option, each thread kind filtered (/proc .../status), a
 * forbidden call ending the process with status 70 and the documented
 * line (the VMM_TEST_SECCOMP_VIOLATE hook), log mode letting it through,
 * and both block I/O engines (io_uring and the synchronous fallback)
 * working under the device threads' filter. */
#include <check.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/io_engine.h"
#include "tests/unit/check_main.h"
#include "vmm/options.h"
#include "vmm/seccomp.h"
#include "vmm/thread.h"

/* A child that filtered a thread ends with the raw call: a sanitizer's
 * _exit() would scan for leaks with calls no filter allows. */
#define child_exit(code) syscall(SYS_exit_group, (code))

static const enum vm_thread_kind filtered[] = {
	VM_THREAD_VCPU, VM_THREAD_DEVICE, VM_THREAD_SERVICE, VM_THREAD_MAIN,
};

START_TEST(modes_parse)
{
	enum vm_seccomp_mode m = VM_SECCOMP_OFF;

	ck_assert_int_eq(vm_seccomp_parse("on", &m), 0);
	ck_assert_int_eq(m, VM_SECCOMP_ON);
	ck_assert_int_eq(vm_seccomp_parse("log", &m), 0);
	ck_assert_int_eq(m, VM_SECCOMP_LOG);
	ck_assert_int_eq(vm_seccomp_parse("off", &m), 0);
	ck_assert_int_eq(m, VM_SECCOMP_OFF);
	ck_assert_int_eq(vm_seccomp_parse("ON", &m), -1);
	ck_assert_int_eq(vm_seccomp_parse("", &m), -1);
	ck_assert_int_eq(vm_seccomp_parse(NULL, &m), -1);
	ck_assert_str_eq(vm_seccomp_mode_name(VM_SECCOMP_LOG), "log");
	ck_assert_str_eq(vm_thread_kind_name(VM_THREAD_VCPU), "vcpu");
	ck_assert_str_eq(vm_thread_kind_name(VM_THREAD_DEVICE), "device");
}
END_TEST

START_TEST(option_sets_mode)
{
	struct vmm_config c;
	char err[256] = "", v1[] = "log", v2[] = "sometimes";

	vmm_config_init(&c);
	ck_assert_int_eq(c.seccomp, -1);	/* not given */
	ck_assert_int_eq(vmm_config_apply(&c, "seccomp", v1, err, sizeof(err)), 0);
	ck_assert_int_eq(c.seccomp, VM_SECCOMP_LOG);
	ck_assert_int_eq(vmm_config_apply(&c, "seccomp", v2, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "--seccomp: 'sometimes': expected on, log or off");
	ck_assert_int_eq(c.seccomp, VM_SECCOMP_LOG);	/* unchanged */
	ck_assert_int_eq(vmm_config_apply(&c, "seccomp", NULL, err, sizeof(err)), -1);
	ck_assert(strstr(err, "needs a value"));
	vmm_config_clear(&c);
}
END_TEST

/* No --seccomp: VMM_SECCOMP decides, else the build's default; the option
 * wins over the environment; a bad VMM_SECCOMP is one line. */
START_TEST(environment_default)
{
	enum vm_seccomp_mode m;
	char err[256] = "";

	unsetenv("VMM_SECCOMP");
	ck_assert_int_eq(vm_seccomp_resolve(-1, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(m, VM_SECCOMP_DEFAULT);
	setenv("VMM_SECCOMP", "off", 1);
	ck_assert_int_eq(vm_seccomp_resolve(-1, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(m, VM_SECCOMP_OFF);
	ck_assert_int_eq(vm_seccomp_resolve(VM_SECCOMP_ON, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(m, VM_SECCOMP_ON);
	setenv("VMM_SECCOMP", "maybe", 1);
	ck_assert_int_eq(vm_seccomp_resolve(-1, &m, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "VMM_SECCOMP='maybe' in the environment: "
			 "expected on, log or off");
	unsetenv("VMM_SECCOMP");
}
END_TEST

/* A thread that reports its Seccomp: line, then waits to be let go. */
struct probe {
	int go[2];
	char status[64];
};

static void *probe_thread(void *arg)
{
	struct probe *p = arg;
	char buf[4096], *line;
	char path[64];
	ssize_t n;
	int fd;

	/* read by the thread itself: /proc/thread-self is this task */
	snprintf(path, sizeof(path), "/proc/thread-self/status");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = '\0';
		line = strstr(buf, "Seccomp:");
		if (line)
			snprintf(p->status, sizeof(p->status), "%.*s",
				 (int)strcspn(line, "\n"), line);
	}
	return NULL;
}

static void run_in_thread(enum vm_thread_kind kind, enum vm_seccomp_mode mode,
			  void *(*fn)(void *), void *arg)
{
	enum vm_seccomp_mode prev = vm_thread_set_seccomp(mode);
	pthread_t t;

	ck_assert_int_eq(vm_thread_create_kind(&t, kind, "sc-test", fn, arg), 0);
	vm_thread_set_seccomp(prev);
	pthread_join(t, NULL);
}

/* Each kind's thread runs filtered (mode 2), off leaves it unfiltered;
 * in a child process so the filters' SIGSYS handler stays there. */
START_TEST(each_kind_filtered)
{
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct probe p;

		for (unsigned i = 0; i < 3; i++) {	/* main: below */
			memset(&p, 0, sizeof(p));
			run_in_thread(filtered[i], VM_SECCOMP_ON, probe_thread, &p);
			if (!strstr(p.status, "\t2"))
				child_exit(10 + (int)i);
		}
		memset(&p, 0, sizeof(p));
		run_in_thread(VM_THREAD_DEVICE, VM_SECCOMP_OFF, probe_thread, &p);
		if (!strstr(p.status, "\t0"))
			child_exit(20);
		memset(&p, 0, sizeof(p));
		run_in_thread(VM_THREAD_PLAIN, VM_SECCOMP_ON, probe_thread, &p);
		if (!strstr(p.status, "\t0"))
			child_exit(21);
		/* the main thread filters itself */
		if (vm_seccomp_install(VM_THREAD_MAIN, VM_SECCOMP_ON, p.status,
				       sizeof(p.status)))
			child_exit(30);
		memset(&p, 0, sizeof(p));
		probe_thread(&p);
		child_exit(strstr(p.status, "\t2") ? 0 : 31);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "child status %#x", st);
}
END_TEST

static void *idle_thread(void *arg)
{
	(void)arg;
	return NULL;
}

/* Run a child with VMM_TEST_SECCOMP_VIOLATE=kind and the given mode;
 * returns its wait status, its stderr in out. */
static int violate(enum vm_thread_kind kind, enum vm_seccomp_mode mode,
		   char *out, size_t cap)
{
	int p[2], st;
	ssize_t n, got = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char err[256];

		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		setenv("VMM_TEST_SECCOMP_VIOLATE", vm_thread_kind_name(kind), 1);
		if (kind == VM_THREAD_MAIN) {
			pthread_setname_np(pthread_self(), "sc-test");
			if (vm_seccomp_install(kind, mode, err, sizeof(err)))
				child_exit(3);
		} else {
			run_in_thread(kind, mode, idle_thread, NULL);
		}
		child_exit(0);
	}
	close(p[1]);
	while (got < (ssize_t)cap - 1 &&
	       (n = read(p[0], out + got, cap - 1 - (size_t)got)) > 0)
		got += n;
	out[got] = '\0';
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return st;
}

START_TEST(forbidden_call_exits_70)
{
	enum vm_thread_kind kind = filtered[_i];
	char out[512], want[128];
	int st = violate(kind, VM_SECCOMP_ON, out, sizeof(out));

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 70,
		      "%s: status %#x, stderr: %s", vm_thread_kind_name(kind),
		      st, out);
	snprintf(want, sizeof(want),
		 "vmm: seccomp: forbidden syscall getppid (%d) in thread sc-test\n",
		 SYS_getppid);
	ck_assert_msg(strstr(out, want), "stderr: '%s'", out);
	/* the documented line is the last one */
	ck_assert_str_eq(out + strlen(out) - strlen(want), want);
}
END_TEST

START_TEST(log_mode_lets_it_through)
{
	char out[512];
	int st = violate(VM_THREAD_DEVICE, VM_SECCOMP_LOG, out, sizeof(out));

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s",
		      st, out);
	st = violate(VM_THREAD_DEVICE, VM_SECCOMP_OFF, out, sizeof(out));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s",
		      st, out);
	ck_assert_str_eq(out, "");
}
END_TEST

/* ---- the block I/O engines under the device filter ---- */

struct op {
	struct io_cb cb;	/* first: the callback's cb is the op */
	int64_t res;
	int calls;
};

static void op_done(struct io_cb *cb, int64_t res)
{
	struct op *o = (struct op *)cb;

	o->res = res;
	o->calls++;
}

struct engine_work {
	struct io_engine *e;
	int fd;
	int failed;	/* which step, 0: none */
};

static int finish(struct io_engine *e, struct op *o)
{
	io_engine_submit(e);
	while (io_engine_inflight(e) > 0)
		if (io_engine_wait(e) < 0)
			return -1;
	return o->calls == 1 ? 0 : -1;
}

/* What a device thread does with its engine: write, flush, punch a hole,
 * read back. */
static void *engine_thread(void *arg)
{
	struct engine_work *w = arg;
	static char buf[65536], back[65536];
	struct iovec iov[2] = { { buf, 4096 }, { buf + 4096, sizeof(buf) - 4096 } };
	struct iovec riov = { back, sizeof(back) };
	struct op o;

	memset(buf, 0x5a, sizeof(buf));
	o = (struct op){ .cb.fn = op_done };
	if (io_engine_writev(w->e, w->fd, iov, 2, 0, &o.cb) ||
	    finish(w->e, &o) || o.res != (int64_t)sizeof(buf))
		return w->failed = 1, NULL;
	o = (struct op){ .cb.fn = op_done };
	if (io_engine_fsync(w->e, w->fd, true, &o.cb) || finish(w->e, &o) ||
	    o.res < 0)
		return w->failed = 2, NULL;
	o = (struct op){ .cb.fn = op_done };
	if (io_engine_fallocate(w->e, w->fd,
				FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				0, 4096, &o.cb) || finish(w->e, &o) || o.res < 0)
		return w->failed = 3, NULL;
	o = (struct op){ .cb.fn = op_done };
	if (io_engine_readv(w->e, w->fd, &riov, 1, 0, &o.cb) ||
	    finish(w->e, &o) || o.res != (int64_t)sizeof(back))
		return w->failed = 4, NULL;
	for (size_t i = 0; i < sizeof(back); i++)
		if (back[i] != (i < 4096 ? 0 : 0x5a))
			return w->failed = 5, NULL;
	return NULL;
}

START_TEST(engines_work_filtered)
{
	static const char *const engines[] = { "io_uring", "sync" };
	pid_t pid;
	int st;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char err[256] = "", path[] = "/tmp/vmm-test-seccomp.XXXXXX";
		struct engine_work w = { .fd = mkstemp(path) };

		if (w.fd < 0)
			child_exit(2);
		unlink(path);
		if (!strcmp(engines[_i], "sync"))
			setenv("VMM_IO_ENGINE", "sync", 1);
		w.e = io_engine_create(64, err, sizeof(err));	/* setup */
		if (!w.e)
			child_exit(3);
		run_in_thread(VM_THREAD_DEVICE, VM_SECCOMP_ON, engine_thread, &w);
		io_engine_destroy(w.e);
		child_exit(w.failed ? 10 + w.failed : 0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "engine %s: child status %#x", engines[_i], st);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("seccomp");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, modes_parse);
	tcase_add_test(tc, option_sets_mode);
	tcase_add_test(tc, environment_default);
	tcase_add_test(tc, each_kind_filtered);
	tcase_add_loop_test(tc, forbidden_call_exits_70, 0,
			    sizeof(filtered) / sizeof(filtered[0]));
	tcase_add_test(tc, log_mode_lets_it_through);
	tcase_add_loop_test(tc, engines_work_filtered, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(suite());
}
