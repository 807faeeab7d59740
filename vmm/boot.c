/* vmm/boot.c - kernel loaders and boot data.  Every kernel kind goes
 * through boot_parse_kernel() (where it goes) and boot_setup() (command line,
 * boot_params/e820 or PVH start info, page tables, entry state), so bzImage,
 * vmlinux and the test kernel see the same machine.
 * Reference: Linux Documentation/arch/x86/boot.rst, the PVH ABI
 * (xen/include/public/arch-x86/hvm/start_info.h). */
#include "vmm/boot.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* boot_params offsets (boot.rst "THE REAL-MODE KERNEL HEADER" + zero page) */
#define BP_EXT_RAMDISK_IMAGE	0x0c0
#define BP_EXT_RAMDISK_SIZE	0x0c4
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define BP_SETUP_SECTS		0x1f1
#define BP_BOOT_FLAG		0x1fe
#define BP_JUMP			0x200
#define BP_HEADER		0x202
#define BP_VERSION		0x206
#define BP_TYPE_OF_LOADER	0x210
#define BP_LOADFLAGS		0x211
#define BP_CODE32_START		0x214
#define BP_RAMDISK_IMAGE	0x218
#define BP_RAMDISK_SIZE		0x21c
#define BP_HEAP_END_PTR		0x224
#define BP_CMD_LINE_PTR		0x228
#define BP_INITRD_ADDR_MAX	0x22c
#define BP_KERNEL_ALIGNMENT	0x230
#define BP_RELOCATABLE		0x234
#define BP_XLOADFLAGS		0x236
#define BP_CMDLINE_SIZE		0x238
#define BP_PREF_ADDRESS		0x258
#define BP_INIT_SIZE		0x260
#define BP_E820_TABLE		0x2d0
#define BP_E820_MAX		128

#define HDRS_MAGIC		0x53726448	/* "HdrS" */
#define LOADED_HIGH		0x01
#define CAN_USE_HEAP		0x80
#define XLF_KERNEL_64		0x01

/* PVH */
#define XEN_ELFNOTE_PHYS32_ENTRY	18
#define HVM_START_MAGIC		0x336ec578
#define PVH_MEMMAP_GPA		(VMM_PVH_START_INFO_GPA + 0x40)
#define PVH_MODLIST_GPA		(VMM_PVH_START_INFO_GPA + 0x200)
#define PVH_MEMMAP_ENTRY	24	/* struct hvm_memmap_table_entry */

#define PAGE_SIZE		4096ULL
#define LINUX_CMDLINE_MAX	2047	/* x86 COMMAND_LINE_SIZE - 1 */

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

unsigned boot_e820(const struct guest_mem *mem, struct e820_entry *e)
{
	unsigned n = 0;

	e[n++] = (struct e820_entry){ 0, VMM_MPTABLE_GPA, 1 };
	e[n++] = (struct e820_entry){ VMM_MPTABLE_GPA,
				      VMM_EBDA_END - VMM_MPTABLE_GPA, 2 };
	e[n++] = (struct e820_entry){ VMM_HIMEM_START,
				      mem->low_size - VMM_HIMEM_START, 1 };
	if (mem->size > mem->low_size)
		e[n++] = (struct e820_entry){ VMM_MMIO_HOLE_END,
					      mem->size - mem->low_size, 1 };
	return n;
}

/* Does [gpa, gpa + size) fit in low RAM above the boot data? */
static bool fits_low(const struct guest_mem *mem, uint64_t gpa, uint64_t size)
{
	return gpa >= VMM_HIMEM_START && gpa + size >= gpa &&
	       gpa + size <= mem->low_size;
}

