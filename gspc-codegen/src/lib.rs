//! gspc-codegen: JSON layer specs in, shape-specialized grouped-convolution kernels (GSPC)
//! out, as formatted Rust.
//!
//! The pipeline, one module per stage: [`spec`] (parse and validate) -> `plan` (strategy,
//! packed layouts, register tiles per ISA) -> `emit` (tokens, formatted code). [`generate`]
//! is the pure core: it reads no files and no environment. [`Builder`] serves build
//! scripts in the style of prost-build; the `gspc-codegen` binary is a thin CLI.
//!
//! Features: `cli` (default) builds the `gspc-codegen` binary and turns on `import`;
//! `import` is the ONNX importer (the `import` module, `Builder::onnx`), the only user of
//! prost. A build script that only generates from specs takes neither
//! (`default-features = false`).
//!
//! ```no_run
//! // In build.rs's main: kernels for one spec into OUT_DIR, for the target being built.
//! if let Err(e) = gspc_codegen::Builder::new()
//!     .spec("layer-specs/resnet34_g8.json")
//!     .index("models.rs")
//!     .generate()
//! {
//!     eprintln!("{e}");
//!     std::process::exit(1);
//! }
//! ```

mod builder;
mod emit;
pub mod error;
#[cfg(feature = "import")]
pub mod import;
mod plan;
pub mod spec;
pub mod target;
#[cfg(feature = "cli")]
pub mod tune;
pub mod tuning;
pub mod weights;

pub use builder::{Builder, Output};
pub use error::{Diagnostic, Error, FileOp, Setting};
pub use gspc_runtime::{Activation, Isa};
pub use plan::{Chosen, Kind, LayerPlan, VariantPlan};
pub use spec::{Dtype, LayerSpec, Quantization, Spec, Strategy};
pub use target::{Arch, Target};

/// The version written into generated headers.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What to generate for.
#[derive(Clone, Debug)]
pub struct Options {
    /// The target the code will be compiled for.
    pub target: Target,
    /// ISA variants to emit; `None` = the target's defaults ([`Target::default_isas`]).
    pub isas: Option<Vec<Isa>>,
    /// Keep tile functions out of line (`#[inline(never)]`) so that each has a symbol of
    /// its own, for inspecting them (`scripts/mca.py`); slower, default off.
    pub outline_tiles: bool,
    /// Plans measured on the device ([`tuning::Tuning`]): a layer that pins nothing itself
    /// takes its tuned plan when the database has one for its shape; default none.
    pub tuning: Option<tuning::Tuning>,
    /// The int8 twins of the specs are generated too ([`Builder::int8_twins`]); only the
    /// `Regenerate:` line of the header shows it (`--int8-twins`). Default off.
    pub int8_twins: bool,
}

impl Options {
    /// Options for a target, with its default ISA variants.
    pub fn for_target(target: Target) -> Options {
        Options {
            target,
            isas: None,
            outline_tiles: false,
            tuning: None,
            int8_twins: false,
        }
    }

    /// The ISA variants that will be emitted, checked against the target.
    pub fn isas(&self) -> Result<Vec<Isa>, Error> {
        match &self.isas {
            None => Ok(self.target.default_isas()),
            Some(v) => {
                self.target.check_isas(v)?;
                let mut v = v.clone();
                v.sort();
                v.dedup();
                Ok(v)
            }
        }
    }
}

/// The generated code for one spec.
#[derive(Clone, Debug)]
pub struct Generated {
    /// Model name (the module name).
    pub model: String,
    /// Suggested file name: `<model>.rs`.
    pub file_name: String,
    /// The formatted Rust source, header included.
    pub code: String,
    /// The plan of every layer, in spec order.
    pub plans: Vec<LayerPlan>,
    /// Lines of generated code of every layer's module, in spec order.
    pub layer_lines: Vec<usize>,
    /// The baked weights file the code includes (next to it), when generated with weights.
    pub weights: Option<WeightsFile>,
}

