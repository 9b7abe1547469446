//! `gspc-codegen tune`: times the candidate plans of every layer on the device the code is
//! for, and records them in a tuning database ([`crate::tuning`]).
//!
//! For each layer shape of the specs (layers that pin a plan themselves are left alone):
//! - **Candidates** ([`candidates`]): the cost model's own plan, then every strategy that
//!   applies with the cost model's `oc_block` and with each power-of-two `oc_block` the
//!   spec rules allow (at most 32, at most 16 for `gspc-ow`, none for `gspc-dwc`), then the
//!   cost model's plan in compact code. A candidate the spec rules or the plan's bound
//!   checks refuse is never built; candidates that plan to the same code are built once
//!   (the first in this order stands for them).
//! - **Batches**: shapes in order of their share of the models' FLOPs (count included), the
//!   most first, several shapes per program up to a line budget, so that one compilation
//!   serves many candidates. Each program (`gspc_runtime::tune::main`) checks every
//!   candidate against the reference on the device, then times the correct ones in
//!   interleaved rounds.
//! - **int8 layers** are tuned the same way among their own kernels (`gspc-oc` blocks,
//!   `gspc-dwc`, narrower tiles: the candidates int8 has no kernel for are refused by the
//!   plan), under their own signature ([`signature`]), each checked bit for bit against
//!   the integer reference on the device.
//! - **Records**: one JSON line per candidate and thread count, appended as it arrives; a
//!   run that stops resumes where it stopped (what the database has for this version,
//!   target and CPU is not run again).

use crate::error::{Error, FileOp, Setting};
use crate::spec::{LayerSpec, Spec};
use crate::target::Target;
use crate::tuning::{Candidate, Database, Record, Status, signature};
use crate::{Isa, LayerPlan, Options};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What to tune, where, and how.
#[derive(Clone, Debug)]
pub struct TuneOptions {
    /// Spec files.
    pub specs: Vec<PathBuf>,
    /// The database (created if missing, appended to).
    pub db: PathBuf,
    /// Target triple (default: this machine).
    pub target: Option<String>,
    /// ISA variants to build (default: the target's).
    pub isas: Option<Vec<Isa>>,
    /// Command prefix that runs a batch on the device (it gets the program's path and
    /// arguments, as Cargo's `target.<triple>.runner` does); none: run it here.
    pub runner: Option<String>,
    /// Thread counts to time.
    pub threads: Vec<usize>,
    /// Time to spend, at most (a batch that starts in time runs to its end).
    pub budget: Option<Duration>,
    /// Only these layers (`layer` or `model.layer`).
    pub layers: Vec<String>,
    /// The CPU name for the records (default: what the device says).
    pub cpu: Option<String>,
    /// The directory the batches are built in.
    pub work: PathBuf,
    /// gspc-runtime's source directory (the batches depend on it).
    pub runtime: PathBuf,
    /// Timing rounds per candidate.
    pub rounds: usize,
    /// Generated lines per batch, at most (one shape at least).
    pub batch_lines: usize,
    /// Also the int8 twins of the specs ([`Spec::int8_twin`]: `<model>_int8`, as
    /// `generate --int8-twins` and the root build's benchmark make them).
    pub int8_twins: bool,
}

/// gspc-runtime's source directory in the tree this generator was built from, if it is
/// still there.
pub fn default_runtime_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gspc-runtime");
    dir.join("Cargo.toml").is_file().then_some(dir)
}

/// One layer shape to tune: the first layer with it, and every layer that shares it.
#[derive(Clone, Debug)]
struct Shape {
    signature: String,
    /// The first layer with this shape (its name `model.layer`).
    layer: LayerSpec,
    name: String,
    /// FLOPs of every layer with this shape, times their counts.
    weight: u64,
    /// The candidates to build and time (deduplicated), with their plans.
    candidates: Vec<(Candidate, LayerPlan)>,
}

