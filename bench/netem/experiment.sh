#!/bin/sh
# make experiment-offload: the partition executor over the paper's network
# paths, written up in docs/results/offload.md (bench/offload/report.py).
#
#   1. codecs on loopback: the Fashion-MNIST model over the whole test set,
#      local and through `eex serve` with each wire codec (accuracy change,
#      bytes per offload next to the JSON float list of the same tensor)
#   2. 64 edge clients x 100 requests on loopback (throughput, p99)
#   3. each emulated path (bench/netem/path.sh: netns + veth + tbf + delay
#      relay) x each model x each codec, p_tar 0.7..0.9: end-to-end latency;
#      then `eex plan --measure` on MobileNetV2 (every cut x codec, predicted
#      beside measured) and the same f16/f32 with the system's TCP congestion
#      control (BBR here) against eex's default (cubic)
#   4. `eex plan` predictions for the three paths (Fashion-MNIST with the
#      eval log's exit shares) and the planner's plot
#
# Uses models/fmnist-ee.eex when it exists, else build/ee/tiny.eex (an
# untrained stand-in of the same shape). Needs root for the namespaces; when
# they cannot be made, part 3 is skipped and the report says so.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
EEX="$ROOT/$BUILD/eex"
LOADGEN="$ROOT/$BUILD/bench/offload/loadgen"
OUT=${OUT:-build/offload-exp}
DATASET=/usr/share/datasets/fashion-mnist
THR=0.7,0.75,0.8,0.85,0.9
FM=models/fmnist-ee.eex
[ -f "$FM" ] || FM=build/ee/tiny.eex
MN=models/mobilenetv2-ee-224.eex
FM_LIMIT=${FM_LIMIT:-1000}      # images per path run (the codec run uses all 10000)
MN_LIMIT=${MN_LIMIT:-100}
PLAN_RUNS=${PLAN_RUNS:-30}      # requests per cut and codec for `eex plan --measure`
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.jsonl "$OUT"/*.txt

SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    sh "$HERE/path.sh" down 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# start_server NS_PREFIX MODEL ADDR: sets SERVER_PID, waits until it listens
start_server() {
    prefix=$1 model=$2 addr=$3
    rm -f "$OUT/serve.err"
    $prefix "$EEX" serve "$model" --listen "$addr" --threads 2 2>"$OUT/serve.err" &
    SERVER_PID=$!
    i=0
    until grep -q "listening on" "$OUT/serve.err" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 300 ] || { cat "$OUT/serve.err"; exit 1; }
        sleep 0.1
    done
}
stop_server() {
    kill "$SERVER_PID" && wait "$SERVER_PID" || true
    SERVER_PID=
}
port_of() { sed -n 's/.*listening on [^ ]*:\([0-9]*\),.*/\1/p' "$OUT/serve.err"; }

echo "experiment-offload: Fashion-MNIST model $FM; MobileNetV2 $MN"
echo "{\"fm\": \"$FM\", \"mn\": \"$MN\", \"fm_limit\": $FM_LIMIT, \"mn_limit\": $MN_LIMIT, \"cores\": $(nproc)}" >"$OUT/setup.json"

# ---- 1. codecs on loopback ----
echo "== codecs on loopback ($FM, 10000 images)"
"$EEX" eval "$FM" --dataset $DATASET --threshold $THR --quiet --json --log "$OUT/codec-local.jsonl" >"$OUT/codec-local.json"
start_server "" "$FM" 127.0.0.1:0
for w in f32 f16 i8 q4; do
    "$EEX" eval "$FM" --dataset $DATASET --threshold $THR --quiet --json --cloud "127.0.0.1:$(port_of)" --wire $w \
        --log "$OUT/codec-$w.jsonl" >"$OUT/codec-$w.json"
done

