#!/bin/bash
# The test kernel boots under QEMU's microvm through its PVH note (QEMU
# -kernel; qboot hands over hvm_start_info), as it would under any VMM that
# boots PVH: CPUs from the MP table and, with vmmtest.cpus=acpi, from the
# ACPI MADT; a virtio-blk disk from the virtio_mmio.device= entry QEMU adds
# to the command line; PASS/FAIL on the console and the status through
# isa-debug-exit on port 0xf4 (QEMU exits 2S+1 for a guest status S).
# KVM when /dev/kvm is usable, else QEMU's emulator (TCG, slower).
# timeout: 240
. "$(dirname "$0")/lib.sh"
QEMU=${QEMU:-qemu-system-x86_64}
command -v "$QEMU" >/dev/null ||
	skip "$QEMU not installed (tools/install-deps installs qemu-system-x86)"
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
if [ -w /dev/kvm ]; then
	# -arch-capabilities: KVM on a PVM host refuses that MSR (peers.md)
	accel="-accel kvm -cpu host,-arch-capabilities"
else
	accel="-accel tcg -cpu max"
	echo "no usable /dev/kvm: QEMU's emulator (TCG)"
fi
disk=$TEST_TMP/disk.img
truncate -s 16M "$disk"

# run_qemu OUT ACPI CPUS CMDLINE [QEMU ARGS...]: returns QEMU's status
run_qemu() {
	local out=$1 acpi=$2 cpus=$3 cl=$4
	shift 4
	# shellcheck disable=SC2086
	timeout -k 5 60 "$QEMU" -M "microvm,acpi=$acpi,rtc=off" $accel -m 256M \
		-smp "$cpus" -nodefaults -no-user-config -nographic -no-reboot \
		-kernel "$TESTKERNEL" -append "$cl" -serial "file:$out" \
		-device isa-debug-exit,iobase=0xf4,iosize=1 "$@" \
		>"$out.qemu" 2>&1 </dev/null
}

# MP table, a disk (virtio-mmio version 2: force-legacy off), all passing:
# guest status 0 = QEMU status 1
out=$TEST_TMP/mp.log
run_qemu "$out" off 2 "vmmtest.run=hello,smp,blkinfo,blktest,blkirq" \
	-global virtio-mmio.force-legacy=false \
	-drive "id=d0,file=$disk,format=raw,if=none,cache=none" \
	-device virtio-blk-device,drive=d0,serial=qemu-disk
rc=$?
cat "$out.qemu"
expect_status $rc 1 "$out"
expect_in "$out" "mode, 2 cpus, tsc [0-9]+ kHz, PVH entry" "not booted through the PVH entry"
expect_in "$out" "^cpu 1 up"
expect_in "$out" "^smp: 2 cpus online, .*cpus from: MP table"
expect_in "$out" "^blkinfo: dev=0 .*serial=qemu-disk"
expect_in "$out" "vmmtest: 5 passed, 0 failed"
if [ -w /dev/kvm ] && [ -d /sys/module/kvm_pvm ]; then
	expect_in "$out" "PVM native mode, 2 cpus" "not native under QEMU on a PVM host"
fi

# ACPI MADT; a failing command: guest status 1 = QEMU status 3
out=$TEST_TMP/acpi.log
run_qemu "$out" on 3 "vmmtest.cpus=acpi vmmtest.run=smp,fail"
rc=$?
expect_status $rc 3 "$out"
expect_in "$out" "^smp: 3 cpus online, .*cpus from: ACPI MADT" "the MADT did not give 3 cpus"
expect_in "$out" "^FAIL fail: deliberate failure"

# an exception: guest status 2 = QEMU status 5
out=$TEST_TMP/fault.log
run_qemu "$out" off 1 "vmmtest.run=fault"
rc=$?
expect_status $rc 5 "$out"
expect_in "$out" "PANIC: exception 14 #PF"
echo ok
