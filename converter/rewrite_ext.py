"""Rewrites on the lowered eex graph for the ops of lower_ext.py: padding folded
into the conv or pool that reads it, conv + per-channel add -> conv bias (ConvNeXt's
MatMul + Add), the exported GELU pattern -> gelu; and the engine's load-time limits
checked here, so that a file eex-convert writes is a file the engine loads."""

import math

import numpy as np

from ir import ConvertError


def _scalar(g, name):
    c = g.consts.get(name)
    return None if c is None or c.size != 1 else float(c.reshape(()))


def fold_pad(g):
    """Pad(0) -> conv pads; Pad(0) -> avgpool pads with count_include_pad; Pad(-inf)
    -> maxpool pads. The pad node stays where the reader cannot absorb it."""
    for p in [n for n in g.nodes if n.op == "pad"]:
        y = p.outputs[0]
        if not g.single_use(y):
            continue
        r = g.consumers(y)[0]
        if r.inputs[0] != y:
            continue
        value = p.attrs["value"]
        pads = list(r.attrs.get("pads", [0, 0, 0, 0]))
        add = p.attrs["pads"]
        new = [a + b for a, b in zip(pads, add)]
        if r.op == "conv" and value == 0.0:
            pass
        elif r.op == "avgpool" and value == 0.0 and not any(pads) and \
                (r.attrs.get("count_include_pad", 0) == 0 or not r.attrs.get("ceil_mode", 0)):
            # the padded cells count, the ceil-mode overhang past them does not: what
            # the pool over the padded tensor computed
            r.attrs["count_include_pad"] = 1
        elif r.op == "maxpool" and value == -math.inf:
            pass
        else:
            continue
        if r.op != "conv":
            kh, kw = r.attrs["kernel"]
            if new[0] >= kh or new[2] >= kh or new[1] >= kw or new[3] >= kw:
                continue   # the engine's pools need pads smaller than the window
        r.attrs["pads"] = new
        r.inputs[0] = p.inputs[0]
        g.nodes.remove(p)


def fuse_conv_bias(g):
    for c in [n for n in g.nodes if n.op == "conv" and n.attrs.get("act", "none") == "none"]:
        y = c.outputs[0]
        if not g.single_use(y):
            continue
        a = g.consumers(y)[0]
        if a.op != "add" or a.attrs or y not in a.inputs:
            continue
        other = a.inputs[1 - a.inputs.index(y)]
        b = g.consts.get(other)
        co = g.consts[c.inputs[1]].shape[0]
        if b is None or b.size not in (1, co):
            continue
        old = g.consts[c.inputs[2]].astype(np.float64) if len(c.inputs) > 2 else np.zeros(co)
        bias = old + np.broadcast_to(b.reshape(-1).astype(np.float64), (co,))
        c.inputs[2:] = [g.add_const(f"{c.name}.bias", bias.astype(np.float32))]
        c.outputs = list(a.outputs)
        g.nodes.remove(a)


def fuse_gelu(g):
    """x * (erf(x / sqrt 2) + 1) * 0.5, as torch exports GELU -> gelu(x)."""
    for e in [n for n in g.nodes if n.op == "erf"]:
        d = g.producer(e.inputs[0])
        if d is None or not g.single_use(d.outputs[0]):
            continue
        if d.op == "div" and abs((_scalar(g, d.inputs[1]) or 0) - math.sqrt(2)) < 1e-6:
            x = d.inputs[0]
        elif d.op == "mul" and abs((_scalar(g, d.inputs[1]) or 0) - math.sqrt(0.5)) < 1e-6:
            x = d.inputs[0]
        else:
            continue
        users = g.consumers(e.outputs[0])
        if len(users) != 1 or users[0].op != "add" or not g.single_use(e.outputs[0]):
            continue
        a = users[0]
        if _scalar(g, a.inputs[1 - a.inputs.index(e.outputs[0])]) != 1.0 or a.attrs or \
                not g.single_use(a.outputs[0]):
            continue
        m1 = g.consumers(a.outputs[0])[0]
        if m1.op != "mul" or sorted(m1.inputs) != sorted([x, a.outputs[0]]) or \
                not g.single_use(m1.outputs[0]):
            continue
        m2 = g.consumers(m1.outputs[0])[0]
        if m2.op != "mul" or _scalar(g, m2.inputs[1 - m2.inputs.index(m1.outputs[0])]) != 0.5:
            continue
        for n in (d, e, a, m1):
            g.nodes.remove(n)
        m2.op, m2.inputs, m2.attrs = "gelu", [x], {}


