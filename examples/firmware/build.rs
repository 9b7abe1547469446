//! Generates the kernels of `spec/tiny_net.json` for the target being built (portable Rust
//! for thumbv7em: no SIMD variant, no run-time dispatch), and gives the linker cortex-m-rt's
//! `link.x` with the memory map of the board as `memory.x` (`memory/board.x`, or
//! `memory/qemu-mps2-an386.x` with the `qemu` feature). The maps are not named `memory.x`
//! in this directory: the linker would find that one first, whatever the feature.

use std::path::PathBuf;

fn main() {
    if let Err(e) = gspc_codegen::Builder::new()
        .spec("spec/tiny_net.json")
        .index("models.rs")
        .generate()
    {
        fail(&format!("kernel generation failed:\n{e}"));
    }

    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_else(|| fail("no OUT_DIR")));
    let memory = if std::env::var_os("CARGO_FEATURE_QEMU").is_some() {
        "memory/qemu-mps2-an386.x"
    } else {
        "memory/board.x"
    };
    println!("cargo:rerun-if-changed={memory}");
    if let Err(e) = std::fs::copy(memory, out.join("memory.x")) {
        fail(&format!("{memory}: cannot copy into OUT_DIR: {e}"));
    }
    println!("cargo:rustc-link-search={}", out.display());
    // Only for the Cortex-M firmware; `link.x` (cortex-m-rt) includes `memory.x`.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=--nmagic");
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    }
}

fn fail(report: &str) -> ! {
    eprintln!("gspc-firmware-example: {report}");
    std::process::exit(1);
}