static int parse_bzimage(const uint8_t *buf, size_t size,
			 const struct guest_mem *mem, struct boot_info *bi,
			 char *err, size_t errlen)
{
	unsigned setup_sects = buf[BP_SETUP_SECTS] ? buf[BP_SETUP_SECTS] : 4;
	uint64_t setup_size = (setup_sects + 1) * 512ULL, pm_size;
	uint64_t align, pref, init_size, load;
	size_t hdr_end;

	bi->protocol = rd16(buf + BP_VERSION);
	if (bi->protocol < 0x020c || !(rd16(buf + BP_XLOADFLAGS) & XLF_KERNEL_64))
		return errf(err, errlen,
			    "bzImage boot protocol %u.%02u has no 64-bit entry (need 2.12+)",
			    bi->protocol >> 8, bi->protocol & 0xff);
	if (!(buf[BP_LOADFLAGS] & LOADED_HIGH))
		return errf(err, errlen, "a zImage (loads low) is not supported; use a bzImage");
	if (setup_size >= size)
		return errf(err, errlen, "bzImage is truncated (setup %llu bytes, file %zu)",
			    (unsigned long long)setup_size, size);
	pm_size = size - setup_size;
	align = rd32(buf + BP_KERNEL_ALIGNMENT);
	if (!align || (align & (align - 1)))
		align = 0x200000;
	pref = rd64(buf + BP_PREF_ADDRESS);
	init_size = rd32(buf + BP_INIT_SIZE);
	if (init_size < pm_size)
		init_size = pm_size;

	/* pref_address when it fits; else, if relocatable, the lowest aligned
	 * address that does (what a small guest needs); else 1 MiB. */
	if (pref && fits_low(mem, pref, init_size))
		load = pref;
	else if (buf[BP_RELOCATABLE])
		load = align_up(VMM_HIMEM_START, align);
	else
		load = VMM_HIMEM_START;
	if (!fits_low(mem, load, init_size))
		return errf(err, errlen,
			    "kernel needs %llu MiB at %#llx (init_size): more than guest memory (%llu MiB)",
			    (unsigned long long)(init_size >> 20), (unsigned long long)load,
			    (unsigned long long)(mem->size >> 20));

	bi->kind = KERNEL_BZIMAGE;
	bi->is_linux = true;
	bi->entry = load + 0x200;	/* startup_64 */
	bi->kernel_start = load;
	bi->kernel_end = load + init_size;
	bi->seg[0] = (struct boot_segment){ load, setup_size, pm_size, pm_size };
	bi->nseg = 1;
	bi->cmdline_max = bi->protocol >= 0x0206 ? rd32(buf + BP_CMDLINE_SIZE) : 255;
	bi->initrd_addr_max = rd32(buf + BP_INITRD_ADDR_MAX);
	if (!bi->initrd_addr_max)
		bi->initrd_addr_max = 0x37ffffff;
	/* the setup header ends at 0x202 + the byte at 0x201 */
	hdr_end = BP_HEADER + buf[BP_JUMP + 1];
	if (hdr_end > setup_size || hdr_end > BOOT_PARAMS_SIZE)
		return errf(err, errlen, "bzImage setup header is malformed");
	bi->setup_hdr_len = hdr_end - BOOT_SETUP_HDR_START;
	memcpy(bi->setup_hdr, buf + BOOT_SETUP_HDR_START, bi->setup_hdr_len);
	return 0;
}

/* Walk the notes in [p, p + len): PVH entry and "Linux" notes. */
static void scan_notes(const uint8_t *p, uint64_t len, struct boot_info *bi,
		       uint64_t *pvh_entry)
{
	uint64_t off = 0;

	while (off + sizeof(Elf64_Nhdr) <= len) {
		const Elf64_Nhdr *n = (const Elf64_Nhdr *)(p + off);
		uint64_t name_off = off + sizeof(*n);
		uint64_t desc_off = name_off + align_up(n->n_namesz, 4);
		uint64_t next = desc_off + align_up(n->n_descsz, 4);
		const char *name = (const char *)(p + name_off);

		if (next > len || next <= off)
			break;
		if (n->n_namesz == 4 && !memcmp(name, "Xen", 4) &&
		    n->n_type == XEN_ELFNOTE_PHYS32_ENTRY) {
			if (n->n_descsz == 4)
				*pvh_entry = rd32(p + desc_off);
			else if (n->n_descsz == 8)
				*pvh_entry = rd64(p + desc_off);
		}
		if (n->n_namesz == 6 && !memcmp(name, "Linux", 6))
			bi->is_linux = true;
		off = next;
	}
}

