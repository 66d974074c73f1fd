#!/usr/bin/python3
"""Detectors on background variants (train/variants.py): which input and layout tell
pristine / blur / noise apart when backgrounds are not black (docs/distortions.md,
"Backgrounds").

For one training set (a variant, or the per-image mix of the three) and one detector,
trains it with train.py's own step_detector (same recipe, optimizer and schedule;
--train-images and --epochs shrink it), then scores it on the test split of every
variant with the metric of models/*.json: mean of the pristine accuracy, the blur
accuracy averaged over its 5 levels and the noise accuracy averaged over its 5 levels
(test images distorted by converter/distort.py's exact functions, noise seed
image index).

Detectors:
  collabar    the paper's detector: CollabAR's layout on the spectrum alone
  spec-image  today's shipped detector: train/model.py Detector on spectrum + image
  residual    Detector on spectrum + image + the diagonal residual (3 channels)

    detector_study.py --train clean|inverted|textured|mix --detector NAME
                      [--variants-dir build/variants] [--train-images N] [--epochs E]
                      [--threads T] [--test-images N] --json OUT
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
import model as M  # noqa: E402
import train as T  # noqa: E402

VARIANTS = ("clean", "inverted", "textured")
DETECTORS = {"collabar": 1, "spec-image": 2, "residual": 3}


class CollabAR(nn.Module):
    """CollabAR's distortion classifier on the spectrum: Conv 1->32 (3x3, stride 2),
    Conv 32->16, MaxPool 2, Conv 16->1, MaxPool 2, FC -> 3."""

    def __init__(self, size=M.IMAGE_SIZE):
        super().__init__()
        self.channels = 1
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 16, 3, 1, 1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(16, 1, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        with torch.no_grad():
            n = self.features(torch.zeros(1, 1, size, size)).shape[1]
        self.fc = nn.Linear(n, 3)

    def forward(self, x):
        return self.fc(self.features(x))


# The clean dataset, taken before main() points data.DATA_DIR at the training set.
CLEAN_DIR = data.DATA_DIR


def folder(variants_dir, v):
    return CLEAN_DIR if v == "clean" else os.path.join(variants_dir, v)


def score(det, x_u8, limit):
    """The 3-class metric on x_u8 (test images of one variant) -> (overall, per level)."""
    x_u8 = x_u8[:limit]
    det.eval()
    per = {}
    for cond in ["none"] + [f"{k}:{s}" for k in ("blur", "noise") for s in data.LEVELS[k]]:
        kind, sigma = data.parse_distortion(cond)
        xd = data.distort_exact(x_u8, kind, sigma, 0)
        want = 0 if kind is None else 1 + (kind == "noise")
        with torch.no_grad():
            inp = torch.from_numpy(data.detector_inputs(xd, det.channels))
            pred = torch.cat([det(inp[i:i + 2048]).argmax(1) for i in range(0, len(inp), 2048)])
        per[cond] = float((pred == want).float().mean())
    b = np.mean([per[f"blur:{s}"] for s in data.LEVELS["blur"]])
    n = np.mean([per[f"noise:{s}"] for s in data.LEVELS["noise"]])
    return float((per["none"] + b + n) / 3), per


def main(argv=None):
    p = argparse.ArgumentParser(prog="detector_study.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, choices=VARIANTS + ("mix",))
    p.add_argument("--detector", required=True, choices=tuple(DETECTORS))
    p.add_argument("--variants-dir", default=os.path.join(os.path.dirname(HERE), "build", "variants"))
    p.add_argument("--train-images", type=int, default=0, help="training images (default: all)")
    p.add_argument("--epochs", type=int, default=T.FULL["det_epochs"])
    p.add_argument("--test-images", type=int, default=10000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", required=True)
    p.add_argument("--again", action="store_true", help="run even if --json exists")
    a = p.parse_args(argv)
    if os.path.exists(a.json) and not a.again:
        print(f"study: {a.json} exists (--again runs it anew)")
        return 0
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    t0 = time.time()
    data.DATA_DIR = folder(a.variants_dir, a.train)
    d = data.load(seed=T.SEEDS["split"])
    if a.train_images:
        d["train"] = tuple(v[:a.train_images] for v in d["train"])
        d["val"] = tuple(v[:max(1000, a.train_images // 9)] for v in d["val"])
    T.seed_all(T.SEEDS["detector"])
    det = CollabAR() if a.detector == "collabar" else M.Detector(channels=DETECTORS[a.detector])
    cfg = dict(T.FULL, det_epochs=a.epochs)
    hist = T.step_detector(cfg, d, det)
    train_s = time.time() - t0
    out = {"train": a.train, "detector": a.detector, "channels": det.channels,
           "train_images": len(d["train"][0]), "epochs": a.epochs, "train_seconds": round(train_s, 1),
           "macs": None, "history": hist, "test": {}}
    torch.save(det.state_dict(), os.path.splitext(a.json)[0] + ".pt")
    for v in VARIANTS:
        xt, _ = data.load_split("test", folder(a.variants_dir, v))
        overall, per = score(det, xt, a.test_images)
        out["test"][v] = {"overall": overall, "per_level": per}
        print(f"study: {a.detector:10s} trained on {a.train:8s} tested on {v:8s}: {100 * overall:6.2f}%  "
              + " ".join(f"{c} {100 * x:.1f}" for c, x in per.items()), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
