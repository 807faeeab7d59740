/* vmm/main.c - ./vmm: the command line around vmm/app.h.  Parse the
 * options, build and start the VM, feed it console input (raw tty, Ctrl-A x
 * to quit), turn signals into a stop, and exit with a status that says
 * what happened (see README "Exit status"). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "vmm/app.h"
#include "vmm/options.h"
#include "vmm/vm.h"

#define VMM_VERSION	"0.1"
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

/* Console input: Ctrl-A x quits (in raw mode), Ctrl-A Ctrl-A sends one
 * Ctrl-A, other escapes are dropped.  Returns false once stdin is done. */
static bool console_input(struct app_vm *v, bool *escape)
{
	char buf[64];
	size_t max = app_vm_console_room(v);
	ssize_t got = read(STDIN_FILENO, buf, max < sizeof(buf) ? max : sizeof(buf));
	ssize_t i, j = 0;

	if (got <= 0)
		return false;	/* EOF: no more console input */
	for (i = 0; i < got; i++) {
		if (*escape) {
			*escape = false;
			if (buf[i] == 'x') {
				vm_log("vmm", "quit from the console (Ctrl-A x)");
				app_vm_stop(v, 130);
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
	app_vm_console_input(v, buf, (size_t)j);
	return true;
}

/* Wait for the VM to stop, feeding console input; returns the status. */
static int run_main_loop(struct app_vm *v, bool input, int sigfd)
{
	bool escape = false;

	for (;;) {
		int wait_ms = app_vm_service(v), status, n;
		struct pollfd p[3] = {
			{ .fd = app_vm_exit_fd(v), .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
			{ .fd = STDIN_FILENO, .events = POLLIN },
		};
		bool room = input && app_vm_console_room(v) > 0;

		n = poll(p, room ? 3 : 2, wait_ms);
		if (n < 0 && errno != EINTR)
			return VMM_EXIT_INTERNAL;
		status = app_vm_status(v);
		if (status >= 0)
			return status;
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				vm_log("vmm", "killed by signal %u", si.ssi_signo);
				app_vm_stop(v, 128 + (int)si.ssi_signo);
			}
			continue;
		}
		if (room && (p[2].revents & (POLLIN | POLLHUP)))
			input = console_input(v, &escape);
	}
}

static int die(int status, const char *msg)
{
	restore_tty();
	fprintf(stderr, "vmm: %s\n", msg);
	return status;
}

/* Signals: the main thread takes them through a signalfd; every thread
 * inherits the mask (the vCPUs' kick signal stays blocked too). */
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

static int run(int argc, char **argv, struct vmm_config *cfg)
{
	double start = now_seconds();
	struct app_vm *v;
	char err[512];
	int sigfd, status;

	if (options_parse(argc, argv, cfg, err, sizeof(err)))
		return die(VMM_EXIT_USAGE, err);
	if (cfg->help) {
		options_usage(stdout);
		return 0;
	}
	if (cfg->version) {
		printf("vmm %s\n", VMM_VERSION);
		return 0;
	}
	sigfd = signals_to_fd();
	status = app_vm_create(cfg, start, &v, err, sizeof(err));
	if (status) {
		close(sigfd);
		return die(status, err);
	}
	if (cfg->serial == SERIAL_TTY)
		raw_tty();
	status = app_vm_start(v, err, sizeof(err));
	if (status) {
		app_vm_destroy(v);
		close(sigfd);
		return die(status, err);
	}
	status = run_main_loop(v, cfg->serial == SERIAL_TTY, sigfd);
	app_vm_stop(v, status);	/* make sure every vCPU sees it */
	app_vm_destroy(v);
	restore_tty();
	close(sigfd);
	return status;
}

int main(int argc, char **argv)
{
	struct vmm_config cfg;
	int status = run(argc, argv, &cfg);

	vmm_config_free(&cfg);
	return status;
}
