/* guest/kernel/virtio_net.h - the test kernel's virtio-net driver (one
 * queue pair, on the shared transport and virtqueue of virtio.h).
 *
 * Descriptors map one to one onto buffers and are never freed: RX
 * descriptor i is receive buffer i (net_rxbuf bytes, made available again
 * after use), TX descriptor i is the caller's frame slot i (12-byte virtio
 * header, then the frame).  The driver runs on the BSP only; interrupts are
 * suppressed unless a waiter arms one.
 */
#ifndef GUEST_KERNEL_VIRTIO_NET_H
#define GUEST_KERNEL_VIRTIO_NET_H

#include "virtio.h"

#define MAX_NET		4

/* virtio 1.2, 5.1.3 */
#define VIRTIO_NET_F_CSUM	0
#define VIRTIO_NET_F_GUEST_CSUM	1
#define VIRTIO_NET_F_MTU	3
#define VIRTIO_NET_F_MAC	5
#define VIRTIO_NET_F_GUEST_TSO4	7
#define VIRTIO_NET_F_GUEST_TSO6	8
#define VIRTIO_NET_F_HOST_TSO4	11
#define VIRTIO_NET_F_HOST_TSO6	12
#define VIRTIO_NET_F_MRG_RXBUF	15
#define VIRTIO_NET_F_STATUS	16
#define VIRTIO_NET_F_CTRL_VQ	17
#define VIRTIO_NET_F_MQ		22
#define VIRTIO_NET_S_LINK_UP	1

#define VIRTIO_NET_HDR_F_NEEDS_CSUM	1
#define VIRTIO_NET_HDR_GSO_NONE		0
#define VIRTIO_NET_HDR_GSO_TCPV4	1

struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
#define NET_HDR_LEN	12

#define NET_QUEUE_WANT	256
#define NET_RXBUF	4096	/* with MRG_RXBUF */

struct net_dev {
	struct virtio_dev v;		/* transport, features, irqs, notifies */
	unsigned index;			/* dev=N */
	bool ok;
	uint8_t mac[6];
	uint16_t mtu;
	uint16_t max_pairs;
	struct virtq rx, tx;
	uint32_t rxbuf;			/* bytes per receive buffer */
	uint8_t *rx_mem;		/* rx.qsize buffers */
	uint16_t rx_posted;		/* buffers the device holds */
	/* TX slots the caller provides (net_tx_slots) */
	uint8_t *tx_mem;
	uint32_t tx_slot;		/* bytes per slot */
	uint16_t tx_inflight;
	bool *tx_busy;			/* [tx.qsize] */
	uint64_t spin_us;		/* wait: spin, then halt (~0: poll) */
	bool use_irq;
	/* statistics */
	uint64_t tx_frames, rx_frames, rx_bad;
};

extern struct net_dev net_devs[MAX_NET];
extern unsigned nnet;

unsigned net_probe(void);
struct net_dev *net_get(unsigned index);
int net_reinit(struct net_dev *d);
uint16_t net_link_status(struct net_dev *d);

/* TX: the caller's slots (count x slot_bytes, slot i = descriptor i).
 * net_tx_slot() points at slot i's header; the frame follows it. */
void net_tx_slots(struct net_dev *d, uint8_t *mem, uint32_t slot_bytes);
static inline uint8_t *net_tx_slot(struct net_dev *d, unsigned i)
{
	return d->tx_mem + (uint64_t)i * d->tx_slot;
}
/* Queue slot i with a frame of len bytes (the header already written);
 * visible to the device after net_tx_kick.  -1 if the slot is busy. */
int net_tx_queue(struct net_dev *d, unsigned i, uint32_t len);
void net_tx_kick(struct net_dev *d);
/* Reclaim sent slots; returns how many. */
unsigned net_tx_reclaim(struct net_dev *d);

/* RX: one received frame, as up to NET_MAX_SEGS pieces of receive buffers
 * (the first starts with the virtio header). */
#define NET_MAX_SEGS	32
struct net_frame {
	unsigned nseg;
	uint8_t *seg[NET_MAX_SEGS];
	uint32_t len[NET_MAX_SEGS];
	uint16_t desc[NET_MAX_SEGS];
	uint32_t total;			/* bytes, header included */
};
/* Next complete frame, or 0 when none is there (yet).  The buffers stay
 * the caller's until net_rx_done(); -1: the device broke the protocol
 * (bad id, num_buffers beyond what it used). */
int net_rx_next(struct net_dev *d, struct net_frame *f);
/* Give the frame's buffers back (visible after net_rx_kick). */
void net_rx_done(struct net_dev *d, const struct net_frame *f);
void net_rx_kick(struct net_dev *d);
/* Copy len bytes at offset off of the frame (header included). */
uint32_t net_frame_copy(const struct net_frame *f, uint32_t off, void *out,
			uint32_t len);

/* Waiting: NET_SPIN_POLL spins only; else spin spin_us, then arm an
 * interrupt on both queues and halt (a 10 ms timer backs it up). */
#define NET_SPIN_POLL	UINT64_MAX
#define NET_SPIN_DEFAULT 50
void net_set_wait(struct net_dev *d, uint64_t spin_us);
/* Wait until either queue has used entries (or a short while). */
void net_wait(struct net_dev *d);

#endif
