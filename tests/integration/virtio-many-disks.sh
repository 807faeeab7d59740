#!/bin/bash
# Eight --disk options: eight virtio-mmio devices, each with its own window,
# IRQ and device thread, announced on the command line in order; the VMM
# starts and tears all of them down cleanly (under SANITIZE=1 without leaks),
# and no image changes when the guest does not write.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || skip "no test kernel"

args=()
for i in 0 1 2 3 4 5 6 7; do
	img=$TEST_TMP/d$i.img
	head -c 1M /dev/urandom >"$img"
	sha256sum "$img" >>"$TEST_TMP/sums"
	args+=(--disk "path=$img,format=raw,serial=disk-$i")
done
out=$TEST_TMP/out
rc=0
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 30 "${args[@]}" \
	--cmdline "vmmtest.run=hello" || rc=$?
expect_status "$rc" 0 "$out"
for i in 0 1 2 3 4 5 6 7; do
	base=$(printf '0x%x' $((0xd0000000 + i * 0x1000)))
	expect_in "$out" "virtio_mmio.device=4K@$base:$((5 + i))([^0-9]|$)" \
		"no command line entry for disk $i"
done
expect_not_in "$out" "ERROR: (Address|Leak)Sanitizer|runtime error" \
	"sanitizer report"
sha256sum -c --quiet "$TEST_TMP/sums" || fail "an image changed"
echo "ok"
