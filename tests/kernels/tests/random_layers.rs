//! Seeded random valid layers (see `build.rs`), every variant against the reference.

use gspc_runtime::check;

#[test]
fn random_layers_match_the_reference() {
    let model = gspc_kernel_tests::models::MODELS
        .iter()
        .find(|m| m.name == "random_layers")
        .expect("the random spec is compiled in");
    eprintln!(
        "random layers: {} from seed {} (replay: GSPC_RANDOM_SEED={} cargo test -p gspc-kernel-tests)",
        model.layers.len(),
        gspc_kernel_tests::RANDOM_SEED,
        gspc_kernel_tests::RANDOM_SEED
    );
    let mut all = Vec::new();
    let mut failures = Vec::new();
    for layer in model.layers {
        match check::check_layer(layer, check::seed_for(model.name, layer.info.name)) {
            Ok(c) => all.push(c),
            Err(e) => failures.push(format!(
                "{e}\n    {:?} strategy {}",
                layer.info, layer.strategy
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "seed {}: {} random layer(s) wrong:\n{}",
        gspc_kernel_tests::RANDOM_SEED,
        failures.len(),
        failures.join("\n")
    );
    if let Err(e) = check::enforce_required(&check::required_from_env(), &all) {
        panic!("{e}");
    }
}
