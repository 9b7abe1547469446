//! Generates kernels for every spec in `tests/specs/` (shapes chosen to break kernels, not
//! model shapes) and for a spec of random valid layers, for the target being built.
//!
//! The random layers come from `GSPC_RANDOM_SEED` (default: a fixed seed, so a run is
//! reproducible) and `GSPC_RANDOM_LAYERS` (default 40): channels per group 1 to 6, output
//! channels per group 1 to 40, groups 1 to 8 (or, one layer in six, depthwise with 16 to 48
//! channels, or one in six of the others depthwise with rows of 16+ columns), kernels 1 to 7, strides and dilations 1 to 3,
//! padding 0 to 3, non-square inputs, bias and activations, and a pinned strategy for a
//! quarter of them. The specs are written to `OUT_DIR/random_layers_<k>.json`, 20 layers
//! each (so none reaches the generated-code limit); the test prints the
//! seed, so a failure replays with `GSPC_RANDOM_SEED=<seed>`.

use gspc_runtime::check;
use gspc_runtime::rng::Rng;
use std::path::{Path, PathBuf};

const DEFAULT_SEED: u64 = 20_261_127;

fn main() {
    let dir = PathBuf::from("../specs");
    println!("cargo:rerun-if-changed=../specs");
    println!("cargo:rerun-if-env-changed=GSPC_RANDOM_SEED");
    println!("cargo:rerun-if-env-changed=GSPC_RANDOM_LAYERS");
    let mut specs: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(d) => d
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) => fail(&format!("tests/specs: cannot list the directory: {e}")),
    };
    specs.sort();

    let seed = env_number("GSPC_RANDOM_SEED", DEFAULT_SEED);
    let count = env_number("GSPC_RANDOM_LAYERS", 40) as usize;
    let out =
        PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR is not set")));
    // Several spec files of RANDOM_PER_SPEC layers each, so that none reaches the
    // generated-code limit however many layers are asked for.
    for (k, text) in random_specs(seed, count).iter().enumerate() {
        let random = out.join(format!("random_layers_{k}.json"));
        if let Err(e) = std::fs::write(&random, text) {
            fail(&format!("{}: cannot write: {e}", random.display()));
        }
        specs.push(random);
    }
    if let Err(e) = std::fs::write(out.join("random_seed.rs"), format!("{seed}\n")) {
        fail(&format!("cannot write the seed: {e}"));
    }

    // Every layer gets baked weights: check::SeededData of its check seed, so the baked copy
    // can be compared with the run-time packing of the same data. The edge cases read them
    // from .npy files, the random layers from a safetensors file.
    let mut builder = gspc_codegen::Builder::new();
    for spec in &specs {
        let weights = match write_seeded_weights(spec, &out) {
            Ok(w) => w,
            Err(e) => fail(&format!("seeded weights: {e}")),
        };
        builder.baked(spec, weights);
    }
    if let Err(e) = builder.index("models.rs").generate() {
        fail(&format!("kernel generation failed:\n{e}"));
    }

    // int8: the specs in `tests/specs/int8/` and random int8 layers (the random layers'
    // shapes with random quantization parameters), weights packed at run time.
    let int8_dir = dir.join("int8");
    println!("cargo:rerun-if-changed=../specs/int8");
    let mut int8: Vec<PathBuf> = match std::fs::read_dir(&int8_dir) {
        Ok(d) => d
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) => fail(&format!("tests/specs/int8: cannot list the directory: {e}")),
    };
    int8.sort();
    for (k, text) in random_int8_specs(seed, count).iter().enumerate() {
        let random = out.join(format!("random_int8_{k}.json"));
        if let Err(e) = std::fs::write(&random, text) {
            fail(&format!("{}: cannot write: {e}", random.display()));
        }
        int8.push(random);
    }
    // The edge cases get baked weights (check::SeededQData of their check seed); the random
    // layers pack theirs at run time.
    let mut builder = gspc_codegen::Builder::new();
    for spec in &int8 {
        if spec.starts_with(&out) {
            builder.spec(spec);
            continue;
        }
        match write_seeded_int8_weights(spec, &out) {
            Ok(w) => builder.baked(spec, w),
            Err(e) => fail(&format!("seeded int8 weights: {e}")),
        };
    }
    if let Err(e) = builder.index("int8_models.rs").generate() {
        fail(&format!("int8 kernel generation failed:\n{e}"));
    }
}

