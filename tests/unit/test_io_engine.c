/* tests/unit/test_io_engine.c - the io_uring engine: batching, more ops than
 * the rings hold, short and end-of-file reads, resumed transfers, errors. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <liburing.h>

#include "storage/io_engine.h"
#include "tests/unit/check_main.h"

struct op {
	struct io_cb cb;
	int64_t res;
	int calls;
};

static void op_done(struct io_cb *cb, int64_t res)
{
	struct op *o = (struct op *)cb;	/* cb is the first member */

	o->res = res;
	o->calls++;
}

static struct io_engine *engine(unsigned entries)
{
	char err[256] = "";
	struct io_engine *e = io_engine_create(entries, err, sizeof(err));

	ck_assert_msg(e, "io_engine_create: %s", err);
	return e;
}

static int tmpfile_fd(void)
{
	char path[] = "/tmp/vmm-test-engine.XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	return fd;
}

static void wait_all(struct io_engine *e)
{
	while (io_engine_inflight(e) > 0)
		ck_assert_int_ge(io_engine_wait(e), 0);
}

static bool efd_readable(struct io_engine *e, int ms)
{
	struct pollfd p = { .fd = io_engine_eventfd(e), .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

START_TEST(create_bad_size)
{
	char err[256] = "";

	ck_assert_ptr_null(io_engine_create(0, err, sizeof(err)));
	ck_assert(strstr(err, "queue size"));
}
END_TEST

/* Nothing reaches the kernel before io_engine_submit(). */
START_TEST(batch_until_submit)
{
	struct io_engine *e = engine(32);
	int fd = tmpfile_fd(), i;
	static char buf[16][512];
	struct iovec iov[16];
	struct op ops[16];

	memset(ops, 0, sizeof(ops));
	for (i = 0; i < 16; i++) {
		memset(buf[i], 'a' + i, sizeof(buf[i]));
		iov[i].iov_base = buf[i];
		iov[i].iov_len = sizeof(buf[i]);
		ops[i].cb.fn = op_done;
		ck_assert_int_eq(io_engine_writev(e, fd, &iov[i], 1, i * 512,
						  &ops[i].cb), 0);
	}
	ck_assert_uint_eq(io_engine_inflight(e), 16);
	usleep(20000);
	ck_assert(!efd_readable(e, 0));
	{
		struct stat st;

		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert_int_eq(st.st_size, 0);	/* not written yet */
	}
	io_engine_submit(e);
	ck_assert(efd_readable(e, 5000));
	wait_all(e);
	for (i = 0; i < 16; i++) {
		char rb[512], want[512];

		ck_assert_int_eq(ops[i].calls, 1);
		ck_assert_int_eq(ops[i].res, 512);
		memset(want, 'a' + i, sizeof(want));
		ck_assert_int_eq(pread(fd, rb, sizeof(rb), i * 512), 512);
		ck_assert(memcmp(rb, want, 512) == 0);
	}
	close(fd);
	io_engine_destroy(e);
}
END_TEST

/* Far more ops than SQ and CQ entries: queued ones wait, none is lost. */
START_TEST(more_ops_than_ring)
{
	enum { N = 300 };
	struct io_engine *e = engine(4);
	int fd = tmpfile_fd(), i;
	static uint32_t vals[N], back[N];
	static struct iovec iov[N];
	static struct op ops[N];
	struct op fs = { .cb.fn = op_done };

	memset(ops, 0, sizeof(ops));
	for (i = 0; i < N; i++) {
		vals[i] = 0x1000u + (uint32_t)i;
		iov[i].iov_base = &vals[i];
		iov[i].iov_len = 4;
		ops[i].cb.fn = op_done;
		ck_assert_int_eq(io_engine_writev(e, fd, &iov[i], 1, i * 4,
						  &ops[i].cb), 0);
	}
	ck_assert_int_eq(io_engine_fsync(e, fd, true, &fs.cb), 0);
	ck_assert_uint_eq(io_engine_inflight(e), N + 1);
	io_engine_submit(e);
	wait_all(e);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(ops[i].calls, 1);
		ck_assert_int_eq(ops[i].res, 4);
	}
	ck_assert_int_eq(fs.calls, 1);
	ck_assert_int_eq(fs.res, 0);
	ck_assert_int_eq(pread(fd, back, sizeof(back), 0), sizeof(back));
	ck_assert(memcmp(back, vals, sizeof(vals)) == 0);
	close(fd);
	io_engine_destroy(e);
}
END_TEST

/* A read that runs past end of file returns the full length, zeroes after
 * the file's last byte; one starting past the end is all zeroes. */
START_TEST(read_eof_zero_fills)
{
	struct io_engine *e = engine(8);
	int fd = tmpfile_fd(), i;
	char data[1000], a[1500], b[2000], c[4096];
	struct iovec iov[3] = { { a, sizeof(a) }, { b, sizeof(b) },
				{ c, sizeof(c) } };
	struct op op = { .cb.fn = op_done }, op2 = { .cb.fn = op_done };

	for (i = 0; i < 1000; i++)
		data[i] = (char)(i * 7 + 1);
	ck_assert_int_eq(pwrite(fd, data, sizeof(data), 0), sizeof(data));
	memset(a, 0xaa, sizeof(a));
	memset(b, 0xaa, sizeof(b));
	memset(c, 0xaa, sizeof(c));
	/* [500, 8096): 500 file bytes, then zeroes across three iovecs */
	ck_assert_int_eq(io_engine_readv(e, fd, iov, 3, 500, &op.cb), 0);
	io_engine_submit(e);
	wait_all(e);
	ck_assert_int_eq(op.calls, 1);
	ck_assert_int_eq(op.res, 1500 + 2000 + 4096);
	ck_assert(memcmp(a, data + 500, 500) == 0);
	for (i = 500; i < 1500; i++)
		ck_assert_int_eq(a[i], 0);
	for (i = 0; i < 2000; i++)
		ck_assert_int_eq(b[i], 0);
	for (i = 0; i < 4096; i++)
		ck_assert_int_eq(c[i], 0);

	memset(c, 0x55, sizeof(c));
	ck_assert_int_eq(io_engine_readv(e, fd, &iov[2], 1, 1 << 20, &op2.cb),
			 0);
	io_engine_submit(e);
	wait_all(e);
	ck_assert_int_eq(op2.res, 4096);
	for (i = 0; i < 4096; i++)
		ck_assert_int_eq(c[i], 0);
	close(fd);
	io_engine_destroy(e);
}
END_TEST

/* A pipe delivers 100 bytes, then more later: the engine resumes the read
 * across its iovecs until the full length arrived (not end of file). */
START_TEST(short_read_resumed)
{
	struct io_engine *e = engine(8);
	int p[2], i;
	char a[150], b[150], src[300];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	struct op op = { .cb.fn = op_done };

	for (i = 0; i < 300; i++)
		src[i] = (char)(i ^ 0x5a);
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], src, 100), 100);
	ck_assert_int_eq(io_engine_readv(e, p[0], iov, 2, 0, &op.cb), 0);
	io_engine_submit(e);
	for (i = 0; i < 20 && op.calls == 0; i++) {
		if (efd_readable(e, 10))
			io_engine_complete(e);
	}
	ck_assert_int_eq(op.calls, 0);	/* 100 of 300 bytes: still waiting */
	ck_assert_int_eq(write(p[1], src + 100, 120), 120);
	usleep(10000);
	ck_assert_int_eq(write(p[1], src + 220, 80), 80);
	wait_all(e);
	ck_assert_int_eq(op.calls, 1);
	ck_assert_int_eq(op.res, 300);
	ck_assert(memcmp(a, src, 150) == 0);
	ck_assert(memcmp(b, src + 150, 150) == 0);
	close(p[0]);
	close(p[1]);
	io_engine_destroy(e);
}
END_TEST

