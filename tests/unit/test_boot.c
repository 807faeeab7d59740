/* Unit tests: kernel image parsing, boot_params/e820 and the MP table
 * (vmm/boot.c, vmm/mptable.c) on synthetic images, no KVM needed. */
#include <check.h>
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot.h"
#include "tests/unit/check_main.h"

#define MiB (1ULL << 20)

static struct guest_mem mem = { .host = NULL, .size = 256 * MiB, .low_size = 256 * MiB };
static char err[256];

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* A minimal bzImage: setup header + protected-mode payload. */
static uint8_t *make_bzimage(size_t *size, uint16_t version, uint32_t init_size)
{
	size_t sz = 5 * 512 + 8192;
	uint8_t *b = calloc(1, sz);

	b[0x1f1] = 4;				/* setup_sects */
	put16(b + 0x1fe, 0xaa55);
	b[0x201] = 0x6a;			/* header ends at 0x26c */
	put32(b + 0x202, 0x53726448);		/* HdrS */
	put16(b + 0x206, version);
	b[0x211] = 0x01;			/* LOADED_HIGH */
	put32(b + 0x22c, 0x7fffffff);		/* initrd_addr_max */
	put32(b + 0x230, 0x200000);		/* kernel_alignment */
	b[0x234] = 1;				/* relocatable */
	put16(b + 0x236, 0x1);			/* XLF_KERNEL_64 */
	put32(b + 0x238, 2047);			/* cmdline_size */
	put64(b + 0x258, 0x1000000);		/* pref_address */
	put32(b + 0x260, init_size);
	memset(b + 5 * 512, 0x90, 8192);
	*size = sz;
	return b;
}

START_TEST(bzimage_ok)
{
	size_t sz;
	uint8_t *b = make_bzimage(&sz, 0x020f, 32 * MiB);
	struct boot_info bi;

	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), 0);
	ck_assert_int_eq(bi.kind, KERNEL_BZIMAGE);
	ck_assert(bi.is_linux);
	ck_assert_uint_eq(bi.kernel_start, 0x1000000);	/* pref_address */
	ck_assert_uint_eq(bi.entry, 0x1000200);		/* 64-bit entry */
	ck_assert_uint_eq(bi.kernel_end, 0x1000000 + 32 * MiB);
	ck_assert_uint_eq(bi.seg[0].file_off, 5 * 512);
	ck_assert_uint_eq(bi.seg[0].file_size, 8192);
	ck_assert_uint_eq(bi.cmdline_max, 2047);
	ck_assert_uint_eq(bi.setup_hdr_len, 0x26c - 0x1f1);
	free(b);
}
END_TEST

START_TEST(bzimage_small_guest_relocates)
{
	struct guest_mem small = { NULL, 40 * MiB, 40 * MiB };
	size_t sz;
	uint8_t *b = make_bzimage(&sz, 0x020f, 32 * MiB);
	struct boot_info bi;

	/* pref_address 16M + 32M does not fit in 40M: relocate to 2M */
	ck_assert_int_eq(boot_parse_kernel(b, sz, &small, &bi, err, sizeof(err)), 0);
	ck_assert_uint_eq(bi.kernel_start, 0x200000);
	small.size = small.low_size = 24 * MiB;
	ck_assert_int_eq(boot_parse_kernel(b, sz, &small, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "more than guest memory"));
	free(b);
}
END_TEST

