#!/bin/bash
# timeout: 400
# Power loss, not just a killed process: every write and barrier that
# reaches the image is logged (VMM_IO_RECORD, storage/io_record.h) while the
# host tool blkio writes rounds of the seeded pattern, each ending with a
# FLUSH; build/tools/blkreplay then rebuilds the image as a power cut right
# after each barrier leaves it (only what that barrier made durable), plus
# seeded mixes of the writes after it (what the disk may or may not have
# kept), and checks: qcow2 images pass `qemu-img check` (0, or 3 = leaked
# clusters) in every one of those states, and at the j-th FLUSH rounds 1..j
# read back.  Raw (writeback and cache=none) and qcow2 (64 KiB clusters,
# 512 B clusters: refcount table growth, compat=0.10 over a raw backing file:
# partial-cluster copy-on-write), each on io_uring and the sync fallback.
#
# The sync engine runs the raw cases and qcow2 64K (the backends above the
# engine are the same).  POWERLOSS_LONG=1 (make powerloss-long): every case
# on both engines, more rounds, larger writes on larger images, more mixes
# per barrier; results in docs/DURABILITY.md.
. "$(dirname "$0")/lib.sh"
BLKIO=$BUILD/tools/blkio
REPLAY=$BUILD/tools/blkreplay
[ -x "$BLKIO" ] && [ -x "$REPLAY" ] || fail "blkio/blkreplay not built"
command -v qemu-img >/dev/null || skip "no qemu-img"
cd "$TEST_TMP" || exit 1

M=$((1024 * 1024))
if [ "${POWERLOSS_LONG:-0}" = 1 ]; then
	ROUNDS=16 MIXES=8 SIZE=$((64 * M)) MAXLEN=$((4 * M)) LONG=1
else
	ROUNDS=5 MIXES=2 SIZE=$((16 * M)) MAXLEN=$((M + M / 2)) LONG=0
fi
RANDOM=${POWERLOSS_SEED:-1414}
total_states=0

# run_case NAME FORMAT CACHE ENGINE ALIGN: fresh image in NAME.img (made by
# the caller), ROUNDS blkio fills (random offset, length, bs, qd; aligned to
# ALIGN), each its own process and log, then the replay check.
run_case() {
	local name=$1 fmt=$2 cache=$3 engine=$4 align=$5
	local rounds="" logs=() i off len bs qd out
	cp --sparse=always "$name.img" "$name.base" || fail "$name: copy"
	for i in $(seq 1 "$ROUNDS"); do
		len=$(( (RANDOM * 64 + RANDOM) % MAXLEN / align * align + align ))
		off=$(( (RANDOM * 32768 + RANDOM) % (SIZE - len) / align * align ))
		bs=$(( (RANDOM % 3 == 0 ? 3584 : 65536) / align * align ))
		[ "$bs" -gt 0 ] || bs=$align
		qd=$(( RANDOM % 2 ? 1 : 16 ))
		VMM_IO_ENGINE=$engine VMM_IO_RECORD=$PWD/$name.log$i \
			"$BLKIO" fill --image "$name.img" --format "$fmt" --cache "$cache" \
			--seed $((100 + i)) --offset $off --length $len --bs $bs --qd $qd \
			>"$name.fill$i" 2>&1 || { cat "$name.fill$i"; fail "$name: fill $i"; }
		rounds+="${rounds:+,}$((100 + i)):$off:$len"
		logs+=(--log "$name.log$i")
	done
	out=$name.check
	# states are built here, next to the backing file a qcow2 names
	"$REPLAY" check "${logs[@]}" --image "$name.img" --base "$name.base" \
		--format "$fmt" --rounds "$rounds" --mix "$MIXES" --dir "$PWD" \
		>"$out" 2>&1 || { cat "$out"; fail "$name: a power cut loses FLUSHed data or corrupts the image (rounds $rounds)"; }
	grep -E "^check: " "$out" | sed "s/^/$name ($engine): /"
	total_states=$((total_states + $(sed -n 's/.* \([0-9]*\) states built.*/\1/p' "$out")))
	rm -f "$name".log* state.img state.raw
}

for engine in io_uring sync; do
	truncate -s $SIZE raw-wb.img
	run_case raw-wb raw writeback $engine 1
	truncate -s $SIZE raw-none.img
	if "$BLKIO" info --image raw-none.img --format raw --cache none >/dev/null 2>&1; then
		run_case raw-none raw none $engine 4096
	else
		echo "raw-none: no O_DIRECT here, skipped"
	fi
	qemu-img create -q -f qcow2 -o cluster_size=65536 q64.img $SIZE || fail create
	run_case q64 qcow2 writeback $engine 1
	# the engines differ below the backends: the other qcow2 layouts
	# once (all of them twice in the long run)
	if [ $engine = sync ] && [ $LONG = 0 ]; then
		rm -f ./*.img ./*.base
		continue
	fi
	qemu-img create -q -f qcow2 -o cluster_size=512 q512.img $SIZE || fail create
	run_case q512 qcow2 writeback $engine 512
	truncate -s $SIZE back.raw
	"$BLKIO" fill --image back.raw --format raw --seed 7 >/dev/null || fail "backing fill"
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=16384 -b back.raw -F raw \
		cow.img || fail create
	run_case cow qcow2 writeback $engine 1
	rm -f ./*.img ./*.base back.raw
done
echo "powerloss: $total_states crash states checked"
