/* vmm/app.c - a VM composed from its config (see app.h): the one place that
 * knows both the VMM core and the devices. */
#include "vmm/app.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "devices/legacy.h"
#include "devices/registry.h"
#include "devices/serial.h"
#include "vmm/boot.h"
#include "vmm/console_watch.h"
#include "vmm/options.h"
#include "vmm/vcpu.h"
#include "vmm/vm_private.h"

/* Linux on a PVM host: what its emulator cannot run (linux-on-pvm.md) */
#define PVM_LINUX_OPTIONS \
	"noxsave clearcpuid=308,151,297,580,141 pvm_quirks"
#define SERVICE_MS	50	/* console output is written at least this often */

struct app_vm {
	struct vm vm;
	const struct vmm_config *cfg;
	double start_time;	/* now_seconds() when the run began */
	double deadline;	/* --timeout; 0: none (or already fired) */
	struct serial *serial;
	int console_fd;		/* -1: discarded; ours to close if > 2 */
	struct console_watch watch;
	bool started;
};

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

/* The vm's on_boot_ready hook (runs once per VM, on a vCPU thread).  CPU
 * time and RSS are the process's: with several VMs, all of them. */
static void report_boot_ready(struct vm *vm, void *opaque)
{
	struct app_vm *v = opaque;
	struct rusage ru;
	double wall, cpu;

	if (!v->cfg->boot_timer)
		return;
	wall = (now_seconds() - v->start_time) * 1e3;
	getrusage(RUSAGE_SELF, &ru);
	cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
	vm_log("boot-timer", "boot-ready wall_ms=%.3f cpu_ms=%.3f rss_beyond_guest_kib=%ld",
	       wall, cpu, rss_beyond_guest_kib(vm));
}

