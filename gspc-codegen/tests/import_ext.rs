//! ONNX import, continued: external data (the fixtures of `tests/fixtures/`, made by
//! `scripts/make_import_fixtures.py`, and hostile locations and ranges with their exact
//! messages), BatchNormalization and constant Mul/Add folding checked against ONNX
//! Runtime, and `Builder::onnx`.

mod common;

use common::*;
use gspc_codegen::import::onnx::{ModelProto, NodeProto};
use gspc_codegen::import::{self, ImportOptions, Imported, InMemory};
use gspc_codegen::{Activation, Builder, Error, LayerSpec, Target};
use predicates::prelude::*;
use prost::Message;
use std::path::Path;

// ---------------------------------------------------------------------------------------
// helpers

/// The fixtures of this file, made by `scripts/make_import_fixtures.py`.
const FIXTURES: &str = "tests/fixtures";

/// A grouped Conv, stride 1, pads 1.
fn conv(name: &str, inputs: &[&str], y: &str, group: i64) -> NodeProto {
    node(
        "Conv",
        name,
        inputs,
        &[y],
        vec![attr_int("group", group), attr_ints("pads", &[1; 4])],
    )
}

/// Seeded values.
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7 + seed * 3 + 1) % 13) as f32 * 0.125 - 0.75)
        .collect()
}

// ---------------------------------------------------------------------------------------
// external data

#[test]
fn external_data_imports_as_the_same_model_inline() {
    let ext = import::import_file(
        &fixtures(FIXTURES).join("ext_net.onnx"),
        &Default::default(),
    )
    .expect("imports");
    let inline = import::import(
        "ext_net_inline.onnx",
        &fixture(FIXTURES, "ext_net_inline.onnx"),
        &Default::default(),
    )
    .expect("imports");
    assert_eq!(ext.spec.layers, inline.spec.layers);
    assert_eq!(ext.weights, inline.weights);
    assert_eq!(ext.layers, inline.layers);
    assert_eq!(ext.data_files, ["ext_net.onnx.data"]);
    assert!(inline.data_files.is_empty());
    assert!(
        ext.notes.contains(
            &"read external data from \"ext_net.onnx.data\" (next to the model)".to_string()
        ),
        "{:?}",
        ext.notes
    );
    // The BatchNormalization (its parameters external too) is folded, the Relu fused.
    assert_eq!(
        ext.layers[0].folded,
        ["graph.node[1] \"/bn1/BN\" (BatchNormalization)"]
    );
    assert_eq!(ext.spec.layers[0].activation, Activation::Relu);
    assert_eq!(ext.layers[0].output, "r1");
    // From bytes only, the data is refused once per file, naming the first tensor.
    let file = fixtures(FIXTURES)
        .join("ext_net.onnx")
        .display()
        .to_string();
    assert_eq!(
        messages(import::import(
            &file,
            &fixture(FIXTURES, "ext_net.onnx"),
            &Default::default()
        )),
        [format!(
            "{file}: graph.initializer[0]: tensor \"c1.weight\": external data \"ext_net.onnx.data\": this import was given the model's bytes only and reads no files: import the model from its path (import::import_file, gspc-codegen import) or save it with its weights inside (onnx.save_model(model, path, save_as_external_data=False)) (and 6 more tensor(s) stored in this file)"
        )]
    );
}

/// A depthwise 2x2 conv (4 channels) whose weights (16 floats) are the external tensor `w`
/// with these entries.
fn one_external_conv(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut c = conv("c", &["x", "w"], "y", 4);
    c.attribute = vec![attr_int("group", 4)];
    model(
        vec![c],
        vec![external("w", &[4, 1, 2, 2], entries)],
        vec![value("x", &[1, 4, 5, 5])],
        &["y"],
        17,
    )
}

/// Imports `bytes` as `<dir>/m.onnx` (external data from `dir`).
fn import_in(dir: &TempDir, bytes: &[u8]) -> Result<Imported, Error> {
    let path = dir.path("m.onnx");
    std::fs::write(&path, bytes).expect("write the model");
    import::import_file(&path, &Default::default())
}

