/* vmm/options.c - the option parser of ./vmm and vmm_config_set() */
#include "vmm/options.h"
#include "devices/registry.h"
#include "vmm/seccomp.h"
#include "vmm/vm.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -1;
	}
	/* accept "256MiB"/"256MB" spellings too */
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
		end += strlen(end);
	if (*end)
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_timeout(const char *v, double *out)
{
	char *end;
	double t;

	errno = 0;
	t = strtod(v, &end);
	if (errno || end == v || *end || !(t > 0) || t > 1e7)
		return -1;
	*out = t;
	return 0;
}

/* "--cpus boot=4" (Cloud Hypervisor style) or "--cpus 4" */
static int parse_cpus(const char *v, unsigned *out)
{
	char *end;
	unsigned long n;

	if (!strncmp(v, "boot=", 5))
		v += 5;
	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n < 1 || n > VMM_MAX_CPUS)
		return -1;
	*out = (unsigned)n;
	return 0;
}

void options_usage(FILE *f)
{
	fputs(
"usage: vmm --kernel PATH [options]\n"
"  --kernel PATH          bzImage, ELF vmlinux (PVH or 64-bit entry), or the test kernel\n"
"  --initramfs PATH       initrd/initramfs image (alias --initrd)\n"
"  --cmdline STR          kernel command line (default \"" VMM_DEFAULT_CMDLINE "\")\n"
"  --memory size=SIZE     guest RAM, K/M/G suffixes (default 256M)\n"
"  --cpus boot=N          vCPUs (default 1, at most 64)\n", f);
	for (const struct device_type *const *t = device_types; *t; t++)
		fputs((*t)->usage, f);
	fprintf(f,
"  --serial tty|file=PATH|off   where the console goes (default tty: stdout/stdin)\n"
"  --timeout SECONDS      kill the guest and exit 124 after this wall time\n"
"  --events file=PATH|fd=N   machine-readable events, one JSON object per line\n"
"  --boot-timer           print the time to the guest's boot-ready marker\n"
"  --snapshot-to DIR[,when=boot-ready|request][,then=exit|continue]\n"
"                         write a snapshot (DIR/state, DIR/memory) at the boot-ready\n"
"                         marker or when the guest writes the snapshot-request port\n"
"  --restore DIR          run from a snapshot instead of a kernel (same --memory,\n"
"                         --cpus and devices; disks as at snapshot time)\n"
"  --pvm-quirks auto|on|off   Linux workarounds on a PVM host (default auto)\n"
"  --seccomp on|log|off   system call filter per VMM thread (default %s): on\n"
"                         kills the process (status 70) at a forbidden call,\n"
"                         log lets it through and has the kernel log it\n"
"  --help, --version\n"
"exit status: the guest's exit-port status (0-63), 0 on guest reboot;\n"
"  64 usage, 65 bad input file, 69 host resource unavailable, 70 internal error,\n"
"  124 timeout, 125 guest crashed, 126 guest kernel panic\n",
		vm_seccomp_mode_name(VM_SECCOMP_DEFAULT));
}

void vmm_config_init(struct vmm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->memory = VMM_DEFAULT_MEMORY;
	cfg->cpus = 1;
	cfg->serial = SERIAL_TTY;
	cfg->events_fd = -1;
	cfg->seccomp = -1;	/* VMM_SECCOMP, else the default */
	cfg->settings_tail = &cfg->settings;
}

void vmm_config_clear(struct vmm_config *cfg)
{
	struct vmm_config_setting *st;

	for (unsigned i = 0; i < VMM_MAX_DEVICE_TYPES; i++) {
		free(cfg->devices[i].configs);
		cfg->devices[i] = (struct vmm_device_configs){ 0 };
	}
	while ((st = cfg->settings)) {
		cfg->settings = st->next;
		free(st->option);
		free(st->value);
		free(st->parsed);
		free(st);
	}
	vmm_config_init(cfg);
}

