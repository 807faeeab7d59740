#!/bin/bash
# virtio-net with the test kernel, in a network namespace of the test's own:
# netinfo, ARP + ping to the host, bulk frames both ways checked frame by
# frame by tools/netio (1514-byte and 64 KiB TSO frames), two guests on a
# bridge pinging each other, and the bad-input lines (missing, busy and
# non-TAP interfaces, bad values).
# timeout: 240
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net.inc"
need_kvm
need_netns
[ -f "$TESTKERNEL" ] || fail "no test kernel at $TESTKERNEL"
netns_up
tap_add vt0 10.0.2.1/24
out=$TEST_TMP/out

# 1. info, ping, guest->host frames: 2000 of 1514 bytes then 200 TSO frames
# of 65280 (sequence numbers continue), every byte checked by the sink
nsx "$NETIO" sink --if vt0 --count 2200 --verify full --wait-ms 60000 --idle-ms 60000 \
	--ready "$TEST_TMP/sink.ready" >"$TEST_TMP/sink" 2>&1 &
sink=$!
for _ in $(seq 300); do [ -e "$TEST_TMP/sink.ready" ] && break; sleep 0.1; done
[ -e "$TEST_TMP/sink.ready" ] || fail "netio sink never started"
vmm_ns "$out" --kernel "$TESTKERNEL" --timeout 90 --net tap=vt0 \
	--cmdline "vmmtest.net=10.0.2.15/24,gw=10.0.2.1 vmmtest.run=netinfo,netping:count=3,netperf:dir=tx:count=2000,netperf:dir=tx:count=200:frame=65280:seq=2000"
expect_status $? 0 "$out"
expect_in "$out" "^netinfo: dev=0 .*mac=52:54:00:[0-9a-f:]{8} mtu=1500 link=up .*mrg=1 csum=1 tso=1 guest_tso=1 event_idx=1"
expect_in "$out" "^netping: 3/3 replies from 10.0.2.1 "
expect_in "$out" '^NETPERF \{"dev":0,"dir":"tx","frame":1514,.*"frames":2000,'
expect_in "$out" '^NETPERF \{"dev":0,"dir":"tx","frame":65280,.*"frames":200,'
expect_in "$out" "vmmtest: 4 passed, 0 failed"
wait $sink || { cat "$TEST_TMP/sink"; fail "netio sink: frames missing or damaged"; }
expect_in "$TEST_TMP/sink" '"frames":2200,.*"lost":0,"reordered":0,"bad":0'
mac1=$(sed -n 's/^netinfo: .*mac=\([0-9a-f:]*\) .*/\1/p' "$out")

# 2. host->guest: 1514-byte frames, then 64 KiB TSO frames (GUEST_TSO4:
# one frame over many merged buffers), every byte checked by the guest
(nsx "$NETIO" source --if vt0 --frame 1514 --seconds 3 --sync --wait-ms 60000 &&
 nsx "$NETIO" source --if vt0 --frame 65280 --seconds 3 --sync --wait-ms 60000) \
	>"$TEST_TMP/source" 2>&1 &
src=$!
vmm_ns "$out" --kernel "$TESTKERNEL" --timeout 90 --net tap=vt0 \
	--cmdline "vmmtest.run=netperf:dir=rx:seconds=2:verify=full,netperf:dir=rx:frame=65280:seconds=2:verify=full"
expect_status $? 0 "$out"
wait $src || { cat "$TEST_TMP/source"; fail "netio source failed"; }
expect_in "$out" '^NETPERF \{"dev":0,"dir":"rx","frame":1514,.*"frames":[1-9][0-9]*,.*"reordered":0,"bad":0'
expect_in "$out" '^NETPERF \{"dev":0,"dir":"rx","frame":65280,.*"frames":[1-9][0-9]*,.*"reordered":0,"bad":0'
expect_in "$out" "vmmtest: 2 passed, 0 failed"
# the default MAC is the same for the same TAP
vmm_ns "$out" --kernel "$TESTKERNEL" --timeout 30 --net tap=vt0 --cmdline "vmmtest.run=netinfo"
expect_status $? 0 "$out"
expect_in "$out" "mac=$mac1 " "the default MAC changed between runs on one TAP"

# 3. two guests on a bridge: B answers, A pings it
nsx ip link add br0 type bridge || fail "cannot add a bridge"
nsx ip link set br0 up
tap_add vta
tap_add vtb
nsx ip link set vta master br0
nsx ip link set vtb master br0
vmm_ns "$TEST_TMP/b" --kernel "$TESTKERNEL" --timeout 60 --net tap=vtb \
	--cmdline "vmmtest.net=10.0.3.2/24,gw=10.0.3.1 vmmtest.run=netserve:pings=3:seconds=40" &
b=$!
vmm_ns "$out" --kernel "$TESTKERNEL" --timeout 60 --net tap=vta \
	--cmdline "vmmtest.net=10.0.3.1/24,gw=10.0.3.254 vmmtest.run=netping:to=10.0.3.2:count=3:timeout_ms=8000"
expect_status $? 0 "$out"
expect_in "$out" "^netping: 3/3 replies from 10.0.3.2 "
wait $b; expect_status $? 0 "$TEST_TMP/b"
expect_in "$TEST_TMP/b" "^netserve: answered 3 echo requests"

# 4. bad input: one line each, documented statuses
vmm_ns "$out" --kernel "$TESTKERNEL" --net tap=nosuch0
expect_status $? 65 "$out"
expect_in "$out" "TAP nosuch0: no such interface"
vmm_ns "$out" --kernel "$TESTKERNEL" --net tap=lo
expect_status $? 65 "$out"
expect_in "$out" "lo is not a TAP interface"
for bad in mac=01:00:00:00:00:01 mac=52:54:00 queues=0 mtu=10 tap=vt0,speed=1; do
	vmm_ns "$out" --kernel "$TESTKERNEL" --net "$bad"
	expect_status $? 64 "$out"
	[ "$(grep -c . "$out")" -le 2 ] || { cat "$out"; fail "--net $bad: more than a line or two"; }
done
# busy: a TAP another VMM holds
vmm_ns "$TEST_TMP/holder" --kernel "$TESTKERNEL" --timeout 30 --net tap=vt0 \
	--cmdline "vmmtest.run=sleep:ms=4000" &
h=$!
sleep 1
vmm_ns "$out" --kernel "$TESTKERNEL" --net tap=vt0
expect_status $? 69 "$out"
expect_in "$out" "TAP vt0 is busy"
wait $h
# no tap=: a new vmmtapN, named on stderr, gone afterwards
vmm_ns "$out" --kernel "$TESTKERNEL" --timeout 30 --net mac=52:54:00:00:00:42 \
	--cmdline "vmmtest.run=netinfo"
expect_status $? 0 "$out"
expect_in "$out" "created TAP vmmtap[0-9]+ \(removed on exit\)"
expect_in "$out" "mac=52:54:00:00:00:42 "
created=$(sed -n 's/.*created TAP \(vmmtap[0-9]*\).*/\1/p' "$out")
! nsx ip link show "$created" >/dev/null 2>&1 || fail "TAP $created left behind"
exit 0
