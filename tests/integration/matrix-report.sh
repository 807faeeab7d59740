#!/bin/bash
# Three real runs of one matrix (64M x 8M,16M x 4 iterations of the test
# kernel's raw sequential reads): compare finds no regression between two
# identical runs nor a run and itself, and catches (exit 1, every cell) a
# run whose figures were scaled down by VMM_MATRIX_SCALE (the injected
# slowdown); report makes one HTML page with a gnuplot PNG: a line per run,
# error bars, the comparison tables.
# Seconds on a KVM host; the bound is wide for an emulated test host.
# timeout: 480
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/integration/matrix/lib.sh"
T=$TEST_TMP
export TMPDIR=$T
command -v gnuplot >/dev/null || fail "gnuplot missing (tools/install-deps)"
cmp_run() {	# cmp_run WANT_STATUS A B [ARGS...]: compare, output in $T/cmp
	local want=$1; shift
	"$MATRIX" compare "$@" >"$T/cmp" 2>&1
	local rc=$?
	[ $rc = "$want" ] || { cat "$T/cmp"; fail "compare $* exited $rc, expected $want"; }
}

# two real runs of the same matrix: no regression beyond the threshold.
# They run at the same time, so a change in the load of this shared 2-core
# host hits both alike; the threshold is wide all the same.  The slowdown
# injected below is ten-fold: an emulated test host's figures spread over
# a factor of 4 from run to run.
# shellcheck disable=SC2054
m=(--timeout 120 --vmm "$MX_VMM" --workload blk-seqread-raw --memory 64M --size 8M,16M --iterations 4)
"$MATRIX" run "${m[@]}" --out "$T/r1" >"$T/out1" 2>&1 &
r1=$!
"$MATRIX" run "${m[@]}" --out "$T/r2" >"$T/out2" 2>&1 || { cat "$T/out2"; fail "run r2"; }
wait $r1 || { cat "$T/out1"; fail "run r1"; }
echo "$(date +%T) identical runs done"
VMM_MATRIX_SCALE=0.1 "$MATRIX" run "${m[@]}" --out "$T/slow10" --label "scaled 0.1" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "run slow10"; }
echo "$(date +%T) scaled run done"
grep -q 'NOTE: figures scaled by VMM_MATRIX_SCALE=0.1' "$T/slow10/summary.txt" || fail "the scaled run does not say so"
cmp_run 0 "$T/r1" "$T/r2" --threshold 50%
grep -q REGRESSED "$T/cmp" && fail "identical runs regressed: $(cat "$T/cmp")"
cmp_run 0 "$T/r1" "$T/r1"
[ "$(grep -Ec '^blk-seqread-raw .* \+0\.0% .* same$' "$T/cmp")" = 2 ] || fail "a run against itself: $(cat "$T/cmp")"
cmp_run 1 "$T/r1" "$T/slow10"
[ "$(grep -Ec '^blk-seqread-raw .* REGRESSED$' "$T/cmp")" = 2 ] || fail "the slowdown was not caught in every cell: $(cat "$T/cmp")"
grep -q "NOTE: B's figures were scaled by VMM_MATRIX_SCALE=0.1" "$T/cmp" || fail "compare hides the scaling"
cmp_run 0 "$T/slow10" "$T/r1"
[ "$(grep -Ec '^blk-seqread-raw .* improved$' "$T/cmp")" = 2 ] || fail "the way back is not an improvement: $(cat "$T/cmp")"

# the report: one plot (one memory size), three lines with error bars
"$MATRIX" report "$T/r1" "$T/r2" "$T/slow10" --out "$T/rep" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "report failed"; }
grep -q "^$T/rep/index.html: 1 plot$" "$T/out" || fail "report said: $(cat "$T/out")"
png=$T/rep/plot-blk-seqread-raw-64M-1cpu.png
[ -s "$T/rep/index.html" ] || fail "no index.html"
grep -q "<img src='plot-blk-seqread-raw-64M-1cpu.png'" "$T/rep/index.html" || fail "the page does not show the plot"
/usr/bin/python3 - "$png" <<'PY' || fail "$png is not a 900x520 PNG"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR", "not a PNG"
assert struct.unpack(">II", b[16:24]) == (900, 520), struct.unpack(">II", b[16:24])
assert len(b) > 5000, f"only {len(b)} bytes"
PY
[ "$(grep -c '^# run ' "${png%.png}.dat")" = 3 ] || fail "the plot's data lacks a run"
grep -q 'with yerrorlines .* title "scaled 0.1"' "${png%.png}.gp" || fail "no error-bar line for the labelled run"
for want in '<td class=l>r2<br>' '<td class=l>scaled 0.1<br>' 'figures scaled by 0.1' \
	'<h2>scaled 0.1 against r1</h2>' "class='l reg'>REGRESSED" '<h3>r1: blk-seqread-raw</h3>'; do
	grep -qF "$want" "$T/rep/index.html" || fail "index.html lacks $want"
done
[ "$(grep -c "class='l reg'>REGRESSED" "$T/rep/index.html")" = 2 ] || fail "the page does not flag both cells"
# one run: the report goes into the run's directory
"$MATRIX" report "$T/r1" >"$T/out" 2>&1 || { cat "$T/out"; fail "report of one run"; }
for f in index.html plot-blk-seqread-raw-64M-1cpu.png; do
	[ -s "$T/r1/report/$f" ] || fail "report of r1 lacks $f: $(ls "$T/r1/report")"
done
mx_done
