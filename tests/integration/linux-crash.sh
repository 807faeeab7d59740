#!/bin/bash
# Crash consistency: the host SIGKILLs the VMM while the guest writes to an
# ext4 disk.  The image is left needing journal recovery; the next boot
# mounts it (the kernel replays the journal), finds the data synced before
# the crash, writes more and unmounts; then `e2fsck -fn` on the host is clean.
# timeout: 1200
. "$(dirname "$0")/lib.sh"
. "$TOP/tools/linux-plan"
linux_prepare disks
command -v mkfs.ext4 >/dev/null && command -v dumpe2fs >/dev/null ||
	fail "e2fsprogs missing (tools/install-deps)"

T=$TEST_TMP
mkdir -p "$T/empty"
mkext4 "$T/data.img" 48M "$T/empty"

# boot 1: sync a file, announce, then write 32 MiB without fsync, then idle
# (commit=1: the journal commits every second, so the kill lands between
# commits of the running write)
linux_start c1 300 "
mount serial=data at=/mnt/data opts=rw:commit=1
write path=/mnt/data/before seed=21 size=256K
sync
echo text=crash-window
write path=/mnt/data/big seed=22 size=32M bs=64K fsync=0
sleep ms=600000" \
	--disk path="$T/data.img",format=raw,serial=data
pid=$LINUX_PID
for _ in $(seq 1 1400); do
	grep -a -q '"text":"crash-window"' "$T/c1.out" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.2
done
grep -a -q '"text":"crash-window"' "$T/c1.out" || {
	kill -9 "$pid" 2>/dev/null; wait "$pid"; linux_show c1; fail "boot 1 never reached the write"; }
sleep 3	# into the 32 MiB write, past a few journal commits
kill -9 "$pid"
wait "$pid" 2>/dev/null
linux_ok c1 1 2 3 4
if [ -n "$(linux_line c1 5)" ]; then
	echo "note: the 32 MiB write finished before the kill (fast host): killed while idle with dirty data"
fi
grep -a -q '^{"summary"' "$T/c1.out" && fail "boot 1 ended by itself; the kill came too late"
dumpe2fs -h "$T/data.img" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery' ||
	fail "after the kill the image does not need journal recovery (was it mounted rw?)"

# boot 2: mount replays the journal; the synced file is intact
rc=0
linux_boot c2 300 "
mount serial=data at=/mnt/data
verify path=/mnt/data/before seed=21 size=256K
write path=/mnt/data/after seed=23 size=128K
umount at=/mnt/data" \
	--disk path="$T/data.img",format=raw,serial=data || rc=$?
linux_ok c2 1 2 3 4
linux_summary c2 0
linux_status c2 "$rc" 0
expect_in "$T/c2.out" 'EXT4-fs \(vd[a-z]\): recovery complete' "no journal recovery in boot 2"

e2fsck -fn "$T/data.img" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "e2fsck -fn after recovery"; }
dumpe2fs -h "$T/data.img" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery' &&
	fail "the image still needs recovery after a clean unmount"
mkpattern "$T/before.want" 21 256K
mkpattern "$T/after.want" 23 128K
debugfs -R "cat /before" "$T/data.img" 2>/dev/null | cmp -s - "$T/before.want" || fail "debugfs: /before differs"
debugfs -R "cat /after" "$T/data.img" 2>/dev/null | cmp -s - "$T/after.want" || fail "debugfs: /after differs"
echo "crash plan passed"
