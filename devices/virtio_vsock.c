/* devices/virtio_vsock.c - virtio-vsock over host Unix sockets (see
 * virtio_vsock.h for the protocol and the bounds).
 *
 * Queues: 0 rx (device -> driver packets), 1 tx (driver -> device), 2 event.
 * Every packet is a struct virtio_vsock_hdr and, for OP_RW, len bytes of
 * payload, in any descriptor layout.
 *
 * Data paths, without a copy in the VMM when the host keeps up:
 *  - guest -> host: the payload is written from guest memory straight into
 *    the host socket; what a full socket does not take waits in the
 *    connection's buffer (at most the credit we granted: VSOCK_BUF_ALLOC)
 *    and that connection alone stops until the socket drains.
 *  - host -> guest: read from the host socket straight into a guest rx
 *    buffer, never more than the guest's credit allows.
 *
 * Host sockets sit on the device's own epoll set (level-triggered, interest
 * changed per connection), whose fd hangs on the device's event loop.  No
 * call blocks: sockets are non-blocking, a guest connect that finds a full
 * backlog is retried on a timer until VSOCK_REQUEST_TIMEOUT_MS.
 *
 * Half-close: a host that shuts down its writing side (read 0, no POLLHUP)
 * gives the guest SHUTDOWN(SEND) and can still read; a host that closes
 * gives SHUTDOWN(RCV|SEND).  A guest's SHUTDOWN(SEND) becomes shutdown(
 * SHUT_WR) on the host socket once buffered data is out; SHUTDOWN with both
 * flags is answered with RST (connection gone) once the buffer is out.
 *
 * The device runs on devices/virtio_dev: its thread, lock, work loop
 * (adaptive polling, notify suppression) and the one guest-error budget.
 * The host sockets' epoll set and a kick eventfd hang on that thread too,
 * so every function here runs with the device's lock held.
 */
#include "devices/virtio_vsock.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio_dev.h"
#include "devices/virtio_mmio.h"
#include "devices/virtqueue.h"
#include "vmm/event_loop.h"
#include "vmm/vm.h"

#define RXQ	0
#define TXQ	1
#define EVQ	2
#define NUM_QUEUES	3

#define HDR_SIZE	((uint32_t)sizeof(struct virtio_vsock_hdr))
#define SHUT_BOTH	(VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND)
#define TICK_MS		10	/* timer period while a deadline is pending */

/* epoll data for what is not a connection */
#define EV_LISTENER	0xffff0001u
#define EV_TIMER	0xffff0002u

enum conn_state {
	C_FREE,
	C_AWAIT_LINE,	/* host connected, its CONNECT line not complete */
	C_LOCAL_INIT,	/* REQUEST (to be) sent to the guest, no answer yet */
	C_CONNECTING,	/* guest REQUEST; the host listener's backlog was full */
	C_ESTABLISHED,
	C_CLOSING,	/* host closed; we sent SHUTDOWN(RCV|SEND), await RST */
	C_KILLED,	/* host side closed; an RST to the guest is pending */
};

/* What a connection has to put on the rx queue (bits) */
#define P_REQUEST	(1u << 0)
#define P_RESPONSE	(1u << 1)
#define P_RST		(1u << 2)
#define P_SHUTDOWN	(1u << 3)
#define P_RW		(1u << 4)
#define P_CREDIT_UPDATE	(1u << 5)
#define P_CREDIT_REQUEST (1u << 6)

struct conn {
	enum conn_state state;
	int fd;
	uint32_t local_port, peer_port;
	uint32_t interest;	/* epoll events currently registered */
	bool in_epoll;
	unsigned pending;	/* P_* */
	struct conn *next_pending;
	bool queued;		/* on the pending list */
	uint32_t shut_flags;	/* SHUTDOWN flags to send */

	/* flow control (wrapping 32-bit counters, as the protocol's) */
	uint32_t peer_buf_alloc, peer_fwd_cnt;	/* the guest's, last heard */
	uint32_t rx_cnt;	/* payload bytes we sent to the guest */
	uint32_t tx_cnt;	/* payload bytes the guest sent us */
	uint32_t fwd_cnt;	/* of those, written to the host socket */
	uint32_t last_fwd_sent;	/* fwd_cnt the guest last heard */
	bool credit_requested;

	bool host_eof;		/* read 0 from the host */
	bool host_hup;		/* the host closed both directions */
	bool guest_no_send;	/* guest SHUTDOWN(SEND) */
	bool guest_no_recv;	/* guest SHUTDOWN(RCV) */
	bool shut_wr_done;

	/* guest data the host socket has not taken yet: a ring of
	 * VSOCK_BUF_ALLOC bytes, allocated while data waits */
	uint8_t *txbuf;
	uint32_t txhead, txlen;

	/* the CONNECT line, then bytes the host sent after it */
	char line[VSOCK_CONNECT_LINE_MAX];
	unsigned line_len;
	unsigned pre_off;	/* line[pre_off..line_len): data for the guest */

	uint64_t deadline;	/* ns, 0: none */
};

struct ctrl_rst {
	uint32_t local_port, peer_port;	/* ours (their dst), theirs */
};

struct vsock_dev {
	struct vm *vm;
	char name[24];
	uint64_t cid;
	char uds[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct virtio_dev *vd;
	uint8_t config[8];

	int listen_fd, epfd, timer_fd, kick_fd;
	bool timer_armed;
	bool bound;		/* we created uds: unlink at teardown */

	/* everything below: the device thread, or a vCPU with the lock */
	bool was_active;
	bool event_pending;	/* TRANSPORT_RESET to deliver */
	bool reset_asked;	/* atomic: virtio_vsock_transport_reset() */
	bool tx_stalled;	/* no room for replies: tx waits for rx */
	/* A TRANSPORT_RESET the guest may not have handled yet: until this
	 * time (ns, 0: none) host connections are refused, since the guest
	 * would reset one it accepted before handling the event.  Handled
	 * once the driver gives back an event buffer (Linux refills after
	 * handling): more than evq_left of them available. */
	uint64_t reset_settle_until;
	unsigned evq_left;

	struct conn conns[VSOCK_MAX_CONNS];
	unsigned nconns;
	struct conn *pend_head, *pend_tail;
	struct ctrl_rst ctrl[VSOCK_CTRL_QUEUE];
	unsigned ctrl_head, ctrl_len;
	uint32_t next_local_port;

	struct iovec iov[VSOCK_QUEUE_SIZE];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Something the guest did wrong: from the device's one budget. */
#define guest_warn(d, ...)	virtio_dev_guest_error((d)->vd, __VA_ARGS__)

static bool dev_up(const struct vsock_dev *d)
{
	return d->vd && virtio_dev_active(d->vd);
}

/* A TRANSPORT_RESET is on its way to, or being handled by, the guest (see
 * reset_settle_until).  Device thread, lock held. */
static bool reset_settling(struct vsock_dev *d)
{
	struct virtq *q;

	if (!d->reset_settle_until)
		return false;
	if (now_ns() >= d->reset_settle_until)
		goto settled;	/* a driver that does not refill: bounded */
	if (d->event_pending)
		return true;
	q = virtio_dev_queue(d->vd, EVQ);
	if (q && virtq_avail_count(q) <= d->evq_left)
		return true;
settled:
	d->reset_settle_until = 0;
	return false;
}

/* ---- connections ---- */

static unsigned conn_index(struct vsock_dev *d, struct conn *c)
{
	return (unsigned)(c - d->conns);
}

static struct conn *conn_find(struct vsock_dev *d, uint32_t local_port,
			      uint32_t peer_port)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct conn *c = &d->conns[i];

		if (c->state > C_AWAIT_LINE && c->local_port == local_port &&
		    c->peer_port == peer_port)
			return c;
	}
	return NULL;
}

