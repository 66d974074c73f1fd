#!/usr/bin/python3
"""Writes the small early-exit model the C early-exit tests run on:
3 exits, expert sets pristine/blur/noise, a detector, temperatures != 1.

    make_tiny.py OUT.eex
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "export"))
import test_export as t  # noqa: E402  (the exporter tests' TinyEE model)

out = sys.argv[1]
if os.path.exists(out) and os.path.getmtime(out) > max(
        os.path.getmtime(p) for p in (__file__, t.__file__, t.eex_export.__file__)):
    shutil.rmtree(t.TMP, ignore_errors=True)
    sys.exit(0)
t.torch.set_num_threads(1)
model = t.make_model(seed=3)
spec = model.spec()
spec["exits"][1]["temperature"] = {"pristine": 0.5, "blur": 2.0, "noise": 1.5}
t.eex_export.export(model, spec, out)
shutil.rmtree(t.TMP, ignore_errors=True)
print(f"make_tiny: wrote {out}")
