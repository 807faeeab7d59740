/* guest/agent/agent.c - the guest agent: /init of the Linux test guest.
 *
 * Mounts proc, sysfs and devtmpfs, loads a job (kernel command line
 * agent.job=..., or a job disk: agent.jobdisk=SERIAL, default serial
 * "agent-job"), runs its steps printing one JSON object per step on the
 * console, then a summary line, and ends the VM through the exit port with
 * the job's status:
 *   0 every step passed, 1 a step failed, 2 no job or a bad job,
 *   3 the agent could not set up the guest.
 *
 * Run as an ordinary process (not PID 1) it is a host test harness for the
 * step logic:  agent --job 'write path=/tmp/f,seed=1,size=4K; ...'
 * It then exits with the status instead of touching any port.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guest/agent/job.h"
#include "guest/agent/report.h"
#include "guest/agent/steps.h"
#include "guest/agent/vsock_server.h"
#include "guest/common/vmm_abi.h"

#define STATUS_OK		0
#define STATUS_STEP_FAILED	1
#define STATUS_BAD_JOB		2
#define STATUS_SETUP_FAILED	3

#define JOB_TEXT_MAX	65536
#define DEFAULT_JOBDISK	"agent-job"

static bool is_init;
static char cmdline[4096];
static char jobtext[JOB_TEXT_MAX + 1];
static struct job job;

static sigjmp_buf port_fault;

static void on_port_fault(int sig)
{
	(void)sig;
	siglongjmp(port_fault, 1);
}

/* outb from user mode through ioperm; false if the port is not reachable
 * (ioperm refused, or the write faulted). */
static bool port_write(unsigned short port, unsigned char val)
{
	struct sigaction sa = { .sa_handler = on_port_fault }, old_segv, old_ill;
	volatile bool ok = false;

	if (ioperm(port, 1, 1))
		return false;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGILL, &sa, &old_ill);
	if (!sigsetjmp(port_fault, 1)) {
		__asm__ volatile("outb %b0, %w1" : : "a"(val), "Nd"(port));
		ok = true;
	}
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGILL, &old_ill, NULL);
	return ok;
}

static void line_error(int step, const char *op, const char *what)
{
	struct report r;

	report_begin(&r);
	report_int(&r, "step", step);
	report_str(&r, "op", op);
	report_bool(&r, "ok", false);
	report_str(&r, "error", what);
	report_end(&r);
}

/* Sync, unmount what the job mounted, print the summary; the status. */
static int conclude(int status, int nsteps, int passed, int failed,
		    int skipped)
{
	struct report r;

	sync();
	if (steps_unmount_all() && status == STATUS_OK)
		status = STATUS_STEP_FAILED;
	sync();
	report_begin(&r);
	report_bool(&r, "summary", true);
	report_int(&r, "steps", nsteps);
	report_int(&r, "passed", passed);
	report_int(&r, "failed", failed);
	report_int(&r, "skipped", skipped);
	report_int(&r, "status", status);
	report_end(&r);
	return status;
}

static __attribute__((noreturn)) void end(int status);

static __attribute__((noreturn)) void finish(int status, int nsteps,
					      int passed, int failed,
					      int skipped)
{
	end(conclude(status, nsteps, passed, failed, skipped));
}

/* Exit with status, or as PID 1 end the VM with it. */
static __attribute__((noreturn)) void end(int status)
{
	if (!is_init)
		exit(status);
	port_write(VMM_PORT_EXIT, (unsigned char)status);
	/* Still here: the VMM has no exit port.  A reboot (reboot=k + the
	 * i8042 reset line) ends the VM, but reads as success, so only a
	 * passed job may take that way out; a failed one halts and is caught
	 * by the VMM's --timeout. */
	line_error(0, "poweroff", status == STATUS_OK ?
		   "exit port write failed; rebooting" :
		   "exit port write failed; halting (the VM ends at its timeout)");
	reboot(status == STATUS_OK ? RB_AUTOBOOT : RB_HALT_SYSTEM);
	for (;;)
		pause();
}

/* The value of key=value on the kernel command line, with the kernel's
 * quoting ("key=a b" or key="a b"); NULL if absent.  Modifies nothing:
 * copies into out. */
