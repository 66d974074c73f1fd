"""ONNX -> .eex v1 conversion (the engine's op set is in docs/format.md).

The pipeline works on a small mutable graph of Node objects:
  load      ONNX nodes, initializers and Constant nodes (as numpy constants)
  check     every op is one we know, before any work (fail fast, name the node)
  drop      Identity and Dropout, rewiring their consumers
  lower     each ONNX node into eex ops, in topological order, propagating shapes
            (batch 1) so broadcasting, Reshape and Softmax can be checked
  rewrite   fold BatchNorm into conv; Mul(x, HardSigmoid(x)) -> hardswish;
            Mul(x, Sigmoid(x)) -> silu; dense + Add(bias) -> dense with bias;
            fuse relu/clip/hardswish/silu into act
  emit      topological order, unique names, through eexfile.EexWriter
"""

import math
import os
from collections import Counter

import numpy as np

import eexfile
import rewrite_ext

PRODUCER = "eex-convert 1"

# ONNX opsets whose op signatures the lowering knows (torch.onnx.export in
# Debian's torch writes 7..17; ONNX 1.12's node tests go up to 17).
OPSET_MIN, OPSET_MAX = 1, 17

from ir import ConvertError, Node, UnsupportedOp  # noqa: F401 (re-exported)
from ir import bad_attr as _bad_attr
from ir import where as _where
from lower_ext import ExtOps


class FileError(ConvertError):
    """A file that cannot be opened, parsed as ONNX, or written."""


