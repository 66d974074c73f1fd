"""PyTorch early-exit model -> one .eex file with the ee.* metadata (docs/format.md,
"Early-exit structure").

    import eex_export
    eex_export.export(model, spec, "model.eex")

How it works: a wrapper module composes the parts the spec names (backbone stages,
exit heads per expert, final classifiers per expert, detector) and returns one tuple
of named tensors; torch.onnx.export (opset 13, eval mode, BatchNormalization kept so
that onnx2eex folds it in float64) writes it with stable output names; onnx2eex
lowers it; the ee.* metadata is added; the file is read back and its structure checked
(check_ee, check_cuts) before export() returns.

Backbone values that the metadata names (exit attach points, the final attach point,
cuts) are pinned: during the ONNX export they are extra graph outputs named
"backbone.<i>", so torch gives the value that name and onnx2eex never fuses the value
away (a fusion only absorbs a value that no one else reads and that is not a graph
output; it always keeps the consumer's output name). After conversion they are taken
off the graph output list again: the .eex graph outputs are the logits only.

The spec (a dict; every module may be an nn.Module or a dotted submodule name of
`model`, e.g. "features.3"):

    {
      "name":       "my-model",                # model.name (default: the file stem)
      "input_size": (3, 224, 224),             # image C, H, W (required)
      "mean": [...], "std": [...],             # per channel, pixels scaled to 0..1
      "labels": ["class0", ...],               # optional; count = number of classes
      "experts": ["pristine", "blur", "noise"],# first = default (default: ["pristine"])
      "stages": [m0, m1, ...],                 # backbone = the stages applied in order
      "exits": [                               # in backbone order
        {"stage": 3,                           # reads the output of stages[3]
         "heads": {"pristine": h, "blur": h2, "noise": h3},   # one per expert
         "temperature": {"pristine": 1.27}},   # a float, or per expert (default 1.0)
        ...],
      "final": {"heads": {"pristine": f, ...}, # reads the last stage's output; only the
                "temperature": ...},           #   default expert's head is required
      "cuts": [3, 10, 14],                     # stage indices (default: the exits' stages)
      "detector": {"module": d,                # optional distortion detector
                   "input_size": (1, 64, 64),  # C = 1: the spectrum; 2: spectrum, image
                   "classes": [...]},          # default: the experts, in order
      "threshold": 0.8,                        # optional default p_tar
    }

Names in the file:
    graph inputs   "image" [1, C, H, W], "spectrum" [1, 1 or 2, h, w] (with a detector)
    graph outputs  "final.<expert>" (the default expert's first: output 0 is the whole
                   network's answer), then "exit<k>.<expert>" for k = 1..E in expert
                   order, then "detector"
    backbone       "backbone.<i>" = output of stages[i] (i from 0), for every attach
                   point and cut; ee.exit.k.attach, ee.final.attach and ee.cuts name them

Before tracing, the wrapper runs once eagerly: a model that fails on inputs of the
spec's sizes, or a stage or head that modifies a stage's output in place (e.g.
ReLU(inplace=True) as the first layer of the next stage, which would change what an exit
head reads), is refused. Exit heads run right after their stage, as in a real model.

Limits: a stage must compute a new tensor (not return its input); heads, finals and the
detector must only use ops onnx2eex supports. nn.AdaptiveAvgPool2d / F.adaptive_avg_pool2d
are exported as AveragePool when every output cell's window has the same size and the
windows a fixed stride (e.g. 7 -> 2 is kernel 4, stride 3; any n -> 1 and any divisible
size), which is exactly what PyTorch computes; other sizes are refused with a message.
"""

import math
import os
import sys
import tempfile
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eexfile    # noqa: E402
import onnx2eex   # noqa: E402

PRODUCER = "eex-export 1"
# What the committed models were exported with; ConvNeXt's layer norm, which opset 13
# spells out in ReduceMean, Pow, Sqrt, ... nodes, is put back together by onnx2eex.
OPSET = 13
IMAGE_INPUT = "image"
SPECTRUM_INPUT = "spectrum"
DETECTOR_OUTPUT = "detector"


class ExportError(Exception):
    """A spec or model that cannot be exported; the message says why."""


def backbone_value(i):
    return f"backbone.{i}"


def exit_value(k, expert):
    return f"exit{k}.{expert}"


