/* guest/kernel/cpu.c - GDT, IDT and exception reporting, page tables, PVM
 * native-mode opt-in, TSC calibration, exit.
 */
#include "kernel.h"

struct cpu *cpus[MAX_CPUS];
unsigned ncpus = 1;
bool pvm_host;
bool pvm_emulated;	/* a PVM host, told to stay emulated */
uint64_t tsc_khz;

/* Stacks (struct cpu at the base of each) and VIF pages.  Left to the ELF
 * loader to zero (.bss): zeroing them here would run emulated, i.e. slowly. */
uint8_t cpu_stacks[MAX_CPUS][STACK_SIZE] __attribute__((aligned(STACK_SIZE)));
static uint8_t vif_pages[MAX_CPUS][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

/* Linux's layout, the same selectors as the VMM's boot GDT (CS 0x10, DS
 * 0x18), so loading it needs no segment reload; 0x08 is the AP
 * trampoline's 32-bit code segment. */
uint64_t gdt[8] __attribute__((aligned(16))) = {
	0,
	0x00cf9a000000ffffULL,	/* 0x08 code32 */
	0x00af9a000000ffffULL,	/* 0x10 code64 */
	0x00cf92000000ffffULL,	/* 0x18 data */
	0,
	0x00cff2000000ffffULL,	/* 0x2b user data */
	0x00affa000000ffffULL,	/* 0x33 user code64 */
	0,
};

struct idt_entry {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
} __attribute__((packed));
static struct idt_entry idt[256] __attribute__((aligned(16)));

struct __attribute__((packed)) desc_ptr {
	uint16_t limit;
	uint64_t base;
};

extern const uint8_t isr_stubs[];
extern const uint8_t safe_rdmsr_insn[], safe_wrmsr_insn[], safe_msr_fixup[];

struct irq_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

static irq_handler handlers[256];

void irq_register(unsigned vector, irq_handler h)
{
	handlers[vector & 255] = h;
}

static void idt_set(unsigned v)
{
	uint64_t h = (uint64_t)(isr_stubs + 16 * v);

	idt[v] = (struct idt_entry){
		.off0 = (uint16_t)h, .sel = 0x10, .ist = 0,
		.type = 0x8e,	/* present, DPL0, 64-bit interrupt gate */
		.off1 = (uint16_t)(h >> 16), .off2 = (uint32_t)(h >> 32),
	};
}

/* Called emulated on the BSP before the PVM probe (~0.5 us an instruction):
 * only #GP, which the probe needs; cpu_late_init() fills the rest natively. */
void gdt_idt_load(void)
{
	struct desc_ptr g = { sizeof(gdt) - 1, (uint64_t)gdt };
	struct desc_ptr i = { sizeof(idt) - 1, (uint64_t)idt };

	if (!idt[13].type)
		idt_set(13);
	__asm__ volatile("lgdt %0; lidt %1" :: "m"(g), "m"(i) : "memory");
}

static void idt_fill_rest(void)
{
	for (unsigned v = 0; v < 256; v++)
		idt_set(v);
}

uint64_t read_cr2(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "?",
	"#TS", "#NP", "#SS", "#GP", "#PF", "?", "#MF", "#AC", "#MC", "#XM",
	"#VE", "#CP",
};

void isr_dispatch(struct irq_frame *f)
{
	unsigned v = (unsigned)f->vector;

	if (v == 13 && (f->rip == (uint64_t)safe_rdmsr_insn ||
			f->rip == (uint64_t)safe_wrmsr_insn)) {
		f->rip = (uint64_t)safe_msr_fixup;
		return;
	}
	if (v < 32) {
		/* cr2 only means something for #PF; read it anyway */
		kprintf("\nPANIC: exception %u %s error %#lx rip %#lx cr2 %#lx "
			"rsp %#lx cpu %u\n", v, exc_names[v] ? exc_names[v] : "?",
			f->error, f->rip, read_cr2(), f->rsp, this_cpu()->index);
		vmm_exit(EXIT_PANIC);
	}
	if (handlers[v]) {
		handlers[v](v);
		return;
	}
	if (v == VEC_SPURIOUS)
		return;
	kprintf("unexpected interrupt vector %u on cpu %u\n", v,
		this_cpu()->index);
	lapic_eoi();
}

/* The exit port ends the VM under vmm (status S) and under QEMU with
 * isa-debug-exit,iobase=0xf4,iosize=1 (process status 2S+1).  A VMM with
 * neither (Firecracker, Cloud Hypervisor) ignores it: then an i8042 reset
 * ends the VM (the status is lost, the PASS/FAIL lines are not).  vmm
 * keeps the first exit request, so the reset never overrides a status. */
void vmm_exit(int status)
{
	outb(VMM_PORT_EXIT, (uint8_t)status);
	udelay(100000);
	kprintf("vmmtest: exit port 0x%x ignored (status %d); i8042 reset\n",
		VMM_PORT_EXIT, status);
	outb(0x64, 0xfe);
	for (;;)
		__asm__ volatile("cli; hlt");
}

void panic(const char *fmt, ...)
{
	va_list ap;

	kputs("\nPANIC: ");
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kputs("\n");
	vmm_exit(EXIT_PANIC);
}

/* Page tables: identity map of 0 .. max(4 GiB, top of RAM) with 2 MiB pages
 * and U/S=1 at every level (PVM livelocks on a U/S=0 entry). */
#define PTE_P	1ULL
#define PTE_W	2ULL
#define PTE_US	4ULL
#define PTE_PS	0x80ULL
#define MAX_MAP_GIB 64
static uint64_t pml4[512] __attribute__((aligned(PAGE_SIZE)));
static uint64_t pdpt[512] __attribute__((aligned(PAGE_SIZE)));
static uint64_t pds[MAX_MAP_GIB][512] __attribute__((aligned(PAGE_SIZE)));
uint64_t kernel_cr3;

void paging_init(void)
{
	uint64_t gib = (ram_bytes + VMM_MMIO_HOLE_END - VMM_MMIO_HOLE_START +
			(1ULL << 30) - 1) >> 30;

	if (gib < 4)
		gib = 4;
	if (gib > MAX_MAP_GIB) {
		kprintf("warning: mapping only the first %u GiB\n", MAX_MAP_GIB);
		gib = MAX_MAP_GIB;
	}
	for (uint64_t g = 0; g < gib; g++) {
		for (uint64_t j = 0; j < 512; j++)
			pds[g][j] = (g << 30 | j << 21) | PTE_P | PTE_W | PTE_US |
				    PTE_PS;
		pdpt[g] = (uint64_t)pds[g] | PTE_P | PTE_W | PTE_US;
	}
	pml4[0] = (uint64_t)pdpt | PTE_P | PTE_W | PTE_US;
	kernel_cr3 = (uint64_t)pml4;
	__asm__ volatile("mov %0, %%cr3" :: "r"(kernel_cr3) : "memory");
}

/* CPUID 0x40000000 says KVM; MSR 0x4b564d11 reads "PVM" only on a PVM host
 * (elsewhere the read #GPs and safe_rdmsr returns -1). */
#define MSR_PVM_VIF	0x4b564d10
#define MSR_PVM_ID	0x4b564d11
void pvm_detect(void)
{
	uint32_t r[4];
	uint64_t v = 0;

	cpuid(0x40000000, 0, r);
	if (r[1] != 0x4b4d564b || r[2] != 0x564b4d56 || r[3] != 0x4d)
		return;		/* not "KVMKVMKVM\0\0\0" */
	if (safe_rdmsr(MSR_PVM_ID, &v) == 0 && v == 0x4d5650)
		pvm_host = true;
}

void pvm_opt_in(struct cpu *c)
{
	volatile uint8_t *vif = vif_pages[c->index];

	if (!pvm_host)
		return;
	vif[0] = 0;	/* interrupts off, as on entry */
	vif[1] = 0;
	if (safe_wrmsr(MSR_PVM_VIF, (uint64_t)vif) == 0)
		c->vif = vif;
}

/* vmmtest.native=0: back to emulation, and the APs stay there too */
void pvm_opt_out(struct cpu *c)
{
	if (c->vif)
		safe_wrmsr(MSR_PVM_VIF, 0);
	c->vif = NULL;
	pvm_host = false;
	pvm_emulated = true;
}

void cpu_early_init(struct cpu *c, unsigned index)
{
	c->index = index;
	cpus[index] = c;
	gdt_idt_load();
	if (index == 0)
		pvm_detect();
	pvm_opt_in(c);
}

/* Native from here on (if PVM): finish the IDT. */
void cpu_late_init(void)
{
	idt_fill_rest();
}

/* TSC frequency: from kvmclock's scale factors (exact, what the host uses),
 * else CPUID 0x15, else measured against PIT channel 0 (which reads slow
 * under PVM: a last resort, e.g. QEMU without KVM). */
struct pvclock {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t mul;
	int8_t shift;
	uint8_t flags, pad[2];
};
static struct pvclock pvclock __attribute__((aligned(64)));
#define MSR_KVM_SYSTEM_TIME_NEW	0x4b564d01

static bool tsc_from_kvmclock(void)
{
	uint32_t r[4];
	uint64_t khz;

	cpuid(0x40000000, 0, r);
	if (r[1] != 0x4b4d564b || r[0] < 0x40000001)
		return false;
	cpuid(0x40000001, 0, r);
	if (!(r[0] & (1u << 3)))	/* KVM_FEATURE_CLOCKSOURCE2 */
		return false;
	if (safe_wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)&pvclock | 1) < 0)
		return false;
	for (int i = 0; i < 1000 && !READ_ONCE(pvclock.mul); i++)
		cpu_relax();
	safe_wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
	if (!pvclock.mul)
		return false;
	/* ns = (delta << shift) * mul >> 32, so Hz = 2^32 * 1e9 / mul >> shift */
	khz = (1000000ULL << 32) / pvclock.mul;
	if (pvclock.shift < 0)
		khz <<= -pvclock.shift;
	else
		khz >>= pvclock.shift;
	tsc_khz = khz;
	return khz != 0;
}

