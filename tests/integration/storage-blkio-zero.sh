#!/bin/bash
# timeout: 60
# WRITE_ZEROES and DISCARD through blkio: the ranges read back as zeroes on
# the host, the rest keeps its pattern, the size stays, and discard / zero
# with --unmap give space back.
. "$(dirname "$0")/lib.sh"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "$BLKIO not built"
M=$((1024 * 1024))

check_dir() {	# run the checks on an image in directory $1
	local img=$1/zero.img
	rm -f "$img"; truncate -s 16M "$img"
	"$BLKIO" fill --image "$img" --format raw --seed 9 >/dev/null || fail "fill"
	used0=$(du -k "$img" | cut -f1)

	"$BLKIO" zero --image "$img" --format raw --offset $((2 * M)) --length $((M + 512)) ||
		fail "zero failed in $1"
	"$BLKIO" zero --image "$img" --format raw --offset $((6 * M)) --length $((2 * M)) --unmap ||
		fail "zero --unmap failed in $1"
	"$BLKIO" discard --image "$img" --format raw --offset $((10 * M)) --length $((4 * M)) ||
		fail "discard failed in $1"
	used1=$(du -k "$img" | cut -f1)

	cmp <(dd if="$img" bs=512 skip=$((4 * 1024)) count=$((2 * 1024 + 1)) status=none) \
		<(head -c $((M + 512)) /dev/zero) || fail "zeroed range is not zero ($1)"
	cmp <(dd if="$img" bs=1M skip=6 count=2 status=none) <(head -c $((2 * M)) /dev/zero) ||
		fail "zero --unmap range is not zero ($1)"
	cmp <(dd if="$img" bs=1M skip=10 count=4 status=none) <(head -c $((4 * M)) /dev/zero) ||
		fail "discarded range is not zero ($1)"
	for r in "0 $((2 * M))" "$((3 * M + 512)) $((3 * M - 512))" "$((8 * M)) $((2 * M))" "$((14 * M)) $((2 * M))"; do
		set -- $r
		"$BLKIO" verify --image "$img" --format raw --seed 9 --offset $1 --length $2 \
			>/dev/null || fail "data outside the zeroed ranges changed ($1 +$2)"
	done
	[ "$(stat -c %s "$img")" = $((16 * M)) ] || fail "size changed"
	# space comes back where the file system can punch holes
	if head -c 8192 /dev/urandom >"$1/probe" && fallocate -p -o 0 -l 4096 "$1/probe" 2>/dev/null; then
		[ $((used0 - used1)) -ge 5000 ] ||
			fail "discard/unmap freed only $((used0 - used1)) KiB in $1"
	fi
	rm -f "$1/probe"
}

check_dir "$TEST_TMP"
# tmpfs: hole punching but no ZERO_RANGE, so zero falls back to writing
if [ -w /dev/shm ]; then
	d=$(mktemp -d /dev/shm/vmmtest.XXXXXX)
	( check_dir "$d" ); rc=$?
	rm -rf "$d"
	[ $rc = 0 ] || exit $rc
fi
echo ok