# ONNX op -> attributes we understand. Anything else on the node is refused.
SUPPORTED = {
    "Conv": {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"},
    "BatchNormalization": {"epsilon", "momentum", "training_mode", "spatial", "is_test",
                           "consumed_inputs"},
    "Relu": set(), "Sigmoid": set(), "HardSwish": set(),
    "Clip": {"min", "max"},
    "HardSigmoid": {"alpha", "beta"},
    "Add": set(), "Mul": set(), "Sub": set(), "Div": set(),
    "Sum": set(), "Max": set(), "Min": set(),
    "Tanh": set(), "Erf": set(), "Abs": set(), "Neg": set(), "Exp": set(), "Sqrt": set(),
    "LeakyRelu": {"alpha"}, "Elu": {"alpha"}, "PRelu": set(), "Gelu": {"approximate"},
    "Pad": {"mode", "pads", "value"},
    "ReduceMean": {"axes", "keepdims", "noop_with_empty_axes"},
    "ReduceMax": {"axes", "keepdims", "noop_with_empty_axes"},
    "GlobalMaxPool": set(),
    "LayerNormalization": {"axis", "epsilon", "stash_type"},
    "LRN": {"alpha", "beta", "bias", "size"},
    "Transpose": {"perm"},
    "Squeeze": {"axes"}, "Unsqueeze": {"axes"},
    "Split": {"axis", "split"},
    "Slice": {"starts", "ends", "axes"},
    # shape arithmetic, folded to constants (lower_ext.py)
    "Shape": {"start", "end"}, "Size": set(), "Gather": {"axis"}, "Cast": {"to"},
    "ConstantOfShape": {"value"}, "Range": set(), "Floor": set(), "Ceil": set(),
    "Equal": set(), "Where": set(), "ReduceProd": {"axes", "keepdims"},
    # only as part of the layer norm torch spells out below opset 17 (rewrite_ext.py)
    "Pow": set(),
    "MaxPool": {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                "storage_order", "strides"},
    "AveragePool": {"auto_pad", "ceil_mode", "count_include_pad", "dilations",
                    "kernel_shape", "pads", "strides"},
    "GlobalAveragePool": set(),
    "Flatten": {"axis"},
    "Reshape": {"allowzero"},
    "Gemm": {"alpha", "beta", "transA", "transB", "broadcast"},
    "MatMul": set(),
    "Concat": {"axis"},
    "Softmax": {"axis"},
    "Dropout": {"seed", "ratio", "is_test"},
    "Identity": set(),
    "Constant": {"value", "value_float", "value_floats", "value_int", "value_ints"},
}


class Graph:
    def __init__(self):
        self.nodes = []
        self.consts = {}        # name -> np.ndarray
        self.inputs = []        # [(name, dims)] with dims[0] == 1
        self.outputs = []       # [name]
        self.shapes = {}        # value name -> list of ints (batch 1)
        self.opset = 13
        self._used = set()

    # -- naming
    def reserve(self, name):
        self._used.add(name)

    def fresh(self, base):
        name, k = base, 1
        while name in self._used:
            name = f"{base}_{k}"
            k += 1
        self._used.add(name)
        return name

    def add_const(self, base, array):
        name = self.fresh(base)
        self.consts[name] = np.asarray(array)
        return name

    # -- structure queries (the graph is small; linear scans keep it simple)
    def producer(self, value):
        for n in self.nodes:
            if value in n.outputs:
                return n
        return None

    def consumers(self, value):
        return [n for n in self.nodes if value in n.inputs]

    def single_use(self, value):
        """True if exactly one node reads value, once, and it is not a graph output."""
        users = self.consumers(value)
        return (len(users) == 1 and users[0].inputs.count(value) == 1
                and value not in self.outputs)

    def replace_uses(self, old, new):
        for n in self.nodes:
            n.inputs = [new if x == old else x for x in n.inputs]


# ----------------------------------------------------------------------------- loading

def _attr_value(a):
    from onnx import helper
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        v = v.decode("utf-8")
    elif isinstance(v, list) and v and isinstance(v[0], bytes):
        v = [x.decode("utf-8") for x in v]
    return v


def _constant_value(n):
    from onnx import numpy_helper
    a = n.attrs
    if "value" in a:
        return numpy_helper.to_array(a["value"])
    if "value_float" in a:
        return np.array(a["value_float"], dtype=np.float32)
    if "value_floats" in a:
        return np.array(a["value_floats"], dtype=np.float32)
    if "value_int" in a:
        return np.array(a["value_int"], dtype=np.int64)
    if "value_ints" in a:
        return np.array(a["value_ints"], dtype=np.int64)
    raise UnsupportedOp(f"unsupported Constant form {sorted(a)} {_where(n)}")


def load_onnx(path, multi_input=False):
    """multi_input: accept several graph inputs (eex-export's image + spectrum); the
    default keeps eex-convert's rule of exactly one."""
    import onnx
    from onnx import numpy_helper
    if not os.path.isfile(path):
        raise FileError(f"cannot open '{path}': no such file")
    try:
        model = onnx.load(path)
    except Exception as e:  # protobuf raises several kinds
        raise FileError(f"cannot read '{path}' as ONNX: {e}") from None
    g = Graph()
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            g.opset = imp.version
    if not OPSET_MIN <= g.opset <= OPSET_MAX:
        raise ConvertError(f"ONNX opset {g.opset} is not supported (supported: "
                           f"{OPSET_MIN}..{OPSET_MAX})")
    og = model.graph
    for init in og.initializer:
        g.consts[init.name] = numpy_helper.to_array(init)
        g.reserve(init.name)

    # Check every op before touching anything, so the first error is the real one.
    for i, on in enumerate(og.node):
        name = on.name or f"{on.op_type}_{i}"
        if on.domain not in ("", "ai.onnx") or on.op_type not in SUPPORTED:
            op = on.op_type if on.domain in ("", "ai.onnx") else f"{on.domain}.{on.op_type}"
            raise UnsupportedOp(f"unsupported ONNX op '{op}' (node '{name}')")
        attrs = {a.name: _attr_value(a) for a in on.attribute}
        n = Node(on.op_type, name, on.input, on.output, attrs, src=on.op_type)
        for key in attrs:
            if key not in SUPPORTED[on.op_type]:
                raise UnsupportedOp(f"unsupported attribute '{key}' on ONNX op "
                                    f"'{on.op_type}' {_where(n)}")
        if on.op_type == "Constant":
            g.consts[on.output[0]] = _constant_value(n)
            g.reserve(on.output[0])
            continue
        g.nodes.append(n)
    for n in g.nodes:
        for v in n.inputs + n.outputs:
            g.reserve(v)
        g.reserve(n.name)

    graph_inputs = [vi for vi in og.input if vi.name not in g.consts]
    if not graph_inputs or (len(graph_inputs) != 1 and not multi_input):
        raise ConvertError(f"the model has {len(graph_inputs)} graph inputs; "
                           + ("at least one is needed" if multi_input
                              else "exactly one is supported"))
    g.inputs = []
    for vi in graph_inputs:
        tt = vi.type.tensor_type
        if tt.elem_type != onnx.TensorProto.FLOAT:
            raise ConvertError(f"graph input '{vi.name}' is not float32")
        dims = []
        for k, d in enumerate(tt.shape.dim):
            if k == 0:
                dims.append(1)
            elif d.HasField("dim_value") and d.dim_value > 0:
                dims.append(d.dim_value)
            else:
                raise ConvertError(f"graph input '{vi.name}' dim {k} is not a fixed size")
        if not 1 <= len(dims) <= 4:
            # the engine's values are [N], [N, C], [N, C, W] or [N, C, H, W] (engine/bind.c)
            raise ConvertError(f"graph input '{vi.name}' has rank {len(dims)}; "
                               "supported: 1 to 4 ([N, C, H, W])")
        g.inputs.append((vi.name, dims))
        g.shapes[vi.name] = list(dims)
        g.reserve(vi.name)
    input_names = {name for name, _ in g.inputs}
    g.outputs = [o.name for o in og.output]
    for o in g.outputs:
        if o in g.consts or o in input_names:
            raise ConvertError(f"graph output '{o}' is a constant or the input itself")
    return g


# ----------------------------------------------------------------------------- graph utils

def toposort(nodes, available):
    """Stable topological order (keeps the given order where it already works)."""
    ready = set(available)
    pending = list(nodes)
    out = []
    while pending:
        rest = []
        for n in pending:
            if all(x == "" or x in ready for x in n.inputs):
                out.append(n)
                ready.update(n.outputs)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            missing = sorted({x for n in rest for x in n.inputs if x and x not in ready})
            raise ConvertError(f"graph has a cycle or undefined values: {missing[:5]} "
                               f"(node '{rest[0].name}')")
        pending = rest
    return out


def drop_passthrough(g):
    """Removes Identity and Dropout (inference: both pass x through)."""
    for n in list(g.nodes):
        if n.op not in ("Identity", "Dropout"):
            continue
        if n.op == "Dropout" and len(n.outputs) > 1 and n.outputs[1] and \
                (g.consumers(n.outputs[1]) or n.outputs[1] in g.outputs):
            raise UnsupportedOp(f"Dropout mask output is used {_where(n)}")
        src, dst = n.inputs[0], n.outputs[0]
        g.nodes.remove(n)
        if dst in g.outputs:
            # Keep the ONNX output name: rename the value src to dst.
            p = g.producer(src)
            if p is None or src in g.outputs:
                raise ConvertError(f"'{n.src}' {_where(n)} makes graph output '{dst}' a "
                                   "copy of a graph input, a constant or another output")
            p.outputs = [dst if x == src else x for x in p.outputs]
            g.replace_uses(src, dst)
        else:
            g.replace_uses(dst, src)


def eliminate_dead(g):
    while True:
        live = set(g.outputs)
        for n in g.nodes:
            live.update(n.inputs)
        dead = [n for n in g.nodes if not any(o in live for o in n.outputs)]
        if not dead:
            return
        for n in dead:
            g.nodes.remove(n)


# ----------------------------------------------------------------------------- lowering

def _ints(v, default):
    return list(default) if v is None else [int(x) for x in v]


def _conv_out(size, k, s, d, pb, pe, ceil_mode=False):
    span = size + pb + pe - d * (k - 1) - 1
    if span < 0:
        return 0
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + pb:
        out -= 1    # the last window must start inside the input or the begin pad
    return out


# ONNX ops that read a value in a tracked layout (lower_ext.py); every other op
# refuses one.
LAYOUT_AWARE = {"Transpose", "Reshape", "LayerNormalization", "MatMul", "Add", "Sub", "Mul",
                "Div", "Relu", "Sigmoid", "Tanh", "Erf", "Abs", "Neg", "Exp", "Sqrt",
                "LeakyRelu", "Elu", "Gelu", "Clip", "HardSigmoid", "HardSwish", "PRelu",
                "Sum", "Max", "Min"}
ELEMENTWISE_UNARY = {"Relu", "Sigmoid", "HardSwish", "HardSigmoid", "Clip"}


class Lowering(ExtOps):
    """Turns ONNX nodes into eex nodes, one at a time, in topological order."""

    def __init__(self, g):
        self.g = g
        self.out = []
        self.layout = {}     # value -> "nhwc" or ("grouped"/"grouped_t", groups, source)
        self.renamed = {}    # ONNX value -> the eex value it aliases

    # -- operand helpers
    def act(self, n, i):
        """The i-th input as an activation (with a known shape)."""
        if i >= len(n.inputs) or not n.inputs[i]:
            raise ConvertError(f"ONNX op '{n.src}' {_where(n)} is missing input {i}")
        x = n.inputs[i]
        if x in self.g.consts:
            raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: constant input '{x}' "
                                "where an activation is expected")
        if x in self.layout and n.src not in LAYOUT_AWARE:
            self.plain(n, x)
        if isinstance(self.layout.get(x), tuple) and n.src not in ("Transpose", "Reshape"):
            self.plain(n, x)
        return x

    def const(self, n, i, what="input", optional=False):
        if i >= len(n.inputs) or not n.inputs[i]:
            if optional:
                return None
            raise ConvertError(f"ONNX op '{n.src}' {_where(n)} is missing {what}")
        x = n.inputs[i]
        if x not in self.g.consts:
            raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: {what} '{x}' must be a "
                                "constant")
        return self.g.consts[x]

    def shape(self, v):
        return self.g.shapes[v]

    def emit(self, op, n, inputs, shape, attrs=None, output=None, name=None):
        out = output if output is not None else n.outputs[0]
        m = Node(op, name or n.name, inputs, [out], attrs, src=n.src)
        self.out.append(m)
        self.g.shapes[out] = list(shape)
        return m

    def only_first_output(self, n):
        for o in n.outputs[1:]:
            if o and (self.g.consumers(o) or o in self.g.outputs):
                raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: only the first output "
                                    "is supported")

    def rank(self, n, x, want):
        r = len(self.shape(x))
        if r not in want:
            raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: input '{x}' has rank {r}, "
                                f"supported: {'/'.join(map(str, want))}")

    # -- dispatch
    def run(self):
        g = self.g
        for n in toposort(g.nodes, [name for name, _ in g.inputs] + list(g.consts)):
            if self.try_fold(n):
                continue
            if n.op != "Split":
                self.only_first_output(n)
            lower = getattr(self, "op_" + n.op, None)
            if lower is None:   # a shape-arithmetic op (lower_ext.FOLDABLE) on activations
                raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: supported on constants "
                                    "only (shape arithmetic), not on activations")
            lower(n)
            x = n.inputs[0] if n.inputs else None
            if n.op in ELEMENTWISE_UNARY and self.layout.get(x) == "nhwc":
                self.layout[n.outputs[0]] = "nhwc"
        for o in g.outputs:
            if o in self.layout:
                raise UnsupportedOp(f"graph output '{o}' is in a non-NCHW layout")
        g.nodes = self.out

    # -- ops
    def _spatial(self, n, x, kh, kw, pool):
        """Shared Conv/MaxPool/AveragePool attribute handling -> (attrs, out H, W)."""
        a = n.attrs
        auto_pad = a.get("auto_pad", "NOTSET")
        if auto_pad not in ("NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER"):
            raise _bad_attr(n, "auto_pad", auto_pad)
        strides = _ints(a.get("strides"), [1, 1])
        pads = _ints(a.get("pads"), [0, 0, 0, 0])
        dil = _ints(a.get("dilations"), [1, 1])
        if auto_pad.startswith("SAME") and len(strides) == 2 and len(dil) == 2:
            if "pads" in a:
                raise _bad_attr(n, "pads", pads)
            # output = ceil(in / stride); the extra cell of an odd total goes at the
            # end (UPPER) or the beginning (LOWER)
            _, _, h, w = self.shape(x)
            total = [max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
                     for size, k, s, d in ((h, kh, strides[0], dil[0]),
                                           (w, kw, strides[1], dil[1]))]
            small = [t // 2 for t in total]
            begin = small if auto_pad == "SAME_UPPER" else [t - q for t, q in zip(total, small)]
            pads = [begin[0], begin[1], total[0] - begin[0], total[1] - begin[1]]
        if len(strides) != 2 or len(pads) != 4 or len(dil) != 2:
            raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: only 2-D is supported")
        if auto_pad == "VALID" and any(pads):
            raise _bad_attr(n, "pads", pads)
        if any(s < 1 for s in strides) or any(d < 1 for d in dil) or any(p < 0 for p in pads):
            raise _bad_attr(n, "strides/pads/dilations", (strides, pads, dil))
        if pool and dil != [1, 1]:
            raise _bad_attr(n, "dilations", dil)
        if pool and (pads[0] >= kh or pads[2] >= kh or pads[1] >= kw or pads[3] >= kw):
            # the engine's pools need each pad smaller than the window (engine/bind.c)
            raise _bad_attr(n, "pads", pads)
        if not pool and (kh > 64 or kw > 64):
            raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: kernel {kh}x{kw} "
                                "(supported: up to 64)")
        ceil_mode = int(a.get("ceil_mode", 0))
        if ceil_mode not in (0, 1):
            raise _bad_attr(n, "ceil_mode", ceil_mode)
        # ONNX pads are [x1_begin, x2_begin, x1_end, x2_end] = [top, left, bottom, right],
        # the same order as eex.
        _, _, h, w = self.shape(x)
        ho = _conv_out(h, kh, strides[0], dil[0], pads[0], pads[2], ceil_mode)
        wo = _conv_out(w, kw, strides[1], dil[1], pads[1], pads[3], ceil_mode)
        if ho < 1 or wo < 1:
            raise ConvertError(f"ONNX op '{n.src}' {_where(n)}: output would be empty")
        attrs = {"strides": strides, "pads": pads}
        if pool:
            attrs["kernel"] = [kh, kw]
            attrs["ceil_mode"] = ceil_mode
        else:
            attrs["dilations"] = dil
        return attrs, ho, wo

    def op_Conv(self, n):
        x = self.act(n, 0)
        self.rank(n, x, (4,))
        w = self.const(n, 1, "weight")
        if w.ndim != 4:
            raise UnsupportedOp(f"ONNX op 'Conv' {_where(n)}: only 2-D convolution "
                                f"(weight rank {w.ndim})")
        b = self.const(n, 2, "bias", optional=True)
        group = int(n.attrs.get("group", 1))
        cin = self.shape(x)[1]
        co = w.shape[0]
        if group < 1 or cin % group or co % group or w.shape[1] * group != cin:
            raise ConvertError(f"ONNX op 'Conv' {_where(n)}: weight {list(w.shape)} and "
                               f"group {group} do not match {cin} input channels")
        ks = n.attrs.get("kernel_shape")
        if ks is not None and list(ks) != list(w.shape[2:]):
            raise ConvertError(f"ONNX op 'Conv' {_where(n)}: kernel_shape {list(ks)} != "
                               f"weight {list(w.shape[2:])}")
        if b is not None and b.shape != (co,):
            raise ConvertError(f"ONNX op 'Conv' {_where(n)}: bias shape {list(b.shape)}")
        attrs, ho, wo = self._spatial(n, x, w.shape[2], w.shape[3], pool=False)
        attrs["group"] = group
        ins = [x, n.inputs[1]] + ([n.inputs[2]] if b is not None else [])
        self.emit("conv", n, ins, [1, co, ho, wo], attrs)

    def op_MaxPool(self, n):
        self._pool(n, "maxpool")

    def op_AveragePool(self, n):
        self._pool(n, "avgpool")

    def _pool(self, n, op):
        x = self.act(n, 0)
        self.rank(n, x, (4,))
        if int(n.attrs.get("storage_order", 0)) != 0:
            raise _bad_attr(n, "storage_order", n.attrs["storage_order"])
        ks = n.attrs.get("kernel_shape")
        if ks is None or len(ks) != 2:
            raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: needs a 2-D kernel_shape")
        attrs, ho, wo = self._spatial(n, x, int(ks[0]), int(ks[1]), pool=True)
        if op == "avgpool":
            cip = int(n.attrs.get("count_include_pad", 0))
            if cip not in (0, 1):
                raise _bad_attr(n, "count_include_pad", cip)
            attrs["count_include_pad"] = cip
        s = self.shape(x)
        self.emit(op, n, [x], [s[0], s[1], ho, wo], attrs)

    def op_GlobalAveragePool(self, n):
        x = self.act(n, 0)
        self.rank(n, x, (4,))
        s = self.shape(x)
        self.emit("globalavgpool", n, [x], [s[0], s[1], 1, 1])

    def op_BatchNormalization(self, n):
        x = self.act(n, 0)
        self.rank(n, x, (2, 4))
        if int(n.attrs.get("training_mode", 0)) != 0:
            raise _bad_attr(n, "training_mode", n.attrs["training_mode"])
        if int(n.attrs.get("spatial", 1)) != 1:
            raise _bad_attr(n, "spatial", n.attrs["spatial"])
        c = self.shape(x)[1]
        params = {}
        for i, key in enumerate(("scale", "bias", "mean", "var"), start=1):
            v = np.asarray(self.const(n, i, key), dtype=np.float64).reshape(-1)
            if v.shape != (c,):
                raise ConvertError(f"ONNX op 'BatchNormalization' {_where(n)}: {key} has "
                                   f"{v.size} values for {c} channels")
            params[key] = v
        params["eps"] = float(n.attrs.get("epsilon", 1e-5))
        m = self.emit("_bn", n, [x], self.shape(x))
        m.attrs = params

    def op_Relu(self, n):
        x = self.act(n, 0)
        self.emit("relu", n, [x], self.shape(x))

    def op_Sigmoid(self, n):
        x = self.act(n, 0)
        self.emit("sigmoid", n, [x], self.shape(x))

    def op_HardSwish(self, n):
        x = self.act(n, 0)
        self.emit("hardswish", n, [x], self.shape(x))

    def op_HardSigmoid(self, n):
        x = self.act(n, 0)
        self.emit("hardsigmoid", n, [x], self.shape(x),
                  {"alpha": float(n.attrs.get("alpha", 0.2)),
                   "beta": float(n.attrs.get("beta", 0.5))})

    def op_Clip(self, n):
        x = self.act(n, 0)
        if self.g.opset < 11:
            lo = float(n.attrs.get("min", -math.inf))
            hi = float(n.attrs.get("max", math.inf))
        else:
            c_lo = self.const(n, 1, "min", optional=True)
            c_hi = self.const(n, 2, "max", optional=True)
            for c, key in ((c_lo, "min"), (c_hi, "max")):
                if c is not None and c.size != 1:
                    raise _bad_attr(n, key, c.tolist())
            lo = -math.inf if c_lo is None else float(c_lo.reshape(()))
            hi = math.inf if c_hi is None else float(c_hi.reshape(()))
        if lo > hi:
            raise _bad_attr(n, "min/max", (lo, hi))
        if lo == 0.0 and hi == math.inf:
            self.emit("relu", n, [x], self.shape(x))
        else:
            self.emit("clip", n, [x], self.shape(x), {"min": lo, "max": hi})

    def _broadcast_const(self, n, xshape, c, tag=None):
        """Normalises a constant operand of a binary op to a shape eex accepts: a
        scalar (ndim 0), [C] against [N, C], or [1, C, 1, 1] against [N, C, H, W].
        xshape is the ONNX shape; tag "nhwc" means it is [N, H, W, C]."""
        c = np.asarray(c, dtype=np.float32)
        if c.size == 1:
            return c.reshape(())
        r = len(xshape)
        cax = 3 if tag == "nhwc" else 1
        if r >= 2 and c.ndim <= r:
            ch = xshape[cax]
            full = [1] * (r - c.ndim) + list(c.shape)
            if full[cax] == ch and all(d == 1 for i, d in enumerate(full) if i != cax):
                return c.reshape([1, ch, 1, 1] if r == 4 else [ch] if r == 2 else [1, ch, 1])
        raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: constant of shape "
                            f"{list(c.shape)} does not broadcast per channel over "
                            f"{xshape} (supported: scalar, [C] for [N,C], [1,C,1,1])")

    _FOLD = {"add": np.add, "mul": np.multiply, "sub": np.subtract, "div": np.divide,
             "max": np.maximum, "min": np.minimum}

    def _binary(self, n, op):
        a, b = n.inputs[0], n.inputs[1]
        consts = self.g.consts
        if a in consts and b in consts:
            consts[n.outputs[0]] = self._FOLD[op](consts[a], consts[b])
            return
        first_const = a in consts
        if first_const:           # keep the activation first (the engine swaps back)
            a, b = b, a
        tag = self.layout.get(a)
        sa = self.shape(a)
        if b in consts:
            c = self._broadcast_const(n, self.onnx_shape(a), consts[b], tag)
            if c.shape != consts[b].shape or consts[b].dtype != np.float32:
                b = self.g.add_const(f"{b}.{'x'.join(map(str, c.shape)) or 'scalar'}", c)
            # sub and div do not commute: the constant stays first, and the
            # engine's binder records the swap (kernels.h, EEX_BIN_RSUB/RDIV)
            ins = [b, a] if first_const and op in ("sub", "div") else [a, b]
            self.emit(op, n, ins, sa)
            if tag:
                self.layout[n.outputs[0]] = tag
            return
        if self.layout.get(b) != tag:
            raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: operands in different "
                                "layouts (NCHW and a permutation)")
        sb = self.shape(b)
        if sa == sb:
            self.emit(op, n, [a, b], sa)
            if tag:
                self.layout[n.outputs[0]] = tag
            return

        def per_channel(big, small):
            return len(big) == 4 and small == big[:2] + [1, 1]
        if tag is None and (per_channel(sa, sb) or per_channel(sb, sa)):
            self.emit(op, n, [a, b], sa if per_channel(sa, sb) else sb)
            return
        raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: cannot broadcast "
                            f"{self.onnx_shape(a)} with {self.onnx_shape(b)} (supported: "
                            "equal shapes or [N,C,H,W] with [N,C,1,1])")

    def op_Add(self, n):
        self._binary(n, "add")

    def op_Mul(self, n):
        self._binary(n, "mul")

    def op_Flatten(self, n):
        x = self.act(n, 0)
        s = self.shape(x)
        axis = int(n.attrs.get("axis", 1))
        if axis < 0:
            axis += len(s)
        if axis != 1:
            # dim 0 is the batch in eex: other axes would fold it into the rows
            raise UnsupportedOp(f"ONNX op 'Flatten' {_where(n)}: axis {n.attrs.get('axis')} "
                                f"of {s} mixes the batch dimension with others (supported: "
                                "axis 1)")
        if len(s) == 2:
            self.alias(n, x, None)
            return
        self.emit("flatten", n, [x], [s[0], int(np.prod(s[1:]))])

    def op_Reshape(self, n):
        x = self.act(n, 0)
        s = self.shape(x)
        target = [int(v) for v in self.const(n, 1, "shape").reshape(-1)]
        if int(n.attrs.get("allowzero", 0)) and 0 in target:
            raise _bad_attr(n, "allowzero", 1)
        if x in self.layout or len(target) != 2:
            if self.reshape_ext(n, x, target):
                return
            raise UnsupportedOp(f"ONNX op 'Reshape' {_where(n)}: target {target} from "
                                f"{self.onnx_shape(x)} (supported: [N, -1], [N, K] <-> "
                                "[N, C, H, W], channel shuffles)")
        rest = int(np.prod(s[1:]))
        ok = len(target) == 2 and (
            (target[0] in (0, s[0]) and target[1] in (-1, rest)) or
            (target[0] == -1 and target[1] == rest))
        if int(n.attrs.get("allowzero", 0)) and 0 in target:
            ok = False
        if not ok:
            raise UnsupportedOp(f"ONNX op 'Reshape' {_where(n)}: target {target} from "
                                f"{s} is not a flatten to [N, -1]")
        if len(s) == 2:
            self.alias(n, x, None)
            return
        self.emit("flatten", n, [x], [s[0], rest])

    def _dense(self, n, x, w_kn, bias):
        """w_kn: weight as [K_in, M_out] (the MatMul layout)."""
        self.rank(n, x, (2,))
        k = self.shape(x)[1]
        if w_kn.ndim != 2 or w_kn.shape[0] != k:
            raise ConvertError(f"ONNX op '{n.src}' {_where(n)}: weight {list(w_kn.shape)} "
                               f"does not match input {self.shape(x)}")
        m = w_kn.shape[1]
        ins = [x, self.g.add_const(f"{n.name}.weight", np.ascontiguousarray(w_kn.T))]
        if bias is not None:
            bias = np.asarray(bias, dtype=np.float32)
            if bias.size == 1:
                bias = np.full(m, bias.reshape(()), dtype=np.float32)
            if bias.shape not in ((m,), (1, m)):
                raise UnsupportedOp(f"ONNX op '{n.src}' {_where(n)}: bias shape "
                                    f"{list(bias.shape)} is not [{m}]")
            ins.append(self.g.add_const(f"{n.name}.bias", bias.reshape(m)))
        self.emit("dense", n, ins, [self.shape(x)[0], m])

    def op_Gemm(self, n):
        a = n.attrs
        if int(a.get("transA", 0)):
            # A^T would make the batch the inner dimension
            raise _bad_attr(n, "transA", a["transA"])
        x = self.act(n, 0)
        w = self.const(n, 1, "weight")
        if w.ndim != 2:
            raise ConvertError(f"ONNX op 'Gemm' {_where(n)}: weight rank {w.ndim}")
        if int(a.get("transB", 0)):
            w = w.T
        # alpha and beta scale the constants once, here (opset 6's `broadcast`
        # only allowed the bias to broadcast, which it always may now)
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        bias = self.const(n, 2, "bias", optional=True)
        if alpha != 1.0:
            w = (w.astype(np.float64) * alpha).astype(np.float32)
        if bias is not None and beta != 1.0:
            bias = (bias.astype(np.float64) * beta).astype(np.float32)
        if bias is not None and bias.ndim == 2 and bias.shape[0] != 1:
            raise UnsupportedOp(f"ONNX op 'Gemm' {_where(n)}: bias of shape "
                                f"{list(bias.shape)} varies over the batch")
        self._dense(n, x, w, None if bias is None else bias.reshape(-1))

    def op_MatMul(self, n):
        x = self.act(n, 0)
        w = self.const(n, 1, "weight")
        if self.layout.get(x) == "nhwc" and w.ndim == 2:
            # [N, H, W, C] x [C, M]: a 1x1 convolution of the NCHW value
            s = self.shape(x)
            if w.shape[0] != s[1]:
                raise ConvertError(f"ONNX op 'MatMul' {_where(n)}: weight {list(w.shape)} "
                                   f"does not match {self.onnx_shape(x)}")
            wc = np.ascontiguousarray(w.T.astype(np.float32)).reshape(w.shape[1], w.shape[0], 1, 1)
            self.emit("conv", n, [x, self.g.add_const(f"{n.name}.weight", wc)],
                      [s[0], w.shape[1], s[2], s[3]],
                      {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "group": 1})
            self.layout[n.outputs[0]] = "nhwc"
            return
        if w.ndim != 2:
            raise UnsupportedOp(f"ONNX op 'MatMul' {_where(n)}: weight must be a constant "
                                "2-D matrix")
        self._dense(n, x, w, None)

    def op_Concat(self, n):
        xs = [self.act(n, i) for i in range(len(n.inputs))]
        shapes = [self.shape(x) for x in xs]
        r = len(shapes[0])
        axis = int(n.attrs.get("axis", 1))
        if axis < 0:
            axis += r
        if axis != 1:
            raise _bad_attr(n, "axis", n.attrs.get("axis"))
        for s in shapes:
            if len(s) != r or s[:1] + s[2:] != shapes[0][:1] + shapes[0][2:]:
                raise ConvertError(f"ONNX op 'Concat' {_where(n)}: shapes {shapes} differ "
                                   "off the concat axis")
        out = list(shapes[0])
        out[1] = sum(s[1] for s in shapes)
        if len(xs) == 1:
            self.alias(n, xs[0], None)
            return
        # the engine takes up to 64 inputs a node: concatenate longer lists in parts
        while len(xs) > 64:
            part = self.g.fresh(f"{n.outputs[0]}.part")
            ps = list(shapes[0])
            ps[1] = sum(s[1] for s in shapes[:64])
            self.emit("concat", n, xs[:64], ps, {"axis": 1}, output=part,
                      name=f"{n.name}.{part}")
            xs, shapes = [part] + xs[64:], [ps] + shapes[64:]
        self.emit("concat", n, xs, out, {"axis": 1})

    def op_Softmax(self, n):
        x = self.act(n, 0)
        s = self.shape(x)
        axis = int(n.attrs.get("axis", -1 if self.g.opset >= 13 else 1))
        if axis < 0:
            axis += len(s)
        if len(s) != 2 or axis != 1:
            raise UnsupportedOp(f"ONNX op 'Softmax' {_where(n)}: only over the last axis of "
                                f"a [N, K] input (input {s}, axis {n.attrs.get('axis')})")
        self.emit("softmax", n, [x], s)