static struct conn *conn_alloc(struct vsock_dev *d)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct conn *c = &d->conns[i];

		if (c->state == C_FREE) {
			memset(c, 0, sizeof(*c));
			c->fd = -1;
			d->nconns++;
			return c;
		}
	}
	return NULL;
}

static void set_interest(struct vsock_dev *d, struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev,
				 .data.u32 = conn_index(d, c) };

	if (c->fd < 0 || (c->in_epoll && c->interest == ev))
		return;
	if (epoll_ctl(d->epfd, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
		      c->fd, &e) < 0) {
		vm_log(d->name, "epoll_ctl: %s", strerror(errno));
		return;
	}
	c->in_epoll = true;
	c->interest = ev;
}

static void epoll_forget(struct vsock_dev *d, struct conn *c)
{
	if (c->in_epoll)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->in_epoll = false;
}

/* Bytes the guest can still take from us. */
static uint32_t peer_credit(const struct conn *c)
{
	uint32_t used = c->rx_cnt - c->peer_fwd_cnt;

	return used >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - used;
}

/* Which host events the connection waits for now. */
static void update_interest(struct vsock_dev *d, struct conn *c)
{
	uint32_t ev = 0;

	if (c->fd < 0 || c->host_hup)
		return;
	if (c->state == C_AWAIT_LINE)
		ev = EPOLLIN;
	if (c->state == C_ESTABLISHED) {
		if (!c->host_eof && !c->guest_no_recv &&
		    !(c->pending & P_RW) && peer_credit(c) > 0)
			ev |= EPOLLIN;
		if (c->txlen)
			ev |= EPOLLOUT;
	}
	set_interest(d, c, ev);
}

static void pend(struct vsock_dev *d, struct conn *c, unsigned what)
{
	c->pending |= what;
	if (c->queued)
		return;
	c->queued = true;
	c->next_pending = NULL;
	if (d->pend_tail)
		d->pend_tail->next_pending = c;
	else
		d->pend_head = c;
	d->pend_tail = c;
}

static void unpend(struct vsock_dev *d, struct conn *c)
{
	struct conn **pp, *prev = NULL;

	if (!c->queued)
		return;
	for (pp = &d->pend_head; *pp; prev = *pp, pp = &(*pp)->next_pending)
		if (*pp == c) {
			*pp = c->next_pending;
			if (d->pend_tail == c)
				d->pend_tail = prev;
			break;
		}
	c->queued = false;
	c->next_pending = NULL;
}

static void close_host(struct vsock_dev *d, struct conn *c)
{
	if (c->fd < 0)
		return;
	epoll_forget(d, c);
	close(c->fd);
	c->fd = -1;
	free(c->txbuf);
	c->txbuf = NULL;
	c->txlen = c->txhead = 0;
}

static void conn_free(struct vsock_dev *d, struct conn *c)
{
	close_host(d, c);
	unpend(d, c);
	c->state = C_FREE;
	d->nconns--;
}

/* Host side gone; the guest gets an RST, then the slot is free. */
static void conn_kill(struct vsock_dev *d, struct conn *c)
{
	close_host(d, c);
	c->state = C_KILLED;
	c->pending = 0;
	c->deadline = 0;
	pend(d, c, P_RST);
}

/* An RST for a packet that belongs to no connection.  The caller made sure
 * there is room (ctrl_room). */
static void ctrl_rst(struct vsock_dev *d, uint32_t local_port,
		     uint32_t peer_port)
{
	struct ctrl_rst *r;

	if (d->ctrl_len == VSOCK_CTRL_QUEUE)
		return;
	r = &d->ctrl[(d->ctrl_head + d->ctrl_len++) % VSOCK_CTRL_QUEUE];
	r->local_port = local_port;
	r->peer_port = peer_port;
}

/* The periodic tick runs while a connection has a deadline or tx waits. */
static void ensure_tick(struct vsock_dev *d)
{
	struct itimerspec its = {
		.it_interval = { 0, TICK_MS * 1000000L },
		.it_value = { 0, TICK_MS * 1000000L },
	};

	if (!d->timer_armed &&
	    timerfd_settime(d->timer_fd, 0, &its, NULL) == 0)
		d->timer_armed = true;
}

static void arm_timer(struct vsock_dev *d, struct conn *c, unsigned ms)
{
	c->deadline = now_ns() + ms * 1000000ULL;
	ensure_tick(d);
}

/* ---- guest -> host data ---- */

