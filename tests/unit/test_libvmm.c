/* Unit tests: the library API without KVM (vmm/libvmm.c, vmm/events.c,
 * vmm/thread.c): configs and their errors, the thread and object error
 * lines, errno <-> status, the kick signal, the event stream's format and
 * bounds, and what VMM threads inherit. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/events.h"
#include "vmm/options.h"
#include "vmm/thread.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"
#include "tests/unit/check_main.h"

START_TEST(config_errors_leave_it_unchanged)
{
	struct vmm_config *c = vmm_config_new();

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->serial, SERIAL_PIPE);	/* the library's default */
	ck_assert_int_eq(vmm_config_set(c, "memory", "size=64M"), 0);
	ck_assert_int_eq(vmm_config_set(c, "memory", "size=1M"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vmm_config_error(c), "too small"));
	ck_assert_uint_eq(c->memory, 64ULL << 20);
	ck_assert_int_eq(vmm_config_set(c, "--cpus", "boot=3"), 0);
	ck_assert_int_eq(vmm_config_set(c, "cpus", "boot=99"), -EINVAL);
	ck_assert_uint_eq(c->cpus, 3);
	ck_assert_int_eq(vmm_config_set(c, "disk", "path=a.img,format=raw"), 0);
	ck_assert_int_eq(vmm_config_set(c, "disk", "path=b.img"), -EINVAL);
	ck_assert_uint_eq(vmm_config_device_count(c, "disk"), 1);
	ck_assert_int_eq(vmm_config_set(c, "serial", "file=/x/y"), 0);
	ck_assert_int_eq(c->serial, SERIAL_FILE);
	ck_assert_str_eq(c->serial_path, "/x/y");
	ck_assert_int_eq(vmm_config_set(c, "events", "fd=7"), 0);
	ck_assert_int_eq(c->events_fd, 7);
	ck_assert_int_eq(vmm_config_set(c, "events", "fd=-1"), -EINVAL);
	ck_assert_int_eq(vmm_config_set(c, "events", "file=/tmp/e"), 0);
	ck_assert_int_eq(c->events_fd, -1);
	ck_assert_str_eq(c->events_path, "/tmp/e");
	ck_assert_int_eq(vmm_config_set(c, "boot-timer", "off"), 0);
	ck_assert(!c->boot_timer);
	ck_assert_int_eq(vmm_config_set(c, "boot-timer", NULL), 0);
	ck_assert(c->boot_timer);
	ck_assert_int_eq(vmm_config_set(c, "version", NULL), -EINVAL);
	ck_assert(!c->version);
	vmm_config_free(c);
}
END_TEST

/* Values are copied: the caller's buffer may change right after. */
START_TEST(config_copies_values)
{
	struct vmm_config *c = vmm_config_new();
	char buf[64];

	snprintf(buf, sizeof(buf), "/some/kernel");
	ck_assert_int_eq(vmm_config_set(c, "kernel", buf), 0);
	snprintf(buf, sizeof(buf), "path=a.img,format=raw,serial=s1");
	ck_assert_int_eq(vmm_config_set(c, "disk", buf), 0);
	memset(buf, 'x', sizeof(buf) - 1);
	ck_assert_str_eq(c->kernel, "/some/kernel");
	ck_assert_ptr_nonnull(vmm_config_device(c, "disk", 0));
	vmm_config_free(c);
}
END_TEST

START_TEST(create_errors)
{
	struct vmm_config *c = vmm_config_new();

	errno = 0;
	ck_assert_ptr_null(vmm_create(c));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_nonnull(strstr(vmm_error(NULL), "--kernel is required"));
	ck_assert_int_eq(vmm_config_set(c, "kernel", "/nonexistent/kernel"), 0);
	errno = 0;
	ck_assert_ptr_null(vmm_create(c));
	ck_assert_int_eq(errno, ENOEXEC);
	ck_assert_str_eq(vmm_error(NULL),
			 "kernel /nonexistent/kernel: No such file or directory");
	ck_assert_int_eq(vmm_exit_status(-errno), 65);
	vmm_config_free(c);
	ck_assert_int_eq(vmm_exit_status(-EINVAL), 64);
	ck_assert_int_eq(vmm_exit_status(-ENODEV), 69);
	ck_assert_int_eq(vmm_exit_status(-ENOMEM), 69);
	ck_assert_int_eq(vmm_exit_status(-EIO), 70);
	ck_assert_ptr_null(vmm_create(NULL));
	ck_assert_int_eq(vmm_start(NULL), -EINVAL);
	ck_assert_int_eq(vmm_wait(NULL, -1), -EINVAL);
	ck_assert_int_eq(vmm_stop(NULL), -EINVAL);
	ck_assert_int_eq(vmm_console_fd(NULL), -EINVAL);
	ck_assert_int_eq(vmm_event_fd(NULL), -EINVAL);
	ck_assert_int_eq(vmm_config_set(NULL, "kernel", "k"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vmm_error(NULL), "NULL"));
	vmm_destroy(NULL);
	vmm_config_free(NULL);
}
END_TEST

/* Error lines are per thread (vmm_error(NULL)). */
static void *other_thread_error(void *arg)
{
	(void)arg;
	ck_assert_str_eq(vmm_error(NULL), "");
	vmm_start(NULL);
	return strdup(vmm_error(NULL));
}

