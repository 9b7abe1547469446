//! Two sets of ONNX models through the whole pipeline a user runs: import (spec + safetensors
//! weights) -> generate with the weights baked in, for the target being built.
//!
//! - `fixtures/small_net.onnx` (scripts/make_onnx_fixtures.py): the spec and weights are
//!   written to `OUT_DIR` as `gspc-codegen import` would write them; `models.rs` indexes it.
//! - `fixtures/real/*.onnx` (scripts/make_real_fixtures.py): small torchvision/timm models
//!   from both PyTorch exporters. Each is imported and generated on its own; a fixture that
//!   fails to import or generate does not fail the build: its error goes into the index
//!   `real.rs`, and the test fails unless [`REAL`] marks the fixture as pending. For each
//!   imported layer the build script also copies ONNX Runtime's values of the layer's input
//!   and output (`ImportedLayer::input`, `::output`) from `<fixture>.ref.safetensors` into
//!   `OUT_DIR/<fixture>.ref.bin`, so the test compares each layer with the value ONNX
//!   Runtime computed for that node inside the whole model.

use gspc_codegen::import::{ImportOptions, Imported, import};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const MODEL: &str = "fixtures/small_net.onnx";
const REAL_DIR: &str = "fixtures/real";

/// Every fixture of `fixtures/real/`, and `Some(why)` when this branch's importer is not
/// expected to take it yet: the test then reports its import error instead of failing.
/// A fixture marked `None` must import, generate and match ONNX Runtime layer by layer.
/// A pending fixture that does import is checked all the same (and the test says so).
const REAL: &[(&str, Option<&str>)] = &[
    ("mobilenet_v3_ts", None),
    ("mobilenet_v3_dx", None),
    ("efficientnet_ts", None),
    ("efficientnet_dx", None),
    ("convnext_ts", None),
    ("convnext_dx", None),
    ("regnet_x_ts", None),
    ("regnet_x_dx", None),
    ("shufflenet_v2_ts", None),
    ("shufflenet_v2_dx", None),
    ("resnext_ts", None),
    ("resnext_dx", None),
    ("mixnet_ts", None),
    ("mixnet_dx", None),
    ("mnasnet_ts", None),
    ("mnasnet_dx", None),
];

fn main() {
    println!("cargo:rerun-if-changed={MODEL}");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_else(|| fail("OUT_DIR is not set")));
    let bytes = std::fs::read(MODEL).unwrap_or_else(|e| fail(&format!("{MODEL}: {e}")));
    let imported = import(MODEL, &bytes, &ImportOptions::default())
        .unwrap_or_else(|e| fail(&format!("import failed:\n{e}")));
    let spec = out.join("small_net.json");
    let weights = out.join("small_net.safetensors");
    write(&spec, imported.spec_json.as_bytes());
    write(&weights, &imported.weights);
    if let Err(e) = gspc_codegen::Builder::new()
        .baked(&spec, &weights)
        .index("models.rs")
        .generate()
    {
        fail(&format!("kernel generation failed:\n{e}"));
    }

    real_fixtures(&out);
    int8_fixtures(&out);
}

/// The int8 fixtures of `gspc-codegen/tests/fixtures/int8_import/`
/// (scripts/make_int8_import_fixtures.py: a small network quantized with ONNX Runtime's
/// `quantize_static`): QDQ, QOperator, uint8 activations, and the Relu kept before the
/// quantize step.
const INT8: &[&str] = &["qnet_qdq", "qnet_qop", "qnet_u8", "qnet_relu"];
const INT8_DIR: &str = "../../gspc-codegen/tests/fixtures/int8_import";