/* Write what waits in the buffer; false if the host socket failed. */
static bool flush_txbuf(struct conn *c)
{
	while (c->txlen) {
		uint32_t first = VSOCK_BUF_ALLOC - c->txhead;
		struct iovec v[2] = {
			{ c->txbuf + c->txhead, c->txlen < first ? c->txlen : first },
			{ c->txbuf, c->txlen > first ? c->txlen - first : 0 },
		};
		struct msghdr m = { .msg_iov = v, .msg_iovlen = v[1].iov_len ? 2 : 1 };
		ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		c->txhead = (c->txhead + (uint32_t)n) % VSOCK_BUF_ALLOC;
		c->txlen -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	free(c->txbuf);		/* idle connections hold no buffer */
	c->txbuf = NULL;
	c->txhead = 0;
	return true;
}

/* What the guest may send before it hears from us again. */
static uint32_t guest_window(const struct conn *c)
{
	return c->peer_buf_alloc && c->peer_buf_alloc < VSOCK_BUF_ALLOC ?
	       c->peer_buf_alloc : VSOCK_BUF_ALLOC;
}

/* After data moved to the host: shut its writing side if the guest said it
 * is done, and tell the guest its credit when it runs low. */
static void after_forward(struct vsock_dev *d, struct conn *c)
{
	if (c->txlen)
		return;
	if (c->guest_no_send && !c->shut_wr_done) {
		shutdown(c->fd, SHUT_WR);
		c->shut_wr_done = true;
	}
	if (c->guest_no_send && c->guest_no_recv) {
		/* both directions closed by the guest, all data out: done */
		conn_kill(d, c);
		return;
	}
	/* Tell the guest our fwd_cnt once it believes it has used half of
	 * its window, early enough that a streaming guest hears of the room
	 * before it runs out.  Its window is our buffer or its own, the
	 * smaller: Linux caps what it sends unacknowledged at its own
	 * buf_alloc (256 KiB by default; 6.1.192 has it), so waiting for
	 * half of ours (512 KiB) left it blocked for credit at 256 KiB. */
	if (c->fwd_cnt != c->last_fwd_sent &&
	    c->tx_cnt - c->last_fwd_sent > guest_window(c) / 2)
		pend(d, c, P_CREDIT_UPDATE);
}

/* Payload of an OP_RW for c: into the host socket, the rest buffered. */
static void forward(struct vsock_dev *d, struct conn *c, struct iovec *iov,
		    unsigned cnt, uint32_t len)
{
	uint32_t done = 0;

	if (c->txlen == 0) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = cnt };
		ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_kill(d, c);	/* host reader gone */
			return;
		}
		if (n > 0) {
			done = (uint32_t)n;
			c->fwd_cnt += done;
		}
	}
	if (done < len) {
		uint32_t skip = done, tail;

		if (!c->txbuf) {
			c->txbuf = malloc(VSOCK_BUF_ALLOC);
			if (!c->txbuf) {
				vm_log(d->name, "out of memory buffering a "
				       "connection's data; reset it");
				conn_kill(d, c);
				return;
			}
		}
		/* (credit was checked: it fits) */
		for (unsigned i = 0; i < cnt; i++) {
			const uint8_t *p = iov[i].iov_base;
			size_t l = iov[i].iov_len;

			if (skip >= l) {
				skip -= (uint32_t)l;
				continue;
			}
			p += skip;
			l -= skip;
			skip = 0;
			while (l) {
				tail = (c->txhead + c->txlen) % VSOCK_BUF_ALLOC;
				size_t k = VSOCK_BUF_ALLOC - tail;

				if (k > l)
					k = l;
				memcpy(c->txbuf + tail, p, k);
				c->txlen += (uint32_t)k;
				p += k;
				l -= k;
			}
		}
	}
	after_forward(d, c);
	update_interest(d, c);
}

/* ---- host events ---- */

static void host_accept(struct vsock_dev *d)
{
	for (;;) {
		int fd = accept4(d->listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				vm_log(d->name, "accept on %s: %s", d->uds,
				       strerror(errno));
			return;
		}
		c = conn_alloc(d);
		if (!c) {
			/* refused cleanly: the client sees its connection
			 * closed before any OK */
			vm_log(d->name, "%u connections open: refusing a new "
			       "host connection", VSOCK_MAX_CONNS);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->state = C_AWAIT_LINE;
		arm_timer(d, c, VSOCK_LINE_TIMEOUT_MS);
		update_interest(d, c);
	}
}

static uint32_t alloc_local_port(struct vsock_dev *d)
{
	for (;;) {
		uint32_t p = d->next_local_port++;
		bool used = false;

		if (d->next_local_port == 0)
			d->next_local_port = VSOCK_LOCAL_PORT_FIRST;
		for (unsigned i = 0; i < VSOCK_MAX_CONNS && !used; i++)
			used = d->conns[i].state > C_AWAIT_LINE &&
			       d->conns[i].local_port == p;
		if (!used)
			return p;
	}
}

/* "CONNECT <port>" (case does not matter, spaces around allowed); the port
 * in *port.  0, or -1 for anything else. */
static int parse_connect(const char *s, size_t n, uint32_t *port)
{
	static const char kw[] = "connect";
	size_t i = 0, k;
	uint64_t v = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	for (k = 0; kw[k]; k++, i++)
		if (i >= n || (s[i] | 0x20) != kw[k])
			return -1;
	if (i >= n || (s[i] != ' ' && s[i] != '\t'))
		return -1;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= n || s[i] < '0' || s[i] > '9')
		return -1;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
		i++;
	if (i != n)
		return -1;
	*port = (uint32_t)v;
	return 0;
}

/* Read the host's CONNECT line (never blocking: bytes as they come). */
static void host_read_line(struct vsock_dev *d, struct conn *c)
{
	ssize_t n = read(c->fd, c->line + c->line_len,
			 sizeof(c->line) - c->line_len);
	char *nl;
	uint32_t port;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(d, c);	/* gone before asking */
		return;
	}
	c->line_len += (unsigned)n;
	nl = memchr(c->line, '\n', c->line_len);
	if (!nl) {
		if (c->line_len == sizeof(c->line))
			conn_free(d, c);	/* over-long: refused */
		return;
	}
	if (parse_connect(c->line, (size_t)(nl - c->line), &port) < 0 ||
	    !dev_up(d) || reset_settling(d)) {
		/* malformed, or no driver to ask (yet): closed, as
		 * Firecracker; a client retries */
		conn_free(d, c);
		return;
	}
	c->pre_off = (unsigned)(nl - c->line) + 1;	/* data after the line */
	c->peer_port = port;
	c->local_port = alloc_local_port(d);
	c->state = C_LOCAL_INIT;
	c->peer_buf_alloc = 0;
	arm_timer(d, c, VSOCK_REQUEST_TIMEOUT_MS);
	update_interest(d, c);	/* nothing more from the host until OK */
	pend(d, c, P_REQUEST);
}

