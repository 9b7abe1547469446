#!/usr/bin/env python3
"""Int8 peer timings for gspc's layer specs: ONNX Runtime and LiteRT (XNNPACK) on quantized
models of the same shapes (issue 13). The shared peer harness (../shared/peers/peers.py)
times f32 only; this is its int8 counterpart, with the same timing, the same JSON schema
(scripts/compare.py --int8 reads it) and its layer parsing, reference convolution and
timer imported from it (../shared/peers beside the repository, or $GSPC_PEERS_DIR, as for
compare.py).

Usage (in the peers' virtualenv, e.g. /work/peers-venv/bin/python):
  scripts/peers_int8.py SPEC.json [SPEC.json ...] [--threads N] [--repeat R] [--warmup W]
                        [--peers ort,litert] [--json OUT.json]

Per layer:
  ort          ONNX Runtime, CPU provider, all graph optimizations, intra-op threads = N,
               one inter-op thread, io_binding, NCHW in and out; the layer in the QDQ
               format ONNX Runtime's quantize_static writes by default on x86
               (DequantizeLinear on the input, per-channel int8 weights and int32 bias,
               float Conv, QuantizeLinear; the activation left to the output's quantization
               where that implies it) with uint8 activations: the int8 values plus 128 and
               zero points plus 128, the same arithmetic. ONNX Runtime fuses it into
               QLinearConv (uint8 x int8) at session creation.
  ort_s8       the same QDQ model with int8 activations (quantize_static's
               activation_type=QInt8). ONNX Runtime 1.32 does not fuse that on x86 and runs
               the float Conv between DequantizeLinear and QuantizeLinear. Not in the
               default set.
  ort_qlinear  the layer as one QLinearConv, int8 activations (int8 x int8 in MLAS). Not in
               the default set.
  litert       LiteRT (ai-edge-litert) interpreter, default op resolver (XNNPACK delegate),
               num_threads = N, a .tflite of one CONV_2D (grouped: filter in-channels
               C / groups) or DEPTHWISE_CONV_2D (groups == C), per-channel int8, int8 NHWC
               in and out. A layer XNNPACK does not take runs on LiteRT's built-in kernels
               and is marked 'b'.
The models come from int8_models.py (shared with make_int8_fixtures.py). Timing as
peers.py: --warmup runs, then the median (and min) of --repeat runs; one peer at a time.

Quantization: an int8 layer ("dtype": "int8") keeps its spec's parameters. An f32 layer
becomes an int8 layer of the same shape with fixed synthetic parameters (SYNTHETIC below):
input scale 0.02, zero point -3; weight scale of output channel k 0.004 * (0.75 + 0.5 * k /
(K - 1)); output scale 0.01 * sqrt(C / groups * KH * KW) (spreads the outputs over the int8
range), zero point 4; after relu, output zero point -128, and after relu6 also output scale
6 / 255, so that the output's quantization implies the activation, as a quantizer
calibrating the activation's output would make it. Bias: int32, uniform in +-2^14 if the
layer has one, else zeros (a bias tensor is always there, as in quantized models with
folded batch norm). Input and weights are uniform random int8 (weights in [-127, 127]),
fixed seed per layer.

Checks: each peer's output against a float64 reference (peers.py's, on the dequantized
tensors, then quantized with rounding half to even and clamped): within --tol (1) on every
value, else the layer is marked '!' and compare.py ignores its time; and ort against litert
on every layer where both pad the same way ("cross" in the JSON). TFLite has only SAME and
VALID padding: a layer whose symmetric padding is not TF SAME (stride 2 on an even size:
SAME pads 0 before, 1 after) runs with SAME and is checked against a reference with that
padding (same operations; marked '*'); a layer SAME cannot give at all is not run.

JSON (--json; peers.py's schema): model, spec, threads, repeat, warmup, seed, host,
versions, layers (with "flops" = 2 * MACs, the operations of GOP/s), results (per peer, per
layer: us, min_us, gflops (GOP/s here), max_abs_diff_ref, ok, note; or error), totals,
total_flops, cross, unavailable; plus dtype "int8" and each layer's quantization. With
several specs OUT must contain {model}, replaced by each spec's model name.
"""
import argparse
import json
import os
import platform
import sys

import numpy as np

from compare import PEERS
from int8_models import (activation_range, bias_scales, litert_interpreter, litert_output,
                         ort_session, qdq_model, qlinearconv_model)