/// Every candidate plan of `layer` that the spec rules and the bound checks accept, the
/// cost model's first, each distinct plan once (see the module docs for the space).
pub fn candidates(layer: &LayerSpec, options: &Options) -> Vec<(Candidate, LayerPlan)> {
    let kpg = layer.out_per_group();
    let mut space = vec![Candidate::model()];
    let strategy = |s: &str, b: Option<usize>| Candidate {
        strategy: Some(s.to_string()),
        oc_block: b,
        ..Candidate::model()
    };
    let blocks = |max: usize| {
        [1, 2, 4, 8, 16, 32]
            .into_iter()
            .filter(move |b| *b <= max && kpg.is_multiple_of(*b))
    };
    space.push(strategy("gspc-oc", None));
    space.extend(blocks(32).map(|b| strategy("gspc-oc", Some(b))));
    space.push(strategy("gspc-ow", None));
    space.extend(blocks(16).map(|b| strategy("gspc-ow", Some(b))));
    space.push(strategy("gspc-dwc", None));
    // Each with its input packed (no direct or in-place kernel), where that differs.
    let packed: Vec<Candidate> = space
        .iter()
        .map(|c| Candidate {
            direct: Some(false),
            ..c.clone()
        })
        .collect();
    space.extend(packed);
    space.push(Candidate {
        compact: true,
        ..Candidate::model()
    });
    // Narrower tiles (fewer columns, or fewer vectors and rows) for the cost model's plan
    // and each strategy's.
    let narrow: Vec<Candidate> = [None, Some("gspc-oc"), Some("gspc-ow"), Some("gspc-dwc")]
        .into_iter()
        .flat_map(|s| {
            [12, 8].map(|a| Candidate {
                strategy: s.map(String::from),
                accumulators: Some(a),
                ..Candidate::model()
            })
        })
        .collect();
    space.extend(narrow);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in space {
        let mut l = c.apply(layer);
        l.name = "c".to_string();
        // The spec rules (oc_block and strategy against the shape), then the plan's.
        let text = layer_spec_text("candidate", std::slice::from_ref(&l));
        let Ok(spec) = crate::spec::parse("candidate", &text) else {
            continue;
        };
        let Ok(mut plans) = crate::plan(&spec, options) else {
            continue;
        };
        let plan = plans.remove(0);
        if seen.insert(fingerprint(&plan)) {
            out.push((c, plan));
        }
    }
    out
}

/// What makes two plans the same code: the layouts, every variant's tiles and kind, the
/// half-rate form and the one-group plan (`compact` only shapes the tiles: a compact plan
/// with the same tiles is the same code).
fn fingerprint(p: &LayerPlan) -> String {
    format!(
        "{:?} {} {} {:?} {:?} {:?} {:?}",
        p.strategy,
        p.oc_bn,
        p.gpv,
        p.variants,
        p.quant,
        p.half_rate,
        p.one_group.as_deref().map(fingerprint)
    )
}

/// A spec file's text for `layers` (model `model`), with each layer's pins.
fn layer_spec_text(model: &str, layers: &[LayerSpec]) -> String {
    use serde_json::{Value, json};
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| {
            let mut v = json!({
                "name": l.name,
                "in_channels": l.in_channels,
                "out_channels": l.out_channels,
                "groups": l.groups,
                "kernel": l.kernel,
                "stride": l.stride,
                "padding": l.padding,
                "dilation": l.dilation,
                "input": l.input,
                "bias": l.bias,
                "activation": l.activation.as_str(),
            });
            if let Some(s) = l.strategy {
                v["strategy"] = json!(s.as_str());
            }
            if let Some(b) = l.oc_block {
                v["oc_block"] = json!(b);
            }
            if let Some(c) = l.compact {
                v["compact"] = json!(c);
            }
            if let Some(d) = l.direct {
                v["direct"] = json!(d);
            }
            if let Some(a) = l.accumulators {
                v["accumulators"] = json!(a);
            }
            if let Some(q) = &l.quantization {
                // Scales as the exact decimal value of their f32: read back to the same f32.
                let f = |x: f32| json!(f64::from(x));
                v["dtype"] = json!("int8");
                v["quantization"] = json!({
                    "requantization": q.requantization.as_str(),
                    "input_scale": f(q.input_scale),
                    "input_zero_point": q.input_zero_point,
                    "output_scale": f(q.output_scale),
                    "output_zero_point": q.output_zero_point,
                    "weight_scales": q.weight_scales.iter().map(|&s| f(s)).collect::<Vec<_>>(),
                });
            }
            v
        })
        .collect();
    serde_json::to_string_pretty(&json!({"model": model, "layers": layers})).unwrap_or_default()
}

/// The shapes of `specs` to tune, the most FLOPs first.
fn shapes(specs: &[Spec], options: &Options, only: &[String]) -> Result<Vec<Shape>, Error> {
    let mut by_sig: BTreeMap<String, Shape> = BTreeMap::new();
    let mut matched = BTreeSet::new();
    for s in specs {
        for l in &s.layers {
            let name = format!("{}.{}", s.model, l.name);
            if !only.is_empty() {
                match named_by(only, &s.model, &l.name) {
                    Some(o) => {
                        matched.insert(o.clone());
                    }
                    None => continue,
                }
            }
            if l.pins_plan() {
                continue;
            }
            let sig = signature(l);
            let weight = l.flops() * l.count as u64;
            by_sig
                .entry(sig.clone())
                .and_modify(|sh| sh.weight += weight)
                .or_insert_with(|| Shape {
                    signature: sig,
                    layer: l.clone(),
                    name,
                    weight,
                    candidates: Vec::new(),
                });
        }
    }
    if let Some(missing) = only.iter().find(|o| !matched.contains(*o)) {
        return Err(Error::option_value(
            Setting::Tune,
            format!("--layers {missing}"),
            "no layer of the specs has this name (give LAYER or MODEL.LAYER)",
        ));
    }
    let mut shapes: Vec<Shape> = by_sig.into_values().collect();
    for sh in &mut shapes {
        sh.candidates = candidates(&sh.layer, options);
    }
    shapes.sort_by(|a, b| b.weight.cmp(&a.weight).then(a.name.cmp(&b.name)));
    Ok(shapes)
}

