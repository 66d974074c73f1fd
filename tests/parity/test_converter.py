#!/usr/bin/python3
"""Tests of the converter and the .eex writer/reader, on tiny ONNX graphs built with
onnx.helper. Plain script: prints one line per test and 'N passed, N failed';
exit status 1 if anything failed."""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import traceback
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTER = os.path.normpath(os.path.join(HERE, "..", "..", "converter"))
EEX_CONVERT = os.path.join(CONVERTER, "eex-convert")
sys.path.insert(0, CONVERTER)
import eexfile  # noqa: E402
import eexref   # noqa: E402

TMP = tempfile.mkdtemp(prefix="eex-test-converter-")
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


# ----------------------------------------------------------------------------- helpers

def make_model(nodes, inits, in_shape, out_names=("y",), name="t", opset=13):
    arrays = [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()]
    g = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in out_names],
        arrays)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def save(model, stem):
    path = os.path.join(TMP, stem + ".onnx")
    onnx.save(model, path)
    return path


def run_convert(*args):
    r = subprocess.run([EEX_CONVERT, *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    return r.returncode, r.stderr


def convert(model, stem, *extra):
    src = save(model, stem)
    out = os.path.join(TMP, stem + ".eex")
    rc, err = run_convert(src, "-o", out, *extra)
    assert rc == 0, f"eex-convert failed ({rc}): {err}"
    return eexfile.read_eex(out), out


def expect_refusal(model, stem, *words):
    rc, err = run_convert(save(model, stem), "-o", os.path.join(TMP, stem + ".eex"))
    assert rc != 0, "eex-convert accepted it"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {err!r}"
    for w in words:
        assert w in lines[0], f"message lacks {w!r}: {lines[0]!r}"
    assert not os.path.exists(os.path.join(TMP, stem + ".eex")), "wrote a file anyway"
    return rc, lines[0]


RNG = np.random.default_rng(7)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def bn_params(c):
    return {"s": RNG.uniform(0.5, 1.5, c).astype(np.float32),
            "b": RNG.normal(0, 0.5, c).astype(np.float32),
            "m": RNG.normal(0, 0.5, c).astype(np.float32),
            "v": RNG.uniform(0.5, 1.5, c).astype(np.float32)}


def conv_nchw(x, w, b, pad):
    """Direct (slow, obvious) convolution, stride 1, for checking eexref and folding."""
    n, c, h, wd = x.shape
    co, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    y = np.zeros((n, co, ho, wo))
    for i in range(ho):
        for j in range(wo):
            y[:, :, i, j] = np.einsum("nchw,ochw->no", xp[:, :, i:i + kh, j:j + kw], w)
    return y + b.reshape(1, -1, 1, 1)


def one_node(m, op):
    nodes = [n for n in m["nodes"] if n["op"] == op]
    assert len(nodes) == 1, f"expected one {op} node, got {[n['op'] for n in m['nodes']]}"
    return nodes[0]


# ----------------------------------------------------------------------------- (a) refusals

@test
def refuses_lstm():
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="lstm_1", hidden_size=4)]
    m = make_model(nodes, {"W": rand(1, 16, 3), "R": rand(1, 16, 4)}, [2, 1, 3])
    rc, msg = expect_refusal(m, "lstm", "'LSTM'", "'lstm_1'", "unsupported ONNX op")
    assert rc == 2, rc


@test
def refuses_einsum():
    nodes = [helper.make_node("Einsum", ["x", "W"], ["y"], name="einsum_1",
                              equation="nc,kc->nk")]
    m = make_model(nodes, {"W": rand(4, 3)}, ["N", 3])
    rc, _ = expect_refusal(m, "einsum", "'Einsum'", "'einsum_1'")
    assert rc == 2, rc


@test
def refuses_unsupported_op_after_supported_ones():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu_1"),
             helper.make_node("Softsign", ["r"], ["y"], name="softsign_7")]
    expect_refusal(make_model(nodes, {}, ["N", 3]), "softsign", "'Softsign'", "'softsign_7'")


