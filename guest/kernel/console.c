/* guest/kernel/console.c - COM1 output and a small printf.
 *
 * Every port write is an exit to the VMM (~60 us in PVM native mode), so a
 * line is formatted into a buffer first and written with string I/O under one
 * lock; we do not poll LSR (the VMM's UART accepts every byte at once).
 */
#include "kernel.h"

static volatile int console_lock;

void console_init(void)
{
	outb(VMM_PORT_COM1 + 1, 0x00);	/* no UART interrupts */
	outb(VMM_PORT_COM1 + 3, 0x03);	/* 8N1 */
}

static void lock(void)
{
	while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
}

static void unlock(void)
{
	__atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

/* One `rep outsb` per chunk: KVM turns a string PIO into a single exit with
 * count = n (one exit per byte otherwise, ~60 us each in PVM native mode). */
static void write_raw(const char *s, size_t n)
{
	char buf[256];
	size_t len = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || len + 2 > sizeof(buf)) {
			const char *p = buf;
			size_t cnt = len;

			__asm__ volatile("rep outsb" : "+S"(p), "+c"(cnt)
					 : "d"((uint16_t)VMM_PORT_COM1) : "memory");
			len = 0;
			if (i == n)
				break;
		}
		if (s[i] == '\n')
			buf[len++] = '\r';
		buf[len++] = s[i];
	}
}

void kputs(const char *s)
{
	lock();
	write_raw(s, strlen(s));
	unlock();
}

void kvprintf(const char *fmt, va_list ap)
{
	char buf[512];
	int n = kvsnprintf(buf, sizeof(buf), fmt, ap);

	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	lock();
	write_raw(buf, (size_t)n);
	unlock();
}

void kprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = kvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

struct out {
	char *buf;
	size_t size, len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_num(struct out *o, uint64_t v, unsigned base, int width,
		    char pad, bool neg)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	while (width-- > n)
		put(o, pad);
	while (n)
		put(o, tmp[--n]);
}

/* Supports %[#][-][0][width][l|ll|z](d|u|x|s|c|p|%). */
int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };

	for (; *fmt; fmt++) {
		int width = 0, lng = 0;
		char pad = ' ';
		bool alt = false, left = false;

		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == '#')
			alt = true, fmt++;
		if (*fmt == '-')
			left = true, fmt++;
		if (*fmt == '0')
			pad = '0', fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z')
			lng++, fmt++;
		switch (*fmt) {
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

			put_num(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10,
				width, pad, v < 0);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);

			if (alt && *fmt == 'x') {
				put(&o, '0'), put(&o, 'x');
				width -= 2;
			}
			put_num(&o, v, *fmt == 'x' ? 16 : 10, width, pad, false);
			break;
		}
		case 'p':
			put(&o, '0'), put(&o, 'x');
			put_num(&o, (uint64_t)va_arg(ap, void *), 16, width, pad,
				false);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int n;

			if (!s)
				s = "(null)";
			n = (int)strlen(s);
			while (!left && width-- > n)
				put(&o, ' ');
			while (*s)
				put(&o, *s++);
			while (left && width-- > n)
				put(&o, ' ');
			break;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case '%':
			put(&o, '%');
			break;
		default:
			put(&o, '%');
			if (!*fmt)
				goto out;
			put(&o, *fmt);
		}
	}
out:
	if (size)
		buf[o.len < size ? o.len : size - 1] = 0;
	return (int)o.len;
}
