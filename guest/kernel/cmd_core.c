/* guest/kernel/cmd_core.c - commands that test the machine itself. */
#include "kernel.h"

void list_commands(void);

static int cmd_hello(struct cmd_args *a)
{
	(void)a;
	kprintf("hello from the test kernel on cpu %u (%s)\n",
		this_cpu()->index, this_cpu()->vif ? "native" : "not native");
	return 0;
}

/* Ask the VMM for a snapshot (--snapshot-to when=request): the VM stops
 * inside the outb, and every restore goes on from its next instruction. */
static int cmd_snapshot(struct cmd_args *a)
{
	uint64_t t0 = rdtsc();

	(void)a;
	outb(VMM_PORT_SNAPSHOT, VMM_SNAPSHOT_MAGIC);
	kprintf("snapshot: port written, going on after %lu us\n",
		tsc_us(rdtsc() - t0));
	return 0;
}

static int cmd_fail(struct cmd_args *a)
{
	return fail_why(a, "deliberate failure");
}

static int cmd_help(struct cmd_args *a)
{
	(void)a;
	list_commands();
	return 0;
}

static int cmd_mem(struct cmd_args *a)
{
	uint64_t bad;

	mem_print();
	if (ram_bytes < (1 << 20))
		return fail_why(a, "less than 1 MiB of RAM in the e820 map");
	bad = mem_probe_ranges();
	if (bad)
		return fail_why(a, "RAM at %#lx does not hold a value", bad);
	return 0;
}

struct smp_probe {
	unsigned apic_id;
	bool native;
};

static void smp_probe_fn(void *arg)
{
	struct smp_probe *p = arg;

	p->apic_id = lapic_id();
	p->native = this_cpu()->vif != NULL;
}

/* Every CPU the MP table lists is online and runs work sent by IPI. */
static int cmd_smp(struct cmd_args *a)
{
	unsigned native = 0;

	for (unsigned i = 1; i < ncpus; i++) {
		struct smp_probe p = { ~0u, false };

		if (smp_call(i, smp_probe_fn, &p, 1000000) < 0)
			return fail_why(a, "cpu %u does not respond", i);
		if (p.apic_id != cpus[i]->apic_id)
			return fail_why(a, "cpu %u reports apic id %u, expected %u",
					i, p.apic_id, cpus[i]->apic_id);
		native += p.native;
	}
	kprintf("smp: %u cpus online, %u APs native (cpus from: %s)\n", ncpus,
		native, cpus_source);
	return 0;
}

static void timer_handler(unsigned vector)
{
	(void)vector;
	this_cpu()->ticks++;
	lapic_eoi();
}

/* Wait for n ticks of a period_us periodic timer; returns elapsed us. */
static uint64_t timer_run(unsigned n, uint64_t period_us)
{
	struct cpu *c = this_cpu();
	uint64_t t0, start_ticks = c->ticks, deadline;

	irq_register(VEC_TIMER, timer_handler);
	t0 = rdtsc();
	/* a bound so a dead timer fails instead of hanging */
	deadline = t0 + (uint64_t)n * period_us * 20 * tsc_khz / 1000 +
		   tsc_khz * 1000;
	lapic_timer_periodic(period_us);
	while (c->ticks - start_ticks < n && rdtsc() < deadline)
		irq_wait();
	lapic_timer_stop();
	if (c->ticks - start_ticks < n)
		return 0;
	return tsc_us(rdtsc() - t0);
}

static void timer_ap_fn(void *arg)
{
	*(uint64_t *)arg = timer_run(10, 1000);
}

/* timer[:n=20:period=1000]: n periodic LAPIC interrupts at period us (the
 * host floors it at 200 us) on the BSP, then 10 at 1 ms on every AP. */
static int cmd_timer(struct cmd_args *a)
{
	uint64_t n = arg_num(a, "n", 20), period = arg_num(a, "period", 1000);
	uint64_t us;

	if (n == UINT64_MAX || period == UINT64_MAX)
		return -1;
	if (n == 0 || period < 200 || period > 1000000)
		return fail_why(a, "n must be > 0 and period 200..1000000 us");
	us = timer_run((unsigned)n, period);
	if (!us)
		return fail_why(a, "timer interrupts stopped after %lu of %lu",
				this_cpu()->ticks, n);
	kprintf("timer: %lu interrupts of %lu us in %lu us (apic timer %lu Hz)\n",
		n, period, us, lapic_timer_hz);
	/* interrupts cannot come early; allow a little calibration error */
	if (us < n * period * 9 / 10) {
		/* say whether the calibration or the clock was off: three
		 * fresh 1 ms calibrations against the TSC */
		uint64_t hz[3], was = lapic_timer_hz;

		for (int i = 0; i < 3; i++) {
			lapic_timer_calibrate();
			hz[i] = lapic_timer_hz;
		}
		kprintf("timer: recalibrated: %lu %lu %lu Hz\n", hz[0], hz[1],
			hz[2]);
		return fail_why(a, "%lu ticks of %lu us took only %lu us "
				"(apic timer %lu Hz)", n, period, us, was);
	}
	for (unsigned i = 1; i < ncpus; i++) {
		uint64_t r = 0;

		if (smp_call(i, timer_ap_fn, &r, 5000000) < 0 || !r)
			return fail_why(a, "no timer interrupts on cpu %u", i);
	}
	return 0;
}

