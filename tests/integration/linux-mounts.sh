#!/bin/bash
# Linux + agent mount plan, checked from both sides, in two boots:
#  boot 1, three disks at once: a read-write ext4 disk (write + verify); a
#   readonly=on disk (writes to the device fail, rw mount fails, writes to
#   files fail, the image stays byte-identical); a third disk with its own data; tmpfs with a size
#   limit (ENOSPC) and a mode; a shell command and a timed-out one.
#  boot 2, the job read from a job disk: what boot 1 wrote persisted (and
#   e2fsck -fn / debugfs on the host agree); the tmpfs file is gone; then a
#   disk the VM lacks: a clear failed step and VMM exit status 1.
# timeout: 1200
. "$(dirname "$0")/lib.sh"
. "$TOP/tools/linux-plan"
linux_prepare disks
command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null ||
	fail "e2fsprogs missing (tools/install-deps)"

T=$TEST_TMP
mkdir -p "$T/rodir" "$T/thirddir" "$T/empty"
mkpattern "$T/rodir/hello" 11 64K
mkpattern "$T/thirddir/t" 12 32K
mkext4 "$T/data.img" 32M "$T/empty"
mkext4 "$T/ro.img" 16M "$T/rodir"
mkext4 "$T/third.img" 16M "$T/thirddir"
ro_sum=$(sha256sum <"$T/ro.img")

rc=0
linux_boot b1 300 "
mount serial=data at=/mnt/data fs=ext4 opts=rw
write path=/mnt/data/f seed=5 size=1M
verify path=/mnt/data/f seed=5 size=1M
write path=/dev/vdb seed=1 size=4K expect=EPERM|EROFS|EACCES
mount serial=rodisk at=/mnt/ro fs=ext4 opts=rw expect=EACCES|EROFS
mount serial=rodisk at=/mnt/ro fs=ext4 opts=ro
verify path=/mnt/ro/hello seed=11 size=64K
write path=/mnt/ro/new seed=1 size=4K expect=EROFS
write path=/mnt/ro/hello seed=1 size=4K expect=EROFS
mount serial=third at=/mnt/third fs=ext4 opts=rw:noatime
verify path=/mnt/third/t seed=12 size=32K
write path=/mnt/third/u seed=13 size=8K
tmpfs at=/mnt/tmp size=1M mode=1777
write path=/mnt/tmp/keep seed=4 size=4K
write path=/mnt/tmp/big seed=3 size=2M expect=ENOSPC
verify path=/mnt/tmp/keep seed=4 size=4K
sh timeout=60 cmd=grep -c '^/dev/vd' /proc/mounts%3B stat -c %a /mnt/tmp
sh timeout=2 expect=ETIMEDOUT cmd=sleep 30
umount at=/mnt/third
sync" \
	--disk path="$T/data.img",format=raw,serial=data \
	--disk path="$T/ro.img",format=raw,readonly=on,serial=rodisk \
	--disk path="$T/third.img",format=raw,serial=third || rc=$?
linux_ok b1 $(seq 1 20)
linux_line b1 17 | grep -q '"output":"3\\n1777\\n"' || {
	linux_show b1; fail "three ext4 mounts and tmpfs mode 1777 expected: $(linux_line b1 17)"; }
linux_summary b1 0
linux_status b1 "$rc" 0

# host side: the read-only image is untouched, the others are clean and
# hold what the guest wrote
[ "$(sha256sum <"$T/ro.img")" = "$ro_sum" ] || fail "the readonly=on image changed"
mkpattern "$T/f.want" 5 1M
mkpattern "$T/u.want" 13 8K
for img in data third; do
	e2fsck -fn "$T/$img.img" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "e2fsck -fn $img.img after boot 1"; }
done
debugfs -R "cat /f" "$T/data.img" 2>/dev/null | cmp -s - "$T/f.want" ||
	fail "debugfs: /f on data.img is not what the guest wrote"
debugfs -R "cat /u" "$T/third.img" 2>/dev/null | cmp -s - "$T/u.want" ||
	fail "debugfs: /u on third.img is not what the guest wrote"

# boot 2: the job comes from a disk with the default serial "agent-job"
printf '%s\n' \
	"mount serial=data at=/mnt/data" \
	"verify path=/mnt/data/f seed=5 size=1M" \
	"tmpfs at=/mnt/tmp size=1M" \
	"verify path=/mnt/tmp/keep seed=4 size=4K expect=ENOENT" \
	"write path=/mnt/data/g seed=6 size=64K" \
	"mount serial=no-such-disk at=/mnt/m" \
	"echo text=not-reached" >"$T/job.img"
truncate -s 4K "$T/job.img"
rc=0
LINUX_SH=0 linux_boot b2 300 - \
	--disk path="$T/data.img",format=raw,serial=data \
	--disk path="$T/job.img",format=raw,readonly=on,serial=agent-job || rc=$?
grep -a -q '^{"step":0,"op":"job","source":"disk","steps":7,"ok":true}' "$T/b2.out" || {
	linux_show b2; fail "the job was not read from the job disk"; }
linux_ok b2 1 2 3 4 5
linux_failed b2 6 ENODEV
linux_line b2 6 | grep -q "no disk with serial 'no-such-disk'" || fail "step 6: unclear error"
[ -z "$(linux_line b2 7)" ] || fail "the job went on after a failed step"
grep -a -q '"passed":5,"failed":1,"skipped":1,"status":1}' "$T/b2.out" || {
	linux_show b2; fail "boot 2 summary"; }
linux_status b2 "$rc" 1

e2fsck -fn "$T/data.img" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "e2fsck -fn data.img after boot 2"; }
mkpattern "$T/g.want" 6 64K
debugfs -R "cat /g" "$T/data.img" 2>/dev/null | cmp -s - "$T/g.want" ||
	fail "debugfs: /g from boot 2 is missing"
echo "mount plan passed (2 boots)"
