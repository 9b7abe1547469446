//! The importer's shape rules: the fixtures of `tests/fixtures/shapes/` (made by
//! `scripts/make_shape_fixtures.py`, one model per rule group, no value_info) import with
//! every Conv's input shape as ONNX Runtime runs them, and small models built here check
//! the rules' edge cases and their error messages.

mod common;

use common::*;
use gspc_codegen::Error;
use gspc_codegen::import::onnx::{
    AttributeProto, ModelProto, NodeProto, TensorProto, attribute_type, data_type,
};
use gspc_codegen::import::{self, Imported};
use prost::Message;

/// The fixtures of this file, made by `scripts/make_shape_fixtures.py`.
const FIXTURES: &str = "tests/fixtures/shapes";

/// The input shape `[1, C, H, W]` of every imported layer, by its ONNX node's name.
fn conv_inputs(file: &str, bytes: &[u8], i: &Imported) -> Vec<(String, Vec<u64>)> {
    let graph = ModelProto::decode(bytes)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .graph
        .expect("graph");
    i.spec
        .layers
        .iter()
        .zip(&i.layers)
        .map(|(l, info)| {
            (
                graph.node[info.node].name.clone(),
                vec![
                    1,
                    l.in_channels as u64,
                    l.input[0] as u64,
                    l.input[1] as u64,
                ],
            )
        })
        .collect()
}

#[test]
fn every_fixture_imports_with_the_conv_input_shapes_onnx_runtime_runs() {
    let text =
        std::fs::read_to_string(fixtures(FIXTURES).join("expected.json")).expect("expected.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let models = json["models"].as_object().expect("models");
    assert_eq!(models.len(), 11);
    for (file, convs) in models {
        let bytes = std::fs::read(fixtures(FIXTURES).join(file)).expect("read the fixture");
        let i = import::import(file, &bytes, &all_convs())
            .unwrap_or_else(|e| panic!("{file}: {}", e.messages().join("\n")));
        let got = conv_inputs(file, &bytes, &i);
        let want: Vec<(String, Vec<u64>)> = convs
            .as_object()
            .expect("convs")
            .iter()
            .map(|(name, shape)| {
                let dims = shape.as_array().expect("a shape").iter();
                (
                    name.clone(),
                    dims.map(|d| d.as_u64().expect("a dimension")).collect(),
                )
            })
            .collect();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(got_sorted, want_sorted, "{file}");
    }
}

// ---------------------------------------------------------------------------------------
// models built here

/// A node named after its first output (`n_<output>`).
fn node(op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    let name = outputs
        .first()
        .map(|o| format!("n_{o}"))
        .unwrap_or_default();
    common::node(op, &name, inputs, outputs, attribute)
}

/// `nodes` from graph input `x` (`x_dims`) to the value `v`, then a depthwise 1x1 Conv
/// "probe" of `channels` channels on `v`; returns the model's bytes.
fn probe_model(
    x_dims: &[i64],
    nodes: Vec<NodeProto>,
    mut inits: Vec<TensorProto>,
    channels: i64,
    opset: i64,
) -> Vec<u8> {
    let mut nodes = nodes;
    inits.push(floats(
        "probe_w",
        &[channels, 1, 1, 1],
        &vec![1.0; channels as usize],
    ));
    nodes.push(common::node(
        "Conv",
        "probe",
        &["v", "probe_w"],
        &["y"],
        vec![attr_int("group", channels)],
    ));
    model(nodes, inits, vec![value("x", x_dims)], &["y"], opset)
}

fn run(bytes: &[u8]) -> Result<Imported, Error> {
    import::import("t.onnx", bytes, &all_convs())
}

/// The probe's input `[1, C, H, W]`.
fn probe_input(bytes: &[u8]) -> Vec<u64> {
    let i = run(bytes).unwrap_or_else(|e| panic!("{}", e.messages().join("\n")));
    let l = i.spec.layers.last().expect("the probe layer");
    vec![
        1,
        l.in_channels as u64,
        l.input[0] as u64,
        l.input[1] as u64,
    ]
}

fn error(bytes: &[u8]) -> String {
    match run(bytes) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.messages().join("\n"),
    }
}

