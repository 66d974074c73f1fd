#!/usr/bin/python3
"""Compares an output against a reference:  check.py [--relative] OUT.npy REF.npy

PASS when the shapes match and max|out - ref| <= 1e-4 * max(1, max|ref|); with
--relative, <= 1e-4 * max|ref|, and a reference with max|ref| < 1e-2 fails (a
tolerance relative to a near-zero output proves nothing).
Exit status 0 on PASS, 1 on FAIL, 2 on bad arguments or unreadable files.
"""

import sys

import numpy as np

RTOL = 1e-4


MIN_REF = 1e-2


def compare(out, ref, relative=False):
    """Returns (ok, message)."""
    if out.shape != ref.shape:
        return False, f"shape {list(out.shape)} != reference {list(ref.shape)}  FAIL"
    out = out.astype(np.float64)
    ref = ref.astype(np.float64)
    if not np.all(np.isfinite(out)):
        return False, "output has NaN or Inf  FAIL"
    diff = float(np.max(np.abs(out - ref))) if out.size else 0.0
    mref = float(np.max(np.abs(ref))) if ref.size else 0.0
    if relative and mref < MIN_REF:
        return False, f"max|ref| {mref:.3e} is below {MIN_REF}: the test proves nothing  FAIL"
    tol = RTOL * (mref if relative else max(1.0, mref))
    ok = diff <= tol
    rel = diff / mref if mref else 0.0
    return ok, (f"max|a-b| {diff:.3e}  max|ref| {mref:.3e}  tol {tol:.3e}  "
                f"(rel {rel:.1e})  {'PASS' if ok else 'FAIL'}")


def main(argv):
    relative = bool(argv) and argv[0] == "--relative"
    if relative:
        argv = argv[1:]
    if len(argv) != 2:
        print("usage: check.py [--relative] OUT.npy REF.npy", file=sys.stderr)
        return 2
    try:
        out, ref = np.load(argv[0]), np.load(argv[1])
    except (OSError, ValueError) as e:
        print(f"check.py: {e}", file=sys.stderr)
        return 2
    ok, msg = compare(out, ref, relative)
    print(f"{argv[0]}: {msg}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
