/* vmm/app.c - a VM composed from its config (see app.h): the one place that
 * knows both the VMM core and the devices. */
#include "vmm/app.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/legacy.h"
#include "devices/registry.h"
#include "devices/serial.h"
#include "vmm/boot.h"
#include "vmm/console_watch.h"
#include "vmm/events.h"
#include "vmm/options.h"
#include "vmm/snapshot.h"
#include "vmm/thread.h"
#include "vmm/vcpu.h"
#include "vmm/vm_private.h"

/* Linux on a PVM host: what its emulator cannot run (linux-on-pvm.md) */
#define PVM_LINUX_OPTIONS \
	"noxsave clearcpuid=308,151,297,580,141 pvm_quirks"
#define SERVICE_MS	50	/* console output is written at least this often */
/* serial pipe mode: console output held for a reader that is behind
 * (per VM; beyond it bytes are dropped and the stream says how many) */
#define CONSOLE_RING	(64 * 1024)

struct app_vm {
	struct vm vm;
	const struct vmm_config *cfg;
	double start_time;	/* now_seconds() when the run began */
	double run_time;	/* ... and when the vCPUs started */
	double deadline;	/* --timeout; 0: none (or already fired) */
	struct serial *serial;
	int serial_fd;		/* where the UART writes: -1 nowhere; ours if > 2 */
	struct console_watch watch;
	struct vm_events *events;
	enum vm_seccomp_mode seccomp;	/* its threads' filters */
	int con[2];		/* console socket pair: [0] the program's, [1] ours */
	int wake_efd;		/* wakes the service thread */
	int done_efd;		/* readable once done */

	/* serial pipe mode: output on its way to con[1] */
	pthread_mutex_t ring_lock;
	char *ring;		/* CONSOLE_RING bytes; NULL: not pipe mode */
	size_t ring_head, ring_len;
	unsigned long long ring_dropped;
	bool wake_pending;	/* atomic: wake_efd already written */

	pthread_mutex_t state_lock;	/* started, done */
	bool started, done;
	bool quit;		/* atomic: the service thread is to end */
	int status;		/* atomic: the exit status once done, else -1 */
	pthread_t service;
	bool service_started;

	struct snapshot *restore;	/* --restore: the snapshot, until started */
	bool snap_wanted;		/* atomic: the service thread takes one */
	bool snap_asked;		/* atomic: a snapshot was asked for */
};

