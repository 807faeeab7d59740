/* vmm/app.h - one VM composed from a struct vmm_config: KVM, guest RAM,
 * vCPUs, the console, the legacy ports, every configured device (from the
 * table in devices/registry.c), the kernel and initramfs; started, waited
 * for and torn down.  The library API (vmm.h, vmm/libvmm.c) is a thin
 * layer over this; ./vmm (vmm/main.c) is a command line around that.
 *
 * Several VMs may live in one process: every piece of state is per VM.
 * Library code: it never exits the process, never changes signal
 * dispositions and never touches the terminal.  Its threads (vCPUs,
 * device loops, the VM's service thread) block every signal; vCPUs are
 * kicked out of KVM_RUN with a signal only KVM_RUN unblocks (vcpu.c).
 *
 * A started VM runs by itself: its service thread writes out console
 * output, feeds console input, enforces the timeout, and when the VM stops
 * stops the vCPUs, emits the exit event and marks the VM done.
 *
 * Threads: all of these are for one controlling thread, except
 * app_vm_stop and app_vm_status, which any thread may call.
 */
#ifndef VMM_APP_H
#define VMM_APP_H

#include <stddef.h>

struct vmm_config;
struct app_vm;

/* Build the VM described by cfg (which must outlive it).  start_time:
 * now_seconds() when the run began (the boot timer counts from it).
 * Returns 0 with *out set, or an exit status (enum vmm_exit) with one line
 * in err. */
int app_vm_create(const struct vmm_config *cfg, double start_time,
		  struct app_vm **out, char *err, size_t errlen);
/* Start the vCPUs and the service thread (the timeout counts from here).
 * 0, or an exit status with one line in err (the VM is then done with
 * that status). */
int app_vm_start(struct app_vm *v, char *err, size_t errlen);

/* Readable once the VM is done (stopped, vCPUs joined, exit event out). */
int app_vm_done_fd(const struct app_vm *v);
/* The exit status once done, -1 before. */
int app_vm_status(struct app_vm *v);
/* Wait up to timeout_ms (< 0: for ever) for the VM to be done: its exit
 * status, or -1 if it still runs. */
int app_vm_wait(struct app_vm *v, int timeout_ms);
/* Ask the VM to stop with status (the first request wins; a VM never
 * started is done at once).  Any thread. */
void app_vm_stop(struct app_vm *v, int status);

/* The program's end of the console (a socket): what is written to it is
 * console input; in serial pipe mode the console output can be read from
 * it, until end-of-file once the VM is done and all was read. */
int app_vm_console_fd(const struct app_vm *v);
/* The read end of the event pipe (vmm/events.h). */
int app_vm_event_fd(const struct app_vm *v);

/* Stop the VM if it runs (status VMM_EXIT_INTERNAL if none yet), tear
 * down the devices and free.  NULL is fine. */
void app_vm_destroy(struct app_vm *v);

#endif
