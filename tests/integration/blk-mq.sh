#!/bin/bash
# Multi-queue virtio-blk: the driver negotiates MQ and drives every request
# queue at once (blkmq: 64 KiB requests spread over the queues, read back
# with each chunk on another queue); the host verifies the pattern.  With
# MQ declined (vmmtest.blk_off=mq) the same works on one queue.
# timeout: 90
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "no $BLKIO"

img=$TEST_TMP/disk.img
truncate -s 32M "$img"
out=$TEST_TMP/out
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 --disk "path=$img,format=raw" \
	--cmdline "vmmtest.run=blkinfo,blkmq:qd=8:off=1M:len=8M:seed=21,blktest"
expect_status $? 0 "$out"
n=$(sed -n 's/^blkinfo: dev=0 .* queues=\([0-9]*\) .*/\1/p' "$out")
[ -n "$n" ] && [ "$n" -ge 1 ] || fail "blkinfo shows no queue count"
expect_in "$out" "^blkmq: dev=0 queues=$n .* data ok"
if [ "$n" -gt 1 ]; then
	# every queue carried requests: no 0 in the per-queue counts
	expect_not_in "$out" "^blkmq: .*(writes per queue|reads) ([0-9]+/)*0(/|,)" "an idle queue"
fi
"$BLKIO" verify --image "$img" --format raw --seed 21 --offset 1M --length 8M \
	|| fail "host does not find the pattern written over $n queues"

run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 --disk "path=$img,format=raw" \
	--cmdline "vmmtest.blk_off=mq vmmtest.run=blkinfo,blkmq:off=9M:len=4M:seed=22,blkverify:seed=21:off=1M:len=8M"
expect_status $? 0 "$out"
expect_in "$out" "^blkinfo: dev=0 .* queues=1 "
expect_in "$out" "^blkmq: dev=0 queues=1 "
"$BLKIO" verify --image "$img" --format raw --seed 22 --offset 9M --length 4M \
	|| fail "host does not find the single-queue pattern"
echo ok
