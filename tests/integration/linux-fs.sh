#!/bin/bash
# Host directories in the Linux guest over virtio-9p (--fs), checked from
# both sides, in two boots:
#  boot 1, three shares at once: "data" (read-write): a host file read,
#   guest writes seen on the host while the guest waits (default cache
#   mode), appends, modes and owners both ways, mkdir/rename/unlink/
#   symlink/hard link both ways, a FS_BIG file each way with equal
#   contents; "ro" (readonly=on, mounted read-write by the guest): every
#   write, create, chmod, chown, rename, unlink, link and mknod fails with
#   EROFS and the tree is byte-identical afterwards; "third": nested
#   directories both ways.
#  boot 2: what boot 1 wrote is there; a change the host made between the
#   boots is seen; the ro share mounted ro.
# FS_BIG (default 8M; the guest kernel moves 9p data at a few MB/s when
# emulated) is the size of the big files; linux-fs-long.sh runs 100M.
# timeout: 1500
. "$(dirname "$0")/lib.sh"
. "$TOP/tools/linux-plan"
linux_prepare
"$VMM" --help 2>&1 | grep -q -- '--fs' || skip "the VMM has no --fs"
BIG=${FS_BIG:-8M}

T=$TEST_TMP
D=$T/data RO=$T/ro TH=$T/third
mkdir -p "$D/hdir/hsub" "$RO/sub" "$RO/scripts" "$TH/a/b/c/d"
mkpattern "$D/hostfile" 1 1M
mkpattern "$D/hbig" 20 "$BIG"
printf 'zero\n' >"$D/app"
printf 'nested\n' >"$D/hdir/hsub/hfile"
: >"$D/owned" && chown 1234:5678 "$D/owned" && chmod 640 "$D/owned" ||
	fail "chown on the host (run as root)"
: >"$D/to_rename" && : >"$D/to_delete"
ln -s hostfile "$D/hsym"
ln "$D/hostfile" "$D/hhard"
mkpattern "$RO/hello" 11 64K
printf 'ro\n' >"$RO/sub/file"
mkpattern "$TH/a/b/c/d/t" 12 32K

# guest-side scripts ride in the readonly share (reading them changes
# nothing there)
cat >"$RO/scripts/host-to-guest.sh" <<'EOF'
stat -c '%u:%g:%a' /mnt/data/owned
readlink /mnt/data/hsym
stat -c %h /mnt/data/hhard
cat /mnt/data/hdir/hsub/hfile
grep -c ' 9p ' /proc/mounts
EOF
cat >"$RO/scripts/guest-changes.sh" <<'EOF'
set -e
echo one >>/mnt/data/app
echo two >>/mnt/data/app
touch /mnt/data/gmode
chmod 751 /mnt/data/gmode
chown 4321:8765 /mnt/data/gmode
mkdir -p /mnt/data/gdir/gsub
mv /mnt/data/to_rename /mnt/data/renamed
rm /mnt/data/to_delete
ln -s hostfile /mnt/data/gsym
ln /mnt/data/gfile /mnt/data/ghard
sync
# the host looks now, while we wait (bounded)
i=0
while [ ! -e /mnt/data/host-ack ]; do
	i=$((i + 1))
	[ $i -le 600 ] || { echo "no ack from the host"; exit 1; }
	sleep 0.2
done
cat /mnt/data/host-ack
EOF
cat >"$RO/scripts/erofs.sh" <<'EOF'
n=0
for c in 'chmod 777 /mnt/ro/hello' 'chown 1:1 /mnt/ro/hello' \
	'mv /mnt/ro/hello /mnt/ro/h2' 'rm -f /mnt/ro/hello' 'mkdir /mnt/ro/d' \
	'ln -s x /mnt/ro/l' 'ln /mnt/ro/hello /mnt/ro/hl' 'touch /mnt/ro/new' \
	'touch /mnt/ro/hello' 'truncate -s 0 /mnt/ro/hello' \
	'rmdir /mnt/ro/sub' 'mknod /mnt/ro/p p' 'mv /mnt/ro/sub /mnt/ro/s2'; do
	if out=$($c 2>&1); then
		echo "succeeded: $c"
	elif echo "$out" | grep -q 'Read-only file system'; then
		n=$((n + 1))
	else
		echo "not EROFS: $c: $out"
	fi
done
echo "erofs=$n"
EOF
snap() {	# what a change to a tree could touch, as text
	(cd "$1" && find . -printf '%p %y %m %s %U %G %T@ %l\n' | sort &&
		find . -type f -exec sha256sum {} + | sort)
}
ro_before=$(snap "$RO")

