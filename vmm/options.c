/* vmm/options.c - command-line parsing for ./vmm */
#include "vmm/options.h"
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

static int parse_onoff(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1") ||
	    !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") ||
		 !strcmp(v, "0") || !strcmp(v, "no"))
		*out = false;
	else
		return -1;
	return 0;
}

int parse_disk(char *s, struct virtio_blk_opts *d, char *err, size_t errlen)
{
	char *save = NULL, *kv;
	bool have_format = false;

	memset(d, 0, sizeof(*d));
	d->blk.cache = BLK_CACHE_WRITEBACK;
	for (kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');

		if (!v)
			return errf(err, errlen, "--disk: '%s' is not key=value", kv);
		*v++ = '\0';
		if (!strcmp(kv, "path")) {
			if (!*v)
				return errf(err, errlen, "--disk: empty path");
			d->blk.path = v;
		} else if (!strcmp(kv, "format")) {
			int f = blk_format_parse(v);

			if (f < 0)
				return errf(err, errlen,
					    "--disk: unknown format '%s' (raw or qcow2)", v);
			d->blk.format = (enum blk_format)f;
			have_format = true;
		} else if (!strcmp(kv, "readonly")) {
			if (parse_onoff(v, &d->blk.readonly))
				return errf(err, errlen,
					    "--disk: readonly=%s: expected on or off", v);
		} else if (!strcmp(kv, "cache")) {
			if (!strcmp(v, "none"))
				d->blk.cache = BLK_CACHE_NONE;
			else if (!strcmp(v, "writeback"))
				d->blk.cache = BLK_CACHE_WRITEBACK;
			else
				return errf(err, errlen,
					    "--disk: cache=%s: expected none or writeback", v);
		} else if (!strcmp(kv, "serial")) {
			/* virtio-blk GET_ID answers 20 bytes: refuse, don't truncate */
			if (strlen(v) > 20)
				return errf(err, errlen,
					    "--disk: serial '%s' is longer than 20 characters", v);
			d->serial = v;
		} else {
			return errf(err, errlen, "--disk: unknown key '%s'", kv);
		}
	}
	if (!d->blk.path)
		return errf(err, errlen, "--disk: path= is required");
	if (!have_format)
		return errf(err, errlen,
			    "--disk %s: format= is required (raw or qcow2; never probed)",
			    d->blk.path);
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
"  --cpus boot=N          vCPUs (default 1, at most 64)\n"
"  --disk path=P,format=raw|qcow2[,readonly=on][,cache=none|writeback][,serial=S]\n"
"                         a virtio-blk disk (repeatable, up to 8)\n"
"  --serial tty|file=PATH|off   where the console goes (default tty: stdout/stdin)\n"
"  --timeout SECONDS      kill the guest and exit 124 after this wall time\n"
"  --boot-timer           print the time to the guest's boot-ready marker\n"
"  --pvm-quirks auto|on|off   Linux workarounds on a PVM host (default auto)\n"
"  --help, --version\n"
"exit status: the guest's exit-port status (0-63), 0 on guest reboot;\n"
"  64 usage, 65 bad input file, 69 host resource unavailable, 70 internal error,\n"
"  124 timeout, 125 guest crashed, 126 guest kernel panic\n", f);
}

static const char *const value_opts[] = {
	"kernel", "initramfs", "initrd", "cmdline", "memory", "cpus", "disk",
	"serial", "timeout", "pvm-quirks", NULL,
};

