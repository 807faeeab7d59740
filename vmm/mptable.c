/* vmm/mptable.c - an Intel MultiProcessor Specification 1.4 table, how a
 * guest without ACPI finds its CPUs and IOAPIC (Linux and the test kernel
 * both read it).  Layout as Firecracker and kvmtool write it. */
#include "vmm/boot.h"

#include <stdio.h>
#include <string.h>

#define MP_IOAPIC_VERSION	0x11
#define MP_LAPIC_VERSION	0x14
#define MP_IRQS			24	/* IOAPIC pins */

struct mpf_intel {		/* floating pointer */
	char signature[4];	/* "_MP_" */
	uint32_t physptr;
	uint8_t length;		/* in 16-byte units */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {		/* configuration table header */
	char signature[4];	/* "PCMP" */
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;	/* number of entries */
	uint32_t lapic;
	uint32_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type;		/* 0 */
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;	/* 1 enabled, 2 boot processor */
	uint32_t cpufeature;
	uint32_t featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;		/* 1 */
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;		/* 2 */
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {		/* type 3 (IOAPIC pin) or 4 (LAPIC LINT) */
	uint8_t type;
	uint8_t irqtype;	/* 0 INT, 1 NMI, 3 ExtINT */
	uint16_t irqflag;	/* 0: conforming polarity and trigger */
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

static uint8_t checksum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (n--)
		sum += *b++;
	return (uint8_t)-sum;
}

int mptable_write(struct vm *vm, char *err, size_t errlen)
{
	size_t size = sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
		      vm->ncpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
		      sizeof(struct mpc_ioapic) +
		      (MP_IRQS + 2) * sizeof(struct mpc_intsrc);
	uint8_t *base = guest_mem_ptr(&vm->mem, VMM_MPTABLE_GPA, size);
	struct mpf_intel *mpf = (struct mpf_intel *)base;
	struct mpc_table *tab = (struct mpc_table *)(mpf + 1);
	uint8_t *p = (uint8_t *)(tab + 1);
	uint8_t ioapic_id = (uint8_t)vm->ncpus;
	uint32_t signature = 0x600, features = 0x201;	/* fallback: family 6, FPU+APIC */
	uint16_t count = 0;
	unsigned i;

	if (!base || VMM_MPTABLE_GPA + size > VMM_EBDA_END) {
		snprintf(err, errlen, "MP table for %u CPUs does not fit", vm->ncpus);
		return -1;
	}
	for (i = 0; vm->cpuid && i < vm->cpuid->nent; i++)
		if (vm->cpuid->entries[i].function == 1) {
			signature = vm->cpuid->entries[i].eax;
			features = vm->cpuid->entries[i].edx;
		}
	memset(base, 0, size);

	for (i = 0; i < vm->ncpus; i++, count++) {
		struct mpc_cpu *c = (struct mpc_cpu *)p;

		c->type = 0;
		c->apicid = (uint8_t)i;
		c->apicver = MP_LAPIC_VERSION;
		c->cpuflag = 1 | (i == 0 ? 2 : 0);
		c->cpufeature = signature;
		c->featureflag = features;
		p += sizeof(*c);
	}
	{
		struct mpc_bus *b = (struct mpc_bus *)p;

		b->type = 1;
		b->busid = 0;
		memcpy(b->bustype, "ISA   ", 6);
		p += sizeof(*b);
		count++;
	}
	{
		struct mpc_ioapic *io = (struct mpc_ioapic *)p;

		io->type = 2;
		io->apicid = ioapic_id;
		io->apicver = MP_IOAPIC_VERSION;
		io->flags = 1;
		io->apicaddr = (uint32_t)VMM_IOAPIC_GPA;
		p += sizeof(*io);
		count++;
	}
	for (i = 0; i < MP_IRQS; i++, count++) {
		struct mpc_intsrc *s = (struct mpc_intsrc *)p;

		s->type = 3;
		s->irqtype = 0;
		s->srcbus = 0;
		s->srcbusirq = (uint8_t)i;
		s->dstapic = ioapic_id;
		/* KVM routes GSI 0 (the PIT) to IOAPIC pin 2, as PCs wire it */
		s->dstirq = (uint8_t)(i == 0 ? 2 : i == 2 ? 0 : i);
		p += sizeof(*s);
	}
	for (i = 0; i < 2; i++, count++) {
		struct mpc_intsrc *l = (struct mpc_intsrc *)p;

		l->type = 4;
		l->irqtype = i == 0 ? 3 : 1;	/* LINT0 ExtINT, LINT1 NMI */
		l->srcbus = 0;
		l->srcbusirq = 0;
		l->dstapic = 0xff;
		l->dstirq = (uint8_t)i;
		p += sizeof(*l);
	}

	memcpy(tab->signature, "PCMP", 4);
	tab->length = (uint16_t)(p - (uint8_t *)tab);
	tab->spec = 4;
	memcpy(tab->oem, "VMM     ", 8);
	memcpy(tab->productid, "vmm         ", 12);
	tab->oemcount = count;
	tab->lapic = (uint32_t)VMM_LAPIC_GPA;
	tab->checksum = checksum(tab, tab->length);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(VMM_MPTABLE_GPA + sizeof(*mpf));
	mpf->length = 1;
	mpf->specification = 4;
	mpf->checksum = checksum(mpf, sizeof(*mpf));
	return 0;
}