#[test]
fn external_data_reads_the_range_of_each_tensor() {
    let dir = TempDir::new("range");
    let w = values(16, 1);
    // The tensor's bytes in the middle of a larger file, in a subdirectory.
    std::fs::create_dir(dir.path("data")).expect("mkdir");
    let mut file = vec![0xffu8; 100];
    file.extend(le(&w));
    file.extend([0xffu8; 28]);
    std::fs::write(dir.path("data/w.bin"), &file).expect("write");
    let bytes = one_external_conv(&[
        ("location", "data/w.bin"),
        ("offset", "100"),
        ("length", "64"),
    ]);
    let i = import_in(&dir, &bytes).expect("imports");
    let st = safetensors::SafeTensors::deserialize(&i.weights).expect("safetensors");
    assert_eq!(f32s(st.tensor("c.weight").expect("weights").data()), w);
    assert_eq!(i.data_files, ["data/w.bin"]);
    // No length: the rest of the file from the offset.
    std::fs::write(dir.path("rest.bin"), [vec![0u8; 8], le(&w)].concat()).expect("write");
    let i = import_in(
        &dir,
        &one_external_conv(&[("location", "rest.bin"), ("offset", "8")]),
    )
    .expect("imports");
    let st = safetensors::SafeTensors::deserialize(&i.weights).expect("safetensors");
    assert_eq!(f32s(st.tensor("c.weight").expect("weights").data()), w);
    // A symbolic link that stays inside the model's directory is followed.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("data/w.bin", dir.path("inside.bin")).expect("symlink");
        let bytes = one_external_conv(&[
            ("location", "inside.bin"),
            ("offset", "100"),
            ("length", "64"),
        ]);
        assert!(import_in(&dir, &bytes).is_ok());
    }
    // The same from memory.
    let mut mem = InMemory::default();
    mem.files.insert("data/w.bin".to_string(), file);
    let bytes = one_external_conv(&[
        ("location", "data/w.bin"),
        ("offset", "100"),
        ("length", "64"),
    ]);
    let i = import::import_with("m.onnx", &bytes, &Default::default(), &mut mem).expect("imports");
    assert_eq!(i.data_files, ["data/w.bin"]);
}