static int parse_elf(const uint8_t *buf, size_t size,
		     const struct guest_mem *mem, struct boot_info *bi,
		     char *err, size_t errlen)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)buf;
	uint64_t pvh_entry = 0, lo = UINT64_MAX, hi = 0, entry;
	bool entry_ok = false;
	unsigned i;

	if (size < sizeof(*eh) || eh->e_ident[EI_CLASS] != ELFCLASS64)
		return errf(err, errlen, "ELF kernel is not 64-bit");
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64)
		return errf(err, errlen, "ELF kernel is not for x86_64");
	if (eh->e_type != ET_EXEC)
		return errf(err, errlen, "ELF kernel is not an executable (e_type %u)",
			    eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || !eh->e_phnum ||
	    eh->e_phoff > size ||
	    (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
		return errf(err, errlen, "ELF kernel is truncated (program headers)");

	entry = eh->e_entry;
	for (i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(buf + eh->e_phoff) + i;

		if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset)
			return errf(err, errlen,
				    "ELF kernel is truncated (segment %u past end of file)", i);
		if (ph->p_type == PT_NOTE)
			scan_notes(buf + ph->p_offset, ph->p_filesz, bi, &pvh_entry);
		if (ph->p_type != PT_LOAD || !ph->p_memsz)
			continue;
		if (ph->p_filesz > ph->p_memsz)
			return errf(err, errlen, "ELF segment %u: file size beyond memory size", i);
		if (!fits_low(mem, ph->p_paddr, ph->p_memsz))
			return errf(err, errlen,
				    "ELF segment %u (%#llx, %llu KiB) does not fit in guest memory (%llu MiB)",
				    i, (unsigned long long)ph->p_paddr,
				    (unsigned long long)(ph->p_memsz >> 10),
				    (unsigned long long)(mem->size >> 20));
		if (bi->nseg == sizeof(bi->seg) / sizeof(bi->seg[0]))
			return errf(err, errlen, "ELF kernel has too many segments");
		bi->seg[bi->nseg++] = (struct boot_segment){
			ph->p_paddr, ph->p_offset, ph->p_filesz, ph->p_memsz };
		if (ph->p_paddr < lo)
			lo = ph->p_paddr;
		if (ph->p_paddr + ph->p_memsz > hi)
			hi = ph->p_paddr + ph->p_memsz;
		/* e_entry may be physical (vmlinux) or virtual: map it */
		if (!entry_ok && eh->e_entry >= ph->p_paddr &&
		    eh->e_entry - ph->p_paddr < ph->p_memsz) {
			entry = eh->e_entry;
			entry_ok = true;
		} else if (!entry_ok && eh->e_entry >= ph->p_vaddr &&
			   eh->e_entry - ph->p_vaddr < ph->p_memsz) {
			entry = eh->e_entry - ph->p_vaddr + ph->p_paddr;
			entry_ok = true;
		}
	}
	if (!bi->nseg)
		return errf(err, errlen, "ELF kernel has no loadable segments");
	bi->kernel_start = lo;
	bi->kernel_end = hi;
	bi->initrd_addr_max = VMM_MMIO_HOLE_START - 1;
	/* Linux (its vmlinux always has a "Linux" note) gets Linux's limit and
	 * options; a PVH kernel without one (the test kernel) reads the whole
	 * command-line area */
	bi->cmdline_max = bi->is_linux ? LINUX_CMDLINE_MAX : VMM_CMDLINE_MAX - 1;
	if (pvh_entry) {
		if (pvh_entry < lo || pvh_entry >= hi)
			return errf(err, errlen, "PVH entry %#llx is outside the kernel",
				    (unsigned long long)pvh_entry);
		bi->kind = KERNEL_ELF_PVH;
		bi->entry = pvh_entry;
		return 0;
	}
	if (!entry_ok)
		return errf(err, errlen, "ELF entry point %#llx is outside the loaded segments",
			    (unsigned long long)eh->e_entry);
	bi->kind = KERNEL_ELF64;
	bi->entry = entry;
	return 0;
}

