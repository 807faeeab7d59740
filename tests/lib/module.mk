# tests/lib/module.mk - programs built against the INSTALLED library, the
# way a rig builds them: make install into $(BUILD)/dest (vmm/install.mk),
# then pkg-config with that tree as its sysroot.
#   $(BUILD)/tests/lib/embed         8 VMs in one process (dynamic libvmm.so)
#   $(BUILD)/tests/lib/embed-static  the same with libvmm.a linked in
#   $(BUILD)/tests/lib/misuse        wrong and unlucky uses of the API
LIBTEST_DIR := $(BUILD)/tests/lib
LIBTEST_BINS := $(LIBTEST_DIR)/embed $(LIBTEST_DIR)/embed-static $(LIBTEST_DIR)/misuse
ALL_TARGETS += $(LIBTEST_BINS)

LIBTEST_SYSROOT = $(abspath $(BUILD)/dest)
LIBTEST_PC = PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR=$(LIBTEST_SYSROOT) \
	PKG_CONFIG_LIBDIR=$(LIBTEST_SYSROOT)/usr/local/lib/pkgconfig pkg-config
# a rig's own flags: nothing from this tree's HOST_CFLAGS but the sanitizer
LIBTEST_CFLAGS = -std=gnu11 $(WARN) -O2 -g $(SANFLAGS)
# fully static where the sanitizer allows (ASan and TSan cannot be)
LIBTEST_STATIC = $(if $(filter 1 tsan,$(SANITIZE)),-Wl$(comma)-Bstatic -lvmm \
	-Wl$(comma)-Bdynamic $$($(LIBTEST_PC) --static --libs-only-other vmm) \
	$$($(LIBTEST_PC) --libs-only-L vmm) \
	$$($(LIBTEST_PC) --static --libs vmm | sed 's/-lvmm//'),-static \
	$$($(LIBTEST_PC) --static --libs vmm))
comma := ,

$(LIBTEST_DIR)/%: tests/lib/%.c $(BUILD)/dest/.installed
	@mkdir -p $(dir $@)
	$(CC) $(LIBTEST_CFLAGS) -o $@ $< $$($(LIBTEST_PC) --cflags --libs vmm) \
		-pthread -Wl,-rpath,$(LIBTEST_SYSROOT)/usr/local/lib

$(LIBTEST_DIR)/embed-static: tests/lib/embed.c $(BUILD)/dest/.installed
	@mkdir -p $(dir $@)
	$(CC) $(LIBTEST_CFLAGS) -o $@ $< $$($(LIBTEST_PC) --cflags vmm) \
		$(LIBTEST_STATIC) -pthread
