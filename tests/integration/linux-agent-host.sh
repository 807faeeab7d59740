#!/bin/bash
# The guest agent's job parser and step logic, run on the host (not PID 1:
# no mounts, no ports; it exits with the job status).  No VM needed.
# timeout: 60
. "$(dirname "$0")/lib.sh"
. "$TOP/tools/linux-plan"

[ -x "$LINUX_AGENT" ] || make -C "$TOP" -s agent >/dev/null || fail "make agent failed"
A=$LINUX_AGENT
D=$TEST_TMP/agent
mkdir -p "$D"
out=$TEST_TMP/agent.out

# run JOB WANT_STATUS: the agent's stdout in $out
run() {
	local rc=0
	"$A" --keep-going --job "$1" >"$out" 2>&1 || rc=$?
	[ "$rc" = "$2" ] || { cat "$out"; fail "status $rc, expected $2 for job: $1"; }
}
line() { grep -m1 "^{\"step\":$1," "$out" || { cat "$out"; fail "no line for step $1"; }; }
ok() { for s in "$@"; do line "$s" | grep -q '"ok":true' || { cat "$out"; fail "step $s did not pass"; }; done; }
bad() { line "$1" | grep -q '"ok":false' || { cat "$out"; fail "step $1 should have failed"; }
	[ -z "${2:-}" ] || line "$1" | grep -q "$2" || { cat "$out"; fail "step $1: expected /$2/"; }; }

# write, verify, offsets, the pattern against guest/common/pattern.h's
# definition computed independently here (first 8 bytes, seed 7)
run "mkdir path=$D/d,mode=0700
write path=$D/d/f,seed=7,size=1M,bs=100000
verify path=$D/d/f seed=7 size=1M
write path=$D/d/f seed=9 size=10 offset=1M
verify path=$D/d/f seed=9 size=10 offset=1M
echo text=a%20b%2Cc
sync" 0
ok 1 2 3 4 5 6 7
line 6 | grep -q '"text":"a b,c"' || fail "echo: %-decoding"
[ "$(stat -c %s "$D/d/f")" = $((1048576 + 10)) ] || fail "write at offset: file size"
[ "$(stat -c %a "$D/d")" = 700 ] || fail "mkdir mode"
want=$(python3 -c '
s, i = 7, 0
M = (1 << 64) - 1
z = (s * 0x9e3779b97f4a7c15 + i + 1) & M
z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
print((z ^ (z >> 31)).to_bytes(8, "little").hex())' 2>/dev/null) ||
	want=""
if [ -n "$want" ]; then
	[ "$(head -c 8 "$D/d/f" | od -An -tx1 | tr -d ' \n')" = "$want" ] ||
		fail "the agent's pattern differs from pattern.h's definition"
fi
grep -q '^{"summary":true,"steps":7,"passed":7,"failed":0,"skipped":0,"status":0}$' "$out" ||
	fail "summary line"

# failures: a wrong seed, a short file, expect=, bad arguments, sh
run "verify path=$D/d/f seed=8 size=1M
verify path=$D/d/f seed=7 size=2M
verify path=$D/none seed=1 size=1 expect=ENOENT
write path=$D/no/such/dir/f seed=1 size=1 expect=ENOENT|EROFS
write path=$D/w seed=1 size=1 expect=ENOSPC
write path=$D/notmade seed=1 size=1 expect=EBOGUS
write path=$D/w seed=1 sizes=1
bogus x=y
sh timeout=5 cmd=echo \"hi, there\"%3B exit 3
sh status=3 cmd=exit 3
sh timeout=1 cmd=sleep 20
mount serial=no-such-disk at=$D/m
write path=$D/w seed=x size=1" 1
bad 1 '"mismatch_at":0'
bad 2 '"mismatch_at":1048576'
ok 3 4
bad 5 'succeeded, but ENOSPC was expected'
bad 6 'not a known errno name'
[ ! -e "$D/notmade" ] || fail "a step with a bad expect= ran"
bad 7 "takes no argument 'sizes'"
bad 8 "unknown operation 'bogus'"
bad 9 '"output":"hi, there\\n","status":3'
ok 10
bad 11 '"errno":"ETIMEDOUT"'
bad 12 "no disk with serial 'no-such-disk'"
bad 13 'seed=x is not a size'
grep -q '"passed":3,"failed":10,' "$out" || { cat "$out"; fail "summary counts"; }

# without --keep-going the job stops at the first failure; poweroff ends it
"$A" --job "verify path=$D/none seed=1 size=1; echo text=x" >"$out"
[ $? = 1 ] || fail "stop at first failure: status"
grep -q '"skipped":1,"status":1}' "$out" || { cat "$out"; fail "stop at first failure"; }
"$A" --job "echo text=x; poweroff; echo text=y" >"$out" || fail "poweroff status"
grep -q '"passed":2,"failed":0,"skipped":1,"status":0}' "$out" || { cat "$out"; fail "poweroff ends the job"; }

# bad jobs: status 2 with one clear line
for job in "" "  ;  # only a comment" "write noequals" "write path=/x,seed=1,size=1,a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10"; do
	rc=0
	"$A" --job "$job" >"$out" || rc=$?
	[ $rc = 2 ] || { cat "$out"; fail "bad job '$job': status $rc, expected 2"; }
	grep -q '^{"step":0,"op":"job","ok":false,"error":' "$out" || { cat "$out"; fail "bad job '$job': no error line"; }
done
rc=0; "$A" >"$out" || rc=$?
[ $rc = 2 ] && grep -q '"error":"no job' "$out" || fail "no job: status $rc"

# mkcpio: the archive lists what it was given, device nodes included
M=$TOP/build/guest/agent/mkcpio
if [ -x "$M" ]; then
	printf '%s\n' 'dir /d 0755' 'nod /d/console 0600 c 5 1' "file /f $D/d/f 0644" 'slink /l f' |
		"$M" "$TEST_TMP/t.cpio" || fail "mkcpio"
	(cd "$TEST_TMP" && mkdir x && cd x && cpio -id --quiet --no-absolute-filenames <../t.cpio 2>/dev/null)
	cmp -s "$TEST_TMP/x/f" "$D/d/f" || fail "mkcpio: file content"
	[ "$(readlink "$TEST_TMP/x/l")" = f ] || fail "mkcpio: symlink"
	cpio -itv <"$TEST_TMP/t.cpio" 2>/dev/null | grep -q '^crw------- .* 5, *1 .* d/console$' ||
		fail "mkcpio: device node"
	echo 'nod /x 0600 q 1 1' | "$M" "$TEST_TMP/bad.cpio" 2>"$out" && fail "mkcpio accepted a bad line"
	grep -q 'line 1' "$out" || fail "mkcpio: error names the line"
	[ ! -e "$TEST_TMP/bad.cpio" ] || fail "mkcpio left a partial archive"
fi
echo "agent host checks passed"