int options_parse(int argc, char **argv, struct vmm_config *cfg, char *err,
		  size_t errlen)
{
	int i;

	memset(cfg, 0, sizeof(*cfg));
	cfg->memory = VMM_DEFAULT_MEMORY;
	cfg->cpus = 1;
	cfg->serial = SERIAL_TTY;
	for (i = 1; i < argc; i++) {
		char *a = argv[i], *name, *val = NULL, *eq;
		const char *const *vo;
		bool takes_value = false;

		if (strncmp(a, "--", 2) || !a[2])
			return errf(err, errlen, "unexpected argument '%s' (see --help)", a);
		name = a + 2;
		eq = strchr(name, '=');
		for (vo = value_opts; *vo; vo++) {
			size_t n = strlen(*vo);

			if (!strncmp(name, *vo, n) && (name[n] == '\0' || name[n] == '=')) {
				takes_value = true;
				break;
			}
		}
		if (takes_value) {
			if (eq) {
				*eq = '\0';
				val = eq + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				return errf(err, errlen, "--%s needs a value", name);
			}
		} else if (eq) {
			*eq = '\0';
			return errf(err, errlen, "--%s takes no value", name);
		}

		if (!strcmp(name, "kernel")) {
			cfg->kernel = val;
		} else if (!strcmp(name, "initramfs") || !strcmp(name, "initrd")) {
			cfg->initramfs = val;
		} else if (!strcmp(name, "cmdline")) {
			cfg->cmdline = val;
		} else if (!strcmp(name, "memory")) {
			const char *v = !strncmp(val, "size=", 5) ? val + 5 : val;

			if (parse_size(v, &cfg->memory))
				return errf(err, errlen, "--memory: invalid size '%s'", v);
			if (cfg->memory < VMM_MIN_MEMORY)
				return errf(err, errlen,
					    "--memory: %s is too small (at least 16M)", v);
			if (cfg->memory & 0xfff)
				return errf(err, errlen,
					    "--memory: %s is not a multiple of 4K", v);
		} else if (!strcmp(name, "cpus")) {
			if (parse_cpus(val, &cfg->cpus))
				return errf(err, errlen,
					    "--cpus: invalid count '%s' (boot=1..%d)", val,
					    VMM_MAX_CPUS);
		} else if (!strcmp(name, "disk")) {
			if (cfg->ndisks == VMM_MAX_DISKS)
				return errf(err, errlen, "--disk: at most %d disks",
					    VMM_MAX_DISKS);
			if (parse_disk(val, &cfg->disks[cfg->ndisks], err, errlen))
				return -1;
			cfg->disks[cfg->ndisks].index = cfg->ndisks;
			cfg->ndisks++;
		} else if (!strcmp(name, "serial")) {
			if (!strcmp(val, "tty") || !strcmp(val, "stdio")) {
				cfg->serial = SERIAL_TTY;
			} else if (!strcmp(val, "off")) {
				cfg->serial = SERIAL_OFF;
			} else if (!strncmp(val, "file=", 5) && val[5]) {
				cfg->serial = SERIAL_FILE;
				cfg->serial_path = val + 5;
			} else {
				return errf(err, errlen,
					    "--serial: '%s': expected tty, file=PATH or off", val);
			}
		} else if (!strcmp(name, "timeout")) {
			if (parse_timeout(val, &cfg->timeout))
				return errf(err, errlen,
					    "--timeout: invalid number of seconds '%s'", val);
		} else if (!strcmp(name, "pvm-quirks")) {
			if (!strcmp(val, "auto"))
				cfg->pvm_quirks = TRI_AUTO;
			else if (!strcmp(val, "on"))
				cfg->pvm_quirks = TRI_ON;
			else if (!strcmp(val, "off"))
				cfg->pvm_quirks = TRI_OFF;
			else
				return errf(err, errlen,
					    "--pvm-quirks: '%s': expected auto, on or off", val);
		} else if (!strcmp(name, "boot-timer")) {
			cfg->boot_timer = true;
		} else if (!strcmp(name, "help")) {
			cfg->help = true;
		} else if (!strcmp(name, "version")) {
			cfg->version = true;
		} else {
			return errf(err, errlen, "unknown option '--%s' (see --help)", name);
		}
	}
	if (cfg->help || cfg->version)
		return 0;
	if (!cfg->kernel)
		return errf(err, errlen, "--kernel is required (see --help)");
	return 0;
}
