//! Kernels generated from `tests/specs/*.json`; see `tests/edge_cases.rs`.

/// The generated models.
pub mod models {
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}
