#!/usr/bin/python3
"""`eex eval` (the C engine) against the PyTorch evaluation of the same trained model
(train/eval_torch.py) on the same distorted images: every reported figure within 0.1
percentage points.

    test_eval_vs_torch.py BUILD_DIR [--limit N] [--full]

--full runs the whole test split for every distortion level and expert mode (the
closing-note check); the default is a subset that `make test` runs.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL = os.path.join(ROOT, "models", "fmnist-ee.eex")
CHECKPOINT = os.path.join(ROOT, "models", "fmnist-ee.pt")
DATA = "/usr/share/datasets/fashion-mnist"
THRESHOLDS = "0.7,0.75,0.8,0.85,0.9"
TOL = 0.001  # 0.1 percentage points, as fractions

ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default="build")
ap.add_argument("--limit", type=int, default=600)
ap.add_argument("--full", action="store_true")
a = ap.parse_args()

if a.full:
    conditions = [(d, e) for d in ["none", "blur:1", "blur:2", "blur:3", "blur:4", "blur:5", "noise:5", "noise:10",
                                   "noise:20", "noise:30", "noise:40"] for e in ("pristine", "auto", "oracle")]
    limit = []
else:
    conditions = [("none", "pristine"), ("blur:3", "auto"), ("noise:20", "oracle"), ("noise:40", "auto")]
    limit = ["--limit", str(a.limit)]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"FAIL  {' '.join(cmd)}:\n{r.stderr}")
    return json.loads(r.stdout)


passed = failed = 0
worst = 0.0
for dist, expert in conditions:
    c = run([os.path.join(a.build, "eex"), "eval", MODEL, "--dataset", DATA, "--distortion", dist, "--expert", expert,
             "--threshold", THRESHOLDS, "--json", "--quiet", "--threads", "2"] + limit)
    t = run(["/usr/bin/python3", "train/eval_torch.py", "--checkpoint", CHECKPOINT, "--distortion", dist,
             "--expert", expert, "--threshold", THRESHOLDS, "--json", "--threads", "2"] + limit)
    bad = []
    if c["images"] != t["images"]:
        bad.append(f"images {c['images']} vs {t['images']}")
    pairs = []
    if "detector_accuracy" in t and expert == "auto":
        pairs.append(("detector_accuracy", c.get("detector_accuracy"), t["detector_accuracy"]))
    for rc, rt in zip(c["results"], t["results"]):
        for key in ("p_offload", "edge_accuracy", "cloud_accuracy", "overall_accuracy"):
            pairs.append((f"p_tar {rc['threshold']} {key}", rc[key], rt[key]))
        for k, (x, y) in enumerate(zip(rc["exit_share"], rt["exit_share"])):
            pairs.append((f"p_tar {rc['threshold']} exit {k + 1} share", x, y))
    for name, x, y in pairs:
        d = abs(x - y) if x is not None and y is not None else 1.0
        worst = max(worst, d)
        if d > TOL:
            bad.append(f"{name}: C {x:.4f} vs PyTorch {y:.4f}")
    if bad:
        failed += 1
        print(f"FAIL  {dist} {expert}: " + "; ".join(bad[:6]))
    else:
        passed += 1
        print(f"ok    {dist:8s} {expert:8s} {len(pairs)} figures agree "
              f"(overall at 0.8: {100 * c['results'][2]['overall_accuracy']:.2f}%)")
print(f"largest difference: {100 * worst:.3f} points")
print(f"eval vs torch: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
