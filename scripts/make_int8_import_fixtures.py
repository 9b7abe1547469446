#!/usr/bin/env python3
"""Quantized ONNX fixtures for `gspc-codegen import` of int8 layers (issue 13): small PyTorch
convolution models exported to ONNX and quantized with ONNX Runtime's `quantize_static`, as
users quantize them, with ONNX Runtime's int8 values of every layer's input and output.

Usage (from the repository root, with a Python that has torch, onnx, onnxruntime and numpy;
the mobilenet fixture also needs torchvision):
  scripts/make_int8_import_fixtures.py [--out gspc-codegen/tests/fixtures/int8_import]
                                       [--mobilenet]

Writes (seeded: torch.manual_seed and numpy's default_rng(7)):
  qnet_qdq.onnx    a chain of five convolutions on a 1x3x16x16 input, QDQ format
                   (per_channel=True, activation_type=weight_type=QInt8, 4 random
                   calibration batches): dense 3x3 stride 2 + relu6 (3 -> 12), depthwise
                   3x3 + relu (12), grouped 3x3 groups 3 + relu (12 -> 9, an odd count),
                   depthwise 5x5 stride 2 (9), dense 1x1 (9 -> 8)
  qnet_qop.onnx    the same, QOperator format (QLinearConv)
  qnet_u8.onnx     the same, QDQ with activation_type=QUInt8 (uint8 activations)
  qnet_fbias.onnx  the same, QDQ with QuantizeBias=False (f32 bias)
  qnet_relu.onnx   the same, QDQ with QDQKeepRemovableActivations=True, then the
                   QuantizeLinear/DequantizeLinear pair between each Conv and its Relu or Clip
                   taken out: Conv -> Relu -> QuantizeLinear, the form gspc fuses (with
                   QDQKeepRemovableActivations alone, the activation is a separate quantized
                   operator with its own output scale, which gspc leaves to the app)
  qnet_*.json      for a fixed input: ONNX Runtime's value (CPU provider, all
                   optimizations: QDQ runs as QLinearConv) of every QuantizeLinear and
                   QLinearConv output, by name, with shape and element type
  bad_asym.onnx    a depthwise conv, QDQ per-channel, with output channel 3's weight zero
                   point set to 7 (asymmetric weights; quantize_static writes int8
                   per-channel weights symmetric even with WeightSymmetric=False)
  bad_u8w.onnx     weight_type=QUInt8 (uint8 weights)
  bad_zp5.onnx     per-tensor weights (per_channel=False) whose zero point is set to 5
  --mobilenet PATH torchvision's mobilenet_v2 (random weights, no download) quantized QDQ,
                   to PATH (3.9 MB), and ONNX Runtime's values as above next to it (PATH
                   with .json): too large to commit; mobilenet_v2_qdq_imports_when_given
                   in gspc-codegen/tests/import_int8.rs checks them when
                   GSPC_INT8_MOBILENET=PATH is set
"""
import argparse
import json
import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPSET = 17


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 12, 3, stride=2, padding=1)
        self.dw = torch.nn.Conv2d(12, 12, 3, padding=1, groups=12)
        self.grouped = torch.nn.Conv2d(12, 9, 3, padding=1, groups=3)
        self.dw5 = torch.nn.Conv2d(9, 9, 5, stride=2, padding=2, groups=9)
        self.head = torch.nn.Conv2d(9, 8, 1)

    def forward(self, x):
        x = torch.nn.functional.relu6(self.stem(x))
        x = torch.relu(self.dw(x))
        x = torch.relu(self.grouped(x))
        x = self.dw5(x)
        return self.head(x)


class Dw(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)

    def forward(self, x):
        return self.dw(x)


class Batches(CalibrationDataReader):
    def __init__(self, name, batches):
        self.it = iter([{name: b} for b in batches])

    def get_next(self):
        return next(self.it, None)


def export(module, shape, path):
    module.eval()
    torch.onnx.export(
        module,
        torch.zeros(shape),
        path,
        input_names=["input"],
        output_names=["output"],
        opset_version=OPSET,
        dynamo=False,
    )
    quant_pre_process(path, path)


def quantize(f32_path, out_path, batches, fmt=QuantFormat.QDQ, per_channel=True,
             act=QuantType.QInt8, weight=QuantType.QInt8, extra=None):
    quantize_static(
        f32_path,
        out_path,
        Batches("input", batches),
        quant_format=fmt,
        per_channel=per_channel,
        activation_type=act,
        weight_type=weight,
        extra_options=extra or {},
    )
    m = onnx.load(out_path)
    m.producer_name = "gspc scripts/make_int8_import_fixtures.py"
    onnx.save(m, out_path)