/// The entry of `--layers` (`LAYER` or `MODEL.LAYER`) that names layer `layer` of model
/// `model`, if any.
fn named_by<'a>(only: &'a [String], model: &str, layer: &str) -> Option<&'a String> {
    let full = format!("{model}.{layer}");
    only.iter().find(|o| **o == layer || **o == full)
}

/// What a tuning run did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Records appended.
    pub records: usize,
    /// Candidates found wrong.
    pub wrong: usize,
    /// Shapes left for a later run (the budget was spent).
    pub left: usize,
    /// The CPU the records name.
    pub cpu: String,
    /// The target triple.
    pub target: String,
    /// The specs tuned (for the report).
    pub specs: Vec<Spec>,
}

/// Tunes: builds and runs every batch not yet in the database, appending records;
/// `progress` gets one line per event (batch built, candidate measured).
pub fn tune(opts: &TuneOptions, progress: &mut dyn FnMut(&str)) -> Result<Summary, Error> {
    let start = Instant::now();
    let specs = with_twins(crate::read_specs(&opts.specs)?, opts.int8_twins);
    let target = match &opts.target {
        Some(t) => Target::from_triple(t)?,
        None => Target::host(),
    };
    let (triple, native) = crate::tuning::resolve_triple(opts.target.as_deref())?;
    if opts.runner.is_none() && !native {
        return Err(Error::option_value(
            Setting::Tune,
            format!("--target {triple}"),
            "is not this machine: give --runner, a command that runs a program on the device (e.g. 'qemu-aarch64 -L /usr/aarch64-linux-gnu', or scripts/ssh-runner.sh HOST)",
        ));
    }
    let options = Options {
        target: target.clone(),
        isas: opts.isas.clone(),
        outline_tiles: false,
        tuning: None,
        int8_twins: false,
    };
    options.isas()?;
    let shapes = shapes(&specs, &options, &opts.layers)?;
    let project = Project::new(opts, &triple, native)?;

    // The CPU, as the device names it.
    let cpu = match &opts.cpu {
        Some(c) => c.clone(),
        None => {
            progress("probing the device (building the runtime)...");
            project.build(&[], &options)?;
            let mut cpu = None;
            project.run(&["probe".to_string()], &mut |line| {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                    && let Some(c) = v["cpu"].as_str()
                {
                    cpu = Some(c.to_string());
                }
            })?;
            cpu.ok_or_else(|| Error::Internal("the probe printed no CPU line".to_string()))?
        }
    };
    progress(&format!("device CPU: {cpu:?}, target {triple}"));

    let db = Database::read_or_empty(&opts.db)?;
    let done = Done::of(&db, &triple, &cpu, &opts.threads);
    let todo: Vec<Shape> = shapes
        .into_iter()
        .filter_map(|mut sh| {
            sh.candidates.retain(|(c, _)| !done.has(&sh.signature, c));
            (!sh.candidates.is_empty()).then_some(sh)
        })
        .collect();
    let total: usize = todo.iter().map(|s| s.candidates.len()).sum();
    progress(&format!(
        "{} layer shape(s), {total} candidate(s) to run ({} record(s) already in {})",
        todo.len(),
        db.records.len(),
        opts.db.display()
    ));
    let batches = batches(&todo, opts.batch_lines);
    // The report shows the models `--layers` names a layer of (every model without it).
    let named = |s: &Spec| {
        opts.layers.is_empty()
            || s.layers
                .iter()
                .any(|l| named_by(&opts.layers, &s.model, &l.name).is_some())
    };
    let mut summary = Summary {
        cpu: cpu.clone(),
        target: triple.clone(),
        specs: specs.into_iter().filter(named).collect(),
        ..Summary::default()
    };
    let mut appender = Appender::open(&opts.db)?;
    let mut finished = 0usize;
    for (bi, batch) in batches.iter().enumerate() {
        if let Some(b) = opts.budget
            && start.elapsed() >= b
        {
            summary.left = batches[bi..].iter().map(|b| b.len()).sum();
            progress(&format!(
                "budget of {} spent: {} layer shape(s) left; run the same command again to go on",
                show_duration(b),
                summary.left
            ));
            break;
        }
        let shapes: Vec<&Shape> = batch.iter().map(|&i| &todo[i]).collect();
        let n: usize = shapes.iter().map(|s| s.candidates.len()).sum();
        progress(&format!(
            "batch {}/{}: {} shape(s), {n} candidate(s): building...",
            bi + 1,
            batches.len(),
            shapes.len()
        ));
        let t = Instant::now();
        project.build(&shapes, &options)?;
        progress(&format!(
            "batch {}/{}: built in {:.0} s",
            bi + 1,
            batches.len(),
            t.elapsed().as_secs_f64()
        ));
        let threads: Vec<String> = opts.threads.iter().map(|t| t.to_string()).collect();
        let args = [
            "--threads".to_string(),
            threads.join(","),
            "--rounds".to_string(),
            opts.rounds.to_string(),
        ];
        let mut best: BTreeMap<usize, (f64, String, Option<f64>)> = BTreeMap::new();
        let mut failure = None;
        project.run(&args, &mut |line| {
            let Some((si, r)) = record_of(line, &shapes, &triple, &cpu) else {
                return;
            };
            if let Err(e) = appender.append(&r) {
                failure.get_or_insert(e);
            }
            summary.records += 1;
            // Candidates done: counted at their first thread count (or when wrong).
            if r.status == Status::Wrong || r.threads == opts.threads[0] {
                finished += 1;
            }
            let sh = shapes[si];
            match r.time_ns() {
                None => {
                    summary.wrong += 1;
                    progress(&format!(
                        "  {}: candidate {} computed wrong values, never chosen: {}",
                        sh.name,
                        r.candidate.label(),
                        r.detail.as_deref().unwrap_or("")
                    ));
                }
                Some(t) if r.threads == opts.threads[0] => {
                    let e = best
                        .entry(si)
                        .or_insert((f64::INFINITY, String::new(), None));
                    if r.candidate.is_model() {
                        e.2 = Some(t);
                    }
                    if t < e.0 {
                        (e.0, e.1) = (t, r.candidate.label());
                    }
                    let eta = eta(start, finished, total.saturating_sub(finished));
                    progress(&format!(
                        "  [{}/{}] {} ({}): {} {:.1} us; best so far {} {:.1} us{}; ETA {eta}",
                        finished.min(total),
                        total,
                        sh.name,
                        sh.signature,
                        r.candidate.label(),
                        t / 1e3,
                        e.1,
                        e.0 / 1e3,
                        e.2.map_or(String::new(), |m| format!(" (model {:.1} us)", m / 1e3)),
                    ));
                }
                Some(_) => {}
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Ok(summary)
}

/// `specs`, and with `twins` the int8 twin of each that has f32 layers, after them.
fn with_twins(mut specs: Vec<Spec>, twins: bool) -> Vec<Spec> {
    if twins {
        let t: Vec<Spec> = specs
            .iter()
            .filter(|s| s.layers.iter().any(|l| l.quantization.is_none()))
            .map(Spec::int8_twin)
            .collect();
        specs.extend(t);
    }
    specs
}

/// "3m20s" for an estimate of the time left.
fn eta(start: Instant, done: usize, left: usize) -> String {
    if done == 0 {
        return "unknown".to_string();
    }
    let per = start.elapsed().as_secs_f64() / done as f64;
    show_duration(Duration::from_secs_f64(per * left as f64))
}

/// A duration as `1h02m`, `3m20s` or `45s`.
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Parses `--budget`: `90s`, `20m`, `1h`, `1h30m` (a plain number is minutes).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(m) = t.parse::<u64>() {
        return m
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{text:?}: too long"));
    }
    let mut secs = 0u64;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("{text:?}: {c:?} is not a unit (h, m, s)")),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{text:?}: a number must come before {c:?}"))?;
        secs = n
            .checked_mul(unit)
            .and_then(|v| secs.checked_add(v))
            .ok_or_else(|| format!("{text:?}: too long"))?;
        num.clear();
    }
    if !num.is_empty() || secs == 0 {
        return Err(format!("{text:?} is not a duration (e.g. 90s, 20m, 1h30m)"));
    }
    Ok(Duration::from_secs(secs))
}

/// Groups shapes into batches of at most `max_lines` estimated lines (one shape at least).
fn batches(shapes: &[Shape], max_lines: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut lines = 0;
    for (i, sh) in shapes.iter().enumerate() {
        let n: usize = sh.candidates.iter().map(|(_, p)| p.estimated_lines()).sum();
        match out.last_mut() {
            Some(b) if lines + n <= max_lines => {
                b.push(i);
                lines += n;
            }
            _ => {
                out.push(vec![i]);
                lines = n;
            }
        }
    }
    out
}

/// What the database already has for this version, target and CPU.
struct Done {
    /// (signature, candidate) -> thread counts timed.
    timed: BTreeMap<(String, Candidate), BTreeSet<usize>>,
    /// (signature, candidate) found wrong.
    wrong: BTreeSet<(String, Candidate)>,
    threads: Vec<usize>,
}

impl Done {
    fn of(db: &Database, target: &str, cpu: &str, threads: &[usize]) -> Done {
        let mut d = Done {
            timed: BTreeMap::new(),
            wrong: BTreeSet::new(),
            threads: threads.to_vec(),
        };
        for r in db
            .records
            .iter()
            .filter(|r| r.gspc == crate::VERSION && r.target == target && r.cpu == cpu)
        {
            let k = (r.signature.clone(), r.candidate.clone());
            match r.status {
                Status::Ok => {
                    d.timed.entry(k).or_default().insert(r.threads);
                }
                Status::Wrong => {
                    d.wrong.insert(k);
                }
            }
        }
        d
    }

    /// Whether nothing is left to run for this candidate.
    fn has(&self, sig: &str, c: &Candidate) -> bool {
        let k = (sig.to_string(), c.clone());
        self.wrong.contains(&k)
            || self
                .timed
                .get(&k)
                .is_some_and(|t| self.threads.iter().all(|n| t.contains(n)))
    }
}

/// The shape and candidate a batch line names (`"model":"t3","layer":"c2"`).
fn locate(v: &serde_json::Value, shapes: &[&Shape]) -> Option<(usize, usize)> {
    let si: usize = v["model"].as_str()?.strip_prefix('t')?.parse().ok()?;
    let ci: usize = v["layer"].as_str()?.strip_prefix('c')?.parse().ok()?;
    (si < shapes.len() && ci < shapes[si].candidates.len()).then_some((si, ci))
}

/// The shape index and record of one result line of a batch (`None` for the CPU line and
/// anything else).
fn record_of(line: &str, shapes: &[&Shape], target: &str, cpu: &str) -> Option<(usize, Record)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let (si, ci) = locate(&v, shapes)?;
    let sh = shapes[si];
    let (cand, _) = &sh.candidates[ci];
    let status = match v["status"].as_str()? {
        "ok" => Status::Ok,
        "wrong" => Status::Wrong,
        _ => return None,
    };
    Some((
        si,
        Record {
            gspc: crate::VERSION.to_string(),
            target: target.to_string(),
            cpu: cpu.to_string(),
            signature: sh.signature.clone(),
            threads: v["threads"].as_u64().unwrap_or(0) as usize,
            layer: sh.name.clone(),
            candidate: cand.clone(),
            model_choice: cand.is_model(),
            status,
            isa: v["isa"].as_str().map(String::from),
            median_ns: v["median_ns"].as_f64(),
            min_ns: v["min_ns"].as_f64(),
            max_ns: v["max_ns"].as_f64(),
            samples: v["samples"].as_u64().map(|n| n as usize),
            detail: v["detail"].as_str().map(String::from),
        },
    ))
}

