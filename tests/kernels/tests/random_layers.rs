//! Seeded random valid layers (see `build.rs`), every variant against the reference.

use gspc_runtime::check;

#[test]
fn random_layers_match_the_reference() {
    let models: Vec<_> = gspc_kernel_tests::models::MODELS
        .iter()
        .filter(|m| m.name == "random_layers")
        .collect();
    assert_eq!(models.len(), 1, "the random spec is compiled in");
    let seed = gspc_kernel_tests::RANDOM_SEED;
    eprintln!(
        "random layers: {} from seed {seed} (replay: GSPC_RANDOM_SEED={seed} cargo test -p gspc-kernel-tests)",
        models[0].layers.len()
    );
    let all = check::check_models(&models).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    if let Err(e) = check::enforce_required(&check::required_from_env(), &all) {
        panic!("{e}");
    }
}
