//! The int8 reference against ONNX Runtime and LiteRT on the fixtures of
//! `tests/fixtures/int8/` (made by `scripts/make_int8_fixtures.py`): small depthwise and
//! grouped layers with per-channel weight scales, nonzero zero points, bias, and each
//! activation. Within 1 of every peer on every value in both modes, and bit for bit where
//! the peer uses the same requantization:
//!
//! - `fp32` = ONNX Runtime's `QLinearConv` (MLAS), the same layer in ONNX Runtime's QDQ
//!   format (which it fuses), and LiteRT's default resolver (XNNPACK);
//! - `fixed` = LiteRT's reference kernels and its optimized built-in kernels (no delegate).
//!
//! The `*_ties` fixtures have power-of-two multipliers, so that about a quarter of the
//! accumulators are exact ties after scaling: there the two modes differ (ties to even
//! against TFLite's rounding), so each exact match above is a real distinction.

use gspc_runtime::quant::{self, ChannelScale, QuantParams, Requantization};
use gspc_runtime::{Activation, LayerInfo};
use serde_json::Value;
use std::path::PathBuf;

fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/int8");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/int8 exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable");
            let name = p.file_stem().expect("name").to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).expect("valid JSON"))
        })
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("integer"))
        .collect()
}

fn pair(v: &Value) -> [usize; 2] {
    let a = ints(v);
    [a[0] as usize, a[1] as usize]
}

fn f32_of(v: &Value) -> f32 {
    v.as_f64().expect("number") as f32
}

/// The reference's output for a fixture in one mode.
fn reference(d: &Value, mode: Requantization) -> Vec<i64> {
    let activation = match d["activation"].as_str().expect("activation") {
        "none" => Activation::None,
        "relu" => Activation::Relu,
        "relu6" => Activation::Relu6,
        a => panic!("unknown activation {a}"),
    };
    let info = LayerInfo {
        name: "fixture",
        in_channels: d["in_channels"].as_u64().expect("in") as usize,
        out_channels: d["out_channels"].as_u64().expect("out") as usize,
        groups: d["groups"].as_u64().expect("groups") as usize,
        kernel: pair(&d["kernel"]),
        stride: pair(&d["stride"]),
        padding: pair(&d["padding"]),
        dilation: [1, 1],
        input: pair(&d["input"]),
        output: pair(&d["output"]),
        bias: true,
        activation,
        count: 1,
    };
    let weight_scales: Vec<f32> = d["weight_scales"]
        .as_array()
        .expect("weight_scales")
        .iter()
        .map(f32_of)
        .collect();
    let params = QuantParams {
        mode,
        input_scale: f32_of(&d["input_scale"]),
        input_zero_point: d["input_zero_point"].as_i64().expect("zp") as i32,
        output_scale: f32_of(&d["output_scale"]),
        output_zero_point: d["output_zero_point"].as_i64().expect("zp") as i32,
        weight_scales: &weight_scales,
    };
    let mut channels = vec![ChannelScale::Fp32(0.0); info.out_channels];
    let requant = params
        .derive(activation, &mut channels)
        .expect("valid parameters");
    // The script computed the activation's range with TFLite's formula too.
    let range = ints(&d["activation_range"]);
    assert_eq!(
        [requant.min as i64, requant.max as i64],
        [range[0], range[1]]
    );
    let x: Vec<i8> = ints(&d["x"]).into_iter().map(|v| v as i8).collect();
    let w: Vec<i8> = ints(&d["w"]).into_iter().map(|v| v as i8).collect();
    let b: Vec<i32> = ints(&d["bias"]).into_iter().map(|v| v as i32).collect();
    let mut out = vec![0i8; info.output_len()];
    quant::conv2d(&info, &requant, &x, &w, Some(&b), &mut out).expect("lengths");
    out.into_iter().map(i64::from).collect()
}

/// (values, values differing, largest difference) of the reference against one peer.
fn compare(ours: &[i64], peer: &[i64]) -> (usize, usize, i64) {
    assert_eq!(ours.len(), peer.len());
    let differing = ours.iter().zip(peer).filter(|(a, b)| a != b).count();
    let max = ours
        .iter()
        .zip(peer)
        .map(|(a, b)| (a - b).abs())
        .max()
        .unwrap_or(0);
    (ours.len(), differing, max)
}

#[test]
fn the_reference_agrees_with_onnx_runtime_and_litert() {
    let files = fixtures();
    assert!(files.len() >= 6, "{} fixtures", files.len());
    let peers = [
        "ort",
        "ort_qdq",
        "litert_auto",
        "litert_builtin",
        "litert_ref",
    ];
    // (mode, peer) -> (values, differing, max difference), over all fixtures.
    let mut totals = std::collections::BTreeMap::new();
    for (name, d) in &files {
        for mode in [Requantization::Fixed, Requantization::Fp32] {
            let ours = reference(d, mode);
            for peer in peers {
                let theirs = ints(&d["peers"][peer]);
                let (n, differing, max) = compare(&ours, &theirs);
                eprintln!(
                    "{name}: {} vs {peer}: {differing} of {n} differ, max {max}",
                    mode.as_str()
                );
                assert!(
                    max <= 1,
                    "{name}: {} mode is {max} away from {peer}",
                    mode.as_str()
                );
                let t = totals.entry((mode.as_str(), peer)).or_insert((0, 0, 0));
                *t = (t.0 + n, t.1 + differing, t.2.max(max));
            }
        }
    }
    for ((mode, peer), (n, differing, max)) in &totals {
        eprintln!("all: {mode} vs {peer}: {differing} of {n} differ, max {max}");
    }
    let exact = |mode: &'static str, peer: &'static str| totals[&(mode, peer)].1 == 0;
    // Which mode matches which peer bit for bit (measured, see the module comment).
    assert!(exact("fp32", "ort"), "fp32 vs ONNX Runtime");
    assert!(exact("fp32", "ort_qdq"), "fp32 vs ONNX Runtime's QDQ model");
    assert!(exact("fp32", "litert_auto"), "fp32 vs LiteRT with XNNPACK");
    assert!(
        exact("fixed", "litert_ref"),
        "fixed vs LiteRT's reference kernels"
    );
    assert!(
        exact("fixed", "litert_builtin"),
        "fixed vs LiteRT's built-in kernels"
    );
    // And the ties tell them apart: neither mode matches the other's peers.
    assert!(!exact("fp32", "litert_ref") && !exact("fixed", "ort"));
}