/// Appends records to the database, a flushed line each.
struct Appender {
    file: std::fs::File,
    path: String,
}

impl Appender {
    fn open(path: &Path) -> Result<Appender, Error> {
        let shown = path.display().to_string();
        // The database's directory, as `generate` makes its output directory.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(dir.display().to_string(), FileOp::CreateOutputDir, e))?;
        }
        // A database whose last line was cut off: start on a new line.
        let needs_newline = std::fs::read(path)
            .ok()
            .is_some_and(|b| b.last().is_some_and(|c| *c != b'\n'));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(shown.clone(), FileOp::Write, e))?;
        if needs_newline {
            file.write_all(b"\n")
                .map_err(|e| Error::io(shown.clone(), FileOp::Write, e))?;
        }
        Ok(Appender { file, path: shown })
    }

    fn append(&mut self, r: &Record) -> Result<(), Error> {
        let line = serde_json::to_string(r)
            .map_err(|e| Error::Internal(format!("a tuning record: {e}")))?;
        self.file
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(self.path.clone(), FileOp::Write, e))
    }
}

/// The Cargo project batches are built in.
struct Project {
    dir: PathBuf,
    triple: String,
    native: bool,
    runner: Vec<String>,
}

impl Project {
    fn new(opts: &TuneOptions, triple: &str, native: bool) -> Result<Project, Error> {
        let work = std::path::absolute(&opts.work)
            .map_err(|e| Error::io(opts.work.display().to_string(), FileOp::ResolveOutput, e))?;
        let dir = work.join(triple);
        let mkdir = |d: &Path| {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::io(d.display().to_string(), FileOp::CreateOutputDir, e))
        };
        mkdir(&dir.join("src/kernels"))?;
        mkdir(&dir.join("specs"))?;
        let runtime = std::path::absolute(&opts.runtime)
            .map_err(|e| Error::io(opts.runtime.display().to_string(), FileOp::ResolveOutput, e))?;
        if !runtime.join("Cargo.toml").is_file() {
            return Err(Error::option_value(
                Setting::Tune,
                format!("--runtime {}", runtime.display()),
                "is not gspc-runtime's source directory (no Cargo.toml there)",
            ));
        }
        let manifest = format!(
            "# @generated by gspc-codegen tune: one tuning batch at a time.\n\
             [package]\nname = \"gspc-tune-batch\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\ngspc-runtime = {{ path = {:?}, features = [\"std\"] }}\n\n\
             # Its own workspace, wherever the work directory is.\n[workspace]\n\n\
             [profile.release]\ncodegen-units = 16\n",
            runtime.display().to_string()
        );
        write(&dir.join("Cargo.toml"), &manifest)?;
        write(
            &dir.join("src/main.rs"),
            "// @generated by gspc-codegen tune.\n\
             mod kernels {\n    include!(\"kernels/models.rs\");\n}\n\n\
             fn main() -> std::process::ExitCode {\n    gspc_runtime::tune::main(kernels::MODELS)\n}\n",
        )?;
        let runner = opts
            .runner
            .as_deref()
            .map(|r| r.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        Ok(Project {
            dir,
            triple: triple.to_string(),
            native,
            runner,
        })
    }

