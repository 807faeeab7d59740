#!/bin/bash
# timeout: 60
# Malformed qcow2 images through the host tool: each gets one clear error
# line and exit status 2 (does not open), never a crash or a hang.  (The
# unit test test_qcow2_io covers more cases at the library level.)
. "$(dirname "$0")/lib.sh"
BLKIO=${BLKIO:-$BUILD/tools/blkio}
[ -x "$BLKIO" ] || fail "$BLKIO not built"
cd "$TEST_TMP" || exit 1

be32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(( $2 >> 24 & 255 )) $(( $2 >> 16 & 255 )) $(( $2 >> 8 & 255 )) $(( $2 & 255 )))" |
	dd of="$1" bs=1 seek=$3 conv=notrunc status=none; }
be64() { be32 "$1" $(( $2 >> 32 )) $3; be32 "$1" $(( $2 & 0xffffffff )) $(( $3 + 4 )); }

expect_refusal() {	# IMAGE REGEX [fill]: verify (read-only) or fill (writable)
	local out=$TEST_TMP/out rc
	"$BLKIO" ${3:-verify} --image "$1" --format qcow2 --seed 1 --length 64K >"$out" 2>&1
	rc=$?
	[ $rc = 2 ] || { cat "$out"; fail "$1: exit $rc, expected 2 (refused)"; }
	grep -Eq -- "$2" "$out" || { cat "$out"; fail "$1: error does not match /$2/"; }
	[ "$(grep -c . "$out")" -le 2 ] || { cat "$out"; fail "$1: more than a clear error line"; }
}

qemu-img create -q -f qcow2 good.qcow2 64M
"$BLKIO" fill --image good.qcow2 --format qcow2 --seed 1 --length 1M >/dev/null || fail "fill good"
l1=$(od -An -t u8 --endian=big -j 40 -N 8 good.qcow2 | tr -d ' ')
rt=$(od -An -t u8 --endian=big -j 48 -N 8 good.qcow2 | tr -d ' ')

head -c 60 good.qcow2 > trunc.qcow2
expect_refusal trunc.qcow2 "truncated"
head -c 200000 good.qcow2 > trunc2.qcow2
expect_refusal trunc2.qcow2 "past the end"
cp good.qcow2 l1eof.qcow2; be64 l1eof.qcow2 $((1 << 40)) 40
expect_refusal l1eof.qcow2 "L1 table"
cp good.qcow2 overlap.qcow2; be64 overlap.qcow2 $l1 48
expect_refusal overlap.qcow2 "overlap"
cp good.qcow2 l2eof.qcow2; be64 l2eof.qcow2 $(( (1 << 40) | (1 << 63) )) $l1
expect_refusal l2eof.qcow2 "L1 entry 0"
cp good.qcow2 huge.qcow2; be64 huge.qcow2 $((1 << 61)) 24
expect_refusal huge.qcow2 "too large"
cp good.qcow2 bits.qcow2; be32 bits.qcow2 40 20
expect_refusal bits.qcow2 "cluster_bits"
cp good.qcow2 rtbig.qcow2; be32 rtbig.qcow2 100000 56
expect_refusal rtbig.qcow2 "refcount table"
cp good.qcow2 feat.qcow2; be64 feat.qcow2 $((1 << 20)) 72
expect_refusal feat.qcow2 "unknown incompatible feature bit 20"
cp good.qcow2 dirty.qcow2; be64 dirty.qcow2 1 72
expect_refusal dirty.qcow2 "dirty.*qemu-img check -r"
cp good.qcow2 corrupt.qcow2; be64 corrupt.qcow2 2 72
expect_refusal corrupt.qcow2 "corrupt.*readonly=on" fill
"$BLKIO" verify --image corrupt.qcow2 --format qcow2 --seed 1 --length 1M >out 2>&1 ||
	{ cat out; fail "a corrupt image must still open read-only"; }
grep -q "opened read-only" out || fail "no notice that the corrupt image is read-only"
qemu-img create -q -f qcow2 a.qcow2 1M
qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 b.qcow2
qemu-img rebase -u -b b.qcow2 -F qcow2 a.qcow2
expect_refusal a.qcow2 "loop"
# the refcount table entry for the header cleared
cp good.qcow2 norc.qcow2; be64 norc.qcow2 0 $rt
expect_refusal norc.qcow2 "refcount"
echo "all malformed images refused"
