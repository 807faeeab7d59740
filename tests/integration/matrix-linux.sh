#!/bin/bash
# One tiny Linux cell (run it under flock /tmp/vmm-linux-guest.lock by hand):
# linux-ext4-read, 64M of RAM, a 1M file, 2 iterations, all in one boot: the
# agent writes the file on ext4, then twice remounts it (cold cache) and
# reads it back; each iteration's figure comes from the agent's verify step.
# The first run on a machine may build the guest kernel (4-7 min).
# timeout: 900
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/integration/matrix/lib.sh"
T=$TEST_TMP
export TMPDIR=$T
if [ "$MX_STANDIN" = 1 ]; then
	kernel=$T/vmlinux initramfs=$T/initramfs.cpio
	touch "$kernel" "$initramfs"
else
	. "$TOP/tools/linux-plan"
	linux_prepare disks
	kernel=$LINUX_KERNEL initramfs=$LINUX_INITRAMFS_MIN
fi
"$MATRIX" run --vmm "$MX_VMM" --linux-kernel "$kernel" --initramfs "$initramfs" \
	--workload linux-ext4-read --memory 64M --size 1M --iterations 2 --timeout 300 \
	--out "$T/l" >"$T/out" 2>&1 || { cat "$T/out"; fail "the Linux cell failed"; }
cat "$T/out"
/usr/bin/python3 "$MX_DIR/check-run.py" "$T/l" linux-ext4-read 64M 1M 2 0 || fail "Linux cell results"
/usr/bin/python3 - "$T/l/cell-64M-1M.json" <<'PY' || fail "figures do not follow from the agent's times"
import json, sys
c = json.load(open(sys.argv[1]))
assert len(c["vm_seconds"]) == 1 and c["vm_seconds"][0] > 0, c  # one boot
for it in c["iterations"]:
    ms = it["detail"]["ms"]
    assert ms > 0 and it["detail"]["bytes"] == 1 << 20, it
    assert abs(it["figure"] - (1 << 20) / 1e6 / (ms / 1000)) < 1e-9, it
PY
mx_done
