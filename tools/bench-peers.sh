#!/bin/bash
# tools/bench-peers.sh - vmm side by side with QEMU's microvm (the VMM a user
# would pick instead): the same guest, the same image file, in the same run,
# vmm and QEMU runs interleaved, medians of the runs.
#   - boot-ready: process start to the test kernel's boot-ready marker (port
#     0xf5; vmm reports it with --boot-timer on stderr, QEMU shows the byte
#     on an isa-debugcon chardev), timed from outside for both;
#   - hello: whole-process wall time of `vmmtest.run=hello`;
#   - rss: the VMM process's RSS beyond guest RAM (/proc/PID/smaps read at
#     boot-ready, the guest RAM mapping left out), for both the same way;
#   - blkperf: 1 MiB sequential read and write and 4 KiB random read, qd 16,
#     on a raw file and on a fully allocated qcow2 image, cache=none on both
#     sides (QEMU: virtio-blk-device, aio=io_uring);
#   - linux: cold boot of the project's Linux guest to the agent's result,
#     the same job under both (instruction-emulated on a PVM host: a
#     functional figure, not a performance one).
#
#   tools/bench-peers.sh [--runs N] [--size 1G] [--dir DIR] [--no-linux]
#
# Lines: "NAME: vmm X unit, qemu Y unit, vmm/qemu R (target ...)".
# Prints one line and exits 0 when QEMU or /dev/kvm is missing; exits 1 if
# a run fails.  Environment: QEMU (default qemu-system-x86_64), VMM,
# TESTKERNEL, BENCH_RUNS (boot runs, default 20).
set -u
cd "$(dirname "$0")/.."
export LC_ALL=C	# EPOCHREALTIME with a '.'
RUNS=3 SIZE=1G DIR=${TMPDIR:-/tmp} LINUX=1
BOOT_RUNS=${BENCH_RUNS:-20}
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) RUNS=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--dir) DIR=$2; shift 2 ;;
	--no-linux) LINUX=0; shift ;;
	*) echo "bench-peers: unknown argument $1" >&2; exit 2 ;;
	esac
done
VMM=${VMM:-build/vmm}
TK=${TESTKERNEL:-build/guest/testkernel}
QEMU=${QEMU:-qemu-system-x86_64}
command -v "$QEMU" >/dev/null || {
	echo "peers: skipped: $QEMU is not installed (tools/install-deps installs qemu-system-x86)"
	exit 0; }
[ -w /dev/kvm ] || { echo "peers: skipped: /dev/kvm not accessible"; exit 0; }
for f in "$VMM" "$TK"; do
	[ -e "$f" ] || { echo "bench-peers: $f missing (make first)" >&2; exit 1; }
done
command -v qemu-img >/dev/null || { echo "bench-peers: qemu-img missing" >&2; exit 1; }

work=$(mktemp -d "$DIR/bench-peers.XXXXXX")
trap 'rm -rf "$work"' EXIT
status=0

# KVM on a PVM host refuses MSR 0x10a (../shared/docs/peers.md)
QCPU=host
[ -d /sys/module/kvm_pvm ] && QCPU=host,-arch-capabilities
# QEMU's fastest microvm for the test kernel: no ACPI, RTC, PIT, PIC or
# option ROMs (the kernel takes its TSC rate from kvmclock); the exit port
# at 0xf4 only (iosize=1: the default width also swallows 0xf5)
QEMU_TK=(-M microvm,acpi=off,rtc=off,pit=off,pic=off,x-option-roms=off
	-accel kvm -cpu "$QCPU" -smp 1 -nodefaults -no-user-config
	-display none -no-reboot -kernel "$TK"
	-device isa-debug-exit,iobase=0xf4,iosize=1)

median() { sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", (b - a) * 1000 }'; }
# line NAME UNIT VMM QEMU DECIMALS TARGET [EXTRA]
line() {
	awk -v n="$1" -v u="$2" -v a="$3" -v b="$4" -v d="$5" -v t="$6" -v x="${7:-}" 'BEGIN {
		f = "%s: vmm %." d "f %s, qemu %." d "f %s, vmm/qemu %.2f (target %s)%s\n"
		printf f, n, a, u, b, u, (b > 0 ? a / b : 0), t, x }'
}

