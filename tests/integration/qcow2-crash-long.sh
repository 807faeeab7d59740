#!/bin/bash
# timeout: 7200
# The long crash-consistency run: qcow2-crash.sh with 1000 SIGKILLs.  Not
# part of make check (skips unless QCOW2_LONG=1):
#   QCOW2_LONG=1 tests/run-all -k qcow2-crash-long
. "$(dirname "$0")/lib.sh"
[ "${QCOW2_LONG:-0}" = 1 ] || skip "long run: set QCOW2_LONG=1"
QCOW2_CRASH_ITERS=${QCOW2_CRASH_ITERS:-1000} exec bash "$(dirname "$0")/qcow2-crash.sh"
