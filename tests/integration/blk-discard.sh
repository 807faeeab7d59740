#!/bin/bash
# WRITE_ZEROES and DISCARD from the guest on a raw image: the guest reads
# zeroes back, the host finds zeroes in exactly those ranges and the rest of
# the image untouched, and unmap/discard punch holes (fewer blocks).
# timeout: 90
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"

img=$TEST_TMP/disk.img orig=$TEST_TMP/orig.img
head -c 8M /dev/urandom >"$img"
cp "$img" "$orig"
blocks0=$(stat -c %b "$img")
out=$TEST_TMP/out
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 --disk "path=$img,format=raw" \
	--cmdline "vmmtest.run=blkinfo,blkzero:off=1M:len=1M,blkzero:off=3M:len=1M:unmap=1,blkdiscard:off=5M:len=2M,blkzero:off=1:len=512"
expect_status $? 1 "$out"
expect_in "$out" "^blkinfo: dev=0 .* discard=1 write_zeroes=1 "
expect_in "$out" "^blkzero: dev=0 off=1048576 len=1048576 unmap=0 zeroed"
expect_in "$out" "^blkzero: dev=0 off=3145728 len=1048576 unmap=1 zeroed"
expect_in "$out" "^PASS blkdiscard"
expect_in "$out" "^FAIL blkzero: off and len must be multiples of 512" "an unaligned range was accepted"
expect_in "$out" "vmmtest: 4 passed, 1 failed"

M=1048576
zero() { cmp -s -n $(($2 * M)) <(tail -c +$(($1 * M + 1)) "$img") /dev/zero; }
same() { cmp -s -n $(($2 * M)) <(tail -c +$(($1 * M + 1)) "$img") <(tail -c +$(($1 * M + 1)) "$orig"); }
zero 1 1 || fail "[1M,2M) not zero on the host"
zero 3 1 || fail "[3M,4M) not zero on the host"
zero 5 2 || fail "[5M,7M) (discarded) not zero on the host"
same 0 1 && same 2 1 && same 4 1 && same 7 1 || fail "data outside the ranges changed"
blocks1=$(stat -c %b "$img")
[ "$blocks1" -lt "$blocks0" ] || fail "no blocks freed by unmap/discard ($blocks0 -> $blocks1)"
echo ok
