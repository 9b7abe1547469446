//! Compiles the layer specs into kernels: every `layer-specs/*.json`, or the files named in
//! `GSPC_SPECS` (paths separated by `:`, relative to this directory). `GSPC_ISAS` (e.g.
//! `portable,avx2`) restricts the ISA variants; the default is every variant the target
//! runs. `GSPC_TUNING=FILE` takes tuned plans from a `gspc-codegen tune` database
//! (`GSPC_CPU` and `GSPC_TUNING_THREADS` choose its records; see docs/tuning.md).

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
    builder.specs(&specs).index("models.rs").int8_twins(true);
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
