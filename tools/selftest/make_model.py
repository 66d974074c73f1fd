#!/usr/bin/python3
"""Writes tools/selftest_model.c: the tiny model `eex selftest` runs, embedded
in the binary with a fixed input and PyTorch's output for it, so that the
check needs no file on the board.

    /usr/bin/python3 tools/selftest/make_model.py [OUT.c]

The network (3x24x24 -> 10, seeded random weights, BatchNorm with real
statistics) touches every fast kernel the engine dispatches: a strided stem
conv with ReLU6, depthwise 3x3 s1/s2, 5x5 s1/s2 and a dilated one, 1x1 and
grouped convs, a squeeze-excite block (global pool, hardsigmoid, per-channel
mul), a residual add, max and average pools, a standalone sigmoid, a float16
dense layer (weights rounded to float16 values, so the converter stores them
as float16) and a float32 one. The expected output is PyTorch's, in float64
on the same weights, at batch 2. Run it again only when the model should
change; the output is committed.
"""
import os
import subprocess
import sys
import tempfile

import warnings

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CONVERT = os.path.join(ROOT, "converter", "eex-convert")


def bn(c):
    return nn.BatchNorm2d(c)


class SE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, r, 1)
        self.fc2 = nn.Conv2d(r, c, 1)

    def forward(self, x):
        s = torch.relu(self.fc1(self.pool(x)))
        return x * nn.functional.hardsigmoid(self.fc2(s))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), bn(8), nn.ReLU6())   # 12x12
        self.dw1 = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), bn(8), nn.ReLU6())
        self.pw1 = nn.Sequential(nn.Conv2d(8, 12, 1, bias=False), bn(12))
        self.dw2 = nn.Sequential(nn.Conv2d(12, 12, 3, 2, 1, groups=12), nn.ReLU())          # 6x6
        self.dw5 = nn.Sequential(nn.Conv2d(12, 12, 5, 1, 2, groups=12), nn.Hardswish())
        self.se = SE(12, 4)
        self.dw5s2 = nn.Conv2d(12, 12, 5, 2, 2, groups=12)                                  # 3x3
        self.group = nn.Sequential(nn.Conv2d(12, 12, 3, 1, 1, groups=3), nn.ReLU())
        self.dil = nn.Conv2d(12, 12, 3, 1, 2, dilation=2, groups=12)
        self.maxp = nn.MaxPool2d(3, 1, 1)
        self.avgp = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.fc1 = nn.Linear(24, 176)
        self.fc2 = nn.Linear(176, 10)

    def forward(self, x):
        x = self.pw1(self.dw1(self.stem(x)))
        x = self.dw2(x)
        x = x + self.se(self.dw5(x))
        x = self.dil(self.group(self.dw5s2(x)))
        x = torch.cat([self.maxp(x), torch.sigmoid(self.avgp(x))], 1)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc2(torch.relu(self.fc1(x)))


def build():
    torch.manual_seed(17)
    m = Tiny()
    g = torch.Generator().manual_seed(18)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                mod.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
                mod.bias.copy_(torch.randn(c, generator=g) * 0.1)
        # float16 values: the converter stores this layer as float16
        m.fc1.weight.copy_(m.fc1.weight.half().float())
    return m.eval()


def c_floats(name, a):
    vals = ", ".join(float(v).hex() + "f" for v in a.reshape(-1))
    return f"const float {name}[{a.size}] = {{{vals}}};\n"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tools", "selftest_model.c")
    torch.set_num_threads(1)
    # constant folding is safe here: the model is in eval mode (as in tests/parity)
    warnings.filterwarnings("ignore", message="It is recommended that constant folding")
    m = build()
    x = np.random.default_rng(17).standard_normal((2, 3, 24, 24)).astype(np.float32)
    with torch.no_grad():
        want = m.double()(torch.from_numpy(x).double()).numpy()
        m.float()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, eex_path = os.path.join(tmp, "t.onnx"), os.path.join(tmp, "t.eex")
        torch.onnx.export(m, torch.zeros(1, 3, 24, 24), onnx_path,
                          training=torch.onnx.TrainingMode.PRESERVE, opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          do_constant_folding=True)
        subprocess.run([CONVERT, onnx_path, "-o", eex_path, "--name", "selftest-tiny"], check=True)
        blob = open(eex_path, "rb").read()
    lines = [", ".join(str(b) for b in blob[i:i + 24]) for i in range(0, len(blob), 24)]
    with open(out, "w") as f:
        f.write("/* Generated by tools/selftest/make_model.py: the tiny model `eex selftest`\n"
                " * runs, its input (batch 2) and PyTorch's float64 output for it. */\n"
                "#include \"selftest_model.h\"\n\n")
        f.write(f"_Alignas(64) const unsigned char selftest_model[{len(blob)}] = {{\n")
        f.write(",\n".join(lines))
        f.write("};\nconst size_t selftest_model_size = sizeof selftest_model;\n")
        f.write(c_floats("selftest_input", x))
        f.write(c_floats("selftest_expected", want.astype(np.float32)))
    print(f"make_model: wrote {out} (model {len(blob)} bytes, output {list(want.shape)})")


if __name__ == "__main__":
    main()
