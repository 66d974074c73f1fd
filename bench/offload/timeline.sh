#!/bin/sh
# Where the 10 ms path's offload time goes, before and after a server change,
# in one invocation: two `eex serve` in the cloud namespace (A: OLD_EEX, B:
# build/eex), rounds of bench/offload/adapt requests alternating A B A B,
# each round's edge log joined with its server's log (bench/offload/timeline.py),
# then every round of each pooled. The load average is noted per round.
#
#   timeline.sh OLD_EEX OUT.json [RATE RTT ROUNDS REQUESTS]
#
# Needs root (bench/netem/path.sh). MobileNetV2-EE-224, cut 2, f16. NICE=N
# runs both servers and the edge at nice N (a deployment's priority over
# batch jobs on the same cores).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
OLD=$1 OUT=$2 RATE=${3:-93.6} RTT=${4:-10} ROUNDS=${5:-4} REQ=${6:-40}
MODEL=${MODEL:-models/mobilenetv2-ee-224.eex}
PRIO=
[ -z "${NICE:-}" ] || PRIO="nice -n $NICE"
export EEXNET=${EEXNET:-eextl} BUILD
T=$(mktemp -d)
P=$T/pids
cleanup() { [ -f "$P" ] && kill $(cat "$P") 2>/dev/null; sh bench/netem/path.sh down; rm -rf "$T"; }
trap cleanup EXIT
sh bench/netem/path.sh up "$RATE" "$RTT"
sh bench/netem/path.sh exec cloud $PRIO "$OLD" serve "$MODEL" --listen 198.18.0.2:7001 --log "$T/srv-a.jsonl" 2>"$T/a.err" &
echo $! >>"$P"
sh bench/netem/path.sh exec cloud $PRIO "$BUILD/eex" serve "$MODEL" --listen 198.18.0.2:7002 --log "$T/srv-b.jsonl" 2>"$T/b.err" &
echo $! >>"$P"
for f in a b; do
    i=0
    until grep -q "listening on" "$T/$f.err"; do i=$((i + 1)); [ $i -lt 300 ] || { cat "$T/$f.err"; exit 1; }; sleep 0.1; done
done
echo "[" >"$OUT"
first=1
r=0
while [ $r -lt "$ROUNDS" ]; do
    for v in a b; do
        port=7001; [ $v = b ] && port=7002
        load=$(cut -d' ' -f1 /proc/loadavg)
        sh bench/netem/path.sh exec edge $PRIO "$BUILD/bench/offload/adapt" "$MODEL" --cloud 198.18.0.2:$port \
            --requests "$REQ" --cut 2 --wire f16 --runs 3 --log "$T/edge-$v-$r.jsonl" >/dev/null
        res=$(/usr/bin/python3 bench/offload/timeline.py "$T/edge-$v-$r.jsonl" "$T/srv-$v.jsonl" "$RTT" "$RATE" --json)
        [ $first = 1 ] || echo "," >>"$OUT"
        first=0
        printf '{"server": "%s", "round": %d, "load": %s, "rate": %s, "rtt": %s, "nice": "%s", "timeline": %s}' \
            "$([ $v = a ] && echo before || echo after)" $r "$load" "$RATE" "$RTT" "${NICE:-}" "$res" >>"$OUT"
        echo "round $r $v load $load: $res" | cut -c1-200
    done
    r=$((r + 1))
done
# every round of a server pooled
for v in a b; do
    logs=$(ls "$T"/edge-$v-*.jsonl | tr '\n' ',' | sed 's/,$//')
    res=$(/usr/bin/python3 bench/offload/timeline.py "$logs" "$T/srv-$v.jsonl" "$RTT" "$RATE" --json)
    printf ',\n{"server": "%s", "round": "pooled", "load": %s, "rate": %s, "rtt": %s, "nice": "%s", "timeline": %s}' \
        "$([ $v = a ] && echo before || echo after)" "$(cut -d' ' -f1 /proc/loadavg)" "$RATE" "$RTT" "${NICE:-}" "$res" >>"$OUT"
done
echo "]" >>"$OUT"
