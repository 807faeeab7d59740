/* guest/kernel/smp.c - find the CPUs in the MP table (vmm's) or the ACPI
 * MADT (acpi.c: QEMU's), start the APs with INIT/SIPI/SIPI through a
 * real-mode trampoline, and run work on them. */
#include "kernel.h"

#define TRAMPOLINE_BASE	0x1000	/* free low memory; SIPI vector 0x01 */

extern uint8_t cpu_stacks[MAX_CPUS][STACK_SIZE];
extern uint64_t gdt[];	/* cpu.c */
extern uint64_t kernel_cr3;
extern const uint8_t trampoline_start[], trampoline_end[];
extern const uint8_t tramp_gdtr[], tramp_cr3[];
uint8_t apic_to_cpu[256];	/* read by the trampoline */

static unsigned mp_apic_ids[MAX_CPUS];
const char *cpus_source = "none";	/* where smp_boot found the CPUs */

static uint8_t checksum(const uint8_t *p, unsigned len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static const uint8_t *mp_find_fp(uint64_t start, uint64_t end)
{
	for (uint64_t a = start; a + 16 <= end; a += 16) {
		const uint8_t *p = (const uint8_t *)a;

		if (p[0] == '_' && p[1] == 'M' && p[2] == 'P' && p[3] == '_' &&
		    p[8] == 1 && checksum(p, 16) == 0)
			return p;
	}
	return NULL;
}

/* Returns the number of enabled processors listed (0 = no table). */
static unsigned mp_parse(void)
{
	const uint8_t *fp = mp_find_fp(VMM_MPTABLE_GPA, VMM_MPTABLE_GPA + 1024);
	const uint8_t *t, *e, *end;
	unsigned n = 0;

	if (!fp)
		fp = mp_find_fp(0xf0000, 0x100000);
	if (!fp)
		return 0;
	t = (const uint8_t *)(uint64_t)*(const uint32_t *)(fp + 4);
	if (!t || t[0] != 'P' || t[1] != 'C' || t[2] != 'M' || t[3] != 'P' ||
	    checksum(t, *(const uint16_t *)(t + 4)) != 0) {
		kprintf("smp: bad MP configuration table at %p\n", t);
		return 0;
	}
	end = t + *(const uint16_t *)(t + 4);
	for (e = t + 44; e < end;) {
		if (e[0] == 0) {		/* processor, 20 bytes */
			if ((e[3] & 1) && n < MAX_CPUS)	/* enabled */
				mp_apic_ids[n++] = e[1];
			e += 20;
		} else if (e[0] <= 4) {
			e += 8;
		} else {
			break;		/* unknown entry type: stop */
		}
	}
	return n;
}

static void wake_handler(unsigned vector)
{
	(void)vector;
	lapic_eoi();
}

/* Idle loop of an AP: run work items, halt in between. */
static void __attribute__((noreturn)) ap_idle(struct cpu *c)
{
	for (;;) {
		work_fn w;

		irq_disable();
		w = __atomic_load_n(&c->work, __ATOMIC_ACQUIRE);
		if (w) {
			c->work = NULL;
			w(c->work_arg);
			__atomic_fetch_add(&c->work_done, 1, __ATOMIC_RELEASE);
			continue;
		}
		irq_wait();
	}
}

void ap_main(void)
{
	struct cpu *c = this_cpu();

	unsigned id;

	cpu_early_init(c, c->index);
	lapic_init_cpu();
	id = lapic_id();	/* the MP table's ID, which found our stack */
	kprintf("cpu %u up (apic id %u, %s)\n", c->index, id,
		c->vif ? "native" : "emulated");
	__atomic_store_n(&c->online, 1, __ATOMIC_RELEASE);
	ap_idle(c);
}

static bool cpu_online(unsigned i)
{
	return __atomic_load_n(&((struct cpu *)cpu_stacks[i])->online,
			       __ATOMIC_ACQUIRE);
}

static void tick(unsigned vector)
{
	(void)vector;
	lapic_eoi();
}

/* Wait until APs 1..n-1 are online or us pass; true if all are.  Halted
 * between checks (a ~0.5 ms timer wakes us): spinning would take a host
 * core from the APs, whose trampoline runs emulated. */
static bool wait_online(unsigned n, uint64_t us)
{
	uint64_t t0 = rdtsc();
	bool all = false;

	irq_register(VEC_TIMER, tick);
	lapic_timer_periodic_count(500000);	/* ~0.5 ms at KVM's 1 GHz */
	for (;;) {
		unsigned up = 1;

		for (unsigned i = 1; i < n; i++)
			up += cpu_online(i);
		if (up == n) {
			all = true;
			break;
		}
		if (tsc_us(rdtsc() - t0) > us)
			break;
		irq_wait();
	}
	lapic_timer_stop();
	return all;
}

/* INIT to every AP, then SIPI to every AP: they run the (emulated, slow)
 * trampoline in parallel.  The spec's second SIPI only to those that did
 * not come up at once. */
static void start_aps(unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		lapic_send_ipi(cpus[i]->apic_id, 0x4500);	/* INIT */
	udelay(100);
	for (unsigned i = 1; i < n; i++)
		lapic_send_ipi(cpus[i]->apic_id, 0x4600 | (TRAMPOLINE_BASE >> 12));
	if (wait_online(n, 20000))
		return;
	for (unsigned i = 1; i < n; i++)
		if (!cpu_online(i))
			lapic_send_ipi(cpus[i]->apic_id,
				       0x4600 | (TRAMPOLINE_BASE >> 12));
	wait_online(n, 2000000);
}

void smp_boot(void)
{
	struct cpu *bsp = this_cpu();
	unsigned n = 0, idx = 1;
	uint8_t *tr = (uint8_t *)TRAMPOLINE_BASE;
	struct __attribute__((packed)) { uint16_t limit; uint32_t base; } g;
	char pick[8];

	irq_register(VEC_WAKE, wake_handler);
	/* Tables are read before the trampoline page or any allocation can
	 * overwrite one the firmware left in RAM.  vmmtest.cpus=acpi: the
	 * MADT even when there is an MP table too (QEMU's microvm has both),
	 * so tests reach the MADT parser. */
	if (cmdline_get("vmmtest.cpus", 0, pick, sizeof(pick)) != 0 ||
	    strcmp(pick, "acpi"))
		n = mp_parse();
	if (n)
		cpus_source = "MP table";
	else if ((n = acpi_madt_cpus(mp_apic_ids, MAX_CPUS)))
		cpus_source = "ACPI MADT";
	if (n == 0) {
		kprintf("smp: neither an MP table nor an ACPI MADT, 1 cpu\n");
		ncpus = 1;
		return;
	}
	memcpy(tr, trampoline_start, trampoline_end - trampoline_start);
	g.limit = 8 * 8 - 1;
	g.base = (uint32_t)(uint64_t)gdt;
	memcpy(tr + (tramp_gdtr - trampoline_start), &g, sizeof(g));
	*(uint64_t *)(tr + (tramp_cr3 - trampoline_start)) = kernel_cr3;

	for (unsigned k = 0; k < n && idx < MAX_CPUS; k++) {
		unsigned id = mp_apic_ids[k];
		struct cpu *c = (struct cpu *)cpu_stacks[idx];

		if (id == bsp->apic_id || id > 255)
			continue;
		c->index = idx;
		c->apic_id = id;
		cpus[idx] = c;
		apic_to_cpu[id] = (uint8_t)idx;
		idx++;
	}
	ncpus = idx;
	if (idx == 1)
		return;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	start_aps(idx);
	for (unsigned i = 1; i < idx; i++)
		if (!cpu_online(i))
			kprintf("smp: cpu %u (apic id %u) did not come up\n", i,
				cpus[i]->apic_id);
}

int smp_call(unsigned i, work_fn fn, void *arg, uint64_t timeout_us)
{
	struct cpu *c = i < MAX_CPUS ? (struct cpu *)cpu_stacks[i] : NULL;
	uint64_t done0, t0 = rdtsc();

	if (!c || !c->online)
		return -1;
	done0 = __atomic_load_n(&c->work_done, __ATOMIC_ACQUIRE);
	c->work_arg = arg;
	__atomic_store_n(&c->work, fn, __ATOMIC_RELEASE);
	/* A wake-up can be lost in native mode (see irq_wait): resend. */
	while (__atomic_load_n(&c->work_done, __ATOMIC_ACQUIRE) == done0) {
		uint64_t t1 = rdtsc();

		if (tsc_us(t1 - t0) > timeout_us)
			return -1;
		lapic_send_ipi(c->apic_id, 0x4000 | VEC_WAKE);
		while (__atomic_load_n(&c->work_done, __ATOMIC_ACQUIRE) == done0 &&
		       tsc_us(rdtsc() - t1) < 5000)
			cpu_relax();
	}
	return 0;
}
