/* devices/virtio_dev.h - what every virtio device needs besides its own
 * protocol: a device thread, the kick eventfd, the work loop with adaptive
 * ring polling, in-flight accounting, the reset handshake that drains
 * in-flight work, and the guest-error log.  A device supplies a
 * struct virtio_dev_class and keeps only its protocol (virtio_blk.c is the
 * model).
 *
 * Threads and the lock
 *   Each device has one thread (an event loop named after the device) and
 *   one lock.  Everything the class does runs with that lock held:
 *   - work, before_sleep and the fd handlers (virtio_dev_add_fd) on the
 *     device thread;
 *   - activate and reset on the vCPU thread that wrote the status register
 *     (the transport's lock is held too);
 *   - drain on the thread tearing the device down (virtio_dev_destroy).
 *   config_read/config_write run on vCPU threads under the transport's
 *   lock only: keep the config space to itself (or take your own lock).
 *   A vCPU that wants the lock (activate/reset) makes the work loop yield
 *   at once; the loop also yields every millisecond so that teardown and
 *   the other fds on the thread get a turn.
 *
 * The work loop (device thread)
 *   A queue notify, the kick, or a handler that reports completions runs
 *   the loop: with notifies suppressed it calls work() until a round
 *   neither pops nor completes anything, publishes the used rings once per
 *   round and interrupts the guest at most once per round (EVENT_IDX
 *   permitting).  While there is work, and for poll_ns after it, it polls
 *   the rings instead of sleeping: a guest that streams requests then costs
 *   no notify exits.  Windows that expire empty (an idle guest, or device
 *   thread and vCPU on one core) turn polling off for a number of wake-ups
 *   that doubles with each streak.  Before sleeping it calls before_sleep()
 *   (drain completion eventfds the polls left set) and re-enables notifies.
 *
 * Requests
 *   work() pops with virtio_dev_pop() (the head is then in flight and the
 *   device owns its buffers), and ends each chain with virtio_dev_complete()
 *   (a used entry, published at the end of the round) or, when the chain
 *   cannot be answered at all, virtio_dev_abandon() (NEEDS_RESET).  Guest
 *   memory (buffers, status bytes) may be written only while
 *   virtio_dev_active(): after a reset starts, completions only end the
 *   accounting.  A device out of request slots calls virtio_dev_stall():
 *   the loop then sleeps with notifies off until a completion handler
 *   reports progress.
 *
 * Reset: the vCPU takes the lock, marks the device inactive and waits until
 *   every popped chain is completed or abandoned (the device thread keeps
 *   reaping through its handlers meanwhile), then calls reset().  When the
 *   status write returns, nothing touches the rings or guest buffers.
 *
 * Guest errors: virtio_dev_guest_error() only (devices/guest_log.h): one
 *   budget per device, shared with the transport and the queues.
 */
#ifndef DEVICES_VIRTIO_DEV_H
#define DEVICES_VIRTIO_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio_mmio.h"
#include "devices/virtqueue.h"

struct vm;
struct virtio_dev;

/* What a kind of virtio device provides.  dev is the device's own state
 * (the opaque given to virtio_dev_create). */
struct virtio_dev_class {
	uint32_t device_id;		/* VIRTIO_ID_* (<linux/virtio_ids.h>) */
	unsigned num_queues;		/* <= VIRTIO_MMIO_MAX_QUEUES */
	uint16_t queue_max;		/* QueueNumMax of every queue */
	uint32_t config_size;		/* bytes of device config space */
	/* off + size <= config_size (checked).  vCPU thread. */
	void (*config_read)(void *dev, uint32_t off, void *data,
			    unsigned size);
	void (*config_write)(void *dev, uint32_t off, const void *data,
			     unsigned size);	/* NULL: read-only */
	/* DRIVER_OK with the negotiated features.  Look at the queues the
	 * driver set up (virtio_dev_queue) and return how many, from queue
	 * 0, the device serves (others are ignored), or -1 after a
	 * virtio_dev_guest_error() line: the device is not started and
	 * reports NEEDS_RESET.  vCPU thread, lock held. */
	int (*activate)(void *dev, uint64_t features);
	/* One round: pop what is available, start it, reap what finished.
	 * Returns how much moved (popped + completed); 0 ends the busy part
	 * of the loop.  Device thread, lock held, device active. */
	int (*work)(void *dev);
	/* About to sleep: drain completion sources the polls left signalled;
	 * > 0 if that completed something (the loop goes on).  NULL: none. */
	int (*before_sleep)(void *dev);
	/* A reset begins (the device is inactive now): end, with
	 * virtio_dev_complete (which only counts now), the chains the device
	 * holds with nothing pending on them -- receive buffers posted ahead,
	 * say -- or the reset would wait for them forever.  vCPU thread, lock
	 * held.  NULL: none. */
	void (*cancel)(void *dev);
	/* After a reset drained: forget per-activation state.  vCPU thread,
	 * lock held.  NULL: none. */
	void (*reset)(void *dev);
	/* Teardown, after the device thread stopped: wait on this thread for
	 * the work still in flight (its completions call
	 * virtio_dev_complete, which only does the accounting now).  Lock
	 * held.  NULL: nothing is ever left in flight. */
	void (*drain)(void *dev);
	/* A snapshot is being taken (vCPUs parked, device active): end the
	 * chains held with nothing pending on them (receive buffers taken
	 * ahead) with virtio_dev_complete and a length of 0 -- the driver
	 * recycles them -- so nothing is left in flight.  Lock held.  NULL:
	 * the device holds nothing idle. */
	void (*quiesce)(void *dev);
	/* The device was restored from a snapshot (transport and queues as
	 * they were, activated again if they were running): drop what only
	 * the old run had (host connections).  Restore thread, nothing runs
	 * in the guest yet.  NULL: nothing to do. */
	void (*restored)(void *dev);
};

