# vmm - top-level build.  Each area adds its own rules in a module.mk so
# several people can work without editing this file:
#   vmm/module.mk devices/module.mk storage/module.mk guest/*/module.mk
#   tools/module.mk tests/module.mk
#
#   make            build build/vmm, the test kernel and the host tools
#   make run        install missing build deps (as root), build, boot the test kernel
#   make check      install missing deps, build, run unit + integration tests
#   make check SANITIZE=1   the same with ASan+UBSan (objects in build/san)
#   make check TSAN=1       the same with ThreadSanitizer (objects in build/tsan)
#   make bench      benchmarks, each figure beside a host baseline

CC      ?= gcc
SANITIZE ?= 0
# TSAN=1 is spelled SANITIZE=tsan inside (tests and sub-makes pass that on)
TSAN ?= 0
ifeq ($(TSAN),1)
override SANITIZE := tsan
endif
ifeq ($(SANITIZE),1)
BUILD   := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(SANITIZE),tsan)
BUILD   := build/tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
BUILD   := build
SANFLAGS :=
endif

WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
HOST_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -I. -MMD -MP
HOST_LDFLAGS := $(SANFLAGS)
LIBURING := $(shell pkg-config --libs liburing 2>/dev/null || echo -luring)
LIBCHECK := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)
LIBZ     := -lz
LIBZSTD  := $(shell pkg-config --exists libzstd 2>/dev/null && echo -lzstd)
ifneq ($(LIBZSTD),)
HOST_CFLAGS += -DHAVE_ZSTD=1
endif

# The VMM binary for this build flavour.  (The issue asked for ./vmm, but
# the top-level vmm/ source directory owns that name: the binary is build/vmm,
# next to build/guest/testkernel.)  Library objects live under $(BUILD)/obj.
VMM_BIN := $(BUILD)/vmm
LIBVMM  := $(BUILD)/libvmm.a
HOST_LIBS = $(LIBURING) $(LIBZ) $(LIBZSTD) -lpthread

# Object lists filled in by the module.mk files.
VMM_OBJS :=
LIB_OBJS :=
UNIT_TESTS :=
TOOLS :=
ALL_TARGETS :=

.PHONY: all run check unit integration bench deps clean FORCE
all:

include vmm/module.mk
include devices/module.mk
include storage/module.mk
include guest/kernel/module.mk
include guest/agent/module.mk
include guest/linux/module.mk
include guest/sqlite/module.mk
include tools/module.mk
include tests/module.mk
include tests/lib/module.mk
include vmm/install.mk

all: $(VMM_BIN) $(ALL_TARGETS)

$(VMM_BIN): $(VMM_OBJS) $(LIBVMM)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -o $@ $^ $(HOST_LIBS)

# Everything but main() goes into one archive, so tests and tools link only
# the objects they use.
$(LIBVMM): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -c -o $@ $<

deps:
	@tools/install-deps

run: deps
	$(MAKE) all
	build/vmm --kernel build/guest/testkernel --cpus boot=2 --timeout 30

# unit and integration results are summed into one closing line
check: deps
	$(MAKE) all
	$(MAKE) fuzz-build
	@tests/run-all --build $(BUILD) --vmm $(VMM_BIN) --sanitize $(SANITIZE)

bench: deps
	$(MAKE) all
	@tools/bench

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
