#!/usr/bin/env python3
"""Small ONNX fixtures for the importer's shape rules (`gspc-codegen/tests/import_shapes.rs`),
written with the onnx helper API: each model puts the operators of one rule group in front
of grouped convs, without value_info, so the importer must infer every shape itself.

Usage (from the repository root, with a Python that has onnx, onnxruntime and numpy):
  scripts/make_shape_fixtures.py [--out gspc-codegen/tests/fixtures/shapes]

Writes one NAME.onnx per fixture below and expected.json: every Conv's input shape by node
name, as ONNX Runtime runs the model. Where `onnx.shape_inference.infer_shapes` (strict, with
data propagation) knows a shape it must agree; it does not know some (after
GroupNormalization-21, a function op, and after pads computed in floats): the script names
them.

  layer_norm     ConvNeXt's channels-last LayerNormalization (opset 17)
  group_norm     GroupNormalization and InstanceNormalization (opset 21: ONNX deprecates
                 GroupNormalization-18)
  unary          Softmax, LogSoftmax, Erf, Gelu and the other element-wise ops (opset 20)
  resize         Resize with scales, sizes, axes and keep_aspect_ratio_policy (opset 19)
  same_pad       timm's "same" padding: pads computed Shape -> Cast -> Div -> Ceil -> ...,
                 and the TorchScript exporter's F.pad pattern (ConstantOfShape, Reshape,
                 Slice with step -1, Transpose) (opset 17)
  reshape_arith  Reshape and Expand with shapes from Shape, Slice, ReduceProd, Range, Size,
                 Mod, Equal/Where, ConstantOfShape (opset 18)
  split          Split with a split input (opset 13) and num_outputs (opset 18)
  einsum         Einsum as a batched matmul and as a transpose, MatMul, Transpose (opset 17)
  reduce         ReduceMean/ReduceSum with axes as input (opset 18), GlobalMaxPool, Tile
  misc           CastLike, Trilu, Flatten, DepthToSpace, SpaceToDepth, TopK, ArgMax (opset 17)
"""
import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IR_VERSION = 8
F = TensorProto.FLOAT
I64 = TensorProto.INT64


