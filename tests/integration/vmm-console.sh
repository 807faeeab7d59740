#!/bin/bash
# timeout: 60
# Console input: stdin reaches the guest's UART, in a pipe and in a pty
# (raw mode, the terminal restored on exit); Ctrl-A x quits.
. "$(dirname "$0")/lib.sh"
need_kvm
T=$TEST_TMP
K=$TESTKERNEL

# from a pipe
rc=0
printf 'from-a-pipe\n' | "$VMM" --kernel "$K" --cmdline "vmmtest.run=readline" --timeout 20 >"$T/pipe" 2>&1 || rc=$?
expect_status $rc 0 "$T/pipe"
expect_in "$T/pipe" 'readline: got "from-a-pipe"'

# no input at all: the guest's read times out, the VMM does not hang on stdin
rc=0; run_vmm "$T/none" --kernel "$K" --cmdline "vmmtest.run=readline:timeout_ms=300" --timeout 20 || rc=$?
expect_status $rc 1 "$T/none"
expect_in "$T/none" "FAIL readline: no console input"

command -v script >/dev/null || skip "no script(1) for the pty cases"
# in a pty: typed input arrives, and the terminal settings are restored
(sleep 0.5; printf 'typed-in-a-pty\r') |
	script -qfec "stty -g >$T/before; '$VMM' --kernel '$K' --cmdline vmmtest.run=readline --timeout 20; echo rc=\$?; stty -g >$T/after" /dev/null >"$T/pty"
expect_in "$T/pty" 'readline: got "typed-in-a-pty"'
expect_in "$T/pty" "rc=0"
cmp -s "$T/before" "$T/after" || fail "terminal settings not restored: $(cat "$T/before") -> $(cat "$T/after")"

# Ctrl-A x quits with status 130
(sleep 0.5; printf '\001x') |
	script -qfec "'$VMM' --kernel '$K' --cmdline vmmtest.run=hang --timeout 20; echo rc=\$?" /dev/null >"$T/quit"
expect_in "$T/quit" "quit from the console"
expect_in "$T/quit" "rc=130"
echo "console input ok"
