#!/bin/bash
# timeout: 300
# --events file=PATH|fd=N: one JSON object per line: boot-ready, exit
# (status and reason for a guest status, a timeout, a stop by signal),
# device errors (a guest breaking the virtio rules; a disk I/O error);
# and --serial pipe (the library's console mode) on the command line.
. "$(dirname "$0")/lib.sh"
need_kvm
T=$TEST_TMP
K=$TESTKERNEL
# valid JSON, one object per line, "event" first
check_json() {
	/usr/bin/python3 -c '
import json, sys
for n, line in enumerate(open(sys.argv[1]), 1):
    o = json.loads(line)
    assert list(o)[0] == "event", (n, line)
' "$1" || { cat "$1"; fail "$1 is not JSON lines"; }
}

# a guest status; the file gets boot-ready then exit
rc=0; run_vmm "$T/ok" --kernel "$K" --cmdline "vmmtest.run=hello,fail" --timeout 30 \
	--events "file=$T/ev1" || rc=$?
expect_status $rc 1 "$T/ok"
check_json "$T/ev1"
[ "$(wc -l <"$T/ev1")" = 2 ] || { cat "$T/ev1"; fail "expected 2 event lines"; }
expect_in "$T/ev1" '^\{"event":"boot-ready","wall_ms":[0-9.]+,"run_ms":[0-9.]+\}$'
expect_in "$T/ev1" '^\{"event":"exit","status":1,"reason":"guest","wall_ms":[0-9.]+,"device_errors":0\}$'
[ "$(tail -1 "$T/ev1" | cut -c1-16)" = '{"event":"exit",' ] || fail "exit is not the last line"

# fd=N: a timeout
rc=0; run_vmm "$T/hang" --kernel "$K" --cmdline "vmmtest.run=hang" --timeout 2 \
	--events fd=3 3>"$T/ev2" || rc=$?
expect_status $rc 124 "$T/hang"
expect_in "$T/ev2" '"event":"exit","status":124,"reason":"timeout"'
# a bad fd is a usage error
rc=0; run_vmm "$T/badfd" --kernel "$K" --events fd=57 || rc=$?
expect_status $rc 64 "$T/badfd"
expect_in "$T/badfd" "events fd=57: Bad file descriptor"

# stopped by a signal
"$VMM" --kernel "$K" --cmdline "vmmtest.run=hang" --timeout 60 --events "file=$T/ev3" \
	>"$T/term" 2>&1 </dev/null &
pid=$!
for _ in $(seq 100); do grep -q boot-ready "$T/ev3" 2>/dev/null && break; sleep 0.2; done
kill -TERM $pid
rc=0; wait $pid || rc=$?
expect_status $rc 143 "$T/term"
expect_in "$T/ev3" '"event":"exit","status":143,"reason":"signal"'

# a guest breaking the rules: device-error events, bounded, named
img=$T/d0.img; head -c 4M /dev/zero >"$img"
rc=0; run_vmm "$T/hostile" --kernel "$K" --disk "path=$img,format=raw" --timeout 90 \
	--cmdline "vmmtest.run=blkhostile:dev=0" --events "file=$T/ev4" || rc=$?
expect_status $rc 0 "$T/hostile"
check_json "$T/ev4"
n=$(grep -c '"event":"device-error","device":"virtio-blk0[^"]*","kind":"guest"' "$T/ev4")
[ "$n" -ge 5 ] && [ "$n" -le 64 ] || { cat "$T/ev4"; fail "$n device-error events"; }
expect_in "$T/ev4" "\"device_errors\":$n\\}|\"device_errors\":[0-9]+\\}"

# a disk I/O error: the image's file system is full (root: a small tmpfs)
if [ "$(id -u)" = 0 ] && mkdir -p "$T/small" && mount -t tmpfs -o size=1M none "$T/small"; then
	truncate -s 8M "$T/small/sparse.img"
	rc=0; run_vmm "$T/enospc" --kernel "$K" --disk "path=$T/small/sparse.img,format=raw" \
		--timeout 90 --cmdline "vmmtest.run=blkfill:dev=0:seed=3:len=4M" \
		--events "file=$T/ev5" || rc=$?
	umount "$T/small"
	expect_status $rc 1 "$T/enospc"
	expect_in "$T/ev5" '"event":"device-error","device":"virtio-blk0[^"]*","kind":"io","message":"I/O error at sector [0-9]+: No space left on device"'
else
	echo "(not root: no disk-full case)"
fi

# --serial pipe on the command line: the console socket copied to stdout
rc=0; run_vmm "$T/pipe" --kernel "$K" --cmdline "vmmtest.run=hello marker=piped" \
	--serial pipe --timeout 30 || rc=$?
expect_status $rc 0 "$T/pipe"
expect_in "$T/pipe" "^PASS hello"
expect_in "$T/pipe" "marker=piped"
echo "events ok"
