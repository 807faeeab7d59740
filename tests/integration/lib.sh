# tests/integration/lib.sh - helpers for integration tests (sourced).
# Environment from tests/run-all: VMM, TESTKERNEL, BUILD, TOP, TEST_TMP.
set -u
: "${TEST_TMP:=$(mktemp -d)}"
: "${TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${VMM:=$TOP/build/vmm}"
: "${TESTKERNEL:=$TOP/build/guest/testkernel}"

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skip: $*"; exit 77; }
need_kvm() { [ -w /dev/kvm ] || skip "/dev/kvm not accessible"; }

# run_vmm OUTFILE ARGS...: run the VMM with stdout+stderr in OUTFILE; returns
# its exit status.  Always bounded: pass --timeout yourself or get 60 s.
run_vmm() {
	local out=$1; shift
	local t=""
	case " $* " in *" --timeout "*) ;; *) t="--timeout 60" ;; esac
	# shellcheck disable=SC2086
	"$VMM" $t "$@" >"$out" 2>&1 </dev/null
}

expect_in() {	# expect_in FILE REGEX [what]
	grep -Eq -- "$2" "$1" || { echo "--- $1:"; tail -40 "$1"; fail "${3:-expected /$2/ in output}"; }
}
expect_not_in() {
	! grep -Eq -- "$2" "$1" || { echo "--- $1:"; tail -40 "$1"; fail "${3:-unexpected /$2/ in output}"; }
}
expect_status() {	# expect_status GOT WANT FILE
	[ "$1" = "$2" ] || { echo "--- $3:"; tail -40 "$3"; fail "exit status $1, expected $2"; }
}

# the compiler flags of this build's sanitizer (run-all --sanitize), for
# programs a test links with $BUILD/libvmm.a
case "${SANITIZE:-0}" in
1) SAN_CFLAGS="-fsanitize=address,undefined" ;;
tsan) SAN_CFLAGS="-fsanitize=thread" ;;
*) SAN_CFLAGS="" ;;
esac
