#!/bin/bash
# Device reset with reads in flight (the guest writes 0 to Status right
# after a notify): the reset returns only when the device is quiet, the
# re-initialised device reads the same data, and nothing is logged.  Both
# with the page cache (completions inside the submit) and with cache=none
# (completions later, so the reset really waits for them).
# timeout: 90
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || skip "no test kernel"
help=$TEST_TMP/help
run_vmm "$help" --kernel "$TESTKERNEL" --timeout 20 --cmdline "vmmtest.run=help" || true
grep -q blkreset "$help" || skip "test kernel has no blkreset command"

head -c 16M /dev/urandom >"$TEST_TMP/d0.img"
cp "$TEST_TMP/d0.img" "$TEST_TMP/d1.img"
sum=$(sha256sum <"$TEST_TMP/d0.img")
out=$TEST_TMP/out
rc=0
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 70 \
	--disk "path=$TEST_TMP/d0.img,format=raw" \
	--disk "path=$TEST_TMP/d1.img,format=raw,cache=none" \
	--cmdline "vmmtest.run=blkreset:dev=0:rounds=20:qd=16,blkreset:dev=1:rounds=20:qd=16,blktest:dev=0,blktest:dev=1" || rc=$?
if [ "$rc" != 0 ] && grep -q "cache=none.*not supported" "$out"; then
	skip "O_DIRECT not supported on $TEST_TMP"
fi
expect_status "$rc" 0 "$out"
expect_in "$out" "blkreset: dev=0 20 resets with 16 reads in flight ok"
expect_in "$out" "blkreset: dev=1 20 resets with 16 reads in flight ok"
expect_not_in "$out" "virtio-blk[01]:" "the device logged a problem"
expect_not_in "$out" "ERROR: (Address|Leak)Sanitizer|runtime error" "sanitizer report"
[ "$(sha256sum <"$TEST_TMP/d0.img")" = "$sum" ] || fail "disk 0 changed"
[ "$(sha256sum <"$TEST_TMP/d1.img")" = "$sum" ] || fail "disk 1 changed"
echo ok
