/* guest/kernel/kernel.h - the test kernel's shared declarations: port and
 * MMIO access, per-CPU state, interrupt-flag helpers that work both in
 * ordinary (VMX/SVM or PVM-emulated) mode and in PVM native mode, console,
 * memory and the command table.
 */
#ifndef GUEST_KERNEL_KERNEL_H
#define GUEST_KERNEL_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest/common/vmm_abi.h"

#define MAX_CPUS	64
#define STACK_SIZE	16384	/* per CPU; struct cpu sits at its base */
#define PAGE_SIZE	4096

/* Interrupt vectors */
#define VEC_TIMER	0x40
#define VEC_VIRTIO	0x50	/* + device index */
#define VEC_WAKE	0xf0	/* IPI: "look at your work slot" */
#define VEC_SPURIOUS	0xff

/* Exit statuses written to VMM_PORT_EXIT */
#define EXIT_OK		0
#define EXIT_FAILED	1	/* at least one command failed */
#define EXIT_PANIC	2	/* unexpected exception or internal error */

#define barrier()	__asm__ volatile("" ::: "memory")
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a)	(((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define READ_ONCE(x)	(*(volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)addr;
}
static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}
static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

/* entry.S: MSR access that returns -1 instead of faulting on #GP */
int safe_rdmsr(uint32_t msr, uint64_t *val);
int safe_wrmsr(uint32_t msr, uint64_t val);

/* Per-CPU state, at the base of each CPU's stack, so this_cpu() needs
 * neither an MSR nor a segment base (both would trap in native mode). */
typedef void (*work_fn)(void *arg);
struct cpu {
	unsigned index;		/* 0 = BSP */
	unsigned apic_id;
	volatile uint8_t *vif;	/* PVM native mode: the VIF page; else NULL */
	volatile int online;
	volatile uint64_t ticks;	/* LAPIC timer interrupts seen */
	volatile uint64_t irqs;		/* device interrupts seen */
	volatile work_fn work;		/* set by another CPU, run and cleared */
	void *work_arg;
	volatile uint64_t work_done;	/* incremented after each work item */
};

static inline struct cpu *this_cpu(void)
{
	uint64_t sp;

	__asm__ volatile("mov %%rsp, %0" : "=r"(sp));
	return (struct cpu *)(sp & ~(uint64_t)(STACK_SIZE - 1));
}

/* Interrupt flag.  In PVM native mode the flag is byte 0 of the VIF page;
 * an interrupt that arrived while it was clear sets byte 1, and a trapping
 * instruction (sti) makes the host deliver it. */
static inline void irq_disable(void)
{
	struct cpu *c = this_cpu();

	if (c->vif) {
		c->vif[0] = 0;
		barrier();
	} else {
		__asm__ volatile("cli" ::: "memory");
	}
}
static inline void irq_enable(void)
{
	struct cpu *c = this_cpu();

	if (c->vif) {
		barrier();
		c->vif[0] = 1;
		barrier();
		if (c->vif[1])
			__asm__ volatile("sti" ::: "memory");
	} else {
		__asm__ volatile("sti" ::: "memory");
	}
}
/* Enable interrupts and halt until one arrives, then disable them again.
 * Natively the enable and the halt are not atomic: an interrupt taken in
 * between leaves us halted until the next one, so callers that need a
 * wake-up must have a periodic source or a sender that retries. */
static inline void irq_wait(void)
{
	struct cpu *c = this_cpu();

	if (c->vif) {
		c->vif[0] = 1;
		barrier();
		__asm__ volatile("hlt" ::: "memory");
		c->vif[0] = 0;
		barrier();
	} else {
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	}
}

/* console.c */
void console_init(void);
void kputs(const char *s);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kvprintf(const char *fmt, va_list ap);
int ksnprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* lib.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
/* Parse a number with optional 0x prefix and K/M/G suffix (powers of 2).
 * Returns 0 and sets *out on success, -1 on garbage. */
int parse_size(const char *s, uint64_t *out);

/* cpu.c */
extern struct cpu *cpus[MAX_CPUS];
extern unsigned ncpus;		/* from the MP table */
extern bool pvm_host;		/* native mode available */
extern bool pvm_emulated;	/* PVM host, vmmtest.native=0 */
extern uint64_t tsc_khz;
void cpu_early_init(struct cpu *c, unsigned index);
void cpu_late_init(void);
void paging_init(void);
void gdt_idt_load(void);
uint64_t read_cr2(void);
void pvm_detect(void);
void pvm_opt_in(struct cpu *c);
void pvm_opt_out(struct cpu *c);
void tsc_calibrate(void);
void udelay(uint64_t us);
uint64_t tsc_us(uint64_t tsc_delta);
void __attribute__((noreturn)) vmm_exit(int status);
void __attribute__((noreturn)) panic(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Interrupt handlers registered by vector (timer, IPI, devices) */
struct irq_frame;
typedef void (*irq_handler)(unsigned vector);
void irq_register(unsigned vector, irq_handler h);

/* lapic.c */
extern uint64_t lapic_timer_hz;
void lapic_init_cpu(void);
unsigned lapic_id(void);
void lapic_eoi(void);
void lapic_send_ipi(unsigned apic_id, uint32_t icr_low);
void lapic_timer_calibrate(void);
void lapic_timer_periodic(uint64_t period_us);
void lapic_timer_stop(void);
void lapic_timer_periodic_count(uint32_t count);
void ioapic_route(unsigned irq, unsigned vector, unsigned apic_id);
void ioapic_mask(unsigned irq);

/* smp.c */
extern const char *cpus_source;	/* "MP table", "ACPI MADT" or "none" */
void smp_boot(void);
/* Run fn(arg) on CPU index i and wait (bounded); returns 0 or -1. */
int smp_call(unsigned i, work_fn fn, void *arg, uint64_t timeout_us);

/* boot.c: what the loader handed over, from either entry */
#define BOOT_LINUX	0	/* vmm's 64-bit entry: boot_params */
#define BOOT_PVH	1	/* the PVH entry: hvm_start_info */
#define E820_MAX	128
struct e820_entry {
	uint64_t addr, size;
	uint32_t type;		/* 1 = RAM */
} __attribute__((packed));
struct boot_data {
	unsigned kind;		/* BOOT_LINUX or BOOT_PVH */
	struct e820_entry e820[E820_MAX];
	unsigned e820_n;
	uint64_t initrd_start, initrd_end;
	uint64_t rsdp;		/* ACPI RSDP from the PVH start info, or 0 */
};
extern struct boot_data boot;
/* Copy the command line, memory map and initrd out of the loader's data
 * at ptr (boot_params or hvm_start_info, per kind); panics on garbage. */
void boot_data_read(uint64_t ptr, unsigned kind);

/* acpi.c: CPUs and IOAPICs from the MADT (QEMU describes them this way) */
/* The enabled processors' APIC IDs (at most max); returns how many, 0 if
 * there is no ACPI or no MADT. */
unsigned acpi_madt_cpus(unsigned *apic_ids, unsigned max);

/* mem.c: e820 and a page allocator over the free RAM above the kernel */
extern uint64_t ram_bytes;
void mem_init(void);
void *page_alloc(uint64_t npages);	/* zeroed, page aligned, or NULL */
void mem_print(void);
/* Mark where the allocator may be rewound to (per command). */
uint64_t page_alloc_mark(void);
void page_alloc_release(uint64_t mark);
uint64_t mem_probe_ranges(void);

/* main.c: boot command line */
extern char cmdline[];
/* Find "key=value" on the command line; the nth occurrence (0-based).
 * Copies the value (up to the next space) into buf. Returns 0, -1 if
 * absent, -2 if the value does not fit. */
int cmdline_get(const char *key, unsigned nth, char *buf, size_t len);

/* Command arguments: "name:k=v:k=v".  arg_get copies the value of k. */
struct cmd_args {
	const char *name;
	char raw[256];	/* "k=v:k=v" part */
	char why[160];	/* failure reason, set by the command */
	uint32_t used;	/* bit i: item i of raw was looked up */
};
const char *arg_str(struct cmd_args *a, const char *key, const char *def,
		    char *buf, size_t len);
/* Returns def if absent; sets a->why and returns UINT64_MAX on garbage. */
uint64_t arg_num(struct cmd_args *a, const char *key, uint64_t def);
int fail_why(struct cmd_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct command {
	const char *name;
	int (*fn)(struct cmd_args *a);	/* 0 = PASS */
	const char *help;
};
/* Each command file provides a table; main.c walks them all. */
extern const struct command core_commands[];
extern const struct command blk_commands[];
extern const struct command hostile_commands[];
extern const struct command net_commands[];
extern const struct command vsock_commands[];

#endif
