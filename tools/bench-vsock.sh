#!/bin/bash
# virtio-vsock throughput: the test kernel's vsockperf streams SIZE bytes
# guest->host and host->guest through the VMM to a host listener
# (vsock-peer at UDS_5001); the baseline is two host processes streaming
# the same bytes through a Unix socket pair (vsock-peer baseline), measured
# in the same run.  Medians of RUNS.  Optional: with VSOCK_LINUX=1 and the
# Linux guest built, the round trip of `vmm-agent exec true`.
#   tools/bench-vsock.sh [--size 512M] [--runs 3]
set -u
SIZE=${BENCH_VSOCK_SIZE:-512M} RUNS=${BENCH_RUNS_VSOCK:-3}
while [ $# -gt 0 ]; do
	case "$1" in
	--size) SIZE=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	*) echo "bench-vsock: unknown argument $1" >&2; exit 2 ;;
	esac
done
TOP=${TOP:-$(cd "$(dirname "$0")/.." && pwd)}
VMM=${VMM:-$TOP/build/vmm}
K=${TESTKERNEL:-$TOP/build/guest/testkernel}
PEER=$TOP/build/tools/vsock-peer
bytes=$(numfmt --from=iec "$SIZE")
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
tmp=$(mktemp -d); trap '[ -n "${PEER_PID:-}" ] && kill "$PEER_PID" 2>/dev/null; rm -rf "$tmp"' EXIT
[ -w /dev/kvm ] || { echo "vsock: skipped (no /dev/kvm)"; exit 0; }
"$PEER" listen "$tmp/v.sock_5001" &
PEER_PID=$!
for i in $(seq "$RUNS"); do
	"$VMM" --kernel "$K" --serial file="$tmp/console" --timeout 300 \
		--vsock "cid=3,uds=$tmp/v.sock" \
		--cmdline "vmmtest.run=vsockperf:size=$SIZE" >/dev/null 2>&1 ||
		{ echo "vsock: vsockperf failed:"; tail -5 "$tmp/console"; exit 1; }
	for d in guest_to_host host_to_guest; do
		sed -n "s/.*VSOCKPERF .*\"dir\":\"$d\".*\"MBps\":\([0-9.]*\),\"exits_per_MB\":\([0-9.]*\).*/\1 \2/p" \
			"$tmp/console" >>"$tmp/$d"
	done
	"$PEER" baseline "$bytes" | sed -n 's/.*MBps=\([0-9.]*\).*/\1/p' >>"$tmp/base"
done
base=$(median <"$tmp/base")
for d in guest_to_host host_to_guest; do
	mbps=$(cut -d' ' -f1 "$tmp/$d" | median)
	epm=$(cut -d' ' -f2 "$tmp/$d" | median)
	printf 'vsock-%s-%s: %.1f MB/s (host unix socket pair %.1f MB/s, ratio %.2f; target >= 0.8), exits/MB %s\n' \
		"$d" "$SIZE" "$mbps" "$base" "$(echo "$mbps / $base" | bc -l)" "$epm"
done
echo "(load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