/* Vectors longer than IOV_MAX (which readv/writev refuse) still work. */
START_TEST(longer_than_iov_max)
{
	enum { NW = 2500, NR = 3333, BYTES = NW * 3 };
	struct io_engine *e = engine(8);
	static uint8_t src[BYTES], dst[BYTES];
	static struct iovec wv[NW], rv[NR];
	struct op w = { .cb.fn = op_done }, r = { .cb.fn = op_done };
	int fd = tmpfile_fd(), i, pos;

	for (i = 0; i < BYTES; i++)
		src[i] = (uint8_t)(i * 31 + 7);
	for (i = 0; i < NW; i++) {	/* 3 bytes each */
		wv[i].iov_base = src + i * 3;
		wv[i].iov_len = 3;
	}
	for (i = 0, pos = 0; i < NR; i++) {	/* 2 bytes: boundaries unlike the writes */
		int len = i == NR - 1 ? BYTES - pos : 2;

		rv[i].iov_base = dst + pos;
		rv[i].iov_len = (size_t)len;
		pos += len;
	}
	ck_assert_int_eq(io_engine_writev(e, fd, wv, NW, 100, &w.cb), 0);
	io_engine_submit(e);
	wait_all(e);
	ck_assert_int_eq(w.res, BYTES);
	ck_assert_int_eq(io_engine_readv(e, fd, rv, NR, 100, &r.cb), 0);
	io_engine_submit(e);
	wait_all(e);
	ck_assert_int_eq(r.res, BYTES);
	ck_assert(memcmp(src, dst, BYTES) == 0);
	close(fd);
	io_engine_destroy(e);
}
END_TEST

