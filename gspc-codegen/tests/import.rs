//! ONNX import: the fixtures of `tests/onnx/fixtures/` (made by
//! `scripts/make_onnx_fixtures.py`), models built here message by message for the edge
//! cases, the exact error messages, robustness against damaged bytes, and the
//! `gspc-codegen import` command.

mod common;

use common::*;
use gspc_codegen::import::onnx::{
    AttributeProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    ValueInfoProto, attribute_type, data_type,
};
use gspc_codegen::import::{self, ImportOptions, Imported};
use gspc_codegen::{Activation, Error, LayerSpec};
use predicates::prelude::*;
use prost::Message;

// ---------------------------------------------------------------------------------------
// helpers

/// The fixtures of this file, made by `scripts/make_onnx_fixtures.py`.
const FIXTURES: &str = "../tests/onnx/fixtures";

fn import_fixture(name: &str, options: &ImportOptions) -> Result<Imported, Error> {
    import::import(name, &fixture(FIXTURES, name), options)
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
        compact: None,
        direct: None,
        accumulators: None,
        quantization: None,
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
    let data: Vec<f32> = (0..n)
        .map(|i| ((i * 7 + 3) % 11) as f32 * 0.25 - 1.0)
        .collect();
    tensor(name, dims, &data)
}

/// A one-dimensional int64 constant.
fn init_i64(name: &str, data: &[i64]) -> TensorProto {
    ints(name, &[data.len() as i64], data)
}

/// A float scalar (no dims), in `float_data`.
fn scalar(name: &str, v: f32) -> TensorProto {
    floats(name, &[], &[v])
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

/// name, source, fused, input value, output value, bias key.
type Row<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a str,
    Option<&'a str>,
);

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
            layer(
                "stage2_expand_2",
                32,
                64,
                32,
                3,
                1,
                1,
                1,
                [6, 5],
                false,
                Relu
            ),
            layer("output", 64, 16, 4, 3, 1, 0, 2, [6, 5], true, NONE),
        ]
    );
    // The spec text is the spec, and `check` accepts it.
    let reparsed = gspc_codegen::spec::parse("small_net.onnx", &i.spec_json).expect("valid");
    assert_eq!(reparsed, i.spec);
    assert!(i.spec_json.starts_with("{\"model\": \"small_net\", \"layers\": [\n  {\"name\": \"block1_conv_0\", \"in_channels\": 8, \"out_channels\": 16, \"groups\": 2, \"kernel\": [3, 3], \"stride\": [1, 1], \"padding\": [1, 1], \"dilation\": [1, 1], \"input\": [12, 10], \"bias\": true, \"activation\": \"relu\"},\n"));
    // Sources, values, keys.
    let rows: Vec<Row> = i
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
        i.layers
            .iter()
            .map(|l| l.weight_key.as_str())
            .collect::<Vec<_>>(),
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
        [
            "3 Relu/Clip node(s) fused into the layer before them (the layer's output is theirs; do not run them separately)"
        ]
    );
}

#[test]
fn small_net_weights_are_the_initializers() {
    let bytes = fixture(FIXTURES, "small_net.onnx");
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
        (
            t.dims.iter().map(|&d| d as usize).collect(),
            t.raw_data.clone(),
        )
    };
    let st = safetensors::SafeTensors::deserialize(&i.weights).expect("valid safetensors");
    let mut expected = 0;
    for (l, info) in i.spec.layers.iter().zip(&i.layers) {
        let conv = &graph.node[info.node];
        let w = st.tensor(&format!("{}.weight", l.name)).expect("weights");
        assert_eq!(w.dtype(), safetensors::Dtype::F32);
        assert_eq!(
            w.shape(),
            [
                l.out_channels,
                l.in_channels / l.groups,
                l.kernel[0],
                l.kernel[1]
            ]
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
            "1 Conv node(s) with group 1 not imported (importing every Conv takes them too): graph.node[0] \"stem\" (Conv)",
            "2 Relu/Clip node(s) fused into the layer before them (the layer's output is theirs; do not run them separately)",
            "the app runs the rest of the graph itself: Conv x1, BatchNormalization x1, Relu x2, MaxPool x1, Add x1, Reshape x2, Transpose x1, AveragePool x1, Concat x1, GlobalAveragePool x2, HardSigmoid x1, Mul x1, Pad x1, Flatten x1, Gemm x1",
        ]
    );
    let all = import_fixture("shapes_net.onnx", &all_convs()).expect("imports");
    // With --all-convs the stem's BatchNormalization is folded and its Relu fused.
    let mut with_stem = vec![layer("stem", 3, 16, 1, 3, 2, 1, 1, [32, 28], true, Relu)];
    with_stem.extend(grouped);
    assert_eq!(all.spec.layers, with_stem);
    assert_eq!(
        all.notes[..2],
        [
            "1 node(s) folded into the weights and bias of the layer before them (BatchNormalization x1): the layer's output is theirs; do not run them separately",
            "3 Relu/Clip node(s) fused into the layer before them (the layer's output is theirs; do not run them separately)",
        ]
    );
    assert_eq!(
        all.layers[0].folded,
        ["graph.node[1] \"bn\" (BatchNormalization)"]
    );
    assert_eq!(
        all.layers[0].fused.as_deref(),
        Some("graph.node[2] \"stem_relu\" (Relu)")
    );
    assert_eq!(all.layers[0].output, "stem_relu");
}

// ---------------------------------------------------------------------------------------
// the error fixtures

#[test]
fn an_unsupported_op_in_front_of_a_conv_is_named() {
    assert_eq!(
        messages(import_fixture("unsupported_op.onnx", &Default::default())),
        [
            "unsupported_op.onnx: graph.node[0] \"up\" (com.example.Upsample2x): the importer does not infer shapes through Upsample2x and the model has no value_info for its output \"up_out\", which graph.node[1] \"conv_after\" (Conv) needs: save the model with its shapes (onnx.shape_inference.infer_shapes) or set them in value_info"
        ]
    );
}

#[test]
fn value_info_gives_the_shapes_the_importer_does_not_infer() {
    let mut m =
        ModelProto::decode(fixture(FIXTURES, "unsupported_op.onnx").as_slice()).expect("decodes");
    let g = m.graph.as_mut().expect("graph");
    g.value_info.push(value("up_out", &["1", "4", "10", "10"]));
    let i = run_import(&m.encode_to_vec(), &Default::default()).expect("imports");
    assert_eq!(
        i.spec.layers,
        [layer(
            "conv_after",
            4,
            4,
            2,
            3,
            1,
            1,
            1,
            [10, 10],
            false,
            Activation::None
        )]
    );
    assert_eq!(
        i.notes,
        ["the app runs the rest of the graph itself: Upsample2x x1"]
    );
}

#[test]
fn a_dynamic_input_shape_names_the_input_the_conv_and_the_flag() {
    assert_eq!(
        messages(import_fixture("dynamic_shape.onnx", &Default::default())),
        [
            "dynamic_shape.onnx: graph.input[0] \"x\": the shape [N, 3, H, W] has dynamic dimensions (H, W), and graph.node[0] \"conv\" (Conv) needs static shapes: set the input shape x=1x3x<H>x<W>"
        ]
    );
    let options = ImportOptions {
        input_shapes: vec![("x".to_string(), vec![1, 3, 20, 16])],
        ..Default::default()
    };
    let i = import_fixture("dynamic_shape.onnx", &options).expect("imports");
    assert_eq!(
        i.spec.layers,
        [layer(
            "conv",
            3,
            6,
            3,
            3,
            1,
            1,
            1,
            [20, 16],
            false,
            Activation::None
        )]
    );
    assert_eq!(i.notes, Vec::<String>::new());
}