#[test]
fn hostile_external_data_is_refused_naming_the_tensor_and_the_file() {
    let dir = TempDir::new("hostile");
    let outside = TempDir::new("outside");
    std::fs::write(dir.path("w.bin"), le(&values(16, 2))).expect("write");
    std::fs::write(outside.path("secret.bin"), le(&values(16, 3))).expect("write");
    std::fs::create_dir(dir.path("sub")).expect("mkdir");
    let model_dir = dir.0.path().display().to_string();
    let root = std::fs::canonicalize(dir.0.path()).expect("canonical");
    let secret = std::fs::canonicalize(outside.path("secret.bin")).expect("canonical");
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path("secret.bin"), dir.path("link.bin")).expect("symlink");
    let model_file = dir.path("m.onnx").display().to_string();
    let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
        (
            vec![("location", "/etc/passwd")],
            "external data \"/etc/passwd\": the location is an absolute path; external data must be a path relative to the model's directory".to_string(),
        ),
        (
            vec![("location", "../w.bin"), ("length", "64")],
            "external data \"../w.bin\": the location has a \"..\" component; external data must be in the model's directory or below it".to_string(),
        ),
        (
            vec![("location", "sub/../../w.bin")],
            "external data \"sub/../../w.bin\": the location has a \"..\" component; external data must be in the model's directory or below it".to_string(),
        ),
        (
            vec![("location", "")],
            "external data \"\": the location is empty".to_string(),
        ),
        (
            vec![("location", "sub//w.bin")],
            "external data \"sub//w.bin\": the location has an empty component".to_string(),
        ),
        (
            vec![("location", "w.bin"), ("offset", "100"), ("length", "64")],
            "external data \"w.bin\": offset 100 is beyond the end of the file (64 bytes)".to_string(),
        ),
        (
            vec![("location", "w.bin"), ("offset", "32"), ("length", "64")],
            "external data \"w.bin\": offset 32 + length 64 goes beyond the end of the file (64 bytes)".to_string(),
        ),
        (
            vec![("location", "w.bin"), ("offset", "0"), ("length", "60")],
            "external data \"w.bin\": length 60 does not match the tensor: dims [4, 1, 2, 2] of FLOAT are 64 bytes".to_string(),
        ),
        (
            vec![("location", "w.bin"), ("offset", "4")],
            "external data \"w.bin\": no length is given and the 60 bytes from offset 4 to the end of the file do not match the tensor: dims [4, 1, 2, 2] of FLOAT are 64 bytes".to_string(),
        ),
        (
            vec![("location", "w.bin"), ("offset", "-4")],
            "external data \"w.bin\": offset \"-4\" is not a whole number of bytes".to_string(),
        ),
        (
            vec![("location", "missing.bin")],
            format!("external data \"missing.bin\": cannot open it in the model's directory {model_dir}: No such file or directory (os error 2)"),
        ),
        (
            vec![("location", "sub")],
            "external data \"sub\": it is not a regular file".to_string(),
        ),
        (
            vec![("offset", "0")],
            "its external data has no \"location\" entry".to_string(),
        ),
    ];
    for (entries, want) in cases {
        let got = messages(import_in(&dir, &one_external_conv(&entries)));
        assert_eq!(
            got,
            [format!(
                "{model_file}: graph.initializer[0]: tensor \"w\": {want}"
            )],
            "{entries:?}"
        );
    }
    #[cfg(unix)]
    {
        let got = messages(import_in(
            &dir,
            &one_external_conv(&[("location", "link.bin")]),
        ));
        assert_eq!(
            got,
            [format!(
                "{model_file}: graph.initializer[0]: tensor \"w\": external data \"link.bin\": it resolves to {}, outside the model's directory {} (through a symbolic link); external data must be in the model's directory or below it",
                secret.display(),
                root.display()
            )]
        );
        // A FIFO is not opened (reading it would wait for a writer).
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path("fifo"))
            .status();
        if made.is_ok_and(|s| s.success()) {
            let got = messages(import_in(&dir, &one_external_conv(&[("location", "fifo")])));
            assert_eq!(
                got,
                [format!(
                    "{model_file}: graph.initializer[0]: tensor \"w\": external data \"fifo\": it is not a regular file"
                )]
            );
        }
        // A symlinked directory out of the model's directory too.
        std::os::unix::fs::symlink(&outside.0, dir.path("out")).expect("symlink");
        let got = messages(import_in(
            &dir,
            &one_external_conv(&[("location", "out/secret.bin")]),
        ));
        assert!(got[0].contains("outside the model's directory"), "{got:?}");
    }
}

#[test]
fn overlapping_external_tensors_cannot_read_a_file_many_times() {
    // Every tensor names the same 64 bytes: at most twice the file's size is read in all.
    let dir = TempDir::new("overlap");
    std::fs::write(dir.path("w.bin"), le(&values(16, 4))).expect("write");
    let entries = [("location", "w.bin"), ("length", "64")];
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    for i in 0..3 {
        let (x, w, y) = (format!("x{i}"), format!("w{i}"), format!("x{}", i + 1));
        let mut c = conv(&format!("c{i}"), &[&x, &w], &y, 4);
        c.attribute = vec![attr_int("group", 4)];
        nodes.push(c);
        inits.push(external(&w, &[4, 1, 2, 2], &entries));
    }
    let bytes = model(nodes, inits, vec![value("x0", &[1, 4, 9, 9])], &["x3"], 17);
    let file = dir.path("m.onnx").display().to_string();
    assert_eq!(
        messages(import_in(&dir, &bytes)),
        [format!(
            "{file}: graph.initializer[2]: tensor \"w2\": external data \"w.bin\": the tensors read from this file overlap: more than twice its 64 bytes in all"
        )]
    );
}

// ---------------------------------------------------------------------------------------
// folding

