//! ONNX models quantized with ONNX Runtime's `quantize_static` (QDQ, QOperator, uint8
//! activations, a kept Relu), imported and generated with their weights baked in by the
//! build script: every generated int8 layer, every variant this CPU runs, on ONNX
//! Runtime's int8 input of that layer, gives ONNX Runtime's int8 output bit for bit
//! (`"fp32"` requantization, the import's default, is ONNX Runtime's arithmetic).

use gspc_onnx_tests::int8::INT8_FIXTURES;
use gspc_runtime::qlayer;

fn bytes(path: &str) -> Vec<i8> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .into_iter()
        .map(|b| b as i8)
        .collect()
}

#[test]
fn quantized_onnx_models_run_bit_exact_with_onnx_runtime() {
    let mut checked = 0;
    for f in INT8_FIXTURES {
        assert_eq!(f.layers.len(), f.checks.len(), "{}", f.name);
        for (l, &(name, input, output)) in f.layers.iter().zip(f.checks) {
            assert_eq!(l.info.name, name);
            let baked = l
                .baked
                .unwrap_or_else(|| panic!("{}.{name}: not baked", f.name));
            let (x, want) = (bytes(input), bytes(output));
            let mut runs: Vec<(&str, qlayer::QRunFn)> = vec![("run", l.run)];
            runs.extend(l.variants.iter().map(|v| (v.isa.as_str(), v.run)));
            for (what, run) in runs {
                let mut out = vec![0x55i8; l.output_len];
                let mut scratch = vec![0i32; l.scratch_len];
                match run(&x, baked, &mut out, &mut scratch) {
                    Ok(()) => {}
                    Err(gspc_runtime::Error::Unsupported(_)) => continue,
                    Err(e) => panic!("{}.{name} ({what}): {e}", f.name),
                }
                if let Some(i) = (0..want.len()).find(|&i| out[i] != want[i]) {
                    panic!(
                        "{}.{name} ({what}): value {i} is {}, ONNX Runtime gives {}",
                        f.name, out[i], want[i]
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 4 * 5, "only {checked} layer runs checked");
}