#[test]
fn asymmetric_pads_are_refused_with_the_rule() {
    assert_eq!(
        messages(import_fixture("asym_pads.onnx", &Default::default())),
        [
            "asym_pads.onnx: graph.node[0] \"asym\" (Conv): pads [0, 0, 1, 1] (top, left, bottom, right) are asymmetric; gspc pads both sides of an axis equally, so asymmetric padding is not supported (pad with an explicit Pad node in front of a Conv with symmetric pads)"
        ]
    );
}

// ---------------------------------------------------------------------------------------
// models built here: fusion rules

/// `x [1, 4, 8, 8]` -> grouped conv `c` -> `y`, then `after` nodes; `extra` initializers.
fn conv_then(
    after: Vec<NodeProto>,
    extra: Vec<TensorProto>,
    outputs: &[&str],
    opset: i64,
) -> Vec<u8> {
    let mut nodes = vec![conv("c", "x", "w", None, "y", 2, 1)];
    nodes.extend(after);
    let mut inits = vec![init("w", &[4, 2, 3, 3])];
    inits.extend(extra);
    model(
        nodes,
        inits,
        vec![value("x", &["1", "4", "8", "8"])],
        outputs,
        opset,
    )
}

fn activation_of(bytes: &[u8]) -> (Activation, String) {
    let i = run_import(bytes, &Default::default()).expect("imports");
    (i.spec.layers[0].activation, i.layers[0].output.clone())
}

#[test]
fn clip_bounds_as_inputs_and_as_attributes() {
    let clip = |inputs: &[&str]| node("Clip", "clip", inputs, &["z"], vec![]);
    let bounds = || {
        vec![
            scalar("zero", 0.0),
            scalar("six", 6.0),
            scalar("five", 5.0),
            scalar("minus", -1.0),
        ]
    };
    // Opset 11+: min and max are inputs.
    let cases: [(&[&str], Activation); 5] = [
        (&["y", "zero", "six"], Activation::Relu6),
        (&["y", "zero"], Activation::Relu),
        (&["y", "zero", ""], Activation::Relu),
        (&["y", "zero", "five"], Activation::None),
        (&["y", "minus", "six"], Activation::None),
    ];
    for (inputs, want) in cases {
        let (got, out) = activation_of(&conv_then(vec![clip(inputs)], bounds(), &["z"], 13));
        assert_eq!(got, want, "{inputs:?}");
        assert_eq!(out, if want == Activation::None { "y" } else { "z" });
    }
    // Before opset 11: attributes.
    let old = |attrs: Vec<AttributeProto>| {
        conv_then(
            vec![node("Clip", "clip", &["y"], &["z"], attrs)],
            vec![],
            &["z"],
            6,
        )
    };
    assert_eq!(
        activation_of(&old(vec![attr_float("min", 0.0), attr_float("max", 6.0)])).0,
        Activation::Relu6
    );
    assert_eq!(
        activation_of(&old(vec![attr_float("min", 0.0)])).0,
        Activation::Relu
    );
    assert_eq!(
        activation_of(&old(vec![attr_float("max", 6.0)])).0,
        Activation::None
    );
    // A bound that is not a constant: not fused.
    let dynamic = model(
        vec![
            conv("c", "x", "w", None, "y", 2, 1),
            clip(&["y", "zero", "m"]),
        ],
        vec![init("w", &[4, 2, 3, 3]), scalar("zero", 0.0)],
        vec![value("x", &["1", "4", "8", "8"]), value::<i64>("m", &[])],
        &["z"],
        13,
    );
    assert_eq!(activation_of(&dynamic).0, Activation::None);
}

#[test]
fn an_activation_is_fused_only_when_it_alone_reads_the_conv() {
    let relu = || node("Relu", "relu", &["y"], &["z"], vec![]);
    assert_eq!(
        activation_of(&conv_then(vec![relu()], vec![], &["z"], 13)),
        (Activation::Relu, "z".to_string())
    );
    // Also a graph output: the pre-activation value is needed.
    assert_eq!(
        activation_of(&conv_then(vec![relu()], vec![], &["z", "y"], 13)).0,
        Activation::None
    );
    // Also read by another node.
    let other = node("Add", "add", &["y", "z"], &["s"], vec![]);
    assert_eq!(
        activation_of(&conv_then(vec![relu(), other], vec![], &["s"], 13)).0,
        Activation::None
    );
    // Not an activation gspc fuses.
    let sig = node("Sigmoid", "sig", &["y"], &["z"], vec![]);
    assert_eq!(
        activation_of(&conv_then(vec![sig], vec![], &["z"], 13)).0,
        Activation::None
    );
    // A custom-domain Relu is not the standard one.
    let mut custom = relu();
    custom.domain = "com.example".to_string();
    assert_eq!(
        activation_of(&conv_then(vec![custom], vec![], &["z"], 13)).0,
        Activation::None
    );
}

// ---------------------------------------------------------------------------------------
// models built here: names

fn named_convs(names: &[&str]) -> Imported {
    let mut nodes = Vec::new();
    let mut prev = "x".to_string();
    for (i, n) in names.iter().enumerate() {
        let out = format!("v{i}");
        nodes.push(conv(n, &prev, "w", None, &out, 2, 1));
        prev = out;
    }
    let bytes = model(
        nodes,
        vec![init("w", &[4, 2, 3, 3])],
        vec![value("x", &["1", "4", "8", "8"])],
        &[&prev],
        13,
    );
    run_import(&bytes, &Default::default()).expect("imports")
}

#[test]
fn layer_names_are_valid_unique_identifiers() {
    let long = "Block".repeat(20);
    let i = named_convs(&[
        "fn",
        "1x1",
        "",
        "_",
        "conv",
        "Conv",
        "conv_2",
        "héllo wörld",
        "encoder.layers.0/DepthwiseConv",
        &long,
        &long,
        "Self",
        "x; } fn evil() { }",
    ]);
    let names: Vec<&str> = i.spec.layers.iter().map(|l| l.name.as_str()).collect();
    let long_name = "block_".repeat(10) + "bloc";
    assert_eq!(long_name.len(), 64);
    let long_2 = "block_".repeat(10) + "bl_2";
    assert_eq!(
        names,
        [
            "fn_conv",
            "conv_1x1",
            "v2",
            "v3",
            "conv",
            "conv_2",
            "conv_2_2",
            "h_llo_w_rld",
            "encoder_layers_0_depthwise_conv",
            long_name.as_str(),
            long_2.as_str(),
            "self_conv",
            "x_fn_evil",
        ]
    );
    for n in names {
        gspc_codegen::spec::check_identifier(n).expect("a valid name");
    }
}

#[test]
fn identifier_rules() {
    assert_eq!(import::identifier("/block1/conv.0"), "block1_conv_0");
    assert_eq!(import::identifier("Stage2:Expand"), "stage2_expand");
    assert_eq!(import::identifier("convBlockA"), "conv_block_a");
    assert_eq!(import::identifier("Conv2D"), "conv2d");
    assert_eq!(import::identifier("__a__b__"), "a_b");
    assert_eq!(import::identifier("0"), "conv_0");
    assert_eq!(import::identifier("match"), "match_conv");
    assert_eq!(import::identifier("///"), "");
    assert_eq!(import::identifier(&"a".repeat(1000)).len(), 64);
}

