#!/bin/bash
# timeout: 30
# Bad options and bad images: one clear line and a non-zero exit, never a
# crash or a partial run.
. "$(dirname "$0")/lib.sh"
BLKIO=$BUILD/tools/blkio
[ -x "$BLKIO" ] || fail "$BLKIO not built"
img=$TEST_TMP/disk.img
truncate -s 1M "$img"
out=$TEST_TMP/out

# bad STATUS REGEX ARGS...: blkio exits STATUS with one line matching REGEX
bad() {
	local want=$1 re=$2; shift 2
	"$BLKIO" "$@" >"$out" 2>&1
	local rc=$?
	[ $rc = "$want" ] || { cat "$out"; fail "blkio $*: exit $rc, expected $want"; }
	expect_in "$out" "$re" "blkio $*: expected /$re/"
	[ "$(wc -l <"$out")" = 1 ] || { cat "$out"; fail "blkio $*: not one line"; }
	expect_not_in "$out" "AddressSanitizer|runtime error"
}

bad 2 "no command given"
bad 2 "unknown command 'frobnicate'" frobnicate --image "$img"
bad 2 "unknown option '--bogus'" fill --image "$img" --format raw --seed 1 --bogus
bad 2 "option --seed needs a value" fill --image "$img" --format raw --seed
bad 2 "fill needs --seed" fill --image "$img" --format raw
bad 2 "fill needs --image" fill --format raw --seed 1
bad 2 "verify needs --format" verify --image "$img" --seed 1
bad 2 "unknown format 'vmdk'" fill --image "$img" --format vmdk --seed 1
bad 2 "unknown format 'RAW'" fill --image "$img" --format RAW --seed 1
bad 2 "unknown cache mode 'unsafe'" fill --image "$img" --format raw --seed 1 --cache unsafe
bad 2 "bad number '12x'" fill --image "$img" --format raw --seed 1 --length 12x
bad 2 "bad number '-5'" fill --image "$img" --format raw --seed 1 --offset -5
bad 2 "bad number '99999999999999999999'" fill --image "$img" --format raw --seed 1 --length 99999999999999999999
bad 2 "bad number '20000000T'" fill --image "$img" --format raw --seed 1 --length 20000000T
bad 2 "fill does not take --mode" fill --image "$img" --format raw --seed 1 --mode seqread
bad 2 "unexpected argument 'extra'" info --image "$img" --format raw extra
bad 2 "bench needs --mode" bench --image "$img" --format raw
bad 2 "unknown mode 'sideways'" bench --image "$img" --format raw --mode sideways
bad 2 "--qd must be" bench --image "$img" --format raw --mode seqread --qd 0
bad 2 "--qd must be" bench --image "$img" --format raw --mode seqread --qd 5000
bad 2 "--bs must be" bench --image "$img" --format raw --mode seqread --bs 0
bad 2 "smaller than --bs" bench --image "$img" --format raw --mode seqread --size 4K --bs 8K
bad 2 "beyond the image size 1048576" fill --image "$img" --format raw --seed 1 --offset 1M --length 1
bad 2 "beyond the image size" fill --image "$img" --format raw --seed 1 --offset 18446744073709551615 --length 2
bad 2 "beyond the image size" bench --image "$img" --format raw --mode seqread --size 2M
bad 2 "multiples of 512" fill --image "$img" --format raw --seed 1 --offset 100 --length 512 --cache none
bad 2 "zero needs --length" zero --image "$img" --format raw --offset 0
bad 2 "dump needs --out" dump --image "$img" --format raw
bad 2 "zero does not take --fixed-buffers" zero --image "$img" --format raw --offset 0 --length 512 --fixed-buffers
bad 2 "nodir/x: No such file or directory" dump --image "$img" --format raw --out "$TEST_TMP/nodir/x"

# images that do not open
bad 2 "$TEST_TMP/missing.img: no such file" fill --image "$TEST_TMP/missing.img" --format raw --seed 1
bad 2 "$TEST_TMP: is a directory" info --image "$TEST_TMP" --format raw
: >"$TEST_TMP/empty.img"
bad 2 "empty.img: image is empty \(0 bytes\)" info --image "$TEST_TMP/empty.img" --format raw
bad 2 "not a regular file or block device" info --image /dev/null --format raw
if [ "$(id -u)" != 0 ]; then
	truncate -s 1M "$TEST_TMP/noperm.img"; chmod 0 "$TEST_TMP/noperm.img"
	bad 2 "permission denied" info --image "$TEST_TMP/noperm.img" --format raw
fi
# a bad run leaves the image alone
cmp "$img" <(head -c 1M /dev/zero) || fail "a refused command changed the image"
"$BLKIO" --help | grep -q "usage: blkio" || fail "--help prints no usage"
echo ok
