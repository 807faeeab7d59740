/* guest/kernel/main.c - boot sequence and the command runner.
 *
 * Boot: opt in to PVM native mode as early as possible (everything before it
 * is instruction-emulated on a PVM host, ~0.5 us per instruction), then copy
 * the command line and memory map out of boot_params or the PVH start info
 * (boot.c), build page tables, start the APs, write the boot-ready marker
 * and run `vmmtest.run=cmd,cmd,...`.
 */
#include "kernel.h"

unsigned blk_probe_all(void);
unsigned net_probe(void);
void vsock_probe_all(void);

#define DEFAULT_RUN		"hello,smp,timer"

static char run_list[4096];

static bool strstr_cmdline(const char *needle)
{
	size_t n = strlen(needle);

	for (const char *p = cmdline; *p; p++)
		if (!strncmp(p, needle, n))
			return true;
	return false;
}

int cmdline_get(const char *key, unsigned nth, char *buf, size_t len)
{
	size_t kl = strlen(key);
	const char *p = cmdline;

	while (*p) {
		const char *tok = p;
		size_t tl = 0;

		while (tok[tl] && tok[tl] != ' ')
			tl++;
		p = tok + tl;
		while (*p == ' ')
			p++;
		if (tl > kl && tok[kl] == '=' && !strncmp(tok, key, kl) &&
		    nth-- == 0) {
			size_t vl = tl - kl - 1;

			if (vl >= len)
				return -2;
			memcpy(buf, tok + kl + 1, vl);
			buf[vl] = 0;
			return 0;
		}
	}
	return -1;
}

/* --- command arguments: "name:k=v:k=v" --- */

const char *arg_str(struct cmd_args *a, const char *key, const char *def,
		    char *buf, size_t len)
{
	size_t kl = strlen(key);
	const char *p = a->raw;

	for (unsigned n = 0; *p; n++) {
		const char *item = p;
		size_t il = 0;

		while (item[il] && item[il] != ':')
			il++;
		p = item[il] ? item + il + 1 : item + il;
		if (il > kl && item[kl] == '=' && !strncmp(item, key, kl)) {
			size_t vl = il - kl - 1;

			if (n < 32)
				a->used |= 1u << n;
			if (vl >= len)
				vl = len - 1;
			memcpy(buf, item + kl + 1, vl);
			buf[vl] = 0;
			return buf;
		}
	}
	return def;
}

uint64_t arg_num(struct cmd_args *a, const char *key, uint64_t def)
{
	char buf[32];
	const char *s = arg_str(a, key, NULL, buf, sizeof(buf));
	uint64_t v;

	if (!s)
		return def;
	if (parse_size(s, &v) < 0) {
		fail_why(a, "bad number for %s: %s", key, s);
		return UINT64_MAX;
	}
	return v;
}

int fail_why(struct cmd_args *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kvsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
	return -1;
}

static const struct command *find_command(const char *name)
{
	static const struct command *const tables[] = {
		core_commands, blk_commands, hostile_commands, net_commands,
		vsock_commands,
	};

	for (unsigned t = 0; t < ARRAY_SIZE(tables); t++)
		for (const struct command *c = tables[t]; c->name; c++)
			if (!strcmp(c->name, name))
				return c;
	return NULL;
}

void list_commands(void)
{
	static const struct command *const tables[] = {
		core_commands, blk_commands, hostile_commands, net_commands,
		vsock_commands,
	};

	for (unsigned t = 0; t < ARRAY_SIZE(tables); t++)
		for (const struct command *c = tables[t]; c->name; c++)
			kprintf("  %-10s %s\n", c->name, c->help);
}

/* The first argument the command never looked up (a typo such as
 * "sise=1M" must not pass silently): copied into buf, or false. */
static bool unused_arg(const struct cmd_args *a, char *buf, size_t len)
{
	const char *p = a->raw;

	for (unsigned n = 0; *p; n++) {
		size_t il = 0;

		while (p[il] && p[il] != ':')
			il++;
		if (il && (n >= 32 || !(a->used & (1u << n)))) {
			if (il >= len)
				il = len - 1;
			memcpy(buf, p, il);
			buf[il] = 0;
			return true;
		}
		p += p[il] ? il + 1 : il;
	}
	return false;
}