/// The reference convolution of gspc-runtime on an imported layer.
fn reference(l: &LayerSpec, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
    let info = layer_info(l);
    let mut y = vec![0f32; l.output_len()];
    gspc_runtime::reference::conv2d(&info, x, w, b, &mut y).expect("lengths");
    y
}

#[test]
fn batchnorm_mul_and_add_fold_into_the_conv_as_onnx_runtime_computes_them() {
    let i = import::import(
        "fold_net.onnx",
        &fixture(FIXTURES, "fold_net.onnx"),
        &Default::default(),
    )
    .expect("imports");
    assert_eq!(i.spec.layers.len(), 2);
    let [a, b] = [&i.layers[0], &i.layers[1]];
    assert_eq!(a.folded, ["graph.node[1] \"/bn/BN\" (BatchNormalization)"]);
    assert_eq!(
        a.fused.as_deref(),
        Some("graph.node[2] \"/relu/Relu\" (Relu)")
    );
    assert_eq!(a.output, "relu_out");
    assert_eq!(
        b.folded,
        [
            "graph.node[4] \"/scale/Mul\" (Mul)",
            "graph.node[5] \"/shift/Add\" (Add)",
            "graph.node[6] \"/gain/Mul\" (Mul)",
        ]
    );
    assert_eq!(b.fused, None);
    assert_eq!(b.output, "out");
    // The depthwise conv had no bias: the folded Add gives it one.
    assert!(i.spec.layers[1].bias);
    assert_eq!(b.bias_key.as_deref(), Some("c2.bias"));
    assert_eq!(
        i.notes,
        [
            "4 node(s) folded into the weights and bias of the layer before them (BatchNormalization x1, Mul x2, Add x1): the layer's output is theirs; do not run them separately",
            "1 Relu/Clip node(s) fused into the layer before them (the layer's output is theirs; do not run them separately)",
        ]
    );
    // Each layer on ONNX Runtime's input to it gives ONNX Runtime's output.
    let st = safetensors::SafeTensors::deserialize(&i.weights).expect("safetensors");
    let steps = [
        ("fold_net.input.bin", "fold_net.relu_out.bin"),
        ("fold_net.relu_out.bin", "fold_net.out.bin"),
    ];
    for ((l, info), (x, want)) in i.spec.layers.iter().zip(&i.layers).zip(steps) {
        let w = f32s(st.tensor(&info.weight_key).expect("weights").data());
        let bias = info
            .bias_key
            .as_ref()
            .map(|k| f32s(st.tensor(k).expect("bias").data()));
        let got = reference(l, &f32s(&fixture(FIXTURES, x)), &w, bias.as_deref());
        let want = f32s(&fixture(FIXTURES, want));
        assert_eq!(got.len(), want.len(), "{}", l.name);
        assert!(want.iter().filter(|v| v.abs() > 0.01).count() > want.len() / 3);
        for (k, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                "{}: output[{k}]: {g} vs ONNX Runtime's {e}",
                l.name
            );
        }
    }
}

/// Conv(4 channels, group 2) -> `then` nodes, input `x` [1, 4, 6, 6], weights `w`, bias
/// `b`, BatchNormalization parameters `s`, `t`, `m`, `v` and constants `k4` ([1, 4, 1, 1]),
/// `k4flat` ([4]) and `one` (scalar) available.
fn conv_then(then: Vec<NodeProto>, outputs: &[&str]) -> Vec<u8> {
    let mut nodes = vec![conv("c", &["x", "w", "b"], "y", 2)];
    nodes.extend(then);
    model(
        nodes,
        vec![
            tensor("w", &[4, 2, 3, 3], &values(72, 5)),
            tensor("b", &[4], &values(4, 6)),
            tensor("s", &[4], &[1.0, 0.5, 2.0, 1.5]),
            tensor("t", &[4], &values(4, 7)),
            tensor("m", &[4], &values(4, 8)),
            tensor("v", &[4], &[1.0, 0.25, 4.0, 2.0]),
            tensor("k4", &[1, 4, 1, 1], &[1.0, 2.0, 3.0, 4.0]),
            tensor("k4flat", &[4], &[1.0, 2.0, 3.0, 4.0]),
            tensor("one", &[], &[2.0]),
        ],
        vec![value("x", &[1, 4, 6, 6])],
        outputs,
        17,
    )
}

