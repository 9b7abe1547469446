//! `cargo bench --bench layers -- [--model NAME]... [--threads N] [--repeat R] [--warmup W]
//! [--isa ISA] [--avx512-rate full|half] [--peak FILE] [--int8-peak FILE] [--json FILE]
//! [--sequential]`
//!
//! Times every layer of the compiled-in models (the root build's specs; `GSPC_SPECS` picks
//! others): median microseconds after warm-up, GFLOP/s (`2 * K * C/G * KH * KW * OH * OW /
//! t`), % of the measured peak, and model totals weighted by `count`. The peak is read from
//! `--peak FILE` (the JSON of ../shared/peers/peak/run.sh), by default from
//! `target/compare/peak.json` (written by scripts/compare.py on this machine), else
//! `../shared/peers/peak/peak.json`; the FMA peak of the ISA that runs (`--isa avx2`: AVX2,
//! otherwise AVX-512 where this CPU has it) at the thread count. A peak below what a layer
//! measured is not this CPU's: the bench warns about it at the end. int8 layers get a % of
//! the int8 peak instead, from `--int8-peak FILE` (the JSON of `cargo run --release -p
//! gspc-runtime --example int8_peak -- --json FILE`), by default
//! `target/compare/int8-peak.json`, else `target/compare-int8/int8-peak.json` (written by
//! `scripts/compare.py --int8`) where it exists: the peak of the widest instruction gspc's
//! int8 kernels use, `vpdpbusd` where the AVX-512 int8 variant runs
//! (`qlayer::supported(Isa::Avx512)`, not with `--isa avx2` or `portable`; grouped and
//! depthwise layers use it on quads), else AVX2's `vpmaddwd` + `vpaddd`;
//! an int8 model's total also gives its % of the `vpdpbusd` peak, the instruction of the
//! int8 peers. `--json` writes the
//! per-layer results with the field names of the peers' JSON (`model`, `name`, `threads`,
//! `median_us`, `gflops`). `--sequential` runs the N parts of `--threads N` one after
//! another on one thread (`run_split` in a 1-thread pool): the work of the split without
//! the threads, to tell the cost of splitting from that of running in parallel.
//! `--avx512-rate half` makes the dispatcher act as on a CPU whose 512-bit FMAs run at the
//! FLOP rate of 256-bit ones (Zen 4), `full` as on one where they run at twice it (Zen 5);
//! by default it measures this CPU (`gspc_runtime::x86::avx512_full_rate`). The `isa`
//! column shows the variant the dispatcher ran.

use clap::builder::RangedU64ValueParser;
use clap::{CommandFactory, Parser};
use gspc::runtime::qlayer::{QLayer, QRunFn};
use gspc::runtime::{Isa, Layer, LayerInfo, RunFn, rng::Rng};
use std::time::Instant;

