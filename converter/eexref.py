#!/usr/bin/python3
"""A slow, plain numpy interpreter of .eex v1 graphs: the converter's own check that a
file means what the ONNX model meant, independent of the C engine.

    eexref.py MODEL.eex IN.npy -o OUT.npy      (first graph output, float32)
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eexfile  # noqa: E402


def _act(y, attrs):
    act = attrs.get("act", "none")
    if act == "relu":
        return np.maximum(y, 0)
    if act == "clip":
        return np.clip(y, attrs["act_min"], attrs["act_max"])
    if act == "hardswish":
        return _hardswish(y)
    if act == "silu":
        return _silu(y)
    return y


def _hardswish(x):
    return x * np.clip(x / 6 + 0.5, 0, 1)


def _silu(x):
    with np.errstate(over="ignore"):  # e^-x = inf below x ~ -88 gives -0, as it should
        return x / (1 + np.exp(-x))


def _windows(x, kh, kw, strides, dil, ho, wo):
    """Yields (i, j, view [N, C, ho, wo]) for each kernel tap of a padded input."""
    sh, sw = strides
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dil[0], j * dil[1]
            yield i, j, x[:, :, r0:r0 + sh * (ho - 1) + 1:sh, c0:c0 + sw * (wo - 1) + 1:sw]


def _out_size(size, k, s, d, pb, pe, ceil_mode):
    span = size + pb + pe - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + pb:
        out -= 1
    return out


def conv(x, w, b, attrs):
    st = attrs.get("strides", [1, 1])
    pt, pl, pb, pr = attrs.get("pads", [0, 0, 0, 0])
    dil = attrs.get("dilations", [1, 1])
    g = attrs.get("group", 1)
    n, c, h, wd = x.shape
    co, cig, kh, kw = w.shape
    ho = _out_size(h, kh, st[0], dil[0], pt, pb, False)
    wo = _out_size(wd, kw, st[1], dil[1], pl, pr, False)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    wg = w.reshape(g, co // g, cig, kh, kw)
    y = np.zeros((n, g, co // g, ho * wo), dtype=np.float64)
    for i, j, v in _windows(xp, kh, kw, st, dil, ho, wo):
        y += np.matmul(wg[None, :, :, :, i, j], v.reshape(n, g, cig, ho * wo))
    y = y.reshape(n, co, ho, wo)
    if b is not None:
        y += b.reshape(1, co, 1, 1)
    return y


def pool(x, attrs, kind):
    kh, kw = attrs["kernel"]
    st = attrs.get("strides", [1, 1])
    pt, pl, pb, pr = attrs.get("pads", [0, 0, 0, 0])
    ceil_mode = attrs.get("ceil_mode", 0)
    n, c, h, w = x.shape
    ho = _out_size(h, kh, st[0], 1, pt, pb, ceil_mode)
    wo = _out_size(w, kw, st[1], 1, pl, pr, ceil_mode)
    # extra cells past the end pads for ceil_mode windows
    eh = max(0, (ho - 1) * st[0] + kh - (h + pt + pb))
    ew = max(0, (wo - 1) * st[1] + kw - (w + pl + pr))
    pad = ((0, 0), (0, 0), (pt, pb + eh), (pl, pr + ew))
    if kind == "max":
        xp = np.pad(x, pad, constant_values=-np.inf)
        y = np.full((n, c, ho, wo), -np.inf)
        for _, _, v in _windows(xp, kh, kw, st, [1, 1], ho, wo):
            y = np.maximum(y, v)
        return y
    xp = np.pad(x, pad)
    real = np.pad(np.ones((1, 1, h, w)), pad)
    if attrs.get("count_include_pad", 0):
        # explicit pads count; the ceil_mode overhang does not (as PyTorch)
        real = np.pad(np.ones((1, 1, h + pt + pb, w + pl + pr)),
                      ((0, 0), (0, 0), (0, eh), (0, ew)))
    s = np.zeros((n, c, ho, wo))
    cnt = np.zeros((1, 1, ho, wo))
    for (_, _, v), (_, _, m) in zip(_windows(xp, kh, kw, st, [1, 1], ho, wo),
                                    _windows(real, kh, kw, st, [1, 1], ho, wo)):
        s += v
        cnt += m
    return s / cnt


def _bcast(a, b):
    if b.ndim == 1 and a.ndim in (3, 4):
        b = b.reshape((1, -1) + (1,) * (a.ndim - 2))
    return b


def _pair(a, b):
    """Either operand of a binary op may be the per-channel constant ([C])."""
    if a.ndim == 1 and b.ndim > 1:
        return _bcast(b, a), b
    return a, _bcast(a, b)


def _erf(x):
    import math
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _lrn(x, a):
    size = a["size"]
    lo, hi = (size - 1) // 2, size // 2
    sq = np.zeros_like(x)
    c = x.shape[1]
    for k in range(c):
        sq[:, k] = (x[:, max(0, k - lo):min(c, k + hi + 1)] ** 2).sum(axis=1)
    return x / (a.get("bias", 1.0) + a.get("alpha", 1e-4) / size * sq) ** a.get("beta", 0.75)


def _more(op, a, ins):
    """The ops added with the torchvision zoo (docs/format.md)."""
    x = ins[0]
    if op in ("sub", "div", "max", "min"):
        p, q = _pair(x, ins[1])
        return {"sub": np.subtract, "div": np.divide, "max": np.maximum,
                "min": np.minimum}[op](p, q)
    if op == "prelu":
        return np.where(x < 0, x * _bcast(x, ins[1]), x)
    unary = {"tanh": np.tanh, "abs": np.abs, "neg": np.negative, "exp": np.exp,
             "sqrt": np.sqrt, "erf": _erf}
    if op in unary:
        return unary[op](x)
    if op == "gelu":
        return 0.5 * x * (1 + _erf(x / np.sqrt(2)))
    if op == "leakyrelu":
        return np.where(x < 0, a.get("alpha", 0.01) * x, x)
    if op == "elu":
        return np.where(x < 0, a.get("alpha", 1.0) * np.expm1(np.minimum(x, 0)), x)
    if op == "pad":
        t, l, b, r = a["pads"]
        return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=a.get("value", 0.0))
    if op == "slice":
        axis = a["axis"] if x.ndim == 4 else {1: 1, 3: 2}[a["axis"]]
        sl = [slice(None)] * x.ndim
        sl[axis] = slice(a["start"], a["end"], a.get("step", 1))
        return x[tuple(sl)]
    if op == "shuffle":
        g = a["groups"]
        n, c = x.shape[:2]
        return x.reshape((n, g, c // g) + x.shape[2:]).swapaxes(1, 2).reshape(x.shape)
    if op == "reshape":
        return x.reshape((x.shape[0],) + tuple(a["shape"]))
    if op == "layernorm":
        mu = x.mean(axis=1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
        y = (x - mu) / np.sqrt(var + a.get("epsilon", 1e-5)) * _bcast(x, ins[1])
        return y + _bcast(x, ins[2]) if len(ins) > 2 and ins[2] is not None else y
    if op == "globalmaxpool":
        return x.max(axis=(2, 3), keepdims=True)
    if op == "lrn":
        return _lrn(x, a)
    raise ValueError(f"no reference for op '{op}'")


def run(model, x):
    """model: a read_eex() dict; x: the graph input. Returns {output name: array}."""
    env = {model["inputs"][0][0]: np.asarray(x, dtype=np.float64)}
    for name, t in model["tensors"].items():
        env[name] = t["data"].astype(np.float64)
    for nd in model["nodes"]:
        op, a = nd["op"], nd["attrs"]
        ins = [env[i] if i else None for i in nd["inputs"]]
        x = ins[0]
        if op == "conv":
            y = _act(conv(x, ins[1], ins[2] if len(ins) > 2 else None, a), a)
        elif op == "dense":
            y = x @ ins[1].T
            if len(ins) > 2 and ins[2] is not None:
                y = y + ins[2]
            y = _act(y, a)
        elif op == "add":
            y = _act(x + _bcast(x, ins[1]), a)
        elif op == "mul":
            y = x * _bcast(x, ins[1])
        elif op == "relu":
            y = np.maximum(x, 0)
        elif op == "clip":
            y = np.clip(x, a["min"], a["max"])
        elif op == "sigmoid":
            y = 1 / (1 + np.exp(-x))
        elif op == "hardsigmoid":
            y = np.clip(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0, 1)
        elif op == "hardswish":
            y = _hardswish(x)
        elif op == "silu":
            y = _silu(x)
        elif op == "maxpool":
            y = pool(x, a, "max")
        elif op == "avgpool":
            y = pool(x, a, "avg")
        elif op == "globalavgpool":
            y = x.mean(axis=(2, 3), keepdims=True)
        elif op == "flatten":
            y = x.reshape(x.shape[0], -1)
        elif op == "concat":
            y = np.concatenate(ins, axis=1)
        elif op == "softmax":
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            y = e / e.sum(axis=-1, keepdims=True)
        else:
            y = _more(op, a, ins)
        env[nd["outputs"][0]] = y
    return {o: env[o] for o in model["outputs"]}


def main(argv=None):
    p = argparse.ArgumentParser(prog="eexref.py", description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args(argv)
    m = eexfile.read_eex(args.model)
    y = run(m, np.load(args.input))
    np.save(args.output, y[m["outputs"][0]].astype(np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
