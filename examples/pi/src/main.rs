//! `gspc-pi [--model NAME]... [--repeat N] [--warmup W] [--threads T] [--variants] [--check]`
//!
//! Runs every layer of every compiled-in model (the build script's specs: MobileNet v1's
//! depthwise layers unless `GSPC_PI_SPECS` names others) and prints the median time of
//! `--repeat` runs and GFLOP/s (`2 * K * C/G * KH * KW * OH * OW / t`), per layer and for
//! each model (weighted by the layers' `count`). By default it times the dispatching `run`
//! (the best variant this CPU supports) on one thread, `--threads T` the dispatching
//! `run_parallel` on T threads (inside one `in_pool` around all the timing, as an app keeps
//! one around its inferences); `--variants` also times every variant the CPU runs (one
//! thread).
//!
//! `--check` first runs every variant of every layer against the naive reference
//! (`gspc_runtime::check::check_layer`), and with `--threads T` also `run_parallel` on T
//! threads, and exits 1 on any mismatch; `GSPC_REQUIRE_ISA` (e.g. `neon`) makes it fail
//! when that variant was skipped or is missing.

use clap::builder::RangedU64ValueParser;
use clap::{CommandFactory, Parser};
use gspc_runtime::check::{self, Checked};
use gspc_runtime::rng::Rng;
use gspc_runtime::{Isa, Layer, Model, ParallelFn, RunFn, reference};
use std::process::ExitCode;
use std::time::Instant;

/// The generated kernels: `models::<model>::<layer>`, and `models::MODELS`.
// The generated code describes every layer in full; this program uses only the manifest.
#[allow(dead_code)]
mod models {
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}

/// Runs and times every layer of the compiled-in models, and checks them against the
/// reference.
#[derive(Parser)]
#[command(name = "gspc-pi")]
struct Args {
    /// Only this model (repeatable; default: every compiled-in model).
    #[arg(long = "model", value_name = "NAME")]
    models: Vec<String>,
    /// Timed runs per layer; the median is reported.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    repeat: usize,
    /// Untimed runs first.
    #[arg(long, value_name = "W", default_value_t = 2)]
    warmup: usize,
    /// Run each layer on T threads with run_parallel (1: run).
    #[arg(long, value_name = "T", default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    threads: usize,
    /// Time every variant this CPU supports, not only the dispatching run.
    #[arg(long)]
    variants: bool,
    /// Check every layer's variants (and run_parallel on T threads) against the reference
    /// first; exit 1 on a mismatch (GSPC_REQUIRE_ISA=neon,... also fails when a variant was
    /// skipped).
    #[arg(long)]
    check: bool,
    /// Print the compiled-in models and layers, and exit.
    #[arg(long)]
    list: bool,
}

/// Exits with status 2 after `msg` and the usage, as for any bad argument.
fn usage(msg: &str) -> ! {
    Args::command()
        .error(clap::error::ErrorKind::InvalidValue, msg)
        .exit()
}

/// The models to run: those named by `--model`, or all.
fn select(args: &Args) -> Vec<&'static Model> {
    for want in &args.models {
        if !models::MODELS.iter().any(|m| m.name == want) {
            let names: Vec<&str> = models::MODELS.iter().map(|m| m.name).collect();
            usage(&format!(
                "--model {want:?} is not compiled in (models: {}; GSPC_PI_SPECS picks the specs at build time)",
                names.join(", ")
            ));
        }
    }
    models::MODELS
        .iter()
        .filter(|m| args.models.is_empty() || args.models.iter().any(|n| n == m.name))
        .collect()
}

/// The variant the dispatching `run` picks on this CPU: the best supported (best is last).
fn dispatched(layer: &Layer) -> Option<Isa> {
    layer
        .variants
        .iter()
        .rev()
        .find(|v| v.isa.is_supported())
        .map(|v| v.isa)
}

/// What to time: a single-threaded `run`, or `run_parallel` on some threads.
#[derive(Clone, Copy)]
enum Runner {
    Single(RunFn),
    Parallel(ParallelFn, usize),
}

impl Runner {
    /// Scratch values it needs for `layer`.
    fn scratch_len(self, layer: &Layer) -> usize {
        match self {
            Runner::Single(_) => layer.scratch_len,
            Runner::Parallel(_, threads) => layer.scratch_len * threads,
        }
    }

