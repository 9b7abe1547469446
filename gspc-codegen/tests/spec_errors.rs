//! Bad specs get every problem reported, each naming the file, the JSON path, the value and
//! the rule; hostile names and absurd sizes never reach generated code.

use gspc_codegen::{Error, Options, Target, generate, spec};

fn layer(extra: &str) -> String {
    format!(
        r#"{{"model": "m", "layers": [{{"name": "l", "in_channels": 8, "out_channels": 8, "groups": 2, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8]{extra}}}]}}"#
    )
}

/// Replaces one field of the default layer.
fn with(field: &str, value: &str) -> String {
    let base = layer("");
    let start = base.find(&format!("\"{field}\":")).expect("field exists");
    let rest = &base[start..];
    let end = rest
        .find(", \"")
        .or_else(|| rest.find("}]"))
        .expect("field end");
    format!("{}\"{field}\": {value}{}", &base[..start], &rest[end..])
}

fn messages(text: &str) -> Vec<String> {
    match spec::parse("t.json", text) {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e.messages(),
    }
}

fn assert_one(text: &str, expected: &str) {
    let m = messages(text);
    assert!(
        m.iter().any(|x| x == expected),
        "expected the message\n  {expected}\ngot\n  {}",
        m.join("\n  ")
    );
}

#[test]
fn a_good_spec_is_accepted() {
    let s = spec::parse("t.json", &layer("")).expect("valid");
    assert_eq!(s.layers[0].output(), [8, 8]);
    assert_eq!(s.layers[0].dilation, [1, 1]);
    assert_eq!(s.layers[0].count, 1);
}

#[test]
fn malformed_json_names_line_and_column() {
    let m = messages("{\"model\": \"m\",\n \"layers\": [}");
    assert_eq!(m.len(), 1);
    assert!(
        m[0].starts_with("t.json:2:13: malformed JSON: "),
        "{}",
        m[0]
    );
}

#[test]
fn groups_must_divide_both_channel_counts() {
    assert_one(
        &with("groups", "3"),
        "t.json: layers[0].groups: 3 does not divide in_channels = 8",
    );
    assert_one(
        &with("groups", "3"),
        "t.json: layers[0].groups: 3 does not divide out_channels = 8",
    );
}

#[test]
fn unknown_and_missing_fields_are_all_reported_together() {
    let text = r#"{"model": "m", "extra": 1, "layers": [
        {"name": "a", "in_channels": 8, "out_channels": 8, "groups": 2, "kernel": [3, 3],
         "strides": [1, 1], "padding": [1, 1], "input": [8, 8]},
        {"name": "b", "in_channels": 0, "out_channels": 8, "groups": 2, "kernel": [3, 3],
         "stride": [1, 1], "padding": [1, 1], "input": [8, 8], "activation": "gelu"}]}"#;
    let m = messages(text);
    let want = [
        "t.json: extra: unknown field (known fields: model, layers)",
        "t.json: layers[0].strides: unknown field (did you mean \"stride\"?)",
        "t.json: layers[0]: missing field \"stride\"",
        "t.json: layers[1].in_channels: 0 is below the minimum of 1 for channels",
        "t.json: layers[1].activation: \"gelu\" is not one of \"none\", \"relu\", \"relu6\"",
    ];
    for w in want {
        assert!(m.iter().any(|x| x == w), "missing {w:?} in {m:#?}");
    }
    assert_eq!(m.len(), want.len(), "{m:#?}");
}

