/* vmm/main.c - ./vmm: parse the command line, build the VM, boot it, wait
 * for the guest (or the timeout, or a signal) and exit with a status that
 * says what happened (see README "Exit status"). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "devices/legacy.h"
#include "devices/serial.h"
#include "devices/registry.h"
#include "vmm/boot.h"
#include "vmm/options.h"
#include "vmm/vcpu.h"
#include "vmm/vm_private.h"

#define VMM_VERSION	"0.1"
#define ESCAPE_CHAR	0x01	/* Ctrl-A, then x: quit (as QEMU) */
/* Linux on a PVM host: what its emulator cannot run (linux-on-pvm.md) */
#define PVM_LINUX_OPTIONS \
	"noxsave clearcpuid=308,151,297,580,141 pvm_quirks"

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

/* RSS of this process outside the guest RAM mapping, in KiB. */
static long rss_beyond_guest_kib(const struct vm *vm)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	long total = 0, guest = 0, kib;
	bool in_guest = false;
	unsigned long start, end;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)	/* a mapping */
			in_guest = start == (unsigned long)(uintptr_t)vm->mem.host;
		else if (sscanf(line, "Rss: %ld kB", &kib) == 1) {
			total += kib;
			if (in_guest)
				guest += kib;
		}
	}
	fclose(f);
	return total - guest;
}

void vm_boot_ready(struct vm *vm)
{
	static bool reported;
	struct rusage ru;
	double wall, cpu;

	if (!vm->boot_timer || __atomic_exchange_n(&reported, true, __ATOMIC_ACQ_REL))
		return;
	wall = (now_seconds() - vm->start_time) * 1e3;
	getrusage(RUSAGE_SELF, &ru);
	cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
	vm_log("boot-timer", "boot-ready wall_ms=%.3f cpu_ms=%.3f rss_beyond_guest_kib=%ld",
	       wall, cpu, rss_beyond_guest_kib(vm));
}

static int open_serial_output(const struct vmm_config *cfg)
{
	int fd;

	switch (cfg->serial) {
	case SERIAL_OFF:
		return -1;
	case SERIAL_FILE:
		fd = open(cfg->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "vmm: --serial file=%s: %s\n", cfg->serial_path,
				strerror(errno));
			exit(VMM_EXIT_USAGE);
		}
		return fd;
	case SERIAL_TTY:
	default:
		return STDOUT_FILENO;
	}
}

/* Wait for the VM to finish, feeding console input; returns the status. */
static int run_main_loop(struct vm *vm, const struct vmm_config *cfg,
			 struct serial *serial, int sigfd)
{
	double deadline = cfg->timeout > 0 ? vm->start_time + cfg->timeout : 0;
	bool input = cfg->serial == SERIAL_TTY, escape = false;

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = vm->exit_efd, .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
			{ .fd = STDIN_FILENO, .events = POLLIN },
		};
		bool room = input && serial_rx_room(serial) > 0;
		int wait_ms = 50, n;

		if (deadline) {
			double left = deadline - now_seconds();

			if (left <= 0) {
				serial_flush(serial);
				vm_log("vmm", "timeout: the guest ran for %g s, killing it",
				       cfg->timeout);
				vm_request_exit(vm, VMM_EXIT_TIMEOUT);
				deadline = 0;	/* now wait for the exit to land */
				continue;
			}
			if (left * 1e3 < wait_ms)
				wait_ms = (int)(left * 1e3) + 1;
		}
		n = poll(p, room ? 3 : 2, wait_ms);
		serial_flush(serial);
		if (n < 0 && errno != EINTR)
			return VMM_EXIT_INTERNAL;
		if (p[0].revents & POLLIN) {
			int status;

			pthread_mutex_lock(&vm->exit_lock);
			status = vm->exit_status;
			pthread_mutex_unlock(&vm->exit_lock);
			return status;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				vm_log("vmm", "killed by signal %u", si.ssi_signo);
				vm_request_exit(vm, 128 + (int)si.ssi_signo);
			}
			continue;
		}
		if (room && (p[2].revents & (POLLIN | POLLHUP))) {
			char buf[64];
			size_t max = serial_rx_room(serial);
			ssize_t got = read(STDIN_FILENO, buf, max < sizeof(buf) ? max : sizeof(buf));
			ssize_t i, j = 0;

			if (got <= 0) {
				input = false;	/* EOF: no more console input */
				continue;
			}
			for (i = 0; i < got; i++) {
				if (escape) {
					escape = false;
					if (buf[i] == 'x') {
						vm_log("vmm", "quit from the console (Ctrl-A x)");
						vm_request_exit(vm, 130);
						break;
					}
					if (buf[i] != ESCAPE_CHAR)
						continue;	/* unknown escape: drop it */
				} else if (buf[i] == ESCAPE_CHAR && tty_raw) {
					escape = true;
					continue;
				}
				buf[j++] = buf[i];
			}
			serial_receive(serial, buf, (size_t)j);
		}
	}
}

static int die(int status, const char *msg)
{
	restore_tty();
	fprintf(stderr, "vmm: %s\n", msg);
	return status;
}

