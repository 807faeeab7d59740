#!/bin/bash
# tools/vmm-matrix compare on runs whose figures are known in advance: a
# clear regression (exact p), a shift within the threshold, a noisy one,
# too few iterations, lower-is-better figures, failed iterations left out,
# cells in one run only, bad input.  No VM: matrix-report compares real runs.
# timeout: 60
. "$(dirname "$0")/lib.sh"
MATRIX=$TOP/tools/vmm-matrix MX_DIR=$TOP/tests/integration/matrix
T=$TEST_TMP
synth() { /usr/bin/python3 "$MX_DIR/synth-run.py" "$@" || fail "synth-run $*"; }
cmp_run() {	# cmp_run WANT_STATUS A B [ARGS...]: compare, output in $T/cmp
	local want=$1; shift
	"$MATRIX" compare "$@" >"$T/cmp" 2>&1
	local rc=$?
	[ $rc = "$want" ] || { cat "$T/cmp"; fail "compare $* exited $rc, expected $want"; }
}
row() {	# row SIZE REGEX: the table row of that cell matches
	grep -Eq "^blk-x +64M +$1 +1 +$2" "$T/cmp" || { cat "$T/cmp"; fail "row $1: expected /$2/"; }
}

synth "$T/a" blk-x 1 4M=100,101,102,103,104 8M=200,202,204,206,208
synth "$T/slow" blk-x 1 4M=80,81,82,83,84 8M=199,201,203,205,207
cmp_run 1 "$T/a" "$T/slow" --csv "$T/cmp.csv"
# 5 against 5 with no overlap: the exact one-sided p is 1/252
row 4M '5 +5 +102.0 +82.0 +MB/s +-19.6% +0.00397 +REGRESSED$'
row 8M '5 +5 +204.0 +203.0 +MB/s +-0.5% +[0-9.]+ +same$'
grep -q '^1 REGRESSED, 1 same$' "$T/cmp" || fail "counts: $(tail -1 "$T/cmp")"
grep -q '^blk-x,64M,4M,1,MB/s,5,5,102.0,82.0,-0.196078431372549[0-9]*,0.00396825396825396[0-9]*,REGRESSED' "$T/cmp.csv" ||
	fail "CSV: $(cat "$T/cmp.csv")"
[ "$(wc -l <"$T/cmp.csv")" = 3 ] || fail "CSV rows: $(cat "$T/cmp.csv")"
cmp_run 0 "$T/slow" "$T/a"
row 4M '.* \+24.4% +0.00397 +improved$'

# every B figure below A's, but by 3%: within the 5% threshold; significant
# with no threshold
synth "$T/near" blk-x 1 4M=97,98,99,100,101 8M=194,196,198,200,202
cmp_run 0 "$T/a" "$T/near"
row 4M '.*-2.9% +[0-9.]+ +same$'
cmp_run 1 "$T/a" "$T/near" --threshold 0
row 4M '.*-2.9% +0.0[0-9]+ +REGRESSED$'
# the median 7% lower, but the figures all over the place
synth "$T/noisy" blk-x 1 4M=60,140,88,95,120
cmp_run 0 "$T/a" "$T/noisy"
row 4M '.*-6.9% +0.[2-9][0-9]* +noise$'
grep -q '^only in A: blk-x 64M 8M cpus 1$' "$T/cmp" || fail "8M is only in A: $(cat "$T/cmp")"
# three iterations each can never reach p < 0.05 (1/20 at best)
synth "$T/a3" blk-x 1 4M=100,101,102
synth "$T/b3" blk-x 1 4M=50,51,52
cmp_run 0 "$T/a3" "$T/b3"
row 4M '.*-49.5% +0.05 +too few iterations$'
# failed iterations are left out (n 5 of 7), not counted as zeroes
synth "$T/fails" blk-x 1 4M=101,x,102,100,x,103,104
cmp_run 0 "$T/a" "$T/fails"
row 4M '5 +5 +102.0 +102.0 .* same$'
# lower is better: higher figures are the regression
synth "$T/la" blk-x 0 4M=10,11,12,13,14
synth "$T/lb" blk-x 0 4M=20,21,22,23,24
cmp_run 1 "$T/la" "$T/lb"
row 4M '.*\+83.3% +0.00397 +REGRESSED$'
cmp_run 0 "$T/lb" "$T/la"
row 4M '.*-45.5% +0.00397 +improved$'
synth "$T/other" blk-y 1 4M=1,2,3
cmp_run 2 "$T/a" "$T/other"
grep -q 'no cell in common' "$T/cmp" || fail "different workloads: $(cat "$T/cmp")"
cmp_run 2 "$T/a" "$T/slow" --threshold 5x
cmp_run 2 "$T/a" "$T/slow" --alpha 2

echo "all checks passed"
