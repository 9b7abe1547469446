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
  formula; left out where that is the whole int8 range); ONNX Runtime's CPU provider,
  all graph optimizations, one thread;
- ``ort_qdq``: the same layer in the QDQ format ONNX Runtime's ``quantize_static`` writes
  (``DequantizeLinear`` on input, per-channel weights and bias, a float ``Conv``, ``Relu``
  or ``Clip(0, 6)``, ``QuantizeLinear``), which ONNX Runtime fuses;
- ``litert_auto``, ``litert_builtin``, ``litert_ref``: a ``.tflite`` model of one
  ``DEPTHWISE_CONV_2D`` or ``CONV_2D`` (grouped: filter ``[O, KH, KW, I / groups]``) with
  the activation fused, written directly with the flatbuffer schema that ai-edge-litert
  ships (``ai_edge_litert.schema_py_generated``), run with LiteRT's default op resolver
  (XNNPACK delegate applied), the optimized built-in kernels without default delegates,
  and the reference kernels (``OpResolverType.BUILTIN_REF``).

The models and sessions come from ``int8_models.py`` (shared with ``peers_int8.py``).

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
import onnxruntime as ort
from ai_edge_litert.interpreter import OpResolverType

from int8_models import (activation_range, litert_interpreter, litert_output, ort_session,
                         qdq_model, qlinearconv_model)

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


def run_ort(c):
    """QLinearConv, then an int8 Clip to the activation's range."""
    return ort_session(qlinearconv_model(c)).run(None, {"x": c["x"]})[0]


def run_ort_qdq(c):
    """The QDQ format, which ONNX Runtime fuses."""
    return ort_session(qdq_model(c)).run(None, {"x": c["x"]})[0]


def run_litert(c, resolver):
    interp = litert_interpreter(c, resolver)
    interp.invoke()
    return litert_output(interp)


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
