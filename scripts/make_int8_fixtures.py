#!/usr/bin/env python3
"""Quantized (int8) grouped and depthwise convolutions run in ONNX Runtime and LiteRT, for
gspc-runtime's int8 reference to be checked against (issue 13).

Usage (the peers venv has onnxruntime, ai-edge-litert and numpy; no TensorFlow is needed):

    /work/peers-venv/bin/python scripts/make_int8_fixtures.py [--out tests/fixtures/int8]

For each case below it makes random int8 data with a fixed seed (input, symmetric weights
in [-127, 127], int32 bias, per-channel weight scales, nonzero zero points, an output
scale that spreads the outputs over the int8 range), then runs:

- ``ort``: an ONNX model of one ``QLinearConv`` (group, pads, strides, per-channel
  ``w_scale``, int32 bias) followed by an int8 ``Clip`` to the activation's range (relu:
  ``[zero_point, 127]``; relu6: ``[zero_point, zero_point + round(6 / scale)]``, TFLite's
  formula); ONNX Runtime's CPU provider, all graph optimizations, one thread;
- ``ort_qdq``: the same layer in the QDQ format ONNX Runtime's ``quantize_static`` writes
  (``DequantizeLinear`` on input, per-channel weights and bias, a float ``Conv``, ``Relu``
  or ``Clip(0, 6)``, ``QuantizeLinear``), which ONNX Runtime fuses;
- ``litert_auto``, ``litert_builtin``, ``litert_ref``: a ``.tflite`` model of one
  ``DEPTHWISE_CONV_2D`` or ``CONV_2D`` (grouped: filter ``[O, KH, KW, I / groups]``) with
  the activation fused, written directly with the flatbuffer schema that ai-edge-litert
  ships (``ai_edge_litert.schema_py_generated``), run with LiteRT's default op resolver
  (XNNPACK delegate applied), the optimized built-in kernels without default delegates,
  and the reference kernels (``OpResolverType.BUILTIN_REF``).

TFLite has only SAME and VALID padding: every case uses SAME with shapes where SAME pads
one pixel on every side (3x3, stride 1; or stride 2 on an odd size), which is gspc's
symmetric ``padding: [1, 1]``.

Each case is written as ``<name>.json``: the layer (gspc spec fields), the quantization
parameters, the input (NCHW), weights (OIHW), bias, and each peer's output (NCHW), all
flattened. ``gspc-runtime/tests/int8_peers.rs`` reads them, runs ``quant::conv2d`` in both
requantization modes and checks that it is within 1 of every peer on every value, and
which mode matches which peer bit for bit. The files are small (about 60 KB in all) and
committed; rerunning the script rewrites them identically (fixed seeds), unless a peer
changes its results.
"""

import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper
import onnxruntime as ort
import flatbuffers
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter, OpResolverType

# name, in, out, groups, kernel, stride, input [H, W], activation, seed, ties
# `ties`: power-of-two scales, so that many accumulators land exactly on .5 after scaling
# (the two requantization modes round those differently).
CASES = [
    ("dw_s1_relu6", 8, 8, 8, 3, 1, [6, 6], "relu6", 1, False),
    ("dw_s2_relu", 8, 8, 8, 3, 2, [7, 7], "relu", 2, False),
    ("g4_s1_none", 16, 16, 4, 3, 1, [5, 5], "none", 3, False),
    ("g4_s2_relu", 16, 8, 4, 3, 2, [5, 5], "relu", 4, False),
    ("dw_s1_ties", 8, 8, 8, 3, 1, [6, 6], "none", 5, True),
    ("g2_s1_ties", 8, 8, 2, 3, 1, [5, 5], "relu", 6, True),
]


def round_half_away(v):
    return int(np.sign(v) * np.floor(np.abs(v) + 0.5))


def activation_range(act, out_scale, out_zp):
    """TFLite's CalculateActivationRangeQuantized for int8 (scale as f32)."""
    if act == "none":
        return -128, 127
    lo = max(-128, out_zp)
    if act == "relu":
        return lo, 127
    six = out_zp + round_half_away(float(np.float32(6.0) / np.float32(out_scale)))
    return lo, min(127, six)


