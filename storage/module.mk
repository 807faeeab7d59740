# storage/module.mk - every storage/*.c goes into the VMM library (main.c into the binary)
storage_SRCS := $(filter-out vmm/main.c,$(wildcard storage/*.c))
LIB_OBJS += $(patsubst %.c,$(BUILD)/obj/%.o,$(storage_SRCS))
