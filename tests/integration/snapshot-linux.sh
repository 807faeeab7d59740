#!/bin/bash
# Linux + the agent, booted once: the job mounts a disk and asks for a
# snapshot (the agent's snapshot step, when=request), then serves vsock.
# Five restores, each on its own qcow2 overlay of the disk as it was at
# the snapshot and with its own vsock socket, run a different write/verify
# job over vsock (tools/vmm-agent) and power off; the base image stays
# byte-identical and every overlay holds only its own guest's file.
# timeout: 900
. "$(dirname "$0")/lib.sh"
. "$TOP/tools/linux-plan"
linux_prepare disks
command -v qemu-img >/dev/null || fail "qemu-img missing (tools/install-deps: qemu-utils)"
C=$BUILD/tools/vmm-agent
[ -x "$C" ] || fail "no $C (make first)"

T=$TEST_TMP
mkdir -p "$T/basedir/etc"
mkpattern "$T/basedir/etc/base" 31 128K
mkext4 "$T/base.raw" 32M "$T/basedir"
# the snapshot's disk and the overlays' backing file: the same format, so
# the device offers the same features (a raw disk can discard, say)
qemu-img convert -q -f raw -O qcow2 "$T/base.raw" "$T/base.qcow2" || fail "qemu-img convert"
S=$T/snap
# the snapshot VM: setup, then the snapshot; it ends at the snapshot (status 0)
t0=$(date +%s.%N)
linux_boot boot 600 "mount serial=data at=/mnt/data
verify path=/mnt/data/etc/base seed=31 size=128K
snapshot
serve" --disk "path=$T/base.qcow2,format=qcow2,serial=data" \
	--vsock "cid=3,uds=$T/boot.sock" --snapshot-to "$S,when=request" --events "file=$T/boot.ev"
rc=$?
t1=$(date +%s.%N)
linux_status boot $rc 0
linux_ok boot 1 2
grep -a -q "snapshot: $S: " "$T/boot.out" || { linux_show boot; fail "no snapshot line"; }
echo "cold boot to snapshot: $(echo "$t1 - $t0" | bc) s"
base_sum=$(sha256sum <"$T/base.qcow2")

for i in 1 2 3 4 5; do
	qemu-img create -q -f qcow2 -b "$T/base.qcow2" -F qcow2 "$T/ov$i.qcow2" ||
		fail "qemu-img create overlay $i"
	U=$T/r$i.sock
	s=$(date +%s.%N)
	"$VMM" --restore "$S" --disk "path=$T/ov$i.qcow2,format=qcow2,serial=data" \
		--vsock "cid=3,uds=$U" --timeout 300 --events "file=$T/r$i.ev" \
		>"$T/r$i.out" 2>&1 </dev/null &
	pid=$!
	LINUX_PIDS+=("$pid")
	"$C" --uds "$U" --wait 240 ping >/dev/null ||
		{ linux_show r$i; fail "restore $i: the agent did not answer on vsock"; }
	e=$(date +%s.%N)
	echo "restore $i: agent answered $(echo "$e - $s" | bc) s after vmm started"
	printf 'verify path=/mnt/data/etc/base seed=31 size=128K
write path=/mnt/data/mine%d seed=%d size=%dK
verify path=/mnt/data/mine%d seed=%d size=%dK
verify path=/mnt/data/mine%d seed=1 size=1 expect=ENOENT
sync\n' $i $((50 + i)) $((64 * i)) $i $((50 + i)) $((64 * i)) $((i % 5 + 1)) |
		"$C" --uds "$U" --wait 60 job - >"$T/job$i.out" ||
		{ cat "$T/job$i.out"; linux_show r$i; fail "restore $i: job over vsock"; }
	grep -q '"summary":true,"steps":5,"passed":5' "$T/job$i.out" ||
		{ cat "$T/job$i.out"; fail "restore $i: job summary"; }
	"$C" --uds "$U" --wait 60 poweroff || fail "restore $i: poweroff"
	rc=0; wait "$pid" || rc=$?
	linux_status r$i $rc 0
done

[ "$(sha256sum <"$T/base.qcow2")" = "$base_sum" ] || fail "the base image changed"
for i in 1 2 3 4 5; do
	qemu-img convert -O raw "$T/ov$i.qcow2" "$T/flat$i.img" || fail "qemu-img convert ov$i"
	mkpattern "$T/mine$i.want" $((50 + i)) $((64 * i))K
	debugfs -R "cat /mine$i" "$T/flat$i.img" 2>/dev/null | cmp -s - "$T/mine$i.want" ||
		fail "overlay $i does not hold its guest's file"
	rm -f "$T/flat$i.img"
done
echo "linux snapshot checks passed"