def make_case(name, cin, cout, groups, k, stride, hw, act, seed, ties):
    rng = np.random.default_rng(seed)
    cpg = cin // groups
    in_zp = int(rng.integers(-20, 21))
    if ties:
        # Small inputs (around the zero point) and weights keep the accumulators small
        # enough for a multiplier of 2^-1 or 2^-2, so that a quarter of them are ties.
        x = (in_zp + rng.integers(-12, 13, size=(1, cin, hw[0], hw[1]))).astype(np.int8)
        w = rng.integers(-2, 3, size=(cout, cpg, k, k)).astype(np.int8)
    else:
        x = rng.integers(-128, 128, size=(1, cin, hw[0], hw[1]), dtype=np.int64).astype(np.int8)
        w = rng.integers(-127, 128, size=(cout, cpg, k, k), dtype=np.int64).astype(np.int8)
    out_zp = int(rng.integers(-30, 31)) if act != "relu6" else -128
    pad = 1
    oh = (hw[0] + 2 * pad - k) // stride + 1
    ow = (hw[1] + 2 * pad - k) // stride + 1
    # The accumulators without bias, in int64, to choose the scales from.
    xp = np.pad(x[0].astype(np.int64) - in_zp, ((0, 0), (pad, pad), (pad, pad)))
    acc = np.zeros((cout, oh, ow), dtype=np.int64)
    kpg = cout // groups
    for o in range(cout):
        g = o // kpg
        for c in range(cpg):
            ic = g * cpg + c
            for i in range(k):
                for j in range(k):
                    acc[o] += w[o, c, i, j] * xp[ic, i : i + stride * oh : stride, j : j + stride * ow : stride]
    spread = np.abs(acc).reshape(cout, -1).max(axis=1).astype(np.float64) + 1
    bias = rng.integers(-1, 2, size=cout) * rng.integers(0, 1, size=cout, endpoint=True)
    bias = (bias * (spread * rng.uniform(0.05, 0.3, size=cout))).astype(np.int32)
    if ties:
        # m = in * w / out = 2^-e exactly (in = 2^-7, w = 2^-8, out = 2^(e - 15)), e the
        # smallest of 1, 2, 3... that keeps acc * m mostly within +-128.
        bias = (bias // 8).astype(np.int32)
        top = float((np.abs(acc) + np.abs(bias)[:, None, None]).max())
        e = max(1, int(np.ceil(np.log2(top / 120.0))))
        in_scale = np.float32(2.0**-7)
        w_scales = np.float32(2.0**-8) * np.ones(cout, dtype=np.float32)
        out_scale = np.float32(2.0 ** (e - 15))
    else:
        in_scale = np.float32(rng.uniform(0.005, 0.05))
        w_scales = rng.uniform(0.5, 2.0, size=cout).astype(np.float32) * np.float32(0.004)
        real = (np.abs(acc) + np.abs(bias)[:, None, None]) * (in_scale * w_scales)[:, None, None]
        top = float(np.percentile(real, 97))
        if act == "relu6":
            # Real outputs reach about twice 6, so that the upper clamp is used.
            in_scale = np.float32(in_scale * 12.0 / top)
            out_scale = np.float32(6.0 / 180.0)
        else:
            out_scale = np.float32(top / 110.0)
    lo, hi = activation_range(act, out_scale, out_zp)
    return dict(
        name=name,
        in_channels=cin,
        out_channels=cout,
        groups=groups,
        kernel=[k, k],
        stride=[stride, stride],
        padding=[pad, pad],
        input=hw,
        output=[oh, ow],
        activation=act,
        input_scale=float(in_scale),
        input_zero_point=in_zp,
        output_scale=float(out_scale),
        output_zero_point=out_zp,
        weight_scales=[float(s) for s in w_scales],
        activation_range=[lo, hi],
        x=x,
        w=w,
        bias=bias.astype(np.int32),
    )


def _ort_common_inits(c):
    """Initializers both ONNX forms share: the scales and zero points, weights and bias."""
    cout = c["out_channels"]
    return [
        helper.make_tensor("x_scale", TensorProto.FLOAT, [], [c["input_scale"]]),
        helper.make_tensor("x_zp", TensorProto.INT8, [], [c["input_zero_point"]]),
        helper.make_tensor("w", TensorProto.INT8, list(c["w"].shape), c["w"].flatten().tolist()),
        helper.make_tensor("w_scale", TensorProto.FLOAT, [cout], c["weight_scales"]),
        helper.make_tensor("w_zp", TensorProto.INT8, [cout], [0] * cout),
        helper.make_tensor("y_scale", TensorProto.FLOAT, [], [c["output_scale"]]),
        helper.make_tensor("y_zp", TensorProto.INT8, [], [c["output_zero_point"]]),
        helper.make_tensor("b", TensorProto.INT32, [cout], c["bias"].tolist()),
    ]


def _ort_run(c, name, nodes, inits):
    """One graph x (int8 NCHW) -> nodes -> y (int8 NCHW), run on ONNX Runtime's CPU
    provider with every graph optimization, one thread."""
    oh, ow = c["output"]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.INT8, list(c["x"].shape))],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, c["out_channels"], oh, ow])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": c["x"]})[0]


