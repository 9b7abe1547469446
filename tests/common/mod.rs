//! Shared by the integration tests: run a generated layer through every variant and compare
//! it with the naive reference.

#![allow(dead_code)]

use gspc::runtime::{Isa, Layer, reference, rng::Rng};

/// The ISAs that `GSPC_REQUIRE_ISA` (comma-separated) says must run, not skip.
pub fn required_isas() -> Vec<String> {
    std::env::var("GSPC_REQUIRE_ISA")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// What [`check_layer`] ran.
#[derive(Default, Debug)]
pub struct Ran {
    /// Variants that ran and matched.
    pub ran: Vec<Isa>,
    /// Variants skipped because the CPU lacks them.
    pub skipped: Vec<Isa>,
}

/// Random input, weights and bias from a seed derived from the layer's name; every variant
/// of the layer compared with the reference. Panics naming the layer, the variant and the
/// coordinates of the first mismatch.
pub fn check_layer(model: &str, layer: &Layer) -> Ran {
    let info = &layer.info;
    let seed = info
        .name
        .bytes()
        .chain(model.bytes())
        .fold(0xC0FFEE_u64, |h, b| {
            h.wrapping_mul(31).wrapping_add(b as u64)
        });
    let mut rng = Rng::new(seed);
    let mut input = vec![0.0f32; layer.input_len];
    let mut weights = vec![0.0f32; layer.weights_len];
    let mut bias = vec![0.0f32; info.out_channels];
    rng.fill(&mut input);
    rng.fill(&mut weights);
    rng.fill(&mut bias);
    let bias = info.bias.then_some(&bias[..]);

    let mut expected = vec![0.0f32; layer.output_len];
    reference::conv2d(info, &input, &weights, bias, &mut expected).expect("reference lengths");

    let mut packed = vec![0.0f32; layer.packed_len];
    (layer.pack_weights)(&weights, bias, &mut packed).expect("pack_weights lengths");

    let mut ran = Ran::default();
    let run_and_compare = |what: &str, run: gspc::runtime::RunFn| -> Result<(), gspc::Error> {
        // Poisoned output and scratch: a kernel must overwrite every output value and may
        // not rely on the scratch's contents.
        let mut output = vec![f32::NAN; layer.output_len];
        let mut scratch = vec![f32::NAN; layer.scratch_len];
        run(&input, &packed, &mut output, &mut scratch)?;
        if let Err(m) = reference::compare(info, &expected, &output) {
            panic!("{model}::{} ({what}): {m}", info.name);
        }
        Ok(())
    };
    for v in layer.variants {
        match run_and_compare(v.kernel, v.run) {
            Ok(()) => ran.ran.push(v.isa),
            Err(gspc::Error::Unsupported(isa)) => {
                eprintln!("{model}::{}: skipped {isa}: this CPU lacks it", info.name);
                ran.skipped.push(isa);
            }
            Err(e) => panic!("{model}::{} ({}): {e}", info.name, v.kernel),
        }
    }
    // The dispatching entry point too.
    run_and_compare("run (dispatch)", layer.run).expect("dispatching run");
    ran
}

/// Fails when a variant named in `GSPC_REQUIRE_ISA` was skipped, or never compiled in.
pub fn enforce_required(all: &[Ran]) {
    for want in required_isas() {
        let ran = all.iter().any(|r| r.ran.iter().any(|i| i.as_str() == want));
        let skipped = all
            .iter()
            .any(|r| r.skipped.iter().any(|i| i.as_str() == want));
        assert!(
            ran && !skipped,
            "GSPC_REQUIRE_ISA names {want}, but it {}",
            if skipped {
                "was skipped: this CPU lacks it"
            } else {
                "is not compiled in for this target"
            }
        );
    }
}