/* Run one "name[:args]" item; prints its PASS/FAIL line. */
static bool run_one(const char *item, size_t len)
{
	static struct cmd_args a;
	char name[32], bad[48];
	size_t nl = 0;
	const struct command *c;
	uint64_t mark;
	int rc;

	while (nl < len && item[nl] != ':')
		nl++;
	if (nl >= sizeof(name))
		nl = sizeof(name) - 1;
	memcpy(name, item, nl);
	name[nl] = 0;
	memset(&a, 0, sizeof(a));
	a.name = name;
	if (nl < len) {
		size_t rl = len - nl - 1;

		if (rl >= sizeof(a.raw)) {
			kprintf("FAIL %s: arguments too long\n", name);
			return false;
		}
		memcpy(a.raw, item + nl + 1, rl);
	}
	c = find_command(name);
	if (!c) {
		kprintf("FAIL %s: unknown command\n", name);
		return false;
	}
	mark = page_alloc_mark();
	rc = c->fn(&a);
	page_alloc_release(mark);
	if (rc == 0 && unused_arg(&a, bad, sizeof(bad)))
		rc = fail_why(&a, "unknown argument %s", bad);
	if (rc == 0) {
		kprintf("PASS %s\n", name);
		return true;
	}
	kprintf("FAIL %s: %s\n", name, a.why[0] ? a.why : "failed");
	return false;
}

/* info: boot_params (kind BOOT_LINUX) or hvm_start_info (BOOT_PVH) */
void kmain(uint64_t info, unsigned kind)
{
	struct cpu *c = this_cpu();
	unsigned pass = 0, failed = 0;
	const char *p;

	uint64_t t_entry = rdtsc(), t_native, t_ready;

	cpu_early_init(c, 0);	/* emulated until this returns on PVM */
	t_native = rdtsc();
	cpu_late_init();
	boot_data_read(info, kind);
	if (cmdline_get("vmmtest.native", 0, run_list, sizeof(run_list)) == 0 &&
	    !strcmp(run_list, "0"))
		pvm_opt_out(c);		/* compare with the emulated speed */
	mem_init();
	paging_init();
	console_init();
	tsc_calibrate();
	lapic_init_cpu();
	c->apic_id = lapic_id();
	c->online = 1;
	smp_boot();
	/* up: the boot-time figure ends here, before the chatter */
	t_ready = rdtsc();
	outb(VMM_PORT_BOOT_READY, VMM_BOOT_READY_MAGIC);
	kprintf("boot: %lu us from kernel entry to ready (%lu us before the "
		"native opt-in)\n", tsc_us(t_ready - t_entry),
		tsc_us(t_native - t_entry));
	kprintf("vmm test kernel: %s mode, %u cpus, tsc %lu kHz, %s entry\n",
		c->vif ? "PVM native" :
		(pvm_host || pvm_emulated ? "PVM emulated" : "hardware"),
		ncpus, tsc_khz, kind == BOOT_PVH ? "PVH" : "64-bit");
	kprintf("cmdline: %s\n", cmdline);
	mem_print();

	switch (cmdline_get("vmmtest.run", 0, run_list, sizeof(run_list))) {
	case -1:
		memcpy(run_list, DEFAULT_RUN, sizeof(DEFAULT_RUN));
		break;
	case -2:
		kprintf("FAIL vmmtest.run: longer than %u bytes\n",
			(unsigned)sizeof(run_list) - 1);
		vmm_exit(EXIT_FAILED);
	}
	/* devices keep their rings for the whole run: probe before the
	 * per-command allocator marks */
	if (strstr_cmdline("virtio_mmio.device=")) {
		blk_probe_all();
		net_probe();
		vsock_probe_all();
	}

	for (p = run_list; *p;) {
		size_t len = 0;

		while (p[len] && p[len] != ',')
			len++;
		if (len) {
			if (run_one(p, len))
				pass++;
			else
				failed++;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	kprintf("vmmtest: %u passed, %u failed\n", pass, failed);
	vmm_exit(failed || !pass ? EXIT_FAILED : EXIT_OK);
}
