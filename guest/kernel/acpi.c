/* guest/kernel/acpi.c - just enough ACPI to find the CPUs: the RSDP (from
 * the PVH start info, else the EBDA and BIOS area scan), the RSDT/XSDT and
 * the MADT's processor entries.  vmm describes CPUs with an MP table (smp.c
 * reads it first); QEMU's microvm, with ACPI on, only with the MADT.
 * Every table is checksummed and bounded before it is read.
 * Reference: ACPI 6.4, 5.2.5 (RSDP), 5.2.7/5.2.8 (RSDT/XSDT), 5.2.12 (MADT).
 */
#include "kernel.h"

#define SDT_HDR_LEN	36
#define TABLE_MAX	0x10000		/* a sane bound for RSDT/XSDT/MADT */
#define MAPPED_END	(1ULL << 32)	/* tables live below 4 GiB */

static uint8_t checksum(const uint8_t *p, uint32_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

/* A physical address as a pointer; hidden from the compiler, which
 * otherwise takes a low constant address for a null-pointer offset. */
static const uint8_t *phys(uint64_t a)
{
	__asm__("" : "+r"(a));
	return (const uint8_t *)a;
}

static const uint8_t *rsdp_scan(uint64_t start, uint64_t end)
{
	for (uint64_t a = start; a + 20 <= end; a += 16) {
		const uint8_t *p = (const uint8_t *)a;

		if (!memcmp(p, "RSD PTR ", 8) && checksum(p, 20) == 0)
			return p;
	}
	return NULL;
}

static const uint8_t *rsdp_find(void)
{
	uint64_t ebda = (uint64_t)*(const uint16_t *)phys(0x40e) << 4;
	const uint8_t *p = NULL;

	if (boot.rsdp && boot.rsdp + 36 <= MAPPED_END) {
		p = (const uint8_t *)boot.rsdp;
		if (memcmp(p, "RSD PTR ", 8) || checksum(p, 20) != 0)
			p = NULL;
	}
	if (!p && ebda >= 0x80000 && ebda < 0xa0000)
		p = rsdp_scan(ebda, ebda + 1024);
	if (!p)
		p = rsdp_scan(0xe0000, 0x100000);
	return p;
}

/* A table header at addr with signature sig (NULL: any), checksummed. */
static const uint8_t *sdt_at(uint64_t addr, const char *sig)
{
	const uint8_t *t = (const uint8_t *)addr;
	uint32_t len;

	if (!addr || addr + SDT_HDR_LEN > MAPPED_END)
		return NULL;
	len = *(const uint32_t *)(t + 4);
	if (len < SDT_HDR_LEN || len > TABLE_MAX || addr + len > MAPPED_END ||
	    (sig && memcmp(t, sig, 4)) || checksum(t, len) != 0)
		return NULL;
	return t;
}

static const uint8_t *find_table(const char *sig)
{
	const uint8_t *rsdp = rsdp_find(), *root;
	unsigned entry;

	if (!rsdp)
		return NULL;
	/* ACPI 2.0+: the XSDT (64-bit entries) when it checks out */
	root = rsdp[15] >= 2 ? sdt_at(*(const uint64_t *)(rsdp + 24), "XSDT") :
	       NULL;
	entry = 8;
	if (!root) {
		root = sdt_at(*(const uint32_t *)(rsdp + 16), "RSDT");
		entry = 4;
	}
	if (!root)
		return NULL;
	for (uint32_t off = SDT_HDR_LEN; off + entry <= *(const uint32_t *)(root + 4);
	     off += entry) {
		uint64_t a = entry == 8 ? *(const uint64_t *)(root + off) :
					  *(const uint32_t *)(root + off);
		const uint8_t *t = sdt_at(a, sig);

		if (t)
			return t;
	}
	return NULL;
}

unsigned acpi_madt_cpus(unsigned *apic_ids, unsigned max)
{
	const uint8_t *madt = find_table("APIC");
	uint32_t len, off;
	unsigned n = 0;

	if (!madt)
		return 0;
	len = *(const uint32_t *)(madt + 4);
	for (off = SDT_HDR_LEN + 8; off + 2 <= len;) {
		const uint8_t *e = madt + off;

		if (e[1] < 2 || off + e[1] > len)
			break;		/* malformed: stop, keep what we have */
		/* type 0: processor local APIC; flags bit 0 = enabled.  x2APIC
		 * entries (type 9) only matter for IDs above 254: not ours. */
		if (e[0] == 0 && e[1] >= 8 && (*(const uint32_t *)(e + 4) & 1) &&
		    n < max)
			apic_ids[n++] = e[3];
		off += e[1];
	}
	return n;
}