    /// Generates the batch's kernels (one model `t<i>` per shape, one layer `c<j>` per
    /// candidate) and builds it.
    fn build(&self, shapes: &[&Shape], options: &Options) -> Result<(), Error> {
        let specs_dir = self.dir.join("specs");
        let kernels = self.dir.join("src/kernels");
        for d in [&specs_dir, &kernels] {
            if let Ok(entries) = std::fs::read_dir(d) {
                for e in entries.flatten() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let mut b = crate::Builder::new();
        for (i, sh) in shapes.iter().enumerate() {
            let layers: Vec<LayerSpec> = sh
                .candidates
                .iter()
                .enumerate()
                .map(|(j, (c, _))| LayerSpec {
                    name: format!("c{j}"),
                    ..c.apply(&sh.layer)
                })
                .collect();
            let path = specs_dir.join(format!("t{i}.json"));
            write(&path, &layer_spec_text(&format!("t{i}"), &layers))?;
            b.spec(path);
        }
        b.out_dir(&kernels)
            .index("models.rs")
            .target(options.target.clone())
            .cargo_metadata(false);
        if let Some(isas) = &options.isas {
            b.isas(isas.clone());
        }
        if shapes.is_empty() {
            write(
                &kernels.join("models.rs"),
                "#[allow(dead_code)]\npub const MODELS: &[::gspc_runtime::Model] = &[];\n",
            )?;
        } else {
            b.generate()?;
        }
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(&self.dir)
            .args(["build", "--release", "--quiet"])
            .env("CARGO_TARGET_DIR", self.dir.join("target"));
        if !self.native {
            cmd.args(["--target", &self.triple]);
        }
        let out = cmd
            .output()
            .map_err(|e| Error::io("cargo", FileOp::Run, e))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(30).collect();
            return Err(Error::option(
                Setting::Tune,
                format!(
                    "building the tuning batch in {} failed (is the target installed, with its linker?):\n{}",
                    self.dir.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ),
            ));
        }
        Ok(())
    }

    /// The built program.
    fn binary(&self) -> PathBuf {
        let mut p = self.dir.join("target");
        if !self.native {
            p.push(&self.triple);
        }
        p.join("release/gspc-tune-batch")
    }

    /// Runs the batch (through the runner), each line of its output to `line`.
    fn run(&self, args: &[String], line: &mut dyn FnMut(&str)) -> Result<(), Error> {
        let bin = self.binary();
        let mut cmd = match self.runner.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let shown = match self.runner.is_empty() {
            true => bin.display().to_string(),
            false => format!("{} {}", self.runner.join(" "), bin.display()),
        };
        let mut child = cmd
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::io(shown.clone(), FileOp::Run, e))?;
        if let Some(out) = child.stdout.take() {
            for l in std::io::BufReader::new(out).lines() {
                match l {
                    Ok(l) => line(&l),
                    Err(e) => return Err(Error::io(shown, FileOp::Run, e)),
                }
            }
        }
        let status = child
            .wait()
            .map_err(|e| Error::io(shown.clone(), FileOp::Run, e))?;
        if !status.success() {
            return Err(Error::option(
                Setting::Tune,
                format!(
                    "the tuning batch {shown} failed ({status}); the records it printed before are kept"
                ),
            ));
        }
        Ok(())
    }
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::io(path.display().to_string(), FileOp::Write, e))
}

