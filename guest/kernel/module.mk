# guest/kernel/module.mk - the freestanding test kernel, always built into
# build/guest/ (never sanitized, whatever SANITIZE says).
TK_DIR   := build/guest/kernel
TK_BIN   := build/guest/testkernel
TK_SRCS  := $(wildcard guest/kernel/*.c)
TK_ASMS  := $(wildcard guest/kernel/*.S)
TK_OBJS  := $(TK_SRCS:guest/kernel/%.c=$(TK_DIR)/%.o) \
	    $(TK_ASMS:guest/kernel/%.S=$(TK_DIR)/%.o)
TK_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -I. -MMD -MP \
	-ffreestanding -fno-pic -fno-pie -fno-stack-protector -fno-builtin \
	-mno-red-zone -mno-sse -mno-sse2 -mno-mmx -mno-avx -mno-80387 \
	-mgeneral-regs-only -mcmodel=small -fno-asynchronous-unwind-tables \
	-fcf-protection=none
# the same kernel without its PVH note: vmm enters it at the 64-bit entry
# (vmm prefers PVH when the note is there), so tests reach both entries
TK_BIN64 := build/guest/testkernel-64
ALL_TARGETS += $(TK_BIN) $(TK_BIN64)

$(TK_BIN64): $(TK_BIN)
	objcopy -R .note.pvh $< $@

$(TK_BIN): $(TK_OBJS) guest/kernel/kernel.ld
	@mkdir -p $(dir $@)
	$(CC) -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack \
		-Wl,--no-warn-rwx-segments -T guest/kernel/kernel.ld -o $@ $(TK_OBJS)

$(TK_DIR)/%.o: guest/kernel/%.c guest/kernel/module.mk
	@mkdir -p $(dir $@)
	$(CC) $(TK_CFLAGS) -c -o $@ $<

$(TK_DIR)/%.o: guest/kernel/%.S guest/kernel/module.mk
	@mkdir -p $(dir $@)
	$(CC) $(TK_CFLAGS) -c -o $@ $<

-include $(TK_OBJS:.o=.d)
