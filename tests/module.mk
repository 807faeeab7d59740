# tests/module.mk - Check unit tests: tests/unit/test_NAME.c becomes
# $(BUILD)/tests/unit/test_NAME, linked with the VMM library archive.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
ALL_TARGETS += $(UNIT_TESTS)

$(BUILD)/tests/unit/test_%: $(BUILD)/tests/unit/test_%.o $(LIBVMM)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_LDFLAGS) -o $@ $^ $(LIBCHECK) $(HOST_LIBS)

# make powerloss-long: the power-loss replay with more rounds, larger writes
# and more mixes per barrier (tests/integration/storage-powerloss.sh with
# POWERLOSS_LONG=1; about 10-30 min); results go in docs/DURABILITY.md
.PHONY: powerloss-long
powerloss-long: all
	@t=$$(mktemp -d); TEST_TMP=$$t BUILD=$(CURDIR)/$(BUILD) POWERLOSS_LONG=1 \
		timeout 3600 bash tests/integration/storage-powerloss.sh; rc=$$?; \
		rm -rf $$t; exit $$rc
include tests/fuzz/fuzz.mk

# make sqlite-long: the SQLite crash test with 200 SIGKILLs of vmm
# (tests/integration/sqlite-crash.sh via sqlite-crash-long.sh; 1-2 hours
# with /dev/kvm); results go in docs/DURABILITY.md
.PHONY: sqlite-long
sqlite-long: all sqlite-image
	@t=$$(mktemp -d); TEST_TMP=$$t BUILD=$(CURDIR)/$(BUILD) SQLITE_LONG=1 \
		timeout 14400 bash tests/integration/sqlite-crash-long.sh; rc=$$?; \
		rm -rf $$t; exit $$rc
