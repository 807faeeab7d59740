# tools/module.mk
