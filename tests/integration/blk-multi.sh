#!/bin/bash
# Several disks at once, each seeing its own data: the host fills three
# images with different seeds, the guest verifies each against its own seed
# (and not another's), writes to one, and the host finds that write on that
# image only.
# timeout: 150
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "no $BLKIO"

args=() run=""
for i in 0 1 2; do
	img=$TEST_TMP/d$i.img
	truncate -s $((4 + i))M "$img"
	"$BLKIO" fill --image "$img" --format raw --seed $((100 + i)) >/dev/null \
		|| fail "host fill of disk $i"
	args+=(--disk "path=$img,format=raw,serial=multi-$i")
	run="$run,blkverify:dev=$i:seed=$((100 + i))"
done
sha0=$(sha256sum <"$TEST_TMP/d0.img") sha2=$(sha256sum <"$TEST_TMP/d2.img")
out=$TEST_TMP/out
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 90 "${args[@]}" \
	--cmdline "vmmtest.run=blkinfo${run},blkfill:dev=1:seed=7:off=1M:len=1M,blkverify:dev=0:seed=101:len=64K"
expect_status $? 1 "$out"
for i in 0 1 2; do
	expect_in "$out" "^blkinfo: dev=$i .*bytes=$(((4 + i) * 1048576)) .*serial=multi-$i" \
		"disk $i not seen with its size and serial"
	expect_in "$out" "^blkverify: dev=$i seed=$((100 + i)) off=0 len=$(((4 + i) * 1048576)) ok"
done
expect_in "$out" "^PASS blkfill"
expect_in "$out" "^FAIL blkverify: mismatch at byte 0" "disk 0 matched disk 1's seed"
expect_in "$out" "vmmtest: 5 passed, 1 failed"
"$BLKIO" verify --image "$TEST_TMP/d1.img" --format raw --seed 7 --offset 1M --length 1M \
	|| fail "the guest's write is not on disk 1"
"$BLKIO" verify --image "$TEST_TMP/d1.img" --format raw --seed 101 --offset 2M --length 3M \
	|| fail "disk 1 changed outside the written range"
[ "$(sha256sum <"$TEST_TMP/d0.img")" = "$sha0" ] || fail "disk 0 changed"
[ "$(sha256sum <"$TEST_TMP/d2.img")" = "$sha2" ] || fail "disk 2 changed"
echo ok
