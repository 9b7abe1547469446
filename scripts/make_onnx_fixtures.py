#!/usr/bin/env python3
"""ONNX fixtures for `gspc-codegen import` and the end-to-end test, written with the onnx
helper API (deterministic: seeded numpy weights and inputs).

Usage (from the repository root, with a Python that has onnx, onnxruntime and numpy):
  scripts/make_onnx_fixtures.py [--out tests/onnx/fixtures]

Writes:
  small_net.onnx        five grouped/depthwise convs with bias, ReLU and Clip(0, 6) between
                        them, input 1x8x12x10; the model's output is the chain of the convs
  small_net.input.bin   a seeded random input, raw little-endian f32
  small_net.output.bin  ONNX Runtime's output for it (CPU provider), raw little-endian f32
  small_net.json        their shapes, the ONNX Runtime version, the layer order
  shapes_net.onnx       convs with the ops the importer infers shapes through in between
                        (BatchNormalization, MaxPool ceil_mode, residual Add, channel shuffle,
                        Concat, AveragePool, SE block with broadcasting Mul, Pad, SAME_UPPER,
                        GlobalAveragePool, Flatten, Gemm); checked with ONNX's shape inference
  unsupported_op.onnx   a custom-domain op (no value_info) in front of a grouped Conv
  dynamic_shape.onnx    graph input of shape [N, 3, H, W] feeding a grouped Conv
  asym_pads.onnx        a grouped Conv with pads [0, 0, 1, 1]
  conv_inputs.json      every Conv's input shape in shapes_net and torch_net as ONNX Runtime
                        runs them
  torch_net.onnx        a real PyTorch export (legacy exporter, dynamic batch): ShuffleNetV2
                        units and a MobileNetV2 inverted residual (needs torch; skipped
                        without it)
"""
import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPSET = 13
IR_VERSION = 8


def model(graph):
    m = helper.make_model(
        graph,
        producer_name="gspc scripts/make_onnx_fixtures.py",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    m.ir_version = IR_VERSION
    onnx.checker.check_model(m, full_check=True)
    return m


def conv_weights(rng, k, c_per_group, kh, kw):
    fan_in = c_per_group * kh * kw
    return (rng.standard_normal((k, c_per_group, kh, kw)) * np.sqrt(2.0 / fan_in)).astype(
        np.float32
    )


def small_net(rng):
    """Input 1x8x12x10 -> five convs; names exercise sanitizing and collisions."""
    inits = []
    nodes = []

    def conv(name, x, y, c, k, g, kernel, stride=1, pad=0, dilation=1, bias=True):
        w = conv_weights(rng, k, c // g, kernel, kernel)
        wname = f"w{len(inits)}"
        inits.append(numpy_helper.from_array(w, wname))
        inputs = [x, wname]
        if bias:
            b = (rng.standard_normal(k) * 0.1).astype(np.float32)
            bname = f"b{len(inits)}"
            inits.append(numpy_helper.from_array(b, bname))
            inputs.append(bname)
        nodes.append(
            helper.make_node(
                "Conv",
                inputs,
                [y],
                name=name,
                group=g,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[pad, pad, pad, pad],
                dilations=[dilation, dilation],
            )
        )

    conv("/block1/conv.0", "input", "c0", 8, 16, 2, 3, pad=1)
    nodes.append(helper.make_node("Relu", ["c0"], ["r0"], name="/block1/relu"))
    conv("Conv_2", "r0", "c1", 16, 16, 16, 3, stride=2, pad=1)
    inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "clip_min"))
    inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "clip_max"))
    nodes.append(helper.make_node("Clip", ["c1", "clip_min", "clip_max"], ["r1"], name="Clip_3"))
    # These two names collide after sanitizing ("stage2_expand").
    conv("stage2/expand", "r1", "c2", 16, 32, 4, 1, bias=False)
    conv("Stage2:Expand", "c2", "c3", 32, 64, 32, 3, pad=1, bias=False)
    nodes.append(helper.make_node("Relu", ["c3"], ["r3"], name="Relu_6"))
    # No node name: the layer is named after its output.
    conv("", "r3", "output", 64, 16, 4, 3, pad=0, dilation=2)
    graph = helper.make_graph(
        nodes,
        "small_net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8, 12, 10])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 16, 2, 1])],
        initializer=inits,
    )
    return model(graph)


