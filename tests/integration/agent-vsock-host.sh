#!/bin/bash
# The agent's vsock service and the host client, on the host, no VM: the
# agent (not PID 1) serves on a Unix socket (--vsock unix:PATH) and
# vmm-agent --direct talks to it (the CONNECT/OK handshake is the VMM's
# part, tested with the device).  socat checks the text protocol by hand.
# timeout: 90
. "$(dirname "$0")/lib.sh"

A=$TOP/build/guest/agent/agent
C=$BUILD/tools/vmm-agent
[ -x "$A" ] || make -C "$TOP" -s agent >/dev/null || fail "make agent failed"
[ -x "$C" ] || fail "no $C (make first)"
S=$TEST_TMP/agent.sock
out=$TEST_TMP/out
"$A" --vsock "unix:$S" >"$TEST_TMP/agent.log" 2>&1 &
AGENT=$!
trap 'kill $AGENT 2>/dev/null' EXIT
c() { "$C" --uds "$S" --direct --wait 10 "$@"; }

c ping || fail "ping"
# status, stdout and stderr apart, stdin, arguments with spaces and %
rc=0; c -n exec sh -c 'echo out; echo err >&2; exit 3' >"$out" 2>"$out.err" || rc=$?
[ $rc = 3 ] || fail "exit 3 came back as $rc"
[ "$(cat "$out")" = out ] && [ "$(cat "$out.err")" = err ] || fail "stdout/stderr mixed up"
[ "$(echo 'in put' | c exec cat)" = "in put" ] || fail "stdin"
[ "$(c -n exec printf '%s|' 'a b' '50%' 'x')" = "a b|50%|x|" ] || fail "argument encoding"
rc=0; c -n exec /no/such 2>"$out.err" || rc=$?
[ $rc = 127 ] && grep -q 'No such file' "$out.err" || fail "missing command: $rc"
rc=0; c -n exec sh -c 'kill -9 $$' || rc=$?
[ $rc = 137 ] || fail "killed command: $rc, expected 137"
# 10 MiB of output, all of it, byte for byte
head -c 10485760 /dev/urandom >"$TEST_TMP/big"
c -n exec cat "$TEST_TMP/big" >"$out" || fail "big output"
cmp -s "$out" "$TEST_TMP/big" || fail "10 MiB output differs"
# and as much in through stdin
c exec sha256sum <"$TEST_TMP/big" >"$out" || fail "big input"
[ "$(cut -d' ' -f1 "$out")" = "$(sha256sum <"$TEST_TMP/big" | cut -d' ' -f1)" ] ||
	fail "10 MiB input differs"
# 8 at once, each answered (the slow ones do not hold up the others)
pids=()
for i in 1 2 3 4 5 6 7 8; do
	c -n exec sh -c "sleep 0.5; echo $i" >"$out.$i" &
	pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3 4 5 6 7 8; do [ "$(cat "$out.$i")" = "$i" ] || fail "concurrent exec $i"; done
# a job: the step language, JSON lines, the summary's status as ours
printf 'echo text=hi\nmkdir path=%s/d\n' "$TEST_TMP" | c job - >"$out" || fail "job status"
grep -q '^{"step":1,"op":"echo","text":"hi","ok":true' "$out" || fail "job line"
grep -q '^{"summary":true,"steps":2,"passed":2,"failed":0,"skipped":0,"status":0}$' "$out" || fail "job summary"
[ -d "$TEST_TMP/d" ] || fail "the job did not run"
rc=0; echo 'verify path=/no/such seed=1 size=1' | c job - >"$out" || rc=$?
[ $rc = 1 ] && grep -q '"status":1}' "$out" || fail "failed job: $rc"
rc=0; echo 'bad noequals' | c job - >"$out" || rc=$?
[ $rc = 2 ] || fail "bad job: $rc"
# serve is PID 1's: a job over vsock cannot wait in it
echo serve | c job - >"$out"; grep -q '"op":"serve","ok":false' "$out" || fail "serve over vsock"
# by hand: the request line, then the frames
printf 'exec echo hi\n' | socat -t 5 - "UNIX-CONNECT:$S" >"$out"
[ "$(cat "$out")" = "$(printf 'out 3\nhi\nexit 0')" ] || { cat "$out"; fail "frames by socat"; }
printf 'bogus\n' | socat -t 5 - "UNIX-CONNECT:$S" >"$out"
grep -q "^error unknown request 'bogus'" "$out" || fail "unknown request"
head -c 5000 /dev/zero | tr '\0' x | socat -t 5 - "UNIX-CONNECT:$S" >"$out"
grep -q '^error request line longer' "$out" || fail "over-long request"
# poweroff ends the serve step: the agent exits with the job's status
c poweroff || fail "poweroff"
for _ in $(seq 50); do kill -0 $AGENT 2>/dev/null || break; sleep 0.1; done
wait $AGENT; rc=$?
[ $rc = 0 ] || { cat "$TEST_TMP/agent.log"; fail "agent status $rc after poweroff"; }
grep -q '"op":"serve","ok":true' "$TEST_TMP/agent.log" || fail "serve step line"
# no agent: the client gives up after --wait with status 255 and one line
rc=0; "$C" --uds "$S.none" --wait 0.5 ping 2>"$out" || rc=$?
[ $rc = 255 ] && [ "$(wc -l <"$out")" = 1 ] || fail "no agent: $rc"
echo "agent vsock host checks passed"