    fn call(
        self,
        input: &[f32],
        packed: &[f32],
        output: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), gspc_runtime::Error> {
        match self {
            Runner::Single(run) => run(input, packed, output, scratch),
            Runner::Parallel(run, threads) => run(input, packed, output, scratch, threads),
        }
    }
}

/// Median and minimum microseconds of `repeat` runs after `warmup` runs.
fn time_layer(layer: &Layer, run: Runner, args: &Args) -> Result<(f64, f64), String> {
    let mut rng = Rng::new(check::seed_for("time", layer.info.name));
    let mut input = vec![0.0f32; layer.input_len];
    let mut weights = vec![0.0f32; layer.weights_len];
    let mut bias = vec![0.0f32; layer.info.out_channels];
    rng.fill(&mut input);
    rng.fill(&mut weights);
    rng.fill(&mut bias);
    let bias = layer.info.bias.then_some(&bias[..]);
    let mut packed = vec![0.0f32; layer.packed_len];
    (layer.pack_weights)(&weights, bias, &mut packed)
        .map_err(|e| format!("{}: pack_weights: {e}", layer.info.name))?;
    let mut output = vec![0.0f32; layer.output_len];
    let mut scratch = vec![0.0f32; run.scratch_len(layer)];
    let mut once = || -> Result<f64, String> {
        let t = Instant::now();
        std::hint::black_box(run)
            .call(
                std::hint::black_box(&input),
                std::hint::black_box(&packed),
                &mut output,
                &mut scratch,
            )
            .map_err(|e| format!("{}: {e}", layer.info.name))?;
        std::hint::black_box(&mut output);
        Ok(t.elapsed().as_secs_f64() * 1e6)
    };
    for _ in 0..args.warmup {
        once()?;
    }
    let mut times = (0..args.repeat)
        .map(|_| once())
        .collect::<Result<Vec<f64>, String>>()?;
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}

/// `run_parallel` on `threads` threads against the reference, on its own random data.
fn check_parallel(model: &str, layer: &Layer, threads: usize) -> Result<(), String> {
    let info = &layer.info;
    let mut rng = Rng::new(check::seed_for(model, info.name) ^ 0x7EAD);
    let mut input = vec![0.0f32; layer.input_len];
    let mut weights = vec![0.0f32; layer.weights_len];
    let mut bias = vec![0.0f32; info.out_channels];
    rng.fill(&mut input);
    rng.fill(&mut weights);
    rng.fill(&mut bias);
    let bias = info.bias.then_some(&bias[..]);
    let mut expected = vec![0.0f32; layer.output_len];
    reference::conv2d(info, &input, &weights, bias, &mut expected)
        .map_err(|e| format!("reference: {e}"))?;
    let mut packed = vec![0.0f32; layer.packed_len];
    (layer.pack_weights)(&weights, bias, &mut packed).map_err(|e| format!("pack_weights: {e}"))?;
    let mut output = vec![f32::NAN; layer.output_len];
    let mut scratch = vec![f32::NAN; layer.scratch_len * threads];
    (layer.run_parallel)(&input, &packed, &mut output, &mut scratch, threads)
        .map_err(|e| format!("run_parallel, {threads} threads: {e}"))?;
    reference::compare(info, &expected, &output)
        .map_err(|m| format!("run_parallel, {threads} threads: {m}"))
}

/// Checks every layer of the models; prints one line per layer. Returns whether all passed.
fn check_models(models: &[&'static Model], threads: usize) -> bool {
    let mut all: Vec<Checked> = Vec::new();
    let mut failed = 0usize;
    let mut layers = 0usize;
    for m in models {
        println!("check {} ({})", m.name, m.spec_file);
        for layer in m.layers {
            layers += 1;
            let checked = check::check_layer(layer, check::seed_for(m.name, layer.info.name))
                .and_then(|c| {
                    if threads > 1 {
                        check_parallel(m.name, layer, threads)
                            .map_err(|e| format!("{}: {e}", layer.info.name))?;
                    }
                    Ok(c)
                });
            match checked {
                Ok(c) => {
                    let names =
                        |v: &[Isa]| v.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(",");
                    let skipped = if c.skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" (skipped, not on this CPU: {})", names(&c.skipped))
                    };
                    let parallel = if threads > 1 {
                        format!(", run_parallel x{threads}")
                    } else {
                        String::new()
                    };
                    println!(
                        "  {:<28} ok: {}{parallel}{skipped}",
                        layer.info.name,
                        names(&c.ran)
                    );
                    all.push(c);
                }
                Err(e) => {
                    println!("  {:<28} MISMATCH: {e}", layer.info.name);
                    failed += 1;
                }
            }
        }
    }
    let required = check::required_from_env();
    if failed == 0
        && let Err(e) = check::enforce_required(&required, &all)
    {
        println!("check: {e}");
        return false;
    }
    println!("check: {} passed, {failed} failed", layers - failed);
    failed == 0
}

