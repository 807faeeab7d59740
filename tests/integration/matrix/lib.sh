# tests/integration/matrix/lib.sh - shared by tests/integration/matrix-*.sh
# (sourced after ../lib.sh).  MATRIX is tools/vmm-matrix; MX_VMM the VMM
# the matrices run: build/vmm, or on a host without /dev/kvm the stand-in
# next to this file (random figures in the real output formats), so the
# driver's plumbing is still checked there.  mx_done ends a test: passed,
# or skipped when the stand-in ran (real VMs were not run).
# shellcheck shell=bash
MATRIX=$TOP/tools/vmm-matrix
export MATRIX
MX_DIR=$TOP/tests/integration/matrix
[ -x /usr/bin/python3 ] || fail "python3 missing (tools/install-deps)"
if [ -w /dev/kvm ]; then
	MX_VMM=$VMM MX_STANDIN=0
	[ -x "$MX_VMM" ] || fail "no VMM at $MX_VMM (make first)"
	[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
else
	MX_VMM=$MX_DIR/standin-vmm MX_STANDIN=1
	echo "no /dev/kvm: the matrices run the stand-in VMM ($MX_VMM)"
fi
# this build's tools (build/san under SANITIZE=1)
BLKIO=${BUILD:-$TOP/build}/tools/blkio
export BLKIO
[ -x "$BLKIO" ] || fail "no $BLKIO (make first)"

mx_done() {
	if [ "$MX_STANDIN" = 1 ]; then
		skip "no /dev/kvm: plumbing passed against the stand-in VMM; real VMs not run"
	fi
	echo "all checks passed"
	exit 0
}