@test
def refuses_what_the_engine_would_refuse():
    # a rank-5 input is refused here, not first by `eex run`
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu_5d")]
    expect_refusal(make_model(nodes, {}, ["N", 3, 5, 2, 2]), "rank5", "rank 5", "'x'")
    # rank 3 ([N, C, W]) used to convert and then fail at `eex run`; now both take it
    eex = os.path.join(HERE, "..", "..", "build", "eex")
    _, path = convert(make_model(nodes, {}, ["N", 3, 5]), "rank3")
    if os.path.exists(eex):
        x = rand(2, 3, 5)
        np.save(os.path.join(TMP, "r3_in.npy"), x)
        r = subprocess.run([eex, "run", path, "--input", os.path.join(TMP, "r3_in.npy"),
                            "--output", os.path.join(TMP, "r3_out.npy")],
                           stderr=subprocess.PIPE, text=True)
        assert r.returncode == 0, r.stderr
        y = np.load(os.path.join(TMP, "r3_out.npy"))
        assert y.shape == (2, 3, 5) and np.array_equal(y, np.maximum(x, 0)), y.shape
    # opsets outside 7..17, and a pool pad as large as its window
    expect_refusal(make_model(nodes, {}, ["N", 3], opset=18), "opset18", "opset 18")
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="pool_p", kernel_shape=[2, 2],
                              pads=[2, 2, 2, 2])]
    expect_refusal(make_model(nodes, {}, ["N", 3, 8, 8]), "pool_p", "'MaxPool'", "pads")


@test
def refuses_maxpool_dilation_and_bad_flatten_axis():
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="pool_d", kernel_shape=[2, 2],
                              dilations=[2, 2])]
    expect_refusal(make_model(nodes, {}, ["N", 3, 8, 8]), "pool_d", "'MaxPool'",
                   "'pool_d'", "dilations")
    nodes = [helper.make_node("Flatten", ["x"], ["y"], name="flat2", axis=2)]
    expect_refusal(make_model(nodes, {}, ["N", 3, 8, 8]), "flat2", "'Flatten'",
                   "'flat2'", "axis")


@test
def cli_errors_are_one_line():
    rc, err = run_convert(os.path.join(TMP, "missing.onnx"), "-o", "x.eex")
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "missing.onnx" in err, err
    rc, err = run_convert("--bogus")
    assert rc == 2 and len(err.strip().splitlines()) == 1, (rc, err)
    r = subprocess.run([EEX_CONVERT, "--help"], stdout=subprocess.PIPE, text=True)
    assert r.returncode == 0
    for word in ("--mean", "--std", "--labels", "--name", "-o", "exit status"):
        assert word in r.stdout, word


# ----------------------------------------------------------------------------- (b) folding

@test
def conv_bn_relu_folds():
    c = 5
    w, cb, p = rand(c, 3, 3, 3), rand(c), bn_params(c)
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"],
                              name="bn", epsilon=1e-3),
             helper.make_node("Relu", ["n"], ["y"], name="relu")]
    model = make_model(nodes, {"W": w, "B": cb, **p}, ["N", 3, 6, 7])
    m, _ = convert(model, "cbr", "--name", "tiny", "--mean", "0.1,0.2,0.3",
                   "--std", "1,2,3")
    assert [n["op"] for n in m["nodes"]] == ["conv"], m["nodes"]
    node = m["nodes"][0]
    assert node["attrs"].get("act") == "relu", node["attrs"]
    assert node["attrs"]["pads"] == [1, 1, 1, 1]
    assert node["outputs"] == ["y"] and m["outputs"] == ["y"]
    assert m["inputs"] == [("x", [1, 3, 6, 7])], m["inputs"]
    scale = p["s"].astype(np.float64) / np.sqrt(p["v"].astype(np.float64) + 1e-3)
    w_ref = (w * scale[:, None, None, None]).astype(np.float32)
    b_ref = ((cb - p["m"]) * scale + p["b"]).astype(np.float32)
    w_got = m["tensors"][node["inputs"][1]]["data"]
    b_got = m["tensors"][node["inputs"][2]]["data"]
    np.testing.assert_allclose(w_got, w_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b_got, b_ref, rtol=1e-6, atol=1e-7)
    assert m["meta"]["model.name"] == "tiny"
    assert m["meta"]["input.mean"] == [0.1, 0.2, 0.3]
    assert m["meta_types"]["input.std"] == eexfile.T_F64S
    assert m["meta"]["producer"].startswith("eex-convert")

    # and the whole graph computes what the unfused ONNX graph meant
    x = rand(2, 3, 6, 7)
    y = eexref.run(m, x)["y"]
    bn = (conv_nchw(x, w, cb, 1) - p["m"].reshape(1, -1, 1, 1)) * \
        scale.reshape(1, -1, 1, 1) + p["b"].reshape(1, -1, 1, 1)
    np.testing.assert_allclose(y, np.maximum(bn, 0), rtol=1e-5, atol=1e-5)


