//! Weight-file bytes -> `weights::parse_safetensors` and `weights::parse_npy` -> (if read)
//! `weights::check` against a small spec -> (if they fit it) `generate_baked` for x86-64.
//!
//! Invariants: no input panics, hangs or allocates beyond a small multiple of its length
//! (CI runs it with a 2 GiB limit); every tensor read holds exactly the values its shape
//! says; weights that pass the check bake into code that parses, with every layer's packed
//! weights in the weights file.

#![no_main]

use gspc_codegen::spec::{self, Spec};
use gspc_codegen::weights::{self, Tensor};
use gspc_codegen::{Options, Target, generate_baked};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// `a`: grouped 3x3 with a bias; `n`: depthwise 1x1 without one (the `.npy` path).
const SPEC: &str = r#"{"model": "w", "layers": [
  {"name": "a", "in_channels": 8, "out_channels": 8, "groups": 2, "kernel": [3, 3],
   "stride": [1, 1], "padding": [1, 1], "input": [6, 6], "bias": true},
  {"name": "n", "in_channels": 4, "out_channels": 4, "groups": 4, "kernel": [1, 1],
   "stride": [1, 1], "padding": [0, 0], "input": [6, 6]}]}"#;

fn spec() -> &'static Spec {
    static SPEC_ONCE: OnceLock<Spec> = OnceLock::new();
    SPEC_ONCE.get_or_init(|| spec::parse("w.json", SPEC).expect("the fuzz spec is valid"))
}

fn npy_spec() -> &'static Spec {
    static SPEC_ONCE: OnceLock<Spec> = OnceLock::new();
    SPEC_ONCE.get_or_init(|| {
        let mut s = spec().clone();
        s.layers.retain(|l| l.name == "n");
        s
    })
}

fn consistent(name: &str, t: &Tensor) {
    let count = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    assert_eq!(
        count,
        Some(t.data.len()),
        "{name}: shape {:?} but {} values",
        t.shape,
        t.data.len()
    );
}

fn bake(spec: &Spec, tensors: BTreeMap<String, Tensor>) {
    let Ok(w) = weights::check("fuzz", spec, tensors) else {
        return;
    };
    assert_eq!(w.layers.len(), spec.layers.len(), "a layer without weights");
    let target = Target::from_triple("x86_64-unknown-linux-gnu").expect("a known triple");
    let g = generate_baked(spec, &w, &Options::for_target(target))
        .unwrap_or_else(|e| panic!("checked weights do not bake: {e}"));
    if let Err(e) = syn::parse_file(&g.code) {
        panic!("code with baked weights does not parse: {e}");
    }
    let file = g.weights.expect("a weights file for baked weights");
    let packed: usize = g.plans.iter().map(|p| p.packed_len).sum();
    assert!(
        file.bytes.len() >= 4 * packed,
        "weights file of {} bytes for {packed} packed values",
        file.bytes.len()
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(tensors) = weights::parse_safetensors("fuzz.safetensors", data) {
        for (name, t) in &tensors {
            consistent(name, t);
        }
        bake(spec(), tensors);
    }
    if let Ok(t) = weights::parse_npy("fuzz.npy", data) {
        consistent("fuzz.npy", &t);
        bake(npy_spec(), BTreeMap::from([("n.weight".to_string(), t)]));
    }
});