/* The host closed both directions: is that what read 0 meant? */
static bool host_hung_up(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

static void host_event(struct vsock_dev *d, struct conn *c, uint32_t ev)
{
	switch (c->state) {
	case C_AWAIT_LINE:
		if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
			host_read_line(d, c);
		return;
	case C_ESTABLISHED:
		break;
	case C_LOCAL_INIT:
		if (ev & (EPOLLHUP | EPOLLERR))
			conn_kill(d, c);	/* gave up before OK */
		return;
	default:
		return;
	}
	if (ev & EPOLLERR) {
		conn_kill(d, c);
		return;
	}
	if ((ev & EPOLLOUT) && c->txlen) {
		if (!flush_txbuf(c)) {
			conn_kill(d, c);
			return;
		}
		after_forward(d, c);
		if (c->state != C_ESTABLISHED)
			return;
	}
	if (ev & EPOLLHUP) {
		/* Nothing more will come from the host side; what it left
		 * in the socket is read as the guest takes it, driven by the
		 * rx queue, not by epoll (a hung-up socket stays ready). */
		c->host_hup = true;
		epoll_forget(d, c);
		if (!c->host_eof && !c->guest_no_recv)
			pend(d, c, P_RW);
		else if (c->shut_flags != SHUT_BOTH) {
			c->shut_flags = SHUT_BOTH;
			pend(d, c, P_SHUTDOWN);
		}
		return;
	}
	if (ev & EPOLLIN)
		pend(d, c, P_RW);
	update_interest(d, c);
}

/* PATH_P: where a guest connection to host port P goes (create() made sure
 * it fits). */
static void port_path(const struct vsock_dev *d, uint32_t port,
		      struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (snprintf(a->sun_path, sizeof(a->sun_path), "%s_%u", d->uds,
		     port) >= (int)sizeof(a->sun_path))
		a->sun_path[0] = '\0';
}

static void timer_tick(struct vsock_dev *d)
{
	uint64_t exp, now = now_ns();
	bool any = false;

	if (read(d->timer_fd, &exp, sizeof(exp)) < 0)
		return;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct conn *c = &d->conns[i];

		if (!c->deadline)
			continue;
		if (c->state == C_CONNECTING && now < c->deadline) {
			/* retry a connect that found the backlog full */
			struct sockaddr_un a;

			port_path(d, c->local_port, &a);
			if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
				c->state = C_ESTABLISHED;
				c->deadline = 0;
				pend(d, c, P_RESPONSE);
				update_interest(d, c);
				continue;
			}
			if (errno != EAGAIN) {
				conn_kill(d, c);
				continue;
			}
		}
		if (now >= c->deadline) {
			c->deadline = 0;
			switch (c->state) {
			case C_AWAIT_LINE:
				conn_free(d, c);
				break;
			case C_LOCAL_INIT:
			case C_CONNECTING:
			case C_CLOSING:
			case C_ESTABLISHED:
				conn_kill(d, c);
				break;
			default:
				break;
			}
			continue;
		}
		any = true;
	}
	if (!any && !d->tx_stalled) {
		struct itimerspec off = { { 0, 0 }, { 0, 0 } };

		timerfd_settime(d->timer_fd, 0, &off, NULL);
		d->timer_armed = false;
	}
}

/* Handle what the host sockets, listener and timer have; returns how many
 * events. */
static int poll_host(struct vsock_dev *d)
{
	struct epoll_event evs[32];
	int n, total = 0;

	while ((n = epoll_wait(d->epfd, evs, 32, 0)) > 0) {
		total += n;
		for (int i = 0; i < n; i++) {
			uint32_t id = evs[i].data.u32;

			if (id == EV_LISTENER)
				host_accept(d);
			else if (id == EV_TIMER)
				timer_tick(d);
			else if (id < VSOCK_MAX_CONNS &&
				 d->conns[id].state != C_FREE)
				host_event(d, &d->conns[id], evs[i].events);
		}
		if (n < 32)
			break;
	}
	return total;
}

/* ---- tx queue: packets from the guest ---- */

static uint16_t le16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t le32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static void guest_connect(struct vsock_dev *d, uint32_t port,
			  uint32_t peer_port, uint32_t buf_alloc,
			  uint32_t fwd_cnt)
{
	struct sockaddr_un a;
	struct conn *c;
	int fd, r;

	if (d->nconns >= VSOCK_MAX_CONNS) {
		guest_warn(d, "%u connections open: connection to host port "
			   "%u refused", VSOCK_MAX_CONNS, port);
		ctrl_rst(d, port, peer_port);
		return;
	}
	port_path(d, port, &a);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		vm_log(d->name, "socket: %s", strerror(errno));
		ctrl_rst(d, port, peer_port);
		return;
	}
	r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	if (r < 0 && errno != EAGAIN) {
		/* nobody listening there: RST, as Firecracker */
		close(fd);
		ctrl_rst(d, port, peer_port);
		return;
	}
	c = conn_alloc(d);
	c->fd = fd;
	c->local_port = port;
	c->peer_port = peer_port;
	c->peer_buf_alloc = buf_alloc;
	c->peer_fwd_cnt = fwd_cnt;
	if (r < 0) {
		/* the listener's backlog is full: retry on the timer */
		c->state = C_CONNECTING;
		arm_timer(d, c, VSOCK_REQUEST_TIMEOUT_MS);
		return;
	}
	c->state = C_ESTABLISHED;
	pend(d, c, P_RESPONSE);
	update_interest(d, c);
}

/* The connection-level handling of one well-formed packet. */
static void conn_packet(struct vsock_dev *d, struct conn *c, uint16_t op,
			uint32_t flags, uint32_t buf_alloc, uint32_t fwd_cnt,
			struct iovec *iov, unsigned cnt, uint32_t len)
{
	uint32_t was_credit = peer_credit(c);

	/* every packet tells its sender's buffer state */
	c->peer_buf_alloc = buf_alloc;
	c->peer_fwd_cnt = fwd_cnt;

	if (op == VIRTIO_VSOCK_OP_RST) {
		conn_free(d, c);	/* the guest dropped it: no answer */
		return;
	}
	switch (c->state) {
	case C_KILLED:
		return;		/* our RST is on its way */
	case C_CLOSING:
		if (op == VIRTIO_VSOCK_OP_SHUTDOWN) {
			c->pending = 0;
			c->state = C_KILLED;
			c->deadline = 0;
			pend(d, c, P_RST);
		}
		return;		/* data for a closed host is dropped */
	case C_LOCAL_INIT:
		if (op == VIRTIO_VSOCK_OP_RESPONSE && !(c->pending & P_REQUEST)) {
			char ok[24];
			int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

			c->state = C_ESTABLISHED;
			c->deadline = 0;
			/* a fresh socket takes a few bytes */
			if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
				conn_kill(d, c);
				return;
			}
			if (c->pre_off < c->line_len)
				pend(d, c, P_RW);	/* sent after the line */
			update_interest(d, c);
			return;
		}
		guest_warn(d, "op %u on a connection (port %u) the guest has "
			   "not accepted: reset", op, c->local_port);
		conn_kill(d, c);
		return;
	case C_CONNECTING:
		guest_warn(d, "op %u on a connection (port %u) not yet "
			   "confirmed: reset", op, c->local_port);
		conn_kill(d, c);
		return;
	default:
		break;
	}
	/* established */
	switch (op) {
	case VIRTIO_VSOCK_OP_RW:
		if (c->guest_no_send) {
			guest_warn(d, "data after SHUTDOWN(SEND) on port %u: "
				   "reset", c->local_port);
			conn_kill(d, c);
			return;
		}
		/* the credit it was given: our buffer less what it had sent
		 * beyond the fwd_cnt we told it (so the buffer never
		 * overflows either) */
		if ((uint64_t)(c->tx_cnt - c->last_fwd_sent) + len >
		    VSOCK_BUF_ALLOC) {
			guest_warn(d, "credit overrun on port %u (%u bytes "
				   "unacknowledged, %u more sent, %u granted): "
				   "reset", c->local_port,
				   c->tx_cnt - c->last_fwd_sent, len,
				   VSOCK_BUF_ALLOC);
			conn_kill(d, c);
			return;
		}
		if (len == 0)
			break;
		c->tx_cnt += len;
		if (c->host_hup)
			break;		/* nobody reads: dropped */
		forward(d, c, iov, cnt, len);
		if (c->state != C_ESTABLISHED)
			return;
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		pend(d, c, P_CREDIT_UPDATE);
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (flags & VIRTIO_VSOCK_SHUTDOWN_RCV) {
			c->guest_no_recv = true;
			c->pending &= ~P_RW;
		}
		if (flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
			c->guest_no_send = true;
		if (c->guest_no_send && c->guest_no_recv && c->txlen)
			arm_timer(d, c, VSOCK_SHUTDOWN_TIMEOUT_MS);
		after_forward(d, c);
		if (c->state != C_ESTABLISHED)
			return;
		break;
	default:	/* REQUEST or RESPONSE on a live connection */
		guest_warn(d, "op %u on established port %u: reset", op,
			   c->local_port);
		conn_kill(d, c);
		return;
	}
	/* reading from the host may go on now that the guest has room */
	if (was_credit == 0 && peer_credit(c) > 0) {
		c->credit_requested = false;
		if (c->host_hup && !c->host_eof && !c->guest_no_recv)
			pend(d, c, P_RW);
	}
	update_interest(d, c);
}

