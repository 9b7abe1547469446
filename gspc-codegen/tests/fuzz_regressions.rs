//! Inputs kept from fuzzing (`fuzz/`, see its README): every file under
//! `tests/fuzz-regressions/<target>/` goes through the fuzz target's invariant in the normal
//! test suite. For `spec`: no panic; an accepted spec generates, for x86-64, aarch64 and
//! thumbv7em, code that parses, or is refused for its size, never with an internal error.
//! For `import`: an imported model's spec text parses to its layers, its weights pass the
//! weights reader against that spec, and the baked kernels generate code that parses.

use gspc_codegen::import::{ImportOptions, import};
use gspc_codegen::{Error, Options, Target, generate, generate_baked, spec, weights};
use std::path::Path;

fn files(target: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "{}: no inputs", dir.display());
    v
}

#[test]
fn kept_spec_inputs_hold_the_spec_invariant() {
    for path in files("spec") {
        let name = path.display().to_string();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let Ok(s) = spec::parse(&name, text) else {
            continue;
        };
        for triple in [
            "x86_64-unknown-linux-gnu",
            "aarch64-unknown-linux-gnu",
            "thumbv7em-none-eabihf",
        ] {
            let options = Options::for_target(Target::from_triple(triple).expect("known triple"));
            match generate(&s, &options) {
                Ok(g) => {
                    if let Err(e) = syn::parse_file(&g.code) {
                        panic!("{name}, {triple}: generated code does not parse: {e}");
                    }
                }
                Err(Error::Invalid(d)) => assert!(
                    d.iter().all(|d| d.message.contains("lines per spec file")),
                    "{name}, {triple}: an accepted spec refused: {d:?}"
                ),
                Err(e) => panic!("{name}, {triple}: {e}"),
            }
        }
    }
}

/// Duplicate keys in a JSON object (found by the fuzzer: serde_json kept the last value,
/// silently): refused, naming the key and where it is given again.
#[test]
fn duplicate_keys_are_refused() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions/spec/duplicate_keys_last_wins.json");
    let text = std::fs::read_to_string(&path).expect("readable");
    let e = spec::parse("d.json", &text).expect_err("refused");
    assert_eq!(
        e.to_string(),
        "d.json:2:165: malformed JSON: key \"in_channels\" given twice in one object"
    );
}

#[test]
fn kept_import_inputs_hold_the_import_invariant() {
    for path in files("import") {
        let name = path.display().to_string();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        for all_convs in [false, true] {
            let options = ImportOptions {
                all_convs,
                ..ImportOptions::default()
            };
            let Ok(imported) = import(&name, &bytes, &options) else {
                continue;
            };
            let s = spec::parse(&name, &imported.spec_json)
                .unwrap_or_else(|e| panic!("{name}: imported spec_json refused: {e}"));
            assert_eq!(s.layers, imported.spec.layers, "{name}");
            let w = weights::from_safetensors("w.safetensors", &imported.weights, &s)
                .unwrap_or_else(|e| panic!("{name}: imported weights do not fit: {e}"));
            let target = Target::from_triple("x86_64-unknown-linux-gnu").expect("known triple");
            let g = generate_baked(&s, &w, &Options::for_target(target))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            syn::parse_file(&g.code).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// Found by the import fuzz target: a NaN in a Conv's weight initializer was imported, and
/// the weights file it wrote was then refused by the weights reader.
#[test]
fn non_finite_conv_weights_are_refused_at_import() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions/import/nan_in_conv_weights.onnx");
    let bytes = std::fs::read(&path).expect("readable");
    match import("m.onnx", &bytes, &ImportOptions::default()) {
        Err(e) => {
            let m = e.messages();
            assert!(
                m.iter()
                    .any(|x| x.contains("weights: value NaN at flat index 2022 is not finite")),
                "{m:#?}"
            );
        }
        Ok(_) => panic!("a model with NaN weights was imported"),
    }
}
