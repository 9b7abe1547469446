//! `gspc-codegen tune` end to end: candidates built into a batch program, checked and timed
//! on the device (this machine, or aarch64 under `qemu-aarch64` as the runner when
//! `GSPC_TUNE_QEMU=1`, as CI sets it), records appended and resumed from, and `plan` /
//! `generate --tuning` taking the tuned plans. The times are not judged here (they are
//! meaningless under QEMU and noisy on a shared machine): what is checked is that every
//! step ran and what it wrote.

mod common;

use assert_cmd::assert::Assert;
use common::{TempDir, gspc};
use gspc_codegen::tuning::{Database, Status};
use std::path::{Path, PathBuf};

/// Three small shapes: a grouped layer, a depthwise one (which has `gspc-dwc` too) and an
/// int8 grouped one (its candidates checked against the integer reference).
const SPEC: &str = r#"{"model": "small", "layers": [
  {"name": "grouped", "in_channels": 16, "out_channels": 32, "groups": 4,
   "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [9, 12], "bias": true},
  {"name": "quantized", "in_channels": 16, "out_channels": 16, "groups": 4,
   "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [7, 9], "bias": true,
   "activation": "relu", "dtype": "int8", "quantization": {"requantization": "fixed",
   "input_scale": 0.02, "input_zero_point": 3, "output_scale": 0.05,
   "output_zero_point": -2, "weight_scales": 0.004}},
  {"name": "dw", "in_channels": 16, "out_channels": 16, "groups": 16,
   "kernel": [3, 3], "stride": [2, 2], "padding": [1, 1], "input": [11, 10], "count": 2},
  {"name": "pinned", "in_channels": 16, "out_channels": 16, "groups": 16,
   "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [8, 8], "strategy": "gspc-oc"}
]}"#;

/// The batches' build directory, kept between test runs (the runtime is built once).
fn work() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("tune-work")
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("UTF-8 output")
}

fn out(r: &Assert) -> (&str, &str) {
    let o = r.get_output();
    (text(&o.stdout), text(&o.stderr))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// `tune` on the spec, with `extra` arguments.
fn tune(dir: &TempDir, db: &Path, extra: &[&str]) -> Assert {
    let spec = dir.path("small.json");
    std::fs::write(&spec, SPEC).expect("write the spec");
    let work = work();
    let mut args = vec![
        "tune",
        path(&spec),
        "--db",
        path(db),
        "--work",
        path(&work),
        "--rounds",
        "2",
    ];
    args.extend_from_slice(extra);
    gspc(&args)
}

/// The database's records, each checked: one key, and every shape with the cost model's
/// candidate timed.
fn check_records(db: &Path, threads: &[usize]) -> Database {
    let d = Database::read(db).expect("the database reads back");
    assert!(!d.records.is_empty());
    let cpu = &d.records[0].cpu;
    assert!(
        d.records
            .iter()
            .all(|r| &r.cpu == cpu && r.gspc == gspc_codegen::VERSION)
    );
    for sig in [
        "g4c4k8_k3x3s1x1d1x1p1x1_9x12",
        "g16c1k1_k3x3s2x2d1x1p1x1_11x10",
        "g4c4k4_k3x3s1x1d1x1p1x1_7x9_i8_fixed",
    ] {
        for t in threads {
            let model = d
                .records
                .iter()
                .find(|r| r.signature == sig && r.threads == *t && r.candidate.is_model());
            let m = model.unwrap_or_else(|| panic!("no model record for {sig} at {t}"));
            assert_eq!(m.status, Status::Ok);
            assert!(m.median_ns.unwrap() > 0.0 && m.samples == Some(2));
        }
        let n = d.records.iter().filter(|r| r.signature == sig).count();
        assert!(n >= 2 * threads.len(), "{sig}: {n} records");
    }
    // The pinned layer is the spec's: not tuned.
    assert!(!d.records.iter().any(|r| r.signature.ends_with("_8x8")));
    d
}

#[test]
fn tune_natively_resume_and_generate_from_the_database() {
    let dir = TempDir::new("tune");
    // In a directory that does not exist yet: tune makes it.
    let db = dir.path("tuning/db.jsonl");
    let r = tune(&dir, &db, &["--isa", "portable", "--threads", "1,2"]).success();
    let (stdout, stderr) = out(&r);
    assert!(stderr.contains("device CPU:"), "{stderr}");
    assert!(
        stderr.contains("best so far") && stderr.contains("ETA"),
        "{stderr}"
    );
    assert!(
        stdout.contains("model/tuned") && stdout.contains("small.pinned"),
        "{stdout}"
    );
    assert!(stdout.contains("pinned by the spec"), "{stdout}");
    let d = check_records(&db, &[1, 2]);
    let lines = d.records.len();

    // Resumed: nothing left to run, nothing appended.
    let r = tune(&dir, &db, &["--isa", "portable", "--threads", "1,2"]).success();
    let (_, stderr) = out(&r);
    assert!(stderr.contains("0 candidate(s) to run"), "{stderr}");
    assert_eq!(Database::read(&db).unwrap().records.len(), lines);

    // plan and generate take the tuned plans; the pinned layer keeps the spec's.
    let spec = dir.path("small.json");
    let plan = |extra: &[&str]| {
        let args = [
            &[
                "plan",
                path(&spec),
                "--isa",
                "portable",
                "--tuning",
                path(&db),
            ],
            extra,
        ];
        gspc(&args.concat()).success()
    };
    let r = plan(&[]);
    let (stdout, _) = out(&r);
    let by = |layer: &str| {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(layer))
            .unwrap_or_else(|| panic!("no row {layer}: {stdout}"));
        row.split_whitespace().nth(2).unwrap().to_string()
    };
    assert_eq!(
        (by("grouped"), by("dw"), by("quantized"), by("pinned")),
        (
            "tuned".into(),
            "tuned".into(),
            "tuned".into(),
            "spec".into()
        )
    );
    // generate with the records of 2 threads: the same code twice, the database named.
    let generate = |dest: &Path| {
        let r = gspc(&[
            "generate",
            path(&spec),
            "--out",
            path(dest),
            "--isa",
            "portable",
            "--tuning",
            path(&db),
            "--tuning-threads",
            "2",
        ])
        .success();
        assert!(out(&r).0.contains("small::dw  gspc-"), "{}", out(&r).0);
        std::fs::read_to_string(dest.join("small.rs")).unwrap()
    };
    let code = generate(&dir.path("gen"));
    let regen = code
        .lines()
        .find(|l| l.starts_with("// Regenerate:"))
        .unwrap();
    assert!(
        regen.contains(&format!("--tuning {}", path(&db)))
            && regen.contains("--cpu ")
            && regen.contains("--tuning-threads 2"),
        "{regen}"
    );
    assert_eq!(code, generate(&dir.path("gen2")));

    // Records of another CPU are left out with a note; the cost model plans.
    let r = plan(&["--cpu", "some other CPU"]);
    let (stdout, stderr) = out(&r);
    assert!(stderr.contains("left out: CPU"), "{stderr}");
    assert!(!stdout.contains("tuned"), "{stdout}");
}

