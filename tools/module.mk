# tools/module.mk - host tools, linked with the VMM library
TOOLS += $(BUILD)/tools/blkio
ALL_TARGETS += $(BUILD)/tools/blkio

$(BUILD)/tools/blkio: $(BUILD)/tools/blkio.o $(LIBVMM)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -o $@ $^ $(HOST_LIBS)
