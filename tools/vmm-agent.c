/* tools/vmm-agent.c - the host's client of the guest agent over vsock.
 *
 *   vmm-agent --uds PATH [--port 52] [--wait SECS] [-n] exec [--] CMD ARG...
 *   vmm-agent --uds PATH ... job FILE|-
 *   vmm-agent --uds PATH ... ping | poweroff
 *
 * It speaks only the documented protocols: Firecracker's Unix-socket
 * handshake to the VMM ("CONNECT <port>\n", answered "OK <n>\n"), then the
 * agent's request line and replies (guest/agent/vsock_server.h).  So
 * `socat - UNIX-CONNECT:PATH` does the same by hand.
 *
 * Exit status: exec: the guest command's (128+N if a signal N killed it);
 * job: the job's; ping/poweroff: 0.  255: the client could not do it (no
 * agent within --wait, connection lost, a protocol error), with one line on
 * stderr; 64: bad usage.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vm.h"

#define EXIT_CLIENT	255
#define EXIT_USAGE	64
#define JOB_MAX		65536
#define LINE_MAX_	4096

static const char *uds;
static unsigned port = 52;
static double wait_s = 60;
static bool direct;		/* the socket is the agent's own (tests) */

static void usage(void)
{
	fprintf(stderr,
		"usage: vmm-agent --uds PATH [--port N] [--wait SECS] [-n] COMMAND\n"
		"  exec [--] CMD ARG...  run CMD in the guest: our stdin is its stdin (-n: none),\n"
		"                        its stdout and stderr ours; exits with its status\n"
		"  job FILE|-            run a job (step language); its JSON lines on stdout;\n"
		"                        exits with the job's status\n"
		"  ping                  check that the agent answers\n"
		"  poweroff              end the agent's serve step (and so the VM's job)\n"
		"  --uds PATH            the VMM's vsock socket (--vsock ...,uds=PATH)\n"
		"  --port N              the agent's vsock port (default 52)\n"
		"  --wait SECS           keep trying to reach the agent this long (default 60)\n"
		"exit status 255: the client failed (one line on stderr)\n");
	exit(EXIT_USAGE);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vmm-agent: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_CLIENT);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One line (without its newline) read a byte at a time, so nothing after
 * it is consumed.  0, or -1 at EOF/error/over-long. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n < size - 1) {
		ssize_t r = read(fd, buf + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return 0;
		}
		n++;
	}
	return -1;
}

/* Connect to the agent: the Unix socket, then (unless direct) the
 * CONNECT/OK handshake; retried until --wait runs out, since the VMM may
 * not be up yet, or the guest not yet listening (the VMM then closes the
 * connection without OK). */
static int agent_connect(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	double deadline = now() + wait_s;
	char why[200] = "no attempt";

	if (strlen(uds) >= sizeof(a.sun_path))
		die("--uds %s: path too long", uds);
	memcpy(a.sun_path, uds, strlen(uds));
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		char line[64];

		if (fd < 0)
			die("socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			snprintf(why, sizeof(why), "%s: %s", uds, strerror(errno));
		} else if (direct) {
			return fd;
		} else {
			int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);

			if (write_all(fd, line, (size_t)n) == 0 &&
			    read_line(fd, line, sizeof(line)) == 0) {
				if (!strncmp(line, "OK ", 3))
					return fd;
				snprintf(why, sizeof(why), "unexpected answer "
					 "'%.40s' to CONNECT", line);
			} else {
				snprintf(why, sizeof(why), "nobody listening on "
					 "vsock port %u in the guest", port);
			}
		}
		close(fd);
		if (now() >= deadline)
			die("cannot reach the agent: %s", why);
		usleep(200000);
	}
}

/* %XX-encode what the request line cannot carry as is. */
static void put_word(char *line, size_t *len, size_t size, const char *w)
{
	static const char hex[] = "0123456789ABCDEF";

	if (*len + 1 >= size)
		die("command line too long for a request (%d bytes)", LINE_MAX_);
	line[(*len)++] = ' ';
	if (!*w) {	/* an empty argument: %00 would end it; none such */
		die("empty arguments cannot be sent");
	}
	for (; *w; w++) {
		unsigned char c = (unsigned char)*w;

		if (*len + 4 >= size)
			die("command line too long for a request (%d bytes)",
			    LINE_MAX_);
		if (c <= ' ' || c == '%' || c >= 0x7f) {
			line[(*len)++] = '%';
			line[(*len)++] = hex[c >> 4];
			line[(*len)++] = hex[c & 15];
		} else {
			line[(*len)++] = (char)c;
		}
	}
}

/* Buffered reader over the connection for the exec frames. */
struct rbuf {
	int fd;
	char buf[65536];
	size_t off, len;
};

static ssize_t rb_fill(struct rbuf *b)
{
	ssize_t r;

	if (b->off == b->len)
		b->off = b->len = 0;
	do
		r = read(b->fd, b->buf + b->len, sizeof(b->buf) - b->len);
	while (r < 0 && errno == EINTR);
	if (r > 0)
		b->len += (size_t)r;
	return r;
}

