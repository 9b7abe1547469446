//! `gspc-codegen`: generate, check and plan grouped-convolution kernels from layer specs.
//!
//! Exit codes ([`EXIT_CODES`], from the error's kind in [`exit_code`]): 0 success; 2 bad
//! input (a spec, weights file or model that cannot be read or breaks the rules, a wrong
//! option); 1 anything else (an output file that cannot be written, a generator bug).

use clap::{Args, Parser, Subcommand};
use gspc_codegen::{Builder, Error, FileOp, Options, Setting, Target, target::parse_isa};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `println!` that stops quietly when stdout is closed (`gspc-codegen plan ... | head`).
macro_rules! say {
    ($($arg:tt)*) => {
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    };
}

/// Ahead-of-time compiler for grouped convolutions: JSON layer specs in, shape-specialized
/// Rust kernels (GSPC) out.
#[derive(Parser)]
#[command(name = "gspc-codegen", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate one Rust file per spec (<model>.rs) in DIR and print one line per layer.
    Generate {
        /// Layer spec files (JSON).
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<PathBuf>,
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Trained weights to pack now and bake into the code (safetensors, or a directory of
        /// <layer>.weight.npy / <layer>.bias.npy): one per spec, in the order of the specs.
        /// Writes <model>.weights.bin next to <model>.rs.
        #[arg(long, value_name = "FILE")]
        weights: Vec<PathBuf>,
        /// Also generate the int8 twin (<model>_int8: the same layers in int8, with the
        /// benchmark's synthetic quantization parameters) of every spec given without
        /// weights, as the root build does for the benchmark.
        #[arg(long)]
        int8_twins: bool,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        tuning: TuningArgs,
    },
    /// Validate specs only: exit 0 when every spec is valid, 2 with every problem listed.
    Check {
        /// Layer spec files (JSON).
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<PathBuf>,
    },
    /// Print the plan of every layer: strategy, tile sizes per ISA variant, MFLOPs, packed
    /// weight and scratch bytes, generated lines of code.
    Plan {
        /// Layer spec files (JSON).
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        tuning: TuningArgs,
    },
    /// Tune on the device: build every candidate plan of every layer shape, check each
    /// against the reference on the device, time the correct ones, and append the results
    /// to a tuning database (resumes from it). Prints progress, then the tuned against
    /// cost-model table. Use the database with generate/plan --tuning, or GSPC_TUNING.
    Tune(TuneArgs),
    /// Import an ONNX model: write a layer spec with its grouped convolutions (every Conv
    /// with --all-convs; a BatchNormalization or per-channel constant Mul/Add after one
    /// folded in, a Relu or Clip fused) and, with --weights, their weights; print one line
    /// per layer.
    Import {
        /// The ONNX model (external data files are read from its directory).
        #[arg(value_name = "MODEL")]
        file: PathBuf,
        /// The layer spec to write (JSON).
        #[arg(long, value_name = "SPEC")]
        out: PathBuf,
        /// Also write the imported layers' weights (safetensors: <layer>.weight, <layer>.bias).
        #[arg(long, value_name = "FILE")]
        weights: Option<PathBuf>,
        /// Import every 2-D Conv, not only grouped ones.
        #[arg(long)]
        all_convs: bool,
        /// The shape of a graph input, replacing a dynamic or declared one (repeatable):
        /// NAME=1x3x224x224.
        #[arg(long, value_name = "NAME=DIMS")]
        input_shape: Vec<String>,
        /// The model name in the spec (default: the file name's stem, made an identifier).
        #[arg(long = "model", value_name = "NAME")]
        model_name: Option<String>,
        /// How imported int8 layers requantize: fp32 (ONNX Runtime's and XNNPACK's
        /// arithmetic; the default) or fixed
        /// (integer multiplier and shift: TFLite's reference kernels and CMSIS-NN, for
        /// microcontrollers without an FPU).
        #[arg(long, value_name = "MODE", value_parser = ["fp32", "fixed"])]
        requantization: Option<String>,
    },
}

