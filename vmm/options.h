/* vmm/options.h - the command line of ./vmm, parsed into a plain config
 * struct (no side effects, so it is unit-testable). */
#ifndef VMM_OPTIONS_H
#define VMM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "devices/virtio_blk.h"

#define VMM_MAX_DISKS		8
#define VMM_MAX_CPUS		64
#define VMM_MIN_MEMORY		(16ULL << 20)
#define VMM_DEFAULT_MEMORY	(256ULL << 20)
#define VMM_DEFAULT_CMDLINE	"console=ttyS0 reboot=k panic=-1"

enum serial_mode { SERIAL_TTY, SERIAL_FILE, SERIAL_OFF };
enum tristate { TRI_AUTO, TRI_ON, TRI_OFF };

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
	unsigned ndisks;
	struct virtio_blk_opts disks[VMM_MAX_DISKS];
	bool help, version;
};

/* Parse argv into cfg.  On error returns -1 with one line in err.  Strings in
 * cfg point into argv, which --disk values are split in place. */
int options_parse(int argc, char **argv, struct vmm_config *cfg, char *err,
		  size_t errlen);

/* "256M", "1G", "4096K", "1048576": bytes; -1 on syntax error or overflow. */
int parse_size(const char *s, uint64_t *out);

/* One --disk value, e.g. "path=a.img,format=raw,readonly=on". */
int parse_disk(char *s, struct virtio_blk_opts *d, char *err, size_t errlen);

void options_usage(FILE *f);

#endif
