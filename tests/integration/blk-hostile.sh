#!/bin/bash
# A hostile guest: the test kernel submits malformed chains (addresses
# outside RAM, loops, zero-length, wrong direction, huge lengths, bad
# indirect tables, a bad head index) on disk 0.  The VMM survives and logs
# each error, the device recovers through a reset, disk 1 keeps working,
# and disk 1's image holds exactly what the guest wrote there.
# timeout: 150
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "no $BLKIO"

d0=$TEST_TMP/d0.img d1=$TEST_TMP/d1.img
head -c 4M /dev/urandom >"$d0"
truncate -s 4M "$d1"
out=$TEST_TMP/out
run_vmm "$out" --kernel "$TESTKERNEL" --cpus boot=2 --timeout 90 \
	--disk "path=$d0,format=raw" --disk "path=$d1,format=raw" \
	--cmdline "vmmtest.run=blkhostile:dev=0:other=1,blktest:dev=0,blkfill:dev=1:seed=5:len=1M,blkhostile:dev=1,blkverify:dev=1:seed=5:len=1M,smp"
expect_status $? 0 "$out"
for c in outside-ram mmio-window loop zero-length wrong-dir-data wrong-dir-status \
	 huge-length no-status writable-header past-end odd-length bad-head; do
	expect_in "$out" "^blkhostile: $c +-> .*device ok" "case $c not survived"
done
expect_in "$out" "^blkhostile: dev=0 15 cases, [0-9]+ resets, other disk ok"
# the VMM says what was wrong: a log line naming the device for (nearly)
# every bad chain; the guest's own lines never name it that way
for i in 0 1; do
	n=$(grep -v '^blkhostile' "$out" | grep -c "virtio-blk$i")
	[ "$n" -ge 10 ] || { cat "$out"; fail "the VMM logged only $n errors for disk $i"; }
done
expect_in "$out" "vmmtest: 6 passed, 0 failed"
"$BLKIO" verify --image "$d1" --format raw --seed 5 --offset 0 --length 1M \
	|| fail "disk 1 lost the guest's data"
echo ok
