/* vmm/vcpu.h - vCPU creation, threads and crash reports. */
#ifndef VMM_VCPU_H
#define VMM_VCPU_H

#include "vmm/vm_private.h"

/* Create every vCPU with its CPUID, MSRs, FPU and LAPIC set up. */
int vcpus_create(struct vm *vm, char *err, size_t errlen);
/* One thread per vCPU, running until vm_request_exit(). */
int vcpus_start(struct vm *vm, char *err, size_t errlen);
/* Kick every vCPU out of KVM_RUN and join the threads. */
void vcpus_stop(struct vm *vm);
/* Park every vCPU outside KVM_RUN with its last exit completed (a
 * consistent state to save), for at most timeout_ms.  0, or -1 (the VM is
 * exiting, or a vCPU did not park: then vcpus_resume anyway). */
int vcpus_pause(struct vm *vm, int timeout_ms);
/* On a vCPU thread, in an exit handler: this vCPU parks before it runs
 * the guest again (the others when vcpus_pause kicks them); a snapshot
 * the guest asked for is then taken at the instruction that asked. */
void vcpus_pause_request(struct vm *vm);
/* Let parked vCPUs run again. */
void vcpus_resume(struct vm *vm);
/* Print the registers of c (and the code bytes at RIP) with a reason. */
void vcpu_dump(struct vcpu *c, const char *why);
/* The signal that kicks vCPUs out of KVM_RUN in VMs made from now on
 * (SIGRTMAX - 1 by default), and choosing another: SIGUSR1, SIGUSR2 or a
 * real-time signal; -EINVAL for others. */
int vcpu_kick_signal(void);
int vcpu_set_kick_signal(int signo);
/* The CPUID vCPU id of ncpus sees (APIC ID and topology). */
void cpuid_for_vcpu(struct kvm_cpuid2 *c, unsigned id, unsigned ncpus);

#endif