class G:
    """A graph under construction: nodes, initializers, a seeded rng."""

    def __init__(self, seed):
        self.nodes = []
        self.inits = []
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def name(self, base):
        self.n += 1
        return f"{base}{self.n}"

    def op(self, op_type, inputs, outputs=1, **attrs):
        name = self.name(op_type.lower())
        outs = [f"{name}_out{i}" if outputs > 1 else f"{name}_out" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs if outputs > 1 else outs[0]

    def const(self, value, dtype=np.int64):
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.array(value, dtype), name))
        return name

    def weights(self, shape):
        name = self.name("w")
        self.inits.append(
            numpy_helper.from_array(self.rng.standard_normal(shape).astype(np.float32) * 0.3, name)
        )
        return name

    def conv(self, x, c, name, k=3, out=None, stride=1, pad=None):
        """A depthwise (or grouped, `out` channels) conv named `name`."""
        out = out or c
        w = self.weights((out, 1 if out == c else c // 2, k, k))
        group = c if out == c else 2
        y = f"{name}_out"
        p = k // 2 if pad is None else pad
        self.nodes.append(
            helper.make_node(
                "Conv", [x, w], [y], name=name, group=group, kernel_shape=[k, k],
                strides=[stride, stride], pads=[p] * 4,
            )
        )
        return y

    def model(self, name, inputs, outputs, opset):
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
            [helper.make_tensor_value_info(o, F, ["n", "c", "h", "w"]) for o in outputs],
            initializer=self.inits,
        )
        m = helper.make_model(
            graph,
            producer_name="gspc scripts/make_shape_fixtures.py",
            opset_imports=[helper.make_opsetid("", opset)],
        )
        m.ir_version = IR_VERSION
        onnx.checker.check_model(m, full_check=True)
        return m


def layer_norm():
    g = G(1)
    x = g.conv("x", 8, "dw_in", k=7)
    t = g.op("Transpose", [x], perm=[0, 2, 3, 1])
    ln, _mean, _inv = g.op("LayerNormalization", [t, g.weights((8,)), g.weights((8,))], outputs=3, axis=-1, epsilon=1e-6)
    back = g.op("Transpose", [ln], perm=[0, 3, 1, 2])
    y = g.conv(back, 8, "after_ln", out=16)
    # LayerNormalization over the last two axes (axis 2 of a rank-4 tensor).
    ln2 = g.op("LayerNormalization", [y, g.weights((6, 6)), g.weights((6, 6))], axis=2)
    z = g.conv(ln2, 16, "after_ln2", k=5)
    return g.model("layer_norm", [("x", [1, 8, 6, 6])], [z], 17)


def group_norm():
    g = G(2)
    gn = g.op("GroupNormalization", ["x", g.weights((8,)), g.weights((8,))], num_groups=2, epsilon=1e-5)
    y = g.conv(gn, 8, "after_gn")
    inn = g.op("InstanceNormalization", [y, g.weights((8,)), g.weights((8,))])
    z = g.conv(inn, 8, "after_in", stride=2)
    return g.model("group_norm", [("x", [1, 8, 9, 7])], [z], 21)


def unary():
    g = G(3)
    v = g.op("Softmax", ["x"], axis=1)
    v = g.op("LogSoftmax", [v], axis=-1)
    for op in ["Erf", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Abs", "Sqrt", "Neg",
               "Exp", "Mish", "Softplus", "Softsign", "Selu", "Elu", "Celu", "Sign"]:
        v = g.op(op, [v])
    v = g.op("Gelu", [v], approximate="tanh")
    v = g.op("LeakyRelu", [v], alpha=0.1)
    v = g.op("ThresholdedRelu", [v], alpha=0.5)
    v = g.op("PRelu", [v, g.weights((8, 1, 1))])
    v = g.op("Log", [g.op("Add", [g.op("Exp", [v]), g.const(1.0, np.float32)])])
    v = g.op("Reciprocal", [g.op("Add", [v, g.const(1.0, np.float32)])])
    v = g.op("Pow", [v, g.const(2.0, np.float32)])
    v, _mask = g.op("Dropout", [v], outputs=2)
    v = g.op("Identity", [v])
    cond = g.op("Not", [g.op("Less", [v, g.const(0.5, np.float32)])])
    cond = g.op("Or", [cond, g.op("Equal", [v, g.const(0.0, np.float32)])])
    cond = g.op("And", [cond, g.op("Greater", [v, g.const(-1.0, np.float32)])])
    v = g.op("Where", [cond, v, g.op("Neg", [v])])
    a = g.conv(v, 8, "after_unary")
    b = g.op("Clip", [a, g.const(0.0, np.float32), g.const(6.0, np.float32)])
    m = g.op("Max", [a, b, g.const(np.zeros((1, 8, 1, 1)), np.float32)])
    m = g.op("Min", [m, b])
    m = g.op("Mean", [m, a, b])
    m = g.op("Sum", [m, g.const(np.ones((1, 1, 1, 5)), np.float32)])
    z = g.conv(m, 8, "after_variadic", out=4)
    return g.model("unary", [("x", [1, 8, 5, 5])], [z], 20)


def resize():
    g = G(4)
    up = g.op("Resize", ["x", "", g.const([1, 1, 2, 2], np.float32)], mode="nearest")
    a = g.conv(up, 4, "after_scales")
    frac = g.op("Resize", [a, "", g.const([1.0, 1.0, 1.5, 0.75], np.float32)], mode="linear")
    b = g.conv(frac, 4, "after_fraction")
    sized = g.op("Resize", [b, "", "", g.const([1, 4, 7, 9])], mode="linear", coordinate_transformation_mode="half_pixel")
    c = g.conv(sized, 4, "after_sizes")
    axes = g.op("Resize", [c, "", "", g.const([14, 14])], axes=[2, 3], keep_aspect_ratio_policy="not_larger", mode="nearest")
    d = g.conv(axes, 4, "after_not_larger")
    big = g.op("Resize", [d, "", "", g.const([20, 20])], axes=[3, 2], keep_aspect_ratio_policy="not_smaller", mode="nearest")
    e = g.conv(big, 4, "after_not_smaller")
    # Sizes from the shape arithmetic F.interpolate(size=...) writes: Shape[:2] ++ [h*2, w*2].
    hw = g.op("Mul", [g.op("Slice", [g.op("Shape", ["x"]), g.const([2]), g.const([4])]), g.const([2, 3])])
    sizes = g.op("Concat", [g.op("Shape", [e], end=2), hw], axis=0)
    f = g.op("Resize", [e, "", "", sizes], mode="nearest")
    z = g.conv(f, 4, "after_computed_sizes")
    return g.model("resize", [("x", [1, 4, 5, 6])], [z], 19)


def same_pad_amount(g, x, axis, k, s, d=1):
    """timm's get_same_padding on a dynamic size: max((ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0)."""
    i = g.op("Gather", [g.op("Shape", [x]), g.const(axis)], axis=0)
    fi = g.op("Cast", [i], to=F)
    out = g.op("Ceil", [g.op("Div", [fi, g.const(float(s), np.float32)])])
    need = g.op("Sub", [g.op("Mul", [g.op("Sub", [out, g.const(1.0, np.float32)]), g.const(float(s), np.float32)]),
                        g.const(float(-((k - 1) * d + 1)), np.float32)])
    pad = g.op("Max", [g.op("Sub", [need, fi]), g.const(0.0, np.float32)])
    return g.op("Cast", [pad], to=I64)


def same_pad():
    g = G(5)
    # Pad for a 5x5 stride-2 conv on 9x10: [0, 0, top, left, 0, 0, bottom, right].
    ph = same_pad_amount(g, "x", 2, 5, 2)
    pw = same_pad_amount(g, "x", 3, 5, 2)
    two = g.const(2)
    top, left = g.op("Div", [ph, two]), g.op("Div", [pw, two])
    bottom, right = g.op("Sub", [ph, top]), g.op("Sub", [pw, left])
    u = lambda v: g.op("Unsqueeze", [v, g.const([0])])
    zero2 = g.const([0, 0])
    pads = g.op("Concat", [zero2, u(top), u(left), zero2, u(bottom), u(right)], axis=0)
    padded = g.op("Pad", ["x", pads, g.const(0.0, np.float32)], mode="constant")
    a = g.conv(padded, 8, "after_same_pad", k=5, stride=2, pad=0)
    # The TorchScript exporter's F.pad(x, [l, r, t, b]): pads reversed into ONNX's order.
    lrtb = g.const([1, 2, 0, 1])
    filler = g.op("ConstantOfShape", [g.op("Sub", [g.op("Mul", [g.op("Size", [g.op("Shape", [a])]), two]), g.op("Shape", [lrtb])])],
                  value=helper.make_tensor("v", I64, [1], [0]))
    full = g.op("Concat", [lrtb, filler], axis=0)
    pairs = g.op("Reshape", [full, g.const([-1, 2])])
    rev = g.op("Slice", [pairs, g.const([-1]), g.const([-(2**63) + 1]), g.const([0]), g.const([-1])])
    flat = g.op("Reshape", [g.op("Transpose", [rev], perm=[1, 0]), g.const([-1])])
    padded2 = g.op("Pad", [a, g.op("Cast", [flat], to=I64)], mode="reflect")
    z = g.conv(padded2, 8, "after_torch_pad", pad=0)
    return g.model("same_pad", [("x", [1, 8, 9, 10])], [z], 17)


def reshape_arith():
    g = G(6)
    s = g.op("Shape", ["x"])
    n_c = g.op("Slice", [s, g.const([0]), g.const([2])])
    hw = g.op("ReduceProd", [g.op("Slice", [s, g.const([2]), g.const([4])])], keepdims=1)
    flat = g.op("Reshape", ["x", g.op("Concat", [n_c, hw], axis=0)])
    # Back to [N, C, H, W] with the channels split in groups and merged again.
    groups = g.const([2])
    c = g.op("Gather", [s, g.const([1])], axis=0)
    per = g.op("Div", [c, groups])
    five = g.op("Concat", [g.op("Gather", [s, g.const([0])]), groups, per, g.op("Slice", [s, g.const([-2]), g.const([2**62])])], axis=0)
    r5 = g.op("Reshape", [flat, five])
    back = g.op("Reshape", [r5, s])
    a = g.conv(back, 6, "after_view")
    # torch's reshape with a 0 in the target: Where(Equal(t, 0), Shape, t).
    target = g.const([0, 3, -1, 8])
    fixed = g.op("Where", [g.op("Equal", [target, g.const(0)]), g.op("Shape", [a]), target])
    r = g.op("Reshape", [a, fixed])
    # Expand to [1, 3, 4, 8] from the shape [Size / 32 / 3 ... ]: Range and Mod arithmetic.
    idx = g.op("Range", [g.const(0), g.op("Size", [g.op("Shape", [r])]), g.const(1)])
    odd = g.op("Mod", [idx, g.const(2)])
    dims = g.op("Add", [g.op("Mul", [odd, g.const(0)]), g.op("Shape", [r])])
    e = g.op("Expand", [g.op("ReduceMean", [r, g.const([1])], keepdims=1), dims])
    ones = g.op("ConstantOfShape", [g.const([4])], value=helper.make_tensor("v", I64, [1], [1]))
    e2 = g.op("Expand", [e, ones])
    b = g.op("Reshape", [e2, g.const([1, 6, 4, 4])])
    z = g.conv(b, 6, "after_expand")
    return g.model("reshape_arith", [("x", [1, 6, 4, 4])], [z], 18)


def split():
    g = G(7)
    a, b = g.op("Split", ["x", g.const([3, 5])], outputs=2, axis=1)
    p = g.conv(g.op("Concat", [b, a], axis=1), 8, "after_split_input")
    g13 = g.model("split13", [("x", [1, 8, 5, 5])], [p], 13)
    g = G(8)
    a, b, c = g.op("Split", ["x"], outputs=3, axis=1, num_outputs=3)
    q = g.conv(b, 3, "after_num_outputs_mid")
    r = g.conv(c, 2, "after_num_outputs_last")
    d, e = g.op("Split", ["x", g.const([2, 6])], outputs=2, axis=-1)
    s = g.conv(e, 8, "after_split_width")
    g18 = g.model("split18", [("x", [1, 8, 6, 8])], [q, r, s, a, d], 18)
    return g13, g18


def einsum():
    g = G(9)
    v = g.op("Reshape", ["x", g.const([1, 8, 16])])
    w = g.weights((12, 8))
    mm = g.op("Einsum", [v, w], equation="bcn,dc->bdn")
    t = g.op("Einsum", [mm], equation="bij->bji")
    back = g.op("Einsum", [t], equation="...ij->...ji")
    q = g.op("MatMul", [g.op("Transpose", [back], perm=[0, 2, 1]), g.weights((12, 12))])
    att = g.op("Einsum", [q, q], equation="bnd,bmd->bnm")
    mixed = g.op("MatMul", [att, q])
    img = g.op("Reshape", [g.op("Transpose", [mixed], perm=[0, 2, 1]), g.const([1, 12, 4, 4])])
    z = g.conv(img, 12, "after_einsum")
    implicit = g.op("Einsum", [g.op("Reshape", [z, g.const([12, 16])]), g.weights((16, 3))], equation="ij,jk")
    out = g.op("Reshape", [implicit, g.const([1, 12, 3, 1])])
    z2 = g.conv(out, 12, "after_implicit", k=1)
    return g.model("einsum", [("x", [1, 8, 4, 4])], [z2], 17)


def reduce():
    g = G(10)
    se = g.op("ReduceMean", ["x", g.const([2, 3])], keepdims=1)
    scaled = g.op("Mul", ["x", g.op("Sigmoid", [se])])
    a = g.conv(scaled, 8, "after_reduce_mean")
    rs = g.op("ReduceSum", [a, g.const([1])], keepdims=0)
    rs4 = g.op("Unsqueeze", [rs, g.const([1])])
    tiled = g.op("Tile", [rs4, g.const([1, 4, 1, 1])])
    b = g.conv(tiled, 4, "after_tile")
    gm = g.op("GlobalMaxPool", [b])
    rmax = g.op("ReduceMax", [b, g.const([-1])], keepdims=1)
    c = g.conv(g.op("Add", [gm, rmax]), 4, "after_global_max", k=1)
    return g.model("reduce", [("x", [1, 8, 6, 5])], [c], 18)


def misc():
    g = G(11)
    v = g.op("CastLike", ["x", g.const(0.0, np.float32)])
    v = g.op("Trilu", [v, g.const(1)], upper=1)
    d2s = g.op("DepthToSpace", [v], blocksize=2, mode="CRD")
    a = g.conv(d2s, 4, "after_depth_to_space")
    s2d = g.op("SpaceToDepth", [a], blocksize=2)
    b = g.conv(s2d, 16, "after_space_to_depth")
    vals, _idx = g.op("TopK", [b, g.const([3])], outputs=2, axis=2)
    c = g.conv(vals, 16, "after_topk", k=1)
    am = g.op("Cast", [g.op("ArgMax", [c], axis=1, keepdims=1)], to=F)
    d = g.conv(g.op("Mul", [c, am]), 16, "after_argmax", k=1, out=8)
    flat = g.op("Flatten", [d], axis=2)
    e = g.conv(g.op("Unsqueeze", [flat, g.const([0, 3])]), 8, "after_flatten", k=1)
    return g.model("misc", [("x", [1, 16, 4, 5])], [e], 17)


def conv_inputs(m):
    """Every Conv's input shape from ONNX's shape inference (strict)."""
    inferred = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True, data_prop=True)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            d = [x.dim_value if x.HasField("dim_value") else None for x in t.shape.dim]
            if None not in d:
                shapes[vi.name] = d
    return {n.name: shapes.get(n.input[0]) for n in m.graph.node if n.op_type == "Conv"}


