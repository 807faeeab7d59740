#!/bin/bash
# timeout: 300
# libvmm from Python 3 through ctypes (Debian's /usr/bin/python3, standard
# library only): create, start and wait for one VM; console and events.
. "$(dirname "$0")/lib.sh"
need_kvm
PY=/usr/bin/python3
[ -x $PY ] || skip "no $PY"
LIB=$BUILD/dest/usr/local/lib/libvmm.so.0
[ -f "$LIB" ] || fail "no installed $LIB (make builds it)"
pre=""
if [ "${SANITIZE:-0}" = 1 ]; then
	# an ASan library in an uninstrumented interpreter: its runtime first
	pre=$(gcc -print-file-name=libasan.so)
	export ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0
fi
rc=0
LD_PRELOAD=$pre $PY "$TOP/tests/lib/smoke.py" "$LIB" \
	"$BUILD/dest/usr/local/share/vmm/testkernel" >"$TEST_TMP/out" 2>&1 || rc=$?
cat "$TEST_TMP/out"
expect_status $rc 0 "$TEST_TMP/out"
expect_in "$TEST_TMP/out" "^smoke.py: libvmm .* from Python: status 0"
echo ok
