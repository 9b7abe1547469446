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
