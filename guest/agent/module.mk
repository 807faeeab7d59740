# guest/agent/module.mk