void tsc_calibrate(void)
{
	uint32_t r[4];
	uint64_t t0, t1, n = 0;

	if (tsc_from_kvmclock())
		return;
	cpuid(0, 0, r);
	if (r[0] >= 0x15) {
		cpuid(0x15, 0, r);
		if (r[0] && r[1] && r[2]) {
			tsc_khz = (uint64_t)r[2] * r[1] / r[0] / 1000;
			return;
		}
	}
	/* PIT channel 0 in mode 0 from 0xffff, its count read back latched:
	 * 5966 ticks at 1.193182 MHz are 5 ms.  Channel 0, not 2: channel 2's
	 * gate is port 0x61, which a microvm does not have.  Its IRQ 0 at
	 * the end of the count is masked (IOAPIC) or ignored (PIC). */
	outb(0x43, 0x30);		/* channel 0, lo/hi byte, mode 0 */
	outb(0x40, 0xff);
	outb(0x40, 0xff);
	t0 = rdtsc();
	for (;;) {
		unsigned cnt;

		outb(0x43, 0x00);	/* latch channel 0 */
		cnt = inb(0x40);
		cnt |= (unsigned)inb(0x40) << 8;
		t1 = rdtsc();
		if (cnt <= 0xffff - 5966 || ++n >= 50000)
			break;
	}
	if (n >= 50000 || t1 - t0 < 1000) {
		tsc_khz = 2000000;	/* no PIT: guess 2 GHz */
		kprintf("warning: no PIT, assuming a 2 GHz TSC\n");
		return;
	}
	tsc_khz = (t1 - t0) / 5;
}

uint64_t tsc_us(uint64_t d)
{
	return d * 1000 / tsc_khz;
}

void udelay(uint64_t us)
{
	uint64_t end = rdtsc() + us * tsc_khz / 1000;

	while (rdtsc() < end)
		cpu_relax();
}
