#!/bin/bash
# timeout: 1200
# qcow2 through the block layer (host tool blkio), qemu-img as the referee.
# For v2 and v3 images with 512 B, 64 KiB and 2 MiB clusters, alone and on a
# two-level backing chain ending in raw, and for compressed images (zlib,
# zstd): seeded writes (sequential, random, unaligned, partial clusters),
# write-zeroes, discard + rewrite go to the image and to a raw reference;
# then `qemu-img check` is clean, `qemu-img convert -O raw` equals the
# reference, and the backing files are byte-identical.  The same with an
# internal snapshot taken (qemu-img snapshot -c) before the workload: then
# also `qemu-img snapshot -a` brings back the snapshot's data.
. "$(dirname "$0")/lib.sh"
BLKIO=${BLKIO:-$BUILD/tools/blkio}
[ -x "$BLKIO" ] || fail "$BLKIO not built"
command -v qemu-img >/dev/null || fail "qemu-img missing (tools/install-deps)"
M=$((1024 * 1024))
SIZE=$((16 * M))

# apply one blkio command to the image and to the raw reference
both() {
	"$BLKIO" "$@" --image "$dir/img.qcow2" --format qcow2 $CACHE >/dev/null ||
		fail "$name: blkio $* on the qcow2 image failed"
	"$BLKIO" "$@" --image "$dir/ref.raw" --format raw >/dev/null ||
		fail "$name: blkio $* on the raw reference failed"
}

al() { echo $(( ($1 + A - 1) / A * A )); }	# round up to the alignment A

workload() {
	local i off len
	RANDOM=$1
	both fill --seed 11 --offset 0 --length $M
	both fill --seed 12 --offset $(al $((3 * M + 123))) --length $(al 100000) --bs 7K --qd 4
	for i in $(seq 1 10); do
		off=$(al $(( (RANDOM * 32768 + RANDOM) % (SIZE - 70000) )))
		len=$(al $(( RANDOM % 65536 + 1 )))
		both fill --seed $((100 + i)) --offset $off --length $len --bs 4K --qd 8
	done
	both zero --offset $(al 200000) --length $(al 3000000)
	both zero --offset $((5 * M)) --length $((2 * M)) --unmap
	# discard whole 2 MiB-aligned clusters then write them again: the
	# discarded space is reused and the result is defined on both sides
	both discard --offset $((8 * M)) --length $((4 * M))
	both fill --seed 13 --offset $((8 * M)) --length $((4 * M)) --bs 64K --qd 16
	both fill --seed 14 --offset $((SIZE - $(al 5000))) --length $(al 5000)
}

referee() {	# check + compare, and backing files unchanged
	local rc
	qemu-img check -q "$dir/img.qcow2"; rc=$?
	[ $rc = 0 ] || { qemu-img check "$dir/img.qcow2"; fail "$name: qemu-img check exit $rc"; }
	qemu-img convert -O raw "$dir/img.qcow2" "$dir/out.raw" || fail "$name: convert"
	cmp "$dir/out.raw" "$dir/ref.raw" || fail "$name: image differs from the raw reference"
	# and our own read of the whole disk (chain, compressed, zero clusters)
	"$BLKIO" dump --image "$dir/img.qcow2" --format qcow2 --out "$dir/dump.raw" $CACHE \
		>/dev/null || fail "$name: blkio dump"
	cmp "$dir/dump.raw" "$dir/ref.raw" || fail "$name: reading the image back differs"
	if [ -n "${base_sum:-}" ]; then
		[ "$(cd "$dir" && sha256sum base.raw mid.qcow2)" = "$base_sum" ] ||
			fail "$name: a backing file changed"
	fi
}

# take an internal snapshot of data already in the image; workload and
# referee run over it, then the snapshot is applied and must be intact
snapshot_take() {
	both fill --seed 5 --offset $(al $((M / 2 + 17))) --length $((9 * M)) --bs 64K --qd 4
	qemu-img snapshot -c s1 "$dir/img.qcow2" || fail "$name: qemu-img snapshot -c"
	cp "$dir/ref.raw" "$dir/snap.raw"
}

snapshot_check() {
	qemu-img snapshot -a s1 "$dir/img.qcow2" || fail "$name: qemu-img snapshot -a"
	qemu-img check -q "$dir/img.qcow2" || fail "$name: qemu-img check after snapshot -a"
	qemu-img convert -O raw "$dir/img.qcow2" "$dir/out.raw" || fail "$name: convert"
	cmp "$dir/out.raw" "$dir/snap.raw" || fail "$name: the snapshot's data changed"
}

