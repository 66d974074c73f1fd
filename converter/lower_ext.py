"""Lowering of the ONNX ops beyond the first four models (the torchvision zoo and
ONNX's node tests): constant folding of shape arithmetic, layouts, padding,
slicing, channel shuffles, the extra element-wise ops and the normalisations.

Two ideas carry most of it:

* Shape arithmetic is folded. With a dynamic batch, torch exports shapes as
  Shape -> Gather -> Div -> Concat chains; every value there depends only on
  shapes, which the converter knows (batch 1), so it evaluates them with numpy.
  A 1 in dim 0 of a folded shape stands for the batch, as in Reshape targets.
* Layout tags. eex keeps activations NHWC in memory, so ONNX's permutation of a
  4-D value to [N, H, W, C] (ConvNeXt does it around LayerNorm and its MLP) is
  free: the value keeps its eex shape and is tagged "nhwc"; ops that read the
  last axis then read the channels, and the permutation back drops the tag.
  A Reshape to [N, g, C/g, H, W] and the Transpose of its two group axes are
  tracked the same way (virtually) until the Reshape back makes a shuffle.
"""

import math

import numpy as np

from ir import ConvertError, Node, UnsupportedOp, bad_attr, where

# Ops evaluated by numpy when every input is a constant (shape arithmetic).
FOLDABLE = {"Gather", "Cast", "Unsqueeze", "Squeeze", "Concat", "Add", "Sub", "Mul", "Div",
            "Slice", "Reshape", "Identity", "ConstantOfShape", "Range", "Floor", "Ceil",
            "Neg", "Sqrt", "Transpose", "Equal", "Where", "ReduceProd", "Flatten", "Pow"}

INT_MAX = 2 ** 62


def _axes_of(lw, n, pos, attr="axes"):
    """Axes from the attribute (old opsets) or the input at pos (new ones)."""
    if attr in n.attrs:
        return [int(a) for a in n.attrs[attr]]
    if pos < len(n.inputs) and n.inputs[pos]:
        return [int(a) for a in lw.const(n, pos, attr).reshape(-1)]
    return None


