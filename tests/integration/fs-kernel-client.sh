#!/bin/bash
# The 9P server against the host kernel's own 9p client, no VM: the share
# is mounted with trans=fd in a private mount namespace (the host's mounts
# are untouched) by tests/integration/p9-fd-serve.c, then used: reads,
# appends, nested directories, 8 MiB each way, rename, hard and symbolic
# links, chmod/chown/truncate/utimes seen on both sides, unlink/rmdir,
# mknod refused, a fifo, 300 files listed, POSIX locks between two
# processes and against a process on the server side, xattrs, and a
# readonly share refusing changes.  Skips where the kernel has no 9p fd
# transport (or we are not root).
# timeout: 600
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (mount)"
grep -qw 9p /proc/filesystems || modprobe 9p 2>/dev/null ||
	skip "no 9p in this kernel"
modprobe 9pnet_fd 2>/dev/null
unshare -m --propagation private true 2>/dev/null || skip "no mount namespaces"
T=$TEST_TMP
${CC:-cc} -O2 $SAN_CFLAGS -D_GNU_SOURCE -I"$TOP" -o "$T/serve" \
	"$TOP/tests/integration/p9-fd-serve.c" "$BUILD/libvmm.a" -lpthread ||
	fail "cannot build p9-fd-serve"
${CC:-cc} -O2 -o "$T/fs-escape" "$TOP/tests/integration/fs-escape.c" ||
	fail "cannot build fs-escape"
mkdir -p "$T/share/h/i/j" "$T/m" "$T/ro" "$T/mro"
echo hello >"$T/share/file"
echo nested >"$T/share/h/i/j/k"
echo keep >"$T/ro/keep"

cat >"$T/inner.sh" <<'EOS'
set -u
T=$1
D=$T/share M=$T/m
bad=0
ok() { echo "OK   $*"; }
no() { echo "BAD  $*"; bad=$((bad + 1)); }
"$T/serve" "$D" "$M" 2>"$T/serve.err" &
for i in $(seq 50); do grep -q " $M 9p" /proc/mounts && break; sleep 0.1; done
grep -q " $M 9p" /proc/mounts || { echo "no 9p mount (trans=fd)"; cat "$T/serve.err"; exit 77; }
[ "$(cat $M/file)" = hello ] && ok read || no read
echo world >>$M/file && [ "$(cat $D/file)" = "$(printf 'hello\nworld')" ] && ok append || no append
[ "$(cat $M/h/i/j/k)" = nested ] && ok nested || no nested
mkdir $M/newdir && [ -d $D/newdir ] && ok mkdir || no mkdir
head -c 8M /dev/urandom >$D/hbig && cmp -s $M/hbig $D/hbig && ok "8M host to client" || no "8M host to client"
head -c 8M /dev/urandom >$M/big && cmp -s $M/big $D/big && ok "8M client to host" || no "8M client to host"
mv $M/big $M/big2 && [ -e $D/big2 ] && [ ! -e $D/big ] && ok rename || no rename
ln $M/big2 $M/hard && [ "$(stat -c %h $D/hard)" = 2 ] && ok link || no link
ln -s file $M/sym && [ "$(readlink $D/sym)" = file ] && ok symlink || no symlink
chmod 751 $M/file && [ "$(stat -c %a $D/file)" = 751 ] && ok chmod || no chmod
chown 1234:567 $M/file && [ "$(stat -c %u:%g $D/file)" = 1234:567 ] && ok chown || no chown
chown 4321:765 $D/file && [ "$(stat -c %u:%g:%a $M/file)" = 4321:765:751 ] && ok "owner from the host" || no "owner from the host"
truncate -s 3 $M/file && [ "$(stat -c %s $D/file)" = 3 ] && ok truncate || no truncate
touch -d @1000000000 $M/file && [ "$(stat -c %Y $D/file)" = 1000000000 ] && ok utimes || no utimes
touch $M/t && rm $M/t && [ ! -e $D/t ] && ok unlink || no unlink
rmdir $M/newdir && [ ! -e $D/newdir ] && ok rmdir || no rmdir
mknod $M/blk b 8 0 2>/dev/null; [ ! -e $D/blk ] && ok "mknod b refused" || no "mknod b"
mkfifo $M/ff && [ -p $D/ff ] && ok mkfifo || no mkfifo
for i in $(seq 300); do echo $i >$M/many.$i; done
[ "$(ls $M | grep -c '^many')" = 300 ] && ok "300 files listed" || no "300 files listed"
( for i in $(seq 600); do
	[ -e $D/locked ] && {
		"$T/fs-escape" hostlock $D/lockfile && echo refused >$T/hl || echo granted >$T/hl
		touch $D/host-checked; break; }
	sleep 0.1
  done ) &
timeout 120 "$T/fs-escape" locks $M >$T/locks.log 2>&1 && ok "locks" || { no locks; cat $T/locks.log; }
wait $!
[ "$(cat $T/hl 2>/dev/null)" = refused ] && ok "server-side lock refused" || no "server-side lock"
if command -v setfattr >/dev/null && command -v getfattr >/dev/null; then
	setfattr -n user.k -v val $M/file && getfattr --only-values -n user.k $D/file | grep -qx val &&
		ok xattr || no xattr
fi
umount $M || no umount
# a readonly share
"$T/serve" "$T/ro" "$T/mro" ro 2>>"$T/serve.err" &
for i in $(seq 50); do grep -q " $T/mro 9p" /proc/mounts && break; sleep 0.1; done
n=0
for c in "touch $T/mro/new" "rm $T/mro/keep" "chmod 777 $T/mro/keep" "mkdir $T/mro/d" "mv $T/mro/keep $T/mro/k2"; do
	$c 2>&1 | grep -q 'Read-only file system' && n=$((n + 1))
done
[ $n = 5 ] && [ "$(cat $T/mro/keep)" = keep ] && ok "readonly share: EROFS" || no "readonly share ($n of 5 EROFS)"
umount $T/mro
exit $bad
EOS
rc=0
unshare -m --propagation private bash "$T/inner.sh" "$T" || rc=$?
[ $rc = 77 ] && skip "the 9p fd transport is not available"
[ $rc = 0 ] || { cat "$T/serve.err"; fail "$rc checks failed"; }
[ "$(ls "$T/ro")" = keep ] || fail "the readonly share changed"
echo "kernel 9p client plan passed"
