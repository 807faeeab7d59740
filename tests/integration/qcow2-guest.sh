#!/bin/bash
# timeout: 180
# qcow2 disks in a guest: `--disk path=X.qcow2,format=qcow2` for the test
# kernel.  v3 64 KiB clusters, v2 512 B clusters on a two-level chain ending
# in raw, and a compressed image: the guest's block tests pass, its seeded
# fills (unaligned, partial clusters) equal the same fills on a raw
# reference after `qemu-img convert`, `qemu-img check` is clean, a second
# boot verifies them (and cache=none an aligned range), and the backing files are unchanged.
# Then SIGKILL the VMM 20 times (QCOW2_GUEST_KILLS) during heavy unflushed allocating writes
# that follow a flushed fill: check exits 0 or 3, the flushed fill is there.
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "no $BLKIO"
M=$((1024 * 1024))
cd "$TEST_TMP" || exit 1
out=$TEST_TMP/out

FILLS="11:4097:3000000 12:$((5 * M + 300)):70000 13:$((9 * M)):$((M + 512)) 14:$((12 * M - 1000)):2000 15:$((14 * M)):$((2 * M))"

guest_cmds() {	# the fill (or verify) commands for FILLS
	local f s o l cmds=""
	for f in $FILLS; do
		IFS=: read -r s o l <<<"$f"
		cmds="$cmds,blk$1:seed=$s:off=$o:len=$l"
	done
	echo "${cmds#,}"
}

check_image() {	# NAME IMAGE REF [BACKING_SUMS]
	local rc
	qemu-img check -q "$2"; rc=$?
	[ $rc = 0 ] || { qemu-img check "$2"; fail "$1: qemu-img check exit $rc"; }
	qemu-img convert -O raw "$2" conv.raw || fail "$1: convert"
	cmp conv.raw "$3" || fail "$1: guest writes differ from the raw reference"
}

run_case() {	# NAME IMAGE: the image and ref.raw (its contents) exist
	local name=$1 img=$2 f s o l
	for f in $FILLS; do
		IFS=: read -r s o l <<<"$f"
		"$BLKIO" fill --image ref.raw --format raw --seed $s --offset $o --length $l \
			>/dev/null || fail "ref fill"
	done
	run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 --disk "path=$img,format=qcow2" \
		--cmdline "vmmtest.run=blkinfo,blktest,blkbytes,$(guest_cmds fill),blkflush"
	expect_status $? 0 "$out"
	check_image "$name" "$img" ref.raw
	run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 --disk "path=$img,format=qcow2" \
		--cmdline "vmmtest.run=$(guest_cmds verify)"
	expect_status $? 0 "$out"
	# cache=none (O_DIRECT): the test kernel's buffers for unaligned
	# ranges are not sector aligned (raw fails those too), so an aligned one
	run_vmm "$out" --kernel "$TESTKERNEL" --timeout 60 \
		--disk "path=$img,format=qcow2,cache=none" \
		--cmdline "vmmtest.run=blkverify:seed=15:off=$((14 * M)):len=$((2 * M)),blkfill:seed=16:off=$((13 * M)):len=$M,blkflush"
	expect_status $? 0 "$out"
	"$BLKIO" fill --image ref.raw --format raw --seed 16 --offset $((13 * M)) --length $M \
		>/dev/null || fail "ref fill"
	check_image "$name (cache=none)" "$img" ref.raw
	echo "ok: $name"
}

# v3, 64 KiB clusters, no backing file
qemu-img create -q -f qcow2 a.qcow2 16M || fail create
truncate -s 16M ref.raw
run_case "v3 64K" a.qcow2

# v2, 512 B clusters, on a qcow2 on a raw base shorter than the disk
truncate -s 12M base.raw
"$BLKIO" fill --image base.raw --format raw --seed 1 >/dev/null || fail "base fill"
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 -b base.raw -F raw mid.qcow2 16M
"$BLKIO" fill --image mid.qcow2 --format qcow2 --seed 2 --offset 3M --length 4M >/dev/null ||
	fail "mid fill"
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 -b mid.qcow2 -F qcow2 b.qcow2
qemu-img convert -O raw b.qcow2 ref.raw
sums=$(sha256sum base.raw mid.qcow2)
run_case "v2 512 chain" b.qcow2
[ "$(sha256sum base.raw mid.qcow2)" = "$sums" ] || fail "a backing file changed"

# compressed (zlib), the writes land on compressed clusters
cp ref.raw src.raw
qemu-img convert -c -O qcow2 src.raw c.qcow2 || fail "convert -c"
run_case "compressed" c.qcow2

# crash: flushed fill, then heavy unflushed allocating writes, SIGKILL.
# cache=none: no page cache to write back, so each flush is quick even on a
# busy host (aligned ranges: see above)
qemu-img create -q -f qcow2 -o cluster_size=4096 k.qcow2 256M || fail create
leaks=0 mid=0
RANDOM=77
KILLS=${QCOW2_GUEST_KILLS:-20}
# start_vm: boot the crash VM in the background, wait for its flushed fill
start_vm() {
	rm -f "$out"	# the background shell truncates it only later
	"$VMM" --kernel "$TESTKERNEL" --timeout 60 --disk "path=k.qcow2,format=qcow2,cache=none" \
		--cmdline "vmmtest.run=blkfill:seed=$s:off=$o:len=$((2 * M)),blkflush,blkfill:seed=9$i:off=$((32 * M + i * 4096)):len=$((200 * M)),hang" \
		>"$out" 2>&1 </dev/null &
	pid=$!
	local start=$SECONDS
	while [ $((SECONDS - start)) -lt 20 ]; do
		grep -qs "^PASS blkflush" "$out" && return 0
		kill -0 $pid 2>/dev/null || break
		sleep 0.02
	done
	grep -q "^PASS blkflush" "$out" && return 0
	for t in /proc/$pid/task/*; do	# where it is stuck, if alive
		echo "thread $(cat "$t/comm") state $(awk '{print $3}' "$t/stat") wchan $(cat "$t/wchan")"
		head -4 "$t/stack"
	done 2>/dev/null
	kill -9 $pid 2>/dev/null
	wait $pid
	echo "VMM exit status $?; its output:"
	cat "$out"
	return 1
}
for i in $(seq 1 "$KILLS"); do
	s=$((300 + i)) o=$(( (i % 8) * 4 * M + i * 4096 ))
	start_vm || fail "crash $i: no PASS blkflush"
	sleep "0.$(printf '%03d' $((RANDOM % 200)))"
	kill -9 $pid
	wait $pid 2>/dev/null
	[ "$(grep -c '^PASS blkfill' "$out")" = 1 ] && mid=$((mid + 1))
	for _ in $(seq 20); do	# the dead VMM's io_uring lets go of the lock late
		qemu-img check k.qcow2 >check.log 2>&1
		rc=$?
		[ $rc = 1 ] && grep -q lock check.log || break
		sleep 0.1
	done
	case $rc in
	0) ;;
	3) leaks=$((leaks + 1)) ;;
	*) cat check.log; fail "crash $i: qemu-img check exit $rc after SIGKILL of the VMM" ;;
	esac
	"$BLKIO" verify --image k.qcow2 --format qcow2 --seed $s --offset $o --length $((2 * M)) \
		>/dev/null || fail "crash $i: the flushed fill is not in the image"
done
echo "ok: $KILLS VMM kills ($mid during the writes), $leaks left leaked clusters, none corrupt"
[ $mid -ge $((KILLS / 2)) ] || fail "only $mid of $KILLS kills hit the writes"
