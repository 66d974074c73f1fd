#!/usr/bin/python3
"""Round-trip tests of converter/eex_export.py: small random early-exit CNNs (BN, ReLU6,
residual adds, 2-3 exits, 2-3 expert sets, a detector) exported to .eex; every graph
output run by converter/eexref.py against PyTorch; the ee.* metadata checked
(check_ee, check_cuts), including that bad cuts and attach points are caught; the
eex-export CLI; and, when build/eex accepts `--input NAME=IN.npy` / `--output
NAME=OUT.npy`, the C engine on the same inputs.

Plain script: one line per test, then 'N passed, N failed'; exit status 1 on failure.
Run with Debian's /usr/bin/python3 (torch, onnx, numpy)."""

import copy
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CONVERTER = os.path.join(ROOT, "converter")
EEX_EXPORT = os.path.join(CONVERTER, "eex-export")
EEX_BIN = os.path.join(ROOT, os.environ.get("BUILD", "build"), "eex")
sys.path.insert(0, CONVERTER)
import eex_export  # noqa: E402
import eexfile     # noqa: E402

TMP = tempfile.mkdtemp(prefix="eex-test-export-")
TESTS = []
TOL = 1e-4


def test(fn):
    TESTS.append(fn)
    return fn


# ----------------------------------------------------------------------------- a model

def conv_bn(ci, co, k=3, s=1, groups=1, act=True):
    layers = [nn.Conv2d(ci, co, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(co)]
    if act:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class Inverted(nn.Module):
    """MobileNetV2-style inverted residual: 1x1 expand, depthwise 3x3, 1x1 project."""

    def __init__(self, ci, co, s, t=4):
        super().__init__()
        h = ci * t
        self.body = nn.Sequential(conv_bn(ci, h, 1), conv_bn(h, h, 3, s, groups=h),
                                  conv_bn(h, co, 1, act=False))
        self.res = s == 1 and ci == co

    def forward(self, x):
        y = self.body(x)
        return x + y if self.res else y


def branch(c, classes, pool=2):
    return nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(pool * pool * c,
                                                                           classes))


