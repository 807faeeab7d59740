# vmm/module.mk - every vmm/*.c goes into the VMM library (main.c into the binary)
vmm_SRCS := $(filter-out vmm/main.c,$(wildcard vmm/*.c))
LIB_OBJS += $(patsubst %.c,$(BUILD)/obj/%.o,$(vmm_SRCS))
VMM_OBJS += $(BUILD)/obj/vmm/main.o

# ---- libvmm, the library as installed (vmm.h is its whole API) ----
# Objects are position independent so the same ones make libvmm.so.
HOST_CFLAGS += -fPIC
VMM_VERSION := $(shell sed -n 's/^\#define VMM_VERSION[ \t]*"\(.*\)"/\1/p' vmm/vmm.h)
VMM_SOMAJOR := $(firstword $(subst ., ,$(VMM_VERSION)))
LIBVMM_SONAME := libvmm.so.$(VMM_SOMAJOR)
LIBVMM_SO := $(BUILD)/lib/libvmm.so.$(VMM_VERSION)
# the installed archive: one relocatable object whose only global symbols
# are the API's (vmm/libvmm.syms), so nothing inside clashes with a program
LIBVMM_A := $(BUILD)/lib/libvmm.a
ALL_TARGETS += $(LIBVMM_SO) $(LIBVMM_A)
# (their rules are in vmm/install.mk: they need every module's objects)

# the seccomp sandbox (vmm/seccomp.c): libseccomp
HOST_LIBS += $(shell pkg-config --libs libseccomp 2>/dev/null || echo -lseccomp)
