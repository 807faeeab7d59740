/* tests/unit/storage_fixture.h - the fixture storage tests share: a fresh
 * temporary directory and an io_uring engine per test. */
#ifndef TESTS_UNIT_STORAGE_FIXTURE_H
#define TESTS_UNIT_STORAGE_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include <stdbool.h>
#include <string.h>

#include "storage/block_backend.h"
#include "storage/io_engine.h"

/* dir gets "$TMPDIR/vmm-test-NAME.XXXXXX", created; *eng an engine. */
static inline void storage_fixture_setup(char *dir, size_t dirlen,
					 const char *name, unsigned depth,
					 struct io_engine **eng)
{
	char err[256] = "";
	const char *t = getenv("TMPDIR");

	snprintf(dir, dirlen, "%s/vmm-test-%s.XXXXXX", t ? t : "/tmp", name);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	*eng = io_engine_create(depth, err, sizeof(err));
	ck_assert_msg(*eng, "%s", err);
}

static inline void storage_fixture_teardown(const char *dir,
					    struct io_engine *eng)
{
	char cmd[600];

	io_engine_destroy(eng);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A request on the stack of a test, submitted straight to the backend (the
 * block layer's checks are not what these tests look at). */
struct req {
	struct blk_req r;	/* first: the callback casts back */
	struct iovec iov;
	int result;
	bool done;
};

static inline void req_done(struct blk_req *r, int result)
{
	struct req *q = (struct req *)r;

	q->result = result;
	q->done = true;
}

static inline void req_start(struct blk_dev *d, struct req *q, enum blk_op op,
			     uint64_t off, void *buf, uint64_t len)
{
	memset(q, 0, sizeof(*q));
	q->r.op = op;
	q->r.offset = off;
	q->r.len = len;
	if (buf) {
		q->iov.iov_base = buf;
		q->iov.iov_len = len;
		q->r.iov = &q->iov;
		q->r.iovcnt = 1;
	}
	q->r.done = req_done;
	d->ops->submit(d, &q->r);
}

#endif
