//! Seeded random valid layers (see `build.rs`), every variant against the reference.

use gspc_runtime::{Activation, Layer, check};
use std::io::Write;

/// What the random layers must cover once there are at least [`COVERAGE_FROM`] of them
/// (the default count): each missing item is named.
fn missing_coverage(layers: &[Layer]) -> Vec<String> {
    let mut missing = Vec::new();
    let mut need = |what: String, ok: bool| {
        if !ok {
            missing.push(what);
        }
    };
    for s in ["gspc-oc", "gspc-ow"] {
        need(
            format!("strategy {s}"),
            layers.iter().any(|l| l.strategy == s),
        );
    }
    let axes = |f: fn(&Layer) -> [usize; 2], v: usize| {
        layers.iter().any(|l| f(l)[0] == v) && layers.iter().any(|l| f(l)[1] == v)
    };
    for k in 1..=7 {
        need(
            format!("kernel {k}"),
            layers.iter().any(|l| l.info.kernel.contains(&k)),
        );
    }
    for s in 1..=3 {
        need(
            format!("stride {s} on both axes"),
            axes(|l| l.info.stride, s),
        );
        need(
            format!("dilation {s} on both axes"),
            axes(|l| l.info.dilation, s),
        );
    }
    for p in 0..=3 {
        need(
            format!("padding {p} on both axes"),
            axes(|l| l.info.padding, p),
        );
    }
    need(
        "a non-square input".into(),
        layers.iter().any(|l| l.info.input[0] != l.info.input[1]),
    );
    need(
        "depthwise with a channel multiplier".into(),
        layers
            .iter()
            .any(|l| l.info.in_per_group() == 1 && l.info.out_per_group() > 1),
    );
    for s in 1..=2 {
        need(
            format!("depthwise gspc-ow, 16+ columns, column stride {s} (direct on AVX-512)"),
            layers.iter().any(|l| {
                l.strategy == "gspc-ow"
                    && l.info.in_per_group() == 1
                    && l.info.out_per_group() == 1
                    && l.info.output[1] >= 16
                    && l.info.stride[1] == s
            }),
        );
    }
    need(
        "depthwise gspc-ow, rows narrower than 16 (direct on AVX-512)".into(),
        layers.iter().any(|l| {
            l.strategy == "gspc-ow"
                && l.info.in_per_group() == 1
                && l.info.out_per_group() == 1
                && l.info.output[1] < 16
        }),
    );
    need(
        "gspc-dwc with a kernel of 5 or more on an axis (taps over the padding left out)".into(),
        layers
            .iter()
            .any(|l| l.strategy == "gspc-dwc" && l.info.kernel.iter().any(|&k| k >= 5)),
    );
    need(
        "several input channels per group".into(),
        layers.iter().any(|l| l.info.in_per_group() > 1),
    );
    need(
        "several groups".into(),
        layers.iter().any(|l| l.info.groups > 1),
    );
    for b in [false, true] {
        need(format!("bias {b}"), layers.iter().any(|l| l.info.bias == b));
    }
    for a in [Activation::None, Activation::Relu, Activation::Relu6] {
        need(
            format!("activation {}", a.as_str()),
            layers.iter().any(|l| l.info.activation == a),
        );
    }
    missing
}

/// The default count of random layers (`build.rs`): from it on, coverage is checked.
const COVERAGE_FROM: usize = 40;

#[test]
fn random_layers_match_the_reference() {
    let models: Vec<_> = gspc_kernel_tests::models::MODELS
        .iter()
        .filter(|m| m.name.starts_with("random_layers"))
        .collect();
    assert!(!models.is_empty(), "the random specs are compiled in");
    let seed = gspc_kernel_tests::RANDOM_SEED;
    let layers: Vec<gspc_runtime::Layer> = models.iter().flat_map(|m| m.layers).copied().collect();
    let layers = &layers[..];
    // Written past the harness's capture, so it shows even if a kernel crashes the test.
    let _ = writeln!(
        std::io::stderr().lock(),
        "random layers: {} from seed {seed} (replay: GSPC_RANDOM_SEED={seed} GSPC_RANDOM_LAYERS={} cargo test -p gspc-kernel-tests)",
        layers.len(),
        layers.len()
    );
    let all = check::check_models(&models).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    if let Err(e) = check::enforce_required(&check::required_from_env(), &all) {
        panic!("seed {seed}: {e}");
    }
    if layers.len() >= COVERAGE_FROM {
        let missing = missing_coverage(layers);
        assert!(
            missing.is_empty(),
            "seed {seed}: {} random layers miss: {}",
            layers.len(),
            missing.join(", ")
        );
    }
}