# ----------------------------------------------------------------------------- rewrites

def fold_batchnorm(g):
    for bn in [n for n in g.nodes if n.op == "_bn"]:
        p = bn.attrs
        s = p["scale"] / np.sqrt(p["var"] + p["eps"])
        t = p["bias"] - p["mean"] * s
        x = bn.inputs[0]
        conv = g.producer(x)
        if conv is not None and conv.op == "conv" and g.single_use(x) and \
                conv.attrs.get("act", "none") == "none":
            w = g.consts[conv.inputs[1]].astype(np.float64)
            b = (g.consts[conv.inputs[2]].astype(np.float64) if len(conv.inputs) > 2
                 else np.zeros(w.shape[0]))
            w = w * s[:, None, None, None]
            b = b * s + t
            conv.inputs[1:] = [g.add_const(f"{conv.name}.weight", w.astype(np.float32)),
                               g.add_const(f"{conv.name}.bias", b.astype(np.float32))]
            conv.outputs = list(bn.outputs)
            g.nodes.remove(bn)
            continue
        # No conv to fold into: y = x * s + t as a per-channel mul and add.
        shape = g.shapes[x]
        cshape = [1, -1, 1, 1] if len(shape) == 4 else [-1]
        mid = g.fresh(f"{bn.outputs[0]}.scaled")
        g.shapes[mid] = list(shape)
        i = g.nodes.index(bn)
        g.nodes[i:i + 1] = [
            Node("mul", g.fresh(f"{bn.name}.mul"),
                 [x, g.add_const(f"{bn.name}.scale", s.astype(np.float32).reshape(cshape))],
                 [mid], src=bn.src),
            Node("add", g.fresh(f"{bn.name}.add"),
                 [mid, g.add_const(f"{bn.name}.shift", t.astype(np.float32).reshape(cshape))],
                 list(bn.outputs), src=bn.src),
        ]


