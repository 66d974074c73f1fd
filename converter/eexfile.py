"""Writer and reader for the .eex model file, version 1 (spec: docs/format.md).

Readings of the spec where it leaves a choice (the C reader should agree):

- Sections are written back to back: META at 96, TENSORS right after META, GRAPH
  right after TENSORS; then zero padding up to the next multiple of 64, where DATA
  starts. Tensor data is packed in the order the tensors were added, each at the next
  multiple of 64 (relative to data_off, which is itself a multiple of 64). data_size
  ends at the last byte of the last tensor (no trailing padding), so file_size =
  data_off + data_size. With no tensors, data_size = 0.
- A scalar constant is a tensor with ndim 0 (product of no dims = 1 element).
- add/mul constants: the converter writes a per-channel constant as [1, C, 1, 1]
  against a 4-D operand and as [C] against a 2-D [N, C] operand, so the spec's
  "[C]" never has to mean "per channel of a 4-D tensor" (ONNX broadcasting would make
  a [C] constant against NCHW run along W, not C).
- The converter writes conv's strides/pads/dilations/group and the pools'
  kernel/strides/pads/ceil_mode (and count_include_pad) explicitly, defaults included.
- An absent optional input is written as the empty string only when a later input is
  present; a conv/dense without bias is written with 2 inputs.
- Attribute value types: `strides`, `pads`, `dilations`, `kernel` are i64 arrays;
  `group`, `ceil_mode`, `count_include_pad`, `axis` are i64; `act` is a string;
  `act_min`, `act_max`, `min`, `max`, `alpha`, `beta` are f64 (the spec says f64 for
  the first four; alpha/beta are float-valued so they are f64 too).
- `act_min`/`act_max` are present exactly when `act` is `clip`; `act` is written only
  when it is not `none`. `clip` nodes always carry both `min` and `max`.
- A graph output must be produced by a node or be a graph input.
- Graph input dims are each >= 1 (dim 0 is 1). Node names are unique among nodes;
  value names and tensor names share one namespace.
"""

import struct
import zlib

import numpy as np

MAGIC = b"EEXMODEL"
VERSION = 1
HEADER_SIZE = 96
ALIGN = 64
MAX_STRING = 65535
MAX_COUNT = 1048576
MAX_NDIM = 8
DTYPE_F32 = 1
DTYPE_F16 = 2  # IEEE binary16; the engine widens it exactly

T_I64, T_F64, T_STR, T_I64S, T_F64S, T_STRS = 1, 2, 3, 4, 5, 6
TYPE_NAMES = {T_I64: "i64", T_F64: "f64", T_STR: "string",
              T_I64S: "i64 array", T_F64S: "f64 array", T_STRS: "string array"}

_ACT_ATTRS = {"act": T_STR, "act_min": T_F64, "act_max": T_F64}
_POOL_ATTRS = {"kernel": T_I64S, "strides": T_I64S, "pads": T_I64S, "ceil_mode": T_I64}

# op -> (min inputs, max inputs, allowed attributes with their value type)
OPS = {
    "conv": (2, 3, dict(strides=T_I64S, pads=T_I64S, dilations=T_I64S, group=T_I64,
                        **_ACT_ATTRS)),
    "dense": (2, 3, dict(_ACT_ATTRS)),
    "add": (2, 2, dict(_ACT_ATTRS)),
    "mul": (2, 2, {}),
    "relu": (1, 1, {}),
    "clip": (1, 1, {"min": T_F64, "max": T_F64}),
    "sigmoid": (1, 1, {}),
    "hardsigmoid": (1, 1, {"alpha": T_F64, "beta": T_F64}),
    "hardswish": (1, 1, {}),
    "maxpool": (1, 1, dict(_POOL_ATTRS)),
    "avgpool": (1, 1, dict(_POOL_ATTRS, count_include_pad=T_I64)),
    "globalavgpool": (1, 1, {}),
    "flatten": (1, 1, {}),
    "concat": (1, 64, {"axis": T_I64}),
    "softmax": (1, 1, {}),
    # added for the torchvision zoo and ONNX's node tests
    "sub": (2, 2, {}),
    "div": (2, 2, {}),
    "max": (2, 2, {}),
    "min": (2, 2, {}),
    "prelu": (2, 2, {}),
    "tanh": (1, 1, {}),
    "leakyrelu": (1, 1, {"alpha": T_F64}),
    "elu": (1, 1, {"alpha": T_F64}),
    "erf": (1, 1, {}),
    "gelu": (1, 1, {}),
    "abs": (1, 1, {}),
    "neg": (1, 1, {}),
    "exp": (1, 1, {}),
    "sqrt": (1, 1, {}),
    "pad": (1, 1, {"pads": T_I64S, "value": T_F64}),
    "slice": (1, 1, {"axis": T_I64, "start": T_I64, "end": T_I64, "step": T_I64}),
    "shuffle": (1, 1, {"groups": T_I64}),
    "reshape": (1, 1, {"shape": T_I64S}),
    "layernorm": (2, 3, {"epsilon": T_F64}),
    "globalmaxpool": (1, 1, {}),
    "lrn": (1, 1, {"size": T_I64, "alpha": T_F64, "beta": T_F64, "bias": T_F64}),
    "silu": (1, 1, {}),
}
ACTS = ("none", "relu", "clip", "hardswish", "silu")