#[test]
fn the_model_name_comes_from_the_file_or_the_option() {
    let bytes = fixture(FIXTURES, "small_net.onnx");
    let name = |file: &str, model: Option<&str>| {
        let options = ImportOptions {
            model: model.map(str::to_string),
            ..Default::default()
        };
        import::import(file, &bytes, &options).map(|i| i.spec.model)
    };
    assert_eq!(name("dir/My-Model.v2.onnx", None).unwrap(), "my_model_v2");
    assert_eq!(name("dir/2024.onnx", None).unwrap(), "conv_2024");
    assert_eq!(name("dir/.onnx", None).unwrap(), "onnx");
    assert_eq!(name("dir/---.onnx", None).unwrap(), "model");
    assert_eq!(name("dir/type.onnx", None).unwrap(), "type_conv");
    assert_eq!(name("x.onnx", Some("net")).unwrap(), "net");
    assert_eq!(
        name("x.onnx", Some("my net")).unwrap_err().to_string(),
        "model name: \"my net\" is not a Rust identifier (ASCII letters, digits and '_', not starting with a digit)"
    );
}

// ---------------------------------------------------------------------------------------
// models built here: which convs, windows, weights

#[test]
fn ungrouped_convs_are_imported_only_with_all_convs() {
    let bytes = model(
        vec![
            conv("plain", "x", "w1", Some("b1"), "y", 1, 0),
            conv("grouped", "y", "w2", None, "z", 2, 1),
        ],
        vec![
            init("w1", &[4, 4, 1, 1]),
            init("b1", &[4]),
            init("w2", &[4, 2, 3, 3]),
        ],
        vec![value("x", &["1", "4", "8", "8"])],
        &["z"],
        13,
    );
    let i = run_import(&bytes, &Default::default()).expect("imports");
    assert_eq!(i.spec.layers.len(), 1);
    assert_eq!(i.spec.layers[0].name, "grouped");
    let all = run_import(&bytes, &all_convs()).expect("imports");
    assert_eq!(
        all.spec
            .layers
            .iter()
            .map(|l| (l.name.as_str(), l.groups, l.bias))
            .collect::<Vec<_>>(),
        [("plain", 1, true), ("grouped", 2, false)]
    );
    // Nothing grouped at all.
    let plain = model(
        vec![conv("plain", "x", "w1", None, "y", 1, 0)],
        vec![init("w1", &[4, 4, 1, 1])],
        vec![value("x", &["1", "4", "8", "8"])],
        &["y"],
        13,
    );
    assert_eq!(
        messages(run_import(&plain, &Default::default())),
        [
            "t.onnx: graph: the model has no grouped Conv to import: its 1 Conv node(s) have group 1 (importing every Conv takes them too)"
        ]
    );
}

#[test]
fn only_2d_convs_are_imported() {
    let one_d = |group: i64| {
        model(
            vec![node(
                "Conv",
                "c1d",
                &["x", "w"],
                &["y"],
                vec![attr_int("group", group)],
            )],
            vec![init("w", &[4, 4 / group, 3])],
            vec![value("x", &["1", "4", "16"])],
            &["y"],
            13,
        )
    };
    assert_eq!(
        messages(run_import(&one_d(2), &Default::default())),
        [
            "t.onnx: graph.node[0] \"c1d\" (Conv): only 2-D convolutions (4-D input and weights) can be imported; this one is 1-D"
        ]
    );
    // Ungrouped and not asked for: skipped without a word about its rank.
    assert_eq!(
        messages(run_import(&one_d(1), &Default::default())),
        [
            "t.onnx: graph: the model has no grouped Conv to import: its 1 Conv node(s) have group 1 (importing every Conv takes them too)"
        ]
    );
    assert_eq!(
        messages(run_import(&one_d(1), &all_convs())),
        [
            "t.onnx: graph.node[0] \"c1d\" (Conv): only 2-D convolutions (4-D input and weights) can be imported; this one is 1-D"
        ]
    );
}

#[test]
fn auto_pad_same_is_imported_when_symmetric() {
    let i = run_import(
        &one_conv(vec![attr_str("auto_pad", "SAME_UPPER")]),
        &Default::default(),
    )
    .expect("imports");
    assert_eq!(i.spec.layers[0].padding, [1, 1]);
    let i = run_import(
        &one_conv(vec![attr_str("auto_pad", "VALID")]),
        &Default::default(),
    )
    .expect("imports");
    assert_eq!(i.spec.layers[0].padding, [0, 0]);
    // Stride 2 over 8: out 4, needs 3 * 2 + 3 = 9 rows: one row of padding, at the end.
    assert_eq!(
        messages(run_import(
            &one_conv(vec![
                attr_str("auto_pad", "SAME_UPPER"),
                attr_ints("strides", &[2, 2])
            ]),
            &Default::default()
        )),
        [
            "t.onnx: graph.node[0] \"c\" (Conv): auto_pad SAME_UPPER pads this input asymmetrically (top, left, bottom, right = 0, 0, 1, 1); gspc pads both sides of an axis equally, so asymmetric padding is not supported (pad with an explicit Pad node in front of a Conv with symmetric pads)"
        ]
    );
    assert_eq!(
        messages(run_import(
            &one_conv(vec![attr_str("auto_pad", "SAME")]),
            &Default::default()
        )),
        [
            "t.onnx: graph.node[0] \"c\" (Conv): auto_pad \"SAME\" is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER"
        ]
    );
}

#[test]
fn strides_dilations_and_kernel_shape_are_read() {
    let i = run_import(
        &one_conv(vec![
            attr_ints("kernel_shape", &[3, 3]),
            attr_ints("strides", &[2, 1]),
            attr_ints("dilations", &[1, 2]),
            attr_ints("pads", &[1, 2, 1, 2]),
        ]),
        &Default::default(),
    )
    .expect("imports");
    let l = &i.spec.layers[0];
    assert_eq!(
        (l.kernel, l.stride, l.dilation, l.padding),
        ([3, 3], [2, 1], [1, 2], [1, 2])
    );
    assert_eq!(
        messages(run_import(
            &one_conv(vec![attr_ints("kernel_shape", &[5, 5])]),
            &Default::default()
        )),
        [
            "t.onnx: graph.node[0] \"c\" (Conv): kernel_shape [5, 5] differs from the weights' kernel [3, 3]"
        ]
    );
    assert_eq!(
        messages(run_import(
            &one_conv(vec![attr_ints("strides", &[0, 1])]),
            &Default::default()
        )),
        ["t.onnx: graph.node[0] \"c\" (Conv): strides 0 is out of range (1 to 4294967296)"]
    );
}

#[test]
fn the_generated_specs_limits_are_blamed_on_the_node() {
    let bytes = model(
        vec![node(
            "Conv",
            "big",
            &["x", "w"],
            &["y"],
            vec![attr_int("group", 2), attr_ints("pads", &[8, 8, 8, 8])],
        )],
        vec![init("w", &[4, 2, 17, 17])],
        vec![value("x", &["1", "4", "20", "20"])],
        &["y"],
        13,
    );
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        [
            "t.onnx: graph.node[0] \"big\" (Conv): kernel[0]: 17 is above the limit of 15 for the kernel size",
            "t.onnx: graph.node[0] \"big\" (Conv): kernel[1]: 17 is above the limit of 15 for the kernel size",
        ]
    );
}