# ---- 2. load on loopback ----
echo "== 64 clients x 100 requests on loopback"
"$LOADGEN" "$FM" --cloud "127.0.0.1:$(port_of)" --clients 64 --requests 100 --threshold 1 >"$OUT/load-full.json"
"$LOADGEN" "$FM" --cloud "127.0.0.1:$(port_of)" --clients 64 --requests 100 --threshold 1 --send-only >"$OUT/load-send.json"
stop_server
start_server "" "$MN" 127.0.0.1:0
"$LOADGEN" "$MN" --cloud "127.0.0.1:$(port_of)" --clients 64 --requests 10 --threshold 1 --send-only >"$OUT/load-mn-send.json"
for w in f32 f16 i8 q4; do
    "$EEX" eval "$MN" --dataset $DATASET --limit "$MN_LIMIT" --batch 8 --threshold $THR --quiet --json \
        --cloud "127.0.0.1:$(port_of)" --wire $w --log "$OUT/mn-loopback-$w.jsonl" >"$OUT/mn-loopback-$w.json"
done
stop_server

# ---- 3. emulated paths ----
if ! sh "$HERE/path.sh" up 100 1 2>"$OUT/netns.err"; then
    echo "experiment-offload: network namespaces unavailable ($(head -c 200 "$OUT/netns.err")); paths skipped"
    echo '{"netns": false}' >"$OUT/paths.json"
else
    sh "$HERE/path.sh" down
    echo '{"netns": true}' >"$OUT/paths.json"
    for path in "93.6 10" "73.3 180" "60 216"; do
        set -- $path
        rate=$1 rtt=$2
        echo "== path $rate Mbit/s, $rtt ms RTT"
        sh "$HERE/path.sh" up "$rate" "$rtt"
        for m in fm mn; do
            if [ $m = fm ]; then model=$FM limit=$FM_LIMIT; else model=$MN limit=$MN_LIMIT; fi
            start_server "sh $HERE/path.sh exec cloud" "$model" 198.18.0.2:7000
            for w in f32 f16 i8 q4; do
                sh "$HERE/path.sh" exec edge "$EEX" eval "$model" --dataset $DATASET --limit "$limit" --batch 8 \
                    --threshold $THR --quiet --json --cloud 198.18.0.2:7000 --wire $w \
                    >"$OUT/path-$rtt-$m-$w.json"
            done
            stop_server
        done
        start_server "sh $HERE/path.sh exec cloud" "$MN" 198.18.0.2:7000
        sh "$HERE/path.sh" exec edge "$EEX" plan "$MN" --rtt "$rtt" --bandwidth "$rate" --runs "$PLAN_RUNS" \
            --measure 198.18.0.2:7000 --json >"$OUT/plan-$rtt-mn.json"
        sh "$HERE/path.sh" exec edge "$EEX" plan "$MN" --rtt "$rtt" --bandwidth "$rate" --runs "$PLAN_RUNS" \
            --wires f32,f16 --tcp-cc system --measure 198.18.0.2:7000 --json >"$OUT/tcp-system-$rtt-mn.json"
        stop_server
        sh "$HERE/path.sh" down
    done
fi

# ---- 4. the planner's predictions for the three paths ----
echo "== eex plan"
"$EEX" plan "$MN" --rtt 10,180,216 --bandwidth 93.6,73.3,60 --runs "$PLAN_RUNS" --json >"$OUT/plan-mn.json"
"$EEX" plan "$FM" --rtt 10,180,216 --bandwidth 93.6,73.3,60 --runs "$PLAN_RUNS" --log "$OUT/codec-local.jsonl" \
    --threshold 0.9 --json >"$OUT/plan-fm.json"

# ---- 5. the automatic cut + codec on a path that changes mid-run ----
echo "== adapt"
{ BUILD=$BUILD "$PY" tests/offload/test_adapt.py || true
  echo "-- --long: $MN, 93.6 Mbit/s / 10 ms -> 73.3 Mbit/s / 180 ms"
  BUILD=$BUILD "$PY" tests/offload/test_adapt.py "$MN" --long || true; } >"$OUT/adapt.txt" 2>&1

"$PY" bench/offload/report.py "$OUT" docs/results/offload.md
