/* vmm/boot.h - kernel loaders (bzImage, ELF vmlinux via PVH or 64-bit
 * entry, the test kernel) and the boot data they share: boot_params, e820,
 * command line, initrd, MP table, boot page tables, first vCPU state. */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/vm_private.h"

enum kernel_kind { KERNEL_BZIMAGE, KERNEL_ELF_PVH, KERNEL_ELF64 };

#define BOOT_SETUP_HDR_START	0x1f1
#define BOOT_PARAMS_SIZE	4096

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;		/* 1 RAM, 2 reserved */
} __attribute__((packed));

struct boot_info {
	enum kernel_kind kind;
	bool is_linux;		/* Linux-specific options apply (PVM quirks) */
	uint64_t entry;		/* GPA */
	uint64_t kernel_start, kernel_end;	/* GPA range the kernel needs */
	uint64_t initrd_gpa, initrd_size;
	uint64_t initrd_addr_max;	/* highest byte the initrd may use */
	uint32_t cmdline_max;		/* bytes, without the NUL */
	uint16_t protocol;		/* bzImage boot protocol version */
	/* bzImage only: where its setup header goes in boot_params */
	uint8_t setup_hdr[BOOT_PARAMS_SIZE - BOOT_SETUP_HDR_START];
	size_t setup_hdr_len;
	/* where the file's bytes go (filled by boot_parse_kernel) */
	struct boot_segment {
		uint64_t gpa, file_off, file_size, mem_size;
	} seg[16];
	unsigned nseg;
};

/* Identify and validate a kernel image held in buf; decide where it goes in
 * a guest with mem.  Pure: touches no guest memory.  -1 + err on failure. */
int boot_parse_kernel(const uint8_t *buf, size_t size,
		      const struct guest_mem *mem, struct boot_info *bi,
		      char *err, size_t errlen);

/* The e820 map of a guest with mem; returns the entry count (<= 4). */
unsigned boot_e820(const struct guest_mem *mem, struct e820_entry *e);

/* Fill the 4 KiB zero page at zp for the kernel, command line and initrd. */
void boot_fill_params(uint8_t *zp, const struct boot_info *bi,
		      const struct guest_mem *mem, uint64_t cmdline_gpa);

/* Write the PVH start info (hvm_start_info version 1), its memory map (the
 * e820 entries as hvm_memmap_table_entry) and the initrd's module entry at
 * VMM_PVH_START_INFO_GPA.  0, or -1 if RAM does not cover that area. */
int boot_write_pvh_start_info(struct guest_mem *mem, const struct boot_info *bi);

/* Read the kernel from path into guest memory. */
int boot_load_kernel(struct vm *vm, const char *path, struct boot_info *bi,
		     char *err, size_t errlen);
/* Read the initrd, placed as high as the kernel allows. */
int boot_load_initrd(struct vm *vm, const char *path, struct boot_info *bi,
		     char *err, size_t errlen);
/* Write command line, zero page or PVH start info, MP table, GDT and page
 * tables, and put the boot vCPU at the entry point. */
int boot_setup(struct vm *vm, const struct boot_info *bi, char *err,
	       size_t errlen);

/* MP table for vm->ncpus CPUs at VMM_MPTABLE_GPA (mptable.c). */
int mptable_write(struct vm *vm, char *err, size_t errlen);

#endif
