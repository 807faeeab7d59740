# vmm/module.mk - every vmm/*.c goes into the VMM library (main.c into the binary)
vmm_SRCS := $(filter-out vmm/main.c,$(wildcard vmm/*.c))
LIB_OBJS += $(patsubst %.c,$(BUILD)/%.o,$(vmm_SRCS))
VMM_OBJS += $(BUILD)/vmm/main.o