@test
def conv_without_bias_folds_and_standalone_bn_becomes_mul_add():
    c = 4
    w, p1, p2 = rand(c, 1, 3, 3), bn_params(c), bn_params(c)
    inits = {"W": w, **p1, **{k + "2": v for k, v in p2.items()}}
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="dw", group=c,
                              strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"],
                              name="bn1"),
             helper.make_node("MaxPool", ["n"], ["p"], name="pool", kernel_shape=[2, 2]),
             helper.make_node("BatchNormalization", ["p", "s2", "b2", "m2", "v2"], ["y"],
                              name="bn2")]
    m, _ = convert(make_model(nodes, inits, ["N", c, 9, 9]), "dwbn")
    assert [n["op"] for n in m["nodes"]] == ["conv", "maxpool", "mul", "add"], m["nodes"]
    assert m["nodes"][0]["attrs"]["group"] == c
    for n in m["nodes"][2:]:
        assert m["tensors"][n["inputs"][1]]["dims"] == [1, c, 1, 1]


@test
def fusions_and_standalone_activations():
    c = 3
    inits = {"W": rand(c, c, 1, 1), "W2": rand(c, c, 1, 1), "lo": np.float32(0),
             "hi": np.float32(6)}
    nodes = [
        # conv -> Clip(0, 6) fuses as act clip
        helper.make_node("Conv", ["x", "W"], ["c1"], name="c1"),
        helper.make_node("Clip", ["c1", "lo", "hi"], ["r6"], name="relu6"),
        # conv -> x * HardSigmoid(x, 1/6, 1/2) becomes hardswish, then fuses
        helper.make_node("Conv", ["r6", "W2"], ["c2"], name="c2"),
        helper.make_node("HardSigmoid", ["c2"], ["hs"], name="hsig", alpha=1 / 6),
        helper.make_node("Mul", ["c2", "hs"], ["hsw"], name="hsw"),
        # add whose output is read twice: its relu stays standalone
        helper.make_node("Add", ["hsw", "r6"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["ra"], name="relu_a"),
        helper.make_node("Identity", ["a"], ["a_id"], name="ident"),
        helper.make_node("Dropout", ["ra"], ["rd"], name="drop"),
        helper.make_node("Add", ["rd", "a_id"], ["y"], name="add2"),
    ]
    m, _ = convert(make_model(nodes, inits, ["N", c, 4, 4], opset=13), "fuse")
    ops = [(n["op"], n["attrs"].get("act", "none")) for n in m["nodes"]]
    assert ops == [("conv", "clip"), ("conv", "hardswish"), ("add", "none"),
                   ("relu", "none"), ("add", "none")], ops
    a = m["nodes"][0]["attrs"]
    assert (a["act_min"], a["act_max"]) == (0.0, 6.0), a
    x = rand(2, c, 4, 4)
    c1 = np.clip(np.einsum("oc,nchw->nohw", inits["W"][:, :, 0, 0], x), 0, 6)
    c2 = np.einsum("oc,nchw->nohw", inits["W2"][:, :, 0, 0], c1)
    hsw = c2 * np.clip(c2 / 6 + 0.5, 0, 1)
    add = hsw + c1
    np.testing.assert_allclose(eexref.run(m, x)["y"], np.maximum(add, 0) + add,
                               rtol=1e-5, atol=1e-5)


@test
def silu_fusion_and_standalone():
    """Mul(x, Sigmoid(x)) (torch's SiLU export) -> silu, fused into the conv
    before it when that conv's output has no other reader; standalone silu
    otherwise; a Sigmoid read twice stays as it is."""
    c = 3
    inits = {"W": rand(c, c, 1, 1), "W2": rand(c, c, 1, 1)}
    nodes = [
        # graph input -> Mul(Sigmoid(x), x), operands swapped: standalone silu
        helper.make_node("Sigmoid", ["x"], ["sx"], name="sig_x"),
        helper.make_node("Mul", ["sx", "x"], ["s0"], name="silu_x"),
        # conv -> silu: fused
        helper.make_node("Conv", ["s0", "W"], ["c1"], name="c1"),
        helper.make_node("Sigmoid", ["c1"], ["s1"], name="sig1"),
        helper.make_node("Mul", ["c1", "s1"], ["a1"], name="silu1"),
        # conv whose output is also added below: its silu stays standalone
        helper.make_node("Conv", ["a1", "W2"], ["c2"], name="c2"),
        helper.make_node("Sigmoid", ["c2"], ["s2"], name="sig2"),
        helper.make_node("Mul", ["c2", "s2"], ["a2"], name="silu2"),
        helper.make_node("Add", ["a2", "c2"], ["a3"], name="add"),
        # a sigmoid read twice: no rewrite
        helper.make_node("Sigmoid", ["a3"], ["s3"], name="sig3"),
        helper.make_node("Mul", ["a3", "s3"], ["m3"], name="mul3"),
        helper.make_node("Add", ["m3", "s3"], ["y"], name="add3"),
    ]
    m, path = convert(make_model(nodes, inits, ["N", c, 4, 4], opset=13), "silu")
    ops = [(n["op"], n["attrs"].get("act", "none")) for n in m["nodes"]]
    assert ops == [("silu", "none"), ("conv", "silu"), ("conv", "none"), ("silu", "none"),
                   ("add", "none"), ("sigmoid", "none"), ("mul", "none"), ("add", "none")], ops
    x = rand(2, c, 4, 4) * 40  # past e^-x's float range for some elements

    def silu(v):
        return v / (1 + np.exp(-v.astype(np.float64)))
    conv = lambda w, v: np.einsum("oc,nchw->nohw", w[:, :, 0, 0], v)  # noqa: E731
    a1 = silu(conv(inits["W"], silu(x)))
    c2 = conv(inits["W2"], a1)
    a3 = silu(c2) + c2
    s3 = 1 / (1 + np.exp(-a3))
    with np.errstate(over="ignore"):
        got = eexref.run(m, x)["y"]
    np.testing.assert_allclose(got, a3 * s3 + s3, rtol=1e-5, atol=1e-4)
    got = run_engine(path, x, "silu")  # the C engine: fused epilogue and unary silu
    if got is not None:
        np.testing.assert_allclose(got, a3 * s3 + s3, rtol=1e-5, atol=1e-4)


@test
def dense_broadcast_reshape_softmax():
    inits = {"Wg": rand(6, 12), "Bg": rand(6), "Wm": rand(6, 5), "Bm": rand(5),
             "cs": rand(1, 3, 1, 1), "sc": np.float32(0.5), "shape": np.array([0, -1])}
    nodes = [
        helper.make_node("Mul", ["cs", "x"], ["m1"], name="chan_scale"),
        helper.make_node("GlobalAveragePool", ["m1"], ["g"], name="gap"),
        helper.make_node("Sigmoid", ["g"], ["sg"], name="sig"),
        helper.make_node("Mul", ["m1", "sg"], ["se"], name="se"),      # [N,C,H,W]*[N,C,1,1]
        helper.make_node("AveragePool", ["se"], ["ap"], name="ap", kernel_shape=[2, 2],
                         strides=[2, 2], pads=[0, 0, 1, 1], count_include_pad=1),
        helper.make_node("Reshape", ["ap", "shape"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "Wg", "Bg"], ["d1"], name="fc1", transB=1),
        helper.make_node("Mul", ["d1", "sc"], ["d2"], name="half"),
        helper.make_node("MatMul", ["d2", "Wm"], ["d3"], name="fc2"),
        helper.make_node("Add", ["d3", "Bm"], ["d4"], name="fc2_bias"),
        helper.make_node("Softmax", ["d4"], ["y"], name="sm"),
    ]
    m, _ = convert(make_model(nodes, inits, ["N", 3, 3, 3]), "dense")
    ops = [n["op"] for n in m["nodes"]]
    assert ops == ["mul", "globalavgpool", "sigmoid", "mul", "avgpool", "flatten",
                   "dense", "mul", "dense", "softmax"], ops
    t = m["tensors"]
    assert t[m["nodes"][0]["inputs"][1]]["dims"] == [1, 3, 1, 1]
    assert t[m["nodes"][7]["inputs"][1]]["dims"] == []               # scalar
    fc2 = m["nodes"][8]
    assert t[fc2["inputs"][1]]["dims"] == [5, 6] and len(fc2["inputs"]) == 3
    np.testing.assert_array_equal(t[fc2["inputs"][1]]["data"], inits["Wm"].T)
    x = rand(2, 3, 3, 3)
    m1 = inits["cs"] * x
    se = m1 / (1 + np.exp(-m1.mean(axis=(2, 3), keepdims=True)))
    pad = np.pad(se, ((0, 0), (0, 0), (0, 1), (0, 1)))
    ap = pad.reshape(2, 3, 2, 2, 2, 2).mean(axis=(3, 5))
    d = (ap.reshape(2, -1) @ inits["Wg"].T + inits["Bg"]) * 0.5
    d = d @ inits["Wm"] + inits["Bm"]
    e = np.exp(d - d.max(axis=1, keepdims=True))
    np.testing.assert_allclose(eexref.run(m, x)["y"], e / e.sum(axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-6)


@test
def labels_are_stored():
    path = os.path.join(TMP, "labels.txt")
    with open(path, "w") as f:
        f.write("cat\ndog\nbird\n")
    nodes = [helper.make_node("Gemm", ["x", "W"], ["y"], name="fc")]
    m, _ = convert(make_model(nodes, {"W": rand(4, 3)}, ["N", 4]), "labels",
                   "--labels", path)
    assert m["meta"]["labels"] == ["cat", "dog", "bird"]
    rc, err = run_convert(os.path.join(TMP, "labels.onnx"), "-o",
                          os.path.join(TMP, "l2.eex"), "--labels", path, "--mean", "1,2")
    assert rc != 0 and "mean" in err


# ----------------------------------------------------------------------------- (c) writer

def small_writer():
    w = eexfile.EexWriter()
    w.add_metadata("model.name", "m")
    w.add_tensor("W", np.ones((2, 2), np.float32))
    w.set_inputs([("x", [7, 2])])
    w.set_outputs(["y"])
    w.add_node("dense", "fc", ["x", "W"], ["y"])
    return w


def expect_eex_error(fn, what):
    try:
        fn()
    except eexfile.EexError:
        return
    raise AssertionError(f"no EexError for {what}")


@test
def writer_refuses_calls_out_of_order():
    w = eexfile.EexWriter()
    w.add_tensor("W", np.ones(3, np.float32))
    expect_eex_error(lambda: w.add_metadata("k", 1), "metadata after a tensor")
    w.set_inputs([("x", [1, 3])])
    expect_eex_error(lambda: w.add_tensor("W2", np.ones(3)), "tensor after inputs")
    expect_eex_error(lambda: w.set_inputs([("z", [1])]), "set_inputs twice")
    expect_eex_error(lambda: w.add_node("relu", "r", ["x"], ["y"]), "node before outputs")

    w = eexfile.EexWriter()
    expect_eex_error(lambda: w.set_outputs(["y"]), "outputs before inputs")
    expect_eex_error(lambda: w.write(os.path.join(TMP, "empty.eex")), "write with no graph")

    w = small_writer()
    expect_eex_error(lambda: w.set_outputs(["y"]), "outputs after a node")
    expect_eex_error(lambda: w.add_tensor("B", np.ones(2)), "tensor after a node")
    w.write(os.path.join(TMP, "small.eex"))
    expect_eex_error(lambda: w.add_node("relu", "r", ["y"], ["z"]), "node after write")
    expect_eex_error(lambda: w.write(os.path.join(TMP, "again.eex")), "write twice")
    m = eexfile.read_eex(os.path.join(TMP, "small.eex"))
    assert m["inputs"] == [("x", [1, 2])], m["inputs"]   # batch stored as 1


@test
def writer_refuses_bad_graphs():
    def w0():
        w = eexfile.EexWriter()
        w.add_tensor("W", np.ones((2, 2), np.float32))
        w.set_inputs([("x", [1, 2])])
        w.set_outputs(["y"])
        return w
    expect_eex_error(lambda: w0().add_node("lstm", "l", ["x"], ["y"]), "unknown op")
    expect_eex_error(lambda: w0().add_node("relu", "r", ["q"], ["y"]), "undefined input")
    expect_eex_error(lambda: w0().add_node("relu", "r", ["x"], ["W"]), "output = tensor")
    expect_eex_error(lambda: w0().add_node("relu", "r", ["x"], ["y"], {"alpha": 1.0}),
                     "unknown attribute")
    expect_eex_error(lambda: w0().add_node("dense", "d", ["x", "W"], ["y"], {"act": "tanh"}),
                     "unknown act")
    w = w0()
    w.add_node("relu", "r", ["x"], ["z"])
    expect_eex_error(lambda: w.add_node("relu", "r", ["z"], ["y"]), "duplicate node name")
    expect_eex_error(lambda: w.write(os.path.join(TMP, "noout.eex")), "output never made")


# ----------------------------------------------------------------------------- (d) file

@test
def crc_alignment_and_layout():
    w = eexfile.EexWriter()
    w.add_metadata("x.odd", "abc")
    for i, n in enumerate((3, 17, 1, 40)):
        w.add_tensor(f"t{i}", np.arange(n, dtype=np.float32))
    w.set_inputs([("x", [1, 40])])
    w.set_outputs(["y"])
    w.add_node("relu", "r", ["x"], ["y"])
    path = os.path.join(TMP, "layout.eex")
    size = w.write(path)
    buf = open(path, "rb").read()
    assert len(buf) == size
    h = struct.unpack_from("<8sIIQQQQQQQQQII", buf)
    (magic, ver, hsize, fsize, moff, msize, toff, tsize, goff, gsize, doff, dsize,
     crc, res) = h
    assert (magic, ver, hsize, fsize, res) == (b"EEXMODEL", 1, 96, len(buf), 0), h
    assert crc == zlib.crc32(buf[96:]) & 0xFFFFFFFF
    assert moff == 96 and moff + msize <= toff and toff + tsize <= goff
    assert goff + gsize <= doff and doff % 64 == 0 and doff + dsize == len(buf)
    assert not any(buf[goff + gsize:doff])
    m = eexfile.read_eex(path)
    for i, n in enumerate((3, 17, 1, 40)):
        t = m["tensors"][f"t{i}"]
        assert (doff + t["offset"]) % 64 == 0 and t["nbytes"] == 4 * n
        np.testing.assert_array_equal(t["data"], np.arange(n, dtype=np.float32))

    bad = bytearray(buf)
    bad[doff + 5] ^= 1
    expect_eex_error(lambda: eexfile.read_eex(bytes(bad)), "flipped data bit")
    bad = bytearray(buf)
    bad[8] = 2
    try:
        eexfile.read_eex(bytes(bad))
        raise AssertionError("newer version accepted")
    except eexfile.EexError as e:
        assert "newer" in str(e), e
    expect_eex_error(lambda: eexfile.read_eex(buf[:-1]), "truncated file")


@test
def converted_file_crc_and_alignment():
    _, path = convert(make_model([helper.make_node("Conv", ["x", "W", "B"], ["y"],
                                                   name="c")],
                                 {"W": rand(3, 3, 3, 3), "B": rand(3)}, ["N", 3, 5, 5]),
                      "crc")
    buf = open(path, "rb").read()
    doff = struct.unpack_from("<Q", buf, 72)[0]
    assert struct.unpack_from("<I", buf, 88)[0] == zlib.crc32(buf[96:]) & 0xFFFFFFFF
    assert doff % 64 == 0
    for t in eexfile.read_eex(path)["tensors"].values():
        assert (doff + t["offset"]) % 64 == 0


# ----------------------------------------------------------------------------- main

# ----------------------------------------------------------------------------- (d) zoo ops

EEX_BIN = os.path.join(HERE, "..", "..", os.environ.get("BUILD", "build"), "eex")


def run_engine(path, x, stem):
    """Runs a converted one-input model in build/eex; None when it is not built."""
    if not os.access(EEX_BIN, os.X_OK):
        return None
    src, dst = os.path.join(TMP, stem + "_in.npy"), os.path.join(TMP, stem + "_out.npy")
    np.save(src, x)
    r = subprocess.run([EEX_BIN, "run", path, "--input", src, "--output", dst],
                       stderr=subprocess.PIPE, text=True)
    assert r.returncode == 0, r.stderr
    return np.load(dst)


def const(name, v):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
        np.asarray(v), name))