/// Plans from a tuning database.
#[derive(Args)]
struct TuningArgs {
    /// A tuning database (written by `tune`): layers that pin nothing take the fastest
    /// correct plan it has for their shape on this CPU.
    #[arg(long, value_name = "FILE")]
    tuning: Option<PathBuf>,
    /// The CPU whose records to use, as `tune` recorded it (default: this machine's when
    /// the code is for it, else the database's only CPU for the target).
    #[arg(long, value_name = "NAME", requires = "tuning")]
    cpu: Option<String>,
    /// The thread count whose records to use.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "tuning",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    tuning_threads: u32,
}

impl TuningArgs {
    fn source(&self) -> Option<gspc_codegen::tuning::Source> {
        self.tuning.as_ref().map(|f| gspc_codegen::tuning::Source {
            file: f.clone(),
            cpu: self.cpu.clone(),
            threads: self.tuning_threads as usize,
        })
    }
}

/// `tune`'s arguments.
#[derive(Args)]
struct TuneArgs {
    /// Layer spec files (JSON).
    #[arg(required = true, value_name = "SPEC")]
    specs: Vec<PathBuf>,
    /// The tuning database (JSON lines; created if missing, appended to).
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// Target triple of the device (default: this machine).
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    /// ISA variants to build, comma-separated (default: every variant the target runs;
    /// only the one the device dispatches to is timed, so naming it saves build time).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    isa: Option<Vec<String>>,
    /// A command that runs a program on the device: it gets the program's path and
    /// arguments, as Cargo's target runner does (e.g. 'qemu-aarch64 -L
    /// /usr/aarch64-linux-gnu', or scripts/ssh-runner.sh HOST). Needed when the target is
    /// not this machine.
    #[arg(long, value_name = "CMD")]
    runner: Option<String>,
    /// Thread counts to time, comma-separated.
    #[arg(long, value_name = "N", value_delimiter = ',', default_value = "1",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Vec<u32>,
    /// Time to spend at most, e.g. 20m, 1h30m, 90s (the layers with the most FLOPs go
    /// first; run again to go on).
    #[arg(long, value_name = "DURATION", value_parser = gspc_codegen::tune::parse_duration)]
    budget: Option<std::time::Duration>,
    /// Tune only these layers (LAYER or MODEL.LAYER; repeatable or comma-separated).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    layers: Vec<String>,
    /// The CPU name the records carry (default: what the device reports).
    #[arg(long, value_name = "NAME")]
    cpu: Option<String>,
    /// Where the tuning batches are built.
    #[arg(long, value_name = "DIR", default_value = "target/gspc-tune")]
    work: PathBuf,
    /// gspc-runtime's source directory, which the batches build against (default: the one
    /// this gspc-codegen was built from).
    #[arg(long, value_name = "DIR")]
    runtime: Option<PathBuf>,
    /// Timed rounds per candidate (the median is recorded, with the spread).
    #[arg(long, value_name = "N", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    rounds: u32,
    /// Also tune the int8 twin (<model>_int8: the same layers in int8, as generate
    /// --int8-twins and the root build's benchmark make them) of every spec with f32
    /// layers.
    #[arg(long)]
    int8_twins: bool,
}

#[derive(Args)]
struct TargetArgs {
    /// Target triple the code is compiled for (default: the machine running this command),
    /// e.g. x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, thumbv7em-none-eabihf.
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    /// ISA variants to emit, comma-separated from portable, avx2, avx512, neon (default:
    /// every variant the target runs).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    isa: Option<Vec<String>>,
    /// Keep tile functions out of line (#[inline(never)]) so each has a symbol: for
    /// inspecting the micro-kernels (scripts/mca.py); slower code.
    #[arg(long)]
    outline_tiles: bool,
}

impl TargetArgs {
    fn options(&self) -> Result<Options, Error> {
        let target = match &self.target {
            Some(t) => Target::from_triple(t)?,
            None => Target::host(),
        };
        let isas = parse_isas(self.isa.as_deref())?;
        let options = Options {
            target,
            isas,
            outline_tiles: self.outline_tiles,
            tuning: None,
            int8_twins: false,
        };
        options.isas()?;
        Ok(options)
    }
}

