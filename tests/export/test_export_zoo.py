#!/usr/bin/python3
"""eex-export on torchvision backbones: early exits put on a ResNet-50, a
MobileNetV2, an EfficientNet-B0 and a ConvNeXt-Tiny (random weights; BatchNorm
statistics measured on random inputs as in tests/zoo/make_zoo.py), exported at
64x64, run by build/eex, and every exit and the final classifier compared with
PyTorch (float64) relative to max|ref|: <= 1e-4; and converter/eexref.py (what
`eex-export --check` runs) on the same files against PyTorch (float32).

Plain script: one line per model, then 'N passed, N failed'; exit status 1 on failure."""

import os
import subprocess
import sys
import tempfile
import traceback

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "converter"))
sys.path.insert(0, os.path.join(ROOT, "tests", "zoo"))
import eex_export  # noqa: E402
import eexfile     # noqa: E402
import make_zoo    # noqa: E402

EEX_BIN = os.path.join(ROOT, os.environ.get("BUILD", "build"), "eex")
SIDE, CLASSES, RTOL = 64, 1000, 1e-4
TMP = tempfile.mkdtemp(prefix="eex-test-export-zoo-")


def head(c):
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(c, CLASSES))


def stages_of(name, m):
    """(stages, final head): the backbone cut into the blocks exits can follow."""
    if name.startswith("resnet"):
        stem = nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool)
        return [stem, m.layer1, m.layer2, m.layer3, m.layer4], \
            nn.Sequential(m.avgpool, nn.Flatten(1), m.fc)
    if name.startswith("convnext"):    # its classifier flattens after its LayerNorm2d
        return list(m.features), nn.Sequential(m.avgpool, m.classifier)
    pool = getattr(m, "avgpool", nn.AdaptiveAvgPool2d(1))   # mobilenet_v2 pools in forward()
    return list(m.features), nn.Sequential(pool, nn.Flatten(1), m.classifier)


def spec_for(name):
    torch.manual_seed(0)
    import torchvision
    m = getattr(torchvision.models, name)(weights=None)
    make_zoo.randomise(m, torch.Generator().manual_seed(1), SIDE)
    stages, final = stages_of(name, m)
    x = torch.zeros(1, 3, SIDE, SIDE)
    chans = []
    with torch.no_grad():
        for s in stages:
            x = s(x)
            chans.append(x.shape[1])
    n = len(stages)
    at = sorted({max(1, n // 4), n // 2, (3 * n) // 4})   # three exits along the backbone
    torch.manual_seed(5)
    exits = [{"stage": i, "heads": {"pristine": head(chans[i])}} for i in at]
    model = nn.Module()
    model.stages = nn.ModuleList(stages)
    model.heads = nn.ModuleList([e["heads"]["pristine"] for e in exits])
    model.final = final
    model.eval()
    return model, {"name": f"{name}-ee", "input_size": (3, SIDE, SIDE), "stages": stages,
                   "exits": exits, "final": {"heads": {"pristine": final}}}


def run_case(name):
    model, spec = spec_for(name)
    path = os.path.join(TMP, f"{name}.eex")
    eex_export.export(model, spec, path)
    m = eexfile.read_eex(path)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, SIDE, SIDE)).astype(np.float32)
    np.save(os.path.join(TMP, "in.npy"), x)
    args = [EEX_BIN, "run", path, "--threads", "2", "--input", f"image={TMP}/in.npy"]
    for o in m["outputs"]:
        args += ["--output", f"{o}={TMP}/{o}.npy"]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, f"eex run failed: {r.stderr.strip()}"
    # the float64 reference, through the same composition eex_export traces
    plan = eex_export._Plan(model, spec)
    w = eex_export._wrapper(plan).eval().double()
    with torch.no_grad():
        ys = w(torch.from_numpy(x.astype(np.float64)))
    ref = {n: ys[i].numpy() for i, (n, _, _) in enumerate(plan.outputs)}
    worst = []
    for o in m["outputs"]:
        got = np.load(f"{TMP}/{o}.npy").astype(np.float64)
        peak = float(np.abs(ref[o]).max())
        assert got.shape == ref[o].shape, (o, got.shape, ref[o].shape)
        assert peak > 1e-3, f"{o}: max|ref| {peak} is too small to prove anything"
        rel = float(np.abs(got - ref[o]).max()) / peak
        assert rel <= RTOL, f"{o}: relative error {rel:.2e} > {RTOL}"
        worst.append(f"{o} {rel:.1e}")
    # and what `eex-export --check` runs: the numpy interpreter (eexref) on the file
    for o, (diff, peak) in eex_export.compare(model.float(), spec, path).items():
        assert diff <= RTOL * peak, f"eexref {o}: {diff:.2e} of max|ref| {peak:.2e}"
    return ", ".join(worst)


def main():
    if not os.access(EEX_BIN, os.X_OK):
        print(f"test_export_zoo: {EEX_BIN} is not built")
        return 1
    torch.set_num_threads(1)
    import warnings
    warnings.filterwarnings("ignore")
    passed = failed = 0
    for name in ("resnet50", "mobilenet_v2", "efficientnet_b0", "convnext_tiny"):
        try:
            msg = run_case(name)
            passed += 1
            print(f"ok   {name}: {msg}")
        except Exception:
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