#[test]
fn layer_normalization_mean_and_inv_std_dev_keep_the_leading_axes() {
    // Mean [1, 4, 1, 1] broadcast against x: the probe sees x's shape.
    let nodes = vec![
        node(
            "LayerNormalization",
            &["x", "s"],
            &["ln", "mean", "inv"],
            vec![attr_int("axis", 2)],
        ),
        node("Mul", &["ln", "mean"], &["m"], vec![]),
        node("Reshape", &["mean", "shape"], &["r"], vec![]),
        node("Expand", &["r", "s4"], &["e"], vec![]),
        node("Add", &["m", "e"], &["v"], vec![]),
    ];
    let inits = vec![
        floats("s", &[5, 6], &[1.0; 30]),
        ints("shape", &[4], &[1, 4, 1, 1]),
        ints("s4", &[4], &[1, 4, 5, 6]),
    ];
    assert_eq!(
        probe_input(&probe_model(&[1, 4, 5, 6], nodes, inits, 4, 17)),
        [1, 4, 5, 6]
    );
    let bad = vec![node(
        "LayerNormalization",
        &["x", "s"],
        &["v"],
        vec![attr_int("axis", 4)],
    )];
    assert_eq!(
        error(&probe_model(
            &[1, 4, 5, 6],
            bad,
            vec![floats("s", &[1], &[1.0])],
            4,
            17
        )),
        "t.onnx: graph.node[0] \"n_v\" (LayerNormalization): axis 4 is out of range for rank 4 (-4 to 3); the input shape of graph.node[1] \"probe\" (Conv) depends on this node's output \"v\""
    );
}

#[test]
fn resize_scales_sizes_and_their_errors() {
    let resize =
        |inputs: &[&str], attrs: Vec<AttributeProto>| vec![node("Resize", inputs, &["v"], attrs)];
    let sc = |v: &[f32]| vec![floats("sc", &[v.len() as i64], v)];
    // floor(5 * 1.3) = 6, floor(7 * 0.5) = 3.
    let m = probe_model(
        &[1, 2, 5, 7],
        resize(&["x", "", "sc"], vec![]),
        sc(&[1.0, 1.0, 1.3, 0.5]),
        2,
        13,
    );
    assert_eq!(probe_input(&m), [1, 2, 6, 3]);
    // Opset 10: scales is input 1.
    let m = probe_model(
        &[1, 2, 5, 7],
        resize(&["x", "sc"], vec![]),
        sc(&[1.0, 1.0, 2.0, 2.0]),
        2,
        10,
    );
    assert_eq!(probe_input(&m), [1, 2, 10, 14]);
    // Upsample-7: a scales attribute; Upsample-9: an input.
    let up7 = vec![node(
        "Upsample",
        &["x"],
        &["v"],
        vec![attr_floats("scales", &[1.0, 1.0, 3.0, 1.0])],
    )];
    assert_eq!(
        probe_input(&probe_model(&[1, 2, 5, 7], up7, vec![], 2, 8)),
        [1, 2, 15, 7]
    );
    let up9 = vec![node("Upsample", &["x", "sc"], &["v"], vec![])];
    assert_eq!(
        probe_input(&probe_model(
            &[1, 2, 5, 7],
            up9,
            sc(&[1.0, 1.0, 2.0, 3.0]),
            2,
            9
        )),
        [1, 2, 10, 21]
    );
    // Sizes over axes [3, 2] with not_larger: scale min(8 / 7, 9 / 5) -> round(5 * 8/7) = 6.
    let m = probe_model(
        &[1, 2, 5, 7],
        resize(
            &["x", "", "", "sz"],
            vec![
                attr_ints("axes", &[3, 2]),
                attr_str("keep_aspect_ratio_policy", "not_larger"),
            ],
        ),
        vec![ints("sz", &[2], &[8, 9])],
        2,
        18,
    );
    assert_eq!(probe_input(&m), [1, 2, 6, 8]);
    // Errors: both scales and sizes; the wrong count; a bad policy; scales not known.
    let both = probe_model(
        &[1, 2, 5, 7],
        resize(&["x", "", "sc", "sz"], vec![]),
        vec![
            floats("sc", &[4], &[1.0; 4]),
            ints("sz", &[4], &[1, 2, 5, 7]),
        ],
        2,
        13,
    );
    assert!(
        error(&both).contains("(Resize): Resize has both scales and sizes; give one"),
        "{}",
        error(&both)
    );
    let count = probe_model(
        &[1, 2, 5, 7],
        resize(&["x", "", "sc"], vec![]),
        sc(&[2.0, 2.0]),
        2,
        13,
    );
    assert!(error(&count).contains("scales has 2 values for 4 axes of [1, 2, 5, 7]"));
    let policy = probe_model(
        &[1, 2, 5, 7],
        resize(
            &["x", "", "", "sz"],
            vec![attr_str("keep_aspect_ratio_policy", "fit")],
        ),
        vec![ints("sz", &[4], &[1, 2, 5, 7])],
        2,
        18,
    );
    assert!(error(&policy).contains("keep_aspect_ratio_policy \"fit\" is not one of"));
    let dynamic = probe_model(
        &[1, 2, 5, 7],
        vec![
            node("Relu", &["x"], &["r"], vec![]),
            node("Resize", &["x", "", "r"], &["v"], vec![]),
        ],
        vec![],
        2,
        13,
    );
    assert!(
        error(&dynamic)
            .contains("input 2 \"r\" is neither a small constant nor computed from shapes")
    );
}

