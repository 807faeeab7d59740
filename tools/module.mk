# tools/module.mk - host tools, linked with the VMM library
TOOLS += $(BUILD)/tools/blkio
ALL_TARGETS += $(BUILD)/tools/blkio

$(BUILD)/tools/blkio: $(BUILD)/tools/blkio.o $(LIBVMM)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -o $@ $^ $(HOST_LIBS)
TOOLS += $(BUILD)/tools/netio
ALL_TARGETS += $(BUILD)/tools/netio

$(BUILD)/tools/netio: $(BUILD)/tools/netio.o
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -o $@ $^ -lpthread