/* RSS of this process outside the guest RAM mapping, in KiB. */
static long rss_beyond_guest_kib(const struct vm *vm)
{
	FILE *f = fopen("/proc/self/smaps", "re");
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

/* The vm's on_boot_ready hook (runs once per VM, on a vCPU thread): the
 * event, and the --boot-timer line.  CPU time and RSS are the process's:
 * with several VMs, all of them. */
static void wake_service(struct app_vm *v);

/* A snapshot is due (vCPU thread): the service thread takes it.  One per
 * run; without --snapshot-to the request does nothing.  The asking vCPU
 * parks before it runs the guest again: the snapshot is of the moment
 * the guest asked, however late the service thread gets to it. */
static void want_snapshot(struct vm *vm, void *opaque)
{
	struct app_vm *v = opaque;

	if (!v->cfg->snapshot_dir ||
	    __atomic_exchange_n(&v->snap_asked, true, __ATOMIC_ACQ_REL))
		return;
	vcpus_pause_request(vm);
	__atomic_store_n(&v->snap_wanted, true, __ATOMIC_RELEASE);
	wake_service(v);
}

static void snapshot_request_port(struct vm *vm, void *opaque)
{
	struct app_vm *v = opaque;

	if (v->cfg->snapshot_when == SNAP_WHEN_REQUEST)
		want_snapshot(vm, opaque);
}

static void report_boot_ready(struct vm *vm, void *opaque)
{
	struct app_vm *v = opaque;
	struct rusage ru;
	double now = now_seconds(), wall, cpu;

	if (v->cfg->snapshot_when == SNAP_WHEN_BOOT_READY)
		want_snapshot(vm, opaque);

	wall = (now - v->start_time) * 1e3;
	vm_events_emit(v->events, "boot-ready", "\"wall_ms\":%.3f,\"run_ms\":%.3f",
		       wall, (now - v->run_time) * 1e3);
	if (!v->cfg->boot_timer)
		return;
	getrusage(RUSAGE_SELF, &ru);
	cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
	vm_log("boot-timer", "boot-ready wall_ms=%.3f cpu_ms=%.3f rss_beyond_guest_kib=%ld",
	       wall, cpu, rss_beyond_guest_kib(vm));
}

static void wake_service(struct app_vm *v)
{
	uint64_t one = 1;

	if (!__atomic_exchange_n(&v->wake_pending, true, __ATOMIC_ACQ_REL) &&
	    write(v->wake_efd, &one, sizeof(one)) < 0)
		vm_log("vmm", "cannot wake the service thread: %s", strerror(errno));
}

/* The UART's tap: every byte the guest sends (vCPU thread, UART lock). */
static void console_tap(void *opaque, char c)
{
	struct app_vm *v = opaque;
	bool wake;

	console_watch_byte(&v->watch, c);
	if (!v->ring)
		return;
	pthread_mutex_lock(&v->ring_lock);
	if (v->ring_len < CONSOLE_RING)
		v->ring[(v->ring_head + v->ring_len++) % CONSOLE_RING] = c;
	else
		v->ring_dropped++;
	wake = c == '\n' || v->ring_len == CONSOLE_RING / 2;
	pthread_mutex_unlock(&v->ring_lock);
	if (wake)
		wake_service(v);
}

/* Service thread: send what the ring holds to the program's console end
 * (*gone: the program closed it; discard).  Returns whether something is
 * still waiting. */
static bool ring_flush(struct app_vm *v, bool *gone)
{
	size_t len, chunk;
	ssize_t n = 0;
	char note[96];

	pthread_mutex_lock(&v->ring_lock);
	for (;;) {
		len = v->ring_len;
		if (*gone) {
			v->ring_len = 0;
			v->ring_dropped = 0;
			break;
		}
		if (!len) {
			int k;

			if (!v->ring_dropped)
				break;
			/* the reader caught up: say what it missed, once */
			k = snprintf(note, sizeof(note),
				     "\n[vmm: %llu bytes of console output dropped: "
				     "the console fd was not read]\n", v->ring_dropped);
			memcpy(v->ring, note, (size_t)k);
			v->ring_head = 0;
			v->ring_len = (size_t)k;
			v->ring_dropped = 0;
			continue;
		}
		chunk = CONSOLE_RING - v->ring_head;
		if (chunk > len)
			chunk = len;
		/* only this thread consumes: the bytes stay put unlocked */
		pthread_mutex_unlock(&v->ring_lock);
		n = send(v->con[1], v->ring + v->ring_head, chunk,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		pthread_mutex_lock(&v->ring_lock);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			*gone = true;	/* EPIPE: nobody will read it */
			continue;
		}
		if (n <= 0)
			break;
		v->ring_head = (v->ring_head + (size_t)n) % CONSOLE_RING;
		v->ring_len -= (size_t)n;
	}
	len = v->ring_len;
	pthread_mutex_unlock(&v->ring_lock);
	return len > 0;
}

static const char *exit_reason(int status)
{
	if (status >= 0 && status < 64)
		return "guest";
	switch (status) {
	case VMM_EXIT_TIMEOUT: return "timeout";
	case VMM_EXIT_GUEST_CRASH: return "crash";
	case VMM_EXIT_GUEST_PANIC: return "panic";
	}
	return status > 128 && status <= 128 + 64 ? "signal" : "error";
}

/* The VM has stopped (or will never start): stop the vCPUs, write out
 * what is left, emit the exit event, mark it done.  Once per VM: the
 * service thread, or app_vm_start/stop when there is none (then the
 * console's end-of-file is given here too). */
static void finish(struct app_vm *v)
{
	uint64_t one = 1;
	int status;

	vcpus_stop(&v->vm);
	pthread_mutex_lock(&v->vm.exit_lock);
	status = v->vm.exiting ? v->vm.exit_status : VMM_EXIT_INTERNAL;
	pthread_mutex_unlock(&v->vm.exit_lock);
	/* where a hung guest was is the first thing a rig wants */
	if (status == VMM_EXIT_TIMEOUT)
		for (unsigned i = 0; i < v->vm.ncpus; i++)
			vcpu_dump(&v->vm.vcpus[i], "state when the timeout fired");
	serial_flush(v->serial);
	/* the status first: whoever reads the exit event can vmm_wait it */
	__atomic_store_n(&v->status, status, __ATOMIC_RELEASE);
	vm_events_emit(v->events, "exit",
		       "\"status\":%d,\"reason\":\"%s\",\"wall_ms\":%.3f,"
		       "\"device_errors\":%u", status, exit_reason(status),
		       (now_seconds() - v->start_time) * 1e3,
		       vm_events_device_errors(v->events));
	vm_events_close(v->events);
	if (!v->service_started)
		shutdown(v->con[1], SHUT_WR);
	pthread_mutex_lock(&v->state_lock);
	v->done = true;
	pthread_mutex_unlock(&v->state_lock);
	if (write(v->done_efd, &one, sizeof(one)) < 0)
		vm_log("vmm", "cannot signal the end: %s", strerror(errno));
}

/* Periodic work while the VM runs: write out console output, enforce the
 * timeout.  Returns how many milliseconds may pass before the next call. */
static int service_tick(struct app_vm *v)
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

/* Console input from the program, as much as the UART takes.  Returns
 * false once there will be no more (end-of-file or error). */
static bool console_input(struct app_vm *v)
{
	char buf[64];
	size_t room = serial_rx_room(v->serial);
	ssize_t n;

	if (!room)
		return true;
	n = recv(v->con[1], buf, room < sizeof(buf) ? room : sizeof(buf),
		 MSG_DONTWAIT);
	if (n > 0) {
		serial_receive(v->serial, buf, (size_t)n);
		return true;
	}
	return n < 0 && (errno == EAGAIN || errno == EINTR);
}

/* Service thread: take the snapshot asked for, then let the guest go on
 * or end the VM (then=exit: status 0).  A snapshot that fails ends the VM
 * with VMM_EXIT_INTERNAL: whoever asked for it wants to know. */
static void take_snapshot(struct app_vm *v)
{
	const struct vmm_config *cfg = v->cfg;
	struct snapshot_stats st;
	char err[400];

	if (snapshot_take(&v->vm, cfg, cfg->snapshot_dir, &st, err,
			  sizeof(err))) {
		vm_log("snapshot", "%s", err);
		vm_request_exit(&v->vm, VMM_EXIT_INTERNAL);
		vcpus_resume(&v->vm);
		return;
	}
	vm_log("snapshot", "%s: %.3f ms, state %llu bytes, memory %llu of "
	       "%llu bytes written", cfg->snapshot_dir, st.ms,
	       (unsigned long long)st.state_bytes,
	       (unsigned long long)st.memory_bytes,
	       (unsigned long long)v->vm.mem.size);
	vm_events_emit(v->events, "snapshot",
		       "\"ms\":%.3f,\"state_bytes\":%llu,\"memory_bytes\":%llu",
		       st.ms, (unsigned long long)st.state_bytes,
		       (unsigned long long)st.memory_bytes);
	if (cfg->snapshot_then_exit)
		vm_request_exit(&v->vm, 0);	/* the vCPUs stay parked */
	else
		vcpus_resume(&v->vm);
}

/* The VM's own thread while it is started (see app.h). */
static void *service_thread(void *arg)
{
	struct app_vm *v = arg;
	bool exited = false, input = true, shut = false, gone = false;
	bool pending = false;

	pthread_setname_np(pthread_self(), "vmm-service");
	for (;;) {
		int wait_ms = exited ? -1 : service_tick(v);
		/* input only while the UART has room (else: the next tick) */
		bool want_in = !exited && input && serial_rx_room(v->serial);
		short cev = (short)((want_in ? POLLIN : 0) | (pending ? POLLOUT : 0));
		struct pollfd p[3] = {
			{ .fd = v->wake_efd, .events = POLLIN },
			{ .fd = exited ? -1 : v->vm.exit_efd, .events = POLLIN },
			{ .fd = cev ? v->con[1] : -1, .events = cev },
		};

		if (poll(p, 3, wait_ms) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN) {
			uint64_t n;

			__atomic_store_n(&v->wake_pending, false, __ATOMIC_RELEASE);
			if (read(v->wake_efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
				break;
		}
		if (__atomic_load_n(&v->quit, __ATOMIC_ACQUIRE))
			break;
		if (!exited && __atomic_exchange_n(&v->snap_wanted, false,
						   __ATOMIC_ACQ_REL))
			take_snapshot(v);
		/* a hang-up or error ends input: recv says so */
		if (want_in && (p[2].revents & (POLLIN | POLLHUP | POLLERR)))
			input = console_input(v);
		if (p[1].revents & POLLIN) {
			exited = true;
			finish(v);
		}
		if (v->ring)
			pending = ring_flush(v, &gone);
		if (exited && !pending && !shut) {
			/* all output is out: the program reads end-of-file */
			shutdown(v->con[1], SHUT_WR);
			shut = true;
		}
	}
	if (!exited) {	/* poll failed: still end the VM properly */
		vm_request_exit(&v->vm, VMM_EXIT_INTERNAL);
		finish(v);
	}
	return NULL;
}

static int open_console(struct app_vm *v, char *err, size_t errlen)
{
	const struct vmm_config *cfg = v->cfg;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, v->con) < 0) {
		snprintf(err, errlen, "console socket: %s", strerror(errno));
		v->con[0] = v->con[1] = -1;
		return VMM_EXIT_UNAVAILABLE;
	}
	switch (cfg->serial) {
	case SERIAL_OFF:
		v->serial_fd = -1;
		return 0;
	case SERIAL_PIPE:
		v->serial_fd = -1;	/* the tap fills the ring */
		v->ring = malloc(CONSOLE_RING);
		if (!v->ring) {
			snprintf(err, errlen, "out of memory");
			return VMM_EXIT_UNAVAILABLE;
		}
		return 0;
	case SERIAL_FILE:
		v->serial_fd = open(cfg->serial_path,
				    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (v->serial_fd < 0) {
			snprintf(err, errlen, "--serial file=%s: %s",
				 cfg->serial_path, strerror(errno));
			return VMM_EXIT_USAGE;
		}
		return 0;
	case SERIAL_TTY:
	default:
		v->serial_fd = STDOUT_FILENO;
		return 0;
	}
}

/* The event pipe, and the --events file or descriptor. */
static int open_events(struct app_vm *v, char *err, size_t errlen)
{
	const struct vmm_config *cfg = v->cfg;
	int fd = -1;

	if (cfg->events_path) {
		fd = open(cfg->events_path,
			  O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0) {
			snprintf(err, errlen, "--events file=%s: %s",
				 cfg->events_path, strerror(errno));
			return VMM_EXIT_USAGE;
		}
	} else if (cfg->events_fd >= 0) {
		/* our own copy: the program may close its descriptor */
		fd = fcntl(cfg->events_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			snprintf(err, errlen, "--events fd=%d: %s", cfg->events_fd,
				 strerror(errno));
			return VMM_EXIT_USAGE;
		}
	}
	v->events = vm_events_create(fd, err, errlen);
	return v->events ? 0 : VMM_EXIT_UNAVAILABLE;
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

	status = open_console(v, err, errlen);
	if (status)
		return status;
	v->serial = serial_create(&v->vm, v->serial_fd, console_tap, v,
				  err, errlen);
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

/* Everything but KVM: the parts app_vm_destroy can always take apart. */
static struct app_vm *app_vm_alloc(const struct vmm_config *cfg,
				   double start_time)
{
	struct app_vm *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->cfg = cfg;
	v->start_time = start_time;
	v->serial_fd = v->con[0] = v->con[1] = -1;
	v->status = -1;
	v->vm.kvm_fd = v->vm.vm_fd = v->vm.exit_efd = -1;
	for (unsigned i = 0; i < VMM_MAX_CPUS; i++)
		v->vm.vcpus[i].fd = -1;
	pthread_mutex_init(&v->ring_lock, NULL);
	pthread_mutex_init(&v->state_lock, NULL);
	v->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	v->done_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	console_watch_init(&v->watch, &v->vm);
	v->vm.on_boot_ready = report_boot_ready;
	v->vm.on_boot_ready_opaque = v;
	v->vm.on_snapshot_request = snapshot_request_port;
	v->vm.on_snapshot_request_opaque = v;
	return v;
}

/* --snapshot-to: the directory must be there or creatable, before any
 * guest runs for nothing. */
static int check_snapshot_dir(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "--snapshot-to %s: %s", dir, strerror(errno));
		return VMM_EXIT_USAGE;
	}
	if (access(dir, W_OK | X_OK)) {
		snprintf(err, errlen, "--snapshot-to %s: %s", dir, strerror(errno));
		return VMM_EXIT_USAGE;
	}
	return 0;
}

/* Phase (restore): the VM's and every device's state from the snapshot. */
static int restore_state(struct app_vm *v, char *err, size_t errlen)
{
	int status;

	/* KVM state that points into RAM (kvmclock, async PF) wants it
	 * registered first */
	if (vm_memory_ready(&v->vm, err, errlen))
		return VMM_EXIT_UNAVAILABLE;
	status = snapshot_restore(&v->vm, v->restore, err, errlen);
	/* the guest was past its boot-ready marker */
	__atomic_store_n(&v->vm.boot_ready_seen, true, __ATOMIC_RELEASE);
	return status;
}

int app_vm_create(const struct vmm_config *cfg, double start_time,
		  struct app_vm **out, char *err, size_t errlen)
{
	struct vm_events *prev;
	enum vm_seccomp_mode prev_seccomp;
	struct snapshot *snap = NULL;
	struct app_vm *v;
	struct boot_info bi;
	uint64_t memory = cfg->memory;
	unsigned cpus = cfg->cpus;
	int status;

	*out = NULL;
	if (vmm_config_check(cfg, err, errlen))
		return VMM_EXIT_USAGE;
	if (cfg->snapshot_dir) {
		status = check_snapshot_dir(cfg->snapshot_dir, err, errlen);
		if (status)
			return status;
	}
	if (cfg->restore_dir) {
		/* every check the files allow, before KVM is touched */
		status = snapshot_open(cfg->restore_dir, cfg, &snap, err, errlen);
		if (status)
			return status;
		memory = snap->machine.mem_size;
		cpus = snap->machine.ncpus;
	} else {
		/* The kernel is checked before KVM is touched: bad input is
		 * the most common mistake and deserves its own status. */
		if (access(cfg->kernel, R_OK)) {
			snprintf(err, errlen, "kernel %s: %s", cfg->kernel,
				 strerror(errno));
			return VMM_EXIT_BAD_INPUT;
		}
		if (cfg->initramfs && access(cfg->initramfs, R_OK)) {
			snprintf(err, errlen, "initramfs %s: %s", cfg->initramfs,
				 strerror(errno));
			return VMM_EXIT_BAD_INPUT;
		}
	}
	v = app_vm_alloc(cfg, start_time);
	if (!v || v->wake_efd < 0 || v->done_efd < 0) {
		snprintf(err, errlen, "out of memory or descriptors");
		app_vm_destroy(v);
		snapshot_close(snap);
		return VMM_EXIT_UNAVAILABLE;
	}
	v->restore = snap;
	status = open_events(v, err, errlen);
	if (status) {
		app_vm_destroy(v);
		return status;
	}
	/* device threads made from here on report to this VM's events,
	 * under its seccomp mode (checked by vmm_config_check) */
	vm_seccomp_resolve(cfg->seccomp, &v->seccomp, err, errlen);
	prev = vm_thread_set_events(v->events);
	prev_seccomp = vm_thread_set_seccomp(v->seccomp);
	if (vm_create_from(&v->vm, memory, cpus, snap ? snap->mem_fd : -1,
			   err, errlen) ||
	    vcpus_create(&v->vm, err, errlen)) {
		status = VMM_EXIT_UNAVAILABLE;
		goto fail;
	}
	if (snap) {
		/* the devices in the same order claim the same windows */
		status = create_devices(v, err, errlen);
		if (!status)
			status = restore_state(v, err, errlen);
		if (status)
			goto fail;
		vm_thread_set_events(prev);
		vm_thread_set_seccomp(prev_seccomp);
		*out = v;
		return 0;
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
	vm_thread_set_events(prev);
	vm_thread_set_seccomp(prev_seccomp);
	*out = v;
	return 0;
fail:
	vm_thread_set_events(prev);
	vm_thread_set_seccomp(prev_seccomp);
	app_vm_destroy(v);
	return status;
}

int app_vm_start(struct app_vm *v, char *err, size_t errlen)
{
	struct vm_events *prev = vm_thread_set_events(v->events);
	enum vm_seccomp_mode prev_seccomp =
		vm_thread_set_seccomp(v->seccomp);
	int r, status = 0;

	pthread_mutex_lock(&v->state_lock);
	if (v->done) {
		pthread_mutex_unlock(&v->state_lock);
		vm_thread_set_events(prev);
		vm_thread_set_seccomp(prev_seccomp);
		snprintf(err, errlen, "the VM was stopped before it started");
		return VMM_EXIT_USAGE;
	}
	v->started = true;
	pthread_mutex_unlock(&v->state_lock);
	v->run_time = now_seconds();
	/* the bound covers the whole run, as the command line's always did */
	v->deadline = v->cfg->timeout > 0 ? v->start_time + v->cfg->timeout : 0;
	if (vm_memory_ready(&v->vm, err, errlen)) {
		status = VMM_EXIT_UNAVAILABLE;
		vm_request_exit(&v->vm, status);
		finish(v);
		goto out;
	}
	if (v->restore) {
		double ms = (now_seconds() - v->start_time) * 1e3;

		vm_events_emit(v->events, "restored", "\"wall_ms\":%.3f", ms);
		if (v->cfg->boot_timer)
			vm_log("boot-timer", "restored wall_ms=%.3f", ms);
	}
	/* The vCPUs before the service thread: the service may stop them
	 * (finish) at any time and must see every one that was started
	 * (creating it orders it after vcpus_start's bookkeeping).  A vCPU
	 * that exits at once leaves exit_efd set for the service. */
	if (vcpus_start(&v->vm, err, errlen)) {
		status = VMM_EXIT_INTERNAL;
		vm_request_exit(&v->vm, status);	/* the service finishes */
	}
	v->service_started = true;	/* before it runs: finish() reads it */
	r = vm_thread_create_kind(&v->service, VM_THREAD_SERVICE, "vmm-service",
				  service_thread, v);
	if (r) {
		v->service_started = false;
		if (!status)
			snprintf(err, errlen, "cannot start a thread: %s",
				 strerror(r));
		status = VMM_EXIT_INTERNAL;
		vm_request_exit(&v->vm, status);
		finish(v);
	}
out:
	vm_thread_set_events(prev);
	vm_thread_set_seccomp(prev_seccomp);
	return status;
}

int app_vm_done_fd(const struct app_vm *v)
{
	return v->done_efd;
}

int app_vm_status(struct app_vm *v)
{
	return __atomic_load_n(&v->status, __ATOMIC_ACQUIRE);
}

int app_vm_wait(struct app_vm *v, int timeout_ms)
{
	double end = timeout_ms < 0 ? 0 : now_seconds() + timeout_ms / 1e3;

	for (;;) {
		struct pollfd p = { .fd = v->done_efd, .events = POLLIN };
		int status = app_vm_status(v), wait_ms = -1;

		if (status >= 0)
			return status;
		if (end) {
			double left = end - now_seconds();

			if (left <= 0)
				return -1;
			wait_ms = (int)(left * 1e3) + 1;
		}
		if (poll(&p, 1, wait_ms) < 0 && errno != EINTR)
			return -1;
	}
}

void app_vm_stop(struct app_vm *v, int status)
{
	bool unstarted;

	vm_request_exit(&v->vm, status);
	pthread_mutex_lock(&v->state_lock);
	unstarted = !v->started && !v->done;
	if (unstarted)
		v->done = true;	/* start now refuses */
	pthread_mutex_unlock(&v->state_lock);
	if (unstarted) {
		struct vm_events *prev = vm_thread_set_events(v->events);

		finish(v);
		vm_thread_set_events(prev);
	}
}

int app_vm_console_fd(const struct app_vm *v)
{
	return v->con[0];
}

int app_vm_event_fd(const struct app_vm *v)
{
	return vm_events_fd(v->events);
}

void app_vm_destroy(struct app_vm *v)
{
	struct vm_events *prev;

	if (!v)
		return;
	prev = vm_thread_set_events(v->events);
	if (v->service_started) {
		uint64_t one = 1;

		vm_request_exit(&v->vm, VMM_EXIT_INTERNAL);	/* if none yet */
		app_vm_wait(v, -1);
		__atomic_store_n(&v->quit, true, __ATOMIC_RELEASE);
		if (write(v->wake_efd, &one, sizeof(one)) < 0)
			vm_log("vmm", "cannot stop the service thread: %s",
			       strerror(errno));
		pthread_join(v->service, NULL);
	}
	vcpus_stop(&v->vm);
	vm_destroy_devices(&v->vm);
	if (v->serial_fd > STDERR_FILENO)
		close(v->serial_fd);
	vm_close(&v->vm);
	snapshot_close(v->restore);
	for (int i = 0; i < 2; i++)
		if (v->con[i] >= 0)
			close(v->con[i]);
	if (v->wake_efd >= 0)
		close(v->wake_efd);
	if (v->done_efd >= 0)
		close(v->done_efd);
	vm_thread_set_events(prev);
	vm_events_destroy(v->events);
	free(v->ring);
	pthread_mutex_destroy(&v->ring_lock);
	pthread_mutex_destroy(&v->state_lock);
	free(v);
}
