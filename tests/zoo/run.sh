#!/bin/sh
# Zoo parity: every torchvision CNN classifier (tests/zoo/make_zoo.py: random
# weights and BatchNorm statistics, outputs scaled to max|out| ~ 1) converted by
# eex-convert and run by `eex run`, compared with PyTorch relative to max|ref|:
# max|eex - torch| <= 1e-4 * max|torch| (check.py --relative).
# Also: `eex bench` names no node that runs a scalar reference kernel.
# Env: BUILD, PY, ZOO_DIR (fixtures, cached), MODELS (subset), THREADS ("1 2"),
#      REF_MODELS (also run these with the reference kernels at batch 1).
set -eu
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
ZOO_DIR=${ZOO_DIR:-build/zoo}
THREADS=${THREADS:-"1 2"}
REF_MODELS=${REF_MODELS:-"shufflenet_v2_x1_0 mnasnet0_5 densenet121 efficientnet_b0 convnext_tiny"}
start=$(date +%s)
if [ -n "${MODELS:-}" ]; then
    $PY tests/zoo/make_zoo.py --out "$ZOO_DIR" --models "$(echo $MODELS | tr ' ' ,)"
    LIST=$($PY tests/zoo/make_zoo.py --out "$ZOO_DIR" --list --models "$(echo $MODELS | tr ' ' ,)")
else
    $PY tests/zoo/make_zoo.py --out "$ZOO_DIR"
    LIST=$($PY tests/zoo/make_zoo.py --out "$ZOO_DIR" --list)
fi
pass=0
fail=0
worst=0
check() {  # label out ref
    if $PY tests/parity/check.py --relative "$2" "$3" >"$2.log" 2>&1; then
        pass=$((pass + 1)); echo "ok    $1: $(tail -1 "$2.log")"
    else
        fail=$((fail + 1)); echo "FAIL  $1: $(tail -1 "$2.log")"
    fi
}
for m in $(echo "$LIST" | cut -d' ' -f1); do
    batches=$(echo "$LIST" | grep "^$m " | cut -d' ' -f3-)
    eex="$ZOO_DIR/$m.eex"
    # reconvert when the ONNX file or the converter is newer than the .eex
    stale=1
    if [ -f "$eex" ]; then
        stale=0
        for f in "$ZOO_DIR/$m.onnx" converter/*.py converter/eex-convert; do
            [ "$f" -nt "$eex" ] && stale=1
        done
    fi
    if [ "$stale" = 1 ]; then
        if ! $PY converter/eex-convert "$ZOO_DIR/$m.onnx" -o "$eex" --name "$m" >"$eex.log" 2>&1; then
            fail=$((fail + 1)); echo "FAIL  $m: eex-convert: $(tail -1 "$eex.log")"; continue
        fi
    fi
    for b in $batches; do
        for t in $THREADS; do
            out="$ZOO_DIR/${m}_eex_b${b}_t${t}.npy"
            if "$BUILD/eex" run "$eex" --threads "$t" --input "$ZOO_DIR/${m}_in_b$b.npy" --output "$out" 2>"$out.err"; then
                check "$m batch $b threads $t" "$out" "$ZOO_DIR/${m}_out_b$b.npy"
            else
                fail=$((fail + 1)); echo "FAIL  $m batch $b threads $t: eex run: $(tail -1 "$out.err")"
            fi
        done
    done
    # no node on the fast path may fall back to a scalar reference kernel
    line=$("$BUILD/eex" bench "$eex" --runs 1 --warmup 0 --nodes 0 2>&1 | grep "^reference kernels" || true)
    if [ "$line" = "reference kernels on the fast path: none" ]; then
        pass=$((pass + 1)); echo "ok    $m eex bench: $line"
    else
        fail=$((fail + 1)); echo "FAIL  $m eex bench: ${line:-no 'reference kernels' line}"
    fi
    case " $REF_MODELS " in *" $m "*)
        out="$ZOO_DIR/${m}_ref_b1.npy"
        if "$BUILD/eex" run "$eex" --kernels ref --input "$ZOO_DIR/${m}_in_b1.npy" --output "$out" 2>"$out.err"; then
            check "$m batch 1 reference kernels" "$out" "$ZOO_DIR/${m}_out_b1.npy"
        else
            fail=$((fail + 1)); echo "FAIL  $m reference kernels: eex run: $(tail -1 "$out.err")"
        fi
    esac
done
echo "zoo parity: $pass passed, $fail failed ($(( $(date +%s) - start ))s)"
[ "$fail" = 0 ]