static int run(int argc, char **argv, struct vmm_config *cfgp)
{
	static struct vm vm;
	struct vmm_config cfg;
	struct boot_info bi;
	struct serial *serial;
	char err[512];
	sigset_t sigs;
	int sigfd, status, serial_fd = -1;
	unsigned i;

	vm.start_time = now_seconds();
	if (options_parse(argc, argv, cfgp, err, sizeof(err)))
		return die(VMM_EXIT_USAGE, err);
	cfg = *cfgp;
	if (cfg.help) {
		options_usage(stdout);
		return 0;
	}
	if (cfg.version) {
		printf("vmm %s\n", VMM_VERSION);
		return 0;
	}
	vm.boot_timer = cfg.boot_timer;

	/* Signals: the main thread takes them through a signalfd; every thread
	 * inherits the mask, vCPU threads unblock only their kick signal. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sigdelset(&sigs, SIGUSR1);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);

	/* The kernel is checked before KVM is touched: bad input is the most
	 * common mistake and deserves its own status. */
	if (access(cfg.kernel, R_OK)) {
		snprintf(err, sizeof(err), "kernel %s: %s", cfg.kernel, strerror(errno));
		return die(VMM_EXIT_BAD_INPUT, err);
	}
	if (cfg.initramfs && access(cfg.initramfs, R_OK)) {
		snprintf(err, sizeof(err), "initramfs %s: %s", cfg.initramfs, strerror(errno));
		return die(VMM_EXIT_BAD_INPUT, err);
	}

	if (vm_create(&vm, cfg.memory, cfg.cpus, err, sizeof(err)) ||
	    vcpus_create(&vm, err, sizeof(err))) {
		vm_close(&vm);
		return die(VMM_EXIT_UNAVAILABLE, err);
	}

	status = VMM_EXIT_BAD_INPUT;
	if (vm_cmdline_append(&vm, "%s", cfg.cmdline ? cfg.cmdline : VMM_DEFAULT_CMDLINE)) {
		snprintf(err, sizeof(err), "--cmdline is longer than %d bytes", VMM_CMDLINE_MAX);
		goto fail;
	}
	if (boot_load_kernel(&vm, cfg.kernel, &bi, err, sizeof(err)))
		goto fail;
	if (bi.is_linux && (cfg.pvm_quirks == TRI_ON ||
			    (cfg.pvm_quirks == TRI_AUTO && vm.pvm_host))) {
		if (vm_cmdline_append(&vm, PVM_LINUX_OPTIONS)) {
			snprintf(err, sizeof(err), "--cmdline leaves no room for the PVM options");
			goto fail;
		}
		if (cfg.pvm_quirks == TRI_AUTO)
			fprintf(stderr, "vmm: PVM host: appending \"" PVM_LINUX_OPTIONS
				"\" to the Linux command line (--pvm-quirks off to stop)\n");
	}

	serial_fd = open_serial_output(&cfg);
	serial = serial_create(&vm, serial_fd, err, sizeof(err));
	status = VMM_EXIT_INTERNAL;
	if (!serial || legacy_devices_create(&vm, err, sizeof(err)))
		goto fail;
	for (i = 0; i < VMM_MAX_DEVICE_TYPES; i++) {
		const struct vmm_device_configs *dc = &cfg.devices[i];

		for (unsigned j = 0; j < dc->count; j++) {
			status = dc->type->create(&vm, (const char *)dc->configs +
						  j * dc->type->config_size,
						  err, sizeof(err));
			if (status)
				goto fail;
		}
	}
	status = VMM_EXIT_BAD_INPUT;
	if (cfg.initramfs && boot_load_initrd(&vm, cfg.initramfs, &bi, err, sizeof(err)))
		goto fail;
	if (boot_setup(&vm, &bi, err, sizeof(err)))
		goto fail;

	status = VMM_EXIT_UNAVAILABLE;
	if (vm_memory_ready(&vm, err, sizeof(err)))
		goto fail;
	if (cfg.serial == SERIAL_TTY)
		raw_tty();
	status = VMM_EXIT_INTERNAL;
	if (vcpus_start(&vm, err, sizeof(err))) {
		vm_request_exit(&vm, VMM_EXIT_INTERNAL);
		vcpus_stop(&vm);
		goto fail;
	}
	status = run_main_loop(&vm, &cfg, serial, sigfd);
	vm_request_exit(&vm, status);	/* make sure every vCPU sees it */
	vcpus_stop(&vm);
	/* where a hung guest was is the first thing a rig wants to know */
	if (status == VMM_EXIT_TIMEOUT)
		for (i = 0; i < vm.ncpus; i++)
			vcpu_dump(&vm.vcpus[i], "state when the timeout fired");
	vm_destroy_devices(&vm);
	if (serial_fd > STDERR_FILENO)
		close(serial_fd);
	vm_close(&vm);
	restore_tty();
	close(sigfd);
	return status;

fail:
	vm_destroy_devices(&vm);
	if (serial_fd > STDERR_FILENO)
		close(serial_fd);
	vm_close(&vm);
	return die(status, err);
}

int main(int argc, char **argv)
{
	struct vmm_config cfg;
	int status = run(argc, argv, &cfg);

	vmm_config_free(&cfg);
	return status;
}
