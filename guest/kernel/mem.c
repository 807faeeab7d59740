/* guest/kernel/mem.c - the e820 map (boot.c read it from either entry) and
 * a bump page allocator over the RAM above the kernel image (commands
 * rewind it). */
#include "kernel.h"

static struct e820_entry *e820 = boot.e820;
static unsigned e820_n;
uint64_t ram_bytes;
static uint64_t initrd_start, initrd_end;

extern uint8_t _end[];

/* The allocator walks the e820 RAM ranges in order: (region, offset). */
static unsigned cur_region;
static uint64_t cur_addr;

void mem_init(void)
{
	e820_n = boot.e820_n;
	initrd_start = boot.initrd_start;
	initrd_end = boot.initrd_end;
	for (unsigned i = 0; i < e820_n; i++)
		if (e820[i].type == 1)
			ram_bytes += e820[i].size;
	cur_region = 0;
	cur_addr = 0;
}

void mem_print(void)
{
	for (unsigned i = 0; i < e820_n; i++)
		kprintf("e820: [%#014lx-%#014lx] %s\n", e820[i].addr,
			e820[i].addr + e820[i].size - 1,
			e820[i].type == 1 ? "usable" : "reserved");
	kprintf("memory: %lu MiB usable\n", ram_bytes >> 20);
}

/* Write and read back a word at the start and end of every usable range
 * above the kernel (the page tables must map all RAM, above 4 GiB too).
 * Returns the first failing address or 0. */
uint64_t mem_probe_ranges(void)
{
	for (unsigned i = 0; i < e820_n; i++) {
		uint64_t a = e820[i].addr, end = a + e820[i].size;

		if (e820[i].type != 1 || end <= (uint64_t)_end ||
		    end > (uint64_t)64 << 30)
			continue;
		if (a < (uint64_t)_end)
			a = ALIGN_UP((uint64_t)_end, 8);
		for (uint64_t p = a; ; p = (end - 8) & ~7ULL) {
			volatile uint64_t *w = (volatile uint64_t *)p;
			uint64_t old = *w, v = p ^ 0x5a5aa5a5c3c33c3cULL;

			*w = v;
			if (*w != v)
				return p;
			*w = old;
			if (p == ((end - 8) & ~7ULL))
				break;
		}
	}
	return 0;
}

void *page_alloc(uint64_t npages)
{
	uint64_t len = npages * PAGE_SIZE;

	for (; cur_region < e820_n; cur_region++, cur_addr = 0) {
		const struct e820_entry *e = &e820[cur_region];
		uint64_t a = cur_addr, end = e->addr + e->size;

		if (e->type != 1)
			continue;
		if (a < e->addr)
			a = e->addr;
		if (a < (uint64_t)_end)
			a = (uint64_t)_end;
		a = ALIGN_UP(a, PAGE_SIZE);
		if (initrd_end > initrd_start && a < initrd_end &&
		    a + len > initrd_start)
			a = ALIGN_UP(initrd_end, PAGE_SIZE);
		/* only memory our page tables map, never the MMIO hole */
		if (a + len <= end && a + len <= (uint64_t)64 << 30) {
			cur_addr = a + len;
			memset((void *)a, 0, len);
			return (void *)a;
		}
	}
	return NULL;
}

uint64_t page_alloc_mark(void)
{
	return (uint64_t)cur_region << 48 | cur_addr;
}

void page_alloc_release(uint64_t mark)
{
	cur_region = (unsigned)(mark >> 48);
	cur_addr = mark & ((1ULL << 48) - 1);
}
