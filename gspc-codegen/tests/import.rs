//! ONNX import: the fixtures of `tests/onnx/fixtures/` (made by
//! `scripts/make_onnx_fixtures.py`), models built here message by message for the edge
//! cases, the exact error messages, robustness against damaged bytes, and the
//! `gspc-codegen import` command.

use gspc_codegen::import::onnx::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor,
    ValueInfoProto, attribute_type, data_type,
};
use gspc_codegen::import::{self, ImportOptions, Imported};
use gspc_codegen::{Activation, Error, LayerSpec};
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::Command;

// ---------------------------------------------------------------------------------------
// helpers

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/onnx/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).expect("read the fixture")
}

fn import_fixture(name: &str, options: &ImportOptions) -> Result<Imported, Error> {
    import::import(name, &fixture(name), options)
}

fn messages(r: Result<Imported, Error>) -> Vec<String> {
    match r {
        Ok(i) => panic!("expected an error, imported {:?}", i.spec_json),
        Err(e) => e.messages(),
    }
}

fn all_convs() -> ImportOptions {
    ImportOptions {
        all_convs: true,
        ..Default::default()
    }
}

/// A layer spec written out: name, in, out, groups, kernel, stride, padding, dilation,
/// input, bias, activation.
#[allow(clippy::too_many_arguments)]
fn layer(
    name: &str,
    in_channels: usize,
    out_channels: usize,
    groups: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    input: [usize; 2],
    bias: bool,
    activation: Activation,
) -> LayerSpec {
    LayerSpec {
        name: name.to_string(),
        in_channels,
        out_channels,
        groups,
        kernel: [kernel; 2],
        stride: [stride; 2],
        padding: [padding; 2],
        dilation: [dilation; 2],
        input,
        bias,
        activation,
        count: 1,
        strategy: None,
        oc_block: None,
    }
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: attribute_type::INT,
        i: Some(v),
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: attribute_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: attribute_type::FLOAT,
        f: Some(v),
        ..Default::default()
    }
}

fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: attribute_type::STRING,
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.to_string(),
        name: name.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

/// A Conv node with explicit pads (`[p, p, p, p]`), stride 1.
fn conv(name: &str, x: &str, w: &str, b: Option<&str>, y: &str, group: i64, pad: i64) -> NodeProto {
    let mut inputs = vec![x, w];
    if let Some(b) = b {
        inputs.push(b);
    }
    node(
        "Conv",
        name,
        &inputs,
        &[y],
        vec![attr_int("group", group), attr_ints("pads", &[pad; 4])],
    )
}

