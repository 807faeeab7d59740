/* tests/integration/p9-fd-serve.c - serve a directory with the 9P server
 * (devices/p9_server.c) over a socket to the host kernel's own 9p client
 * (trans=fd), for fs-kernel-client.sh: the Linux client without a VM.
 *
 *   p9-fd-serve DIR MOUNTPOINT [ro]
 * mounts DIR's share at MOUNTPOINT (the mount runs in a child holding the
 * other end of the socket) and serves until the client unmounts. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/p9_server.h"

#define SLOTS	8	/* requests at once: the client's lock waiters park */

static int sock;
static struct slot {
	uint8_t in[1 << 18], out[1 << 18];
	struct iovec iv, ov;
	struct p9_req r;
	int busy;
} slots[SLOTS];

static void send_reply(struct p9_req *r)
{
	struct slot *s = r->opaque;

	if (r->reply_len &&
	    write(sock, s->out, r->reply_len) != (ssize_t)r->reply_len)
		perror("p9-fd-serve: write");
	s->busy = 0;
}

static void parked_done(void *opaque, struct p9_req *r)
{
	(void)opaque;
	send_reply(r);
}

static int readn(void *b, size_t n)
{
	for (size_t d = 0; d < n;) {
		ssize_t k = read(sock, (char *)b + d, n - d);

		if (k <= 0)
			return -1;
		d += (size_t)k;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct p9_server_opts o = { 0 };
	struct p9_server *s;
	char err[256], opts[200];
	int sv[2], st;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: p9-fd-serve DIR MOUNTPOINT [ro]\n");
		return 64;
	}
	o.path = argv[1];
	o.readonly = argc > 3 && !strcmp(argv[3], "ro");
	s = p9_server_create(&o, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "p9-fd-serve: %s\n", err);
		return 65;
	}
	p9_server_set_complete(s, parked_done, NULL);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 70;
	sock = sv[0];
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		snprintf(opts, sizeof(opts), "trans=fd,rfdno=%d,wfdno=%d,"
			 "version=9p2000.L,msize=262144", sv[1], sv[1]);
		execlp("mount", "mount", "-t", "9p", "-o", opts, "p9fd",
		       argv[2], (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	for (;;) {
		struct pollfd p = { sock, POLLIN, 0 };
		struct slot *sl = NULL;
		uint32_t size;

		if (poll(&p, 1, p9_server_parked(s) ? 10 : 1000) == 0) {
			p9_server_retry_parked(s);
			if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid) {
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					return 1;	/* mount failed */
				pid = 0;
			}
			continue;
		}
		for (int i = 0; i < SLOTS && !sl; i++)
			if (!slots[i].busy)
				sl = &slots[i];
		if (!sl || readn(sl->in, 4))
			break;
		memcpy(&size, sl->in, 4);
		if (size < 7 || size > sizeof(sl->in) ||
		    readn(sl->in + 4, size - 4))
			break;
		sl->iv = (struct iovec){ sl->in, size };
		sl->ov = (struct iovec){ sl->out, sizeof(sl->out) };
		sl->r = (struct p9_req){ .in = &sl->iv, .n_in = 1,
					 .out = &sl->ov, .n_out = 1,
					 .opaque = sl };
		sl->busy = 1;
		if (p9_server_handle(s, &sl->r) == 1)
			send_reply(&sl->r);
	}
	p9_server_destroy(s);
	return 0;
}
