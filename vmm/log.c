/* vmm/log.c - one-line messages on stderr from any thread.  Its own file
 * so devices and their unit tests can log without pulling in the KVM code. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/vm.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void vm_log(const char *who, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&log_lock);
	/* "vmm: who: message", or "vmm: message" for the VMM itself */
	fprintf(stderr, "vmm: ");
	if (who && strcmp(who, "vmm"))
		fprintf(stderr, "%s: ", who);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
}
