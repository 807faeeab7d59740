#!/bin/bash
# timeout: 90
# How ./vmm ends: the guest's exit-port status, guest reboot, --timeout,
# signals, and where the console goes.
. "$(dirname "$0")/lib.sh"
need_kvm
T=$TEST_TMP
K=$TESTKERNEL

# guest status passes through the exit port
rc=0; run_vmm "$T/ok" --kernel "$K" --cmdline "vmmtest.run=hello" --timeout 20 || rc=$?
expect_status $rc 0 "$T/ok"
expect_in "$T/ok" "^PASS hello"
rc=0; run_vmm "$T/fault" --kernel "$K" --cmdline "vmmtest.run=fault" --timeout 20 || rc=$?
expect_status $rc 2 "$T/fault"

# guest reboot through the i8042 reset line: a clean exit 0
rc=0; run_vmm "$T/reboot" --kernel "$K" --cmdline "vmmtest.run=reboot" --timeout 20 || rc=$?
expect_status $rc 0 "$T/reboot"

# --timeout: a hung guest is killed, status 124, within the bound
start=$(date +%s%N)
rc=0; run_vmm "$T/hang" --kernel "$K" --cmdline "vmmtest.run=hang" --timeout 1.5 || rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_status $rc 124 "$T/hang"
expect_in "$T/hang" "timeout: the guest ran for 1.5 s"
[ $ms -ge 1400 ] && [ $ms -lt 5000 ] || fail "timeout took $ms ms"

# SIGTERM: the VMM stops the guest and exits 128+15
"$VMM" --kernel "$K" --cmdline "vmmtest.run=hang" --timeout 30 >"$T/term" 2>&1 </dev/null &
pid=$!
sleep 0.5
kill -TERM $pid
rc=0; wait $pid || rc=$?
expect_status $rc 143 "$T/term"
expect_in "$T/term" "killed by signal 15"

# --serial file=PATH and off
rc=0; run_vmm "$T/filemode" --kernel "$K" --cmdline "vmmtest.run=hello" \
	--serial "file=$T/console.log" --timeout 20 || rc=$?
expect_status $rc 0 "$T/filemode"
expect_in "$T/console.log" "^PASS hello"
expect_not_in "$T/filemode" "PASS hello"
rc=0; run_vmm "$T/off" --kernel "$K" --cmdline "vmmtest.run=hello" --serial off --timeout 20 || rc=$?
expect_status $rc 0 "$T/off"
expect_not_in "$T/off" "PASS"

# --boot-timer prints the boot-ready line with wall and CPU time
rc=0; run_vmm "$T/bt" --kernel "$K" --cmdline "vmmtest.run=hello" --boot-timer --timeout 20 || rc=$?
expect_status $rc 0 "$T/bt"
expect_in "$T/bt" "boot-ready wall_ms=[0-9.]+ cpu_ms=[0-9.]+ rss_beyond_guest_kib=[0-9]+"

# the command line and e820 map reach the guest
rc=0; run_vmm "$T/mem" --kernel "$K" --memory 64M --cmdline "vmmtest.run=mem marker=xyzzy" --timeout 20 || rc=$?
expect_status $rc 0 "$T/mem"
expect_in "$T/mem" "xyzzy"
expect_in "$T/mem" "0x000000100000-0x000003ffffff"
echo "exit paths ok"