/// The random layers of [`random_specs`] (from another seed) as int8 layers, models
/// `random_int8_<k>`: `gspc-ow` pins dropped (int8 has no such kernel), random zero points
/// over the whole int8 range, random scales with per-channel weight scales, and an output
/// scale that puts typical outputs inside the int8 range (the multiplier about
/// `1 / (300 sqrt(fan_in))`, from 0.1x to 10x that), either requantization.
fn random_int8_specs(seed: u64, count: usize) -> Vec<String> {
    let mut rng = Rng::new(seed ^ 0x1_8181);
    let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    random_specs(seed ^ 0x8, count)
        .iter()
        .map(|spec| {
            let mut out = String::new();
            for line in spec.lines() {
                let Some(body) = line.strip_suffix("},").or_else(|| line.strip_suffix('}')) else {
                    out.push_str(&line.replace("random_layers_", "random_int8_"));
                    out.push('\n');
                    continue;
                };
                if !body.trim_start().starts_with("{\"name\"") {
                    out.push_str(&line.replace("random_layers_", "random_int8_"));
                    out.push('\n');
                    continue;
                }
                let body = body.replace(", \"strategy\": \"gspc-ow\"", "");
                let field = |name: &str| -> Vec<usize> {
                    let at = body.find(&format!("\"{name}\": ")).map_or(0, |i| i + name.len() + 4);
                    body[at..]
                        .split(|c: char| !c.is_ascii_digit())
                        .filter(|t| !t.is_empty())
                        .take(2)
                        .filter_map(|t| t.parse().ok())
                        .collect()
                };
                let (c, k, g) = (field("in_channels")[0], field("out_channels")[0], field("groups")[0]);
                let kernel = field("kernel");
                let fan_in = (c / g * kernel[0] * kernel[1]) as f64;
                let input_scale = 0.005 + 0.05 * unit();
                let weight_scale = 0.001 + 0.01 * unit();
                let m = 10f64.powf(unit() * 2.0 - 1.0) / (300.0 * fan_in.sqrt());
                let output_scale = input_scale * weight_scale / m;
                let zp = |u: f64| (u * 255.0).floor() as i32 - 128;
                let scales: Vec<String> = (0..k)
                    .map(|_| format!("{:e}", weight_scale * (0.5 + unit())))
                    .collect();
                let mode = if unit() < 0.5 { "fixed" } else { "fp32" };
                out.push_str(&format!(
                    "{body}, \"dtype\": \"int8\", \"quantization\": {{\"requantization\": \"{mode}\", \"input_scale\": {input_scale:e}, \"input_zero_point\": {}, \"output_scale\": {output_scale:e}, \"output_zero_point\": {}, \"weight_scales\": [{}]}}}}{}\n",
                    zp(unit()),
                    zp(unit()),
                    scales.join(", "),
                    if line.ends_with("},") { "," } else { "" }
                ));
            }
            out
        })
        .collect()
}

/// Writes the seeded weights of every layer of `spec`: a safetensors file for the random
/// layers, a directory of .npy files otherwise. Returns the path.
fn write_seeded_weights(spec: &Path, out: &Path) -> Result<PathBuf, gspc_codegen::Error> {
    let spec = gspc_codegen::read_specs(&[spec])?.remove(0);
    let mut tensors = Vec::new();
    for l in &spec.layers {
        let seed = check::seed_for(&spec.model, &l.name);
        let d = check::SeededData::new(seed, l.input_len(), l.weights_len(), l.out_channels);
        let shape = gspc_codegen::weights::weight_shape(l).to_vec();
        tensors.push((format!("{}.weight", l.name), shape, d.weights));
        if l.bias {
            tensors.push((format!("{}.bias", l.name), vec![l.out_channels], d.bias));
        }
    }
    let io = |p: &Path, e: std::io::Error| {
        gspc_codegen::Error::io(p.display().to_string(), gspc_codegen::FileOp::Write, e)
    };
    if spec.model.starts_with("random_layers") {
        let path = out.join(format!("{}.safetensors", spec.model));
        let bytes = gspc_codegen::weights::to_safetensors(&tensors)?;
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        Ok(path)
    } else {
        let dir = out.join(format!("{}_weights", spec.model));
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        for (name, shape, data) in &tensors {
            let path = dir.join(format!("{name}.npy"));
            let bytes = gspc_codegen::weights::to_npy(shape, data);
            std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        }
        Ok(dir)
    }
}

