//! Generates kernels for the target being built (aarch64: portable + NEON; x86-64:
//! portable, AVX2, AVX-512 with run-time dispatch) from `../../layer-specs/mobilenet_v1_dw.json`,
//! or from the spec files named in `GSPC_PI_SPECS` (separated by `:`; a relative path is
//! looked up in this directory, then in the repository root `../..`).

use std::path::PathBuf;

const DEFAULT_SPEC: &str = "../../layer-specs/mobilenet_v1_dw.json";

fn main() {
    println!("cargo:rerun-if-env-changed=GSPC_PI_SPECS");
    let specs: Vec<PathBuf> = match std::env::var("GSPC_PI_SPECS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(':')
            .filter(|s| !s.trim().is_empty())
            .map(|s| resolve(s.trim()))
            .collect(),
        _ => vec![PathBuf::from(DEFAULT_SPEC)],
    };
    if let Err(e) = gspc_codegen::Builder::new()
        .specs(&specs)
        .index("models.rs")
        .generate()
    {
        eprintln!("gspc-pi: kernel generation failed:\n{e}");
        std::process::exit(1);
    }
}

/// `path` as given if it exists (relative to this directory), else from the repository root.
fn resolve(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() || p.exists() {
        return p;
    }
    let from_root = PathBuf::from("../..").join(&p);
    if from_root.exists() { from_root } else { p }
}