int boot_parse_kernel(const uint8_t *buf, size_t size,
		      const struct guest_mem *mem, struct boot_info *bi,
		      char *err, size_t errlen)
{
	memset(bi, 0, sizeof(*bi));
	if (size >= SELFMAG && !memcmp(buf, ELFMAG, SELFMAG))
		return parse_elf(buf, size, mem, bi, err, errlen);
	if (size >= 0x300 && rd32(buf + BP_HEADER) == HDRS_MAGIC) {
		if (rd16(buf + BP_BOOT_FLAG) != 0xaa55)
			return errf(err, errlen, "bzImage boot flag is not 0xaa55");
		return parse_bzimage(buf, size, mem, bi, err, errlen);
	}
	if (size < 0x300)
		return errf(err, errlen, "not a kernel: only %zu bytes", size);
	return errf(err, errlen, "not a kernel: neither a bzImage (no HdrS) nor an ELF file");
}

void boot_fill_params(uint8_t *zp, const struct boot_info *bi,
		      const struct guest_mem *mem, uint64_t cmdline_gpa)
{
	struct e820_entry e820[4];
	unsigned n = boot_e820(mem, e820);

	memset(zp, 0, BOOT_PARAMS_SIZE);
	if (bi->kind == KERNEL_BZIMAGE) {
		memcpy(zp + BOOT_SETUP_HDR_START, bi->setup_hdr, bi->setup_hdr_len);
		wr32(zp + BP_CODE32_START, (uint32_t)bi->kernel_start);
	} else {
		/* a vmlinux has no setup header: write the fields it reads */
		wr16(zp + BP_BOOT_FLAG, 0xaa55);
		wr32(zp + BP_HEADER, HDRS_MAGIC);
		wr16(zp + BP_VERSION, 0x020f);
		wr32(zp + BP_KERNEL_ALIGNMENT, 0x1000000);
		wr32(zp + BP_CMDLINE_SIZE, bi->cmdline_max);
		wr32(zp + BP_INITRD_ADDR_MAX, (uint32_t)bi->initrd_addr_max);
	}
	zp[BP_TYPE_OF_LOADER] = 0xff;
	zp[BP_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
	wr16(zp + BP_HEAP_END_PTR, 0xfe00);
	wr32(zp + BP_CMD_LINE_PTR, (uint32_t)cmdline_gpa);
	wr32(zp + BP_EXT_CMD_LINE_PTR, (uint32_t)(cmdline_gpa >> 32));
	wr32(zp + BP_RAMDISK_IMAGE, (uint32_t)bi->initrd_gpa);
	wr32(zp + BP_RAMDISK_SIZE, (uint32_t)bi->initrd_size);
	wr32(zp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(bi->initrd_gpa >> 32));
	wr32(zp + BP_EXT_RAMDISK_SIZE, (uint32_t)(bi->initrd_size >> 32));
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(zp + BP_E820_TABLE, e820, n * sizeof(e820[0]));
}

/* Read a whole regular file: kernels are small enough. */
static uint8_t *read_file(const char *path, const char *what, size_t *size,
			  char *err, size_t errlen)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		errf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		errf(err, errlen, "%s %s: not a regular file", what, path);
		close(fd);
		return NULL;
	}
	if (st.st_size == 0) {
		errf(err, errlen, "%s %s: file is empty", what, path);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		errf(err, errlen, "%s %s: out of memory", what, path);
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0) {
			errf(err, errlen, "%s %s: read: %s", what, path,
			     n ? strerror(errno) : "file shrank while reading");
			free(buf);
			close(fd);
			return NULL;
		}
		got += (size_t)n;
	}
	close(fd);
	*size = got;
	return buf;
}

int boot_load_kernel(struct vm *vm, const char *path, struct boot_info *bi,
		     char *err, size_t errlen)
{
	size_t size;
	uint8_t *buf = read_file(path, "kernel", &size, err, errlen);
	char why[200];
	unsigned i;

	if (!buf)
		return -1;
	if (boot_parse_kernel(buf, size, &vm->mem, bi, why, sizeof(why))) {
		errf(err, errlen, "kernel %s: %s", path, why);
		free(buf);
		return -1;
	}
	for (i = 0; i < bi->nseg; i++) {
		const struct boot_segment *s = &bi->seg[i];
		uint8_t *dst = guest_mem_ptr(&vm->mem, s->gpa, s->mem_size);

		/* parse checked the bounds; this is belt and braces */
		if (!dst) {
			errf(err, errlen, "kernel %s: segment outside guest memory", path);
			free(buf);
			return -1;
		}
		memcpy(dst, buf + s->file_off, s->file_size);
		memset(dst + s->file_size, 0, s->mem_size - s->file_size);
	}
	free(buf);
	return 0;
}

