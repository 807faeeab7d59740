#!/bin/sh
# tools/plans/guest/sqlite-txn.sh - the guest side of the SQLite crash test
# (tests/integration/sqlite-crash.sh), run by busybox sh in the Linux guest
# with the SQLite image mounted at $SQ_DIR (default /opt/sqlite).
#
#   sqlite-txn.sh check NAME DB
#       opens DB (SQLite rolls back a hot journal / replays the WAL), runs
#       PRAGMA integrity_check and prints to the console one line
#       "CHECK NAME integrity=ok count=C min=A max=B meta=N last=L"
#       (integrity=none if there is no DB yet)
#   sqlite-txn.sh write NAME DB JOURNAL SYNC COUNT
#       COUNT transactions after the highest id in DB, each one row of
#       3000 random bytes plus a counter update, PRAGMA synchronous=SYNC
#       (full, extra), journal_mode JOURNAL (delete, wal, ...); after each
#       COMMIT returns
#       "TXN NAME ID" goes to the console, then "DONE NAME ID" at the end
# The host kills the VM at some moment and checks, on the next boot, that
# every ID it saw reported is in DB, and that DB is consistent.
SQ_DIR=${SQ_DIR:-/opt/sqlite}
SQ=$SQ_DIR/sqlite3
out=/dev/console

case "${1:-}" in
check)
	name=$2 db=$3
	if [ ! -e "$db" ]; then
		echo "CHECK $name integrity=none" >>$out
		exit 0
	fi
	ic=$("$SQ" "$db" 'PRAGMA integrity_check;' 2>&1 | tr '\n' ' ')
	st=$("$SQ" "$db" "SELECT 'count=' || count(*) || ' min=' || coalesce(min(id), 0) || ' max=' || coalesce(max(id), 0) FROM t;" 2>&1)
	mt=$("$SQ" "$db" "SELECT 'meta=' || n || ' last=' || last FROM meta;" 2>&1)
	echo "CHECK $name integrity=${ic% } $st $mt" >>$out
	;;
write)
	name=$2 db=$3 journal=$4 sync=$5 count=$6
	"$SQ" "$db" "PRAGMA journal_mode=$journal;
		CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, pad BLOB);
		CREATE TABLE IF NOT EXISTS meta(k INTEGER PRIMARY KEY, n INTEGER, last INTEGER);
		INSERT OR IGNORE INTO meta VALUES(1, 0, 0);" >/dev/null || exit 1
	sync
	last=$("$SQ" "$db" 'SELECT coalesce(max(id), 0) FROM t;') || exit 1
	first=$((last + 1))
	end=$((first + count - 1))
	# one sqlite3 process reads the transactions as they come; .print runs
	# only after the COMMIT before it returned (sqlite3 flushes each line);
	# -bail: the first failure ends it, nothing more is reported
	{
		echo "PRAGMA synchronous=$sync;"
		i=$first
		while [ $i -le $end ]; do
			echo "BEGIN; INSERT INTO t VALUES($i, randomblob(3000)); UPDATE meta SET n = n + 1, last = $i WHERE k = 1; COMMIT;"
			echo ".print TXN $name $i"
			i=$((i + 1))
		done
		echo ".print DONE $name $end"
	} | "$SQ" -bail "$db" >>$out
	;;
*)
	echo "usage: $0 check NAME DB | write NAME DB JOURNAL SYNC COUNT" >&2
	exit 2
	;;
esac
