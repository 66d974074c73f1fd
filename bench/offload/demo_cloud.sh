#!/bin/sh
# For `make demo`: classify images on the edge with a local cloud behind it.
#
#   demo_cloud.sh MODEL.eex IMAGE... [-- RUN_OPTIONS...]
#
# Starts `eex serve MODEL` on 127.0.0.1 (a free port), runs
# `eex run MODEL IMAGE --cloud 127.0.0.1:PORT` on each image, so that the
# images no edge exit answers go through the server, and prints where each
# answer came from (edge, cloud, or degraded with the reason); then stops the
# server with SIGTERM and prints its summary. BUILD picks the build folder.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
EEX="$ROOT/${BUILD:-build}/eex"
[ $# -ge 2 ] || { echo "usage: demo_cloud.sh MODEL.eex IMAGE... [-- RUN_OPTIONS...]" >&2; exit 2; }
model=$1
shift
images=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do images="$images $1"; shift; done
[ $# -gt 0 ] && shift
err=$(mktemp)
"$EEX" serve "$model" --listen 127.0.0.1:0 2>"$err" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$err"' EXIT INT TERM
i=0
until grep -q "listening on" "$err"; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 $pid 2>/dev/null; then cat "$err" >&2; exit 1; fi
    sleep 0.1
done
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\),.*/\1/p' "$err")
echo "cloud: $(head -n 1 "$err" | sed 's/^eex serve: //')"
for img in $images; do
    "$EEX" run "$model" "$img" --cloud "127.0.0.1:$port" "$@"
done
kill -TERM $pid
wait $pid || true
tail -n 1 "$err"
