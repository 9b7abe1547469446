//! Edge-case shapes (1x1 to 15x1 kernels, strides 2 and 3, dilation, padding 0 to 3,
//! non-square inputs, prime channel counts per group, depthwise with and without channel
//! multiplier, bias with each activation, 1x1 outputs): every variant against the
//! reference.

use gspc_runtime::check;

#[test]
fn edge_case_layers_match_the_reference() {
    let mut all = Vec::new();
    let mut failures = Vec::new();
    for model in gspc_kernel_tests::models::MODELS
        .iter()
        .filter(|m| m.name != "random_layers")
    {
        for layer in model.layers {
            match check::check_layer(layer, check::seed_for(model.name, layer.info.name)) {
                Ok(c) => all.push(c),
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
    assert!(
        all.len() >= 20,
        "expected the edge-case spec's layers, got {}",
        all.len()
    );
    if let Err(e) = check::enforce_required(&check::required_from_env(), &all) {
        panic!("{e}");
    }
}
