#!/bin/sh
# Parity: torchvision models exported to ONNX, converted, run by `eex run`,
# compared with PyTorch: max|eex - torch| <= 1e-4 * max(1, max|torch|).
# Env: BUILD (build dir), PY (Debian python), PARITY_DIR (fixtures, cached),
#      THREADS (list, default "1 2"), REF=1 also checks the reference kernels at batch 1.
set -eu
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
PARITY_DIR=${PARITY_DIR:-build/parity}
THREADS=${THREADS:-"1 2"}
MODELS="mobilenet_v2 mobilenet_v3_small resnet18 squeezenet1_1"
$PY tests/parity/make_models.py --out "$PARITY_DIR"
pass=0
fail=0
check() {  # label out ref
    if $PY tests/parity/check.py "$2" "$3" >"$2.log" 2>&1; then
        pass=$((pass + 1)); echo "ok    $1: $(tail -1 "$2.log")"
    else
        fail=$((fail + 1)); echo "FAIL  $1: $(tail -1 "$2.log")"
    fi
}
for m in $MODELS; do
    for b in 1 4; do
        for t in $THREADS; do
            out="$PARITY_DIR/${m}_eex_b${b}_t${t}.npy"
            if "$BUILD/eex" run "$PARITY_DIR/$m.eex" --threads "$t" --input "$PARITY_DIR/${m}_in_b$b.npy" --output "$out"; then
                check "$m batch $b threads $t" "$out" "$PARITY_DIR/${m}_out_b$b.npy"
            else
                fail=$((fail + 1)); echo "FAIL  $m batch $b threads $t: eex run failed"
            fi
        done
    done
    if [ "${REF:-1}" = 1 ]; then
        out="$PARITY_DIR/${m}_ref_b1.npy"
        if "$BUILD/eex" run "$PARITY_DIR/$m.eex" --kernels ref --input "$PARITY_DIR/${m}_in_b1.npy" --output "$out"; then
            check "$m batch 1 reference kernels" "$out" "$PARITY_DIR/${m}_out_b1.npy"
        else
            fail=$((fail + 1)); echo "FAIL  $m reference kernels: eex run failed"
        fi
    fi
done
# Depthwise -> pointwise pairs run as one pass (engine/exec.c, eex_exec_dw_pw) must
# give the bytes of the two run apart (EEX_FUSE=0), at 1 and 2 threads, and must
# have run paired (the bench's node table names such a kernel "dw...+1x1").
for m in mobilenet_v2 mobilenet_v3_small; do
    pairs=$("$BUILD/eex" bench "$PARITY_DIR/$m.eex" --batch 4 --runs 1 --warmup 0 --json | grep -c '"kernel": "dw[0-9x_s]*+1x1"' || true)
    for t in $THREADS; do
        fused="$PARITY_DIR/${m}_eex_b4_t${t}.npy" apart="$PARITY_DIR/${m}_apart_b4_t${t}.npy"
        if [ "$pairs" -gt 0 ] && EEX_FUSE=0 "$BUILD/eex" run "$PARITY_DIR/$m.eex" --threads "$t" \
                --input "$PARITY_DIR/${m}_in_b4.npy" --output "$apart" && cmp -s "$fused" "$apart"; then
            pass=$((pass + 1)); echo "ok    $m batch 4 threads $t: $pairs depthwise+pointwise pairs, same bytes as EEX_FUSE=0"
        else
            fail=$((fail + 1)); echo "FAIL  $m batch 4 threads $t: paired run ($pairs pairs) differs from EEX_FUSE=0 or failed"
        fi
    done
done
# Every split of a node's work computes each output with the same arithmetic
# (engine/exec.c), so any thread count gives the bytes of one thread. 3 threads
# cut the GEMM into 12 tasks: panel groups times pixel groups of other sizes
# than at 2.
for m in $MODELS; do
    one="$PARITY_DIR/${m}_eex_b4_t1.npy" three="$PARITY_DIR/${m}_eex_b4_t3.npy"
    if [ -f "$one" ] && "$BUILD/eex" run "$PARITY_DIR/$m.eex" --threads 3 --input "$PARITY_DIR/${m}_in_b4.npy" \
            --output "$three" && cmp -s "$one" "$three"; then
        same=""
        for t in $THREADS; do
            cmp -s "$one" "$PARITY_DIR/${m}_eex_b4_t${t}.npy" || same="$same $t"
        done
        if [ -z "$same" ]; then
            pass=$((pass + 1)); echo "ok    $m batch 4: threads $THREADS 3 give the same bytes"
        else
            fail=$((fail + 1)); echo "FAIL  $m batch 4: threads$same differ from 1 thread"
        fi
    else
        fail=$((fail + 1)); echo "FAIL  $m batch 4 threads 3: run failed or differs from 1 thread"
    fi
done
echo "parity: $pass passed, $fail failed"
[ "$fail" = 0 ]
