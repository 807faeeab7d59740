#!/bin/bash
# Base image + qcow2 overlays ("rootfs caching"): three guests boot at the
# same time from one raw ext4 base, each through its own qcow2 overlay, and
# write into it.  The base stays byte-identical; each overlay passes
# `qemu-img check`, and flattened on the host it is a clean ext4 holding the
# base's file and only its own guest's writes.
# timeout: 900
. "$(dirname "$0")/lib.sh"
. "$TOP/tools/linux-plan"
linux_prepare disks
"$VMM" --help 2>&1 | grep -q 'qcow2' || skip "the VMM has no qcow2 backend yet"
command -v qemu-img >/dev/null || fail "qemu-img missing (tools/install-deps: qemu-utils)"

T=$TEST_TMP
mkdir -p "$T/basedir/etc"
mkpattern "$T/basedir/etc/base" 31 128K
mkext4 "$T/base.img" 32M "$T/basedir"
base_sum=$(sha256sum <"$T/base.img")
for i in 1 2 3; do
	qemu-img create -q -f qcow2 -b "$T/base.img" -F raw "$T/ov$i.qcow2" ||
		fail "qemu-img create overlay $i"
done

job() {	# job N: verify the base's file, write this guest's own
	echo "mount serial=root at=/mnt/root
verify path=/mnt/root/etc/base seed=31 size=128K
write path=/mnt/root/mine$1 seed=$((40 + $1)) size=256K
verify path=/mnt/root/mine$1 seed=$((40 + $1)) size=256K
verify path=/mnt/root/mine$(($1 % 3 + 1)) seed=1 size=1 expect=ENOENT"
}
pids=()
for i in 1 2 3; do
	linux_start o$i 300 "$(job $i)" --disk path="$T/ov$i.qcow2",format=qcow2,serial=root
	pids+=("$LINUX_PID")
done
rcs=()
for i in 1 2 3; do
	rc=0
	wait "${pids[$((i - 1))]}" || rc=$?
	rcs+=("$rc")
done
for i in 1 2 3; do
	linux_ok o$i 1 2 3 4 5
	linux_summary o$i 0
	linux_status o$i "${rcs[$((i - 1))]}" 0
done

[ "$(sha256sum <"$T/base.img")" = "$base_sum" ] || fail "the base image changed"
for i in 1 2 3; do
	qemu-img check -q "$T/ov$i.qcow2" >"$T/check.out" 2>&1 || {
		cat "$T/check.out"; fail "qemu-img check ov$i.qcow2"; }
	qemu-img convert -O raw "$T/ov$i.qcow2" "$T/flat$i.img" || fail "qemu-img convert ov$i"
	e2fsck -fn "$T/flat$i.img" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "e2fsck -fn of overlay $i"; }
	mkpattern "$T/mine$i.want" $((40 + i)) 256K
	debugfs -R "cat /mine$i" "$T/flat$i.img" 2>/dev/null | cmp -s - "$T/mine$i.want" ||
		fail "overlay $i does not hold its guest's file"
	debugfs -R "cat /etc/base" "$T/flat$i.img" 2>/dev/null | cmp -s - "$T/basedir/etc/base" ||
		fail "overlay $i lost the base's file"
	for j in 1 2 3; do
		[ $j = $i ] && continue
		debugfs -R "stat /mine$j" "$T/flat$i.img" 2>&1 | grep -q 'not found' ||
			fail "overlay $i holds guest $j's file"
	done
done

echo "overlay plan passed (3 guests at once on one base)"
