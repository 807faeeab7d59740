/* devices/registry.h - the table of device types the VMM can build.
 *
 * A device is one file plus one line in devices/registry.c.  The entry names
 * the option (`--disk`, `--net`, `--vsock`, `--fs` on the command line;
 * vmm_config_set(c, "disk", ...) in the library: the very same parser), the
 * usage lines for --help, how many a VM may have, and two functions:
 * parse one "key=value,..." value into the type's own config struct, and
 * create the device on a VM from a parsed config.
 *
 * Threads: parse is pure (no side effects); create runs on the thread that
 * builds the VM, before the vCPUs start.
 */
#ifndef DEVICES_REGISTRY_H
#define DEVICES_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

struct vm;

struct device_type {
	const char *option;	/* "disk": --disk, config_set("disk", ...) */
	const char *usage;	/* --help lines, each "  --disk ...\n" */
	unsigned max;		/* at most this many per VM */
	size_t config_size;	/* sizeof the type's config struct */
	/* Parse one value into cfg (config_size bytes, zeroed by the caller).
	 * index: how many of this type came before it.  Strings in cfg may
	 * point into value, which the caller keeps alive (and may modify in
	 * place).  0, or -1 with one line in err. */
	int (*parse)(char *value, void *cfg, unsigned index, char *err,
		     size_t errlen);
	/* Build the device on vm from a parsed cfg, registering its teardown
	 * with vm_add_device().  0, or an exit status (enum vmm_exit in
	 * vmm/vm.h: VMM_EXIT_BAD_INPUT for a bad image/path,
	 * VMM_EXIT_UNAVAILABLE for a missing host resource, VMM_EXIT_INTERNAL)
	 * with one line in err. */
	int (*create)(struct vm *vm, const void *cfg, char *err,
		      size_t errlen);
	/* Optional: called after each successful parse with every config of
	 * this type so far (an array of count, the newest last), for rules
	 * across devices (two --fs with one tag).  0, or -1 with one line in
	 * err. */
	int (*check)(const void *configs, unsigned count, char *err,
		     size_t errlen);
};

/* Every device type, NULL-terminated, in command-line order. */
extern const struct device_type *const device_types[];

/* The entry whose option is name, or NULL. */
const struct device_type *device_type_find(const char *name);

/* For parsers: "on"/"true"/"yes"/"1" or "off"/"false"/"no"/"0" into *out;
 * -1 for anything else. */
int device_parse_onoff(const char *v, bool *out);

#endif
