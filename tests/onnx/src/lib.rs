//! ONNX models imported and generated with their weights baked in by the build script:
//! `fixtures/small_net.onnx` (see `tests/onnx_runtime.rs`) and the real-network fixtures of
//! `fixtures/real/` (see `tests/real_models.rs`).

/// The generated model (`models::small_net`).
pub mod models {
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}

/// The real-network fixtures: [`real::FIXTURES`], one generated module per fixture that
/// imported.
pub mod real {
    #![allow(clippy::all)]
    use super::{Fixture, Layer, Model, Value};
    include!(concat!(env!("OUT_DIR"), "/real.rs"));
}

/// The int8 fixtures (`gspc-codegen/tests/fixtures/int8_import/`): [`int8::INT8_FIXTURES`].
pub mod int8 {
    #![allow(clippy::all)]
    use super::Int8Fixture;
    include!(concat!(env!("OUT_DIR"), "/int8.rs"));
}

/// One int8 fixture: its generated layers and, per layer, ONNX Runtime's recorded input
/// and output (files of one byte per int8 value).
#[derive(Debug)]
pub struct Int8Fixture {
    /// The fixture's name.
    pub name: &'static str,
    /// The generated int8 layers (weights baked), in spec order.
    pub layers: &'static [gspc_runtime::qlayer::QLayer],
    /// Per layer: (name, input file, output file).
    pub checks: &'static [(&'static str, &'static str, &'static str)],
}

/// One fixture of `fixtures/real/`.
#[derive(Debug)]
pub struct Fixture {
    /// The fixture's name: `<model>_<exporter>` (`ts` TorchScript, `dx` torch.export).
    pub name: &'static str,
    /// `Some(why)` when the importer is not expected to take it yet (build.rs's list).
    pub pending: Option<&'static str>,
    /// `Some(why)` when `GSPC_REAL_FIXTURES` leaves it out: not imported, not checked.
    pub left_out: Option<&'static str>,
    /// The generated model, or the import or generation error.
    pub model: Result<Model, &'static str>,
}

/// An imported fixture.
#[derive(Debug)]
pub struct Model {
    /// The generated layers, in spec order.
    pub layers: &'static [gspc_runtime::Layer],
    /// The file (in `OUT_DIR`) holding ONNX Runtime's values that [`Value`]s index,
    /// little-endian f32.
    pub reference: &'static str,
    /// One per generated layer, in the same order.
    pub checks: &'static [Layer],
}

/// An imported layer and ONNX Runtime's values around it.
#[derive(Debug)]
pub struct Layer {
    /// The layer's name in the spec.
    pub name: &'static str,
    /// The Conv node it comes from, as the importer names it.
    pub source: &'static str,
    /// ONNX Runtime's value of the layer's input (`ImportedLayer::input`).
    pub input: Value,
    /// ONNX Runtime's value of the layer's output (`ImportedLayer::output`).
    pub output: Value,
}

/// An ONNX value in the reference file.
#[derive(Debug)]
pub struct Value {
    /// The ONNX value name.
    pub name: &'static str,
    /// Its shape as ONNX Runtime computed it.
    pub shape: &'static [usize],
    /// Offset in the reference file, in f32 values.
    pub start: usize,
    /// Length in f32 values.
    pub len: usize,
}
