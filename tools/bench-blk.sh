#!/bin/bash
# tools/bench-blk.sh - virtio-blk throughput: the test kernel's blkperf in
# the guest against the host's own io_uring figures (build/tools/blkio) on
# the same file in the same run, both O_DIRECT (cache=none).
#
#   tools/bench-blk.sh [--size 1G] [--dir DIR] [--runs 3]
#
# Prints one line per figure:
#   NAME: value unit (host X unit, ratio R), exits/req E
# and exits 1 if a run fails.  Each figure is the median of --runs runs.
set -u
cd "$(dirname "$0")/.."
SIZE=1G DIR=${TMPDIR:-/tmp} RUNS=3
while [ $# -gt 0 ]; do
	case "$1" in
	--size) SIZE=$2; shift 2 ;;
	--dir) DIR=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	*) echo "bench-blk: unknown argument $1" >&2; exit 2 ;;
	esac
done
VMM=${VMM:-build/vmm}
TESTKERNEL=${TESTKERNEL:-build/guest/testkernel}
BLKIO=${BLKIO:-build/tools/blkio}
for f in "$VMM" "$TESTKERNEL" "$BLKIO"; do
	[ -e "$f" ] || { echo "bench-blk: $f missing (make first)" >&2; exit 1; }
done
[ -w /dev/kvm ] || { echo "bench-blk: /dev/kvm not accessible" >&2; exit 1; }

work=$(mktemp -d "$DIR/bench-blk.XXXXXX")
trap 'rm -rf "$work"' EXIT
img=$work/disk.img
# a real (allocated) file, so reads hit the storage and not holes
dd if=/dev/zero of="$img" bs=1M count=$(( $(numfmt --from=iec "$SIZE") >> 20 )) \
	oflag=direct status=none || { echo "bench-blk: cannot create $img" >&2; exit 1; }

median() { sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
json() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

# host: MB/s for sequential (1e6 bytes), IOPS for random
host() {	# host MODE BS QD FIELD
	for _ in $(seq "$RUNS"); do
		"$BLKIO" bench --image "$img" --format raw --mode "$1" --bs "$2" \
			--qd "$3" --size "$SIZE" --seconds 3 --cache none | json "$4"
	done | median
}
# guest: one VM per run; prints "value exits_per_req"
guest() {	# guest MODE BS QD SIZE FIELD
	local out=$work/guest.out v=() e=() line
	for _ in $(seq "$RUNS"); do
		timeout 300 "$VMM" --kernel "$TESTKERNEL" --memory 512M --timeout 280 \
			--disk "path=$img,format=raw,cache=none" \
			--cmdline "vmmtest.run=blkperf:mode=$1:bs=$2:qd=$3:size=$4" \
			>"$out" 2>&1 </dev/null
		line=$(grep '^BLKPERF ' "$out")
		if [ -z "$line" ]; then
			echo "bench-blk: guest blkperf $1 failed:" >&2
			tail -5 "$out" >&2
			return 1
		fi
		v+=("$(echo "$line" | field "$5")")
		e+=("$(echo "$line" | field exits_per_req)")
	done
	echo "$(printf '%s\n' "${v[@]}" | median) $(printf '%s\n' "${e[@]}" | median)"
}
report() {	# report NAME UNIT GUEST_VALUE EXITS HOST_VALUE
	awk -v n="$1" -v u="$2" -v g="$3" -v e="$4" -v h="$5" 'BEGIN {
		printf "%s: %.1f %s (host %.1f %s, ratio %.2f), exits/req %s\n",
			n, g, u, h, u, (h > 0 ? g / h : 0), e }'
}

status=0
h=$(host seqread 1M 16 MBps); set -- $(guest read 1M 16 "$SIZE" MBps) || status=1
[ $status = 0 ] && report "blk-seqread-1M-qd16" MB/s "$1" "$2" "$h"
h=$(host seqwrite 1M 16 MBps); set -- $(guest write 1M 16 "$SIZE" MBps) || status=1
[ $status = 0 ] && report "blk-seqwrite-1M-qd16" MB/s "$1" "$2" "$h"
h=$(host randread 4K 16 iops); set -- $(guest randread 4K 16 256M IOPS) || status=1
[ $status = 0 ] && report "blk-randread-4K-qd16" IOPS "$1" "$2" "$h"
exit $status
