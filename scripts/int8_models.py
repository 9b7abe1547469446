"""One quantized (int8) convolution layer as an ONNX model and as a LiteRT .tflite model,
and the sessions that run them; shared by make_int8_fixtures.py (fixtures checked against
gspc's int8 reference) and peers_int8.py (the int8 peer benchmark).

A layer is a dict with gspc's spec fields (``in_channels``, ``out_channels``, ``groups``,
``kernel``, ``stride``, ``padding``, optional ``dilation``, ``input``, ``output``,
``activation``), the quantization parameters (``input_scale``, ``input_zero_point``,
``output_scale``, ``output_zero_point``, ``weight_scales``: one per output channel,
``activation_range``: the output clamp of ``activation_range()``) and the data: ``x``
(int8, [1, C, H, W]), ``w`` (int8, [K, C / groups, KH, KW], symmetric), ``bias`` (int32,
[K], at scale ``input_scale * weight_scales[k]``).

The activation is a clamp in the output's integer domain (TFLite's rule). Where that clamp
is the whole int8 range (relu with output zero point -128, relu6 with output scale 6/255),
the output's quantization implies it and the models leave it out, as ONNX Runtime's
quantizer does by default and as the f32 graph would need no node for.
"""

import flatbuffers
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter

FULL_RANGE = (-128, 127)


def round_half_away(v):
    return int(np.sign(v) * np.floor(np.abs(v) + 0.5))


def activation_range(act, out_scale, out_zp):
    """TFLite's CalculateActivationRangeQuantized for int8 (scale as f32)."""
    if act == "none":
        return FULL_RANGE
    lo = max(-128, out_zp)
    if act == "relu":
        return lo, 127
    six = out_zp + round_half_away(float(np.float32(6.0) / np.float32(out_scale)))
    return lo, min(127, six)


def bias_scales(c):
    return [float(np.float32(c["input_scale"]) * np.float32(s)) for s in c["weight_scales"]]


# ------------------------------------------------------------------------------ ONNX
def _act_type(uint8):
    """The ONNX type of the activations and what is added to an int8 value to get it:
    uint8 holds the same values shifted by 128 (ONNX Runtime's default on x86)."""
    return (TensorProto.UINT8, 128) if uint8 else (TensorProto.INT8, 0)


def _ort_common_inits(c, uint8):
    """Initializers both ONNX forms share: the scales and zero points, weights and bias."""
    cout = c["out_channels"]
    atype, shift = _act_type(uint8)
    return [
        helper.make_tensor("x_scale", TensorProto.FLOAT, [], [c["input_scale"]]),
        helper.make_tensor("x_zp", atype, [], [c["input_zero_point"] + shift]),
        helper.make_tensor("w", TensorProto.INT8, list(c["w"].shape), c["w"].tobytes(), raw=True),
        helper.make_tensor("w_scale", TensorProto.FLOAT, [cout], c["weight_scales"]),
        helper.make_tensor("w_zp", TensorProto.INT8, [cout], [0] * cout),
        helper.make_tensor("y_scale", TensorProto.FLOAT, [], [c["output_scale"]]),
        helper.make_tensor("y_zp", atype, [], [c["output_zero_point"] + shift]),
        helper.make_tensor("b", TensorProto.INT32, [cout], c["bias"].tolist()),
    ]


def _conv_attrs(c):
    ph, pw = c["padding"]
    return dict(group=c["groups"], kernel_shape=list(c["kernel"]), pads=[ph, pw, ph, pw],
                strides=list(c["stride"]), dilations=list(c.get("dilation", [1, 1])))


def _onnx_model(c, name, nodes, inits, uint8):
    """One graph x (int8 or uint8 NCHW) -> nodes -> y (the same type, NCHW)."""
    oh, ow = c["output"]
    atype = _act_type(uint8)[0]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", atype, list(c["x"].shape))],
        [helper.make_tensor_value_info("y", atype, [1, c["out_channels"], oh, ow])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def qlinearconv_model(c, uint8=False):
    """ONNX Runtime's QOperator form: QLinearConv, then a Clip to the activation's range
    unless that is the whole int8 range. `uint8`: activations as uint8 (the int8 values
    plus 128, zero points too; the same arithmetic)."""
    atype, shift = _act_type(uint8)
    inits = _ort_common_inits(c, uint8)
    conv_out = "y" if tuple(c["activation_range"]) == FULL_RANGE else "conv"
    nodes = [
        helper.make_node(
            "QLinearConv",
            ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "b"],
            [conv_out],
            **_conv_attrs(c),
        )
    ]
    if conv_out == "conv":
        inits += [
            helper.make_tensor("lo", atype, [], [c["activation_range"][0] + shift]),
            helper.make_tensor("hi", atype, [], [c["activation_range"][1] + shift]),
        ]
        nodes.append(helper.make_node("Clip", ["conv", "lo", "hi"], ["y"]))
    return _onnx_model(c, c["name"], nodes, inits, uint8)


