#!/usr/bin/env python3
"""Real-network ONNX fixtures: small versions of torchvision/timm classification models
with grouped or depthwise convs, exported by both PyTorch exporters, plus ONNX Runtime's
value of every Conv's input and output inside the whole model.

Usage (from the repository root; needs torch, torchvision, timm, onnx, onnxruntime, numpy):
  scripts/make_real_fixtures.py [--out tests/onnx/fixtures/real] [--only NAME ...]

For every model in MODELS and both exporters it writes, into the output directory:
  <model>_ts.onnx                the TorchScript exporter's model (`dynamo=False`), weights
                                 inline
  <model>_dx.onnx, .onnx.data    the `torch.export` exporter's model (`dynamo=True`, the
                                 default), every initializer in the external data file
  <fixture>.ref.safetensors      ONNX Runtime's values (f32, keyed by ONNX value name) of
                                 the graph input, every Conv's input and output and the
                                 outputs of the single-reader chain after each Conv
                                 (BatchNormalization, Mul, Add, Relu, Clip; up to 4 nodes),
                                 computed with the whole model on a seeded input, graph
                                 optimizations off
  <fixture>.json                 versions, exporter, opset, input name and shape, seeds,
                                 file sizes, the reference values in graph order

Weights are seeded; BatchNorm running statistics and affine parameters, and ConvNeXt's
layer scale, are randomized so that folding them changes the weights. The output is the
same byte for byte on every run with the same package versions.
"""
import argparse
import hashlib
import json
import os
import sys
import time
from functools import partial

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "tests", "onnx", "fixtures", "real")
# Ops that can follow a Conv and that an importer may fold into it or fuse with it.
CHAIN_OPS = {"BatchNormalization", "Mul", "Add", "Relu", "Clip"}
CHAIN_MAX = 4


# ---------------------------------------------------------------------------------------
# Models: (name, constructor, input shape, what it covers)
# ---------------------------------------------------------------------------------------


def mobilenet_v3():
    from torchvision.models.mobilenetv3 import InvertedResidualConfig as C, MobileNetV3

    setting = [
        # input, kernel, expanded, out, SE, activation, stride, dilation, width_mult
        C(16, 3, 16, 16, True, "RE", 2, 1, 1.0),
        C(16, 3, 48, 24, False, "RE", 2, 1, 1.0),
        C(24, 5, 72, 32, True, "HS", 2, 1, 1.0),
        C(32, 5, 96, 32, True, "HS", 1, 1, 1.0),
        C(32, 3, 96, 40, True, "HS", 1, 1, 1.0),
        C(40, 5, 120, 48, True, "HS", 2, 1, 1.0),
        C(48, 5, 144, 48, True, "HS", 1, 2, 1.0),
    ]
    return MobileNetV3(setting, last_channel=64, num_classes=10)


def efficientnet():
    from torchvision.models.efficientnet import EfficientNet, MBConvConfig as C

    setting = [
        # expand, kernel, stride, in, out, layers
        C(1, 3, 1, 16, 16, 1),
        C(4, 5, 2, 16, 24, 2),
        C(4, 3, 2, 24, 40, 1),
        C(6, 5, 2, 40, 48, 1),
    ]
    return EfficientNet(setting, dropout=0.0, stochastic_depth_prob=0.0, num_classes=10,
                        last_channel=128)


def convnext():
    from torchvision.models.convnext import CNBlockConfig as C, ConvNeXt

    setting = [C(16, 32, 1), C(32, 48, 2), C(48, None, 1)]
    return ConvNeXt(setting, stochastic_depth_prob=0.0, layer_scale=1.0, num_classes=10)


def regnet_x():
    from torchvision.models.regnet import BlockParams, RegNet

    # Group width 24: 24 channels per group, 2 and 5 groups.
    params = BlockParams(depths=[1, 2], widths=[48, 120], group_widths=[24, 24],
                         bottleneck_multipliers=[1.0, 1.0], strides=[2, 2])
    return RegNet(params, stem_width=16, num_classes=10)


def shufflenet_v2():
    from torchvision.models.shufflenetv2 import ShuffleNetV2

    # Branches of 58, 116 and 232 channels, as in ShuffleNetV2 1.0x; fewer units.
    return ShuffleNetV2([2, 1, 1], [24, 116, 232, 464, 64], num_classes=10)


def resnext():
    import torch.nn as nn
    from torchvision.models.resnet import Bottleneck, ResNet

    class Bottleneck2(Bottleneck):
        expansion = 2

    # ResNeXt 16x4d with a bottleneck expansion of 2 (not 4), first two stages only.
    net = ResNet(Bottleneck2, [1, 2, 1, 1], groups=16, width_per_group=4, num_classes=10)
    return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10))


