#!/bin/bash
# The agent over vsock in a Linux guest (CONFIG_VIRTIO_VSOCKETS), all in one
# boot: no job on the command line, so the agent serves vsock port 52 until
# poweroff.  vmm-agent runs uname -a, cat of a file, a command that exits 3,
# a job, a command printing 10 MiB (compared with the same pattern made on
# the host), 20 execs of true (their round trip is printed), 4 at once, the
# protocol by hand with socat, then poweroff ends the VM with status 0.
# timeout: 900
. "$(dirname "$0")/lib.sh"
. "$TOP/tools/linux-plan"

linux_prepare
"$VMM" --help 2>&1 | grep -q -- '--vsock' || skip "the VMM has no --vsock"
command -v socat >/dev/null || skip "socat missing (tools/install-deps)"
C=$BUILD/tools/vmm-agent
[ -x "$C" ] || fail "no $C (make first)"
U=$TEST_TMP/v.sock
out=$TEST_TMP/out
# every failure shows the guest's console and the VMM's lines too
fail() { linux_show vsock; echo "FAIL: $*" >&2; exit 1; }
LINUX_SH=1 linux_start vsock 840 - --vsock "cid=3,uds=$U"
c() { "$C" --uds "$U" --wait 600 "$@"; }
t0=$(date +%s.%N)
c ping || fail "the agent never answered on vsock"
echo "agent answered $(echo "$(date +%s.%N) - $t0" | bc) s after the VMM started"

c -n exec uname -a >"$out" || fail "exec uname -a"
grep -q '^Linux ' "$out" || fail "uname -a said: $(cat "$out")"
printf 'a file\nof two lines\n' | c exec sh -c 'cat >/tmp/f' || fail "writing a file through stdin"
[ "$(c -n exec cat /tmp/f)" = "$(printf 'a file\nof two lines')" ] || fail "cat of the file"
rc=0; c -n exec sh -c 'echo to stderr >&2; exit 3' 2>"$out" || rc=$?
[ $rc = 3 ] || fail "a command that exits 3 came back as $rc"
grep -qx 'to stderr' "$out" || fail "stderr did not arrive"

# a job, and 10 MiB of output from what it wrote, every byte
printf 'write path=/tmp/big seed=11 size=10M fsync=0\nverify path=/tmp/big seed=11 size=10M\n' |
	c job - >"$out" || { cat "$out"; fail "job over vsock"; }
grep -q '"summary":true,"steps":2,"passed":2' "$out" || { cat "$out"; fail "job summary"; }
c -n exec cat /tmp/big >"$TEST_TMP/big.guest" || fail "exec cat of 10 MiB"
mkpattern "$TEST_TMP/big.host" 11 10M
cmp "$TEST_TMP/big.guest" "$TEST_TMP/big.host" || fail "10 MiB output differs"

# 20 execs in a row: all answered; the round trip of exec true
for i in $(seq 20); do
	s=$(date +%s%N)
	c -n exec true || fail "exec true #$i"
	echo $((($(date +%s%N) - s) / 1000)) >>"$TEST_TMP/rtt"
done
echo "exec true round trip (20 runs): median $(sort -n "$TEST_TMP/rtt" | sed -n 10p) us, min $(sort -n "$TEST_TMP/rtt" | head -1) us, max $(sort -n "$TEST_TMP/rtt" | tail -1) us"

# 4 at once
pids=()
for i in 1 2 3 4; do
	c -n exec sh -c "sleep 1; echo $i" >"$out.$i" &
	pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3 4; do [ "$(cat "$out.$i")" = "$i" ] || fail "concurrent exec $i"; done

# by hand: Firecracker's handshake, then the agent's request and frames
printf 'CONNECT 52\nexec echo hi\n' | socat -t 30 - "UNIX-CONNECT:$U" >"$out"
[ "$(cat "$out" | sed 1d)" = "$(printf 'out 3\nhi\nexit 0')" ] && grep -Eq '^OK [0-9]+$' "$out" ||
	{ cat "$out"; fail "the protocol by hand"; }

c poweroff || fail "poweroff"
wait "$LINUX_PID"; rc=$?
linux_status vsock $rc 0
linux_ok vsock 1
linux_summary vsock 0
echo "linux vsock checks passed"