#[test]
fn pads_computed_in_floats_fold() {
    // timm's same padding for a 3x3 stride-2 window on width 8:
    // max((ceil(8 / 2) - 1) * 2 + 3 - 8, 0) = 1 (the max as Clip, as the TorchScript
    // exporter writes it), split 0 before and 1 after.
    let nodes = vec![
        node("Shape", &["x"], &["s"], vec![]),
        node("Gather", &["s", "i3"], &["w"], vec![attr_int("axis", 0)]),
        node("Cast", &["w"], &["wf"], vec![attr_int("to", 1)]),
        node("Div", &["wf", "two_f"], &["q"], vec![]),
        node("Ceil", &["q"], &["qc"], vec![]),
        node("Sub", &["qc", "one_f"], &["q1"], vec![]),
        node("Mul", &["q1", "two_f"], &["q2"], vec![]),
        node("Add", &["q2", "three_f"], &["need"], vec![]),
        node("Sub", &["need", "wf"], &["p"], vec![]),
        node("Clip", &["p", "zero_f", ""], &["pm"], vec![]),
        node("Cast", &["pm"], &["pi"], vec![attr_int("to", 7)]),
        node("Div", &["pi", "two"], &["before"], vec![]),
        node("Sub", &["pi", "before"], &["after"], vec![]),
        node("Unsqueeze", &["before", "ax0"], &["b1"], vec![]),
        node("Unsqueeze", &["after", "ax0"], &["a1"], vec![]),
        node(
            "Concat",
            &["z3", "b1", "z3", "a1"],
            &["pads"],
            vec![attr_int("axis", 0)],
        ),
        node("Pad", &["x", "pads"], &["v"], vec![]),
    ];
    let inits = vec![
        ints("i3", &[], &[3]),
        ints("two", &[], &[2]),
        ints("ax0", &[1], &[0]),
        ints("z3", &[3], &[0, 0, 0]),
        floats("two_f", &[], &[2.0]),
        floats("one_f", &[], &[1.0]),
        floats("three_f", &[], &[3.0]),
        floats("zero_f", &[], &[0.0]),
    ];
    assert_eq!(
        probe_input(&probe_model(
            &[1, 3, 6, 8],
            nodes.clone(),
            inits.clone(),
            3,
            17
        )),
        [1, 3, 6, 9]
    );
    // A division by zero folds nothing: the Pad names its input and what folds.
    let mut zero = inits;
    zero[1] = ints("two", &[], &[0]);
    let e = error(&probe_model(&[1, 3, 6, 8], nodes, zero, 3, 17));
    assert!(
        e.starts_with("t.onnx: graph.node[16] \"n_v\" (Pad): input 1 \"pads\" is neither a constant (an initializer or a Constant node) nor computed from shapes by ops the importer folds (Shape, Size, Gather,"),
        "{e}"
    );
}

