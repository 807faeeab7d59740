/* guest/kernel/boot.c - what the loader handed over, read from either entry:
 * boot_params (vmm's 64-bit entry, %rsi) or hvm_start_info (the PVH entry,
 * %ebx; xen/include/public/arch-x86/hvm/start_info.h): the command line,
 * the memory map, the initrd and (PVH) the ACPI RSDP.  Copied out at once:
 * the loader's pages are free RAM to us afterwards.
 */
#include "kernel.h"

/* boot_params (Linux Documentation/arch/x86/zero-page.rst) */
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define BP_RAMDISK_IMAGE	0x218
#define BP_RAMDISK_SIZE		0x21c
#define BP_CMD_LINE_PTR		0x228
#define BP_E820_TABLE		0x2d0

/* hvm_start_info, version 1 */
#define HVM_START_MAGIC		0x336ec578
#define SI_MAGIC		0
#define SI_VERSION		4
#define SI_NR_MODULES		12
#define SI_MODLIST		16
#define SI_CMDLINE		24
#define SI_RSDP			32
#define SI_MEMMAP		40
#define SI_MEMMAP_ENTRIES	48
#define MEMMAP_ENTRY_SIZE	24	/* addr, size, type, reserved */
#define MODLIST_ENTRY_SIZE	32	/* paddr, size, cmdline, reserved */

/* the boot page tables map only the first 4 GiB */
#define BOOT_MAPPED		(1ULL << 32)

struct boot_data boot;
char cmdline[VMM_CMDLINE_MAX];

static uint32_t rd32(const uint8_t *p) { return *(const uint32_t *)p; }
static uint64_t rd64(const uint8_t *p) { return *(const uint64_t *)p; }

static void copy_cmdline(uint64_t p)
{
	const char *s = (const char *)p;
	size_t i = 0;

	if (p && p < BOOT_MAPPED)
		for (; i < VMM_CMDLINE_MAX - 1 && s[i]; i++)
			cmdline[i] = s[i];
	cmdline[i] = 0;
}

static void from_boot_params(const uint8_t *bp)
{
	unsigned n = bp[BP_E820_ENTRIES];

	copy_cmdline(rd32(bp + BP_CMD_LINE_PTR) |
		     (uint64_t)rd32(bp + BP_EXT_CMD_LINE_PTR) << 32);
	if (n > E820_MAX)
		n = E820_MAX;
	memcpy(boot.e820, bp + BP_E820_TABLE, n * sizeof(boot.e820[0]));
	boot.e820_n = n;
	boot.initrd_start = rd32(bp + BP_RAMDISK_IMAGE);
	boot.initrd_end = boot.initrd_start + rd32(bp + BP_RAMDISK_SIZE);
}

static void from_pvh(const uint8_t *si)
{
	uint32_t version, n;
	uint64_t mm;

	/* checked before anything else is read: a wrong %ebx must not send
	 * us wandering through memory */
	if ((uint64_t)si >= BOOT_MAPPED || rd32(si + SI_MAGIC) != HVM_START_MAGIC)
		panic("PVH entry: no hvm_start_info at %p", si);
	version = rd32(si + SI_VERSION);
	copy_cmdline(rd64(si + SI_CMDLINE));
	boot.rsdp = rd64(si + SI_RSDP);
	if (version < 1 || !rd64(si + SI_MEMMAP))
		panic("PVH entry: hvm_start_info version %u has no memory map",
		      version);
	mm = rd64(si + SI_MEMMAP);
	n = rd32(si + SI_MEMMAP_ENTRIES);
	if (n > E820_MAX)
		n = E820_MAX;
	if (mm + (uint64_t)n * MEMMAP_ENTRY_SIZE > BOOT_MAPPED)
		panic("PVH entry: memory map at %#lx is out of reach", mm);
	boot.e820_n = 0;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = (const uint8_t *)(mm + i * MEMMAP_ENTRY_SIZE);

		if (!rd64(e + 8))
			continue;	/* qboot lists an empty entry */
		boot.e820[boot.e820_n].addr = rd64(e);
		boot.e820[boot.e820_n].size = rd64(e + 8);
		boot.e820[boot.e820_n++].type = rd32(e + 16);
	}
	/* the first module is the initrd, as Linux takes it */
	if (rd32(si + SI_NR_MODULES) && rd64(si + SI_MODLIST) &&
	    rd64(si + SI_MODLIST) + MODLIST_ENTRY_SIZE <= BOOT_MAPPED) {
		const uint8_t *m = (const uint8_t *)rd64(si + SI_MODLIST);

		boot.initrd_start = rd64(m);
		boot.initrd_end = boot.initrd_start + rd64(m + 8);
	}
}

void boot_data_read(uint64_t ptr, unsigned kind)
{
	boot.kind = kind;
	if (kind == BOOT_PVH)
		from_pvh((const uint8_t *)ptr);
	else
		from_boot_params((const uint8_t *)ptr);
}