static int open_console(struct app_vm *v, char *err, size_t errlen)
{
	const struct vmm_config *cfg = v->cfg;

	switch (cfg->serial) {
	case SERIAL_OFF:
		v->console_fd = -1;
		return 0;
	case SERIAL_FILE:
		v->console_fd = open(cfg->serial_path,
				     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (v->console_fd < 0) {
			snprintf(err, errlen, "--serial file=%s: %s",
				 cfg->serial_path, strerror(errno));
			return VMM_EXIT_USAGE;
		}
		return 0;
	case SERIAL_TTY:
	default:
		v->console_fd = STDOUT_FILENO;
		return 0;
	}
}

/* Phase: the kernel command line and the kernel itself. */
static int load_kernel(struct app_vm *v, struct boot_info *bi, char *err,
		       size_t errlen)
{
	const struct vmm_config *cfg = v->cfg;

	if (vm_cmdline_append(&v->vm, "%s",
			      cfg->cmdline ? cfg->cmdline : VMM_DEFAULT_CMDLINE)) {
		snprintf(err, errlen, "--cmdline is longer than %d bytes",
			 VMM_CMDLINE_MAX);
		return VMM_EXIT_BAD_INPUT;
	}
	if (boot_load_kernel(&v->vm, cfg->kernel, bi, err, errlen))
		return VMM_EXIT_BAD_INPUT;
	if (bi->is_linux && (cfg->pvm_quirks == TRI_ON ||
			     (cfg->pvm_quirks == TRI_AUTO && v->vm.pvm_host))) {
		if (vm_cmdline_append(&v->vm, PVM_LINUX_OPTIONS)) {
			snprintf(err, errlen,
				 "--cmdline leaves no room for the PVM options");
			return VMM_EXIT_BAD_INPUT;
		}
		if (cfg->pvm_quirks == TRI_AUTO)
			vm_log("vmm", "PVM host: appending \"" PVM_LINUX_OPTIONS
			       "\" to the Linux command line (--pvm-quirks off to stop)");
	}
	return 0;
}

/* Phase: every device in the config, type by type in table order. */
static int create_devices(struct app_vm *v, char *err, size_t errlen)
{
	const struct vmm_config *cfg = v->cfg;
	int status;

	if (open_console(v, err, errlen))
		return VMM_EXIT_USAGE;
	v->serial = serial_create(&v->vm, v->console_fd, console_watch_byte,
				  &v->watch, err, errlen);
	if (!v->serial || legacy_devices_create(&v->vm, err, errlen))
		return VMM_EXIT_INTERNAL;
	for (unsigned i = 0; i < VMM_MAX_DEVICE_TYPES; i++) {
		const struct vmm_device_configs *dc = &cfg->devices[i];

		for (unsigned j = 0; j < dc->count; j++) {
			status = dc->type->create(&v->vm, (const char *)dc->configs +
						  j * dc->type->config_size,
						  err, errlen);
			if (status)
				return status;
		}
	}
	return 0;
}

int app_vm_create(const struct vmm_config *cfg, double start_time,
		  struct app_vm **out, char *err, size_t errlen)
{
	struct app_vm *v;
	struct boot_info bi;
	int status;

	*out = NULL;
	/* The kernel is checked before KVM is touched: bad input is the most
	 * common mistake and deserves its own status. */
	if (access(cfg->kernel, R_OK)) {
		snprintf(err, errlen, "kernel %s: %s", cfg->kernel, strerror(errno));
		return VMM_EXIT_BAD_INPUT;
	}
	if (cfg->initramfs && access(cfg->initramfs, R_OK)) {
		snprintf(err, errlen, "initramfs %s: %s", cfg->initramfs,
			 strerror(errno));
		return VMM_EXIT_BAD_INPUT;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return VMM_EXIT_UNAVAILABLE;
	}
	v->cfg = cfg;
	v->start_time = start_time;
	v->deadline = cfg->timeout > 0 ? start_time + cfg->timeout : 0;
	v->console_fd = -1;
	console_watch_init(&v->watch, &v->vm);
	v->vm.on_boot_ready = report_boot_ready;
	v->vm.on_boot_ready_opaque = v;

	if (vm_create(&v->vm, cfg->memory, cfg->cpus, err, errlen) ||
	    vcpus_create(&v->vm, err, errlen)) {
		status = VMM_EXIT_UNAVAILABLE;
		goto fail;
	}
	status = load_kernel(v, &bi, err, errlen);
	if (!status)
		status = create_devices(v, err, errlen);
	if (!status && cfg->initramfs &&
	    boot_load_initrd(&v->vm, cfg->initramfs, &bi, err, errlen))
		status = VMM_EXIT_BAD_INPUT;
	if (!status && boot_setup(&v->vm, &bi, err, errlen))
		status = VMM_EXIT_BAD_INPUT;
	if (status)
		goto fail;
	*out = v;
	return 0;
fail:
	app_vm_destroy(v);
	return status;
}

int app_vm_start(struct app_vm *v, char *err, size_t errlen)
{
	if (vm_memory_ready(&v->vm, err, errlen))
		return VMM_EXIT_UNAVAILABLE;
	v->started = true;
	if (vcpus_start(&v->vm, err, errlen)) {
		vm_request_exit(&v->vm, VMM_EXIT_INTERNAL);
		vcpus_stop(&v->vm);
		return VMM_EXIT_INTERNAL;
	}
	return 0;
}

int app_vm_service(struct app_vm *v)
{
	int wait_ms = SERVICE_MS;

	serial_flush(v->serial);
	if (v->deadline) {
		double left = v->deadline - now_seconds();

		if (left <= 0) {
			vm_log("vmm", "timeout: the guest ran for %g s, killing it",
			       v->cfg->timeout);
			vm_request_exit(&v->vm, VMM_EXIT_TIMEOUT);
			v->deadline = 0;	/* now wait for the exit to land */
		} else if (left * 1e3 < wait_ms) {
			wait_ms = (int)(left * 1e3) + 1;
		}
	}
	return wait_ms;
}

int app_vm_exit_fd(const struct app_vm *v)
{
	return v->vm.exit_efd;
}

int app_vm_status(struct app_vm *v)
{
	int status;

	pthread_mutex_lock(&v->vm.exit_lock);
	status = v->vm.exiting ? v->vm.exit_status : -1;
	pthread_mutex_unlock(&v->vm.exit_lock);
	return status;
}

int app_vm_wait(struct app_vm *v, int timeout_ms)
{
	double end = timeout_ms < 0 ? 0 : now_seconds() + timeout_ms / 1e3;

	for (;;) {
		struct pollfd p = { .fd = app_vm_exit_fd(v), .events = POLLIN };
		int status = app_vm_status(v), wait_ms;

		if (status >= 0) {
			serial_flush(v->serial);
			return status;
		}
		wait_ms = app_vm_service(v);
		if (end) {
			double left = end - now_seconds();

			if (left <= 0)
				return -1;
			if (left * 1e3 < wait_ms)
				wait_ms = (int)(left * 1e3) + 1;
		}
		if (poll(&p, 1, wait_ms) < 0 && errno != EINTR)
			return -1;
	}
}

void app_vm_stop(struct app_vm *v, int status)
{
	vm_request_exit(&v->vm, status);
}

size_t app_vm_console_room(struct app_vm *v)
{
	return serial_rx_room(v->serial);
}

void app_vm_console_input(struct app_vm *v, const char *buf, size_t n)
{
	serial_receive(v->serial, buf, n);
}

void app_vm_destroy(struct app_vm *v)
{
	if (!v)
		return;
	if (v->started) {
		int status;

		vm_request_exit(&v->vm, VMM_EXIT_INTERNAL);	/* if none yet */
		vcpus_stop(&v->vm);
		status = app_vm_status(v);
		/* where a hung guest was is the first thing a rig wants */
		if (status == VMM_EXIT_TIMEOUT)
			for (unsigned i = 0; i < v->vm.ncpus; i++)
				vcpu_dump(&v->vm.vcpus[i],
					  "state when the timeout fired");
	}
	vm_destroy_devices(&v->vm);
	if (v->console_fd > STDERR_FILENO)
		close(v->console_fd);
	vm_close(&v->vm);
	free(v);
}