def shapes_net(rng):
    """Convs with the ops the importer infers shapes through in between (input 1x3x32x28)."""
    inits = []
    nodes = []

    def const(name, arr):
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def node(op, inputs, outputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))

    def conv(name, x, y, c, k, g, kernel, stride=1, pad=0, bias=True, **extra):
        w = const(f"{name}.w", conv_weights(rng, k, c // g, kernel, kernel))
        inputs = [x, w]
        if bias:
            inputs.append(const(f"{name}.b", (rng.standard_normal(k) * 0.1).astype(np.float32)))
        attrs = dict(group=g, kernel_shape=[kernel, kernel], strides=[stride, stride])
        if "auto_pad" not in extra:
            attrs["pads"] = [pad] * 4
        attrs.update(extra)
        node("Conv", inputs, [y], name, **attrs)

    # Stem: an ordinary conv (imported only with --all-convs), BN, ReLU, MaxPool ceil_mode.
    conv("stem", "image", "stem_out", 3, 16, 1, 3, stride=2, pad=1)  # 16x16x14
    bn = [
        const("bn.scale", np.ones(16, np.float32)),
        const("bn.bias", np.zeros(16, np.float32)),
        const("bn.mean", np.zeros(16, np.float32)),
        const("bn.var", np.ones(16, np.float32)),
    ]
    node("BatchNormalization", ["stem_out"] + bn, ["bn_out"], "bn")
    node("Relu", ["bn_out"], ["stem_relu"], "stem_relu")
    node(
        "MaxPool",
        ["stem_relu"],
        ["pool"],
        "pool",
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[0, 0, 0, 0],
        ceil_mode=1,
    )  # 16x8x7 (floor would give 7x6)
    # Residual grouped block.
    conv("block/grouped", "pool", "g_out", 16, 16, 4, 3, pad=1)
    node("Add", ["g_out", "pool"], ["res"], "block/add")
    node("Relu", ["res"], ["res_relu"], "block/relu")
    # ShuffleNet channel shuffle, groups 4: [1,16,8,7] -> [1,4,4,8,7] -> transpose -> back.
    node("Reshape", ["res_relu", const("shape5", np.array([0, 4, 4, 8, -1], np.int64))], ["s1"], "shuffle/reshape1")
    node("Transpose", ["s1"], ["s2"], "shuffle/transpose", perm=[0, 2, 1, 3, 4])
    node("Reshape", ["s2", const("shape4", np.array([1, -1, 8, 7], np.int64))], ["shuffled"], "shuffle/reshape2")
    # Depthwise with channel multiplier 2, stride 2, ReLU6 as Clip(0, 6).
    conv("down/dw", "shuffled", "dw_out", 16, 32, 16, 3, stride=2, pad=1)  # 32x4x4
    node("Clip", ["dw_out", const("zero", np.array(0.0, np.float32)), const("six", np.array(6.0, np.float32))], ["dw_act"], "down/relu6")
    # Side branch: average pool of the shuffled tensor, concatenated on channels.
    node(
        "AveragePool",
        ["shuffled"],
        ["avg"],
        "down/avgpool",
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
    )  # 16x4x4
    node("Concat", ["dw_act", "avg"], ["cat"], "down/concat", axis=1)  # 48x4x4
    # SE block: GAP -> grouped 1x1 -> ReLU -> grouped 1x1 -> HardSigmoid -> broadcasting Mul.
    node("GlobalAveragePool", ["cat"], ["se_gap"], "se/gap")
    conv("se/reduce", "se_gap", "se_r", 48, 12, 4, 1)
    node("Relu", ["se_r"], ["se_r_relu"], "se/relu")
    conv("se/expand", "se_r_relu", "se_e", 12, 48, 4, 1)
    node("HardSigmoid", ["se_e"], ["se_gate"], "se/gate")
    node("Mul", ["cat", "se_gate"], ["se_out"], "se/mul")
    # Depthwise with SAME_UPPER padding, then an explicit symmetric Pad in front of a conv.
    conv("same/dw", "se_out", "same_out", 48, 48, 48, 3, auto_pad="SAME_UPPER")  # 48x4x4
    node("Pad", ["same_out", const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], ["padded"], "pad")  # 48x6x6
    conv("head/conv", "padded", "head_out", 48, 24, 2, 3, pad=0, bias=False)  # 24x4x4
    node("GlobalAveragePool", ["head_out"], ["gap"], "head/gap")
    node("Flatten", ["gap"], ["flat"], "head/flatten", axis=1)
    fc_w = const("fc.w", (rng.standard_normal((10, 24)) * 0.1).astype(np.float32))
    fc_b = const("fc.b", np.zeros(10, np.float32))
    node("Gemm", ["flat", fc_w, fc_b], ["logits"], "head/fc", transB=1)
    graph = helper.make_graph(
        nodes,
        "shapes_net",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        initializer=inits,
    )
    m = model(graph)
    # The shapes the importer must infer, as ONNX infers them (a self-check of the fixture).
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    shapes = {
        vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
    }
    expected = {
        "pool": [1, 16, 8, 7],
        "shuffled": [1, 16, 8, 7],
        "cat": [1, 48, 4, 4],
        "se_gap": [1, 48, 1, 1],
        "padded": [1, 48, 6, 6],
        "head_out": [1, 24, 4, 4],
        "logits": [1, 10],
    }
    for name, shape in expected.items():
        assert shapes[name] == shape, (name, shapes[name], shape)
    return m


def unsupported_op(rng):
    """A custom-domain op (upsampling x2) in front of a grouped conv, no value_info."""
    inits = [numpy_helper.from_array(conv_weights(rng, 4, 2, 3, 3), "w")]
    nodes = [
        helper.make_node("Upsample2x", ["x"], ["up_out"], name="up", domain="com.example"),
        helper.make_node("Conv", ["up_out", "w"], ["y"], name="conv_after", group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "unsupported_op",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 10, 10])],
        initializer=inits,
    )
    m = helper.make_model(
        graph,
        producer_name="gspc scripts/make_onnx_fixtures.py",
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.example", 1)],
    )
    m.ir_version = IR_VERSION
    onnx.checker.check_model(m)
    return m