@test
def pads_fold_into_conv_and_avgpool():
    nodes = [const("p", np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64)),
             helper.make_node("Pad", ["x", "p"], ["xp"], name="pad_c"),
             helper.make_node("Conv", ["xp", "W"], ["c"], name="conv", pads=[1, 0, 0, 1]),
             const("q", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
             helper.make_node("Pad", ["c", "q"], ["cp"], name="pad_a"),
             helper.make_node("AveragePool", ["cp"], ["y"], name="pool", kernel_shape=[3, 3])]
    w = rand(4, 3, 3, 3)
    m, path = convert(make_model(nodes, {"W": w}, ["N", 3, 6, 6]), "padfold")
    ops = [n["op"] for n in m["nodes"]]
    assert ops == ["conv", "avgpool"], ops
    assert list(one_node(m, "conv")["attrs"]["pads"]) == [2, 2, 1, 1]
    pool = one_node(m, "avgpool")["attrs"]
    assert list(pool["pads"]) == [1, 1, 1, 1] and pool["count_include_pad"] == 1, pool
    x = rand(2, 3, 6, 6)
    got = run_engine(path, x, "padfold")
    if got is not None:
        xp = np.pad(x, ((0, 0), (0, 0), (2, 1), (2, 1)))   # pads [2, 2, 1, 1]
        c = conv_nchw(xp, w, np.zeros(4, np.float32), 0)
        cp = np.pad(c, ((0, 0), (0, 0), (1, 1), (1, 1)))
        want = np.zeros((2, 4, cp.shape[2] - 2, cp.shape[3] - 2))
        for i in range(3):
            for j in range(3):
                want += cp[:, :, i:i + want.shape[2], j:j + want.shape[3]] / 9
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # a non-zero pad before a max pool cannot fold: it stays an op
    nodes = [const("p", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
             const("v", np.array(1.5, np.float32)),
             helper.make_node("Pad", ["x", "p", "v"], ["xp"], name="pad_m"),
             helper.make_node("MaxPool", ["xp"], ["y"], name="mp", kernel_shape=[2, 2])]
    m, path = convert(make_model(nodes, {}, ["N", 3, 4, 4]), "padkeep")
    assert [n["op"] for n in m["nodes"]] == ["pad", "maxpool"], m["nodes"]
    x = rand(1, 3, 4, 4)
    got = run_engine(path, x, "padkeep")
    if got is not None:
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=1.5)
        want = np.max([xp[:, :, i:i + 5, j:j + 5] for i in (0, 1) for j in (0, 1)], axis=0)
        np.testing.assert_array_equal(got, want)