/* io_engine_poll reaps without touching the eventfd; complete() drains it */
START_TEST(poll_leaves_eventfd)
{
	struct io_engine *e = engine(8);
	int fd = tmpfile_fd(), i;
	char buf[4096] = { 1 };
	struct iovec iov = { buf, sizeof(buf) };
	struct op op = { .cb.fn = op_done };

	ck_assert_int_eq(io_engine_writev(e, fd, &iov, 1, 0, &op.cb), 0);
	io_engine_submit(e);
	for (i = 0; i < 500 && op.calls == 0; i++) {
		io_engine_poll(e);
		if (!op.calls)
			usleep(1000);
	}
	ck_assert_int_eq(op.calls, 1);
	ck_assert_int_eq(op.res, 4096);
	ck_assert(efd_readable(e, 1000));	/* the signal is still there */
	ck_assert_int_eq(io_engine_complete(e), 0);	/* nothing left... */
	ck_assert(!efd_readable(e, 0));		/* ...and drained */
	close(fd);
	io_engine_destroy(e);
}
END_TEST

/* Many rounds of random reads and writes on disjoint ranges, each split
 * into random iovecs, through a small ring (ops wait for SQEs): the file
 * always matches a reference copy, and reads past the end see zeroes. */
START_TEST(random_mix)
{
	enum { SLOTS = 64, SLOT = 16384, FILE_SZ = SLOTS * SLOT, ROUNDS = 40 };
	struct rop {
		struct op op;
		struct iovec iov[16];
		uint8_t *buf;
		uint64_t off, len;
		bool write;
	};
	static uint8_t ref[FILE_SZ + SLOT];
	static uint8_t bufs[SLOTS][SLOT];
	static struct rop ops[SLOTS];
	struct io_engine *e = engine(8);
	int fd = tmpfile_fd(), round, i;
	uint64_t rng = 12345;

	memset(ref, 0, sizeof(ref));
	ck_assert_int_eq(ftruncate(fd, FILE_SZ), 0);
	for (round = 0; round < ROUNDS; round++) {
		int n = 0;

		for (i = 0; i < SLOTS; i++) {
			struct rop *o = &ops[n];
			uint64_t pos = 0;
			int k, cnt;

			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			if ((rng >> 60) < 4)
				continue;	/* slot idle this round */
			memset(o, 0, sizeof(*o));
			o->op.cb.fn = op_done;
			o->write = (rng >> 59) & 1;
			o->off = (uint64_t)i * SLOT + ((rng >> 20) % 4096);
			o->len = 1 + ((rng >> 33) % (SLOT - 4096));
			/* the last slot's reads run past end of file */
			if (i == SLOTS - 1 && !o->write)
				o->len = SLOT;
			o->buf = bufs[n];
			cnt = 1 + (int)((rng >> 8) % 16);
			for (k = 0; k < cnt; k++) {
				uint64_t left = o->len - pos;
				uint64_t l = k == cnt - 1 ? left
					   : (left * (uint64_t)(k + 1)) / (uint64_t)cnt - pos;

				o->iov[k].iov_base = o->buf + pos;
				o->iov[k].iov_len = l;
				pos += l;
			}
			if (o->write) {
				for (k = 0; k < (int)o->len; k++)
					o->buf[k] = (uint8_t)(rng >> (k % 56)) ^ (uint8_t)k;
				memcpy(ref + o->off, o->buf, o->len);
				ck_assert_int_eq(io_engine_writev(e, fd, o->iov, cnt,
								  o->off, &o->op.cb), 0);
			} else {
				memset(o->buf, 0xcc, o->len);
				ck_assert_int_eq(io_engine_readv(e, fd, o->iov, cnt,
								 o->off, &o->op.cb), 0);
			}
			n++;
		}
		io_engine_submit(e);
		wait_all(e);
		for (i = 0; i < n; i++) {
			struct rop *o = &ops[i];

			ck_assert_int_eq(o->op.calls, 1);
			ck_assert_int_eq(o->op.res, (int64_t)o->len);
			if (!o->write)
				ck_assert_msg(memcmp(o->buf, ref + o->off, o->len) == 0,
					      "round %d: read at %lu differs", round,
					      (unsigned long)o->off);
		}
	}
	{
		static uint8_t file[FILE_SZ];

		ck_assert_int_eq(pread(fd, file, FILE_SZ, 0), FILE_SZ);
		ck_assert(memcmp(file, ref, FILE_SZ) == 0);
	}
	close(fd);
	io_engine_destroy(e);
}
END_TEST

