# vmm/install.mk - libvmm.so / libvmm.a from every module's objects, and
# make install / uninstall; included after every module.mk (rule
# prerequisites are expanded when read: LIB_OBJS must be complete).
#   make install PREFIX=/usr/local DESTDIR=   (the defaults)

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

PREFIX ?= /usr/local
DESTDIR ?=
# what a rig needs besides the library: the test kernel and the host tools
VMM_SHARE_TOOLS := blkio vmm-agent vsock-peer netio

# $(call vmm_install,ROOT): install everything under ROOT (DESTDIR+PREFIX)
define vmm_install
	install -d $(1)/bin $(1)/lib/pkgconfig $(1)/include \
		$(1)/share/man/man1 $(1)/share/vmm/tools
	install -m 755 $(VMM_BIN) $(1)/bin/vmm
	install -m 755 $(LIBVMM_SO) $(1)/lib/
	ln -sf $(notdir $(LIBVMM_SO)) $(1)/lib/$(LIBVMM_SONAME)
	ln -sf $(LIBVMM_SONAME) $(1)/lib/libvmm.so
	install -m 644 $(LIBVMM_A) $(1)/lib/libvmm.a
	install -m 644 vmm/vmm.h $(1)/include/vmm.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VMM_VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(HOST_LIBS)|' vmm/vmm.pc.in \
	    >$(1)/lib/pkgconfig/vmm.pc
	install -m 644 docs/vmm.1 $(1)/share/man/man1/vmm.1
	install -m 644 $(TK_BIN) $(TK_BIN64) $(1)/share/vmm/
	for t in $(VMM_SHARE_TOOLS); do \
		install -m 755 $(BUILD)/tools/$$t $(1)/share/vmm/tools/ || exit 1; done
endef

VMM_INSTALL_FILES = $(VMM_BIN) $(LIBVMM_SO) $(LIBVMM_A) vmm/vmm.h \
	vmm/vmm.pc.in docs/vmm.1 $(TK_BIN) $(TK_BIN64) \
	$(VMM_SHARE_TOOLS:%=$(BUILD)/tools/%)

.PHONY: install uninstall
install: $(VMM_INSTALL_FILES)
	$(call vmm_install,$(DESTDIR)$(PREFIX))

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/vmm \
	      $(DESTDIR)$(PREFIX)/lib/libvmm.so.* $(DESTDIR)$(PREFIX)/lib/libvmm.so \
	      $(DESTDIR)$(PREFIX)/lib/libvmm.a $(DESTDIR)$(PREFIX)/include/vmm.h \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/vmm.pc \
	      $(DESTDIR)$(PREFIX)/share/man/man1/vmm.1 \
	      $(DESTDIR)$(PREFIX)/share/vmm/testkernel \
	      $(DESTDIR)$(PREFIX)/share/vmm/testkernel-64
	rm -f $(VMM_SHARE_TOOLS:%=$(DESTDIR)$(PREFIX)/share/vmm/tools/%)
	-rmdir $(DESTDIR)$(PREFIX)/share/vmm/tools $(DESTDIR)$(PREFIX)/share/vmm 2>/dev/null

# A copy installed inside the build tree, for the tests that build against
# the installed library (tests/lib): $(BUILD)/dest/usr/local.
VMM_TEST_ROOT := $(BUILD)/dest/usr/local
$(BUILD)/dest/.installed: $(VMM_INSTALL_FILES)
	rm -rf $(BUILD)/dest
	$(call vmm_install,$(VMM_TEST_ROOT))
	touch $@

# Objects built before they were position independent (-fPIC, for
# libvmm.so) are rebuilt once: a build tree without this stamp has them.
$(LIB_OBJS) $(VMM_OBJS): $(BUILD)/obj/.fpic
$(BUILD)/obj/.fpic:
	@mkdir -p $(dir $@)
	rm -f $(LIB_OBJS) $(VMM_OBJS)
	touch $@
