//! Generates kernels for every spec in `tests/specs/` (shapes chosen to break kernels, not
//! model shapes), for the target being built.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from("../specs");
    println!("cargo:rerun-if-changed=../specs");
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/specs exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    specs.sort();
    if let Err(e) = gspc_codegen::Builder::new()
        .specs(&specs)
        .index("models.rs")
        .generate()
    {
        eprintln!("kernel generation failed:\n{e}");
        std::process::exit(1);
    }
}
