#!/usr/bin/python3
"""Builds the model-zoo parity fixtures: every torchvision CNN classifier (random
weights, seeded, with random BatchNorm statistics and affine parameters so that
outputs are of order 1), exported to ONNX at a small input size, with random inputs
and PyTorch's outputs for them.

    make_zoo.py --out DIR [--models resnet18,densenet121]

Writes per model <m>.onnx, <m>_in_b<B>.npy, <m>_out_b<B>.npy; a file is rebuilt only
when missing or older than this script. Conversion is left to run.sh, so that a
converter change does not re-export anything.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

# name -> (input side, ONNX opset, batches). Small inputs keep the test fast; the
# exceptions need their size: alexnet and vgg end in an adaptive average pool to
# 6x6 / 7x7 that torch exports only when it divides the feature map (224 -> 6, 7);
# inception_v3 needs >= 75. Opsets spread over 11..17 so every supported opset is
# exercised by a real exporter (convnext needs 17 for LayerNormalization).
ZOO = {
    "alexnet": (224, 11, (1, 3)),
    "vgg11_bn": (224, 12, (1,)),
    "resnet18": (64, 11, (1, 3)),
    "resnet50": (64, 13, (1, 3)),
    "resnext50_32x4d": (64, 14, (1, 3)),
    "wide_resnet50_2": (64, 15, (1,)),
    "squeezenet1_0": (64, 12, (1, 3)),
    "squeezenet1_1": (64, 16, (1, 3)),
    "densenet121": (64, 13, (1, 3)),
    "inception_v3": (96, 13, (1, 3)),
    "googlenet": (64, 14, (1, 3)),
    "shufflenet_v2_x1_0": (64, 11, (1, 3)),
    "mobilenet_v2": (64, 15, (1, 3)),
    "mobilenet_v3_small": (64, 16, (1, 3)),
    "mobilenet_v3_large": (64, 13, (1, 3)),
    "mnasnet0_5": (64, 12, (1, 3)),
    "mnasnet1_0": (64, 17, (1, 3)),
    "efficientnet_b0": (64, 13, (1, 3)),
    "efficientnet_v2_s": (64, 16, (1, 3)),
    "regnet_x_400mf": (64, 14, (1, 3)),
    "regnet_y_400mf": (64, 15, (1, 3)),
    "convnext_tiny": (64, 17, (1, 3)),
}


def log(msg):
    print(f"make_zoo: {msg}", flush=True)


def fresh(path, deps):
    if not os.path.exists(path):
        return False
    t = os.path.getmtime(path)
    return all(os.path.getmtime(d) < t for d in deps)


def randomise(model, gen, side):
    """torchvision's random init leaves BatchNorm and LayerNorm at the identity and
    ConvNeXt's layer scale at 1e-6, which hides most of the network from a parity
    test: outputs near 1e-14, or, with arbitrary BatchNorm statistics, activations
    that explode or die so that every input gives the same output. So: random
    affine parameters and layer scales, then BatchNorm statistics measured on
    random inputs (cumulative averages over a few batches in training mode), so
    that every layer sees activations of order 1 and the output depends on the
    input."""
    import torch
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                m.reset_running_stats()
                m.momentum = None
            elif isinstance(m, torch.nn.LayerNorm):
                c = m.weight.numel()
                m.weight.copy_((torch.rand(c, generator=gen) * 0.5 + 0.75).view_as(m.weight))
                m.bias.copy_((torch.randn(c, generator=gen) * 0.1).view_as(m.bias))
            if hasattr(m, "layer_scale") and isinstance(m.layer_scale, torch.nn.Parameter):
                ls = m.layer_scale
                ls.copy_(torch.rand(ls.shape, generator=gen) * 0.4 + 0.1)
        model.train()
        for _ in range(3):
            model(torch.randn(4, 3, side, side, generator=gen))
    model.eval()


def normalise_output(model, side):
    """Scales the last Linear or Conv2d (a positive factor, which commutes with a
    ReLU after it) so that max|output| is 1 on a probe input: the random nets
    range from 0.03 (alexnet) to 1e10 (inception_v3) otherwise."""
    import torch
    last = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))][-1]
    probe = torch.from_numpy(np.random.default_rng(7).standard_normal((1, 3, side, side),
                                                                      dtype=np.float32))
    with torch.no_grad():
        peak = float(model(probe).abs().max())
        last.weight.mul_(1.0 / peak)
        if last.bias is not None:
            last.bias.mul_(1.0 / peak)


def build(name):
    import torch
    import torchvision
    torch.manual_seed(0)
    kw = {"aux_logits": False, "init_weights": True} if name in ("inception_v3", "googlenet") else {}
    model = getattr(torchvision.models, name)(weights=None, **kw)
    randomise(model, torch.Generator().manual_seed(1), ZOO[name][0])
    normalise_output(model, ZOO[name][0])
    return model


def make(name, out, deps):
    import torch
    side, opset, batches = ZOO[name]
    onnx_path = os.path.join(out, f"{name}.onnx")
    model = None
    if not fresh(onnx_path, deps):
        t0 = time.time()
        model = build(name)
        # PRESERVE keeps BatchNormalization nodes, so eex-convert's folding is tested.
        torch.onnx.export(model, torch.zeros(1, 3, side, side), onnx_path,
                          training=torch.onnx.TrainingMode.PRESERVE,
                          opset_version=opset, input_names=["input"],
                          output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          do_constant_folding=True)
        log(f"{name}: exported {side}x{side} opset {opset} ({time.time() - t0:.1f}s)")
    for b in batches:
        in_path = os.path.join(out, f"{name}_in_b{b}.npy")
        out_path = os.path.join(out, f"{name}_out_b{b}.npy")
        if fresh(in_path, deps) and fresh(out_path, deps + [in_path]):
            continue
        rng = np.random.default_rng(2000 + b)
        x = rng.standard_normal((b, 3, side, side), dtype=np.float32)
        model = model or build(name)
        # The reference is computed in float64: these random nets amplify rounding
        # (PyTorch's own float32 result is up to ~7e-5 of max|out| off on
        # inception_v3), and eex's error is what is measured, not PyTorch's.
        with torch.no_grad():
            y32 = model(torch.from_numpy(x)).numpy()
            y = model.double()(torch.from_numpy(x).double()).numpy()
            model.float()
        peak = float(np.abs(y).max())
        np.save(in_path, x)
        np.save(out_path, y.astype(np.float32))
        log(f"{name}: batch {b}: max|out| {peak:.3g}, between images "
            f"{float(np.abs(y[0] - y[-1]).max()) / peak:.2f} (relative), PyTorch float32 "
            f"error {float(np.abs(y32 - y).max()) / peak:.1e}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="make_zoo.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--models", default=",".join(ZOO))
    p.add_argument("--list", action="store_true", help="print 'name side batches' lines")
    args = p.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    bad = [m for m in names if m not in ZOO]
    if bad:
        p.error(f"unknown model(s): {', '.join(bad)}")
    if args.list:
        for m in names:
            print(m, ZOO[m][0], " ".join(map(str, ZOO[m][2])))
        return 0
    os.makedirs(args.out, exist_ok=True)
    import torch
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    deps = [os.path.abspath(__file__)]
    for name in names:
        make(name, args.out, deps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
