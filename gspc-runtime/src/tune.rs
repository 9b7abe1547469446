//! The device side of `gspc-codegen tune` (with the `std` feature): a tuning batch is a
//! program whose `main` calls [`main`] with its generated models. Every model of a batch is
//! one layer shape and every layer of it one candidate plan of that shape. Each candidate
//! is first checked against the reference ([`crate::check::check_layer`]; int8 ones bit
//! for bit against the integer reference, [`crate::check::check_qlayer`]); one that
//! computes wrong values is reported as such and never timed. The rest are timed in
//! interleaved rounds (every candidate of a model once per round, so that a slow moment of
//! a shared machine falls on all of them), and one JSON line per candidate and thread count
//! goes to standard output for the tuner to record:
//!
//! ```text
//! {"cpu":"AMD EPYC (family 26, model 2)"}
//! {"model":"t0","layer":"c1","threads":1,"status":"ok","isa":"avx512","median_ns":41250.0,"min_ns":40811.0,"max_ns":43002.0,"samples":7}
//! {"model":"t0","layer":"c2","threads":1,"status":"wrong","detail":"c2 (run): ..."}
//! ```
//!
//! Arguments: `probe` (print the CPU line only), else `--threads LIST` (comma-separated,
//! default 1), `--rounds N` (default 7), `--sample-ms MS` (the least time one sample takes,
//! default 2; short layers run several times per sample).

use crate::check::{SeededData, SeededQData};
use crate::qlayer::QLayer;
use crate::{Isa, Layer, LayerInfo, Model};
use std::boxed::Box;
use std::format;
use std::string::{String, ToString};
use std::time::Instant;
use std::vec;
use std::vec::Vec;

/// How a batch runs: from its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Print the CPU line only.
    pub probe: bool,
    /// Thread counts, each timed in turn.
    pub threads: Vec<usize>,
    /// Interleaved rounds: samples per candidate.
    pub rounds: usize,
    /// The least time of one sample, in milliseconds.
    pub sample_ms: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            probe: false,
            threads: vec![1],
            rounds: 7,
            sample_ms: 2.0,
        }
    }
}

