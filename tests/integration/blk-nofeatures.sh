#!/bin/bash
# The driver can decline INDIRECT_DESC and EVENT_IDX (vmmtest.blk_off=):
# then requests are plain descriptor chains and notifies/interrupts follow
# the ring flags; reads, writes, odd buffers, resets and the hostile chains
# must all still work on both disks, and the images come out unchanged.
# timeout: 120
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"

d0=$TEST_TMP/d0.img d1=$TEST_TMP/d1.img
head -c 8M /dev/urandom >"$d0"
head -c 4M /dev/urandom >"$d1"
sum0=$(sha256sum <"$d0") sum1=$(sha256sum <"$d1")
out=$TEST_TMP/out
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 90 \
	--disk "path=$d0,format=raw" --disk "path=$d1,format=raw" \
	--cmdline "vmmtest.blk_off=indirect,event_idx vmmtest.run=blkinfo,blktest,blktest:wait=irq,blkirq,blkbytes,blkalign,blkperf:mode=read:size=8M,blkperf:mode=randread:size=1M,blkhostile:other=1,blkreset:rounds=4,blknego,blktest:dev=1"
expect_status $? 0 "$out"
expect_in "$out" "^blkinfo: dev=0 .* indirect=0 event_idx=0 "
expect_in "$out" "^blkinfo: dev=1 .* indirect=0 event_idx=0 "
expect_in "$out" "^blkhostile: indirect-outside-ram +skipped"
expect_in "$out" "^blkirq: dev=0 8 reads, [0-9]+ interrupts"
expect_in "$out" "vmmtest: 12 passed, 0 failed"
[ "$(sha256sum <"$d0")" = "$sum0" ] || fail "disk 0 changed"
[ "$(sha256sum <"$d1")" = "$sum1" ] || fail "disk 1 changed"

# declining FLUSH: blkflush says so and fails
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 30 --disk "path=$d0,format=raw" \
	--cmdline "vmmtest.blk_off=flush vmmtest.run=blkinfo,blkflush"
expect_status $? 1 "$out"
expect_in "$out" "^blkinfo: dev=0 .* flush=0 "
expect_in "$out" "^FAIL blkflush: device 0: VIRTIO_BLK_F_FLUSH not negotiated"
echo ok
