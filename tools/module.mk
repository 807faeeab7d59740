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

# vmm-agent: the host's client of the guest agent over vsock (no libvmm)
TOOLS += $(BUILD)/tools/vmm-agent
ALL_TARGETS += $(BUILD)/tools/vmm-agent
$(BUILD)/tools/vmm-agent: $(BUILD)/tools/vmm-agent.o $(BUILD)/obj/vmm/fd_write.o
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -o $@ $^

# vsock-peer: the host end of the vsock tests and benchmark
TOOLS += $(BUILD)/tools/vsock-peer
ALL_TARGETS += $(BUILD)/tools/vsock-peer
$(BUILD)/tools/vsock-peer: $(BUILD)/tools/vsock-peer.o $(BUILD)/obj/vmm/fd_write.o
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -o $@ $^


# blkreplay: power-loss images from a VMM_IO_RECORD log (tests)
TOOLS += $(BUILD)/tools/blkreplay
ALL_TARGETS += $(BUILD)/tools/blkreplay

$(BUILD)/tools/blkreplay: $(BUILD)/tools/blkreplay.o $(LIBVMM)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -o $@ $^ $(HOST_LIBS)