#[test]
fn tune_refuses_bad_settings_and_databases() {
    let dir = TempDir::new("tune-bad");
    let db = dir.path("db.jsonl");
    let r = tune(&dir, &db, &["--target", "aarch64-unknown-linux-gnu"]).code(2);
    assert!(out(&r).1.contains("give --runner"), "{}", out(&r).1);
    let r = tune(&dir, &db, &["--layers", "nosuch"]).code(2);
    assert!(
        out(&r).1.contains("--layers nosuch: no layer"),
        "{}",
        out(&r).1
    );
    let r = tune(&dir, &db, &["--budget", "5x"]).code(2);
    assert!(out(&r).1.contains("not a unit"), "{}", out(&r).1);
    let r = tune(&dir, &db, &["--threads", "0"]).code(2);
    assert!(out(&r).1.contains("--threads"), "{}", out(&r).1);

    let spec = dir.path("small.json");
    let missing = dir.path("missing.jsonl");
    let r = gspc(&["plan", path(&spec), "--tuning", path(&missing)]).code(2);
    assert!(
        out(&r).1.contains("cannot read the tuning database"),
        "{}",
        out(&r).1
    );
    std::fs::write(&db, "{\"gspc\": 1}\n").unwrap();
    let r = gspc(&["plan", path(&spec), "--tuning", path(&db)]).code(2);
    assert!(
        out(&r).1.contains("line 1: not a tuning record"),
        "{}",
        out(&r).1
    );
    let r = gspc(&["plan", path(&spec), "--cpu", "x"]).code(2);
    assert!(out(&r).1.contains("--tuning"), "{}", out(&r).1);
}

/// The `--runner` path: aarch64 kernels built, checked and timed under `qemu-aarch64`, then
/// generation for aarch64 from the records (the only CPU the database has for aarch64).
/// Runs when `GSPC_TUNE_QEMU=1` (CI installs QEMU and the aarch64 linker and sets it).
#[test]
fn tune_through_a_runner_under_qemu() {
    if std::env::var("GSPC_TUNE_QEMU").as_deref() != Ok("1") {
        eprintln!("skipped: set GSPC_TUNE_QEMU=1 (needs qemu-aarch64 and aarch64-linux-gnu-gcc)");
        return;
    }
    let dir = TempDir::new("tune-qemu");
    let db = dir.path("db.jsonl");
    tune(
        &dir,
        &db,
        &[
            "--target",
            "aarch64-unknown-linux-gnu",
            "--runner",
            "qemu-aarch64 -L /usr/aarch64-linux-gnu",
            "--isa",
            "neon",
        ],
    )
    .success();
    let d = check_records(&db, &[1]);
    assert!(
        d.records
            .iter()
            .all(|r| r.target == "aarch64-unknown-linux-gnu")
    );
    assert!(
        d.records
            .iter()
            .filter(|r| r.status == Status::Ok)
            .all(|r| r.isa.as_deref() == Some("neon"))
    );
    let spec = dir.path("small.json");
    let r = gspc(&[
        "plan",
        path(&spec),
        "--target",
        "aarch64-unknown-linux-gnu",
        "--tuning",
        path(&db),
    ])
    .success();
    let (stdout, stderr) = out(&r);
    assert!(stderr.contains("the only CPU it has"), "{stderr}");
    assert!(stdout.contains("tuned"), "{stdout}");
}
