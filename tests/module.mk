# tests/module.mk - Check unit tests: tests/unit/test_NAME.c becomes
# $(BUILD)/tests/unit/test_NAME, linked with the VMM library archive.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
ALL_TARGETS += $(UNIT_TESTS)

$(BUILD)/tests/unit/test_%: $(BUILD)/tests/unit/test_%.o $(LIBVMM)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -o $@ $^ $(LIBCHECK) $(HOST_LIBS)