def _fuse_gate_pattern(g, gate_op, ok, op):
    """Mul(x, gate(x)) -> op(x) when the gate's output feeds only that Mul."""
    for m in [n for n in g.nodes if n.op == "mul"]:
        for i in (0, 1):
            x, h_out = m.inputs[i], m.inputs[1 - i]
            h = g.producer(h_out)
            if h is None or h.op != gate_op or h.inputs[0] != x or not ok(h):
                continue
            if not g.single_use(h_out):
                continue
            g.nodes.remove(h)
            m.op, m.inputs, m.attrs = op, [x], {}
            break


def fuse_hardswish_pattern(g):
    """Mul(x, HardSigmoid(x, 1/6, 1/2)) -> hardswish(x): torch exports hardswish so
    below opset 14."""
    _fuse_gate_pattern(g, "hardsigmoid", lambda h: abs(h.attrs["alpha"] - 1 / 6) <= 1e-6
                       and abs(h.attrs["beta"] - 0.5) <= 1e-6, "hardswish")


def fuse_silu_pattern(g):
    """Mul(x, Sigmoid(x)) -> silu(x): torch exports SiLU (EfficientNet) so, and
    fuse_activations then folds it into the conv before it. A squeeze-excitation
    gate, Mul(x, Sigmoid(s)) with s another value, is left alone."""
    _fuse_gate_pattern(g, "sigmoid", lambda h: True, "silu")