START_TEST(errors_reach_callback)
{
	struct io_engine *e = engine(8);
	char buf[512] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct op r = { .cb.fn = op_done }, w = { .cb.fn = op_done },
		  f = { .cb.fn = op_done }, q = { .cb.fn = op_done };
	int fd = tmpfile_fd(), rofd;
	char path[64];

	ck_assert_int_eq(io_engine_readv(e, 12345, &iov, 1, 0, &r.cb), 0);
	ck_assert_int_eq(io_engine_fsync(e, 12345, false, &f.cb), 0);
	/* a write through a read-only descriptor */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rofd = open(path, O_RDONLY);
	ck_assert_int_ge(rofd, 0);
	ck_assert_int_eq(io_engine_writev(e, rofd, &iov, 1, 0, &w.cb), 0);
	/* fallocate mode garbage */
	ck_assert_int_eq(io_engine_fallocate(e, fd, 0x7fff0000, 0, 4096,
					     &q.cb), 0);
	io_engine_submit(e);
	wait_all(e);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(r.res, -EBADF);
	ck_assert_int_eq(f.res, -EBADF);
	ck_assert_int_eq(w.res, -EBADF);
	ck_assert_int_lt(q.res, 0);
	close(rofd);
	close(fd);
	io_engine_destroy(e);
}
END_TEST

START_TEST(bad_args_refused)
{
	struct io_engine *e = engine(8);
	char buf[16];
	struct iovec iov = { buf, sizeof(buf) };
	struct op op = { .cb.fn = op_done };

	ck_assert_int_eq(io_engine_readv(e, 0, &iov, -1, 0, &op.cb), -EINVAL);
	ck_assert_int_eq(io_engine_readv(e, 0, NULL, 1, 0, &op.cb), -EINVAL);
	ck_assert_int_eq(io_engine_writev(e, 0, &iov, 1, UINT64_MAX - 4,
					  &op.cb), -EINVAL);
	ck_assert_int_eq(io_engine_fallocate(e, 0, 0, 0, 0, &op.cb), -EINVAL);
	ck_assert_uint_eq(io_engine_inflight(e), 0);
	io_engine_submit(e);
	ck_assert_int_eq(io_engine_wait(e), 0);	/* nothing to wait for */
	ck_assert_int_eq(op.calls, 0);
	io_engine_destroy(e);
}
END_TEST

START_TEST(fallocate_punches)
{
	struct io_engine *e = engine(8);
	int fd = tmpfile_fd(), i;
	char buf[16384], back[16384];
	struct op op = { .cb.fn = op_done };

	memset(buf, 0x77, sizeof(buf));
	ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), 0), sizeof(buf));
	ck_assert_int_eq(io_engine_fallocate(e, fd, FALLOC_FL_PUNCH_HOLE |
					     FALLOC_FL_KEEP_SIZE, 4096, 8192,
					     &op.cb), 0);
	io_engine_submit(e);
	wait_all(e);
	ck_assert_int_eq(op.res, 0);
	ck_assert_int_eq(pread(fd, back, sizeof(back), 0), sizeof(back));
	for (i = 0; i < 16384; i++)
		ck_assert_int_eq(back[i], i >= 4096 && i < 12288 ? 0 : 0x77);
	close(fd);
	io_engine_destroy(e);
}
END_TEST

