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

# wait_lock TYPE: until the holder ($holder) has its OFD lock (WRITE or READ)
# on the image, as /proc/locks shows it; a contender started earlier would
# take the lock first
wait_lock() {
	local ino i
	ino=$(stat -c %i "$img")
	for i in $(seq 100); do
		grep -Eq "OFDLCK +ADVISORY +$1 .*:$ino " /proc/locks && return 0
		kill -0 $holder 2>/dev/null || fail "lock holder exited early"
		sleep 0.05
	done
	fail "lock holder never took its lock"
}

# CMD... fails at once with the lock message, one line, exit 2
expect_locked() {
	"$@" >"$TEST_TMP/second.out" 2>&1
	expect_status $? 2 "$TEST_TMP/second.out"
	expect_in "$TEST_TMP/second.out" "^blkio: $img: image is in use by another process \(locked\)$"
	[ "$(wc -l <"$TEST_TMP/second.out")" = 1 ] || fail "more than one error line"
	kill -0 $holder 2>/dev/null || fail "lock holder exited before the test ran"
}

# how long the holders hold: three contenders must start meanwhile, each a
# second or more under TSan on a loaded host
hold=3
[ "${SANITIZE:-0}" = tsan ] && hold=15
# a writer (timed seqwrite) holds a write lock
"$BLKIO" bench --image "$img" --format raw --mode seqwrite --bs 64K --qd 2 \
	--seconds $hold >"$TEST_TMP/holder.out" 2>&1 &
holder=$!
wait_lock WRITE
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
	--seconds $hold >"$TEST_TMP/holder.out" 2>&1 &
holder=$!
wait_lock READ
"$BLKIO" verify --image "$img" --format raw --seed 1 --length 1M \
	>"$TEST_TMP/v.out" 2>&1 || { cat "$TEST_TMP/v.out"; fail "a second reader was refused"; }
expect_locked "$BLKIO" fill --image "$img" --format raw --seed 1 --length 1M
wait $holder || { cat "$TEST_TMP/holder.out"; fail "reader failed"; }
echo ok
