#!/bin/bash
# A readonly=on disk: the device offers RO, a guest write fails with IOERR,
# reads work, and the image is byte-identical afterwards; a writable disk
# beside it still takes writes.
# timeout: 120
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"

ro=$TEST_TMP/ro.img rw=$TEST_TMP/rw.img
head -c 4M /dev/urandom >"$ro"
truncate -s 4M "$rw"
before=$(sha256sum <"$ro")
out=$TEST_TMP/out
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 \
	--disk "path=$ro,format=raw,readonly=on" --disk "path=$rw,format=raw" \
	--cmdline "vmmtest.run=blkinfo,blkro:dev=0,blktest:dev=0,blkfill:dev=1:seed=3:len=1M,blkro:dev=1"
expect_status $? 1 "$out"
expect_in "$out" "^blkinfo: dev=0 .* ro=1 " "device 0 does not say read-only"
expect_in "$out" "^blkinfo: dev=1 .* ro=0 "
expect_in "$out" "^PASS blkro"
expect_in "$out" "^blkro: dev=0 write refused with IOERR"
expect_in "$out" "^PASS blktest"
expect_in "$out" "^PASS blkfill"
expect_in "$out" "^FAIL blkro: device 1 does not offer VIRTIO_BLK_F_RO"
[ "$(sha256sum <"$ro")" = "$before" ] || fail "the read-only image changed"

# a bulk write to the read-only disk fails as well
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 \
	--disk "path=$ro,format=raw,readonly=on" \
	--cmdline "vmmtest.run=blkfill:seed=1:off=0:len=2M"
expect_status $? 1 "$out"
expect_in "$out" "^FAIL blkfill: write: IOERR"
[ "$(sha256sum <"$ro")" = "$before" ] || fail "the read-only image changed"
echo ok