def fuse_dense_bias(g):
    for d in [n for n in g.nodes if n.op == "dense" and len(n.inputs) == 2]:
        y = d.outputs[0]
        if not g.single_use(y):
            continue
        add = g.consumers(y)[0]
        if add.op != "add" or add.inputs[0] != y or add.attrs:
            continue
        bias = g.consts.get(add.inputs[1])
        m = g.consts[d.inputs[1]].shape[0]
        if bias is None or bias.shape not in ((m,), ()):
            continue
        d.inputs.append(g.add_const(f"{d.name}.bias",
                                    np.broadcast_to(bias, (m,)).astype(np.float32)))
        d.outputs = list(add.outputs)
        g.nodes.remove(add)


def fuse_activations(g):
    for a in [n for n in g.nodes if n.op in ("relu", "clip", "hardswish", "silu")]:
        x = a.inputs[0]
        p = g.producer(x)
        if p is None or p.op not in ("conv", "dense", "add") or not g.single_use(x) or \
                p.attrs.get("act", "none") != "none":
            continue
        p.attrs["act"] = a.op
        if a.op == "clip":
            p.attrs["act_min"], p.attrs["act_max"] = a.attrs["min"], a.attrs["max"]
        p.outputs = list(a.outputs)
        g.nodes.remove(a)


