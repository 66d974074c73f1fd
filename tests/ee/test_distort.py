#!/usr/bin/python3
"""C and Python agree on the distortions and the detector's spectrum
(docs/distortions.md): blur within 1 uint8 step on every pixel, noise with the
same seed identical, spectrum within 1 step on >= 99.9% of pixels.

    test_distort.py BUILD_DIR
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "converter"))
sys.path.insert(0, os.path.join(HERE, ".."))
import distort  # noqa: E402
import checks  # noqa: E402  (tests/checks.py: the ok / FAIL lines and their count)
from checks import check  # noqa: E402

EEX = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "eex")


def save_png(path, img):
    from PIL import Image
    Image.fromarray(img).save(path)


def load_png(path):
    from PIL import Image
    return np.asarray(Image.open(path))


def images():
    rng = np.random.default_rng(7)
    yield "gray 28x28 random", rng.integers(0, 256, (28, 28), dtype=np.uint8)
    yy, xx = np.mgrid[0:31, 0:45]
    yield "gray 31x45 pattern", ((np.sin(xx / 3.0) + np.cos(yy / 5.0)) * 60 + 128).astype(np.uint8)
    yield "rgb 24x20 random", rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    yield "gray 28x28 saturated", np.where(rng.random((28, 28)) > 0.5, 255, 0).astype(np.uint8)
    # longer side over distort.SPECTRUM_MAX_SIDE: the spectrum of the shrunk image
    yy, xx = np.mgrid[0:300, 0:520]
    pattern = (np.sin(xx / 4.0) * np.cos(yy / 7.0) * 90 + 128).astype(np.uint8)
    yield "rgb 520x300 pattern", np.stack([pattern, pattern[::-1], 255 - pattern], axis=-1)


def run(args):
    r = subprocess.run([EEX] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"eex {' '.join(args)}: {r.stderr.strip()}")


with tempfile.TemporaryDirectory() as d:
    src = os.path.join(d, "in.png")
    out = os.path.join(d, "out.png")
    for name, img in images():
        save_png(src, img)
        for sigma in (1, 2, 3, 5):
            run(["distort", src, out, "--blur", str(sigma)])
            c = load_png(out).astype(int)
            p = distort.blur(img, sigma).astype(int)
            diff = np.abs(c - p).max()
            check(c.shape == p.shape and diff <= 1, f"blur {sigma} {name} max diff {diff}")
        for sigma, seed in ((5, 0), (20, 1), (40, 12345)):
            run(["distort", src, out, "--noise", str(sigma), "--seed", str(seed)])
            c = load_png(out)
            p = distort.add_noise(img, sigma, seed)
            check(c.shape == p.shape and np.array_equal(c, p),
                  f"noise {sigma} seed {seed} {name} {int((c != p).sum())} pixels differ")
        run(["spectrum", src, out])
        c = load_png(out).astype(int)
        p = distort.detector_spectrum_u8(img).astype(int)
        agree = float((np.abs(c - p) <= 1).mean())
        check(c.shape == p.shape and agree >= 0.999, f"spectrum {name} {agree * 100:.3f}% within 1 step")
    # different seeds differ, same seed repeats
    img = next(images())[1]
    save_png(src, img)
    run(["distort", src, out, "--noise", "20", "--seed", "3"])
    a = load_png(out)
    run(["distort", src, out, "--noise", "20", "--seed", "3"])
    b = load_png(out)
    run(["distort", src, out, "--noise", "20", "--seed", "4"])
    c = load_png(out)
    check(np.array_equal(a, b) and not np.array_equal(a, c), "noise is repeatable per seed and differs across seeds")

sys.exit(checks.summary("distort"))
