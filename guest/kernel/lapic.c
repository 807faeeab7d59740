/* guest/kernel/lapic.c - local APIC (xAPIC MMIO) and IOAPIC routing. */
#include "kernel.h"

#define LAPIC_ID	0x020
#define LAPIC_EOI	0x0b0
#define LAPIC_SVR	0x0f0
#define LAPIC_ICR_LO	0x300
#define LAPIC_ICR_HI	0x310
#define LAPIC_LVT_TIMER	0x320
#define LAPIC_LVT_LINT0	0x350
#define LAPIC_LVT_LINT1	0x360
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR	0x390
#define LAPIC_TIMER_DIV	0x3e0
#define LVT_MASKED	(1u << 16)
#define LVT_PERIODIC	(1u << 17)

uint64_t lapic_timer_hz;

static uint32_t lapic_read(unsigned reg)
{
	return mmio_read32(VMM_LAPIC_GPA + reg);
}

static void lapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(VMM_LAPIC_GPA + reg, v);
}

/* Mask LINT0 first: the uninitialised PIC would deliver IRQs through it
 * as low vectors (PVM delivers IRQ5 as vector 5). */
void lapic_init_cpu(void)
{
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
	lapic_write(LAPIC_TIMER_DIV, 0xb);	/* divide by 1 */
}

unsigned lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

void lapic_send_ipi(unsigned apic_id, uint32_t icr_low)
{
	int n = 0;

	lapic_write(LAPIC_ICR_HI, apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr_low);
	while ((lapic_read(LAPIC_ICR_LO) & (1u << 12)) && ++n < 1000)
		cpu_relax();
}

/* The timer counts at the APIC bus clock (1 GHz under KVM): measure it
 * against the TSC over 1 ms rather than assume; done at the first use, not
 * at boot (1 ms is a lot of a 10 ms boot budget). */
void lapic_timer_calibrate(void)
{
	uint32_t left;

	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, 0xffffffff);
	udelay(1000);
	left = lapic_read(LAPIC_TIMER_CUR);
	lapic_write(LAPIC_TIMER_INIT, 0);
	lapic_timer_hz = (uint64_t)(0xffffffffu - left) * 1000;
	if (lapic_timer_hz < 1000000)
		lapic_timer_hz = 1000000000;	/* nonsense: assume KVM's */
}

void lapic_timer_periodic(uint64_t period_us)
{
	uint64_t count;

	if (!lapic_timer_hz)
		lapic_timer_calibrate();
	count = lapic_timer_hz / 1000000 * period_us;

	if (count > 0xffffffff)
		count = 0xffffffff;
	lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, (uint32_t)count);
}

/* Periodic with a raw count, before (and without) calibration. */
void lapic_timer_periodic_count(uint32_t count)
{
	lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, count);
}

void lapic_timer_stop(void)
{
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, 0);
}

/* IOAPIC: edge-triggered, active high, fixed delivery, physical dest. */
static void ioapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(VMM_IOAPIC_GPA, reg);
	mmio_write32(VMM_IOAPIC_GPA + 0x10, v);
}

void ioapic_route(unsigned irq, unsigned vector, unsigned apic_id)
{
	ioapic_write(0x10 + 2 * irq + 1, apic_id << 24);
	ioapic_write(0x10 + 2 * irq, vector);
}

void ioapic_mask(unsigned irq)
{
	ioapic_write(0x10 + 2 * irq, 1u << 16);
}
