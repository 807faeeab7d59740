#!/bin/bash
# The test kernel boots under vmm through both of its entries: the PVH note
# (vmm prefers it, as for a Linux vmlinux: 32-bit entry, hvm_start_info) and,
# with the note stripped (testkernel-64), vmm's 64-bit entry with
# boot_params.  Each reads the command line, the memory map (RAM above 4 GiB
# too) and the MP table from its own boot data.  A PVH kernel without a
# "Linux" note is not Linux: no PVM options appended, and the whole command-
# line area (more than Linux's 2047 bytes) is its.
# timeout: 120
. "$(dirname "$0")/lib.sh"
need_kvm
K64=${TESTKERNEL%/*}/testkernel-64
for k in "$TESTKERNEL" "$K64"; do
	[ -f "$k" ] || fail "no test kernel at $k"
done
pad=$(head -c 3000 /dev/zero | tr '\0' x)

for entry in PVH 64-bit; do
	k=$TESTKERNEL; [ $entry = 64-bit ] && k=$K64
	out=$TEST_TMP/$entry.log
	run_vmm "$out" --kernel "$k" --cpus boot=2 --memory 4608M --timeout 30 \
		--boot-timer --cmdline "vmmtest.pad=$pad vmmtest.run=hello,smp,timer,mem"
	expect_status $? 0 "$out"
	expect_in "$out" "mode, 2 cpus, tsc [0-9]+ kHz, $entry entry" "not booted through the $entry entry"
	expect_in "$out" "^smp: 2 cpus online, .*cpus from: MP table" "$entry: the APs from the MP table"
	expect_in "$out" "^e820: \[0x000100000000-0x00015fffffff\] usable" "$entry: no RAM above 4 GiB"
	expect_not_in "$out" "pvm_quirks" "$entry: PVM Linux options appended to the test kernel"
	expect_in "$out" "boot-ready wall_ms=" "$entry: no boot-ready marker"
	# 4, not the default 3: vmmtest.run= (past byte 3000) arrived
	expect_in "$out" "vmmtest: 4 passed, 0 failed" "$entry: the long command line was cut"
	if [ -d /sys/module/kvm_pvm ]; then
		expect_in "$out" "PVM native mode, 2 cpus" "$entry: not native on a PVM host"
		expect_in "$out" "^cpu 1 up \(apic id 1, native\)"
	fi
done

# the status still goes through the exit port after a PVH boot
out=$TEST_TMP/fail.log
run_vmm "$out" --kernel "$TESTKERNEL" --timeout 20 --cmdline "vmmtest.run=fail"
expect_status $? 1 "$out"
expect_in "$out" "PVH entry"
echo ok
