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
# has itself as baseline.  Each figure is the median of RUNS runs.  --json
# prints blkio's JSON lines instead, for other scripts.
# Environment: BUILD (default build), BENCH_STORAGE_SIZE (bytes per image,
# default 1G), BENCH_STORAGE_SECONDS (per timed run, default 3),
# BENCH_STORAGE_RUNS (default 3), BENCH_STORAGE_DIR (default build/bench-tmp).
# blkio's buffers are THP-backed like the VMM's guest RAM (fair baselines).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BLKIO=$BUILD/tools/blkio
SIZE=${BENCH_STORAGE_SIZE:-1G}
SECS=${BENCH_STORAGE_SECONDS:-3}
RUNS=${BENCH_STORAGE_RUNS:-3}
JSON=0
exec 3>&1	# run_blkio's --json output, past the command substitutions
for a in "$@"; do
	case $a in
	--json) JSON=1 ;;
	--quick) SIZE=256M SECS=1 RUNS=1 ;;
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
	[ $JSON = 1 ] && echo "$out" >&3
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

raw=$TMP/raw.img q=$TMP/img.qcow2
truncate -s "$SIZE" "$raw"
# allocate every block first: the baselines measure data, not allocation
"$BLKIO" bench --image "$raw" --format raw --mode seqwrite --bs 1M --qd 8 \
	--cache none >/dev/null || exit 1

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
declare -A res
add() { res[$1]="${res[$1]:-} $2"; }	# add KEY VALUE
med() { printf '%s\n' ${res[$1]} | median; }

# Raw and qcow2 take turns within each run, so neither gets all the warm
# (or cold) moments of the storage below this machine; figures are medians.
for _ in $(seq "$RUNS"); do
	# an allocating pass on a fresh qcow2 against one on a fresh sparse raw
	# file: both pay for the file system's allocation, so the ratio is qcow2's
	rm -f "$q" "$TMP/fresh.img"
	qemu-img create -q -f qcow2 "$q" "$SIZE" || exit 1
	truncate -s "$SIZE" "$TMP/fresh.img"
	j=$(run_blkio --image "$q" --format qcow2 --mode seqwrite --bs 1M --qd 8 --cache none) || exit 1
	add q_sw1 "$(field "$j" MBps)"
	j=$(run_blkio --image "$TMP/fresh.img" --format raw --mode seqwrite --bs 1M --qd 8 --cache none) || exit 1
	add r_sw1 "$(field "$j" MBps)"
	for img in raw q; do
		if [ $img = raw ]; then args=(--image "$raw" --format raw); else args=(--image "$q" --format qcow2); fi
		j=$(run_blkio "${args[@]}" --mode seqread --bs 1M --qd 8 --cache none --seconds "$SECS") || exit 1
		add ${img}_sr "$(field "$j" MBps)"
		j=$(run_blkio "${args[@]}" --mode randread --bs 4K --qd 32 --cache none --seconds "$SECS") || exit 1
		add ${img}_rr "$(field "$j" iops)"
	done
	j=$(run_blkio --image "$raw" --format raw --mode seqwrite --bs 1M --qd 8 --cache none --seconds "$SECS") || exit 1
	add raw_sw "$(field "$j" MBps)"
	# what io_uring registered buffers (io_engine_register_memory) add
	j=$(run_blkio --image "$raw" --format raw --mode randread --bs 4K --qd 32 --cache none --seconds "$SECS" --fixed-buffers) || exit 1
	add raw_rrf "$(field "$j" iops)"
done

v=$(med raw_sr); line host-raw-seqread-1M-qd8 "$v" MB/s "$v"
v=$(med raw_sw); line host-raw-seqwrite-1M-qd8 "$v" MB/s "$v"
v=$(med raw_rr); line host-raw-randread-4K-qd32 "$v" IOPS "$v"
line host-raw-randread-4K-qd32-fixedbufs "$(med raw_rrf)" IOPS "$(med raw_rr)"
line host-qcow2-seqread-1M-qd8 "$(med q_sr)" MB/s "$(med raw_sr)"
line host-qcow2-alloc-seqwrite-1M-qd8 "$(med q_sw1)" MB/s "$(med r_sw1)"
line host-qcow2-randread-4K-qd32 "$(med q_rr)" IOPS "$(med raw_rr)"
exit 0
