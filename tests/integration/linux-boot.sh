#!/bin/bash
# Linux boots to the agent (PVH vmlinux + our uncompressed initramfs) and the
# agent's status leaves through the exit port: with no job at all, or a job
# disk named on the command line that the VM lacks, it prints a clear result
# line and the VMM exits 2.  On a PVM host the VMM appends the
# pvm_quirks options and the patched kernel takes them.
# timeout: 780
. "$(dirname "$0")/lib.sh"
. "$TOP/tools/linux-plan"
linux_prepare

# two guests at once: no job at all, and a job disk named but absent
LINUX_SH=0 LINUX_CMDLINE="$LINUX_CMDLINE agent.jobdisk=absent-disk" \
	linux_start nodisk 300 -
pid=$LINUX_PID
rc=0
LINUX_SH=0 linux_boot nojob 300 - || rc=$?
rc2=0
wait "$pid" || rc2=$?
grep -a -q '^{"step":0,"op":"job","ok":false,"error":"no job disk with serial '"'absent-disk'"'"}' \
	"$TEST_TMP/nodisk.out" || { linux_show nodisk; fail "no clear line for a missing job disk"; }
linux_summary nodisk 2
linux_status nodisk "$rc2" 2

out=$TEST_TMP/nojob.out
expect_in "$out" 'Linux version 6\.1\.' "no kernel banner"
grep -a -q '^{"step":0,"op":"job","ok":false,"error":"no job: ' "$out" || {
	linux_show nojob; fail "no 'no job' result line"; }
linux_summary nojob 2
linux_status nojob "$rc" 2

if [ -e /sys/module/kvm_pvm ]; then
	expect_in "$out" 'PVM host: appending .*pvm_quirks' "the VMM did not announce the PVM options"
	expect_in "$out" 'pvm_quirks: working around a PVM host' "the kernel did not take pvm_quirks"
else
	expect_not_in "$out" 'pvm_quirks' "pvm_quirks given on a non-PVM host"
fi
echo "Linux booted to the agent; no job / missing job disk -> status 2"
