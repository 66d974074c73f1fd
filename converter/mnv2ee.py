#!/usr/bin/python3
"""The reference speed model: MobileNetV2 (torchvision, random weights) at 1x3x224x224
as an early-exit model with three expert sets and the CollabAR distortion detector.

    mnv2ee.py [-o models/mobilenetv2-ee-224.eex] [--check]
    eex-export converter/mnv2ee.py -o OUT.eex        (the same model, through build())

- Backbone: torchvision mobilenet_v2(weights=None) after torch.manual_seed(0); its 19
  `features` blocks are the stages. Weights are random: speed and wire size do not
  depend on them.
- BatchNorm statistics: with default initialisation a random MobileNetV2 in eval mode
  shrinks its activations layer after layer (the final logits come out near 1e-9, so
  parity checks on them mean nothing and every exit is equally unsure). build() therefore
  sets each BN layer's running mean/var from one train-mode pass of the features over a
  seeded random batch (4 x 3 x 224 x 224, normal(0, 1)); --raw-bn skips that.
- Exits: after the `features` block where the cumulative backbone FLOPs first reach
  25%, 50% and 75% (the SPINN placement the paper uses). FLOPs are counted per block
  from a forward pass: 2 x the multiply-accumulates of every convolution (BN folds into
  the convs; activations and adds are not counted). The branch reads that block's output
  and the block stays in the backbone (the authors' code dropped it; we do not).
  At 224x224 this gives features.3 (56x56x24, 25.3%), features.10 (14x14x64, 50.7%) and
  features.14 (7x7x160, 75.3%).
- Each exit head: AdaptiveAvgPool2d(2) -> Flatten -> Linear(4*C -> 1000). The file has
  no adaptive pooling: eex_export writes each as an AveragePool with the same windows
  (56 -> 2: kernel 28 stride 28; 14 -> 2: kernel 7 stride 7; 7 -> 2: kernel 4 stride 3,
  overlapping windows [0,4) and [3,7), exactly PyTorch's adaptive windows).
- Expert sets pristine, blur, noise: each has its own exit heads (seeded per expert and
  exit) and its own final classifier (pristine: torchvision's classifier; blur, noise:
  copies of it with other seeded weights): global average pool -> Dropout -> Linear
  1280 -> 1000.
- Detector (CollabAR layout) on a 1x64x64 spectrum: Conv 1->32 k3 s2, ReLU, Conv
  32->16 k3, ReLU, MaxPool 2, Conv 16->1 1x1, ReLU, MaxPool 2, Flatten, Linear 49 -> 3
  (classes pristine, blur, noise).
- Side-exit head weights are rounded to float16 values (eex_export.half_side_heads), so
  the file stores them as float16 and the engine reads half the bytes: a 1000-class
  head is a matrix-vector product bound by memory (docs/performance.md). The model is
  the rounded one on both sides; --f32-heads keeps float32.
- Temperatures: pristine exits 1.27 / 0.91 / 0.63 and final 0.99 (the paper's); 1.0 for
  the other experts. ee.threshold 0.8. ImageNet mean/std; labels class0..class999.
- Cuts: at each exit's attach value.
"""

import argparse
import copy
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SIZE = 224
CLASSES = 1000
EXPERTS = ["pristine", "blur", "noise"]
FRACTIONS = (0.25, 0.50, 0.75)
PRISTINE_T = {"exits": [1.27, 0.91, 0.63], "final": 0.99}
SPECTRUM = 64
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
DEFAULT_OUT = os.path.join(HERE, "..", "models", "mobilenetv2-ee-224.eex")


def block_flops(blocks, x):
    """FLOPs of each block (2 x conv multiply-accumulates) and each block's output
    shape, from a forward pass on x."""
    import torch
    count = [0]

    def hook(mod, inp, out):
        kh, kw = mod.kernel_size
        count[0] += 2 * out.numel() // out.shape[0] * (mod.in_channels // mod.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for b in blocks for m in b.modules()
               if isinstance(m, torch.nn.Conv2d)]
    flops, shapes = [], []
    try:
        with torch.no_grad():
            for b in blocks:
                count[0] = 0
                x = b(x)
                flops.append(count[0])
                shapes.append(list(x.shape))
    finally:
        for h in handles:
            h.remove()
    return flops, shapes


def placement(flops, fractions=FRACTIONS):
    """Index of the first block whose cumulative FLOPs reach each fraction of the
    total."""
    total, cum, out = sum(flops), 0, []
    cums = []
    for f in flops:
        cum += f
        cums.append(cum / total)
    for fr in fractions:
        out.append(next(i for i, c in enumerate(cums) if c >= fr))
    return out, cums


