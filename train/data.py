"""The image-classification dataset of the pipeline (IDX files, gzipped or not; by
default Fashion-MNIST from the Debian package dataset-fashion-mnist), the seeded
train/validation split, and distortion helpers over whole datasets.

A dataset is a folder with the four IDX files that `eex eval --dataset` reads too:
train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
t10k-labels-idx1-ubyte (each optionally .gz): uint8 images [N, 28, 28], uint8 labels
0..K-1. Class names come from a labels file (one name a line) or are the numbers.

Images are kept as uint8 [N, 28, 28] so that the distortions of converter/distort.py
(which work on the 0..255 pixel scale) apply before normalisation.
"""

import gzip
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "converter"))
import distort  # noqa: E402

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
# The folder read by load_split()/load(); train.py sets it from --dataset.
DATA_DIR = os.environ.get("FMNIST_DIR", FMNIST_DIR)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SIZE = 28
# Fashion-MNIST's class names, also in train/labels/fashion-mnist.txt (what `make
# train` passes); the demo and tests that know they run on Fashion-MNIST use them.
FMNIST_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# Distortion levels of the paper (blur sigma; noise sigma on the 0..255 scale).
LEVELS = {"blur": [1, 2, 3, 4, 5], "noise": [5, 10, 20, 30, 40]}
DETECTOR_CLASSES = ["pristine", "blur", "noise"]


class DatasetError(ValueError):
    """A dataset folder or labels file that the pipeline cannot use (train.py prints
    its message as one line)."""


