#!/usr/bin/env python3
"""Writes the validation split of train/data.py (a seeded 10% of the official
training set, the images the temperatures were fitted on and that training never
saw) as 0-based indices into train-images-idx3-ubyte, one per line, for the C tools:
`eex eval|calibrate --split val --val-index models/fmnist-val-index.txt`.

usage: val_index.py [OUT.txt]   (default models/fmnist-val-index.txt)"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(data.ROOT, "models", "fmnist-val-index.txt")
vi, _ = data.split_indices(60000, 0.1, 0)  # the arguments train.py's data.load() uses
with open(out, "w") as f:
    f.write("# eex validation split: train/data.py split_indices(60000, 0.1, seed 0); "
            "0-based indices into the official training set\n")
    f.write("".join(f"{i}\n" for i in vi))
print(f"val_index: {len(vi)} indices -> {out}")
