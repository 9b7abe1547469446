//! Every limit of `spec::limits`, tested from both sides: a spec just past it is refused
//! with a message naming the field, the value and the limit; the largest spec of each kind
//! that is accepted generates, for x86-64, aarch64 and thumbv7em, code that parses, within
//! a bounded time (docs/benchmarks/2026-11-28-zen5.md, "Generation time", has them).

use gspc_codegen::spec::{self, limits::*};
use gspc_codegen::{Error, Options, Target, generate, plan};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TARGETS: [&str; 3] = [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "thumbv7em-none-eabihf",
];

/// Generous for a loaded 2-core CI machine: the largest spec takes about 2 s (release).
const TIME_BOUND: Duration = Duration::from_secs(120);

/// A small valid layer with `fields` replaced or added.
fn layer(name: &str, fields: Value) -> Value {
    let mut l = json!({"name": name, "in_channels": 8, "out_channels": 8, "groups": 2,
        "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8]});
    if let (Some(l), Some(f)) = (l.as_object_mut(), fields.as_object()) {
        for (k, v) in f {
            l.insert(k.clone(), v.clone());
        }
    }
    l
}

fn model(layers: Vec<Value>) -> String {
    json!({"model": "m", "layers": layers}).to_string()
}

fn one(fields: Value) -> String {
    model(vec![layer("l", fields)])
}

fn messages(text: &str) -> Vec<String> {
    match spec::parse("t.json", text) {
        Ok(s) => panic!("accepted a spec past a limit: {:?}", s.layers.first()),
        Err(e) => e.messages(),
    }
}

/// `text` is refused, with `expected` among the messages.
fn refused(text: &str, expected: &str) {
    let m = messages(text);
    assert!(
        m.iter().any(|x| x == expected),
        "expected the message\n  {expected}\ngot\n  {}",
        m.join("\n  ")
    );
}

/// `text` is accepted and generates, for every target, code that parses; returns the
/// generated lines per target.
fn generates(what: &str, text: &str) -> Vec<usize> {
    let s = spec::parse("t.json", text).unwrap_or_else(|e| panic!("{what}: refused: {e}"));
    TARGETS
        .iter()
        .map(|t| {
            let start = Instant::now();
            let options = Options::for_target(Target::from_triple(t).expect("known triple"));
            let g = generate(&s, &options).unwrap_or_else(|e| panic!("{what}, {t}: {e}"));
            syn::parse_file(&g.code)
                .unwrap_or_else(|e| panic!("{what}, {t}: generated code does not parse: {e}"));
            let took = start.elapsed();
            eprintln!(
                "{what}, {t}: {} lines generated and parsed in {took:.2?}",
                g.code.lines().count()
            );
            assert!(
                took < TIME_BOUND,
                "{what}, {t}: generating and parsing took {took:?}"
            );
            g.code.lines().count()
        })
        .collect()
}

#[test]
fn channels_and_groups_just_past_the_limit_are_refused() {
    let past = MAX_CHANNELS + 1;
    for field in ["in_channels", "out_channels"] {
        refused(
            &one(json!({field: past})),
            &format!(
                "t.json: layers[0].{field}: {past} is above the limit of {MAX_CHANNELS} for channels"
            ),
        );
    }
    refused(
        &one(json!({"groups": past})),
        &format!(
            "t.json: layers[0].groups: {past} is above the limit of {MAX_CHANNELS} for groups"
        ),
    );
}

#[test]
fn sizes_just_past_their_limits_are_refused() {
    let cases = [
        ("input", MAX_SPATIAL, "the input size"),
        ("kernel", MAX_KERNEL, "the kernel size"),
        ("stride", MAX_STRIDE, "the stride"),
        ("dilation", MAX_DILATION, "the dilation"),
        ("padding", MAX_PADDING, "the padding"),
    ];
    for (field, max, what) in cases {
        for axis in 0..2 {
            let mut pair = [1, 1];
            pair[axis] = max + 1;
            refused(
                &one(json!({field: pair})),
                &format!(
                    "t.json: layers[0].{field}[{axis}]: {} is above the limit of {max} for {what}",
                    max + 1
                ),
            );
        }
    }
    refused(
        &one(json!({"count": MAX_COUNT + 1})),
        &format!(
            "t.json: layers[0].count: {} is above the limit of {MAX_COUNT} for count",
            MAX_COUNT + 1
        ),
    );
}

#[test]
fn oc_block_just_past_its_limits_is_refused() {
    let b = MAX_OC_BLOCK + 1;
    refused(
        &one(json!({"out_channels": 2 * b, "oc_block": b})),
        &format!(
            "t.json: layers[0].oc_block: {b} is above the limit of {MAX_OC_BLOCK} for oc_block"
        ),
    );
    let b = MAX_OW_OC_BLOCK + 1;
    refused(
        &one(json!({"out_channels": 2 * b, "oc_block": b, "strategy": "gspc-ow"})),
        &format!(
            "t.json: layers[0].oc_block: {b} is above the limit of {MAX_OW_OC_BLOCK} for \"gspc-ow\" (one accumulator per channel and vector)"
        ),
    );
}

#[test]
fn a_name_just_past_the_limit_is_refused() {
    let long = "a".repeat(MAX_NAME_LEN + 1);
    for text in [
        model(vec![layer(&long, json!({}))]),
        json!({"model": long, "layers": [layer("l", json!({}))]}).to_string(),
    ] {
        let m = messages(&text);
        assert!(
            m.iter().any(|x| x.ends_with(&format!(
                "... is {} bytes long; names are at most {MAX_NAME_LEN}",
                MAX_NAME_LEN + 1
            ))),
            "{m:#?}"
        );
    }
}

#[test]
fn one_layer_too_many_is_refused() {
    let layers = (0..=MAX_LAYERS)
        .map(|i| layer(&format!("l{i}"), json!({})))
        .collect();
    refused(
        &model(layers),
        &format!(
            "t.json: layers: {} layers is more than the limit of {MAX_LAYERS} per model",
            MAX_LAYERS + 1
        ),
    );
}

/// 4 * 8192 * 8192 = 2^28 is the largest buffer; each just-past case is under 0.1% over.
#[test]
fn every_buffer_just_past_the_element_limit_is_refused() {
    assert_eq!(4 * (MAX_SPATIAL as u64).pow(2), MAX_ELEMENTS);
    let over = |n: u64| {
        assert!(n > MAX_ELEMENTS && n < MAX_ELEMENTS + MAX_ELEMENTS / 1_000);
        format!("{n} elements is more than the limit of {MAX_ELEMENTS} (1 GiB of f32) per buffer")
    };
    // The input: 5 * 8192 * 6554.
    refused(
        &one(
            json!({"in_channels": 5, "out_channels": 5, "groups": 5, "kernel": [1, 1],
            "padding": [0, 0], "input": [8192, 6554]}),
        ),
        &format!(
            "t.json: layers[0].input: in_channels * H * W = {}",
            over(5 * 8192 * 6554)
        ),
    );
    // The output: 5 * 8192 * 6554 from one input channel.
    refused(
        &one(
            json!({"in_channels": 1, "out_channels": 5, "groups": 1, "kernel": [1, 1],
            "padding": [0, 0], "input": [8192, 6554]}),
        ),
        &format!(
            "t.json: layers[0].out_channels: out_channels * OH * OW = {}",
            over(5 * 8192 * 6554)
        ),
    );
    // The weights: 65536 * 4097 * 1 * 1.
    refused(
        &one(
            json!({"in_channels": 4097, "out_channels": MAX_CHANNELS, "groups": 1,
            "kernel": [1, 1], "padding": [0, 0], "input": [1, 1]}),
        ),
        &format!(
            "t.json: layers[0].kernel: out_channels * in_channels / groups * KH * KW = {}",
            over(65536 * 4097)
        ),
    );
    // The packed input: an input right at the limit, one column of padding on each side.
    refused(
        &one(
            json!({"in_channels": 4, "out_channels": 4, "groups": 4, "kernel": [3, 3],
            "padding": [0, 1], "input": [8192, 8192]}),
        ),
        &format!(
            "t.json: layers[0].padding: in_channels * (H + 2 PH) * (W + 2 PW), the packed input = {}",
            over(4 * 8192 * 8194)
        ),
    );
}

/// Layers filling the generated-lines budget of x86-64 (the largest: three variants) from
/// below: the biggest layers first (about 85 000 lines each), then small ones.
fn near_the_line_limit() -> (Vec<Value>, usize) {
    let x86 = Options::for_target(Target::from_triple(TARGETS[0]).expect("known triple"));
    let estimate = |layers: &[Value]| -> usize {
        let s = spec::parse("t.json", &model(layers.to_vec())).expect("valid");
        plan(&s, &x86)
            .map(|p| p.iter().map(|p| p.estimated_lines()).sum())
            .unwrap_or(usize::MAX)
    };
    // Unrolled code pinned (`"compact": false`): the generator may not shrink these.
    let big = |i: usize| {
        layer(
            &format!("big{i}"),
            json!({"in_channels": 64, "out_channels": 64, "groups": 1, "kernel": [15, 15],
                "stride": [2, 2], "padding": [7, 7], "input": [64, 67], "oc_block": 16,
                "strategy": "gspc-ow", "compact": false}),
        )
    };
    let small = |i: usize| layer(&format!("small{i}"), json!({"compact": false}));
    let mut layers = Vec::new();
    for make in [&big as &dyn Fn(usize) -> Value, &small] {
        for i in 0.. {
            let mut more = layers.clone();
            more.push(make(i));
            if estimate(&more) > MAX_GENERATED_LINES {
                break;
            }
            layers = more;
        }
    }
    let lines = estimate(&layers);
    (layers, lines)
}

#[test]
fn generated_code_just_past_the_limit_is_refused() {
    let (mut layers, lines) = near_the_line_limit();
    layers.push(layer("one_more", json!({"compact": false})));
    let s = spec::parse("t.json", &model(layers)).expect("every layer is valid");
    let x86 = Options::for_target(Target::from_triple(TARGETS[0]).expect("known triple"));
    match generate(&s, &x86) {
        Err(Error::Invalid(d)) => {
            let m = d[0].to_string();
            assert!(
                m.starts_with("t.json: layers: the generated code would be about ")
                    && m.ends_with(&format!(
                        "more than the limit of {MAX_GENERATED_LINES} lines per spec file; split the model into several spec files"
                    )),
                "{m}"
            );
        }
        other => panic!(
            "{lines} + one more layer: expected a size error, got {:?}",
            other.map(|g| g.code.len())
        ),
    }
}

/// Depthwise 9x9 layers on 14x14 planes of 90 channels (not blocks of 16, so not
/// `gspc-dwc`): about 17 000 lines each unrolled on x86-64 (the flat direct kernel unrolls
/// the plane), a fifth of that compact.
fn large_kernel_layers(n: usize, compact: Option<bool>) -> String {
    let layers = (0..n)
        .map(|i| {
            let mut l = layer(
                &format!("dw{i}"),
                json!({"in_channels": 90, "out_channels": 90, "groups": 90, "kernel": [9, 9],
                    "padding": [4, 4], "input": [14, 14]}),
            );
            if let Some(c) = compact {
                l["compact"] = json!(c);
            }
            l
        })
        .collect();
    model(layers)
}

/// A model over the limit unrolled (the next test) fits with its largest layers compact:
/// generated as one spec, within the limit, for every target.
#[test]
fn a_model_over_the_limit_unrolled_generates_with_compact_layers() {
    let text = large_kernel_layers(30, None);
    let s = spec::parse("t.json", &text).expect("valid");
    for t in TARGETS {
        let options = Options::for_target(Target::from_triple(t).expect("known triple"));
        let g = generate(&s, &options).unwrap_or_else(|e| panic!("{t}: {e}"));
        let lines: usize = g.layer_lines.iter().sum();
        assert!(lines <= MAX_GENERATED_LINES, "{t}: {lines} lines");
        syn::parse_file(&g.code).unwrap_or_else(|e| panic!("{t}: {e}"));
        if t.starts_with("x86_64") {
            let compact = g.plans.iter().filter(|p| p.compact).count();
            assert!(
                compact > 0 && compact < 30,
                "{t}: {compact} of 30 layers compact (only as many as needed)"
            );
        }
    }
}

/// The same model with every layer pinned unrolled is refused, naming the rule.
#[test]
fn a_model_pinned_unrolled_over_the_limit_is_refused() {
    let s = spec::parse("t.json", &large_kernel_layers(30, Some(false))).expect("valid");
    let x86 = Options::for_target(Target::from_triple(TARGETS[0]).expect("known triple"));
    match generate(&s, &x86) {
        Err(Error::Invalid(d)) => {
            let m = d[0].to_string();
            assert!(
                m.starts_with("t.json: layers: the generated code would be about ")
                    && m.contains("even with compact code for every layer that allows it")
                    && m.ends_with("split the model into several spec files"),
                "{m}"
            );
        }
        other => panic!(
            "expected a size error, got {:?}",
            other.map(|g| g.code.len())
        ),
    }
}

/// MixNet-S (timm, imported from its ONNX export: 43 depthwise layers, kernels 3x3 to
/// 11x11) generates as one spec for every target.
#[test]
fn mixnet_s_generates_as_one_spec() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs/mixnet_s.json");
    let text = std::fs::read_to_string(&path).expect("mixnet_s.json");
    let s = spec::parse("mixnet_s.json", &text).expect("valid");
    assert_eq!(s.layers.len(), 43);
    for t in TARGETS {
        let options = Options::for_target(Target::from_triple(t).expect("known triple"));
        let g = generate(&s, &options).unwrap_or_else(|e| panic!("{t}: {e}"));
        let lines: usize = g.layer_lines.iter().sum();
        assert!(lines <= MAX_GENERATED_LINES, "{t}: {lines} lines");
    }
}

#[test]
fn the_largest_generated_code_accepted_generates_and_parses() {
    let (layers, estimated) = near_the_line_limit();
    assert!(
        estimated > MAX_GENERATED_LINES * 99 / 100,
        "near the limit: {estimated}"
    );
    generates("near the line limit", &model(layers));
}

/// The limit bounds the estimate; the code generated must stay near it, or a spec under the
/// limit can still make millions of lines (a build that never ends).
#[test]
fn generated_lines_stay_near_the_estimate() {
    let shapes = [
        // From tests/specs/edge_cases.json: 759 lines estimated, 8 680 generated.
        json!({"in_channels": 3, "out_channels": 6, "groups": 3, "kernel": [7, 7],
            "stride": [3, 3], "padding": [3, 3], "input": [17, 10]}),
        json!({"in_channels": 16, "out_channels": 16, "groups": 16, "kernel": [7, 7],
            "stride": [16, 16], "padding": [0, 0], "input": [252, 252], "strategy": "gspc-ow"}),
        json!({"in_channels": 64, "out_channels": 64, "groups": 1, "kernel": [15, 15],
            "stride": [2, 2], "padding": [7, 7], "input": [64, 67], "oc_block": 16,
            "strategy": "gspc-ow"}),
        json!({"in_channels": 1, "out_channels": 1, "groups": 1, "kernel": [1, 1],
            "padding": [0, 0], "input": [4, 4]}),
        json!({}),
    ];
    let mut wrong = Vec::new();
    for fields in shapes {
        let s = spec::parse("t.json", &one(fields.clone())).expect("valid");
        for t in TARGETS {
            let options = Options::for_target(Target::from_triple(t).expect("known triple"));
            let g = generate(&s, &options).expect("generates");
            let estimated = g.plans[0].estimated_lines();
            let lines = g.layer_lines[0];
            if lines > estimated * 3 / 2 {
                wrong.push(format!(
                    "{t} {fields}: {estimated} estimated, {lines} generated"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn layers_at_the_size_limits_generate_and_parse() {
    let cases = [
        (
            "channel limit, depthwise, input of 2^28",
            json!({"in_channels": MAX_CHANNELS, "out_channels": MAX_CHANNELS,
                "groups": MAX_CHANNELS, "padding": [0, 0], "input": [64, 64]}),
        ),
        (
            "channel limit, one group, weights of 2^28",
            json!({"in_channels": MAX_CHANNELS, "out_channels": 4096, "groups": 1,
                "kernel": [1, 1], "padding": [0, 0], "input": [64, 64]}),
        ),
        (
            "spatial limit",
            json!({"in_channels": 4, "out_channels": 4, "groups": 1, "padding": [0, 0],
                "input": [MAX_SPATIAL, MAX_SPATIAL]}),
        ),
        (
            "kernel, stride, dilation and padding limits, gspc-oc",
            json!({"in_channels": 16, "out_channels": 32, "groups": 1,
                "kernel": [MAX_KERNEL, MAX_KERNEL], "stride": [MAX_STRIDE, MAX_STRIDE],
                "dilation": [MAX_DILATION, MAX_DILATION], "padding": [MAX_PADDING, MAX_PADDING],
                "input": [128, 200], "oc_block": MAX_OC_BLOCK, "strategy": "gspc-oc",
                "bias": true, "activation": "relu6", "count": MAX_COUNT}),
        ),
        (
            "kernel, stride, dilation and padding limits, gspc-ow",
            json!({"in_channels": 16, "out_channels": 32, "groups": 2,
                "kernel": [MAX_KERNEL, MAX_KERNEL], "stride": [MAX_STRIDE, MAX_STRIDE],
                "dilation": [MAX_DILATION, MAX_DILATION], "padding": [MAX_PADDING, MAX_PADDING],
                "input": [128, 200], "oc_block": MAX_OW_OC_BLOCK, "strategy": "gspc-ow",
                "bias": true, "activation": "relu"}),
        ),
    ];
    for (what, fields) in cases {
        generates(what, &one(fields));
    }
    let name = "n".repeat(MAX_NAME_LEN);
    generates(
        "names at the limit",
        &json!({"model": name, "layers": [layer(&name, json!({}))]}).to_string(),
    );
}

#[test]
fn the_most_layers_accepted_generate_and_parse() {
    let layers = (0..MAX_LAYERS)
        .map(|i| {
            layer(
                &format!("l{i}"),
                json!({"in_channels": 1, "out_channels": 1, "groups": 1, "kernel": [1, 1],
                    "padding": [0, 0], "input": [4, 4]}),
            )
        })
        .collect();
    generates("the most layers", &model(layers));
}

/// The estimate against the code of every model and edge-case layer: never far below it
/// (the limit must hold), and not so far above that real models hit the limit.
#[test]
fn the_line_estimate_tracks_real_layers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<_> = std::fs::read_dir(dir.join("layer-specs"))
        .expect("layer-specs")
        .map(|e| e.expect("entry").path())
        .collect();
    files.push(dir.join("tests/specs/edge_cases.json"));
    files.push(dir.join("tests/specs/edge_cases_dw_large.json"));
    let specs = gspc_codegen::read_specs(&files).expect("valid specs");
    let (mut estimated, mut generated) = (0usize, 0usize);
    let mut wrong = Vec::new();
    for s in &specs {
        for t in TARGETS {
            let options = Options::for_target(Target::from_triple(t).expect("known triple"));
            let g = generate(s, &options).expect("generates");
            for (p, &lines) in g.plans.iter().zip(&g.layer_lines) {
                let e = p.estimated_lines();
                estimated += e;
                generated += lines;
                if lines > e * 3 / 2 || e > lines * 8 {
                    wrong.push(format!(
                        "{t} {}::{}: {e} estimated, {lines} generated",
                        s.model, p.layer.name
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    eprintln!("{estimated} lines estimated, {generated} generated");
    assert!(
        estimated < generated * 4,
        "{estimated} estimated, {generated} generated"
    );
}
