#!/bin/bash
# timeout: 420
# Boot Debian's own cloud kernel (a stock bzImage) and check that its
# banner, our command line and our e820 map reach the serial console.  On a
# PVM host a stock kernel is instruction-emulated and stops early (pvm-host.md):
# the test asserts only those first lines, then stops the VM (~70 s idle,
# minutes on a loaded machine; the decompressor dominates).
. "$(dirname "$0")/lib.sh"
need_kvm
KERNEL=$("$TOP/tools/debian-kernel") || skip "cannot fetch Debian's kernel package (no apt?)"
OUT=$TEST_TMP/console
MARK="vmm.test=banner-$$"

"$VMM" --kernel "$KERNEL" --memory 512M --timeout 380 --serial "file=$OUT" \
	--cmdline "console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=k panic=-1 nokaslr $MARK" \
	>"$TEST_TMP/stderr" 2>&1 </dev/null &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
seen=0
while kill -0 $pid 2>/dev/null; do
	if grep -q "^\[ *[0-9.]*\] Linux version 6\.1\." "$OUT" 2>/dev/null &&
	   grep -q "Command line: .*$MARK" "$OUT" &&
	   grep -q "BIOS-e820: \[mem 0x0000000000100000-0x000000001fffffff\] usable" "$OUT"; then
		seen=1
		break
	fi
	sleep 1
done
kill $pid 2>/dev/null
wait $pid 2>/dev/null
cat "$TEST_TMP/stderr"
head -20 "$OUT"
[ $seen = 1 ] || fail "banner, command line or e820 map missing from the console"
grep -q "BIOS-e820: \[mem 0x0000000000000000-0x000000000009fbff\] usable" "$OUT" || fail "low RAM e820 entry"
grep -q "BIOS-e820: \[mem 0x000000000009fc00-0x00000000000fffff\] reserved" "$OUT" || fail "EBDA e820 entry"
if [ -e /sys/module/kvm_pvm ]; then
	grep -q "PVM host: appending" "$TEST_TMP/stderr" || fail "no PVM note on stderr"
fi
echo "Debian kernel banner, command line and e820 map seen"