/* One chain from the tx queue. */
static void tx_chain(struct vsock_dev *d, struct virtq_elem *e)
{
	struct iovec *iov = e->iov;
	unsigned cnt = e->n_out;
	uint8_t h[sizeof(struct virtio_vsock_hdr)];
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len, flags;
	uint16_t type, op;
	struct conn *c;

	if (iov_pull(&iov, &cnt, h, HDR_SIZE) < HDR_SIZE) {
		guest_warn(d, "tx packet at head %u shorter than its %u-byte "
			   "header: dropped", e->head, HDR_SIZE);
		return;
	}
	memcpy(&src_cid, h + offsetof(struct virtio_vsock_hdr, src_cid), 8);
	memcpy(&dst_cid, h + offsetof(struct virtio_vsock_hdr, dst_cid), 8);
	src_port = le32(h + offsetof(struct virtio_vsock_hdr, src_port));
	dst_port = le32(h + offsetof(struct virtio_vsock_hdr, dst_port));
	len = le32(h + offsetof(struct virtio_vsock_hdr, len));
	type = le16(h + offsetof(struct virtio_vsock_hdr, type));
	op = le16(h + offsetof(struct virtio_vsock_hdr, op));
	flags = le32(h + offsetof(struct virtio_vsock_hdr, flags));

	if (src_cid != d->cid || dst_cid != VSOCK_HOST_CID ||
	    type != VIRTIO_VSOCK_TYPE_STREAM || op == VIRTIO_VSOCK_OP_INVALID ||
	    op > VIRTIO_VSOCK_OP_CREDIT_REQUEST || len > VSOCK_MAX_PKT ||
	    len > iov_total(iov, cnt) ||
	    (op != VIRTIO_VSOCK_OP_RW && len != 0)) {
		guest_warn(d, "malformed tx packet (src %" PRIu64 ":%u, dst %"
			   PRIu64 ":%u, type %u, op %u, len %u, %" PRIu64
			   " payload bytes): reset", src_cid, src_port,
			   dst_cid, dst_port, type, op, len,
			   iov_total(iov, cnt));
		/* a packet from a wrong CID is not the connection's */
		c = src_cid == d->cid ? conn_find(d, dst_port, src_port) : NULL;
		if (c)
			conn_kill(d, c);
		else if (op != VIRTIO_VSOCK_OP_RST)
			ctrl_rst(d, dst_port, src_port);
		return;
	}
	c = conn_find(d, dst_port, src_port);
	if (!c) {
		if (op == VIRTIO_VSOCK_OP_REQUEST)
			guest_connect(d, dst_port, src_port,
				      le32(h + offsetof(struct virtio_vsock_hdr, buf_alloc)),
				      le32(h + offsetof(struct virtio_vsock_hdr, fwd_cnt)));
		else if (op != VIRTIO_VSOCK_OP_RST)
			ctrl_rst(d, dst_port, src_port);
		return;
	}
	if (len < iov_total(iov, cnt)) {
		/* only len bytes are payload: trim the list */
		uint64_t keep = len;
		unsigned i;

		for (i = 0; i < cnt && keep; i++) {
			if (iov[i].iov_len > keep)
				iov[i].iov_len = keep;
			keep -= iov[i].iov_len;
		}
		cnt = i;
	}
	conn_packet(d, c, op, flags,
		    le32(h + offsetof(struct virtio_vsock_hdr, buf_alloc)),
		    le32(h + offsetof(struct virtio_vsock_hdr, fwd_cnt)),
		    iov, cnt, len);
}

/* Pop what the guest sent.  Returns chains handled. */
static int run_tx(struct vsock_dev *d)
{
	int n = 0;

	for (;;) {
		struct virtq_elem e;

		/* every packet may need a reply on the rx queue: keep room */
		if (d->ctrl_len == VSOCK_CTRL_QUEUE) {
			d->tx_stalled = true;
			return n;
		}
		d->tx_stalled = false;
		if (virtio_dev_pop(d->vd, TXQ, &e, d->iov, VSOCK_QUEUE_SIZE) <= 0)
			return n;
		tx_chain(d, &e);
		virtio_dev_complete(d->vd, TXQ, e.head, 0);	/* nothing written */
		n++;
	}
}

/* ---- rx queue: packets to the guest ---- */

static void put_hdr(uint8_t *h, const struct vsock_dev *d, uint32_t src_port,
		    uint32_t dst_port, uint16_t op, uint32_t len,
		    uint32_t flags, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct virtio_vsock_hdr hdr = {
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = d->cid,
		.src_port = src_port,
		.dst_port = dst_port,
		.len = len,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = op,
		.flags = flags,
		.buf_alloc = buf_alloc,
		.fwd_cnt = fwd_cnt,
	};

	memcpy(h, &hdr, HDR_SIZE);	/* the host is little-endian, as virtio */
}

/* out = iov[0..cnt) less its first skip bytes; returns its count. */
static unsigned iov_after(const struct iovec *iov, unsigned cnt, size_t skip,
			  struct iovec *out)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cnt; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		out[n].iov_base = (uint8_t *)iov[i].iov_base + skip;
		out[n].iov_len = iov[i].iov_len - skip;
		skip = 0;
		n++;
	}
	return n;
}

/* Data from the host socket (and the bytes that came after the CONNECT
 * line) into the guest's buffer iov[0..cnt) of room bytes.  Returns the
 * payload length, 0 with *eof set at end of file, or -1 (EAGAIN: nothing
 * now; error: *err). */
