#!/bin/bash
# virtio puts no alignment rule on guest buffers: requests through buffers at
# odd memory addresses and chains of odd-sized segments must work whatever
# the backend does underneath (cache=writeback, and cache=none = O_DIRECT,
# where the device has to bounce), and leave the image as it was.
# timeout: 90
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"

img=$TEST_TMP/disk.img
head -c 4M /dev/urandom >"$img"
before=$(sha256sum <"$img")
out=$TEST_TMP/out
for cache in writeback none; do
	run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 \
		--disk "path=$img,format=raw,cache=$cache" \
		--cmdline "vmmtest.run=blkalign,blkalign:off=1M"
	expect_status $? 0 "$out"
	expect_in "$out" "^blkalign: dev=0 6 odd addresses, 4 odd segment chains ok"
	expect_in "$out" "vmmtest: 2 passed, 0 failed"
	[ "$(sha256sum <"$img")" = "$before" ] || fail "cache=$cache: the image changed"
done
echo ok
