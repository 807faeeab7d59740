/* vmm/fd_write.c - write_all(): every byte to a pipe, socket or terminal,
 * through short writes and signals.  Its own file so the host tools that do
 * not link the VMM library can link it too. */
#include <errno.h>
#include <unistd.h>

#include "vmm/vm.h"

int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
