#!/bin/bash
# tools/bench-storage.sh - host storage figures, measured with build/tools/blkio
# (our io_uring engine and block layer) on a temp file on the repository's
# file system:
#   - the raw io_uring baselines (cache=none) that the guest's blkperf figures
#     are compared with: 1 MiB sequential read and write, 4 KiB random read;
#   - qcow2 through the same layer against raw (issue 4's ratios, host side):
#     sequential read, allocating sequential write, 4 KiB random read.
#
#   tools/bench-storage.sh [--json] [--quick]
#
# Lines: "NAME: value unit (host baseline X unit, ratio R)"; a baseline line
# has itself as baseline.  --json prints blkio's JSON lines instead, for
# other scripts.  Environment: BUILD (default build), BENCH_STORAGE_SIZE
# (bytes per image, default 1G), BENCH_STORAGE_SECONDS (per timed run,
# default 5), BENCH_STORAGE_DIR (default build/bench-tmp).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BLKIO=$BUILD/tools/blkio
SIZE=${BENCH_STORAGE_SIZE:-1G}
SECS=${BENCH_STORAGE_SECONDS:-5}
JSON=0
for a in "$@"; do
	case $a in
	--json) JSON=1 ;;
	--quick) SIZE=256M SECS=2 ;;
	*) echo "bench-storage: unknown argument $a" >&2; exit 2 ;;
	esac
done
[ -x "$BLKIO" ] || { echo "bench-storage: $BLKIO not built (make)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "bench-storage: qemu-img missing" >&2; exit 1; }

DIR=${BENCH_STORAGE_DIR:-$BUILD/bench-tmp}
mkdir -p "$DIR"
TMP=$(mktemp -d "$DIR/storage.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# run_blkio ARGS...: one blkio bench; prints its JSON line, exits on failure
run_blkio() {
	local out
	out=$("$BLKIO" bench "$@" 2>&1) || {
		echo "bench-storage: blkio bench $* failed: $out" >&2; exit 1; }
	[ $JSON = 1 ] && echo "$out" >&2
	echo "$out"
}
field() {	# field JSON KEY
	echo "$1" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
line() {	# line NAME VALUE UNIT BASE
	[ $JSON = 1 ] && return
	printf '%s: %s %s (host baseline %s %s, ratio %s)\n' "$1" "$2" "$3" \
		"$4" "$3" "$(ratio "$2" "$4")"
}

raw=$TMP/raw.img
truncate -s "$SIZE" "$raw"
# allocate every block first: the baselines measure data, not allocation
"$BLKIO" bench --image "$raw" --format raw --mode seqwrite --bs 1M --qd 8 \
	--cache none >/dev/null || exit 1

r_sr=$(run_blkio --image "$raw" --format raw --mode seqread --bs 1M --qd 8 --cache none --seconds "$SECS")
r_sw=$(run_blkio --image "$raw" --format raw --mode seqwrite --bs 1M --qd 8 --cache none --seconds "$SECS")
r_rr=$(run_blkio --image "$raw" --format raw --mode randread --bs 4K --qd 32 --cache none --seconds "$SECS")
# one untimed pass over the whole image, the yardstick of the allocating write
r_sw1=$(run_blkio --image "$raw" --format raw --mode seqwrite --bs 1M --qd 8 --cache none)

v=$(field "$r_sr" MBps); line host-raw-seqread-1M-qd8 "$v" MB/s "$v"
v=$(field "$r_sw" MBps); line host-raw-seqwrite-1M-qd8 "$v" MB/s "$v"
v=$(field "$r_rr" iops); line host-raw-randread-4K-qd32 "$v" IOPS "$v"

# qcow2: an allocating pass on a fresh image, then reads of the data it wrote
q=$TMP/img.qcow2
qemu-img create -q -f qcow2 "$q" "$SIZE" || exit 1
q_sw1=$(run_blkio --image "$q" --format qcow2 --mode seqwrite --bs 1M --qd 8 --cache none)
q_sr=$(run_blkio --image "$q" --format qcow2 --mode seqread --bs 1M --qd 8 --cache none --seconds "$SECS")
q_rr=$(run_blkio --image "$q" --format qcow2 --mode randread --bs 4K --qd 32 --cache none --seconds "$SECS")
line host-qcow2-seqread-1M-qd8 "$(field "$q_sr" MBps)" MB/s "$(field "$r_sr" MBps)"
line host-qcow2-alloc-seqwrite-1M-qd8 "$(field "$q_sw1" MBps)" MB/s "$(field "$r_sw1" MBps)"
line host-qcow2-randread-4K-qd32 "$(field "$q_rr" iops)" IOPS "$(field "$r_rr" iops)"
exit 0
