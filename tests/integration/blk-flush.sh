#!/bin/bash
# Flush durability: the guest writes a pattern, flushes, says so on the
# console and halts; the host kills the VMM with SIGKILL at that moment and
# finds the data in the image file (cache=writeback and cache=none).
# timeout: 120
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "no $BLKIO"

for cache in writeback none; do
	img=$TEST_TMP/$cache.img out=$TEST_TMP/$cache.out
	truncate -s 16M "$img"
	"$VMM" --kernel "$TESTKERNEL" --timeout 60 \
		--disk "path=$img,format=raw,cache=$cache" \
		--cmdline "vmmtest.run=blkfill:seed=11:off=512:len=6M,blkflush,hang" \
		>"$out" 2>&1 </dev/null &
	pid=$!
	for _ in $(seq 600); do
		grep -q "^PASS blkflush" "$out" && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	grep -q "^PASS blkflush" "$out" || { kill -9 $pid; cat "$out"; fail "cache=$cache: no PASS blkflush"; }
	kill -9 $pid
	wait $pid 2>/dev/null
	"$BLKIO" verify --image "$img" --format raw --seed 11 --offset 512 --length 6M \
		|| fail "cache=$cache: flushed data not in the file after SIGKILL"
done
echo ok
