# guest/agent/module.mk - the guest agent (a static /init for the Linux test
# guest), mkcpio (a cpio "newc" writer) and the initramfs built from them.
# Guest binaries are never sanitized and always go to build/guest/agent, in
# either build flavour.
#
#   make initramfs   build/guest/agent/initramfs.cpio (agent + busybox-static)
#                    and initramfs-min.cpio (the agent alone: no sh steps)

AGENT_DIR    := build/guest/agent
AGENT_BIN    := $(AGENT_DIR)/agent
AGENT_SRCS   := guest/agent/agent.c guest/agent/job.c guest/agent/steps.c \
		guest/agent/report.c
AGENT_SRCS   += guest/agent/vsock_server.c
AGENT_HDRS   := guest/agent/job.h guest/agent/steps.h guest/agent/report.h \
		guest/common/pattern.h guest/common/vmm_abi.h
AGENT_SRCS   += guest/agent/step_net.c
AGENT_HDRS   += guest/agent/step_net.h
AGENT_HDRS   += guest/agent/vsock_server.h
AGENT_SRCS   += guest/agent/step_plan.c
AGENT_HDRS   += guest/agent/step_plan.h
AGENT_CFLAGS := -std=gnu11 $(WARN) -O2 -g0 -D_GNU_SOURCE -I.
MKCPIO       := $(AGENT_DIR)/mkcpio
INITRAMFS    := $(AGENT_DIR)/initramfs.cpio
# the agent alone, for jobs without sh steps: busybox's 1.9 MB cost ~4 s of
# emulated unpacking per boot on a PVM host
INITRAMFS_MIN := $(AGENT_DIR)/initramfs-min.cpio
BUSYBOX      ?= /bin/busybox

ALL_TARGETS += $(AGENT_BIN) $(INITRAMFS) $(INITRAMFS_MIN)

.PHONY: agent initramfs
agent: $(AGENT_BIN)
initramfs: $(INITRAMFS) $(INITRAMFS_MIN)

# (linked to a temporary name and renamed: a test may be running the old one)
$(AGENT_BIN): $(AGENT_SRCS) $(AGENT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(AGENT_CFLAGS) -static -s -o $@.tmp $(AGENT_SRCS) && mv -f $@.tmp $@

$(MKCPIO): guest/agent/mkcpio.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -D_GNU_SOURCE -o $@.tmp $< && mv -f $@.tmp $@

# Uncompressed on purpose: on a PVM host the guest kernel's gunzip is
# emulated and costs ~15 s.  /dev/console must exist before /init runs.
INITRAMFS_BASE := 'dir /bin 0755' 'dir /dev 0755' 'dir /proc 0755' \
	'dir /sys 0755' 'dir /mnt 0755' 'dir /tmp 1777' \
	'nod /dev/console 0600 c 5 1' 'nod /dev/null 0666 c 1 3' \
	'file /init $(AGENT_BIN) 0755'

$(INITRAMFS): $(AGENT_BIN) $(MKCPIO) $(BUSYBOX) guest/agent/module.mk
	@test -x $(BUSYBOX) || { echo "initramfs: $(BUSYBOX) missing: apt-get install busybox-static" >&2; exit 1; }
	printf '%s\n' $(INITRAMFS_BASE) \
		'file /bin/busybox $(BUSYBOX) 0755' 'slink /bin/sh busybox' \
		| $(MKCPIO) $@.tmp && mv $@.tmp $@

$(INITRAMFS_MIN): $(AGENT_BIN) $(MKCPIO) guest/agent/module.mk
	printf '%s\n' $(INITRAMFS_BASE) | $(MKCPIO) $@.tmp && mv $@.tmp $@
