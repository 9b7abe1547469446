//! `fixtures/small_net.onnx` (made by scripts/make_onnx_fixtures.py) through the whole
//! pipeline a user runs: import (spec + safetensors weights) -> generate with the weights
//! baked in, for the target being built. The spec and weights are written to `OUT_DIR` as
//! `gspc-codegen import` would write them.

use gspc_codegen::import::{ImportOptions, import};
use std::path::PathBuf;

const MODEL: &str = "fixtures/small_net.onnx";

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
}

fn write(path: &std::path::Path, bytes: &[u8]) {
    if let Err(e) = std::fs::write(path, bytes) {
        fail(&format!("{}: cannot write: {e}", path.display()));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1);
}