static int do_exec(int fd, char **argv, bool no_stdin)
{
	static char line[LINE_MAX_];
	static struct rbuf rb;	/* one exec per process: no heap, no leak */
	struct rbuf *b = &rb;
	size_t len = 4;
	bool stdin_open = !no_stdin;
	static char in[65536];
	size_t need = 0;	/* payload bytes of the current frame left */
	int to = 1;

	memcpy(line, "exec", 4);
	for (; *argv; argv++)
		put_word(line, &len, sizeof(line) - 1, *argv);
	line[len++] = '\n';
	if (write_all(fd, line, len) < 0)
		die("connection lost sending the request");
	if (!stdin_open)
		shutdown(fd, SHUT_WR);
	b->fd = fd;
	for (;;) {
		/* whole frames already buffered first */
		while (b->off < b->len) {
			if (need) {
				size_t k = b->len - b->off < need ? b->len - b->off : need;

				if (write_all(to, b->buf + b->off, k) < 0 && to == 1)
					die("stdout: %s", strerror(errno));
				b->off += k;
				need -= k;
				continue;
			}
			char *nl = memchr(b->buf + b->off, '\n', b->len - b->off);
			char *h = b->buf + b->off;
			int st;

			if (!nl) {
				if (b->len - b->off > 200)
					die("protocol error: over-long frame header");
				if (b->off) {	/* keep the partial header at the front */
					memmove(b->buf, h, b->len - b->off);
					b->len -= b->off;
					b->off = 0;
				}
				break;
			}
			*nl = '\0';
			b->off = (size_t)(nl + 1 - b->buf);
			if (sscanf(h, "out %zu", &need) == 1) {
				to = 1;
			} else if (sscanf(h, "err %zu", &need) == 1) {
				to = 2;
			} else if (sscanf(h, "exit %d", &st) == 1) {
				return st;
			} else if (!strncmp(h, "error ", 6)) {
				die("the agent says: %s", h + 6);
			} else {
				die("protocol error: unexpected '%.60s'", h);
			}
		}
		struct pollfd p[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = 0, .events = POLLIN },
		};

		if (poll(p, stdin_open ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (p[0].revents) {
			ssize_t r = rb_fill(b);

			if (r == 0)
				die("connection closed before the command's exit status");
			if (r < 0)
				die("connection: %s", strerror(errno));
		}
		if (stdin_open && p[1].revents) {
			ssize_t r = read(0, in, sizeof(in));

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				stdin_open = false;
				shutdown(fd, SHUT_WR);	/* the command's stdin ends */
			} else if (write_all(fd, in, (size_t)r) < 0) {
				stdin_open = false;	/* it is not reading any more */
			}
		}
	}
}

static int do_job(int fd, const char *file)
{
	static char text[JOB_MAX + 1], out[65536];
	FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	char last[512] = "";
	size_t n, lastlen = 0;
	ssize_t r;
	int status = -1;
	const char *s;

	if (!f)
		die("%s: %s", file, strerror(errno));
	n = fread(text, 1, sizeof(text), f);
	if (n > JOB_MAX)
		die("%s: a job is at most %d bytes", file, JOB_MAX);
	if (f != stdin)
		fclose(f);
	if (write_all(fd, "job\n", 4) < 0 || write_all(fd, text, n) < 0)
		die("connection lost sending the job");
	shutdown(fd, SHUT_WR);
	/* copy the JSON lines through; remember the last one */
	while ((r = read(fd, out, sizeof(out))) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("connection: %s", strerror(errno));
		}
		if (write_all(1, out, (size_t)r) < 0)
			die("stdout: %s", strerror(errno));
		for (ssize_t i = 0; i < r; i++) {
			if (out[i] == '\n') {
				last[lastlen] = '\0';
				if (!strncmp(last, "{\"summary\":true", 15) &&
				    (s = strstr(last, "\"status\":")))
					status = atoi(s + 9);
				else if (!strncmp(last, "error ", 6))
					die("the agent says: %s", last + 6);
				lastlen = 0;
			} else if (lastlen < sizeof(last) - 1) {
				last[lastlen++] = out[i];
			}
		}
	}
	if (status < 0)
		die("connection closed before the job's summary");
	return status;
}

static int simple(int fd, const char *req, const char *want)
{
	char line[256];

	if (write_all(fd, req, strlen(req)) < 0)
		die("connection lost sending '%s'", req);
	if (read_line(fd, line, sizeof(line)) < 0)
		die("no answer to '%.*s'", (int)strlen(req) - 1, req);
	if (strcmp(line, want))
		die("the agent says: %s", line);
	return 0;
}

int main(int argc, char **argv)
{
	bool no_stdin = false;
	int i, fd;

	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--uds") && i + 1 < argc) {
			uds = argv[++i];
		} else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			char *end;
			unsigned long p = strtoul(argv[++i], &end, 10);

			if (*end || p >= 0xffffffffUL)
				usage();
			port = (unsigned)p;
		} else if (!strcmp(argv[i], "--wait") && i + 1 < argc) {
			char *end;

			wait_s = strtod(argv[++i], &end);
			if (*end || wait_s < 0)
				usage();
		} else if (!strcmp(argv[i], "--direct")) {
			direct = true;
		} else if (!strcmp(argv[i], "-n")) {
			no_stdin = true;
		} else {
			usage();
		}
	}
	if (!uds || i >= argc)
		usage();
	if (!strcmp(argv[i], "exec")) {
		i++;
		if (i < argc && !strcmp(argv[i], "--"))
			i++;
		if (i >= argc)
			usage();
		fd = agent_connect();
		return do_exec(fd, argv + i, no_stdin);
	}
	if (!strcmp(argv[i], "job") && i + 2 == argc) {
		fd = agent_connect();
		return do_job(fd, argv[i + 1]);
	}
	if (!strcmp(argv[i], "ping") && i + 1 == argc) {
		fd = agent_connect();
		return simple(fd, "ping\n", "pong");
	}
	if (!strcmp(argv[i], "poweroff") && i + 1 == argc) {
		fd = agent_connect();
		return simple(fd, "poweroff\n", "ok");
	}
	usage();
}