def _conv_attrs(c):
    k = c["kernel"][0]
    return dict(group=c["groups"], kernel_shape=[k, k], pads=[1, 1, 1, 1], strides=c["stride"])


def run_ort(c):
    """QLinearConv, then an int8 Clip to the activation's range."""
    inits = _ort_common_inits(c) + [
        helper.make_tensor("lo", TensorProto.INT8, [], [c["activation_range"][0]]),
        helper.make_tensor("hi", TensorProto.INT8, [], [c["activation_range"][1]]),
    ]
    nodes = [
        helper.make_node(
            "QLinearConv",
            ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "b"],
            ["conv"],
            **_conv_attrs(c),
        ),
        helper.make_node("Clip", ["conv", "lo", "hi"], ["y"]),
    ]
    return _ort_run(c, c["name"], nodes, inits)


def run_ort_qdq(c):
    """The same layer as ONNX Runtime's quantization tools write it (QDQ format):
    DequantizeLinear on input, per-channel weights and int32 bias, a float Conv, Relu or
    Clip(0, 6), QuantizeLinear. ONNX Runtime fuses what it can into QLinearConv."""
    cout = c["out_channels"]
    bias_scales = [float(np.float32(c["input_scale"]) * np.float32(s)) for s in c["weight_scales"]]
    inits = _ort_common_inits(c) + [
        helper.make_tensor("b_scale", TensorProto.FLOAT, [cout], bias_scales),
        helper.make_tensor("b_zp", TensorProto.INT32, [cout], [0] * cout),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "x_scale", "x_zp"], ["xf"]),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zp"], ["wf"], axis=0),
        helper.make_node("DequantizeLinear", ["b", "b_scale", "b_zp"], ["bf"], axis=0),
        helper.make_node("Conv", ["xf", "wf", "bf"], ["conv"], **_conv_attrs(c)),
    ]
    act = c["activation"]
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["conv"], ["act"]))
    elif act == "relu6":
        inits.append(helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]))
        inits.append(helper.make_tensor("six", TensorProto.FLOAT, [], [6.0]))
        nodes.append(helper.make_node("Clip", ["conv", "zero", "six"], ["act"]))
    last = "conv" if act == "none" else "act"
    nodes.append(helper.make_node("QuantizeLinear", [last, "y_scale", "y_zp"], ["y"]))
    return _ort_run(c, c["name"] + "_qdq", nodes, inits)


