//! `fixtures/small_net.onnx`, imported and generated with its weights baked in by the build
//! script; see `tests/onnx_runtime.rs`.

/// The generated model (`models::small_net`).
pub mod models {
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}