def collabar(size, classes=3, channels=1):
    """The CollabAR detector layout on a channels x size x size input (1: the spectrum;
    2: spectrum and image)."""
    s = ((size - 3) // 2 + 1 - 2) // 2 // 2
    return nn.Sequential(nn.Conv2d(channels, 32, 3, 2), nn.ReLU(), nn.Conv2d(32, 16, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(16, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(s * s, classes))


class TinyEE(nn.Module):
    """3x28x28 -> 10 classes; exits after blocks 1 (14x14), 3 (7x7: adaptive 7 -> 2 is
    not a divisible pool) and 4 (4x4); experts with their own heads and finals."""

    EXITS = (1, 3, 4)

    def __init__(self, experts=("pristine", "blur", "noise"), classes=10, exits=EXITS,
                 detector=True, detector_channels=1):
        super().__init__()
        self.experts, self.exit_at = list(experts), list(exits)
        self.features = nn.Sequential(
            conv_bn(3, 8, 3, 2),          # 0: 14x14
            Inverted(8, 8, 1),            # 1: residual
            Inverted(8, 16, 2),           # 2: 7x7
            Inverted(16, 16, 1),          # 3: residual
            Inverted(16, 24, 2),          # 4: 4x4
            conv_bn(24, 32, 1))           # 5
        chans = [8, 8, 16, 16, 24, 32]
        self.exits = nn.ModuleList(
            nn.ModuleDict({e: branch(chans[i], classes) for e in experts}) for i in exits)
        self.finals = nn.ModuleDict({e: branch(32, classes, pool=1) for e in experts})
        self.detector = collabar(32, len(experts), detector_channels) if detector else None
        self.detector_channels = detector_channels

    def forward(self, x, spectrum=None):
        """Plain PyTorch outputs by graph output name (independent of eex_export)."""
        out, feats = {}, []
        for f in self.features:
            x = f(x)
            feats.append(x)
        for k, (i, heads) in enumerate(zip(self.exit_at, self.exits), start=1):
            for e in self.experts:
                out[f"exit{k}.{e}"] = heads[e](feats[i])
        for e in self.experts:
            out[f"final.{e}"] = self.finals[e](x)
        if self.detector is not None:
            out["detector"] = self.detector(spectrum)
        return out

    def spec(self, **over):
        s = {
            "name": "tiny-ee",
            "input_size": (3, 28, 28),
            "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3],
            "labels": [f"c{i}" for i in range(10)],
            "experts": self.experts,
            "stages": [f"features.{i}" for i in range(len(self.features))],
            "exits": [{"stage": i, "heads": dict(self.exits[k].items()),
                       "temperature": {self.experts[0]: 1.27 - 0.3 * k}}
                      for k, i in enumerate(self.exit_at)],
            "final": {"heads": dict(self.finals.items()), "temperature": 0.99},
            "threshold": 0.8,
        }
        if self.detector is not None:
            s["detector"] = {"module": self.detector,
                             "input_size": (self.detector_channels, 32, 32)}
        s.update(over)
        return s


def randomise(model, seed):
    """Random weights everywhere and real BN statistics (so BN folding is not the
    identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) *
                               (2.0 / m.weight[0].numel()) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return model.eval()


def make_model(seed=0, **kw):
    torch.manual_seed(seed)
    return randomise(TinyEE(**kw), seed + 100)


def export(model, spec, stem, **kw):
    path = os.path.join(TMP, stem + ".eex")
    info = eex_export.export(model, spec, path, **kw)
    return path, info, eexfile.read_eex(path)


def feeds_for(m, batch, seed):
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, dims in m["inputs"]:
        shape = [batch] + list(dims[1:])
        feeds[name] = (rng.random(shape) if name == "spectrum"
                       else rng.standard_normal(shape)).astype(np.float32)
    return feeds


def torch_out(model, feeds):
    with torch.no_grad():
        args = [torch.from_numpy(feeds["image"])]
        if "spectrum" in feeds:
            args.append(torch.from_numpy(feeds["spectrum"]))
        return {k: v.double().numpy() for k, v in model(*args).items()}


def assert_close(got, ref, what):
    d = float(np.max(np.abs(got - ref)))
    lim = TOL * max(1.0, float(np.max(np.abs(ref))))
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert d <= lim, f"{what}: max|diff| {d:.3g} > {lim:.3g}"
    return d


MAXDIFF = {}


def check_numbers(model, m, stem, batch=2, seeds=(1, 2)):
    want = set(torch_out(model, feeds_for(m, 1, 0)))
    assert set(m["outputs"]) == want, f"graph outputs {m['outputs']} != {sorted(want)}"
    for seed in seeds:
        feeds = feeds_for(m, batch, seed)
        got = eex_export.run_reference(m, feeds)
        ref = torch_out(model, feeds)
        for name in m["outputs"]:
            d = assert_close(got[name], ref[name], f"{stem} {name}")
            MAXDIFF[stem] = max(MAXDIFF.get(stem, 0.0), d)


# ----------------------------------------------------------------------------- tests

@test
def three_experts_three_exits_detector():
    model = make_model(0)
    path, info, m = export(model, model.spec(), "tiny3")
    check_numbers(model, m, "tiny3")
    assert [n for n, _ in m["inputs"]] == ["image", "spectrum"], m["inputs"]
    assert m["inputs"][0][1] == [1, 3, 28, 28] and m["inputs"][1][1] == [1, 1, 32, 32]
    assert m["outputs"][0] == "final.pristine", m["outputs"]
    assert eex_export.check_ee(m) == [], eex_export.check_ee(m)


@test
def metadata_values():
    model = make_model(0)
    _, info, m = export(model, model.spec(), "tiny3meta")
    meta, types = m["meta"], m["meta_types"]
    T = eexfile
    want = {
        "model.name": "tiny-ee", "producer": "eex-export 1",
        "input.mean": [0.5, 0.4, 0.3], "input.std": [0.2, 0.25, 0.3],
        "labels": [f"c{i}" for i in range(10)],
        "ee.version": 1, "ee.image_input": "image",
        "ee.experts": ["pristine", "blur", "noise"], "ee.exits": 3,
        "ee.exit.1.attach": "backbone.1", "ee.exit.2.attach": "backbone.3",
        "ee.exit.3.attach": "backbone.4", "ee.final.attach": "backbone.5",
        "ee.cuts": ["backbone.1", "backbone.3", "backbone.4"],
        "ee.detector.input": "spectrum", "ee.detector.logits": "detector",
        "ee.detector.classes": ["pristine", "blur", "noise"],
        "ee.threshold": 0.8,
        "ee.exit.1.pristine.temperature": 1.27, "ee.exit.2.pristine.temperature": 0.97,
        "ee.exit.1.blur.temperature": 1.0, "ee.final.noise.temperature": 0.99,
        "ee.exit.2.noise.logits": "exit2.noise", "ee.final.blur.logits": "final.blur",
    }
    for k, v in want.items():
        assert k in meta, f"missing {k}"
        if isinstance(v, float):
            assert abs(meta[k] - v) < 1e-12 and types[k] == T.T_F64, (k, meta[k])
        else:
            assert meta[k] == v, f"{k}: {meta[k]!r} != {v!r}"
    assert types["ee.version"] == T.T_I64 and types["ee.exits"] == T.T_I64
    assert types["ee.cuts"] == T.T_STRS and types["ee.experts"] == T.T_STRS
    # Attach values exist and are produced by backbone nodes (not heads, not detector).
    producer = {o: n for n in m["nodes"] for o in n["outputs"]}
    for k in (1, 2, 3):
        a = meta[f"ee.exit.{k}.attach"]
        assert a in producer, f"attach {a} is not produced by a node"
    assert info["shapes"]["backbone.3"] == [1, 16, 7, 7], info["shapes"]
    assert info["shapes"]["exit2.blur"] == [1, 10]
    # 7x7 -> 2x2 adaptive pool became a kernel-4 stride-3 avgpool reading backbone.3
    # (torch's export merges the experts' identical pools into one node)
    pools = [n for n in m["nodes"] if n["op"] == "avgpool" and n["inputs"] == ["backbone.3"]]
    assert len(pools) >= 1 and all(p["attrs"]["kernel"] == [4, 4] and
                                   p["attrs"]["strides"] == [3, 3] for p in pools), pools


@test
def two_experts_two_exits_no_detector():
    model = make_model(3, experts=("pristine", "noise"), exits=(2, 4), detector=False)
    spec = model.spec(cuts=[2, 3, 4], labels=None, threshold=None)
    _, _, m = export(model, spec, "tiny2")
    check_numbers(model, m, "tiny2")
    meta = m["meta"]
    assert [n for n, _ in m["inputs"]] == ["image"]
    assert meta["ee.exits"] == 2 and meta["ee.cuts"] == ["backbone.2", "backbone.3",
                                                         "backbone.4"]
    assert not any(k.startswith("ee.detector") for k in meta)
    assert "ee.threshold" not in meta and "labels" not in meta
    assert eex_export.check_ee(m) == []


@test
def final_only_for_default_expert():
    model = make_model(4)
    spec = model.spec(final={"heads": {"pristine": model.finals["pristine"]}})
    _, _, m = export(model, spec, "tinyfin")
    assert "final.blur" not in m["outputs"] and "ee.final.blur.logits" not in m["meta"]
    assert m["meta"]["ee.final.blur.temperature"] == 1.0
    feeds = feeds_for(m, 2, 5)
    got, ref = eex_export.run_reference(m, feeds), torch_out(model, feeds)
    for name in m["outputs"]:
        assert_close(got[name], ref[name], name)
    assert eex_export.check_ee(m) == []


@test
def cut_at_every_stage():
    """Every block boundary of a chain of blocks is a legal cut, residual or not."""
    model = make_model(5)
    _, _, m = export(model, model.spec(cuts=list(range(6))), "tinyallcuts")
    assert m["meta"]["ee.cuts"] == [f"backbone.{i}" for i in range(6)]
    assert eex_export.check_cuts(m) == [], eex_export.check_cuts(m)
    check_numbers(model, m, "tinyallcuts", seeds=(3,))


class PreAct(nn.Module):
    """Stages split between a conv+BN and its ReLU6, so the pinned value backbone.0 is a
    pre-activation value that the next stage's activation must not absorb."""

    def __init__(self, inplace=False):
        super().__init__()
        self.s0 = conv_bn(3, 8, 3, 2, act=False)
        self.s1 = nn.Sequential(nn.ReLU6(inplace=inplace), Inverted(8, 8, 1))
        self.s2 = conv_bn(8, 16, 3, 2)
        self.h0 = nn.ModuleDict({"pristine": branch(8, 5)})
        self.f = nn.ModuleDict({"pristine": branch(16, 5, pool=1)})

    def forward(self, x):
        a = self.s0(x)
        e = self.h0["pristine"](a)
        y = self.s2(self.s1(a))
        return {"exit1.pristine": e, "final.pristine": self.f["pristine"](y)}

    def spec(self):
        return {"input_size": (3, 16, 16), "stages": [self.s0, self.s1, self.s2],
                "exits": [{"stage": 0, "heads": dict(self.h0.items())}],
                "final": {"heads": dict(self.f.items())}, "cuts": [0, 1]}


@test
def pinned_value_before_an_activation():
    torch.manual_seed(11)
    model = randomise(PreAct(), 12)
    _, _, m = export(model, model.spec(), "preact")
    check_numbers(model, m, "preact")
    producer = {o: n for n in m["nodes"] for o in n["outputs"]}
    assert producer["backbone.0"]["op"] == "conv" and \
        producer["backbone.0"]["attrs"].get("act", "none") == "none", producer["backbone.0"]
    assert any(n["op"] == "clip" and n["inputs"] == ["backbone.0"] for n in m["nodes"])
    assert eex_export.check_ee(m) == []


@test
def in_place_stage_input_is_refused():
    torch.manual_seed(11)
    model = randomise(PreAct(inplace=True), 12)
    try:
        export(model, model.spec(), "preact_inplace")
    except eex_export.ExportError as e:
        assert "modified in place" in str(e) and "stages[0]" in str(e), str(e)
    else:
        raise AssertionError("in-place modification of a stage output accepted")


def _with_meta(m, **kv):
    m2 = copy.deepcopy(m)
    for k, v in kv.items():
        m2["meta"][k.replace("__", ".")] = v
    return m2


@test
def check_cuts_rejects_bad_cuts():
    model = make_model(0)
    _, _, m = export(model, model.spec(), "tinybad")
    producer = {o: n for n in m["nodes"] for o in n["outputs"]}
    # A value inside the residual block 3 (its projection): the skip connection still
    # needs the block's input, the output of stage 2.
    add3 = producer["backbone.3"]
    assert add3["op"] == "add", add3
    inner = [x for x in add3["inputs"] if "stages.3" in x]
    skip = [x for x in add3["inputs"] if "stages.3" not in x]
    assert len(inner) == 1 and len(skip) == 1, add3["inputs"]
    probs = eex_export.check_cuts(_with_meta(m, ee__cuts=[inner[0]]))
    assert len(probs) >= 1 and skip[0] in probs[0], probs
    # A value in an exit head, the detector's logits, a made-up name, an input.
    for bad in ("exit1.pristine", "detector", "nope", "image"):
        probs = eex_export.check_cuts(_with_meta(m, ee__cuts=[bad]))
        assert probs and "not a value produced by a backbone node" in probs[0], (bad, probs)
    # Out of order.
    probs = eex_export.check_cuts(_with_meta(m, ee__cuts=["backbone.3", "backbone.1"]))
    assert probs and "not after" in probs[0], probs
    # check_ee also catches a wrong attach, a head reading two backbone values,
    # logits that are not graph outputs.
    probs = eex_export.check_ee(_with_meta(m, ee__exit__2__attach="backbone.1"))
    assert any("exit 2/" in p and "only through" in p for p in probs), probs
    probs = eex_export.check_ee(_with_meta(m, ee__exit__1__attach="exit1.pristine"))
    assert any("not produced by a backbone node" in p for p in probs), probs
    m2 = copy.deepcopy(m)
    m2["outputs"].remove("exit3.noise")
    probs = eex_export.check_ee(m2)
    assert any("not a graph output" in p for p in probs), probs
    probs = eex_export.check_ee(_with_meta(m, ee__detector__classes=["pristine", "fog"]))
    assert any("fog" in p for p in probs), probs


@test
def spec_errors_are_named():
    model = make_model(0)
    cases = [
        (dict(exits=[{"stage": 3, "heads": {"pristine": model.exits[0]["pristine"]}}]),
         "heads must be given for exactly the experts"),
        (dict(exits=[{"stage": 3, "heads": dict(model.exits[1].items())},
                     {"stage": 1, "heads": dict(model.exits[0].items())}]),
         "not after the previous exit"),
        (dict(stages=["features.0", "features.nope"]), "no submodule"),
        (dict(mean=[0.5]), "'mean' has 1 values"),
        (dict(cuts=[4, 2]), "increasing"),
        (dict(final={"heads": {"blur": model.finals["blur"]}}), "default expert"),
        (dict(detector={"module": model.detector, "input_size": (3, 32, 32)}),
         "(2, H, W)"),
        (dict(labels=["a", "b"]), "2 labels for 10 classes"),
        (dict(bogus=1), "unknown spec keys"),
    ]
    for over, words in cases:
        try:
            export(model, model.spec(**over), "tinyerr")
        except eex_export.ExportError as e:
            assert words in str(e), f"{over}: {e}"
        else:
            raise AssertionError(f"{over}: accepted")


@test
def adaptive_pool_windows():
    aw = eex_export.adaptive_windows
    assert aw(7, 2) == (4, 3) and aw(14, 2) == (7, 7) and aw(56, 2) == (28, 28)
    assert aw(5, 2) == (3, 2) and aw(7, 3) == (3, 2) and aw(9, 1) == (9, 9)
    assert aw(7, 4) is None and aw(10, 4) is None
    # Check the claim against PyTorch itself for every size up to 16.
    for n in range(1, 17):
        for o in range(1, n + 1):
            w = aw(n, o)
            if w is None:
                continue
            x = torch.randn(1, 2, n, n)
            a = nn.functional.adaptive_avg_pool2d(x, o)
            b = nn.functional.avg_pool2d(x, w[0], w[1])
            assert torch.allclose(a, b, atol=1e-6), (n, o, w)
    # A head the engine cannot express is refused with a message.
    model = make_model(0)
    bad = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16 * 16, 10))
    heads = dict(model.exits[1].items(), pristine=bad)
    spec = model.spec()
    spec["exits"][1] = {"stage": 3, "heads": heads}
    try:
        export(model, spec, "tinyadapt")
    except eex_export.ExportError as e:
        assert "windows differ" in str(e), str(e)
    else:
        raise AssertionError("7 -> 4 adaptive pooling accepted")


@test
def extra_meta_and_onnx_kept():
    model = make_model(6, experts=("pristine", "blur"), exits=(1, 3), detector=False)
    onnx_path = os.path.join(TMP, "kept.onnx")
    _, _, m = export(model, model.spec(), "tinymeta",
                     meta={"x.note": "hello", "model.name": "renamed"},
                     onnx_path=onnx_path)
    assert m["meta"]["x.note"] == "hello" and m["meta"]["model.name"] == "renamed"
    assert os.path.getsize(onnx_path) > 0


SPEC_FILE = '''
import sys
sys.path.insert(0, {here!r})
import test_export as t

def build():
    model = t.make_model(7, experts=("pristine", "blur"), exits=(1, 3))
    return model, model.spec(name="from-cli")
'''


@test
def cli():
    spec_py = os.path.join(TMP, "spec_tiny.py")
    with open(spec_py, "w") as f:
        f.write(SPEC_FILE.format(here=HERE))
    out = os.path.join(TMP, "cli.eex")
    r = subprocess.run([EEX_EXPORT, spec_py, "-o", out, "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, f"rc {r.returncode}: {r.stderr}"
    assert "max|diff|" in r.stderr, r.stderr
    m = eexfile.read_eex(out)
    assert m["meta"]["model.name"] == "from-cli" and m["meta"]["ee.exits"] == 2
    h = subprocess.run([EEX_EXPORT, "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and "build()" in h.stdout, h
    r = subprocess.run([EEX_EXPORT, os.path.join(TMP, "missing.py"), "-o", out],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "cannot" in r.stderr, r
    bad_py = os.path.join(TMP, "spec_bad.py")
    with open(bad_py, "w") as f:
        f.write(SPEC_FILE.format(here=HERE).replace('name="from-cli"', 'bogus=1'))
    r = subprocess.run([EEX_EXPORT, bad_py, "-o", os.path.join(TMP, "bad.eex")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown spec keys" in r.stderr, r
    assert not os.path.exists(os.path.join(TMP, "bad.eex"))


def engine_accepts_named_io():
    if not os.access(EEX_BIN, os.X_OK):
        return False, f"{EEX_BIN} not built"
    r = subprocess.run([EEX_BIN, "run", "--help"], capture_output=True, text=True)
    text = r.stdout + r.stderr
    if "NAME=" not in text:
        return False, "build/eex run does not accept --input NAME=IN.npy yet"
    return True, ""


def c_engine_matches(model, path, m, key):
    """Runs the exported file in build/eex and checks every output against PyTorch."""
    feeds = feeds_for(m, 2, 9)
    args = [EEX_BIN, "run", path]
    for name, a in feeds.items():
        p = os.path.join(TMP, f"c_in_{name}.npy")
        np.save(p, a)
        args += ["--input", f"{name}={p}"]
    outs = {name: os.path.join(TMP, f"c_out_{name}.npy") for name in m["outputs"]}
    for name, p in outs.items():
        args += ["--output", f"{name}={p}"]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, f"eex run failed ({r.returncode}): {r.stderr.strip()}"
    ref = torch_out(model, feeds)
    for name, p in outs.items():
        d = assert_close(np.load(p).astype(np.float64), ref[name], f"C {name}")
        MAXDIFF[key] = max(MAXDIFF.get(key, 0.0), d)


@test
def c_engine():
    ok, why = engine_accepts_named_io()
    if not ok:
        print(f"     skipped C-engine check: {why}")
        return
    model = make_model(0)
    path, _, m = export(model, model.spec(), "tinyc")
    c_engine_matches(model, path, m, "C engine")


@test
def half_side_heads():
    """Side heads rounded to float16 are stored as float16 (and nothing else is),
    and the C engine's float16 dense kernel gives PyTorch's outputs of the rounded model."""
    import onnx2eex
    model = make_model(0)
    spec = model.spec()
    changed = eex_export.half_side_heads(spec)
    assert changed > 0, "no Linear layer in the side heads"
    keep = onnx2eex.HALF_MIN_WEIGHTS
    onnx2eex.HALF_MIN_WEIGHTS = 1  # the tiny heads are below the size worth it
    try:
        path, _, m = export(model, spec, "half")
    finally:
        onnx2eex.HALF_MIN_WEIGHTS = keep
    half = sorted(n for n, t in m["tensors"].items() if t["dtype"] == "f16")
    assert len(half) == changed, f"{changed} heads rounded, float16 tensors: {half}"
    assert all(t["nbytes"] == 2 * np.prod(t["dims"]) for n, t in m["tensors"].items() if n in half)
    ok, why = engine_accepts_named_io()
    if not ok:
        print(f"     skipped C-engine check: {why}")
        return
    c_engine_matches(model, path, m, "C engine, float16 heads")


def detector_planes_match(channels):
    """A detector on `channels` planes: exported as a [1, C, 32, 32] input, and `eex run`
    on a PNG builds that input as docs/distortions.md says (channel 0 the spectrum,
    channel 1 the grayscale image, each resized to 32x32, / 255; channel 2 the diagonal
    residual of the gray image resized to uint8): its detector probabilities equal
    PyTorch's on the same planes."""
    import distort
    from PIL import Image
    model = make_model(4, detector_channels=channels)
    path, _, m = export(model, model.spec(), f"det{channels}")
    assert dict(m["inputs"])["spectrum"] == [1, channels, 32, 32], m["inputs"]
    ok, why = engine_accepts_named_io()
    if not ok:
        print(f"     skipped C-engine check: {why}")
        return
    c_engine_matches(model, path, m, f"C engine, {channels}-channel detector")
    import json
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:30, 0:40]
    wave = ((np.sin(xx / 3.0) + np.cos(yy / 4.0)) * 50 + 128).astype(np.uint8)
    images = {"gray 30x40 (resized)": wave,
              "rgb 30x40 (gray conversion)": np.stack([wave, wave[::-1], rng.integers(
                  0, 256, wave.shape, dtype=np.uint8)], -1),
              "gray 32x32 (as is)": rng.integers(0, 256, (32, 32), dtype=np.uint8)}
    classes = m["meta"]["ee.detector.classes"]
    for name, img in images.items():
        png, spec_png = os.path.join(TMP, "det.png"), os.path.join(TMP, "det_spec.png")
        Image.fromarray(img).save(png)
        r = subprocess.run([EEX_BIN, "run", path, png, "--json"], capture_output=True, text=True)
        assert r.returncode == 0, f"{name}: eex run: {r.stderr.strip()}"
        got = json.loads(r.stdout)["detector_probs"]
        # channel 0 from the engine's own spectrum (C and numpy DFTs may differ by one
        # uint8 step in a rare bin; test_distort.py checks that part)
        r = subprocess.run([EEX_BIN, "spectrum", png, spec_png], capture_output=True, text=True)
        assert r.returncode == 0, f"{name}: eex spectrum: {r.stderr.strip()}"
        spec = np.asarray(Image.open(spec_png))
        planes = [distort._plane_input(spec, (32, 32)), distort._plane_input(distort.gray_u8(img), (32, 32))]
        if channels == 3:
            planes.append(distort.detector_input(img, (32, 32), channels=3)[2])
        x = np.stack(planes)[None]
        ref = torch.softmax(model.detector(torch.from_numpy(x)).double(), 1)[0].detach().numpy()
        diff = max(abs(got[c] - ref[i]) for i, c in enumerate(classes))
        assert diff < 2e-6, f"{name}: C {got} vs PyTorch {dict(zip(classes, ref))}"
        MAXDIFF["detector probabilities from a PNG"] = max(
            MAXDIFF.get("detector probabilities from a PNG", 0.0), diff)
    # and the Python helper builds the same planes from the image alone
    img = images["rgb 30x40 (gray conversion)"]
    planes = distort.detector_input(img, (32, 32), channels=channels)
    assert planes.shape == (channels, 32, 32)
    assert np.array_equal(planes[1], distort._plane_input(distort.gray_u8(img), (32, 32)))
    if channels == 3:
        # the residual plane by hand: r on the rounded 32x32 gray image
        g = distort.resize_u8(distort.gray_u8(img), 32, 32).astype(np.int64)
        r = np.zeros((32, 32))
        r[:-1, :-1] = g[:-1, :-1] - g[:-1, 1:] - g[1:, :-1] + g[1:, 1:]
        assert np.array_equal(planes[2], np.clip(0.5 + r / 64, 0, 1).astype(np.float32))
        assert planes[2].min() < 0.5 < planes[2].max(), "the test image must have a residual"


@test
def two_channel_detector():
    detector_planes_match(2)


@test
def three_channel_detector():
    """Spectrum, image and the diagonal residual: the detector for backgrounds that are
    not black (docs/distortions.md, "Backgrounds")."""
    detector_planes_match(3)


# ----------------------------------------------------------------------------- main

def main():
    torch.set_num_threads(1)
    passed = failed = 0
    only = sys.argv[1:]
    for fn in TESTS:
        if only and fn.__name__ not in only:
            continue
        try:
            fn()
            print(f"ok   {fn.__name__}", flush=True)
            passed += 1
        except Exception as e:  # noqa: BLE001
            print(f"FAIL {fn.__name__}: {e}", flush=True)
            if not isinstance(e, AssertionError):
                traceback.print_exc()
            failed += 1
    for k, v in MAXDIFF.items():
        print(f"     max|diff| {k}: {v:.3g}")
    print(f"{passed} passed, {failed} failed")
    shutil.rmtree(TMP, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
