#!/bin/bash
# virtio-vsock end to end with the test kernel, one boot:
#  - vsockconnect: guest-initiated connection to a host listener at
#    UDS_5001 (vsock-peer echoes), and a port nobody listens on -> RST;
#  - vsockhostile: malformed packets, a request flood, a credit overrun:
#    RSTs, the device and other connections unaffected;
#  - vsockreset: TRANSPORT_RESET on the event queue after a device reset;
#  - vsockecho, driven by socat (a client no one here wrote) through
#    Firecracker's protocol: CONNECT 5000, 16 MiB echoed back identical,
#    8 connections at once, bad CONNECT lines refused, then quit.
# timeout: 320
. "$(dirname "$0")/lib.sh"
need_kvm
command -v socat >/dev/null || skip "socat missing (tools/install-deps)"
"$VMM" --help 2>&1 | grep -q -- '--vsock' || skip "the VMM has no --vsock"
PEER=$BUILD/tools/vsock-peer
[ -x "$PEER" ] || fail "no $PEER (make first)"

U=$TEST_TMP/v.sock
out=$TEST_TMP/console
"$PEER" listen "${U}_5001" &
PEER_PID=$!
"$VMM" --kernel "$TESTKERNEL" --timeout 250 --vsock "cid=7,uds=$U" \
	--cmdline "vmmtest.run=vsockconnect,vsockhostile,vsockreset,vsockecho:timeout=230 vmmtest.vsock_port=5000" \
	>"$out" 2>&1 </dev/null &
VMM_PID=$!
trap 'kill $PEER_PID $VMM_PID 2>/dev/null' EXIT

for _ in $(seq 1200); do
	grep -q 'vsockecho: listening' "$out" && break
	kill -0 $VMM_PID 2>/dev/null || break
	sleep 0.1
done
expect_in "$out" 'vsockecho: listening on port 5000' "the echo server did not start"
expect_in "$out" 'PASS vsockconnect'
expect_in "$out" 'PASS vsockhostile'
expect_in "$out" 'PASS vsockreset'

step() { echo "$(date +%T) $*"; }
step "echo server up"
# 16 MiB through socat, byte-identical
head -c 16777216 /dev/urandom >"$TEST_TMP/big"
{ printf 'CONNECT 5000\n'; cat "$TEST_TMP/big"; } |
	socat -t 60 - "UNIX-CONNECT:$U" >"$TEST_TMP/echo" || fail "socat failed"
head -1 "$TEST_TMP/echo" | grep -Eq '^OK [0-9]+$' || fail "no OK line: $(head -c 40 "$TEST_TMP/echo")"
okl=$(head -1 "$TEST_TMP/echo" | wc -c)
tail -c +$((okl + 1)) "$TEST_TMP/echo" | cmp -s - "$TEST_TMP/big" ||
	fail "16 MiB echo differs ($(($(stat -c %s "$TEST_TMP/echo") - okl)) bytes back)"

step "16 MiB echoed"
# 8 connections at once, 1 MiB each
pids=()
for i in 1 2 3 4 5 6 7 8; do
	head -c 1048576 /dev/urandom >"$TEST_TMP/in.$i"
	{ printf 'CONNECT 5000\n'; cat "$TEST_TMP/in.$i"; } |
		socat -t 60 - "UNIX-CONNECT:$U" >"$TEST_TMP/out.$i" &
	pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3 4 5 6 7 8; do
	tail -c +$(($(head -1 "$TEST_TMP/out.$i" | wc -c) + 1)) "$TEST_TMP/out.$i" |
		cmp -s - "$TEST_TMP/in.$i" || fail "connection $i of 8: echo differs"
done

step "8 connections echoed"
# what Firecracker refuses is refused: the connection closes, no OK
for bad in 'CONNECT\n' 'CONNECT x\n' 'HELLO 5000\n' 'CONNECT 5000 5000 5000 5000 5000 5000\n'; do
	r=$(printf "$bad" | socat -t 5 - "UNIX-CONNECT:$U" 2>/dev/null)
	[ -z "$r" ] || fail "'$bad' got an answer: $r"
done
# a port the guest does not listen on: closed without OK
r=$(printf 'CONNECT 4999\n' | socat -t 5 - "UNIX-CONNECT:$U" 2>/dev/null)
[ -z "$r" ] || fail "CONNECT to a closed guest port answered: $r"

step "refusals checked"
# quit ends the command and the VM
printf 'CONNECT 5000\nquit' | socat -t 10 - "UNIX-CONNECT:$U" >/dev/null
wait $VMM_PID; rc=$?
expect_status $rc 0 "$out"
expect_in "$out" 'PASS vsockecho'
expect_in "$out" 'VSOCKECHO connections=1[0-9] '
[ ! -e "$U" ] || fail "the VMM left its socket behind"
echo "vsock test kernel checks passed"