def mixnet():
    from timm.layers import BatchNormAct2d  # noqa: F401  (timm's default norm)
    from timm.models._efficientnet_builder import decode_arch_def, round_channels
    from timm.models.efficientnet import EfficientNet

    # MixNet-S with one block per stage and half the channels: mixed depthwise kernels
    # 3x3 to 11x11, SE, swish.
    arch_def = [
        ["ds_r1_k3_s1_e1_c16"],
        ["ir_r1_k3_a1.1_p1.1_s2_e6_c24"],
        ["ir_r1_k3.5.7_s2_e6_c40_se0.5_nsw"],
        ["ir_r1_k3.5.7_p1.1_s2_e6_c80_se0.25_nsw"],
        ["ir_r1_k3.5.7.9_a1.1_p1.1_s1_e3_c120_se0.5_nsw"],
        ["ir_r1_k3.5.7.9.11_s2_e6_c200_se0.5_nsw"],
    ]
    return EfficientNet(block_args=decode_arch_def(arch_def), num_features=128, stem_size=16,
                        round_chs_fn=partial(round_channels, multiplier=0.5), num_classes=10)


def mnasnet():
    from torchvision.models.mnasnet import MNASNet

    import torch.nn as nn

    # MNASNet 0.5 up to its fourth stack (12 of 16 blocks; no 1280-channel head conv).
    net = MNASNet(0.5, num_classes=10, dropout=0.0)
    net.layers = net.layers[:12]
    net.classifier = nn.Linear(net.layers[-1][-1].layers[-1].num_features, 10)
    return net


MODELS = [
    # name, constructor, input (N, C, H, W), what it covers
    ("mobilenet_v3", mobilenet_v3, (1, 3, 40, 36),
     "3x3 and 5x5 depthwise (one dilated), SE, hardswish"),
    ("efficientnet", efficientnet, (1, 3, 36, 40), "3x3 and 5x5 depthwise, SE, SiLU"),
    ("convnext", convnext, (1, 3, 48, 40), "7x7 depthwise, LayerNorm, GELU"),
    ("regnet_x", regnet_x, (1, 3, 36, 44), "3x3 groups of 24 channels"),
    ("shufflenet_v2", shufflenet_v2, (1, 3, 48, 40),
     "3x3 depthwise on 58/116/232 channels, channel shuffle"),
    ("resnext", resnext, (1, 3, 44, 40), "grouped 3x3 (4 and 8 channels per group)"),
    ("mixnet", mixnet, (1, 3, 48, 44), "mixed depthwise kernels 3x3 to 11x11, SE, swish"),
    ("mnasnet", mnasnet, (1, 3, 40, 40), "3x3 and 5x5 depthwise, ReLU"),
]
EXPORTERS = [("ts", "TorchScript (dynamo=False)"), ("dx", "torch.export (dynamo=True)")]