#[test]
fn weights_and_bias_must_be_constants_of_the_right_size() {
    // Weights from a graph input.
    let bytes = model(
        vec![conv("c", "x", "w", None, "y", 2, 1)],
        vec![],
        vec![
            value("x", &["1", "4", "8", "8"]),
            value("w", &["4", "2", "3", "3"]),
        ],
        &["y"],
        13,
    );
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        [
            "t.onnx: graph.node[0] \"c\" (Conv): the weights \"w\" are not an initializer or a Constant: gspc needs them at import time (export the model with constant weights)"
        ]
    );
    // A bias of the wrong length, and truncated raw data in another conv: both reported.
    let mut short = init("w2", &[4, 2, 3, 3]);
    short.raw_data.truncate(10);
    let bytes = model(
        vec![
            conv("c", "x", "w", Some("b"), "y", 2, 1),
            conv("d", "y", "w2", None, "z", 2, 1),
        ],
        vec![init("w", &[4, 2, 3, 3]), init("b", &[3]), short],
        vec![value("x", &["1", "4", "8", "8"])],
        &["z"],
        13,
    );
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        [
            "t.onnx: graph.node[0] \"c\" (Conv): the bias has 3 values, the weights [4, 2, 3, 3] have 4 output channels",
            "t.onnx: graph.node[1] \"d\" (Conv): weights: tensor \"w2\" has dims [4, 2, 3, 3] (72 elements of 4 bytes) but 10 bytes of raw_data",
        ]
    );
    // Weights in an external file.
    let mut ext = init("w", &[4, 2, 3, 3]);
    ext.raw_data.clear();
    ext.data_location = 1;
    ext.external_data = vec![StringStringEntryProto {
        key: "location".to_string(),
        value: "weights.bin".to_string(),
    }];
    let bytes = model(
        vec![conv("c", "x", "w", None, "y", 2, 1)],
        vec![ext],
        vec![value("x", &["1", "4", "8", "8"])],
        &["y"],
        13,
    );
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        [
            "t.onnx: graph.initializer[0]: tensor \"w\": external data \"weights.bin\": this import was given the model's bytes only and reads no files: import the model from its path (import::import_file, gspc-codegen import) or save it with its weights inside (onnx.save_model(model, path, save_as_external_data=False))"
        ]
    );
    // Channels that do not match the input.
    let bytes = model(
        vec![conv("c", "x", "w", None, "y", 2, 1)],
        vec![init("w", &[4, 3, 3, 3])],
        vec![value("x", &["1", "4", "8", "8"])],
        &["y"],
        13,
    );
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        [
            "t.onnx: graph.node[0] \"c\" (Conv): the weights [4, 3, 3, 3] have 3 input channels per group, the input [1, 4, 8, 8] has 4 channels in 2 groups (2 per group)"
        ]
    );
}

#[test]
fn constant_nodes_and_identity_weights_are_constants() {
    // Weights through Constant -> Identity (as exporters share weights); a Reshape whose
    // shape is a Constant node with value_ints.
    let constant = NodeProto {
        op_type: "Constant".to_string(),
        output: vec!["wc".to_string()],
        attribute: vec![AttributeProto {
            name: "value".to_string(),
            r#type: attribute_type::TENSOR,
            t: Some(init("", &[4, 2, 3, 3])),
            ..Default::default()
        }],
        ..Default::default()
    };
    let shape = NodeProto {
        op_type: "Constant".to_string(),
        output: vec!["shape".to_string()],
        attribute: vec![attr_ints("value_ints", &[1, 4, 8, -1])],
        ..Default::default()
    };
    let bytes = model(
        vec![
            constant,
            node("Identity", "", &["wc"], &["w"], vec![]),
            shape,
            node("Reshape", "r", &["x", "shape"], &["xr"], vec![]),
            conv("c", "xr", "w", None, "y", 2, 1),
        ],
        vec![],
        vec![value("x", &["1", "4", "64"])],
        &["y"],
        13,
    );
    let i = run_import(&bytes, &Default::default()).expect("imports");
    assert_eq!(i.spec.layers[0].input, [8, 8]);
    let st = safetensors::SafeTensors::deserialize(&i.weights).expect("safetensors");
    let w = st.tensor("c.weight").expect("weights");
    assert_eq!(w.data(), init("", &[4, 2, 3, 3]).raw_data.as_slice());
}

// ---------------------------------------------------------------------------------------
// models built here: why a shape is unknown

#[test]
fn a_failed_shape_rule_names_the_node_and_the_conv() {
    let bytes = model(
        vec![
            node("Reshape", "r", &["x", "shape"], &["xr"], vec![]),
            conv("c", "xr", "w", None, "y", 2, 1),
        ],
        vec![init("w", &[4, 2, 3, 3]), init_i64("shape", &[1, 4, 8, 9])],
        vec![value("x", &["1", "4", "64"])],
        &["y"],
        13,
    );
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        [
            "t.onnx: graph.node[0] \"r\" (Reshape): the target shape [1, 4, 8, 9] has 288 elements, the input [1, 4, 64] has 256; the input shape of graph.node[1] \"c\" (Conv) depends on this node's output \"xr\""
        ]
    );
    // The shape from a graph input: not a constant.
    let bytes = model(
        vec![
            node("Reshape", "r", &["x", "shape"], &["xr"], vec![]),
            conv("c", "xr", "w", None, "y", 2, 1),
        ],
        vec![init("w", &[4, 2, 3, 3])],
        vec![value("x", &["1", "4", "64"]), value("shape", &["4"])],
        &["y"],
        13,
    );
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        [
            "t.onnx: graph.node[0] \"r\" (Reshape): input 1 \"shape\" is neither a constant (an initializer or a Constant node) nor computed from shapes by ops the importer folds (Shape, Size, Gather, Slice, Concat, Reshape, Squeeze, Unsqueeze, Flatten, Transpose, Identity, Cast, CastLike, element-wise arithmetic (Add, Sub, Mul, Div, Mod, Pow, Neg, Abs, Floor, Ceil, Round, Sqrt, Max, Min, Clip, ...), comparisons, Where, Range, ConstantOfShape, Expand, ReduceProd/Sum/Max/Min on known values); the input shape of graph.node[1] \"c\" (Conv) depends on this node's output \"xr\""
        ]
    );
}

#[test]
fn one_cause_is_reported_once_even_when_many_convs_need_it() {
    let mut custom = node("Upsample2x", "up", &["x"], &["u"], vec![]);
    custom.domain = "com.example".to_string();
    let bytes = model(
        vec![
            custom,
            conv("c1", "u", "w", None, "y1", 2, 1),
            conv("c2", "y1", "w", None, "y2", 2, 1),
            conv("c3", "x", "w", None, "y3", 2, 1),
            node("Relu", "", &["missing"], &["m"], vec![]),
            conv("c4", "m", "w", None, "y4", 2, 1),
        ],
        vec![init("w", &[4, 2, 3, 3])],
        vec![value("x", &["1", "4", "8", "8"])],
        &["y2", "y3", "y4"],
        13,
    );
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        [
            "t.onnx: graph.node[0] \"up\" (com.example.Upsample2x): the importer does not infer shapes through Upsample2x and the model has no value_info for its output \"u\", which graph.node[1] \"c1\" (Conv) needs: save the model with its shapes (onnx.shape_inference.infer_shapes) or set them in value_info",
            "t.onnx: graph: \"missing\" is not a graph input, an initializer or the output of an earlier node, and graph.node[5] \"c4\" (Conv) needs its shape (are the nodes sorted topologically?)",
        ]
    );
}