def _open(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            return gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")
    hint = ("Fashion-MNIST: install Debian's dataset-fashion-mnist with 'make deps', or set "
            "FMNIST_DIR" if "fashion-mnist" in path else "a dataset folder holds the four IDX "
            "files of train/data.py")
    raise FileNotFoundError(f"{path}[.gz] not found ({hint})")


def read_idx(path):
    """Reads an IDX file (optionally .gz): magic 0x0000 dtype ndim, big-endian dims."""
    with _open(path) as f:
        data = f.read()
    if len(data) < 4:
        raise DatasetError(f"{path}: not an IDX file (too short)")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08 or not 1 <= ndim <= 4:
        raise DatasetError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DatasetError(f"{path}: {arr.size} bytes for dims {dims}")
    return arr.reshape(dims)


def load_split(name, data_dir=None):
    """'train' or 'test' -> (images uint8 [N, 28, 28], labels int64 [N])."""
    data_dir = data_dir or DATA_DIR
    fi, fl = FILES[name]
    x = read_idx(os.path.join(data_dir, fi))
    y = read_idx(os.path.join(data_dir, fl)).astype(np.int64)
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DatasetError(f"{data_dir}/{fi}: images are {list(x.shape[1:])}, the pipeline "
                         f"takes {IMAGE_SIZE}x{IMAGE_SIZE} grayscale")
    if y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise DatasetError(f"{data_dir}/{name}: {x.shape[0]} images, {y.shape} labels")
    return x, y


def split_indices(n, val_fraction=0.1, seed=0):
    """(validation, training) indices into the official training set, each sorted.
    `eex eval/calibrate --split val` reads the first from models/fmnist-val-index.txt
    (train/val_index.py writes it)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(perm[:n_val]), np.sort(perm[n_val:])


def num_classes(data_dir=None):
    """Classes = 1 + the largest label of the training file."""
    return int(load_split("train", data_dir)[1].max()) + 1


def read_labels(path, classes):
    """Class names: one a line from PATH, or the numbers "0".."K-1" when PATH is None."""
    if path is None:
        return [str(i) for i in range(classes)]
    with open(path, encoding="utf-8") as f:
        names = [ln.strip() for ln in f if ln.strip()]
    if len(names) != classes:
        raise DatasetError(f"{path}: {len(names)} names for {classes} classes")
    return names


def pixel_stats(data_dir=None):
    """Mean and std of the pixels / 255 of the dataset's training FILE (the whole
    official training split, before the validation split is taken), rounded to 4
    decimals: the normalisation stored as input.mean/input.std. Returns
    (mean, std, exact mean, exact std)."""
    x = load_split("train", data_dir)[0]
    f = x.astype(np.float64) / 255
    m, s = float(f.mean()), float(f.std())
    return round(m, 4), round(s, 4), m, s


def load(val_fraction=0.1, seed=0, subset=None):
    """Returns dict with 'train', 'val', 'test' -> (x uint8, y int64).

    The validation split is a seeded random 10% of the official training set; the
    official test set is the test split. subset=(n_train, n_test) takes the first
    n images of each (after the split) for smoke runs."""
    x, y = load_split("train")
    xt, yt = load_split("test")
    if yt.max() >= y.max() + 1:
        raise DatasetError(f"{DATA_DIR}: test label {int(yt.max())} is not among the training "
                         f"labels 0..{int(y.max())}")
    vi, ti = split_indices(len(x), val_fraction, seed)
    d = {"train": (x[ti], y[ti]), "val": (x[vi], y[vi]), "test": (xt, yt)}
    if subset:
        ntr, nte = subset
        d["train"] = tuple(a[:ntr] for a in d["train"])
        d["val"] = tuple(a[:max(1, ntr // 9)] for a in d["val"])
        d["test"] = tuple(a[:nte] for a in d["test"])
    return d


def to_float(x_u8, mean, std):
    """uint8 [N, H, W] -> float32 [N, 1, H, W], (p / 255 - mean) / std (in float32, as
    the engine applies input.mean/input.std)."""
    f = x_u8.astype(np.float32) / np.float32(255.0)
    return ((f - np.float32(mean)) / np.float32(std))[:, None]


# ----------------------------------------------------------------------------- distortions

def parse_distortion(text):
    """'none' | 'blur:S' | 'noise:S' -> (kind, sigma); kind None for none."""
    if text in (None, "", "none", "pristine"):
        return None, 0.0
    kind, _, s = text.partition(":")
    if kind not in LEVELS or not s:
        raise ValueError(f"bad distortion '{text}' (none | blur:S | noise:S)")
    return kind, float(s)


def distort_exact(x_u8, kind, sigma, seed, chunk=2000):
    """The evaluation distortion, bit-exact with docs/distortions.md (and so with the C
    engine's `eex eval`): image i (0-based, in the order given) uses noise seed
    `seed + i`. Returns a new array."""
    if kind is None:
        return x_u8.copy()
    out = np.empty_like(x_u8)
    for s in range(0, len(x_u8), chunk):
        part = x_u8[s:s + chunk]
        if kind == "blur":
            out[s:s + chunk] = distort.blur_batch(part, sigma)
        else:
            out[s:s + chunk] = distort.add_noise_batch(part, sigma, seed + s, exact=True)
    return out


def distort_fast(x_u8, kind, sigma, seed):
    """Training-time version of distort_exact (vectorised; blur is bit-identical in
    practice, noise uses numpy log/cos: see converter/distort.py)."""
    if kind is None:
        return x_u8.copy()
    if kind == "blur":
        return distort.blur_batch(x_u8, sigma)
    return distort.add_noise_fast(x_u8, sigma, seed)


def distort_mixture(x_u8, kind, rng, p=0.5, chunk=4096):
    """The expert training augmentation: each image distorted with probability p at a
    level drawn uniformly from LEVELS[kind]. Returns (images, level index; -1 =
    untouched). rng: numpy Generator (its draws decide which/level/noise seeds)."""
    n = len(x_u8)
    lv = np.where(rng.random(n) < p, rng.integers(0, len(LEVELS[kind]), n), -1)
    out = x_u8.copy()
    for li, sigma in enumerate(LEVELS[kind]):
        idx = np.nonzero(lv == li)[0]
        for s in range(0, len(idx), chunk):
            part = idx[s:s + chunk]
            out[part] = distort_fast(x_u8[part], kind, sigma,
                                     int(rng.integers(0, 2 ** 62)))
    return out, lv


def spectra(x_u8, exact=False):
    """Detector spectra float32 [N, 1, H, W] = spectrum_u8 / 255 (no resize: the detector
    takes the 28x28 spectrum). exact=True uses the per-image libm path."""
    if exact:
        s = np.stack([distort.spectrum_u8(im) for im in x_u8])
    else:
        s = distort.spectrum_u8_batch(x_u8)
    return (s.astype(np.float32) / np.float32(255.0))[:, None]


def detector_inputs(x_u8, channels=2, exact=False):
    """Detector inputs float32 [N, channels, H, W] (distort.detector_input for grayscale
    28x28 images): the spectrum, then with channels >= 2 the image / 255, then with
    channels = 3 the diagonal residual (distort.residual_plane)."""
    s = spectra(x_u8, exact)
    if channels == 1:
        return s
    planes = [s, (x_u8.astype(np.float32) / np.float32(255.0))[:, None]]
    if channels == 3:
        planes.append(residual_planes(x_u8)[:, None])
    return np.concatenate(planes, 1)


def residual_planes(x_u8):
    """distort.residual_plane over a batch [N, H, W] (the same integer r, then the same
    float32 operations)."""
    x = x_u8.astype(np.int32)
    r = np.zeros(x.shape, np.int32)
    r[:, :-1, :-1] = x[:, :-1, :-1] - x[:, :-1, 1:] - x[:, 1:, :-1] + x[:, 1:, 1:]
    return np.clip(np.float32(0.5) + r.astype(np.float32) / np.float32(64.0), 0, 1).astype(np.float32)