fn bn(name: &str, x: &str, y: &str) -> NodeProto {
    node(
        "BatchNormalization",
        name,
        &[x, "s", "t", "m", "v"],
        &[y],
        vec![],
    )
}

#[test]
fn folding_computes_in_f64_from_the_definition() {
    let bytes = conv_then(
        vec![
            bn("bn", "y", "z"),
            node("Mul", "mul", &["one", "z"], &["out"], vec![]),
        ],
        &["out"],
    );
    let i = import::import("t.onnx", &bytes, &Default::default()).expect("imports");
    let st = safetensors::SafeTensors::deserialize(&i.weights).expect("safetensors");
    let w = f32s(st.tensor("c.weight").expect("w").data());
    let b = f32s(st.tensor("c.bias").expect("b").data());
    let (w0, b0) = (values(72, 5), values(4, 6));
    let (s, t, m, v) = (
        [1.0f32, 0.5, 2.0, 1.5],
        values(4, 7),
        values(4, 8),
        [1.0f32, 0.25, 4.0, 2.0],
    );
    for k in 0..4 {
        let scale = f64::from(s[k]) / (f64::from(v[k]) + 1e-5f32 as f64).sqrt();
        let want_b = ((f64::from(b0[k]) - f64::from(m[k])) * scale + f64::from(t[k])) * 2.0;
        assert_eq!(b[k], want_b as f32, "bias {k}");
        for j in 0..18 {
            let want = f64::from(w0[k * 18 + j]) * scale * 2.0;
            assert_eq!(w[k * 18 + j], want as f32, "weight {k} {j}");
        }
    }
    assert_eq!(i.layers[0].output, "out");
}