/* The slot of type option in cfg->devices (its index in device_types). */
static int type_slot(const char *option)
{
	for (unsigned i = 0; device_types[i]; i++)
		if (!strcmp(device_types[i]->option, option))
			return (int)i;
	return -1;
}

int vmm_config_add_device(struct vmm_config *cfg, const char *option,
			  char *value, char *err, size_t errlen)
{
	int slot = type_slot(option);
	const struct device_type *t;
	struct vmm_device_configs *dc;
	void *c;

	if (slot < 0)
		return errf(err, errlen, "unknown device type '%s'", option);
	t = device_types[slot];
	dc = &cfg->devices[slot];
	if (dc->count == t->max)
		return errf(err, errlen, "at most %u of them", t->max);
	if (!dc->configs) {
		dc->configs = calloc(t->max, t->config_size);
		if (!dc->configs)
			return errf(err, errlen, "out of memory");
		dc->type = t;
	}
	c = (char *)dc->configs + dc->count * t->config_size;
	memset(c, 0, t->config_size);
	if (t->parse(value, c, dc->count, err, errlen))
		return -1;
	if (t->check && t->check(dc->configs, dc->count + 1, err, errlen))
		return -1;
	dc->count++;
	return 0;
}

unsigned vmm_config_device_count(const struct vmm_config *cfg,
				 const char *option)
{
	int slot = type_slot(option);

	return slot < 0 ? 0 : cfg->devices[slot].count;
}

const void *vmm_config_device(const struct vmm_config *cfg,
			      const char *option, unsigned i)
{
	int slot = type_slot(option);

	if (slot < 0 || i >= cfg->devices[slot].count)
		return NULL;
	return (const char *)cfg->devices[slot].configs +
	       i * device_types[slot]->config_size;
}

static const char *const value_opts[] = {
	"kernel", "initramfs", "initrd", "cmdline", "memory", "cpus",
	"serial", "timeout", "pvm-quirks", "events", "seccomp", "snapshot-to",
	"restore", NULL,
};

/* Does --NAME (n bytes of name) take a value? */
static bool takes_value(const char *name, size_t n)
{
	for (const char *const *vo = value_opts; *vo; vo++)
		if (strlen(*vo) == n && !strncmp(name, *vo, n))
			return true;
	for (const struct device_type *const *t = device_types; *t; t++)
		if (strlen((*t)->option) == n && !strncmp(name, (*t)->option, n))
			return true;
	return false;
}

int options_next(int argc, char **argv, int *i, char **name, char **val,
		 char *err, size_t errlen)
{
	char *a = argv[*i], *eq;

	if (strncmp(a, "--", 2) || !a[2])
		return errf(err, errlen, "unexpected argument '%s' (see --help)", a);
	*name = a + 2;
	*val = NULL;
	eq = strchr(*name, '=');
	if (takes_value(*name, eq ? (size_t)(eq - *name) : strlen(*name))) {
		if (eq) {
			*eq = '\0';
			*val = eq + 1;
		} else if (*i + 1 < argc) {
			*val = argv[++*i];
		} else {
			return errf(err, errlen, "--%s needs a value", *name);
		}
	} else if (eq) {
		*eq = '\0';
		return errf(err, errlen, "--%s takes no value", *name);
	}
	return 0;
}

static int set_memory(struct vmm_config *cfg, const char *val, char *err,
		      size_t errlen)
{
	const char *v = !strncmp(val, "size=", 5) ? val + 5 : val;
	uint64_t size;

	if (parse_size(v, &size))
		return errf(err, errlen, "--memory: invalid size '%s'", v);
	if (size < VMM_MIN_MEMORY)
		return errf(err, errlen,
			    "--memory: %s is too small (at least 16M)", v);
	if (size & 0xfff)
		return errf(err, errlen,
			    "--memory: %s is not a multiple of 4K", v);
	cfg->memory = size;
	cfg->memory_set = true;
	return 0;
}

