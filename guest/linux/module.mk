# guest/linux/module.mk
