/* devices/virtio_net.c - virtio-net (virtio 1.2, 5.1) on a host TAP
 * interface.
 *
 * --net tap=NAME[,mac=52:54:00:xx:xx:xx][,queues=N][,mtu=M]
 *
 * Data path, on the device's own event loop thread:
 * - TX: every available chain is checked (header copied out and validated,
 *   so the guest cannot change it under the kernel) and written to the TAP
 *   with one writev straight from guest memory.
 * - RX: chains are popped ahead into a per-queue stash of checked iovecs
 *   covering the largest frame the TAP may hand us; each frame is read with
 *   one readv straight into guest memory, spread over as many chains as it
 *   needs with MRG_RXBUF (one chain without), num_buffers filled in.  When
 *   the guest has no buffers left (or a long frame's tail waits in the
 *   spill area for more) we stop reading the TAP (its fd leaves our epoll
 *   set) and wait for the guest's refill notify: no drop loop, no spin.
 * - Batches: the device runs on devices/virtio_dev (its thread and work
 *   loop): a round handles every queue, each used ring is published once
 *   and at most one interrupt raised (EVENT_IDX permitting); while work
 *   flows, and for a short window after it, notifies stay suppressed and
 *   the rings and the TAP are polled.
 *
 * A TAP that fails (interface deleted) turns the link down (config status,
 * config interrupt, one log line); TX chains are then completed and
 * dropped, nothing is read.
 *
 * Memory bound: what the device allocates is fixed at creation, per queue
 * pair about 90 KiB (the RX stash of 1020 iovecs and 256 chain entries,
 * the 64 KiB spill area, 257 TX iovecs), whatever the guest does.
 *
 * Locking: everything but config_read runs under the virtio_dev lock
 * (work, before_sleep and the TAP handler on the device thread; activate,
 * cancel and reset on a vCPU thread).  The link status is an atomic.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "devices/registry.h"
#include "devices/virtio_dev.h"
#include "devices/virtio_mmio.h"
#include "devices/virtqueue.h"
#include "vmm/vm.h"

#define VNET_QUEUE_SIZE		256
#define VNET_HDR_LEN		((unsigned)sizeof(struct virtio_net_hdr_mrg_rxbuf))
/* queue pairs: RX 2i, TX 2i+1, and the control queue after them */
#define VNET_MAX_PAIRS_CAP	8
#define VNET_MAX_PAIRS \
	((VIRTIO_MMIO_MAX_QUEUES - 1) / 2 < VNET_MAX_PAIRS_CAP ? \
	 (VIRTIO_MMIO_MAX_QUEUES - 1) / 2 : VNET_MAX_PAIRS_CAP)
#define VNET_MAX_DEVICES	4
#define RX_IOV_MAX		1020	/* iovecs in one RX stash (+1 < IOV_MAX) */
#define CHAIN_IOV_MAX		64	/* buffers in one RX chain */
#define TX_IOV_MAX		VNET_QUEUE_SIZE
#define ETH_HLEN_MAX		18	/* Ethernet header with one VLAN tag */
/* IPv6 TSO: a 40-byte header and up to 65535 bytes of payload */
#define GSO_FRAME_MAX		(ETH_HLEN_MAX + 40 + 65535)
#define SPILL_BYTES		(VNET_HDR_LEN + GSO_FRAME_MAX)
#define RX_BATCH		64	/* frames per queue before publishing */
#define TX_BATCH		256
#define CTRL_IOV_MAX		16

/* Config space (struct virtio_net_config) up to and including mtu */
#define CFG_MAC		0
#define CFG_STATUS	6
#define CFG_MAX_PAIRS	8
#define CFG_MTU		10
#define CFG_SIZE	12

struct vnet_cfg {
	const char *tap;	/* NULL: create vmmtapN (root) */
	uint8_t mac[6];
	bool mac_set;
	unsigned queues;	/* queue pairs, 1..VNET_MAX_PAIRS */
	unsigned mtu;		/* 0: the TAP's */
	unsigned index;
};

struct rx_chain {
	uint16_t head;
	uint16_t niov;
	uint32_t len;
};

/* One RX/TX queue pair and its TAP queue (fd). */
struct vnet_pair {
	unsigned index;
	int fd;
	bool watched;		/* fd in the device's TAP epoll set */
	bool attached;		/* the TAP steers frames to this queue */
	bool starved;		/* not enough RX room: waiting for a refill */
	unsigned rxq, txq;	/* their queue indexes */
	uint16_t rx_size;	/* RX queue size (0: not set up) */
	/* RX stash: popped, checked chains not used yet, in ring order */
	struct rx_chain chain[VNET_QUEUE_SIZE];
	unsigned nchain, niov;
	uint64_t stash_bytes;
	/* a frame whose tail did not fit: its bytes [spill_at, spilled) are
	 * in spill; 0 when none */
	uint64_t spill_at, spilled;
	uint8_t *spill;		/* SPILL_BYTES */
	struct iovec rx_iov[RX_IOV_MAX + 1];	/* + the overflow byte */
	struct iovec tx_iov[TX_IOV_MAX + 1];	/* [0]: our header copy */
};

struct vnet {
	struct vm *vm;
	char name[24];
	char ifname[IFNAMSIZ];
	bool created;		/* we created the TAP: it goes with us */
	struct virtio_dev *vd;
	int tap_epfd;		/* the TAP fds we currently read */
	unsigned max_pairs;
	uint8_t mac[6];
	uint16_t mtu;
	uint16_t status;	/* atomic: VIRTIO_NET_S_LINK_UP */

