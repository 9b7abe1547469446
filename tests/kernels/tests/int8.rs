//! int8 layers (issue 13): the edge cases of `tests/specs/int8/` (every depthwise block and
//! vector width, strides 1 to 3 with their column phases, dilation, odd channels per group,
//! rows narrower than a vector and rows with an overlapping last vector, both
//! requantization modes, zero points at both ends, the smallest and largest fixed-point
//! multipliers, pinned blocks and tiles, depthwise channel lanes at strides 1 and 2 with
//! both modes and dilation) and the seeded random int8 layers: every variant,
//! the dispatcher and `run_parallel` on 2 and 3 threads against the integer reference,
//! bit for bit (`check::check_qlayer`). `GSPC_REQUIRE_ISA` turns a variant skipped for
//! lack of CPU support into a failure.

use gspc_runtime::check;
use gspc_runtime::qlayer::QLayer;

fn layers(prefix: &str) -> Vec<&'static QLayer> {
    gspc_kernel_tests::int8_models::MODELS
        .iter()
        .filter(|m| m.name.starts_with(prefix))
        .flat_map(|m| m.qlayers.iter())
        .collect()
}

fn check_all(prefix: &str, least: usize) {
    let models: Vec<_> = gspc_kernel_tests::int8_models::MODELS
        .iter()
        .filter(|m| m.name.starts_with(prefix))
        .collect();
    let all = check::check_models(&models).unwrap_or_else(|e| {
        panic!(
            "{e}\n(random layers from seed {}: replay with GSPC_RANDOM_SEED)",
            gspc_kernel_tests::RANDOM_SEED
        )
    });
    assert!(
        all.len() >= least,
        "expected at least {least} int8 layers for {prefix}, got {}",
        all.len()
    );
    if let Err(e) = check::enforce_required(&check::required_from_env(), &all) {
        panic!("{e}");
    }
}

#[test]
fn int8_edge_cases_match_the_integer_reference() {
    check_all("edge_cases_int8", 20);
}

#[test]
fn random_int8_layers_match_the_integer_reference() {
    check_all("random_int8", 1);
}

/// Both kernel kinds and both requantization modes are among the edge cases, and the
/// generated constants are the spec's.
#[test]
fn int8_edge_cases_cover_both_kinds_and_modes() {
    let all = layers("edge_cases_int8");
    for s in ["gspc-oc", "gspc-dwc"] {
        assert!(all.iter().any(|l| l.strategy == s), "no {s} layer");
    }
    use gspc_runtime::quant::Requantization;
    for m in [Requantization::Fixed, Requantization::Fp32] {
        assert!(all.iter().any(|l| l.quant.mode == m), "no {m:?} layer");
    }
    assert!(all.iter().all(|l| l.baked.is_some()));
    assert!(layers("random_int8").iter().all(|l| l.baked.is_none()));
}

/// The edge cases' weights baked at generation time are what `pack_weights` makes of the
/// same data, and run right.
#[test]
fn int8_baked_weights_match_the_run_time_packing() {
    let mut failures = Vec::new();
    for m in gspc_kernel_tests::int8_models::MODELS
        .iter()
        .filter(|m| m.name.starts_with("edge_cases_int8"))
    {
        for l in m.qlayers {
            if let Err(e) = check::check_qbaked(l, check::seed_for(m.name, l.info.name)) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A wrong length or an unsupported variant is an error, not a panic.
#[test]
fn int8_slices_are_checked() {
    let l = layers("edge_cases_int8")[0];
    let input = vec![0i8; l.input_len];
    let packed = vec![0i32; l.packed_len];
    let mut output = vec![0i8; l.output_len];
    let mut scratch = vec![0i32; l.scratch_len];
    assert!((l.run)(&input[1..], &packed, &mut output, &mut scratch).is_err());
    assert!((l.run)(&input, &packed[1..], &mut output, &mut scratch).is_err());
    assert!((l.run)(&input, &packed, &mut output[1..], &mut scratch).is_err());
    assert!((l.run)(&input, &packed, &mut output, &mut scratch[1..]).is_err());
    assert!((l.run_parallel)(&input, &packed, &mut output, &mut scratch[..0], 2).is_err());
    let weights = vec![0i8; l.weights_len];
    let mut p = vec![0i32; l.packed_len];
    assert!((l.pack_weights)(&weights[1..], None, &mut p).is_err());
    assert!((l.pack_weights)(&weights, Some(&[0i32; 1]), &mut p).is_err());
}

/// `GSPC_EXPECT_DOTPROD` (1 or 0; `.ci/run` sets it under qemu-aarch64, whose default CPU has
/// the dot product extension and whose `QEMU_CPU=cortex-a72` has not) says which NEON path
/// the checks above ran: the `neon_dot` kernels over quads (`sdot`) or the `smlal` ones.
#[test]
fn the_expected_neon_int8_path_ran() {
    let Ok(want) = std::env::var("GSPC_EXPECT_DOTPROD") else {
        return;
    };
    assert!(
        want == "0" || want == "1",
        "GSPC_EXPECT_DOTPROD={want:?}: expected 1 or 0"
    );
    assert_eq!(
        gspc_runtime::aarch64::has_dotprod(),
        want == "1",
        "GSPC_EXPECT_DOTPROD={want}, but this CPU {} the dot product extension",
        if gspc_runtime::aarch64::has_dotprod() {
            "has"
        } else {
            "lacks"
        }
    );
}
