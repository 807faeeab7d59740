/* vmm.h - libvmm: the vmm virtual machine monitor as a C library.
 *
 * Boot and run KVM virtual machines from a test rig (C, C++, Python
 * ctypes, Go cgo): a config object, then a VM handle with start, wait,
 * stop.  Link with `pkg-config --cflags --libs vmm`.
 *
 *   struct vmm_config *c = vmm_config_new();
 *   vmm_config_set(c, "kernel", "/usr/local/share/vmm/testkernel");
 *   vmm_config_set(c, "memory", "size=32M");
 *   vmm_config_set(c, "disk", "path=a.img,format=raw");
 *   vmm_config_set(c, "cmdline", "vmmtest.run=blktest");
 *   struct vmm *v = vmm_create(c);         // NULL: vmm_error(NULL)
 *   vmm_config_free(c);                    // v keeps its own copy
 *   vmm_start(v);
 *   int status = vmm_wait(v, 30000);       // 0: the guest passed
 *   vmm_destroy(v);
 *
 * Conventions: functions return 0 (or a value >= 0) on success and a
 * negative errno on failure, with one line of text saying why available
 * from vmm_error(v) (or vmm_config_error(c)) until the next failure on
 * that object; vmm_error(NULL) gives the calling thread's last failure
 * (the only place to find why vmm_create returned NULL).  NULL objects and
 * unknown options are errors, never crashes.
 *
 * The library never exits the process, never installs signal handlers,
 * never touches the terminal, and opens everything O_CLOEXEC (two
 * exceptions, both from the seccomp sandbox, below).  Several
 * VMs may run in one process, each with its own threads, disks, console
 * and events; one failing or timing out does not disturb the others.
 *
 * Threads and signals: each VM has one thread per vCPU, one per device
 * queue loop and one service thread (console, timeout, exit); all of them
 * block every signal, so the program's signals go to its own threads.
 * vCPUs are kicked out of the kernel with a real-time signal, SIGRTMAX - 1
 * unless vmm_set_kick_signal() chose another before the VM was created;
 * it is only ever sent to those threads (pthread_kill) and never
 * delivered (KVM_SET_SIGNAL_MASK), so it needs no handler, but the program
 * should not use that signal for itself.
 *
 * Sandbox: option "seccomp" ("on" by default, "log" in sanitizer builds;
 * VMM_SECCOMP in the environment sets the default).  Each of the VM's
 * threads runs under a seccomp-bpf filter for its kind (vCPU, device loop,
 * service); the program's own threads, the one calling vmm_create
 * included, are never filtered.  With "on" a forbidden system call on one
 * of them ends the whole process: a SIGSYS handler (installed process-wide
 * by the first VM created with "on" or "log") writes
 *   vmm: seccomp: forbidden syscall NAME (NR) in thread COMM
 * to stderr and exits with status 70 -- the only way the library exits
 * the process, and its only signal handler.  "log" lets such calls through
 * and has the kernel log them (audit type 1326); "off" installs nothing.
 *
 * Memory: guest RAM is mapped on demand (MAP_NORESERVE); host memory per
 * VM beyond it is bounded (a 64 KiB console buffer, each device's
 * documented caps).
 *
 * Exit statuses (vmm_wait's result) are the command line's (vmm(1)):
 * 0-63 the guest's own (0 also for a guest reboot), 124 timeout, 125
 * guest crash, 126 guest kernel panic, 128+N stopped as by signal N
 * (vmm_stop: 143, as SIGTERM), 64/65/69/70 errors.
 */
#ifndef VMM_H
#define VMM_H

