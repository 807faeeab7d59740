/* vmm/console_watch.c - a Linux panic on the console ends the VM. */
#include "vmm/console_watch.h"

#include <string.h>

#include "vmm/vm.h"

void console_watch_init(struct console_watch *w, struct vm *vm)
{
	memset(w, 0, sizeof(*w));
	w->vm = vm;
}

/* Linux prints "Kernel panic - not syncing", a trace, then
 * "---[ end Kernel panic". */
void console_watch_byte(void *opaque, char c)
{
	struct console_watch *w = opaque;

	if (c != '\n') {
		if (w->line_len < sizeof(w->line) - 1)
			w->line[w->line_len++] = c;
		return;
	}
	w->line[w->line_len] = '\0';
	w->line_len = 0;
	if (strstr(w->line, "Kernel panic - not syncing"))
		vm_note_guest_panic(w->vm);	/* panic=-1 reboots next */
	if (strstr(w->line, "---[ end Kernel panic"))
		vm_request_exit(w->vm, VMM_EXIT_GUEST_PANIC);	/* panic=0 hangs */
}
