"""Shared by the batching benchmark's model writers (make_fathead.py, make_alexnet.py):
the exporter tests' building blocks, and the skip-when-fresh rule.

    import modelgen
    t, out = modelgen.start(__file__)   # exits when out (argv[1]) is newer than the script
    ...build a model with t.nn, t.randomise; t.eex_export.export(model, spec, out)...
    modelgen.done(t, "make_x")
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "export"))


def start(script):
    """-> (the tests/export/test_export module: TinyEE, branch, randomise, the exporter;
    the output path from the command line); exits 0 when that output is newer than
    `script`."""
    import test_export as t
    out = sys.argv[1]
    if os.path.exists(out) and os.path.getmtime(out) > os.path.getmtime(script):
        shutil.rmtree(t.TMP, ignore_errors=True)
        sys.exit(0)
    t.torch.set_num_threads(2)
    return t, out


def done(t, name):
    shutil.rmtree(t.TMP, ignore_errors=True)
    print(f"{name}: wrote {sys.argv[1]}")
