#!/usr/bin/python3
"""Builds the parity fixtures: torchvision models (random weights, seeded) exported to
ONNX, converted to .eex, and random inputs with PyTorch's outputs for them.

    make_models.py --out DIR [--models mobilenet_v2,resnet18]

Writes per model: <m>.onnx, <m>.eex, <m>_in_b1.npy, <m>_out_b1.npy, <m>_in_b4.npy,
<m>_out_b4.npy. A file is rebuilt only when it is missing or older than this script
(the .eex also when the converter changed).
"""

import argparse
import glob
import os
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTER = os.path.normpath(os.path.join(HERE, "..", "..", "converter"))
EEX_CONVERT = os.path.join(CONVERTER, "eex-convert")
MODELS = ["mobilenet_v2", "mobilenet_v3_small", "resnet18", "squeezenet1_1"]
# built only when asked for (make bench's BENCH_MODELS), not by the parity test
BENCH_ONLY = ["resnet50", "efficientnet_b0"]
BATCHES = (1, 4)
MEAN, STD = "0.485,0.456,0.406", "0.229,0.224,0.225"


def log(msg):
    print(f"make_models: {msg}", flush=True)


def fresh(path, deps):
    """True if path exists and is newer than every file in deps."""
    if not os.path.exists(path):
        return False
    t = os.path.getmtime(path)
    return all(os.path.getmtime(d) < t for d in deps)


def randomise_batchnorm(model, gen):
    """Random-init BN in eval mode is the identity (mean 0, var 1, weight 1, bias 0),
    which would make BN folding trivially right. Give every BN real statistics."""
    import torch
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)


def build(name):
    import torch
    import torchvision
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None)
    randomise_batchnorm(model, torch.Generator().manual_seed(1))
    return model.eval()


def make(name, out, script_deps, conv_deps):
    import torch
    onnx_path = os.path.join(out, f"{name}.onnx")
    eex_path = os.path.join(out, f"{name}.eex")
    npys = {b: (os.path.join(out, f"{name}_in_b{b}.npy"),
                os.path.join(out, f"{name}_out_b{b}.npy")) for b in BATCHES}
    model = None

    if not fresh(onnx_path, script_deps):
        t0 = time.time()
        model = model or build(name)
        # PRESERVE (with the model in eval mode) keeps BatchNormalization nodes in the
        # ONNX graph; the default (EVAL) would let torch fold them into the convs
        # itself, and eex-convert's own folding would go untested.
        torch.onnx.export(model, torch.zeros(1, 3, 224, 224), onnx_path,
                          training=torch.onnx.TrainingMode.PRESERVE,
                          opset_version=13, input_names=["input"],
                          output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          do_constant_folding=True)
        log(f"{name}: exported {onnx_path} ({time.time() - t0:.1f}s)")
    else:
        log(f"{name}: {onnx_path} is up to date")

    if not fresh(eex_path, script_deps + conv_deps + [onnx_path]):
        r = subprocess.run([EEX_CONVERT, onnx_path, "-o", eex_path, "--mean", MEAN,
                            "--std", STD, "--name", name],
                           stderr=subprocess.PIPE, text=True)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            raise SystemExit(f"make_models: {name}: eex-convert failed ({r.returncode})")
        log(f"{name}: converted {eex_path}")
    else:
        log(f"{name}: {eex_path} is up to date")

    for b, (in_path, out_path) in npys.items():
        if fresh(in_path, script_deps) and fresh(out_path, script_deps + [in_path]):
            log(f"{name}: batch {b} inputs/outputs are up to date")
            continue
        rng = np.random.default_rng(1000 + b)
        x = rng.standard_normal((b, 3, 224, 224), dtype=np.float32)
        model = model or build(name)
        with torch.no_grad():
            y = model(torch.from_numpy(x)).numpy().astype(np.float32)
        np.save(in_path, x)
        np.save(out_path, y)
        log(f"{name}: wrote {os.path.basename(in_path)} {list(x.shape)}, "
            f"{os.path.basename(out_path)} {list(y.shape)}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="make_models.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--models", default=",".join(MODELS),
                   help=f"comma-separated subset of {','.join(MODELS + BENCH_ONLY)}")
    args = p.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    bad = [m for m in names if m not in MODELS + BENCH_ONLY]
    if bad:
        p.error(f"unknown model(s): {', '.join(bad)}")
    os.makedirs(args.out, exist_ok=True)
    import torch
    torch.set_num_threads(min(2, torch.get_num_threads()))
    # torch warns about constant folding under PRESERVE even for a model in eval mode,
    # where it is safe.
    warnings.filterwarnings("ignore", message="It is recommended that constant folding")
    script_deps = [os.path.abspath(__file__)]
    conv_deps = [EEX_CONVERT] + glob.glob(os.path.join(CONVERTER, "*.py"))
    for name in names:
        make(name, args.out, script_deps, conv_deps)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