#[test]
fn what_cannot_be_folded_is_noted_with_why() {
    let note = |then: Vec<NodeProto>, outputs: &[&str]| -> (Imported, Vec<String>) {
        let i = import::import("t.onnx", &conv_then(then, outputs), &Default::default())
            .expect("imports");
        let notes = i
            .notes
            .iter()
            .filter(|n| n.contains("is not folded"))
            .cloned()
            .collect();
        (i, notes)
    };
    // Two readers.
    let (i, n) = note(
        vec![
            bn("bn", "y", "z"),
            node("Relu", "r", &["y"], &["r"], vec![]),
        ],
        &["z", "r"],
    );
    assert!(i.layers[0].folded.is_empty());
    assert_eq!(
        n,
        [
            "graph.node[1] \"bn\" (BatchNormalization) follows layer c and is not folded into it: \"y\" has 2 readers; only a node that alone reads it can be folded; the app runs it"
        ]
    );
    // The Conv's output is a graph output.
    let (_, n) = note(vec![bn("bn", "y", "z")], &["y", "z"]);
    assert_eq!(
        n,
        [
            "graph.node[1] \"bn\" (BatchNormalization) follows layer c and is not folded into it: \"y\" is a graph output, which folding would change; the app runs it"
        ]
    );
    // Training form.
    let mut training = bn("bn", "y", "z");
    training.output.push("running_mean".to_string());
    let (_, n) = note(vec![training], &["z"]);
    assert_eq!(
        n,
        [
            "graph.node[1] \"bn\" (BatchNormalization) follows layer c and is not folded into it: it is in training form (it outputs the running mean or variance); the app runs it"
        ]
    );
    // Parameters of the wrong length, or not constant.
    let mut short = bn("bn", "y", "z");
    short.input[1] = "one".to_string();
    let (_, n) = note(vec![short], &["z"]);
    assert_eq!(
        n,
        [
            "graph.node[1] \"bn\" (BatchNormalization) follows layer c and is not folded into it: its scale has 1 values, the Conv has 4 output channels; the app runs it"
        ]
    );
    let mut dynamic = bn("bn", "y", "z");
    dynamic.input[4] = "x".to_string();
    let (_, n) = note(vec![dynamic], &["z"]);
    assert_eq!(
        n,
        [
            "graph.node[1] \"bn\" (BatchNormalization) follows layer c and is not folded into it: its variance \"x\" is not a constant (an initializer or a Constant node); the app runs it"
        ]
    );
    // A negative variance.
    let mut model_bytes =
        ModelProto::decode(conv_then(vec![bn("bn", "y", "z")], &["z"]).as_slice())
            .expect("decodes");
    if let Some(g) = model_bytes.graph.as_mut() {
        g.initializer[5] = tensor("v", &[4], &[1.0, -1.0, 1.0, 1.0]);
    }
    let i = import::import("t.onnx", &model_bytes.encode_to_vec(), &Default::default())
        .expect("imports");
    assert!(
        i.notes
            .iter()
            .any(|n| n
                .contains("is not folded into it: variance + epsilon of channel 1 is -0.99999")),
        "{:?}",
        i.notes
    );
    // A constant Mul along the width ([4] broadcasts over W, not the channels).
    let (i, n) = note(
        vec![node("Mul", "mul", &["y", "k4flat"], &["z"], vec![])],
        &["z"],
    );
    assert!(i.layers[0].folded.is_empty());
    assert_eq!(
        n,
        [
            "graph.node[1] \"mul\" (Mul) follows layer c and is not folded into it: its constant operand \"k4flat\" has shape [4]; a per-channel constant has shape [4, 1, 1] or [1, 4, 1, 1], or is a scalar; the app runs it"
        ]
    );
    // An Add of two activations (a residual) is no candidate: no note.
    let (i, n) = note(
        vec![node("Add", "res", &["y", "x"], &["z"], vec![])],
        &["z"],
    );
    assert!(i.layers[0].folded.is_empty() && n.is_empty());
    assert_eq!(i.layers[0].output, "y");
    // A BatchNormalization after the fused activation.
    let (i, n) = note(
        vec![
            node("Relu", "r", &["y"], &["r"], vec![]),
            bn("bn", "r", "z"),
        ],
        &["z"],
    );
    assert_eq!(i.spec.layers[0].activation, Activation::Relu);
    assert_eq!(
        n,
        [
            "graph.node[2] \"bn\" (BatchNormalization) follows layer c and is not folded into it: it reads the fused activation's output; only what comes between the Conv and its activation is folded; the app runs it"
        ]
    );
    // Folding stops before a node that cannot be folded, and the activation is not fused
    // past it.
    let (i, _) = note(
        vec![
            node("Mul", "ok", &["y", "k4"], &["z"], vec![]),
            node("Mul", "flat", &["z", "k4flat"], &["z2"], vec![]),
            node("Relu", "r", &["z2"], &["r"], vec![]),
        ],
        &["r"],
    );
    assert_eq!(i.layers[0].folded, ["graph.node[1] \"ok\" (Mul)"]);
    assert_eq!(i.layers[0].output, "z");
    assert_eq!(i.spec.layers[0].activation, Activation::None);
}

// ---------------------------------------------------------------------------------------
// the command and the builder

#[test]
fn cli_import_reads_external_data_next_to_the_model() {
    let dir = TempDir::new("cli");
    let spec = dir.path("ext.json");
    let weights = dir.path("ext.safetensors");
    gspc(&[
        "import".as_ref(),
        "tests/fixtures/ext_net.onnx".as_ref(),
        "--out".as_ref(),
        spec.as_os_str(),
        "--weights".as_ref(),
        weights.as_os_str(),
    ])
    .code(0)
    .stdout(
        predicate::str::contains("ext_net::c1  graph.node[0] \"/c1/Conv\" (Conv) + graph.node[1] \"/bn1/BN\" (BatchNormalization) + graph.node[2] \"/relu/Relu\" (Relu): 8x10x9 -> 16x10x9, groups 2, kernel 3x3, stride 1x1, padding 1x1, dilation 1x1, bias, relu\n")
            .and(predicate::str::contains(
                "note: read external data from \"ext_net.onnx.data\" (next to the model)\n",
            )),
    );
    let inline = import::import(
        "ext_net_inline.onnx",
        &fixture(FIXTURES, "ext_net_inline.onnx"),
        &Default::default(),
    )
    .expect("imports");
    assert_eq!(std::fs::read(&weights).expect("weights"), inline.weights);
    // A hostile location: exit 2, the message, nothing written.
    let bad = dir.path("bad.onnx");
    std::fs::write(&bad, one_external_conv(&[("location", "../etc/passwd")])).expect("write");
    let spec2 = dir.path("bad.json");
    gspc(&[
        "import".as_ref(),
        bad.as_os_str(),
        "--out".as_ref(),
        spec2.as_os_str(),
    ])
    .code(2)
    .stderr(format!(
        "{}: graph.initializer[0]: tensor \"w\": external data \"../etc/passwd\": the location has a \"..\" component; external data must be in the model's directory or below it\n",
        bad.display()
    ));
    assert!(!spec2.exists());
}

