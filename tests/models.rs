//! Every layer of every compiled-in model (the specs in `layer-specs/`, or `GSPC_SPECS`),
//! every ISA variant, checked against the naive reference. `GSPC_REQUIRE_ISA` (e.g.
//! `avx2,avx512`) turns a variant skipped for lack of CPU support into a failure.

use gspc::runtime::check;

#[test]
fn every_layer_of_every_model_matches_the_reference() {
    let mut all = Vec::new();
    let mut failures = Vec::new();
    for model in gspc::models::MODELS {
        for layer in model.layers {
            match check::check_layer(layer, check::seed_for(model.name, layer.info.name)) {
                Ok(c) => {
                    for isa in &c.skipped {
                        eprintln!(
                            "{}::{}: skipped {isa}: this CPU lacks it",
                            model.name, layer.info.name
                        );
                    }
                    all.push(c);
                }
                Err(e) => failures.push(format!("{}::{e}", model.name)),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} layer(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(!all.is_empty(), "no layers compiled in");
    let runs: usize = all.iter().map(|c| c.ran.len()).sum();
    eprintln!(
        "checked {} layers of {} models: {runs} variant runs",
        all.len(),
        gspc::models::MODELS.len()
    );
    if let Err(e) = check::enforce_required(&check::required_from_env(), &all) {
        panic!("{e}");
    }
}
