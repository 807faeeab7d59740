/* vmm/options.h - the configuration of one VM: filled option by option
 * through vmm_config_apply(), the one parser the command line of ./vmm and
 * the library's vmm_config_set() share; a plain struct with no side
 * effects, so it is unit-testable.  (The library's struct vmm_config is
 * this struct: vmm.h declares it opaque.)
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

/* PIPE: the library's console socket only (vmm_console_fd) */
enum serial_mode { SERIAL_TTY, SERIAL_FILE, SERIAL_OFF, SERIAL_PIPE };
enum tristate { TRI_AUTO, TRI_ON, TRI_OFF };
/* --snapshot-to when=: the boot-ready marker, or the snapshot-request port */
enum snapshot_when { SNAP_WHEN_BOOT_READY, SNAP_WHEN_REQUEST };

/* The parsed configs of one device type, in the order given. */
struct vmm_device_configs {
	const struct device_type *type;	/* NULL: none given */
	unsigned count;
	void *configs;	/* type->max entries of type->config_size (malloc) */
};

/* An option given through vmm_config_set(): the copies the config's
 * strings point into, and the original to replay (vmm_create). */
struct vmm_config_setting {
	struct vmm_config_setting *next;
	char *option, *value;	/* value: NULL for a flag */
	char *parsed;		/* the copy vmm_config_apply() split */
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
	const char *events_path;	/* --events file=PATH */
	int events_fd;			/* --events fd=N; -1: none */
	int seccomp;			/* --seccomp: enum vm_seccomp_mode; -1:
				 * not given (vm_seccomp_resolve) */
	bool memory_set, cpus_set;	/* given (a restore must match them) */
	const char *snapshot_dir;	/* --snapshot-to DIR; NULL: none */
	enum snapshot_when snapshot_when;
	bool snapshot_then_exit;	/* then=exit (default) or continue */
	const char *restore_dir;	/* --restore DIR; NULL: boot a kernel */
	/* [i]: the devices of type device_types[i] */
	struct vmm_device_configs devices[VMM_MAX_DEVICE_TYPES];
	bool help, version;
	/* the library's: settings in order, the last error line */
	struct vmm_config_setting *settings, **settings_tail;
	char error[256];
};

/* Defaults, no devices. */
void vmm_config_init(struct vmm_config *cfg);
/* Free the device arrays and the recorded settings (cfg is then as after
 * vmm_config_init()).  Safe to call twice.  (The library's
 * vmm_config_free() is this plus freeing cfg.) */
void vmm_config_clear(struct vmm_config *cfg);

/* Apply one option (name without "--"; val NULL for a flag) to cfg: the
 * parser of both the command line and vmm_config_set().  Strings in cfg
 * point into val, which device values are split in place.  0, or -1 with
 * one line in err and cfg unchanged. */
int vmm_config_apply(struct vmm_config *cfg, const char *name, char *val,
		     char *err, size_t errlen);
/* What a VM needs that no single option can check (a kernel): 0 or -1
 * with one line in err. */
int vmm_config_check(const struct vmm_config *cfg, char *err, size_t errlen);

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

/* argv[*i] as an option name and value ("--x=v", "--x v", "--flag"),
 * moving *i past a separate value; the '=' is overwritten.  0, or -1 with
 * one line in err. */
int options_next(int argc, char **argv, int *i, char **name, char **val,
		 char *err, size_t errlen);

/* Parse argv into cfg (options_next + vmm_config_apply + vmm_config_check;
 * vmm_config_clear when done).  On error returns -1 with one line in err.
 * Strings in cfg point into argv. */
int options_parse(int argc, char **argv, struct vmm_config *cfg, char *err,
		  size_t errlen);

/* "256M", "1G", "4096K", "1048576": bytes; -1 on syntax error or overflow. */
int parse_size(const char *s, uint64_t *out);

void options_usage(FILE *f);

#endif
