/* vmm/app.h - one VM composed from a struct vmm_config: KVM, guest RAM,
 * vCPUs, the console, the legacy ports, every configured device (from the
 * table in devices/registry.c), the kernel and initramfs; started, waited
 * for and torn down.  The library API exposes this as vmm_create /
 * vmm_start / vmm_wait / vmm_stop / vmm_destroy; ./vmm (vmm/main.c) is a
 * command line around it.
 *
 * Several VMs may live in one process: every piece of state is per VM.
 * Library code: it never exits the process and never changes signal
 * dispositions.  The vCPUs are kicked out of KVM_RUN with SIGUSR1, which
 * they keep blocked outside KVM_RUN (KVM_SET_SIGNAL_MASK), so no handler
 * is needed; the embedding program should not rely on SIGUSR1 itself.
 *
 * Threads: all of these are for one controlling thread, except
 * app_vm_stop, which any thread may call.
 */
#ifndef VMM_APP_H
#define VMM_APP_H

#include <stddef.h>

struct vmm_config;
struct app_vm;

/* Build the VM described by cfg (which must outlive it).  start_time:
 * now_seconds() when the run began (the boot timer and --timeout count
 * from it).  Returns 0 with *out set, or an exit status (enum vmm_exit)
 * with one line in err. */
int app_vm_create(const struct vmm_config *cfg, double start_time,
		  struct app_vm **out, char *err, size_t errlen);
/* Start the vCPUs.  0, or an exit status with one line in err (the VM is
 * then stopped; app_vm_destroy it). */
int app_vm_start(struct app_vm *v, char *err, size_t errlen);

/* Periodic work while the VM runs: write out console output, enforce the
 * timeout.  Returns how many milliseconds may pass before the next call. */
int app_vm_service(struct app_vm *v);
/* Becomes readable when the VM has stopped (then app_vm_status). */
int app_vm_exit_fd(const struct app_vm *v);
/* The exit status once stopped, -1 while running. */
int app_vm_status(struct app_vm *v);
/* Wait (servicing the VM) up to timeout_ms (< 0: for ever) for the VM to
 * stop: its exit status, or -1 if it still runs. */
int app_vm_wait(struct app_vm *v, int timeout_ms);
/* Ask the VM to stop with status (the first request wins).  Any thread. */
void app_vm_stop(struct app_vm *v, int status);

/* Console input: room in the UART's receive FIFO, and bytes for it. */
size_t app_vm_console_room(struct app_vm *v);
void app_vm_console_input(struct app_vm *v, const char *buf, size_t n);

/* Stop the vCPUs (with the state of each printed if the VM timed out),
 * tear down the devices and free.  NULL is fine. */
void app_vm_destroy(struct app_vm *v);

#endif