/* Callbacks may queue more ops; complete() hands them to the kernel. */
struct chain {
	struct io_cb cb;
	struct io_engine *e;
	int fd, left;
	char byte;
	struct iovec iov;
};

static void chain_done(struct io_cb *cb, int64_t res)
{
	struct chain *c = (struct chain *)cb;

	ck_assert_int_eq(res, 1);
	if (--c->left > 0)
		ck_assert_int_eq(io_engine_writev(c->e, c->fd, &c->iov, 1,
						  (uint64_t)c->left, &c->cb), 0);
}

START_TEST(requeue_from_callback)
{
	struct io_engine *e = engine(2);
	struct chain c = { .cb.fn = chain_done, .left = 10, .byte = 'z' };
	char back[10];
	int i;

	c.e = e;
	c.fd = tmpfile_fd();
	c.iov.iov_base = &c.byte;
	c.iov.iov_len = 1;
	ck_assert_int_eq(io_engine_writev(e, c.fd, &c.iov, 1, 10, &c.cb), 0);
	io_engine_submit(e);
	wait_all(e);
	ck_assert_int_eq(c.left, 0);
	ck_assert_int_eq(pread(c.fd, back, 10, 1), 10);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(back[i], 'z');
	close(c.fd);
	io_engine_destroy(e);
}
END_TEST

/* io_engine_register_memory: ops inside the region use the registered
 * pages (shown by remapping the region afterwards: a READ_FIXED still lands
 * in the old, pinned pages), ops outside or across its end work as usual. */
