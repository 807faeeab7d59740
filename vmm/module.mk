# vmm/module.mk - every vmm/*.c goes into the VMM library (main.c into the binary)
vmm_SRCS := $(filter-out vmm/main.c,$(wildcard vmm/*.c))
LIB_OBJS += $(patsubst %.c,$(BUILD)/obj/%.o,$(vmm_SRCS))
VMM_OBJS += $(BUILD)/obj/vmm/main.o
