#!/bin/bash
# timeout: 60
# The OFD image lock between processes: a writer keeps out other writers
# and readers, with one clear line; readers share; the lock goes with the
# process.
. "$(dirname "$0")/lib.sh"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "$BLKIO not built"
img=$TEST_TMP/disk.img
truncate -s 32M "$img"

# try CMD... until it fails with the lock message (the holder may still be
# starting); the holder is $holder
expect_locked() {
	local i
	for i in $(seq 50); do
		if "$@" >"$TEST_TMP/second.out" 2>&1; then
			kill -0 $holder 2>/dev/null ||
				fail "lock holder exited before the test ran"
		else
			rc=$?
			grep -q "locked" "$TEST_TMP/second.out" && break
			cat "$TEST_TMP/second.out"; fail "failed, but not with the lock error"
		fi
		sleep 0.1
	done
	expect_status $rc 2 "$TEST_TMP/second.out"
	expect_in "$TEST_TMP/second.out" "^blkio: $img: image is in use by another process \(locked\)$"
	[ "$(wc -l <"$TEST_TMP/second.out")" = 1 ] || fail "more than one error line"
}

# a writer (timed seqwrite) holds a write lock
"$BLKIO" bench --image "$img" --format raw --mode seqwrite --bs 64K --qd 2 \
	--seconds 3 >"$TEST_TMP/holder.out" 2>&1 &
holder=$!
expect_locked "$BLKIO" fill --image "$img" --format raw --seed 1 --length 1M
expect_locked "$BLKIO" verify --image "$img" --format raw --seed 1 --length 1M
expect_locked "$BLKIO" info --image "$img" --format raw
wait $holder || { cat "$TEST_TMP/holder.out"; fail "lock holder failed"; }
expect_in "$TEST_TMP/holder.out" '"mode":"seqwrite"'

# lock released with the process: a writer gets in now
"$BLKIO" fill --image "$img" --format raw --seed 1 --length 1M >/dev/null ||
	fail "fill after the holder exited failed"

# readers share: a timed reader, and a verify beside it
"$BLKIO" bench --image "$img" --format raw --mode randread --bs 4K --qd 4 \
	--seconds 2 >"$TEST_TMP/holder.out" 2>&1 &
holder=$!
sleep 0.3
"$BLKIO" verify --image "$img" --format raw --seed 1 --length 1M \
	>"$TEST_TMP/v.out" 2>&1 || { cat "$TEST_TMP/v.out"; fail "a second reader was refused"; }
expect_locked "$BLKIO" fill --image "$img" --format raw --seed 1 --length 1M
wait $holder || { cat "$TEST_TMP/holder.out"; fail "reader failed"; }
echo ok
