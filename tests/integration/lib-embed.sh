#!/bin/bash
# timeout: 900
# libvmm embedded: tests/lib/embed, built against the installed library
# (make install into $BUILD/dest, pkg-config), boots the test kernel in 8
# VMs at once in one process, each with its own raw disk running blktest,
# and checks every status, console and event stream; then the same
# program with libvmm linked statically.
. "$(dirname "$0")/lib.sh"
need_kvm
K=$BUILD/dest/usr/local/share/vmm/testkernel
for b in embed embed-static; do
	[ -x "$BUILD/tests/lib/$b" ] || fail "no $BUILD/tests/lib/$b (make builds it)"
done
[ -f "$K" ] || fail "no installed test kernel at $K"
# the dynamic one really uses the installed shared library
ldd "$BUILD/tests/lib/embed" | grep -q "$BUILD/dest/usr/local/lib/libvmm.so.0" ||
	fail "embed is not linked with the installed libvmm.so: $(ldd "$BUILD/tests/lib/embed")"
! ldd "$BUILD/tests/lib/embed-static" 2>/dev/null | grep -q libvmm ||
	fail "embed-static links libvmm dynamically"

for b in embed embed-static; do
	mkdir -p "$TEST_TMP/$b"
	rc=0
	"$BUILD/tests/lib/$b" --kernel "$K" --dir "$TEST_TMP/$b" --vms 8 --memory 32M \
		>"$TEST_TMP/$b.out" 2>&1 || rc=$?
	cat "$TEST_TMP/$b.out"
	expect_status $rc 0 "$TEST_TMP/$b.out"
	expect_in "$TEST_TMP/$b.out" "^embed: 8 VMs passed blktest concurrently"
	expect_in "$TEST_TMP/$b.out" "descriptors, all close-on-exec"
	! grep -Eq "Sanitizer|runtime error" "$TEST_TMP/$b.out" || fail "$b: sanitizer report"
done
echo "8 VMs in one process: ok (dynamic and static)"