START_TEST(bzimage_bad)
{
	size_t sz;
	uint8_t *b = make_bzimage(&sz, 0x020b, 32 * MiB);
	struct boot_info bi;

	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "no 64-bit entry"));
	free(b);

	b = make_bzimage(&sz, 0x020f, 32 * MiB);
	ck_assert_int_eq(boot_parse_kernel(b, 5 * 512, &mem, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "truncated"));
	put16(b + 0x1fe, 0x1234);
	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "boot flag"));
	put16(b + 0x1fe, 0xaa55);
	b[0x211] = 0;
	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "zImage"));
	free(b);

	memset(err, 0, sizeof(err));
	ck_assert_int_eq(boot_parse_kernel((const uint8_t *)"hello", 5, &mem, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a kernel"));
	b = calloc(1, 4096);
	ck_assert_int_eq(boot_parse_kernel(b, 4096, &mem, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "neither a bzImage"));
	free(b);
}
END_TEST

/* ELF64 with one PT_LOAD and optionally a PVH note and a "Linux" note
 * (every Linux vmlinux has one: build salt) */
enum { NOTE_PVH = 1, NOTE_LINUX = 2 };
static uint8_t *make_elf(size_t *size, uint64_t paddr, uint64_t memsz, int notes)
{
	size_t sz = 4096 + 4096, nlen = 0;
	uint8_t *b = calloc(1, sz);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(b + sizeof(*eh));
	uint8_t *note = b + 1024;

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_entry = paddr + 0x10;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = notes ? 2 : 1;
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 4096, .p_vaddr = paddr,
			      .p_paddr = paddr, .p_filesz = 4096, .p_memsz = memsz };
	if (notes & NOTE_LINUX) {
		Elf64_Nhdr n = { .n_namesz = 6, .n_descsz = 4, .n_type = 0x100 };

		memcpy(note + nlen, &n, sizeof(n));
		memcpy(note + nlen + sizeof(n), "Linux", 6);	/* padded to 8 */
		nlen += sizeof(n) + 8 + 4;
	}
	if (notes & NOTE_PVH) {
		Elf64_Nhdr n = { .n_namesz = 4, .n_descsz = 8, .n_type = 18 };

		memcpy(note + nlen, &n, sizeof(n));
		memcpy(note + nlen + sizeof(n), "Xen", 4);
		put64(note + nlen + sizeof(n) + 4, paddr + 0x40);
		nlen += sizeof(n) + 4 + 8;
	}
	if (notes)
		ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 1024,
				      .p_filesz = nlen };
	*size = sz;
	return b;
}

START_TEST(elf_kinds)
{
	size_t sz;
	uint8_t *b = make_elf(&sz, 0x100000, 0x3000, 0);
	struct boot_info bi;

	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), 0);
	ck_assert_int_eq(bi.kind, KERNEL_ELF64);
	ck_assert(!bi.is_linux);
	ck_assert_uint_eq(bi.entry, 0x100010);
	ck_assert_uint_eq(bi.nseg, 1);
	ck_assert_uint_eq(bi.seg[0].mem_size, 0x3000);
	ck_assert_uint_eq(bi.cmdline_max, VMM_CMDLINE_MAX - 1);
	free(b);

	/* a Linux vmlinux: PVH entry, Linux's command-line limit and quirks */
	b = make_elf(&sz, 0x1000000, 0x3000, NOTE_PVH | NOTE_LINUX);
	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), 0);
	ck_assert_int_eq(bi.kind, KERNEL_ELF_PVH);
	ck_assert(bi.is_linux);
	ck_assert_uint_eq(bi.entry, 0x1000040);
	ck_assert_uint_eq(bi.cmdline_max, 2047);
	free(b);

	/* PVH without "Linux" (the test kernel): PVH entry, not Linux */
	b = make_elf(&sz, 0x100000, 0x3000, NOTE_PVH);
	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), 0);
	ck_assert_int_eq(bi.kind, KERNEL_ELF_PVH);
	ck_assert(!bi.is_linux);
	ck_assert_uint_eq(bi.entry, 0x100040);
	ck_assert_uint_eq(bi.cmdline_max, VMM_CMDLINE_MAX - 1);
	free(b);
}
END_TEST

START_TEST(elf_bad)
{
	size_t sz;
	uint8_t *b = make_elf(&sz, 0x100000, 0x3000, 0);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(b + sizeof(*eh));
	struct boot_info bi;

	ck_assert_int_eq(boot_parse_kernel(b, 3000, &mem, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "truncated"));
	ph->p_memsz = 512 * MiB;	/* bigger than the guest */
	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "does not fit"));
	ph->p_memsz = 0x3000;
	ph->p_paddr = 0x1000;		/* over the boot data */
	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), -1);
	ph->p_paddr = UINT64_MAX - 10;	/* overflow */
	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), -1);
	ph->p_paddr = 0x100000;
	eh->e_entry = 0x5000000;	/* outside every segment */
	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "entry point"));
	eh->e_entry = 0x100000;
	eh->e_phnum = 60000;		/* headers past EOF */
	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), -1);
	eh->e_phnum = 1;
	eh->e_machine = EM_AARCH64;
	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "x86_64"));
	eh->e_machine = EM_X86_64;
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "64-bit"));
	free(b);
}
END_TEST