	/* under the virtio_dev lock */
	bool link_down;		/* the TAP failed */
	uint64_t features;
	bool mrg;		/* MRG_RXBUF */
	uint32_t rx_need;	/* bytes of RX room for the largest frame */
	unsigned active_pairs;
	bool ctrl;		/* control queue served */
	unsigned ctrl_index;
	uint64_t rx_dropped, tx_dropped;
	struct vnet_pair pair[];
};

/* Guest-triggered lines: the device's one budget (virtio_dev). */
#define guest_warn(d, ...)	virtio_dev_guest_error((d)->vd, __VA_ARGS__)

static bool has(const struct vnet *d, unsigned bit)
{
	return d->features & (1ULL << bit);
}

/* --- the TAP's place in our epoll set --- */

static void tap_watch(struct vnet *d, struct vnet_pair *p, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0,
				  .data.u32 = p->index };

	if (p->watched == on || p->fd < 0)
		return;
	if (epoll_ctl(d->tap_epfd, EPOLL_CTL_MOD, p->fd, &ev) < 0)
		vm_log(d->name, "epoll: %s", strerror(errno));
	p->watched = on;
}

/* The TAP failed (deleted interface, ...): link down, never read again. */
static void link_down(struct vnet *d, const char *op, int err)
{
	if (d->link_down)
		return;
	d->link_down = true;
	vm_log(d->name, "TAP %s: %s: %s; link down", d->ifname, op,
	       strerror(err));
	for (unsigned i = 0; i < d->max_pairs; i++) {
		struct vnet_pair *p = &d->pair[i];

		if (p->fd >= 0)
			epoll_ctl(d->tap_epfd, EPOLL_CTL_DEL, p->fd, NULL);
		p->watched = false;
	}
	__atomic_and_fetch(&d->status, (uint16_t)~VIRTIO_NET_S_LINK_UP,
			   __ATOMIC_SEQ_CST);
	virtio_mmio_config_changed(virtio_dev_transport(d->vd));
}

/* Attach or detach a TAP queue: a detached one gets no frames steered to
 * it (the pairs the driver does not use). */
static void tap_attach(struct vnet *d, struct vnet_pair *p, bool on)
{
	struct ifreq ifr = { .ifr_flags = on ? IFF_ATTACH_QUEUE :
					       IFF_DETACH_QUEUE };

	if (p->attached == on || p->fd < 0 || d->link_down)
		return;
	if (ioctl(p->fd, TUNSETQUEUE, &ifr) < 0)
		vm_log(d->name, "TAP %s queue %u: %s: %s", d->ifname, p->index,
		       on ? "attach" : "detach", strerror(errno));
	else
		p->attached = on;
}

/* End chain head of queue qi: a used entry (published with the round). */
static void push(struct vnet *d, unsigned qi, uint16_t head, uint32_t len)
{
	virtio_dev_complete(d->vd, qi, head, len);
}

/* --- TX --- */

/* Check a TX header against the negotiated features and the frame; NULL
 * if it is fine, else why not. */
static const char *tx_header_error(const struct vnet *d,
				   const struct virtio_net_hdr *h,
				   uint64_t frame_len)
{
	uint8_t gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

	if (frame_len < 14)
		return "frame shorter than an Ethernet header";
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return "unknown header flags";
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!has(d, VIRTIO_NET_F_CSUM))
			return "NEEDS_CSUM without CSUM negotiated";
		if ((uint64_t)h->csum_start + h->csum_offset + 2 > frame_len)
			return "checksum offsets beyond the frame";
	}
	if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE) {
		if (frame_len > GSO_FRAME_MAX)
			return "frame longer than 64 KiB";
		return NULL;
	}
	if (h->gso_type & VIRTIO_NET_HDR_GSO_ECN)
		return "GSO with ECN not negotiated";
	if (gso == VIRTIO_NET_HDR_GSO_TCPV4) {
		if (!has(d, VIRTIO_NET_F_HOST_TSO4))
			return "TSO4 frame without HOST_TSO4";
	} else if (gso == VIRTIO_NET_HDR_GSO_TCPV6) {
		if (!has(d, VIRTIO_NET_F_HOST_TSO6))
			return "TSO6 frame without HOST_TSO6";
	} else {
		return "unknown GSO type";
	}
	if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return "GSO frame without NEEDS_CSUM";
	if (h->gso_size == 0)
		return "GSO frame with gso_size 0";
	if (h->hdr_len > frame_len)
		return "hdr_len beyond the frame";
	if (frame_len > GSO_FRAME_MAX)
		return "GSO frame longer than 64 KiB";
	return NULL;
}

/* Send one popped chain; a frame that cannot be sent is dropped (a TAP is
 * lossy like any link): the chain is always completed. */