/* Build the device: its thread (not started), kick eventfd and virtio-mmio
 * transport (window, IRQ, ioeventfds, irqfd).  features: what the device
 * offers (VERSION_1 is added).  NULL and one line in err on failure, with
 * nothing left behind but the claimed window. */
struct virtio_dev *virtio_dev_create(struct vm *vm, const char *name,
				     const struct virtio_dev_class *cls,
				     void *dev, uint64_t features,
				     char *err, size_t errlen);
/* Also run fn(dev) on the device thread, lock held, whenever fd is
 * readable (e.g. an io_engine's completion eventfd).  fn returns > 0 when
 * it completed requests: the work loop then runs (or, after a guest error,
 * the used ring is published).  Before virtio_dev_start.  0 or -1. */
int virtio_dev_add_fd(struct virtio_dev *vd, int fd, int (*fn)(void *dev));
/* Start the device thread.  0, or -1 with one line in err. */
int virtio_dev_start(struct virtio_dev *vd, char *err, size_t errlen);
/* Stop the thread, drain (class->drain), remove the transport and free.
 * The vCPUs must no longer run.  NULL is fine. */
void virtio_dev_destroy(struct virtio_dev *vd);

/* ---- for the class callbacks (lock held) ---- */

/* Queue i as the driver set it up at DRIVER_OK (NULL: not set up, or not
 * served).  In activate: all of the driver's; after it: the served ones. */
struct virtq *virtio_dev_queue(struct virtio_dev *vd, unsigned i);
/* How many queues the device serves (activate's answer; 0 when inactive). */
unsigned virtio_dev_num_queues(const struct virtio_dev *vd);
/* DRIVER_OK and not reset: the device may touch rings and guest memory. */
bool virtio_dev_active(const struct virtio_dev *vd);
/* Features negotiated at DRIVER_OK. */
uint64_t virtio_dev_features(const struct virtio_dev *vd);

/* Pop the next chain of served queue qi.  1: popped (in flight until
 * virtio_dev_complete/abandon); 0: nothing (empty, not served, inactive
 * or broken); -1: the ring is broken (logged; device in NEEDS_RESET). */
int virtio_dev_pop(struct virtio_dev *vd, unsigned qi, struct virtq_elem *e,
		   struct iovec *iov, unsigned max_iov);
/* End chain head of queue qi: a used entry of len bytes written (only
 * while active), published at the end of the round. */
void virtio_dev_complete(struct virtio_dev *vd, unsigned qi, uint16_t head,
			 uint32_t len);
/* End a popped chain that cannot be answered (e.g. no status byte): no
 * used entry; the device enters NEEDS_RESET.  Log why first. */
void virtio_dev_abandon(struct virtio_dev *vd, unsigned qi);
/* The guest broke the rules beyond a per-request error: NEEDS_RESET, no
 * more work until the driver resets the device. */
void virtio_dev_set_broken(struct virtio_dev *vd);
/* No request slot free: stop popping until a completion frees one. */
void virtio_dev_stall(struct virtio_dev *vd);
/* How long the loop polls after the last work (0: never).  Default
 * VIRTIO_DEV_POLL_US. */
void virtio_dev_set_poll_ns(struct virtio_dev *vd, uint64_t ns);
#define VIRTIO_DEV_POLL_US	200

/* A line about something the guest did, from the device's budget. */
void virtio_dev_guest_error(struct virtio_dev *vd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The device's name ("virtio-blk0") for host-side vm_log() lines. */
const char *virtio_dev_name(const struct virtio_dev *vd);
/* The transport, for what this API does not wrap
 * (virtio_mmio_config_changed, ...). */
struct virtio_mmio *virtio_dev_transport(struct virtio_dev *vd);

#endif
