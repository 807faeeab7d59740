#!/bin/bash
# tools/bench-qcow2.sh - qcow2 against raw, measured in the guest: the test
# kernel's blkperf on a raw disk and on a qcow2 disk, interleaved in one run,
# same size, same cache mode (none: O_DIRECT, so the figures are the
# storage's and not the page cache's).
#   - allocating sequential write: 1 MiB requests over a fresh image (qcow2:
#     every cluster newly allocated; raw: a fresh sparse file, so the file
#     system allocates too);
#   - sequential read of what that wrote (the qcow2 clusters now exist);
#   - 4 KiB random read over the disk.
# Targets (issue 4): seq read >= 0.95, allocating seq write >= 0.90, 4K
# random read >= 0.90 of raw.
#
#   tools/bench-qcow2.sh [--size 1G] [--runs 3] [--dir DIR] [--quick]
#
# One line per figure, the median of --runs:
#   NAME: value unit (baseline X unit, ratio R)
# Exits 1 if a run fails.
set -u
cd "$(dirname "$0")/.."
SIZE=1G RUNS=3 DIR=${TMPDIR:-/tmp} CLUSTER=65536
while [ $# -gt 0 ]; do
	case "$1" in
	--size) SIZE=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--dir) DIR=$2; shift 2 ;;
	--cluster) CLUSTER=$2; shift 2 ;;
	--quick) SIZE=256M RUNS=1; shift ;;
	*) echo "bench-qcow2: unknown argument $1" >&2; exit 2 ;;
	esac
done
VMM=${VMM:-build/vmm}
TESTKERNEL=${TESTKERNEL:-build/guest/testkernel}
for f in "$VMM" "$TESTKERNEL"; do
	[ -e "$f" ] || { echo "bench-qcow2: $f missing (make first)" >&2; exit 1; }
done
[ -w /dev/kvm ] || { echo "bench-qcow2: /dev/kvm not accessible" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "bench-qcow2: qemu-img missing" >&2; exit 1; }

work=$(mktemp -d "$DIR/bench-qcow2.XXXXXX")
trap 'rm -rf "$work"' EXIT
bytes=$(numfmt --from=iec "$SIZE")
RSIZE=$(( bytes < 256 * 1048576 ? bytes : 256 * 1048576 ))	# random read volume

median() { sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

# one VM: allocating write, sequential read, random read on a fresh image;
# appends "MODE VALUE" lines to $work/FORMAT.res
measure() {	# measure FORMAT
	local img=$work/disk.$1 out=$work/vm.out
	rm -f "$img"
	if [ "$1" = qcow2 ]; then
		qemu-img create -q -f qcow2 -o cluster_size=$CLUSTER "$img" "$bytes" || return 1
	else
		truncate -s "$bytes" "$img" || return 1
	fi
	timeout 600 "$VMM" --kernel "$TESTKERNEL" --memory 512M --timeout 580 \
		--disk "path=$img,format=$1,cache=none" \
		--cmdline "vmmtest.run=blkperf:mode=write:bs=1M:qd=16:size=$bytes,blkperf:mode=read:bs=1M:qd=16:size=$bytes,blkperf:mode=randread:bs=4K:qd=16:size=$RSIZE" \
		>"$out" 2>&1 </dev/null
	if [ "$(grep -c '^BLKPERF ' "$out")" != 3 ]; then
		echo "bench-qcow2: blkperf on $1 failed:" >&2
		tail -5 "$out" >&2
		return 1
	fi
	{
		echo "write $(grep '^BLKPERF .*mode=write' "$out" | field MBps)"
		echo "read $(grep '^BLKPERF .*mode=read ' "$out" | field MBps)"
		echo "randread $(grep '^BLKPERF .*mode=randread' "$out" | field IOPS)"
	} >>"$work/$1.res"
	if [ "$1" = qcow2 ]; then
		qemu-img check -q "$img" || { echo "bench-qcow2: qemu-img check failed" >&2; return 1; }
	fi
	rm -f "$img"
}

for _ in $(seq "$RUNS"); do
	measure raw || exit 1
	measure qcow2 || exit 1
done

get() { awk -v m="$2" '$1 == m {print $2}' "$work/$1.res" | median; }
report() {	# NAME UNIT MODE
	awk -v n="$1" -v u="$2" -v q="$(get qcow2 "$3")" -v r="$(get raw "$3")" 'BEGIN {
		printf "%s: %.1f %s (baseline %.1f %s, ratio %.2f)\n",
			n, q, u, r, u, (r > 0 ? q / r : 0) }'
}
report qcow2-seqread-1M-qd16 MB/s read
report qcow2-alloc-seqwrite-1M-qd16 MB/s write
report qcow2-randread-4K-qd16 IOPS randread
