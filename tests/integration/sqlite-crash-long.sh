#!/bin/bash
# sqlite-crash.sh with 200 kills (SQLITE_ROUNDS to change): about 200 Linux
# boots, 1-2 hours with /dev/kvm, so not part of make check (skips unless
# SQLITE_LONG=1):
#   SQLITE_LONG=1 tests/run-all -k sqlite-crash-long     or   make sqlite-long
# timeout: 14400
. "$(dirname "$0")/lib.sh"
[ "${SQLITE_LONG:-0}" = 1 ] || skip "long run: set SQLITE_LONG=1 (make sqlite-long)"
export SQLITE_ROUNDS=${SQLITE_ROUNDS:-200}
exec bash "$(dirname "$0")/sqlite-crash.sh"
