#!/bin/bash
# tools/vmm-matrix run: a 2 x 2 x 3 matrix (guest RAM x disk size x
# iterations) of the test kernel's qcow2 sequential reads, checked file by
# file (cells, stats against the figures, CSV, summary, meta); quiet off a
# terminal, a progress line on one; iterations that fail are counted, kept
# out of the stats and make the run exit 1; bad input exits 2 with one line.
# Seconds on a KVM host; the bound is wide for an emulated test host, where
# starting Python alone takes seconds.
# timeout: 480
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/integration/matrix/lib.sh"
T=$TEST_TMP
export TMPDIR=$T	# the cells' images

# the workloads: names one per line, test-kernel ones first
"$MATRIX" workloads >"$T/wl" || fail "workloads failed"
head -1 "$T/wl" | grep -q '^blk-' || fail "the first workload is not a test-kernel one"
awk '/^linux-/ {l=1} /^blk-/ && l {exit 1}' "$T/wl" || fail "a test-kernel workload after a Linux one"
[ "$(grep -c -- '-qcow2$' "$T/wl")" = 3 ] || fail "blkperf read/write/randread on qcow2 not all listed"

"$MATRIX" run --timeout 120 --vmm "$MX_VMM" --workload blk-seqread-qcow2 --memory 64M,128M \
	--size 4M,8M --iterations 3 --out "$T/m" >"$T/out" 2>"$T/err"
rc=$?
[ $rc = 0 ] || { cat "$T/out" "$T/err"; fail "run exited $rc"; }
[ -s "$T/err" ] && { cat "$T/err"; fail "run wrote to stderr off a terminal"; }
/usr/bin/python3 "$MX_DIR/check-run.py" "$T/m" blk-seqread-qcow2 64M,128M 4M,8M 3 0 || fail "run results"
cmp -s "$T/out" "$T/m/summary.txt" || fail "stdout is not the summary"
grep -q '^64M     4M    1     3   3     0 ' "$T/m/summary.txt" || fail "summary table: $(cat "$T/m/summary.txt")"
grep -q '"bytes": 8388608,' "$T/m/cell-128M-8M.json" ||
	fail "blkperf did not read the whole 8M disk"
ls "$T"/vmm-matrix.* >/dev/null 2>&1 && fail "a cell left its work directory behind"

# on a terminal (script(1) makes one): the progress line (cells, iteration,
# elapsed, ETA)
if script -qec true /dev/null </dev/null >/dev/null 2>&1; then
	script -qfec "'$MATRIX' run --timeout 120 --vmm '$MX_VMM' --workload blk-seqwrite-raw --memory 64M --size 4M --iterations 1 --out '$T/tty' >/dev/null" \
		"$T/typescript" >/dev/null </dev/null || fail "the run on a terminal failed: $(cat "$T/typescript")"
	grep -Eq 'cells 0/1 \[64M:4M:1 it 1/1\] elapsed [0-9:]+ ETA' "$T/typescript" || fail "no progress line: $(cat -v "$T/typescript")"
	grep -q 'cells 1/1 ' "$T/typescript" || fail "the progress line never counted the cell"
else
	echo "no pseudo-terminal on this host: the progress line is not checked"
fi

# every other VM fails (call 0 is run's vmm --version, so iterations 1
# and 3): counted, kept out of the stats, exit 1
cat >"$T/flaky-vmm" <<EOS
#!/bin/bash
n=\$(cat "$T/count" 2>/dev/null || echo 0); echo \$((n + 1)) >"$T/count"
[ \$((n % 2)) = 1 ] && { echo "flaky: failing call \$n"; exit 125; }
exec "$MX_VMM" "\$@"
EOS
chmod +x "$T/flaky-vmm"
"$MATRIX" run --timeout 120 --vmm "$T/flaky-vmm" --workload blk-seqwrite-raw --memory 64M --size 4M \
	--iterations 4 --out "$T/f" >"$T/out" 2>&1
rc=$?
[ $rc = 1 ] || { cat "$T/out"; fail "a run with failed iterations exited $rc, expected 1"; }
/usr/bin/python3 "$MX_DIR/check-run.py" "$T/f" blk-seqwrite-raw 64M 4M 4 2 || fail "failed iterations"
grep -q 'failed: 64M 4M cpus 1 iteration 3: vmm exited 125' "$T/f/summary.txt" || fail "summary lacks the failure: $(cat "$T/f/summary.txt")"
grep -q '^ *"flaky: failing call 1"$' "$T/f/cell-64M-4M.json" ||
	fail "a failed iteration does not keep the console's tail"

# bad input: one line, status 2, nothing run
bad() {	# bad WHAT ARGS...
	local what=$1; shift
	"$MATRIX" "$@" >"$T/out" 2>&1
	local rc=$?
	[ $rc = 2 ] || { cat "$T/out"; fail "$what: exit $rc, expected 2"; }
	[ "$(wc -l <"$T/out")" = 1 ] || { cat "$T/out"; fail "$what: not one line"; }
	grep -q '^vmm-matrix: ' "$T/out" || fail "$what: $(cat "$T/out")"
}
bad "unknown workload" run --workload nope --memory 64M --size 4M --out "$T/x"
bad "bad size" run --workload blk-seqread-raw --memory 64M --size 4X --out "$T/x"
bad "size not whole requests" run --workload blk-seqread-raw --memory 64M --size 1536K --out "$T/x"
bad "existing run" run --vmm "$MX_VMM" --workload blk-seqread-raw --memory 64M --size 4M --out "$T/m"
bad "missing vmm" run --vmm "$T/none" --workload blk-seqread-raw --memory 64M --size 4M --out "$T/x"
bad "compare a non-run" compare "$T/m" "$T"
[ -e "$T/x" ] && fail "bad input created the output directory"
mx_done
