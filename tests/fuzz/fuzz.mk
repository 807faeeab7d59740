# tests/fuzz/fuzz.mk - libFuzzer targets for every guest-facing parser
# (docs/FUZZING.md).  Built with Debian's clang: the device and storage code
# is compiled a second time with coverage instrumentation and ASan+UBSan
# into build/fuzz, whatever SANITIZE says.
#
#   make fuzz-build        build build/fuzz/NAME_fuzz for every target
#   make fuzz              build, then run each for FUZZ_SECONDS (20) seconds
#   make fuzz-long FUZZ_SECONDS=N   the same, longer, corpora kept in
#                          build/fuzz/work/NAME (see docs/FUZZING.md)
#
# The targets drive the device code directly (no /dev/kvm, no threads):
# tests/fuzz/fuzz_harness.c stands in for struct vm and the event loop.
FUZZ_CC      ?= clang
FUZZ_BUILD   := build/fuzz
FUZZ_SECONDS ?= 20
FUZZ_SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=gnu11 $(WARN) -O1 -g $(FUZZ_SANFLAGS) \
	-fsanitize=fuzzer-no-link -D_GNU_SOURCE -I. -MMD -MP \
	$(if $(LIBZSTD),-DHAVE_ZSTD=1)
# virtq_* wrapped: the harness checks every chain a device pops and pushes
FUZZ_WRAP    := -Wl,--wrap=virtq_pop,--wrap=virtq_push,--wrap=virtq_init \
	-Wl,--wrap=virtq_unpop,--wrap=virtio_dev_create,--wrap=virtq_enable_notify
FUZZ_LDFLAGS := $(FUZZ_SANFLAGS) -fsanitize=fuzzer $(FUZZ_WRAP)

# name: source (the corpus is tests/fuzz/corpus/NAME)
FUZZ_TARGETS := virtqueue virtio_blk virtio_mmio virtio_net virtio_vsock \
	qcow2 p9
FUZZ_SRC_virtqueue    := tests/fuzz/virtqueue_fuzz.c
FUZZ_SRC_virtio_blk   := tests/fuzz/virtio_blk_fuzz.c
FUZZ_SRC_virtio_mmio  := tests/fuzz/virtio_mmio_fuzz.c
FUZZ_SRC_virtio_net   := tests/fuzz/virtio_net_fuzz.c
FUZZ_SRC_virtio_vsock := tests/fuzz/virtio_vsock_fuzz.c
FUZZ_SRC_qcow2        := tests/fuzz/qcow2_open_fuzz.c
FUZZ_SRC_p9           := tests/fuzz/p9_server_fuzz.c
# the fake TAP (a socket pair) behind open("/dev/net/tun") and its ioctls
FUZZ_LDEXTRA_virtio_net := -Wl,--wrap=open,--wrap=ioctl
# only the targets whose source exists (they land one by one)
FUZZ_TARGETS := $(foreach t,$(FUZZ_TARGETS),$(if $(wildcard $(FUZZ_SRC_$(t))),$(t)))

FUZZ_LIB_SRCS := $(wildcard devices/*.c) $(wildcard storage/*.c) vmm/errf.c \
	vmm/snap_buf.c vmm/fd_write.c
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_LIB      := $(FUZZ_BUILD)/libfuzzdev.a
FUZZ_HARNESS  := $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_harness.o
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%_fuzz)

.PHONY: fuzz-build fuzz fuzz-long
fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

define FUZZ_TARGET_RULE
$(FUZZ_BUILD)/$(1)_fuzz: $(FUZZ_BUILD)/obj/$(FUZZ_SRC_$(1):.c=.o) $(FUZZ_HARNESS) $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) $(FUZZ_LDEXTRA_$(1)) -o $$@ $$^ $(HOST_LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_TARGET_RULE,$(t))))

fuzz: deps
	$(MAKE) fuzz-build
	tests/fuzz/run-fuzz --build $(FUZZ_BUILD) --seconds $(FUZZ_SECONDS)

fuzz-long: deps
	$(MAKE) fuzz-build
	tests/fuzz/run-fuzz --build $(FUZZ_BUILD) --seconds $(FUZZ_SECONDS) --keep

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
