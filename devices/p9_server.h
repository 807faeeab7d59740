/* devices/p9_server.h - a 9P2000.L file server for one host directory.
 *
 * Knows nothing of virtio: a request is a T-message in an iovec list and
 * room for the R-message in another (for virtio-9p, the two halves of a
 * descriptor chain), so tests and fuzzers drive it with plain buffers.
 *
 * Confinement by construction: a fid holds file descriptors, never a path.
 * Names are single components resolved one at a time against their parent's
 * descriptor (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV), ".." at the share's root stays
 * there, symlinks are never followed, only regular files and directories
 * are ever opened, and readonly shares refuse every change with EROFS.
 * docs/9p-security.md has the whole model.
 *
 * Memory a guest can make the server hold is bounded: P9_MAX_FIDS fids
 * (each a few hundred bytes and up to three descriptors), at most
 * P9_MAX_XATTR_FIDS extended-attribute buffers of up to P9_MAX_XATTR_SIZE,
 * at most P9_MAX_PARKED parked lock requests, and a fixed directory-read
 * buffer.  Data moves with preadv/pwritev straight between the host file
 * and the request's iovecs (guest memory, for virtio).
 *
 * Not thread safe: one thread (the device's) calls everything.
 */
#ifndef DEVICES_P9_SERVER_H
#define DEVICES_P9_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define P9_MAX_MSIZE		(4U << 20)	/* largest msize we agree to */
#define P9_MIN_MSIZE		4096
#define P9_MAX_FIDS		4096
#define P9_MAX_XATTR_FIDS	16
#define P9_MAX_XATTR_SIZE	65536
#define P9_MAX_PARKED		64	/* blocking locks waiting at once */

struct p9_server;

struct p9_server_opts {
	const char *path;	/* the shared directory */
	bool readonly;
	/* Where lines about malformed messages go (a guest can send them
	 * as fast as it likes: the callee rations them).  NULL: nowhere. */
	void (*log)(void *opaque, const char *msg);
	void *log_opaque;
};

/* One request.  The caller fills in the iovecs and keeps them (and the
 * memory they point to) valid until the request completes. */
struct p9_req {
	const struct iovec *in;		/* the T-message */
	unsigned n_in;
	const struct iovec *out;	/* room for the R-message */
	unsigned n_out;
	uint32_t reply_len;		/* R-message bytes, once complete */
	void *opaque;			/* the caller's */
	/* server-private: a blocking lock waiting for its range */
	struct p9_req *parked_next;
	uint32_t parked_fid;
	uint16_t tag;
	uint8_t lock_type;
	uint64_t lock_start, lock_len;
	uint64_t parked_gen;
};

/* Open the share.  NULL with one line in err when path is not a directory
 * we can open, or /proc/self/fd is missing (regular files are opened
 * through it from their O_PATH descriptors). */
struct p9_server *p9_server_create(const struct p9_server_opts *o, char *err,
				   size_t errlen);
void p9_server_destroy(struct p9_server *s);

/* Called for each request that completes after p9_server_handle() parked
 * it (a blocking lock that got its range, or was flushed). */
void p9_server_set_complete(struct p9_server *s,
			    void (*fn)(void *opaque, struct p9_req *r),
			    void *opaque);

/* Serve one request.  1: complete, r->reply_len is the R-message length
 * (0 when the reply room cannot even hold an Rlerror, which the caller
 * should treat as a broken request).  0: parked (a blocking lock): it
 * completes later through the complete callback, from
 * p9_server_retry_parked() or a later p9_server_handle(). */
int p9_server_handle(struct p9_server *s, struct p9_req *r);

/* Try the parked locks again (call every few ms while any are parked:
 * their holders may be host processes).  Returns how many stay parked. */
unsigned p9_server_retry_parked(struct p9_server *s);
unsigned p9_server_parked(const struct p9_server *s);
/* End every parked request without writing a reply (reply_len 0), through
 * the complete callback: the transport is going away or resetting. */
void p9_server_cancel_parked(struct p9_server *s);

/* The transport was reset: forget every fid (closing its descriptors,
 * which drops its locks) and every parked request, without replies. */
void p9_server_reset(struct p9_server *s);

/* The negotiated msize (0 before Tversion). */
uint32_t p9_server_msize(const struct p9_server *s);
/* Fids in use (for tests). */
unsigned p9_server_fids(const struct p9_server *s);

#endif
