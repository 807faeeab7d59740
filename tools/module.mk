# tools/module.mk - host tools, linked with the VMM library
TOOLS += $(BUILD)/tools/blkio
ALL_TARGETS += $(BUILD)/tools/blkio

$(BUILD)/tools/blkio: $(BUILD)/tools/blkio.o $(LIBVMM)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -o $@ $^ $(HOST_LIBS)

# blkreplay: power-loss images from a VMM_IO_RECORD log (tests)
TOOLS += $(BUILD)/tools/blkreplay
ALL_TARGETS += $(BUILD)/tools/blkreplay

$(BUILD)/tools/blkreplay: $(BUILD)/tools/blkreplay.o $(LIBVMM)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -o $@ $^ $(HOST_LIBS)
