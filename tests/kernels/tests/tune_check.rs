//! The device side of tuning (`gspc_runtime::tune`) on real generated kernels: a correct
//! candidate is timed, and a planted candidate that computes wrong values is reported as
//! wrong and never timed (the generator never chooses a `wrong` record:
//! `gspc-codegen/src/tuning.rs`).

use gspc_kernel_tests::models::MODELS;
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

#[test]
fn a_planted_wrong_candidate_is_reported_wrong_and_not_timed() {
    let good = *real();
    let mut bad = good;
    bad.info.name = "planted";
    bad.run = wrong_run;
    let layers: &'static [Layer] = Box::leak(Box::new([good, bad]));
    let model = Model {
        name: "t0",
        spec_file: "planted",
        layers,
        qlayers: &[],
    };
    let settings = Settings {
        rounds: 2,
        sample_ms: 0.0,
        ..Settings::default()
    };
    let mut lines = Vec::new();
    run(&[model], &settings, &mut |l| lines.push(l.to_string()));
    assert!(lines[0].starts_with("{\"cpu\":"), "{lines:?}");
    let of = |name: &str| -> Vec<&String> {
        lines
            .iter()
            .filter(|l| l.contains(&format!("\"layer\":\"{name}\"")))
            .collect()
    };
    let (g, b) = (of(good.info.name), of("planted"));
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
    // The detail names the dispatching run, where the planted error is.
    assert!(b[0].contains("run, dispatching"), "{b:?}");
}
