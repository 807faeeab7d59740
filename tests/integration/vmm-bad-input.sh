#!/bin/bash
# timeout: 60
# Bad input to ./vmm: each case gets one clear error line naming the
# problem and the documented non-zero status; never a crash or a hang.
. "$(dirname "$0")/lib.sh"
need_kvm
T=$TEST_TMP
K=$TESTKERNEL

# expect_error STATUS REGEX ARGS...: vmm exits STATUS, stderr matches REGEX,
# and says it in one line (no sanitizer report, no core).
expect_error() {
	local want=$1 re=$2; shift 2
	local rc=0
	timeout 20 "$VMM" "$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
	[ "$rc" = "$want" ] || { cat "$T/err"; fail "vmm $*: exit $rc, expected $want"; }
	grep -Eq -- "$re" "$T/err" || { cat "$T/err"; fail "vmm $*: no /$re/ on stderr"; }
	[ "$(wc -l <"$T/err")" -le 2 ] || { cat "$T/err"; fail "vmm $*: more than one error line"; }
	! grep -Eq "Sanitizer|runtime error|Segmentation" "$T/err" || { cat "$T/err"; fail "crash"; }
}

# options
expect_error 64 "kernel is required"
expect_error 64 "unknown option '--frobnicate'" --kernel "$K" --frobnicate
expect_error 64 "invalid size" --kernel "$K" --memory size=12Q
expect_error 64 "too small" --kernel "$K" --memory 1M
expect_error 64 "invalid count" --kernel "$K" --cpus boot=0
expect_error 64 "invalid count" --kernel "$K" --cpus boot=1000
expect_error 64 "needs a value" --kernel
expect_error 64 "invalid number of seconds" --kernel "$K" --timeout -3
expect_error 64 "format= is required" --kernel "$K" --disk path=x.img
expect_error 64 "unknown format 'vmdk'" --kernel "$K" --disk path=x.img,format=vmdk
expect_error 64 "unknown key 'bogus'" --kernel "$K" --disk path=x.img,format=raw,bogus=1
expect_error 64 "expected tty, file=PATH or off" --kernel "$K" --serial nowhere

# impossible memory: more than the host has
expect_error 69 "more than this host has" --kernel "$K" --memory 64T

# kernel files
expect_error 65 "kernel $T/missing: No such file" --kernel "$T/missing"
expect_error 65 "not a regular file" --kernel "$T"
: >"$T/empty"
expect_error 65 "file is empty" --kernel "$T/empty"
head -c 300 "$K" >"$T/truncated"
expect_error 65 "truncated" --kernel "$T/truncated"
head -c 100000 /dev/urandom >"$T/random"
expect_error 65 "not a kernel" --kernel "$T/random"
echo "just some text, definitely not a kernel" >"$T/text"
expect_error 65 "not a kernel" --kernel "$T/text"
cp /bin/true "$T/dynexe"	# an ELF, but not a kernel (ET_DYN)
expect_error 65 "not an executable" --kernel "$T/dynexe"

# a kernel or initrd that does not fit the memory
truncate -s 40M "$T/big-initrd"
expect_error 65 "initramfs .* does not fit in guest memory" --kernel "$K" --memory 32M --initramfs "$T/big-initrd"
expect_error 65 "initramfs $T/nope: No such file" --kernel "$K" --initramfs "$T/nope"

# a command line longer than the kernel accepts: refused, not truncated
long=$(head -c 70000 /dev/zero | tr '\0' 'x')
expect_error 65 "longer than|accepts at most" --kernel "$K" --cmdline "$long"

# disks
expect_error 65 "missing.img: [Nn]o such file" --kernel "$K" --disk path="$T/missing.img",format=raw

# /dev/kvm missing or not accessible (needs root to arrange)
if [ "$(id -u)" = 0 ]; then
	cp "$K" "$T/tk" && chmod 755 "$T" && chmod 644 "$T/tk"
	unshare -m sh -c "mount -t tmpfs none /dev && exec '$VMM' --kernel '$T/tk' --timeout 5" \
		>"$T/out" 2>"$T/err" </dev/null; rc=$?
	[ $rc = 69 ] && grep -q "/dev/kvm: No such file" "$T/err" || { cat "$T/err"; fail "missing /dev/kvm: exit $rc"; }
	setpriv --reuid=65534 --regid=65534 --clear-groups "$VMM" --kernel "$T/tk" --timeout 5 \
		>"$T/out" 2>"$T/err" </dev/null; rc=$?
	[ $rc = 69 ] && grep -q "/dev/kvm: Permission denied" "$T/err" || { cat "$T/err"; fail "inaccessible /dev/kvm: exit $rc"; }
fi

echo "all bad-input cases rejected cleanly"
