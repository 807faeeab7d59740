#!/bin/bash
# timeout: 400
# Power loss through the whole device path: the test kernel writes rounds of
# the seeded pattern over virtio-blk (blkfill, any alignment: partial
# sectors, misaligned buffers) and FLUSHes after each (blkflush), while vmm
# logs every write and barrier reaching the image (VMM_IO_RECORD).
# build/tools/blkreplay rebuilds the image as a power cut after each barrier
# (and seeded mixes of the writes after it) leaves it: at the j-th FLUSH,
# rounds 1..j read back; qcow2 passes `qemu-img check` in every state.
# Raw writeback, raw cache=none, qcow2.  Then writethrough: a driver that
# does not negotiate FLUSH (vmmtest.blk_off=flush) must find every write
# durable when it completes: each logged write is covered by a barrier
# before the guest's next write.
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
REPLAY=$BUILD/tools/blkreplay
BLKIO=$BUILD/tools/blkio
[ -x "$REPLAY" ] || fail "no $REPLAY"
command -v qemu-img >/dev/null || skip "no qemu-img"
cd "$TEST_TMP" || exit 1

M=$((1024 * 1024))
SIZE=$((16 * M))
ROUNDS=${BLK_POWERLOSS_ROUNDS:-6}
RANDOM=${POWERLOSS_SEED:-2718}

# guest_case NAME FORMAT CACHE: rounds of blkfill + blkflush in one boot
guest_case() {
	local name=$1 fmt=$2 cache=$3 cmds="" rounds="" i off len
	cp --sparse=always "$name.img" "$name.base" || fail "$name: copy"
	for i in $(seq 1 "$ROUNDS"); do
		len=$(( (RANDOM * 32 + RANDOM) % (3 * M / 2) + 1 ))
		off=$(( (RANDOM * 32768 + RANDOM) % (SIZE - len) ))
		cmds+="${cmds:+,}blkfill:dev=0:seed=$((200 + i)):off=$off:len=$len,blkflush:dev=0"
		rounds+="${rounds:+,}$((200 + i)):$off:$len"
	done
	VMM_IO_RECORD=$PWD/$name.log run_vmm "$name.out" --kernel "$TESTKERNEL" \
		--timeout 200 --disk "path=$name.img,format=$fmt,cache=$cache" \
		--cmdline "vmmtest.run=$cmds"
	expect_status $? 0 "$name.out"
	"$REPLAY" check --log "$name.log" --image "$name.img" --base "$name.base" \
		--format "$fmt" --rounds "$rounds" --mix 3 --dir "$PWD" >"$name.check" 2>&1 ||
		{ cat "$name.check"; fail "$name: a power cut loses FLUSHed data or corrupts the image"; }
	sed "s/^/$name: /" "$name.check"
}

truncate -s $SIZE raw-wb.img
guest_case raw-wb raw writeback
truncate -s $SIZE raw-none.img
if "$BLKIO" info --image raw-none.img --format raw --cache none >/dev/null 2>&1; then
	guest_case raw-none raw none
else
	echo "raw-none: no O_DIRECT here, skipped"
fi
qemu-img create -q -f qcow2 q64.img $SIZE || fail create
guest_case q64 qcow2 writeback

# writethrough: FLUSH not negotiated; blkfill writes one request at a time
truncate -s $SIZE wt.img
VMM_IO_RECORD=$PWD/wt.log run_vmm wt.out --kernel "$TESTKERNEL" --timeout 200 \
	--disk "path=wt.img,format=raw" \
	--cmdline "vmmtest.blk_off=flush vmmtest.run=blkinfo:dev=0,blkfill:dev=0:seed=9:off=1000:len=2000000,blkverify:dev=0:seed=9:off=1000:len=2000000"
expect_status $? 0 wt.out
expect_in wt.out "blkinfo: dev=0 .* flush=0" "FLUSH was negotiated after all"
"$REPLAY" writethrough --log wt.log --image wt.img >wt.check 2>&1 ||
	{ cat wt.check; fail "writethrough: a completed write was not durable"; }
cat wt.check
n=$(sed -n 's/^writethrough: \([0-9]*\) writes.*/\1/p' wt.check)
[ "${n:-0}" -ge 6 ] || fail "writethrough: only ${n:-0} writes logged"
echo ok
