#!/bin/bash
# Linux guests on virtio-net (in a network namespace of the test's own; the
# script re-runs itself inside it).  Two guests on one bridge with the host
# (10.0.2.1):
#  guest A: the agent's net step, pings the host and guest B, then a file
#   of NET_LINUX_SIZE (default 8M; 64M in net-linux-long.sh) over TCP host
#   -> guest and guest -> host (busybox nc), SHA-256 equal on both sides;
#  guest B (two queue pairs, so the driver talks to the control queue):
#   net step, pings A.
# One boot each, run at the same time: each costs 15-40 s on a PVM host.
# timeout: 1200
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net.inc"
. "$TOP/tools/linux-plan"
linux_prepare
need_netns
netns_reexec "$@"

SIZE=${NET_LINUX_SIZE:-8M}
T=$TEST_TMP
bytes=$(numfmt --from=iec "$SIZE")
mem=$(( (bytes >> 20) * 2 + 96 ))M

ip link add br0 type bridge || fail "cannot add a bridge"
ip addr add 10.0.2.1/24 dev br0
ip link set br0 up
# B has two queue pairs (MQ, the control queue): a multi_queue TAP
ip tuntap add dev vla mode tap vnet_hdr || fail "cannot add TAP vla"
ip tuntap add dev vlb mode tap vnet_hdr multi_queue || fail "cannot add TAP vlb"
for t in vla vlb; do
	ip link set $t master br0
	ip link set $t up
done

mkpattern "$T/down" 31 "$SIZE"
down_sum=$(sha256sum <"$T/down" | cut -d' ' -f1)
mkpattern "$T/up.want" 32 "$SIZE"
up_sum=$(sha256sum <"$T/up.want" | cut -d' ' -f1)

# host side of guest -> host: one connection, saved whole
timeout 900 busybox nc -l -p 5002 -e sh -c "cat >'$T/up'" &
up_pid=$!
# host side of host -> guest: connect once the guest listens (bounded)
( for _ in $(seq 600); do
	busybox nc -w 5 10.0.2.15 5001 -e cat "$T/down" 2>/dev/null && exit 0
	sleep 1
  done; exit 1 ) &
down_pid=$!

LINUX_MEMORY=96M linux_start b 600 "
net dev=eth0 addr=10.0.2.16/24 gw=10.0.2.1
sh timeout=300 cmd=busybox ping -c 3 -w 280 10.0.2.15
sleep ms=30000" --net tap=vlb,queues=2
b_pid=$LINUX_PID

rc=0
LINUX_MEMORY=$mem linux_boot a 900 "
net dev=eth0 addr=10.0.2.15/24 gw=10.0.2.1
sh timeout=60 cmd=busybox ping -c 3 -w 50 10.0.2.1
sh timeout=300 cmd=busybox ping -c 3 -w 280 10.0.2.16
sh timeout=600 cmd=busybox nc -l -p 5001 -e sh -c 'cat >/tmp/down' && busybox sha256sum /tmp/down && rm /tmp/down
write path=/tmp/up seed=32 size=$SIZE fsync=0
sh timeout=600 cmd=busybox nc 10.0.2.1 5002 -e cat /tmp/up && busybox sha256sum /tmp/up" \
	--net tap=vla || rc=$?
linux_ok a 1 2 3 4 5 6
linux_line a 1 | grep -q '"mac":"52:54:00:' || { linux_show a; fail "net step: no MAC in $(linux_line a 1)"; }
linux_line a 4 | grep -q "$down_sum" || { linux_show a; fail "host -> guest: the guest's SHA-256 differs"; }
linux_line a 6 | grep -q "$up_sum" || { linux_show a; fail "guest -> host: the guest's file differs"; }
linux_summary a 0
linux_status a "$rc" 0
wait $down_pid || fail "host -> guest: no connection"
wait $up_pid
[ "$(sha256sum <"$T/up" | cut -d' ' -f1)" = "$up_sum" ] ||
	fail "guest -> host: the host received $(stat -c %s "$T/up") bytes, SHA-256 differs"
wait "$b_pid"; linux_status b $? 0
linux_ok b 1 2
linux_summary b 0
exit 0