static ssize_t read_host(struct conn *c, struct iovec *iov, unsigned cnt,
			 uint32_t room, bool *eof, int *err)
{
	struct iovec v[VSOCK_QUEUE_SIZE];
	uint32_t got = 0, left;
	unsigned n = 0;
	ssize_t r;

	*eof = false;
	*err = 0;
	if (c->pre_off < c->line_len) {
		uint32_t k = c->line_len - c->pre_off;

		if (k > room)
			k = room;
		got = (uint32_t)iov_fill(iov, cnt, c->line + c->pre_off, k);
		c->pre_off += got;
		if (got == room)
			return got;
	}
	/* the rest of the buffer, room - got bytes of it */
	left = room - got;
	for (unsigned i = 0, skip = got; i < cnt && left; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= (unsigned)iov[i].iov_len;
			continue;
		}
		v[n].iov_base = (uint8_t *)iov[i].iov_base + skip;
		v[n].iov_len = iov[i].iov_len - skip;
		if (v[n].iov_len > left)
			v[n].iov_len = left;
		left -= (uint32_t)v[n].iov_len;
		skip = 0;
		n++;
	}
	if (c->host_eof || c->fd < 0)
		r = 0;
	else
		r = readv(c->fd, v, (int)n);
	if (r > 0)
		return got + (uint32_t)r;
	if (got)
		return got;
	if (r == 0) {
		*eof = true;
		return 0;
	}
	*err = errno;
	return -1;
}

/* Fill one rx buffer for c.  Returns the bytes written (header included),
 * or 0 when c had nothing to send after all. */
static uint32_t conn_rx(struct vsock_dev *d, struct conn *c, struct iovec *iov,
			unsigned cnt, uint64_t room)
{
	uint8_t h[sizeof(struct virtio_vsock_hdr)];
	uint32_t lp = c->local_port, pp = c->peer_port;
	uint16_t op;
	uint32_t len = 0, flags = 0;
	unsigned what;

	if (c->pending & P_RST) {
		what = P_RST;
		op = VIRTIO_VSOCK_OP_RST;
	} else if (c->pending & P_RESPONSE) {
		what = P_RESPONSE;
		op = VIRTIO_VSOCK_OP_RESPONSE;
	} else if (c->pending & P_REQUEST) {
		what = P_REQUEST;
		op = VIRTIO_VSOCK_OP_REQUEST;
	} else if (c->pending & P_RW) {
		uint32_t credit = peer_credit(c), max;
		bool eof;
		int err;
		ssize_t r;

		what = P_RW;
		if (credit == 0) {
			c->pending &= ~P_RW;
			if (c->credit_requested)
				return 0;
			/* the guest owes us a credit update */
			c->credit_requested = true;
			op = VIRTIO_VSOCK_OP_CREDIT_REQUEST;
			goto send;
		}
		max = credit < VSOCK_MAX_PKT ? credit : VSOCK_MAX_PKT;
		if (room - HDR_SIZE < max)
			max = (uint32_t)(room - HDR_SIZE);
		/* the payload goes after the header in the same buffers */
		{
			struct iovec tail[VSOCK_QUEUE_SIZE];
			unsigned tn = iov_after(iov, cnt, HDR_SIZE, tail);

			r = read_host(c, tail, tn, max, &eof, &err);
		}
		if (r > 0) {
			len = (uint32_t)r;
			op = VIRTIO_VSOCK_OP_RW;
			c->rx_cnt += len;
			if (len < max && !c->host_hup) {
				/* socket drained: epoll says when there is more */
				c->pending &= ~P_RW;
				update_interest(d, c);
			}
			what = 0;
			goto send;
		}
		c->pending &= ~P_RW;
		if (r < 0 && (err == EAGAIN || err == EINTR)) {
			update_interest(d, c);
			return 0;
		}
		if (r < 0) {	/* host socket error: reset, now */
			close_host(d, c);
			c->state = C_KILLED;
			c->pending = 0;
			c->deadline = 0;
			what = 0;
			op = VIRTIO_VSOCK_OP_RST;
			goto send;
		}
		/* end of file: half or full close? */
		c->host_eof = true;
		if (c->host_hup || host_hung_up(c->fd))
			c->host_hup = true;
		c->shut_flags = c->host_hup ? SHUT_BOTH : VIRTIO_VSOCK_SHUTDOWN_SEND;
		what = 0;
		op = VIRTIO_VSOCK_OP_SHUTDOWN;
		flags = c->shut_flags;
		c->pending &= ~P_SHUTDOWN;
		goto shut;
	} else if (c->pending & P_SHUTDOWN) {
		what = P_SHUTDOWN;
		op = VIRTIO_VSOCK_OP_SHUTDOWN;
		flags = c->shut_flags;
		goto shut;
	} else if (c->pending & P_CREDIT_UPDATE) {
		what = P_CREDIT_UPDATE;
		op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
	} else if (c->pending & P_CREDIT_REQUEST) {
		what = P_CREDIT_REQUEST;
		op = VIRTIO_VSOCK_OP_CREDIT_REQUEST;
	} else {
		return 0;
	}
	goto send;
shut:
	if (flags == SHUT_BOTH) {
		/* host gone: the guest answers with RST, or we give up */
		epoll_forget(d, c);
		c->state = C_CLOSING;
		arm_timer(d, c, VSOCK_SHUTDOWN_TIMEOUT_MS);
	} else {
		update_interest(d, c);
	}
send:
	c->pending &= ~what;
	if (c->pending & P_CREDIT_UPDATE && op != VIRTIO_VSOCK_OP_RST)
		c->pending &= ~P_CREDIT_UPDATE;	/* this header carries it */
	put_hdr(h, d, lp, pp, op, len, flags, VSOCK_BUF_ALLOC, c->fwd_cnt);
	c->last_fwd_sent = c->fwd_cnt;
	iov_fill(iov, cnt, h, HDR_SIZE);
	if (op == VIRTIO_VSOCK_OP_RST && c->state == C_KILLED)
		conn_free(d, c);
	return HDR_SIZE + len;
}

/* Anything waiting for the rx queue? */
static bool rx_wanted(struct vsock_dev *d)
{
	return d->ctrl_len || d->pend_head;
}

/* Will conn_rx() produce a packet for c now?  A data read that would find
 * nothing (peeked, so no rx buffer is taken for it) or a credit request
 * already sent drop P_RW; false when nothing is left. */
static bool conn_rx_ready(struct vsock_dev *d, struct conn *c)
{
	char b;

	if ((c->pending & P_RW) &&
	    !(c->pending & (P_RST | P_RESPONSE | P_REQUEST))) {
		bool ready;

		if (peer_credit(c) == 0)
			ready = !c->credit_requested;
		else if (c->pre_off < c->line_len || c->host_eof || c->fd < 0)
			ready = true;
		else
			ready = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 ||
				(errno != EAGAIN && errno != EINTR);
		if (!ready) {
			c->pending &= ~P_RW;
			update_interest(d, c);
		}
	}
	return c->pending != 0;
}

