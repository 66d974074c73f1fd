#!/usr/bin/python3
"""Background variants of a 28x28 IDX dataset, for detectors and experts that must not
lean on black backgrounds (docs/distortions.md, "Backgrounds").

Fashion-MNIST's backgrounds are exactly 0, so light noise is visible in the pixels as
lifted zeros. The variants take that away:

  inverted   255 - x: a white background (noise is clipped at 255 instead of 0, so a
             detector can still find it at the clip, just on the other side).
  textured   the garment over a smooth random background with mild texture: no
             pixel is pinned at 0 or 255, so neither clipping nor flat backgrounds
             give light noise away.

textured, per image i (all draws from numpy's PCG64 seeded with SEED + i, SEED=1000
for train images and 2000 for test images, so train and test never share a
background):
  base     a 4x4 grid of levels uniform in [40, 200], upsampled to 28x28 bilinearly
           (align-corners), a smooth field;
  texture  a sum of two sinusoidal gratings, each of amplitude uniform in [2, 5]
           grey levels, period uniform in [3, 8] pixels, random orientation and phase:
           fine structure a noise detector must not mistake for noise;
  blend    alpha = clip(x / 96, 0, 1) (the garment's own pixels are its mask: Fashion-
           MNIST's are 0 outside the garment and ramp up at its edges);
           out = round(alpha * x' + (1 - alpha) * (base + texture)), clipped to 0..255,
           where x' = x scaled to [50, 255] so dark garments stay visible on a
           mid-grey background.

The distortions (blur, noise) are applied afterwards, by `eex eval` and train.py,
as on any dataset. The output is a dataset folder (four IDX files, gzipped) that
`make train DATASET=...` and `eex eval --dataset` read, plus labels.txt when a
labels file is given.

    variants.py --variant inverted|textured|mix [--src DIR] [--labels FILE] -o OUT
    mix: each image takes one of clean / inverted / textured, chosen per image
         (seeded), for detectors trained on a mix.
"""

import argparse
import gzip
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402

SEEDS = {"train": 1000, "test": 2000, "mix": 3000}
VARIANTS = ("clean", "inverted", "textured")


def _smooth_field(rng, h, w):
    grid = rng.uniform(40.0, 200.0, size=(4, 4))
    ys = np.linspace(0, 3, h)
    xs = np.linspace(0, 3, w)
    y0 = np.minimum(np.floor(ys).astype(int), 2)
    x0 = np.minimum(np.floor(xs).astype(int), 2)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    g00 = grid[y0][:, x0]
    g01 = grid[y0][:, x0 + 1]
    g10 = grid[y0 + 1][:, x0]
    g11 = grid[y0 + 1][:, x0 + 1]
    return (g00 * (1 - fy) * (1 - fx) + g01 * (1 - fy) * fx + g10 * fy * (1 - fx) + g11 * fy * fx)


def _texture(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    t = np.zeros((h, w))
    for _ in range(2):
        amp = rng.uniform(2.0, 5.0)
        period = rng.uniform(3.0, 8.0)
        theta = rng.uniform(0, np.pi)
        phase = rng.uniform(0, 2 * np.pi)
        t += amp * np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase)
    return t


def textured(x_u8, seed):
    """[N, H, W] uint8 -> the textured variant (see the module doc)."""
    n, h, w = x_u8.shape
    out = np.empty_like(x_u8)
    for i in range(n):
        rng = np.random.default_rng(seed + i)
        bg = _smooth_field(rng, h, w) + _texture(rng, h, w)
        x = x_u8[i].astype(np.float64)
        alpha = np.clip(x / 96.0, 0.0, 1.0)
        fg = 50.0 + x * (205.0 / 255.0)
        out[i] = np.clip(np.rint(alpha * fg + (1 - alpha) * bg), 0, 255).astype(np.uint8)
    return out


def inverted(x_u8):
    return (255 - x_u8).astype(np.uint8)


def make(variant, x_u8, split):
    if variant == "clean":
        return x_u8.copy()
    if variant == "inverted":
        return inverted(x_u8)
    if variant == "textured":
        return textured(x_u8, SEEDS[split])
    if variant == "mix":
        pick = np.random.default_rng(SEEDS["mix"] + (split == "test")).integers(0, 3, len(x_u8))
        out = x_u8.copy()
        out[pick == 1] = inverted(x_u8[pick == 1])
        t = textured(x_u8, SEEDS[split])
        out[pick == 2] = t[pick == 2]
        return out
    raise ValueError(f"unknown variant '{variant}'")


def write_idx(path, arr):
    head = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(head + np.ascontiguousarray(arr, np.uint8).tobytes())


def main(argv=None):
    p = argparse.ArgumentParser(prog="variants.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", required=True, choices=VARIANTS[1:] + ("mix",))
    p.add_argument("--src", default=data.DATA_DIR, help="source dataset folder (default Fashion-MNIST)")
    p.add_argument("--labels", help="labels file to copy beside the IDX files")
    p.add_argument("-o", "--out", required=True)
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    for split, stem in (("train", "train"), ("test", "t10k")):
        x, y = data.load_split(split, a.src)
        v = make(a.variant, x, split)
        write_idx(os.path.join(a.out, f"{stem}-images-idx3-ubyte.gz"), v)
        write_idx(os.path.join(a.out, f"{stem}-labels-idx1-ubyte.gz"), y.astype(np.uint8))
        print(f"variants: {a.variant} {split}: {len(v)} images -> {a.out}", flush=True)
    if a.labels:
        shutil.copyfile(a.labels, os.path.join(a.out, "labels.txt"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FileNotFoundError, data.DatasetError) as e:
        sys.exit(f"variants: {e}")