# ----------------------------------------------------------------------------- emit

def _unique_node_names(nodes):
    seen = set()
    for n in nodes:
        base, k = n.name, 1
        while n.name in seen:
            n.name = f"{base}_{k}"
            k += 1
        seen.add(n.name)


def convert_graph(g):
    drop_passthrough(g)
    rewrite_ext.fuse_layernorm_onnx(g)
    Lowering(g).run()
    fold_batchnorm(g)
    rewrite_ext.fold_pad(g)
    rewrite_ext.fuse_conv_bias(g)
    rewrite_ext.fuse_gelu(g)
    fuse_hardswish_pattern(g)
    fuse_silu_pattern(g)
    fuse_dense_bias(g)
    fuse_activations(g)
    eliminate_dead(g)
    rewrite_ext.check_engine_limits(g)
    for o in g.outputs:
        if o in g.consts:
            raise ConvertError(f"graph output '{o}' folds to a constant")
    g.nodes = toposort(g.nodes, [name for name, _ in g.inputs] + list(g.consts))
    _unique_node_names(g.nodes)
    return g


# Below this many weights a dense layer is not worth a float16 copy.
HALF_MIN_WEIGHTS = 4096


def is_half_exact(c):
    """Large dense weights that float16 holds exactly (the model was made so,
    e.g. by eex_export.half_side_heads) are stored as float16: nothing is lost
    and the engine reads half the bytes (docs/format.md)."""
    return (c.size >= HALF_MIN_WEIGHTS and bool(np.all(np.isfinite(c)))
            and bool(np.all(np.abs(c) <= 65504.0))
            and np.array_equal(c.astype(np.float16).astype(np.float32), c))