static void tx_one(struct vnet *d, struct vnet_pair *p,
		   const struct virtq_elem *e)
{
	struct virtio_net_hdr_mrg_rxbuf hdr;
	struct iovec *iov = p->tx_iov + 1;
	unsigned cnt = e->n_out;
	const char *why;
	ssize_t n;

	if (e->n_in) {
		guest_warn(d, "TX chain at head %u has device-writable "
			   "buffers; dropped", e->head);
		goto drop;
	}
	if (e->out_len < VNET_HDR_LEN) {
		guest_warn(d, "TX chain at head %u: %" PRIu64 " bytes, shorter "
			   "than the %u-byte header; dropped", e->head,
			   e->out_len, VNET_HDR_LEN);
		goto drop;
	}
	/* our copy of the header goes to the kernel: the guest cannot
	 * change what was checked */
	iov_pull(&iov, &cnt, &hdr, VNET_HDR_LEN);
	why = tx_header_error(d, &hdr.hdr, e->out_len - VNET_HDR_LEN);
	if (why) {
		guest_warn(d, "TX chain at head %u: %s (flags %#x gso_type %#x "
			   "hdr_len %u gso_size %u csum %u+%u, %" PRIu64
			   " bytes); dropped", e->head, why, hdr.hdr.flags,
			   hdr.hdr.gso_type, hdr.hdr.hdr_len,
			   hdr.hdr.gso_size, hdr.hdr.csum_start,
			   hdr.hdr.csum_offset, e->out_len - VNET_HDR_LEN);
		goto drop;
	}
	if (d->link_down)
		goto drop;
	hdr.num_buffers = 0;
	iov--;
	iov->iov_base = &hdr;
	iov->iov_len = VNET_HDR_LEN;
	do
		n = writev(p->fd, iov, (int)cnt + 1);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		/* EINVAL: the kernel's own check of the frame; EIO: the
		 * interface is down; EAGAIN/ENOBUFS: full.  Only a TAP that
		 * is gone takes the link down. */
		if (errno == EBADFD || errno == ENODEV || errno == ENXIO)
			link_down(d, "write", errno);
		goto drop;
	}
	push(d, p->txq, e->head, 0);
	return;
drop:
	d->tx_dropped++;
	push(d, p->txq, e->head, 0);
}

static unsigned tx_pair(struct vnet *d, struct vnet_pair *p)
{
	struct virtq_elem e;
	unsigned n = 0;

	while (n < TX_BATCH) {
		/* -1: the ring is broken (logged, NEEDS_RESET) */
		if (virtio_dev_pop(d->vd, p->txq, &e, p->tx_iov + 1,
				   TX_IOV_MAX) <= 0)
			break;
		tx_one(d, p, &e);
		n++;
	}
	return n;
}

/* --- RX --- */

/* Pop RX chains into the stash until it holds want bytes (one chain
 * without MRG_RXBUF), the ring runs dry, or the stash is full.  0, or -1
 * when the guest broke the ring. */
static int rx_fill(struct vnet *d, struct vnet_pair *p, uint64_t want)
{
	for (;;) {
		struct virtq_elem e;
		struct rx_chain *c;
		int ret;

		if (d->mrg ? p->stash_bytes >= want : p->nchain > 0)
			return 0;
		if (p->nchain == p->rx_size ||
		    p->niov + CHAIN_IOV_MAX > RX_IOV_MAX)
			return 0;
		/* (the walker refuses a head we still hold) */
		ret = virtio_dev_pop(d->vd, p->rxq, &e, p->rx_iov + p->niov,
				     CHAIN_IOV_MAX);
		if (ret <= 0)
			return ret;
		if (e.n_out) {
			guest_warn(d, "RX chain at head %u has device-readable "
				   "buffers; device needs reset", e.head);
			virtio_dev_abandon(d->vd, p->rxq);
			return -1;
		}
		if (e.in_len < VNET_HDR_LEN) {
			guest_warn(d, "RX chain at head %u: %" PRIu64 " bytes, "
				   "shorter than the %u-byte header; device "
				   "needs reset", e.head, e.in_len,
				   VNET_HDR_LEN);
			virtio_dev_abandon(d->vd, p->rxq);
			return -1;
		}
		c = &p->chain[p->nchain++];
		c->head = e.head;
		c->niov = (uint16_t)e.n_in;
		c->len = e.in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)e.in_len;
		p->niov += e.n_in;
		p->stash_bytes += c->len;
	}
}

/* Drop the first k chains (and their iovecs) from the stash. */
static void rx_consume(struct vnet_pair *p, unsigned k)
{
	unsigned iovs = 0;

	for (unsigned i = 0; i < k; i++) {
		iovs += p->chain[i].niov;
		p->stash_bytes -= p->chain[i].len;
	}
	memmove(p->chain, p->chain + k, (p->nchain - k) * sizeof(p->chain[0]));
	memmove(p->rx_iov, p->rx_iov + iovs,
		(p->niov - iovs) * sizeof(p->rx_iov[0]));
	p->nchain -= k;
	p->niov -= iovs;
}

/* Give up the stash: each chain ends without a used entry when the
 * device is inactive (cancel, drain); a spilled frame is lost. */
static void rx_stash_drop(struct vnet *d, struct vnet_pair *p)
{
	for (unsigned i = 0; i < p->nchain; i++)
		virtio_dev_complete(d->vd, p->rxq, p->chain[i].head, 0);
	p->spilled = 0;
	p->nchain = p->niov = 0;
	p->stash_bytes = 0;
}

/* Write the 2 bytes of v at byte off of iov[0..cnt) (any split). */
static void iov_put16(const struct iovec *iov, unsigned cnt, size_t off,
		      uint16_t v)
{
	const uint8_t *b = (const uint8_t *)&v;
	unsigned k = 0;

	for (unsigned i = 0; i < cnt && k < 2; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		while (k < 2 && off < iov[i].iov_len)
			((uint8_t *)iov[i].iov_base)[off++] = b[k++];
		off = 0;
	}
}