static int set_serial(struct vmm_config *cfg, const char *val, char *err,
		      size_t errlen)
{
	if (!strcmp(val, "tty") || !strcmp(val, "stdio")) {
		cfg->serial = SERIAL_TTY;
	} else if (!strcmp(val, "off")) {
		cfg->serial = SERIAL_OFF;
	} else if (!strcmp(val, "pipe")) {
		cfg->serial = SERIAL_PIPE;
	} else if (!strncmp(val, "file=", 5) && val[5]) {
		cfg->serial = SERIAL_FILE;
		cfg->serial_path = val + 5;
	} else {
		return errf(err, errlen,
			    "--serial: '%s': expected tty, file=PATH or off "
			    "(or pipe: the library's console fd)", val);
	}
	return 0;
}

/* "file=PATH" or "fd=N" */
static int set_events(struct vmm_config *cfg, const char *val, char *err,
		      size_t errlen)
{
	if (!strncmp(val, "file=", 5) && val[5]) {
		cfg->events_path = val + 5;
		cfg->events_fd = -1;
		return 0;
	}
	if (!strncmp(val, "fd=", 3) && val[3] >= '0' && val[3] <= '9') {
		char *end;
		long fd;

		errno = 0;
		fd = strtol(val + 3, &end, 10);
		if (!errno && !*end && fd <= INT_MAX) {
			cfg->events_fd = (int)fd;
			cfg->events_path = NULL;
			return 0;
		}
	}
	return errf(err, errlen, "--events: '%s': expected file=PATH or fd=N",
		    val);
}

/* A flag: no value (the command line), or on/off (the library). */
static int set_flag(const char *name, const char *val, bool *out, char *err,
		    size_t errlen)
{
	if (!val) {
		*out = true;
		return 0;
	}
	if (device_parse_onoff(val, out))
		return errf(err, errlen, "--%s: '%s': expected on or off",
			    name, val);
	return 0;
}

/* "DIR[,when=boot-ready|request][,then=exit|continue]", split in place */
static int set_snapshot_to(struct vmm_config *cfg, char *val, char *err,
			   size_t errlen)
{
	enum snapshot_when when = SNAP_WHEN_BOOT_READY;
	bool then_exit = true;
	char *opt = strchr(val, ',');

	if (opt)
		*opt++ = '\0';
	if (!*val)
		return errf(err, errlen, "--snapshot-to: no directory given");
	while (opt && *opt) {
		char *next = strchr(opt, ',');

		if (next)
			*next++ = '\0';
		if (!strcmp(opt, "when=boot-ready"))
			when = SNAP_WHEN_BOOT_READY;
		else if (!strcmp(opt, "when=request"))
			when = SNAP_WHEN_REQUEST;
		else if (!strcmp(opt, "then=exit"))
			then_exit = true;
		else if (!strcmp(opt, "then=continue"))
			then_exit = false;
		else
			return errf(err, errlen, "--snapshot-to: '%s': expected "
				    "when=boot-ready|request or then=exit|continue",
				    opt);
		opt = next;
	}
	cfg->snapshot_dir = val;
	cfg->snapshot_when = when;
	cfg->snapshot_then_exit = then_exit;
	return 0;
}

static int set_pvm_quirks(struct vmm_config *cfg, const char *val, char *err,
			  size_t errlen)
{
	if (!strcmp(val, "auto"))
		cfg->pvm_quirks = TRI_AUTO;
	else if (!strcmp(val, "on"))
		cfg->pvm_quirks = TRI_ON;
	else if (!strcmp(val, "off"))
		cfg->pvm_quirks = TRI_OFF;
	else
		return errf(err, errlen,
			    "--pvm-quirks: '%s': expected auto, on or off", val);
	return 0;
}

