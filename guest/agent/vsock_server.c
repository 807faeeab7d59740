/* guest/agent/vsock_server.c - the agent's vsock service (see
 * vsock_server.h for the protocol).
 *
 * Processes: PID 1 forks the server, which accepts and forks one handler
 * per connection (so a slow command never holds up another request, and a
 * crash in a handler never touches PID 1).  A `poweroff` request reaches
 * PID 1's `serve` step through a pipe created before the fork.
 */
#include "guest/agent/vsock_server.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Payload bytes of one out/err frame.  Linux allocates each vsock packet
 * in one piece (up to 64 KiB, order 4): in a small guest without
 * compaction such allocations fail, so frames stay at 16 KiB (order 2). */
#define FRAME_MAX	16384
#define JOB_MAX		65536	/* bytes of a job sent over the connection */
#define MAX_ARGS	256

static int poweroff_pipe[2] = { -1, -1 };
static pid_t server_pid;

int vsock_serving(void)
{
	return server_pid > 0;
}

/* write all of buf, or -1 (the host went away) */
static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	unsigned nomem = 0;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		/* the guest kernel is short of memory for a packet: that
		 * passes (bounded: 10 s) */
		if (w < 0 && (errno == ENOMEM || errno == ENOBUFS) &&
		    nomem++ < 1000) {
			usleep(10000);
			continue;
		}
		if (w <= 0) {
			fprintf(stderr, "agent: vsock write: %s\n",
				w < 0 ? strerror(errno) : "nothing written");
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int say(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int say(int fd, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	return write_all(fd, line, (size_t)n);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Split the request line into words, each %XX-decoded in place. */
static int split_words(char *s, char **argv, int max)
{
	int n = 0;

	while (*s) {
		char *w, *o;

		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (!*s)
			break;
		if (n == max)
			return -1;
		w = o = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\r') {
			if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
				*o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
				s += 3;
			} else {
				*o++ = *s++;
			}
		}
		if (*s)
			s++;
		*o = '\0';
		argv[n++] = w;
	}
	argv[n] = NULL;
	return n;
}

/* The request line, read a byte at a time so nothing after it is taken
 * from what belongs to the command's stdin. */
static int read_request(int fd, char *line, size_t size)
{
	size_t n = 0;

	while (n < size - 1) {
		ssize_t r = read(fd, line + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (line[n] == '\n') {
			line[n] = '\0';
			return 0;
		}
		n++;
	}
	return -2;
}

static int frame(int fd, const char *kind, const char *data, size_t n)
{
	if (say(fd, "%s %zu\n", kind, n) < 0)
		return -1;
	return write_all(fd, data, n);
}

/* exec: run argv with the connection as its stdin and the frames as its
 * output.  Returns the handler's exit status. */
static int serve_exec(int conn, char **argv)
{
	int in[2], out[2], err[2], status;
	static char buf[FRAME_MAX], stdin_buf[FRAME_MAX];
	size_t stdin_len = 0, stdin_off = 0;
	bool out_open = true, err_open = true, conn_open = true;
	pid_t pid;

	if (!argv[0])
		return say(conn, "error exec needs a command\n") ? 1 : 0;
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) ||
	    pipe2(err, O_CLOEXEC))
		return say(conn, "error pipe: %s\n", strerror(errno)) ? 1 : 0;
	pid = fork();
	if (pid < 0)
		return say(conn, "error fork: %s\n", strerror(errno)) ? 1 : 0;
	if (pid == 0) {
		setsid();	/* its own group: killed whole if the host leaves */
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		/* a busybox initramfs has its applets only inside busybox */
		if (errno == ENOENT && !strchr(argv[0], '/') &&
		    access("/bin/busybox", X_OK) == 0) {
			execv("/bin/busybox", argv);
			errno = ENOENT;
		}
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	while (out_open || err_open) {
		struct pollfd p[4];
		int np = 0, i_conn = -1, i_in = -1, i_out = -1, i_err = -1;

		if (out_open) {
			p[np] = (struct pollfd){ .fd = out[0], .events = POLLIN };
			i_out = np++;
		}
		if (err_open) {
			p[np] = (struct pollfd){ .fd = err[0], .events = POLLIN };
			i_err = np++;
		}
		if (in[1] >= 0 && stdin_off < stdin_len) {
			p[np] = (struct pollfd){ .fd = in[1], .events = POLLOUT };
			i_in = np++;
		} else if (conn_open) {
			p[np] = (struct pollfd){ .fd = conn, .events = POLLIN };
			i_conn = np++;
		}
		if (poll(p, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (i_conn >= 0 && p[i_conn].revents) {
			ssize_t r = read(conn, stdin_buf, sizeof(stdin_buf));

			if (r <= 0 && !(r < 0 && errno == EINTR)) {
				/* the host is done sending: stdin ends */
				conn_open = false;
				if (in[1] >= 0)
					close(in[1]);
				in[1] = -1;
			} else if (r > 0) {
				stdin_len = (size_t)r;
				stdin_off = 0;
				if (in[1] < 0)	/* the command closed stdin */
					stdin_len = 0;
			}
		}
		if (i_in >= 0 && p[i_in].revents) {
			ssize_t w = write(in[1], stdin_buf + stdin_off,
					  stdin_len - stdin_off);

			if (w > 0) {
				stdin_off += (size_t)w;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				/* it stopped reading (EPIPE): drop the rest */
				close(in[1]);
				in[1] = -1;
				stdin_len = stdin_off = 0;
			}
		}
		for (int k = 0; k < 2; k++) {
			int idx = k ? i_err : i_out, fd = k ? err[0] : out[0];
			ssize_t r;

			if (idx < 0 || !p[idx].revents)
				continue;
			r = read(fd, buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				if (k)
					err_open = false;
				else
					out_open = false;
				continue;
			}
			if (frame(conn, k ? "err" : "out", buf, (size_t)r) < 0) {
				/* the host is gone: so is the command */
				kill(-pid, SIGKILL);
				waitpid(pid, &status, 0);
				return 1;
			}
		}
	}
	if (in[1] >= 0)
		close(in[1]);
	close(out[0]);
	close(err[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
		return say(conn, "exit %d\n", 128 + WTERMSIG(status)) ? 1 : 0;
	return say(conn, "exit %d\n", WEXITSTATUS(status)) ? 1 : 0;
}

/* job: the rest of the connection is the job; results go back on it. */
static int serve_job(int conn)
{
	static char text[JOB_MAX + 1];
	size_t n = 0;
	int status;

	for (;;) {
		ssize_t r = read(conn, text + n, JOB_MAX - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return 1;
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == JOB_MAX) {
			char c;

			if (read(conn, &c, 1) > 0)
				return say(conn, "error the job is longer than "
					   "%d bytes\n", JOB_MAX) ? 1 : 0;
			break;
		}
	}
	text[n] = '\0';
	/* JSON lines on the connection; stderr stays on the console */
	dup2(conn, STDOUT_FILENO);
	status = agent_run_job_text(text, "vsock", 0);
	return status;
}

static void handle(int conn)
{
	static char line[VSOCK_REQUEST_MAX];
	char *argv[MAX_ARGS + 1];
	int argc, rc;

	signal(SIGCHLD, SIG_DFL);	/* this process waits for its own */
	signal(SIGPIPE, SIG_IGN);	/* a host that left: EPIPE, not death */
	rc = read_request(conn, line, sizeof(line));
	if (rc == -2) {
		say(conn, "error request line longer than %d bytes\n",
		    VSOCK_REQUEST_MAX - 1);
		_exit(1);
	}
	if (rc < 0)
		_exit(1);
	argc = split_words(line, argv, MAX_ARGS);
	if (argc < 0) {
		say(conn, "error more than %d words\n", MAX_ARGS);
		_exit(1);
	}
	if (argc == 0) {
		say(conn, "error empty request (exec ARG..., job, ping, "
		    "poweroff)\n");
		_exit(1);
	}
	if (!strcmp(argv[0], "exec"))
		_exit(serve_exec(conn, argv + 1));
	if (!strcmp(argv[0], "job") && argc == 1)
		_exit(serve_job(conn));
	if (!strcmp(argv[0], "ping") && argc == 1)
		_exit(say(conn, "pong\n") ? 1 : 0);
	if (!strcmp(argv[0], "poweroff") && argc == 1) {
		char one = 1;
		struct pollfd p = { .fd = conn, .events = POLLIN };
		char c;

		say(conn, "ok\n");
		shutdown(conn, SHUT_WR);
		/* give the host its answer before the VM goes away: wait
		 * (bounded) until it has closed its side */
		while (poll(&p, 1, 2000) == 1 && read(conn, &c, 1) > 0)
			;
		if (write(poweroff_pipe[1], &one, 1) != 1)
			_exit(1);
		_exit(0);
	}
	say(conn, "error unknown request '%s' (exec ARG..., job, ping, "
	    "poweroff)\n", argv[0]);
	_exit(1);
}

static void serve(int lfd)
{
	signal(SIGCHLD, SIG_IGN);	/* handlers are reaped by the kernel */
	close(poweroff_pipe[0]);
	poweroff_pipe[0] = -1;		/* `serve` belongs to PID 1's job */
	for (;;) {
		int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		pid_t pid;

		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EAGAIN)
				continue;
			fprintf(stderr, "agent: vsock accept: %s\n",
				strerror(errno));
			sleep(1);
			continue;
		}
		pid = fork();
		if (pid == 0) {
			close(lfd);
			handle(conn);
		}
		close(conn);
	}
}

/* Does the guest have a vsock transport with a device behind it? */
static int have_vsock_device(void)
{
	unsigned int cid = VMADDR_CID_ANY;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
		cid = VMADDR_CID_ANY;
	close(fd);
	/* a guest CID is 3 or more: Linux 6.1.192 answers 1 (its loopback
	 * transport) when no virtio-vsock device is there */
	return cid != VMADDR_CID_ANY && cid > VMADDR_CID_HOST;
}

int vsock_server_start(const char *where, char *err, size_t errlen)
{
	int lfd;
	pid_t pid;

	if (where && !strcmp(where, "off"))
		return -1;
	if (where && !strncmp(where, "unix:", 5)) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };

		if (strlen(where + 5) >= sizeof(a.sun_path)) {
			snprintf(err, errlen, "%s: path too long", where);
			return -1;
		}
		memcpy(a.sun_path, where + 5, strlen(where + 5));
		unlink(a.sun_path);
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) ||
		    listen(lfd, 16)) {
			snprintf(err, errlen, "listen on %s: %s", where,
				 strerror(errno));
			return -1;
		}
	} else {
		struct sockaddr_vm a = { .svm_family = AF_VSOCK,
					 .svm_cid = VMADDR_CID_ANY,
					 .svm_port = VSOCK_AGENT_PORT };

		if (where && *where) {
			char *end;
			unsigned long p = strtoul(where, &end, 10);

			if (*end || end == where || p == 0 || p >= 0xffffffffUL) {
				snprintf(err, errlen, "agent.vsock=%s: a port "
					 "number, or off", where);
				return -1;
			}
			a.svm_port = (unsigned)p;
		}
		if (!have_vsock_device())
			return -1;	/* nothing to serve on: not an error */
		lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) ||
		    listen(lfd, 16)) {
			snprintf(err, errlen, "vsock port %u: %s", a.svm_port,
				 strerror(errno));
			if (lfd >= 0)
				close(lfd);
			return -1;
		}
	}
	if (pipe2(poweroff_pipe, O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		close(lfd);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(lfd);
		return -1;
	}
	if (pid == 0)
		serve(lfd);
	close(lfd);
	close(poweroff_pipe[1]);
	server_pid = pid;
	return 0;
}

int op_serve(const struct job_step *st, struct report *r,
	     struct step_result *res)
{
	char c;
	ssize_t n;

	(void)st;
	(void)r;
	if (poweroff_pipe[0] < 0) {
		res->err = ENODEV;
		snprintf(res->msg, sizeof(res->msg), "serve: no vsock server "
			 "(no vsock device, or agent.vsock=off)");
		return -1;
	}
	do
		n = read(poweroff_pipe[0], &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1) {
		res->err = EIO;
		snprintf(res->msg, sizeof(res->msg), "serve: the vsock server "
			 "stopped");
		return -1;
	}
	return 0;
}