def final_value(expert):
    return f"final.{expert}"


# ----------------------------------------------------------------------------- the spec

class _Plan:
    """A checked spec with the modules resolved."""

    def __init__(self, model, spec):
        if not isinstance(spec, dict):
            raise ExportError("the spec must be a dict (see eex_export's docstring)")
        known = {"name", "input_size", "mean", "std", "labels", "experts", "stages",
                 "exits", "final", "cuts", "detector", "threshold"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ExportError(f"unknown spec keys: {', '.join(unknown)}")
        self.model = model
        self.name = spec.get("name")
        size = spec.get("input_size")
        if size is None or len(size) != 3 or any(int(d) < 1 for d in size):
            raise ExportError("spec 'input_size' must be (C, H, W)")
        self.input_size = [int(d) for d in size]
        c = self.input_size[0]
        self.mean = self._floats(spec, "mean", c)
        self.std = self._floats(spec, "std", c)
        if self.std is not None and any(v <= 0 for v in self.std):
            raise ExportError("spec 'std' values must be > 0")
        self.labels = spec.get("labels")
        if self.labels is not None:
            self.labels = [str(x) for x in self.labels]
        self.experts = list(spec.get("experts") or ["pristine"])
        if len(set(self.experts)) != len(self.experts) or \
                not all(isinstance(e, str) and e and "." not in e for e in self.experts):
            raise ExportError(f"spec 'experts' must be distinct non-empty names without "
                              f"'.': {self.experts}")

        stages = spec.get("stages")
        if not stages:
            raise ExportError("spec 'stages' must list the backbone stages")
        self.stages = [self._module(s, f"stages[{i}]") for i, s in enumerate(stages)]
        last = len(self.stages) - 1

        self.exits = []          # [(stage, {expert: module}, {expert: T})]
        prev = -1
        for k, ex in enumerate(spec.get("exits") or [], start=1):
            if not isinstance(ex, dict) or "stage" not in ex or "heads" not in ex:
                raise ExportError(f"exit {k}: needs 'stage' and 'heads'")
            st = int(ex["stage"])
            if not prev < st <= last:
                raise ExportError(f"exit {k}: stage {st} is not after the previous exit's "
                                  f"and within 0..{last}")
            prev = st
            heads = ex["heads"]
            missing = [e for e in self.experts if e not in heads]
            extra = [e for e in heads if e not in self.experts]
            if missing or extra:
                raise ExportError(f"exit {k}: heads must be given for exactly the experts "
                                  f"{self.experts} (missing {missing}, unknown {extra})")
            self.exits.append((st, {e: self._module(heads[e], f"exit {k} head '{e}'")
                                    for e in self.experts},
                               self._temps(ex.get("temperature"), f"exit {k}")))

        fin = spec.get("final")
        if not isinstance(fin, dict) or not fin.get("heads"):
            raise ExportError("spec 'final' needs 'heads' (at least the default expert's)")
        heads = fin["heads"]
        extra = [e for e in heads if e not in self.experts]
        if self.experts[0] not in heads or extra:
            raise ExportError(f"final: heads need the default expert '{self.experts[0]}' "
                              f"and only experts of {self.experts} (unknown {extra})")
        self.final = ({e: self._module(heads[e], f"final head '{e}'")
                       for e in self.experts if e in heads},
                      self._temps(fin.get("temperature"), "final"))

        cuts = spec.get("cuts")
        self.cuts = [st for st, _, _ in self.exits] if cuts is None else \
            [int(x) for x in cuts]
        for a, b in zip(self.cuts, self.cuts[1:]):
            if not a < b:
                raise ExportError(f"spec 'cuts' must be increasing stage indices: "
                                  f"{self.cuts}")
        if any(not 0 <= x <= last for x in self.cuts):
            raise ExportError(f"spec 'cuts' {self.cuts} must lie within 0..{last}")

        self.detector = None
        det = spec.get("detector")
        if det is not None:
            if not isinstance(det, dict) or "module" not in det or "input_size" not in det:
                raise ExportError("spec 'detector' needs 'module' and 'input_size'")
            dsize = [int(d) for d in det["input_size"]]
            if len(dsize) != 3 or dsize[0] not in (1, 2, 3) or min(dsize) < 1:
                raise ExportError(f"detector input_size must be (1, H, W) (the spectrum), "
                                  f"(2, H, W) (spectrum and image) or (3, H, W) (spectrum, "
                                  f"image and its residual), got {dsize}")
            classes = list(det.get("classes") or self.experts)
            bad = [x for x in classes if x not in self.experts]
            if bad or len(set(classes)) != len(classes):
                raise ExportError(f"detector classes {classes} must be distinct expert "
                                  f"names (not experts: {bad})")
            self.detector = (self._module(det["module"], "detector"), dsize, classes)

        self.threshold = spec.get("threshold")
        if self.threshold is not None:
            self.threshold = float(self.threshold)
            if not 0.0 <= self.threshold <= 1.0:
                raise ExportError(f"spec 'threshold' {self.threshold} is not in [0, 1]")

        # Backbone values to pin: attach points and cuts.
        self.pinned = sorted({st for st, _, _ in self.exits} | {last} | set(self.cuts))
        # Graph outputs (logits) in file order, each with the thunk that computes it.
        self.outputs = []
        for e in self.experts:
            if e in self.final[0]:
                self.outputs.append((final_value(e), "final", e))
        for k, (st, _, _) in enumerate(self.exits, start=1):
            for e in self.experts:
                self.outputs.append((exit_value(k, e), k, e))
        if self.detector:
            self.outputs.append((DETECTOR_OUTPUT, "detector", None))

    def _module(self, m, what):
        import torch
        if isinstance(m, str):
            try:
                m = self.model.get_submodule(m)
            except AttributeError as e:
                raise ExportError(f"{what}: no submodule '{m}' in the model ({e})") from None
        if not isinstance(m, torch.nn.Module) and not callable(m):
            raise ExportError(f"{what}: not a module or callable")
        return m

    @staticmethod
    def _floats(spec, key, n):
        v = spec.get(key)
        if v is None:
            return None
        v = [float(x) for x in v]
        if len(v) != n:
            raise ExportError(f"spec '{key}' has {len(v)} values for {n} input channels")
        return v

    def _temps(self, t, what):
        if t is None:
            t = {}
        if not isinstance(t, dict):
            t = {e: t for e in self.experts}
        bad = [e for e in t if e not in self.experts]
        if bad:
            raise ExportError(f"{what}: temperatures for unknown experts {bad}")
        out = {e: float(t.get(e, 1.0)) for e in self.experts}
        for e, v in out.items():
            if not (v > 0 and math.isfinite(v)):
                raise ExportError(f"{what}: temperature of '{e}' must be > 0, got {v}")
        return out


def _wrapper(plan):
    import torch

    pin = set(plan.pinned)
    exits_at = {}
    for k, (st, _, _) in enumerate(plan.exits, start=1):
        exits_at.setdefault(st, []).append(k)

    class EarlyExitGraph(torch.nn.Module):
        """forward(image[, spectrum]) -> logits in plan order, then pinned values."""

        def __init__(self):
            super().__init__()
            self.stages = torch.nn.ModuleList(_as_module(m) for m in plan.stages)
            self.exit_heads = torch.nn.ModuleList(
                torch.nn.ModuleDict({e: _as_module(h) for e, h in heads.items()})
                for _, heads, _ in plan.exits)
            self.final_heads = torch.nn.ModuleDict(
                {e: _as_module(h) for e, h in plan.final[0].items()})
            self.detector = _as_module(plan.detector[0]) if plan.detector else None

        def forward(self, image, spectrum=None):
            outs, pinned, seen, x = {}, {}, [], image
            for i, st in enumerate(self.stages):
                x = st(x)
                seen.append((i, x, x._version))
                if i in pin:
                    pinned[i] = x
                # Heads run right after their stage, as in the model they come from.
                for k in exits_at.get(i, ()):
                    for e, h in self.exit_heads[k - 1].items():
                        outs[exit_value(k, e)] = h(x)
            for e, h in self.final_heads.items():
                outs[final_value(e)] = h(x)
            if self.detector is not None:
                outs[DETECTOR_OUTPUT] = self.detector(spectrum)
            if not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
                for i, v, ver in seen:
                    if v._version != ver:
                        raise ExportError(f"the output of stages[{i}] is modified in "
                                          "place by a later stage or head (e.g. "
                                          "ReLU(inplace=True) on a stage input)")
            return tuple(outs[n] for n, _, _ in plan.outputs) + \
                tuple(pinned[i] for i in plan.pinned)

    return EarlyExitGraph()


def _as_module(m):
    import torch
    if isinstance(m, torch.nn.Module):
        return m

    class Fn(torch.nn.Module):
        def forward(self, *a):
            return m(*a)
    return Fn()


# ----------------------------------------------------------------------------- adaptive pooling

def adaptive_windows(size, out):
    """(kernel, stride) if adaptive average pooling from `size` to `out` cells is a plain
    average pool (every window the same size, a fixed stride, no padding), else None.
    PyTorch's window i is [floor(i*size/out), ceil((i+1)*size/out))."""
    starts = [(i * size) // out for i in range(out)]
    ends = [-(-((i + 1) * size) // out) for i in range(out)]
    kernels = {b - a for a, b in zip(starts, ends)}
    strides = {b - a for a, b in zip(starts, starts[1:])}
    if len(kernels) != 1 or len(strides) > 1:
        return None
    k = kernels.pop()
    return k, (strides.pop() if strides else k)


def _adaptive_avg_pool2d_symbolic(g, x, output_size):
    from torch.onnx import symbolic_helper
    out = symbolic_helper._parse_arg(output_size, "is")
    try:
        sizes = x.type().sizes()
    except RuntimeError:
        sizes = None
    if not sizes or len(sizes) != 4 or any(s is None for s in sizes[2:]):
        raise ExportError("adaptive_avg_pool2d on a tensor of unknown shape")
    if list(out) == [1, 1]:
        return g.op("GlobalAveragePool", x)
    ks, ss = [], []
    for s, o in zip(sizes[2:], out):
        w = adaptive_windows(s, o)
        if w is None:
            raise ExportError(f"adaptive_avg_pool2d from {sizes[2:]} to {list(out)}: the "
                              "windows differ in size, no AveragePool expresses it")
        ks.append(w[0])
        ss.append(w[1])
    return g.op("AveragePool", x, kernel_shape_i=ks, strides_i=ss)


# ----------------------------------------------------------------------------- export

def _example_inputs(plan, example_inputs):
    import torch
    if example_inputs is None:
        gen = torch.Generator().manual_seed(0)
        ins = [torch.randn([1] + plan.input_size, generator=gen)]
        if plan.detector:
            ins.append(torch.rand([1] + plan.detector[1], generator=gen))
        return tuple(ins)
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    ins = tuple(example_inputs)
    want = 2 if plan.detector else 1
    if len(ins) != want:
        raise ExportError(f"example_inputs: {want} tensors expected (image"
                          f"{', spectrum' if plan.detector else ''}), got {len(ins)}")
    return ins


def to_onnx(model, spec, onnx_path, example_inputs=None):
    """Exports the wrapper to ONNX. Returns the checked plan."""
    import torch
    plan = _Plan(model, spec)
    if isinstance(model, torch.nn.Module):
        model.eval()
    wrapper = _wrapper(plan).eval()
    ins = _example_inputs(plan, example_inputs)
    with torch.no_grad():
        try:
            wrapper(*ins)           # eager: shapes, and in-place modification checks
        except ExportError:
            raise
        except Exception as e:
            raise ExportError(f"the model fails on inputs of the spec's sizes: "
                              f"{type(e).__name__}: {e}") from e
    names = [IMAGE_INPUT] + ([SPECTRUM_INPUT] if plan.detector else [])
    out_names = [n for n, _, _ in plan.outputs] + [backbone_value(i) for i in plan.pinned]
    torch.onnx.register_custom_op_symbolic("aten::adaptive_avg_pool2d",
                                           _adaptive_avg_pool2d_symbolic, OPSET)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # PRESERVE on a model in eval mode keeps BatchNormalization nodes, which
            # onnx2eex folds in float64 (EVAL would let torch fold them in float32).
            torch.onnx.export(wrapper, ins, onnx_path, opset_version=OPSET,
                              input_names=names, output_names=out_names,
                              training=torch.onnx.TrainingMode.PRESERVE,
                              do_constant_folding=True)
    except ExportError:
        raise
    except Exception as e:
        cause = e
        while cause.__cause__ is not None or cause.__context__ is not None:
            nxt = cause.__cause__ or cause.__context__
            if isinstance(nxt, ExportError):
                raise nxt from None
            cause = nxt
        raise ExportError(f"torch.onnx.export failed: {str(e).splitlines()[0]}") from e
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::adaptive_avg_pool2d", OPSET)
    return plan


def _meta(plan, g, meta, out_path):
    T = eexfile
    classes = None
    for name, kind, _ in plan.outputs:
        s = g.shapes.get(name)
        if not s or len(s) != 2:
            raise ExportError(f"output '{name}' has shape {s}; logits must be [N, classes]")
        if kind == "detector":
            if s[1] != len(plan.detector[2]):
                raise ExportError(f"detector has {s[1]} outputs for "
                                  f"{len(plan.detector[2])} classes {plan.detector[2]}")
        elif classes is None:
            classes = s[1]
        elif s[1] != classes:
            raise ExportError(f"output '{name}' has {s[1]} classes, others {classes}")
    if plan.labels is not None and len(plan.labels) != classes:
        raise ExportError(f"{len(plan.labels)} labels for {classes} classes")

    m = [("model.name", plan.name or os.path.splitext(os.path.basename(out_path))[0],
          T.T_STR),
         ("producer", PRODUCER, T.T_STR)]
    if plan.mean is not None:
        m.append(("input.mean", plan.mean, T.T_F64S))
    if plan.std is not None:
        m.append(("input.std", plan.std, T.T_F64S))
    if plan.labels is not None:
        m.append(("labels", plan.labels, T.T_STRS))
    m += [("ee.version", 1, T.T_I64),
          ("ee.image_input", IMAGE_INPUT, T.T_STR),
          ("ee.experts", plan.experts, T.T_STRS),
          ("ee.exits", len(plan.exits), T.T_I64)]
    for k, (st, _, temps) in enumerate(plan.exits, start=1):
        m.append((f"ee.exit.{k}.attach", backbone_value(st), T.T_STR))
        for e in plan.experts:
            m.append((f"ee.exit.{k}.{e}.logits", exit_value(k, e), T.T_STR))
            m.append((f"ee.exit.{k}.{e}.temperature", temps[e], T.T_F64))
    m.append(("ee.final.attach", backbone_value(len(plan.stages) - 1), T.T_STR))
    for e in plan.experts:
        if e in plan.final[0]:
            m.append((f"ee.final.{e}.logits", final_value(e), T.T_STR))
        m.append((f"ee.final.{e}.temperature", plan.final[1][e], T.T_F64))
    m.append(("ee.cuts", [backbone_value(i) for i in plan.cuts], T.T_STRS))
    if plan.detector:
        m += [("ee.detector.input", SPECTRUM_INPUT, T.T_STR),
              ("ee.detector.logits", DETECTOR_OUTPUT, T.T_STR),
              ("ee.detector.classes", plan.detector[2], T.T_STRS)]
    if plan.threshold is not None:
        m.append(("ee.threshold", plan.threshold, T.T_F64))
    if meta:
        extra = dict(meta)
        m = [x for x in m if x[0] not in extra]
        m += [(k, v, None) for k, v in extra.items()]
    return m


def half_side_heads(spec):
    """Rounds the weights of every Linear layer in the side-exit heads of
    `spec` (every expert) to float16 values, in place, and returns how many
    layers it changed. export() then stores those weights as float16
    (onnx2eex.is_half_exact) and the C engine reads them at half the bytes.
    A 1000-class head is a matrix-vector product bound by memory, so this
    halves its time; the model itself is the rounded one, so PyTorch and the
    engine still compute the same function. The final classifier keeps its
    float32 weights."""
    import torch
    n = 0
    for ex in spec.get("exits") or []:
        for head in ex["heads"].values():
            for mod in head.modules():
                if isinstance(mod, torch.nn.Linear):
                    with torch.no_grad():
                        mod.weight.copy_(mod.weight.half().float())
                    n += 1
    return n


def export(model, spec, out_path, example_inputs=None, meta=None, onnx_path=None):
    """Exports `model` as described by `spec` (see the module docstring) to out_path.

    example_inputs: (image,) or (image, spectrum) tensors for tracing (default: random
    of the spec's sizes, batch 1). meta: extra metadata {key: value} (type guessed; it
    replaces a generated key of the same name). onnx_path: keep the intermediate ONNX
    file there. Returns a summary dict; raises ExportError (or onnx2eex.ConvertError).
    """
    tmpdir = None
    if onnx_path is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="eex-export-")
        onnx_path = os.path.join(tmpdir.name, "model.onnx")
    try:
        plan = to_onnx(model, spec, onnx_path, example_inputs)
        g = onnx2eex.load_onnx(onnx_path, multi_input=True)
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()
    logits = [n for n, _, _ in plan.outputs]
    pinned = [backbone_value(i) for i in plan.pinned]
    if g.outputs != logits + pinned:
        raise ExportError(f"ONNX outputs {g.outputs} are not the expected "
                          f"{logits + pinned} (a stage returning its input, or a head "
                          "returning a backbone value unchanged?)")
    onnx2eex.convert_graph(g)
    produced = {o for n in g.nodes for o in n.outputs}
    lost = [v for v in pinned if v not in produced]
    if lost:
        raise ExportError(f"backbone values {lost} did not survive conversion")
    g.outputs = logits
    onnx2eex.eliminate_dead(g)
    produced = {o for n in g.nodes for o in n.outputs}
    lost = [v for v in pinned if v not in produced]
    if lost:
        raise ExportError(f"backbone values {lost} are read by nothing")
    metadata = _meta(plan, g, meta, out_path)
    try:
        w, params = onnx2eex.build_writer(g, metadata)
        nbytes = w.write(out_path)
    except eexfile.EexError as e:
        raise ExportError(str(e)) from None
    problems = check_ee(eexfile.read_eex(out_path))
    if problems:
        os.remove(out_path)
        raise ExportError("exported file fails its structure check: " + "; ".join(problems))
    from collections import Counter
    return {"nodes": len(g.nodes), "ops": Counter(n.op for n in g.nodes),
            "params": params, "bytes": nbytes, "inputs": list(g.inputs),
            "outputs": list(logits),
            "shapes": {v: list(g.shapes[v]) for v in logits + pinned},
            "attach": {k: backbone_value(st) for k, (st, _, _) in
                       enumerate(plan.exits, start=1)},
            "final_attach": backbone_value(len(plan.stages) - 1),
            "cuts": [backbone_value(i) for i in plan.cuts]}


# ----------------------------------------------------------------------------- checks

class _Graph:
    def __init__(self, m):
        self.m = m
        self.producer = {}
        for i, n in enumerate(m["nodes"]):
            for o in n["outputs"]:
                self.producer[o] = i
        self.inputs = {name for name, _ in m["inputs"]}
        self.tensors = set(m["tensors"])

    def closure(self, values, stop=()):
        """Indices of the nodes needed to compute `values`, not looking behind the
        values in `stop` (they count as given)."""
        seen, todo = set(), [v for v in values if v not in stop]
        while todo:
            i = self.producer.get(todo.pop())
            if i is None or i in seen:
                continue
            seen.add(i)
            todo += [x for x in self.m["nodes"][i]["inputs"] if x and x not in stop]
        return seen

    def reads(self, nodes):
        """Values read by `nodes` that none of them produces (tensors excluded)."""
        made = {o for i in nodes for o in self.m["nodes"][i]["outputs"]}
        return {x for i in nodes for x in self.m["nodes"][i]["inputs"]
                if x and x not in made and x not in self.tensors}


def _get(meta, key, problems, kind=str):
    v = meta.get(key)
    if v is None:
        problems.append(f"missing metadata '{key}'")
    elif kind is list and not isinstance(v, list):
        problems.append(f"metadata '{key}' is not an array")
    elif kind is not list and not isinstance(v, kind):
        problems.append(f"metadata '{key}' is not a {kind.__name__}")
        return None
    return v


def _finals_and_exits(m):
    """[(role, logits value)] for every final and exit logits value the metadata names."""
    meta = m["meta"]
    out = []
    for e in meta.get("ee.experts") or []:
        v = meta.get(f"ee.final.{e}.logits")
        if v:
            out.append((f"final/{e}", v))
    for k in range(1, int(meta.get("ee.exits") or 0) + 1):
        for e in meta.get("ee.experts") or []:
            v = meta.get(f"ee.exit.{k}.{e}.logits")
            if v:
                out.append((f"exit {k}/{e}", v))
    return out


def check_cuts(m):
    """m: a read_eex() dict. Checks that every ee.cuts value is a backbone value and the
    only value that the rest of the network needs: the nodes that compute each final
    classifier (and each exit downstream of the cut) from the cut read nothing computed
    on the edge side of it except the cut itself, and no graph input. Returns a list of
    problems (empty = fine)."""
    problems = []
    meta = m["meta"]
    cuts = _get(meta, "ee.cuts", problems, list)
    fin = _get(meta, "ee.final.attach", problems)
    if cuts is None or fin is None:
        return problems
    g = _Graph(m)
    if fin not in g.producer:
        return [f"ee.final.attach '{fin}' is not produced by a node"]
    backbone = g.closure([fin])
    prev_edge = None
    targets = _finals_and_exits(m)
    for c in cuts:
        if c not in g.producer or g.producer[c] not in backbone:
            problems.append(f"cut '{c}' is not a value produced by a backbone node")
            continue
        edge = g.closure([c])
        if prev_edge is not None and not prev_edge < edge:
            problems.append(f"cut '{c}' is not after the cut before it")
        prev_edge = edge
        for role, t in targets:
            if t not in g.producer:
                problems.append(f"{role} logits '{t}' is not produced by a node")
                continue
            full = g.closure([t])
            depends = g.producer[c] in full
            if not depends:
                if role.startswith("final/"):
                    problems.append(f"{role} logits '{t}' do not depend on cut '{c}'")
                continue
            # The nodes the rest runs; any value they read from the edge side (or a
            # graph input) other than c crosses the cut too.
            rest = g.closure([t], stop={c}) - edge
            crossing = sorted(x for x in g.reads(rest) if x != c)
            if crossing:
                problems.append(f"cut '{c}': the rest of the network ({role}) also "
                                f"reads {crossing[:4]}")
    return problems


def check_ee(m):
    """m: a read_eex() dict. Checks the ee.* metadata against the graph: keys and types,
    names that exist, logits listed as graph outputs, attach values produced by backbone
    nodes in exit order, each head reading the backbone only through its attach value,
    the detector reading only its input, and check_cuts. Returns a list of problems."""
    problems = []
    meta = m["meta"]
    if meta.get("ee.version") != 1:
        problems.append(f"ee.version is {meta.get('ee.version')!r}, not 1")
    g = _Graph(m)
    outputs = set(m["outputs"])
    img = _get(meta, "ee.image_input", problems)
    if img is not None and img not in g.inputs:
        problems.append(f"ee.image_input '{img}' is not a graph input")
    experts = _get(meta, "ee.experts", problems, list) or []
    if not experts:
        problems.append("ee.experts is empty")
    n_exits = _get(meta, "ee.exits", problems, int)
    fin = _get(meta, "ee.final.attach", problems)
    if fin is None or fin not in g.producer:
        problems.append(f"ee.final.attach '{fin}' is not produced by a node")
        return problems
    backbone = g.closure([fin])
    if img is not None and g.reads(backbone) != {img}:
        problems.append(f"the backbone reads {sorted(g.reads(backbone))}, not only "
                        f"'{img}'")

    def head(role, logits, attach):
        if logits is None:
            return
        if logits not in g.producer:
            problems.append(f"{role} logits '{logits}' is not produced by a node")
            return
        if logits not in outputs:
            problems.append(f"{role} logits '{logits}' is not a graph output")
        nodes = g.closure([logits], stop={attach})
        if nodes & backbone:
            problems.append(f"{role} head does not read the backbone only through "
                            f"'{attach}': it includes backbone nodes")
        reads = g.reads(nodes)
        if reads != {attach}:
            problems.append(f"{role} head reads {sorted(reads)}, not only through "
                            f"'{attach}'")

    def temperature(key):
        t = meta.get(key, 1.0)
        if not isinstance(t, float) or not t > 0:
            problems.append(f"{key} must be an f64 > 0, got {t!r}")

    prev = None
    for k in range(1, (n_exits or 0) + 1):
        a = _get(meta, f"ee.exit.{k}.attach", problems)
        if a is None:
            continue
        if a not in g.producer or g.producer[a] not in backbone:
            problems.append(f"ee.exit.{k}.attach '{a}' is not produced by a backbone node")
            continue
        if prev is not None and g.producer[prev] not in g.closure([a]):
            problems.append(f"exit {k} attach '{a}' does not come after exit {k - 1}'s")
        prev = a
        for e in experts:
            head(f"exit {k}/{e}", _get(meta, f"ee.exit.{k}.{e}.logits", problems), a)
            temperature(f"ee.exit.{k}.{e}.temperature")
    if prev is not None and g.producer[prev] not in backbone:
        problems.append("the last exit is not on the backbone")
    if experts and f"ee.final.{experts[0]}.logits" not in meta:
        problems.append(f"missing metadata 'ee.final.{experts[0]}.logits'")
    for e in experts:
        head(f"final/{e}", meta.get(f"ee.final.{e}.logits"), fin)
        temperature(f"ee.final.{e}.temperature")

    if "ee.detector.logits" in meta or "ee.detector.input" in meta:
        din = _get(meta, "ee.detector.input", problems)
        dout = _get(meta, "ee.detector.logits", problems)
        classes = _get(meta, "ee.detector.classes", problems, list) or []
        if din is not None and din not in g.inputs:
            problems.append(f"ee.detector.input '{din}' is not a graph input")
        if dout is not None:
            if dout not in g.producer:
                problems.append(f"ee.detector.logits '{dout}' is not produced by a node")
            else:
                if dout not in outputs:
                    problems.append(f"ee.detector.logits '{dout}' is not a graph output")
                nodes = g.closure([dout])
                if nodes & backbone or g.reads(nodes) != {din}:
                    problems.append(f"the detector reads {sorted(g.reads(nodes))}, not "
                                    f"only '{din}'")
        bad = [c for c in classes if c not in experts]
        if bad:
            problems.append(f"ee.detector.classes {bad} are not expert names")
    thr = meta.get("ee.threshold")
    if thr is not None and not (isinstance(thr, float) and 0 <= thr <= 1):
        problems.append(f"ee.threshold {thr!r} is not an f64 in [0, 1]")
    return problems + check_cuts(m)


# ----------------------------------------------------------------------------- running

def run_reference(m, feeds):
    """Runs a read_eex() dict with converter/eexref.py. feeds: {input name: array} (or
    one array for a single-input graph). Returns {output name: float64 array}."""
    import eexref
    if not isinstance(feeds, dict):
        feeds = {m["inputs"][0][0]: feeds}
    names = [name for name, _ in m["inputs"]]
    missing = [n for n in names if n not in feeds]
    if missing:
        raise ExportError(f"no value for graph inputs {missing}")
    # eexref.run binds the first input; the others go in as if they were constants.
    extra = {n: {"data": np.asarray(feeds[n], dtype=np.float64)} for n in names[1:]}
    return eexref.run(dict(m, tensors={**m["tensors"], **extra}), feeds[names[0]])


def torch_outputs(model, spec, inputs):
    """The PyTorch values of the graph outputs for inputs (image[, spectrum]), computed
    through the same composition export() uses. Returns {name: float64 ndarray}."""
    import torch
    plan = _Plan(model, spec)
    if isinstance(model, torch.nn.Module):
        model.eval()
    w = _wrapper(plan).eval()
    with torch.no_grad():
        ys = w(*[torch.as_tensor(np.asarray(x, dtype=np.float32)) for x in inputs])
    return {n: ys[i].double().numpy() for i, (n, _, _) in enumerate(plan.outputs)}


def compare(model, spec, eex_path, batch=2, seed=0):
    """Runs the file with eexref and the model with PyTorch on seeded random inputs.
    Returns {output name: (max |diff|, max |ref|)}."""
    m = eexfile.read_eex(eex_path)
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, dims in m["inputs"]:
        shape = [batch] + list(dims[1:])
        feeds[name] = (rng.random(shape) if name == SPECTRUM_INPUT
                       else rng.standard_normal(shape)).astype(np.float32)
    got = run_reference(m, feeds)
    ref = torch_outputs(model, spec,
                        [feeds[IMAGE_INPUT]] + ([feeds[SPECTRUM_INPUT]]
                                                if SPECTRUM_INPUT in feeds else []))
    return {n: (float(np.max(np.abs(got[n] - ref[n]))), float(np.max(np.abs(ref[n]))))
            for n in m["outputs"]}
