# devices/module.mk - every devices/*.c goes into the VMM library (main.c into the binary)
devices_SRCS := $(filter-out vmm/main.c,$(wildcard devices/*.c))
LIB_OBJS += $(patsubst %.c,$(BUILD)/obj/%.o,$(devices_SRCS))
