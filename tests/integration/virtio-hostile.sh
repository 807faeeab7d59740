#!/bin/bash
# A hostile guest: the test kernel's blkhostile submits malformed chains on
# disk 0 (outside RAM, on the MMIO window, loops, wrong direction, huge and
# zero lengths, nested/looping indirect tables, bad heads, no status byte).
# The VMM must survive, name each fatal problem in one log line, put only
# disk 0 in NEEDS_RESET (the guest resets and re-initialises it), and disk 1
# must keep working with its image intact.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || skip "no test kernel"
help=$TEST_TMP/help
run_vmm "$help" --kernel "$TESTKERNEL" --timeout 20 --cmdline "vmmtest.run=help" || true
grep -q blkhostile "$help" || skip "test kernel has no blkhostile command"

for i in 0 1; do
	head -c 4M /dev/urandom >"$TEST_TMP/d$i.img"
done
sum1=$(sha256sum <"$TEST_TMP/d1.img")
out=$TEST_TMP/out
rc=0
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 40 \
	--disk "path=$TEST_TMP/d0.img,format=raw" \
	--disk "path=$TEST_TMP/d1.img,format=raw" \
	--cmdline "vmmtest.run=blkhostile:dev=0:other=1,blktest:dev=0,blktest:dev=1" || rc=$?
expect_status "$rc" 0 "$out"
expect_in "$out" "PASS blkhostile"
# the device's own words for the fatal cases, each once per occurrence
expect_in "$out" "virtio-blk0: .*outside guest RAM; device needs reset"
expect_in "$out" "virtio-blk0: .*(loops|device-readable descriptor after a device-writable).*needs reset"
expect_in "$out" "virtio-blk0: nested indirect table"
expect_in "$out" "virtio-blk0: chain head [0-9]+ out of range"
expect_in "$out" "virtio-blk0: request at head [0-9]+ has no device-writable status byte"
expect_not_in "$out" "virtio-blk1:" "the other disk reported errors"
expect_not_in "$out" "ERROR: (Address|Leak)Sanitizer|runtime error" "sanitizer report"
n=$(grep -c "virtio-blk0:" "$out")
[ "$n" -le 40 ] || fail "$n log lines for one hostile run (unbounded logging?)"
[ "$(sha256sum <"$TEST_TMP/d1.img")" = "$sum1" ] || fail "disk 1 changed"
echo ok