def build_writer(g, meta):
    w = eexfile.EexWriter()
    for key, value, vtype in meta:
        w.add_metadata(key, value, vtype)
    used = []
    for n in g.nodes:
        for x in n.inputs:
            if x in g.consts and x not in used:
                used.append(x)
    dense_weights = {n.inputs[1] for n in g.nodes if n.op == "dense"}
    for name in used:
        c = g.consts[name]
        if c.dtype.kind != "f":
            raise ConvertError(f"constant '{name}' has dtype {c.dtype}; a float is needed")
        c = c.astype(np.float32)
        if name in dense_weights and is_half_exact(c):
            c = c.astype(np.float16)
        w.add_tensor(name, c)
    w.set_inputs(g.inputs)
    w.set_outputs(g.outputs)
    for n in g.nodes:
        w.add_node(n.op, n.name, n.inputs, n.outputs, n.attrs)
    return w, sum(int(g.consts[k].size) for k in used)


def convert(onnx_path, out_path, mean=None, std=None, labels=None, name=None,
            multi_input=False):
    """Converts one file. Returns a summary dict; raises ConvertError.
    multi_input: accept several graph inputs (the ONNX node tests have them)."""
    g = convert_graph(load_onnx(onnx_path, multi_input=multi_input))
    channels = g.inputs[0][1][1] if len(g.inputs[0][1]) > 1 else 1
    meta = [("model.name", name or os.path.splitext(os.path.basename(onnx_path))[0],
             eexfile.T_STR),
            ("producer", PRODUCER, eexfile.T_STR)]
    for key, v in (("input.mean", mean), ("input.std", std)):
        if v is not None:
            if len(v) != channels:
                raise ConvertError(f"{key} has {len(v)} values; the input has {channels} "
                                   "channels")
            meta.append((key, [float(x) for x in v], eexfile.T_F64S))
    if std is not None and any(x <= 0 for x in std):
        raise ConvertError("input.std values must be > 0")
    if labels is not None:
        out_shape = g.shapes.get(g.outputs[0])
        if len(g.outputs) == 1 and out_shape and len(out_shape) == 2 and \
                out_shape[1] != len(labels):
            raise ConvertError(f"{len(labels)} labels for {out_shape[1]} output classes")
        meta.append(("labels", list(labels), eexfile.T_STRS))
    try:
        w, params = build_writer(g, meta)
        nbytes = w.write(out_path)
    except eexfile.EexError as e:
        raise ConvertError(str(e)) from None
    except OSError as e:
        raise FileError(f"cannot write '{out_path}': {e.strerror}") from None
    return {"nodes": len(g.nodes), "ops": Counter(n.op for n in g.nodes),
            "params": params, "bytes": nbytes}
