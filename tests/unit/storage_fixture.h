/* tests/unit/storage_fixture.h - the fixture storage tests share: a fresh
 * temporary directory and an io_uring engine per test. */
#ifndef TESTS_UNIT_STORAGE_FIXTURE_H
#define TESTS_UNIT_STORAGE_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
