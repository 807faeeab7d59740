#!/bin/bash
# Boot time: VMM start to the test kernel's boot-ready marker (wall and CPU
# ms, median of 20 runs) and the VMM's own RSS beyond guest RAM.  The host
# baseline is the same process start without a VM: `vmm --version`.
set -u
VMM=${VMM:-build/vmm}
K=${TESTKERNEL:-build/guest/testkernel}
N=${BENCH_RUNS:-20}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$N"); do
	"$VMM" --kernel "$K" --boot-timer --serial off --timeout 10 \
		--cmdline "vmmtest.run=hello" 2>&1 >/dev/null |
		sed -n 's/.*boot-ready wall_ms=\([0-9.]*\) cpu_ms=\([0-9.]*\) rss_beyond_guest_kib=\([0-9]*\).*/\1 \2 \3/p' >>"$tmp/runs"
	s=$(date +%s%N); "$VMM" --version >/dev/null; e=$(date +%s%N)
	echo "scale=3; ($e - $s) / 1000000" | bc >>"$tmp/base"
done
[ "$(wc -l <"$tmp/runs")" -eq "$N" ] || { echo "boot: only $(wc -l <"$tmp/runs") of $N runs reported boot-ready"; exit 1; }
wall=$(cut -d' ' -f1 "$tmp/runs" | median)
cpu=$(cut -d' ' -f2 "$tmp/runs" | median)
rss=$(cut -d' ' -f3 "$tmp/runs" | median)
base=$(median <"$tmp/base")
printf 'boot_to_ready_wall: %.2f ms (host baseline: vmm process start %.2f ms, ratio %.1f; target <= 10 ms)\n' \
	"$wall" "$base" "$(echo "$wall / $base" | bc -l)"
printf 'boot_to_ready_cpu: %.2f ms (target <= 10 ms)\n' "$cpu"
printf 'vmm_rss_beyond_guest_ram: %d KiB (%.2f MiB; target <= 5 MiB)\n' "$rss" "$(echo "$rss / 1024" | bc -l)"
