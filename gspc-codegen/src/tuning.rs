//! The tuning database: JSON lines that `gspc-codegen tune` appends, one per candidate
//! plan timed (or found wrong) on a device, and the choice generation takes from them.
//!
//! A record's key is the generator version, the target triple, the CPU (as the device names
//! itself: `gspc_runtime::tune::cpu_name`), the layer's signature ([`signature`]: its
//! shape, and for int8 layers the element type and requantization mode) and the thread
//! count. Generation ([`crate::Options::tuning`]) reads the
//! records of one version, target, CPU and thread count, and for each layer that pins
//! nothing itself takes the fastest candidate that computed the right values; a layer with
//! no record keeps the cost model's plan. Records of other versions, targets or CPUs are
//! never applied: [`Tuning::notes`] says how many were left out and why.
//!
//! ```text
//! {"gspc":"0.1.0","target":"x86_64-unknown-linux-gnu","cpu":"AMD EPYC (family 26, model 2)",
//!  "signature":"g8c8k8_k3x3s1x1d1x1p1x1_56x56","threads":1,"layer":"resnet34_g8.s1_c64_56",
//!  "candidate":{"strategy":"gspc-oc","oc_block":8,"compact":false},"model_choice":false,
//!  "status":"ok","isa":"avx512","median_ns":41250.0,"min_ns":40811.0,"max_ns":43002.0,
//!  "samples":7}
//! ```
//! (one line per record; wrapped here).

use crate::error::{Diagnostic, Error, FileOp};
use crate::spec::{LayerSpec, Strategy};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The tuning signature of a layer: its [`shape_signature`], and for an int8 layer
/// `_i8_` and its requantization mode (`..._i8_fp32`, `..._i8_fixed`): int8 kernels are
/// other code than the f32 ones of the same shape, and the two modes end in other
/// epilogues. Records are looked up by it.
pub fn signature(l: &LayerSpec) -> String {
    match &l.quantization {
        None => shape_signature(l),
        Some(q) => format!("{}_i8_{}", shape_signature(l), q.requantization.as_str()),
    }
}

/// The shape signature of a layer: what makes two layers the same kernel problem, as the
/// kernel names state it (`g{G}c{C/G}k{K/G}_k{KH}x{KW}s..d..p.._{H}x{W}`; bias and
/// activation change only the store, not the choice of plan).
pub fn shape_signature(l: &LayerSpec) -> String {
    format!(
        "g{}c{}k{}_k{}x{}s{}x{}d{}x{}p{}x{}_{}x{}",
        l.groups,
        l.in_per_group(),
        l.out_per_group(),
        l.kernel[0],
        l.kernel[1],
        l.stride[0],
        l.stride[1],
        l.dilation[0],
        l.dilation[1],
        l.padding[0],
        l.padding[1],
        l.input[0],
        l.input[1],
    )
}

/// A candidate plan, as the pins a spec could give (`"strategy"`, `"oc_block"`,
/// `"compact"`); no pins at all is the cost model's own choice.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Candidate {
    /// Strategy, or the cost model's.
    pub strategy: Option<String>,
    /// `oc_block`, or the cost model's for the strategy.
    pub oc_block: Option<usize>,
    /// Compact code.
    #[serde(default)]
    pub compact: bool,
    /// `Some(false)`: the input always packed (`"direct": false`); `None`: the cost
    /// model's choice of direct kernels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct: Option<bool>,
    /// Accumulator registers of a tile, at most (`"accumulators"`): narrower tiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accumulators: Option<usize>,
}

impl Candidate {
    /// The cost model's choice: nothing pinned.
    pub fn model() -> Candidate {
        Candidate::default()
    }

    /// Whether this is the cost model's choice.
    pub fn is_model(&self) -> bool {
        *self == Candidate::model()
    }

    /// The strategy it pins, if any (`None` also for a name this version does not know).
    pub fn strategy(&self) -> Option<Strategy> {
        self.strategy.as_deref().and_then(Strategy::from_name)
    }