#[test]
fn input_shapes_from_options() {
    let bytes = model(
        vec![conv("c", "x", "w", None, "y", 2, 1)],
        vec![init("w", &[4, 2, 3, 3])],
        vec![value("x", &["batch", "4", "8", "8"])],
        &["y"],
        13,
    );
    // A dynamic batch alone is assumed 1.
    let i = run_import(&bytes, &Default::default()).expect("imports");
    assert_eq!(i.spec.layers[0].input, [8, 8]);
    assert_eq!(
        i.notes,
        [
            "graph.input[0] \"x\": the batch dimension batch is dynamic; assumed 1 (the spec is per image)"
        ]
    );
    let with = |shapes: &[(&str, &[usize])]| ImportOptions {
        input_shapes: shapes
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_vec()))
            .collect(),
        ..Default::default()
    };
    let i = run_import(&bytes, &with(&[("x", &[4, 4, 16, 12])])).expect("imports");
    assert_eq!(i.spec.layers[0].input, [16, 12]);
    assert_eq!(
        i.notes,
        [
            "graph.input[0] \"x\": the input shape [4, 4, 16, 12] given replaces the declared shape [batch, 4, 8, 8]",
            "graph.node[0] \"c\" (Conv): the input [4, 4, 16, 12] has batch 4; the spec is per image: run the layers once per image",
        ]
    );
    assert_eq!(
        run_import(&bytes, &with(&[("w", &[1])]))
            .unwrap_err()
            .to_string(),
        "input shape w: the model has no graph input \"w\" (its inputs: \"x\")"
    );
    assert_eq!(
        run_import(&bytes, &with(&[("x", &[1, 4, 8])]))
            .unwrap_err()
            .to_string(),
        "input shape x: 3 dimensions, but the model declares the input with 4 ([batch, 4, 8, 8])"
    );
    // No shape at all.
    let bytes = model(
        vec![conv("c", "x", "w", None, "y", 2, 1)],
        vec![init("w", &[4, 2, 3, 3])],
        vec![ValueInfoProto {
            name: "x".to_string(),
            ..Default::default()
        }],
        &["y"],
        13,
    );
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        [
            "t.onnx: graph.input[0] \"x\": the model declares no shape for it, and graph.node[0] \"c\" (Conv) needs static shapes: set the input shape x=NxCxHxW"
        ]
    );
}

#[test]
fn parse_input_shape_rules() {
    assert_eq!(
        import::parse_input_shape("input=1x3x224x224").unwrap(),
        ("input".to_string(), vec![1, 3, 224, 224])
    );
    assert_eq!(
        import::parse_input_shape("a=b=1,3,8,8").unwrap(),
        ("a=b".to_string(), vec![1, 3, 8, 8])
    );
    for bad in ["1x3x224x224", "=1x3", "x=", "x=1x0", "x=1xx3", "x=-1"] {
        assert!(import::parse_input_shape(bad).is_err(), "{bad}");
    }
    assert_eq!(
        import::parse_input_shape("x=1xHx8")
            .unwrap_err()
            .to_string(),
        "input shape \"x=1xHx8\": the dimensions must be whole numbers of 1 or more (expected NAME=DIMS, e.g. input=1x3x224x224)"
    );
}

// ---------------------------------------------------------------------------------------
// damaged bytes

#[test]
fn bytes_that_are_not_a_model_are_refused() {
    assert_eq!(
        messages(run_import(b"", &Default::default())),
        ["t.onnx: not an ONNX model: it has no graph (ModelProto.graph)"]
    );
    assert_eq!(
        messages(run_import(b"{\"model\": 1}", &Default::default())),
        [
            "t.onnx: not an ONNX model: the protobuf does not decode (failed to decode Protobuf message: buffer underflow)"
        ]
    );
    let mut m =
        ModelProto::decode(fixture(FIXTURES, "small_net.onnx").as_slice()).expect("decodes");
    m.opset_import.clear();
    assert_eq!(
        messages(run_import(&m.encode_to_vec(), &Default::default())),
        [
            "t.onnx: opset_import: the model imports no version of the standard operator set (domain \"\")"
        ]
    );
}

#[test]
fn damaged_models_give_errors_not_panics() {
    let good = fixture(FIXTURES, "shapes_net.onnx");
    let mut outcomes = [0usize; 2];
    // Every truncation of the model (each a valid protobuf prefix or not).
    for n in (0..good.len()).step_by(7) {
        outcomes[usize::from(run_import(&good[..n], &all_convs()).is_ok())] += 1;
    }
    // Random byte changes, a few at a time.
    let mut rng = Rng(0x5eed);
    for _ in 0..3000 {
        let mut b = good.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(b.len());
            b[at] = rng.next() as u8;
        }
        outcomes[usize::from(run_import(&b, &all_convs()).is_ok())] += 1;
        if let Err(e) = run_import(&b, &Default::default()) {
            assert!(!e.messages().is_empty());
            assert!(!matches!(e, Error::Internal(_)), "{e}");
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn hostile_sizes_are_refused_before_allocating() {
    // A graph input of 2^40 x 2^40: out of range, not an allocation.
    let bytes = model(
        vec![conv("c", "x", "w", None, "y", 2, 1)],
        vec![init("w", &[4, 2, 3, 3])],
        vec![value("x", &["1", "1099511627776", "1099511627776", "8"])],
        &["y"],
        13,
    );
    let m = messages(run_import(&bytes, &Default::default()));
    assert_eq!(
        m,
        [
            "t.onnx: graph.input[0] \"x\": the shape [1, 1099511627776, 1099511627776, 8] is out of range: dimension 1099511627776 of [1, 1099511627776, 1099511627776, 8] is above the limit of 4294967296, and graph.node[0] \"c\" (Conv) needs static shapes: set the input shape x=1x1099511627776x1099511627776x8"
        ]
    );
    // Weights claiming 2^62 elements with no data.
    let huge = TensorProto {
        name: "w".to_string(),
        dims: vec![1 << 31, 1 << 31, 1, 1],
        data_type: data_type::FLOAT,
        ..Default::default()
    };
    let bytes = model(
        vec![conv("c", "x", "w", None, "y", 2, 0)],
        vec![huge],
        vec![value("x", &["1", "4", "8", "8"])],
        &["y"],
        13,
    );
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        [
            "t.onnx: graph.node[0] \"c\" (Conv): weights: tensor \"w\": the shape [2147483648, 2147483648, 1, 1] has too many elements"
        ]
    );
}

// ---------------------------------------------------------------------------------------
// the command

const SMALL_NET: &str = "../tests/onnx/fixtures/small_net.onnx";

#[test]
fn cli_import_writes_the_spec_and_the_weights() {
    let dir = TempDir::new("ok");
    let (spec, weights) = (dir.arg("net.json"), dir.arg("net.safetensors"));
    let r = gspc(&["import", SMALL_NET, "--out", &spec, "--weights", &weights]);
    let i = import_fixture("small_net.onnx", &Default::default()).expect("imports");
    r.code(0).stderr("").stdout(format!(
            "small_net::block1_conv_0  graph.node[0] \"/block1/conv.0\" (Conv) + graph.node[1] \"/block1/relu\" (Relu): 8x12x10 -> 16x12x10, groups 2, kernel 3x3, stride 1x1, padding 1x1, dilation 1x1, bias, relu\n\
             small_net::conv_2  graph.node[2] \"Conv_2\" (Conv) + graph.node[3] \"Clip_3\" (Clip): 16x12x10 -> 16x6x5, groups 16, kernel 3x3, stride 2x2, padding 1x1, dilation 1x1, bias, relu6\n\
             small_net::stage2_expand  graph.node[4] \"stage2/expand\" (Conv): 16x6x5 -> 32x6x5, groups 4, kernel 1x1, stride 1x1, padding 0x0, dilation 1x1\n\
             small_net::stage2_expand_2  graph.node[5] \"Stage2:Expand\" (Conv) + graph.node[6] \"Relu_6\" (Relu): 32x6x5 -> 64x6x5, groups 32, kernel 3x3, stride 1x1, padding 1x1, dilation 1x1, relu\n\
             small_net::output  graph.node[7] (Conv): 64x6x5 -> 16x2x1, groups 4, kernel 3x3, stride 1x1, padding 0x0, dilation 2x2, bias\n\
             note: 3 Relu/Clip node(s) fused into the layer before them (the layer's output is theirs; do not run them separately)\n\
             wrote {spec} (5 layer(s))\n\
             wrote {weights} (8 tensors, {} bytes)\n",
        i.weights.len()
    ));
    assert_eq!(std::fs::read_to_string(&spec).expect("spec"), i.spec_json);
    assert_eq!(std::fs::read(&weights).expect("weights"), i.weights);
    // The spec is one `check` accepts.
    gspc(&["check", &spec]).code(0);
}

#[test]
fn cli_import_writes_weights_only_when_asked() {
    let dir = TempDir::new("noweights");
    let spec = dir.arg("s.json");
    gspc(&[
        "import",
        SMALL_NET,
        "--out",
        &spec,
        "--model",
        "net",
        "--all-convs",
    ])
    .code(0)
    .stdout(
        predicate::str::starts_with("net::block1_conv_0  ").and(predicate::str::ends_with(
            format!("wrote {spec} (5 layer(s))\n"),
        )),
    );
    assert_eq!(std::fs::read_dir(dir.0.path()).expect("dir").count(), 1);
}

#[test]
fn cli_import_errors_exit_2_and_write_nothing() {
    let dir = TempDir::new("bad");
    let spec = dir.arg("s.json");
    let fixtures = "../tests/onnx/fixtures";
    let cases: [(Vec<String>, String); 5] = [
        (
            vec![format!("{fixtures}/asym_pads.onnx")],
            format!("{fixtures}/asym_pads.onnx: graph.node[0] \"asym\" (Conv): pads [0, 0, 1, 1] (top, left, bottom, right) are asymmetric; gspc pads both sides of an axis equally, so asymmetric padding is not supported (pad with an explicit Pad node in front of a Conv with symmetric pads)\n"),
        ),
        (
            vec![format!("{fixtures}/dynamic_shape.onnx")],
            format!("{fixtures}/dynamic_shape.onnx: graph.input[0] \"x\": the shape [N, 3, H, W] has dynamic dimensions (H, W), and graph.node[0] \"conv\" (Conv) needs static shapes: set the input shape x=1x3x<H>x<W>\n"),
        ),
        (
            vec![format!("{fixtures}/dynamic_shape.onnx"), "--input-shape".into(), "x=1x3xHx8".into()],
            "--input-shape \"x=1x3xHx8\": the dimensions must be whole numbers of 1 or more (expected NAME=DIMS, e.g. input=1x3x224x224)\n".to_string(),
        ),
        (
            vec!["../README.md".to_string()],
            "../README.md: not an ONNX model: the protobuf does not decode (failed to decode Protobuf message: ModelProto.domain: invalid wire type: StartGroup (expected LengthDelimited))\n".to_string(),
        ),
        (
            vec!["missing.onnx".to_string()],
            "missing.onnx: cannot read the model: No such file or directory (os error 2)\n".to_string(),
        ),
    ];
    for (args, stderr) in cases {
        let mut a = vec!["import".to_string()];
        a.extend(args);
        a.extend([
            "--out".to_string(),
            spec.clone(),
            "--weights".to_string(),
            dir.arg("w"),
        ]);
        gspc(&a)
            .append_context("args", format!("{a:?}"))
            .code(2)
            .stdout("")
            .stderr(stderr);
        assert_eq!(
            std::fs::read_dir(dir.0.path()).expect("dir").count(),
            0,
            "nothing written"
        );
    }
    // The dynamic fixture with its shape set imports.
    gspc(&[
        "import",
        &format!("{fixtures}/dynamic_shape.onnx"),
        "--input-shape",
        "x=1x3x20x16",
        "--out",
        &spec,
    ])
    .code(0)
    .stdout(format!(
        "dynamic_shape::conv  graph.node[0] \"conv\" (Conv): 3x20x16 -> 6x20x16, groups 3, kernel 3x3, stride 1x1, padding 1x1, dilation 1x1\nwrote {spec} (1 layer(s))\n"
    ));
}

#[test]
fn long_graphs_are_handled_in_linear_time() {
    // A chain of 100 000 Relu nodes in front of the convs, and
    // 600 convs named alike: shapes, names and notes stay cheap; the layer limit is reported.
    let mut nodes = Vec::new();
    let mut prev = "x".to_string();
    for i in 0..100_000 {
        let out = format!("r{i}");
        nodes.push(node("Relu", "", &[&prev], &[&out], vec![]));
        prev = out;
    }
    for i in 0..600 {
        let out = format!("c{i}");
        nodes.push(conv("same", &prev, "w", None, &out, 2, 1));
        prev = out;
    }
    let bytes = model(
        nodes,
        vec![init("w", &[4, 2, 3, 3])],
        vec![value("x", &["1", "4", "8", "8"])],
        &[&prev],
        13,
    );
    let start = std::time::Instant::now();
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        ["t.onnx: graph: 600 convolutions to import, more than the limit of 512 layers per model"]
    );
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
}

