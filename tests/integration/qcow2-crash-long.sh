#!/bin/bash
# timeout: 14400
# The long crash-consistency runs: qcow2-crash.sh (host writer) with 1000
# SIGKILLs, then qcow2-guest.sh with 300 SIGKILLs of the VMM.  Not part of
# make check (skips unless QCOW2_LONG=1):
#   QCOW2_LONG=1 tests/run-all -k qcow2-crash-long
# Without /dev/kvm the VMM part cannot run: the test then skips (exit 77)
# after the host-writer part passed, saying so.
. "$(dirname "$0")/lib.sh"
[ "${QCOW2_LONG:-0}" = 1 ] || skip "long run: set QCOW2_LONG=1"
here=$(dirname "$0")
start=$(date +%s)
QCOW2_CRASH_ITERS=${QCOW2_CRASH_ITERS:-1000} bash "$here/qcow2-crash.sh" ||
	fail "host writer crash run"
echo "host writer run: $(( $(date +%s) - start )) s"
mkdir -p "$TEST_TMP/guest"
start=$(date +%s)
TEST_TMP=$TEST_TMP/guest QCOW2_GUEST_KILLS=${QCOW2_GUEST_KILLS:-300} \
	bash "$here/qcow2-guest.sh"
rc=$?
[ $rc = 77 ] && skip "host writer run passed; VMM crash run skipped (no /dev/kvm)"
[ $rc = 0 ] || fail "VMM crash run (exit $rc)"
echo "VMM run: $(( $(date +%s) - start )) s"