def record(path, x, out_json):
    """ONNX Runtime's values of every QuantizeLinear and QLinearConv output for input x."""
    m = onnx.load(path)
    m = onnx.shape_inference.infer_shapes(m)
    wanted = [
        n.output[0]
        for n in m.graph.node
        if n.op_type in ("QuantizeLinear", "QLinearConv")
    ]
    known = {o.name for o in m.graph.output}
    types = {vi.name: vi for vi in list(m.graph.value_info) + list(m.graph.output)}
    for name in wanted:
        if name not in known:
            m.graph.output.append(types[name])
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
    got = s.run(wanted, {"input": x})
    values = {}
    for name, v in zip(wanted, got):
        values[name] = {
            "dtype": str(v.dtype),
            "shape": list(v.shape),
            "data": [int(t) for t in v.reshape(-1)],
        }
    meta = {
        "model": os.path.basename(path),
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "values": values,
    }
    with open(out_json, "w") as f:
        json.dump(meta, f, separators=(",", ":"))
        f.write("\n")


def activations_after_conv(path):
    """Takes the QuantizeLinear/DequantizeLinear pair out from between each Conv and the Relu
    or Clip after it (quantize_static with QDQKeepRemovableActivations=True puts one there):
    Conv -> Relu -> QuantizeLinear, the form gspc fuses."""
    m = onnx.load(path)
    producer = {o: n for n in m.graph.node for o in n.output}
    drop = set()
    for n in m.graph.node:
        if n.op_type not in ("Relu", "Clip"):
            continue
        dq = producer.get(n.input[0])
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        conv = producer.get(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None
        if conv is not None and conv.op_type == "Conv":
            n.input[0] = conv.output[0]
            drop.update([id(q), id(dq)])
    keep = [n for n in m.graph.node if id(n) not in drop]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    used = {i for n in m.graph.node for i in n.input}
    inits = [t for t in m.graph.initializer if t.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(inits)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def set_weight_zero_point(path, value, channel=None):
    """Sets every weight DequantizeLinear's (int8) zero point to `value` (only that of output
    channel `channel` if given: asymmetric weights, which quantize_static does not write for
    int8 per-channel weights even with WeightSymmetric=False)."""
    m = onnx.load(path)
    inits = {t.name: t for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and len(n.input) > 2:
            w = numpy_helper.to_array(inits[n.input[0]])
            if w.ndim == 4:
                zp = inits[n.input[2]]
                z = numpy_helper.to_array(zp).copy()
                if channel is None:
                    z[...] = value
                else:
                    z[channel] = value
                zp.CopyFrom(numpy_helper.from_array(z.astype(np.int8), zp.name))
    onnx.save(m, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "gspc-codegen/tests/fixtures/int8_import"))
    ap.add_argument("--mobilenet", metavar="PATH",
                    help="also write torchvision's mobilenet_v2 quantized QDQ to PATH")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    out = lambda name: os.path.join(args.out, name)
    with tempfile.TemporaryDirectory() as tmp:
        net = os.path.join(tmp, "net.onnx")
        export(Net(), (1, 3, 16, 16), net)
        batches = [rng.standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(4)]
        x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
        quantize(net, out("qnet_qdq.onnx"), batches)
        quantize(net, out("qnet_qop.onnx"), batches, fmt=QuantFormat.QOperator)
        quantize(net, out("qnet_u8.onnx"), batches, act=QuantType.QUInt8)
        quantize(net, out("qnet_fbias.onnx"), batches, extra={"QuantizeBias": False})
        quantize(net, out("qnet_relu.onnx"), batches,
                 extra={"QDQKeepRemovableActivations": True})
        activations_after_conv(out("qnet_relu.onnx"))
        for name in ["qnet_qdq", "qnet_qop", "qnet_u8", "qnet_fbias", "qnet_relu"]:
            record(out(name + ".onnx"), x, out(name + ".json"))

        dw = os.path.join(tmp, "dw.onnx")
        export(Dw(), (1, 8, 6, 6), dw)
        dw_batches = [rng.standard_normal((1, 8, 6, 6)).astype(np.float32) for _ in range(2)]
        quantize(dw, out("bad_asym.onnx"), dw_batches)
        set_weight_zero_point(out("bad_asym.onnx"), 7, channel=3)
        quantize(dw, out("bad_u8w.onnx"), dw_batches, act=QuantType.QUInt8, weight=QuantType.QUInt8)
        quantize(dw, out("bad_zp5.onnx"), dw_batches, per_channel=False)
        set_weight_zero_point(out("bad_zp5.onnx"), 5)

    if args.mobilenet:
        import torchvision

        with tempfile.TemporaryDirectory() as tmp:
            f32 = os.path.join(tmp, "mnv2.onnx")
            export(torchvision.models.mobilenet_v2(weights=None), (1, 3, 224, 224), f32)
            quantize(f32, args.mobilenet,
                     [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(2)])
        x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
        record(args.mobilenet, x, os.path.splitext(args.mobilenet)[0] + ".json")


if __name__ == "__main__":
    main()