/* Copy len bytes to byte off of iov[0..cnt). */
static void iov_copy_to(const struct iovec *iov, unsigned cnt, uint64_t off,
			const uint8_t *src, uint64_t len)
{
	for (unsigned i = 0; i < cnt && len; i++) {
		uint64_t k;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		k = iov[i].iov_len - off < len ? iov[i].iov_len - off : len;
		memcpy((uint8_t *)iov[i].iov_base + off, src, k);
		src += k;
		len -= k;
		off = 0;
	}
}

/* Hand a frame of n bytes at the front of the stash to the guest: the
 * chains it covers, num_buffers in its header. */
static void rx_deliver(struct vnet *d, struct vnet_pair *p, uint64_t n)
{
	uint64_t left = n;
	unsigned k = 0;

	for (uint64_t room = 0; room < n; k++)
		room += p->chain[k].len;
	iov_put16(p->rx_iov, p->chain[0].niov,
		  offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers),
		  (uint16_t)k);
	for (unsigned i = 0; i < k; i++) {
		uint32_t l = left < p->chain[i].len ? (uint32_t)left :
			     p->chain[i].len;

		push(d, p->rxq, p->chain[i].head, l);
		left -= l;
	}
	rx_consume(p, k);
}

/* Read frames from p's TAP queue into the guest until the TAP is empty,
 * the ring is out of room (then starved), or RX_BATCH frames.  Returns the
 * frames delivered.
 *
 * Each readv goes straight into the stash's chains, enough of them for the
 * largest frame; when the guest has given less than that (it is behind, or
 * its ring is small), the tail of an unusually long frame spills into
 * p->spill and waits there for the guest's next buffers (MRG_RXBUF; a frame
 * longer than a chain without it is dropped). */
static unsigned rx_pair(struct vnet *d, struct vnet_pair *p)
{
	unsigned frames = 0;

	p->starved = false;
	while (frames < RX_BATCH && !d->link_down) {
		unsigned k = 0, iovs = 0;
		uint64_t room = 0;
		struct iovec saved;
		ssize_t n;

		if (rx_fill(d, p, p->spilled ? p->spilled : d->rx_need) < 0)
			break;	/* NEEDS_RESET: no more work */
		if (p->spilled) {
			/* a frame waits for the rest of its buffers */
			if (p->stash_bytes < p->spilled) {
				p->starved = true;
				break;
			}
			iov_copy_to(p->rx_iov, p->niov, p->spill_at, p->spill,
				    p->spilled - p->spill_at);
			rx_deliver(d, p, p->spilled);
			p->spilled = 0;
			frames++;
			continue;
		}
		if (p->nchain == 0) {
			p->starved = true;
			break;
		}
		do {
			room += p->chain[k].len;
			iovs += p->chain[k].niov;
			k++;
		} while (d->mrg && k < p->nchain && room < d->rx_need);
		/* the TAP cuts a frame to the room it is given and says
		 * nothing: the spill area behind our chains catches the rest */
		saved = p->rx_iov[iovs];
		p->rx_iov[iovs].iov_base = p->spill;
		p->rx_iov[iovs].iov_len = SPILL_BYTES;
		do
			n = readv(p->fd, p->rx_iov, (int)iovs + 1);
		while (n < 0 && errno == EINTR);
		p->rx_iov[iovs] = saved;
		if (n < 0) {
			/* EAGAIN: empty; EIO: the interface is down */
			if (errno == EBADFD || errno == ENODEV ||
			    errno == ENXIO)
				link_down(d, "read", errno);
			break;
		}
		if (n < (ssize_t)VNET_HDR_LEN || (uint64_t)n > room + SPILL_BYTES)
			continue;	/* not a frame of ours to deliver */
		if ((uint64_t)n > room) {
			if (!d->mrg) {
				d->rx_dropped++;
				guest_warn(d, "RX frame of %zd bytes longer "
					   "than the %" PRIu64 "-byte buffer "
					   "(no MRG_RXBUF); dropped", n, room);
				continue;
			}
			/* bytes [room, n) wait in the spill area */
			p->spill_at = room;
			p->spilled = (uint64_t)n;
			continue;
		}
		rx_deliver(d, p, (uint64_t)n);
		frames++;
	}
	return frames;
}

/* --- control queue --- */

static uint8_t ctrl_command(struct vnet *d, uint8_t cls, uint8_t cmd,
			    struct iovec *out, unsigned n_out)
{
	if (cls == VIRTIO_NET_CTRL_MQ && cmd == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET &&
	    has(d, VIRTIO_NET_F_MQ)) {
		uint16_t pairs;

		if (iov_pull(&out, &n_out, &pairs, 2) < 2 ||
		    pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN ||
		    pairs > d->max_pairs) {
			guest_warn(d, "MQ_VQ_PAIRS_SET: bad pair count");
			return VIRTIO_NET_ERR;
		}
		for (unsigned i = 0; i < pairs; i++)
			if (!virtio_dev_queue(d->vd, d->pair[i].rxq) ||
			    !virtio_dev_queue(d->vd, d->pair[i].txq)) {
				guest_warn(d, "MQ_VQ_PAIRS_SET %u: queue pair "
					   "%u not set up", pairs, i);
				return VIRTIO_NET_ERR;
			}
		for (unsigned i = 1; i < d->max_pairs; i++) {
			struct vnet_pair *p = &d->pair[i];

			if (i >= pairs) {
				/* its posted buffers stay the driver's until
				 * a reset (the spec: unused queues) */
				tap_watch(d, p, false);
			}
			tap_attach(d, p, i < pairs);
		}
		d->active_pairs = pairs;
		return VIRTIO_NET_OK;
	}
	return VIRTIO_NET_ERR;
}