def tflite_model(c):
    depthwise = c["groups"] == c["in_channels"] == c["out_channels"]
    cout = c["out_channels"]
    k = c["kernel"][0]
    oh, ow = c["output"]
    h, w_ = c["input"]

    def quant(scales, zps, dim=0):
        q = tfl.QuantizationParametersT()
        q.scale = [float(s) for s in scales]
        q.zeroPoint = [int(z) for z in zps]
        q.quantizedDimension = dim
        return q

    def tensor(name, shape, ttype, buffer, q):
        t = tfl.TensorT()
        t.name, t.shape, t.type, t.buffer, t.quantization = name, shape, ttype, buffer, q
        return t

    if depthwise:
        # [1, KH, KW, C]; per-channel along the last axis.
        filt = np.transpose(c["w"], (1, 2, 3, 0))
        fdim = 3
    else:
        # [O, KH, KW, I / groups].
        filt = np.transpose(c["w"], (0, 2, 3, 1))
        fdim = 0
    buffers = [tfl.BufferT() for _ in range(5)]  # 0: empty sentinel; 1 in; 2 filter; 3 bias; 4 out
    buffers[2].data = list(np.ascontiguousarray(filt).view(np.uint8).flatten())
    buffers[3].data = list(c["bias"].astype("<i4").view(np.uint8).flatten())
    ws = c["weight_scales"]
    bias_scales = [float(np.float32(c["input_scale"]) * np.float32(s)) for s in ws]
    tensors = [
        tensor("x", [1, h, w_, c["in_channels"]], tfl.TensorType.INT8, 1,
               quant([c["input_scale"]], [c["input_zero_point"]])),
        tensor("w", list(filt.shape), tfl.TensorType.INT8, 2, quant(ws, [0] * cout, fdim)),
        tensor("b", [cout], tfl.TensorType.INT32, 3, quant(bias_scales, [0] * cout)),
        tensor("y", [1, oh, ow, cout], tfl.TensorType.INT8, 4,
               quant([c["output_scale"]], [c["output_zero_point"]])),
    ]
    act = {"none": tfl.ActivationFunctionType.NONE, "relu": tfl.ActivationFunctionType.RELU,
           "relu6": tfl.ActivationFunctionType.RELU6}[c["activation"]]
    op = tfl.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0, 1, 2]
    op.outputs = [3]
    code = tfl.OperatorCodeT()
    if depthwise:
        opts = tfl.DepthwiseConv2DOptionsT()
        opts.depthMultiplier = 1
        op.builtinOptionsType = tfl.BuiltinOptions.DepthwiseConv2DOptions
        code.builtinCode = code.deprecatedBuiltinCode = tfl.BuiltinOperator.DEPTHWISE_CONV_2D
        code.version = 3
    else:
        opts = tfl.Conv2DOptionsT()
        op.builtinOptionsType = tfl.BuiltinOptions.Conv2DOptions
        code.builtinCode = code.deprecatedBuiltinCode = tfl.BuiltinOperator.CONV_2D
        code.version = 3
    opts.padding = tfl.Padding.SAME
    opts.strideH = opts.strideW = c["stride"][0]
    opts.dilationHFactor = opts.dilationWFactor = 1
    opts.fusedActivationFunction = act
    op.builtinOptions = opts
    sg = tfl.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, [0], [3], [op]
    sg.name = "main"
    model = tfl.ModelT()
    model.version = 3
    model.operatorCodes = [code]
    model.subgraphs = [sg]
    model.buffers = buffers
    model.description = "gspc int8 fixture " + c["name"]
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def run_litert(c, resolver):
    interp = Interpreter(model_content=tflite_model(c), experimental_op_resolver_type=resolver,
                         num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    interp.set_tensor(inp, np.ascontiguousarray(np.transpose(c["x"], (0, 2, 3, 1))))
    interp.invoke()
    return np.transpose(interp.get_tensor(out), (0, 3, 1, 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "int8"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for case in CASES:
        c = make_case(*case)
        peers = {"ort": run_ort(c), "ort_qdq": run_ort_qdq(c)}
        for key, res in [("litert_auto", OpResolverType.AUTO),
                         ("litert_builtin", OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES),
                         ("litert_ref", OpResolverType.BUILTIN_REF)]:
            try:
                peers[key] = run_litert(c, res)
            except Exception as e:  # a peer that cannot run a case is reported, not fatal
                print(f"{c['name']}: {key} failed: {e}", file=sys.stderr)
        doc = {k: v for k, v in c.items() if k not in ("x", "w", "bias")}
        doc["versions"] = {"onnxruntime": ort.__version__, "ai_edge_litert": _litert_version()}
        doc["x"] = c["x"].flatten().tolist()
        doc["w"] = c["w"].flatten().tolist()
        doc["bias"] = c["bias"].flatten().tolist()
        doc["peers"] = {k: v.flatten().astype(int).tolist() for k, v in peers.items()}
        path = os.path.join(args.out, c["name"] + ".json")
        with open(path, "w") as f:
            f.write(_dump(doc))
        diffs = {k: int(np.abs(v.astype(int) - peers["ort"].astype(int)).max()) for k, v in peers.items()}
        print(f"{path}: {c['x'].size} in, {peers['ort'].size} out; max |peer - ort| {diffs}")


def _litert_version():
    try:
        from importlib.metadata import version
        return version("ai-edge-litert")
    except Exception:
        return "unknown"


def _dump(doc):
    """JSON with each number array on one line (small diffs when a peer changes)."""
    lines = ["{"]
    items = list(doc.items())
    for i, (k, v) in enumerate(items):
        comma = "," if i + 1 < len(items) else ""
        if k == "peers":
            inner = ",\n".join(f"    {json.dumps(pk)}: {json.dumps(pv)}" for pk, pv in v.items())
            lines.append(f'  "peers": {{\n{inner}\n  }}{comma}')
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(v)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
