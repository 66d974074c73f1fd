#!/bin/sh
# The command line as a user meets it: help texts, error messages and exit
# codes, `info --json`, and classifying an image file end to end.
set -u
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
EEX="$BUILD/eex"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok    $1"; }
bad() { fail=$((fail + 1)); echo "FAIL  $1"; }

# expect_rc LABEL RC PATTERN -- CMD...: exit code RC and PATTERN in stdout+stderr
expect_rc() {
    label=$1 rc=$2 pat=$3
    shift 4
    "$@" >"$T/out" 2>&1
    got=$?
    if [ "$got" = "$rc" ] && grep -q -- "$pat" "$T/out"; then ok "$label"; else
        bad "$label (exit $got, want $rc; output: $(head -c 300 "$T/out"))"; fi
}

expect_rc "top-level help" 0 "commands:" -- "$EEX" --help
expect_rc "no command is a usage error" 2 "usage" -- "$EEX"
expect_rc "unknown command" 2 "unknown command 'frobnicate'" -- "$EEX" frobnicate
expect_rc "info --help" 0 "usage: eex info" -- "$EEX" info --help
expect_rc "run --help" 0 "usage: eex run" -- "$EEX" run --help
expect_rc "info without model" 2 "missing MODEL.eex" -- "$EEX" info
expect_rc "missing model file" 1 "cannot open '/nonexistent.eex'" -- "$EEX" info /nonexistent.eex
printf 'not a model at all, just text' >"$T/junk.eex"
expect_rc "junk file names the magic" 1 "EEX_ERR_MAGIC" -- "$EEX" info "$T/junk.eex"
expect_rc "run with unknown option" 2 "unknown option '--frob'" -- "$EEX" run x.eex --frob 1
expect_rc "run --input without --output" 2 "go together" -- "$EEX" run x.eex --input a.npy
expect_rc "run --threads checks its value" 2 "--threads takes" -- "$EEX" run x.eex img.png --threads zero

# a small model through the real converter: conv -> relu -> gap -> flatten -> dense
$PY - "$T" <<'PYEOF' || { bad "building the test model"; }
import sys, numpy as np, torch
d = sys.argv[1]
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()
torch.onnx.export(m, torch.zeros(1, 3, 16, 16), f"{d}/m.onnx", opset_version=13)
open(f"{d}/labels.txt", "w").write("cat\ndog\nbird\nfish\n")
img = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
plt.imsave(f"{d}/img.png", img)
x = torch.tensor(np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32))
np.save(f"{d}/in.npy", x.numpy()); np.save(f"{d}/ref.npy", m(x).detach().numpy())
PYEOF
$PY converter/eex-convert "$T/m.onnx" -o "$T/m.eex" --mean 0.5,0.5,0.5 --std 0.25,0.25,0.25 --labels "$T/labels.txt" --name tiny 2>/dev/null
expect_rc "info table" 0 "nodes" -- "$EEX" info "$T/m.eex"
if "$EEX" info "$T/m.eex" --json | $PY -c 'import json,sys; j=json.load(sys.stdin); assert j["name"]=="tiny" and j["inputs"][0]["shape"]==[1,3,16,16] and j["outputs"][0]["shape"]==[1,4] and j["labels"]==4 and j["macs"]>0 and j["arena_bytes"]>0, j'; then
    ok "info --json is valid and right"; else bad "info --json"; fi
expect_rc "run an image prints labelled top classes" 0 "bird\|cat\|dog\|fish" -- "$EEX" run "$T/m.eex" "$T/img.png"
if "$EEX" run "$T/m.eex" "$T/img.png" --json --top 2 | $PY -c 'import json,sys; j=json.load(sys.stdin); assert len(j["top"])==2 and j["label"] in ("cat","dog","bird","fish") and 0<j["confidence"]<=1, j'; then
    ok "run --json"; else bad "run --json"; fi
expect_rc "image that is not an image" 1 "cannot decode image" -- "$EEX" run "$T/m.eex" "$T/junk.eex"
"$EEX" run "$T/m.eex" --input "$T/in.npy" --output "$T/out.npy" && $PY tests/parity/check.py "$T/out.npy" "$T/ref.npy" >/dev/null \
    && ok "npy round trip (batch 2)" || bad "npy round trip"
$PY -c "import numpy as np; np.save('$T/wrong.npy', np.zeros((1,3,15,16), np.float32)); np.save('$T/f64.npy', np.zeros((1,3,16,16)))"
expect_rc "wrong input shape names the input" 1 "must be \[N,3,16,16\]" -- "$EEX" run "$T/m.eex" --input "$T/wrong.npy" --output "$T/o.npy"
expect_rc "float64 input is refused" 1 "float32" -- "$EEX" run "$T/m.eex" --input "$T/f64.npy" --output "$T/o.npy"
expect_rc "unwritable output" 1 "cannot write" -- "$EEX" run "$T/m.eex" --input "$T/in.npy" --output /nonexistent/dir/o.npy

# What a target reads from outside the repository, missing: one line that names the
# Debian package, no traceback (make's own "Error 1" line follows it).
for target in demo train experiment; do
    make --no-print-directory -s -o "$BUILD/eex" "$target" BUILD="$BUILD" FMNIST_DIR="$T/no-fmnist" >"$T/out" 2>&1
    rc=$?
    lines=$(grep -c "^make $target: " "$T/out")
    if [ "$rc" != 0 ] && [ "$lines" = 1 ] && grep -q "^make $target: .*dataset-fashion-mnist" "$T/out" &&
        ! grep -q Traceback "$T/out"; then ok "make $target without Fashion-MNIST names the package"
    else bad "make $target without Fashion-MNIST (exit $rc; output: $(head -c 400 "$T/out"))"; fi
done
expect_rc "eval without Fashion-MNIST names the package" 1 "no such file (Fashion-MNIST is Debian's dataset-fashion-mnist" \
    -- "$EEX" eval models/fmnist-ee.eex --dataset "$T/fashion-mnist" --limit 1
expect_rc "eval on a folder without IDX files" 1 "t10k-images-idx3-ubyte\[.gz\]: no such file$" \
    -- "$EEX" eval models/fmnist-ee.eex --dataset "$T" --limit 1
# every Debian package that a need.sh check names is one `make deps` installs
make --no-print-directory -s print-deps >"$T/deps"
named=$(grep -ho "=\(python3-[a-z0-9-]*\|dataset-[a-z0-9-]*\)" mk/*.mk tools/demo.sh | tr -d = | sort -u)
absent=""
for p in $named dataset-fashion-mnist libonnx-testdata; do grep -qx "$p" "$T/deps" || absent="$absent $p"; done
if [ -n "$named" ] && [ -z "$absent" ]; then ok "make print-deps lists every package the targets check for"
else bad "make print-deps lacks:$absent"; fi

echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
