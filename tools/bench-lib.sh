#!/bin/bash
# libvmm, many VMs in one process: the start-to-boot-ready time and RSS
# growth of one VM while seven others run in the same process, against
# the same VM alone in that process (the baseline, same run).  The program
# is tests/lib/embed, built against the installed library.
set -u
EMBED=${EMBED:-build/tests/lib/embed}
K=${TESTKERNEL:-build/guest/testkernel}
[ -x "$EMBED" ] || { echo "bench-lib: no $EMBED (make builds it)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$EMBED" --kernel "$K" --dir "$tmp" --bench --runs "${BENCH_RUNS:-9}" >"$tmp/out" 2>&1 ||
	{ cat "$tmp/out"; exit 1; }
grep '^lib_' "$tmp/out"