#[test]
fn builder_onnx_imports_bakes_and_generates_in_one_step() {
    let out = TempDir::new("builder");
    let model = fixtures(FIXTURES).join("ext_net.onnx");
    let options = ImportOptions {
        all_convs: true,
        input_shapes: vec![("x".to_string(), vec![1, 8, 10, 9])],
        model: Some("ext".to_string()),
        ..Default::default()
    };
    let output = Builder::new()
        .onnx_with(&model, options)
        .out_dir(&out.0)
        .target(Target::from_triple("x86_64-unknown-linux-gnu").expect("target"))
        .cargo_metadata(false)
        .generate()
        .expect("generates");
    assert_eq!(output.files, [out.path("ext.rs")]);
    assert_eq!(
        output.inputs,
        [model.clone(), fixtures(FIXTURES).join("ext_net.onnx.data")]
    );
    assert_eq!(output.imported.len(), 1);
    let imported = &output.imported[0];
    // The imported spec and weights are kept for inspection, the weights baked.
    assert_eq!(
        std::fs::read_to_string(out.path("ext.json")).expect("spec"),
        imported.spec_json
    );
    assert_eq!(
        std::fs::read(out.path("ext.safetensors")).expect("weights"),
        imported.weights
    );
    assert!(out.path("ext.weights.bin").exists());
    let code = std::fs::read_to_string(out.path("ext.rs")).expect("code");
    let regenerate = code
        .lines()
        .find(|l| l.starts_with("// Regenerate: "))
        .expect("a Regenerate line");
    assert_eq!(
        regenerate,
        format!(
            "// Regenerate: gspc-codegen import {} --out <DIR>/ext.json --weights <DIR>/ext.safetensors --all-convs --input-shape x=1x8x10x9 --model ext && gspc-codegen generate <DIR>/ext.json --out <DIR> --target x86_64-unknown-linux-gnu --isa portable,avx2,avx512 --weights <DIR>/ext.safetensors",
            model.display()
        )
    );
    assert!(code.contains("pub fn run_baked("));
    assert!(code.contains(&format!(
        "baked in at generation time from `{}`",
        model.display()
    )));
    // The same as import then generate --weights, byte for byte but the header.
    let spec =
        gspc_codegen::spec::parse(&model.display().to_string(), &imported.spec_json).expect("spec");
    let w = gspc_codegen::weights::from_safetensors(
        &model.display().to_string(),
        &imported.weights,
        &spec,
    )
    .expect("weights");
    let options = gspc_codegen::Options::for_target(
        Target::from_triple("x86_64-unknown-linux-gnu").expect("target"),
    );
    let two_steps = gspc_codegen::generate_baked(&spec, &w, &options).expect("generates");
    let body = |c: &str| c.lines().skip(3).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&code), body(&two_steps.code));
    assert_eq!(
        std::fs::read(out.path("ext.weights.bin")).expect("baked"),
        two_steps.weights.expect("baked").bytes
    );
    // A hostile model fails the build with the import's message.
    let bad_dir = TempDir::new("builder-bad");
    let bad = bad_dir.path("bad.onnx");
    std::fs::write(&bad, one_external_conv(&[("location", "/etc/passwd")])).expect("write");
    let e = Builder::new()
        .onnx(&bad)
        .out_dir(&out.0)
        .cargo_metadata(false)
        .generate()
        .expect_err("refused");
    assert_eq!(
        e.messages(),
        [format!(
            "{}: graph.initializer[0]: tensor \"w\": external data \"/etc/passwd\": the location is an absolute path; external data must be a path relative to the model's directory",
            bad.display()
        )]
    );
}

