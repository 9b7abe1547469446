//! Compiles the layer specs into kernels: every `layer-specs/*.json`, or the files named in
//! `GSPC_SPECS` (paths separated by `:`, relative to this directory). `GSPC_ISAS` (e.g.
//! `portable,avx2`) restricts the ISA variants; the default is every variant the target
//! runs. `GSPC_TUNING=FILE` takes tuned plans from a `gspc-codegen tune` database
//! (`GSPC_CPU` and `GSPC_TUNING_THREADS` choose its records; see docs/tuning.md). Every
//! spec's int8 twin (`<model>_int8`, `Spec::int8_twin`) is generated too, unless
//! `GSPC_INT8_TWINS=0`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=GSPC_SPECS");
    println!("cargo:rerun-if-env-changed=GSPC_ISAS");
    let specs: Vec<PathBuf> = match std::env::var("GSPC_SPECS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        _ => {
            println!("cargo:rerun-if-changed=layer-specs");
            let mut specs: Vec<PathBuf> = match std::fs::read_dir("layer-specs") {
                Ok(dir) => dir
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect(),
                Err(e) => fail(&format!("layer-specs: cannot list the directory: {e}")),
            };
            specs.sort();
            specs
        }
    };
    let mut builder = gspc_codegen::Builder::new();
    // The int8 twin of every suite (`<suite>_int8`) for the benchmark and the tests;
    // `GSPC_INT8_TWINS=0` leaves them out (a build with half the generated code).
    println!("cargo:rerun-if-env-changed=GSPC_INT8_TWINS");
    let twins = std::env::var("GSPC_INT8_TWINS").map_or(true, |v| v.trim() != "0");
    builder.specs(&specs).index("models.rs").int8_twins(twins);
    if let Ok(list) = std::env::var("GSPC_ISAS") {
        let isas: Result<Vec<_>, _> = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(gspc_codegen::target::parse_isa)
            .collect();
        match isas {
            Ok(isas) => {
                builder.isas(isas);
            }
            Err(e) => fail(&format!("GSPC_ISAS: {e}")),
        }
    }
    if let Err(e) = builder.tuning_from_env() {
        fail(&e.to_string());
    }
    if let Err(e) = builder.generate() {
        fail(&e.to_string());
    }
}

fn fail(report: &str) -> ! {
    eprintln!("gspc: kernel generation failed:\n{report}");
    std::process::exit(1);
}
