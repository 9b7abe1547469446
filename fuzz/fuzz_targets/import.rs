//! ONNX bytes -> `import::import` (grouped Convs only, then every Conv) -> (if imported) the
//! spec text re-parsed and the weights read back against that spec.
//!
//! Invariants: no input panics, hangs or allocates beyond a small multiple of its length;
//! an imported model's `spec_json` parses to the same layers, and its safetensors pass the
//! weights reader of `generate --weights`. Generating the kernels is left to the `spec`
//! target (any accepted spec) and the `weights` target (baked weights): with it, every
//! input derived from a valid seed model took 150-350 ms, without it under 1 ms.

#![no_main]

use gspc_codegen::import::{ImportOptions, import};
use gspc_codegen::{spec, weights};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for all_convs in [false, true] {
        let options = ImportOptions {
            all_convs,
            ..ImportOptions::default()
        };
        let Ok(imported) = import("fuzz.onnx", data, &options) else {
            continue;
        };
        let s = spec::parse("fuzz.onnx", &imported.spec_json)
            .unwrap_or_else(|e| panic!("imported spec_json is refused: {e}"));
        assert_eq!(
            s.layers, imported.spec.layers,
            "spec_json differs from spec"
        );
        assert_eq!(imported.layers.len(), s.layers.len());
        let w = weights::from_safetensors("fuzz.safetensors", &imported.weights, &s)
            .unwrap_or_else(|e| panic!("imported weights do not fit their spec: {e}"));
        assert_eq!(w.layers.len(), s.layers.len());
    }
});