START_TEST(thread_errors)
{
	pthread_t t;
	void *msg;

	vmm_config_set(NULL, "x", "y");
	ck_assert_int_eq(pthread_create(&t, NULL, other_thread_error, NULL), 0);
	pthread_join(t, &msg);
	ck_assert_ptr_nonnull(strstr(msg, "vmm_start"));
	ck_assert_ptr_nonnull(strstr(vmm_error(NULL), "vmm_config_set"));
	free(msg);
}
END_TEST

START_TEST(kick_signal)
{
	int def = vmm_kick_signal();

	ck_assert_int_eq(def, SIGRTMAX - 1);
	ck_assert_int_eq(vmm_set_kick_signal(SIGSEGV), -EINVAL);
	ck_assert_int_eq(vmm_set_kick_signal(SIGRTMAX + 1), -EINVAL);
	ck_assert_int_eq(vmm_set_kick_signal(SIGUSR2), 0);
	ck_assert_int_eq(vmm_kick_signal(), SIGUSR2);
	ck_assert_int_eq(vmm_set_kick_signal(def), 0);
}
END_TEST

START_TEST(json_escaping)
{
	char out[64];

	ck_assert_str_eq(json_escape(out, sizeof(out), "a\"b\\c\n\x01\xff"),
			 "a\\\"b\\\\c\\u000a\\u0001\\u00ff");
	/* cut whole: never half an escape */
	ck_assert_str_eq(json_escape(out, 8, "ab\"cdef"), "ab\\\"cde");
	ck_assert_str_eq(json_escape(out, 5, "ab\x01"), "ab");
}
END_TEST

static char *read_all(int fd)
{
	static char buf[1 << 17];
	size_t len = 0;
	ssize_t n;

	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return buf;
}

static unsigned count(const char *s, const char *what)
{
	unsigned n = 0;

	while ((s = strstr(s, what))) {
		n++;
		s++;
	}
	return n;
}

/* Device errors go to the calling thread's VM, at most
 * EVENTS_DEVICE_ERRORS lines, and the exit line always fits after them,
 * even with nobody reading. */
START_TEST(events_bounded)
{
	char err[128];
	struct vm_events *ev = vm_events_create(-1, err, sizeof(err));
	struct vm_events *other = vm_events_create(-1, err, sizeof(err));
	char big[2000];
	char *all;

	ck_assert_ptr_nonnull(ev);
	ck_assert_ptr_nonnull(other);
	vm_events_device_error("nobody", "no VM on this thread: dropped");
	memset(big, '"', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vm_thread_set_events(ev);
	vm_events_emit(ev, "boot-ready", "\"wall_ms\":%.3f", 1.5);
	for (int i = 0; i < 1000; i++)
		vm_events_device_error("virtio-blk0", i % 2 ? big : "I/O error at sector 8: EIO");
	vm_thread_set_events(NULL);
	ck_assert_uint_eq(vm_events_device_errors(ev), 1000);
	ck_assert_uint_eq(vm_events_device_errors(other), 0);
	vm_events_emit(ev, "exit", "\"status\":%d", 0);
	vm_events_close(ev);
	vm_events_emit(ev, "late", "\"x\":%d", 1);	/* after close: nothing */
	all = read_all(vm_events_fd(ev));
	ck_assert_int_eq(strncmp(all, "{\"event\":\"boot-ready\",\"wall_ms\":1.500}\n", 39), 0);
	ck_assert_uint_le(count(all, "device-error"), EVENTS_DEVICE_ERRORS);
	ck_assert_uint_ge(count(all, "device-error"), 10);
	ck_assert_uint_ge(count(all, "\"kind\":\"io\""), 5);
	ck_assert_ptr_nonnull(strstr(all, "{\"event\":\"exit\",\"status\":0}\n"));
	ck_assert_str_eq(strstr(all, "{\"event\":\"exit\""), "{\"event\":\"exit\",\"status\":0}\n");
	for (char *l = all; *l; l = strchr(l, '\n') + 1)
		ck_assert_uint_lt((size_t)(strchr(l, '\n') - l), EVENTS_LINE_MAX);
	vm_events_destroy(ev);
	vm_events_destroy(other);
}
END_TEST

struct inherit {
	struct vm_events *seen;
	sigset_t mask;
};

static void *inherit_thread(void *arg)
{
	struct inherit *in = arg;

	in->seen = vm_thread_events();
	pthread_sigmask(SIG_SETMASK, NULL, &in->mask);
	return NULL;
}

/* A VMM thread blocks every signal and works for its creator's VM. */
START_TEST(threads_inherit)
{
	struct vm_events *ev = (struct vm_events *)0x1234;	/* never used */
	struct inherit in = { 0 };
	pthread_t t;

	vm_thread_set_events(ev);
	ck_assert_int_eq(vm_thread_create(&t, inherit_thread, &in), 0);
	pthread_join(t, NULL);
	vm_thread_set_events(NULL);
	ck_assert_ptr_eq(in.seen, ev);
	ck_assert(sigismember(&in.mask, SIGINT));
	ck_assert(sigismember(&in.mask, SIGPIPE));
	ck_assert(sigismember(&in.mask, SIGRTMAX - 1));
	ck_assert(sigismember(&in.mask, SIGCHLD));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("libvmm");
	TCase *tc = tcase_create("api");

	tcase_add_test(tc, config_errors_leave_it_unchanged);
	tcase_add_test(tc, config_copies_values);
	tcase_add_test(tc, create_errors);
	tcase_add_test(tc, thread_errors);
	tcase_add_test(tc, kick_signal);
	tcase_add_test(tc, json_escaping);
	tcase_add_test(tc, events_bounded);
	tcase_add_test(tc, threads_inherit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(suite());
}