if not os.path.exists(os.path.join(PEERS, "peers.py")):
    sys.exit(f"no peers.py in {PEERS}: set GSPC_PEERS_DIR to the shared peer harness")
sys.path.insert(0, PEERS)
from peers import norm_layer, ref_conv, tf_same_pads, time_fn  # noqa: E402  (../shared/peers)

ALL_PEERS = ["ort", "ort_s8", "ort_qlinear", "litert"]
DEFAULT_PEERS = ["ort", "litert"]
SYNTHETIC = dict(requantization="fp32", input_scale=0.02, input_zero_point=-3,
                 output_zero_point=4, weight_scale=0.004, output_scale_per_sqrt_fan_in=0.01)


def quantization(l):
    """The layer's quantization parameters: its own if it is int8, else SYNTHETIC's; the
    scales rounded to f32, as every peer (and gspc) holds them."""
    K = l["out_channels"]
    if l.get("dtype") == "int8":
        q = dict(l["quantization"])
        ws = q["weight_scales"]
        q["weight_scales"] = ws if isinstance(ws, list) else [ws] * K
    else:
        s = SYNTHETIC
        fan_in = l["in_channels"] // l["groups"] * l["kernel"][0] * l["kernel"][1]
        act = l["activation"]
        q = dict(requantization=s["requantization"], input_scale=s["input_scale"],
                 input_zero_point=s["input_zero_point"],
                 output_scale=(6.0 / 255.0 if act == "relu6"
                               else s["output_scale_per_sqrt_fan_in"] * float(np.sqrt(fan_in))),
                 output_zero_point=s["output_zero_point"] if act == "none" else -128,
                 weight_scales=[s["weight_scale"] * (0.75 + 0.5 * k / max(K - 1, 1)) for k in range(K)])
    for k in ("input_scale", "output_scale"):
        q[k] = float(np.float32(q[k]))
    q["weight_scales"] = [float(np.float32(v)) for v in q["weight_scales"]]
    return q


