#!/bin/bash
# tools/vmm-matrix compare on runs whose figures are known in advance, one
# case per cell: a clear regression (exact p), a shift within the threshold
# (significant without one), a noisy one, too few iterations, failed
# iterations left out, cells in one run only; lower-is-better figures; bad
# input.  No VM: matrix-report compares real runs.
# A second or two on a KVM host; the bound is wide for an emulated host.
# timeout: 240
. "$(dirname "$0")/lib.sh"
MATRIX=$TOP/tools/vmm-matrix MX_DIR=$TOP/tests/integration/matrix
T=$TEST_TMP
[ -x /usr/bin/python3 ] || fail "python3 missing (tools/install-deps)"
cmp_run() {	# cmp_run WANT_STATUS A B [ARGS...]: compare, output in $T/cmp
	local want=$1; shift
	"$MATRIX" compare "$@" >"$T/cmp" 2>&1
	local rc=$?
	[ $rc = "$want" ] || { cat "$T/cmp"; fail "compare $* exited $rc, expected $want"; }
}
row() {	# row WORKLOAD SIZE REGEX: the table row of that cell matches
	grep -Eq "^$1 +64M +$2 +1 +$3" "$T/cmp" || { cat "$T/cmp"; fail "row $1 $2: expected /$3/"; }
}

/usr/bin/python3 "$MX_DIR/synth-run.py" \
	"$T/a" blk-x 1 1M=100,101,102,103,104 2M=200,202,204,206,208 3M=100,101,102,103,104 \
		4M=100,101,102,103,104 5M=100,101,102 6M=100,101,102,103,104 7M=1,2,3 -- \
	"$T/b" blk-x 1 1M=80,81,82,83,84 2M=199,201,203,205,207 3M=97,98,99,100,101 \
		4M=60,140,88,95,120 5M=50,51,52 6M=101,x,102,100,x,103,104 8M=1,2,3 -- \
	"$T/la" blk-l 0 1M=10,11,12,13,14 -- \
	"$T/lb" blk-l 0 1M=20,21,22,23,24 -- \
	"$T/other" blk-y 1 1M=1,2,3 || fail "synth-run"

cmp_run 1 "$T/a" "$T/b" --csv "$T/cmp.csv"
# 5 against 5 with no overlap: the exact one-sided p is 1/252
row blk-x 1M '5 +5 +102.0 +82.0 +MB/s +-19.6% +0.00397 +REGRESSED$'
row blk-x 2M '5 +5 +204.0 +203.0 +MB/s +-0.5% +[0-9.]+ +same$'
# every figure below A's, but by 3%: within the 5% threshold
row blk-x 3M '.*-2.9% +[0-9.]+ +same$'
# the median 7% lower, but the figures all over the place
row blk-x 4M '.*-6.9% +0.[2-9][0-9]* +noise$'
# three iterations each can never reach p < 0.05 (1/20 at best)
row blk-x 5M '3 +3 .*-49.5% +0.05 +too few iterations$'
# failed iterations are left out (n 5 of 7), not counted as zeroes
row blk-x 6M '5 +5 +102.0 +102.0 .* same$'
grep -q '^only in A: blk-x 64M 7M cpus 1$' "$T/cmp" || fail "7M is only in A: $(cat "$T/cmp")"
grep -q '^only in B: blk-x 64M 8M cpus 1$' "$T/cmp" || fail "8M is only in B: $(cat "$T/cmp")"
grep -q '^1 REGRESSED, 1 noise, 3 same, 1 too few iterations$' "$T/cmp" || fail "counts: $(tail -1 "$T/cmp")"
grep -q '^blk-x,64M,1M,1,MB/s,5,5,102.0,82.0,-0.196078431372549[0-9]*,0.00396825396825396[0-9]*,REGRESSED' "$T/cmp.csv" ||
	fail "CSV: $(cat "$T/cmp.csv")"
[ "$(wc -l <"$T/cmp.csv")" = 7 ] || fail "CSV rows: $(cat "$T/cmp.csv")"
# the other way round: an improvement, never a regression
cmp_run 0 "$T/b" "$T/a"
row blk-x 1M '.* \+24.4% +0.00397 +improved$'
# no threshold: the consistent 3% becomes significant
cmp_run 1 "$T/a" "$T/b" --threshold 0
row blk-x 3M '.*-2.9% +0.0[0-9]+ +REGRESSED$'
# lower is better: higher figures are the regression
cmp_run 1 "$T/la" "$T/lb"
row blk-l 1M '.*\+83.3% +0.00397 +REGRESSED$'
cmp_run 0 "$T/lb" "$T/la"
row blk-l 1M '.*-45.5% +0.00397 +improved$'
cmp_run 2 "$T/a" "$T/other"
grep -q 'no cell in common' "$T/cmp" || fail "different workloads: $(cat "$T/cmp")"
cmp_run 2 "$T/a" "$T/b" --threshold 5x
cmp_run 2 "$T/a" "$T/b" --alpha 2
echo "all checks passed"
