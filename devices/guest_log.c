/* devices/guest_log.c - budgeted log lines for guest-triggered problems. */
#include "devices/guest_log.h"

#include <stdarg.h>
#include <stdio.h>

#include "vmm/vm.h"

int virtio_log_take(int *budget)
{
	int left;

	if (!budget)
		return 1;
	left = __atomic_load_n(budget, __ATOMIC_RELAXED);
	do {
		if (left <= 0)
			return 0;
	} while (!__atomic_compare_exchange_n(budget, &left, left - 1, false,
					      __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return left == 1 ? 2 : 1;
}

void guest_log(int *budget, const char *who, const char *fmt, ...)
{
	int take = virtio_log_take(budget);
	char msg[256];
	va_list ap;

	if (!take)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vm_log(who, "%s%s", msg,
	       take == 2 ? " (further guest errors not logged)" : "");
	/* and to the VM's event stream (the line's VM: the thread's) */
	vm_events_device_error(who, msg);
}
