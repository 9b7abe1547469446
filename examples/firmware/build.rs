//! Generates the kernels of `spec/tiny_net.json` (with the `int8` feature:
//! `spec/tiny_net_int8.json`, the same layers in int8) for the target being built (portable Rust
//! for thumbv7em: no SIMD variant, no run-time dispatch) with the net's weights packed and
//! baked in (they go to flash; nothing is packed on the device), and gives the linker cortex-m-rt's
//! `link.x` with the memory map of the board as `memory.x` (`memory/board.x`, or
//! `memory/qemu-mps2-an386.x` with the `qemu` feature). The maps are not named `memory.x`
//! in this directory: the linker would find that one first, whatever the feature.

use std::path::{Path, PathBuf};

const SPEC: &str = "spec/tiny_net.json";
const SPEC_INT8: &str = "spec/tiny_net_int8.json";

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_else(|| fail("no OUT_DIR")));
    // A real application names its trained weights file here (safetensors, e.g. from
    // `gspc-codegen import`); this example makes up reproducible ones, which the `qemu`
    // build makes again on the device to check every layer against the reference.
    let int8 = std::env::var_os("CARGO_FEATURE_INT8").is_some();
    let (spec, weights) = if int8 {
        (SPEC_INT8, made_up_int8_weights(&out))
    } else {
        (SPEC, made_up_weights(&out))
    };
    let weights = weights.unwrap_or_else(|e| fail(&e.to_string()));
    if let Err(e) = gspc_codegen::Builder::new()
        .baked(spec, &weights)
        .index("models.rs")
        .generate()
    {
        fail(&format!("kernel generation failed:\n{e}"));
    }

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

/// Writes `OUT_DIR/tiny_net.safetensors`: for layer `i`, weights then bias drawn from
/// `Rng::new(0x5EED_0000 + i)` (as `layer_weights` in src/main.rs draws them again).
fn made_up_weights(out: &Path) -> Result<PathBuf, gspc_codegen::Error> {
    use gspc_codegen::weights::{to_safetensors, weight_shape};
    let spec = gspc_codegen::read_specs(&[SPEC])?.remove(0);
    let mut tensors = Vec::new();
    for (i, l) in spec.layers.iter().enumerate() {
        let mut rng = gspc_runtime::rng::Rng::new(0x5EED_0000 + i as u64);
        let mut w = vec![0.0f32; l.weights_len()];
        let mut b = vec![0.0f32; l.out_channels];
        rng.fill(&mut w);
        rng.fill(&mut b);
        tensors.push((format!("{}.weight", l.name), weight_shape(l).to_vec(), w));
        if l.bias {
            tensors.push((format!("{}.bias", l.name), vec![l.out_channels], b));
        }
    }
    let path = out.join("tiny_net.safetensors");
    std::fs::write(&path, to_safetensors(&tensors)?).map_err(|e| {
        gspc_codegen::Error::io(path.display().to_string(), gspc_codegen::FileOp::Write, e)
    })?;
    Ok(path)
}

/// Writes `OUT_DIR/tiny_net_int8.safetensors`: for layer `i`, int8 weights in [-127, 127]
/// then an int32 bias in [-512, 511], drawn from `Rng::new(0x5EED_0000 + i)` (as
/// `layer_weights` in src/main.rs draws them again).
fn made_up_int8_weights(out: &Path) -> Result<PathBuf, gspc_codegen::Error> {
    use gspc_codegen::weights::{Values, to_safetensors_values, weight_shape};
    let spec = gspc_codegen::read_specs(&[SPEC_INT8])?.remove(0);
    let mut tensors = Vec::new();
    for (i, l) in spec.layers.iter().enumerate() {
        let mut rng = gspc_runtime::rng::Rng::new(0x5EED_0000 + i as u64);
        let w: Vec<i8> = (0..l.weights_len())
            .map(|_| ((rng.next_u64() % 255) as i32 - 127) as i8)
            .collect();
        let b: Vec<i32> = (0..l.out_channels)
            .map(|_| (rng.next_u64() % 1024) as i32 - 512)
            .collect();
        tensors.push((
            format!("{}.weight", l.name),
            weight_shape(l).to_vec(),
            Values::I8(w),
        ));
        if l.bias {
            tensors.push((
                format!("{}.bias", l.name),
                vec![l.out_channels],
                Values::I32(b),
            ));
        }
    }
    let path = out.join("tiny_net_int8.safetensors");
    std::fs::write(&path, to_safetensors_values(&tensors)?).map_err(|e| {
        gspc_codegen::Error::io(path.display().to_string(), gspc_codegen::FileOp::Write, e)
    })?;
    Ok(path)
}

fn fail(report: &str) -> ! {
    eprintln!("gspc-firmware-example: {report}");
    std::process::exit(1);
}