static unsigned ctrl_run(struct vnet *d)
{
	struct iovec iov[CTRL_IOV_MAX];
	struct virtq_elem e;
	unsigned n = 0;

	while (d->ctrl) {
		struct virtio_net_ctrl_hdr h;
		struct iovec *out = iov;
		unsigned n_out, n_in;
		uint8_t *ack, st;

		if (virtio_dev_pop(d->vd, d->ctrl_index, &e, iov,
				   CTRL_IOV_MAX) <= 0)
			break;
		n_out = e.n_out;
		n_in = e.n_in;
		ack = iov_take_last_byte(iov + e.n_out, &n_in);
		if (!ack) {
			guest_warn(d, "control command at head %u has no "
				   "writable ack byte; device needs reset",
				   e.head);
			virtio_dev_abandon(d->vd, d->ctrl_index);
			break;
		}
		if (iov_pull(&out, &n_out, &h, sizeof(h)) < sizeof(h)) {
			guest_warn(d, "control command at head %u shorter than "
				   "its header", e.head);
			st = VIRTIO_NET_ERR;
		} else {
			st = ctrl_command(d, h.class, h.cmd, out, n_out);
		}
		*ack = st;
		push(d, d->ctrl_index, e.head, 1);
		n++;
	}
	return n;
}

/* --- the class callbacks (virtio_dev lock held) --- */

/* One round: control commands, then every active pair's TX and RX. */
static int vnet_work(void *opaque)
{
	struct vnet *d = opaque;
	unsigned work = ctrl_run(d);

	for (unsigned i = 0; i < d->active_pairs; i++) {
		work += tx_pair(d, &d->pair[i]);
		work += rx_pair(d, &d->pair[i]);
	}
	return (int)work;
}

/* Going to sleep: read the TAPs that have room to read into; where the
 * guest has not given enough, the TAP stays out of the epoll set and the
 * RX queue's notify (re-enabled by the loop) brings us back. */
static int vnet_before_sleep(void *opaque)
{
	struct vnet *d = opaque;

	for (unsigned i = 0; i < d->max_pairs; i++) {
		struct vnet_pair *p = &d->pair[i];

		tap_watch(d, p, i < d->active_pairs && !p->starved &&
			  !d->link_down);
	}
	return 0;
}

/* The TAP set is readable (a frame, or a TAP that went away). */
static int vnet_on_tap(void *opaque)
{
	struct vnet *d = opaque;
	struct epoll_event ev[VNET_MAX_PAIRS_CAP];
	int n;

	/* A TAP that went away reports EPOLLERR even while we do not watch
	 * it for input: take the link down (which drops it from the set),
	 * or this wake-up would repeat forever. */
	n = epoll_wait(d->tap_epfd, ev, VNET_MAX_PAIRS_CAP, 0);
	for (int i = 0; i < n; i++)
		if (ev[i].events & (EPOLLERR | EPOLLHUP))
			link_down(d, "poll", EBADFD);
	if (virtio_dev_active(d->vd))
		return 1;	/* the work loop reads */
	/* nobody to read for: stop watching until DRIVER_OK */
	for (unsigned i = 0; i < d->max_pairs; i++)
		tap_watch(d, &d->pair[i], false);
	return 0;
}

/* A reset begins, or teardown: the posted buffers we hold go back. */
static void vnet_cancel(void *opaque)
{
	struct vnet *d = opaque;

	for (unsigned i = 0; i < d->max_pairs; i++) {
		tap_watch(d, &d->pair[i], false);
		rx_stash_drop(d, &d->pair[i]);
	}
}

/* A snapshot: the receive buffers we hold go back empty (length 0, which
 * the driver drops and reposts), so none is in flight in the snapshot. */
static void vnet_quiesce(void *opaque)
{
	struct vnet *d = opaque;

	for (unsigned i = 0; i < d->max_pairs; i++)
		rx_stash_drop(d, &d->pair[i]);
}

static void vnet_reset(void *opaque)
{
	struct vnet *d = opaque;

	d->ctrl = false;
	for (unsigned i = 0; i < d->max_pairs; i++) {
		d->pair[i].rx_size = 0;
		d->pair[i].starved = false;
	}
}

/* --- transport callbacks (vCPU threads) --- */

static void vnet_config_read(void *opaque, uint32_t off, void *data,
			     unsigned size)
{
	struct vnet *d = opaque;
	uint8_t cfg[CFG_SIZE];
	uint16_t v;

	memcpy(cfg + CFG_MAC, d->mac, 6);
	v = __atomic_load_n(&d->status, __ATOMIC_ACQUIRE);
	memcpy(cfg + CFG_STATUS, &v, 2);
	v = (uint16_t)d->max_pairs;
	memcpy(cfg + CFG_MAX_PAIRS, &v, 2);
	memcpy(cfg + CFG_MTU, &d->mtu, 2);
	memcpy(data, cfg + off, size);
}