/* Fill rx buffers.  Returns buffers used. */
static int run_rx(struct vsock_dev *d)
{
	struct virtq *q = virtio_dev_queue(d->vd, RXQ);
	int n = 0;

	while (q && rx_wanted(d)) {
		struct virtq_elem e;
		struct conn *c = NULL;
		struct iovec *in;
		uint32_t used;
		int r;

		if (!d->ctrl_len) {
			while ((c = d->pend_head) && !conn_rx_ready(d, c))
				unpend(d, c);
			if (!c)
				break;
		}
		r = virtio_dev_pop(d->vd, RXQ, &e, d->iov, VSOCK_QUEUE_SIZE);
		if (r < 0)
			break;
		if (r == 0) {
			/* out of buffers: ask for a kick when there are more */
			if (virtq_enable_notify(q))
				continue;
			break;
		}
		in = e.iov + e.n_out;
		if (e.in_len < HDR_SIZE) {
			guest_warn(d, "rx buffer at head %u has %" PRIu64
				   " writable bytes, less than a header: "
				   "returned empty", e.head, e.in_len);
			virtio_dev_complete(d->vd, RXQ, e.head, 0);
			n++;
			continue;
		}
		if (!c) {
			struct ctrl_rst *rst = &d->ctrl[d->ctrl_head];
			uint8_t h[sizeof(struct virtio_vsock_hdr)];

			put_hdr(h, d, rst->local_port, rst->peer_port,
				VIRTIO_VSOCK_OP_RST, 0, 0, 0, 0);
			iov_fill(in, e.n_in, h, HDR_SIZE);
			d->ctrl_head = (d->ctrl_head + 1) % VSOCK_CTRL_QUEUE;
			d->ctrl_len--;
			used = HDR_SIZE;
		} else {
			/* round robin: take it off, put it back if it has more */
			unpend(d, c);
			used = conn_rx(d, c, in, e.n_in,
				       e.in_len > UINT32_MAX ? UINT32_MAX : e.in_len);
			if (c->state != C_FREE && c->pending)
				pend(d, c, 0);
		}
		/* (used is never 0: conn_rx_ready said there is a packet) */
		virtio_dev_complete(d->vd, RXQ, e.head, used);
		n++;
	}
	return n;
}

/* A TRANSPORT_RESET event, if one is due and the driver gave a buffer. */
static int run_event(struct vsock_dev *d)
{
	struct virtq *q = virtio_dev_queue(d->vd, EVQ);
	struct virtq_elem e;
	uint32_t id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET;
	int r;

	if (!q || !d->event_pending)
		return 0;
	r = virtio_dev_pop(d->vd, EVQ, &e, d->iov, VSOCK_QUEUE_SIZE);
	if (r == 0 && virtq_enable_notify(q))
		r = virtio_dev_pop(d->vd, EVQ, &e, d->iov, VSOCK_QUEUE_SIZE);
	if (r <= 0)
		return 0;
	if (e.in_len < sizeof(id)) {
		guest_warn(d, "event buffer at head %u is shorter than an "
			   "event", e.head);
		virtio_dev_complete(d->vd, EVQ, e.head, 0);
	} else {
		iov_fill(e.iov + e.n_out, e.n_in, &id, sizeof(id));
		virtio_dev_complete(d->vd, EVQ, e.head, sizeof(id));
		d->event_pending = false;
		d->evq_left = virtq_avail_count(q);
		d->reset_settle_until = now_ns() +
					VSOCK_RESET_SETTLE_MS * 1000000ull;
	}
	return 1;
}

/* Every connection goes; host sockets are closed. */
static void drop_all(struct vsock_dev *d)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (d->conns[i].state != C_FREE)
			conn_free(d, &d->conns[i]);
	d->pend_head = d->pend_tail = NULL;
	d->ctrl_len = d->ctrl_head = 0;
}

/* ---- the device class (virtio_dev.h: lock held in all of these) ---- */

static int vsock_work(void *opaque)
{
	struct vsock_dev *d = opaque;
	int moved;

	poll_host(d);	/* host sockets too, while the loop polls */
	moved = run_tx(d);
	moved += run_rx(d);
	moved += run_event(d);
	if (!moved && d->tx_stalled) {
		/* waiting for rx buffers: notifies stay off, so the timer
		 * looks again (a kick may not come without EVENT_IDX) */
		ensure_tick(d);
		virtio_dev_stall(d->vd);
	}
	return moved;
}

/* Host sockets, the listener and the timer. */
static int on_host(void *opaque)
{
	return poll_host(opaque);
}

/* virtio_vsock_transport_reset() asked from another thread. */
static int on_kick(void *opaque)
{
	struct vsock_dev *d = opaque;
	uint64_t v;

	if (read(d->kick_fd, &v, sizeof(v)) < 0)
		return 0;
	if (__atomic_exchange_n(&d->reset_asked, false, __ATOMIC_ACQ_REL)) {
		drop_all(d);
		d->event_pending = true;
		d->reset_settle_until = now_ns() +
					VSOCK_RESET_SETTLE_MS * 1000000ull;
	}
	return 1;
}

static void vsock_config_read(void *opaque, uint32_t off, void *data,
			      unsigned size)
{
	struct vsock_dev *d = opaque;

	memcpy(data, d->config + off, size);
}

static int vsock_activate(void *opaque, uint64_t features)
{
	struct vsock_dev *d = opaque;

	(void)features;
	if (!virtio_dev_queue(d->vd, RXQ) || !virtio_dev_queue(d->vd, TXQ)) {
		guest_warn(d, "DRIVER_OK without the rx and tx queues");
		return -1;
	}
	d->tx_stalled = false;
	/* a driver starting again after a reset hears that its
	 * connections are gone (virtio 1.2, 5.10.6.6) */
	if (d->was_active) {
		d->event_pending = true;
		d->reset_settle_until = now_ns() +
					VSOCK_RESET_SETTLE_MS * 1000000ull;
	}
	d->was_active = true;
	return NUM_QUEUES;
}

static void vsock_reset(void *opaque)
{
	struct vsock_dev *d = opaque;

	drop_all(d);
	d->tx_stalled = false;
	d->event_pending = false;
	d->reset_settle_until = 0;
}