#[test]
fn the_fuzz_seed_reads_its_external_data_from_itself() {
    // fuzz/seeds/import/external_in_itself.onnx: the import fuzz target serves the input as
    // every data file; the seed's weights are at an offset into its own bytes.
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/import/external_in_itself.onnx"),
    )
    .expect("the seed");
    let mut mem = InMemory::default();
    mem.files.insert("w.bin".to_string(), bytes.clone());
    let i =
        import::import_with("seed.onnx", &bytes, &Default::default(), &mut mem).expect("imports");
    assert_eq!(i.data_files, ["w.bin"]);
    assert_eq!(i.layers[0].folded.len(), 2);
    assert_eq!(i.spec.layers[0].activation, Activation::Relu);
}

#[test]
fn large_external_tensors_are_read_only_for_the_convs_imported() {
    // A depthwise 15x15 conv of 512 channels (115 200 weights, more than the always-read
    // 65 536) reading its weights through an Identity, then an ungrouped 1x1 conv (262 144
    // weights), skipped without --all-convs: its weights are checked but not read.
    let n = 512 * 15 * 15;
    let w = values(n, 9);
    let w1 = values(512 * 512, 10);
    let mut file = le(&w);
    file.extend(le(&w1));
    let len0 = (4 * n).to_string();
    let len1 = (4 * 512 * 512).to_string();
    let mut dw = conv("dw", &["x", "w_id"], "y", 512);
    dw.attribute = vec![attr_int("group", 512), attr_ints("pads", &[7; 4])];
    let mut pw = conv("pw", &["y", "w1"], "z", 1);
    pw.attribute = vec![attr_int("group", 1)];
    let bytes = model(
        vec![node("Identity", "id", &["w"], &["w_id"], vec![]), dw, pw],
        vec![
            external(
                "w",
                &[512, 1, 15, 15],
                &[("location", "w.bin"), ("length", &len0)],
            ),
            external(
                "w1",
                &[512, 512, 1, 1],
                &[("location", "w.bin"), ("offset", &len0), ("length", &len1)],
            ),
        ],
        vec![value("x", &[1, 512, 8, 8])],
        &["z"],
        17,
    );
    /// Counts the bytes read.
    struct Counting(InMemory, u64);
    impl import::ExternalData for Counting {
        fn size(&mut self, location: &str) -> Result<u64, String> {
            self.0.size(location)
        }
        fn read(&mut self, location: &str, offset: u64, buf: &mut [u8]) -> Result<(), String> {
            self.1 += buf.len() as u64;
            self.0.read(location, offset, buf)
        }
    }
    let mut mem = InMemory::default();
    mem.files.insert("w.bin".to_string(), file);
    let mut data = Counting(mem, 0);
    let i = import::import_with("m.onnx", &bytes, &Default::default(), &mut data).expect("imports");
    assert_eq!(i.spec.layers.len(), 1);
    assert_eq!(data.1, 4 * n as u64, "only the depthwise weights are read");
    let st = safetensors::SafeTensors::deserialize(&i.weights).expect("safetensors");
    assert_eq!(f32s(st.tensor("dw.weight").expect("weights").data()), w);
    // With --all-convs the 1x1 conv's weights are read too.
    let all = ImportOptions {
        all_convs: true,
        ..Default::default()
    };
    data.1 = 0;
    let i = import::import_with("m.onnx", &bytes, &all, &mut data).expect("imports");
    assert_eq!(i.spec.layers.len(), 2);
    assert_eq!(data.1, 4 * (n + 512 * 512) as u64);
}