def collabar_detector(size=SPECTRUM, classes=3):
    from torch import nn
    s = (((size - 3) // 2 + 1) - 2) // 2 // 2
    return nn.Sequential(nn.Conv2d(1, 32, 3, stride=2), nn.ReLU(),
                         nn.Conv2d(32, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(s * s, classes))


def calibrate_bn(blocks, x):
    """Sets every BatchNorm's running statistics to those of one train-mode pass on x
    (cumulative average over one batch = that batch's statistics)."""
    import torch
    bns = [m for b in blocks for m in b.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        with torch.no_grad():
            for b in blocks:
                x = b(x)
    finally:
        for m, (mom, tr) in zip(bns, saved):
            m.momentum = mom
            m.train(tr)


def build(verbose=True, raw_bn=False, f32_heads=False):
    """Returns (model, spec) for eex_export.export."""
    import torch
    import torchvision
    import eex_export
    from torch import nn

    torch.manual_seed(0)
    model = nn.Module()
    model.backbone = torchvision.models.mobilenet_v2(weights=None).eval()
    feats = model.backbone.features
    if not raw_bn:
        gen = torch.Generator().manual_seed(1)
        calibrate_bn(list(feats), torch.randn(4, 3, SIZE, SIZE, generator=gen))
    flops, shapes = block_flops(list(feats), torch.zeros(1, 3, SIZE, SIZE))
    where, cums = placement(flops)
    if verbose:
        print(f"mnv2ee: features FLOPs (2 x conv MACs) at {SIZE}x{SIZE}: total "
              f"{sum(flops) / 1e6:.1f} MFLOPs", file=sys.stderr)
        for i, (f, c, s) in enumerate(zip(flops, cums, shapes)):
            mark = f"  <- exit {where.index(i) + 1}" if i in where else ""
            print(f"mnv2ee:   features.{i:<2} {f / 1e6:7.1f} MFLOPs  cumulative "
                  f"{100 * c:5.1f}%  out {s}{mark}", file=sys.stderr)

    model.exits = nn.ModuleList()
    for k, i in enumerate(where, start=1):
        c = shapes[i][1]
        heads = nn.ModuleDict()
        for j, e in enumerate(EXPERTS):
            torch.manual_seed(1000 + 10 * k + j)
            heads[e] = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                     nn.Linear(4 * c, CLASSES))
        model.exits.append(heads)
    model.finals = nn.ModuleDict()
    classifier = model.backbone.classifier          # Dropout(0.2), Linear(1280, 1000)
    for j, e in enumerate(EXPERTS):
        cls = classifier
        if j:
            cls = copy.deepcopy(classifier)
            torch.manual_seed(2000 + j)
            cls[1].reset_parameters()
        model.finals[e] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), cls)
    torch.manual_seed(3000)
    model.detector = collabar_detector()
    model.eval()

    spec = {
        "name": f"mobilenetv2-ee-{SIZE}",
        "input_size": (3, SIZE, SIZE),
        "mean": MEAN, "std": STD,
        "labels": [f"class{i}" for i in range(CLASSES)],
        "experts": EXPERTS,
        "stages": [f"backbone.features.{i}" for i in range(len(feats))],
        "exits": [{"stage": i, "heads": dict(model.exits[k].items()),
                   "temperature": {"pristine": PRISTINE_T["exits"][k]}}
                  for k, i in enumerate(where)],
        "final": {"heads": dict(model.finals.items()),
                  "temperature": {"pristine": PRISTINE_T["final"]}},
        "cuts": list(where),
        "detector": {"module": model.detector, "input_size": (1, SPECTRUM, SPECTRUM),
                     "classes": EXPERTS},
        "threshold": 0.8,
    }
    if not f32_heads:
        eex_export.half_side_heads(spec)
    return model, spec


def main(argv=None):
    p = argparse.ArgumentParser(prog="mnv2ee.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default=os.path.normpath(DEFAULT_OUT),
                   help="the .eex file to write (default: %(default)s)")
    p.add_argument("--check", action="store_true",
                   help="compare every output of the file (run by eexref.py) with "
                        "PyTorch on a random input")
    p.add_argument("--raw-bn", action="store_true",
                   help="keep the default BatchNorm statistics (mean 0, var 1)")
    p.add_argument("--f32-heads", action="store_true",
                   help="keep float32 weights in the side-exit heads (default: rounded "
                        "to float16 and stored so)")
    args = p.parse_args(argv)
    import torch
    import eex_export
    torch.set_num_threads(2)
    model, spec = build(raw_bn=args.raw_bn, f32_heads=args.f32_heads)
    t0 = time.time()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    s = eex_export.export(model, spec, args.output)
    print(f"mnv2ee: {args.output}: {s['nodes']} nodes, {s['params']} params, "
          f"{s['bytes']} bytes, {time.time() - t0:.1f} s", file=sys.stderr)
    for k, v in s["attach"].items():
        print(f"mnv2ee: exit {k} attach {v} {s['shapes'][v]}", file=sys.stderr)
    print(f"mnv2ee: final attach {s['final_attach']} {s['shapes'][s['final_attach']]}",
          file=sys.stderr)
    print(f"mnv2ee: cuts {s['cuts']}; outputs {', '.join(s['outputs'])}", file=sys.stderr)
    if args.check:
        diffs = eex_export.compare(model, spec, args.output, batch=1)
        bad = {n: d for n, (d, r) in diffs.items() if d > 1e-4 * max(1.0, r)}
        worst = max(d for d, _ in diffs.values())
        print(f"mnv2ee: check: max|diff| {worst:.3g} over {len(diffs)} outputs"
              f"{'; FAILED ' + str(bad) if bad else ''}", file=sys.stderr)
        return 3 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
