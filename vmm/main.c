/* vmm/main.c - ./vmm: the command line around the library API (vmm.h).
 * Each option goes through vmm_config_set() (the library's parser); the
 * VM is a struct vmm.  What only a command line does is here: --help and
 * --version, the terminal (raw mode, Ctrl-A x to quit), stdin as console
 * input, signals turned into a stop, and the exit status (README "Exit
 * status"). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "vmm/options.h"
#include "vmm/seccomp.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"

#define ESCAPE_CHAR	0x01	/* Ctrl-A, then x: quit (as QEMU) */

static struct termios saved_tty;
static bool tty_raw;

static void restore_tty(void)
{
	if (tty_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
		tty_raw = false;
	}
}

static void raw_tty(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty))
		return;
	t = saved_tty;
	cfmakeraw(&t);
	t.c_oflag |= OPOST | ONLCR;	/* keep our own messages readable */
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) {
		tty_raw = true;
		atexit(restore_tty);
	}
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("vmm: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Console input: Ctrl-A x quits (in raw mode), Ctrl-A Ctrl-A sends one
 * Ctrl-A, other escapes are dropped.  The console fd was writable, so a
 * few bytes fit.  Returns false once stdin is done. */
static bool console_input(struct vmm *v, bool *escape)
{
	char buf[64];
	ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
	ssize_t i, j = 0;

	if (got <= 0)
		return false;	/* EOF: no more console input */
	for (i = 0; i < got; i++) {
		if (*escape) {
			*escape = false;
			if (buf[i] == 'x') {
				say("quit from the console (Ctrl-A x)");
				vmm_stop_status(v, 130);
				break;
			}
			if (buf[i] != ESCAPE_CHAR)
				continue;	/* unknown escape: drop it */
		} else if (buf[i] == ESCAPE_CHAR && tty_raw) {
			*escape = true;
			continue;
		}
		buf[j++] = buf[i];
	}
	write_all(vmm_console_fd(v), buf, (size_t)j);
	return true;
}

/* Wait for the VM to stop, feeding console input (input) and copying
 * console output to stdout (output: --serial pipe); returns the status. */
static int run_main_loop(struct vmm *v, bool input, bool output, int sigfd)
{
	int con = vmm_console_fd(v);
	bool escape = false;

	for (;;) {
		struct pollfd w = { .fd = con, .events = POLLOUT };
		/* stdin only while the console takes more: no busy loop */
		bool writable = input && poll(&w, 1, 0) > 0 && (w.revents & POLLOUT);
		struct pollfd p[4] = {
			{ .fd = vmm_event_fd(v), .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
			{ .fd = !input ? -1 : writable ? STDIN_FILENO : con,
			  .events = writable ? POLLIN : POLLOUT },
			{ .fd = output ? con : -1, .events = POLLIN },
		};
		char buf[4096];
		ssize_t n;

		if (poll(p, 4, -1) < 0 && errno != EINTR)
			return VMM_EXIT_INTERNAL;
		if (p[0].revents) {	/* events: only the exit matters here */
			n = read(p[0].fd, buf, sizeof(buf));
			if (!output && (n <= 0 || vmm_wait(v, 0) >= 0))
				return vmm_wait(v, -1);	/* EOF: after exit */
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				say("killed by signal %u", si.ssi_signo);
				vmm_stop_status(v, 128 + (int)si.ssi_signo);
			}
		}
		if (writable && (p[2].revents & (POLLIN | POLLHUP | POLLERR)))
			input = console_input(v, &escape);
		if (p[3].revents) {
			n = read(con, buf, sizeof(buf));
			if (n > 0)
				write_all(STDOUT_FILENO, buf, (size_t)n);
			else	/* end of the console: the VM is done */
				return vmm_wait(v, -1);
		}
	}
}

/* Signals: the main thread takes them through a signalfd (the library's
 * threads block every signal). */
static int signals_to_fd(void)
{
	sigset_t sigs;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &sigs, SFD_CLOEXEC);
}

/* argv into c through vmm_config_set; --help / --version noted.  0 or
 * -1 after the error line. */
static int parse_args(int argc, char **argv, struct vmm_config *c,
		      bool *help, bool *version, const char **serial)
{
	char err[512];

	for (int i = 1; i < argc; i++) {
		char *name, *val;

		if (options_next(argc, argv, &i, &name, &val, err, sizeof(err))) {
			say("%s", err);
			return -1;
		}
		if (!strcmp(name, "help") || !strcmp(name, "version")) {
			*(name[0] == 'h' ? help : version) = true;
			continue;
		}
		if (vmm_config_set(c, name, val)) {
			say("%s", vmm_config_error(c));
			return -1;
		}
		if (!strcmp(name, "serial"))
			*serial = val;
	}
	return 0;
}

static int run(int argc, char **argv, struct vmm_config *c)
{
	bool help = false, version = false, tty, pipe_mode;
	const char *serial = "tty";
	char err[256];
	enum vm_seccomp_mode seccomp;
	struct vmm *v;
	int sigfd, status, r;

	/* the command line's console is the terminal (the library's: a pipe) */
	if (vmm_config_set(c, "serial", "tty") ||
	    parse_args(argc, argv, c, &help, &version, &serial))
		return VMM_EXIT_USAGE;
	if (help) {
		options_usage(stdout);
		return 0;
	}
	if (version) {
		printf("vmm %s\n", vmm_version());
		return 0;
	}
	tty = !strcmp(serial, "tty") || !strcmp(serial, "stdio");
	pipe_mode = !strcmp(serial, "pipe");
	sigfd = signals_to_fd();
	v = vmm_create(c);
	if (!v) {
		status = vmm_exit_status(-errno);
		say("%s", vmm_error(NULL));
		close(sigfd);
		return status;
	}
	if (tty) {
		raw_tty();
		/* the CLI writes whole chunks or waits for POLLOUT */
		fcntl(vmm_console_fd(v), F_SETFL, O_NONBLOCK);
	}
	r = vmm_start(v);
	if (r) {
		say("%s", vmm_error(v));
		status = vmm_exit_status(r);
	} else if (vm_seccomp_resolve(c->seccomp, &seccomp, err, sizeof(err)) ||
		   vm_seccomp_install(VM_THREAD_MAIN, seccomp, err, sizeof(err))) {
		/* the VM's threads are filtered: this one must be too */
		say("%s", err);
		vmm_stop_status(v, VMM_EXIT_INTERNAL);
		status = VMM_EXIT_INTERNAL;
	} else {
		status = run_main_loop(v, tty, pipe_mode, sigfd);
	}
	vmm_destroy(v);
	restore_tty();
	close(sigfd);
	return status;
}

int main(int argc, char **argv)
{
	struct vmm_config *c = vmm_config_new();
	int status;

	if (!c) {
		say("out of memory");
		return VMM_EXIT_UNAVAILABLE;
	}
	status = run(argc, argv, c);
	vmm_config_free(c);
	return status;
}