/// A float initializer with seeded values, as raw data.
fn init(name: &str, dims: &[i64]) -> TensorProto {
    let n: i64 = dims.iter().product();
    let data: Vec<f32> = (0..n).map(|i| ((i * 7 + 3) % 11) as f32 * 0.25 - 1.0).collect();
    TensorProto {
        name: name.to_string(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn init_i64(name: &str, data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: vec![data.len() as i64],
        data_type: data_type::INT64,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

fn scalar(name: &str, v: f32) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        data_type: data_type::FLOAT,
        float_data: vec![v],
        ..Default::default()
    }
}

/// A value of float tensors with these dims (a number, or a name for a symbolic one).
fn value(name: &str, dims: &[&str]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| match d.parse::<i64>() {
                            Ok(v) => Dimension {
                                dim_value: Some(v),
                                ..Default::default()
                            },
                            Err(_) => Dimension {
                                dim_param: Some(d.to_string()),
                                ..Default::default()
                            },
                        })
                        .collect(),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn model(
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: &[&str],
    opset: i64,
) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            name: "g".to_string(),
            node: nodes,
            initializer,
            input: inputs,
            output: outputs
                .iter()
                .map(|o| ValueInfoProto {
                    name: o.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn run_import(bytes: &[u8], options: &ImportOptions) -> Result<Imported, Error> {
    import::import("t.onnx", bytes, options)
}

/// One grouped conv `x [1, 4, 8, 8]` -> `y` (4 -> 4 channels, group 2, 3x3), with `extra`
/// attributes replacing the pads.
fn one_conv(attrs: Vec<AttributeProto>) -> Vec<u8> {
    let mut a = vec![attr_int("group", 2)];
    a.extend(attrs);
    model(
        vec![node("Conv", "c", &["x", "w"], &["y"], a)],
        vec![init("w", &[4, 2, 3, 3])],
        vec![value("x", &["1", "4", "8", "8"])],
        &["y"],
        13,
    )
}

// ---------------------------------------------------------------------------------------
// small_net: the end-to-end fixture

#[test]
fn small_net_imports_every_grouped_conv_with_bias_and_fused_activations() {
    let i = import_fixture("small_net.onnx", &Default::default()).expect("imports");
    use Activation::{Relu, Relu6};
    const NONE: Activation = Activation::None;
    assert_eq!(i.model, "small_net");
    assert_eq!(i.spec.model, "small_net");
    assert_eq!(
        i.spec.layers,
        vec![
            layer("block1_conv_0", 8, 16, 2, 3, 1, 1, 1, [12, 10], true, Relu),
            layer("conv_2", 16, 16, 16, 3, 2, 1, 1, [12, 10], true, Relu6),
            layer("stage2_expand", 16, 32, 4, 1, 1, 0, 1, [6, 5], false, NONE),
            layer("stage2_expand_2", 32, 64, 32, 3, 1, 1, 1, [6, 5], false, Relu),
            layer("output", 64, 16, 4, 3, 1, 0, 2, [6, 5], true, NONE),
        ]
    );
    // The spec text is the spec, and `check` accepts it.
    let reparsed = gspc_codegen::spec::parse("small_net.onnx", &i.spec_json).expect("valid");
    assert_eq!(reparsed, i.spec);
    assert!(i.spec_json.starts_with("{\"model\": \"small_net\", \"layers\": [\n  {\"name\": \"block1_conv_0\", \"in_channels\": 8, \"out_channels\": 16, \"groups\": 2, \"kernel\": [3, 3], \"stride\": [1, 1], \"padding\": [1, 1], \"dilation\": [1, 1], \"input\": [12, 10], \"bias\": true, \"activation\": \"relu\"},\n"));
    // Sources, values, keys.
    let rows: Vec<(&str, &str, Option<&str>, &str, &str, Option<&str>)> = i
        .layers
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.source.as_str(),
                l.fused.as_deref(),
                l.input.as_str(),
                l.output.as_str(),
                l.bias_key.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "block1_conv_0",
                "graph.node[0] \"/block1/conv.0\" (Conv)",
                Some("graph.node[1] \"/block1/relu\" (Relu)"),
                "input",
                "r0",
                Some("block1_conv_0.bias")
            ),
            (
                "conv_2",
                "graph.node[2] \"Conv_2\" (Conv)",
                Some("graph.node[3] \"Clip_3\" (Clip)"),
                "r0",
                "r1",
                Some("conv_2.bias")
            ),
            (
                "stage2_expand",
                "graph.node[4] \"stage2/expand\" (Conv)",
                None,
                "r1",
                "c2",
                None
            ),
            (
                "stage2_expand_2",
                "graph.node[5] \"Stage2:Expand\" (Conv)",
                Some("graph.node[6] \"Relu_6\" (Relu)"),
                "c2",
                "r3",
                None
            ),
            (
                "output",
                "graph.node[7] (Conv)",
                None,
                "r3",
                "output",
                Some("output.bias")
            ),
        ]
    );
    assert_eq!(
        i.layers.iter().map(|l| l.weight_key.as_str()).collect::<Vec<_>>(),
        [
            "block1_conv_0.weight",
            "conv_2.weight",
            "stage2_expand.weight",
            "stage2_expand_2.weight",
            "output.weight"
        ]
    );
    assert_eq!(
        i.notes,
        ["3 Relu/Clip node(s) fused into the layer before them (the layer's output is theirs; do not run them separately)"]
    );
}

#[test]
fn small_net_weights_are_the_initializers() {
    let bytes = fixture("small_net.onnx");
    let i = import::import("small_net.onnx", &bytes, &Default::default()).expect("imports");
    let model = ModelProto::decode(bytes.as_slice()).expect("decodes");
    let graph = model.graph.expect("graph");
    let initializer = |name: &str| -> (Vec<usize>, Vec<u8>) {
        let t = graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("initializer {name}"));
        assert_eq!(t.data_type, data_type::FLOAT);
        (t.dims.iter().map(|&d| d as usize).collect(), t.raw_data.clone())
    };
    let st = safetensors::SafeTensors::deserialize(&i.weights).expect("valid safetensors");
    let mut expected = 0;
    for (l, info) in i.spec.layers.iter().zip(&i.layers) {
        let conv = &graph.node[info.node];
        let w = st.tensor(&format!("{}.weight", l.name)).expect("weights");
        assert_eq!(w.dtype(), safetensors::Dtype::F32);
        assert_eq!(
            w.shape(),
            [l.out_channels, l.in_channels / l.groups, l.kernel[0], l.kernel[1]]
        );
        let (dims, raw) = initializer(&conv.input[1]);
        assert_eq!(w.shape(), dims.as_slice());
        assert_eq!(w.data(), raw.as_slice(), "{}", l.name);
        expected += 1;
        match conv.input.get(2) {
            Some(b) => {
                let t = st.tensor(&format!("{}.bias", l.name)).expect("bias");
                assert_eq!(t.shape(), [l.out_channels]);
                assert_eq!(t.data(), initializer(b).1.as_slice(), "{}", l.name);
                assert!(l.bias);
                expected += 1;
            }
            None => assert!(!l.bias),
        }
    }
    assert_eq!(st.len(), expected);
}

// ---------------------------------------------------------------------------------------
// shapes_net: shapes through the ops in between