class EexError(Exception):
    """A malformed file, or a writer call that breaks the format or the call order."""


def _align(n, a=ALIGN):
    return (n + a - 1) // a * a


# ----------------------------------------------------------------------------- values

def _check_string(s, what):
    if not isinstance(s, str):
        raise EexError(f"{what}: expected a string, got {type(s).__name__}")
    b = s.encode("utf-8")
    if len(b) > MAX_STRING:
        raise EexError(f"{what}: string longer than {MAX_STRING} bytes")
    if b"\0" in b:
        raise EexError(f"{what}: string contains a NUL byte")
    return b


def _enc_string(s, what="string"):
    b = _check_string(s, what)
    return struct.pack("<I", len(b)) + b


def _guess_type(v):
    if isinstance(v, (bool, np.bool_)):
        raise EexError("booleans have no .eex value type; use an i64")
    if isinstance(v, (int, np.integer)):
        return T_I64
    if isinstance(v, (float, np.floating)):
        return T_F64
    if isinstance(v, str):
        return T_STR
    if isinstance(v, (list, tuple, np.ndarray)):
        items = list(v)
        if items and all(isinstance(x, str) for x in items):
            return T_STRS
        if items and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool)
                         for x in items):
            return T_I64S
        if items and all(isinstance(x, (int, float, np.integer, np.floating))
                         for x in items):
            return T_F64S
    raise EexError(f"cannot infer an .eex value type for {v!r}; pass vtype")


def _enc_value(v, vtype, what):
    if vtype == T_I64:
        if isinstance(v, (float, np.floating)) and float(v) != int(v):
            raise EexError(f"{what}: {v!r} is not an integer")
        iv = int(v)
        if not -2**63 <= iv < 2**63:
            raise EexError(f"{what}: {iv} does not fit in i64")
        return struct.pack("<Bq", T_I64, iv)
    if vtype == T_F64:
        return struct.pack("<Bd", T_F64, float(v))
    if vtype == T_STR:
        return struct.pack("<B", T_STR) + _enc_string(v, what)
    if vtype in (T_I64S, T_F64S, T_STRS):
        if isinstance(v, (str, bytes)):
            raise EexError(f"{what}: expected a list, got a string")
        items = list(v)
        if len(items) > MAX_COUNT:
            raise EexError(f"{what}: array longer than {MAX_COUNT}")
        out = struct.pack("<BI", vtype, len(items))
        if vtype == T_I64S:
            for x in items:
                out += _enc_value(x, T_I64, what)[1:]
        elif vtype == T_F64S:
            out += struct.pack(f"<{len(items)}d", *[float(x) for x in items])
        else:
            out += b"".join(_enc_string(x, what) for x in items)
        return out
    raise EexError(f"{what}: unknown value type {vtype!r}")


def _enc_kvlist(items):
    out = struct.pack("<I", len(items))
    for key, (vtype, value) in items.items():
        out += _enc_string(key, "key") + _enc_value(value, vtype, f"'{key}'")
    return out


# ----------------------------------------------------------------------------- writer

