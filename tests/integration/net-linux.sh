#!/bin/bash
# Linux guests on virtio-net (in a network namespace of the test's own; the
# script re-runs itself inside it).  Two guests on one bridge with the host
# (10.0.2.1):
#  guest A: the agent's net step, pings the host, a file of NET_LINUX_SIZE
#   (default 8M; 64M in net-linux-long.sh) over TCP host -> guest and
#   guest -> host (busybox nc), SHA-256 equal on both sides, then pings B;
#  guest B (two queue pairs, so the driver talks to the control queue):
#   net step, pings the host, waits until the host lets it go.
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

# The guest steps avoid timers (ping -A sends the next request when the
# reply comes; waits are for a host connection, not a sleep): guest time
# can crawl under heavy emulation, and the order comes from the host.
# host side of guest -> host: one connection, saved whole
timeout 900 busybox nc -l -p 5002 -e sh -c "cat >'$T/up'" &
up_pid=$!
# connect to a guest port once it listens (bounded)
connect_to() {	# connect_to ADDR PORT [FILE]
	for _ in $(seq 900); do
		if [ -n "${3:-}" ]; then
			busybox nc -w 5 "$1" "$2" -e cat "$3" 2>/dev/null && return 0
		else
			busybox nc -w 5 "$1" "$2" </dev/null 2>/dev/null && return 0
		fi
		sleep 1
	done
	return 1
}
connect_to 10.0.2.15 5001 "$T/down" &
down_pid=$!

LINUX_MEMORY=96M linux_start b 900 "
net dev=eth0 addr=10.0.2.16/24 gw=10.0.2.1
sh timeout=300 cmd=busybox ping -c 3 -A 10.0.2.1
sh timeout=900 cmd=busybox nc -l -p 5003 -e true" --net tap=vlb,queues=2
b_pid=$LINUX_PID
# A pings B once B has shown it is up (its ping of the host passed)
( for _ in $(seq 900); do
	if linux_line b 2 | grep -q '"ok":true'; then
		connect_to 10.0.2.15 5004
		exit $?
	fi
	sleep 1
  done; exit 1 ) &
go_pid=$!

rc=0
LINUX_MEMORY=$mem linux_boot a 900 "
net dev=eth0 addr=10.0.2.15/24 gw=10.0.2.1
sh timeout=60 cmd=busybox ping -c 3 -A 10.0.2.1
sh timeout=600 cmd=busybox nc -l -p 5001 -e sh -c 'cat >/tmp/down' && busybox sha256sum /tmp/down && rm /tmp/down
write path=/tmp/up seed=32 size=$SIZE fsync=0
sh timeout=600 cmd=busybox nc 10.0.2.1 5002 -e cat /tmp/up && busybox sha256sum /tmp/up
sh timeout=600 cmd=busybox nc -l -p 5004 -e true
sh timeout=60 cmd=busybox ping -c 3 -A 10.0.2.16" \
	--net tap=vla || rc=$?
connect_to 10.0.2.16 5003 || true	# B may go now
linux_ok a 1 2 3 4 5 6 7
linux_line a 1 | grep -q '"mac":"52:54:00:' || { linux_show a; fail "net step: no MAC in $(linux_line a 1)"; }
linux_line a 3 | grep -q "$down_sum" || { linux_show a; fail "host -> guest: the guest's SHA-256 differs"; }
linux_line a 5 | grep -q "$up_sum" || { linux_show a; fail "guest -> host: the guest's file differs"; }
linux_summary a 0
linux_status a "$rc" 0
wait $down_pid || fail "host -> guest: no connection"
wait $go_pid || fail "guest B never came up"
wait $up_pid
[ "$(sha256sum <"$T/up" | cut -d' ' -f1)" = "$up_sum" ] ||
	fail "guest -> host: the host received $(stat -c %s "$T/up") bytes, SHA-256 differs"
wait "$b_pid"; linux_status b $? 0
linux_ok b 1 2 3
linux_summary b 0
exit 0