# Mirrors engine/bind.c and engine/attrs.c.
_MAX_C, _MAX_HW, _MAX_ELEMS = 1 << 24, 1 << 16, 1 << 30


def check_engine_limits(g):
    for n in g.nodes:
        s = g.shapes.get(n.outputs[0])
        if s is not None:
            c = s[1] if len(s) > 1 else 1
            hw = s[2:] if len(s) == 4 else [1, s[2]] if len(s) == 3 else [1, 1]
            if c < 1 or min(hw) < 1 or c > _MAX_C or max(hw) > _MAX_HW or \
                    c * hw[0] * hw[1] > _MAX_ELEMS:
                raise ConvertError(f"node '{n.name}' ({n.op}) gives shape {s}, which the "
                                   "engine refuses (empty, or beyond its limits)")
        if len(n.inputs) > 64:
            raise ConvertError(f"node '{n.name}' has {len(n.inputs)} inputs (at most 64)")
        for key, v in n.attrs.items():
            vals = v if isinstance(v, (list, tuple)) else [v]
            # reshape's shape is read as 64-bit dims (up to 2^30); every other integer
            # attribute as a small int (engine/attrs.c)
            lo, hi = (1, _MAX_ELEMS) if (n.op, key) == ("reshape", "shape") else (-65536, 65536)
            for x in vals:
                if isinstance(x, (int, np.integer)) and not isinstance(x, bool) and \
                        not lo <= int(x) <= hi:
                    raise ConvertError(f"node '{n.name}' ({n.op}) attribute {key}={v} is out "
                                       "of the engine's range")
        if n.op == "conv":
            w = g.consts[n.inputs[1]]
            if w.shape[2] > 64 or w.shape[3] > 64:
                raise ConvertError(f"conv '{n.name}': kernel larger than 64")


def fuse_layernorm_onnx(g):
    """Before lowering: the layer norm that torch writes below opset 17 (ReduceMean,
    Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, then Mul scale, Add bias) -> one
    LayerNormalization over the last axis, which ConvNeXt's layout tracking lowers."""
    from ir import Node

    def only_user(v, op):
        users = g.consumers(v)
        ok = len(users) == 1 and v not in g.outputs and users[0].op == op
        return users[0] if ok else None

    def last_axis(n):
        return n.op == "ReduceMean" and list(n.attrs.get("axes", [])) == [-1] and \
            int(n.attrs.get("keepdims", 1)) == 1

    for r1 in [n for n in g.nodes if last_axis(n)]:
        x, m = r1.inputs[0], r1.outputs[0]
        sub = only_user(m, "Sub")
        if sub is None or sub.inputs != [x, m]:
            continue
        d = sub.outputs[0]
        users = g.consumers(d)
        pw = [u for u in users if u.op == "Pow"]
        dv = [u for u in users if u.op == "Div"]
        if len(users) != 2 or len(pw) != 1 or len(dv) != 1 or d in g.outputs:
            continue
        pw, dv = pw[0], dv[0]
        if pw.inputs[0] != d or _scalar(g, pw.inputs[1]) != 2.0 or dv.inputs[0] != d:
            continue
        r2 = only_user(pw.outputs[0], "ReduceMean")
        if r2 is None or not last_axis(r2):
            continue
        add = only_user(r2.outputs[0], "Add")
        if add is None:
            continue
        eps = _scalar(g, add.inputs[1] if add.inputs[0] == r2.outputs[0] else add.inputs[0])
        sq = only_user(add.outputs[0], "Sqrt")
        if eps is None or sq is None or dv.inputs[1] != sq.outputs[0] or \
                not g.single_use(sq.outputs[0]):
            continue
        chain = [r1, sub, pw, r2, add, sq, dv]
        out, scale, bias = dv.outputs[0], None, None
        mul = only_user(out, "Mul")
        if mul is not None:
            other = mul.inputs[1] if mul.inputs[0] == out else mul.inputs[0]
            if other in g.consts:
                scale, out = other, mul.outputs[0]
                chain.append(mul)
                badd = only_user(out, "Add")
                if badd is not None:
                    other = badd.inputs[1] if badd.inputs[0] == out else badd.inputs[0]
                    if other in g.consts:
                        bias, out = other, badd.outputs[0]
                        chain.append(badd)
        if scale is None:
            continue   # without a constant scale, leave it to be refused op by op
        ln = Node("LayerNormalization", r1.name + ".layernorm", [x, scale] + ([bias] if bias else []),
                  [out], {"axis": -1, "epsilon": eps}, src="LayerNormalization")
        i = g.nodes.index(r1)
        for n in chain:
            g.nodes.remove(n)
        g.nodes.insert(min(i, len(g.nodes)), ln)
