#!/bin/bash
# timeout: 300
# make install / uninstall into a DESTDIR: the files the issue lists, a
# shared library with a soname exporting only vmm.h's functions, an
# archive with only those global, pkg-config, the man page covering every
# option, vmm --version; uninstall leaves nothing behind.
. "$(dirname "$0")/lib.sh"
D=$TEST_TMP/root
P=/opt/vmmtest
cd "$TOP"
make -s install DESTDIR="$D" PREFIX=$P SANITIZE="${SANITIZE:-0}" \
	>"$TEST_TMP/make.out" 2>&1 || { cat "$TEST_TMP/make.out"; fail "make install"; }
R=$D$P
for f in bin/vmm lib/libvmm.so lib/libvmm.a include/vmm.h lib/pkgconfig/vmm.pc \
	 share/man/man1/vmm.1 share/vmm/testkernel share/vmm/tools/blkio; do
	[ -e "$R/$f" ] || fail "not installed: $f"
done
readelf -d "$R/lib/libvmm.so" | grep -q 'SONAME.*\[libvmm\.so\.0\]' || fail "no soname libvmm.so.0"
# exported: exactly the functions vmm.h declares
api=$(sed -n 's/^[a-z].*[ *]\(vmm_[a-z_]*\)(.*/\1/p' "$R/include/vmm.h" | sort -u)
dyn=$(nm -D --defined-only "$R/lib/libvmm.so" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u)
[ "$api" = "$dyn" ] || fail "exports differ from vmm.h: $(diff <(echo "$api") <(echo "$dyn"))"
sta=$(nm -g --defined-only "$R/lib/libvmm.a" | awk 'NF == 3 {print $3}' | sort -u)
[ "$api" = "$sta" ] || fail "archive globals differ from vmm.h: $(diff <(echo "$api") <(echo "$sta"))"
# pkg-config, as a rig would call it
pc() { PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR=$D PKG_CONFIG_LIBDIR=$R/lib/pkgconfig pkg-config "$@"; }
[ "$(pc --modversion vmm)" = "$("$R/bin/vmm" --version | cut -d' ' -f2)" ] || fail "versions differ"
pc --cflags vmm | grep -q -- "-I$R/include" || fail "cflags: $(pc --cflags vmm)"
pc --libs vmm | grep -q -- "-L$R/lib -lvmm" || fail "libs: $(pc --libs vmm)"
pc --static --libs vmm | grep -q -- "-luring" || fail "static libs: $(pc --static --libs vmm)"
[ "$(pc --variable=testkernel vmm)" = "$R/share/vmm/testkernel" ] || fail "testkernel variable"
"$R/bin/vmm" --version | grep -Eq '^vmm [0-9]+\.[0-9]+\.[0-9]+$' || fail "vmm --version"
# the man page names every option of --help
for o in $("$R/bin/vmm" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
	grep -q -- "$(echo "$o" | sed 's/-/\\\\-/g')" "$R/share/man/man1/vmm.1" ||
		fail "vmm.1 does not document $o"
done
man -l "$R/share/man/man1/vmm.1" >/dev/null 2>&1 || command -v man >/dev/null ||
	echo "(no man(1) here to render vmm.1)"
make -s uninstall DESTDIR="$D" PREFIX=$P SANITIZE="${SANITIZE:-0}" >/dev/null 2>&1 ||
	fail "make uninstall"
left=$(find "$D" -type f -o -type l)
[ -z "$left" ] || fail "left after uninstall: $left"
echo "install layout ok"
