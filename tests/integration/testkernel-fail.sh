#!/bin/bash
# A failing, unknown or crashing test-kernel command makes the VMM exit
# non-zero, with the FAIL line (or the exception report) on the console.
# timeout: 90
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"

out=$TEST_TMP/fail.log
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 20 --cmdline "vmmtest.run=hello,fail"
expect_status $? 1 "$out"
expect_in "$out" "^PASS hello"
expect_in "$out" "^FAIL fail: deliberate failure"
expect_in "$out" "vmmtest: 1 passed, 1 failed"

out=$TEST_TMP/unknown.log
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 20 --cmdline "vmmtest.run=no-such-command"
expect_status $? 1 "$out"
expect_in "$out" "^FAIL no-such-command: unknown command"

out=$TEST_TMP/badarg.log
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 20 \
	--cmdline "vmmtest.run=timer:n=zz,timer:n=3:perod=500,timer:n=3:period=500"
expect_status $? 1 "$out"
expect_in "$out" "^FAIL timer: bad number for n"
expect_in "$out" "^FAIL timer: unknown argument perod=500" "a misspelt argument passed"
expect_in "$out" "vmmtest: 1 passed, 2 failed"

# an unexpected exception: report vector, error code, RIP, CR2; exit 2
out=$TEST_TMP/fault.log
run_vmm "$out" --kernel "$TESTKERNEL" --cpus boot=2 --timeout 20 \
	--cmdline "vmmtest.run=hello,fault,hello"
expect_status $? 2 "$out"
expect_in "$out" "PANIC: exception 14 #PF error 0x[0-9a-f]+ rip 0x[0-9a-f]+ cr2 0x7f0000000000"
echo ok
