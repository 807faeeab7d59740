#!/bin/bash
# The container storage plan (tools/plans/storage): bind mounts over 9p
# (read, read-write, read-only, three at once, nested, ownership), volumes
# (raw and a qcow2 overlay) across stop/start and restart, tmpfs size limit
# and volatility, cold and warm boot time and a restore from a snapshot,
# guest vs host I/O on the same files -- one line per case, a summary;
# four Linux boots in all.
# timeout: 1500
. "$(dirname "$0")/lib.sh"
. "$TOP/tools/linux-plan"
. "$TOP/tools/plans/storage"
plan_storage