/// Writes the seeded int8 weights (`check::SeededQData`) of every layer of `spec` as a
/// safetensors file (I8 weights, I32 bias). Returns the path.
fn write_seeded_int8_weights(spec: &Path, out: &Path) -> Result<PathBuf, gspc_codegen::Error> {
    use gspc_codegen::weights::Values;
    let spec = gspc_codegen::read_specs(&[spec])?.remove(0);
    let mut tensors = Vec::new();
    for l in &spec.layers {
        let seed = check::seed_for(&spec.model, &l.name);
        let d = check::SeededQData::new(seed, l.input_len(), l.weights_len(), l.out_channels);
        let shape = gspc_codegen::weights::weight_shape(l).to_vec();
        tensors.push((format!("{}.weight", l.name), shape, Values::I8(d.weights)));
        if l.bias {
            tensors.push((
                format!("{}.bias", l.name),
                vec![l.out_channels],
                Values::I32(d.bias),
            ));
        }
    }
    let path = out.join(format!("{}.safetensors", spec.model));
    let bytes = gspc_codegen::weights::to_safetensors_values(&tensors)?;
    std::fs::write(&path, bytes).map_err(|e| {
        gspc_codegen::Error::io(path.display().to_string(), gspc_codegen::FileOp::Write, e)
    })?;
    Ok(path)
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| fail(&format!("{name}: {v:?} is not a whole number"))),
        Err(_) => default,
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1);
}

/// Random layers per spec file.
const RANDOM_PER_SPEC: usize = 20;

/// Specs `random_layers_<k>` of `count` random valid layers in all.
fn random_specs(seed: u64, count: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut pick = |lo: usize, hi: usize| lo + (rng.next_u64() % (hi - lo + 1) as u64) as usize;
    let mut layers = Vec::new();
    for i in 0..count {
        // One layer in six is depthwise with 16 to 48 channels (the gspc-dwc strategy's
        // blocks of 16).
        let depthwise16 = pick(0, 5) == 0;
        // One in six of the others is depthwise with rows of 16 columns or more (the direct
        // gspc-ow kernel of AVX-512).
        let wide = !depthwise16 && pick(0, 5) == 0;
        let groups = if depthwise16 {
            16 * pick(1, 3)
        } else {
            pick(1, 8)
        };
        let cpg = if depthwise16 || wide { 1 } else { pick(1, 6) };
        let kpg = if depthwise16 || wide {
            1
        } else if pick(0, 3) == 0 {
            pick(16, 40)
        } else {
            pick(1, 12)
        };
        let kernel = [pick(1, 7), pick(1, 7)];
        let stride = [pick(1, 3), if wide { pick(1, 2) } else { pick(1, 3) }];
        let dilation = [pick(1, 3), pick(1, 3)];
        let padding = [pick(0, 3), pick(0, 3)];
        // The padded input must hold the dilated kernel.
        let input: Vec<usize> = (0..2)
            .map(|a| {
                let extent = dilation[a] * (kernel[a] - 1) + 1;
                let least = extent.saturating_sub(2 * padding[a]).max(1);
                if wide && a == 1 {
                    least + pick(15, 15 + 16 * stride[1]) * stride[1]
                } else {
                    least + pick(0, 24)
                }
            })
            .collect();
        let ow = (input[1] + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) / stride[1] + 1;
        let bias = pick(0, 1) == 1;
        let activation = ["none", "relu", "relu6"][pick(0, 2)];
        let pin = match pick(0, 7) {
            0 => ", \"strategy\": \"gspc-oc\"".to_string(),
            1 if ow >= 4 => ", \"strategy\": \"gspc-ow\"".to_string(),
            2 | 3 if depthwise16 => ", \"strategy\": \"gspc-dwc\"".to_string(),
            _ => String::new(),
        };
        layers.push(format!(
            "  {{\"name\": \"r{i}\", \"in_channels\": {}, \"out_channels\": {}, \"groups\": {groups}, \"kernel\": [{}, {}], \"stride\": [{}, {}], \"padding\": [{}, {}], \"dilation\": [{}, {}], \"input\": [{}, {}], \"bias\": {bias}, \"activation\": \"{activation}\"{pin}}}",
            groups * cpg,
            groups * kpg,
            kernel[0],
            kernel[1],
            stride[0],
            stride[1],
            padding[0],
            padding[1],
            dilation[0],
            dilation[1],
            input[0],
            input[1],
        ));
    }
    layers
        .chunks(RANDOM_PER_SPEC)
        .enumerate()
        .map(|(k, part)| {
            format!(
                "{{\"model\": \"random_layers_{k}\", \"layers\": [\n{}\n]}}\n",
                part.join(",\n")
            )
        })
        .collect()
}
