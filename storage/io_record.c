/* storage/io_record.c - the write/barrier log of io_record.h (tests only).
 * One process-wide log: records from every device thread go through one
 * mutex, so the log order is the order the completions were seen. */
#include "storage/io_record.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool io_record_enabled;

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static int rec_fd = -1;
static uint64_t rec_seq;	/* data records so far */
static bool rec_failed;

int io_record_start(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
		      0644);

	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&rec_lock);
	if (rec_fd >= 0)
		close(rec_fd);
	rec_fd = fd;
	rec_seq = 0;
	rec_failed = false;
	__atomic_store_n(&io_record_enabled, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&rec_lock);
	return 0;
}

void io_record_stop(void)
{
	pthread_mutex_lock(&rec_lock);
	__atomic_store_n(&io_record_enabled, false, __ATOMIC_RELAXED);
	if (rec_fd >= 0)
		close(rec_fd);
	rec_fd = -1;
	pthread_mutex_unlock(&rec_lock);
}

void io_record_from_env(void)
{
	static bool tried;
	const char *path;
	int ret;

	pthread_mutex_lock(&rec_lock);
	if (tried) {
		pthread_mutex_unlock(&rec_lock);
		return;
	}
	tried = true;
	pthread_mutex_unlock(&rec_lock);
	path = getenv("VMM_IO_RECORD");
	if (!path || !*path)
		return;
	ret = io_record_start(path);
	if (ret)
		fprintf(stderr, "vmm: VMM_IO_RECORD=%s: %s (not recording)\n",
			path, strerror(-ret));
}

/* A log we cannot write makes the replay wrong, not just short: say so
 * once, and stop (the replay then sees a truncated log). */
static void put(const void *p, size_t n)
{
	const char *c = p;

	while (n && !rec_failed) {
		ssize_t w = write(rec_fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "vmm: io record log: %s; recording "
				"stopped\n", w < 0 ? strerror(errno) : "short write");
			rec_failed = true;
			return;
		}
		c += w;
		n -= (size_t)w;
	}
}

static void fill_file(struct io_rec *r, int fd)
{
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->magic = IO_REC_MAGIC;
	if (fstat(fd, &st) == 0) {
		r->dev = (uint64_t)st.st_dev;
		r->ino = (uint64_t)st.st_ino;
	}
}

/* One record: its header, then the iovcnt pieces of payload (a write's
 * data; none for a range), under one sequence number. */
static void record(int fd, enum io_rec_type type, uint64_t off, uint64_t len,
		   const struct iovec *iov, int iovcnt)
{
	struct io_rec r;

	fill_file(&r, fd);
	r.type = type;
	r.off = off;
	r.len = len;
	pthread_mutex_lock(&rec_lock);
	if (rec_fd >= 0) {
		r.seq = rec_seq++;
		put(&r, sizeof(r));
		for (int i = 0; i < iovcnt; i++)
			put(iov[i].iov_base, iov[i].iov_len);
	}
	pthread_mutex_unlock(&rec_lock);
}

void io_record_writev(int fd, const struct iovec *iov, int iovcnt,
		      uint64_t off)
{
	uint64_t len = 0;

	if (!io_record_on())
		return;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	record(fd, IO_REC_WRITE, off, len, iov, iovcnt);
}

void io_record_write(int fd, const void *buf, uint64_t len, uint64_t off)
{
	struct iovec v = { (void *)buf, len };

	io_record_writev(fd, &v, 1, off);
}

void io_record_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	if (!io_record_on())
		return;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		record(fd, IO_REC_ZERO, off, len, NULL, 0);
	if (!(mode & FALLOC_FL_KEEP_SIZE))
		record(fd, IO_REC_EXTEND, off, len, NULL, 0);
}

uint64_t io_record_mark(void)
{
	uint64_t n;

	if (!io_record_on())
		return 0;
	pthread_mutex_lock(&rec_lock);
	n = rec_seq;
	pthread_mutex_unlock(&rec_lock);
	return n;
}

void io_record_barrier(int fd, uint64_t covers, enum io_rec_type type)
{
	struct io_rec r;

	if (!io_record_on())
		return;
	fill_file(&r, fd);
	r.type = type;
	r.seq = covers;
	pthread_mutex_lock(&rec_lock);
	if (rec_fd >= 0)
		put(&r, sizeof(r));
	pthread_mutex_unlock(&rec_lock);
}

void io_record_sync(int fd)
{
	/* synchronous: everything logged before the call returned is
	 * covered, and nothing of this thread's ran meanwhile */
	io_record_barrier(fd, io_record_mark(), IO_REC_SYNC);
}