void virtio_vsock_transport_reset(struct vsock_dev *d)
{
	uint64_t one = 1;

	__atomic_store_n(&d->reset_asked, true, __ATOMIC_RELEASE);
	if (write(d->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vm_log(d->name, "kick: %s", strerror(errno));
}

/* Restored from a snapshot: the host ends of the old run's connections
 * are gone; the guest hears it through TRANSPORT_RESET. */
static void vsock_restored(void *opaque)
{
	virtio_vsock_transport_reset(opaque);
}

static const struct virtio_dev_class vsock_class = {
	.device_id = VIRTIO_ID_VSOCK,
	.num_queues = NUM_QUEUES,
	.queue_max = VSOCK_QUEUE_SIZE,
	.config_size = 8,
	.config_read = vsock_config_read,
	.config_write = NULL,
	.activate = vsock_activate,
	.work = vsock_work,
	.reset = vsock_reset,
	.restored = vsock_restored,
};

/* ---- setup and teardown ---- */

static void vsock_free(struct vsock_dev *d)
{
	virtio_dev_destroy(d->vd);	/* the thread is gone after this */
	drop_all(d);
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	if (d->bound)
		unlink(d->uds);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->kick_fd >= 0)
		close(d->kick_fd);
	free(d);
}

static void vsock_destroy(void *opaque)
{
	vsock_free(opaque);
}

/* Listen on the configured path.  A socket file left by a VMM that is gone
 * (nobody accepts on it) is replaced; anything else there is an error. */
static int bind_listener(struct vsock_dev *d, char *err, size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;

	memcpy(a.sun_path, d->uds, sizeof(a.sun_path));
	if (lstat(d->uds, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode))
			return errf(err, errlen, "--vsock uds=%s exists and is "
				    "not a socket", d->uds);
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&a,
					  sizeof(a)) == 0) {
			close(probe);
			return errf(err, errlen, "--vsock uds=%s is in use by "
				    "another process", d->uds);
		}
		if (probe >= 0)
			close(probe);
		unlink(d->uds);
	}
	d->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
			      SOCK_CLOEXEC, 0);
	if (d->listen_fd < 0)
		return errf(err, errlen, "socket: %s", strerror(errno));
	if (bind(d->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return errf(err, errlen, "--vsock uds=%s: %s", d->uds,
			    strerror(errno));
	d->bound = true;
	if (listen(d->listen_fd, 64) < 0)
		return errf(err, errlen, "listen on %s: %s", d->uds,
			    strerror(errno));
	return 0;
}

struct vsock_dev *virtio_vsock_create(struct vm *vm,
				      const struct virtio_vsock_cfg *cfg,
				      char *err, size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct vsock_dev *d;
	uint64_t features;

	if (!cfg->uds || strlen(cfg->uds) + sizeof("_4294967295") >
	    sizeof(d->uds)) {
		errf(err, errlen, "--vsock uds=%s: the path (plus \"_PORT\") "
		     "must fit in %zu bytes", cfg->uds ? cfg->uds : "",
		     sizeof(d->uds) - 1);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		errf(err, errlen, "virtio-vsock: out of memory");
		return NULL;
	}
	d->vm = vm;
	d->cid = cfg->cid;
	snprintf(d->uds, sizeof(d->uds), "%s", cfg->uds);
	snprintf(d->name, sizeof(d->name), "virtio-vsock");
	memcpy(d->config, &d->cid, 8);
	d->listen_fd = d->epfd = d->timer_fd = d->kick_fd = -1;
	d->next_local_port = VSOCK_LOCAL_PORT_FIRST;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		d->conns[i].fd = -1;

	if (bind_listener(d, err, errlen) < 0)
		goto fail;
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	d->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->epfd < 0 || d->timer_fd < 0 || d->kick_fd < 0) {
		errf(err, errlen, "virtio-vsock: %s", strerror(errno));
		goto fail;
	}
	ev.data.u32 = EV_LISTENER;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->listen_fd, &ev) < 0)
		goto fail_errno;
	ev.data.u32 = EV_TIMER;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->timer_fd, &ev) < 0)
		goto fail_errno;
	features = (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC);
	d->vd = virtio_dev_create(vm, d->name, &vsock_class, d, features, err,
				  errlen);
	if (!d->vd)
		goto fail;
	if (virtio_dev_add_fd(d->vd, d->epfd, on_host) < 0 ||
	    virtio_dev_add_fd(d->vd, d->kick_fd, on_kick) < 0) {
		errf(err, errlen, "%s: cannot watch its sockets", d->name);
		goto fail;
	}
	if (virtio_dev_start(d->vd, err, errlen) < 0)
		goto fail;
	if (vm_add_device(vm, d->name, vsock_destroy, d) < 0) {
		errf(err, errlen, "%s: cannot register the device", d->name);
		goto fail;
	}
	return d;
fail_errno:
	errf(err, errlen, "virtio-vsock: epoll: %s", strerror(errno));
fail:
	vsock_free(d);
	return NULL;
}

/* ---- the device table entry ---- */

static int vsock_parse(char *value, void *cfgp, unsigned index, char *err,
		       size_t errlen)
{
	struct virtio_vsock_cfg *cfg = cfgp;
	char *save = NULL, *kv;
	bool have_cid = false;

	(void)index;
	for (kv = strtok_r(value, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '='), *end;

		if (!v)
			return errf(err, errlen, "'%s' is not key=value", kv);
		*v++ = '\0';
		if (!strcmp(kv, "cid")) {
			unsigned long long n;

			errno = 0;
			n = strtoull(v, &end, 10);
			if (errno || end == v || *end || *v == '-' ||
			    n < 3 || n >= UINT32_MAX)
				return errf(err, errlen, "cid=%s: the "
					    "guest CID is a number from 3 to "
					    "4294967294 (2 is the host)", v);
			cfg->cid = n;
			have_cid = true;
		} else if (!strcmp(kv, "uds")) {
			if (!*v)
				return errf(err, errlen, "empty uds path");
			if (strlen(v) + sizeof("_4294967295") >
			    sizeof(((struct sockaddr_un *)0)->sun_path))
				return errf(err, errlen, "uds=%s is too "
					    "long for a Unix socket with a "
					    "\"_PORT\" suffix (%zu bytes at "
					    "most)", v,
					    sizeof(((struct sockaddr_un *)0)->sun_path) -
					    sizeof("_4294967295"));
			cfg->uds = v;
		} else {
			return errf(err, errlen, "unknown key '%s' "
				    "(cid, uds)", kv);
		}
	}
	if (!have_cid || !cfg->uds)
		return errf(err, errlen, "needs cid=N and uds=PATH");
	return 0;
}

static int vsock_create_entry(struct vm *vm, const void *cfg, char *err,
			      size_t errlen)
{
	return virtio_vsock_create(vm, cfg, err, errlen) ? 0 : VMM_EXIT_BAD_INPUT;
}

const struct device_type virtio_vsock_type = {
	.option = "vsock",
	.usage = "  --vsock cid=N,uds=PATH  virtio-vsock: guest CID N (>= 3); host "
		 "processes connect to PATH\n"
		 "                          and send \"CONNECT <port>\\n\"; guest "
		 "connections to host port P\n"
		 "                          go to PATH_P (Firecracker's protocol)\n",
	.max = 1,
	.config_size = sizeof(struct virtio_vsock_cfg),
	.parse = vsock_parse,
	.create = vsock_create_entry,
};
