# guest/sqlite/module.mk - the SQLite guest image (guest/sqlite/mkimage):
# Debian's sqlite3 and its libraries in an ext4 image for the Linux test
# guest (tests/integration/sqlite-crash.sh).  Built on demand, not by `all`:
#   make sqlite-image   build/guest/sqlite/sqlite.img
SQLITE_IMG := build/guest/sqlite/sqlite.img
SQLITE3    ?= /usr/bin/sqlite3

.PHONY: sqlite-image
sqlite-image: $(SQLITE_IMG)

$(SQLITE_IMG): guest/sqlite/mkimage $(SQLITE3)
	guest/sqlite/mkimage $(SQLITE3) $@
