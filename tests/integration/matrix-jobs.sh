#!/bin/bash
# tools/vmm-matrix run through GNU parallel: --jobs 2 runs two cells at once
# (their start/finish times overlap) with the same results as a sequential
# run would give; --sshlogin : hands cells to parallel's remote execution
# (':' is this host) and gathers the results into one directory; failed
# iterations are counted the same way through parallel.
# Seconds on a KVM host; the bound is wide for an emulated test host.
# timeout: 480
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/integration/matrix/lib.sh"
T=$TEST_TMP
export TMPDIR=$T
command -v parallel >/dev/null || fail "GNU parallel missing (tools/install-deps)"

"$MATRIX" run --timeout 120 --vmm "$MX_VMM" --workload blk-randread-raw --memory 64M --size 4M,8M \
	--iterations 2 --jobs 2 --out "$T/j" >"$T/out" 2>"$T/err" || { cat "$T/out" "$T/err"; fail "--jobs 2 run"; }
[ -s "$T/err" ] && { cat "$T/err"; fail "the --jobs 2 run wrote to stderr off a terminal"; }
/usr/bin/python3 "$MX_DIR/check-run.py" "$T/j" blk-randread-raw 64M 4M,8M 2 0 || fail "--jobs 2 results"
grep -q '"engine": "GNU parallel: parallel .*--jobs 2 ' "$T/j/meta.json" || fail "not run through parallel"
/usr/bin/python3 - "$T/j" <<'PY' || fail "no two cells ran at once"
import json, glob, sys
spans = sorted((c["started_epoch"], c["finished_epoch"]) for c in
               (json.load(open(f)) for f in glob.glob(sys.argv[1] + "/cell-*.json")))
assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans
PY

"$MATRIX" run --timeout 120 --vmm "$MX_VMM" --workload blk-seqwrite-qcow2 --memory 64M --size 4M,8M \
	--iterations 1 --jobs 2 --sshlogin : --out "$T/s" >"$T/out" 2>&1 || { cat "$T/out"; fail "--sshlogin : run"; }
/usr/bin/python3 "$MX_DIR/check-run.py" "$T/s" blk-seqwrite-qcow2 64M 4M,8M 1 0 || fail "--sshlogin : results"
grep -q '"engine": "GNU parallel: .*--sshlogin : ' "$T/s/meta.json" || fail "the sshlogin did not reach parallel"

# a VMM whose guests always fail: every iteration counted, exit 1
# shellcheck disable=SC2016
printf '#!/bin/sh\n[ "$1" = --version ] && exec "%s" --version\necho "guest failed"; exit 70\n' \
	"$MX_VMM" >"$T/broken-vmm"
chmod +x "$T/broken-vmm"
"$MATRIX" run --timeout 120 --vmm "$T/broken-vmm" --workload blk-seqread-raw --memory 64M --size 4M,8M \
	--iterations 1 --jobs 2 --out "$T/f" >"$T/out" 2>&1
rc=$?
[ $rc = 1 ] || { cat "$T/out"; fail "a failing run through parallel exited $rc"; }
/usr/bin/python3 "$MX_DIR/check-run.py" "$T/f" blk-seqread-raw 64M 4M,8M 1 1 || fail "failures through parallel"
mx_done