class EexWriter:
    """Builds one .eex file. The calls must come in this order:

        add_metadata*  ->  add_tensor*  ->  set_inputs, set_outputs  ->  add_node+  ->  write

    Each step may be skipped where the format allows it (no metadata, no tensors), but
    never revisited: a call that belongs to an earlier step raises EexError, as does any
    call after write(). Everything is checked as it comes in, so a file that write()
    produces is one read_eex() accepts.
    """

    _META, _TENSORS, _IO, _NODES, _DONE = range(5)
    _STATE_NAMES = ["metadata", "tensors", "inputs/outputs", "nodes", "written"]

    def __init__(self):
        self._state = self._META
        self._meta = {}
        self._tensors = {}          # name -> float32 C-contiguous ndarray, in add order
        self._inputs = None         # [(name, dims)]
        self._outputs = None        # [name]
        self._nodes = []
        self._node_names = set()
        self._values = set()        # graph inputs and node outputs

    def _advance(self, call, allowed_from, to):
        if self._state not in allowed_from:
            raise EexError(f"EexWriter.{call}() called in the "
                           f"'{self._STATE_NAMES[self._state]}' step")
        self._state = to

    # -- metadata
    def add_metadata(self, key, value, vtype=None):
        """vtype: one of T_I64..T_STRS; guessed from value when None."""
        self._advance("add_metadata", (self._META,), self._META)
        _check_string(key, "metadata key")
        if key in self._meta:
            raise EexError(f"duplicate metadata key '{key}'")
        if vtype is None:
            vtype = _guess_type(value)
        _enc_value(value, vtype, f"metadata '{key}'")  # validate now
        self._meta[key] = (vtype, value)

    # -- tensors
    def add_tensor(self, name, array):
        self._advance("add_tensor", (self._META, self._TENSORS), self._TENSORS)
        _check_string(name, "tensor name")
        if not name:
            raise EexError("tensor name is empty")
        if name in self._tensors:
            raise EexError(f"duplicate tensor name '{name}'")
        a = np.asarray(array)
        if a.dtype.kind not in "fiu":
            raise EexError(f"tensor '{name}': dtype {a.dtype} cannot be stored as float32")
        half = a.dtype == np.float16  # stored as float16; everything else as float32
        if a.ndim > MAX_NDIM:
            raise EexError(f"tensor '{name}': {a.ndim} dims (at most {MAX_NDIM})")
        if a.size == 0:
            raise EexError(f"tensor '{name}': has a zero dim {a.shape}")
        # np.array, not np.ascontiguousarray: the latter turns a scalar into shape [1]
        self._tensors[name] = np.array(a, dtype="<f2" if half else "<f4", order="C")

    # -- graph inputs and outputs
    def set_inputs(self, inputs):
        """inputs: [(name, dims)]; dims logical NCHW, dim 0 (the batch) is stored as 1."""
        self._advance("set_inputs", (self._META, self._TENSORS), self._IO)
        ins = []
        for name, dims in inputs:
            self._new_value(name, "graph input")
            dims = [int(d) for d in dims]
            if len(dims) > 255:
                raise EexError(f"graph input '{name}': too many dims")
            if dims:
                dims[0] = 1
            if any(d < 1 for d in dims):
                raise EexError(f"graph input '{name}': dims {dims} must be >= 1")
            ins.append((name, dims))
        if len(ins) > MAX_COUNT:
            raise EexError("too many graph inputs")
        self._inputs = ins

    def set_outputs(self, outputs):
        if self._state != self._IO or self._inputs is None or self._outputs is not None:
            raise EexError("EexWriter.set_outputs() must follow set_inputs(), once")
        outs = list(outputs)
        for o in outs:
            _check_string(o, "graph output")
        if not outs:
            raise EexError("a graph needs at least one output")
        if len(set(outs)) != len(outs):
            raise EexError("duplicate graph output")
        self._outputs = outs

    # -- nodes
    def add_node(self, op, name, inputs, outputs, attrs=None):
        if self._state == self._IO and self._outputs is None:
            raise EexError("EexWriter.add_node() before set_outputs()")
        self._advance("add_node", (self._IO, self._NODES), self._NODES)
        if op not in OPS:
            raise EexError(f"node '{name}': unknown op '{op}'")
        _check_string(name, "node name")
        if not name:
            raise EexError(f"{op} node with an empty name")
        if name in self._node_names:
            raise EexError(f"duplicate node name '{name}'")
        lo, hi, schema = OPS[op]
        inputs, outputs = list(inputs), list(outputs)
        if not lo <= len(inputs) <= hi:
            raise EexError(f"node '{name}': {op} takes {lo}..{hi} inputs, got {len(inputs)}")
        if len(outputs) != 1:
            raise EexError(f"node '{name}': {op} has one output, got {len(outputs)}")
        for i, x in enumerate(inputs):
            _check_string(x, f"node '{name}' input")
            if x == "":
                if i < lo or i == len(inputs) - 1:
                    raise EexError(f"node '{name}': input {i} may not be absent")
                continue
            if x not in self._values and x not in self._tensors:
                raise EexError(f"node '{name}': input '{x}' is not a graph input, a tensor "
                               "or the output of an earlier node")
        self._check_weights(op, name, inputs)
        attrs = dict(attrs or {})
        typed = {}
        for key, value in attrs.items():
            if key not in schema:
                raise EexError(f"node '{name}': {op} has no attribute '{key}'")
            typed[key] = (schema[key], value)
            _enc_value(value, schema[key], f"node '{name}' attribute '{key}'")
        self._check_attrs(op, name, attrs)
        for o in outputs:
            self._new_value(o, f"node '{name}' output")
        self._node_names.add(name)
        self._nodes.append((op, name, inputs, outputs, typed))

    def _new_value(self, name, what):
        _check_string(name, what)
        if not name:
            raise EexError(f"{what}: empty name")
        if name in self._values or name in self._tensors:
            raise EexError(f"{what}: name '{name}' is already used")
        self._values.add(name)

    def _check_weights(self, op, name, inputs):
        if op not in ("conv", "dense"):
            return
        w = self._tensors.get(inputs[1])
        want = 4 if op == "conv" else 2
        if w is None or w.ndim != want:
            raise EexError(f"node '{name}': {op} weight must be a {want}-D tensor")
        if len(inputs) == 3 and inputs[2]:
            b = self._tensors.get(inputs[2])
            if b is None or b.shape != (w.shape[0],):
                raise EexError(f"node '{name}': {op} bias must be a tensor of shape "
                               f"[{w.shape[0]}]")

    @staticmethod
    def _check_attrs(op, name, attrs):
        act = attrs.get("act", "none")
        if act not in ACTS:
            raise EexError(f"node '{name}': unknown act '{act}'")
        if (act == "clip") != ("act_min" in attrs and "act_max" in attrs) or \
                (act != "clip" and ("act_min" in attrs or "act_max" in attrs)):
            raise EexError(f"node '{name}': act_min/act_max go with act 'clip', both")
        if op == "clip" and ("min" not in attrs or "max" not in attrs):
            raise EexError(f"node '{name}': clip needs min and max")
        for key, n in (("strides", 2), ("pads", 4), ("dilations", 2), ("kernel", 2)):
            if key in attrs:
                v = list(attrs[key])
                if len(v) != n or any(int(x) < (0 if key == "pads" else 1) for x in v):
                    raise EexError(f"node '{name}': bad {key} {v}")
        if op in ("maxpool", "avgpool") and "kernel" not in attrs:
            raise EexError(f"node '{name}': {op} needs a kernel")
        if op == "concat" and int(attrs.get("axis", 1)) != 1:
            raise EexError(f"node '{name}': concat only on axis 1")

    # -- output
    def to_bytes(self):
        """Serialises the file; the writer is then finished."""
        self._advance("write", (self._NODES,), self._DONE)
        for o in self._outputs:
            if o not in self._values:
                raise EexError(f"graph output '{o}' is never produced")

        meta = _enc_kvlist(self._meta)

        tens = [struct.pack("<I", len(self._tensors))]
        blobs, off = [], 0
        for name, a in self._tensors.items():
            off = _align(off)
            nbytes = a.nbytes
            dtype = DTYPE_F16 if a.dtype == np.float16 else DTYPE_F32
            tens.append(_enc_string(name) + struct.pack("<BB", dtype, a.ndim)
                        + struct.pack(f"<{a.ndim}Q", *a.shape)
                        + struct.pack("<QQ", off, nbytes))
            blobs.append((off, a.tobytes()))
            off += nbytes
        tens = b"".join(tens)
        data_size = off

        g = [struct.pack("<I", len(self._inputs))]
        for name, dims in self._inputs:
            g.append(_enc_string(name) + struct.pack(f"<B{len(dims)}q", len(dims), *dims))
        g.append(struct.pack("<I", len(self._outputs)))
        g += [_enc_string(o) for o in self._outputs]
        g.append(struct.pack("<I", len(self._nodes)))
        for op, name, ins, outs, attrs in self._nodes:
            g.append(_enc_string(op) + _enc_string(name))
            g.append(struct.pack("<B", len(ins)) + b"".join(_enc_string(x) for x in ins))
            g.append(struct.pack("<B", len(outs)) + b"".join(_enc_string(x) for x in outs))
            g.append(_enc_kvlist(attrs))
        graph = b"".join(g)

        meta_off = HEADER_SIZE
        tensors_off = meta_off + len(meta)
        graph_off = tensors_off + len(tens)
        data_off = _align(graph_off + len(graph))
        file_size = data_off + data_size

        buf = bytearray(file_size)
        buf[meta_off:tensors_off] = meta
        buf[tensors_off:graph_off] = tens
        buf[graph_off:graph_off + len(graph)] = graph
        for off, blob in blobs:
            buf[data_off + off:data_off + off + len(blob)] = blob
        crc = zlib.crc32(memoryview(buf)[HEADER_SIZE:]) & 0xFFFFFFFF
        buf[0:HEADER_SIZE] = struct.pack(
            "<8sIIQQQQQQQQQII", MAGIC, VERSION, HEADER_SIZE, file_size,
            meta_off, len(meta), tensors_off, len(tens), graph_off, len(graph),
            data_off, data_size, crc, 0)
        return bytes(buf)

    def write(self, path):
        data = self.to_bytes()
        with open(path, "wb") as f:
            f.write(data)
        return len(data)


