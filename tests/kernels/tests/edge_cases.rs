//! Edge-case shapes (1x1 to 15x1 kernels, strides 2 and 3, dilation, padding 0 to 3,
//! non-square inputs, prime channel counts per group, depthwise with and without channel
//! multiplier, bias with each activation, 1x1 outputs, pinned strategies): every variant
//! against the reference.

use gspc_runtime::check;

#[test]
fn edge_case_layers_match_the_reference() {
    let models: Vec<_> = gspc_kernel_tests::models::MODELS
        .iter()
        .filter(|m| !m.name.starts_with("random_layers"))
        .collect();
    let all = check::check_models(&models).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        all.len() >= 20,
        "expected the edge-case spec's layers, got {}",
        all.len()
    );
    let required = check::required_from_env();
    if let Err(e) = check::enforce_required(&required, &all) {
        panic!("{e}");
    }
    // The spec has layers whose AVX2 variant the dispatcher prefers where AVX-512 runs at
    // half rate (plan::avx2_at_half_rate): with AVX-512 required, one of them must have run
    // so.
    if required.iter().any(|r| r == "avx512") {
        assert!(
            all.iter().any(|c| c.avx2_at_half_rate),
            "no edge-case layer dispatched to AVX2 with AVX-512 set to half rate"
        );
    }
}