#ifdef __cplusplus
extern "C" {
#endif

#define VMM_VERSION		"0.1.0"
#define VMM_VERSION_MAJOR	0
#define VMM_VERSION_MINOR	1
#define VMM_VERSION_PATCH	0

struct vmm_config;
struct vmm;

/* ---- configuration ---- */

/* A config with the command line's defaults (256M, 1 vCPU, no timeout),
 * except the console: "pipe" (output readable from vmm_console_fd) where
 * the command line uses "tty".  NULL (errno ENOMEM) if out of memory. */
struct vmm_config *vmm_config_new(void);

/* Set one option: exactly the command line's options and parsers, named
 * without the "--" (a leading "--" is accepted too), value as after it:
 *   ("kernel", PATH)  ("initramfs", PATH)  ("cmdline", STR)
 *   ("memory", "size=256M")  ("cpus", "boot=2")  ("timeout", "30")
 *   ("disk", "path=a.img,format=raw")  ("fs", ...)  ("vsock", ...)
 *   ("serial", "pipe" | "tty" | "file=PATH" | "off")
 *   ("events", "file=PATH" | "fd=N")  ("pvm-quirks", "auto|on|off")
 *   ("boot-timer", NULL | "on" | "off")
 *   ("seccomp", "on" | "log" | "off")
 *   ("snapshot-to", "DIR[,when=boot-ready|request][,then=exit|continue]")
 *   ("restore", DIR)  (no "kernel" then; docs/snapshot.md)
 * Devices accumulate (each "disk" adds one); other options replace.  The
 * value is copied.  0, or -EINVAL (unknown option, bad value, NULL) with
 * the message in vmm_config_error(c); the config is then unchanged. */
int vmm_config_set(struct vmm_config *c, const char *option,
		   const char *value);

/* The last failure on c (NULL: the calling thread's last); "" if none. */
const char *vmm_config_error(const struct vmm_config *c);

/* NULL is fine. */
void vmm_config_free(struct vmm_config *c);

/* ---- a VM ---- */

/* Build a VM from c: checks the kernel, opens /dev/kvm, maps RAM, loads
 * the kernel, opens the disks, creates the devices.  The VM keeps its own
 * copy of the config (free c whenever).  NULL with errno set on failure
 * (message: vmm_error(NULL)):
 *   EINVAL  a bad or missing option (the command line's status 64)
 *   ENOEXEC bad input: kernel, initramfs or an image missing, unreadable,
 *           malformed, locked by another VMM, too big for RAM (65)
 *   ENODEV  a host resource unavailable: /dev/kvm, memory (69)
 *   EIO     an internal error (70)
 * Safe to call from several threads at once, also with the same config. */
struct vmm *vmm_create(const struct vmm_config *c);

/* The last failure on v ("" if none); NULL: the calling thread's last. */
const char *vmm_error(const struct vmm *v);

/* Start the vCPUs.  0; -EALREADY if started before, -EINVAL if stopped
 * before it started; else as vmm_create (the VM is then stopped, and
 * vmm_wait returns its status). */
int vmm_start(struct vmm *v);

/* Wait up to timeout_ms (< 0: for ever, 0: just look) for the VM to stop.
 * Returns its exit status (>= 0: the status the command line would exit
 * with), -ETIMEDOUT if it still runs, -EINVAL if it was never started.
 * The status stays available: wait again as often as you like. */
int vmm_wait(struct vmm *v, int timeout_ms);

/* Stop the guest (as SIGTERM stops the command line: status 143, reason
 * "signal"); vmm_wait then returns.  A request that loses to an exit
 * already under way changes nothing.  Any thread; 0 or -EINVAL. */
int vmm_stop(struct vmm *v);
/* The same with the status to end with (0-255), e.g. 128 + SIGINT. */
int vmm_stop_status(struct vmm *v, int status);

/* The program's end of the guest console, a socket (owned by v: do not
 * close it).  Read: the console output (with "serial" "pipe", the
 * default), until end-of-file after the VM stopped and everything was
 * read; nothing otherwise.  Write: console input for the guest's UART.
 * Up to 64 KiB of output waits for a slow reader; beyond that bytes are
 * dropped and the stream says how many. */
int vmm_console_fd(struct vmm *v);

/* The read end of v's event pipe (owned by v), readable when an event
 * arrives: one JSON object per line,
 *   {"event":"boot-ready","wall_ms":W,"run_ms":R}
 *   {"event":"device-error","device":D,"kind":"io"|"guest","message":M}
 *   {"event":"snapshot","ms":M,"state_bytes":S,"memory_bytes":B}
 *   {"event":"restored","wall_ms":W}  (a --restore VM's vCPUs start)
 *   {"event":"exit","status":S,"reason":"guest"|"timeout"|"crash"|
 *     "panic"|"signal"|"error","wall_ms":W,"device_errors":N}
 * (wall_ms counts from vmm_create, run_ms from vmm_start).  exit is the
 * last line; end-of-file follows.  At most 64 device-error lines are
 * written (device_errors counts all), so a VM's events fit the pipe even
 * if nobody reads it. */
int vmm_event_fd(struct vmm *v);

/* Stop the VM if it runs (as vmm_stop), wait for it, free everything.
 * NULL is fine.  Not while another thread waits on v. */
void vmm_destroy(struct vmm *v);

/* ---- the rest ---- */

/* The command line's exit status for a negative errno from vmm_create or
 * vmm_start: 64 (EINVAL), 65 (ENOEXEC), 69 (ENODEV, ENOMEM), 70 other. */
int vmm_exit_status(int err);

/* The signal that kicks vCPUs (see above), for VMs created from now on:
 * SIGUSR1, SIGUSR2 or SIGRTMIN..SIGRTMAX; 0 or -EINVAL.  Process-wide. */
int vmm_set_kick_signal(int signo);
int vmm_kick_signal(void);

/* VMM_VERSION of the library actually loaded. */
const char *vmm_version(void);

#ifdef __cplusplus
}
#endif

#endif