# ----------------------------------------------------------------------------- reader

class _Cursor:
    def __init__(self, buf, start, size, section):
        self.buf, self.pos, self.end, self.section = buf, start, start + size, section

    def take(self, n, what):
        if n < 0 or n > self.end - self.pos:
            raise EexError(f"{self.section}: {what} runs past the end of the section")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt, what):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def u8(self, what):
        return self.unpack("B", what)[0]

    def u32(self, what):
        return self.unpack("I", what)[0]

    def count(self, what, limit=MAX_COUNT):
        n = self.u32(what)
        if n > limit:
            raise EexError(f"{self.section}: {what} {n} exceeds {limit}")
        return n

    def string(self, what):
        n = self.u32(what + " length")
        if n > MAX_STRING:
            raise EexError(f"{self.section}: {what} length {n} exceeds {MAX_STRING}")
        b = bytes(self.take(n, what))
        if b"\0" in b:
            raise EexError(f"{self.section}: {what} contains a NUL byte")
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            raise EexError(f"{self.section}: {what} is not UTF-8") from None

    def value(self, what):
        t = self.u8(what + " type")
        if t == T_I64:
            return t, self.unpack("q", what)[0]
        if t == T_F64:
            return t, self.unpack("d", what)[0]
        if t == T_STR:
            return t, self.string(what)
        if t in (T_I64S, T_F64S):
            n = self.count(what + " count")
            return t, list(self.unpack(f"{n}{'q' if t == T_I64S else 'd'}", what))
        if t == T_STRS:
            n = self.count(what + " count")
            return t, [self.string(what) for _ in range(n)]
        raise EexError(f"{self.section}: {what} has unknown value type {t}")

    def kvlist(self, what):
        n = self.count(what + " count")
        out = {}
        for _ in range(n):
            k = self.string(what + " key")
            if k in out:
                raise EexError(f"{self.section}: duplicate key '{k}' in {what}")
            out[k] = self.value(f"{what} '{k}'")
        return out

    def done(self):
        if self.pos != self.end:
            raise EexError(f"{self.section}: {self.end - self.pos} bytes left over")