int vmm_config_apply(struct vmm_config *cfg, const char *name, char *val,
		     char *err, size_t errlen)
{
	size_t n = strlen(name);

	if (!val && takes_value(name, n))
		return errf(err, errlen, "--%s needs a value", name);
	if (!strcmp(name, "kernel")) {
		cfg->kernel = val;
	} else if (!strcmp(name, "initramfs") || !strcmp(name, "initrd")) {
		cfg->initramfs = val;
	} else if (!strcmp(name, "cmdline")) {
		cfg->cmdline = val;
	} else if (!strcmp(name, "memory")) {
		return set_memory(cfg, val, err, errlen);
	} else if (!strcmp(name, "cpus")) {
		if (parse_cpus(val, &cfg->cpus))
			return errf(err, errlen,
				    "--cpus: invalid count '%s' (boot=1..%d)", val,
				    VMM_MAX_CPUS);
		cfg->cpus_set = true;
	} else if (!strcmp(name, "snapshot-to")) {
		return set_snapshot_to(cfg, val, err, errlen);
	} else if (!strcmp(name, "restore")) {
		if (!*val)
			return errf(err, errlen, "--restore: no directory given");
		cfg->restore_dir = val;
	} else if (!strcmp(name, "serial")) {
		return set_serial(cfg, val, err, errlen);
	} else if (!strcmp(name, "timeout")) {
		if (parse_timeout(val, &cfg->timeout))
			return errf(err, errlen,
				    "--timeout: invalid number of seconds '%s'", val);
	} else if (!strcmp(name, "pvm-quirks")) {
		return set_pvm_quirks(cfg, val, err, errlen);
	} else if (!strcmp(name, "events")) {
		return set_events(cfg, val, err, errlen);
	} else if (!strcmp(name, "seccomp")) {
		enum vm_seccomp_mode m;

		if (vm_seccomp_parse(val, &m))
			return errf(err, errlen,
				    "--seccomp: '%s': expected on, log or off", val);
		cfg->seccomp = m;
	} else if (!strcmp(name, "boot-timer")) {
		return set_flag(name, val, &cfg->boot_timer, err, errlen);
	} else if (!strcmp(name, "help")) {
		return set_flag(name, val, &cfg->help, err, errlen);
	} else if (!strcmp(name, "version")) {
		return set_flag(name, val, &cfg->version, err, errlen);
	} else if (device_type_find(name)) {
		char msg[400];

		if (vmm_config_add_device(cfg, name, val, msg, sizeof(msg)))
			return errf(err, errlen, "--%s: %s", name, msg);
	} else {
		return errf(err, errlen, "unknown option '--%s' (see --help)", name);
	}
	return 0;
}

int vmm_config_check(const struct vmm_config *cfg, char *err, size_t errlen)
{
	enum vm_seccomp_mode m;

	if (vm_seccomp_resolve(cfg->seccomp, &m, err, errlen))
		return -1;
	if (cfg->restore_dir) {
		if (cfg->kernel || cfg->initramfs || cfg->cmdline)
			return errf(err, errlen, "--restore: the guest comes from "
				    "the snapshot; --kernel, --initramfs and "
				    "--cmdline do not go with it");
		return 0;
	}
	if (!cfg->kernel)
		return errf(err, errlen, "--kernel is required (see --help)");
	return 0;
}

int options_parse(int argc, char **argv, struct vmm_config *cfg, char *err,
		  size_t errlen)
{
	vmm_config_init(cfg);
	for (int i = 1; i < argc; i++) {
		char *name = NULL, *val = NULL;

		if (options_next(argc, argv, &i, &name, &val, err, errlen) ||
		    vmm_config_apply(cfg, name, val, err, errlen))
			goto fail;
	}
	if (cfg->help || cfg->version)
		return 0;
	if (vmm_config_check(cfg, err, errlen))
		goto fail;
	return 0;
fail:
	vmm_config_clear(cfg);
	return -1;
}