/// Imports every int8 fixture as a user would (all convolutions, fp32 requantization by
/// default), generates it with its weights baked in, and writes ONNX Runtime's recorded int8
/// input and output of each layer (`<fixture>.<layer>.in` and `.out`, one byte per value;
/// uint8 values shifted by -128, as the import converts them). Writes `int8.rs`.
fn int8_fixtures(out: &Path) {
    let mut includes = String::new();
    let mut entries = String::new();
    for name in INT8 {
        let onnx = Path::new(INT8_DIR).join(format!("{name}.onnx"));
        let recorded = Path::new(INT8_DIR).join(format!("{name}.json"));
        println!("cargo:rerun-if-changed={}", onnx.display());
        println!("cargo:rerun-if-changed={}", recorded.display());
        let bytes =
            std::fs::read(&onnx).unwrap_or_else(|e| fail(&format!("{}: {e}", onnx.display())));
        let options = ImportOptions {
            all_convs: true,
            ..Default::default()
        };
        let imported = import(&onnx.display().to_string(), &bytes, &options)
            .unwrap_or_else(|e| fail(&format!("int8 import failed:\n{e}")));
        let spec = out.join(format!("{name}.json"));
        let weights = out.join(format!("{name}.safetensors"));
        write(&spec, imported.spec_json.as_bytes());
        write(&weights, &imported.weights);
        let generated = gspc_codegen::Builder::new()
            .baked(&spec, &weights)
            .generate()
            .unwrap_or_else(|e| fail(&format!("int8 kernel generation failed:\n{e}")));
        includes.push_str(&format!("include!({:?});\n", abs(&generated.files[0])));
        let text = std::fs::read_to_string(&recorded)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", recorded.display())));
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", recorded.display())));
        let values = &json["values"];
        let mut checks = String::new();
        for l in &imported.layers {
            let mut files = Vec::new();
            for (what, value) in [("in", &l.input), ("out", &l.output)] {
                let v = &values[value.as_str()];
                let shift = match v["dtype"].as_str() {
                    Some("int8") => 0,
                    Some("uint8") => 128,
                    other => fail(&format!("{name}: value {value:?}: dtype {other:?}")),
                };
                let data: Vec<u8> = v["data"]
                    .as_array()
                    .unwrap_or_else(|| fail(&format!("{name}: value {value:?}: no data")))
                    .iter()
                    .map(|x| (x.as_i64().unwrap_or(0) - shift) as i8 as u8)
                    .collect();
                let file = out.join(format!("{name}.{}.{what}", l.name));
                write(&file, &data);
                files.push(abs(&file));
            }
            writeln!(
                checks,
                "    ({:?}, {:?}, {:?}),",
                l.name, files[0], files[1]
            )
            .unwrap();
        }
        writeln!(
            entries,
            "Int8Fixture {{ name: {name:?}, layers: {name}::QLAYERS, checks: &[\n{checks}] }},"
        )
        .unwrap();
    }
    let index = format!(
        "// @generated by tests/onnx/build.rs -- do not edit.\n\n{includes}\n\
         /// The int8 fixtures, in build.rs's order.\n\
         pub const INT8_FIXTURES: &[Int8Fixture] = &[\n{entries}];\n"
    );
    write(&out.join("int8.rs"), index.as_bytes());
}

/// Imports and generates every fixture of [`REAL`] that `GSPC_REAL_FIXTURES` keeps; writes
/// `real.rs`.
///
/// `GSPC_REAL_FIXTURES` (unset: every fixture) is a comma-separated list of fixture names or
/// name endings, such as `dx` for the `torch.export` fixtures only (CI's emulated steps use
/// it: both exporters give the same layers, and compiling them twice for a target under
/// QEMU costs minutes). A fixture left out is reported as such by the test; an item that
/// matches no fixture fails the build.
fn real_fixtures(out: &Path) {
    println!("cargo:rerun-if-env-changed=GSPC_REAL_FIXTURES");
    let keep: Option<Vec<String>> = std::env::var("GSPC_REAL_FIXTURES")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let kept = |name: &str, item: &str| name == item || name.ends_with(&format!("_{item}"));
    if let Some(items) = &keep {
        for item in items {
            if !REAL.iter().any(|(name, _)| kept(name, item)) {
                fail(&format!(
                    "GSPC_REAL_FIXTURES: {item:?} is neither the name nor the ending of a fixture of {REAL_DIR}"
                ));
            }
        }
    }
    let mut includes = String::new();
    let mut entries = String::new();
    for &(name, pending) in REAL {
        if let Some(items) = &keep
            && !items.iter().any(|item| kept(name, item))
        {
            let why = format!("left out by GSPC_REAL_FIXTURES={}", items.join(","));
            writeln!(
                entries,
                "Fixture {{ name: {name:?}, pending: None, left_out: Some({why:?}), model: Err(\"not imported\") }},"
            )
            .unwrap();
            continue;
        }
        let result = real_fixture(name, out);
        let result = match result {
            Ok((file, layers)) => {
                includes.push_str(&format!("include!({:?});\n", abs(&file)));
                format!(
                    "Ok(Model {{ layers: {name}::LAYERS, reference: {:?}, checks: &[\n{layers}] }})",
                    abs(&out.join(format!("{name}.ref.bin")))
                )
            }
            Err(e) => format!("Err({e:?})"),
        };
        let pending = match pending {
            Some(why) => format!("Some({why:?})"),
            None => "None".to_string(),
        };
        writeln!(
            entries,
            "Fixture {{ name: {name:?}, pending: {pending}, left_out: None, model: {result} }},"
        )
        .unwrap();
    }
    let index = format!(
        "// @generated by tests/onnx/build.rs -- do not edit.\n\n{includes}\n\
         /// Every fixture of `fixtures/real/`, in build.rs's order.\n\
         pub const FIXTURES: &[Fixture] = &[\n{entries}];\n"
    );
    write(&out.join("real.rs"), index.as_bytes());
}