impl Settings {
    /// Parses a batch's arguments (without the program name).
    pub fn parse(args: &[String]) -> Result<Settings, String> {
        let mut s = Settings::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name}: a value is needed"))
            };
            match a.as_str() {
                "probe" => s.probe = true,
                "--threads" => {
                    let v = value("--threads")?;
                    s.threads = v
                        .split(',')
                        .map(|t| match t.parse::<usize>() {
                            Ok(n) if (1..=1024).contains(&n) => Ok(n),
                            _ => Err(format!("--threads {v}: {t:?} is not a count in 1..=1024")),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--rounds" => {
                    let v = value("--rounds")?;
                    s.rounds = match v.parse::<usize>() {
                        Ok(n) if (1..=1000).contains(&n) => n,
                        _ => return Err(format!("--rounds {v}: not a count in 1..=1000")),
                    };
                }
                "--sample-ms" => {
                    let v = value("--sample-ms")?;
                    s.sample_ms = match v.parse::<f64>() {
                        Ok(x) if x.is_finite() && (0.0..=10_000.0).contains(&x) => x,
                        _ => return Err(format!("--sample-ms {v}: not a time in 0..=10000 ms")),
                    };
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(s)
    }
}

/// A tuning batch's `main`: parses the arguments, prints the CPU line, then checks and
/// times every layer of `models`. Exit code 0 when it ran (wrong candidates included: they
/// are results), 2 for bad arguments.
pub fn main(models: &[Model]) -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = match Settings::parse(&args) {
        Ok(s) => s,
        Err(e) => {
            std::eprintln!("gspc tuning batch: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    run(models, &settings, &mut |line| {
        use std::io::Write;
        // The tuner reads the lines as they come: flush each one.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    });
    std::process::ExitCode::SUCCESS
}

/// [`main`]'s work, printing each JSON line through `emit`.
pub fn run(models: &[Model], settings: &Settings, emit: &mut dyn FnMut(&str)) {
    emit(&format!("{{\"cpu\":{}}}", json_string(&cpu_name())));
    if settings.probe {
        return;
    }
    let max_threads = settings.threads.iter().copied().max().unwrap_or(1);
    for model in models {
        let mut ok: Vec<Box<dyn Timed + Send>> = Vec::new();
        let mut wrong = |layer: &str, detail: &str| {
            emit(&format!(
                "{{\"model\":{},\"layer\":{},\"status\":\"wrong\",\"detail\":{}}}",
                json_string(model.name),
                json_string(layer),
                json_string(detail)
            ))
        };
        // Candidates of one shape (a tuning batch's model) share its data and the
        // reference's output: computed again only where the shape, bias or activation differ.
        let mut shared: Option<(LayerInfo, SeededData, Vec<f32>)> = None;
        for layer in model.layers {
            let shape = LayerInfo {
                name: "",
                count: 1,
                ..layer.info
            };
            let data = match &shared {
                Some((s, d, e)) if *s == shape => Ok((d, e)),
                _ => {
                    let seed = crate::check::seed_for(model.name, "");
                    let d = SeededData::new(
                        seed,
                        layer.input_len,
                        layer.weights_len,
                        layer.info.out_channels,
                    );
                    d.expected(layer).map(|e| {
                        let (_, d, e) = shared.insert((shape, d, e));
                        (&*d, &*e)
                    })
                }
            };
            match data.and_then(|(d, e)| f32_candidate(layer, d, e, max_threads)) {
                Ok(c) => ok.push(Box::new(c)),
                Err(detail) => wrong(layer.info.name, &detail),
            }
        }
        // int8 candidates: each checked bit for bit against the integer reference.
        for layer in model.qlayers {
            let seed = crate::check::seed_for(model.name, "");
            match int8_candidate(layer, seed, max_threads) {
                Ok(c) => ok.push(Box::new(c)),
                Err(detail) => wrong(layer.info.name, &detail),
            }
        }
        for &threads in &settings.threads {
            let samples = time_interleaved(&mut ok, threads, settings);
            for (c, mut s) in ok.iter().zip(samples) {
                s.sort_by(f64::total_cmp);
                emit(&format!(
                    "{{\"model\":{},\"layer\":{},\"threads\":{threads},\"status\":\"ok\",\"isa\":\"{}\",\"median_ns\":{:.1},\"min_ns\":{:.1},\"max_ns\":{:.1},\"samples\":{}}}",
                    json_string(model.name),
                    json_string(c.name()),
                    c.isa(),
                    s[s.len() / 2],
                    s[0],
                    s[s.len() - 1],
                    s.len()
                ));
            }
        }
    }
}

/// What the timing loop needs of a candidate that passed its check, f32 or int8.
trait Timed {
    /// The candidate's layer name.
    fn name(&self) -> &'static str;
    /// The variant its dispatcher runs on this CPU.
    fn isa(&self) -> Isa;
    /// One run on up to `threads` threads (`run` for one), as an application calls it.
    fn call(&mut self, threads: usize);
}

/// Times every candidate of one model on `threads` threads: a warm-up and calibration run
/// each, then `rounds` rounds of one sample per candidate. Returns the samples (ns per run)
/// of each candidate.
fn time_interleaved(
    cands: &mut [Box<dyn Timed + Send>],
    threads: usize,
    s: &Settings,
) -> Vec<Vec<f64>> {
    crate::parallel::in_pool(threads, || {
        let reps: Vec<usize> = cands
            .iter_mut()
            .map(|c| {
                c.call(threads);
                let t = Instant::now();
                c.call(threads);
                let once = t.elapsed().as_secs_f64() * 1e3;
                ((s.sample_ms / once.max(1e-6)).ceil() as usize).clamp(1, 100_000)
            })
            .collect();
        let mut samples = vec![Vec::with_capacity(s.rounds); cands.len()];
        for _ in 0..s.rounds {
            for (i, c) in cands.iter_mut().enumerate() {
                let t = Instant::now();
                for _ in 0..reps[i] {
                    c.call(threads);
                }
                samples[i].push(t.elapsed().as_secs_f64() * 1e9 / reps[i] as f64);
            }
        }
        samples
    })
}

/// A buffer placed at a chosen address modulo 4 KiB (and so 64-byte aligned): every
/// candidate gets its buffers at the same places, so that none is timed faster or slower
/// for where the allocator put its data. (Input and output at the same offset in their
/// pages, as large allocations from `mmap` are, make loads wait on unrelated stores: "4K
/// aliasing". One shape measured 1.45x apart with identical code, by allocation alone.)
struct Placed<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Copy + Default> Placed<T> {
    /// `len` values starting `offset` bytes (a multiple of 64, below 4096) into a page.
    fn new(values: &[T], len: usize, offset: usize) -> Placed<T> {
        let size = core::mem::size_of::<T>();
        let page = 4096 / size;
        let mut buf = vec![T::default(); len + page];
        let at = buf.as_ptr() as usize / size % page;
        let start = (offset / size + page - at) % page;
        buf[start..start + values.len()].copy_from_slice(values);
        Placed { buf, start, len }
    }

    fn get(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }

    fn get_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

/// A layer's `run` over activations `A` and weight/scratch words `W` (f32 and f32, or int8
/// and int32).
type RunFn<A, W> = fn(&[A], &[W], &mut [A], &mut [W]) -> Result<(), crate::Error>;
/// A layer's `run_parallel`.
type ParallelFn<A, W> = fn(&[A], &[W], &mut [A], &mut [W], usize) -> Result<(), crate::Error>;

/// One candidate that passed its check, with its entry points and buffers: f32
/// ([`f32_candidate`]) or int8 ([`int8_candidate`]).
struct Candidate<A, W> {
    name: &'static str,
    dispatched_isa: fn() -> Isa,
    run: RunFn<A, W>,
    run_parallel: ParallelFn<A, W>,
    /// Scratch words of one thread.
    scratch_len: usize,
    input: Placed<A>,
    packed: Placed<W>,
    output: Placed<A>,
    scratch: Placed<W>,
}

impl<A: Copy + Default, W: Copy + Default> Candidate<A, W> {
    /// The buffers: `input` and `packed` copied in, output and scratch (for up to
    /// `max_threads`) zeroed, each at its own offset in a page.
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: &'static str,
        dispatched_isa: fn() -> Isa,
        run: RunFn<A, W>,
        run_parallel: ParallelFn<A, W>,
        input: &[A],
        packed: &[W],
        output_len: usize,
        scratch_len: usize,
        max_threads: usize,
    ) -> Self {
        Candidate {
            name,
            dispatched_isa,
            run,
            run_parallel,
            scratch_len,
            input: Placed::new(input, input.len(), 0),
            packed: Placed::new(packed, packed.len(), 1024),
            output: Placed::new(&[], output_len, 2048),
            scratch: Placed::new(&[], scratch_len * max_threads, 3072),
        }
    }
}

/// Checks the f32 `layer` against the reference's output `expected` on `data`
/// ([`crate::check::check_layer_on`]: every variant this CPU runs, the dispatcher, the
/// split entry points), then sets up its buffers (scratch for up to `max_threads`).
fn f32_candidate(
    layer: &'static Layer,
    data: &SeededData,
    expected: &[f32],
    max_threads: usize,
) -> Result<Candidate<f32, f32>, String> {
    crate::check::check_layer_on(layer, data, expected)?;
    let mut packed = vec![0.0f32; layer.packed_len];
    let bias = layer.info.bias.then_some(&data.bias[..]);
    (layer.pack_weights)(&data.weights, bias, &mut packed)
        .map_err(|e| format!("{}: pack_weights: {e}", layer.info.name))?;
    Ok(Candidate::new(
        layer.info.name,
        layer.dispatched_isa,
        layer.run,
        layer.run_parallel,
        &data.input,
        &packed,
        layer.output_len,
        layer.scratch_len,
        max_threads,
    ))
}

/// Checks the int8 `layer` bit for bit against the integer reference on the data of `seed`
/// ([`crate::check::check_qlayer`]: every variant this CPU runs, the dispatcher, the split
/// entry points), then sets up its buffers (scratch for up to `max_threads`).
fn int8_candidate(
    layer: &'static QLayer,
    seed: u64,
    max_threads: usize,
) -> Result<Candidate<i8, i32>, String> {
    crate::check::check_qlayer(layer, seed)?;
    let info = &layer.info;
    let data = SeededQData::new(seed, layer.input_len, layer.weights_len, info.out_channels);
    let mut packed = vec![0i32; layer.packed_len];
    let bias = info.bias.then_some(&data.bias[..]);
    (layer.pack_weights)(&data.weights, bias, &mut packed)
        .map_err(|e| format!("{}: pack_weights: {e}", info.name))?;
    Ok(Candidate::new(
        info.name,
        layer.dispatched_isa,
        layer.run,
        layer.run_parallel,
        &data.input,
        &packed,
        layer.output_len,
        layer.scratch_len,
        max_threads,
    ))
}

impl<A: Copy + Default, W: Copy + Default> Timed for Candidate<A, W> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn isa(&self) -> Isa {
        (self.dispatched_isa)()
    }

    fn call(&mut self, threads: usize) {
        let scratch_len = self.scratch_len * threads;
        let (input, packed) = (self.input.get(), self.packed.get());
        let output = self.output.get_mut();
        let scratch = &mut self.scratch.get_mut()[..scratch_len];
        let r = if threads == 1 {
            (self.run)(core::hint::black_box(input), packed, output, scratch)
        } else {
            (self.run_parallel)(
                core::hint::black_box(input),
                packed,
                output,
                scratch,
                threads,
            )
        };
        // The lengths were checked before: a run cannot fail here.
        debug_assert!(r.is_ok());
        core::hint::black_box(output);
    }
}

/// This CPU, as tuning records name it: `/proc/cpuinfo`'s model name, with the family and
/// model numbers on x86 (a VM may show only "AMD EPYC" for several generations), or on ARM
/// the core from its part number (and the board's model line where the kernel gives one);
/// `unknown` where there is no `/proc/cpuinfo`.
pub fn cpu_name() -> String {
    match std::fs::read_to_string("/proc/cpuinfo") {
        Ok(text) => cpu_name_from(&text),
        Err(_) => "unknown".to_string(),
    }
}

/// [`cpu_name`] from the text of `/proc/cpuinfo`.
pub fn cpu_name_from(cpuinfo: &str) -> String {
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    if let Some(name) = field("model name").filter(|n| !n.is_empty()) {
        return match (field("cpu family"), field("model")) {
            (Some(f), Some(m)) => format!("{name} (family {f}, model {m})"),
            _ => name,
        };
    }
    if let Some(part) = field("CPU part") {
        let core = match part.as_str() {
            "0xd03" => "Cortex-A53".to_string(),
            "0xd04" => "Cortex-A35".to_string(),
            "0xd05" => "Cortex-A55".to_string(),
            "0xd07" => "Cortex-A57".to_string(),
            "0xd08" => "Cortex-A72".to_string(),
            "0xd09" => "Cortex-A73".to_string(),
            "0xd0a" => "Cortex-A75".to_string(),
            "0xd0b" => "Cortex-A76".to_string(),
            "0xd0c" => "Neoverse-N1".to_string(),
            "0xd40" => "Neoverse-V1".to_string(),
            "0xd41" => "Cortex-A78".to_string(),
            "0xd4f" => "Neoverse-V2".to_string(),
            _ => format!(
                "ARM implementer {} part {part}",
                field("CPU implementer").unwrap_or_default()
            ),
        };
        return match field("Model") {
            Some(board) => format!("{core} ({board})"),
            None => core,
        };
    }
    "unknown".to_string()
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_refuse() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let s = Settings::parse(&args("--threads 1,2 --rounds 3 --sample-ms 0.5")).unwrap();
        assert_eq!((s.threads, s.rounds, s.sample_ms), (vec![1, 2], 3, 0.5));
        assert!(Settings::parse(&args("probe")).unwrap().probe);
        for bad in [
            "--threads 0",
            "--threads x",
            "--rounds",
            "--sample-ms nan",
            "-x",
        ] {
            assert!(Settings::parse(&args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_names() {
        let zen = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n";
        assert_eq!(cpu_name_from(zen), "AMD EPYC (family 26, model 2)");
        let pi4 = "processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        assert_eq!(
            cpu_name_from(pi4),
            "Cortex-A72 (Raspberry Pi 4 Model B Rev 1.4)"
        );
        assert_eq!(
            cpu_name_from("CPU implementer : 0x61\nCPU part : 0x022\n"),
            "ARM implementer 0x61 part 0x022"
        );
        assert_eq!(cpu_name_from(""), "unknown");
    }

    #[test]
    fn json_strings_escape() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
