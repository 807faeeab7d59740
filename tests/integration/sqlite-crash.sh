#!/bin/bash
# A real database's data survives SIGKILL of vmm: Debian's sqlite3 (the
# image guest/sqlite/mkimage builds) in the Linux guest, two databases at
# once on ext4 on virtio-blk: one on a qcow2 image, WAL with PRAGMA
# synchronous=FULL; one on a raw image, rollback journal with
# synchronous=EXTRA.  (With FULL a rollback-journal commit is the journal's
# unlink, which SQLite does not sync: after a power cut -- what a killed vmm
# is to its guest -- the journal can come back and roll the last reported
# transaction back, as SQLite documents and this test's first run showed;
# EXTRA syncs the directory after the unlink.)  The guest prints
# "TXN NAME ID" on the console after each COMMIT returns; the host SIGKILLs
# vmm at a random moment (after a random number of reports, plus a random
# delay); the next boot opens each database (journal rollback / WAL
# recovery), runs PRAGMA integrity_check (must be "ok") and counts: every
# reported ID must be there, the IDs 1..max without a gap, and the counter
# row updated in the same transactions must agree (atomic commits).  That
# boot then writes on and is killed in turn: SQLITE_ROUNDS kills (default
# 3) in SQLITE_ROUNDS + 1 boots.  At the end the host checks the images:
# e2fsck -fn, qemu-img check, and the host's sqlite3 on the database files
# taken out with debugfs.  sqlite-crash-long.sh runs 200 rounds.
# timeout: 1800
. "$(dirname "$0")/lib.sh"
. "$TOP/tools/linux-plan"
linux_prepare disks
"$VMM" --help 2>&1 | grep -q 'qcow2' || skip "the VMM has no qcow2"
for c in qemu-img debugfs sqlite3; do
	command -v $c >/dev/null || fail "$c missing (tools/install-deps)"
done
make -C "$TOP" -s sqlite-image >/dev/null || fail "make sqlite-image failed"
ROUNDS=${SQLITE_ROUNDS:-3}
SEED=${SQLITE_SEED:-$RANDOM}
RANDOM=$SEED
echo "rounds $ROUNDS, random seed $SEED (SQLITE_SEED=$SEED repeats the kill moments)"

T=$TEST_TMP
mkdir -p "$T/empty" "$T/scripts"
cp "$TOP/tools/plans/guest/sqlite-txn.sh" "$T/scripts/"
mkext4 "$T/scripts.img" 2M "$T/scripts"
mkext4 "$T/raw.img" 64M "$T/empty"
mkext4 "$T/q.flat" 64M "$T/empty"
qemu-img convert -O qcow2 "$T/q.flat" "$T/q.qcow2" || fail "qemu-img convert to qcow2"
rm -f "$T/q.flat"
LINUX_MEMORY=128M
S="sh /mnt/scripts/sqlite-txn.sh"
devs=(--disk "path=$TOP/build/guest/sqlite/sqlite.img,format=raw,readonly=on,serial=sqlite"
	--disk "path=$T/scripts.img,format=raw,readonly=on,serial=scripts"
	--disk "path=$T/raw.img,format=raw,serial=raw"
	--disk "path=$T/q.qcow2,format=qcow2,serial=qcow2")
mounts="mount serial=sqlite at=/opt/sqlite opts=ro
mount serial=scripts at=/mnt/scripts opts=ro
mount serial=raw at=/mnt/raw
mount serial=qcow2 at=/mnt/q"
# (one shell step per boot: the checks and the writes in one command)
check="$S check raw /mnt/raw/db && $S check qcow2 /mnt/q/db"

declare -A reported=([raw]=0 [qcow2]=0)

# The highest ID boot NAME reported for database DB ("TXN DB ID" lines).
reported_max() {
	grep -a -o "TXN $2 [0-9]*" "$T/$1.out" | awk '$3 > m { m = $3 } END { print m + 0 }'
}

# Boot NAME's CHECK line for DB (the last, or the first with "first")
# against what was reported before it.
check_db() {
	local boot=$1 db=$2 which=${3:-last} line integrity count min max meta last
	line=$(grep -a -o "CHECK $db integrity=[^\r]*" "$T/$boot.out" |
		if [ "$which" = first ]; then head -1; else tail -1; fi)
	[ -n "$line" ] || { linux_show "$boot"; fail "boot $boot: no CHECK line for $db"; }
	integrity=$(echo "$line" | sed -n 's/.* integrity=\(.*\) count=.*/\1/p')
	[ "$integrity" = ok ] || { linux_show "$boot"; fail "boot $boot: $db: integrity_check said '$integrity' ($line)"; }
	eval "$(echo "$line" | grep -o '\(count\|min\|max\|meta\|last\)=[0-9]*' | tr '\n' ' ')"
	[ "$count" = "$max" ] && { [ "$max" = 0 ] || [ "$min" = 1 ]; } ||
		fail "boot $boot: $db: IDs are not 1..max without a gap ($line)"
	[ "$meta" = "$count" ] && [ "$last" = "$max" ] ||
		fail "boot $boot: $db: the counter row disagrees with the rows, a torn transaction ($line)"
	[ "$max" -ge "${reported[$db]}" ] ||
		fail "boot $boot: $db: transaction ${reported[$db]} was reported committed, the database ends at $max ($line)"
	echo "  $db: reported up to ${reported[$db]}, found 1..$max, integrity ok ($((max - reported[$db])) committed after the last report)"
	FOUND=$max
}