// ---------------------------------------------------------------------------------------
// a real PyTorch export

#[test]
fn a_pytorch_export_with_a_dynamic_batch_imports() {
    use Activation::{Relu, Relu6};
    const NONE: Activation = Activation::None;
    // The channel shuffle's view(n, g, c // g, h, w) is Shape -> Gather -> Div -> Cast ->
    // Unsqueeze -> Concat -> Reshape on the batch the importer assumes to be 1.
    let i = import_fixture("torch_net.onnx", &all_convs()).expect("imports");
    assert_eq!(
        i.spec.layers,
        vec![
            layer("stem_0", 3, 16, 1, 3, 2, 1, 1, [48, 40], true, Relu),
            layer(
                "down_branch1_0_0",
                16,
                16,
                16,
                3,
                2,
                1,
                1,
                [12, 10],
                true,
                NONE
            ),
            layer(
                "down_branch1_1_0",
                16,
                16,
                1,
                1,
                1,
                0,
                1,
                [6, 5],
                true,
                Relu
            ),
            layer(
                "down_branch2_0_0",
                16,
                16,
                1,
                1,
                1,
                0,
                1,
                [12, 10],
                true,
                Relu
            ),
            layer(
                "down_branch2_1_0",
                16,
                16,
                16,
                3,
                2,
                1,
                1,
                [12, 10],
                true,
                NONE
            ),
            layer(
                "down_branch2_2_0",
                16,
                16,
                1,
                1,
                1,
                0,
                1,
                [6, 5],
                true,
                Relu
            ),
            layer(
                "unit_branch2_0_0",
                16,
                16,
                1,
                1,
                1,
                0,
                1,
                [6, 5],
                true,
                Relu
            ),
            layer(
                "unit_branch2_1_0",
                16,
                16,
                16,
                3,
                1,
                1,
                1,
                [6, 5],
                true,
                NONE
            ),
            layer(
                "unit_branch2_2_0",
                16,
                16,
                1,
                1,
                1,
                0,
                1,
                [6, 5],
                true,
                Relu
            ),
            layer("ir_expand_0", 32, 64, 1, 1, 1, 0, 1, [6, 5], true, Relu6),
            layer("ir_dw_0", 64, 64, 64, 3, 1, 1, 1, [6, 5], true, Relu6),
            layer("ir_project_0", 64, 32, 2, 1, 1, 0, 1, [6, 5], true, NONE),
        ]
    );
    assert_eq!(
        i.notes[0],
        "graph.input[0] \"image\": the batch dimension batch is dynamic; assumed 1 (the spec is per image)"
    );
    let grouped = import_fixture("torch_net.onnx", &Default::default()).expect("imports");
    assert_eq!(
        grouped
            .spec
            .layers
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>(),
        [
            "down_branch1_0_0",
            "down_branch2_1_0",
            "unit_branch2_1_0",
            "ir_dw_0",
            "ir_project_0"
        ]
    );
    // A batch of 4 flows through the same arithmetic.
    let four = ImportOptions {
        input_shapes: vec![("image".to_string(), vec![4, 3, 48, 40])],
        ..Default::default()
    };
    let i = import_fixture("torch_net.onnx", &four).expect("imports");
    assert_eq!(i.spec.layers, grouped.spec.layers);
}