#[test]
fn split_with_an_input_with_num_outputs_and_their_errors() {
    let split = |inputs: &[&str], attrs: Vec<AttributeProto>, n: usize| {
        let outs: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
        let outs: Vec<&str> = outs.iter().map(String::as_str).collect();
        let mut v = vec![node("Split", inputs, &outs, attrs)];
        v.push(node("Identity", &[outs[n - 1]], &["v"], vec![]));
        v
    };
    // num_outputs 3 over 8: 3, 3, 2.
    let m = probe_model(
        &[1, 8, 4, 4],
        split(
            &["x"],
            vec![attr_int("axis", 1), attr_int("num_outputs", 3)],
            3,
        ),
        vec![],
        2,
        18,
    );
    assert_eq!(probe_input(&m), [1, 2, 4, 4]);
    let m = probe_model(
        &[1, 8, 4, 4],
        split(&["x", "sp"], vec![attr_int("axis", 1)], 2),
        vec![ints("sp", &[2], &[5, 3])],
        3,
        13,
    );
    assert_eq!(probe_input(&m), [1, 3, 4, 4]);
    let m = probe_model(
        &[1, 8, 4, 4],
        split(
            &["x"],
            vec![attr_int("axis", 1), attr_int("num_outputs", 4)],
            3,
        ),
        vec![],
        2,
        18,
    );
    assert!(error(&m).contains("num_outputs 4 differs from the node's 3 outputs"));
    let m = probe_model(
        &[1, 8, 4, 4],
        split(&["x", "sp"], vec![attr_int("axis", 1)], 2),
        vec![ints("sp", &[2], &[5, 4])],
        4,
        13,
    );
    assert!(
        error(&m).contains("the split sizes [5, 4] add up to 9, the axis 1 of [1, 8, 4, 4] has 8")
    );
}

#[test]
fn einsum_as_matmul_transpose_and_its_errors() {
    let einsum = |eq: &str, inputs: &[&str]| {
        vec![node(
            "Einsum",
            inputs,
            &["e"],
            vec![attr_str("equation", eq)],
        )]
    };
    let to4 = |mut v: Vec<NodeProto>| {
        v.push(node("Unsqueeze", &["e", "ax"], &["v"], vec![]));
        v
    };
    let ax = |a: &[i64]| ints("ax", &[a.len() as i64], a);
    // [1, 3, 4, 5] -> ...ij->...ji: [1, 3, 5, 4].
    let m = probe_model(
        &[1, 3, 4, 5],
        einsum("...ij->...ji", &["x"])
            .into_iter()
            .chain([node("Identity", &["e"], &["v"], vec![])])
            .collect(),
        vec![],
        3,
        17,
    );
    assert_eq!(probe_input(&m), [1, 3, 5, 4]);
    // Batched matmul bhij,bhjk->bhik with a weight [1, 3, 5, 2].
    let mut nodes = einsum("bhij,bhjk->bhik", &["x", "w"]);
    nodes.push(node("Identity", &["e"], &["v"], vec![]));
    let m = probe_model(
        &[1, 3, 4, 5],
        nodes,
        vec![floats("w", &[1, 3, 5, 2], &[0.5; 30])],
        3,
        17,
    );
    assert_eq!(probe_input(&m), [1, 3, 4, 2]);
    // Implicit output: "bij,bjk" -> "ik" (the labels used once, alphabetical; b, used
    // twice, is summed), then two axes in front.
    let m = probe_model(
        &[1, 3, 4, 5],
        to4(vec![
            node("Reshape", &["x", "s3"], &["x3"], vec![]),
            node(
                "Einsum",
                &["x3", "w"],
                &["e"],
                vec![attr_str("equation", "bij,bjk")],
            ),
        ]),
        vec![
            ints("s3", &[3], &[3, 4, 5]),
            floats("w", &[3, 5, 6], &[0.5; 90]),
            ax(&[0, 1]),
        ],
        1,
        17,
    );
    assert_eq!(probe_input(&m), [1, 1, 4, 6]);
    let bad = probe_model(
        &[1, 3, 4, 5],
        to4(einsum("bhij,bhjk->bhik", &["x", "w"])),
        vec![floats("w", &[1, 3, 4, 2], &[0.5; 24]), ax(&[0])],
        3,
        17,
    );
    assert!(
        error(&bad).contains("label 'j' has size 5 and 4 in the inputs"),
        "{}",
        error(&bad)
    );
    let bad = probe_model(
        &[1, 3, 4, 5],
        to4(einsum("bhij->bhz", &["x"])),
        vec![ax(&[0])],
        3,
        17,
    );
    assert!(error(&bad).contains("the output label 'z' is in no input"));
    let bad = probe_model(
        &[1, 3, 4, 5],
        to4(einsum("bh1j->bh", &["x"])),
        vec![ax(&[0])],
        3,
        17,
    );
    assert!(error(&bad).contains("has '1', not a letter"));
}

