/* devices/virtio_vsock.h - virtio-vsock (virtio 1.2, 5.10) bridged to host
 * Unix sockets with Firecracker's protocol (docs/vsock.md there; README
 * "vsock" here):
 *
 *   --vsock cid=N,uds=PATH
 *
 * Host-initiated: a host process connects to PATH and writes
 * "CONNECT <port>\n"; once the guest accepted, vmm answers
 * "OK <host_port>\n" and bytes flow both ways.  Guest-initiated: a guest
 * connection to host port P (CID 2) is connected to the Unix socket
 * "PATH_P"; nobody there and the guest gets an RST.
 *
 * Bounds (what a guest can make vmm hold): at most VSOCK_MAX_CONNS
 * connections (host- and guest-initiated, pending ones included), each with
 * a buffer of at most VSOCK_BUF_ALLOC bytes for guest data the host socket
 * did not take yet (the credit we grant; allocated only while data waits),
 * and VSOCK_CTRL_QUEUE queued resets for packets that belong to no
 * connection: 32 x 1 MiB = 32 MiB at most, plus a few KiB of state.
 * (A large window is what lets a guest stream without waiting for credit
 * updates, each of which costs it an exit or two.)
 *
 * Threads: one device thread (an event loop) does all socket and ring
 * work; create/destroy on the VMM's thread, activate/reset on vCPU threads
 * (through the transport).
 */
#ifndef DEVICES_VIRTIO_VSOCK_H
#define DEVICES_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "devices/registry.h"

struct vm;
struct vsock_dev;

struct virtio_vsock_cfg {
	uint64_t cid;		/* guest CID, >= 3 */
	const char *uds;	/* host Unix socket path */
};

/* --vsock: option "vsock", at most one per VM. */
extern const struct device_type virtio_vsock_type;

/* The device as built (for tests and the snapshot code); NULL and one line
 * in err on failure. */
struct vsock_dev *virtio_vsock_create(struct vm *vm,
				      const struct virtio_vsock_cfg *cfg,
				      char *err, size_t errlen);

/* Drop every connection (host sockets closed) and tell the driver with a
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET event on the event queue, delivered as
 * soon as it has an event buffer.  For snapshot restore; also done by
 * itself after the driver resets and restarts the device.  Any thread. */
void virtio_vsock_transport_reset(struct vsock_dev *d);

/* Limits (see above) */
#define VSOCK_HOST_CID		2
#define VSOCK_QUEUE_SIZE	256
#define VSOCK_MAX_CONNS		32
#define VSOCK_BUF_ALLOC		(1U << 20)	/* our receive buffer, per connection */
#define VSOCK_MAX_PKT		(64U << 10)	/* payload of one packet */
#define VSOCK_CTRL_QUEUE	256
#define VSOCK_CONNECT_LINE_MAX	32		/* "CONNECT <port>\n", as Firecracker */
#define VSOCK_LOCAL_PORT_FIRST	(1U << 30)	/* host ports of host-initiated connections */
#define VSOCK_REQUEST_TIMEOUT_MS	2000	/* guest answers a REQUEST */
#define VSOCK_SHUTDOWN_TIMEOUT_MS	2000	/* guest answers our SHUTDOWN */
#define VSOCK_LINE_TIMEOUT_MS	30000	/* host sends its CONNECT line */
#define VSOCK_RESET_SETTLE_MS	5000	/* at most this long after a TRANSPORT_RESET,
					   host connections wait for the guest to
					   have handled it */

#endif