/// A model's packed weights, to be written next to the generated source, which includes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightsFile {
    /// File name: `<model>.weights.bin`.
    pub file_name: String,
    /// Little-endian f32, each layer's part starting at a multiple of 64 bytes.
    pub bytes: Vec<u8>,
}

/// Lines of the layer module `name` (a direct child of the model module) in formatted code.
fn count_module_lines(code: &str, name: &str) -> usize {
    let open = format!("    pub mod {name} {{");
    let mut lines = code.lines().skip_while(|l| *l != open);
    match lines.next() {
        None => 0,
        Some(_) => 2 + lines.take_while(|l| *l != "    }").count(),
    }
}

/// Plans every layer of a validated spec.
pub fn plan(spec: &Spec, options: &Options) -> Result<Vec<LayerPlan>, Error> {
    let isas = options.isas()?;
    // What each layer's plan comes from: the spec's pins, else a tuned plan, else the cost
    // model.
    let pins: Vec<(plan::Pin, Chosen)> = spec
        .layers
        .iter()
        .map(|l| {
            let own = plan::Pin::of(l);
            if l.pins_plan() {
                return (own, Chosen::Spec);
            }
            match options.tuning.as_ref().and_then(|t| t.choice(l)) {
                Some(t) => (plan::Pin::of(&t.candidate.apply(l)), Chosen::Tuned),
                None => (own, Chosen::Model),
            }
        })
        .collect();
    let mut plans = spec
        .layers
        .iter()
        .zip(&pins)
        .map(|(l, (pin, chosen))| {
            plan::plan_layer_pinned(l, &options.target, &isas, *pin).map(|mut p| {
                p.chosen = *chosen;
                p
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let limit = spec::limits::MAX_GENERATED_LINES;
    let lines: Vec<usize> = plans.iter().map(LayerPlan::estimated_lines).collect();
    let mut total: usize = lines.iter().sum();
    if total > limit {
        // Compact code where it saves the most lines first, until the model fits (as few
        // layers as can be); layers that pin `"compact": false` keep their unrolled code.
        let mut compacts = Vec::new();
        for (i, l) in spec.layers.iter().enumerate() {
            if plans[i].compact || l.compact == Some(false) {
                continue;
            }
            let pin = plan::Pin {
                compact: true,
                ..pins[i].0
            };
            let mut c = plan::plan_layer_pinned(l, &options.target, &isas, pin)?;
            c.chosen = pins[i].1;
            let n = c.estimated_lines();
            if n < lines[i] {
                compacts.push((lines[i] - n, i, c));
            }
        }
        compacts.sort_by_key(|c| (std::cmp::Reverse(c.0), c.1));
        for (saved, i, c) in compacts {
            if total <= limit {
                break;
            }
            total -= saved;
            plans[i] = c;
        }
    }
    if total > limit {
        return Err(Error::Invalid(vec![Diagnostic {
            file: spec.file.clone(),
            path: "layers".to_string(),
            message: format!(
                "the generated code would be about {total} lines even with compact code for every layer that allows it, more than the limit of {limit} lines per spec file; split the model into several spec files"
            ),
        }]));
    }
    Ok(plans)
}

/// Generates the kernels of one validated spec. Pure: reads no files, no environment.
pub fn generate(spec: &Spec, options: &Options) -> Result<Generated, Error> {
    generate_inner(spec, None, options, None)
}

/// [`generate`] with the model's weights packed now and baked into the code: every layer
/// module gets `PACKED` (a `&'static [f32; PACKED_LEN]` in read-only memory) and
/// `run_baked`, and the result carries the weights file ([`Generated::weights`]) to write
/// next to the source. `weights` must come from [`weights::check`] (or [`weights::read`]) for
/// this spec.
pub fn generate_baked(
    spec: &Spec,
    weights: &weights::ModelWeights,
    options: &Options,
) -> Result<Generated, Error> {
    generate_inner(spec, Some(weights), options, None)
}

/// How a spec came from an ONNX model, for the `Regenerate:` line: the `import` command,
/// then the spec and weights paths it writes (`generate` reads them).
#[cfg_attr(not(feature = "import"), allow(dead_code))]
pub(crate) struct ImportStep {
    pub command: String,
    pub spec: String,
    pub weights: String,
}

pub(crate) fn generate_inner(
    spec: &Spec,
    weights: Option<&weights::ModelWeights>,
    options: &Options,
    import: Option<&ImportStep>,
) -> Result<Generated, Error> {
    let plans = plan(spec, options)?;
    let isas = options.isas()?;
    let file = match weights {
        None => None,
        Some(w) => Some(bake(spec, &plans, w)?),
    };
    let baked = file.as_ref().map(|(f, offsets)| emit::Baked {
        file_name: &f.file_name,
        len: f.bytes.len(),
        offsets,
        source: weights.map_or("", |w| &w.file),
    });
    let tokens = emit::model_module(
        spec,
        &plans,
        options.target.arch,
        options.outline_tiles,
        baked.as_ref(),
    );
    let body = emit::format_tokens(tokens)?;
    let target_arg = match &options.target.triple {
        Some(t) => format!(" --target {t}"),
        None => String::new(),
    };
    let target = options.target.triple.as_deref().unwrap_or("the build host");
    let isa_list = isas
        .iter()
        .map(|i| i.as_str())
        .collect::<Vec<_>>()
        .join(",");
    // The path goes into comments: escape anything that could end a comment line.
    let file_shown = spec.file.escape_debug().to_string();
    let weights_arg = match (import, weights) {
        (Some(step), _) => format!(" --weights {}", step.weights),
        (None, Some(w)) => format!(" --weights {}", shell_word(&w.file)),
        (None, None) => String::new(),
    };
    let tuning_arg = match &options.tuning {
        Some(t) => format!(
            " --tuning {} --cpu {} --tuning-threads {}",
            shell_word(&t.file),
            shell_word(&t.key.cpu),
            t.key.threads
        ),
        None => String::new(),
    };
    let outline_arg = if options.outline_tiles {
        " --outline-tiles"
    } else {
        ""
    };
    let twins_arg = if options.int8_twins {
        " --int8-twins"
    } else {
        ""
    };
    let (import_cmd, spec_arg) = match import {
        Some(step) => (format!("{} && ", step.command), step.spec.clone()),
        None => (String::new(), shell_word(&spec.file)),
    };
    let header = format!(
        "// @generated by gspc-codegen {VERSION} from {file_shown} -- do not edit.\n\
         // Target: {target}; variants: {isa_list}.\n\
         // Regenerate: {import_cmd}gspc-codegen generate {spec_arg} --out <DIR>{target_arg} --isa {isa_list}{weights_arg}{tuning_arg}{outline_arg}{twins_arg}\n\n",
    );
    let layer_lines = spec
        .layers
        .iter()
        .map(|l| count_module_lines(&body, &l.name))
        .collect();
    Ok(Generated {
        model: spec.model.clone(),
        file_name: format!("{}.rs", spec.model),
        code: header + &body,
        plans,
        layer_lines,
        weights: file.map(|(f, _)| f),
    })
}

/// `text` as one word of a POSIX shell command line that fits on a comment line: as it is
/// when it holds only characters no shell treats specially, in single quotes otherwise, and
/// as bash's `$'...'` with escapes when it holds control characters (a newline would end
/// the comment).
pub(crate) fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else if !text.chars().any(char::is_control) {
        format!("'{}'", text.replace('\'', r"'\''"))
    } else {
        let mut out = String::from("$'");
        for c in text.chars() {
            match c {
                '\\' => out.push_str(r"\\"),
                '\'' => out.push_str(r"\'"),
                '\n' => out.push_str(r"\n"),
                '\t' => out.push_str(r"\t"),
                '\r' => out.push_str(r"\r"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    }
}

/// Packs every layer's weights into one file, each part 64-byte aligned; returns it with the
/// byte offset of every part.
fn bake(
    spec: &Spec,
    plans: &[LayerPlan],
    w: &weights::ModelWeights,
) -> Result<(WeightsFile, Vec<usize>), Error> {
    if w.layers.len() != plans.len() {
        return Err(Error::Weights(vec![Diagnostic {
            file: w.file.clone(),
            path: String::new(),
            message: format!(
                "weights for {} layers, but {} has {} layers",
                w.layers.len(),
                spec.file,
                plans.len()
            ),
        }]));
    }
    let mut bytes = Vec::new();
    let mut offsets = Vec::with_capacity(plans.len());
    for (p, lw) in plans.iter().zip(&w.layers) {
        let mismatch = |message: String| {
            Error::Weights(vec![Diagnostic {
                file: w.file.clone(),
                path: format!("{}.weight", p.layer.name),
                message,
            }])
        };
        let shape_error = || {
            mismatch(format!(
                "the weights of layer {:?} do not have its shape; check them with weights::check",
                p.layer.name
            ))
        };
        bytes.resize(bytes.len().next_multiple_of(64), 0);
        offsets.push(bytes.len());
        match (lw, &p.quant) {
            (weights::Weights::F32(lw), None) => {
                if lw.weights.len() != p.layer.weights_len()
                    || lw
                        .bias
                        .as_ref()
                        .is_some_and(|b| b.len() != p.layer.out_channels)
                {
                    return Err(shape_error());
                }
                for v in weights::pack(p, lw) {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
            (weights::Weights::Int8(lw), Some(q)) => {
                // The runtime's packing, so the baked words are what `pack_weights` makes.
                let sections = q.sections();
                let mut packed = vec![0i32; gspc_runtime::qlayer::sections_len(&sections)];
                gspc_runtime::qlayer::pack_sections(
                    &sections,
                    &lw.weights,
                    lw.bias.as_deref(),
                    &mut packed,
                )
                .map_err(|e| match e {
                    gspc_runtime::Error::WeightRange { .. } => {
                        mismatch(format!("layer {:?}: {e}", p.layer.name))
                    }
                    _ => shape_error(),
                })?;
                for v in packed {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
            (other, _) => {
                return Err(mismatch(format!(
                    "layer {:?} is {} but its weights are {}; check them with weights::check",
                    p.layer.name,
                    p.layer.dtype().as_str(),
                    other.dtype().as_str()
                )));
            }
        }
    }
    bytes.resize(bytes.len().next_multiple_of(64).max(64), 0);
    Ok((
        WeightsFile {
            file_name: format!("{}.weights.bin", spec.model),
            bytes,
        },
        offsets,
    ))
}

/// Reads and validates spec files: every problem of every file, and model names repeated
/// across files, collected into one error.
pub fn read_specs<P: AsRef<std::path::Path>>(paths: &[P]) -> Result<Vec<Spec>, Error> {
    let mut errors = Vec::new();
    let mut specs: Vec<Spec> = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Err(e) => errors.push(Error::io(file, FileOp::ReadSpec, e)),
            Ok(text) => match spec::parse(&file, &text) {
                Ok(s) => {
                    if let Some(first) = specs.iter().find(|o| o.model == s.model) {
                        errors.push(Error::Invalid(vec![Diagnostic {
                            file: s.file.clone(),
                            path: "model".to_string(),
                            message: format!(
                                "\"{}\" is also the model name in {}; model names must be unique in one build",
                                s.model, first.file
                            ),
                        }]));
                    }
                    specs.push(s);
                }
                Err(e) => errors.push(e),
            },
        }
    }
    if specs.is_empty() && errors.is_empty() {
        errors.push(Error::option(Setting::Specs, "none given"));
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(Error::combine(errors))
    }
}

/// Parses, validates and generates from spec text in one call.
pub fn generate_str(file: &str, text: &str, options: &Options) -> Result<Generated, Error> {
    generate(&spec::parse(file, text)?, options)
}
