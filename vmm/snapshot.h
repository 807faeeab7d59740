/* vmm/snapshot.h - snapshots of a running VM and restoring them
 * (docs/snapshot.md is the format and the workflow).
 *
 * A snapshot is a directory: DIR/state (header with magic, version and
 * CRC-32s, then named sections: the machine, the VM's interrupt
 * controllers and clock, one per vCPU, one per device) and DIR/memory
 * (guest RAM as the host maps it, zero pages left as holes).
 *
 * Taking one: snapshot_take() on a thread of the VM's own (the service
 * thread) parks the vCPUs, pauses the devices (each drains what is in
 * flight), writes both files and resumes the devices; the caller then
 * resumes the vCPUs or ends the VM.
 *
 * Restoring: snapshot_open() reads and checks everything it can without
 * KVM (header, checksums, version, machine, the config that must match,
 * the memory file's size) so bad input is refused before /dev/kvm is
 * opened; the VM is then built with RAM a private map of the memory file
 * (vm_create_from) and its devices created as the config says, and
 * snapshot_restore() puts the VM, vCPU and device state back.
 */
#ifndef VMM_SNAPSHOT_H
#define VMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vmm_config;

#define SNAP_MAGIC		"VMMSNAP"	/* 8 bytes with the NUL */
#define SNAP_VERSION		1
#define SNAP_ARCH		"x86_64"
#define SNAP_STATE_FILE		"state"
#define SNAP_MEMORY_FILE	"memory"
/* a state file bigger than this is not ours (64 vCPUs need < 2 MiB) */
#define SNAP_STATE_MAX		(64u << 20)

/* The file header, little-endian (the only byte order vmm runs on). */
struct snap_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;		/* sizeof(struct snap_header) */
	uint64_t payload_size;		/* bytes of sections after it */
	uint32_t payload_crc32;		/* CRC-32 (IEEE, as zlib's) */
	uint32_t header_crc32;		/* of the 28 bytes before it */
};

/* Each section: this, then size bytes, then zeros to a multiple of 8. */
struct snap_section_hdr {
	char name[24];			/* NUL-terminated */
	uint32_t size;
	uint32_t reserved;
};

/* The "machine" section: what a restore must match. */
struct snap_machine {
	char arch[16];			/* SNAP_ARCH */
	char vmm_version[16];
	uint64_t mem_size;
	uint32_t ncpus;
	uint32_t page_size;		/* 4096 */
	uint32_t ndevice_types;		/* entries that follow */
	uint32_t reserved;
};
struct snap_machine_dev {
	char option[16];		/* "disk", "vsock", ... */
	uint32_t count;
	uint32_t reserved;
};

/* A growing byte buffer (a section being saved). */
struct snap_buf {
	uint8_t *data;
	size_t len, cap;
	bool failed;			/* an allocation failed */
};
/* A section being loaded. */
struct snap_reader {
	const uint8_t *p;
	size_t len, off;
};

uint32_t snap_crc32(uint32_t crc, const void *data, size_t n);
void snap_buf_free(struct snap_buf *b);
/* Start a section (returns where its header is); end it (size, padding). */
size_t snap_section_begin(struct snap_buf *b, const char *name);
void snap_section_end(struct snap_buf *b, size_t at);
/* The machine section of a VM of mem_size bytes and ncpus vCPUs with
 * cfg's devices. */
void snap_put_machine(struct snap_buf *b, uint64_t mem_size, unsigned ncpus,
		      const struct vmm_config *cfg);

/* Write header + payload to path (via path.tmp and a rename).  0, or -1
 * with one line in err. */
int snap_state_write(const char *path, const struct snap_buf *payload,
		     char *err, size_t errlen);

/* A snapshot opened for restoring. */
struct snapshot {
	char dir[4096];
	uint8_t *payload;
	size_t payload_size;
	struct snap_machine machine;
	int mem_fd;			/* DIR/memory, -1 once handed over */
};

/* Read DIR/state and check it against cfg (see above), and open
 * DIR/memory.  0 with *out set, or an exit status (VMM_EXIT_BAD_INPUT
 * for every problem with the files or the config) with one line in err. */
int snapshot_open(const char *dir, const struct vmm_config *cfg,
		  struct snapshot **out, char *err, size_t errlen);
void snapshot_close(struct snapshot *s);
/* Section name of s: 0 with r set, or -1 if there is none. */
int snapshot_section(const struct snapshot *s, const char *name,
		     struct snap_reader *r);

/* Put the state of s back into vm (built with s's memory, vCPUs created,
 * devices created, nothing running).  0, or an exit status with one line
 * in err (VMM_EXIT_BAD_INPUT: the state does not fit; VMM_EXIT_UNAVAILABLE:
 * KVM refused it, the ioctl named). */
int snapshot_restore(struct vm *vm, const struct snapshot *s, char *err,
		     size_t errlen);

struct snapshot_stats {
	double ms;			/* vCPUs parked to files written */
	uint64_t state_bytes, memory_bytes;	/* memory: data, not holes */
};
/* Take a snapshot of vm (built from cfg) into dir (created if missing).
 * On return the devices run again and the vCPUs are still parked (or
 * never were: on error): vcpus_resume() or end the VM.  0, or -1 with one
 * line in err. */
int snapshot_take(struct vm *vm, const struct vmm_config *cfg,
		  const char *dir, struct snapshot_stats *st, char *err,
		  size_t errlen);

/* Write the size bytes of RAM at host to fd, skipping zero pages (holes);
 * with resident_only, pages never touched (neither present nor swapped in
 * /proc/self/pagemap) are not even read: right for anonymous memory only.
 * Bytes of data written, or -1 (errno). */
int64_t snap_write_memory(int fd, const uint8_t *host, uint64_t size,
			  bool resident_only);

#endif