/// One layer of the tuning report.
#[derive(Clone, Debug)]
pub struct ReportRow {
    /// `model.layer`.
    pub layer: String,
    /// Count in the model.
    pub count: usize,
    /// The cost model's plan's time, ns (when timed).
    pub model_ns: Option<f64>,
    /// The tuned plan's time, ns (when tuned).
    pub tuned_ns: Option<f64>,
    /// The winning candidate.
    pub winner: Option<Candidate>,
}

/// The report of what the database says for the layers of `specs`: per layer and per model,
/// the cost model's time, the tuned time, the winner, and how far the cost model was off.
pub fn report(specs: &[Spec], tuning: &crate::tuning::Tuning) -> String {
    let mut s = format!(
        "tuned against cost model, {} at {} thread(s), target {}\n",
        tuning.key.cpu, tuning.key.threads, tuning.key.target
    );
    for spec in specs {
        s.push_str(&format!(
            "\nmodel {}\n{:<34} {:>5} {:>12} {:>12} {:>7}  winner\n",
            spec.model, "layer", "count", "model us", "tuned us", "model/tuned"
        ));
        let (mut m_sum, mut t_sum, mut all) = (0.0, 0.0, true);
        for l in &spec.layers {
            let name = format!("{}.{}", spec.model, l.name);
            let pinned = l.pins_plan();
            match tuning.choice(l).filter(|_| !pinned) {
                Some(t) => {
                    let m = t.model_ns.unwrap_or(f64::NAN);
                    m_sum += m * l.count as f64;
                    t_sum += t.time_ns * l.count as f64;
                    all &= t.model_ns.is_some();
                    s.push_str(&format!(
                        "{:<34} {:>5} {:>12.1} {:>12.1} {:>7.3}x  {}\n",
                        name,
                        l.count,
                        m / 1e3,
                        t.time_ns / 1e3,
                        m / t.time_ns,
                        t.candidate.label()
                    ));
                }
                None => {
                    all = false;
                    let why = if pinned {
                        "pinned by the spec"
                    } else {
                        "not tuned"
                    };
                    s.push_str(&format!("{name:<34} {:>5}  {why}\n", l.count));
                }
            }
        }
        if all && t_sum > 0.0 {
            s.push_str(&format!(
                "{:<34} {:>5} {:>12.1} {:>12.1} {:>7.3}x\n",
                "total (x count)",
                "",
                m_sum / 1e3,
                t_sum / 1e3,
                m_sum / t_sum
            ));
        } else {
            s.push_str("total: not every layer is tuned\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(json: &str) -> LayerSpec {
        let text = format!("{{\"model\": \"m\", \"layers\": [{json}]}}");
        crate::spec::parse("t.json", &text)
            .unwrap()
            .layers
            .remove(0)
    }

    #[test]
    fn candidates_start_with_the_model_and_are_distinct() {
        let options = Options::for_target(Target::from_triple("x86_64-unknown-linux-gnu").unwrap());
        let l = layer(
            r#"{"name": "a", "in_channels": 64, "out_channels": 64, "groups": 8,
                "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [28, 28]}"#,
        );
        let c = candidates(&l, &options);
        assert!(c[0].0.is_model());
        let prints: BTreeSet<String> = c.iter().map(|(_, p)| fingerprint(p)).collect();
        assert_eq!(prints.len(), c.len());
        let labels: Vec<String> = c.iter().map(|(c, _)| c.label()).collect();
        // kpg 8: gspc-oc with 1..8 channels per block and gspc-ow with 1..8; no gspc-dwc.
        assert!(labels.contains(&"gspc-oc oc4".to_string()), "{labels:?}");
        assert!(labels.contains(&"gspc-ow oc8".to_string()), "{labels:?}");
        assert!(
            !labels
                .iter()
                .any(|l| l.contains("dwc") || l.contains("oc16")),
            "{labels:?}"
        );
        // Groups side by side with a one-group plan (the model's) and without (`gspc-oc`
        // pinned) are different code: both are candidates.
        let gpv = layer(
            r#"{"name": "g", "in_channels": 256, "out_channels": 256, "groups": 32,
                "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [14, 14]}"#,
        );
        let c = candidates(&gpv, &options);
        assert!(c[0].1.one_group.is_some());
        let plain = c
            .iter()
            .find(|(c, _)| c.label() == "gspc-oc")
            .expect("gspc-oc");
        assert_eq!((plain.1.gpv, plain.1.one_group.is_none()), (2, true));
        // Compact code with the same tiles is the same code: not a candidate here; on a
        // depthwise layer the packed input makes other code than the direct kernel (and
        // compact code there has the packed plan's tiles: one candidate for both).
        assert!(!labels.contains(&"compact".to_string()), "{labels:?}");
        let dw = layer(
            r#"{"name": "d", "in_channels": 32, "out_channels": 32, "groups": 32,
                "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [40, 40]}"#,
        );
        let labels: Vec<String> = candidates(&dw, &options)
            .iter()
            .map(|(c, _)| c.label())
            .collect();
        assert_eq!(
            labels,
            [
                "model",
                "gspc-oc",
                "gspc-dwc",
                "packed",
                "gspc-oc acc12",
                "gspc-oc acc8",
                "gspc-dwc acc12",
                "gspc-dwc acc8"
            ]
        );
    }

    #[test]
    fn shapes_go_by_flops_times_count_and_share_a_signature() {
        let text = r#"{"model": "m", "layers": [
            {"name": "small", "in_channels": 16, "out_channels": 16, "groups": 16,
             "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8]},
            {"name": "big", "in_channels": 16, "out_channels": 16, "groups": 4,
             "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8]},
            {"name": "small_again", "in_channels": 16, "out_channels": 16, "groups": 16,
             "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8],
             "count": 9},
            {"name": "pinned", "in_channels": 16, "out_channels": 16, "groups": 2,
             "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8],
             "oc_block": 4}]}"#;
        let spec = crate::spec::parse("t.json", text).unwrap();
        let options = Options::for_target(Target::from_triple("x86_64-unknown-linux-gnu").unwrap());
        let sh = shapes(std::slice::from_ref(&spec), &options, &[]).unwrap();
        // Depthwise 18 432 FLOPs times 1 + 9 against grouped 73 728: depthwise first;
        // the pinned layer is not tuned.
        let names: Vec<&str> = sh.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["m.small", "m.big"]);
        assert_eq!(sh[0].weight, 10 * spec.layers[0].flops());
        let only = shapes(&[spec], &options, &["m.big".to_string()]).unwrap();
        assert_eq!(only.len(), 1);
    }

    #[test]
    fn int8_candidates_keep_their_quantization_and_have_int8_kernels_only() {
        let options = Options::for_target(Target::from_triple("x86_64-unknown-linux-gnu").unwrap());
        let q = r#""dtype": "int8", "quantization": {"requantization": "fixed",
            "input_scale": 0.0213, "input_zero_point": -3, "output_scale": 0.0517,
            "output_zero_point": 5, "weight_scales": [0.0041, 0.0033, 0.0029, 0.0057]}"#;
        let dw = layer(&format!(
            r#"{{"name": "d", "in_channels": 4, "out_channels": 4, "groups": 4,
                "kernel": [3, 3], "stride": [2, 2], "padding": [1, 1], "input": [13, 11], {q}}}"#
        ));
        let c = candidates(&dw, &options);
        let labels: Vec<String> = c.iter().map(|(c, _)| c.label()).collect();
        // gspc-oc and gspc-dwc (the model's), none of gspc-ow or the direct kernel, which
        // int8 has not; every plan an int8 one, with the layer's quantization exactly.
        assert!(c[0].0.is_model(), "{labels:?}");
        assert!(labels.contains(&"gspc-oc".to_string()), "{labels:?}");
        assert!(
            !labels
                .iter()
                .any(|l| l.contains("gspc-ow") || l.contains("packed")),
            "{labels:?}"
        );
        for (cand, plan) in &c {
            assert!(plan.quant.is_some(), "{}", cand.label());
            assert_eq!(plan.layer.quantization, dw.quantization, "{}", cand.label());
        }
        let prints: BTreeSet<String> = c.iter().map(|(_, p)| fingerprint(p)).collect();
        assert_eq!(prints.len(), c.len());
        // The shape is tuned under its own signature, not the f32 one.
        let text = format!(
            r#"{{"model": "m", "layers": [{}]}}"#,
            layer_spec_text_of(&dw)
        );
        let spec = crate::spec::parse("t.json", &text).unwrap();
        let sh = shapes(&[spec], &options, &[]).unwrap();
        assert_eq!(sh[0].signature, "g4c1k1_k3x3s2x2d1x1p1x1_13x11_i8_fixed");
    }

    #[test]
    fn int8_twins_are_tuned_under_their_own_signatures() {
        let f32_text = r#"{"model": "m", "layers": [
            {"name": "g", "in_channels": 16, "out_channels": 16, "groups": 4,
             "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8],
             "strategy": "gspc-ow"}]}"#;
        let int8_text = r#"{"model": "q", "layers": [
            {"name": "d", "in_channels": 16, "out_channels": 16, "groups": 16,
             "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8],
             "dtype": "int8", "quantization": {"requantization": "fixed",
             "input_scale": 0.02, "input_zero_point": 0, "output_scale": 0.05,
             "output_zero_point": 0, "weight_scales": 0.004}}]}"#;
        let specs = || {
            vec![
                crate::spec::parse("m.json", f32_text).unwrap(),
                crate::spec::parse("q.json", int8_text).unwrap(),
            ]
        };
        assert_eq!(with_twins(specs(), false).len(), 2);
        // The f32 spec gets a twin (its f32 pins dropped: tuned); the int8 one has none.
        let all = with_twins(specs(), true);
        let models: Vec<&str> = all.iter().map(|s| s.model.as_str()).collect();
        assert_eq!(models, ["m", "q", "m_int8"]);
        let options = Options::for_target(Target::from_triple("x86_64-unknown-linux-gnu").unwrap());
        let sigs: Vec<String> = shapes(&all, &options, &[])
            .unwrap()
            .into_iter()
            .map(|s| s.signature)
            .collect();
        assert!(
            sigs.contains(&"g4c4k4_k3x3s1x1d1x1p1x1_8x8_i8_fp32".to_string())
                && sigs.contains(&"g16c1k1_k3x3s1x1d1x1p1x1_8x8_i8_fixed".to_string())
                && sigs.len() == 2,
            "{sigs:?}"
        );
    }

    /// One layer of a spec as `layer_spec_text` writes it.
    fn layer_spec_text_of(l: &LayerSpec) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&layer_spec_text("m", std::slice::from_ref(l))).unwrap();
        v["layers"][0].to_string()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("20").unwrap(), Duration::from_secs(1200));
        for bad in ["", "1x", "m", "0s", "5m3", "307445734561825861"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(show_duration(Duration::from_secs(200)), "3m20s");
    }
}