@test
def gelu_pattern_and_layernorm_pattern_fuse():
    import math
    nodes = [const("r2", np.array(math.sqrt(2), np.float32)), const("one", np.array(1.0, np.float32)),
             const("half", np.array(0.5, np.float32)),
             helper.make_node("Div", ["x", "r2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["x", "a"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["y"])]
    m, path = convert(make_model(nodes, {}, ["N", 7]), "gelu")
    assert [n["op"] for n in m["nodes"]] == ["gelu"], m["nodes"]
    x = rand(3, 7) * 3
    got = run_engine(path, x, "gelu")
    if got is not None:
        want = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # the layer norm torch writes below opset 17, over an NHWC permutation
    g, b = rand(5), rand(5)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("ReduceMean", ["t"], ["mu"], axes=[-1]),
             helper.make_node("Sub", ["t", "mu"], ["d"]),
             const("two", np.array(2.0, np.float32)), helper.make_node("Pow", ["d", "two"], ["p"]),
             helper.make_node("ReduceMean", ["p"], ["v"], axes=[-1]),
             const("eps", np.array(1e-6, np.float32)), helper.make_node("Add", ["v", "eps"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["s"]), helper.make_node("Div", ["d", "s"], ["n"]),
             helper.make_node("Mul", ["n", "g"], ["gn"]), helper.make_node("Add", ["gn", "b"], ["o"]),
             helper.make_node("Transpose", ["o"], ["y"], perm=[0, 3, 1, 2])]
    m, path = convert(make_model(nodes, {"g": g, "b": b}, ["N", 5, 3, 4]), "lnpat")
    assert [n["op"] for n in m["nodes"]] == ["layernorm"], m["nodes"]
    x = rand(2, 5, 3, 4) + 2
    got = run_engine(path, x, "lnpat")
    if got is not None:
        mu, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
        want = (x - mu) / np.sqrt(var + 1e-6) * g[None, :, None, None] + b[None, :, None, None]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@test
def channel_shuffle_and_split():
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[2, 4]),
             helper.make_node("Relu", ["a"], ["ra"]),
             helper.make_node("Concat", ["ra", "b"], ["c"], axis=1),
             const("s5", np.array([1, 2, 3, 3, 2], np.int64)),
             helper.make_node("Reshape", ["c", "s5"], ["r5"]),
             helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
             const("s4", np.array([-1, 6, 3, 2], np.int64)),
             helper.make_node("Reshape", ["t5", "s4"], ["y"])]
    m, path = convert(make_model(nodes, {}, ["N", 6, 3, 2], opset=11), "shuffle")
    ops = sorted(n["op"] for n in m["nodes"])
    assert ops == ["concat", "relu", "shuffle", "slice", "slice"], ops
    x = rand(2, 6, 3, 2)
    got = run_engine(path, x, "shuffle")
    if got is not None:
        c = np.concatenate([np.maximum(x[:, :2], 0), x[:, 2:]], axis=1)
        want = c.reshape(2, 2, 3, 3, 2).transpose(0, 2, 1, 3, 4).reshape(2, 6, 3, 2)
        np.testing.assert_array_equal(got, want)


@test
def zoo_refusals_name_what_and_where():
    nodes = [helper.make_node("Transpose", ["x"], ["y"], name="tr_hw", perm=[0, 1, 3, 2])]
    expect_refusal(make_model(nodes, {}, ["N", 3, 4, 5]), "tr_hw", "'Transpose'", "'tr_hw'",
                   "perm [0, 1, 3, 2]")
    nodes = [const("p", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
             helper.make_node("Pad", ["x", "p"], ["y"], name="pad_r", mode="reflect")]
    expect_refusal(make_model(nodes, {}, ["N", 3, 4, 4]), "pad_r", "'Pad'", "'pad_r'", "reflect")
    nodes = [helper.make_node("Flatten", ["x"], ["y"], name="fl0", axis=0)]
    expect_refusal(make_model(nodes, {}, ["N", 3, 4, 4]), "fl0", "'Flatten'", "batch")



@test
def issue_avg_pool_pad_ceil_matches_torch():
    """F.avg_pool2d(x, 2, stride=2, padding=1, count_include_pad=True, ceil_mode=True):
    torch exports Pad + AveragePool; it converts to one avgpool equal to PyTorch's."""
    import warnings
    import torch
    warnings.filterwarnings("ignore")

    class M(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.avg_pool2d(x, 2, stride=2, padding=1,
                                                  count_include_pad=True, ceil_mode=True)
    for opset in (11, 13, 17):
        src = os.path.join(TMP, f"avgp{opset}.onnx")
        torch.onnx.export(M(), torch.zeros(1, 3, 7, 7), src, opset_version=opset,
                          input_names=["x"], dynamic_axes={"x": {0: "N"}})
        out = os.path.join(TMP, f"avgp{opset}.eex")
        rc, err = run_convert(src, "-o", out)
        assert rc == 0, err
        m = eexfile.read_eex(out)
        assert [n["op"] for n in m["nodes"]] == ["avgpool"], m["nodes"]
        x = rand(2, 3, 7, 7)
        got = run_engine(out, x, f"avgp{opset}")
        if got is not None:
            np.testing.assert_array_equal(got, M()(torch.from_numpy(x)).numpy())


def main():
    passed = failed = 0
    for fn in TESTS:
        try:
            fn()
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}")
            traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {fn.__name__}")
    print(f"{passed} passed, {failed} failed")
    if not failed:
        shutil.rmtree(TMP, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
