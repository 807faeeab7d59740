#!/bin/bash
# timeout: 400
# Crash consistency of qcow2 writes: SIGKILL the writer (host tool blkio) at
# random moments during heavy allocating writes - 4 KiB and unaligned
# requests, 32 in flight - QCOW2_CRASH_ITERS times (default 24), taking
# turns over six images: fresh clusters (64 KiB); 512 B clusters; partial
# clusters over a backing file (v2); an internal snapshot sharing every
# written cluster (L2 tables and data copied on write); compressed clusters
# overwritten (copied from their decompressed data); and a fresh image
# whose refcount table must grow during the write (remade each turn).
# After every kill: `qemu-img check` exits 0 or 3 (leaked clusters only),
# never 2; every fill that completed (and so flushed) before the kill reads
# back (the image's lower half equals a raw file given the same fills); the
# snapshot's data is unchanged (and comes back with qemu-img snapshot -a at
# the end).  Leaks are repaired (check -r leaks) before the next turn.
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
# a snapshot sharing the whole scratch half and the start of the slots
qemu-img create -q -f qcow2 -o cluster_size=65536 snap.qcow2 $SIZE || fail create
"$BLKIO" fill --image snap.qcow2 --format qcow2 --seed 7 --offset $((HALF - 4 * M)) \
	--length $((HALF + 4 * M)) --bs 1M --qd 4 >/dev/null || fail "snapshot fill"
qemu-img snapshot -c s1 snap.qcow2 || fail "qemu-img snapshot -c"
qemu-img convert -l snapshot.name=s1 -O raw snap.qcow2 snap-s1.raw || fail "snapshot convert"
# compressed clusters (several to a host cluster) over the scratch half
truncate -s $SIZE src.raw
qemu-io -f raw -c "write -P 0x5c $HALF $((HALF - 8 * M))" src.raw >/dev/null || fail "src"
qemu-img convert -c -O qcow2 src.raw comp.qcow2 || fail "qemu-img convert -c"
images="c64.qcow2 c512.qcow2 cow.qcow2 snap.qcow2 comp.qcow2 grow.qcow2"
nimages=6
# what the durable fills made of each image's lower half, as raw files
for img in $images; do
	[ $img = grow.qcow2 ] || qemu-img convert -O raw $img ref-$img.raw || fail "ref $img"
done
killed_mid=0 rc3=0 grown=0
RANDOM=${QCOW2_CRASH_SEED:-4242}

reftable_at() { od -An -tx1 -j48 -N8 "$1" | tr -d ' \n'; }

for i in $(seq 1 "$ITERS"); do
	img=$(echo $images | cut -d' ' -f$(( (i - 1) % nimages + 1 )))
	if [ $img = grow.qcow2 ]; then
		# one refcount table cluster covers 8 MiB of 512 B clusters:
		# the victim's 40+ MiB make it grow, again and again
		rm -f grow.qcow2
		qemu-img create -q -f qcow2 -o cluster_size=512 grow.qcow2 $SIZE || fail create
		rt0=$(reftable_at grow.qcow2)
	fi
	# a durable fill: completes and flushes, must survive every later kill
	# (not on grow.qcow2, whose first allocation must be the victim's)
	slot=$(( i % (HALF / SLOT) ))
	soff=$(( slot * SLOT + RANDOM % 4096 ))
	slen=$(( SLOT - 4096 - RANDOM % 8192 ))
	if [ $img != grow.qcow2 ]; then
		"$BLKIO" fill --image $img --format qcow2 --seed $((1000 + i)) --offset $soff \
			--length $slen --bs 3584 --qd 8 >/dev/null ||
			fail "iteration $i: durable fill on $img"
		"$BLKIO" fill --image ref-$img.raw --format raw --seed $((1000 + i)) \
			--offset $soff --length $slen >/dev/null || fail "iteration $i: reference fill"
	fi
	# the victim: allocating writes into the scratch half, killed at random
	woff=$(( HALF + (RANDOM % 16) * M + RANDOM % 65536 ))
	wlen=$(( 40 * M + RANDOM * 64 ))
	[ $((woff + wlen)) -le $SIZE ] || wlen=$(( SIZE - woff ))
	[ $((RANDOM % 4)) = 0 ] && "$BLKIO" discard --image $img --format qcow2 \
		--offset $HALF --length $((32 * M)) >/dev/null
	"$BLKIO" fill --image $img --format qcow2 --seed $((5000 + i)) --offset $woff \
		--length $wlen --bs $(( (RANDOM % 2) ? 4096 : 3000 )) --qd 32 >/dev/null 2>&1 &
	pid=$!
	if [ $img = grow.qcow2 ]; then
		# wait (up to 20 s) until the refcount table first moved, then
		# kill within the next 300 ms: later growths of the same write
		for t in $(seq 2000); do
			[ "$(reftable_at grow.qcow2)" != "$rt0" ] && break
			kill -0 $pid 2>/dev/null || break
			sleep 0.01
		done
		delay=$((RANDOM % 300))
	else
		delay=$((RANDOM % 120))
	fi
	sleep "0.$(printf "%03d" $delay)"
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
	3) rc3=$((rc3 + 1))
	   # reclaim the leaks (else they pile up over a long run, and
	   # every check lists them all): the next writer opens a repaired image
	   qemu-img check -q -r leaks "$img" >/dev/null 2>&1 ||
		fail "iteration $i: qemu-img check -r leaks on $img" ;;
	*) cat check.log; fail "iteration $i: qemu-img check exit $rc on $img after SIGKILL" ;;
	esac
	if [ $img = snap.qcow2 ]; then
		qemu-img convert -l snapshot.name=s1 -O raw snap.qcow2 snap-now.raw ||
			fail "iteration $i: snapshot convert"
		cmp -s snap-now.raw snap-s1.raw || fail "iteration $i: the snapshot's data changed"
	fi
	[ $img = grow.qcow2 ] && [ "$(reftable_at grow.qcow2)" != "$rt0" ] && grown=$((grown + 1))
	[ $((i % 50)) = 0 ] && echo "progress: $i kills ($killed_mid mid-write," \
		"$rc3 leaking, $grown refcount table growths), $SECONDS s"
	# every durable fill so far reads back (the upper half is scratch)
	if [ $img != grow.qcow2 ]; then
		qemu-img convert -O raw $img now.raw || fail "iteration $i: convert $img"
		cmp -n $HALF now.raw ref-$img.raw ||
			fail "iteration $i: flushed data lost in $img"
	fi
done
qemu-img snapshot -a s1 snap.qcow2 || fail "qemu-img snapshot -a"
qemu-img check -q snap.qcow2 >/dev/null 2>&1; rc=$?	# the kills may have leaked
[ $rc = 0 ] || [ $rc = 3 ] || fail "qemu-img check exit $rc after snapshot -a"
qemu-img convert -O raw snap.qcow2 snap-now.raw || fail "convert"
cmp -s snap-now.raw snap-s1.raw || fail "snapshot -a did not bring back the snapshot's data"
echo "$ITERS kills ($killed_mid mid-write), check exit 3 (leaks) $rc3 times, never 2;" \
	"refcount table grown on disk before $grown of $(( (ITERS + 0) / nimages )) kills of grow.qcow2"
[ $killed_mid -ge $((ITERS / 3)) ] || fail "only $killed_mid of $ITERS kills hit a running writer"
[ $ITERS -lt $((nimages * 2)) ] || [ $grown -gt 0 ] ||
	fail "the refcount table of grow.qcow2 never grew before a kill"