static const char *cmdline_get(const char *key, char *out, size_t outlen)
{
	const char *s = cmdline;
	size_t klen = strlen(key);

	while (*s) {
		char param[JOB_TEXT_MAX > 4096 ? 4096 : JOB_TEXT_MAX];
		size_t n = 0;
		bool quoted = false;

		while (*s == ' ' || *s == '\n' || *s == '\t')
			s++;
		if (!*s)
			break;
		for (; *s && (quoted || (*s != ' ' && *s != '\n' && *s != '\t')); s++) {
			if (*s == '"')
				quoted = !quoted;
			else if (n < sizeof(param) - 1)
				param[n++] = *s;
		}
		param[n] = '\0';
		if (!strncmp(param, key, klen) && param[klen] == '=') {
			snprintf(out, outlen, "%s", param + klen + 1);
			return out;
		}
	}
	return NULL;
}

static void setup_init(void)
{
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	/* no /dev/console in the archive: the kernel gave us no stdio */
	if (fcntl(STDOUT_FILENO, F_GETFD) < 0) {
		int fd = open("/dev/console", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
	}
	setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin", 1);
	setenv("HOME", "/", 1);
	setenv("TERM", "dumb", 1);
	port_write(VMM_PORT_BOOT_READY, VMM_BOOT_READY_MAGIC);
}

/* Job text from the job disk with the given serial; NULL (why in err). */
static char *job_from_disk(const char *serial, char *err, size_t errlen)
{
	char dev[64];
	int len;

	if (find_disk_by_serial(serial, dev, sizeof(dev))) {
		snprintf(err, errlen, "no job disk with serial '%s'", serial);
		return NULL;
	}
	len = read_file(dev, jobtext, sizeof(jobtext));
	if (len < 0) {
		snprintf(err, errlen, "cannot read job disk %s: %s", dev,
			 strerror(errno));
		return NULL;
	}
	return jobtext;
}

/* Whether expect (E1|E2|...) names err; unknown names count as no match. */
static bool expect_has(const char *expect, int err)
{
	char list[128], *save = NULL;

	snprintf(list, sizeof(list), "%s", expect);
	for (char *e = strtok_r(list, "|", &save); e; e = strtok_r(NULL, "|", &save))
		if (job_errno_from_name(e) == err)
			return true;
	return false;
}

/* Before running a step: every argument is one its operation takes, and
 * expect= names only errnos the agent knows.  0, or -1 with res filled in. */
static int check_args(const struct job_step *st, const struct step_op *op,
		      const char *expect, struct step_result *res)
{
	for (int a = 0; a < st->nargs; a++) {
		const char *k = st->args[a].key;
		const char *p = strstr(op->keys, k);
		size_t kl = strlen(k);

		if (!strcmp(k, "expect"))
			continue;
		while (p && !((p == op->keys || p[-1] == ' ') &&
			      (p[kl] == ' ' || p[kl] == '\0')))
			p = strstr(p + 1, k);
		if (!p) {
			res->bad_args = true;
			snprintf(res->msg, sizeof(res->msg),
				 "%s takes no argument '%s' (takes: %s)",
				 st->op, k, *op->keys ? op->keys : "none");
			return -1;
		}
	}
	if (expect) {
		char list[128], *save = NULL;

		snprintf(list, sizeof(list), "%s", expect);
		for (char *e = strtok_r(list, "|", &save); e;
		     e = strtok_r(NULL, "|", &save)) {
			if (!job_errno_from_name(e)) {
				res->bad_args = true;
				snprintf(res->msg, sizeof(res->msg),
					 "expect=%s: '%s' is not a known errno name",
					 expect, e);
				return -1;
			}
		}
	}
	return 0;
}

static int run_job(bool keep_going)
{
	int passed = 0, failed = 0, skipped = 0;
	bool stop = false;

	for (int i = 0; i < job.nsteps; i++) {
		const struct job_step *st = &job.steps[i];
		const struct step_op *op = step_op_find(st->op);
		const char *expect = job_get(st, "expect");
		struct step_result res = { 0, false, "" };
		struct timespec t0, t1;
		struct report r;
		bool ok;
		int rc;

		if (stop) {
			skipped++;
			continue;
		}
		report_begin(&r);
		report_int(&r, "step", i + 1);
		report_str(&r, "op", st->op);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (!op) {
			rc = -1;
			res.bad_args = true;
			snprintf(res.msg, sizeof(res.msg), "unknown operation '%s'", st->op);
		} else {
			rc = check_args(st, op, expect, &res);
			if (rc == 0)
				rc = op->run(st, &r, &res);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ok = rc == 0;
		if (expect && !res.bad_args) {
			/* passes only if the step failed with one of the errnos */
			report_str(&r, "expect", expect);
			if (rc == 0) {
				ok = false;
				snprintf(res.msg, sizeof(res.msg),
					 "succeeded, but %s was expected", expect);
			} else {
				ok = res.err && expect_has(expect, res.err);
			}
		}
		report_bool(&r, "ok", ok);
		if (rc) {
			if (res.err && !res.bad_args)
				report_str(&r, "errno", job_errno_name(res.err));
			report_str(&r, "error", res.msg);
		} else if (!ok) {
			report_str(&r, "error", res.msg);
		}
		report_int(&r, "ms", (t1.tv_sec - t0.tv_sec) * 1000 +
					     (t1.tv_nsec - t0.tv_nsec) / 1000000);
		report_end(&r);
		if (ok) {
			passed++;
		} else {
			failed++;
			stop = !keep_going;
		}
		if (op && !strcmp(op->name, "poweroff"))
			stop = true;
	}
	return conclude(failed ? STATUS_STEP_FAILED : STATUS_OK, job.nsteps,
			passed, failed, skipped);
}

/* Parse text and run it: the "job" line, the steps' lines, the summary. */
int agent_run_job_text(char *text, const char *source, int keep_going)
{
	char err[300];
	struct report r;

	if (job_parse(text, &job, err, sizeof(err))) {
		line_error(0, "job", err);
		return conclude(STATUS_BAD_JOB, 0, 0, 0, 0);
	}
	report_begin(&r);
	report_int(&r, "step", 0);
	report_str(&r, "op", "job");
	report_str(&r, "source", source);
	report_int(&r, "steps", job.nsteps);
	report_bool(&r, "ok", true);
	report_end(&r);
	return run_job(keep_going);
}

int main(int argc, char **argv)
{
	char err[300], val[16];
	const char *text = NULL, *source = NULL, *vsock = NULL;
	bool keep_going = false, job_asked = false;
	char vsock_err[300], vsock_at[128];

	is_init = getpid() == 1;
	if (is_init) {
		setup_init();
		if (read_file("/proc/cmdline", cmdline, sizeof(cmdline)) < 0) {
			line_error(0, "init", "cannot read /proc/cmdline (is /proc mounted?)");
			finish(STATUS_SETUP_FAILED, 0, 0, 0, 0);
		}
		vsock = cmdline_get("agent.vsock", vsock_at, sizeof(vsock_at));
		if (vsock_server_start(vsock, vsock_err, sizeof(vsock_err)) &&
		    vsock)
			line_error(0, "vsock", vsock_err);
		if (cmdline_get("agent.job", jobtext, sizeof(jobtext))) {
			text = jobtext;
			source = "cmdline";
		} else {
			char serial[64];
			bool asked = cmdline_get("agent.jobdisk", serial, sizeof(serial));

			job_asked = asked;
			if (!asked)
				snprintf(serial, sizeof(serial), DEFAULT_JOBDISK);
			text = job_from_disk(serial, err, sizeof(err));
			source = "disk";
			if (!text && !asked)
				snprintf(err, sizeof(err),
					 "no job: give agent.job=STEPS or agent.jobdisk=SERIAL on the kernel command line, or a disk with serial '%s'",
					 DEFAULT_JOBDISK);
		}
		keep_going = cmdline_get("agent.keep_going", val, sizeof(val)) &&
			     !strcmp(val, "1");
	} else {
		for (int i = 1; i < argc; i++) {
			if (!strcmp(argv[i], "--job") && i + 1 < argc) {
				snprintf(jobtext, sizeof(jobtext), "%s", argv[++i]);
				text = jobtext;
				source = "argv";
			} else if (!strcmp(argv[i], "--keep-going")) {
				keep_going = true;
			} else if (!strcmp(argv[i], "--vsock") && i + 1 < argc) {
				/* a host test of the vsock service: unix:PATH */
				if (vsock_server_start(argv[++i], vsock_err,
						       sizeof(vsock_err))) {
					fprintf(stderr, "agent: %s\n", vsock_err);
					return STATUS_SETUP_FAILED;
				}
			} else {
				fprintf(stderr, "usage: %s [--keep-going] [--vsock unix:PATH] --job STEPS  (as PID 1: the job comes from the kernel command line)\n",
					argv[0]);
				return STATUS_BAD_JOB;
			}
		}
		if (!text)
			snprintf(err, sizeof(err), "no job: give --job STEPS");
	}

	/* With a vsock server and no job, the job is to serve the host
	 * until it sends poweroff. */
	if (!text && vsock_serving() && !job_asked) {
		snprintf(jobtext, sizeof(jobtext), "serve");
		text = jobtext;
		source = "vsock";
	}
	if (!text) {
		line_error(0, "job", err);
		finish(STATUS_BAD_JOB, 0, 0, 0, 0);
	}
	end(agent_run_job_text(jobtext, source, keep_going));
}
