#!/usr/bin/env python3
"""ONNX fixtures for external data and folding in `gspc-codegen import`, written with the onnx
helper API (deterministic: seeded numpy weights and inputs).

Usage (from the repository root, with a Python that has onnx, onnxruntime and numpy):
  scripts/make_import_fixtures.py [--out gspc-codegen/tests/fixtures]

Writes:
  ext_net.onnx, ext_net.onnx.data
                   two grouped convs (bias, BatchNormalization, Relu between them) whose
                   initializers are all in ext_net.onnx.data (onnx external data, offsets
                   aligned as onnx.save_model writes them)
  ext_net_inline.onnx
                   the same model with its weights inside (the import must give the same
                   spec and weights)
  fold_net.onnx    Conv(group 2, bias) -> BatchNormalization(epsilon 1e-3) -> Relu, then
                   Conv(depthwise, no bias) -> Mul([1, K, 1, 1]) -> Add([K, 1, 1]) ->
                   Mul(scalar); graph outputs "relu_out" and "out"
  fold_net.input.bin, fold_net.relu_out.bin, fold_net.out.bin
                   a seeded input and ONNX Runtime's values of relu_out and out for it (raw
                   little-endian f32, CPU provider)
  fold_net.json    their shapes and the versions used
"""
import argparse
import json
import os
import shutil
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPSET = 17
IR_VERSION = 8


def model(graph):
    m = helper.make_model(
        graph,
        producer_name="gspc scripts/make_import_fixtures.py",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    m.ir_version = IR_VERSION
    onnx.checker.check_model(m, full_check=True)
    return m


def weights(rng, k, c, kh, kw):
    return (rng.standard_normal((k, c, kh, kw)) * np.sqrt(2.0 / (c * kh * kw))).astype(np.float32)


def bn_params(rng, prefix, k, inits):
    names = []
    for suffix, arr in [
        ("scale", rng.uniform(0.5, 1.5, k)),
        ("bias", rng.standard_normal(k) * 0.2),
        ("mean", rng.standard_normal(k) * 0.3),
        ("var", rng.uniform(0.2, 2.0, k)),
    ]:
        name = f"{prefix}.{suffix}"
        inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        names.append(name)
    return names


def ext_net():
    rng = np.random.default_rng(21)
    inits = [
        numpy_helper.from_array(weights(rng, 16, 4, 3, 3), "c1.weight"),
        numpy_helper.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), "c1.bias"),
        numpy_helper.from_array(weights(rng, 16, 1, 3, 3), "c2.weight"),
    ]
    bn = bn_params(rng, "bn1", 16, inits)
    nodes = [
        helper.make_node("Conv", ["x", "c1.weight", "c1.bias"], ["c1_out"], name="/c1/Conv",
                         group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1_out"] + bn, ["bn1_out"], name="/bn1/BN"),
        helper.make_node("Relu", ["bn1_out"], ["r1"], name="/relu/Relu"),
        helper.make_node("Conv", ["r1", "c2.weight"], ["y"], name="/c2/Conv", group=16,
                         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "ext_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 5, 5])],
        initializer=inits,
    )
    return model(graph)


def fold_net():
    rng = np.random.default_rng(22)
    k = 12
    inits = [
        numpy_helper.from_array(weights(rng, k, 3, 3, 3), "c1.weight"),
        numpy_helper.from_array((rng.standard_normal(k) * 0.1).astype(np.float32), "c1.bias"),
        numpy_helper.from_array(weights(rng, k, 1, 5, 5), "c2.weight"),
        numpy_helper.from_array(rng.uniform(0.5, 2.0, (1, k, 1, 1)).astype(np.float32), "mul.k"),
        numpy_helper.from_array((rng.standard_normal((k, 1, 1)) * 0.3).astype(np.float32), "add.k"),
        numpy_helper.from_array(np.array(0.75, np.float32), "mul.s"),
    ]
    bn = bn_params(rng, "bn", k, inits)
    nodes = [
        helper.make_node("Conv", ["x", "c1.weight", "c1.bias"], ["c1_out"], name="/c1/Conv",
                         group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1_out"] + bn, ["bn_out"], name="/bn/BN",
                         epsilon=1e-3),
        helper.make_node("Relu", ["bn_out"], ["relu_out"], name="/relu/Relu"),
        helper.make_node("Conv", ["relu_out", "c2.weight"], ["c2_out"], name="/c2/Conv",
                         group=k, kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
        helper.make_node("Mul", ["c2_out", "mul.k"], ["mul_out"], name="/scale/Mul"),
        helper.make_node("Add", ["add.k", "mul_out"], ["add_out"], name="/shift/Add"),
        helper.make_node("Mul", ["add_out", "mul.s"], ["out"], name="/gain/Mul"),
    ]
    graph = helper.make_graph(
        nodes,
        "fold_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 11, 9])],
        [
            helper.make_tensor_value_info("relu_out", TensorProto.FLOAT, [1, k, 11, 9]),
            helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, k, 11, 9]),
        ],
        initializer=inits,
    )
    return model(graph)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "gspc-codegen", "tests", "fixtures"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import onnxruntime as ort

    ext = ext_net()
    path = os.path.join(args.out, "ext_net_inline.onnx")
    onnx.save_model(ext, path)
    print(f"wrote {path}")
    # Saved in a scratch directory first: onnx writes the data file next to the model.
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save_model(
            ext,
            os.path.join(tmp, "ext_net.onnx"),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="ext_net.onnx.data",
            size_threshold=0,
        )
        for name in ["ext_net.onnx", "ext_net.onnx.data"]:
            shutil.copyfile(os.path.join(tmp, name), os.path.join(args.out, name))
            print(f"wrote {os.path.join(args.out, name)}")
    # The external copy runs in ONNX Runtime like the inline one.
    x = np.random.default_rng(23).standard_normal((1, 8, 10, 9)).astype(np.float32)
    a = ort.InferenceSession(os.path.join(args.out, "ext_net.onnx")).run(None, {"x": x})[0]
    # (save_model with external data changed `ext` in place: run the inline file.)
    b = ort.InferenceSession(os.path.join(args.out, "ext_net_inline.onnx")).run(None, {"x": x})[0]
    assert np.array_equal(a, b)

    fold = fold_net()
    path = os.path.join(args.out, "fold_net.onnx")
    onnx.save_model(fold, path)
    print(f"wrote {path}")
    x = np.random.default_rng(24).standard_normal((1, 6, 11, 9)).astype(np.float32)
    sess = ort.InferenceSession(fold.SerializeToString(), providers=["CPUExecutionProvider"])
    relu_out, out = sess.run(["relu_out", "out"], {"x": x})
    for name, arr in [("input", x), ("relu_out", relu_out), ("out", out)]:
        path = os.path.join(args.out, f"fold_net.{name}.bin")
        np.asarray(arr, np.float32).astype("<f4").tofile(path)
        print(f"wrote {path}")
    meta = {
        "model": "fold_net.onnx",
        "input": {"name": "x", "shape": list(x.shape), "file": "fold_net.input.bin"},
        "outputs": {
            "relu_out": {"shape": list(relu_out.shape), "file": "fold_net.relu_out.bin"},
            "out": {"shape": list(out.shape), "file": "fold_net.out.bin"},
        },
        "dtype": "float32, little-endian, C order",
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "provider": "CPUExecutionProvider",
        "opset": OPSET,
    }
    path = os.path.join(args.out, "fold_net.json")
    with open(path, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