    /// Short form for reports: `model`, `gspc-oc`, `gspc-ow oc4`, `gspc-oc oc16 compact`.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.strategy {
            parts.push(s.clone());
        }
        if let Some(b) = self.oc_block {
            parts.push(format!("oc{b}"));
        }
        if self.compact {
            parts.push("compact".to_string());
        }
        if self.direct == Some(false) {
            parts.push("packed".to_string());
        }
        if let Some(a) = self.accumulators {
            parts.push(format!("acc{a}"));
        }
        if parts.is_empty() {
            "model".to_string()
        } else {
            parts.join(" ")
        }
    }

    /// `layer` with this candidate's pins.
    pub fn apply(&self, layer: &LayerSpec) -> LayerSpec {
        LayerSpec {
            strategy: self.strategy(),
            oc_block: self.oc_block,
            compact: self.compact.then_some(true),
            direct: self.direct,
            accumulators: self.accumulators,
            ..layer.clone()
        }
    }
}

/// What a candidate did on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It matched the reference and was timed.
    Ok,
    /// It computed wrong values: never chosen.
    Wrong,
}

/// One line of the database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Generator version ([`crate::VERSION`]).
    pub gspc: String,
    /// Target triple.
    pub target: String,
    /// The CPU, as the device names itself.
    pub cpu: String,
    /// [`signature`] of the layer.
    pub signature: String,
    /// Threads (`run_parallel`'s count; 1: `run`); 0 for a wrong candidate (every count).
    pub threads: usize,
    /// The first layer with this shape, `model.layer` (for reports only).
    pub layer: String,
    /// The plan.
    pub candidate: Candidate,
    /// Whether it is the cost model's choice for this generator version.
    pub model_choice: bool,
    /// Result.
    pub status: Status,
    /// The variant the dispatcher ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isa: Option<String>,
    /// Median, fastest and slowest sample, ns per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_ns: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ns: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ns: Option<f64>,
    /// Samples behind the median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// Why a wrong candidate was wrong (the first mismatch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Record {
    /// The time of an `ok` record.
    pub fn time_ns(&self) -> Option<f64> {
        match self.status {
            Status::Ok => self.median_ns.filter(|t| t.is_finite() && *t > 0.0),
            Status::Wrong => None,
        }
    }
}

/// The records of a database file, in file order, and notes on what was skipped.
#[derive(Clone, Debug, Default)]
pub struct Database {
    /// The file, as named.
    pub file: String,
    /// Every record.
    pub records: Vec<Record>,
    /// What reading left out (an interrupted last line).
    pub notes: Vec<String>,
}

impl Database {
    /// Reads a database file.
    pub fn read(path: &std::path::Path) -> Result<Database, Error> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Database::parse(&file, &text),
            Err(e) => Err(Error::io(file, FileOp::ReadTuning, e)),
        }
    }

    /// [`Database::read`], but a file that does not exist yet is an empty database (what
    /// `tune` starts from).
    pub fn read_or_empty(path: &std::path::Path) -> Result<Database, Error> {
        if path.exists() {
            Database::read(path)
        } else {
            Ok(Database {
                file: path.display().to_string(),
                ..Database::default()
            })
        }
    }

    /// Parses database text: every malformed line is an error naming it, but an unfinished
    /// last line (no newline: the run that wrote it was interrupted), which is left out
    /// with a note.
    pub fn parse(file: &str, text: &str) -> Result<Database, Error> {
        let mut db = Database {
            file: file.to_string(),
            ..Database::default()
        };
        let mut problems = Vec::new();
        let lines: Vec<&str> = text.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(line) {
                Ok(r) => db.records.push(r),
                Err(_) if i + 1 == lines.len() => db.notes.push(format!(
                    "{file}:{}: an unfinished last line (an interrupted run) was left out",
                    i + 1
                )),
                Err(e) => problems.push(Diagnostic {
                    file: file.to_string(),
                    path: format!("line {}", i + 1),
                    message: format!("not a tuning record: {e}"),
                }),
            }
        }
        if problems.is_empty() {
            Ok(db)
        } else {
            Err(Error::Invalid(problems))
        }
    }

    /// The CPUs with records for this generator version and target.
    pub fn cpus(&self, target: &str) -> Vec<String> {
        let mut cpus: Vec<String> = self
            .records
            .iter()
            .filter(|r| r.gspc == crate::VERSION && r.target == target)
            .map(|r| r.cpu.clone())
            .collect();
        cpus.sort();
        cpus.dedup();
        cpus
    }
}

/// The key generation matches records on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// Target triple.
    pub target: String,
    /// CPU name.
    pub cpu: String,
    /// Threads.
    pub threads: usize,
}

