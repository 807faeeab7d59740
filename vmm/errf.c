/* vmm/errf.c - errf(), the one way setup code formats an error line for its
 * caller.  Apart from log.c so that unit tests may replace vm_log(). */
#include <stdarg.h>
#include <stdio.h>

#include "vmm/vm.h"

int errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}
