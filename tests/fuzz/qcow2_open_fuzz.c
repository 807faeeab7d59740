/* tests/fuzz/qcow2_open_fuzz.c - a libFuzzer target for qcow2 header and
 * table parsing and the I/O behind them: the input is an image file; it is
 * opened read-only and writable, read, written and discarded.  Built and
 * run by make fuzz (tests/fuzz/fuzz.mk), seeded with tests/fuzz/corpus/qcow2
 * (small qemu-img images: tests/fuzz/make-seeds qcow2); the deterministic
 * mutation test in tests/unit/test_qcow2_fuzz.c runs in make check too.
 * The io_engine runs in its synchronous mode: deterministic, no io_uring
 * worker threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "storage/block_backend.h"
#include "storage/qcow2.h"

static struct io_engine *eng;
static char path[64];

struct req {
	struct blk_req r;
	struct iovec iov;
	bool done;
};

static void done(struct blk_req *r, int result)
{
	(void)result;
	((struct req *)r)->done = true;
}

static void io(struct blk_dev *d, enum blk_op op, uint64_t off, void *buf,
	       uint64_t len)
{
	struct req q;

	if (off >= d->size)
		return;
	if (len > d->size - off)
		len = d->size - off;
	memset(&q, 0, sizeof(q));
	q.r.op = op;
	q.r.offset = off;
	q.r.len = len;
	if (buf) {
		q.iov.iov_base = buf;
		q.iov.iov_len = len;
		q.r.iov = &q.iov;
		q.r.iovcnt = 1;
	}
	q.r.done = done;
	d->ops->submit(d, &q.r);
	while (!q.done) {
		io_engine_submit(eng);
		if (io_engine_wait(eng) < 0)
			abort();
	}
}

static void run(bool ro)
{
	struct blk_opts o = { .path = path, .format = BLK_FMT_QCOW2,
			      .readonly = ro };
	static uint8_t buf[65536];
	char err[512];
	struct blk_dev *d = qcow2_open(&o, eng, err, sizeof(err));

	if (!d)
		return;
	io(d, BLK_OP_READ, 0, buf, sizeof(buf));
	io(d, BLK_OP_READ, d->size / 2, buf, 3000);
	if (!ro) {
		memset(buf, 0xa5, sizeof(buf));
		io(d, BLK_OP_WRITE, 1000, buf, 5000);
		io(d, BLK_OP_WRITE, d->size / 3, buf, sizeof(buf));
		io(d, BLK_OP_DISCARD, 0, NULL, 1 << 20);
		io(d, BLK_OP_WRITE_ZEROES, 4096, NULL, 100000);
		io(d, BLK_OP_FLUSH, 0, NULL, 0);
	}
	d->ops->close(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;

	if (!eng) {
		char err[256];

		setenv("VMM_IO_ENGINE", "sync", 1);
		eng = io_engine_create(64, err, sizeof(err));
		if (!eng)
			abort();
		/* the image lives in memory: qcow2's metadata syncs cost
		 * nothing there */
		fd = memfd_create("qcow2-fuzz", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	run(true);
	run(false);
	return 0;
}