/* Feature dependencies (virtio 1.2, 5.1.3.1); NULL if met. */
static const char *feature_error(uint64_t f)
{
	static const struct { unsigned bit, needs; const char *what; } deps[] = {
		{ VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_CSUM,
		  "GUEST_TSO4 without GUEST_CSUM" },
		{ VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_CSUM,
		  "GUEST_TSO6 without GUEST_CSUM" },
		{ VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_CSUM,
		  "HOST_TSO4 without CSUM" },
		{ VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_CSUM,
		  "HOST_TSO6 without CSUM" },
		{ VIRTIO_NET_F_MQ, VIRTIO_NET_F_CTRL_VQ, "MQ without CTRL_VQ" },
	};

	for (unsigned i = 0; i < sizeof(deps) / sizeof(deps[0]); i++)
		if ((f & (1ULL << deps[i].bit)) && !(f & (1ULL << deps[i].needs)))
			return deps[i].what;
	return NULL;
}

/* DRIVER_OK: returns how many queues are served, or -1 (NEEDS_RESET). */
static int vnet_activate(void *opaque, uint64_t features)
{
	struct vnet *d = opaque;
	const char *why = feature_error(features);
	bool mq = features & (1ULL << VIRTIO_NET_F_MQ);
	unsigned offload = 0, served;
	bool gso;

	if (why) {
		guest_warn(d, "driver accepted %s; device needs reset", why);
		return -1;
	}
	if (!virtio_dev_queue(d->vd, 0) || !virtio_dev_queue(d->vd, 1)) {
		guest_warn(d, "DRIVER_OK without receive queue 0 and transmit "
			   "queue 1; device needs reset");
		return -1;
	}
	if (features & (1ULL << VIRTIO_NET_F_GUEST_CSUM))
		offload |= TUN_F_CSUM;
	if (features & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
		offload |= TUN_F_TSO4;
	if (features & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
		offload |= TUN_F_TSO6;
	gso = offload & (TUN_F_TSO4 | TUN_F_TSO6);
	d->features = features;
	d->mrg = features & (1ULL << VIRTIO_NET_F_MRG_RXBUF);
	d->rx_need = VNET_HDR_LEN + (gso ? GSO_FRAME_MAX :
				     ETH_HLEN_MAX + (uint32_t)d->mtu);
	/* queue pairs 0..n, then the control queue (5.1.2) */
	d->ctrl_index = mq ? 2 * d->max_pairs : 2;
	d->ctrl = (features & (1ULL << VIRTIO_NET_F_CTRL_VQ)) &&
		  virtio_dev_queue(d->vd, d->ctrl_index);
	served = d->ctrl ? d->ctrl_index + 1 : 2;
	for (unsigned i = 0; i < d->max_pairs; i++) {
		struct vnet_pair *p = &d->pair[i];
		struct virtq *rx = virtio_dev_queue(d->vd, p->rxq);

		p->rx_size = p->rxq < served && rx ? rx->size : 0;
		p->nchain = p->niov = 0;
		p->stash_bytes = p->spilled = 0;
		p->starved = false;
		/* what the TAP may hand us: only what the guest can take */
		if (p->fd >= 0 && ioctl(p->fd, TUNSETOFFLOAD, offload) < 0)
			vm_log(d->name, "TAP %s: TUNSETOFFLOAD %#x: %s",
			       d->ifname, offload, strerror(errno));
	}
	/* pair 0 only until the driver asks for more (5.1.6.5.5) */
	for (unsigned i = 1; i < d->max_pairs; i++) {
		tap_watch(d, &d->pair[i], false);
		tap_attach(d, &d->pair[i], false);
	}
	d->active_pairs = 1;
	return (int)served;
}

/* --- creation --- */

static void vnet_free(struct vnet *d)
{
	/* stops the thread, then vnet_cancel (drain) ends what we hold */
	virtio_dev_destroy(d->vd);
	for (unsigned i = 0; i < d->max_pairs; i++) {
		if (d->pair[i].fd >= 0)
			close(d->pair[i].fd);	/* a TAP we made goes too */
		free(d->pair[i].spill);
	}
	if (d->tap_epfd >= 0)
		close(d->tap_epfd);
	free(d);
}

static void vnet_destroy(void *opaque)
{
	vnet_free(opaque);
}

static uint64_t poll_ns_from_env(void)
{
	const char *s = getenv("VMM_NET_POLL_US");
	char *end;
	unsigned long v;

	if (!s || !*s)
		return VIRTIO_DEV_POLL_US * 1000ULL;
	v = strtoul(s, &end, 10);
	return *end || v > 100000 ? VIRTIO_DEV_POLL_US * 1000ULL :
	       v * 1000ULL;
}

/* Open queue i of the TAP (creating the interface when cfg names none).
 * 0, or an exit status with err set. */
static int open_tap(struct vnet *d, const struct vnet_cfg *c, unsigned i,
		    char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd, hdr = (int)VNET_HDR_LEN, e;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		errf(err, errlen, "%s: /dev/net/tun: %s", d->name, strerror(e));
		return VMM_EXIT_UNAVAILABLE;
	}
	d->pair[i].fd = fd;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (c->queues > 1)
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", i ? d->ifname :
		 c->tap ? c->tap : "vmmtap%d");
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		e = errno;
		if (e == EPERM || e == EACCES) {
			errf(err, errlen, "%s: TAP %s: no permission (needs "
			     "CAP_NET_ADMIN, or a TAP owned by this user)",
			     d->name, ifr.ifr_name);
			return VMM_EXIT_UNAVAILABLE;
		}
		if (e == EBUSY) {
			errf(err, errlen, "%s: TAP %s is busy (in use by another "
			     "process%s)", d->name, ifr.ifr_name,
			     c->queues > 1 ? " or all its queues taken" : "");
			return VMM_EXIT_UNAVAILABLE;
		}
		if (e == EINVAL) {
			errf(err, errlen, "%s: %s is not a TAP interface%s",
			     d->name, ifr.ifr_name, c->queues > 1 ?
			     " created with multi_queue (queues>1 needs one)" :
			     " (a TUN, or a multi_queue TAP: give queues=N)");
			return VMM_EXIT_BAD_INPUT;
		}
		errf(err, errlen, "%s: TAP %s: %s", d->name, ifr.ifr_name,
		     strerror(e));
		return VMM_EXIT_UNAVAILABLE;
	}
	if (i == 0)
		snprintf(d->ifname, sizeof(d->ifname), "%s", ifr.ifr_name);
	d->pair[i].attached = true;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		e = errno;
		errf(err, errlen, "%s: TAP %s: cannot set the virtio header: %s",
		     d->name, d->ifname, strerror(e));
		return VMM_EXIT_UNAVAILABLE;
	}
	return 0;
}