# RSS of process PID beyond guest RAM, KiB: every mapping's Rss except the
# anonymous mappings the size of guest RAM (up to 4 MiB of alignment more)
rss_beyond() {	# rss_beyond PID RAM_KIB
	awk -v ram="$2" '
		/^[0-9a-f]+-[0-9a-f]+ / { anon = (NF < 6) }
		/^Size:/ { size = $2 }
		/^Rss:/ { if (!(anon && size >= ram && size <= ram + 4096)) total += $2 }
		END { print total + 0 }' "/proc/$1/smaps" 2>/dev/null
}

# One test-kernel boot: prints "READY_MS RSS_KIB".  The guest sleeps after
# boot-ready, so smaps is read while it idles.  QEMU runs as our own child
# (its PID for smaps), bounded by the read timeouts and a kill.
boot_once() {	# boot_once vmm|qemu
	local fifo=$work/ready.fifo t0 pid c text ready="" rss=""
	rm -f "$fifo"; mkfifo "$fifo"
	t0=$EPOCHREALTIME
	if [ "$1" = vmm ]; then
		"$VMM" --kernel "$TK" --memory 256M --boot-timer --serial off \
			--timeout 20 --cmdline "vmmtest.run=sleep:ms=500" \
			2>"$fifo" >/dev/null </dev/null &
	else
		"$QEMU" "${QEMU_TK[@]}" -m 256M -serial null \
			-chardev stdio,id=ready -device isa-debugcon,iobase=0xf5,chardev=ready \
			-append "vmmtest.run=sleep:ms=500" >"$fifo" 2>/dev/null </dev/null &
	fi
	pid=$!
	exec 4<"$fifo"
	# vmm: the boot-timer line; QEMU: the marker byte itself (123, '{')
	if [ "$1" = vmm ]; then
		while IFS= read -r -t 20 -u4 text; do
			case $text in *boot-ready*) ready=$(ms_since "$t0"); break ;; esac
		done
	else
		while IFS= read -r -N1 -t 20 -u4 c; do
			[ "$c" = "{" ] && { ready=$(ms_since "$t0"); break; }
		done
	fi
	[ -n "$ready" ] && rss=$(rss_beyond "$pid" 262144)
	timeout 20 cat <&4 >/dev/null
	exec 4<&-
	kill -9 "$pid" 2>/dev/null
	wait "$pid"
	[ -n "$ready" ] && [ -n "$rss" ] && echo "$ready $rss"
}

# Whole process, vmmtest.run=hello, console to a file: prints wall ms, or
# nothing on failure
hello_once() {	# hello_once vmm|qemu
	local t0=$EPOCHREALTIME out=$work/hello.out rc=0
	if [ "$1" = vmm ]; then
		"$VMM" --kernel "$TK" --memory 256M --serial "file=$out" --timeout 20 \
			--cmdline "vmmtest.run=hello" >/dev/null 2>&1 </dev/null || rc=$?
		[ $rc = 0 ] || return 1
	else
		timeout 20 "$QEMU" "${QEMU_TK[@]}" -m 256M -serial "file:$out" \
			-append "vmmtest.run=hello" >"$work/qemu.err" 2>&1 </dev/null || rc=$?
		[ $rc = 1 ] || return 1	# guest status 0 = QEMU status 1
	fi
	ms_since "$t0"
	grep -q "^PASS hello" "$out"
}

# --- boot-ready, RSS, hello ---
# the lean machine was tried with KVM on SVM and under TCG; should this
# host's KVM refuse it, fall back to the machine of ../shared/docs/peers.md
if ! hello_once qemu >/dev/null; then
	QEMU_TK[1]=microvm,acpi=off,rtc=off
	echo "peers: QEMU's lean microvm failed here; using -M ${QEMU_TK[1]}"
	hello_once qemu >/dev/null || {
		echo "bench-peers: QEMU does not boot the test kernel:" >&2
		cat "$work/qemu.err" "$work/hello.out" >&2; exit 1; }