def dynamic_shape(rng):
    """Graph input [N, 3, H, W] feeding a grouped conv."""
    inits = [numpy_helper.from_array(conv_weights(rng, 6, 1, 3, 3), "w")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=3, kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(
        nodes,
        "dynamic_shape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, "H", "W"])],
        initializer=inits,
    )
    return model(graph)


def asym_pads(rng):
    """A grouped conv with pads [0, 0, 1, 1] (top, left, bottom, right)."""
    inits = [numpy_helper.from_array(conv_weights(rng, 4, 2, 3, 3), "w")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="asym", group=2, kernel_shape=[3, 3], pads=[0, 0, 1, 1])]
    graph = helper.make_graph(
        nodes,
        "asym_pads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 7, 7])],
        initializer=inits,
    )
    return model(graph)


def torch_net(path):
    """A real PyTorch export (the TorchScript-based exporter, dynamic batch): ShuffleNetV2
    units (channel split, channel shuffle through Shape/Gather/Reshape/Transpose) and a
    MobileNetV2 inverted residual with ReLU6, BatchNorm folded by the exporter. Skipped
    without torch."""
    try:
        import torch
        from torch import nn
        import torch.nn.functional as F
    except ImportError:
        print("torch is not installed: torch_net.onnx not written")
        return
    torch.manual_seed(11)

    def channel_shuffle(x, groups):
        n, c, h, w = x.size()
        x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
        return x.view(n, -1, h, w)

    def cbr(cin, cout, k, s=1, g=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        return nn.Sequential(*layers)

    class ShuffleUnit(nn.Module):
        """ShuffleNetV2 unit: stride 1 splits the channels, stride 2 has two branches."""
        def __init__(s, cin, cout, stride):
            super().__init__()
            s.stride = stride
            half = cout // 2
            if stride == 2:
                s.branch1 = nn.Sequential(cbr(cin, cin, 3, 2, cin, act=False), cbr(cin, half, 1))
                bin = cin
            else:
                s.branch1 = None
                bin = cin // 2
            s.branch2 = nn.Sequential(cbr(bin, half, 1), cbr(half, half, 3, stride, half, act=False), cbr(half, half, 1))
        def forward(s, x):
            if s.stride == 1:
                a, b = x.chunk(2, dim=1)
                out = torch.cat((a, s.branch2(b)), 1)
            else:
                out = torch.cat((s.branch1(x), s.branch2(x)), 1)
            return channel_shuffle(out, 2)

    class InvertedResidual(nn.Module):
        """MobileNetV2 block: 1x1 expand, ReLU6, depthwise 3x3, ReLU6, 1x1 project, residual."""
        def __init__(s, c, t):
            super().__init__()
            h = c * t
            s.expand = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6())
            s.dw = nn.Sequential(nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6())
            s.project = nn.Sequential(nn.Conv2d(h, c, 1, groups=2, bias=False), nn.BatchNorm2d(c))
        def forward(s, x):
            return x + s.project(s.dw(s.expand(x)))

    class Net(nn.Module):
        def __init__(s):
            super().__init__()
            s.stem = cbr(3, 16, 3, 2)
            s.pool = nn.MaxPool2d(3, 2, 1)
            s.down = ShuffleUnit(16, 32, 2)
            s.unit = ShuffleUnit(32, 32, 1)
            s.ir = InvertedResidual(32, 2)
            s.fc = nn.Linear(32, 10)
        def forward(s, x):
            x = s.pool(s.stem(x))
            x = s.ir(s.unit(s.down(x)))
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
            return s.fc(x)


    m = Net().eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.1, 0.1)
    torch.onnx.export(
        m,
        torch.randn(1, 3, 48, 40),
        path,
        dynamo=False,
        opset_version=OPSET,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
    )
    print(f"wrote {path} ({os.path.getsize(path)} bytes, torch {torch.__version__})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "onnx", "fixtures"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    def save(m, name):
        path = os.path.join(args.out, name)
        onnx.save_model(m, path)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")

    small = small_net(np.random.default_rng(5))
    save(small, "small_net.onnx")
    save(shapes_net(np.random.default_rng(6)), "shapes_net.onnx")
    save(unsupported_op(np.random.default_rng(7)), "unsupported_op.onnx")
    save(dynamic_shape(np.random.default_rng(8)), "dynamic_shape.onnx")
    save(asym_pads(np.random.default_rng(9)), "asym_pads.onnx")
    torch_net(os.path.join(args.out, "torch_net.onnx"))

    import onnxruntime as ort

    x = np.random.default_rng(10).standard_normal((1, 8, 12, 10)).astype(np.float32)
    sess = ort.InferenceSession(small.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"input": x})
    y = np.asarray(y, dtype=np.float32)
    for name, arr in [("small_net.input.bin", x), ("small_net.output.bin", y)]:
        path = os.path.join(args.out, name)
        arr.astype("<f4").tofile(path)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    meta = {
        "model": "small_net.onnx",
        "input": {"name": "input", "shape": list(x.shape), "file": "small_net.input.bin"},
        "output": {"name": "output", "shape": list(y.shape), "file": "small_net.output.bin"},
        "dtype": "float32, little-endian, C order",
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "provider": "CPUExecutionProvider",
        "opset": OPSET,
        "seed_input": 10,
        "seed_weights": 5,
    }
    # The input shape of every Conv as ONNX Runtime runs the shape-inference fixtures: the
    # import tests check the spec's channels and input sizes against them.
    conv_inputs = {}
    for name, shape in [("shapes_net.onnx", (1, 3, 32, 28)), ("torch_net.onnx", (1, 3, 48, 40))]:
        path = os.path.join(args.out, name)
        if not os.path.exists(path):
            continue
        m = onnx.load(path)
        convs = [n for n in m.graph.node if n.op_type == "Conv"]
        for n in convs:
            m.graph.output.append(helper.make_tensor_value_info(n.input[0], TensorProto.FLOAT, None))
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        x = np.random.default_rng(12).standard_normal(shape).astype(np.float32)
        outs = dict(zip(names, sess.run(None, {m.graph.input[0].name: x})))
        conv_inputs[name] = {n.name: list(outs[n.input[0]].shape) for n in convs}
    path = os.path.join(args.out, "conv_inputs.json")
    with open(path, "w") as f:
        models = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in conv_inputs.items())
        f.write(f'{{"onnxruntime": {json.dumps(ort.__version__)}, "models": {{\n{models}\n}}}}\n')
    print(f"wrote {path}")
    path = os.path.join(args.out, "small_net.json")
    with open(path, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