/// A layer's tuned choice.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuned {
    /// The fastest correct candidate.
    pub candidate: Candidate,
    /// Its median time, ns.
    pub time_ns: f64,
    /// The cost model's candidate's median time, ns, when it was timed.
    pub model_ns: Option<f64>,
}

/// The choices a database gives for one key: what generation applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// The database file, as named (for the `Regenerate:` line).
    pub file: String,
    /// The key.
    pub key: Key,
    /// Best candidate per shape signature.
    pub best: BTreeMap<String, Tuned>,
    /// What was left out, and why.
    pub notes: Vec<String>,
}

impl Tuning {
    /// The choices of `db` for `key`: per signature, the correct candidate with the least
    /// median time (the cost model's on a tie, then the first label in order, so the same
    /// database always gives the same code). A candidate with any `wrong` record is never
    /// chosen.
    pub fn from_database(db: &Database, key: Key) -> Tuning {
        let mut notes = db.notes.clone();
        let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
        let mut matching = Vec::new();
        for r in &db.records {
            let why = if r.gspc != crate::VERSION {
                format!("generator version {} (this is {})", r.gspc, crate::VERSION)
            } else if r.target != key.target {
                format!("target {}", r.target)
            } else if r.cpu != key.cpu {
                format!("CPU {:?}", r.cpu)
            } else if r.status == Status::Ok && r.threads != key.threads {
                format!("{} thread(s)", r.threads)
            } else {
                matching.push(r);
                continue;
            };
            *skipped.entry(why).or_default() += 1;
        }
        for (why, n) in skipped {
            notes.push(format!(
                "{}: {n} record(s) left out: {why}, not {} on {:?} at {} thread(s)",
                db.file, key.target, key.cpu, key.threads
            ));
        }
        let wrong: BTreeSet<(&str, &Candidate)> = matching
            .iter()
            .filter(|r| r.status == Status::Wrong)
            .map(|r| (r.signature.as_str(), &r.candidate))
            .collect();
        // The latest record of each (signature, candidate) counts (a re-run replaces).
        let mut latest: BTreeMap<(&str, &Candidate), f64> = BTreeMap::new();
        for r in &matching {
            if let Some(t) = r.time_ns() {
                latest.insert((&r.signature, &r.candidate), t);
            }
        }
        let mut best: BTreeMap<String, Tuned> = BTreeMap::new();
        for ((sig, cand), t) in latest.iter().map(|(k, t)| (*k, *t)) {
            if wrong.contains(&(sig, cand)) {
                continue;
            }
            let model_ns = latest.get(&(sig, &Candidate::model())).copied();
            let better = |b: &Tuned| {
                t < b.time_ns || t == b.time_ns && cand.is_model() && !b.candidate.is_model()
            };
            match best.get_mut(sig) {
                Some(b) if !better(b) => {}
                _ => {
                    best.insert(
                        sig.to_string(),
                        Tuned {
                            candidate: cand.clone(),
                            time_ns: t,
                            model_ns,
                        },
                    );
                }
            }
        }
        Tuning {
            file: db.file.clone(),
            key,
            best,
            notes,
        }
    }

    /// Reads `path` and takes its choices for `key`.
    pub fn load(path: &std::path::Path, key: Key) -> Result<Tuning, Error> {
        Ok(Tuning::from_database(&Database::read(path)?, key))
    }

    /// The tuned choice for a layer, if the database has one.
    pub fn choice(&self, layer: &LayerSpec) -> Option<&Tuned> {
        self.best.get(&signature(layer))
    }
}