class ExtOps:
    """Mixed into onnx2eex.Lowering; uses its act/const/shape/emit helpers."""

    # -- layouts and shapes
    def onnx_shape(self, v):
        s = list(self.shape(v))
        tag = self.layout.get(v)
        if tag == "nhwc":
            return [s[0], s[2], s[3], s[1]]
        if isinstance(tag, tuple):
            _, g, src = tag
            s = list(self.shape(src))
            if tag[0] == "grouped":
                return [s[0], g, s[1] // g, s[2], s[3]]
            return [s[0], s[1] // g, g, s[2], s[3]]
        return s

    def alias(self, n, src, tag=None):
        """n's output is src in memory (no node): later readers read src."""
        dst = n.outputs[0]
        if dst in self.g.outputs:
            if tag is not None or isinstance(self.layout.get(src), tuple):
                raise UnsupportedOp(f"ONNX op '{n.src}' {where(n)}: graph output in a "
                                    "non-NCHW layout")
            # a graph output keeps its ONNX name: the value src is renamed dst when
            # a node computes it, else (a graph input, another output) copied
            p = next((m for m in self.out if src in m.outputs), None)
            if p is None or src in self.g.outputs:
                s = self.shape(src)
                self.emit("reshape", n, [src], s, {"shape": s[1:]})
                return
            p.outputs = [dst if o == src else o for o in p.outputs]
            for m in self.out + self.g.nodes:
                m.inputs = [dst if i == src else i for i in m.inputs]
            self.g.shapes[dst] = list(self.shape(src))
            self.layout.pop(src, None)
            self.renamed[src] = dst
            return
        self.g.replace_uses(dst, src)
        self.renamed[dst] = src
        if tag is None:
            self.layout.pop(src, None)
        else:
            self.layout[src] = tag

    def plain(self, n, x):
        """Refuses an activation in a tracked layout for an op that does not know it."""
        tag = self.layout.get(x)
        if tag is not None:
            what = "[N, H, W, C]" if tag == "nhwc" else f"{len(self.onnx_shape(x))}-D grouped"
            raise UnsupportedOp(f"ONNX op '{n.src}' {where(n)}: input '{x}' is a {what} "
                                "view of an NCHW value, which this op cannot read")
        return x

    # -- constant folding
    def try_fold(self, n):
        g = self.g
        ins = [x for x in n.inputs if x]
        if n.op == "Shape":
            x = n.inputs[0]
            if x in g.consts:
                g.consts[n.outputs[0]] = np.array(g.consts[x].shape, dtype=np.int64)
            else:
                s = self.onnx_shape(x)
                lo, hi = int(n.attrs.get("start", 0)), n.attrs.get("end")
                s = s[lo:] if hi is None else s[lo:int(hi)]
                g.consts[n.outputs[0]] = np.array(s, dtype=np.int64)
            return True
        if n.op == "Size" and ins and ins[0] not in g.consts:
            g.consts[n.outputs[0]] = np.array(int(np.prod(self.onnx_shape(ins[0]))), np.int64)
            return True
        if n.op not in FOLDABLE or not all(x in g.consts for x in ins):
            return False
        try:
            out = _fold(n, [g.consts[x] if x else None for x in n.inputs], g.opset)
        except (ValueError, IndexError, TypeError) as e:
            raise ConvertError(f"ONNX op '{n.src}' {where(n)}: cannot fold constant "
                               f"inputs ({e})") from None
        g.consts[n.outputs[0]] = out
        return True

    # -- padding
    def op_Pad(self, n):
        x = self.plain(n, self.act(n, 0))
        self.rank(n, x, (4,))
        mode = n.attrs.get("mode", "constant")
        if mode != "constant":
            raise bad_attr(n, "mode", mode)
        if "pads" in n.attrs:
            pads = [int(p) for p in n.attrs["pads"]]
            value = float(n.attrs.get("value", 0.0))
        else:
            pads = [int(p) for p in self.const(n, 1, "pads").reshape(-1)]
            c = self.const(n, 2, "constant_value", optional=True)
            value = 0.0 if c is None or c.size == 0 else float(c.reshape(-1)[0])
            if len(n.inputs) > 3 and n.inputs[3]:
                raise UnsupportedOp(f"ONNX op 'Pad' {where(n)}: the axes input is not "
                                    "supported")
        if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5]:
            raise UnsupportedOp(f"ONNX op 'Pad' {where(n)}: pads {pads} (supported: H and "
                                "W of a 4-D value)")
        if any(p < 0 for p in pads):
            raise bad_attr(n, "pads", pads)
        if not math.isfinite(value) and value != -math.inf:
            raise bad_attr(n, "constant_value", value)
        t, l, b, r = pads[2], pads[3], pads[6], pads[7]
        s = self.shape(x)
        self.emit("pad", n, [x], [s[0], s[1], s[2] + t + b, s[3] + l + r],
                  {"pads": [t, l, b, r], "value": value})

    # -- reductions over H and W
    def _global(self, n, op):
        x = self.plain(n, self.act(n, 0))
        self.rank(n, x, (4,))
        axes = _axes_of(self, n, 1)
        r = len(self.shape(x))
        axes = sorted(a + r if a < 0 else a for a in (axes if axes is not None else range(r)))
        if axes != [2, 3]:
            raise UnsupportedOp(f"ONNX op '{n.src}' {where(n)}: axes {axes} (supported: "
                                "the spatial axes [2, 3] of a 4-D value)")
        if int(n.attrs.get("noop_with_empty_axes", 0)):
            raise bad_attr(n, "noop_with_empty_axes", 1)
        s = self.shape(x)
        if int(n.attrs.get("keepdims", 1)):
            self.emit(op, n, [x], [s[0], s[1], 1, 1])
            return
        mid = self.g.fresh(n.outputs[0] + ".pooled")
        self.emit(op, n, [x], [s[0], s[1], 1, 1], output=mid, name=n.name + ".pool")
        self.emit("reshape", n, [mid], [s[0], s[1]], {"shape": [s[1]]})

    def op_ReduceMean(self, n):
        self._global(n, "globalavgpool")

    def op_ReduceMax(self, n):
        self._global(n, "globalmaxpool")

    def op_GlobalMaxPool(self, n):
        x = self.plain(n, self.act(n, 0))
        self.rank(n, x, (4,))
        s = self.shape(x)
        self.emit("globalmaxpool", n, [x], [s[0], s[1], 1, 1])

    # -- element-wise
    def _unary(self, n, op, attrs=None):
        x = self.act(n, 0)
        self.emit(op, n, [x], self.shape(x), attrs)
        if x in self.layout:
            self.layout[n.outputs[0]] = self.layout[x]

    def op_Tanh(self, n):
        self._unary(n, "tanh")

    def op_Erf(self, n):
        self._unary(n, "erf")

    def op_Abs(self, n):
        self._unary(n, "abs")

    def op_Neg(self, n):
        self._unary(n, "neg")

    def op_Exp(self, n):
        self._unary(n, "exp")

    def op_Sqrt(self, n):
        self._unary(n, "sqrt")

    def op_LeakyRelu(self, n):
        self._unary(n, "leakyrelu", {"alpha": float(n.attrs.get("alpha", 0.01))})

    def op_Elu(self, n):
        self._unary(n, "elu", {"alpha": float(n.attrs.get("alpha", 1.0))})

    def op_Gelu(self, n):
        if n.attrs.get("approximate", "none") != "none":
            raise bad_attr(n, "approximate", n.attrs["approximate"])
        self._unary(n, "gelu")

    def op_PRelu(self, n):
        x = self.act(n, 0)
        slope = self.const(n, 1, "slope")
        c = self._broadcast_const(n, self.onnx_shape(x), slope, self.layout.get(x))
        self.emit("prelu", n, [x, self.g.add_const(f"{n.name}.slope", c)], self.shape(x))

    def op_Sub(self, n):
        self._binary(n, "sub")

    def op_Div(self, n):
        self._binary(n, "div")

    def _variadic(self, n, op):
        ins = [x for x in n.inputs if x]
        if len(ins) == 1:
            x = self.act(n, 0)
            self.alias(n, x, self.layout.get(x))
            return
        acc = ins[0]
        for k, x in enumerate(ins[1:], start=1):
            last = k == len(ins) - 1
            out = n.outputs[0] if last else self.g.fresh(f"{n.outputs[0]}.{k}")
            m = Node(n.op, n.name if last else f"{n.name}.{k}", [acc, x], [out], src=n.src)
            self._binary(m, op)
            acc = out

    def op_Sum(self, n):
        self._variadic(n, "add")

    def op_Max(self, n):
        self._variadic(n, "max")

    def op_Min(self, n):
        self._variadic(n, "min")

    # -- normalisations
    def op_LayerNormalization(self, n):
        x = self.act(n, 0)
        r = len(self.onnx_shape(x))
        axis = int(n.attrs.get("axis", -1))
        axis = axis + r if axis < 0 else axis
        channel_last = (self.layout.get(x) == "nhwc" and axis == 3) or (r == 2 and axis == 1)
        if not channel_last:
            raise UnsupportedOp(f"ONNX op 'LayerNormalization' {where(n)}: axis "
                                f"{n.attrs.get('axis', -1)} of {self.onnx_shape(x)} (supported: "
                                "the channels, i.e. the last axis of [N, C] or of an [N, H, W, C] "
                                "permutation)")
        c = self.shape(x)[1]
        ins = [x]
        for i, what in ((1, "scale"), (2, "bias")):
            v = self.const(n, i, what, optional=(i == 2))
            if v is None:
                continue
            v = np.asarray(v, dtype=np.float32)
            if v.size == 1:
                v = np.full(c, v.reshape(()), dtype=np.float32)
            if v.size != c:
                raise ConvertError(f"ONNX op 'LayerNormalization' {where(n)}: {what} has "
                                   f"{v.size} values for {c} channels")
            ins.append(self.g.add_const(f"{n.name}.{what}", v.reshape(c)))
        self.emit("layernorm", n, ins, self.shape(x),
                  {"epsilon": float(n.attrs.get("epsilon", 1e-5))})
        if x in self.layout:
            self.layout[n.outputs[0]] = self.layout[x]

    def op_LRN(self, n):
        x = self.plain(n, self.act(n, 0))
        self.rank(n, x, (4,))
        if "size" not in n.attrs:
            raise ConvertError(f"ONNX op 'LRN' {where(n)} lacks its size")
        self.emit("lrn", n, [x], self.shape(x),
                  {"size": int(n.attrs["size"]), "alpha": float(n.attrs.get("alpha", 1e-4)),
                   "beta": float(n.attrs.get("beta", 0.75)),
                   "bias": float(n.attrs.get("bias", 1.0))})

    # -- layout ops
    def op_Transpose(self, n):
        x = self.act(n, 0)
        s = self.onnx_shape(x)
        perm = [int(p) for p in n.attrs.get("perm", list(range(len(s)))[::-1])]
        tag = self.layout.get(x)
        if perm == list(range(len(s))):
            self.alias(n, x, tag)
        elif tag is None and perm == [0, 2, 3, 1] and len(s) == 4:
            self.alias(n, x, "nhwc")
        elif tag == "nhwc" and perm == [0, 3, 1, 2]:
            self.alias(n, x, None)
        elif isinstance(tag, tuple) and perm == [0, 2, 1, 3, 4]:
            kind = "grouped_t" if tag[0] == "grouped" else "grouped"
            self.layout[n.outputs[0]] = (kind, tag[1], tag[2])
            self.g.shapes[n.outputs[0]] = list(self.shape(tag[2]))
        else:
            raise UnsupportedOp(f"ONNX op 'Transpose' {where(n)}: perm {perm} of {s} "
                                "(supported: NCHW <-> NHWC around channel-last ops, and "
                                "channel shuffles)")

    def reshape_ext(self, n, x, target):
        """Reshapes the plain Reshape lowering leaves: channel shuffles, and
        [N, K] <-> [N, C, H, W] in NCHW order. Returns False if none applies."""
        s = self.onnx_shape(x)
        tag = self.layout.get(x)
        target = [s[i] if t == 0 and i < len(s) else t for i, t in enumerate(target)]
        if -1 in target:
            known = int(np.prod([t for t in target if t != -1]))
            target[target.index(-1)] = int(np.prod(s)) // max(known, 1)
        if target[0] != s[0] or int(np.prod(target)) != int(np.prod(s)):
            return False
        if isinstance(tag, tuple):
            src = tag[2]
            if target != list(self.shape(src)):
                return False
            if tag[0] == "grouped":
                self.alias(n, src, None)
            else:
                self.emit("shuffle", n, [src], self.shape(src), {"groups": tag[1]})
            return True
        if tag is not None:
            return False
        if len(s) == 4 and len(target) == 5 and target[3:] == s[2:] and \
                target[1] * target[2] == s[1]:
            self.layout[n.outputs[0]] = ("grouped", target[1], x)
            self.g.shapes[n.outputs[0]] = list(self.shape(x))
            return True
        if 1 <= len(target) <= 4:
            if target == s:
                self.alias(n, x, None)
            else:
                self.emit("reshape", n, [x], target, {"shape": target[1:]})
            return True
        return False

    def op_Squeeze(self, n):
        x = self.plain(n, self.act(n, 0))
        s = self.shape(x)
        axes = _axes_of(self, n, 1)
        axes = [a + len(s) if a < 0 else a for a in (axes or [i for i, d in enumerate(s) if d == 1])]
        if 0 in axes or any(s[a] != 1 for a in axes):
            raise UnsupportedOp(f"ONNX op 'Squeeze' {where(n)}: axes {axes} of {s}")
        target = [d for i, d in enumerate(s) if i not in axes]
        if not 1 <= len(target) <= 4:
            raise UnsupportedOp(f"ONNX op 'Squeeze' {where(n)}: result has rank {len(target)} "
                                "(supported: 1 to 4)")
        self.emit("reshape", n, [x], target, {"shape": target[1:]})

    def op_Unsqueeze(self, n):
        x = self.plain(n, self.act(n, 0))
        s = self.shape(x)
        axes = sorted(_axes_of(self, n, 1) or [])
        r = len(s) + len(axes)
        axes = sorted(a + r if a < 0 else a for a in axes)
        target = list(s)
        for a in axes:
            target.insert(a, 1)
        if 0 in axes or len(target) > 4:
            raise UnsupportedOp(f"ONNX op 'Unsqueeze' {where(n)}: axes {axes} of {s}")
        self.emit("reshape", n, [x], target, {"shape": target[1:]})

    # -- slicing
    def _slice_chain(self, n, x, cuts, output=None):
        """cuts: [(axis, start, end, step)] on eex axes; emits one slice node each."""
        s = list(self.shape(x))
        cuts = [c for c in cuts if not (c[1] == 0 and c[2] == s[c[0]] and c[3] == 1)]
        final = output or n.outputs[0]
        if not cuts:
            if output is not None:
                self.emit("reshape", n, [x], s, {"shape": s[1:]}, output=final,
                          name=f"{n.name}.{final}")
            else:
                self.alias(n, x, None)
            return
        for k, (axis, start, end, step) in enumerate(cuts):
            last = k == len(cuts) - 1
            out = final if last else self.g.fresh(f"{final}.{k}")
            s[axis] = (end - start + step - 1) // step
            # eex numbers the axes of NCHW (1 C, 2 H, 3 W); [N, C, W] has no H
            eax = 3 if len(s) == 3 and axis == 2 else axis
            self.emit("slice", n, [x], s, {"axis": eax, "start": start, "end": end,
                                           "step": step},
                      output=out, name=n.name if last and output is None else f"{n.name}.{out}")
            x = out

    def op_Slice(self, n):
        x = self.plain(n, self.act(n, 0))
        s = self.shape(x)
        if "starts" in n.attrs:
            starts, ends = list(n.attrs["starts"]), list(n.attrs["ends"])
            axes = list(n.attrs.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts = [int(v) for v in self.const(n, 1, "starts").reshape(-1)]
            ends = [int(v) for v in self.const(n, 2, "ends").reshape(-1)]
            a = self.const(n, 3, "axes", optional=True)
            axes = list(range(len(starts))) if a is None else [int(v) for v in a.reshape(-1)]
            st = self.const(n, 4, "steps", optional=True)
            steps = [1] * len(starts) if st is None else [int(v) for v in st.reshape(-1)]
        cuts = []
        for a, b, e, st in zip(axes, starts, ends, steps):
            a = a + len(s) if a < 0 else a
            d = s[a]
            if st < 1:
                raise UnsupportedOp(f"ONNX op 'Slice' {where(n)}: step {st} (supported: >= 1)")
            if a == 0:
                # the batch is not known here: only the whole of it is a no-op
                if b not in (0, -INT_MAX) and b > -(2 ** 31) or e < 2 ** 31 - 1 or st != 1:
                    raise UnsupportedOp(f"ONNX op 'Slice' {where(n)}: slices the batch axis")
                continue
            b = min(max(b + d if b < 0 else b, 0), d)
            e = min(max(e + d if e < 0 else e, 0), d)
            if e <= b:
                raise ConvertError(f"ONNX op 'Slice' {where(n)}: empty result on axis {a}")
            cuts.append((a, b, e, st))
        self._slice_chain(n, x, cuts)

    def op_Split(self, n):
        x = self.plain(n, self.act(n, 0))
        s = self.shape(x)
        axis = int(n.attrs.get("axis", 0))
        axis = axis + len(s) if axis < 0 else axis
        if axis == 0:
            raise UnsupportedOp(f"ONNX op 'Split' {where(n)}: splits the batch axis")
        if "split" in n.attrs:
            sizes = [int(v) for v in n.attrs["split"]]
        elif len(n.inputs) > 1 and n.inputs[1]:
            sizes = [int(v) for v in self.const(n, 1, "split").reshape(-1)]
        else:
            k = len(n.outputs)
            if s[axis] % k:
                raise ConvertError(f"ONNX op 'Split' {where(n)}: {s[axis]} does not split "
                                   f"evenly in {k}")
            sizes = [s[axis] // k] * k
        if len(sizes) != len(n.outputs) or sum(sizes) != s[axis] or min(sizes) < 1:
            raise ConvertError(f"ONNX op 'Split' {where(n)}: sizes {sizes} for axis size "
                               f"{s[axis]} and {len(n.outputs)} outputs")
        start = 0
        for size, out in zip(sizes, n.outputs):
            if out:
                self._slice_chain(n, x, [(axis, start, start + size, 1)], output=out)
            start += size


def _fold(n, ins, opset):
    """numpy evaluation of one shape-arithmetic node with constant inputs."""
    a = n.attrs
    x = ins[0]
    op = n.op
    if op == "Identity":
        return x
    if op == "Cast":
        from onnx import mapping
        return x.astype(mapping.TENSOR_TYPE_TO_NP_TYPE[int(a["to"])])
    if op == "Gather":
        return np.take(x, ins[1].astype(np.int64), axis=int(a.get("axis", 0)))
    if op in ("Unsqueeze", "Squeeze"):
        axes = a.get("axes")
        if axes is None and len(ins) > 1 and ins[1] is not None:
            axes = ins[1].reshape(-1).tolist()
        if op == "Squeeze":
            return np.squeeze(x, axis=None if axes is None else tuple(int(v) for v in axes))
        r = x.ndim + len(axes)
        for ax in sorted(int(v) + r if v < 0 else int(v) for v in axes):
            x = np.expand_dims(x, ax)
        return x
    if op == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in ins if v is not None],
                              axis=int(a.get("axis", 0)))
    if op in ("Add", "Sub", "Mul", "Div"):
        b = ins[1]
        if op == "Div" and x.dtype.kind in "iu":
            return (np.trunc(x / b)).astype(x.dtype)
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
                "Div": np.divide}[op](x, b).astype(np.result_type(x, b))
    if op == "Slice":
        starts, ends = ins[1].reshape(-1), ins[2].reshape(-1)
        axes = ins[3].reshape(-1) if len(ins) > 3 and ins[3] is not None else range(len(starts))
        steps = ins[4].reshape(-1) if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
        sl = [slice(None)] * x.ndim
        for ax, b, e, st in zip(axes, starts, ends, steps):
            sl[int(ax)] = slice(int(b), int(min(e, INT_MAX)) if e > -INT_MAX else None, int(st))
        return x[tuple(sl)]
    if op == "Reshape":
        t = [int(v) for v in ins[1].reshape(-1)]
        t = [x.shape[i] if v == 0 else v for i, v in enumerate(t)]
        return x.reshape(t)
    if op == "ConstantOfShape":
        from onnx import numpy_helper
        v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return np.full([int(d) for d in x.reshape(-1)], v.reshape(-1)[0], dtype=v.dtype)
    if op == "Range":
        return np.arange(x.reshape(()), ins[1].reshape(()), ins[2].reshape(())).astype(x.dtype)
    if op == "Pow":
        return np.power(x, ins[1]).astype(x.dtype)
    if op == "Floor":
        return np.floor(x)
    if op == "Ceil":
        return np.ceil(x)
    if op == "Neg":
        return -x
    if op == "Sqrt":
        return np.sqrt(x)
    if op == "Transpose":
        return np.transpose(x, a.get("perm"))
    if op == "Equal":
        return np.equal(x, ins[1])
    if op == "Where":
        return np.where(x, ins[1], ins[2])
    if op == "ReduceProd":
        return np.prod(x, keepdims=bool(a.get("keepdims", 1)))
    if op == "Flatten":
        ax = int(a.get("axis", 1))
        return x.reshape(int(np.prod(x.shape[:ax])), -1)
    raise ValueError(f"no folding for {op}")