#[test]
fn shapes_are_inferred_through_the_ops_in_between() {
    use Activation::{Relu, Relu6};
    const NONE: Activation = Activation::None;
    let grouped = vec![
        // After Conv -> BatchNormalization -> Relu -> MaxPool(3, 2, ceil_mode): 8x7.
        layer("block_grouped", 16, 16, 4, 3, 1, 1, 1, [8, 7], true, NONE),
        // After Add, Relu and the channel shuffle (Reshape 0/-1, Transpose, Reshape).
        layer("down_dw", 16, 32, 16, 3, 2, 1, 1, [8, 7], true, Relu6),
        // After Concat with an AveragePool and GlobalAveragePool.
        layer("se_reduce", 48, 12, 4, 1, 1, 0, 1, [1, 1], true, Relu),
        layer("se_expand", 12, 48, 4, 1, 1, 0, 1, [1, 1], true, NONE),
        // After HardSigmoid and a broadcasting Mul; SAME_UPPER with stride 1 is symmetric.
        layer("same_dw", 48, 48, 48, 3, 1, 1, 1, [4, 4], true, NONE),
        // After Pad [0, 0, 1, 1, 0, 0, 1, 1].
        layer("head_conv", 48, 24, 2, 3, 1, 0, 1, [6, 6], false, NONE),
    ];
    let i = import_fixture("shapes_net.onnx", &Default::default()).expect("imports");
    assert_eq!(i.spec.layers, grouped);
    assert_eq!(
        i.notes,
        [
            "1 Conv node(s) with group 1 not imported (--all-convs imports them): graph.node[0] \"stem\" (Conv)",
            "2 Relu/Clip node(s) fused into the layer before them (the layer's output is theirs; do not run them separately)",
            "the app runs the rest of the graph itself: Conv x1, BatchNormalization x1, Relu x2, MaxPool x1, Add x1, Reshape x2, Transpose x1, AveragePool x1, Concat x1, GlobalAveragePool x2, HardSigmoid x1, Mul x1, Pad x1, Flatten x1, Gemm x1",
        ]
    );
    let all = import_fixture("shapes_net.onnx", &all_convs()).expect("imports");
    let mut with_stem = vec![layer("stem", 3, 16, 1, 3, 2, 1, 1, [32, 28], true, NONE)];
    with_stem.extend(grouped);
    assert_eq!(all.spec.layers, with_stem);
    assert_eq!(
        all.notes[0],
        "2 Relu/Clip node(s) fused into the layer before them (the layer's output is theirs; do not run them separately)"
    );
    assert_eq!(
        all.notes[1],
        "graph.node[1] \"bn\" (BatchNormalization) follows layer stem and is not folded into it: the app runs it (or fold it into the Conv before exporting)"
    );
}

// ---------------------------------------------------------------------------------------
// the error fixtures

#[test]
fn an_unsupported_op_in_front_of_a_conv_is_named() {
    assert_eq!(
        messages(import_fixture("unsupported_op.onnx", &Default::default())),
        ["unsupported_op.onnx: graph.node[0] \"up\" (Resize): the importer does not infer shapes through Resize and the model has no value_info for its output \"up_out\", which graph.node[1] \"conv_after\" (Conv) needs: save the model with its shapes (onnx.shape_inference.infer_shapes) or set them in value_info"]
    );
}

#[test]
fn value_info_gives_the_shapes_the_importer_does_not_infer() {
    let mut m = ModelProto::decode(fixture("unsupported_op.onnx").as_slice()).expect("decodes");
    let g = m.graph.as_mut().expect("graph");
    g.value_info.push(value("up_out", &["1", "4", "10", "10"]));
    let i = run_import(&m.encode_to_vec(), &Default::default()).expect("imports");
    assert_eq!(
        i.spec.layers,
        [layer("conv_after", 4, 4, 2, 3, 1, 1, 1, [10, 10], false, Activation::None)]
    );
    assert_eq!(i.notes, ["the app runs the rest of the graph itself: Resize x1"]);
}

#[test]
fn a_dynamic_input_shape_names_the_input_the_conv_and_the_flag() {
    assert_eq!(
        messages(import_fixture("dynamic_shape.onnx", &Default::default())),
        ["dynamic_shape.onnx: graph.input[0] \"x\": the shape [N, 3, H, W] has dynamic dimensions (H, W), and graph.node[0] \"conv\" (Conv) needs static shapes: set it with --input-shape x=1x3x<H>x<W>"]
    );
    let options = ImportOptions {
        input_shapes: vec![("x".to_string(), vec![1, 3, 20, 16])],
        ..Default::default()
    };
    let i = import_fixture("dynamic_shape.onnx", &options).expect("imports");
    assert_eq!(
        i.spec.layers,
        [layer("conv", 3, 6, 3, 3, 1, 1, 1, [20, 16], false, Activation::None)]
    );
    assert_eq!(i.notes, Vec::<String>::new());
}

#[test]
fn asymmetric_pads_are_refused_with_the_rule() {
    assert_eq!(
        messages(import_fixture("asym_pads.onnx", &Default::default())),
        ["asym_pads.onnx: graph.node[0] \"asym\" (Conv): pads [0, 0, 1, 1] (top, left, bottom, right) are asymmetric; gspc pads both sides of an axis equally, so asymmetric padding is not supported (pad with an explicit Pad node in front of a Conv with symmetric pads)"]
    );
}