/// `--isa`'s list, each name checked.
fn parse_isas(list: Option<&[String]>) -> Result<Option<Vec<gspc_codegen::Isa>>, Error> {
    list.map(|l| l.iter().map(|s| parse_isa(s.trim())).collect())
        .transpose()
}

/// The exit codes, as `--help` shows them; [`exit_code`] maps errors to them.
const EXIT_CODES: &str = "Exit codes:
  0  success
  1  an output file cannot be written, or a bug in gspc-codegen
  2  bad input: a spec, weights file or model that cannot be read or breaks the rules,
     or a wrong option (usage errors too)";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let messages = e.messages_naming(|s| flag(s).to_string());
            eprintln!("{}", messages.join("\n"));
            if messages.len() > 1 {
                eprintln!("gspc-codegen: {} problems", messages.len());
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The exit code of an error, from its kind: 2 when the input is at fault (for several
/// errors, when it is for every one), 1 otherwise (see [`EXIT_CODES`]).
fn exit_code(e: &Error) -> u8 {
    const BAD_INPUT: u8 = 2;
    const FAILURE: u8 = 1;
    match e {
        Error::Io { op, .. } if op.is_input() => BAD_INPUT,
        Error::Syntax { .. }
        | Error::Invalid(_)
        | Error::Weights(_)
        | Error::Model(_)
        | Error::Option { .. } => BAD_INPUT,
        Error::Io { .. } | Error::Internal(_) => FAILURE,
        Error::Many(es) => es.iter().map(exit_code).min().unwrap_or(FAILURE),
    }
}

/// The command-line spelling of a setting, for messages.
fn flag(setting: Setting) -> &'static str {
    match setting {
        Setting::Target => "--target",
        Setting::Isas => "--isa",
        Setting::Weights => "--weights",
        Setting::OutDir => "--out",
        Setting::InputShape => "--input-shape",
        Setting::ModelName => "--model",
        Setting::Specs => "SPEC",
        Setting::Cpu => "--cpu",
        _ => setting.as_str(),
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Generate {
            specs,
            out,
            weights,
            int8_twins,
            target,
            tuning,
        } => {
            let options = target.options()?;
            if !weights.is_empty() && weights.len() != specs.len() {
                return Err(Error::option(
                    Setting::Weights,
                    format!(
                        "{} weights file(s) for {} spec(s); give one per spec, in the same order",
                        weights.len(),
                        specs.len()
                    ),
                ));
            }
            let mut b = Builder::new();
            if weights.is_empty() {
                b.specs(&specs);
            } else {
                for (s, w) in specs.iter().zip(&weights) {
                    b.baked(s, w);
                }
            }
            b.out_dir(&out)
                .target(options.target.clone())
                .outline_tiles(options.outline_tiles)
                .int8_twins(int8_twins)
                .cargo_metadata(false);
            if let Some(isas) = options.isas {
                b.isas(isas);
            }
            if let Some(t) = tuning.source() {
                b.tuning(&t.file, t.cpu.as_deref(), t.threads);
            }
            let output = b.generate()?;
            for n in &output.notes {
                eprintln!("note: {n}");
            }
            for (g, file) in output.generated.iter().zip(&output.files) {
                for (p, lines) in g.plans.iter().zip(&g.layer_lines) {
                    say!(
                        "{}::{}  {} ({})  {:.3} MFLOP  {}  {} lines",
                        g.model,
                        p.layer.name,
                        p.strategy.as_str(),
                        p.chosen.as_str(),
                        p.layer.flops() as f64 / 1e6,
                        tiles(p),
                        lines
                    );
                }
                say!("wrote {}", file.display());
                if let Some(w) = &g.weights {
                    say!(
                        "wrote {} ({} bytes of packed weights)",
                        out.join(&w.file_name).display(),
                        w.bytes.len()
                    );
                }
            }
            Ok(())
        }
        Command::Import {
            file: model,
            out,
            weights,
            all_convs,
            input_shape,
            model_name,
            requantization,
        } => import(
            &model,
            &out,
            weights.as_deref(),
            all_convs,
            &input_shape,
            model_name,
            requantization.as_deref(),
        ),
        Command::Check { specs } => {
            for s in gspc_codegen::read_specs(&specs)? {
                say!(
                    "{}: ok, model {} with {} layer(s)",
                    s.file,
                    s.model,
                    s.layers.len()
                );
            }
            Ok(())
        }
        Command::Tune(args) => tune(args),
        Command::Plan {
            specs,
            target,
            tuning,
        } => {
            let mut options = target.options()?;
            if let Some(src) = tuning.source() {
                let t = src.load(&options.target)?;
                for n in &t.notes {
                    eprintln!("note: {n}");
                }
                options.tuning = Some(t);
            }
            let mut errors = Vec::new();
            for path in &specs {
                let file = path.display().to_string();
                let text = match std::fs::read_to_string(path) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(Error::io(file, FileOp::ReadSpec, e));
                        continue;
                    }
                };
                match gspc_codegen::generate_str(&file, &text, &options) {
                    Ok(g) => print_plan(&g, &options),
                    Err(e) => errors.push(e),
                }
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(Error::combine(errors))
            }
        }
    }
}

