#!/bin/bash
# The test kernel boots on 1 and 4 vCPUs, every AP reports in, the default
# self-test and named commands print PASS lines, and the VMM exits 0.
# timeout: 90
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"

out=$TEST_TMP/one.log
run_vmm "$out" --kernel "$TESTKERNEL" --cpus boot=1 --timeout 20
expect_status $? 0 "$out"
for c in hello smp timer; do
	expect_in "$out" "^PASS $c" "default self-test: no PASS $c"
done
expect_not_in "$out" "^FAIL" "a command failed on 1 vCPU"
expect_in "$out" "vmmtest: 3 passed, 0 failed"

out=$TEST_TMP/four.log
run_vmm "$out" --kernel "$TESTKERNEL" --cpus boot=4 --timeout 20 \
	--cmdline "vmmtest.run=hello,smp,timer,mem"
expect_status $? 0 "$out"
for n in 1 2 3; do
	expect_in "$out" "^cpu $n up" "AP $n did not report in"
done
expect_in "$out" "^smp: 4 cpus online" "smp did not see 4 cpus"
for c in hello smp timer mem; do
	expect_in "$out" "^PASS $c" "no PASS $c on 4 vCPUs"
done
expect_in "$out" "vmmtest: 4 passed, 0 failed"

# RAM above 4 GiB is in the e820 map and mapped by the kernel's page tables
out=$TEST_TMP/high.log
run_vmm "$out" --kernel "$TESTKERNEL" --memory 4608M --timeout 20 --cmdline "vmmtest.run=mem"
expect_status $? 0 "$out"
expect_in "$out" "^e820: \[0x000100000000-0x00015fffffff\] usable" "no RAM above 4 GiB"
expect_in "$out" "^PASS mem"

# on a PVM host the same kernel also runs instruction-emulated
if [ -d /sys/module/kvm_pvm ]; then
	out=$TEST_TMP/emulated.log
	run_vmm "$out" --kernel "$TESTKERNEL" --cpus boot=2 --timeout 30 \
		--cmdline "vmmtest.native=0 vmmtest.run=hello,smp,timer"
	expect_status $? 0 "$out"
	expect_in "$out" "PVM emulated mode, 2 cpus"
	expect_in "$out" "^cpu 1 up \(apic id 1, emulated\)"
	expect_in "$out" "vmmtest: 3 passed, 0 failed"
	expect_in "$TEST_TMP/four.log" "PVM native mode, 4 cpus"
	expect_in "$TEST_TMP/four.log" "^cpu 3 up \(apic id 3, native\)"
fi
echo ok
