#!/bin/bash
# The test kernel's virtio-blk driver against our device: info, reads and a
# verified write, unaligned byte-level helpers, flush, a short blkperf.  The
# commands restore what they overwrite (blkperf only reads here), so the image must come out
# byte-identical, and a broken run must fail (a disk too small for blktest).
# timeout: 120
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"

img=$TEST_TMP/disk.img
head -c 8M /dev/urandom >"$img"
before=$(sha256sum <"$img")
out=$TEST_TMP/out
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 \
	--disk "path=$img,format=raw,serial=basic-0" \
	--cmdline "vmmtest.run=blkinfo,blktest,blktest:wait=irq,blkirq:n=16,blkbytes,blkflush,blkperf:mode=read:size=4M:qd=4,blkperf:mode=randread:size=1M:qd=8"
expect_status $? 0 "$out"
expect_in "$out" "^blkinfo: dev=0 .*sectors=16384 bytes=8388608 blk_size=512 ro=0 flush=1 .*serial=basic-0" \
	"blkinfo does not show the 8 MiB disk"
for c in blkinfo blktest blkirq blkbytes blkflush blkperf; do
	expect_in "$out" "^PASS $c" "no PASS $c"
done
expect_in "$out" "^blkirq: dev=0 16 reads, [0-9]+ interrupts" "completion interrupts missing"
expect_in "$out" "^BLKPERF dev=0 mode=read .*MBps=[0-9.]+ "
expect_in "$out" "^BLKPERF dev=0 mode=randread "
expect_in "$out" "vmmtest: 8 passed, 0 failed"
[ "$(sha256sum <"$img")" = "$before" ] || fail "the image changed: blktest and blkbytes must restore what they write"

# the same with O_DIRECT underneath (the byte helpers' RMW path included)
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 \
	--disk "path=$img,format=raw,cache=none" \
	--cmdline "vmmtest.run=blktest,blkbytes,blkbytes:off=12345,blkflush"
expect_status $? 0 "$out"
expect_in "$out" "vmmtest: 4 passed, 0 failed"
[ "$(sha256sum <"$img")" = "$before" ] || fail "the image changed (cache=none)"

# a disk too small for blktest's sector 1000 fails the command
small=$TEST_TMP/small.img
head -c 64K /dev/zero >"$small"
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 30 --disk "path=$small,format=raw" \
	--cmdline "vmmtest.run=blktest"
expect_status $? 1 "$out"
expect_in "$out" "^FAIL blktest: disk too small"
# no disk at all
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 30 --cmdline "vmmtest.run=blkinfo,blktest:dev=3"
expect_status $? 1 "$out"
expect_in "$out" "^FAIL blkinfo: no virtio-blk devices"
expect_in "$out" "^FAIL blktest: no virtio-blk device 3"
echo ok
