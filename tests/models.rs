//! Every layer of every compiled-in model (the specs in `layer-specs/`, or `GSPC_SPECS`),
//! every ISA variant, checked against the naive reference. `GSPC_REQUIRE_ISA` (e.g.
//! `avx2,avx512`) turns a variant skipped for lack of CPU support into a failure.

use gspc::runtime::check;

#[test]
fn every_layer_of_every_model_matches_the_reference() {
    let models: Vec<_> = gspc::models::MODELS.iter().collect();
    let all = check::check_models(&models).unwrap_or_else(|e| panic!("{e}"));
    assert!(!all.is_empty(), "no layers compiled in");
    let skipped: usize = all.iter().map(|c| c.skipped.len()).sum();
    let runs: usize = all.iter().map(|c| c.ran.len()).sum();
    eprintln!(
        "checked {} layers of {} models: {runs} variant runs, {skipped} skipped for lack of CPU support",
        all.len(),
        models.len()
    );
    if let Err(e) = check::enforce_required(&check::required_from_env(), &all) {
        panic!("{e}");
    }
}
