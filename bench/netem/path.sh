#!/bin/sh
# An emulated network path between an edge and a cloud network namespace.
#
#   path.sh up RATE_MBIT RTT_MS [LATER_RTT_MS]
#                                   create it (needs root and iproute2)
#   path.sh change RATE_MBIT        the rate becomes RATE_MBIT and the RTT
#                                   LATER_RTT_MS (a path that changes mid-run)
#   path.sh down                    remove it
#   path.sh exec edge|cloud CMD...  run a command on one side
#
# Three namespaces: eexnet-edge (198.18.0.1/30 on e0), eexnet-cloud
# (198.18.0.2/30 on c0), and eexnet-wan between them holding the peers wa and
# wb, where bench/netem/delayrelay adds RTT/2 in each direction to every
# frame. A tbf qdisc on e0 and on c0 limits each direction to RATE_MBIT.
# 198.18.0.0/15 is the range set aside for network benchmarks (RFC 2544);
# these addresses exist only inside the namespaces made here, and no frame
# leaves them. tc netem is not available on this kernel, hence the relay.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-build}
RELAY="$ROOT/$BUILD/bench/netem/delayrelay"
# EEXNET names the namespaces (default eexnet), so two runs on one machine
# can each have their own path.
N=${EEXNET:-eexnet}
E=$N-edge C=$N-cloud W=$N-wan
PIDFILE=/tmp/$N-relay.pid

down() {
    if [ -f "$PIDFILE" ]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; fi
    for ns in $E $C $W; do ip netns del $ns 2>/dev/null || true; done
}

burst() { awk "BEGIN { b = $1 * 1e6 / 8 / 1000; if (b < 1600) b = 1600; printf \"%d\", b }"; }

up() {
    rate=$1 rtt=$2 later=${3:-}
    down
    ip netns add $E
    ip netns add $C
    ip netns add $W
    ip link add e0 netns $E type veth peer name wa netns $W
    ip link add c0 netns $C type veth peer name wb netns $W
    ip -n $E addr add 198.18.0.1/30 dev e0
    ip -n $C addr add 198.18.0.2/30 dev c0
    for ns in $E $C $W; do ip -n $ns link set lo up; done
    ip -n $E link set e0 up
    ip -n $C link set c0 up
    ip -n $W link set wa up
    ip -n $W link set wb up
    # rate: a token bucket on each sender, queue up to 1 s. Its burst is what
    # the link carries in 1 ms (at least one full frame): a larger bucket
    # lets a whole small request through at once, after an idle gap, and the
    # path would not serialise it at its rate (16 KB did: a 0.8 KB frame at
    # 0.1 Mbit/s took no time at all)
    b=$(burst "$rate")
    ip netns exec $E tc qdisc add dev e0 root tbf rate "${rate}mbit" burst "$b" latency 1000ms
    ip netns exec $C tc qdisc add dev c0 root tbf rate "${rate}mbit" burst "$b" latency 1000ms
    half=$(awk "BEGIN { print $rtt / 2 }")
    lhalf=
    [ -z "$later" ] || lhalf="$(awk "BEGIN { print $later / 2 }")"
    # the relay at a real-time priority: it uses little CPU, and on a loaded
    # machine a late wake-up would add its scheduling delay to the path
    # (measured at load 8 on 2 cores: ACKs up to 17 ms late on a 216 ms path)
    rt=
    if command -v chrt >/dev/null 2>&1 && chrt -f 20 true 2>/dev/null; then rt="chrt -f 20"; fi
    ip netns exec $W $rt "$RELAY" wa wb "$half" "$half" ${lhalf:+$lhalf $lhalf} >/dev/null 2>/tmp/$N-relay.log &
    echo $! >"$PIDFILE"
    sleep 0.3
    kill -0 "$(cat "$PIDFILE")" || { cat /tmp/$N-relay.log; exit 1; }
}

change() {
    for side in "$E e0" "$C c0"; do
        set -- $side
        ip netns exec $1 tc qdisc change dev $2 root tbf rate "${rate}mbit" burst "$(burst "$rate")" latency 1000ms
    done
    kill -USR1 "$(cat "$PIDFILE")"
}

case "${1:-}" in
up) shift; up "$@" ;;
change) rate=$2; change ;;
down) down ;;
exec)
    shift
    side=$1
    shift
    if [ "$side" = edge ]; then exec ip netns exec $E "$@"; else exec ip netns exec $C "$@"; fi ;;
*) echo "usage: path.sh up RATE_MBIT RTT_MS [LATER_RTT_MS] | change RATE_MBIT | down | exec edge|cloud CMD..." >&2; exit 2 ;;
esac
