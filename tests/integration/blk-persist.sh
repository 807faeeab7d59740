#!/bin/bash
# Persistence: the guest writes the pattern.h pattern over an unaligned range
# in one VM run; the host verifies it with its own tool (blkio), a second VM
# run verifies it too, and a wrong seed or a host-side change is caught.
# The other way round as well: host fills, guest verifies.
# timeout: 180
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "no $BLKIO"

img=$TEST_TMP/disk.img
truncate -s 32M "$img"
off=4097 len=$((3 * 1024 * 1024 + 123))
range="off=$off:len=$len"
out=$TEST_TMP/out

run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 --disk "path=$img,format=raw" \
	--cmdline "vmmtest.run=blkfill:seed=42:$range"
expect_status $? 0 "$out"
expect_in "$out" "^PASS blkfill"
"$BLKIO" verify --image "$img" --format raw --seed 42 --offset $off --length $len \
	|| fail "host does not find the guest's pattern"
# the bytes around the range are untouched (still zero)
[ "$(head -c $off "$img" | tr -d '\0' | wc -c)" = 0 ] || fail "bytes before the range changed"
[ "$(tail -c +$((off + len + 1)) "$img" | head -c 65536 | tr -d '\0' | wc -c)" = 0 ] \
	|| fail "bytes after the range changed"

# second boot: verify; a wrong seed must fail
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 --disk "path=$img,format=raw" \
	--cmdline "vmmtest.run=blkverify:seed=42:$range,blkverify:seed=43:$range"
expect_status $? 1 "$out"
expect_in "$out" "^PASS blkverify"
expect_in "$out" "^FAIL blkverify: mismatch at byte $off:"

# one byte changed on the host is found at the right offset
printf '\xff' | dd of="$img" bs=1 seek=$((off + 1000000)) conv=notrunc status=none
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 --disk "path=$img,format=raw" \
	--cmdline "vmmtest.run=blkverify:seed=42:$range"
expect_status $? 1 "$out"
expect_in "$out" "^FAIL blkverify: mismatch at byte $((off + 1000000)):"

# host fills, guest verifies (a 1 MiB-aligned range, cache=none in the VMM)
"$BLKIO" fill --image "$img" --format raw --seed 7 --offset 8M --length 8M \
	|| fail "host fill failed"
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 --disk "path=$img,format=raw,cache=none" \
	--cmdline "vmmtest.run=blkverify:seed=7:off=8M:len=8M"
expect_status $? 0 "$out"
expect_in "$out" "^PASS blkverify"
echo ok