run_case() {	# run_case COMPAT CLUSTER BACKING(0|1) [CACHE] [snap]
	local compat=$1 cs=$2 back=$3 snap=${5:-}
	CACHE=${4:+--cache $4}
	A=1; [ "${4:-}" = none ] && A=512	# O_DIRECT: sector-aligned I/O only
	name="compat=$compat cluster=$cs backing=$back${4:+ cache=$4}${snap:+ snapshot}"
	dir=$TEST_TMP/$compat-$cs-$back; rm -rf "$dir"; mkdir -p "$dir"
	base_sum=
	if [ "$back" = 1 ]; then
		truncate -s $((SIZE - 3 * M)) "$dir/base.raw"	# shorter than the disk
		"$BLKIO" fill --image "$dir/base.raw" --format raw --seed 1 >/dev/null || fail "base"
		qemu-img create -q -f qcow2 -o compat=$compat,cluster_size=$cs \
			-b base.raw -F raw "$dir/mid.qcow2" $SIZE || fail "create mid"
		"$BLKIO" fill --image "$dir/mid.qcow2" --format qcow2 --seed 2 \
			--offset $((M + 512)) --length $((2 * M)) >/dev/null || fail "$name: fill mid"
		qemu-img create -q -f qcow2 -o compat=$compat,cluster_size=$cs \
			-b mid.qcow2 -F qcow2 "$dir/img.qcow2" || fail "create top"
		qemu-img convert -O raw "$dir/img.qcow2" "$dir/ref.raw" || fail "ref"
		base_sum=$(cd "$dir" && sha256sum base.raw mid.qcow2)
	else
		qemu-img create -q -f qcow2 -o compat=$compat,cluster_size=$cs \
			"$dir/img.qcow2" $SIZE || fail "create"
		truncate -s $SIZE "$dir/ref.raw"
	fi
	[ -n "$snap" ] && snapshot_take
	workload 42
	referee
	[ -n "$snap" ] && snapshot_check
	echo "ok: $name"
	rm -rf "$dir"
}

# v3 chains also carry an internal snapshot: its shared L2 tables and
# clusters are copied on write (the workload writes past it too)
for compat in 0.10 1.1; do
	for cs in 512 65536 2M; do
		run_case $compat $cs 0
		run_case $compat $cs 1 "" $([ $compat = 1.1 ] && echo snap)
	done
done
run_case 1.1 65536 1 none snap
run_case 0.10 65536 0 "" snap
# other layouts qemu-img makes
for opts in lazy_refcounts=on preallocation=metadata refcount_bits=1 refcount_bits=64; do
	run_case "1.1,$opts" 4096 0
done

# more L2 tables than the cache holds (512 B clusters: 1024 tables map 32
# MiB): dirty tables are written back when evicted
name="L2 cache eviction"
dir=$TEST_TMP/evict; mkdir -p "$dir"
qemu-img create -q -f qcow2 -o cluster_size=512 "$dir/e.qcow2" 40M || fail "create"
"$BLKIO" fill --image "$dir/e.qcow2" --format qcow2 --seed 21 --bs 256K --qd 8 >/dev/null ||
	fail "$name: fill"
"$BLKIO" fill --image "$dir/e.qcow2" --format qcow2 --seed 22 --offset 777 --length 20M \
	--bs 7K --qd 8 >/dev/null || fail "$name: second fill"
qemu-img check -q "$dir/e.qcow2" || fail "$name: qemu-img check"
"$BLKIO" verify --image "$dir/e.qcow2" --format qcow2 --seed 22 --offset 777 --length 20M \
	>/dev/null || fail "$name: second fill reads back wrong"
"$BLKIO" verify --image "$dir/e.qcow2" --format qcow2 --seed 21 --offset $((20 * M + 777)) \
	--length $((20 * M - 777)) >/dev/null || fail "$name: first fill reads back wrong"
rm -rf "$dir"
echo "ok: $name"

# compressed images: writes into compressed clusters copy the rest of the
# cluster from the decompressed data
for ct in zlib zstd zlib+snapshot; do
	name="compressed $ct"; snap=${ct#zlib}; ct=${ct%+snapshot}
	dir=$TEST_TMP/c-$ct; mkdir -p "$dir"; base_sum=; CACHE=; A=1
	truncate -s $SIZE "$dir/src.raw"
	for i in $(seq 0 63); do
		"$BLKIO" fill --image "$dir/src.raw" --format raw --seed $i \
			--offset $((i * 256 * 1024 + 700)) --length 3000 >/dev/null || fail "src"
	done
	qemu-img convert -c -O qcow2 -o compression_type=$ct "$dir/src.raw" "$dir/img.qcow2" ||
		fail "$name: qemu-img convert -c"
	if [ $ct = zstd ] && "$BLKIO" info --image "$dir/img.qcow2" --format qcow2 2>&1 |
		grep -q "without libzstd"; then
		echo "skipped: $name (built without libzstd)"
		continue
	fi
	qemu-img check "$dir/img.qcow2" | grep -q 'compressed clusters' || fail "$name: not compressed"
	cp "$dir/src.raw" "$dir/ref.raw"
	for i in 0 2 3 7 30; do	# the untouched islands read back
		"$BLKIO" verify --image "$dir/img.qcow2" --format qcow2 --seed $i \
			--offset $((i * 256 * 1024 + 700)) --length 3000 >/dev/null ||
			fail "$name: compressed cluster $i reads wrong"
	done
	[ -n "$snap" ] && { qemu-img snapshot -c s1 "$dir/img.qcow2" || fail "$name: snapshot -c"
		cp "$dir/ref.raw" "$dir/snap.raw"; }
	workload 7
	referee
	[ -n "$snap" ] && snapshot_check
	echo "ok: $name"
	rm -rf "$dir"
done
