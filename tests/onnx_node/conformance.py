#!/usr/bin/python3
"""ONNX's own backend node tests (Debian's libonnx-testdata) through eex: every
case is converted by onnx2eex and run by `eex run`, and its outputs compared with
the case's expected outputs (rtol 1e-3, atol 1e-5 against max(1, |expected|)... see
`close`). Each case ends in one of:

  pass      converted, ran, every output matched
  FAIL      converted and ran, an output did not match         (must be 0)
  CRASH     converted, and `eex run` died, timed out or refused (must be 0: the
            converter must refuse whatever the engine would)
  refused   its ops are in eex's op set, but eex-convert refused this use of them
            (rank-3 tensors, broadcasting over the batch, ...), with the message
  skipped   by design: an op eex does not implement (the reason names it), an
            output that is not float32, or a case without test data

eex takes weights, shapes, pads, axes and the like as constants, where the node
tests feed them as graph inputs; such an input (any non-float32 one, and the float
ones in a weight position, CONST_INPUTS) is baked into the case's model as an
initializer holding the case's data, which leaves what the model computes as it was.

    conformance.py [--eex build/eex] [--data DIR] [--verbose] [--tmp DIR]

Exit status 0 when FAIL and CRASH are both 0 (and there was data to test).
"""

import argparse
import collections
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "converter")))
import onnx2eex  # noqa: E402

DATA = "/usr/share/libonnx-testdata/data/node"
RTOL, ATOL = 1e-3, 1e-5


def load_pb(path):
    import onnx
    from onnx import numpy_helper
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


def close(got, want):
    """numpy.testing-style: |got - want| <= atol + rtol |want|, elementwise; NaN
    matches NaN."""
    if got.shape != want.shape:
        return False, f"shape {list(got.shape)} != expected {list(want.shape)}"
    g, w = got.astype(np.float64), want.astype(np.float64)
    bad = ~((np.abs(g - w) <= ATOL + RTOL * np.abs(w)) | (np.isnan(g) & np.isnan(w)) |
            (g == w))
    if bad.any():
        i = np.unravel_index(np.argmax(bad), bad.shape)
        return False, f"{int(bad.sum())} of {bad.size} values differ, e.g. at {list(i)}: " \
                      f"{g[i]!r} != {w[i]!r}"
    return True, ""


# ONNX op -> input positions eex needs as constants (weights and parameters).
CONST_INPUTS = {"Conv": (1, 2), "Gemm": (1, 2), "MatMul": (1,), "PRelu": (1,),
                "LayerNormalization": (1, 2), "BatchNormalization": (1, 2, 3, 4),
                "Clip": (1, 2), "Pad": (1, 2), "Reshape": (1,)}


def bake_constants(m, data):
    """Turns graph inputs eex needs as constants into initializers with the data
    set's values. data: {input name: array}. Returns the names baked."""
    from onnx import numpy_helper
    import onnx
    inits = {i.name for i in m.graph.initializer}
    want = set()
    for n in m.graph.node:
        for pos in CONST_INPUTS.get(n.op_type, ()):
            if pos < len(n.input) and n.input[pos]:
                want.add(n.input[pos])
    baked = []
    for vi in list(m.graph.input):
        if vi.name in inits or vi.name not in data:
            continue
        if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT or vi.name in want:
            m.graph.initializer.append(numpy_helper.from_array(data[vi.name], vi.name))
            m.graph.input.remove(vi)
            baked.append(vi.name)
    return baked


