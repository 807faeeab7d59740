#!/bin/bash
# timeout: 60
# blkio fills a seeded pattern in one process and verifies it in another; the
# host checks the file's bytes against its own computation of the pattern
# (bash arithmetic, independent of pattern.h), and that nothing outside the
# range was touched.
. "$(dirname "$0")/lib.sh"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "$BLKIO not built"
img=$TEST_TMP/disk.img
truncate -s 64M "$img"

# pattern_word(seed, index) of guest/common/pattern.h, as 16 hex digits
pw() {
	local z=$(( $1 * 0x9e3779b97f4a7c15 + $2 + 1 ))
	z=$(( (z ^ ((z >> 30) & 0x3ffffffff)) * 0xbf58476d1ce4e5b9 ))
	z=$(( (z ^ ((z >> 27) & 0x1fffffffff)) * 0x94d049bb133111eb ))
	z=$(( z ^ ((z >> 31) & 0x1ffffffff) ))
	printf '%016x' "$z"
}
word_at() {	# the little-endian 64-bit word at byte offset $2 of file $1
	od -An -v -tx8 -j "$2" -N 8 "$1" | tr -d ' \n'
}

off=$((1024 * 1024 + 4096)) len=$((8 * 1024 * 1024 + 4096))
"$BLKIO" fill --image "$img" --format raw --seed 77 --offset $off \
	--length $len --bs 256K --qd 8 >"$TEST_TMP/fill.out" 2>&1 ||
	{ cat "$TEST_TMP/fill.out"; fail "fill failed"; }
expect_in "$TEST_TMP/fill.out" "filled $len bytes"

# a second process, another request size and queue depth, cache=none
"$BLKIO" verify --image "$img" --format raw --seed 77 --offset $off \
	--length $len --bs 64K --qd 3 --cache none >"$TEST_TMP/v.out" 2>&1 ||
	{ cat "$TEST_TMP/v.out"; fail "verify failed"; }
expect_in "$TEST_TMP/v.out" "verified $len bytes"
# a sub-range that starts and ends mid-word also verifies
"$BLKIO" verify --image "$img" --format raw --seed 77 --offset $((off + 13)) \
	--length 100003 >/dev/null || fail "unaligned sub-range verify failed"

# host side: sampled words equal the independently computed pattern
for i in 0 1 2 511 512 4095 65536 99999 $((len / 8 - 1)); do
	o=$((off + i * 8))
	got=$(word_at "$img" $o)
	want=$(pw 77 $((o / 8)))
	[ "$got" = "$want" ] || fail "word at $o is $got, pattern says $want"
done
# nothing before or after the range was written
cmp -n $off "$img" /dev/zero >/dev/null || fail "bytes before the range changed"
tail -c +$((off + len + 1)) "$img" | cmp - /dev/zero 2>&1 | grep -q EOF ||
	fail "bytes after the range changed"
[ "$(stat -c %s "$img")" = $((64 * 1024 * 1024)) ] || fail "image size changed"

# dump reads a range through the block layer into a file: the same bytes
"$BLKIO" dump --image "$img" --format raw --offset $((off - 100)) --length 300000 \
	--bs 64K --out "$TEST_TMP/dump.bin" >/dev/null || fail "dump failed"
cmp "$TEST_TMP/dump.bin" <(tail -c +$((off - 100 + 1)) "$img" | head -c 300000) ||
	fail "dump differs from the image"

# the synchronous engine (no io_uring) writes what io_uring reads, and back
VMM_IO_ENGINE=sync "$BLKIO" fill --image "$img" --format raw --seed 5 \
	--offset 40M --length 3M --bs 128K --qd 4 >/dev/null || fail "sync-engine fill failed"
"$BLKIO" verify --image "$img" --format raw --seed 5 --offset 40M --length 3M \
	>/dev/null || fail "io_uring verify of a sync-engine fill failed"
VMM_IO_ENGINE=sync "$BLKIO" verify --image "$img" --format raw --seed 77 \
	--offset $off --length $len --cache none >/dev/null || fail "sync-engine verify failed"

# registered (fixed) buffers: the same bytes
"$BLKIO" fill --image "$img" --format raw --seed 6 --offset 48M --length 4M \
	--fixed-buffers --cache none >/dev/null || fail "fill --fixed-buffers failed"
"$BLKIO" verify --image "$img" --format raw --seed 6 --offset 48M --length 4M \
	>/dev/null || fail "verify of a --fixed-buffers fill failed"
"$BLKIO" verify --image "$img" --format raw --seed 6 --offset 48M --length 4M \
	--fixed-buffers --bs 4K --qd 32 >/dev/null || fail "verify --fixed-buffers failed"

# the wrong seed, and a corrupted byte, fail with the first bad offset
"$BLKIO" verify --image "$img" --format raw --seed 78 --offset $off \
	--length $len >"$TEST_TMP/bad.out" 2>&1
expect_status $? 1 "$TEST_TMP/bad.out"
expect_in "$TEST_TMP/bad.out" "first mismatch at offset $off "
bad=$((off + 5 * 1024 * 1024 + 7))
printf '\x00' | dd of="$img" bs=1 seek=$bad conv=notrunc status=none
"$BLKIO" verify --image "$img" --format raw --seed 77 --offset $off \
	--length $len --bs 4K --qd 32 >"$TEST_TMP/bad2.out" 2>&1
expect_status $? 1 "$TEST_TMP/bad2.out"
expect_in "$TEST_TMP/bad2.out" "first mismatch at offset $bad "
echo ok
