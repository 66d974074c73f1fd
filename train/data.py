"""Fashion-MNIST from the Debian package dataset-fashion-mnist (IDX files, gzipped),
the seeded train/validation split, and distortion helpers over whole datasets.

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

DATA_DIR = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# Pixel statistics of the Fashion-MNIST training images, pixels scaled to 0..1
# (recomputed by train.py and checked against these; stored as input.mean/input.std).
MEAN, STD = 0.2860, 0.3530

# Distortion levels of the paper (blur sigma; noise sigma on the 0..255 scale).
LEVELS = {"blur": [1, 2, 3, 4, 5], "noise": [5, 10, 20, 30, 40]}
DETECTOR_CLASSES = ["pristine", "blur", "noise"]


def _open(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            return gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")
    raise FileNotFoundError(f"{path}[.gz] not found (Fashion-MNIST: install Debian's "
                            "dataset-fashion-mnist with 'make deps', or set FMNIST_DIR)")


def read_idx(path):
    """Reads an IDX file (optionally .gz): magic 0x0000 dtype ndim, big-endian dims."""
    with _open(path) as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} bytes for dims {dims}")
    return arr.reshape(dims)


def load_split(name):
    """'train' or 'test' -> (images uint8 [N, 28, 28], labels int64 [N])."""
    fi, fl = FILES[name]
    x = read_idx(os.path.join(DATA_DIR, fi))
    y = read_idx(os.path.join(DATA_DIR, fl)).astype(np.int64)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: {x.shape[0]} images, {y.shape[0]} labels")
    return x, y


def load(val_fraction=0.1, seed=0, subset=None):
    """Returns dict with 'train', 'val', 'test' -> (x uint8, y int64).

    The validation split is a seeded random 10% of the official training set; the
    official test set is the test split. subset=(n_train, n_test) takes the first
    n images of each (after the split) for smoke runs."""
    x, y = load_split("train")
    xt, yt = load_split("test")
    perm = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * val_fraction))
    vi, ti = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    d = {"train": (x[ti], y[ti]), "val": (x[vi], y[vi]), "test": (xt, yt)}
    if subset:
        ntr, nte = subset
        d["train"] = tuple(a[:ntr] for a in d["train"])
        d["val"] = tuple(a[:max(1, ntr // 9)] for a in d["val"])
        d["test"] = tuple(a[:nte] for a in d["test"])
    return d


def to_float(x_u8, mean=MEAN, std=STD):
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
    28x28 images): the spectrum, then with channels = 2 the image / 255."""
    s = spectra(x_u8, exact)
    if channels == 1:
        return s
    return np.concatenate([s, (x_u8.astype(np.float32) / np.float32(255.0))[:, None]], 1)