int boot_load_initrd(struct vm *vm, const char *path, struct boot_info *bi,
		     char *err, size_t errlen)
{
	struct stat st;
	uint64_t top, gpa, size, got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errf(err, errlen, "initramfs %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return errf(err, errlen, "initramfs %s: not a non-empty regular file", path);
	}
	size = (uint64_t)st.st_size;
	top = vm->mem.low_size;
	if (top > bi->initrd_addr_max + 1)
		top = bi->initrd_addr_max + 1;
	gpa = (top - size) & ~(PAGE_SIZE - 1);
	if (size > top || gpa < align_up(bi->kernel_end, PAGE_SIZE)) {
		close(fd);
		return errf(err, errlen,
			    "initramfs %s (%llu MiB) does not fit in guest memory above the kernel (raise --memory)",
			    path, (unsigned long long)(size >> 20));
	}
	while (got < size) {
		ssize_t n = pread(fd, vm->mem.host + gpa + got, size - got, (off_t)got);

		if (n <= 0) {
			close(fd);
			return errf(err, errlen, "initramfs %s: read: %s", path,
				    n ? strerror(errno) : "file shrank while reading");
		}
		got += (uint64_t)n;
	}
	close(fd);
	bi->initrd_gpa = gpa;
	bi->initrd_size = size;
	return 0;
}

/* Identity map of 0-4 GiB in 2 MiB pages.  U/S=1 at every level: a guest
 * that opts in to native execution on a PVM host needs it (pvm-host.md);
 * elsewhere it is harmless, since the kernel installs its own tables. */