#[test]
fn shape_arithmetic_is_folded() {
    // x [N, 16, 8, 7] -> Shape -> Slice [0:1] and Gather(1) / 4 -> Concat with constants ->
    // Reshape -> Transpose -> Reshape back with Shape(start=1) -> a grouped conv.
    let c = |name: &str, v: &[i64]| init_i64(name, v);
    let bytes = model(
        vec![
            node("Shape", "", &["x"], &["s"], vec![]),
            node("Slice", "", &["s", "zero", "one"], &["n"], vec![]),
            node(
                "Gather",
                "",
                &["s", "idx1"],
                &["ch"],
                vec![attr_int("axis", 0)],
            ),
            node("Div", "", &["ch", "four_s"], &["cpg"], vec![]),
            node("Unsqueeze", "", &["cpg", "axes0"], &["cpg1"], vec![]),
            node(
                "Concat",
                "",
                &["n", "four", "cpg1", "hw"],
                &["shape5"],
                vec![attr_int("axis", 0)],
            ),
            node("Reshape", "", &["x", "shape5"], &["x5"], vec![]),
            node(
                "Transpose",
                "",
                &["x5"],
                &["t5"],
                vec![attr_ints("perm", &[0, 2, 1, 3, 4])],
            ),
            node("Shape", "", &["x"], &["tail"], vec![attr_int("start", 1)]),
            node(
                "Concat",
                "",
                &["n", "tail"],
                &["shape4"],
                vec![attr_int("axis", 0)],
            ),
            node("Reshape", "", &["t5", "shape4"], &["xs"], vec![]),
            conv("c", "xs", "w", None, "y", 4, 1),
        ],
        vec![
            c("zero", &[0]),
            c("one", &[1]),
            TensorProto {
                name: "idx1".to_string(),
                data_type: data_type::INT64,
                int64_data: vec![1],
                ..Default::default()
            },
            c("four", &[4]),
            TensorProto {
                name: "four_s".to_string(),
                data_type: data_type::INT64,
                int64_data: vec![4],
                ..Default::default()
            },
            c("axes0", &[0]),
            c("hw", &[8, 7]),
            init("w", &[16, 4, 3, 3]),
        ],
        vec![value("x", &["N", "16", "8", "7"])],
        &["y"],
        13,
    );
    let i = run_import(&bytes, &Default::default()).expect("imports");
    assert_eq!(
        i.spec.layers,
        [layer(
            "c",
            16,
            16,
            4,
            3,
            1,
            1,
            1,
            [8, 7],
            false,
            Activation::None
        )]
    );
    // Division by zero in the arithmetic: not folded, so the Reshape's shape is unknown.
    let mut m = ModelProto::decode(bytes.as_slice()).expect("decodes");
    let g = m.graph.as_mut().expect("graph");
    g.initializer[4].int64_data = vec![0];
    assert_eq!(
        messages(run_import(&m.encode_to_vec(), &Default::default())),
        [
            "t.onnx: graph.node[6] (Reshape): input 1 \"shape5\" is neither a constant (an initializer or a Constant node) nor computed from shapes by ops the importer folds (Shape, Size, Gather, Slice, Concat, Reshape, Squeeze, Unsqueeze, Flatten, Transpose, Identity, Cast, CastLike, element-wise arithmetic (Add, Sub, Mul, Div, Mod, Pow, Neg, Abs, Floor, Ceil, Round, Sqrt, Max, Min, Clip, ...), comparisons, Where, Range, ConstantOfShape, Expand, ReduceProd/Sum/Max/Min on known values); the input shape of graph.node[11] \"c\" (Conv) depends on this node's output \"x5\""
        ]
    );
}

#[test]
fn conv_input_shapes_match_onnx_runtime() {
    // conv_inputs.json: every Conv's input as ONNX Runtime ran the model (by node name).
    let text = String::from_utf8(fixture(FIXTURES, "conv_inputs.json")).expect("UTF-8");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let models = json["models"].as_object().expect("models");
    assert_eq!(models.len(), 2);
    for (file, convs) in models {
        let i = import_fixture(file, &all_convs()).expect("imports");
        let bytes = fixture(FIXTURES, file);
        let graph = ModelProto::decode(bytes.as_slice())
            .expect("decodes")
            .graph
            .expect("graph");
        assert_eq!(
            i.layers.len(),
            convs.as_object().expect("convs").len(),
            "{file}"
        );
        for (l, info) in i.spec.layers.iter().zip(&i.layers) {
            let node = &graph.node[info.node].name;
            let shape: Vec<usize> = convs[node]
                .as_array()
                .expect("a shape")
                .iter()
                .map(|d| d.as_u64().expect("a dimension") as usize)
                .collect();
            assert_eq!(
                shape,
                [1, l.in_channels, l.input[0], l.input[1]],
                "{file}: {node}"
            );
        }
    }
}

#[test]
fn a_value_read_before_its_node_is_reported_as_unsorted() {
    let bytes = model(
        vec![
            conv("c", "u", "w", None, "y", 2, 1),
            node("Relu", "r", &["x"], &["u"], vec![]),
        ],
        vec![init("w", &[4, 2, 3, 3])],
        vec![value("x", &["1", "4", "8", "8"])],
        &["y"],
        13,
    );
    assert_eq!(
        messages(run_import(&bytes, &Default::default())),
        [
            "t.onnx: graph: \"u\" is not a graph input, an initializer or the output of an earlier node, and graph.node[0] \"c\" (Conv) needs its shape (are the nodes sorted topologically?)"
        ]
    );
}

/// A value that breaks assumptions: zero, negative, huge.
fn nasty(rng: &mut Rng) -> i64 {
    const V: [i64; 13] = [
        0,
        1,
        -1,
        2,
        -2,
        7,
        64,
        100_000,
        1 << 32,
        (1 << 32) + 1,
        1 << 40,
        i64::MAX,
        i64::MIN,
    ];
    V[rng.below(V.len())]
}

