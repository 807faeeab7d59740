/* vmm/console_watch.h - the VMM's reading of the guest console: a Linux
 * panic ends the VM with VMM_EXIT_GUEST_PANIC.  Guest-OS policy, so it
 * lives here and not in the UART model, which only feeds it bytes
 * (serial_create's tap). */
#ifndef VMM_CONSOLE_WATCH_H
#define VMM_CONSOLE_WATCH_H

#include <stddef.h>

struct vm;

struct console_watch {
	struct vm *vm;
	char line[160];		/* the current output line (truncated) */
	size_t line_len;
};

void console_watch_init(struct console_watch *w, struct vm *vm);
/* One byte of console output (a serial_tap_fn: opaque is the watch). */
void console_watch_byte(void *opaque, char c);

#endif