def read_eex(path_or_bytes):
    """Parses and validates a whole .eex file. Returns a dict:

    header   {field: int}
    meta     {key: value}           meta_types {key: type code}
    tensors  {name: {dims, offset, nbytes, data (float32 ndarray, a copy)}}
    inputs   [(name, dims)]          outputs [name]
    nodes    [{op, name, inputs, outputs, attrs {key: value}}]
    Raises EexError naming what is wrong.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        buf = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            buf = f.read()
    if len(buf) < HEADER_SIZE:
        raise EexError(f"file is {len(buf)} bytes, shorter than the header")
    fields = struct.unpack_from("<8sIIQQQQQQQQQII", buf, 0)
    names = ["magic", "version", "header_size", "file_size", "meta_off", "meta_size",
             "tensors_off", "tensors_size", "graph_off", "graph_size", "data_off",
             "data_size", "crc32", "reserved"]
    h = dict(zip(names, fields))
    if h["magic"] != MAGIC:
        raise EexError("bad magic: not an .eex file")
    if h["version"] > VERSION:
        raise EexError(f"newer version {h['version']} (this reader knows {VERSION})")
    if h["version"] != VERSION:
        raise EexError(f"bad version {h['version']}")
    if h["header_size"] != HEADER_SIZE:
        raise EexError(f"bad header_size {h['header_size']}")
    if h["file_size"] != len(buf):
        raise EexError(f"header says {h['file_size']} bytes, file has {len(buf)}")
    if h["reserved"] != 0:
        raise EexError("reserved header field is not 0")
    if h["data_off"] % ALIGN:
        raise EexError(f"data_off {h['data_off']} is not a multiple of {ALIGN}")
    if h["meta_off"] != HEADER_SIZE:
        raise EexError(f"meta_off {h['meta_off']} is not {HEADER_SIZE}")
    prev_end = HEADER_SIZE
    for sec in ("meta", "tensors", "graph", "data"):
        off, size = h[sec + "_off"], h[sec + "_size"]
        if off < prev_end or size > len(buf) or off > len(buf) - size:
            raise EexError(f"{sec} section [{off}, +{size}) is out of order, overlaps "
                           "or lies outside the file")
        if any(buf[prev_end:off]):
            raise EexError(f"non-zero padding before the {sec} section")
        prev_end = off + size
    if h["data_off"] + h["data_size"] != len(buf):
        raise EexError("data_off + data_size != file_size")
    crc = zlib.crc32(buf[HEADER_SIZE:]) & 0xFFFFFFFF
    if crc != h["crc32"]:
        raise EexError(f"CRC mismatch: header {h['crc32']:08x}, contents {crc:08x}")

    c = _Cursor(buf, h["meta_off"], h["meta_size"], "META")
    meta_kv = c.kvlist("metadata")
    c.done()

    c = _Cursor(buf, h["tensors_off"], h["tensors_size"], "TENSORS")
    tensors = {}
    data_off, data_size = h["data_off"], h["data_size"]
    for i in range(c.count("tensor count")):
        name = c.string(f"tensor {i} name")
        if not name:
            raise EexError(f"TENSORS: tensor {i} has an empty name")
        if name in tensors:
            raise EexError(f"TENSORS: duplicate tensor '{name}'")
        dtype, ndim = c.unpack("BB", f"tensor '{name}' dtype/ndim")
        if dtype not in (DTYPE_F32, DTYPE_F16):
            raise EexError(f"TENSORS: tensor '{name}' has unknown dtype {dtype}")
        esize = 2 if dtype == DTYPE_F16 else 4
        if ndim > MAX_NDIM:
            raise EexError(f"TENSORS: tensor '{name}' has {ndim} dims")
        dims = list(c.unpack(f"{ndim}Q", f"tensor '{name}' dims"))
        off, nbytes = c.unpack("QQ", f"tensor '{name}' offset/nbytes")
        n = esize
        for d in dims:
            if d < 1:
                raise EexError(f"TENSORS: tensor '{name}' has a zero dim")
            n *= d
            if n >= 2**64:
                raise EexError(f"TENSORS: tensor '{name}' size overflows")
        if nbytes != n:
            raise EexError(f"TENSORS: tensor '{name}' nbytes {nbytes} != {n}")
        if off % ALIGN:
            raise EexError(f"TENSORS: tensor '{name}' offset {off} is not aligned")
        if off > data_size or nbytes > data_size - off:
            raise EexError(f"TENSORS: tensor '{name}' extends past the data section")
        data = np.frombuffer(buf, dtype="<f2" if esize == 2 else "<f4", count=n // esize,
                             offset=data_off + off).reshape(dims).astype(np.float32)
        tensors[name] = {"dims": dims, "offset": off, "nbytes": nbytes, "data": data,
                         "dtype": "f16" if esize == 2 else "f32"}
    c.done()
    spans = sorted((t["offset"], t["offset"] + t["nbytes"], k) for k, t in tensors.items())
    for (_, e0, k0), (s1, _, k1) in zip(spans, spans[1:]):
        if s1 < e0:
            raise EexError(f"TENSORS: tensors '{k0}' and '{k1}' overlap")

    c = _Cursor(buf, h["graph_off"], h["graph_size"], "GRAPH")
    values = set()

    def new_value(v, what):
        if not v:
            raise EexError(f"GRAPH: {what} has an empty name")
        if v in values or v in tensors:
            raise EexError(f"GRAPH: {what} '{v}' is produced twice or clashes with a tensor")
        values.add(v)

    inputs = []
    for i in range(c.count("input count")):
        name = c.string(f"input {i} name")
        ndim = c.u8(f"input '{name}' ndim")
        dims = list(c.unpack(f"{ndim}q", f"input '{name}' dims"))
        if any(d < 1 for d in dims):
            raise EexError(f"GRAPH: input '{name}' has dims {dims}")
        if dims and dims[0] != 1:
            raise EexError(f"GRAPH: input '{name}' batch dim is {dims[0]}, not 1")
        new_value(name, "input")
        inputs.append((name, dims))
    outputs = [c.string(f"output {i} name") for i in range(c.count("output count"))]
    if len(set(outputs)) != len(outputs):
        raise EexError("GRAPH: duplicate graph output")
    nodes, node_names = [], set()
    for i in range(c.count("node count")):
        op = c.string(f"node {i} op")
        name = c.string(f"node {i} name")
        if op not in OPS:
            raise EexError(f"GRAPH: node '{name}' has unknown op '{op}'")
        if not name or name in node_names:
            raise EexError(f"GRAPH: node name '{name}' is empty or repeated")
        node_names.add(name)
        ins = [c.string(f"node '{name}' input") for _ in range(c.u8(f"node '{name}' n_in"))]
        outs = [c.string(f"node '{name}' output") for _ in range(c.u8(f"node '{name}' n_out"))]
        lo, hi, schema = OPS[op]
        if not lo <= len(ins) <= hi or len(outs) != 1:
            raise EexError(f"GRAPH: node '{name}' ({op}) has {len(ins)} inputs, "
                           f"{len(outs)} outputs")
        for j, x in enumerate(ins):
            if x == "":
                if j < lo:
                    raise EexError(f"GRAPH: node '{name}' input {j} is required")
            elif x not in values and x not in tensors:
                raise EexError(f"GRAPH: node '{name}' input '{x}' is not defined before it")
        kv = c.kvlist(f"node '{name}' attributes")
        attrs = {}
        for k, (t, v) in kv.items():
            if k not in schema:
                raise EexError(f"GRAPH: node '{name}' ({op}) has unknown attribute '{k}'")
            if t != schema[k]:
                raise EexError(f"GRAPH: node '{name}' attribute '{k}' is a "
                               f"{TYPE_NAMES[t]}, expected {TYPE_NAMES[schema[k]]}")
            attrs[k] = v
        for o in outs:
            new_value(o, f"node '{name}' output")
        nodes.append({"op": op, "name": name, "inputs": ins, "outputs": outs,
                      "attrs": attrs})
    c.done()
    for o in outputs:
        if o not in values:
            raise EexError(f"GRAPH: graph output '{o}' is never produced")

    return {
        "header": h,
        "meta": {k: v for k, (t, v) in meta_kv.items()},
        "meta_types": {k: t for k, (t, v) in meta_kv.items()},
        "tensors": tensors,
        "inputs": inputs,
        "outputs": outputs,
        "nodes": nodes,
    }
