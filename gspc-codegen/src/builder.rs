//! [`Builder`]: the front-end for build scripts, in the style of prost-build.

use crate::error::Error;
use crate::target::Target;
use crate::{Generated, Options, generate};
use gspc_runtime::Isa;
use std::path::{Path, PathBuf};

/// Generates kernels for spec files into a directory, from a build script or a tool.
///
/// In a build script (when `OUT_DIR` is set) it reads the target from Cargo's
/// `CARGO_CFG_TARGET_*` variables, prints `cargo:rerun-if-changed` for every spec, and
/// writes into `OUT_DIR` unless told otherwise. Files are rewritten only when their
/// contents change. Every problem of every spec is collected before it fails.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    specs: Vec<PathBuf>,
    /// Weights files, by index into `specs`.
    weights: Vec<(usize, PathBuf)>,
    out_dir: Option<PathBuf>,
    target: Option<Target>,
    isas: Option<Vec<Isa>>,
    cargo_metadata: Option<bool>,
    index: Option<String>,
    outline_tiles: bool,
}

/// What [`Builder::generate`] wrote.
#[derive(Clone, Debug)]
pub struct Output {
    /// One generated source per spec, in the order given.
    pub generated: Vec<Generated>,
    /// The files written (or already up to date), one per spec.
    pub files: Vec<PathBuf>,
    /// The index file, if one was asked for.
    pub index: Option<PathBuf>,
}

impl Builder {
    /// A builder with no specs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a spec file.
    pub fn spec(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.specs.push(path.as_ref().to_path_buf());
        self
    }

    /// Adds a spec file with its trained weights (safetensors, or a directory of `.npy`
    /// files; see [`crate::weights`]): they are checked, packed and baked into the generated
    /// code (see [`crate::generate_baked`]), in a `<model>.weights.bin` next to it.
    pub fn baked(&mut self, spec: impl AsRef<Path>, weights: impl AsRef<Path>) -> &mut Self {
        self.weights
            .push((self.specs.len(), weights.as_ref().to_path_buf()));
        self.spec(spec)
    }

    /// Adds several spec files.
    pub fn specs<P: AsRef<Path>>(&mut self, paths: impl IntoIterator<Item = P>) -> &mut Self {
        self.specs
            .extend(paths.into_iter().map(|p| p.as_ref().to_path_buf()));
        self
    }

    /// Where to write the generated files (default: `OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The target (default: from `CARGO_CFG_TARGET_*` in a build script, else the host).
    pub fn target(&mut self, target: Target) -> &mut Self {
        self.target = Some(target);
        self
    }

    /// The ISA variants to emit (default: the target's, see [`Target::default_isas`]).
    pub fn isas(&mut self, isas: impl IntoIterator<Item = Isa>) -> &mut Self {
        self.isas = Some(isas.into_iter().collect());
        self
    }

    /// Keep tile functions out of line (see [`crate::Options::outline_tiles`]).
    pub fn outline_tiles(&mut self, on: bool) -> &mut Self {
        self.outline_tiles = on;
        self
    }

    /// Whether to print `cargo:rerun-if-changed` lines (default: when `OUT_DIR` is set).
    pub fn cargo_metadata(&mut self, on: bool) -> &mut Self {
        self.cargo_metadata = Some(on);
        self
    }

    /// Also writes an index file of this name that `include!`s every generated file and
    /// lists the models in `MODELS: &[gspc_runtime::Model]`.
    pub fn index(&mut self, file_name: &str) -> &mut Self {
        self.index = Some(file_name.to_string());
        self
    }

    /// Reads, validates and generates every spec, then writes the files.
    pub fn generate(&self) -> Result<Output, Error> {
        let in_build_script = std::env::var_os("OUT_DIR").is_some();
        let metadata = self.cargo_metadata.unwrap_or(in_build_script);
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => match std::env::var_os("OUT_DIR") {
                Some(d) => PathBuf::from(d),
                None => {
                    return Err(Error::Option(
                        "no output directory: call out_dir() outside a build script".to_string(),
                    ));
                }
            },
        };
        let target = self
            .target
            .clone()
            .or_else(Target::from_cargo_env)
            .unwrap_or_else(Target::host);
        let options = Options {
            target,
            isas: self.isas.clone(),
            outline_tiles: self.outline_tiles,
        };
        options.isas()?;

        if metadata {
            for path in self.specs.iter().chain(self.weights.iter().map(|(_, p)| p)) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        let specs = crate::read_specs(&self.specs)?;
        let mut errors = Vec::new();
        let mut generated = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let result = match self.weights.iter().find(|(at, _)| *at == i) {
                None => generate(s, &options),
                Some((_, path)) => crate::weights::read(path, s)
                    .and_then(|w| crate::generate_baked(s, &w, &options)),
            };
            match result {
                Ok(g) => generated.push(g),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(Error::combine(errors));
        }

        std::fs::create_dir_all(&out_dir).map_err(|e| Error::Io {
            file: out_dir.display().to_string(),
            message: format!("cannot create the output directory: {e}"),
        })?;
        let mut files = Vec::new();
        for g in &generated {
            let path = out_dir.join(&g.file_name);
            write_if_changed(&path, g.code.as_bytes())?;
            if let Some(w) = &g.weights {
                write_if_changed(&out_dir.join(&w.file_name), &w.bytes)?;
            }
            files.push(path);
        }
        let index = match &self.index {
            None => None,
            Some(name) => {
                let path = out_dir.join(name);
                write_if_changed(&path, index_file(&generated, &files)?.as_bytes())?;
                Some(path)
            }
        };
        Ok(Output {
            generated,
            files,
            index,
        })
    }
}

/// The index: `include!` of every generated file and the `MODELS` list.
fn index_file(generated: &[Generated], files: &[PathBuf]) -> Result<String, Error> {
    let mut s = format!(
        "// @generated by gspc-codegen {} -- do not edit.\n\n",
        crate::VERSION
    );
    for f in files {
        let abs = std::path::absolute(f).map_err(|e| Error::Io {
            file: f.display().to_string(),
            message: format!("cannot make the path absolute: {e}"),
        })?;
        let abs = abs.to_str().ok_or_else(|| Error::Io {
            file: abs.display().to_string(),
            message: "the output path is not valid UTF-8, which include! needs".to_string(),
        })?;
        s.push_str(&format!("include!({abs:?});\n"));
    }
    s.push_str("\n/// Every generated model.\n#[allow(dead_code)]\npub const MODELS: &[::gspc_runtime::Model] = &[");
    let models: Vec<String> = generated
        .iter()
        .map(|g| format!("{}::MODEL", g.model))
        .collect();
    s.push_str(&models.join(", "));
    s.push_str("];\n");
    Ok(s)
}

fn write_if_changed(path: &Path, contents: &[u8]) -> Result<(), Error> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    std::fs::write(path, contents).map_err(|e| Error::Io {
        file: path.display().to_string(),
        message: format!("cannot write: {e}"),
    })
}
