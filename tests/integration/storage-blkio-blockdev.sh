#!/bin/bash
# timeout: 60
# A raw block device (a loop device over a temp file): size from
# BLKGETSIZE64, cache=none alignment from the logical block size, data,
# discard and write-zeroes through the block layer, and the image lock.
# Skips when loop devices are not available (not root, no loop driver).
. "$(dirname "$0")/lib.sh"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "$BLKIO not built"
[ "$(id -u)" = 0 ] || skip "needs root for a loop device"
command -v losetup >/dev/null || skip "no losetup"
M=$((1024 * 1024))
back=$TEST_TMP/backing.img
truncate -s 32M "$back"
dev=$(losetup -f --show "$back" 2>/dev/null) || skip "cannot set up a loop device"
trap 'losetup -d "$dev"' EXIT

"$BLKIO" info --image "$dev" --format raw --cache none >"$TEST_TMP/info" 2>&1 ||
	{ cat "$TEST_TMP/info"; fail "info on $dev failed"; }
expect_in "$TEST_TMP/info" "^virtual-size: $((32 * M))$"
expect_in "$TEST_TMP/info" "^alignment: (512|1024|2048|4096)$"

"$BLKIO" fill --image "$dev" --format raw --seed 21 --cache none --qd 16 >/dev/null ||
	fail "fill on $dev failed"
"$BLKIO" verify --image "$dev" --format raw --seed 21 >/dev/null ||
	fail "verify on $dev failed"
# the data went through the device into the backing file
"$BLKIO" verify --image "$back" --format raw --seed 21 --offset $((5 * M + 3)) \
	--length 1000 >/dev/null || fail "backing file does not hold the pattern"

"$BLKIO" zero --image "$dev" --format raw --offset $((4 * M)) --length $M ||
	fail "zero on $dev failed"
"$BLKIO" zero --image "$dev" --format raw --offset $((8 * M)) --length $M --unmap ||
	fail "zero --unmap on $dev failed"
"$BLKIO" discard --image "$dev" --format raw --offset $((12 * M)) --length $M ||
	fail "discard on $dev failed"
for o in 4 8; do
	cmp <(dd if="$dev" bs=1M skip=$o count=1 iflag=direct status=none) \
		<(head -c $M /dev/zero) || fail "zeroed MiB $o of $dev is not zero"
done
"$BLKIO" verify --image "$dev" --format raw --seed 21 --offset $((5 * M)) \
	--length $((3 * M)) >/dev/null || fail "data beside the zeroed ranges changed"

# beyond the end of the device
"$BLKIO" fill --image "$dev" --format raw --seed 1 --offset $((32 * M - 512)) \
	--length 1024 >"$TEST_TMP/out" 2>&1
expect_status $? 2 "$TEST_TMP/out"
expect_in "$TEST_TMP/out" "beyond the image size"

# the lock holds on devices too
"$BLKIO" bench --image "$dev" --format raw --mode seqwrite --bs 64K --qd 2 \
	--seconds 2 >"$TEST_TMP/holder.out" 2>&1 &
holder=$!
ino=$(stat -c %i "$dev")
for i in $(seq 100); do	# until the holder has its lock
	grep -Eq "OFDLCK +ADVISORY +WRITE .*:$ino " /proc/locks && break
	sleep 0.05
done
"$BLKIO" verify --image "$dev" --format raw --seed 21 >"$TEST_TMP/out" 2>&1
expect_status $? 2 "$TEST_TMP/out"
expect_in "$TEST_TMP/out" "image is in use by another process \(locked\)"
wait $holder || { cat "$TEST_TMP/holder.out"; fail "lock holder failed"; }

# a 4 KiB-sector device: cache=none alignment follows the logical block size
back4=$TEST_TMP/backing4k.img
truncate -s 8M "$back4"
if dev4=$(losetup -f --show --sector-size 4096 "$back4" 2>/dev/null); then
	trap 'losetup -d "$dev"; losetup -d "$dev4"' EXIT
	"$BLKIO" info --image "$dev4" --format raw --cache none >"$TEST_TMP/info4" 2>&1
	expect_in "$TEST_TMP/info4" "^alignment: 4096$"
	"$BLKIO" fill --image "$dev4" --format raw --seed 3 --offset 512 --length 4096 \
		--cache none >"$TEST_TMP/out" 2>&1
	expect_status $? 2 "$TEST_TMP/out"
	expect_in "$TEST_TMP/out" "multiples of 4096"
	"$BLKIO" fill --image "$dev4" --format raw --seed 3 --offset 4096 --length 1M \
		--bs 12K --cache none >/dev/null || fail "4K-sector fill failed"
	"$BLKIO" verify --image "$back4" --format raw --seed 3 --offset 4096 --length 1M \
		>/dev/null || fail "4K-sector data not in the backing file"
fi
echo ok
