#!/bin/bash
# timeout: 3600
# linux-fs.sh with 100 MiB files each way (the issue's round trip).  Not
# part of make check (skips unless FS_LONG=1): the emulated guest kernel
# moves 9p data at a few MB/s, so this takes minutes:
#   FS_LONG=1 tests/run-all -k linux-fs-long
. "$(dirname "$0")/lib.sh"
[ "${FS_LONG:-0}" = 1 ] || skip "long run: set FS_LONG=1"
FS_BIG=${FS_BIG:-100M} exec bash "$(dirname "$0")/linux-fs.sh"