static void write_page_tables(struct guest_mem *mem)
{
	uint64_t *pml4 = guest_mem_ptr(mem, VMM_PML4_GPA, PAGE_SIZE);
	uint64_t *pdpt = guest_mem_ptr(mem, VMM_PML4_GPA + PAGE_SIZE, PAGE_SIZE);
	uint64_t pd_gpa = VMM_PML4_GPA + 2 * PAGE_SIZE;
	uint64_t *pd = guest_mem_ptr(mem, pd_gpa, 4 * PAGE_SIZE);
	const uint64_t flags = 0x7;	/* present, writable, user */
	unsigned i;

	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = (VMM_PML4_GPA + PAGE_SIZE) | flags;
	for (i = 0; i < 4; i++)
		pdpt[i] = (pd_gpa + i * PAGE_SIZE) | flags;
	for (i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | flags | 0x80;	/* PS */
}

static void write_gdt(struct guest_mem *mem)
{
	uint64_t *gdt = guest_mem_ptr(mem, VMM_GDT_GPA, 6 * 8);

	gdt[0] = 0;
	gdt[1] = 0x00cf9b000000ffffULL;	/* 0x08: 32-bit code (PVH) */
	gdt[2] = 0x00af9b000000ffffULL;	/* 0x10: 64-bit code */
	gdt[3] = 0x00cf93000000ffffULL;	/* 0x18: data */
	gdt[4] = 0x00008b0000000067ULL;	/* 0x20: TSS (busy), base 0 */
	gdt[5] = 0;
}

int boot_write_pvh_start_info(struct guest_mem *mem, const struct boot_info *bi)
{
	uint8_t *si = guest_mem_ptr(mem, VMM_PVH_START_INFO_GPA, 0x40);
	struct e820_entry e820[4];
	unsigned n = boot_e820(mem, e820), i;
	uint8_t *mm = guest_mem_ptr(mem, PVH_MEMMAP_GPA, 4 * PVH_MEMMAP_ENTRY);
	uint8_t *mod = guest_mem_ptr(mem, PVH_MODLIST_GPA, 32);

	if (!si || !mm || !mod)	/* RAM always covers them (16 MiB at least) */
		return -1;
	memset(si, 0, 0x40);
	wr32(si + 0, HVM_START_MAGIC);
	wr32(si + 4, 1);				/* version */
	wr64(si + 24, VMM_CMDLINE_GPA);			/* cmdline_paddr */
	wr64(si + 40, PVH_MEMMAP_GPA);			/* memmap_paddr */
	wr32(si + 48, n);				/* memmap_entries */
	for (i = 0; i < n; i++) {
		uint8_t *ent = mm + i * PVH_MEMMAP_ENTRY;

		wr64(ent, e820[i].addr);
		wr64(ent + 8, e820[i].size);
		wr32(ent + 16, e820[i].type);
		wr32(ent + 20, 0);
	}
	if (bi->initrd_size) {
		memset(mod, 0, 32);
		wr64(mod, bi->initrd_gpa);
		wr64(mod + 8, bi->initrd_size);
		wr32(si + 12, 1);			/* nr_modules */
		wr64(si + 16, PVH_MODLIST_GPA);		/* modlist_paddr */
	}
	return 0;
}

static int setup_boot_cpu(struct vm *vm, const struct boot_info *bi,
			  char *err, size_t errlen)
{
	struct vcpu *c = &vm->vcpus[0];
	struct kvm_sregs s;
	struct kvm_regs r;
	struct kvm_segment code = { .base = 0, .limit = 0xffffffff,
		.selector = 0x10, .type = 11, .present = 1, .s = 1, .g = 1 };
	struct kvm_segment data = { .base = 0, .limit = 0xffffffff,
		.selector = 0x18, .type = 3, .present = 1, .s = 1, .db = 1, .g = 1 };

	if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return errf(err, errlen, "KVM_GET_SREGS: %s", strerror(errno));
	s.gdt.base = VMM_GDT_GPA;
	s.gdt.limit = 6 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.tr = (struct kvm_segment){ .selector = 0x20, .limit = 0x67,
		.type = 11, .present = 1 };
	memset(&r, 0, sizeof(r));
	r.rflags = 2;
	r.rip = bi->entry;
	if (bi->kind == KERNEL_ELF_PVH) {
		/* 32-bit protected mode, paging off, %ebx = start info */
		code.selector = 0x08;
		code.db = 1;
		s.cr0 = 0x11;		/* PE, ET */
		s.cr4 = 0;
		s.efer = 0;
		r.rbx = VMM_PVH_START_INFO_GPA;
	} else {
		/* 64-bit long mode on the identity map, %rsi = boot_params */
		code.l = 1;
		s.cr0 = 0x80050033;	/* PG AM WP NE ET MP PE */
		s.cr3 = VMM_PML4_GPA;
		s.cr4 = 0x20;		/* PAE */
		s.efer = 0xd00;		/* NXE LMA LME */
		r.rsi = VMM_ZERO_PAGE_GPA;
		r.rsp = VMM_BOOT_STACK_GPA;
	}
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
		return errf(err, errlen, "KVM_SET_SREGS: %s", strerror(errno));
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return errf(err, errlen, "KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

int boot_setup(struct vm *vm, const struct boot_info *bi, char *err,
	       size_t errlen)
{
	char *cl = guest_mem_ptr(&vm->mem, VMM_CMDLINE_GPA, VMM_CMDLINE_MAX);

	/* refuse rather than let the kernel truncate it silently */
	if (vm->cmdline_len > bi->cmdline_max)
		return errf(err, errlen,
			    "kernel command line is %zu bytes; this kernel accepts at most %u",
			    vm->cmdline_len, bi->cmdline_max);
	memcpy(cl, vm->cmdline, vm->cmdline_len + 1);
	boot_fill_params(guest_mem_ptr(&vm->mem, VMM_ZERO_PAGE_GPA, BOOT_PARAMS_SIZE),
			 bi, &vm->mem, VMM_CMDLINE_GPA);
	if (boot_write_pvh_start_info(&vm->mem, bi))
		return errf(err, errlen, "guest RAM too small for the boot data");
	write_gdt(&vm->mem);
	write_page_tables(&vm->mem);
	if (mptable_write(vm, err, errlen))
		return -1;
	return setup_boot_cpu(vm, bi, err, errlen);
}
