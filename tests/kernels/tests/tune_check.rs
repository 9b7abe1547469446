//! The device side of tuning (`gspc_runtime::tune`) on real generated kernels: a correct
//! candidate is timed, and a planted candidate that computes wrong values is reported as
//! wrong and never timed (the generator never chooses a `wrong` record:
//! `gspc-codegen/src/tuning.rs`); f32 candidates and int8 ones.

use gspc_kernel_tests::models::MODELS;
use gspc_runtime::qlayer::QLayer;
use gspc_runtime::tune::{Settings, run};
use gspc_runtime::{Error, Layer, Model};

/// The first edge-case layer: the one the planted candidate wraps.
fn real() -> &'static Layer {
    &MODELS[0].layers[0]
}

/// The real layer's dispatching `run`, then one output value changed: a kernel with a bug.
fn wrong_run(i: &[f32], p: &[f32], o: &mut [f32], s: &mut [f32]) -> Result<(), Error> {
    (real().run)(i, p, o, s)?;
    let last = o.len() - 1;
    o[last] += 0.5;
    Ok(())
}

/// The first int8 edge-case layer.
fn real_q() -> &'static QLayer {
    gspc_kernel_tests::int8_models::MODELS
        .iter()
        .flat_map(|m| m.qlayers.iter())
        .next()
        .expect("the kernel tests have int8 layers")
}

/// The real int8 layer's dispatching `run`, then one output value off by one.
fn wrong_qrun(i: &[i8], p: &[i32], o: &mut [i8], s: &mut [i32]) -> Result<(), Error> {
    (real_q().run)(i, p, o, s)?;
    let last = o.len() - 1;
    o[last] = o[last].wrapping_add(1);
    Ok(())
}

/// The lines a tuning batch of `model` prints (2 rounds, the least sample time).
fn run_batch(model: Model) -> Vec<String> {
    let settings = Settings {
        rounds: 2,
        sample_ms: 0.0,
        ..Settings::default()
    };
    let mut lines = Vec::new();
    run(&[model], &settings, &mut |l| lines.push(l.to_string()));
    assert!(lines[0].starts_with("{\"cpu\":"), "{lines:?}");
    lines
}

/// Checks that the candidate `good` was timed (one line, two samples) and the one named
/// `planted` was reported wrong and not timed; returns the planted one's line.
fn one_ok_one_wrong<'a>(lines: &'a [String], good: &str) -> &'a str {
    let of = |name: &str| -> Vec<&'a String> {
        lines
            .iter()
            .filter(|l| l.contains(&format!("\"layer\":\"{name}\"")))
            .collect()
    };
    let (g, b) = (of(good), of("planted"));
    assert_eq!(g.len(), 1, "{lines:?}");
    assert!(
        g[0].contains("\"status\":\"ok\"") && g[0].contains("\"samples\":2"),
        "{g:?}"
    );
    assert_eq!(b.len(), 1, "{lines:?}");
    assert!(
        b[0].contains("\"status\":\"wrong\"") && !b[0].contains("median_ns"),
        "{b:?}"
    );
    b[0]
}

#[test]
fn a_planted_wrong_candidate_is_reported_wrong_and_not_timed() {
    let good = *real();
    let mut bad = good;
    bad.info.name = "planted";
    bad.run = wrong_run;
    let layers: &'static [Layer] = Box::leak(Box::new([good, bad]));
    let lines = run_batch(Model {
        name: "t0",
        spec_file: "planted",
        layers,
        qlayers: &[],
    });
    let b = one_ok_one_wrong(&lines, good.info.name);
    // The detail names the dispatching run, where the planted error is.
    assert!(b.contains("run, dispatching"), "{b:?}");
}

#[test]
fn a_planted_wrong_int8_candidate_is_reported_wrong_and_not_timed() {
    let good = *real_q();
    let mut bad = good;
    bad.info.name = "planted";
    bad.run = wrong_qrun;
    let qlayers: &'static [QLayer] = Box::leak(Box::new([good, bad]));
    let lines = run_batch(Model {
        name: "t0",
        spec_file: "planted",
        layers: &[],
        qlayers,
    });
    let b = one_ok_one_wrong(&lines, good.info.name);
    // The integer reference's check names the dispatching run, where the planted error is.
    assert!(b.contains("(run)"), "{b:?}");
}