#[test]
fn reductions_with_axes_as_input_tile_and_topk() {
    // ReduceMean-18 with axes [2] as an input, keepdims: [1, 4, 1, 6]; Tile x5 on axis 2.
    let nodes = vec![
        node("ReduceMean", &["x", "axes"], &["r"], vec![]),
        node("Tile", &["r", "reps"], &["v"], vec![]),
    ];
    let inits = vec![ints("axes", &[1], &[2]), ints("reps", &[4], &[1, 1, 5, 1])];
    assert_eq!(
        probe_input(&probe_model(&[1, 4, 3, 6], nodes, inits, 4, 18)),
        [1, 4, 5, 6]
    );
    // Opset 13 ReduceMean takes axes as an attribute.
    let nodes = vec![node(
        "ReduceMean",
        &["x"],
        &["v"],
        vec![attr_ints("axes", &[-1])],
    )];
    assert_eq!(
        probe_input(&probe_model(&[1, 4, 3, 6], nodes, vec![], 4, 13)),
        [1, 4, 3, 1]
    );
    let nodes = vec![node(
        "TopK",
        &["x", "k"],
        &["v", "i"],
        vec![attr_int("axis", 3)],
    )];
    assert_eq!(
        probe_input(&probe_model(
            &[1, 4, 3, 6],
            nodes.clone(),
            vec![ints("k", &[1], &[2])],
            4,
            17
        )),
        [1, 4, 3, 2]
    );
    assert!(
        error(&probe_model(
            &[1, 4, 3, 6],
            nodes,
            vec![ints("k", &[1], &[7])],
            4,
            17
        ))
        .contains("k 7 is larger than axis 3 of [1, 4, 3, 6]")
    );
}

#[test]
fn range_size_and_constant_of_shape_fold() {
    // Reshape to [1, 4, len(Range(0, Size(x) / 12, 1)), -1] = [1, 4, 6, 3].
    let nodes = vec![
        node("Size", &["x"], &["n"], vec![]),
        node("Div", &["n", "twelve"], &["h"], vec![]),
        node("Range", &["zero", "h", "one"], &["rg"], vec![]),
        node("Shape", &["rg"], &["rs"], vec![]),
        node(
            "ConstantOfShape",
            &["one1"],
            &["c1"],
            vec![AttributeProto {
                t: Some(ints("", &[1], &[1])),
                ..attr("value", attribute_type::TENSOR)
            }],
        ),
        node(
            "Concat",
            &["c1", "four", "rs", "minus1"],
            &["shape"],
            vec![attr_int("axis", 0)],
        ),
        node("Reshape", &["x", "shape"], &["v"], vec![]),
    ];
    let inits = vec![
        ints("twelve", &[], &[12]),
        ints("zero", &[], &[0]),
        ints("one", &[], &[1]),
        ints("one1", &[1], &[1]),
        ints("four", &[1], &[4]),
        ints("minus1", &[1], &[-1]),
    ];
    assert_eq!(
        probe_input(&probe_model(
            &[1, 4, 3, 6],
            nodes.clone(),
            inits.clone(),
            4,
            17
        )),
        [1, 4, 6, 3]
    );
    // A zero delta: Range has no length.
    let mut bad = inits;
    bad[2] = ints("one", &[], &[0]);
    assert!(
        error(&probe_model(&[1, 4, 3, 6], nodes, bad, 4, 17))
            .contains("(Range): Range(0, 6, 0) has no valid length")
    );
}

// ---------------------------------------------------------------------------------------
// robustness

const EDGE_INTS: [i64; 10] = [i64::MIN, -9, -2, -1, 0, 1, 2, 3, 64, i64::MAX];
const EDGE_FLOATS: [f32; 8] = [0.0, -1.0, 0.5, 1.5, 3.0, 1.0e30, f32::NAN, f32::INFINITY];
const OPS: [&str; 16] = [
    "Resize",
    "Einsum",
    "Range",
    "Tile",
    "Split",
    "Pad",
    "Reshape",
    "Slice",
    "Gather",
    "Concat",
    "Cast",
    "Div",
    "Mod",
    "ReduceProd",
    "LayerNormalization",
    "Expand",
];

