#!/bin/bash
# timeout: 120
# The last bytes a guest writes to the console before the VM ends are never
# lost: the test kernel's contail writes N bytes without a newline (so they
# sit in vmm's line buffer), then "<END-OF-CONSOLE>", and at once writes the
# exit port, resets through the i8042, or halts until --timeout kills it;
# the console (stdout, and --serial file=) must end with exactly those bytes.
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
cd "$TEST_TMP" || exit 1
MARK='<END-OF-CONSOLE>'

# check FILE N: FILE ends with N bytes of a..z (from 'a'), then MARK
check_tail() {
	local f=$1 n=$2 want
	want=$(yes abcdefghijklmnopqrstuvwxyz | tr -d '\n' | head -c "$n")$MARK
	[ "$(tail -c $((n + ${#MARK})) "$f")" = "$want" ] ||
		fail "$f: the console lost its last bytes (ends with: $(tail -c 40 "$f" | od -c | head -3))"
}

runs=0
for then in exit reboot hang; do
	case $then in exit) want=3 ;; reboot) want=0 ;; hang) want=124 ;; esac
	for n in 1 4103; do
		cmd="vmmtest.run=contail:n=$n:then=$then:status=3"
		rc=0
		"$VMM" --kernel "$TESTKERNEL" --timeout 5 --cmdline "$cmd" \
			>out 2>err </dev/null || rc=$?
		expect_status $rc $want err
		check_tail out "$n"
		rc=0
		"$VMM" --kernel "$TESTKERNEL" --timeout 5 --serial file=console.txt \
			--cmdline "$cmd" >out2 2>&1 </dev/null || rc=$?
		expect_status $rc $want out2
		check_tail console.txt "$n"
		runs=$((runs + 2))
	done
done
echo "ok: $runs runs, every console ended with its last byte"