def run_convs(m):
    """Every Conv's input shape as ONNX Runtime runs the model."""
    import onnxruntime as ort

    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    names = [n.input[0] for n in m.graph.node if n.op_type == "Conv"]
    del m2.graph.output[:]
    for name in names:
        m2.graph.output.append(helper.make_tensor_value_info(name, F, None))
    sess = ort.InferenceSession(m2.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for i in m.graph.input:
        dims = [d.dim_value for d in i.type.tensor_type.shape.dim]
        feeds[i.name] = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
    outs = sess.run(names, feeds)
    return {n.name: list(o.shape) for n, o in zip([n for n in m.graph.node if n.op_type == "Conv"], outs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "gspc-codegen", "tests", "fixtures", "shapes"))
    args = ap.parse_args()
    split13, split18 = split()
    models = {
        "layer_norm": layer_norm(),
        "group_norm": group_norm(),
        "unary": unary(),
        "resize": resize(),
        "same_pad": same_pad(),
        "reshape_arith": reshape_arith(),
        "split13": split13,
        "split18": split18,
        "einsum": einsum(),
        "reduce": reduce(),
        "misc": misc(),
    }
    expected = {}
    for name, m in models.items():
        inferred = conv_inputs(m)
        ran = run_convs(m)
        for conv, shape in ran.items():
            assert inferred[conv] in (None, shape), (name, conv, inferred[conv], shape)
            if inferred[conv] is None:
                print(f"{name}: ONNX's shape inference does not know the input of {conv}")
        expected[f"{name}.onnx"] = ran
    os.makedirs(args.out, exist_ok=True)
    for name, m in models.items():
        path = os.path.join(args.out, f"{name}.onnx")
        onnx.save_model(m, path)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    path = os.path.join(args.out, "expected.json")
    with open(path, "w") as f:
        body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in expected.items())
        f.write('{"onnx": ' + json.dumps(onnx.__version__) + ', "models": {\n' + body + "\n}}\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