/// The CPU whose records generation takes: `explicit` (`--cpu`), else this machine's when
/// the code is for this machine, else the only CPU the database has for the target (with a
/// note). Several CPUs and none chosen is an error.
pub fn choose_cpu(
    db: &Database,
    target: &str,
    explicit: Option<&str>,
    host: Option<String>,
) -> Result<(String, Option<String>), Error> {
    if let Some(c) = explicit {
        return Ok((c.to_string(), None));
    }
    if let Some(h) = host {
        return Ok((h, None));
    }
    let cpus = db.cpus(target);
    match cpus.as_slice() {
        [] => Ok((
            "unknown".to_string(),
            Some(format!(
                "{}: no records for target {target} and generator version {}: the cost model plans every layer",
                db.file,
                crate::VERSION
            )),
        )),
        [one] => Ok((
            one.clone(),
            Some(format!(
                "{}: using the records of {one:?}, the only CPU it has for {target}",
                db.file
            )),
        )),
        many => Err(Error::option(
            crate::error::Setting::Cpu,
            format!(
                "{} has records of several CPUs for {target} ({}); name one with --cpu (GSPC_CPU in a build script)",
                db.file,
                many.iter()
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Where generation takes its tuned plans from: a database file, and optionally the CPU
/// and thread count whose records to use (default: this machine's CPU when the code is for
/// this machine, see [`choose_cpu`]; 1 thread).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The database file.
    pub file: std::path::PathBuf,
    /// The CPU (`--cpu`).
    pub cpu: Option<String>,
    /// Threads (`--tuning-threads`).
    pub threads: usize,
}

impl Source {
    /// Reads the database and takes its choices for code compiled for `target`.
    pub fn load(&self, target: &crate::Target) -> Result<Tuning, Error> {
        let (triple, this_machine) = resolve_triple(target.triple.as_deref())?;
        let db = Database::read(&self.file)?;
        let local = this_machine.then(gspc_runtime::tune::cpu_name);
        let (cpu, note) = choose_cpu(&db, &triple, self.cpu.as_deref(), local)?;
        let mut t = Tuning::from_database(
            &db,
            Key {
                target: triple,
                cpu,
                threads: self.threads,
            },
        );
        t.notes.extend(note);
        Ok(t)
    }
}

/// The triple of a target (`None`: this machine's, see [`host_triple`]), and whether it is
/// this machine's.
pub fn resolve_triple(given: Option<&str>) -> Result<(String, bool), Error> {
    let host = host_triple();
    let triple = match (given, &host) {
        (Some(t), _) => t.to_string(),
        (None, Some(h)) => h.clone(),
        (None, None) => {
            return Err(Error::option(
                crate::error::Setting::Target,
                "this machine's target triple is unknown (rustc -vV did not tell it); give the target",
            ));
        }
    };
    let this_machine = host.as_deref() == Some(triple.as_str());
    Ok((triple, this_machine))
}

/// The target triple of the machine this runs on: Cargo's `HOST` in a build script, else
/// what `rustc -vV` says (`RUSTC` if set); `None` when neither tells.
pub fn host_triple() -> Option<String> {
    if let Ok(h) = std::env::var("HOST") {
        return Some(h);
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(rustc).arg("-vV").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(sig: &str, cand: Candidate, threads: usize, t: Option<f64>) -> Record {
        Record {
            gspc: crate::VERSION.to_string(),
            target: "x86_64-unknown-linux-gnu".to_string(),
            cpu: "cpu A".to_string(),
            signature: sig.to_string(),
            threads,
            layer: "m.l".to_string(),
            model_choice: cand.is_model(),
            candidate: cand,
            status: if t.is_some() {
                Status::Ok
            } else {
                Status::Wrong
            },
            isa: None,
            median_ns: t,
            min_ns: t,
            max_ns: t,
            samples: Some(3),
            detail: None,
        }
    }

    fn oc(b: usize) -> Candidate {
        Candidate {
            strategy: Some("gspc-oc".to_string()),
            oc_block: Some(b),
            ..Candidate::model()
        }
    }

    fn key(threads: usize) -> Key {
        Key {
            target: "x86_64-unknown-linux-gnu".to_string(),
            cpu: "cpu A".to_string(),
            threads,
        }
    }

    #[test]
    fn int8_layers_have_their_own_signature_per_requantization() {
        let layer = |extra: &str| {
            let text = format!(
                r#"{{"model": "m", "layers": [{{"name": "l", "in_channels": 8, "out_channels": 8,
                "groups": 2, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1],
                "input": [6, 7]{extra}}}]}}"#
            );
            crate::spec::parse("t.json", &text)
                .unwrap()
                .layers
                .remove(0)
        };
        let q = |mode: &str| {
            format!(
                r#", "dtype": "int8", "quantization": {{"requantization": "{mode}",
                "input_scale": 0.02, "input_zero_point": 0, "output_scale": 0.05,
                "output_zero_point": 0, "weight_scales": 0.004}}"#
            )
        };
        let (f32, fp32, fixed) = (layer(""), layer(&q("fp32")), layer(&q("fixed")));
        assert_eq!(signature(&f32), "g2c4k4_k3x3s1x1d1x1p1x1_6x7");
        assert_eq!(signature(&fp32), "g2c4k4_k3x3s1x1d1x1p1x1_6x7_i8_fp32");
        assert_eq!(signature(&fixed), "g2c4k4_k3x3s1x1d1x1p1x1_6x7_i8_fixed");
        // The kernel names keep the shape alone (the element type is their prefix).
        assert_eq!(shape_signature(&fixed), signature(&f32));
        // A record of the f32 shape is not applied to the int8 layer, nor one of the other
        // mode.
        let t = Tuning::from_database(
            &db(vec![
                rec(&signature(&f32), oc(2), 1, Some(5.0)),
                rec(&signature(&fixed), oc(4), 1, Some(9.0)),
            ]),
            key(1),
        );
        assert_eq!(t.choice(&f32).unwrap().candidate, oc(2));
        assert_eq!(t.choice(&fixed).unwrap().candidate, oc(4));
        assert!(t.choice(&fp32).is_none());
    }

    fn db(records: Vec<Record>) -> Database {
        Database {
            file: "db.jsonl".to_string(),
            records,
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_fastest_correct_candidate_wins_and_wrong_ones_never_do() {
        let d = db(vec![
            rec("s1", Candidate::model(), 1, Some(100.0)),
            rec("s1", oc(8), 1, Some(80.0)),
            // Faster, but computed wrong values on the device.
            rec("s1", oc(16), 1, Some(10.0)),
            rec("s1", oc(16), 0, None),
            rec("s2", Candidate::model(), 1, Some(50.0)),
            rec("s2", oc(4), 1, Some(50.0)),
            rec("s2", oc(8), 2, Some(1.0)),
        ]);
        let t = Tuning::from_database(&d, key(1));
        let s1 = &t.best["s1"];
        assert_eq!(
            (s1.candidate.clone(), s1.time_ns, s1.model_ns),
            (oc(8), 80.0, Some(100.0))
        );
        // A tie goes to the cost model; records at other thread counts do not count.
        assert!(t.best["s2"].candidate.is_model());
        assert!(
            t.notes
                .iter()
                .any(|n| n.contains("1 record(s) left out: 2 thread(s)"))
        );
    }

    #[test]
    fn other_versions_targets_and_cpus_are_left_out_with_a_note() {
        let mut old = rec("s1", oc(8), 1, Some(1.0));
        old.gspc = "0.0.1".to_string();
        let mut arm = rec("s1", oc(8), 1, Some(1.0));
        arm.target = "aarch64-unknown-linux-gnu".to_string();
        let mut other = rec("s1", oc(8), 1, Some(1.0));
        other.cpu = "cpu B".to_string();
        let t = Tuning::from_database(&db(vec![old, arm, other]), key(1));
        assert!(t.best.is_empty());
        assert_eq!(t.notes.len(), 3, "{:?}", t.notes);
        assert!(t.notes[0].contains("CPU \"cpu B\""), "{:?}", t.notes);
    }

    #[test]
    fn parse_refuses_bad_lines_but_an_unfinished_last_one() {
        let good = serde_json::to_string(&rec("s1", oc(8), 1, Some(3.0))).unwrap();
        let d = Database::parse("db", &format!("{good}\n{{\"gspc\":")).unwrap();
        assert_eq!(d.records.len(), 1);
        assert!(d.notes[0].contains("db:2: an unfinished last line"));
        let e = Database::parse("db", &format!("{{}}\n{good}\n")).unwrap_err();
        assert!(
            e.to_string().starts_with("db: line 1: not a tuning record"),
            "{e}"
        );
    }

    #[test]
    fn cpu_choice() {
        let d = db(vec![rec("s1", oc(8), 1, Some(1.0))]);
        let t = "x86_64-unknown-linux-gnu";
        assert_eq!(choose_cpu(&d, t, Some("X"), None).unwrap().0, "X");
        assert_eq!(choose_cpu(&d, t, None, Some("H".into())).unwrap().0, "H");
        let (cpu, note) = choose_cpu(&d, t, None, None).unwrap();
        assert_eq!(cpu, "cpu A");
        assert!(note.unwrap().contains("the only CPU"));
        let mut b = rec("s1", oc(8), 1, Some(1.0));
        b.cpu = "cpu B".to_string();
        let two = db(vec![rec("s1", oc(8), 1, Some(1.0)), b]);
        assert!(choose_cpu(&two, t, None, None).is_err());
    }
}