def classify(case, eex, tmp):
    """Returns (kind, reason)."""
    import onnx
    model_path = os.path.join(case, "model.onnx")
    sets = sorted(glob.glob(os.path.join(case, "test_data_set_*")))
    if not os.path.isfile(model_path) or not sets:
        return "skipped", "no model or test data"
    m = onnx.load(model_path)
    for n in m.graph.node:
        if n.domain not in ("", "ai.onnx"):
            return "skipped", f"op {n.domain}.{n.op_type} (not in eex's op set)"
        if n.op_type not in onnx2eex.SUPPORTED:
            return "skipped", f"op {n.op_type} (not in eex's op set)"
    for vi in m.graph.output:
        if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            return "skipped", "a non-float32 output"
    inits = {i.name for i in m.graph.initializer}
    graph_inputs = [vi.name for vi in m.graph.input if vi.name not in inits]
    graph_outputs = [vi.name for vi in m.graph.output]
    if len(sets) > 1:
        sets = sets[:1]   # baked constants come from one data set
    data = {}
    for k, p in enumerate(sorted(glob.glob(os.path.join(sets[0], "input_*.pb")))):
        name, arr = load_pb(p)
        data[name or graph_inputs[k]] = arr
    baked = bake_constants(m, data)
    for vi in m.graph.input:
        if vi.name not in baked and vi.name not in inits and \
                vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            return "skipped", "a non-float32 input (eex computes in float32)"
    model_path = os.path.join(tmp, "model.onnx")
    onnx.save(m, model_path)
    out = os.path.join(tmp, os.path.basename(case) + ".eex")
    try:
        onnx2eex.convert(model_path, out, name=os.path.basename(case), multi_input=True)
    except onnx2eex.ConvertError as e:
        return "refused", str(e)
    for ds in sets:
        args = [eex, "run", out, "--threads", "2"]
        ins = sorted(glob.glob(os.path.join(ds, "input_*.pb")), key=lambda p: int(p[:-3].rsplit("_", 1)[1]))
        outs = sorted(glob.glob(os.path.join(ds, "output_*.pb")), key=lambda p: int(p[:-3].rsplit("_", 1)[1]))
        for k, p in enumerate(ins):
            name, arr = load_pb(p)
            name = name or graph_inputs[k]
            if name in baked:
                continue
            npy = os.path.join(tmp, f"in_{k}.npy")
            np.save(npy, np.ascontiguousarray(arr.astype(np.float32)))
            args += ["--input", f"{name}={npy}"]
        want = []
        for k, p in enumerate(outs):
            name, arr = load_pb(p)
            name = name or graph_outputs[k]
            npy = os.path.join(tmp, f"out_{k}.npy")
            if os.path.exists(npy):
                os.remove(npy)
            args += ["--output", f"{name}={npy}"]
            want.append((name, npy, arr))
        try:
            r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               timeout=60)
        except subprocess.TimeoutExpired:
            return "CRASH", "eex run timed out"
        if r.returncode != 0:
            last = r.stderr.strip().splitlines()[-1:] or [""]
            return "CRASH", f"eex run exit {r.returncode}: {last[0]}"
        for name, npy, arr in want:
            ok, why = close(np.load(npy), arr)
            if not ok:
                return "FAIL", f"output '{name}': {why}"
    return "pass", ""


def main(argv=None):
    p = argparse.ArgumentParser(prog="conformance.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--eex", default="build/eex")
    p.add_argument("--data", default=DATA)
    p.add_argument("--verbose", action="store_true", help="one line per case")
    args = p.parse_args(argv)
    cases = sorted(glob.glob(os.path.join(args.data, "test_*")))
    if not cases:
        print(f"conformance: no test cases in {args.data} (install libonnx-testdata: make deps)")
        return 1
    import warnings
    warnings.filterwarnings("ignore")
    results = collections.defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="eex-onnx-node-") as tmp:
        for case in cases:
            try:
                kind, why = classify(case, args.eex, tmp)
            except Exception as e:  # a converter bug, not a refusal: count it loudly
                kind, why = "CRASH", f"converter raised {type(e).__name__}: {e}"
            results[kind].append((os.path.basename(case), why))
            if args.verbose or kind in ("FAIL", "CRASH"):
                print(f"{kind:8s} {os.path.basename(case)}  {why}")
    passed = sorted(c for c, _ in results["pass"])
    print(f"passing cases: {' '.join(c[5:] for c in passed)}")
    print("refused (ops eex has, uses it does not), by message:")
    by_msg = collections.Counter(_gist(w) for _, w in results["refused"])
    for msg, k in by_msg.most_common():
        print(f"  {k:4d}  {msg}")
    print("skipped by design, by reason:")
    by_reason = collections.Counter(w for _, w in results["skipped"])
    shown = by_reason.most_common(12)
    for reason, k in shown:
        print(f"  {k:4d}  {reason}")
    rest = sum(by_reason.values()) - sum(k for _, k in shown)
    if rest:
        print(f"  {rest:4d}  other ops not in eex's op set ({len(by_reason) - len(shown)} ops)")
    print()
    print(f"{'cases':>8} {'pass':>6} {'FAIL':>6} {'CRASH':>6} {'refused':>8} {'skipped':>8}")
    print(f"{len(cases):8d} {len(results['pass']):6d} {len(results['FAIL']):6d} "
          f"{len(results['CRASH']):6d} {len(results['refused']):8d} {len(results['skipped']):8d}")
    return 0 if not results["FAIL"] and not results["CRASH"] else 1


def _gist(msg):
    """A refusal message without its node and value names, so that alike ones group."""
    import re
    msg = re.sub(r"\(node '[^']*'\)", "(node)", msg)
    msg = re.sub(r"'[^']*'", "'…'", msg)
    msg = re.sub(r"\[[0-9, ]+\]", "[…]", msg)
    return msg[:150]


if __name__ == "__main__":
    sys.exit(main())
