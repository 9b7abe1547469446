#!/usr/bin/env python3
"""Runs the importer's shape inference over ONNX's own operator test models
(`onnx.backend.test.case.node`, opsets 7-20, standard domain): for each model whose first
output ONNX's shape inference (strict, data propagation, declared output shapes removed)
knows statically, a depthwise 1x1 Conv is appended (the output made 4-D with leading axes
of 1; above rank 4 viewed as [1, 1, H, W]), and `gspc-codegen import --all-convs` must
infer the Conv's input exactly as ONNX does. Prints the counts, the operators the importer
has no rule for and any shape that differs.

Usage (after `cargo build -p gspc-codegen`, with a Python that has onnx):
  scripts/check_onnx_node_tests.py [target/debug/gspc-codegen] [--dir /tmp/gspc-node-tests]
"""
import warnings; warnings.filterwarnings("ignore")
import collections
import json
import os
import re
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference
from onnx.backend.test.case.node import collect_testcases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = sys.argv[1:]
DIR = "/tmp/gspc-node-tests"
if "--dir" in args:
    i = args.index("--dir")
    DIR = args[i + 1]
    del args[i:i + 2]
BIN = args[0] if args else os.path.join(ROOT, "target", "debug", "gspc-codegen")
os.makedirs(DIR, exist_ok=True)
res = collections.Counter()
fails = collections.defaultdict(list)
for c in collect_testcases(None):
    m = c.model
    ops = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")]
    if not ops or ops[0] > 20 or ops[0] < 7 or any(o.domain not in ("", "ai.onnx") for o in m.opset_import):
        continue
    if any(n.domain not in ("", "ai.onnx") for n in m.graph.node) or any(n.op_type in ("Loop", "If", "Scan", "SequenceMap") for n in m.graph.node):
        continue
    m0 = onnx.ModelProto(); m0.CopyFrom(m)
    for o in m0.graph.output:
        o.type.tensor_type.ClearField("shape")
    try:
        inf = shape_inference.infer_shapes(m0, strict_mode=True, data_prop=True)
    except Exception:
        continue
    o = inf.graph.output[0]
    tt = o.type.tensor_type
    if not tt.HasField("shape") or any(not d.HasField("dim_value") for d in tt.shape.dim):
        res["onnx_unknown"] += 1
        continue
    if not all(i.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in i.type.tensor_type.shape.dim) for i in m.graph.input):
        continue
    d = [x.dim_value for x in tt.shape.dim]
    if 0 in d: continue
    if tt.elem_type in (TensorProto.STRING,): continue
    g = m.graph
    pre = o.name
    nodes = list(g.node)
    if tt.elem_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [pre], ["probe_cast"], to=TensorProto.FLOAT)); pre = "probe_cast"
    # The output made 4-D by leading axes of 1 (rank 1 to 3), or a 4-D view [1, 1, H, W]
    # (W the last dimension, H the product of the others) above rank 4; a depthwise 1x1
    # Conv on it, whose input the importer must infer: exactly [C, H, W] up to rank 4.
    inits = list(g.initializer)
    if 1 <= len(d) <= 4:
        want = [1] * (4 - len(d)) + d
        inits.append(numpy_helper.from_array(np.arange(4 - len(d), dtype=np.int64), "probe_axes"))
        view = [helper.make_node("Unsqueeze", [pre, "probe_axes"], ["probe_in"])] if len(d) < 4 else []
        if len(d) == 4:
            nodes.append(helper.make_node("Identity", [pre], ["probe_in"]))
    else:
        want = [1, 1, int(np.prod(d[:-1])) if len(d) >= 2 else 1, d[-1] if d else 1]
        inits.append(numpy_helper.from_array(np.array(want, np.int64), "probe_shape"))
        view = [helper.make_node("Reshape", [pre, "probe_shape"], ["probe_in"])]
    ch = want[1]
    inits.append(numpy_helper.from_array(np.ones((ch, 1, 1, 1), np.float32), "probe_w"))
    nodes += view + [helper.make_node("Conv", ["probe_in", "probe_w"], ["probe_out"], name="probe", group=ch)]
    g2 = helper.make_graph(nodes, "g", list(g.input), [helper.make_tensor_value_info("probe_out", TensorProto.FLOAT, None)], initializer=inits)
    m2 = helper.make_model(g2, opset_imports=m.opset_import); m2.ir_version = m.ir_version
    p = os.path.join(DIR, f"{c.name}.onnx")
    onnx.save(m2, p)
    r = subprocess.run([BIN, "import", p, "--out", os.path.join(DIR, "x.json"), "--all-convs"], capture_output=True, text=True)
    if r.returncode == 0:
        layer = json.load(open(os.path.join(DIR, "x.json")))["layers"][-1]
        if [layer["in_channels"], *layer["input"]] == want[1:]:
            res["ok"] += 1
        else:
            res["wrong"] += 1
            fails["WRONG"].append(f"{c.name}: {[layer['in_channels'], *layer['input']]} != {want[1:]}")
    else:
        msg = r.stderr.strip().splitlines()[0] if r.stderr.strip() else "?"
        op = re.search(r'\((?:[\w.]+\.)?(\w+)\): ', msg)
        key = op.group(1) if op else msg[:80]
        if "does not infer shapes through" in msg:
            res["unsupported"] += 1; fails["UNSUPPORTED " + key].append(c.name)
        elif key == "QLinearConv":
            # --all-convs imports the QLinearConv itself as an int8 layer, which its test
            # model's parameters (graph inputs, uint8 weights) cannot be.
            res["int8_refused"] += 1; fails["INT8 REFUSED " + key].append(c.name + ": " + msg[msg.find("): ")+3:][:160])
        else:
            res["error"] += 1; fails["ERROR " + key].append(c.name + ": " + msg[msg.find("): ")+3:][:160])
    os.remove(p)
print(res)
for k, v in sorted(fails.items(), key=lambda kv: -len(kv[1])):
    print(len(v), k, v[:3])
