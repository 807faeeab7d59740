#!/bin/bash
# --restore refuses bad snapshots before it opens /dev/kvm: truncated,
# corrupt (checksum), wrong version, wrong machine, a memory file of the
# wrong size, a config (memory, vCPUs, devices) that differs: one line on
# stderr and status 65, never a guest started.  The snapshots are crafted
# here (docs/snapshot.md is the format), so this runs without KVM too.
# timeout: 60
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "no python3"

# craft DIR [key=value...]: a snapshot of a 32 MiB 1-vCPU VM; keys change it
craft() {
	python3 - "$@" <<'PY'
import os, struct, sys, zlib
d = sys.argv[1]
o = dict(a.split("=", 1) for a in sys.argv[2:])
mem = int(o.get("mem", 32 << 20))
def section(name, data):
    pad = (8 - len(data) % 8) % 8
    return struct.pack("<24sII", name.encode(), len(data), 0) + data + b"\0" * pad
devs = [x.split(":") for x in o.get("devs", "").split(",") if x]
machine = struct.pack("<16s16sQIIII", o.get("arch", "x86_64").encode(), b"0.1.0",
                      mem, 1, 4096, len(devs), 0)
for opt, n in devs:
    machine += struct.pack("<16sII", opt.encode(), int(n), 0)
payload = section("machine", machine) + section("vm", b"\0" * 64) + \
          section("vcpu0", b"\0" * 64)
if "corrupt" in o:
    payload = payload[:100] + b"\xff" + payload[101:]
    crc = zlib.crc32(payload[:100] + b"\0" + payload[101:]) & 0xffffffff
else:
    crc = zlib.crc32(payload) & 0xffffffff
hdr = struct.pack("<8sIIQI", b"VMMSNAP\0", int(o.get("version", 1)), 32,
                  len(payload), crc)
hdr += struct.pack("<I", zlib.crc32(hdr) & 0xffffffff)
data = hdr + payload
if "truncate" in o:
    data = data[:-int(o["truncate"])]
os.makedirs(d, exist_ok=True)
open(os.path.join(d, "state"), "wb").write(data)
with open(os.path.join(d, "memory"), "wb") as f:
    f.truncate(int(o.get("memfile", mem)))
PY
}

n=0
# bad DESC REGEX VMM-ARGS...: status 65, one line naming the problem
bad() {
	local desc=$1 re=$2 out=$TEST_TMP/bad$n.log
	shift 2
	n=$((n + 1))
	"$VMM" --timeout 20 "$@" >"$out" 2>&1 </dev/null
	expect_status $? 65 "$out"
	expect_in "$out" "$re" "$desc: no clear error"
	[ "$(wc -l <"$out")" = 1 ] || { cat "$out"; fail "$desc: more than one line"; }
}

s=$TEST_TMP/snap
craft "$s" truncate=10
bad "truncated" "truncated" --restore "$s"
craft "$s" truncate=100
bad "truncated into the header" "truncated|not a vmm snapshot" --restore "$s"
craft "$s" corrupt=1
bad "corrupt" "checksum mismatch" --restore "$s"
craft "$s" version=7
bad "wrong version" "format version 7, this vmm reads version 1" --restore "$s"
craft "$s" arch=aarch64
bad "wrong machine" "taken on a aarch64 machine" --restore "$s"
craft "$s" memfile=$((16 << 20))
bad "memory file too small" "memory: 16777216 bytes, the snapshot's RAM is 33554432" --restore "$s"
craft "$s" memfile=$((64 << 20))
bad "memory file too big" "the snapshot's RAM is 33554432" --restore "$s"
rm -f "$s/memory"
bad "memory file missing" "memory: No such file" --restore "$s"
craft "$s"
bad "other memory size" "--memory is 64 MiB, the snapshot's 32 MiB" --restore "$s" --memory 64M
bad "other vCPU count" "--cpus is 2, the snapshot has 1" --restore "$s" --cpus 2
img=$TEST_TMP/disk.img
head -c 1M /dev/zero >"$img"
bad "a disk the snapshot lacks" "--disk given, the snapshot has no such device" \
	--restore "$s" --disk "path=$img,format=raw"
craft "$s" devs=disk:1
bad "no disk where the snapshot has one" "the snapshot has 1 --disk, not given" --restore "$s"
bad "two disks where the snapshot has one" "2 --disk given where the snapshot has 1 --disk" \
	--restore "$s" --disk "path=$img,format=raw" --disk "path=$img,format=raw,readonly=on"
bad "no snapshot at all" "state: No such file" --restore "$TEST_TMP/nothing"

# usage: no kernel with --restore
out=$TEST_TMP/usage.log
"$VMM" --restore "$s" --kernel "$TESTKERNEL" >"$out" 2>&1 </dev/null
expect_status $? 64 "$out"
expect_in "$out" "--kernel, --initramfs and --cmdline do not go with it"

# a well-formed one passes every check before KVM: without KVM it stops
# at /dev/kvm (69); with KVM at the crafted, empty vCPU state (65)
craft "$s"
out=$TEST_TMP/good.log
"$VMM" --timeout 20 --restore "$s" >"$out" 2>&1 </dev/null
rc=$?
if [ -w /dev/kvm ]; then
	expect_status $rc 65 "$out"
	expect_in "$out" "vCPU 0: malformed state"
else
	expect_status $rc 69 "$out"
	expect_in "$out" "/dev/kvm"
fi
echo ok