START_TEST(registered_memory)
{
	const size_t M = 1 << 20;
	struct io_engine *e = engine(8);
	int fd = tmpfile_fd(), ret;
	uint8_t *m = mmap(NULL, 3 * M, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iovec in = { m + 4096, 8192 }, across = { m + 2 * M - 4096, 8192 };
	struct iovec two[2] = { { m, 512 }, { m + 1024, 512 } };
	struct op a = { .cb.fn = op_done }, b = { .cb.fn = op_done },
		  c = { .cb.fn = op_done };
	uint8_t back[8192];
	size_t i;

	ck_assert_ptr_ne(m, MAP_FAILED);
	for (i = 0; i < 3 * M; i++)
		m[i] = (uint8_t)(i * 7 + (i >> 12));
	ret = io_engine_register_memory(e, m, 2 * M);
	if (getenv("VMM_IO_ENGINE")) {	/* the sync fallback has none */
		ck_assert_int_eq(ret, -EOPNOTSUPP);
	} else {
		ck_assert_int_eq(ret, 0);
		ck_assert_int_eq(io_engine_register_memory(e, m, M), -EBUSY);
	}
	ck_assert_int_eq(io_engine_writev(e, fd, &in, 1, 0, &a.cb), 0);
	ck_assert_int_eq(io_engine_writev(e, fd, &across, 1, 8192, &b.cb), 0);
	ck_assert_int_eq(io_engine_writev(e, fd, two, 2, 16384, &c.cb), 0);
	io_engine_submit(e);
	wait_all(e);
	ck_assert_int_eq(a.res, 8192);
	ck_assert_int_eq(b.res, 8192);
	ck_assert_int_eq(c.res, 1024);
	ck_assert_int_eq(pread(fd, back, 8192, 0), 8192);
	ck_assert(memcmp(back, m + 4096, 8192) == 0);
	ck_assert_int_eq(pread(fd, back, 8192, 8192), 8192);
	ck_assert(memcmp(back, m + 2 * M - 4096, 8192) == 0);
	ck_assert_int_eq(pread(fd, back, 1024, 16384), 1024);
	ck_assert(memcmp(back, m, 512) == 0 && memcmp(back + 512, m + 1024, 512) == 0);
	if (ret == 0) {
		/* fresh pages at the same address: a fixed read fills the
		 * registered (old) ones, so the new mapping stays zero */
		ck_assert_ptr_eq(mmap(m, 2 * M, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				      -1, 0), m);
		a.calls = 0;
		ck_assert_int_eq(io_engine_readv(e, fd, &in, 1, 0, &a.cb), 0);
		io_engine_submit(e);
		wait_all(e);
		ck_assert_int_eq(a.res, 8192);
		for (i = 0; i < 8192; i++)
			ck_assert_int_eq(m[4096 + i], 0);
	}
	close(fd);
	io_engine_destroy(e);
	munmap(m, 3 * M);
}
END_TEST

/* Where io_uring_setup is refused (a seccomp filter here, as Docker's
 * default profile does), the engine falls back to synchronous I/O. */
START_TEST(fallback_when_io_uring_refused)
{
	struct sock_filter filt[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = 4, .filter = filt };
	char buf[4096], back[4096];
	struct iovec iov = { buf, sizeof(buf) }, riov = { back, sizeof(back) };
	struct op w = { .cb.fn = op_done }, r = { .cb.fn = op_done };
	struct io_engine *e;
	int fd = tmpfile_fd();

	/* Check runs each test in its own child: the filter stays there */
	ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
	ck_assert_int_eq(syscall(__NR_io_uring_setup, 8, NULL), -1);
	ck_assert_int_eq(errno, EPERM);
	e = engine(8);
	memset(buf, 0x5a, sizeof(buf));
	ck_assert_int_eq(io_engine_writev(e, fd, &iov, 1, 4096, &w.cb), 0);
	io_engine_submit(e);
	wait_all(e);
	ck_assert_int_eq(w.res, 4096);
	ck_assert_int_eq(io_engine_readv(e, fd, &riov, 1, 4096, &r.cb), 0);
	io_engine_submit(e);
	wait_all(e);
	ck_assert_int_eq(r.res, 4096);
	ck_assert(memcmp(buf, back, sizeof(buf)) == 0);
	close(fd);
	io_engine_destroy(e);
}
END_TEST

/* The engine's ring runs restricted: buffer registration (and the
 * reads and writes every other test does) work; registering files, which
 * the engine never does, is refused.  The ring is found as the process's
 * io_uring descriptor. */
START_TEST(ring_restricted)
{
	struct io_engine *e = engine(8);
	char link[64], path[64];
	int ring = -1, fd = tmpfile_fd();

	for (int i = 0; i < 1024 && ring < 0; i++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", i);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = 0;
			if (strstr(link, "io_uring"))
				ring = i;
		}
	}
	ck_assert_int_ge(ring, 0);
	ck_assert_int_eq(io_uring_register(ring, IORING_REGISTER_FILES, &fd, 1),
			 -EACCES);
	ck_assert_int_eq(io_uring_register(ring, IORING_REGISTER_PROBE, NULL, 0),
			 -EACCES);
	close(fd);
	io_engine_destroy(e);
}
END_TEST

/* The same tests against the synchronous fallback (no io_uring). */
static void use_sync_engine(void)
{
	setenv("VMM_IO_ENGINE", "sync", 1);
}

static void add_tests(TCase *tc, bool sync)
{
	tcase_set_timeout(tc, 30);
	if (sync)
		tcase_add_checked_fixture(tc, use_sync_engine, NULL);
	tcase_add_test(tc, create_bad_size);
	tcase_add_test(tc, batch_until_submit);
	tcase_add_test(tc, more_ops_than_ring);
	tcase_add_test(tc, read_eof_zero_fills);
	if (!sync)	/* a blocking pipe read would block the submit */
		tcase_add_test(tc, short_read_resumed);
	tcase_add_test(tc, longer_than_iov_max);
	tcase_add_test(tc, poll_leaves_eventfd);
	tcase_add_test(tc, random_mix);
	tcase_add_test(tc, errors_reach_callback);
	tcase_add_test(tc, bad_args_refused);
	tcase_add_test(tc, fallocate_punches);
	tcase_add_test(tc, requeue_from_callback);
	tcase_add_test(tc, registered_memory);
	if (!sync) {
		tcase_add_test(tc, fallback_when_io_uring_refused);
		tcase_add_test(tc, ring_restricted);
	}
}

int main(void)
{
	Suite *s = suite_create("io_engine");
	TCase *tc = tcase_create("io_uring"), *ts = tcase_create("sync");

	add_tests(tc, false);
	add_tests(ts, true);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, ts);
	return check_run(s);
}
