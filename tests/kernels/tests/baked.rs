//! Weights baked in at generation time: the build script packs every edge-case layer's
//! seeded weights (from .npy files) and every random layer's (from a safetensors file) into
//! the generated code; each baked copy must equal the run-time packing of the same data bit
//! for bit, and run to the reference's output.

use gspc_runtime::check;

#[test]
fn baked_weights_equal_run_time_packing() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for model in gspc_kernel_tests::models::MODELS {
        for layer in model.layers {
            match check::check_baked(layer, check::seed_for(model.name, layer.info.name)) {
                Ok(()) => checked += 1,
                Err(e) => failures.push(format!("{}::{e}", model.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 40, "only {checked} layers checked");
}

#[test]
fn baked_entry_point_runs_the_baked_weights() {
    use gspc_kernel_tests::models::edge_cases::dw_w15_s2_pad1 as layer;
    let info = &layer::LAYER.info;
    let d = check::SeededData::new(
        check::seed_for("edge_cases", info.name),
        layer::INPUT_LEN,
        layer::WEIGHTS_LEN,
        layer::OUT_CHANNELS,
    );
    let input: &[f32; layer::INPUT_LEN] = d.input.as_slice().try_into().unwrap();
    let mut expected = vec![0.0f32; layer::OUTPUT_LEN];
    gspc_runtime::reference::conv2d(info, &d.input, &d.weights, Some(&d.bias), &mut expected)
        .unwrap();
    let mut output = [f32::NAN; layer::OUTPUT_LEN];
    let mut scratch = [f32::NAN; layer::SCRATCH_LEN];
    layer::run_baked(input, &mut output, &mut scratch);
    gspc_runtime::reference::compare(&layer::INFO, &expected, &output).unwrap();
    assert_eq!(layer::PACKED.as_ptr() as usize % 64, 0);
}
