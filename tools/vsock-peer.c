/* tools/vsock-peer.c - the host end of the vsock tests and benchmark.
 *
 *   vsock-peer listen PATH     accept on the Unix socket PATH (a guest's
 *                              connections to host port P arrive at
 *                              UDS_P) and serve each connection by its
 *                              first line: "recv N": read N bytes, then
 *                              close; "send N": write N bytes, then close;
 *                              anything else: echo every byte (that line
 *                              too) until end of file
 *   vsock-peer baseline SIZE   the host baseline: two processes stream
 *                              SIZE bytes through a Unix socket pair in
 *                              64 KiB writes; prints MB/s (10^6 bytes/s)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vm.h"

#define CHUNK	65536

static char buf[4 * CHUNK];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void serve(int fd)
{
	char line[64];
	size_t n = 0;
	unsigned long long size, done = 0;

	/* the first line, a byte at a time (it may be all there is) */
	while (n < sizeof(line) - 1) {
		ssize_t r = read(fd, line + n, 1);

		if (r <= 0)
			break;
		if (line[n++] == '\n')
			break;
	}
	line[n] = 0;
	if (sscanf(line, "recv %llu", &size) == 1) {
		while (done < size) {
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r <= 0)
				break;
			done += (unsigned long long)r;
		}
		if (done != size)
			fprintf(stderr, "vsock-peer: recv: %llu of %llu bytes\n",
				done, size);
	} else if (sscanf(line, "send %llu", &size) == 1) {
		memset(buf, 'v', sizeof(buf));
		while (done < size) {
			size_t k = size - done < CHUNK ? size - done : CHUNK;

			if (write_all(fd, buf, k) < 0)
				break;
			done += k;
		}
	} else {
		ssize_t r;

		if (write_all(fd, line, n) == 0)
			while ((r = read(fd, buf, sizeof(buf))) > 0)
				if (write_all(fd, buf, (size_t)r) < 0)
					break;
	}
	close(fd);
}

static int listen_on(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "vsock-peer: %s: path too long\n", path);
		return 2;
	}
	memcpy(a.sun_path, path, strlen(path));
	unlink(path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(lfd, 64)) {
		fprintf(stderr, "vsock-peer: %s: %s\n", path, strerror(errno));
		return 2;
	}
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (fork() == 0) {
			close(lfd);
			serve(fd);
			_exit(0);
		}
		close(fd);
	}
}

static int baseline(unsigned long long size)
{
	int sv[2];
	unsigned long long done = 0;
	double t0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 1;
	t0 = now();
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		memset(buf, 'v', CHUNK);
		while (done < size) {
			size_t k = size - done < CHUNK ? size - done : CHUNK;

			if (write_all(sv[1], buf, k) < 0)
				_exit(1);
			done += k;
		}
		_exit(0);
	}
	close(sv[1]);
	while (done < size) {
		ssize_t r = read(sv[0], buf, sizeof(buf));

		if (r <= 0)
			break;
		done += (unsigned long long)r;
	}
	waitpid(pid, NULL, 0);
	if (done != size)
		return 1;
	printf("baseline bytes=%llu MBps=%.1f\n", size, size / (now() - t0) / 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "listen"))
		return listen_on(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "baseline"))
		return baseline(strtoull(argv[2], NULL, 0));
	fprintf(stderr, "usage: vsock-peer listen PATH | baseline SIZE\n");
	return 2;
}
