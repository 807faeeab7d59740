#!/bin/bash
# timeout: 7200
# The long crash-consistency runs: qcow2-crash.sh (host writer) with 1000
# SIGKILLs, then qcow2-guest.sh with 300 SIGKILLs of the VMM.  Not part of
# make check (skips unless QCOW2_LONG=1):
#   QCOW2_LONG=1 tests/run-all -k qcow2-crash-long
. "$(dirname "$0")/lib.sh"
[ "${QCOW2_LONG:-0}" = 1 ] || skip "long run: set QCOW2_LONG=1"
here=$(dirname "$0")
QCOW2_CRASH_ITERS=${QCOW2_CRASH_ITERS:-1000} bash "$here/qcow2-crash.sh" ||
	fail "host writer crash run"
mkdir -p "$TEST_TMP/guest"
TEST_TMP=$TEST_TMP/guest QCOW2_GUEST_KILLS=${QCOW2_GUEST_KILLS:-300} \
	bash "$here/qcow2-guest.sh" || fail "VMM crash run"
