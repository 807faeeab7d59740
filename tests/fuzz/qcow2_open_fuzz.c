/* tests/fuzz/qcow2_open_fuzz.c - a libFuzzer target for qcow2 header and
 * table parsing and the I/O behind them: the input is an image file; it is
 * opened read-only and writable, read, written and discarded.  Not part of
 * make (needs clang); the deterministic mutation test in
 * tests/unit/test_qcow2_fuzz.c runs in make check.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *     -DHAVE_ZSTD=1 tests/fuzz/qcow2_open_fuzz.c storage/qcow2*.c \
 *     storage/io_engine.c -luring -lz -lzstd -o /tmp/qcow2-fuzz
 *   mkdir -p /tmp/corpus && qemu-img create -f qcow2 -o cluster_size=512 \
 *     /tmp/corpus/a.qcow2 1M && /tmp/qcow2-fuzz -max_len=65536 /tmp/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f;

	if (!eng) {
		char err[256];

		eng = io_engine_create(64, err, sizeof(err));
		if (!eng)
			abort();
		snprintf(path, sizeof(path), "/tmp/qcow2-fuzz.%d", (int)getpid());
	}
	f = fopen(path, "wb");
	if (!f)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	run(true);
	run(false);
	unlink(path);
	return 0;
}
