#!/usr/bin/python3
"""Writes the Fashion-MNIST test image that `make dist-arm` ships for `eex run`:

    /usr/bin/python3 bench/boards/dist/make_sample.py [INDEX] [OUT.png]

INDEX (default 0) into the test split read by train/data.py (FMNIST_DIR, default
/usr/share/datasets/fashion-mnist); prints its label. The PNG is committed, so
dist-arm does not need the dataset.
"""
import os
import sys

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "train"))
import data  # noqa: E402

index = int(sys.argv[1]) if len(sys.argv) > 1 else 0
x, y = data.load_split("test")
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, f"fmnist-test-{index}.png")
img = x[index].reshape(28, 28)
Image.fromarray(img.astype("uint8"), mode="L").save(out)
print(f"make_sample: wrote {out}: test image {index}, label {int(y[index])}")