fn main() -> ExitCode {
    let args = Args::parse();
    let models = select(&args);
    let isas: Vec<&str> = [Isa::Portable, Isa::Avx2, Isa::Avx512, Isa::Neon]
        .into_iter()
        .filter(|i| i.is_supported())
        .map(Isa::as_str)
        .collect();
    println!(
        "# gspc-pi {} on {} ({}); CPU runs: {}; repeat={} warmup={} threads={}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS,
        isas.join(","),
        args.repeat,
        args.warmup,
        args.threads
    );

    if args.list {
        for m in &models {
            println!("{} ({}):", m.name, m.spec_file);
            for l in m.layers {
                let variants: Vec<&str> = l.variants.iter().map(|v| v.kernel).collect();
                println!("  {:<28} {}", l.info.name, variants.join(" "));
            }
        }
        return ExitCode::SUCCESS;
    }

    if args.check && !check_models(&models, args.threads) {
        return ExitCode::FAILURE;
    }

    // One pool for all the timing, as an app keeps one around its inferences: its
    // workers stay warm from layer to layer.
    let timed = gspc_runtime::parallel::in_pool(args.threads, || time_models(&models, &args));
    if timed == ExitCode::FAILURE {
        return timed;
    }
    println!(
        "\n(* = the variant the dispatching run picks on this CPU; xT = run_parallel on T threads)"
    );
    ExitCode::SUCCESS
}

/// Times every layer of `models` and prints a table per model.
fn time_models(models: &[&'static Model], args: &Args) -> ExitCode {
    for m in models {
        println!(
            "\n{:<28} {:>4} {:>8} {:>10} {:>11} {:>11} {:>8}",
            m.name, "cnt", "MFLOP", "isa", "median us", "min us", "GFLOP/s"
        );
        let (mut total_us, mut total_flops) = (0.0f64, 0u64);
        for layer in m.layers {
            let flops = layer.info.flops();
            let mut runs: Vec<(String, Runner)> = Vec::new();
            match dispatched(layer) {
                Some(isa) if args.threads > 1 => runs.push((
                    format!("{isa}*x{}", args.threads),
                    Runner::Parallel(layer.run_parallel, args.threads),
                )),
                Some(isa) => runs.push((format!("{isa}*"), Runner::Single(layer.run))),
                None => {
                    println!("{:<28} (no variant runs on this CPU)", layer.info.name);
                    continue;
                }
            }
            if args.variants {
                runs.extend(
                    layer
                        .variants
                        .iter()
                        .filter(|v| v.isa.is_supported())
                        .map(|v| (v.isa.as_str().to_string(), Runner::Single(v.run))),
                );
            }
            for (i, (label, run)) in runs.iter().enumerate() {
                let (median, min) = match time_layer(layer, *run, args) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("gspc-pi: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                if i == 0 {
                    total_us += median * layer.info.count as f64;
                    total_flops += flops * layer.info.count as u64;
                }
                let (name, count, mflop) = if i == 0 {
                    (
                        layer.info.name.to_string(),
                        layer.info.count.to_string(),
                        format!("{:.2}", flops as f64 / 1e6),
                    )
                } else {
                    Default::default()
                };
                println!(
                    "{name:<28} {count:>4} {mflop:>8} {label:>10} {median:>11.1} {min:>11.1} {:>8.2}",
                    flops as f64 / median / 1e3
                );
            }
        }
        println!(
            "{:<28} {:>4} {:>8.2} {:>10} {:>11.1} {:>11} {:>8.2}",
            "TOTAL (x count)",
            "",
            total_flops as f64 / 1e6,
            "",
            total_us,
            "",
            total_flops as f64 / total_us / 1e3
        );
    }
    ExitCode::SUCCESS
}