START_TEST(e820_maps)
{
	struct e820_entry e[4];
	struct guest_mem big = { NULL, 4096 * MiB, 3072 * MiB };
	unsigned n = boot_e820(&mem, e);

	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(e[0].addr, 0);
	ck_assert_uint_eq(e[0].size, 0x9fc00);
	ck_assert_uint_eq(e[0].type, 1);
	ck_assert_uint_eq(e[1].type, 2);
	ck_assert_uint_eq(e[1].addr + e[1].size, 0x100000);
	ck_assert_uint_eq(e[2].addr, 0x100000);
	ck_assert_uint_eq(e[2].addr + e[2].size, 256 * MiB);
	n = boot_e820(&big, e);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(e[2].addr + e[2].size, 0xc0000000);
	ck_assert_uint_eq(e[3].addr, 0x100000000ULL);
	ck_assert_uint_eq(e[3].size, 1024 * MiB);
}
END_TEST

START_TEST(zero_page)
{
	size_t sz;
	uint8_t *b = make_bzimage(&sz, 0x020f, 32 * MiB);
	uint8_t zp[4096];
	struct boot_info bi;

	ck_assert_int_eq(boot_parse_kernel(b, sz, &mem, &bi, err, sizeof(err)), 0);
	bi.initrd_gpa = 0x8000000;
	bi.initrd_size = 12345;
	boot_fill_params(zp, &bi, &mem, 0x20000);
	ck_assert_uint_eq(get32(zp + 0x202), 0x53726448);	/* header copied */
	ck_assert_uint_eq(zp[0x210], 0xff);			/* type_of_loader */
	ck_assert(zp[0x211] & 0x80);				/* CAN_USE_HEAP */
	ck_assert_uint_eq(get32(zp + 0x228), 0x20000);		/* cmd_line_ptr */
	ck_assert_uint_eq(get32(zp + 0x218), 0x8000000);	/* ramdisk_image */
	ck_assert_uint_eq(get32(zp + 0x21c), 12345);
	ck_assert_uint_eq(zp[0x1e8], 3);			/* e820 entries */
	ck_assert_uint_eq(get32(zp + 0x2d0 + 20 * 2 + 16), 1);	/* 3rd: RAM */
	free(b);
}
END_TEST

