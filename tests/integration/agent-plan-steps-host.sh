#!/bin/bash
# The agent's plan steps (stat, chown, statfs, count, disklink) run on the
# host as an ordinary process (no VM): what they report, their want=
# checks failing, bad arguments refused.  Also the plan helpers of
# tools/linux-plan: one line per case, a failing case does not stop the
# others, the summary and its status.
# timeout: 60
. "$(dirname "$0")/lib.sh"
A=$TOP/build/guest/agent/agent
[ -x "$A" ] || make -C "$TOP" -s agent >/dev/null || fail "make agent failed"
T=$TEST_TMP
: >"$T/f"
chmod 640 "$T/f"
printf 'a x\nb\nc x\n' >"$T/lines"
me=$(id -u):$(id -g)

"$A" --keep-going --job "stat path=$T/f want=$me:640
chown path=$T/f mode=751
stat path=$T/f want=$me:751
stat path=$T/f want=1:2:3
statfs path=$T
count path=$T/lines match=%20x want=2
count path=$T/lines match=x want=5
count path=$T/lines
chown path=$T/f uid=abc
disklink serial=no-such-disk path=$T/l expect=ENODEV
stat path=$T/missing expect=ENOENT" >"$T/out" 2>&1
rc=$?
[ $rc = 1 ] || { cat "$T/out"; fail "status $rc, expected 1 (some steps fail on purpose)"; }
line() { grep -m1 "^{\"step\":$1," "$T/out"; }
ok() { line "$1" | grep -q '"ok":true' || { cat "$T/out"; fail "step $1 should pass: $(line "$1")"; }; }
bad() { line "$1" | grep -q '"ok":false' || { cat "$T/out"; fail "step $1 should fail: $(line "$1")"; }; }
ok 1; ok 2; ok 3; ok 5; ok 6; ok 10; ok 11
bad 4; bad 7; bad 8; bad 9
[ "$(stat -c %a "$T/f")" = 751 ] || fail "chown mode=751 did not chmod"
line 4 | grep -q "is $me:751, not 1:2:3" || fail "step 4's message: $(line 4)"
line 5 | grep -q '"size_kib":[1-9]' || fail "statfs reports no size: $(line 5)"
line 6 | grep -q '"count":2' || fail "count: $(line 6)"
line 8 | grep -q 'match=TEXT is required' || fail "count without match=: $(line 8)"
line 9 | grep -q 'decimal ids' || fail "chown uid=abc: $(line 9)"
grep -q '"passed":7,"failed":4' "$T/out" || { cat "$T/out"; fail "summary"; }

# the plan helpers
VMM=/bin/false
. "$TOP/tools/linux-plan"
passing() { plan_detail "one"; plan_detail "two"; }
failing() { fail "a reason"; }
skipping() { skip "not here"; }
{
	plan_begin demo
	plan_case c1 passing
	plan_case c2 failing
	plan_case c3 skipping
	plan_case c4 passing
	plan_end
	echo "end status $?"
} >"$T/plan.out"
cat >"$T/plan.want" <<'WANT'
plan demo
PASS c1                     one; two
FAIL c2                     a reason
SKIP c3                     not here
PASS c4                     one; two
plan demo: 2 passed, 1 failed, 1 skipped
end status 1
WANT
diff "$T/plan.want" "$T/plan.out" || fail "plan helpers' output differs (above)"
echo "agent plan steps and plan helpers ok"
