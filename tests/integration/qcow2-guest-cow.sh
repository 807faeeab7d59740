#!/bin/bash
# timeout: 300
# Partial-cluster copy-on-write from the guest: overlays with clusters
# larger than a sector (4 KiB, 64 KiB, 2 MiB; v3 and v2) on a raw backing
# file, and 64 KiB over a qcow2 backing file, get guest writes (the test
# kernel over virtio-blk) that start and end inside clusters: one sector in
# the middle of a cluster, a range from the end of one cluster into the
# next, a write covering one whole cluster between two partial ones, and
# unaligned byte ranges (the guest reads and rewrites partial sectors).
# The rest of each touched cluster must come from the backing file.
# Referee: `qemu-img check` is clean, `qemu-img convert -O raw` equals the
# backing data with the writes applied, the backing files are unchanged, and
# a second boot (also with cache=none) reads the writes back.
. "$(dirname "$0")/lib.sh"
need_kvm
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "no $BLKIO"
command -v qemu-img >/dev/null || skip "no qemu-img"
M=$((1024 * 1024))
SIZE=$((32 * M))
cd "$TEST_TMP" || exit 1

truncate -s $SIZE base.raw
"$BLKIO" fill --image base.raw --format raw --seed 1 >/dev/null || fail "base fill"
qemu-img create -q -f qcow2 -o cluster_size=65536 -b base.raw -F raw mid.qcow2 || fail mid
"$BLKIO" fill --image mid.qcow2 --format qcow2 --seed 2 --offset $((6 * M + 512)) \
	--length $((3 * M)) >/dev/null || fail "mid fill"
qemu-img convert -O raw mid.qcow2 mid.raw || fail "mid convert"
sums=$(sha256sum base.raw mid.qcow2)

# fills for cluster size C (seed:off:len): inside one cluster, across a
# boundary, whole cluster between partial ones, unaligned bytes
fills() {
	local c=$1
	echo "21:$((3 * c + 512)):512"
	echo "22:$((5 * c - 1024)):2048"
	echo "23:$((7 * c + 1536)):$((c + 1024))"
	echo "24:$((9 * c + 100)):$((c / 2 + 333))"
	echo "25:$((SIZE - c - 512)):1024"
}

# case NAME BACKING_RAW OVERLAY_OPTS CLUSTER [BACKING_FILE FMT]
run_case() {
	local name=$1 ref_src=$2 opts=$3 c=$4 back=${5:-base.raw} bfmt=${6:-raw}
	local f s o l fill="" verify=""
	cp "$ref_src" ref.raw
	rm -f ov.qcow2
	qemu-img create -q -f qcow2 -o "$opts,cluster_size=$c" -b "$back" -F "$bfmt" \
		ov.qcow2 || fail "$name: create"
	for f in $(fills "$c"); do
		IFS=: read -r s o l <<<"$f"
		"$BLKIO" fill --image ref.raw --format raw --seed "$s" --offset "$o" \
			--length "$l" >/dev/null || fail "ref fill"
		fill+="${fill:+,}blkfill:seed=$s:off=$o:len=$l"
		verify+="${verify:+,}blkverify:seed=$s:off=$o:len=$l"
	done
	run_vmm out --kernel "$TESTKERNEL" --timeout 120 \
		--disk "path=ov.qcow2,format=qcow2" --cmdline "vmmtest.run=$fill,blkflush"
	expect_status $? 0 out
	qemu-img check -q ov.qcow2 || { qemu-img check ov.qcow2; fail "$name: qemu-img check"; }
	qemu-img convert -O raw ov.qcow2 conv.raw || fail "$name: convert"
	cmp conv.raw ref.raw || fail "$name: the image differs from backing + writes"
	[ "$(sha256sum base.raw mid.qcow2)" = "$sums" ] || fail "$name: a backing file changed"
	for cache in writeback none; do
		run_vmm out --kernel "$TESTKERNEL" --timeout 120 \
			--disk "path=ov.qcow2,format=qcow2,cache=$cache" \
			--cmdline "vmmtest.run=$verify"
		expect_status $? 0 out
	done
	echo "ok: $name"
}

run_case "v3 4K over raw" base.raw compat=1.1 4096
run_case "v3 64K over raw" base.raw compat=1.1 65536
run_case "v2 64K over raw" base.raw compat=0.10 65536
run_case "v3 2M over raw" base.raw compat=1.1 $((2 * M))
run_case "v3 64K over qcow2 over raw" mid.raw compat=1.1 65536 mid.qcow2 qcow2
echo ok