def qdq_model(c, uint8=False):
    """The layer as ONNX Runtime's quantize_static writes it (QDQ format):
    DequantizeLinear on input, per-channel weights and int32 bias, a float Conv, Relu or
    Clip(0, 6) unless the output's quantization implies it, QuantizeLinear. ONNX Runtime
    fuses what it can into QLinearConv when it creates the session (in 1.32 on x86 only
    with `uint8` activations, its quantizer's default there; with int8 it runs the float
    Conv between them)."""
    cout = c["out_channels"]
    inits = _ort_common_inits(c, uint8) + [
        helper.make_tensor("b_scale", TensorProto.FLOAT, [cout], bias_scales(c)),
        helper.make_tensor("b_zp", TensorProto.INT32, [cout], [0] * cout),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "x_scale", "x_zp"], ["xf"]),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zp"], ["wf"], axis=0),
        helper.make_node("DequantizeLinear", ["b", "b_scale", "b_zp"], ["bf"], axis=0),
        helper.make_node("Conv", ["xf", "wf", "bf"], ["conv"], **_conv_attrs(c)),
    ]
    act = c["activation"] if tuple(c["activation_range"]) != FULL_RANGE else "none"
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["conv"], ["act"]))
    elif act == "relu6":
        inits.append(helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]))
        inits.append(helper.make_tensor("six", TensorProto.FLOAT, [], [6.0]))
        nodes.append(helper.make_node("Clip", ["conv", "zero", "six"], ["act"]))
    last = "conv" if act == "none" else "act"
    nodes.append(helper.make_node("QuantizeLinear", [last, "y_scale", "y_zp"], ["y"]))
    return _onnx_model(c, c["name"] + "_qdq", nodes, inits, uint8)


def ort_session(model, threads=1):
    """ONNX Runtime's CPU provider with every graph optimization; `threads` intra-op
    threads, one inter-op thread, sequential execution (as ../shared/peers/peers.py)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------- LiteRT
class _AlignedBuilder(flatbuffers.Builder):
    """Aligns byte vectors of 16 bytes or more (the weight and bias buffers) to 16."""

    def StartVector(self, elemSize, numElems, alignment):
        if elemSize == 1 and numElems >= 16:
            alignment = max(alignment, 16)
        return super().StartVector(elemSize, numElems, alignment)


def tflite_model(c, padding="SAME"):
    """A .tflite flatbuffer (LiteRT's schema) of one DEPTHWISE_CONV_2D (groups ==
    in_channels; depth multiplier out / in) or CONV_2D (grouped: filter [O, KH, KW,
    I / groups]), NHWC, per-channel int8 weights, int32 bias, the activation fused.
    `padding` is "SAME" or "VALID" (TFLite has no other); the caller checks that it gives
    the layer's output size."""
    cin, cout, groups = c["in_channels"], c["out_channels"], c["groups"]
    depthwise = groups == cin and groups > 1
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
        # [1, KH, KW, C * multiplier]; per-channel along the last axis.
        filt = np.transpose(c["w"], (1, 2, 3, 0))
        fdim = 3
    else:
        # [O, KH, KW, I / groups].
        filt = np.transpose(c["w"], (0, 2, 3, 1))
        fdim = 0
    buffers = [tfl.BufferT() for _ in range(5)]  # 0: empty sentinel; 1 in; 2 filter; 3 bias; 4 out
    buffers[2].data = np.ascontiguousarray(filt).view(np.uint8).flatten()
    buffers[3].data = np.ascontiguousarray(c["bias"].astype("<i4")).view(np.uint8).flatten()
    ws = c["weight_scales"]
    tensors = [
        tensor("x", [1, h, w_, cin], tfl.TensorType.INT8, 1,
               quant([c["input_scale"]], [c["input_zero_point"]])),
        tensor("w", list(filt.shape), tfl.TensorType.INT8, 2, quant(ws, [0] * cout, fdim)),
        tensor("b", [cout], tfl.TensorType.INT32, 3, quant(bias_scales(c), [0] * cout)),
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
        opts.depthMultiplier = cout // cin
        op.builtinOptionsType = tfl.BuiltinOptions.DepthwiseConv2DOptions
        code.builtinCode = code.deprecatedBuiltinCode = tfl.BuiltinOperator.DEPTHWISE_CONV_2D
    else:
        opts = tfl.Conv2DOptionsT()
        op.builtinOptionsType = tfl.BuiltinOptions.Conv2DOptions
        code.builtinCode = code.deprecatedBuiltinCode = tfl.BuiltinOperator.CONV_2D
    code.version = 3
    opts.padding = getattr(tfl.Padding, padding)
    opts.strideH, opts.strideW = c["stride"]
    opts.dilationHFactor, opts.dilationWFactor = c.get("dilation", [1, 1])
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
    model.description = "gspc int8 layer " + c["name"]
    b = _AlignedBuilder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def litert_interpreter(c, resolver, threads=1, padding="SAME"):
    """A LiteRT interpreter of tflite_model(c, padding), tensors allocated and the input
    (c["x"] as NHWC) set; invoke() runs the layer, litert_output() reads it."""
    interp = Interpreter(model_content=tflite_model(c, padding),
                         experimental_op_resolver_type=resolver, num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    interp.set_tensor(inp, np.ascontiguousarray(np.transpose(c["x"], (0, 2, 3, 1))))
    return interp


def litert_output(interp):
    """The output of the last invoke(), as NCHW."""
    out = interp.get_output_details()[0]["index"]
    return np.transpose(interp.get_tensor(out), (0, 3, 1, 2))