# qemu-img check: 0 clean, 3 only leaked clusters (a kill mid-allocation
# may leak; a leak is not corruption)
qcow2_check() {
	local rc=0
	qemu-img check "$T/q.qcow2" >"$T/qcheck.out" 2>&1 || rc=$?
	[ $rc = 0 ] || [ $rc = 3 ] || { cat "$T/qcheck.out"; fail "qemu-img check after $1: status $rc"; }
	[ $rc = 0 ] || echo "  qcow2: $(grep -m1 -i leak "$T/qcheck.out")"
}

for k in $(seq 1 "$ROUNDS"); do
	b=r$k
	job="$mounts"$'\n'"sh timeout=1200 cmd="
	[ "$k" -gt 1 ] && job+="$check && "
	job+="($S write raw /mnt/raw/db delete extra 100000000 & $S write qcow2 /mnt/q/db wal full 100000000 & wait)"
	linux_start "$b" 1200 "$job" "${devs[@]}"
	pid=$LINUX_PID
	# kill after a random number of reported commits on the raw database
	# (and at least one on the qcow2 one), plus a random delay
	want=$((1 + RANDOM % 20)) delay=$(printf '0.%03d' $((RANDOM % 1000)))
	ok=""
	for _ in $(seq 1 5000); do
		kill -0 "$pid" 2>/dev/null || break
		if [ "$(grep -a -c "TXN raw " "$T/$b.out")" -ge $want ] &&
		   grep -a -q "TXN qcow2 " "$T/$b.out"; then
			ok=1
			break
		fi
		sleep 0.2
	done
	[ -n "$ok" ] || { kill -9 "$pid" 2>/dev/null; wait "$pid"; linux_show "$b"; fail "round $k: the guest did not commit $want transactions"; }
	sleep "$delay"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	grep -a -q '^{"summary"' "$T/$b.out" && { linux_show "$b"; fail "round $k: the boot ended by itself"; }
	linux_ok "$b" 1 2 3 4
	echo "round $k: killed after $want raw commits + $delay s"
	if [ "$k" -gt 1 ]; then
		check_db "$b" raw first
		check_db "$b" qcow2 first
	fi
	for db in raw qcow2; do
		m=$(reported_max "$b" $db)
		[ "$m" -gt "${reported[$db]}" ] && reported[$db]=$m
	done
	qcow2_check "round $k"
done

# the last boot: check, five more transactions each, check again, unmount
rc=0
linux_boot final 900 "$mounts
sh timeout=600 cmd=$check && $S write raw /mnt/raw/db delete extra 5 && $S write qcow2 /mnt/q/db wal full 5 && $check" \
	"${devs[@]}" || rc=$?
linux_ok final 1 2 3 4 5
linux_summary final 0
linux_status final "$rc" 0
echo "after round $ROUNDS:"
check_db final raw first
check_db final qcow2 first
declare -A final=()
for db in raw qcow2; do
	reported[$db]=$(reported_max final $db)
	check_db final $db last
	final[$db]=$FOUND
	[ "$FOUND" = "${reported[$db]}" ] || fail "$db: the last 5 transactions: ends at $FOUND, reported ${reported[$db]}"
done

# host side: clean file systems, and the host's sqlite3 agrees
qcow2_check "the last boot"
qemu-img convert -O raw "$T/q.qcow2" "$T/q.flat" || fail "qemu-img convert"
for db in raw qcow2; do
	img=$T/raw.img
	[ $db = qcow2 ] && img=$T/q.flat
	e2fsck -fn "$img" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "e2fsck -fn of the $db image"; }
	rm -f "$T/$db.db"
	debugfs -R "dump /db $T/$db.db" "$img" >/dev/null 2>&1
	[ -s "$T/$db.db" ] || fail "debugfs: no /db on the $db image"
	[ "$(sqlite3 "$T/$db.db" 'PRAGMA integrity_check;')" = ok ] || fail "host sqlite3: integrity_check of the $db database"
	got=$(sqlite3 "$T/$db.db" "SELECT count(*) || ' ' || max(id) || ' ' || (SELECT n FROM meta) FROM t;")
	[ "$got" = "${final[$db]} ${final[$db]} ${final[$db]}" ] ||
		fail "host sqlite3: $db database has count/max/counter $got, the guest found ${final[$db]}"
	echo "host: $db image clean (e2fsck), database ok with ${final[$db]} transactions (host sqlite3)"
done
echo "sqlite crash test passed: $ROUNDS kills, $((ROUNDS + 1)) boots"