def int8_layer(l, seed):
    """The layer dict of int8_models.py: l's fields, its quantization and random data."""
    rng = np.random.default_rng(seed)
    C, K, G = l["in_channels"], l["out_channels"], l["groups"]
    kh, kw = l["kernel"]
    H, W = l["input"]
    q = quantization(l)
    c = dict(l, **{k: v for k, v in q.items() if k != "requantization"})
    c["quantization"] = q
    c["activation_range"] = activation_range(l["activation"], q["output_scale"], q["output_zero_point"])
    c["x"] = rng.integers(-128, 128, (1, C, H, W)).astype(np.int8)
    c["w"] = rng.integers(-127, 128, (K, C // G, kh, kw)).astype(np.int8)
    c["bias"] = (rng.integers(-2**14, 2**14 + 1, K) if l["bias"] else np.zeros(K)).astype(np.int32)
    return c


def reference(c, pads):
    """float64 reference on the dequantized tensors, quantized (half to even) and clamped."""
    x = (c["x"][0].astype(np.float64) - c["input_zero_point"]) * c["input_scale"]
    ws = np.array(c["weight_scales"], np.float64)
    w = c["w"].astype(np.float64) * ws[:, None, None, None]
    b = c["bias"] * np.array(bias_scales(c), np.float64)
    y = np.rint(ref_conv(x, w, b, c, pads) / c["output_scale"]) + c["output_zero_point"]
    return np.clip(y, *c["activation_range"])


# ------------------------------------------------------------------------------ peers
class OrtPeer:
    name = "ort"
    form, uint8 = "QDQ", True

    def __init__(self, threads):
        import onnx
        import onnxruntime as ort
        self.ort, self.threads = ort, threads
        self.version = (f"onnxruntime {ort.__version__}, onnx {onnx.__version__} "
                        f"({self.form}, {'uint8' if self.uint8 else 'int8'} activations)")

    def build(self, c):
        ort = self.ort
        model = (qdq_model if self.form == "QDQ" else qlinearconv_model)(c, self.uint8)
        sess = ort_session(model, self.threads)
        Ho, Wo = c["output"]
        # uint8: the same values plus 128 (the zero points too), i.e. the sign bit flipped.
        dtype, flip = (np.uint8, 0x80) if self.uint8 else (np.int8, 0)
        xo = ort.OrtValue.ortvalue_from_numpy(c["x"].view(dtype) ^ dtype(flip))
        yo = ort.OrtValue.ortvalue_from_shape_and_type([1, c["out_channels"], Ho, Wo], dtype)
        bind = sess.io_binding()
        bind.bind_ortvalue_input("x", xo)
        bind.bind_ortvalue_output("y", yo)
        keep = (sess, xo, yo, bind)
        ph, pw = c["padding"]

        def run():
            sess.run_with_iobinding(bind)

        def get():
            return (keep, (yo.numpy()[0] ^ dtype(flip)).view(np.int8))[1]
        return run, get, (ph, ph, pw, pw), None


class OrtS8Peer(OrtPeer):
    name = "ort_s8"
    uint8 = False


class OrtQLinearPeer(OrtPeer):
    name = "ort_qlinear"
    form, uint8 = "QLinearConv", False


class LitertPeer:
    name = "litert"

    def __init__(self, threads):
        from importlib.metadata import version
        from ai_edge_litert.interpreter import OpResolverType
        self.resolver, self.threads = OpResolverType.AUTO, threads
        self.version = f"ai-edge-litert {version('ai-edge-litert')} (op resolver AUTO: XNNPACK)"

    def build(self, c):
        kh, kw = c["kernel"]
        sh, sw = c["stride"]
        dh, dw = c["dilation"]
        ph, pw = c["padding"]
        pt, pb, Ho = tf_same_pads(c["input"][0], kh, sh, dh)
        pl, pr, Wo = tf_same_pads(c["input"][1], kw, sw, dw)
        if ph == pw == 0:
            padding, pads, note = "VALID", (0, 0, 0, 0), None
        elif [Ho, Wo] == c["output"]:
            padding, pads = "SAME", (pt, pb, pl, pr)
            note = None if pads == (ph, ph, pw, pw) else "*"
        else:
            raise ValueError(f"TFLite has only SAME and VALID padding: SAME gives {Ho}x{Wo}, "
                             f"padding {c['padding']} gives {c['output'][0]}x{c['output'][1]}")
        it = litert_interpreter(c, self.resolver, self.threads, padding)
        if not any(op["op_name"] == "DELEGATE" for op in it._get_ops_details()):
            note = (note or "") + "b"
        return it.invoke, lambda: litert_output(it)[0].copy(), pads, note


PEER_CLASSES = {p.name: p for p in (OrtPeer, OrtS8Peer, OrtQLinearPeer, LitertPeer)}


# ------------------------------------------------------------------------------- main
def bench_spec(path, peers, failed, args):
    with open(path) as f:
        spec = json.load(f)
    layers = [norm_layer(l) for l in spec["layers"]]
    data = [int8_layer(l, args.seed + i) for i, l in enumerate(layers)]
    refs, res, outs = {}, {p.name: [] for p in peers}, {p.name: [] for p in peers}
    for p in peers:  # one peer at a time, so thread pools of peers don't overlap
        for i, c in enumerate(data):
            entry = {"layer": c["name"]}
            try:
                run, get, pads, note = p.build(c)
                run()
                y = get()
                key = (i, tuple(pads))
                if key not in refs:
                    refs[key] = reference(c, pads)
                med, mn = time_fn(run, args.warmup, args.repeat)
                err = float(np.max(np.abs(y.astype(np.float64) - refs[key])))
                entry.update(us=med, min_us=mn, gflops=c["flops"] / med / 1e3,
                             max_abs_diff_ref=err, ok=err <= args.tol, note=note)
                outs[p.name].append((key, y))
            except Exception as e:
                entry.update(error=f"{type(e).__name__}: {e}"[:300])
                outs[p.name].append((None, None))
            res[p.name].append(entry)

    cross, names = {}, [p.name for p in peers]
    for a, pa in enumerate(names):
        for pc in names[a + 1:]:
            d = [float(np.max(np.abs(ya.astype(np.int32) - yc)))
                 for (ka, ya), (kc, yc) in zip(outs[pa], outs[pc]) if ka is not None and ka == kc]
            if d:
                cross[f"{pa}~{pc}"] = {"max_abs_diff": max(d), "layers": len(d)}

    tot_ops = sum(l["flops"] * l["count"] for l in layers)
    totals = {}
    for pn, es in res.items():
        if all("us" in e for e in es):
            t = sum(e["us"] * l["count"] for e, l in zip(es, layers))
            totals[pn] = {"us": t, "gflops": tot_ops / t / 1e3, "pct_peak": None}

    print(f"# model {spec['model']} int8  threads={args.threads}  repeat={args.repeat} "
          f"warmup={args.warmup}  seed={args.seed}")
    print("# versions: " + "; ".join(p.version for p in peers) + f"; numpy {np.__version__}")
    hdr = f"{'layer':<24}{'CxK/G':>14}{'HxW s':>8}{'cnt':>4}{'MOP':>8}"
    print(hdr + "".join(f" | {pn + ' us':>15}{'GOP/s':>7}" for pn in names))
    for i, l in enumerate(layers):
        row = (f"{l['name'][:23]:<24}{'%dx%d/%d' % (l['in_channels'], l['out_channels'], l['groups']):>14}"
               f"{'%d s%d' % (l['input'][0], l['stride'][0]):>8}{l['count']:>4}{l['flops'] / 1e6:>8.1f}")
        for pn in names:
            e = res[pn][i]
            if "us" in e:
                flag = (e["note"] or "") + ("" if e["ok"] else "!")
                row += f" | {flag:>2}{e['us']:>13.1f}{e['gflops']:>7.1f}"
            else:
                row += f" | {'ERR':>15}{'':>7}"
        print(row)
    row = f"{'TOTAL (x count)':<24}{'':>22}{sum(l['count'] for l in layers):>4}{tot_ops / 1e6:>8.1f}"
    for pn in names:
        tt = totals.get(pn)
        row += f" | {tt['us']:>15.1f}{tt['gflops']:>7.1f}" if tt else f" | {'n/a':>15}{'':>7}"
    print(row)
    for pn in names:
        errs = [f"{e['layer']}: {e['error']}" for e in res[pn] if "error" in e]
        mx = max([e["max_abs_diff_ref"] for e in res[pn] if "us" in e], default=float("nan"))
        print(f"# {pn}: max |output - reference| = {mx:g}"
              + (f"; {len(errs)} layer(s) not run: " + "; ".join(errs) if errs else ""))
    for k, v in cross.items():
        print(f"# cross {k}: max |difference| {v['max_abs_diff']:g} over {v['layers']} layers")
    print("# '*' = TFLite SAME padding (0 before/1 after) instead of symmetric; same operations,"
          " checked against a reference with that padding; 'b' = not delegated to XNNPACK;"
          " '!' = off the reference by more than --tol")
    for pn, msg in failed.items():
        print(f"# peer {pn} unavailable: {msg}")
    return {"model": spec["model"], "spec": os.path.basename(path), "dtype": "int8",
            "threads": args.threads, "repeat": args.repeat, "warmup": args.warmup,
            "seed": args.seed, "peak_gflops": None, "peak_desc": None,
            "host": {"machine": platform.machine(), "python": platform.python_version(),
                     "cpu_count": os.cpu_count()},
            "versions": {p.name: p.version for p in peers} | {"numpy": np.__version__},
            "layers": [{k: l[k] for k in ("name", "in_channels", "out_channels", "groups",
                                          "kernel", "stride", "padding", "dilation", "input",
                                          "output", "count", "flops", "bias", "activation")}
                       | {"quantization": c["quantization"]} for l, c in zip(layers, data)],
            "results": res, "totals": totals, "total_flops": tot_ops, "cross": cross,
            "unavailable": failed}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--peers", default=",".join(DEFAULT_PEERS), help="comma list from " + ",".join(ALL_PEERS))
    ap.add_argument("--json", help="write the results to this file ({model} in it: one per spec)")
    ap.add_argument("--tol", type=float, default=1, help="max |output - reference|")
    args = ap.parse_args()
    if args.json and len(args.specs) > 1 and "{model}" not in args.json:
        ap.error("--json with several specs needs {model} in the file name")
    peers, failed = [], {}
    for pn in [p.strip() for p in args.peers.split(",") if p.strip()]:
        try:
            peers.append(PEER_CLASSES[pn](args.threads))
        except Exception as e:  # unknown name, missing package
            failed[pn] = f"{type(e).__name__}: {e}"
            print(f"# peer {pn} unavailable: {failed[pn]}", file=sys.stderr)
    for path in args.specs:
        out = bench_spec(path, peers, failed, args)
        if args.json:
            with open(args.json.replace("{model}", out["model"]), "w") as f:
                json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