fi
rm -f "$work/hello.out"
for i in $(seq "$BOOT_RUNS"); do
	for v in vmm qemu; do
		r=$(boot_once $v) && [ -n "$r" ] && echo "$r" >>"$work/boot.$v"
		r=$(hello_once $v) && echo "$r" >>"$work/hello.$v"
		rm -f "$work/hello.out"
	done
done
# a figure is printed only if every run of it succeeded on both sides
all_runs() {	# all_runs FILE_PREFIX WHAT
	local v n ok=0
	for v in vmm qemu; do
		n=$(cat "$work/$1.$v" 2>/dev/null | wc -l)
		[ "$n" -eq "$BOOT_RUNS" ] && continue
		echo "bench-peers: $v: only $n of $BOOT_RUNS $2 runs succeeded"
		ok=1 status=1
	done
	return $ok
}
if all_runs boot boot-ready; then
	line boot-ready ms "$(cut -d' ' -f1 "$work/boot.vmm" | median)" \
		"$(cut -d' ' -f1 "$work/boot.qemu" | median)" 2 "< 0.50"
	line rss-beyond-guest-ram KiB "$(cut -d' ' -f2 "$work/boot.vmm" | median)" \
		"$(cut -d' ' -f2 "$work/boot.qemu" | median)" 0 "< 1"
fi
all_runs hello hello &&
	line hello-wall ms "$(median <"$work/hello.vmm")" "$(median <"$work/hello.qemu")" 2 "< 1"

# --- blkperf, raw and qcow2 ---
bytes=$(numfmt --from=iec "$SIZE")
rsize=$(( bytes < 268435456 ? bytes : 268435456 ))	# random-read volume
raw=$work/disk.raw q=$work/disk.qcow2
# allocated files, so reads hit the storage and not holes; the qcow2 image
# has every cluster allocated (-S 0 writes the zeroes too)
dd if=/dev/zero of="$raw" bs=1M count=$((bytes >> 20)) oflag=direct status=none &&
	qemu-img convert -S 0 -f raw -O qcow2 -o cluster_size=65536 "$raw" "$q" || {
	echo "bench-peers: cannot create the images in $work" >&2; exit 1; }
RUN="blkperf:mode=read:bs=1M:qd=16:size=$bytes,blkperf:mode=write:bs=1M:qd=16:size=$bytes,blkperf:mode=randread:bs=4K:qd=16:size=$rsize"

blk_once() {	# blk_once vmm|qemu raw|qcow2 IMAGE OUT
	if [ "$1" = vmm ]; then
		timeout 300 "$VMM" --kernel "$TK" --memory 512M --timeout 280 \
			--disk "path=$3,format=$2,cache=none" \
			--cmdline "vmmtest.run=$RUN" >"$4" 2>&1 </dev/null
	else
		timeout 300 "$QEMU" "${QEMU_TK[@]}" -m 512M -serial "file:$4" \
			-global virtio-mmio.force-legacy=false \
			-drive "id=d0,file=$3,format=$2,if=none,aio=io_uring,cache=none" \
			-device virtio-blk-device,drive=d0 \
			-append "vmmtest.run=$RUN" >"$4.qemu" 2>&1 </dev/null
	fi
}
for i in $(seq "$RUNS"); do
	for fmt in raw qcow2; do
		img=$raw; [ $fmt = qcow2 ] && img=$q
		for v in vmm qemu; do
			out=$work/blk.out
			blk_once $v $fmt "$img" "$out"
			if [ "$(grep -c '^BLKPERF ' "$out")" != 3 ]; then
				echo "bench-peers: $v blkperf on $fmt failed:" >&2
				tail -5 "$out" >&2; status=1; continue
			fi
			for m in read write randread; do
				l=$(grep "^BLKPERF .* mode=$m " "$out")
				u=MBps; [ $m = randread ] && u=IOPS
				echo "$(echo "$l" | field $u) $(echo "$l" | field exits_per_req)" \
					>>"$work/$fmt.$m.$v"
			done
		done
	done