/* Interface ioctls (MTU, up) through a throwaway socket. */
static int if_ioctl(unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r, e;

	if (s < 0)
		return -errno;
	r = ioctl(s, req, ifr);
	e = errno;
	close(s);
	return r < 0 ? -e : 0;
}

static int setup_interface(struct vnet *d, const struct vnet_cfg *c,
			   char *err, size_t errlen)
{
	struct ifreq ifr;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", d->ifname);
	if (c->mtu) {
		ifr.ifr_mtu = (int)c->mtu;
		r = if_ioctl(SIOCSIFMTU, &ifr);
		if (r < 0) {
			errf(err, errlen, "%s: TAP %s: cannot set MTU %u: %s",
			     d->name, d->ifname, c->mtu, strerror(-r));
			return r == -EINVAL ? VMM_EXIT_BAD_INPUT :
			       VMM_EXIT_UNAVAILABLE;
		}
	}
	r = if_ioctl(SIOCGIFMTU, &ifr);
	if (r < 0) {
		errf(err, errlen, "%s: TAP %s: cannot read its MTU: %s",
		     d->name, d->ifname, strerror(-r));
		return VMM_EXIT_UNAVAILABLE;
	}
	d->mtu = ifr.ifr_mtu > 65535 ? 65535 : (uint16_t)ifr.ifr_mtu;
	if (d->created) {
		r = if_ioctl(SIOCGIFFLAGS, &ifr);
		ifr.ifr_flags |= IFF_UP;
		if (r == 0)
			r = if_ioctl(SIOCSIFFLAGS, &ifr);
		if (r < 0) {
			errf(err, errlen, "%s: TAP %s: cannot bring it up: %s",
			     d->name, d->ifname, strerror(-r));
			return VMM_EXIT_UNAVAILABLE;
		}
	}
	return 0;
}

/* A locally administered MAC that stays the same for the same TAP name:
 * 52:54:00 and three bytes of an FNV-1a hash. */
