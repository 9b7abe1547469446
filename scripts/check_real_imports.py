#!/usr/bin/env python3
"""Exports torchvision / timm models (random weights, eval mode, 1x3x64x64) with both
PyTorch exporters, imports each with `gspc-codegen import --all-convs`, and compares every
imported layer's input shape with the Conv inputs ONNX Runtime computes. The table of
docs/import.md comes from this script.

Usage (from the repository root, with a Python that has torch, torchvision, timm, onnx,
onnxscript, onnxruntime; after `cargo build -p gspc-codegen`):
  scripts/check_real_imports.py [--out /tmp/gspc-real] [--bin target/debug/gspc-codegen] [MODEL...]

Per model it writes to --out (not the repository: the files are large):
  NAME.ts.onnx         torch.onnx.export(dynamo=False, opset 17), static shapes
  NAME.tsbatch.onnx    the same with a dynamic batch   (the models of DYNAMIC only)
  NAME.tshw.onnx       dynamic batch, height and width (the models of DYNAMIC only)
  NAME.dyn.onnx        torch.onnx.export(dynamo=True), external data saved inline
  NAME.dyn.novi.onnx   the same without value_info: every shape inferred by the importer
"""
import argparse
import json
import os
import subprocess
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCHVISION = ["mobilenet_v3_small", "efficientnet_b0", "convnext_tiny", "regnet_x_400mf",
               "shufflenet_v2_x0_5", "resnext50_32x4d", "mnasnet0_5"]
TIMM = ["mixnet_s", "tf_efficientnet_b0", "efficientnet_lite0", "convnext_atto", "fastvit_t8",
        "mobilenetv4_conv_small", "tf_mixnet_s"]
DYNAMIC = ["tf_efficientnet_b0", "tf_mixnet_s", "convnext_atto", "mobilenet_v3_small"]


def create(name):
    import timm
    import torchvision.models as tvm

    if name in TORCHVISION:
        return getattr(tvm, name)(weights=None).eval()
    return timm.create_model(name, pretrained=False).eval()


def export(name, out):
    import onnx
    import torch

    torch.manual_seed(0)
    m = create(name)
    x = torch.randn(1, 3, 64, 64)
    paths = []
    variants = [("ts", None)]
    if name in DYNAMIC:
        variants += [("tsbatch", {0: "N"}), ("tshw", {0: "N", 2: "H", 3: "W"})]
    for tag, axes in variants:
        p = os.path.join(out, f"{name}.{tag}.onnx")
        kw = {"dynamic_axes": {"x": axes}} if axes else {}
        torch.onnx.export(m, (x,), p, dynamo=False, opset_version=17, input_names=["x"], **kw)
        paths.append(p)
    if name != "tf_mixnet_s":
        p = os.path.join(out, f"{name}.dyn.onnx")
        torch.onnx.export(m, (x,), p, dynamo=True, external_data=True)
        model = onnx.load(p)
        onnx.save(model, p, save_as_external_data=False)
        del model.graph.value_info[:]
        novi = p.replace(".onnx", ".novi.onnx")
        onnx.save(model, novi)
        paths += [p, novi]
    return paths


def ort_conv_inputs(path):
    """[C, H, W] of every Conv's input, in node order, as ONNX Runtime runs the model."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m = onnx.load(path)
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    names = list(dict.fromkeys(n.input[0] for n in convs))
    del m.graph.output[:]
    for n in names:
        m.graph.output.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    outs = dict(zip(names, s.run(names, {m.graph.input[0].name: x})))
    return [list(outs[n.input[0]].shape[1:]) for n in convs]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/gspc-real")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "debug", "gspc-codegen"))
    ap.add_argument("models", nargs="*", default=TORCHVISION + TIMM)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    os.makedirs(args.out, exist_ok=True)
    failed = 0
    for name in args.models:
        for path in export(name, args.out):
            spec = path + ".json"
            cmd = [args.bin, "import", path, "--out", spec, "--all-convs"]
            if ".tshw." in path:
                cmd += ["--input-shape", "x=1x3x64x64"]
            r = subprocess.run(cmd, capture_output=True, text=True)
            base = os.path.basename(path)
            if r.returncode != 0:
                failed += 1
                print(f"{base}: refused: {r.stderr.strip().splitlines()[0][:300]}")
                continue
            layers = json.load(open(spec))["layers"]
            got = [[l["in_channels"], *l["input"]] for l in layers]
            same = got == ort_conv_inputs(path)
            failed += not same
            print(f"{base}: {len(layers)} layers, {'as' if same else 'NOT as'} ONNX Runtime runs them")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