mkpattern "$T/gfile.want" 2 1M
rc=0
linux_start b1 900 "
mount9p tag=data at=/mnt/data
mount9p tag=ro at=/mnt/ro
mount9p tag=third at=/mnt/third opts=rw:noatime
verify path=/mnt/data/hostfile seed=1 size=1M
write path=/mnt/data/gfile seed=2 size=1M
sh timeout=60 cmd=sh /mnt/ro/scripts/host-to-guest.sh
sh timeout=200 cmd=sh /mnt/ro/scripts/guest-changes.sh
write path=/mnt/ro/new seed=1 size=4K expect=EROFS
write path=/mnt/ro/hello seed=1 size=4K expect=EROFS
verify path=/mnt/ro/hello seed=11 size=64K
sh timeout=120 cmd=sh /mnt/ro/scripts/erofs.sh
verify path=/mnt/third/a/b/c/d/t seed=12 size=32K
mkdir path=/mnt/third/x/y/z
write path=/mnt/third/x/y/z/deep seed=13 size=8K
verify path=/mnt/data/hbig seed=20 size=$BIG
write path=/mnt/data/gbig seed=21 size=$BIG
verify path=/mnt/data/gbig seed=21 size=$BIG
sync" \
	--fs path="$D",tag=data --fs path="$RO",tag=ro,readonly=on \
	--fs path="$TH",tag=third

# while the guest waits in step 7: its writes must be on the host already
deadline=$((SECONDS + 800)) seen=""
while [ $SECONDS -lt $deadline ] && kill -0 "$LINUX_PID" 2>/dev/null; do
	if [ -e "$D/gdir/gsub" ] && cmp -s "$D/gfile" "$T/gfile.want" &&
	   [ "$(cat "$D/app")" = "$(printf 'zero\none\ntwo')" ]; then
		echo seen >"$T/ack" && mv "$T/ack" "$D/host-ack"
		seen=1
		break
	fi
	sleep 0.2
done
wait "$LINUX_PID" || rc=$?
[ -n "$seen" ] || { linux_show b1; fail "the guest's writes never showed on the host while it ran"; }
linux_ok b1 $(seq 1 18)
linux_line b1 6 | grep -q '"output":"1234:5678:640\\nhostfile\\n2\\nnested\\n3\\n"' || {
	linux_show b1; fail "host-made owners, modes, links, nested dirs as seen in the guest: $(linux_line b1 6)"; }
linux_line b1 7 | grep -q '"output":"seen\\n"' || fail "step 7: $(linux_line b1 7)"
linux_line b1 11 | grep -q '"output":"erofs=13\\n"' || {
	linux_show b1; fail "readonly share: $(linux_line b1 11)"; }
linux_summary b1 0
linux_status b1 "$rc" 0

# host side of boot 1
[ "$(snap "$RO")" = "$ro_before" ] || fail "the readonly=on tree changed"
[ "$(stat -c %u:%g:%a "$D/gmode")" = 4321:8765:751 ] || fail "gmode: $(stat -c %u:%g:%a "$D/gmode")"
[ -d "$D/gdir/gsub" ] || fail "guest mkdir -p not on the host"
[ -e "$D/renamed" ] && [ ! -e "$D/to_rename" ] || fail "guest rename not on the host"
[ ! -e "$D/to_delete" ] || fail "guest unlink not on the host"
[ "$(readlink "$D/gsym")" = hostfile ] || fail "guest symlink not on the host"
[ "$(stat -c %i "$D/ghard")" = "$(stat -c %i "$D/gfile")" ] || fail "guest hard link not on the host"
mkpattern "$T/deep.want" 13 8K
cmp -s "$TH/x/y/z/deep" "$T/deep.want" || fail "nested guest file in the third share"
mkpattern "$T/gbig.want" 21 "$BIG"
cmp -s "$D/gbig" "$T/gbig.want" || fail "the $BIG guest file differs on the host"
mkpattern "$T/hbig.want" 20 "$BIG"
cmp -s "$D/hbig" "$T/hbig.want" || fail "the host's big file changed"

# boot 2: persistence, and a host change between boots
mkpattern "$D/between" 30 16K
rm "$D/hostfile"
rc=0
linux_boot b2 600 "
mount9p tag=data at=/mnt/data
mount9p tag=ro at=/mnt/ro opts=ro
verify path=/mnt/data/gfile seed=2 size=1M
verify path=/mnt/data/gbig seed=21 size=$BIG
verify path=/mnt/data/between seed=30 size=16K
verify path=/mnt/data/hostfile seed=1 size=1M expect=ENOENT
verify path=/mnt/data/ghard seed=2 size=1M
verify path=/mnt/ro/hello seed=11 size=64K
write path=/mnt/ro/x seed=1 size=1 expect=EROFS
write path=/mnt/data/b2 seed=31 size=64K" \
	--fs path="$D",tag=data --fs path="$RO",tag=ro,readonly=on || rc=$?
linux_ok b2 $(seq 1 10)
linux_summary b2 0
linux_status b2 "$rc" 0
mkpattern "$T/b2.want" 31 64K
cmp -s "$D/b2" "$T/b2.want" || fail "boot 2's file is not on the host"
[ "$(snap "$RO")" = "$ro_before" ] || fail "the readonly=on tree changed in boot 2"
echo "9p plan passed (2 boots, big files $BIG)"
