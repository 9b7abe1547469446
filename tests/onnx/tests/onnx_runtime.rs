//! The imported model, run layer after layer with its baked weights, reproduces the output
//! ONNX Runtime computed for the same input (committed with the fixture).

use gspc_onnx_tests::models::small_net as net;
use std::path::Path;

fn fixture(name: &str) -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len() % 4, 0, "{name}: not f32 data");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Runs every layer in order with `run(layer, input, output)`; returns the last output.
fn chain(run: impl Fn(&gspc_runtime::Layer, &[f32], &mut [f32])) -> Vec<f32> {
    let mut x = fixture("small_net.input.bin");
    for layer in net::LAYERS {
        assert_eq!(
            x.len(),
            layer.input_len,
            "{}: input length",
            layer.info.name
        );
        let mut y = vec![f32::NAN; layer.output_len];
        run(layer, &x, &mut y);
        x = y;
    }
    x
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "output length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 + 1e-4 * w.abs(),
            "output[{i}]: gspc {g}, ONNX Runtime {w}"
        );
    }
}

#[test]
fn imported_model_matches_onnx_runtime() {
    // Five grouped/depthwise convs, with bias, ReLU and ReLU6 (Clip 0..6) fused.
    assert_eq!(net::LAYERS.len(), 5);
    let want = fixture("small_net.output.bin");
    let got = chain(|layer, x, y| {
        let packed = layer.baked.expect("weights are baked");
        let mut scratch = vec![f32::NAN; layer.scratch_len];
        (layer.run)(x, packed, y, &mut scratch).expect("lengths match");
    });
    assert_close(&got, &want);

    // Every compiled variant, and the threaded entry point, agree with ONNX Runtime too.
    let variants = net::LAYERS[0].variants.len();
    for v in 0..variants {
        let got = chain(|layer, x, y| {
            let mut scratch = vec![f32::NAN; layer.scratch_len];
            let variant = &layer.variants[v];
            match (variant.run)(x, layer.baked.unwrap(), y, &mut scratch) {
                Ok(()) => {}
                // This CPU lacks the variant's instructions: run the dispatcher instead.
                Err(gspc_runtime::Error::Unsupported(_)) => {
                    (layer.run)(x, layer.baked.unwrap(), y, &mut scratch).unwrap()
                }
                Err(e) => panic!("{}: {e}", variant.kernel),
            }
        });
        assert_close(&got, &want);
    }
    let got = chain(|layer, x, y| {
        let mut scratch = vec![f32::NAN; 3 * layer.scratch_len];
        (layer.run_split)(x, layer.baked.unwrap(), y, &mut scratch, 3).unwrap();
    });
    assert_close(&got, &want);
}

#[test]
fn imported_layers_have_the_model_shapes() {
    type Shape = (usize, usize, usize, [usize; 2], [usize; 2]);
    let shapes: Vec<Shape> = net::LAYERS
        .iter()
        .map(|l| {
            let i = &l.info;
            (i.in_channels, i.out_channels, i.groups, i.kernel, i.stride)
        })
        .collect();
    assert_eq!(
        shapes,
        vec![
            (8, 16, 2, [3, 3], [1, 1]),
            (16, 16, 16, [3, 3], [2, 2]),
            (16, 32, 4, [1, 1], [1, 1]),
            (32, 64, 32, [3, 3], [1, 1]),
            (64, 16, 4, [3, 3], [1, 1]),
        ]
    );
    use gspc_runtime::Activation::*;
    let acts: Vec<_> = net::LAYERS.iter().map(|l| l.info.activation).collect();
    assert_eq!(acts, vec![Relu, Relu6, None, Relu, None]);
    assert_eq!(net::LAYERS[4].info.dilation, [2, 2]);
}
