# guest/kernel/module.mk
