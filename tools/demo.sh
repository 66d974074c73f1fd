#!/bin/sh
# `make demo`: the shipped Fashion-MNIST early-exit model on a handful of clean,
# blurred and noisy test images. A local `eex serve` plays the cloud, so the
# images that no edge exit answers travel the real offload path; then a short
# evaluation summary. BUILD picks the build folder, MODEL the model.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
EEX="$BUILD/eex"
MODEL=${MODEL:-models/fmnist-ee.eex}
DATA=${DATA:-${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}}
PY=${PY:-/usr/bin/python3}
OUT=build/demo
THRESHOLD=${THRESHOLD:-0.8}
# what the demo reads from outside the repository: one line naming what is missing
sh tools/need.sh "make demo" fmnist="$DATA" py:numpy=python3-numpy py:PIL=python3-pil \
    "file:$MODEL=make train writes it" "file:$EEX=make builds it" || exit 1
mkdir -p "$OUT"

# five test images, as PNG, plus blurred and noisy copies made by eex itself
$PY - "$DATA" "$OUT" <<'PYEOF'
import gzip, sys, numpy as np
from PIL import Image
data, out = sys.argv[1], sys.argv[2]
raw = gzip.open(f"{data}/t10k-images-idx3-ubyte.gz").read()
imgs = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
for i in (0, 1, 2, 3, 4):
    Image.fromarray(imgs[i]).save(f"{out}/test{i}.png")
PYEOF
set --
for i in 0 1 2 3 4; do
    "$EEX" distort "$OUT/test$i.png" "$OUT/test$i-blur3.png" --blur 3
    "$EEX" distort "$OUT/test$i.png" "$OUT/test$i-noise30.png" --noise 30 --seed "$i"
done
images="$OUT/test0.png $OUT/test1.png $OUT/test2.png $OUT/test0-blur3.png $OUT/test1-blur3.png $OUT/test3-blur3.png"
images="$images $OUT/test0-noise30.png $OUT/test2-noise30.png $OUT/test4-noise30.png"

echo "== eex demo: $MODEL, p_tar $THRESHOLD, expert chosen by the distortion detector"
echo "   true classes of test images 0-4: $($PY -c "
import gzip
names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
l = gzip.open('$DATA/t10k-labels-idx1-ubyte.gz').read()[8:13]
print(', '.join(f'{i}: {names[c]}' for i, c in enumerate(l)))")"
echo
if [ -x bench/offload/demo_cloud.sh ] && "$EEX" serve --help >/dev/null 2>&1; then
    BUILD=$BUILD sh bench/offload/demo_cloud.sh "$MODEL" $images -- --threshold "$THRESHOLD" --cut 2
else
    for img in $images; do "$EEX" run "$MODEL" "$img" --threshold "$THRESHOLD"; done
fi
echo
echo "== evaluation summary: 1000 test images, p_tar $THRESHOLD"
for d in none blur:3 noise:30; do
    for e in pristine auto; do
        "$EEX" eval "$MODEL" --dataset "$DATA" --limit 1000 --distortion "$d" --expert "$e" \
            --threshold "$THRESHOLD" --json --quiet |
            $PY -c "
import json, sys; j = json.load(sys.stdin); r = j['results'][0]
print(f\"  {j['distortion']:8s} {j['expert']:9s} P(offload) {100*r['p_offload']:5.1f}%   edge accuracy {100*r['edge_accuracy']:5.1f}%   overall {100*r['overall_accuracy']:5.1f}%\" +
      (f\"   detector right {100*j['detector_accuracy']:5.1f}%\" if 'detector_accuracy' in j and j['expert']=='auto' else ''))"
    done
done
echo "(the full grid: make experiment -> docs/results/fmnist.md)"
