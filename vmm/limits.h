/* vmm/limits.h - VMM-wide limits and defaults: what a VM may be given.
 * Shared by the core (vCPU array), the option parser and the library API,
 * so it lives apart from both. */
#ifndef VMM_LIMITS_H
#define VMM_LIMITS_H

#define VMM_MAX_CPUS		64
#define VMM_MIN_MEMORY		(16ULL << 20)
#define VMM_DEFAULT_MEMORY	(256ULL << 20)
#define VMM_DEFAULT_CMDLINE	"console=ttyS0 reboot=k panic=-1"
/* entries in devices/registry.c's table (checked there at compile time) */
#define VMM_MAX_DEVICE_TYPES	8

#endif
