#!/bin/bash
# Snapshot and restore with the test kernel (256 MiB, native mode): the
# time to take a snapshot at boot-ready, the restore from vmm start to the
# vCPUs running (the "restored" event), the whole restored run of `hello`
# (start to exit) against a cold boot running the same (the baseline, same
# run), and the peak RSS of a restored VM that touched little memory
# (lazy restore: far below the 256 MiB of RAM).  Medians of BENCH_RUNS (10).
set -u
VMM=${VMM:-build/vmm}
K=${TESTKERNEL:-build/guest/testkernel}
N=${BENCH_RUNS:-10}
[ -w /dev/kvm ] || { echo "snapshot: skipped (no /dev/kvm)"; exit 0; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# wall ms and peak RSS (KiB) of one command
run() {
	python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ms = (time.monotonic() - t) * 1e3
print("%.3f %d %d" % (ms, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode))
PY
}
for i in $(seq "$N"); do
	rm -rf "$tmp/s"
	"$VMM" --kernel "$K" --memory 256M --serial off --timeout 30 \
		--cmdline "vmmtest.run=hello" --snapshot-to "$tmp/s" 2>&1 >/dev/null |
		sed -n 's/.*snapshot: .*: \([0-9.]*\) ms, .*/\1/p' >>"$tmp/snap"
	"$VMM" --restore "$tmp/s" --serial off --timeout 30 --events "file=$tmp/ev" >/dev/null 2>&1 ||
		{ echo "snapshot: a restore failed"; exit 1; }
	sed -n 's/.*"event":"restored","wall_ms":\([0-9.]*\).*/\1/p' "$tmp/ev" >>"$tmp/restored"
	run "$VMM" --restore "$tmp/s" --serial off --timeout 30 >>"$tmp/rrun"
	run "$VMM" --kernel "$K" --memory 256M --serial off --timeout 30 \
		--cmdline "vmmtest.run=hello" >>"$tmp/cold"
done
[ "$(wc -l <"$tmp/snap")" -eq "$N" ] && [ "$(wc -l <"$tmp/restored")" -eq "$N" ] ||
	{ echo "snapshot: missing snapshot or restored figures"; exit 1; }
awk '$3 != 0 { bad = 1 } END { exit bad }' "$tmp/rrun" "$tmp/cold" ||
	{ echo "snapshot: a run did not pass"; exit 1; }
snap=$(median <"$tmp/snap")
restored=$(median <"$tmp/restored")
rrun=$(cut -d' ' -f1 "$tmp/rrun" | median)
cold=$(cut -d' ' -f1 "$tmp/cold" | median)
rss=$(cut -d' ' -f2 "$tmp/rrun" | median)
crss=$(cut -d' ' -f2 "$tmp/cold" | median)
printf 'snapshot_take_256M: %.2f ms (vCPUs parked to files written)\n' "$snap"
printf 'restore_to_running: %.2f ms (vmm start to vCPUs running; target <= 10 ms)\n' "$restored"
printf 'restore_run_hello: %.2f ms (host baseline: cold boot running the same %.2f ms, ratio %.2f)\n' \
	"$rrun" "$cold" "$(echo "$rrun / $cold" | bc -l)"
printf 'restored_peak_rss: %d KiB (cold boot %d KiB; guest RAM 262144 KiB)\n' "$rss" "$crss"
