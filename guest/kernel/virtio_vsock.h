/* guest/kernel/virtio_vsock.h - virtio-vsock driver of the test kernel (on
 * the shared transport of virtio.c).
 *
 * Stream connections only; the driver runs on the BSP.  vsock_poll() takes
 * what the device sent (rx queue), dispatches it to the connections and
 * gives the rx buffers back; sends queue packets and vsock_flush()
 * publishes them with one kick.  Credit: we advertise each connection's
 * buf_alloc and report fwd_cnt as its owner consumes (vsock_consumed()).
 */
#ifndef GUEST_KERNEL_VIRTIO_VSOCK_H
#define GUEST_KERNEL_VIRTIO_VSOCK_H

#include "virtio.h"

#define VSOCK_HOST_CID		2
#define VSOCK_MAX_CONNS		16
#define VSOCK_HDR		44
#define VSOCK_MAX_PKT		65536

/* ops and flags (virtio 1.2, 5.10.6) */
#define VSOCK_OP_REQUEST	1
#define VSOCK_OP_RESPONSE	2
#define VSOCK_OP_RST		3
#define VSOCK_OP_SHUTDOWN	4
#define VSOCK_OP_RW		5
#define VSOCK_OP_CREDIT_UPDATE	6
#define VSOCK_OP_CREDIT_REQUEST	7
#define VSOCK_SHUT_RCV		1
#define VSOCK_SHUT_SEND		2
#define VSOCK_TYPE_STREAM	1

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

enum vsock_state { VS_FREE, VS_CONNECTING, VS_OPEN, VS_CLOSED };

struct vsock_conn {
	enum vsock_state state;
	uint32_t lport, pport;
	bool refused;			/* RST before RESPONSE */
	bool peer_no_send, peer_no_recv;	/* its SHUTDOWN flags */
	bool we_shut;
	/* the peer's buffer, as last heard, and what we sent into it */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	/* ours: what we advertise, what arrived, what the owner consumed */
	uint32_t buf_alloc, rx_cnt, fwd_cnt, last_fwd_sent;
	/* arrival callback: data of one packet (consume it or copy it) */
	void (*on_data)(struct vsock_conn *c, const uint8_t *p, uint32_t n);
	void *owner;
	uint64_t bytes_in, bytes_out;
};

struct vsock_dev {
	struct virtio_dev v;
	struct virtq rxq, txq, evq;
	uint64_t cid;
	bool ok;
	uint32_t listen_port;		/* 0: none */
	void (*on_accept)(struct vsock_conn *c);
	struct vsock_conn conns[VSOCK_MAX_CONNS];
	uint64_t events;		/* TRANSPORT_RESET events seen */
	uint64_t rsts_unknown;		/* RSTs for no connection */
	uint64_t bad_pkts;		/* packets the driver could not parse */
	uint32_t next_port;
};

extern struct vsock_dev *vsock;	/* NULL: no device */

/* Probe and start the first vsock device (rings kept for the run). */
void vsock_probe_all(void);
/* Reset and start again (rings re-used); 0 or -1. */
int vsock_reinit(void);

/* Take rx and tx completions; returns packets handled. */
unsigned vsock_poll(void);
/* Publish queued packets (one kick when the device asked). */
void vsock_flush(void);
/* Wait for the device: spin a little, then halt for its interrupt (a
 * 10 ms timer backs it up). */
void vsock_wait(void);
extern uint64_t vsock_spin_us;	/* the spinning, default 50 us */
void vsock_irqs(bool on);

/* Guest-initiated connection to host port; NULL if no slot. */
struct vsock_conn *vsock_connect(uint32_t port, uint32_t buf_alloc);
/* Send n bytes (at most the peer's credit and VSOCK_MAX_PKT, and the tx
 * ring's room): returns bytes queued.  copy=false: p must stay untouched
 * until the device used it (vsock_tx_idle()). */
uint32_t vsock_send(struct vsock_conn *c, const void *p, uint32_t n, bool copy);
uint32_t vsock_credit(const struct vsock_conn *c);
/* The owner consumed n bytes: our fwd_cnt; a credit update goes out when
 * the peer's view gets low. */
void vsock_consumed(struct vsock_conn *c, uint32_t n);
int vsock_ctrl(struct vsock_conn *c, uint16_t op, uint32_t flags);
/* A raw packet (hdr as given; payload copied up to 8 KiB, else used in
 * place): for hostile tests. */
int vsock_raw(const struct vsock_hdr *h, const void *p, uint32_t n);
void vsock_free_conn(struct vsock_conn *c);
bool vsock_tx_idle(void);
uint32_t vsock_status(void);

#endif
