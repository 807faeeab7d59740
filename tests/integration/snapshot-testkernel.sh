#!/bin/bash
# Snapshot and restore with the test kernel: a snapshot at the boot-ready
# marker (2 and 4 vCPUs, a disk), restored runs the commands the snapshot
# VM never reached; one snapshot restored 10 times, 4 at once; a snapshot
# the guest asks for (when=request) after it drove the disk, so the
# virtio-blk queues are restored mid-use; then=continue; a disk of another
# size is refused (65).
# timeout: 900
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"

img=$TEST_TMP/disk.img
head -c 8M /dev/urandom >"$img"
before=$(sha256sum <"$img")

# boot-ready, 2 vCPUs, a disk: the snapshot VM exits 0 before any command
s2=$TEST_TMP/snap2
out=$TEST_TMP/snap2.log
run_vmm "$out" --kernel "$TESTKERNEL" --cpus 2 --memory 64M --timeout 120 \
	--disk "path=$img,format=raw" \
	--cmdline "vmmtest.run=hello,smp,timer,blktest" --snapshot-to "$s2"
expect_status $? 0 "$out"
expect_in "$out" "snapshot: $s2: [0-9.]+ ms, state [0-9]+ bytes, memory [0-9]+ of 67108864 bytes"
expect_not_in "$out" "^PASS" "a command ran before the snapshot"
[ -s "$s2/state" ] && [ -f "$s2/memory" ] || fail "no state or memory file"
[ "$(stat -c %s "$s2/memory")" = 67108864 ] || fail "memory file is not 64 MiB"
used=$(( $(stat -c %b "$s2/memory") * $(stat -c %B "$s2/memory") ))
[ "$used" -lt $((32 << 20)) ] || fail "memory file not sparse: $used bytes allocated"

out=$TEST_TMP/restore2.log
run_vmm "$out" --restore "$s2" --disk "path=$img,format=raw" --timeout 120
expect_status $? 0 "$out"
for c in hello smp timer blktest; do
	expect_in "$out" "^PASS $c" "restored: no PASS $c"
done
expect_in "$out" "vmmtest: 4 passed, 0 failed"
expect_in "$out" "^smp: 2 cpus online" "restored: not 2 CPUs"
[ "$(sha256sum <"$img")" = "$before" ] || fail "the image changed"

# a disk of another size: refused before the guest runs
big=$TEST_TMP/big.img
head -c 16M /dev/zero >"$big"
out=$TEST_TMP/bigdisk.log
run_vmm "$out" --restore "$s2" --disk "path=$big,format=raw" --timeout 60
expect_status $? 65 "$out"
expect_in "$out" "the disk has 16777216 bytes, the snapshot's had 8388608"
expect_not_in "$out" "^PASS"

# 4 vCPUs, no disk; restored 10 times, 4 at once
s4=$TEST_TMP/snap4
out=$TEST_TMP/snap4.log
run_vmm "$out" --kernel "$TESTKERNEL" --cpus 4 --memory 64M --timeout 120 \
	--cmdline "vmmtest.run=hello,smp,timer:n=5" --snapshot-to "$s4,when=boot-ready,then=exit"
expect_status $? 0 "$out"
for round in 0 1 2; do
	pids=()
	for k in 0 1 2 3; do
		i=$((round * 4 + k))
		[ $i -lt 10 ] || break
		run_vmm "$TEST_TMP/r4-$i.log" --restore "$s4" --timeout 200 &
		pids+=($!)
	done
	for k in "${!pids[@]}"; do
		i=$((round * 4 + k))
		wait "${pids[$k]}"
		expect_status $? 0 "$TEST_TMP/r4-$i.log"
		expect_in "$TEST_TMP/r4-$i.log" "vmmtest: 3 passed, 0 failed" "restore $i"
	done
done
[ "$(cat "$TEST_TMP"/r4-*.log | grep -c 'vmmtest: 3 passed')" = 10 ] || fail "not 10 restores passed"

# when=request, after the disk was used: queues restored in mid-use
sr=$TEST_TMP/snapreq
out=$TEST_TMP/snapreq.log
run_vmm "$out" --kernel "$TESTKERNEL" --cpus 2 --memory 64M --timeout 120 \
	--disk "path=$img,format=raw" \
	--cmdline "vmmtest.run=blktest,hello,snapshot,blktest,blkirq:n=8,timer:n=5" \
	--snapshot-to "$sr,when=request"
expect_status $? 0 "$out"
expect_in "$out" "^PASS blktest"
expect_not_in "$out" "^PASS snapshot"
for i in 1 2; do
	out=$TEST_TMP/restreq$i.log
	run_vmm "$out" --restore "$sr" --disk "path=$img,format=raw" --timeout 120
	expect_status $? 0 "$out"
	expect_in "$out" "^PASS snapshot"
	expect_in "$out" "^PASS blkirq"
	expect_in "$out" "vmmtest: 6 passed, 0 failed"
done
[ "$(sha256sum <"$img")" = "$before" ] || fail "the image changed"

# then=continue: the same VM goes on after writing the snapshot
sc=$TEST_TMP/snapcont
out=$TEST_TMP/snapcont.log
run_vmm "$out" --kernel "$TESTKERNEL" --memory 32M --timeout 120 \
	--cmdline "vmmtest.run=hello,snapshot,timer:n=5" \
	--snapshot-to "$sc,when=request,then=continue"
expect_status $? 0 "$out"
expect_in "$out" "snapshot: $sc: "
expect_in "$out" "vmmtest: 3 passed, 0 failed"
out=$TEST_TMP/restcont.log
run_vmm "$out" --restore "$sc" --timeout 120
expect_status $? 0 "$out"
expect_in "$out" "vmmtest: 3 passed, 0 failed"
echo ok