def randomize(model, seed):
    """Seeded random parameters (after the model's own seeded init), BatchNorm statistics
    and affine parameters away from identity, layer scales of order 1."""
    import torch

    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.2)
            if isinstance(m, torch.nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
            if hasattr(m, "layer_scale") and isinstance(m.layer_scale, torch.nn.Parameter):
                m.layer_scale.copy_(torch.rand(m.layer_scale.shape, generator=g) + 0.5)
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval()


# ---------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------


def export(model, shape, exporter, path):
    import onnx
    import torch
    from onnx import TensorProto, numpy_helper
    from onnx.external_data_helper import set_external_data

    x = torch.zeros(shape)
    data = path + ".data"
    for p in (path, data):
        if os.path.exists(p):
            os.remove(p)
    if exporter == "ts":
        # PRESERVE (the model is in eval mode): BatchNormalization is exported in its
        # inference form and not folded into the Conv, as the default EVAL mode would.
        torch.onnx.export(model, (x,), path, dynamo=False, input_names=["input"],
                          output_names=["logits"],
                          training=torch.onnx.TrainingMode.PRESERVE)
        return
    prog = torch.onnx.export(model, (x,), dynamo=True, input_names=["input"],
                             output_names=["logits"], verbose=False)
    proto = prog.model_proto
    # Every float initializer in one external file, in graph order (the exporter writes
    # those of real-sized models there; it would keep these small ones inline). Integer
    # tensors (shapes, axes) stay inline: ONNX Runtime reads those only from the model.
    with open(data, "wb") as f:
        for t in proto.graph.initializer:
            if t.data_type != TensorProto.FLOAT:
                continue
            raw = numpy_helper.to_array(t).astype("<f4").tobytes()
            offset = f.tell()
            f.write(raw)
            t.ClearField("float_data")
            t.raw_data = raw
            set_external_data(t, os.path.basename(data), offset, len(raw))
            t.data_location = TensorProto.EXTERNAL
            t.ClearField("raw_data")
    onnx.save_model(proto, path)


# ---------------------------------------------------------------------------------------
# Reference values
# ---------------------------------------------------------------------------------------


def reference_values(model_proto):
    """The values to record, in graph order: every Conv's input and output, then the
    outputs of its single-reader chain of CHAIN_OPS."""
    graph = model_proto.graph
    readers = {}
    for node in graph.node:
        for i in node.input:
            if i:
                readers.setdefault(i, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    names = []

    def add(n):
        if n and n not in names:
            names.append(n)

    for node in graph.node:
        if node.op_type != "Conv":
            continue
        add(node.input[0])
        value = node.output[0]
        add(value)
        for _ in range(CHAIN_MAX):
            r = readers.get(value, [])
            if len(r) != 1 or value in graph_outputs or r[0].op_type not in CHAIN_OPS:
                break
            value = r[0].output[0]
            add(value)
    return names


def run_ort(path, names, x, input_name):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m = onnx.load(path)  # with its external data
    inputs = {i.name for i in m.graph.input}
    existing = {o.name for o in m.graph.output}
    for n in names:
        if n not in inputs and n not in existing:
            m.graph.output.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    got = dict(zip(out_names, sess.run(out_names, {input_name: x})))
    got[input_name] = x
    return {n: np.ascontiguousarray(got[n], dtype=np.float32) for n in names}


def write_safetensors(path, tensors, metadata):
    """safetensors: u64 header length, JSON header (names sorted), 8-byte aligned data."""
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        a = tensors[name]
        b = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def make(name, ctor, shape, covers, exporter, out, seed):
    import onnx
    import onnxruntime
    import torch

    torch.manual_seed(seed)
    model = randomize(ctor(), seed)
    fixture = f"{name}_{exporter}"
    path = os.path.join(out, fixture + ".onnx")
    export(model, shape, exporter, path)

    proto = onnx.load(path, load_external_data=False)
    onnx.checker.check_model(path)
    names = reference_values(proto)
    input_name = proto.graph.input[0].name
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    values = run_ort(path, names, x, input_name)

    # The model's logits agree with PyTorch's (a sanity check of the export).
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = sess.run(None, {input_name: x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    err = float(np.max(np.abs(logits - want)))
    if not err <= 1e-3 * max(1.0, float(np.max(np.abs(want)))):
        sys.exit(f"{fixture}: ONNX Runtime and PyTorch differ by {err}")

    write_safetensors(os.path.join(out, fixture + ".ref.safetensors"), values,
                      {"model": fixture + ".onnx", "input": input_name})
    files = [fixture + ".onnx"] + ([fixture + ".onnx.data"] if exporter == "dx" else [])
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    grouped = 0
    for n in convs:
        g = next((a.i for a in n.attribute if a.name == "group"), 1)
        grouped += g > 1
    meta = {
        "fixture": fixture,
        "model": name,
        "covers": covers,
        "exporter": dict(EXPORTERS)[exporter],
        "opset": next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "provider": "CPUExecutionProvider, graph optimizations off",
        "seed_weights": seed,
        "seed_input": seed,
        "input": {"name": input_name, "shape": list(shape)},
        "convs": len(convs),
        "grouped_convs": grouped,
        "batch_norms": sum(n.op_type == "BatchNormalization" for n in proto.graph.node),
        "layer_norms": sum(n.op_type == "LayerNormalization" for n in proto.graph.node),
        "ops": sorted({n.op_type for n in proto.graph.node}),
        "bytes": {f: os.path.getsize(os.path.join(out, f)) for f in files},
        "reference": fixture + ".ref.safetensors",
        "values": names,
    }
    with open(os.path.join(out, fixture + ".json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    return fixture, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", help="model names (default: all)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    start = time.time()
    for seed, (name, ctor, shape, covers) in enumerate(MODELS, start=1):
        if args.only and name not in args.only:
            continue
        for exporter, _ in EXPORTERS:
            t = time.time()
            fixture, meta = make(name, ctor, shape, covers, exporter, args.out, seed)
            size = sum(meta["bytes"].values())
            ref = os.path.getsize(os.path.join(args.out, meta["reference"]))
            print(f"{fixture}: {meta['convs']} convs ({meta['grouped_convs']} grouped), "
                  f"{meta['batch_norms']} BatchNormalization, opset {meta['opset']}, "
                  f"model {size} bytes, reference {ref} bytes, {time.time() - t:.1f} s")
    total = 0
    digest = hashlib.sha256()
    for f in sorted(os.listdir(args.out)):
        p = os.path.join(args.out, f)
        total += os.path.getsize(p)
        with open(p, "rb") as fh:
            digest.update(f.encode() + fh.read())
    print(f"{args.out}: {total} bytes in all, sha256 {digest.hexdigest()[:16]}, "
          f"{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
