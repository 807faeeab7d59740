# guest/linux/module.mk - the Linux test guest kernel (not part of `all`: the
# first build takes minutes; later ones reuse the cached vmlinux).
#
#   make linux       build/guest/linux/vmlinux, a copy of the cached build
#                    ${VMM_CACHE:-/var/cache/vmm}/linux-<hash>/vmlinux
#
# guest/linux/build-kernel decides whether anything needs building, so the
# rule always runs it (cheap when cached).

LINUX_VMLINUX := build/guest/linux/vmlinux

.PHONY: linux
linux: $(LINUX_VMLINUX)

$(LINUX_VMLINUX): FORCE
	@guest/linux/build-kernel $@ >/dev/null
