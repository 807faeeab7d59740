#!/bin/bash
# timeout: 120
# Crash consistency of qcow2 writes: SIGKILL the writer (host tool blkio) at
# random moments during heavy allocating writes - 4 KiB and unaligned
# requests, 32 in flight, on fresh clusters, partial clusters over a backing
# file, 512 B clusters (refcount table growth) - QCOW2_CRASH_ITERS times
# (default 24).  After every kill: `qemu-img check` exits 0 or 3 (leaked
# clusters only), never 2; every fill that completed (and so flushed) before
# the kill reads back.
. "$(dirname "$0")/lib.sh"
BLKIO=${BLKIO:-$BUILD/tools/blkio}
[ -x "$BLKIO" ] || fail "$BLKIO not built"
ITERS=${QCOW2_CRASH_ITERS:-24}
M=$((1024 * 1024))
SIZE=$((128 * M))
HALF=$((SIZE / 2))	# slots below, the killed writer's scratch above
SLOT=$((256 * 1024))
cd "$TEST_TMP" || exit 1

truncate -s $SIZE base.raw
"$BLKIO" fill --image base.raw --format raw --seed 3 --offset $HALF --length $((8 * M)) >/dev/null ||
	fail "base fill"
qemu-img create -q -f qcow2 -o cluster_size=65536 c64.qcow2 $SIZE || fail create
qemu-img create -q -f qcow2 -o cluster_size=512 c512.qcow2 $SIZE || fail create
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=16384 -b base.raw -F raw cow.qcow2 ||
	fail create
images="c64.qcow2 c512.qcow2 cow.qcow2"
declare -A slots
killed_mid=0 rc3=0
RANDOM=${QCOW2_CRASH_SEED:-4242}

for i in $(seq 1 "$ITERS"); do
	img=$(echo $images | cut -d' ' -f$(( (i - 1) % 3 + 1 )))
	# a durable fill: completes and flushes, must survive every later kill
	slot=$(( i % (HALF / SLOT) ))
	soff=$(( slot * SLOT + RANDOM % 4096 ))
	slen=$(( SLOT - 4096 - RANDOM % 8192 ))
	"$BLKIO" fill --image $img --format qcow2 --seed $((1000 + i)) --offset $soff \
		--length $slen --bs 3584 --qd 8 >/dev/null || fail "iteration $i: durable fill on $img"
	slots[$img:$slot]="$((1000 + i)) $soff $slen"
	# the victim: allocating writes into the scratch half, killed at random
	woff=$(( HALF + (RANDOM % 16) * M + RANDOM % 65536 ))
	wlen=$(( 40 * M + RANDOM * 64 ))
	[ $((woff + wlen)) -le $SIZE ] || wlen=$(( SIZE - woff ))
	[ $((RANDOM % 4)) = 0 ] && "$BLKIO" discard --image $img --format qcow2 \
		--offset $HALF --length $((32 * M)) >/dev/null
	"$BLKIO" fill --image $img --format qcow2 --seed $((5000 + i)) --offset $woff \
		--length $wlen --bs $(( (RANDOM % 2) ? 4096 : 3000 )) --qd 32 >/dev/null 2>&1 &
	pid=$!
	sleep "0.$(printf "%03d" $((RANDOM % 120)))"
	if kill -9 $pid 2>/dev/null; then killed_mid=$((killed_mid + 1)); fi
	wait $pid 2>/dev/null
	# the killed process's io_uring lets go of the file (and its lock)
	# asynchronously: retry while the image is still locked
	for t in 1 2 3 4 5 6 7 8 9 10; do
		qemu-img check "$img" >check.log 2>&1
		rc=$?
		[ $rc = 1 ] && grep -q lock check.log || break
		sleep 0.1
	done
	case $rc in
	0) ;;
	3) rc3=$((rc3 + 1)) ;;
	*) cat check.log; fail "iteration $i: qemu-img check exit $rc on $img after SIGKILL" ;;
	esac
	for k in "${!slots[@]}"; do
		[ "${k%%:*}" = "$img" ] || continue
		set -- ${slots[$k]}
		"$BLKIO" verify --image $img --format qcow2 --seed $1 --offset $2 --length $3 \
			>verify.log 2>&1 || { cat verify.log; fail "iteration $i: flushed data lost in $img (slot $k)"; }
	done
done
echo "$ITERS kills ($killed_mid mid-write), check exit 3 (leaks) $rc3 times, never 2"
[ $killed_mid -ge $((ITERS / 3)) ] || fail "only $killed_mid of $ITERS kills hit a running writer"
