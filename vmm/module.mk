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

$(BUILD)/lib/libvmm.map: vmm/libvmm.syms
	@mkdir -p $(dir $@)
	{ echo 'VMM_0 {'; echo '  global:'; sed 's/.*/    &;/' $<; \
	  echo '  local: *;'; echo '};'; } >$@

$(LIBVMM_SO): $(LIB_OBJS) $(BUILD)/lib/libvmm.map
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -shared -Wl,-soname,$(LIBVMM_SONAME) \
		-Wl,--version-script=$(BUILD)/lib/libvmm.map -Wl,-z,defs \
		-o $@ $(LIB_OBJS) $(HOST_LIBS)
	ln -sf $(notdir $@) $(BUILD)/lib/$(LIBVMM_SONAME)
	ln -sf $(LIBVMM_SONAME) $(BUILD)/lib/libvmm.so

$(LIBVMM_A): $(LIB_OBJS) vmm/libvmm.syms
	@mkdir -p $(dir $@)
	$(LD) -r -o $(BUILD)/lib/libvmm-all.o $(LIB_OBJS)
	objcopy --keep-global-symbols=vmm/libvmm.syms $(BUILD)/lib/libvmm-all.o \
		$(BUILD)/lib/libvmm.o
	rm -f $@ $(BUILD)/lib/libvmm-all.o
	ar rcs $@ $(BUILD)/lib/libvmm.o