static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* The PVH start info a PVH kernel (Linux's xen_pvh / pvh.c) reads, decoded
 * here by the layout of the Xen ABI (start_info.h), not by boot.c's own
 * constants: hvm_start_info version 1 (56 bytes), hvm_memmap_table_entry
 * (addr, size, type, reserved: a 24-byte stride), hvm_modlist_entry. */
static void check_pvh(uint64_t ram, uint64_t low, uint64_t initrd_size)
{
	uint8_t *host = calloc(1, 2 * MiB);
	struct guest_mem m = { host, ram, low };
	struct boot_info bi;
	struct e820_entry e[4];
	unsigned n = boot_e820(&m, e), i;
	uint8_t *si = host + VMM_PVH_START_INFO_GPA, *mm;
	uint64_t mm_gpa, ram_total = 0, prev_end = 0;

	memset(&bi, 0, sizeof(bi));
	bi.initrd_gpa = 0x1000000;
	bi.initrd_size = initrd_size;
	memset(host, 0xee, 2 * MiB);	/* stale bytes must not show through */
	ck_assert_int_eq(boot_write_pvh_start_info(&m, &bi), 0);
	ck_assert_uint_eq(get32(si), 0x336ec578);	/* XEN_HVM_START_MAGIC */
	ck_assert_uint_eq(get32(si + 4), 1);		/* version */
	ck_assert_uint_eq(get32(si + 8), 0);		/* flags */
	ck_assert_uint_eq(get64(si + 24), VMM_CMDLINE_GPA);
	ck_assert_uint_eq(get64(si + 32), 0);		/* rsdp: none */
	mm_gpa = get64(si + 40);
	ck_assert_uint_eq(get32(si + 48), n);		/* memmap_entries */
	ck_assert_uint_eq(get32(si + 52), 0);
	/* the map lies in RAM, past the 56-byte struct, below the zero page */
	ck_assert_uint_ge(mm_gpa, VMM_PVH_START_INFO_GPA + 56);
	ck_assert_uint_eq(mm_gpa % 8, 0);
	ck_assert_uint_le(mm_gpa + n * 24, VMM_ZERO_PAGE_GPA);
	mm = host + mm_gpa;
	for (i = 0; i < n; i++) {
		const uint8_t *ent = mm + i * 24;

		ck_assert_uint_eq(get64(ent), e[i].addr);
		ck_assert_uint_eq(get64(ent + 8), e[i].size);
		ck_assert_uint_eq(get32(ent + 16), e[i].type);
		ck_assert_uint_eq(get32(ent + 20), 0);
		/* sorted, not overlapping, RAM (1) or reserved (2) */
		ck_assert_uint_ge(get64(ent), prev_end);
		prev_end = get64(ent) + get64(ent + 8);
		ck_assert(get32(ent + 16) == 1 || get32(ent + 16) == 2);
		if (get32(ent + 16) == 1)
			ram_total += get64(ent + 8);
	}
	/* the entry after the last is not mistaken for one: the count says
	 * where the map ends */
	ck_assert_uint_lt(n, 5);
	/* all RAM but the EBDA and the legacy hole is listed as RAM */
	ck_assert_uint_eq(ram_total, ram - (0x100000 - VMM_MPTABLE_GPA));
	ck_assert_uint_eq(prev_end, ram > low ? 0x100000000ULL + (ram - low)
					      : low);
	if (initrd_size) {
		uint64_t ml = get64(si + 16);

		ck_assert_uint_eq(get32(si + 12), 1);	/* nr_modules */
		ck_assert_uint_ge(ml, mm_gpa + n * 24);	/* after the map */
		ck_assert_uint_eq(ml % 8, 0);
		ck_assert_uint_eq(get64(host + ml), bi.initrd_gpa);
		ck_assert_uint_eq(get64(host + ml + 8), initrd_size);
		ck_assert_uint_eq(get64(host + ml + 16), 0);	/* no cmdline */
	} else {
		ck_assert_uint_eq(get32(si + 12), 0);
		ck_assert_uint_eq(get64(si + 16), 0);
	}
	free(host);
}

START_TEST(pvh_memmap)
{
	check_pvh(256 * MiB, 256 * MiB, 0);		/* low RAM only */
	check_pvh(256 * MiB, 256 * MiB, 5 * MiB);	/* with an initrd */
	check_pvh(4096 * MiB, 3072 * MiB, 1 * MiB);	/* RAM above 4 GiB */
	check_pvh(16 * MiB, 16 * MiB, 0);		/* the smallest guest */
}
END_TEST

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

START_TEST(mptable)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	uint8_t *ram = calloc(1, 2 * MiB);
	uint8_t *mpf, *tab;
	uint16_t len, count;

	vm->mem = (struct guest_mem){ ram, 2 * MiB, 2 * MiB };
	vm->ncpus = 8;
	ck_assert_int_eq(mptable_write(vm, err, sizeof(err)), 0);
	mpf = ram + VMM_MPTABLE_GPA;
	ck_assert_mem_eq(mpf, "_MP_", 4);
	ck_assert_uint_eq(checksum(mpf, 16), 0);
	tab = ram + get32(mpf + 4);
	ck_assert_mem_eq(tab, "PCMP", 4);
	memcpy(&len, tab + 4, 2);
	memcpy(&count, tab + 34, 2);
	ck_assert_uint_eq(checksum(tab, len), 0);
	ck_assert_uint_eq(count, 8 + 1 + 1 + 24 + 2);
	ck_assert_uint_eq(tab[44], 0);		/* first entry: processor */
	ck_assert_uint_eq(tab[44 + 3], 3);	/* enabled + BSP */
	ck_assert_uint_eq(tab[64 + 1], 1);	/* second CPU has APIC ID 1 */
	ck_assert_uint_eq(tab[64 + 3], 1);	/* enabled, not BSP */
	free(ram);
	free(vm);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("boot");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, bzimage_ok);
	tcase_add_test(tc, bzimage_small_guest_relocates);
	tcase_add_test(tc, bzimage_bad);
	tcase_add_test(tc, elf_kinds);
	tcase_add_test(tc, elf_bad);
	tcase_add_test(tc, e820_maps);
	tcase_add_test(tc, zero_page);
	tcase_add_test(tc, pvh_memmap);
	tcase_add_test(tc, mptable);
	suite_add_tcase(s, tc);
	return check_run(s);
}