done
for fmt in raw qcow2; do
	for m in read write randread; do
		[ -s "$work/$fmt.$m.vmm" ] && [ -s "$work/$fmt.$m.qemu" ] || continue
		case $m in
		read) name=seqread-1M-qd16 u=MB/s ;;
		write) name=seqwrite-1M-qd16 u=MB/s ;;
		randread) name=randread-4K-qd16 u=IOPS ;;
		esac
		line "blk-$fmt-$name" "$u" "$(cut -d' ' -f1 "$work/$fmt.$m.vmm" | median)" \
			"$(cut -d' ' -f1 "$work/$fmt.$m.qemu" | median)" 1 ">= 1" \
			"; exits/req vmm $(cut -d' ' -f2 "$work/$fmt.$m.vmm" | median), qemu $(cut -d' ' -f2 "$work/$fmt.$m.qemu" | median)"
	done
done

# --- Linux guest, cold boot to the agent's result ---
[ $LINUX = 1 ] || exit $status
LK=build/guest/linux/vmlinux LI=build/guest/agent/initramfs-min.cpio
if [ ! -f "$LK" ] || [ ! -f "$LI" ]; then
	echo "peers: linux skipped: $LK or $LI missing (make linux initramfs)"
	exit $status
fi
command -v mkfs.ext4 >/dev/null || { echo "peers: linux skipped: no mkfs.ext4"; exit $status; }
LCMD="console=ttyS0 reboot=k panic=-1 random.trust_cpu=on rodata=off"
JOB="mount serial=data at=/mnt/data;write path=/mnt/data/f seed=1 size=4M;verify path=/mnt/data/f seed=1 size=4M"
mkfs.ext4 -q -F "$work/ext4.tmpl" 64M >/dev/null || exit 1
pvm_opts=""
linux_once() {	# linux_once vmm|qemu OUT: prints wall seconds
	local t0 rc=0
	cp "$work/ext4.tmpl" "$work/ext4.img"
	t0=$EPOCHREALTIME
	if [ "$1" = vmm ]; then
		"$VMM" --kernel "$LK" --initramfs "$LI" --memory 128M --timeout 300 \
			--disk "path=$work/ext4.img,format=raw,cache=none,serial=data" \
			--cmdline "$LCMD agent.job=\"$JOB\"" >"$2" 2>&1 </dev/null || rc=$?
		[ $rc = 0 ] || return 1
	else
		timeout 300 "$QEMU" -M microvm,acpi=off,rtc=off -accel kvm -cpu "$QCPU" \
			-m 128M -smp 1 -nodefaults -no-user-config -display none -no-reboot \
			-kernel "$LK" -initrd "$LI" -serial "file:$2" \
			-device isa-debug-exit,iobase=0xf4,iosize=1 \
			-global virtio-mmio.force-legacy=false \
			-drive "id=d0,file=$work/ext4.img,format=raw,if=none,aio=io_uring,cache=none" \
			-device virtio-blk-device,drive=d0,serial=data \
			-append "$LCMD $pvm_opts agent.job=\"$JOB\"" >"$2.qemu" 2>&1 </dev/null || rc=$?
		[ $rc = 1 ] || return 1
	fi
	grep -aq '"summary":true.*"status":0' "$2" || return 1
	awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}
# one Linux guest at a time machine-wide (the tests' lock)
exec 5>/tmp/vmm-linux-guest.lock
flock -w 1800 5 || { echo "peers: linux skipped: /tmp/vmm-linux-guest.lock busy for 30 min"; exit $status; }
for i in $(seq "${BENCH_PEERS_LINUX_RUNS:-1}"); do
	for v in vmm qemu; do
		if r=$(linux_once $v "$work/linux.$v.out"); then
			echo "$r" >>"$work/linux.$v"
		else
			echo "bench-peers: the Linux guest under $v did not finish its job:" >&2
			tail -5 "$work/linux.$v.out" >&2; status=1
		fi
		# QEMU gets by hand what vmm appends on a PVM host
		[ $v = vmm ] && pvm_opts=$(sed -n 's/.*PVM host: appending "\(.*\)" to the Linux.*/\1/p' \
			"$work/linux.vmm.out" | head -1)
	done
done
exec 5>&-
[ -s "$work/linux.vmm" ] && [ -s "$work/linux.qemu" ] &&
	line linux-boot-to-agent-result s "$(median <"$work/linux.vmm")" \
		"$(median <"$work/linux.qemu")" 1 "functional: guest emulated on PVM"
exit $status