#[test]
fn zero_sizes_and_wrong_types_are_refused() {
    assert_one(
        &with("kernel", "[0, 3]"),
        "t.json: layers[0].kernel[0]: 0 is below the minimum of 1 for the kernel size",
    );
    assert_one(
        &with("stride", "[1, 0]"),
        "t.json: layers[0].stride[1]: 0 is below the minimum of 1 for the stride",
    );
    assert_one(
        &with("input", "[0, 8]"),
        "t.json: layers[0].input[0]: 0 is below the minimum of 1 for the input size",
    );
    assert_one(
        &with("kernel", "3"),
        "t.json: layers[0].kernel: expected [height, width] (two whole numbers from 1 to 15), got 3",
    );
    assert_one(
        &with("groups", "-2"),
        "t.json: layers[0].groups: expected a whole number from 1 to 65536, got -2",
    );
    assert_one(
        &with("groups", "2.5"),
        "t.json: layers[0].groups: expected a whole number from 1 to 65536, got 2.5",
    );
    assert_one(
        &with("in_channels", "\"8\""),
        "t.json: layers[0].in_channels: expected a whole number from 1 to 65536, got \"8\"",
    );
    assert_one(
        &layer(", \"bias\": 1"),
        "t.json: layers[0].bias: expected true or false, got 1",
    );
    assert_one(
        &layer(", \"compact\": \"yes\""),
        "t.json: layers[0].compact: expected true or false, got \"yes\"",
    );
    assert_one(
        &layer(", \"accumulators\": 21"),
        "t.json: layers[0].accumulators: 21 is above the limit of 20 for accumulators",
    );
    assert_one(
        &layer(", \"direct\": 0"),
        "t.json: layers[0].direct: expected true or false, got 0",
    );
    assert_one(
        r#"{"model": "m", "layers": []}"#,
        "t.json: layers: a model needs at least one layer, got []",
    );
    assert_one(
        "[1, 2]",
        "t.json: the spec must be a JSON object {\"model\": ..., \"layers\": [...]}, got [1,2]",
    );
}

#[test]
fn a_kernel_larger_than_the_padded_input_is_refused() {
    let text = with("input", "[2, 8]").replace("\"padding\": [1, 1]", "\"padding\": [0, 1]");
    assert_one(
        &text,
        "t.json: layers[0].kernel: the height of the dilated kernel, 3 = 1 * (3 - 1) + 1, is larger than the padded input height 2 = 2 + 2 * 0, so the output height would be below 1",
    );
    let dilated = layer(", \"dilation\": [4, 1]").replace("\"input\": [8, 8]", "\"input\": [6, 8]");
    assert_one(
        &dilated,
        "t.json: layers[0].kernel: the height of the dilated kernel, 9 = 4 * (3 - 1) + 1, is larger than the padded input height 8 = 6 + 2 * 1, so the output height would be below 1",
    );
}

#[test]
fn duplicate_layer_names_are_refused() {
    let text = r#"{"model": "m", "layers": [
        {"name": "a", "in_channels": 8, "out_channels": 8, "groups": 2, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8]},
        {"name": "a", "in_channels": 8, "out_channels": 8, "groups": 2, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8]}]}"#;
    assert_one(
        text,
        "t.json: layers[1].name: \"a\" is already the name of layers[0]; layer names must be unique",
    );
}

#[test]
fn hostile_names_are_refused() {
    let hostile = [
        ("\"x; } fn evil() { }\"", "is not a Rust identifier"),
        ("\"a-b\"", "is not a Rust identifier"),
        ("\"1abc\"", "is not a Rust identifier"),
        ("\"\"", "an empty name is not a Rust identifier"),
        ("\"_\"", "\"_\" is not a usable Rust identifier"),
        (
            "\"fn\"",
            "\"fn\" is a Rust keyword and cannot name a module",
        ),
        (
            "\"gen\"",
            "\"gen\" is a Rust keyword and cannot name a module",
        ),
        (
            "\"self\"",
            "\"self\" is a Rust keyword and cannot name a module",
        ),
        ("\"r#type\"", "is not a Rust identifier"),
        ("\"caf\u{e9}\"", "is not a Rust identifier"),
        ("\"a\\nb\"", "is not a Rust identifier"),
        ("42", "expected a string, got 42"),
    ];
    for (name, rule) in hostile {
        let m = messages(&with("name", name));
        assert!(
            m.iter()
                .any(|x| x.starts_with("t.json: layers[0].name: ") && x.contains(rule)),
            "name {name}: expected {rule:?} in {m:#?}"
        );
        let model = layer("").replace("\"model\": \"m\"", &format!("\"model\": {name}"));
        let m = messages(&model);
        assert!(
            m.iter()
                .any(|x| x.starts_with("t.json: model: ") && x.contains(rule)),
            "model {name}: expected {rule:?} in {m:#?}"
        );
    }
    let long = format!("\"{}\"", "a".repeat(65));
    let m = messages(&with("name", &long));
    assert!(
        m.iter()
            .any(|x| x.starts_with("t.json: layers[0].name: \"aaaa")
                && x.ends_with("... is 65 bytes long; names are at most 64")),
        "{m:#?}"
    );
}

