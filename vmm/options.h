/* vmm/options.h - the configuration of one VM: filled from the command line
 * of ./vmm (options_parse) or, later, by the library API; a plain struct with
 * no side effects, so it is unit-testable.
 *
 * Devices are not named here: each --OPTION that names a device type in
 * devices/registry.c is parsed by that type's parser into an array of its
 * own config structs (vmm_config_add_device, the one path for the CLI and
 * the library). */
#ifndef VMM_OPTIONS_H
#define VMM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/limits.h"

struct device_type;

enum serial_mode { SERIAL_TTY, SERIAL_FILE, SERIAL_OFF };
enum tristate { TRI_AUTO, TRI_ON, TRI_OFF };

/* The parsed configs of one device type, in the order given. */
struct vmm_device_configs {
	const struct device_type *type;	/* NULL: none given */
	unsigned count;
	void *configs;	/* type->max entries of type->config_size (malloc) */
};

struct vmm_config {
	const char *kernel;
	const char *initramfs;
	const char *cmdline;		/* NULL: VMM_DEFAULT_CMDLINE */
	uint64_t memory;		/* bytes */
	unsigned cpus;
	double timeout;			/* seconds; 0 = none */
	bool boot_timer;
	enum serial_mode serial;
	const char *serial_path;
	enum tristate pvm_quirks;	/* Linux workarounds on a PVM host */
	/* [i]: the devices of type device_types[i] */
	struct vmm_device_configs devices[VMM_MAX_DEVICE_TYPES];
	bool help, version;
};

/* Defaults, no devices. */
void vmm_config_init(struct vmm_config *cfg);
/* Free the device arrays (cfg stays usable as after vmm_config_init()
 * minus its other settings).  Safe to call twice. */
void vmm_config_free(struct vmm_config *cfg);

/* Add one device of the type named option (its --OPTION) from value
 * ("key=value,...").
 * value is split in place and must outlive cfg.  0, or -1 with one line in
 * err (unknown type, too many, or the type's parser refused value). */
int vmm_config_add_device(struct vmm_config *cfg, const char *option,
			  char *value, char *err, size_t errlen);
/* How many devices of type option, and the i-th one's config (NULL when
 * i is out of range). */
unsigned vmm_config_device_count(const struct vmm_config *cfg,
				 const char *option);
const void *vmm_config_device(const struct vmm_config *cfg,
			      const char *option, unsigned i);

/* Parse argv into cfg (vmm_config_init first; vmm_config_free when done).
 * On error returns -1 with one line in err.  Strings in cfg point into argv,
 * which device values are split in place. */
int options_parse(int argc, char **argv, struct vmm_config *cfg, char *err,
		  size_t errlen);

/* "256M", "1G", "4096K", "1048576": bytes; -1 on syntax error or overflow. */
int parse_size(const char *s, uint64_t *out);

void options_usage(FILE *f);

#endif