/// `avx512 16x1 r14` per variant: lanes x vectors, columns per tile (+ tail); int8 tiles
/// of two groups at once add ` 2g`. Then what runs where AVX-512 is half rate, if the
/// plan says (a second plan on weights of its own shows its `oc_bn`).
fn tiles(p: &gspc_codegen::LayerPlan) -> String {
    let half_rate = match &p.half_rate {
        Some(v) if v.kind == gspc_codegen::Kind::InPlaceOc => {
            " (avx512 in-place where half rate)".to_string()
        }
        Some(v) => format!(" ({} where half rate)", variant_tiles(v, false)),
        None => match &p.one_group {
            // The variants of the one-group plan, on its own weights: AVX2's always,
            // AVX-512's where it is half rate.
            Some(h) => format!(
                " (oc_bn {} on its own weights: {})",
                h.oc_bn,
                h.variants
                    .iter()
                    .map(|v| match v.isa {
                        gspc_codegen::Isa::Avx512 => {
                            format!("{} where half rate", variant_tiles(v, false))
                        }
                        _ => variant_tiles(v, false),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        },
    };
    p.variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let pairs = p
                .quant
                .as_ref()
                .and_then(|q| q.variants.get(i))
                .is_some_and(|q| q.group_pairs);
            if p.one_group.is_some() && v.isa == gspc_codegen::Isa::Avx2 {
                // Its module only hands over to the one-group plan's.
                return "avx2 one group".to_string();
            }
            variant_tiles(v, pairs)
        })
        .collect::<Vec<_>>()
        .join(" | ")
        + if p.compact { " (compact)" } else { "" }
        + if p.avx2_at_half_rate {
            " (avx2 where AVX-512 is half rate)"
        } else {
            ""
        }
        + &half_rate
}

/// One variant's tiles for [`tiles`]; `pairs`: int8 tiles of two groups at once.
fn variant_tiles(v: &gspc_codegen::VariantPlan, pairs: bool) -> String {
    if v.kind == gspc_codegen::Kind::DwcPairs {
        // Two output rows of a channel a vector, in place (no column tiles).
        return format!("{} {}x1 row pairs in place", v.isa, v.lanes);
    }
    let tail = if v.tail > 0 {
        format!("+{}", v.tail)
    } else {
        String::new()
    };
    // Output rows per tile when more than one (`x2r`), and the direct gspc-ow kernel.
    let rows = if v.rows > 1 || v.kind.is_direct() {
        format!(" x{}r", v.rows)
    } else {
        String::new()
    };
    let direct = match v.kind {
        _ if v.kind.is_direct() => " direct",
        gspc_codegen::Kind::InPlaceOc => " in-place",
        _ => "",
    };
    format!(
        "{} {}x{} r{}{}{}{}{}",
        v.isa,
        v.lanes,
        v.nvec,
        v.reg_n,
        tail,
        rows,
        direct,
        if pairs { " 2g" } else { "" }
    )
}

fn print_plan(g: &gspc_codegen::Generated, options: &Options) {
    say!(
        "model {} ({}), target {}",
        g.model,
        g.file_name,
        options.target.triple.as_deref().unwrap_or("host")
    );
    say!(
        "{:<28} {:<8} {:<6} {:>5} {:>9} {:>11} {:>11} {:>6}  variants (lanes x vectors, columns per tile)",
        "layer",
        "strategy",
        "by",
        "oc_bn",
        "MFLOP",
        "packed B",
        "scratch B",
        "lines"
    );
    let (mut flops, mut lines) = (0u64, 0usize);
    for (p, l) in g.plans.iter().zip(&g.layer_lines) {
        say!(
            "{:<28} {:<8} {:<6} {:>5} {:>9.3} {:>11} {:>11} {:>6}  {}",
            p.layer.name,
            p.strategy.as_str(),
            p.chosen.as_str(),
            p.oc_bn,
            p.layer.flops() as f64 / 1e6,
            p.packed_len * 4,
            p.scratch_len * 4,
            l,
            tiles(p)
        );
        flops += p.layer.flops() * p.layer.count as u64;
        lines += l;
    }
    say!(
        "total: {:.1} MFLOP per inference (weighted by count), {} lines",
        flops as f64 / 1e6,
        lines
    );
    print_memory(g);
}

/// The memory plan: what a caller allocates (or puts in flash) to run every layer.
fn print_memory(g: &gspc_codegen::Generated) {
    use gspc_codegen::LayerPlan;
    // Activations are f32 or int8 values; packed weights and scratch 4-byte words (f32, or
    // int32 for int8 layers).
    let act = |p: &LayerPlan| if p.quant.is_some() { 1 } else { 4 };
    let input = |p: &LayerPlan| p.layer.input_len() * act(p);
    let output = |p: &LayerPlan| p.layer.output_len() * act(p);
    let scratch = |p: &LayerPlan| p.scratch_len * 4;
    let packed: usize = g.plans.iter().map(|p| p.packed_len * 4).sum();
    let max = |f: &dyn Fn(&LayerPlan) -> usize| g.plans.iter().map(f).max().unwrap_or(0);
    let (max_in, max_out, max_scratch) = (max(&input), max(&output), max(&scratch));
    let max_act = max(&|p| input(p).max(output(p)));
    let largest = g
        .plans
        .iter()
        .max_by_key(|p| input(p) + output(p) + scratch(p));
    say!("memory plan (bytes):");
    say!(
        "  packed weights      {:>12}  TOTAL_PACKED_LEN; in flash when baked (--weights)",
        packed
    );
    if let Some(p) = largest {
        let (i, o, s) = (input(p), output(p), scratch(p));
        say!(
            "  largest layer       {:>12}  input {} + output {} + scratch {} ({})",
            i + o + s,
            i,
            o,
            s,
            p.layer.name
        );
    }
    say!(
        "  one buffer each     {:>12}  MAX_INPUT_LEN {} + MAX_OUTPUT_LEN {} + MAX_SCRATCH_LEN {}",
        max_in + max_out + max_scratch,
        max_in,
        max_out,
        max_scratch
    );
    say!(
        "  layer chain         {:>12}  2 x MAX_ACTIVATION_LEN {} + MAX_SCRATCH_LEN",
        2 * max_act + max_scratch,
        max_act
    );
    say!(
        "  generated source    {:>12}  {} lines (machine code: scripts/firmware-size.sh)\n",
        g.code.len(),
        g.code.lines().count()
    );
}

/// `gspc-codegen tune`: tunes, then prints the tuned against cost-model table.
fn tune(a: TuneArgs) -> Result<(), Error> {
    use gspc_codegen::tune;
    let isas = parse_isas(a.isa.as_deref())?;
    let runtime = match a.runtime.clone().or_else(tune::default_runtime_dir) {
        Some(r) => r,
        None => {
            return Err(Error::option(
                Setting::Tune,
                "gspc-runtime's source directory is not where this gspc-codegen was built from: give --runtime DIR",
            ));
        }
    };
    let threads: Vec<usize> = a.threads.iter().map(|t| *t as usize).collect();
    let opts = tune::TuneOptions {
        specs: a.specs,
        db: a.db,
        target: a.target,
        isas,
        runner: a.runner,
        threads: threads.clone(),
        budget: a.budget,
        layers: a.layers,
        cpu: a.cpu,
        work: a.work,
        runtime,
        rounds: a.rounds as usize,
        batch_lines: 150_000,
        int8_twins: a.int8_twins,
    };
    let summary = tune::tune(&opts, &mut |line| eprintln!("tune: {line}"))?;
    eprintln!(
        "tune: {} record(s) appended to {}, {} candidate(s) wrong{}",
        summary.records,
        opts.db.display(),
        summary.wrong,
        if summary.left > 0 {
            format!(", {} layer shape(s) left for the next run", summary.left)
        } else {
            String::new()
        }
    );
    let db = gspc_codegen::tuning::Database::read(&opts.db)?;
    for t in threads {
        let key = gspc_codegen::tuning::Key {
            target: summary.target.clone(),
            cpu: summary.cpu.clone(),
            threads: t,
        };
        let tuning = gspc_codegen::tuning::Tuning::from_database(&db, key);
        say!("{}", tune::report(&summary.specs, &tuning));
    }
    Ok(())
}

/// `gspc-codegen import`: the spec (and weights) of an ONNX model's convolutions.
fn import(
    model: &std::path::Path,
    out: &std::path::Path,
    weights: Option<&std::path::Path>,
    all_convs: bool,
    input_shapes: &[String],
    model_name: Option<String>,
    requantization: Option<&str>,
) -> Result<(), Error> {
    use gspc_codegen::import;
    use gspc_runtime::quant::Requantization;
    let options = import::ImportOptions {
        all_convs,
        input_shapes: input_shapes
            .iter()
            .map(|s| import::parse_input_shape(s))
            .collect::<Result<_, _>>()?,
        model: model_name,
        requantization: match requantization {
            None => None,
            Some("fixed") => Some(Requantization::Fixed),
            Some(_) => Some(Requantization::Fp32),
        },
    };
    let imported = import::import_file(model, &options)?;
    let write = |path: &std::path::Path, data: &[u8]| {
        std::fs::write(path, data)
            .map_err(|e| Error::io(path.display().to_string(), FileOp::Write, e))
    };
    for (l, info) in imported.spec.layers.iter().zip(&imported.layers) {
        let [oh, ow] = l.output();
        let fused: String = info
            .folded
            .iter()
            .chain(&info.fused)
            .map(|f| format!(" + {f}"))
            .collect();
        let mut extras = Vec::new();
        if l.bias {
            extras.push("bias".to_string());
        }
        if l.activation != gspc_codegen::Activation::None {
            extras.push(l.activation.as_str().to_string());
        }
        if let Some(q) = &l.quantization {
            extras.push(format!("int8 ({})", q.requantization.as_str()));
        }
        let extras = if extras.is_empty() {
            String::new()
        } else {
            format!(", {}", extras.join(", "))
        };
        say!(
            "{}::{}  {}{}: {}x{}x{} -> {}x{}x{}, groups {}, kernel {}x{}, stride {}x{}, padding {}x{}, dilation {}x{}{}",
            imported.model,
            l.name,
            info.source,
            fused,
            l.in_channels,
            l.input[0],
            l.input[1],
            l.out_channels,
            oh,
            ow,
            l.groups,
            l.kernel[0],
            l.kernel[1],
            l.stride[0],
            l.stride[1],
            l.padding[0],
            l.padding[1],
            l.dilation[0],
            l.dilation[1],
            extras
        );
    }
    for n in &imported.notes {
        say!("note: {n}");
    }
    write(out, imported.spec_json.as_bytes())?;
    say!(
        "wrote {} ({} layer(s))",
        out.display(),
        imported.spec.layers.len()
    );
    if let Some(w) = weights {
        write(w, &imported.weights)?;
        let tensors = imported.layers.len()
            + imported
                .layers
                .iter()
                .filter(|l| l.bias_key.is_some())
                .count();
        say!(
            "wrote {} ({tensors} tensors, {} bytes)",
            w.display(),
            imported.weights.len()
        );
    }
    Ok(())
}
