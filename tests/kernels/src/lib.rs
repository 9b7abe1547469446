//! Kernels generated from `tests/specs/*.json`; see `tests/edge_cases.rs`.

/// The generated models.
pub mod models {
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}

/// The generated int8 models: `tests/specs/int8/*.json` and the random int8 layers.
pub mod int8_models {
    include!(concat!(env!("OUT_DIR"), "/int8_models.rs"));
}

/// The seed the random layers were made from (`GSPC_RANDOM_SEED` replays it).
pub const RANDOM_SEED: u64 = include!(concat!(env!("OUT_DIR"), "/random_seed.rs"));
