#!/bin/bash
# timeout: 600
# libvmm used wrongly or unluckily (tests/lib/misuse.c, built against the
# installed library): NULL handles, unknown options, bad values, a bad
# kernel, start twice, wait before start and after stop, stop before
# start, destroy while running, VMs failing and timing out beside one
# that must not notice, console input, events.  Errors and messages,
# never a crash (also under make SANITIZE=1).
. "$(dirname "$0")/lib.sh"
need_kvm
M=$BUILD/tests/lib/misuse
[ -x "$M" ] || fail "no $M (make builds it)"
rc=0
"$M" --kernel "$BUILD/dest/usr/local/share/vmm/testkernel" --dir "$TEST_TMP" \
	>"$TEST_TMP/out" 2>&1 || rc=$?
cat "$TEST_TMP/out"
expect_status $rc 0 "$TEST_TMP/out"
expect_in "$TEST_TMP/out" "^misuse: [0-9]+ checks passed$"
! grep -Eq "Sanitizer|runtime error" "$TEST_TMP/out" || fail "sanitizer report"
echo ok
