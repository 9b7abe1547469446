//! ONNX bytes -> `import::import` (grouped Convs only, then every Conv; with no files, and
//! with every external data file being the input itself) -> (if imported) the spec text
//! re-parsed and the weights read back against that spec.
//!
//! Invariants: no input panics, hangs or allocates beyond a small multiple of its length
//! (external data included: a tensor's range is checked against the file before it is read,
//! and no file is read more than twice over); an imported model's `spec_json` parses to the
//! same layers, its safetensors pass the weights reader of `generate --weights`, and the
//! data files it names are plain relative locations. Generating the kernels is left to the
//! `spec` target (any accepted spec) and the `weights` target (baked weights): with it,
//! every input derived from a valid seed model took 150-350 ms, without it under 1 ms.

#![no_main]

use gspc_codegen::import::external::check_location;
use gspc_codegen::import::{ExternalData, ImportOptions, NoFiles, import_with};
use gspc_codegen::{spec, weights};
use libfuzzer_sys::fuzz_target;

/// Every location is a file holding the input itself: mutated offsets and lengths read
/// parts of it (or are refused).
struct Itself<'a>(&'a [u8]);

impl ExternalData for Itself<'_> {
    fn size(&mut self, _location: &str) -> Result<u64, String> {
        Ok(self.0.len() as u64)
    }

    fn read(&mut self, _location: &str, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let start = usize::try_from(offset).map_err(|_| "offset".to_string())?;
        let end = start.checked_add(buf.len()).ok_or("length")?;
        let src = self.0.get(start..end).unwrap_or_else(|| {
            panic!(
                "read {start}..{end} of a {}-byte file: the range was not checked",
                self.0.len()
            )
        });
        buf.copy_from_slice(src);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    for all_convs in [false, true] {
        let options = ImportOptions {
            all_convs,
            ..ImportOptions::default()
        };
        for with_files in [false, true] {
            let result = if with_files {
                import_with("fuzz.onnx", data, &options, &mut Itself(data))
            } else {
                import_with("fuzz.onnx", data, &options, &mut NoFiles)
            };
            let Ok(imported) = result else {
                continue;
            };
            for f in &imported.data_files {
                assert_eq!(check_location(f), Ok(()), "read data file {f:?}");
            }
            assert!(with_files || imported.data_files.is_empty());
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
    }
});
