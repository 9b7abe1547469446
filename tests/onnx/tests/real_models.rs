//! Every imported layer of every real-network fixture (`fixtures/real/`, made by
//! scripts/make_real_fixtures.py) reproduces ONNX Runtime's value of its node inside the
//! whole model: each layer is run on ONNX Runtime's value of its input
//! (`ImportedLayer::input`), through the dispatcher, every compiled ISA variant and
//! `run_split`, and compared with ONNX Runtime's value of its output
//! (`ImportedLayer::output`: after the fused activation, and after whatever the importer
//! folded). `GSPC_REQUIRE_ISA` (e.g. `avx2,avx512`) turns a variant skipped for lack of CPU
//! support into a failure.

use gspc_onnx_tests::real::FIXTURES;
use gspc_onnx_tests::{Fixture, Layer, Model};
use gspc_runtime::{Error, LayerInfo};

/// Tolerance of one output value. f32 rounding error grows with the square root of the
/// reduction length `(in / groups) * KH * KW`, and with the size of the terms summed: the
/// value itself, or the layer's typical output (its root mean square, at least 1) where
/// the value is small from cancellation. A folded BatchNorm rounds differently from ONNX
/// Runtime's separate Conv and BatchNormalization; that too is relative to these terms.
fn tolerance(info: &LayerInfo, expected: f32, scale: f32) -> f32 {
    let n = info.reduction_len() as f32;
    1e-5 * (1.0 + n.sqrt()) * expected.abs().max(scale)
}

/// Root mean square of `v`, at least 1.
fn scale(v: &[f32]) -> f32 {
    let ms = v.iter().map(|x| (x * x) as f64).sum::<f64>() / v.len().max(1) as f64;
    (ms.sqrt() as f32).max(1.0)
}

/// Compares `got` with ONNX Runtime's `want` (NCHW, N = 1); names the first wrong value by
/// its (c, h, w), with the count of wrong values. Returns the largest error / tolerance.
fn compare(layer: &gspc_runtime::Layer, want: &[f32], got: &[f32]) -> Result<f32, String> {
    let info = &layer.info;
    if want.len() != got.len() {
        return Err(format!(
            "output length: ONNX Runtime {}, gspc {}",
            want.len(),
            got.len()
        ));
    }
    let [oh, ow] = info.output;
    let s = scale(want);
    let mut worst = 0.0f32;
    let mut first = None;
    let mut wrong = 0;
    for (i, (&e, &a)) in want.iter().zip(got).enumerate() {
        let tol = tolerance(info, e, s);
        let err = (e - a).abs();
        // Written so that a NaN on either side counts as wrong.
        if err <= tol {
            worst = worst.max(err / tol);
        } else {
            wrong += 1;
            first.get_or_insert((i / (oh * ow), i / ow % oh, i % ow, e, a, tol));
        }
    }
    match first {
        None => Ok(worst),
        Some((c, h, w, e, a, tol)) => Err(format!(
            "(c, h, w) = ({c}, {h}, {w}): ONNX Runtime {e}, gspc {a} (tolerance {tol}); {wrong} of {} values wrong",
            want.len()
        )),
    }
}

fn read_reference(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// What one fixture's check found.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    runs: usize,
    ran: Vec<String>,
    skipped: Vec<String>,
    worst: f32,
}

