#!/usr/bin/python3
"""The research pipeline on a dataset that is not Fashion-MNIST: `make train-fast
DATASET=DIR LABELS=FILE` and `make experiment DATASET=DIR` on a 5-class relabelled
subset of Fashion-MNIST (T-shirt, Trouser, Sandal, Sneaker, Bag -> 0..4, new names).

Checks: the model carries the labels file's names (`eex info --json`, `eex run
--json`), mean/std are measured on the new training file and recorded, no
augmentation unless asked, the report is titled with the dataset's name, and the
shipped models/fmnist-ee.* are untouched.

    test_pipeline.py BUILD [--work DIR]
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "train"))
from data import read_idx  # noqa: E402  (the reader and writer train/ uses)
from variants import write_idx  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "tests"))
from checks import check, summary  # noqa: E402  (tests/checks.py)
FMNIST = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
KEEP = [0, 1, 5, 7, 8]
NAMES = ["top", "trouser", "sandal", "sneaker", "bag"]
SHIPPED = ["models/fmnist-ee.eex", "models/fmnist-ee.json", "models/fmnist-ee.pt"]



def make_dataset(out):
    os.makedirs(out, exist_ok=True)
    for split in ("train", "t10k"):
        x = read_idx(f"{FMNIST}/{split}-images-idx3-ubyte.gz")
        y = read_idx(f"{FMNIST}/{split}-labels-idx1-ubyte.gz")
        sel = np.isin(y, KEEP)
        ynew = np.searchsorted(KEEP, y[sel]).astype(np.uint8)
        write_idx(f"{out}/{split}-images-idx3-ubyte.gz", x[sel])
        write_idx(f"{out}/{split}-labels-idx1-ubyte.gz", ynew)
    with open(f"{out}/labels.txt", "w") as f:
        f.write("\n".join(NAMES) + "\n")
    return read_idx(f"{out}/train-images-idx3-ubyte.gz")


def sha(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make(*args):
    r = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "pipeline"))
    a = ap.parse_args()
    eex = os.path.join(ROOT, a.build, "eex")
    ds = os.path.join(a.work, "fm5")
    out = os.path.join(a.work, "out")
    xtr = make_dataset(ds)
    before = {p: sha(p) for p in SHIPPED}

    r = make("train-fast", f"DATASET={ds}", f"LABELS={ds}/labels.txt", f"TRAIN_FAST_OUT={out}",
             f"BUILD={a.build}")
    check(r.returncode == 0, "make train-fast DATASET=... LABELS=... runs")
    model, js = f"{out}/fm5-ee.eex", f"{out}/fm5-ee.json"
    check(os.path.exists(model) and os.path.exists(js),
          "outputs named after the dataset, in its own folder", f"({model})")
    if not os.path.exists(js):
        return summary("pipeline")
    j = json.load(open(js))
    f = xtr.astype(np.float64) / 255
    d = j["dataset"]
    check(d.get("name") == "fm5", "dataset name recorded", d.get("name"))
    check(d.get("labels") == NAMES, "labels from the file recorded", d.get("labels"))
    check(abs(d["pixel_mean_measured"] - f.mean()) < 1e-6 and abs(d["pixel_std_measured"] - f.std()) < 1e-6,
          "mean/std measured on the new training file",
          f"{d['pixel_mean_measured']} {d['pixel_std_measured']} vs {f.mean()} {f.std()}")
    check(d["input.mean"] == round(f.mean(), 4) and d["input.std"] == round(f.std(), 4)
          and abs(d["input.mean"] - 0.2860) > 1e-3,
          "stored normalisation is the measured one, rounded", f"{d['input.mean']} {d['input.std']}")
    check(d.get("augment") == [] and j["config"]["augment"] == [], "no augmentation unless asked")

    info = json.loads(subprocess.run([eex, "info", model, "--json"], capture_output=True, text=True).stdout)
    check(info.get("labels") == 5, "eex info: 5 classes", info.get("labels"))
    # a test image of class 2 (Sandal in Fashion-MNIST, 'sandal' here), as PNG
    from PIL import Image
    xt = read_idx(f"{ds}/t10k-images-idx3-ubyte.gz")
    yt = read_idx(f"{ds}/t10k-labels-idx1-ubyte.gz")
    img = os.path.join(a.work, "sandal.png")
    Image.fromarray(xt[int(np.argmax(yt == 2))]).save(img)
    r = subprocess.run([eex, "run", model, img, "--json"], capture_output=True, text=True)
    run = json.loads(r.stdout) if r.returncode == 0 else {}
    cls = run.get("class", -1)
    check(0 <= cls < 5 and run.get("label") == NAMES[cls],
          "eex run names the class from the labels file", f"{run} {r.stderr}")

    r = make("experiment", f"DATASET={ds}", f"EXPERIMENT_MODEL={model}", f"EXPERIMENT_OUT={out}/results",
             "EXPERIMENT_LIMIT=100", f"BUILD={a.build}")
    md = f"{out}/results/fm5.md"
    check(r.returncode == 0 and os.path.exists(md), "make experiment DATASET=... runs")
    if os.path.exists(md):
        text = open(md).read()
        check(text.startswith("# fm5 reproduction") and "Fashion-MNIST" not in text.split("\n")[0]
              and f"make experiment DATASET={ds}" in text,
              "report titled with the dataset's name", text.split("\n")[0])
    check({p: sha(p) for p in SHIPPED} == before, "shipped models untouched")
    return summary("pipeline")


if __name__ == "__main__":
    sys.exit(main())