/// The generated file of fixture `name` and its layer checks as Rust `Layer { .. }`
/// entries; or the error that stopped it.
fn real_fixture(name: &str, out: &Path) -> Result<(PathBuf, String), String> {
    let dir = Path::new(REAL_DIR);
    let onnx = dir.join(format!("{name}.onnx"));
    let reference = dir.join(format!("{name}.ref.safetensors"));
    for p in [&onnx, &reference] {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let data = dir.join(format!("{name}.onnx.data"));
    if data.exists() {
        println!("cargo:rerun-if-changed={}", data.display());
    }
    let (imported, file) = import_and_generate(name, &onnx, out)?;

    // ONNX Runtime's value of each layer's input and output, one after the other.
    let bytes = std::fs::read(&reference).map_err(|e| format!("{}: {e}", reference.display()))?;
    let values = gspc_codegen::weights::parse_safetensors(&reference.display().to_string(), &bytes)
        .map_err(|e| e.to_string())?;
    let mut blob: Vec<u8> = Vec::new();
    let mut checks = String::new();
    for l in &imported.layers {
        let mut slice = |value: &str| -> Result<String, String> {
            let t = values.get(value).ok_or_else(|| {
                format!(
                    "{}: no value {value:?} (the {} of layer {} from {}); regenerate with scripts/make_real_fixtures.py",
                    reference.display(),
                    if value == l.input { "input" } else { "output" },
                    l.name,
                    l.source
                )
            })?;
            let data = t.data.as_f32().ok_or_else(|| {
                format!(
                    "{}: value {value:?} is {}, expected F32",
                    reference.display(),
                    t.data.dtype_name()
                )
            })?;
            let start = blob.len() / 4;
            for v in data {
                blob.extend_from_slice(&v.to_le_bytes());
            }
            Ok(format!(
                "Value {{ name: {value:?}, shape: &{:?}, start: {start}, len: {} }}",
                t.shape,
                t.data.len()
            ))
        };
        let input = slice(&l.input)?;
        let output = slice(&l.output)?;
        writeln!(
            checks,
            "    Layer {{ name: {:?}, source: {:?}, input: {input}, output: {output} }},",
            l.name, l.source
        )
        .unwrap();
    }
    write(&out.join(format!("{name}.ref.bin")), &blob);
    Ok((file, checks))
}

/// Imports `onnx` as model `name` (grouped convs only, as `gspc-codegen import` does by
/// default) and generates it with the weights baked in, in one step (`Builder::onnx_with`,
/// external data read from the model's directory); returns the import (for the layers'
/// ONNX values) and the generated file.
fn import_and_generate(name: &str, onnx: &Path, out: &Path) -> Result<(Imported, PathBuf), String> {
    let options = ImportOptions {
        model: Some(name.to_string()),
        ..ImportOptions::default()
    };
    let mut generated = gspc_codegen::Builder::new()
        .onnx_with(onnx, options)
        .out_dir(out)
        .generate()
        .map_err(|e| e.to_string())?;
    Ok((generated.imported.remove(0), generated.files.remove(0)))
}

fn abs(path: &Path) -> String {
    let p = std::path::absolute(path)
        .unwrap_or_else(|e| fail(&format!("{}: cannot make absolute: {e}", path.display())));
    p.to_str()
        .unwrap_or_else(|| fail(&format!("{}: not UTF-8", p.display())))
        .to_string()
}

fn write(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    if let Err(e) = std::fs::write(path, bytes) {
        fail(&format!("{}: cannot write: {e}", path.display()));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1);
}