#[test]
fn absurd_sizes_are_refused_with_the_limit() {
    assert_one(
        &with("in_channels", "1000000"),
        "t.json: layers[0].in_channels: 1000000 is above the limit of 65536 for channels",
    );
    assert_one(
        &with("input", "[100000, 8]"),
        "t.json: layers[0].input[0]: 100000 is above the limit of 8192 for the input size",
    );
    assert_one(
        &with("kernel", "[16, 3]"),
        "t.json: layers[0].kernel[0]: 16 is above the limit of 15 for the kernel size",
    );
    assert_one(
        &with("groups", "18446744073709551617"),
        "t.json: layers[0].groups: expected a whole number from 1 to 65536, got 1.8446744073709552e+19",
    );
    // Each size is in range, the buffer is not.
    let big = with("in_channels", "65536")
        .replace("\"groups\": 2", "\"groups\": 1")
        .replace("\"input\": [8, 8]", "\"input\": [8192, 8192]");
    let m = messages(&big);
    assert!(
        m.iter().any(|x| x.starts_with("t.json: layers[0].input: in_channels * H * W = 4398046511104 elements is more than the limit of 268435456")),
        "{m:#?}"
    );
}

#[test]
fn too_much_generated_code_is_refused() {
    let layers: Vec<String> = (0..400)
        .map(|i| format!(
            r#"{{"name": "l{i}", "in_channels": 16, "out_channels": 16, "groups": 1, "kernel": [15, 15], "stride": [1, 1], "padding": [7, 7], "input": [64, 64]}}"#
        ))
        .collect();
    let text = format!(r#"{{"model": "m", "layers": [{}]}}"#, layers.join(","));
    let s = spec::parse("t.json", &text).expect("each layer is valid");
    let target = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
    match generate(&s, &Options::for_target(target)) {
        Err(Error::Invalid(d)) => assert!(
            d[0].to_string()
                .starts_with("t.json: layers: the generated code would be about ")
                && d[0]
                    .message
                    .contains("more than the limit of 400000 lines per spec file"),
            "{}",
            d[0]
        ),
        other => panic!(
            "expected a size error, got {:?}",
            other.map(|g| g.code.len())
        ),
    }
}

#[test]
fn every_accepted_spec_generates_code_that_parses() {
    let target = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
    let g = gspc_codegen::generate_str(
        "t.json",
        &layer(", \"bias\": true, \"activation\": \"relu6\""),
        &Options::for_target(target),
    )
    .expect("generates");
    syn::parse_file(&g.code).expect("generated code parses");
    assert!(g.code.starts_with("// @generated by gspc-codegen "));
}

#[test]
fn pinned_strategy_and_oc_block_are_checked() {
    assert_one(
        &layer(", \"strategy\": \"fast\""),
        "t.json: layers[0].strategy: \"fast\" is not one of \"gspc-oc\", \"gspc-ow\", \"gspc-dwc\"",
    );
    assert_one(
        &layer(", \"strategy\": \"gspc-dwc\""),
        "t.json: layers[0].strategy: \"gspc-dwc\" needs a depthwise layer (groups = in_channels = out_channels) with a multiple of 16 channels; this one has 8 -> 8 channels in 2 groups",
    );
    let depthwise = r#"{"model": "m", "layers": [{"name": "l", "in_channels": 16, "out_channels": 16, "groups": 16, "kernel": [3, 3], "stride": [2, 2], "padding": [1, 1], "input": [9, 9], "strategy": "gspc-dwc", "oc_block": 1}]}"#;
    assert_one(
        depthwise,
        "t.json: layers[0].oc_block: cannot be pinned with \"gspc-dwc\" (its blocks are 16 channels)",
    );
    // Pinned, it applies on every target (the cost model picks it on x86-64 only).
    let s = spec::parse("t.json", &depthwise.replace(", \"oc_block\": 1", "")).expect("valid");
    for triple in [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "thumbv7em-none-eabihf",
    ] {
        let g = generate(
            &s,
            &Options::for_target(Target::from_triple(triple).unwrap()),
        )
        .expect("generates");
        assert_eq!(
            g.plans[0].strategy,
            gspc_codegen::Strategy::GspcDwc,
            "{triple}"
        );
        syn::parse_file(&g.code).expect("parses");
    }
    assert_one(
        &layer(", \"oc_block\": 3"),
        "t.json: layers[0].oc_block: 3 does not divide the output channels per group, 4 = 8 / 2",
    );
    assert_one(
        &layer(", \"oc_block\": 64"),
        "t.json: layers[0].oc_block: 64 is above the limit of 32 for oc_block",
    );
    let narrow =
        layer(", \"strategy\": \"gspc-ow\"").replace("\"input\": [8, 8]", "\"input\": [8, 3]");
    assert_one(
        &narrow,
        "t.json: layers[0].strategy: \"gspc-ow\" needs at least 4 output columns, this layer has 3",
    );
    let s = spec::parse(
        "t.json",
        &layer(", \"strategy\": \"gspc-ow\", \"oc_block\": 2"),
    )
    .expect("valid");
    let target = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
    let g = generate(&s, &Options::for_target(target)).expect("generates");
    assert_eq!(g.plans[0].strategy, gspc_codegen::Strategy::GspcOw);
    assert_eq!(g.plans[0].oc_bn, 2);
}

/// `, "dtype": "int8", "quantization": {...}` with `fields` (the default ones when empty).
fn int8(fields: &str) -> String {
    let q = if fields.is_empty() {
        r#""requantization": "fixed", "input_scale": 0.02, "input_zero_point": -3, "output_scale": 0.05, "output_zero_point": 7, "weight_scales": 0.004"#
    } else {
        fields
    };
    layer(&format!(", \"dtype\": \"int8\", \"quantization\": {{{q}}}"))
}

/// The default int8 layer with quantization field `name` set to `value`.
fn int8_with(name: &str, value: &str) -> String {
    let good = int8("");
    let start = good.find(&format!("\"{name}\":")).expect("field exists");
    let rest = &good[start..];
    let end = rest.find(", \"").or_else(|| rest.find('}')).expect("end");
    format!("{}\"{name}\": {value}{}", &good[..start], &rest[end..])
}

#[test]
fn an_int8_layer_is_parsed_with_its_quantization() {
    let s = spec::parse("t.json", &int8("")).expect("valid");
    let l = &s.layers[0];
    assert_eq!(l.dtype(), gspc_codegen::Dtype::Int8);
    let q = l.quantization.as_ref().expect("int8");
    assert_eq!(q.requantization.as_str(), "fixed");
    assert_eq!((q.input_scale, q.input_zero_point), (0.02, -3));
    assert_eq!((q.output_scale, q.output_zero_point), (0.05, 7));
    // One number applies to every output channel.
    assert_eq!(q.weight_scales, vec![0.004; 8]);
    let per_channel =
        int8_with("weight_scales", "[1, 2, 3, 4, 5, 6, 7, 8]").replace("\"fixed\"", "\"fp32\"");
    let s = spec::parse("t.json", &per_channel).expect("valid");
    let q = s.layers[0].quantization.as_ref().expect("int8");
    assert_eq!(q.weight_scales, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    assert_eq!(q.requantization.as_str(), "fp32");
    // An f32 layer, explicitly or by default, has none.
    let s = spec::parse("t.json", &layer(", \"dtype\": \"f32\"")).expect("valid");
    assert_eq!(s.layers[0].dtype(), gspc_codegen::Dtype::F32);
    assert_eq!(
        s.layers[0],
        spec::parse("t.json", &layer("")).expect("valid").layers[0]
    );
}

#[test]
fn dtype_and_quantization_must_agree() {
    assert_one(
        &layer(", \"dtype\": \"int4\""),
        "t.json: layers[0].dtype: \"int4\" is not one of \"f32\", \"int8\"",
    );
    assert_one(
        &layer(", \"dtype\": \"int8\""),
        "t.json: layers[0]: missing field \"quantization\" (an int8 layer needs its scales and zero points)",
    );
    let f32_with_q = int8("").replace("\"dtype\": \"int8\"", "\"dtype\": \"f32\"");
    assert_one(
        &f32_with_q,
        "t.json: layers[0].quantization: quantization parameters are for \"dtype\": \"int8\" layers; this one is f32",
    );
    let default_with_q = int8("").replace("\"dtype\": \"int8\", ", "");
    assert_one(
        &default_with_q,
        "t.json: layers[0].quantization: quantization parameters are for \"dtype\": \"int8\" layers; this one is f32",
    );
    assert_one(
        &layer(", \"dtype\": \"int8\", \"quantization\": 1"),
        "t.json: layers[0].quantization: expected an object {\"requantization\", \"input_scale\", \"input_zero_point\", \"output_scale\", \"output_zero_point\", \"weight_scales\"}, got 1",
    );
}

#[test]
fn quantization_fields_are_each_checked() {
    assert_one(
        &int8_with("requantization", "\"float\""),
        "t.json: layers[0].quantization.requantization: \"float\" is not one of \"fixed\", \"fp32\"",
    );
    assert_one(
        &int8(
            r#""requantization": "fixed", "input_scale": 0.02, "input_zero_point": -3, "output_scale": 0.05, "output_zero_point": 7, "weight_scale": 0.004"#,
        ),
        "t.json: layers[0].quantization.weight_scale: unknown field (did you mean \"weight_scales\"?)",
    );
    assert_one(
        &int8(
            r#""requantization": "fixed", "input_scale": 0.02, "input_zero_point": -3, "output_scale": 0.05, "output_zero_point": 7, "weight_scale": 0.004"#,
        ),
        "t.json: layers[0].quantization: missing field \"weight_scales\"",
    );
    // Scales: finite and above 0, also in f32.
    assert_one(
        &int8_with("input_scale", "0"),
        "t.json: layers[0].quantization.input_scale: 0 is not above 0; scales are positive",
    );
    assert_one(
        &int8_with("output_scale", "-0.5"),
        "t.json: layers[0].quantization.output_scale: -0.5 is not above 0; scales are positive",
    );
    // (serde_json reads 1e-60 as 1.0000000000000001e-60.)
    let m = messages(&int8_with("input_scale", "1e-60"));
    assert!(
        m.len() == 1
            && m[0].starts_with("t.json: layers[0].quantization.input_scale: 1")
            && m[0].ends_with("e-60 is 0 in f32 (scales are f32, as in TFLite and ONNX); it must be a finite number above 0"),
        "{m:#?}"
    );
    assert_one(
        &int8_with("output_scale", "1e40"),
        "t.json: layers[0].quantization.output_scale: 1e+40 is infinite in f32 (scales are f32, as in TFLite and ONNX); it must be a finite number above 0",
    );
    assert_one(
        &int8_with("input_scale", "\"0.1\""),
        "t.json: layers[0].quantization.input_scale: expected a number above 0, got \"0.1\"",
    );
    // Zero points: whole numbers in [-128, 127].
    assert_one(
        &int8_with("input_zero_point", "128"),
        "t.json: layers[0].quantization.input_zero_point: 128 is outside the int8 range [-128, 127] of a zero point",
    );
    assert_one(
        &int8_with("output_zero_point", "-129"),
        "t.json: layers[0].quantization.output_zero_point: -129 is outside the int8 range [-128, 127] of a zero point",
    );
    assert_one(
        &int8_with("output_zero_point", "1.5"),
        "t.json: layers[0].quantization.output_zero_point: expected a whole number from -128 to 127, got 1.5",
    );
    // Weight scales: one per output channel (8), each a scale.
    assert_one(
        &int8_with("weight_scales", "[0.1, 0.2]"),
        "t.json: layers[0].quantization.weight_scales: 2 weight scales for out_channels = 8; give one per output channel, or one number for all",
    );
    assert_one(
        &int8_with("weight_scales", "[1, 1, 1, 0, 1, 1, 1, 1]"),
        "t.json: layers[0].quantization.weight_scales[3]: 0 is not above 0; scales are positive",
    );
    // Every problem of the object at once.
    let m = messages(&int8(
        r#""requantization": 1, "input_scale": 0, "input_zero_point": 300, "output_scale": 0.05, "output_zero_point": 7"#,
    ));
    assert_eq!(m.len(), 4, "{m:#?}");
}

#[test]
fn multipliers_must_be_representable_in_the_mode() {
    // fixed: 0.02 * 1e-9 / 0.05 = 4e-10 is above 2^-32 = 2.3e-10 (shift -31): accepted.
    spec::parse("t.json", &int8_with("weight_scales", "1e-9")).expect("valid");
    // 2e-10 is below: a single scale is blamed as a whole, the count given.
    assert_one(
        &int8_with("weight_scales", "5e-10"),
        "t.json: layers[0].quantization.weight_scales: output channel 0: the multiplier input_scale * weight_scale / output_scale = 2.0000e-10 needs a shift outside [-31, 30] (it must be in about [2^-32, 2^30)) for \"fixed\" requantization (8 of the 8 channels are out of range)",
    );
    // The high end: 0.02 * 1e8 / 0.05 = 4e7 < 2^30 is fine; 0.02 * 1e8 / 1e-3 = 2e9 is not.
    spec::parse("t.json", &int8_with("weight_scales", "1e8")).expect("valid");
    let high = int8_with("weight_scales", "[1, 1, 1, 1, 1, 1, 1, 1e8]")
        .replace("\"output_scale\": 0.05", "\"output_scale\": 1e-3");
    let m = messages(&high);
    assert_eq!(m.len(), 1, "{m:#?}");
    assert!(
        m[0].starts_with("t.json: layers[0].quantization.weight_scales[7]: output channel 7: the multiplier input_scale * weight_scale / output_scale = 2.0000e9 needs"),
        "{m:#?}"
    );
    // fp32 takes both, and refuses only what is zero or infinite in f32.
    let fp32 = |t: String| t.replace("\"fixed\"", "\"fp32\"");
    spec::parse("t.json", &fp32(int8_with("weight_scales", "5e-10"))).expect("valid");
    spec::parse("t.json", &fp32(high)).expect("valid");
    let underflow = fp32(int8_with("weight_scales", "1e-40"))
        .replace("\"input_scale\": 0.02", "\"input_scale\": 1e-10");
    assert_one(
        &underflow,
        "t.json: layers[0].quantization.weight_scales: output channel 0: the scale input_scale * weight_scale / output_scale = 2.0000e-49 is zero or infinite in f32 (8 of the 8 channels are out of range)",
    );
}

#[test]
fn an_int8_reduction_must_fit_an_int32_accumulator() {
    // 8192 / 1 * 3 * 3 = 73728 > 65793.
    let wide = r#"{"model": "m", "layers": [{"name": "l", "in_channels": 8192, "out_channels": 1, "groups": 1, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [4, 4], "dtype": "int8", "quantization": {"requantization": "fp32", "input_scale": 0.02, "input_zero_point": 0, "output_scale": 0.05, "output_zero_point": 0, "weight_scales": 0.01}}]}"#;
    assert_one(
        wide,
        "t.json: layers[0].kernel: an int8 layer's (in_channels / groups) * KH * KW = 73728 is above the limit of 65793, which keeps its int32 accumulator from overflowing (65793 * 255 * 128 < 2^31)",
    );
    // As f32 it is fine.
    let f32_layer = wide.replace(
        r#", "dtype": "int8", "quantization": {"requantization": "fp32", "input_scale": 0.02, "input_zero_point": 0, "output_scale": 0.05, "output_zero_point": 0, "weight_scales": 0.01}"#,
        "",
    );
    spec::parse("t.json", &f32_layer).expect("valid");
}

/// A model mixing int8 and f32 layers plans and generates on every target: the int8 layers
/// as int8 kernels (`QLAYERS`), the f32 ones as before (`LAYERS`).
#[test]
fn int8_and_f32_layers_generate_side_by_side() {
    let two = int8("").replace(
        "}]}",
        r#"}, {"name": "f", "in_channels": 8, "out_channels": 8, "groups": 8, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8]}]}"#,
    );
    let s = spec::parse("t.json", &two).expect("valid");
    for triple in [
        "x86_64-unknown-linux-gnu",
        "thumbv7em-none-eabihf",
        "aarch64-unknown-linux-gnu",
    ] {
        let options = Options::for_target(Target::from_triple(triple).unwrap());
        let plans = gspc_codegen::plan(&s, &options).expect("plans");
        assert!(plans[0].quant.is_some() && plans[1].quant.is_none());
        let g = generate(&s, &options).expect("generated");
        assert!(
            g.code
                .contains("QLAYERS: &[::gspc_runtime::qlayer::QLayer] = &[l::LAYER]"),
            "{triple}"
        );
        assert!(
            g.code
                .contains("LAYERS: &[::gspc_runtime::Layer] = &[f::LAYER]"),
            "{triple}"
        );
    }
}
