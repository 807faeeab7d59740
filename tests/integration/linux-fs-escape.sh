#!/bin/bash
# A hostile guest program against a virtio-9p share (one boot):
# tests/integration/fs-escape.c, built static on the host and shipped in a
# readonly share, tries ".." chains, absolute and relative symlinks
# pointing out (final and mid-path), a symlink swapped with a file while
# it opens (by a guest process, and by the host meanwhile), hard links and
# renames out of the share, mknod of device nodes, and a mount point below
# the share (a tmpfs the VMM sees in its own mount namespace).  A sentinel
# file next to the share is never read (its text is never seen) or
# changed.  Then POSIX locks: two guest processes contend on one lock, and
# a host process cannot take the lock while the guest holds it.
# timeout: 900
. "$(dirname "$0")/lib.sh"
. "$TOP/tools/linux-plan"
linux_prepare
"$VMM" --help 2>&1 | grep -q -- '--fs' || skip "the VMM has no --fs"

T=$TEST_TMP
S=$T/share TOOLS=$T/tools OUT=$T/outside
SECRET="sentinel-$$-$RANDOM-never-read"
mkdir -p "$S/dir" "$S/mnt" "$TOOLS" "$OUT"
printf '%s\n' "$SECRET" >"$OUT/sentinel"
touch -d @1000000000 "$OUT/sentinel"
printf 'inside\n' >"$S/file"
printf 'inside\n' >"$S/hrace"
: >"$S/lockfile"
ln -s "$OUT/sentinel" "$S/abs_link"
ln -s ../outside/sentinel "$S/rel_link"
ln -s ../outside "$S/dir_link"
${CC:-cc} -static -O2 -Wall -o "$TOOLS/fs-escape" "$TOP/tests/integration/fs-escape.c" ||
	fail "cannot build fs-escape.c (static)"
sentinel_before=$(stat -c '%s %Y %Z' "$OUT/sentinel")

# The VMM runs in its own mount namespace with a tmpfs on share/mnt (the
# host's mounts are untouched); without namespaces the share just has an
# empty directory there.
cat >"$T/vmm-ns" <<EOF
#!/bin/bash
mount -t tmpfs -o size=1M tmpfs "$S/mnt" && echo mounted >"$S/mnt/inmount" ||
	exit 70
exec "$VMM" "\$@"
EOF
chmod +x "$T/vmm-ns"
REAL_VMM=$VMM
if unshare -m --propagation private true 2>/dev/null; then
	printf '#!/bin/bash\nexec unshare -m --propagation private %q "$@"\n' \
		"$T/vmm-ns" >"$T/vmm-wrap"
	chmod +x "$T/vmm-wrap"
	VMM=$T/vmm-wrap
	mountpoint=1
else
	echo "no mount namespaces: the mount-point case sees an empty directory"
fi

rc=0
linux_start e1 700 "
mount9p tag=s at=/mnt/s
mount9p tag=tools at=/mnt/tools opts=ro
sh timeout=300 cmd=/mnt/tools/fs-escape escapes /mnt/s $SECRET >/mnt/s/escape.log 2>&1
sh timeout=300 cmd=/mnt/tools/fs-escape locks /mnt/s >/mnt/s/locks.log 2>&1
sync" \
	--fs path="$S",tag=s --fs path="$TOOLS",tag=tools,readonly=on
VMM=$REAL_VMM

# Meanwhile on the host: swap a symlink to the sentinel in and out of
# share/hrace (bounded), and when the guest says it holds the lock, try to
# take it from a host process.
host_lock=""
deadline=$((SECONDS + 650)) swaps=0
while [ $SECONDS -lt $deadline ] && kill -0 "$LINUX_PID" 2>/dev/null; do
	if [ $swaps -lt 5000 ]; then
		ln -sfn "$OUT/sentinel" "$S/hrace.l" && mv -T "$S/hrace.l" "$S/hrace"
		printf 'inside\n' >"$S/hrace.f" && mv -T "$S/hrace.f" "$S/hrace"
		swaps=$((swaps + 1))
	fi
	sleep 0.02
	if [ -z "$host_lock" ] && [ -e "$S/locked" ]; then
		if "$TOOLS/fs-escape" hostlock "$S/lockfile"; then
			host_lock=refused
		else
			host_lock=granted
		fi
		touch "$S/host-checked"
	fi
done
wait "$LINUX_PID" || rc=$?
show_logs() {
	linux_show e1
	for f in escape locks; do
		echo "--- $f.log:"
		cat "$S/$f.log" 2>/dev/null
	done
}
grep -q '^escapes: 0 failed' "$S/escape.log" 2>/dev/null || {
	show_logs; fail "escape attempts: $(grep FAIL "$S/escape.log" 2>/dev/null | head -5)"; }
grep -q '^locks: 0 failed' "$S/locks.log" 2>/dev/null || {
	show_logs; fail "locks: $(grep FAIL "$S/locks.log" 2>/dev/null | head -5)"; }
linux_ok e1 1 2 3 4 5
linux_summary e1 0
linux_status e1 "$rc" 0
echo "host swapped share/hrace $swaps times during the run"

# the sentinel: same text, never written; nothing new outside the share
[ "$(cat "$OUT/sentinel")" = "$SECRET" ] || fail "the sentinel changed"
[ "$(stat -c '%s %Y %Z' "$OUT/sentinel")" = "$sentinel_before" ] ||
	fail "the sentinel was written to"
[ "$(ls "$OUT")" = sentinel ] || fail "new files outside the share: $(ls "$OUT")"
[ ! -e "$S/blockdev" ] && [ ! -e "$S/chardev" ] || fail "a device node was made"
[ -p "$S/fifo" ] || fail "the guest's fifo is not on the host"
[ "$(readlink "$S/guest_link")" = /etc/../../outside/sentinel ] ||
	fail "the guest's symlink is not kept as text"
if [ -n "${mountpoint:-}" ]; then
	[ ! -e "$S/mnt/inmount" ] || fail "the tmpfs leaked out of the namespace"
fi
[ "$host_lock" = refused ] || fail "a host process was $host_lock the guest's lock"
"$TOOLS/fs-escape" hostlock "$S/lockfile" && fail "the guest's lock outlived the guest"
echo "9p escape and lock plan passed"