/// One structured change: an integer or float constant, an attribute, an operator or the
/// input's shape.
fn mutate(m: &mut ModelProto, rng: &mut Rng) {
    let g = m.graph.as_mut().expect("graph");
    match rng.below(4) {
        0 if !g.initializer.is_empty() => {
            let k = rng.below(g.initializer.len());
            let t = &mut g.initializer[k];
            if t.data_type == data_type::INT64 {
                let mut v: Vec<i64> = if t.raw_data.is_empty() {
                    t.int64_data.clone()
                } else {
                    t.raw_data
                        .chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .collect()
                };
                if !v.is_empty() {
                    let j = rng.below(v.len());
                    v[j] = EDGE_INTS[rng.below(EDGE_INTS.len())];
                }
                t.raw_data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                t.int64_data.clear();
            } else if t.data_type == data_type::FLOAT && t.raw_data.len() <= 64 * 4 {
                let mut v: Vec<f32> = if t.raw_data.is_empty() {
                    t.float_data.clone()
                } else {
                    t.raw_data
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                        .collect()
                };
                if !v.is_empty() {
                    let j = rng.below(v.len());
                    v[j] = EDGE_FLOATS[rng.below(EDGE_FLOATS.len())];
                }
                t.raw_data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                t.float_data.clear();
            }
        }
        1 if !g.node.is_empty() => {
            let k = rng.below(g.node.len());
            let n = &mut g.node[k];
            if !n.attribute.is_empty() {
                let j = rng.below(n.attribute.len());
                let a = &mut n.attribute[j];
                let v = EDGE_INTS[rng.below(EDGE_INTS.len())];
                match a.r#type {
                    attribute_type::INT => a.i = Some(v),
                    attribute_type::INTS if !a.ints.is_empty() => {
                        let i = rng.below(a.ints.len());
                        a.ints[i] = v;
                    }
                    attribute_type::STRING => a.s = Some(b"a...b->ba".to_vec()),
                    _ => {}
                }
            }
        }
        2 if !g.node.is_empty() => {
            let k = rng.below(g.node.len());
            g.node[k].op_type = OPS[rng.below(OPS.len())].to_string();
        }
        _ => {
            if let Some(s) = g
                .input
                .first_mut()
                .and_then(|i| i.r#type.as_mut())
                .and_then(|t| t.tensor_type.as_mut())
                .and_then(|t| t.shape.as_mut())
                && !s.dim.is_empty()
            {
                let j = rng.below(s.dim.len());
                s.dim[j].dim_value = Some(rng.below(10) as i64);
            }
        }
    }
}

#[test]
fn mutated_shape_fixtures_give_errors_not_panics() {
    let text =
        std::fs::read_to_string(fixtures(FIXTURES).join("expected.json")).expect("expected.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let files: Vec<String> = json["models"]
        .as_object()
        .expect("models")
        .keys()
        .cloned()
        .collect();
    let models: Vec<ModelProto> = files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(fixtures(FIXTURES).join(f)).expect("read the fixture");
            ModelProto::decode(bytes.as_slice()).expect("decodes")
        })
        .collect();
    let mut rng = Rng(0x5eed_5a9e);
    let mut outcomes = [0usize; 2];
    for _ in 0..3000 {
        let k = rng.below(models.len());
        let mut m = models[k].clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut m, &mut rng);
        }
        match import::import(&files[k], &m.encode_to_vec(), &all_convs()) {
            Ok(_) => outcomes[1] += 1,
            Err(e) => {
                outcomes[0] += 1;
                assert!(!matches!(e, Error::Internal(_)), "{e}");
            }
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn quantize_dequantize_and_gather_nd() {
    // QDQ around the probe's input, and GatherND picking 2 of the 4 channels:
    // indices [1, 2, 1] with batch_dims 1 give [1, 2] + data[2..] = [1, 2, 3, 6].
    let nodes = vec![
        node("QuantizeLinear", &["x", "scale", "zp"], &["q"], vec![]),
        node("DequantizeLinear", &["q", "scale", "zp"], &["dq"], vec![]),
        node(
            "GatherND",
            &["dq", "idx"],
            &["v"],
            vec![attr_int("batch_dims", 1)],
        ),
    ];
    let inits = vec![
        floats("scale", &[], &[0.1]),
        TensorProto {
            name: "zp".to_string(),
            data_type: data_type::UINT8,
            raw_data: vec![128],
            ..Default::default()
        },
        ints("idx", &[1, 2, 1], &[3, 0]),
    ];
    assert_eq!(
        probe_input(&probe_model(&[1, 4, 3, 6], nodes, inits, 2, 17)),
        [1, 2, 3, 6]
    );
}