/* sleep:ms=N - wait N ms with the timer (halted, not spinning) */
static int cmd_sleep(struct cmd_args *a)
{
	uint64_t ms = arg_num(a, "ms", 1000);

	if (ms == UINT64_MAX)
		return -1;
	if (ms >= 10 && !timer_run((unsigned)(ms / 10), 10000))
		return fail_why(a, "timer interrupts stopped");
	return 0;
}

/* Deliberate page fault: the exception path must print and exit 2. */
static int cmd_fault(struct cmd_args *a)
{
	(void)a;
	kprintf("fault: reading an unmapped address\n");
	return *(volatile int *)0x7f0000000000ULL;
}

/* Never finishes (halted): for the VMM's --timeout. */
static int cmd_hang(struct cmd_args *a)
{
	(void)a;
	kprintf("hang: halting forever\n");
	for (;;)
		irq_wait();
	return -1;
}

/* i8042 reset: the VMM exits 0 ("guest reboot"). */
static int cmd_reboot(struct cmd_args *a)
{
	outb(0x64, 0xfe);
	return fail_why(a, "still running after the i8042 reset");
}

/* One line of console input, read by polling COM1 (the VMM feeds the UART
 * from its stdin): tests the VMM's console input path. */
static int cmd_readline(struct cmd_args *a)
{
	uint64_t ms = arg_num(a, "timeout_ms", 5000), waited_us = 0;
	char line[128];
	size_t n = 0;

	if (ms == UINT64_MAX)
		return -1;
	while (waited_us < ms * 1000) {
		char c;

		if (!(inb(VMM_PORT_COM1 + 5) & 1)) {	/* LSR: data ready? */
			udelay(200);
			waited_us += 200;
			continue;
		}
		c = (char)inb(VMM_PORT_COM1);
		if (c == '\r' || c == '\n') {
			if (n)
				break;
			continue;
		}
		if (n < sizeof(line) - 1)
			line[n++] = c;
	}
	line[n] = '\0';
	if (!n)
		return fail_why(a, "no console input within %llu ms",
				(unsigned long long)ms);
	kprintf("readline: got \"%s\"\n", line);
	return 0;
}

/* contail[:n=4096:then=exit|reboot|hang:status=3] - n console bytes with
 * no newline, then "<END-OF-CONSOLE>", then at once the exit port (with
 * status), an i8042 reset, or a halt until the VMM's --timeout: the VMM must
 * not lose the last bytes (tests/integration/vmm-console-tail.sh). */
static int cmd_contail(struct cmd_args *a)
{
	uint64_t n = arg_num(a, "n", 4096), status = arg_num(a, "status", 3);
	char how[8], chunk[65];
	const char *then = arg_str(a, "then", "exit", how, sizeof(how));

	if (n == UINT64_MAX || status == UINT64_MAX)
		return -1;
	if (status > 63 || (strcmp(then, "exit") && strcmp(then, "reboot") &&
			    strcmp(then, "hang")))
		return fail_why(a, "then=exit|reboot|hang, status 0..63");
	for (uint64_t i = 0; i < n;) {
		unsigned k = 0;

		while (k < 64 && i < n)
			chunk[k++] = (char)('a' + i++ % 26);
		chunk[k] = 0;
		kputs(chunk);
	}
	kputs("<END-OF-CONSOLE>");
	if (!strcmp(then, "exit"))
		vmm_exit((int)status);
	if (!strcmp(then, "reboot"))
		outb(0x64, 0xfe);
	for (;;)
		irq_wait();
	return -1;
}

const struct command core_commands[] = {
	{ "readline", cmd_readline, "read a console line: readline[:timeout_ms=5000]" },
	{ "hello", cmd_hello, "print a greeting" },
	{ "fail", cmd_fail, "always fails (tests the failure path)" },
	{ "snapshot", cmd_snapshot, "write the snapshot-request port (--snapshot-to when=request)" },
	{ "help", cmd_help, "list the commands" },
	{ "mem", cmd_mem, "print the e820 map, touch each RAM range's ends" },
	{ "smp", cmd_smp, "every listed CPU is up and runs work" },
	{ "timer", cmd_timer, "LAPIC timer: timer[:n=20:period=1000]" },
	{ "sleep", cmd_sleep, "sleep:ms=N with the LAPIC timer" },
	{ "fault", cmd_fault, "page fault on purpose (exit status 2)" },
	{ "hang", cmd_hang, "halt forever (for --timeout)" },
	{ "reboot", cmd_reboot, "reset through the i8042" },
	{ "contail", cmd_contail, "console bytes without a newline, then exit at "
	  "once: contail[:n=4096:then=exit|reboot|hang:status=3]" },
	{ NULL, NULL, NULL },
};