/// Times every layer of the compiled-in models.
#[derive(Parser)]
#[command(name = "layers", bin_name = "cargo bench --bench layers --")]
struct Args {
    /// Only this model (repeatable; default: every compiled-in model).
    #[arg(long = "model", value_name = "NAME")]
    models: Vec<String>,
    /// Threads per layer (run_parallel; 1: run).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    threads: usize,
    /// Timed runs per layer; the median is reported.
    #[arg(long, value_name = "R", default_value_t = 30, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    repeat: usize,
    /// Untimed runs first.
    #[arg(long, value_name = "W", default_value_t = 5, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    warmup: usize,
    /// Time this variant instead of the dispatching run: portable, avx2, avx512 or neon.
    #[arg(long, value_name = "ISA")]
    isa: Option<String>,
    /// Dispatch as on a CPU whose AVX-512 FMAs run at full or half rate (default: measured).
    #[arg(long, value_name = "RATE", value_parser = ["full", "half"])]
    avx512_rate: Option<String>,
    /// The peak FLOP/s JSON (default: target/compare/peak.json, else the peers').
    #[arg(long, value_name = "FILE")]
    peak: Option<String>,
    /// The int8 peak GOP/s JSON (default: target/compare/int8-peak.json, else
    /// target/compare-int8/int8-peak.json, if present).
    #[arg(long, value_name = "FILE")]
    int8_peak: Option<String>,
    /// Also write the per-layer results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Run the parts of --threads N one after another on one thread.
    #[arg(long)]
    sequential: bool,
    /// Passed by `cargo bench` to harness = false benches; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Exits with status 2 after `msg` and the usage, as for any bad argument.
fn usage(msg: &str) -> ! {
    Args::command()
        .error(clap::error::ErrorKind::InvalidValue, msg)
        .exit()
}

/// The number under `key` in the flat JSON at `path` (a peak file: the peers'
/// `fma_<isa>_<T>t_gflops`, the int8 one's `int8_<instruction>_<isa>_<T>t_gops`).
fn read_peak(path: &str, key: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let key = format!("\"{key}\"");
    let at = text.find(&key)? + key.len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// `ours` where it exists, else `fallback`: a default peak file.
fn first_existing([ours, fallback]: [&str; 2]) -> String {
    if std::path::Path::new(ours).exists() {
        ours
    } else {
        fallback
    }
    .to_string()
}

/// The int8 variant `--isa` names (where this CPU runs it), or `run`.
fn pick_qrun(layer: &QLayer, isa: &Option<String>) -> Option<QRunFn> {
    match isa {
        None => Some(layer.run),
        Some(want) => layer
            .variants
            .iter()
            .find(|v| v.isa.as_str() == want && gspc::runtime::qlayer::supported(v.isa))
            .map(|v| v.run),
    }
}

fn pick_run(layer: &Layer, isa: &Option<String>) -> Option<RunFn> {
    match isa {
        None => Some(layer.run),
        Some(want) => layer
            .variants
            .iter()
            .find(|v| v.isa.as_str() == want && v.isa.is_supported())
            .map(|v| v.run),
    }
}

/// The peaks a layer's % is of: f32 layers' FMA peak; int8 layers' peak of the instruction
/// gspc uses (`int8`) and of `vpdpbusd` (`dpbusd`), each with its key, from `int8_path`.
struct Peaks {
    f32: Option<f64>,
    int8_path: String,
    int8: Option<(f64, String)>,
    dpbusd: Option<(f64, String)>,
}

impl Peaks {
    /// The % of its dtype's peak `gf` GFLOP/s (GOP/s) is, or "-".
    fn percent(&self, gf: f64, int8: bool) -> String {
        let p = if int8 {
            self.int8.as_ref().map(|p| p.0)
        } else {
            self.f32
        };
        p.map_or("-".to_string(), |p| format!("{:.0}%", 100.0 * gf / p))
    }
}

struct Timed {
    model: &'static str,
    name: &'static str,
    count: usize,
    flops: u64,
    median_us: f64,
    min_us: f64,
    /// The variant timed (`--isa`, else the one the dispatcher ran).
    isa: String,
    /// An int8 layer (GOP/s, % of the int8 peak).
    int8: bool,
}

impl Timed {
    fn gflops(&self) -> f64 {
        self.flops as f64 / self.median_us / 1e3
    }
}

/// Median and minimum microseconds of `once` over `--repeat` runs after `--warmup`.
fn time_runs(mut once: impl FnMut() -> f64, args: &Args) -> (f64, f64) {
    for _ in 0..args.warmup {
        once();
    }
    let mut times: Vec<f64> = (0..args.repeat).map(|_| once()).collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

fn time_layer(layer: &Layer, run: Option<RunFn>, args: &Args) -> (f64, f64) {
    let mut rng = Rng::new(7);
    let mut input = vec![0.0f32; layer.input_len];
    let mut weights = vec![0.0f32; layer.weights_len];
    rng.fill(&mut input);
    rng.fill(&mut weights);
    let mut packed = vec![0.0f32; layer.packed_len];
    (layer.pack_weights)(&weights, None, &mut packed).expect("lengths");
    let mut output = vec![0.0f32; layer.output_len];
    let mut scratch = vec![0.0f32; layer.scratch_len * args.threads];
    let threads = args.threads;
    let once = || {
        let t = Instant::now();
        match std::hint::black_box(run) {
            Some(run) => run(
                std::hint::black_box(&input),
                std::hint::black_box(&packed),
                &mut output,
                &mut scratch,
            ),
            None if args.sequential => (layer.run_split)(
                std::hint::black_box(&input),
                std::hint::black_box(&packed),
                &mut output,
                &mut scratch,
                threads,
            ),
            None => (layer.run_parallel)(
                std::hint::black_box(&input),
                std::hint::black_box(&packed),
                &mut output,
                &mut scratch,
                threads,
            ),
        }
        .expect("lengths");
        std::hint::black_box(&mut output);
        t.elapsed().as_secs_f64() * 1e6
    };
    time_runs(once, args)
}

/// [`time_layer`] for an int8 layer: `run` is a variant's, or `None` for `run_parallel`.
fn time_qlayer(layer: &QLayer, run: Option<QRunFn>, args: &Args) -> (f64, f64) {
    let data = gspc::runtime::check::SeededQData::new(
        7,
        layer.input_len,
        layer.weights_len,
        layer.info.out_channels,
    );
    let mut packed = vec![0i32; layer.packed_len];
    (layer.pack_weights)(&data.weights, None, &mut packed).expect("lengths");
    let mut output = vec![0i8; layer.output_len];
    let mut scratch = vec![0i32; layer.scratch_len * args.threads];
    let threads = args.threads;
    let once = || {
        let t = Instant::now();
        let input = std::hint::black_box(&data.input);
        let packed = std::hint::black_box(&packed);
        match std::hint::black_box(run) {
            Some(run) => run(input, packed, &mut output, &mut scratch),
            None => (layer.run_parallel)(input, packed, &mut output, &mut scratch, threads),
        }
        .expect("lengths");
        std::hint::black_box(&mut output);
        t.elapsed().as_secs_f64() * 1e6
    };
    time_runs(once, args)
}

fn main() {
    let args = Args::parse();
    if let Some(isa) = &args.isa
        && ![Isa::Portable, Isa::Avx2, Isa::Avx512, Isa::Neon]
            .iter()
            .any(|i| i.as_str() == isa)
    {
        usage(&format!(
            "--isa: {isa:?} is not one of portable, avx2, avx512, neon"
        ));
    }
    // Without --peak: this machine's, left by scripts/compare.py, else the peers' file.
    let peak_path = args.peak.clone().unwrap_or_else(|| {
        first_existing(["target/compare/peak.json", "../shared/peers/peak/peak.json"])
    });
    // The FMA peak of the ISA the timed kernels use: AVX2 when pinned to it, else AVX-512
    // where this CPU has it (portable and NEON are compared with the AVX2 peak on x86).
    let peak_isa = match args.isa.as_deref() {
        Some("avx2" | "portable") => "avx2",
        _ if Isa::Avx512.is_supported() => "avx512",
        _ => "avx2",
    };
    let peak_key = format!("fma_{peak_isa}_{}t_gflops", args.threads);
    let peak = read_peak(&peak_path, &peak_key);
    if args.peak.is_some() && peak.is_none() {
        usage(&format!(
            "--peak {peak_path}: no \"{peak_key}\" in it (the JSON of ../shared/peers/peak/run.sh)"
        ));
    }
    let peaks = int8_peaks(&args, peak);
    let models: Vec<_> = gspc::models::MODELS
        .iter()
        .filter(|m| args.models.is_empty() || args.models.iter().any(|n| n == m.name))
        .collect();
    for want in &args.models {
        if !gspc::models::MODELS.iter().any(|m| m.name == want) {
            let names: Vec<&str> = gspc::models::MODELS.iter().map(|m| m.name).collect();
            usage(&format!(
                "--model {want:?} is not compiled in (models: {})",
                names.join(", ")
            ));
        }
    }
    if let Some(rate) = &args.avx512_rate {
        gspc::runtime::x86::set_avx512_full_rate(Some(rate == "full"));
    }
    let rate = match (&args.avx512_rate, gspc::runtime::x86::avx512_full_rate()) {
        (Some(r), _) => format!("{r} (set)"),
        (None, full) if Isa::Avx512.is_supported() => {
            format!("{} (measured)", if full { "full" } else { "half" })
        }
        (None, _) => "n/a".to_string(),
    };
    println!(
        "# gspc {} threads={} repeat={} warmup={} isa={} avx512_rate={rate} peak={} int8_peak={}",
        env!("CARGO_PKG_VERSION"),
        args.threads,
        args.repeat,
        args.warmup,
        args.isa.as_deref().unwrap_or("dispatch"),
        peak.map_or("n/a".to_string(), |p| format!(
            "{p:.1} GFLOP/s ({peak_isa} FMA, {peak_path})"
        )),
        peaks
            .int8
            .as_ref()
            .map_or("n/a".to_string(), |(p, key)| format!(
                "{p:.1} GOP/s ({key}, {})",
                peaks.int8_path
            ))
    );
    // Threads: everything runs inside one pool, as an app runs its inferences, so the
    // calling thread is one of the pool's and does its share (pools made and dropped per
    // layer left threads behind that competed for the cores).
    let pool = if args.sequential { 1 } else { args.threads };
    let all = gspc::runtime::parallel::in_pool(pool, || run_models(&models, &args, &peaks));
    let int8_peak = peaks.int8.as_ref().map(|p| p.0);
    for (int8, peak, path, unit, how) in [
        (
            false,
            peak,
            &peak_path,
            "FLOP",
            "scripts/compare.py or ../shared/peers/peak/run.sh --json FILE and pass --peak FILE",
        ),
        (
            true,
            int8_peak,
            &peaks.int8_path,
            "OP",
            "scripts/compare.py --int8 or cargo run --release -p gspc-runtime --example int8_peak -- --json FILE and pass --int8-peak FILE",
        ),
    ] {
        if let (Some(p), Some(t)) = (
            peak,
            all.iter()
                .filter(|t| t.int8 == int8)
                .max_by(|a, b| a.gflops().total_cmp(&b.gflops())),
        ) && t.gflops() > 1.05 * p
        {
            eprintln!(
                "layers: warning: the peak in {path} ({p:.1} G{unit}/s) is below what {}.{} measured ({:.1} G{unit}/s): it was not measured on this CPU, so % of peak above is wrong; measure it with {how}",
                t.model,
                t.name,
                t.gflops()
            );
        }
    }
    if let Some(path) = &args.json {
        let rows: Vec<String> = all
            .iter()
            .map(|t| {
                format!(
                    "  {{\"model\": \"{}\", \"name\": \"{}\", \"dtype\": \"{}\", \"isa\": \"{}\", \"threads\": {}, \"count\": {}, \"flops\": {}, \"median_us\": {:.3}, \"min_us\": {:.3}, \"gflops\": {:.3}}}",
                    t.model,
                    t.name,
                    if t.int8 { "int8" } else { "f32" },
                    t.isa,
                    args.threads,
                    t.count,
                    t.flops,
                    t.median_us,
                    t.min_us,
                    t.gflops()
                )
            })
            .collect();
        let text = format!("[\n{}\n]\n", rows.join(",\n"));
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("layers: --json {path}: cannot write: {e}");
            std::process::exit(1);
        }
    }
}

/// The int8 peaks (`--int8-peak FILE`, else target/compare/int8-peak.json or the one
/// `scripts/compare.py --int8` leaves in target/compare-int8/, where present) for
/// the instruction gspc's int8 kernels run here and for `vpdpbusd`; a usage error where
/// `--int8-peak` lacks the former.
fn int8_peaks(args: &Args, f32: Option<f64>) -> Peaks {
    let path = args.int8_peak.clone().unwrap_or_else(|| {
        first_existing([
            "target/compare/int8-peak.json",
            "target/compare-int8/int8-peak.json",
        ])
    });
    let t = args.threads;
    let ours = match args.isa.as_deref() {
        Some("avx2" | "portable") => "vpmaddwd_avx2",
        _ if gspc::runtime::qlayer::supported(Isa::Avx512) => "vpdpbusd_avx512",
        _ => "vpmaddwd_avx2",
    };
    let read = |key: String| read_peak(&path, &key).map(|p| (p, key));
    let int8 = read(format!("int8_{ours}_{t}t_gops"));
    if args.int8_peak.is_some() && int8.is_none() {
        usage(&format!(
            "--int8-peak {path}: no \"int8_{ours}_{t}t_gops\" in it (the JSON of cargo run --release -p gspc-runtime --example int8_peak)"
        ));
    }
    let dpbusd = read(format!("int8_vpdpbusd_avx512_{t}t_gops"))
        .or_else(|| read(format!("int8_vpdpbusd_avxvnni_{t}t_gops")));
    Peaks {
        f32,
        int8_path: path,
        int8,
        dpbusd,
    }
}

/// What one layer's timing gives: its shape, median and minimum microseconds, the variant
/// the dispatcher ran, and whether it is int8.
type OneTimed = (LayerInfo, f64, f64, &'static str, bool);

/// What to time of layer `name`: `Some(None)` for `run_parallel` (`--threads` above 1),
/// `Some(Some(run))` for the variant `picked` (`--isa`, or the dispatching `run`), `None`,
/// with a line saying so, where `--isa` names no variant this CPU runs.
fn chosen_run<R>(name: &str, picked: Option<R>, args: &Args) -> Option<Option<R>> {
    if args.threads > 1 {
        return Some(None);
    }
    if picked.is_none() {
        println!(
            "{:<28} (no runnable {} variant)",
            name,
            args.isa.as_deref().unwrap_or("")
        );
        return None;
    }
    Some(picked)
}

/// Times an f32 layer (`None`, with a line saying so, where `--isa` names no variant this
/// CPU runs).
fn time_one_f32(layer: &Layer, args: &Args) -> Option<OneTimed> {
    let run = chosen_run(layer.info.name, pick_run(layer, &args.isa), args)?;
    let (median, min) = time_layer(layer, run, args);
    Some((
        layer.info,
        median,
        min,
        (layer.dispatched_isa)().as_str(),
        false,
    ))
}

/// [`time_one_f32`] for an int8 layer (not with `--sequential`, which int8 layers lack).
fn time_one_int8(layer: &QLayer, args: &Args) -> Option<OneTimed> {
    if args.sequential {
        println!("{:<28} (no --sequential for int8 layers)", layer.info.name);
        return None;
    }
    let run = chosen_run(layer.info.name, pick_qrun(layer, &args.isa), args)?;
    let (median, min) = time_qlayer(layer, run, args);
    Some((
        layer.info,
        median,
        min,
        (layer.dispatched_isa)().as_str(),
        true,
    ))
}

/// Times every layer of `models`, printing a table per model.
fn run_models(models: &[&gspc::runtime::Model], args: &Args, peaks: &Peaks) -> Vec<Timed> {
    let mut all = Vec::new();
    for m in models {
        println!(
            "\n{:<28} {:>4} {:>8} {:>10} {:>10} {:>7} {:>6} {:>8}",
            m.name, "cnt", "MFLOP", "median us", "min us", "GF/s", "%peak", "isa"
        );
        let (mut tot_us, mut tot_flops) = (0.0, 0u64);
        let layers = m.layers.iter().map(Some).map(|l| (l, None));
        let qlayers = m.qlayers.iter().map(|q| (None, Some(q)));
        for (layer, qlayer) in layers.chain(qlayers) {
            if args.threads > 1 && args.isa.is_some() {
                usage("--isa is for --threads 1 (run_parallel always dispatches)");
            }
            let timed = match (layer, qlayer) {
                (Some(layer), _) => time_one_f32(layer, args),
                (None, Some(q)) => time_one_int8(q, args),
                (None, None) => None,
            };
            let Some((info, median_us, min_us, dispatched, int8)) = timed else {
                continue;
            };
            let flops = info.flops();
            let gf = flops as f64 / median_us / 1e3;
            let isa = args.isa.clone().unwrap_or_else(|| dispatched.to_string());
            let of_peak = peaks.percent(gf, int8);
            println!(
                "{:<28} {:>4} {:>8.1} {:>10.1} {:>10.1} {:>7.1} {:>6} {:>8}",
                info.name,
                info.count,
                flops as f64 / 1e6,
                median_us,
                min_us,
                gf,
                of_peak,
                isa
            );
            tot_us += median_us * info.count as f64;
            tot_flops += flops * info.count as u64;
            all.push(Timed {
                model: m.name,
                name: info.name,
                count: info.count,
                flops,
                median_us,
                min_us,
                isa,
                int8,
            });
        }
        let gf = tot_flops as f64 / tot_us / 1e3;
        // An int8 model's total: % of the int8 peak, and of vpdpbusd's; a mixed one: none.
        let all_int8 = m.layers.is_empty();
        let of_peak = if m.qlayers.is_empty() || all_int8 {
            peaks.percent(gf, all_int8)
        } else {
            "-".to_string()
        };
        let note = match &peaks.dpbusd {
            Some((p, key)) if all_int8 => format!("  ({:.0}% of {key})", 100.0 * gf / p),
            _ => String::new(),
        };
        println!(
            "{:<28} {:>4} {:>8.1} {:>10.1} {:>10} {:>7.1} {:>6}{note}",
            "TOTAL (x count)",
            "",
            tot_flops as f64 / 1e6,
            tot_us,
            "",
            gf,
            of_peak
        );
    }
    all
}
