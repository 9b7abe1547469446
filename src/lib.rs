//! gspc: grouped-convolution kernels generated ahead of time for exactly the shapes of a
//! model (Grouped Spatial Pack Convolutions, shape-specialized per layer and per ISA).
//!
//! The build script compiles every spec in `layer-specs/` (or those named in
//! `GSPC_SPECS`, paths separated by `:`) and exposes each model as
//! `gspc::models::<model>::<layer>`; `gspc::models::MODELS` lists them all.
#![cfg_attr(not(feature = "std"), no_std)]

pub use gspc_runtime as runtime;
pub use gspc_runtime::{Activation, Error, Isa, Layer, LayerInfo};

/// The generated models, one module each.
pub mod models {
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}
