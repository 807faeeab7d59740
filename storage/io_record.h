/* storage/io_record.h - a test seam: the log of every write and barrier
 * that reaches an image file, from which tools/blkreplay rebuilds the image
 * as a power cut would leave it (tests/integration/storage-powerloss.sh).
 *
 * Off unless VMM_IO_RECORD=PATH is set when the first io_engine is created,
 * or a test calls io_record_start().  Then, in the order they complete:
 *  - every data change reaching a file: the io_engine's writes and
 *    fallocates, and the synchronous writes backends make outside it
 *    (qcow2 metadata), each with a sequence number;
 *  - every barrier (fsync/fdatasync) when it completes, with how many data
 *    records it covers: those logged before it was *started* (a write that
 *    completes while a sync runs may or may not be durable, so the replay
 *    counts it as not).
 * A crash keeps at least what a completed barrier covers; the replay builds
 * exactly that (and random mixes of what came after).  Thread safe; when
 * off, each hook costs one relaxed load.
 */
#ifndef STORAGE_IO_RECORD_H
#define STORAGE_IO_RECORD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define IO_REC_MAGIC	0x31435256u	/* "VRC1" */

enum io_rec_type {
	IO_REC_WRITE = 1,	/* len data bytes follow the record */
	IO_REC_ZERO,		/* [off, off + len) reads as zeroes */
	IO_REC_EXTEND,		/* the file is at least off + len bytes */
	IO_REC_FLUSH,		/* io_engine fsync (a FLUSH reaching the file) */
	IO_REC_SYNC,		/* a backend's own barrier (metadata order) */
};

struct io_rec {
	uint32_t magic;
	uint32_t type;
	uint64_t dev, ino;	/* which file */
	uint64_t off, len;
	/* data records: their number (0, 1, ...; over all files);
	 * barriers: how many data records they cover (numbers below this) */
	uint64_t seq;
};

extern bool io_record_enabled;	/* read through io_record_on() */

static inline bool io_record_on(void)
{
	return __atomic_load_n(&io_record_enabled, __ATOMIC_RELAXED);
}

/* Start logging to path (truncated); 0 or -errno.  Stop closes the log. */
int io_record_start(const char *path);
void io_record_stop(void);
/* VMM_IO_RECORD=PATH: start once per process (io_engine_create calls it);
 * a log that cannot be opened is reported on stderr, once. */
void io_record_from_env(void);

/* Data records: call after the change reached the file. */
void io_record_writev(int fd, const struct iovec *iov, int iovcnt,
		      uint64_t off);
void io_record_write(int fd, const void *buf, uint64_t len, uint64_t off);
/* fallocate(mode) of [off, off + len) */
void io_record_fallocate(int fd, int mode, uint64_t off, uint64_t len);
/* Data records logged so far: what a barrier started now covers. */
uint64_t io_record_mark(void);
/* A barrier on fd completed; covers = io_record_mark() when it started. */
void io_record_barrier(int fd, uint64_t covers, enum io_rec_type type);
/* A synchronous fsync/fdatasync on fd just returned 0. */
void io_record_sync(int fd);

#endif
