#!/bin/bash
# Feature negotiation: a driver that does not accept VERSION_1, or accepts a
# feature the device did not offer, does not get FEATURES_OK (and the VMM
# says why in one line); after a reset a normal negotiation works.  A
# readonly=on disk offers RO, a writable one does not.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || skip "no test kernel"
help=$TEST_TMP/help
run_vmm "$help" --kernel "$TESTKERNEL" --timeout 20 --cmdline "vmmtest.run=help" || true
grep -q blknego "$help" || skip "test kernel has no blknego command"

head -c 1M /dev/zero >"$TEST_TMP/d0.img"
head -c 1M /dev/zero >"$TEST_TMP/d1.img"
out=$TEST_TMP/out
rc=0
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 40 \
	--disk "path=$TEST_TMP/d0.img,format=raw" \
	--disk "path=$TEST_TMP/d1.img,format=raw,readonly=on" \
	--cmdline "vmmtest.run=blkinfo:dev=0,blkinfo:dev=1,blknego:dev=0,blknego:dev=1" || rc=$?
expect_status "$rc" 0 "$out"
expect_in "$out" "blknego: without VERSION_1: refused"
expect_in "$out" "blknego: unoffered feature 0x[0-9a-f]+: refused"
expect_in "$out" "virtio-blk0: driver did not accept VERSION_1.*FEATURES_OK refused"
expect_in "$out" "virtio-blk0: driver accepted features 0x[0-9a-f]+ that were not offered"
expect_in "$out" "virtio-blk1: driver did not accept VERSION_1"
expect_in "$out" "blknego: dev=0 normal negotiation ok"
expect_in "$out" "blknego: dev=1 normal negotiation ok"
expect_in "$out" "^blkinfo: dev=0 .*ro=0"
expect_in "$out" "^blkinfo: dev=1 .*ro=1"
expect_not_in "$out" "ERROR: (Address|Leak)Sanitizer|runtime error" "sanitizer report"
echo ok