/// Runs every layer of `model` every way and compares each with ONNX Runtime's output.
fn check_model(fixture: &str, model: &Model, report: &mut Report) {
    let values = read_reference(model.reference);
    let value = |v: &gspc_onnx_tests::Value| &values[v.start..v.start + v.len];
    if model.layers.len() != model.checks.len() {
        report.failures.push(format!(
            "{fixture}: {} generated layers, {} imported",
            model.layers.len(),
            model.checks.len()
        ));
        return;
    }
    for (layer, check) in model.layers.iter().zip(model.checks) {
        let Layer {
            name,
            source,
            input,
            output,
        } = check;
        let at = format!(
            "{fixture}::{name} ({source}, {} -> {})",
            input.name, output.name
        );
        let mut fail =
            |what: &str, msg: String| report.failures.push(format!("{at} {what}: {msg}"));
        if layer.info.name != *name {
            fail("", format!("generated layer is {}", layer.info.name));
            continue;
        }
        if input.len != layer.input_len || output.len != layer.output_len {
            fail(
                "shape",
                format!(
                    "ONNX Runtime's input {:?} and output {:?} have {} and {} values, the layer takes {} and makes {}",
                    input.shape,
                    output.shape,
                    input.len,
                    output.len,
                    layer.input_len,
                    layer.output_len
                ),
            );
            continue;
        }
        let (x, want) = (value(input), value(output));
        let packed = layer.baked.expect("the build script bakes the weights");
        let mut scratch = vec![f32::NAN; 3 * layer.scratch_len.max(1)];
        let mut y = vec![f32::NAN; layer.output_len];

        let mut outcome = |what: &str, r: Result<(), Error>, y: &mut Vec<f32>| {
            match r
                .map_err(|e| e.to_string())
                .and_then(|()| compare(layer, want, y))
            {
                Ok(w) => {
                    report.worst = report.worst.max(w);
                    report.runs += 1;
                }
                Err(m) => report.failures.push(format!("{at} {what}: {m}")),
            }
            y.fill(f32::NAN);
        };
        let r = (layer.run)(x, packed, &mut y, &mut scratch[..layer.scratch_len]);
        outcome("run", r, &mut y);
        for v in layer.variants {
            match (v.run)(x, packed, &mut y, &mut scratch[..layer.scratch_len]) {
                Err(Error::Unsupported(_)) => report.skipped.push(v.isa.as_str().to_string()),
                r => {
                    report.ran.push(v.isa.as_str().to_string());
                    outcome(v.kernel, r, &mut y);
                }
            }
        }
        let r = (layer.run_split)(x, packed, &mut y, &mut scratch, 3);
        outcome("run_split(3)", r, &mut y);
    }
}

#[test]
fn every_imported_layer_matches_onnx_runtime_inside_the_model() {
    assert!(FIXTURES.len() >= 12, "fixtures/real/ has too few fixtures");
    let required = gspc_runtime::check::required_from_env();
    let mut failures = Vec::new();
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    let mut layers = 0;
    for Fixture {
        name,
        pending,
        left_out,
        model,
    } in FIXTURES
    {
        if let Some(why) = left_out {
            eprintln!("{name}: {why}");
            continue;
        }
        let model = match (model, pending) {
            (Ok(m), _) => m,
            (Err(e), Some(why)) => {
                eprintln!("{name}: pending ({why}), not imported: {}", first_line(e));
                continue;
            }
            (Err(e), None) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let mut report = Report::default();
        check_model(name, model, &mut report);
        layers += model.checks.len();
        eprintln!(
            "{name}: {} layers, {} runs, largest error {:.3} of the tolerance{}",
            model.checks.len(),
            report.runs,
            report.worst,
            if pending.is_some() {
                " (imports now: build.rs can drop its pending mark)"
            } else {
                ""
            }
        );
        failures.extend(report.failures);
        ran.extend(report.ran);
        skipped.extend(report.skipped);
    }
    for want in &required {
        if skipped.contains(want) {
            failures.push(format!(
                "GSPC_REQUIRE_ISA names {want}, but it was skipped: this CPU lacks it"
            ));
        } else if !ran.contains(want) {
            failures.push(format!(
                "GSPC_REQUIRE_ISA names {want}, but no layer has that variant for this target"
            ));
        }
    }
    assert!(layers > 0, "no fixture imported");
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The comparison catches a wrong value and names it.
#[test]
fn a_wrong_value_is_named() {
    let (fixture, model) = FIXTURES
        .iter()
        .find_map(|f| f.model.as_ref().ok().map(|m| (f.name, m)))
        .expect("a fixture imports");
    let values = read_reference(model.reference);
    let (layer, check) = (&model.layers[0], &model.checks[0]);
    let want = &values[check.output.start..check.output.start + check.output.len];
    assert!(compare(layer, want, want).is_ok(), "{fixture}");
    let [oh, ow] = layer.info.output;
    let i = (layer.info.out_channels - 1) * oh * ow + oh * ow - 1;
    let mut got = want.to_vec();
    got[i] += 1e-3 * scale(want) + want[i].abs() * 1e-3;
    let msg = compare(layer, want, &got).unwrap_err();
    let at = format!(
        "(c, h, w) = ({}, {}, {})",
        layer.info.out_channels - 1,
        oh - 1,
        ow - 1
    );
    assert!(msg.starts_with(&at), "{msg}");
    assert!(
        msg.ends_with(&format!("1 of {} values wrong", want.len())),
        "{msg}"
    );
}