/// One random change to a decoded model: an attribute, a dim, an input shape, an operator,
/// the node order, an input name, a data type, an extra attribute or the opset.
fn mutate(m: &mut ModelProto, rng: &mut Rng) {
    const OPS: [&str; 18] = [
        "Relu",
        "Reshape",
        "Concat",
        "Split",
        "Pad",
        "Gather",
        "Slice",
        "Transpose",
        "Flatten",
        "Gemm",
        "MatMul",
        "MaxPool",
        "Conv",
        "Squeeze",
        "Unsqueeze",
        "Shape",
        "Add",
        "Clip",
    ];
    const ATTRS: [&str; 10] = [
        "axis",
        "perm",
        "pads",
        "strides",
        "group",
        "kernel_shape",
        "dilations",
        "auto_pad",
        "ceil_mode",
        "split",
    ];
    let choice = rng.below(9);
    if choice == 8 {
        let version = [1, 5, 6, 10, 11, 13, 18][rng.below(7)];
        m.opset_import = vec![OperatorSetIdProto {
            domain: String::new(),
            version,
        }];
        return;
    }
    let Some(g) = m.graph.as_mut() else { return };
    let n = rng.below(g.node.len().max(1));
    let t = rng.below(g.initializer.len().max(1));
    let inits: Vec<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    match choice {
        0 => {
            if let Some(node) = g.node.get_mut(n) {
                let k = rng.below(node.attribute.len().max(1));
                if let Some(a) = node.attribute.get_mut(k) {
                    match a.ints.len() {
                        0 => a.i = Some(nasty(rng)),
                        len => a.ints[rng.below(len)] = nasty(rng),
                    }
                }
            }
        }
        1 => {
            if let Some(t) = g.initializer.get_mut(t).filter(|t| !t.dims.is_empty()) {
                let k = rng.below(t.dims.len());
                t.dims[k] = nasty(rng);
            }
        }
        2 => {
            let shape = g
                .input
                .first_mut()
                .and_then(|vi| vi.r#type.as_mut())
                .and_then(|t| t.tensor_type.as_mut())
                .and_then(|t| t.shape.as_mut())
                .filter(|s| !s.dim.is_empty());
            if let Some(s) = shape {
                let k = rng.below(s.dim.len());
                s.dim[k].dim_value = Some(nasty(rng));
            }
        }
        3 => {
            if let Some(node) = g.node.get_mut(n) {
                node.op_type = OPS[rng.below(OPS.len())].to_string();
            }
        }
        4 => {
            let other = rng.below(g.node.len().max(1));
            if n < g.node.len() && other < g.node.len() {
                g.node.swap(n, other);
            }
        }
        5 => {
            let pick = inits.get(rng.below(inits.len().max(1))).cloned();
            if let (Some(node), Some(name)) = (g.node.get_mut(n), pick)
                && !node.input.is_empty()
            {
                let k = rng.below(node.input.len());
                node.input[k] = name;
            }
        }
        6 => {
            if let Some(t) = g.initializer.get_mut(t) {
                t.data_type = [0, 1, 6, 7, 10, 11][rng.below(6)];
            }
        }
        _ => {
            if let Some(node) = g.node.get_mut(n) {
                let ints = (0..rng.below(6)).map(|_| nasty(rng)).collect();
                node.attribute.push(AttributeProto {
                    name: ATTRS[rng.below(ATTRS.len())].to_string(),
                    r#type: attribute_type::INTS,
                    ints,
                    ..Default::default()
                });
            }
        }
    }
}

#[test]
fn mutated_models_give_errors_not_panics() {
    // Structured changes reach deeper than byte flips: every shape rule, the tensor reader,
    // the spec checks. (300 000 runs of this found nothing while it was written.)
    let files = [
        "small_net.onnx",
        "shapes_net.onnx",
        "torch_net.onnx",
        "unsupported_op.onnx",
        "dynamic_shape.onnx",
        "asym_pads.onnx",
    ];
    let models: Vec<ModelProto> = files
        .iter()
        .map(|f| ModelProto::decode(fixture(FIXTURES, f).as_slice()).expect("decodes"))
        .collect();
    let mut rng = Rng(0x0ddba11);
    let mut outcomes = [0usize; 2];
    for _ in 0..4000 {
        let k = rng.below(models.len());
        let mut m = models[k].clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut m, &mut rng);
        }
        let options = ImportOptions {
            all_convs: rng.below(2) == 0,
            ..Default::default()
        };
        match import::import(files[k], &m.encode_to_vec(), &options) {
            Ok(i) => {
                outcomes[1] += 1;
                let reparsed = gspc_codegen::spec::parse(files[k], &i.spec_json).expect("valid");
                assert_eq!(reparsed, i.spec);
            }
            Err(e) => {
                outcomes[0] += 1;
                assert!(!matches!(e, Error::Internal(_)), "{e}");
            }
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn other_convolution_operators_are_named() {
    let mut fused = node("FusedConv", "f", &["x", "w"], &["f_out"], vec![]);
    fused.domain = "com.microsoft".to_string();
    let quantized = || {
        model(
            vec![
                node("ConvInteger", "q", &["x", "w"], &["y"], vec![]),
                node("ConvTranspose", "t", &["x", "w"], &["z"], vec![]),
            ],
            vec![init("w", &[4, 2, 3, 3])],
            vec![value("x", &["1", "4", "8", "8"])],
            &["y", "z"],
            13,
        )
    };
    assert_eq!(
        messages(run_import(&quantized(), &all_convs())),
        [
            "t.onnx: graph: the model has no Conv node to import; not imported: ConvInteger x1, ConvTranspose x1 (gspc compiles the standard Conv, float or between QuantizeLinear and DequantizeLinear, and QLinearConv)"
        ]
    );
    let bytes = model(
        vec![fused, conv("c", "x", "w", None, "y", 2, 1)],
        vec![init("w", &[4, 2, 3, 3])],
        vec![value("x", &["1", "4", "8", "8"])],
        &["y", "f_out"],
        13,
    );
    let i = run_import(&bytes, &Default::default()).expect("imports");
    assert_eq!(
        i.notes[0],
        "not imported: com.microsoft.FusedConv x1 (gspc compiles the standard Conv, float or between QuantizeLinear and DequantizeLinear, and QLinearConv)"
    );
}

#[test]
fn imported_specs_and_weights_feed_the_generator() {
    // The weights reader of `generate --weights` accepts every imported file against its
    // spec, and every imported spec plans.
    for file in ["small_net.onnx", "shapes_net.onnx", "torch_net.onnx"] {
        let i = import_fixture(file, &all_convs()).expect("imports");
        let w = gspc_codegen::weights::from_safetensors("w.safetensors", &i.weights, &i.spec)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(w.layers.len(), i.spec.layers.len());
        for (l, lw) in i.spec.layers.iter().zip(&w.layers) {
            assert_eq!(lw.weights_len(), l.weights_len(), "{file}: {}", l.name);
            assert_eq!(lw.bias_len().is_some(), l.bias, "{file}: {}", l.name);
        }
        let options = gspc_codegen::Options::for_target(gspc_codegen::Target::host());
        let plans = gspc_codegen::plan(&i.spec, &options).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(plans.len(), i.spec.layers.len());
    }
}

/// A direct grouped convolution of one image (NCHW, OIHW weights), f64 accumulation, then
/// the bias and the activation.
fn direct_conv(l: &LayerSpec, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
    let [h, wd] = l.input;
    let [oh, ow] = l.output();
    let (cg, kg) = (l.in_per_group(), l.out_per_group());
    let [kh, kw] = l.kernel;
    let mut y = vec![0f32; l.out_channels * oh * ow];
    for k in 0..l.out_channels {
        let g = k / kg;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = b.map_or(0.0, |b| f64::from(b[k]));
                for c in 0..cg {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * l.stride[0] + ky * l.dilation[0]) as isize
                                - l.padding[0] as isize;
                            let ix = (ox * l.stride[1] + kx * l.dilation[1]) as isize
                                - l.padding[1] as isize;
                            if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= wd {
                                continue;
                            }
                            let xi = ((g * cg + c) * h + iy as usize) * wd + ix as usize;
                            let wi = ((k * cg + c) * kh + ky) * kw + kx;
                            acc += f64::from(x[xi]) * f64::from(w[wi]);
                        }
                    }
                }
                y[(k * oh + oy) * ow + ox] = l.activation.apply(acc as f32);
            }
        }
    }
    y
}

#[test]
fn the_imported_layers_reproduce_onnx_runtime_on_small_net() {
    // small_net is a chain: running the imported layers one after the other (weights from
    // the imported safetensors, fused activations) must give ONNX Runtime's output.
    let i = import_fixture("small_net.onnx", &Default::default()).expect("imports");
    let st = safetensors::SafeTensors::deserialize(&i.weights).expect("safetensors");
    let mut x = f32s(&fixture(FIXTURES, "small_net.input.bin"));
    for (l, info) in i.spec.layers.iter().zip(&i.layers) {
        assert_eq!(x.len(), l.input_len(), "{}", l.name);
        let w = f32s(st.tensor(&info.weight_key).expect("weights").data());
        let b = info
            .bias_key
            .as_ref()
            .map(|k| f32s(st.tensor(k).expect("bias").data()));
        x = direct_conv(l, &x, &w, b.as_deref());
    }
    let want = f32s(&fixture(FIXTURES, "small_net.output.bin"));
    assert_eq!(x.len(), want.len());
    assert!(want.iter().filter(|v| v.abs() > 0.01).count() > want.len() / 2);
    for (k, (got, want)) in x.iter().zip(&want).enumerate() {
        assert!(
            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "output[{k}]: {got} vs ONNX Runtime's {want}"
        );
    }
}