static void default_mac(const char *ifname, uint8_t mac[6])
{
	uint32_t h = 2166136261u;

	for (const char *s = ifname; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

static const struct virtio_dev_class vnet_class_template = {
	.device_id = VIRTIO_ID_NET,
	.queue_max = VNET_QUEUE_SIZE,
	.config_size = CFG_SIZE,
	.config_read = vnet_config_read,
	.config_write = NULL,
	.activate = vnet_activate,
	.work = vnet_work,
	.before_sleep = vnet_before_sleep,
	.cancel = vnet_cancel,
	.reset = vnet_reset,
	.drain = vnet_cancel,
	.quiesce = vnet_quiesce,
};

/* One class per queue-pair count: num_queues is part of the class. */
static struct virtio_dev_class vnet_class[VNET_MAX_PAIRS + 1];
static pthread_once_t vnet_class_once = PTHREAD_ONCE_INIT;

static void vnet_class_init(void)
{
	for (unsigned n = 1; n <= VNET_MAX_PAIRS; n++) {
		vnet_class[n] = vnet_class_template;
		vnet_class[n].num_queues = 2 * n + (n > 1 ? 1 : 0);
	}
}

static int vnet_create(struct vm *vm, const void *cfg, char *err,
		       size_t errlen)
{
	const struct vnet_cfg *c = cfg;
	struct vnet *d;
	uint64_t features;
	int st = VMM_EXIT_INTERNAL;

	pthread_once(&vnet_class_once, vnet_class_init);
	d = calloc(1, sizeof(*d) + c->queues * sizeof(d->pair[0]));
	if (!d) {
		errf(err, errlen, "virtio-net: out of memory");
		return VMM_EXIT_INTERNAL;
	}
	d->vm = vm;
	d->max_pairs = c->queues;
	d->tap_epfd = -1;
	d->active_pairs = 1;
	d->status = VIRTIO_NET_S_LINK_UP;
	d->created = !c->tap;
	snprintf(d->name, sizeof(d->name), "virtio-net%u", c->index);
	for (unsigned i = 0; i < d->max_pairs; i++) {
		d->pair[i].fd = -1;
		d->pair[i].index = i;
		d->pair[i].rxq = 2 * i;
		d->pair[i].txq = 2 * i + 1;
		d->pair[i].spill = malloc(SPILL_BYTES);
		if (!d->pair[i].spill) {
			errf(err, errlen, "%s: out of memory", d->name);
			goto fail;
		}
	}
	if (c->tap && !if_nametoindex(c->tap)) {
		errf(err, errlen, "%s: TAP %s: no such interface (create it "
		     "first: ip tuntap add dev %s mode tap%s)", d->name, c->tap,
		     c->tap, c->queues > 1 ? " multi_queue" : "");
		st = VMM_EXIT_BAD_INPUT;
		goto fail;
	}
	for (unsigned i = 0; i < d->max_pairs; i++) {
		st = open_tap(d, c, i, err, errlen);
		if (st)
			goto fail;
	}
	st = setup_interface(d, c, err, errlen);
	if (st)
		goto fail;
	if (c->mac_set)
		memcpy(d->mac, c->mac, 6);
	else
		default_mac(d->ifname, d->mac);

	st = VMM_EXIT_INTERNAL;
	d->tap_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->tap_epfd < 0) {
		errf(err, errlen, "%s: %s", d->name, strerror(errno));
		goto fail;
	}
	for (unsigned i = 0; i < d->max_pairs; i++) {
		/* in the set but not watched until DRIVER_OK */
		struct epoll_event ev = { .events = 0, .data.u32 = i };

		if (epoll_ctl(d->tap_epfd, EPOLL_CTL_ADD, d->pair[i].fd,
			      &ev) < 0) {
			errf(err, errlen, "%s: epoll: %s", d->name,
			     strerror(errno));
			goto fail;
		}
	}
	features = 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_MTU |
		   1ULL << VIRTIO_NET_F_STATUS | 1ULL << VIRTIO_NET_F_CSUM |
		   1ULL << VIRTIO_NET_F_GUEST_CSUM |
		   1ULL << VIRTIO_NET_F_HOST_TSO4 |
		   1ULL << VIRTIO_NET_F_HOST_TSO6 |
		   1ULL << VIRTIO_NET_F_GUEST_TSO4 |
		   1ULL << VIRTIO_NET_F_GUEST_TSO6 |
		   1ULL << VIRTIO_NET_F_MRG_RXBUF |
		   1ULL << VIRTIO_F_EVENT_IDX | 1ULL << VIRTIO_F_INDIRECT_DESC;
	if (d->max_pairs > 1)
		features |= 1ULL << VIRTIO_NET_F_MQ |
			    1ULL << VIRTIO_NET_F_CTRL_VQ;
	d->vd = virtio_dev_create(vm, d->name, &vnet_class[d->max_pairs], d,
				  features, err, errlen);
	if (!d->vd)
		goto fail;
	virtio_dev_set_poll_ns(d->vd, poll_ns_from_env());
	if (virtio_dev_add_fd(d->vd, d->tap_epfd, vnet_on_tap) < 0) {
		errf(err, errlen, "%s: cannot watch the TAP", d->name);
		goto fail;
	}
	if (virtio_dev_start(d->vd, err, errlen) < 0)
		goto fail;
	if (vm_add_device(vm, d->name, vnet_destroy, d) < 0) {
		errf(err, errlen, "%s: cannot register the device", d->name);
		goto fail;
	}
	if (d->created)
		vm_log(d->name, "created TAP %s (removed on exit)", d->ifname);
	return 0;
fail:
	vnet_free(d);
	return st;
}

/* --- the --net option --- */

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &end) != 6 || strlen(s) != 17)
		return -1;
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	/* a unicast address: multicast bit clear, not all zeroes */
	if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] |
			      mac[5]))
		return -1;
	return 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int vnet_parse(char *s, void *cfg, unsigned index, char *err,
		      size_t errlen)
{
	struct vnet_cfg *c = cfg;
	char *save = NULL, *kv;

	memset(c, 0, sizeof(*c));
	c->index = index;
	c->queues = 1;
	for (kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');

		if (!v)
			return errf(err, errlen, "'%s' is not key=value", kv);
		*v++ = '\0';
		if (!strcmp(kv, "tap")) {
			if (!*v || strlen(v) >= IFNAMSIZ || strchr(v, '/') ||
			    strchr(v, '%'))
				return errf(err, errlen, "tap=%s: not an "
					    "interface name (1-%d characters)",
					    v, IFNAMSIZ - 1);
			c->tap = v;
		} else if (!strcmp(kv, "mac")) {
			if (parse_mac(v, c->mac) < 0)
				return errf(err, errlen, "mac=%s: expected a "
					    "unicast xx:xx:xx:xx:xx:xx", v);
			c->mac_set = true;
		} else if (!strcmp(kv, "queues")) {
			if (parse_uint(v, 1, VNET_MAX_PAIRS, &c->queues) < 0)
				return errf(err, errlen, "queues=%s: expected "
					    "1-%d queue pairs", v,
					    VNET_MAX_PAIRS);
		} else if (!strcmp(kv, "mtu")) {
			if (parse_uint(v, 68, 65535, &c->mtu) < 0)
				return errf(err, errlen, "mtu=%s: expected "
					    "68-65535", v);
		} else {
			return errf(err, errlen, "unknown key '%s' (tap, mac, "
				    "queues, mtu)", kv);
		}
	}
	return 0;
}

const struct device_type virtio_net_type = {
	.option = "net",
	.usage =
"  --net [tap=NAME][,mac=52:54:00:xx:xx:xx][,queues=N][,mtu=M]\n"
"                         a virtio-net NIC on an existing TAP (without tap=,\n"
"                         as root, a new vmmtapN that goes with the VM)\n",
	.max = VNET_MAX_DEVICES,
	.config_size = sizeof(struct vnet_cfg),
	.parse = vnet_parse,
	.create = vnet_create,
};
