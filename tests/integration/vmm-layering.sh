#!/bin/bash
# The layering rules of docs/CONTRIBUTING.md, checked on the sources:
# no two files include each other (directly or in a circle); the VMM core
# (KVM, memory, vCPUs, boot, event loop) includes nothing from devices/ or
# storage/; vmm/options.h no device header; main.c and options.c name no
# device; storage/ knows nothing of virtio; devices use only vmm/vm.h,
# vmm/event_loop.h and vmm/limits.h from the core.  Needs no KVM.
# timeout: 60
. "$(dirname "$0")/lib.sh"
cd "$TOP" || fail "no source tree at $TOP"

files=$(ls vmm/*.[ch] devices/*.[ch] storage/*.[ch])
declare -A deps
for f in $files; do
	deps[$f]=$(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f" | tr '\n' ' ')
done

# include cycles: depth-first search, colouring files grey while on the path
declare -A colour
cycle=""
visit() {
	local f=$1 d
	colour[$f]=grey
	for d in ${deps[$f]:-}; do
		[ -f "$d" ] || continue
		case "${colour[$d]:-white}" in
		grey) cycle="$cycle $f -> $d;" ;;
		white) visit "$d" ;;
		esac
	done
	colour[$f]=black
}
for f in $files; do
	[ "${colour[$f]:-white}" = white ] && visit "$f"
done
[ -z "$cycle" ] || fail "include cycle:$cycle"

# the core includes nothing from devices/ or storage/
for f in vmm/kvm.c vmm/vcpu.[ch] vmm/boot.[ch] vmm/mptable.c vmm/event_loop.[ch] \
	 vmm/vm.h vmm/vm_private.h vmm/limits.h vmm/log.c vmm/errf.c \
	 vmm/console_watch.[ch]; do
	[ -f "$f" ] || fail "core file $f is gone: update this test"
	if grep -n '#include "\(devices\|storage\)/' "$f"; then
		fail "$f (VMM core) includes devices/ or storage/"
	fi
done
! grep -n '#include "devices/' vmm/options.h || fail "vmm/options.h includes a device header"
# main.c and options.c loop over the device table; they name no device
for f in vmm/main.c vmm/options.c vmm/options.h; do
	if grep -nwiE 'virtio_blk|virtio[-_]net|vsock|virtio_9p|"disk"|"net"|"fs"' "$f"; then
		fail "$f names a device"
	fi
done
# storage/ knows nothing of virtio
! grep -n '#include ".*virtio\|#include <linux/virtio' storage/*.[ch] || fail "storage/ includes virtio"
# devices use only vm.h, event_loop.h and limits.h from the core
for f in devices/*.[ch]; do
	for d in ${deps[$f]:-}; do
		case "$d" in
		vmm/vm.h|vmm/event_loop.h|vmm/limits.h|devices/*|storage/*|guest/common/*) ;;
		*) fail "$f includes $d (devices use vmm/vm.h, vmm/event_loop.h, vmm/limits.h)" ;;
		esac
	done
done
echo ok
