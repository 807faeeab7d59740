#!/bin/bash
# timeout: 300
# The seccomp sandbox (--seccomp on|log|off, VMM_SECCOMP): bad values are
# one line and status 64 (no /dev/kvm needed); then, with a VM running a
# disk, a vsock device and a 9p share: every thread of the process (vCPUs,
# device loops, the service thread, main) shows "Seccomp: 2"; a forbidden
# call made on purpose (VMM_TEST_SECCOMP_VIOLATE=KIND, test-only) by a
# device thread, a vCPU, the service thread or main ends vmm with status
# 70 and the documented last line; log lets the same call through; off
# filters nothing; and a guest doing block I/O passes with the filters on.
. "$(dirname "$0")/lib.sh"
T=$TEST_TMP
K=$TESTKERNEL

# ---- without a VM ----
"$VMM" --help | grep -q -- '--seccomp on|log|off' || fail "--help lacks --seccomp"
rc=0; "$VMM" --kernel "$K" --seccomp maybe >"$T/bad" 2>&1 || rc=$?
expect_status $rc 64 "$T/bad"
[ "$(cat "$T/bad")" = "vmm: --seccomp: 'maybe': expected on, log or off" ] ||
	{ cat "$T/bad"; fail "bad --seccomp: not the one documented line"; }
rc=0; "$VMM" --kernel "$K" --seccomp >"$T/bad2" 2>&1 || rc=$?
expect_status $rc 64 "$T/bad2"
expect_in "$T/bad2" "--seccomp needs a value"
rc=0; VMM_SECCOMP=sometimes "$VMM" --kernel "$K" >"$T/bad3" 2>&1 || rc=$?
expect_status $rc 64 "$T/bad3"
[ "$(cat "$T/bad3")" = "vmm: VMM_SECCOMP='sometimes' in the environment: expected on, log or off" ] ||
	{ cat "$T/bad3"; fail "bad VMM_SECCOMP: not the one documented line"; }

need_kvm
unset VMM_SECCOMP
truncate -s 16M "$T/disk.img"
mkdir -p "$T/share"
DEVS=(--disk "path=$T/disk.img,format=raw" --vsock "cid=3,uds=$T/v.sock"
      --fs "path=$T/share,tag=share")

# ---- every thread filtered ----
# a guest that halts for ever; the VM is looked at once it booted
"$VMM" --kernel "$K" --cmdline "vmmtest.run=hang" --timeout 120 --cpus boot=2 \
	"${DEVS[@]}" --events "file=$T/ev" --serial off >"$T/run" 2>&1 &
pid=$!
for _ in $(seq 600); do
	grep -q boot-ready "$T/ev" 2>/dev/null && break
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
grep -q boot-ready "$T/ev" 2>/dev/null || { kill $pid; cat "$T/run"; fail "no boot-ready"; }
# main filters itself just after vmm_start: give it a moment
for _ in $(seq 100); do
	unfiltered=$(grep -L $'^Seccomp:\t2' /proc/$pid/task/*/status 2>/dev/null)
	[ -z "$unfiltered" ] && break
	sleep 0.1
done
for s in /proc/$pid/task/*/status; do
	printf '%s %s\n' "$(cat "${s%status}comm")" "$(grep '^Seccomp:' "$s")"
done >"$T/threads"
kill -TERM $pid
rc=0; wait $pid || rc=$?
cat "$T/threads"
expect_status $rc 143 "$T/run"
expect_not_in "$T/threads" $'Seccomp:\t[^2]' "a thread without its filter"
for name in vmm vcpu0 vcpu1 vmm-service virtio-blk0 virtio-vsock virtio-9p; do
	grep -q "^$name" "$T/threads" || fail "no thread named $name*"
done

# ---- a forbidden call: status 70, the documented last line ----
for kind in device vcpu service main; do
	rc=0; VMM_TEST_SECCOMP_VIOLATE=$kind "$VMM" --kernel "$K" \
		--cmdline "vmmtest.run=hello" --timeout 60 "${DEVS[@]}" --seccomp on \
		>"$T/v-$kind" 2>&1 </dev/null || rc=$?
	expect_status $rc 70 "$T/v-$kind"
	last=$(tail -1 "$T/v-$kind")
	[[ $last =~ ^"vmm: seccomp: forbidden syscall getppid (110) in thread "[a-z0-9-]+$ ]] ||
		{ cat "$T/v-$kind"; fail "$kind: last line is '$last'"; }
	case $kind in
	device) want='virtio-(blk0|vsock|9p)' ;;
	vcpu) want='vcpu0' ;;
	service) want='vmm-service' ;;
	main) want='vmm' ;;
	esac
	[[ $last =~ " in thread "$want$ ]] || fail "$kind: wrong thread in '$last'"
done

# ---- log lets it through; off filters nothing ----
rc=0; VMM_TEST_SECCOMP_VIOLATE=device run_vmm "$T/log" --kernel "$K" \
	--cmdline "vmmtest.run=hello" --seccomp log "${DEVS[@]}" || rc=$?
expect_status $rc 0 "$T/log"
expect_not_in "$T/log" "forbidden syscall"
rc=0; VMM_SECCOMP=log VMM_TEST_SECCOMP_VIOLATE=vcpu run_vmm "$T/log2" \
	--kernel "$K" --cmdline "vmmtest.run=hello" || rc=$?
expect_status $rc 0 "$T/log2"
rc=0; VMM_TEST_SECCOMP_VIOLATE=device run_vmm "$T/off" --kernel "$K" \
	--cmdline "vmmtest.run=hello" --seccomp off "${DEVS[@]}" || rc=$?
expect_status $rc 0 "$T/off"

# ---- real work under the filters (the default: on; log in sanitizer
# builds, whose leak scan at exit no filter allows): both I/O engines ----
for engine in io_uring sync; do
	rc=0; VMM_IO_ENGINE=$engine run_vmm "$T/blk-$engine" --kernel "$K" \
		--cmdline "vmmtest.run=blktest" "${DEVS[@]}" || rc=$?
	expect_status $rc 0 "$T/blk-$engine"
	expect_not_in "$T/blk-$engine" "seccomp"
done
echo "seccomp: filters on every thread, the forbidden-call line, log and off"
