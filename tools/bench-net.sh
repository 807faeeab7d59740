#!/bin/bash
# tools/bench-net.sh - virtio-net throughput: the test kernel's netperf in
# the guest against the host's own TAP path (build/tools/netio bench: the
# same frames written into / read from a TAP by netio alone, the ceiling of
# this path), in the same run, inside a network namespace made here.
#
#   tools/bench-net.sh [--seconds 3] [--runs 3]
#
# Per frame size (1514-byte frames, 64 KiB TSO frames) and direction:
#   net-tx-1514: G Gbit/s (host H Gbit/s, ratio R), exits/frame E
# tx (guest -> host) is counted by netio sink on the TAP's far side, rx
# (host -> guest) by the guest; each figure is the median of --runs runs.
# Needs root (a namespace), /dev/net/tun and /dev/kvm; exits 1 if a run
# fails.
set -u
cd "$(dirname "$0")/.."
SECS=3 RUNS=3
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) SECS=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	*) echo "bench-net: unknown argument $1" >&2; exit 2 ;;
	esac
done
VMM=${VMM:-build/vmm}
TESTKERNEL=${TESTKERNEL:-build/guest/testkernel}
NETIO=${NETIO:-build/tools/netio}
VMM=$(realpath "$VMM") TESTKERNEL=$(realpath "$TESTKERNEL") NETIO=$(realpath "$NETIO")
for f in "$VMM" "$TESTKERNEL" "$NETIO"; do
	[ -e "$f" ] || { echo "bench-net: $f missing (make first)" >&2; exit 1; }
done
[ -w /dev/kvm ] || { echo "bench-net: /dev/kvm not accessible" >&2; exit 1; }
[ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] ||
	{ echo "bench-net: needs root and /dev/net/tun (a network namespace)" >&2; exit 1; }
"$VMM" --help 2>&1 | grep -q -- '--net' || { echo "bench-net: the VMM has no --net" >&2; exit 1; }

NS=vmmbench-$$
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-net.XXXXXX")
cleanup() {
	ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$NS" || { echo "bench-net: cannot create a namespace" >&2; exit 1; }
nsx() { ip netns exec "$NS" "$@"; }
nsx sh -c 'echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6' 2>/dev/null
nsx ip link set lo up
nsx ip tuntap add dev vb0 mode tap vnet_hdr
nsx ip link set vb0 up

median() { sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
json() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" | head -1; }

host() {	# host DIR FRAME: Gbit/s of netio alone
	for _ in $(seq "$RUNS"); do
		nsx timeout $((SECS + 30)) "$NETIO" bench --tap vb0 --dir "$1" \
			--frame "$2" --seconds "$SECS" | json gbps
	done | median
}

# guest DIR FRAME: "Gbit/s exits_per_frame", medians
guest() {
	local out=$work/guest.out far=$work/far.out g=() e=() line
	for _ in $(seq "$RUNS"); do
		if [ "$1" = tx ]; then
			rm -f "$work/ready"
			nsx timeout $((SECS + 60)) "$NETIO" sink --if vb0 \
				--idle-ms 1000 --verify sample \
				--ready "$work/ready" >"$far" 2>&1 &
			for _ in $(seq 300); do
				[ -e "$work/ready" ] && break
				sleep 0.1
			done
		else
			nsx timeout $((SECS + 60)) "$NETIO" source --if vb0 \
				--frame "$2" --seconds $((SECS + 3)) --sync >"$far" 2>&1 &
		fi
		nsx timeout $((SECS + 60)) "$VMM" --kernel "$TESTKERNEL" --memory 512M \
			--timeout $((SECS + 50)) --net tap=vb0 \
			--cmdline "vmmtest.run=netperf:dir=$1:frame=$2:seconds=$SECS" \
			>"$out" 2>&1 </dev/null
		wait
		line=$(grep '^NETPERF ' "$out")
		if [ -z "$line" ] || ! grep -q 'vmmtest: 1 passed' "$out"; then
			echo "bench-net: guest netperf $1 $2 failed:" >&2
			tail -5 "$out" >&2
			return 1
		fi
		if [ "$1" = tx ]; then
			g+=("$(json gbps <"$far")")
		else
			g+=("$(echo "$line" | json gbps)")
		fi
		e+=("$(echo "$line" | json exits_per_frame)")
	done
	echo "$(printf '%s\n' "${g[@]}" | median) $(printf '%s\n' "${e[@]}" | median)"
}

report() {	# report NAME GUEST EXITS HOST
	awk -v n="$1" -v g="$2" -v e="$3" -v h="$4" 'BEGIN {
		printf "%s: %.2f Gbit/s (host %.2f Gbit/s, ratio %.2f), exits/frame %s\n",
			n, g, h, (h > 0 ? g / h : 0), e }'
}

status=0
for frame in 1514 65280; do
	for dir in tx rx; do
		h=$(host $dir $frame)
		if r=$(guest $dir $frame); then
			set -- $r
			report "net-$dir-$frame" "$1" "$2" "$h"
		else
			status=1
		fi
	done
done
exit $status
