//! [`Builder`]: the front-end for build scripts, in the style of prost-build.

use crate::error::{Error, FileOp, Setting};
#[cfg(feature = "import")]
use crate::import::{ImportOptions, Imported};
use crate::target::Target;
use crate::{Generated, Options, generate};
#[cfg(feature = "import")]
use crate::{ImportStep, shell_word};
use gspc_runtime::Isa;
use std::path::{Path, PathBuf};

/// Generates kernels for spec files (and ONNX models) into a directory, from a build script
/// or a tool.
///
/// In a build script (when `OUT_DIR` is set) it reads the target from Cargo's
/// `CARGO_CFG_TARGET_*` variables, prints `cargo:rerun-if-changed` for every spec, weights
/// file, ONNX model and external data file it reads (but those inside `OUT_DIR`, which the
/// build script wrote itself), and writes into `OUT_DIR` unless told
/// otherwise. Files are rewritten only when their contents change. Every problem of every
/// spec and model is collected before it fails.
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
    int8_twins: bool,
    tuning: Option<crate::tuning::Source>,
    /// ONNX models to import, with their options.
    #[cfg(feature = "import")]
    onnx: Vec<(PathBuf, ImportOptions)>,
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
    /// Notes for the user: tuning records left out, and why (printed as `cargo:warning`
    /// in a build script).
    pub notes: Vec<String>,
    /// What each ONNX model imported, in the order given (its spec and weights are also
    /// written next to the generated source, as `<model>.json` and `<model>.safetensors`).
    /// With the `import` feature.
    #[cfg(feature = "import")]
    pub imported: Vec<Imported>,
    /// Every input file read: specs, weights, ONNX models and their external data files
    /// (what `cargo:rerun-if-changed` lists).
    pub inputs: Vec<PathBuf>,
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

    /// Adds an ONNX model, imported with the default options (grouped Convs only, the
    /// model's input shapes, the model name from the file name): see [`Builder::onnx_with`].
    /// With the `import` feature.
    #[cfg(feature = "import")]
    pub fn onnx(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.onnx_with(path, ImportOptions::default())
    }

    /// Adds an ONNX model: [`Builder::generate`] imports it ([`crate::import::import_file`],
    /// external data from the model's directory), bakes the imported weights and generates
    /// its kernels in one step, as `gspc-codegen import` then `generate --weights` would.
    /// The imported spec and weights are written next to the generated source
    /// (`<model>.json`, `<model>.safetensors`) for inspection. Its generated files come
    /// after those of the spec files. With the `import` feature.
    #[cfg(feature = "import")]
    pub fn onnx_with(&mut self, path: impl AsRef<Path>, options: ImportOptions) -> &mut Self {
        self.onnx.push((path.as_ref().to_path_buf(), options));
        self
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

    /// Plans from a tuning database (see [`crate::tuning`]): records of this generator
    /// version and target, for the CPU `cpu` (default: this machine's when the code is for
    /// it, else the database's only CPU for the target) at `threads` threads. In a build
    /// script, [`Builder::tuning_from_env`] reads `GSPC_TUNING` instead.
    pub fn tuning(
        &mut self,
        file: impl AsRef<Path>,
        cpu: Option<&str>,
        threads: usize,
    ) -> &mut Self {
        self.tuning = Some(crate::tuning::Source {
            file: file.as_ref().to_path_buf(),
            cpu: cpu.map(String::from),
            threads,
        });
        self
    }

    /// [`Builder::tuning`] from the environment, for build scripts: `GSPC_TUNING=FILE`,
    /// `GSPC_CPU=NAME` (optional) and `GSPC_TUNING_THREADS=N` (default 1); prints the
    /// `cargo:rerun-if-env-changed` lines. Nothing when `GSPC_TUNING` is unset or empty.
    pub fn tuning_from_env(&mut self) -> Result<&mut Self, Error> {
        for v in ["GSPC_TUNING", "GSPC_CPU", "GSPC_TUNING_THREADS"] {
            println!("cargo:rerun-if-env-changed={v}");
        }
        let Some(file) = std::env::var_os("GSPC_TUNING").filter(|f| !f.is_empty()) else {
            return Ok(self);
        };
        let threads = match std::env::var("GSPC_TUNING_THREADS") {
            Err(_) => 1,
            Ok(t) => match t.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(Error::option_value(
                        Setting::Tune,
                        format!("GSPC_TUNING_THREADS={t}"),
                        "not a thread count (1 or more)",
                    ));
                }
            },
        };
        let cpu = std::env::var("GSPC_CPU").ok().filter(|c| !c.is_empty());
        Ok(self.tuning(PathBuf::from(file), cpu.as_deref(), threads))
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

    /// Also generates the int8 twin of every spec given without weights
    /// ([`crate::Spec::int8_twin`]: `<model>_int8`, the same layers in int8), for
    /// benchmarks and tests.
    pub fn int8_twins(&mut self, on: bool) -> &mut Self {
        self.int8_twins = on;
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
                    return Err(Error::option(
                        Setting::OutDir,
                        "none given: call out_dir() outside a build script",
                    ));
                }
            },
        };
        let target = self
            .target
            .clone()
            .or_else(Target::from_cargo_env)
            .unwrap_or_else(Target::host);
        let tuning = match &self.tuning {
            None => None,
            Some(src) => Some(src.load(&target)?),
        };
        let notes = tuning.as_ref().map_or(Vec::new(), |t| t.notes.clone());
        if metadata {
            for n in &notes {
                println!("cargo:warning=gspc: {n}");
            }
        }
        let options = Options {
            target,
            isas: self.isas.clone(),
            outline_tiles: self.outline_tiles,
            tuning,
            int8_twins: self.int8_twins,
        };
        options.isas()?;

        let cargo_out = std::env::var_os("OUT_DIR").map(PathBuf::from);
        let mut inputs: Vec<PathBuf> = Vec::new();
        let mut input = |path: PathBuf| {
            if metadata && watched(&path, cargo_out.as_deref()) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            inputs.push(path);
        };
        let tuning_file = self.tuning.iter().map(|t| &t.file);
        for path in self
            .specs
            .iter()
            .chain(self.weights.iter().map(|(_, p)| p))
            .chain(tuning_file)
        {
            input(path.clone());
        }
        let specs = if self.specs.is_empty() && self.has_onnx() {
            Vec::new()
        } else {
            crate::read_specs(&self.specs)?
        };
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
            let unbaked = !self.weights.iter().any(|(at, _)| *at == i);
            if self.int8_twins && unbaked {
                match generate(&s.int8_twin(), &options) {
                    Ok(g) => generated.push(g),
                    Err(e) => errors.push(e),
                }
            }
        }
        #[cfg(feature = "import")]
        let imported =
            self.import_models(&specs, &options, &mut input, &mut generated, &mut errors);
        if !errors.is_empty() {
            return Err(Error::combine(errors));
        }

        std::fs::create_dir_all(&out_dir)
            .map_err(|e| Error::io(out_dir.display().to_string(), FileOp::CreateOutputDir, e))?;
        let mut files = Vec::new();
        for g in &generated {
            let path = out_dir.join(&g.file_name);
            write_if_changed(&path, g.code.as_bytes())?;
            if let Some(w) = &g.weights {
                write_if_changed(&out_dir.join(&w.file_name), &w.bytes)?;
            }
            files.push(path);
        }
        #[cfg(feature = "import")]
        for i in &imported {
            write_if_changed(
                &out_dir.join(format!("{}.json", i.model)),
                i.spec_json.as_bytes(),
            )?;
            write_if_changed(
                &out_dir.join(format!("{}.safetensors", i.model)),
                &i.weights,
            )?;
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
            notes,
            #[cfg(feature = "import")]
            imported,
            inputs,
        })
    }

    /// Imports every ONNX model and generates its kernels, after the specs' (`specs`):
    /// what each imported, in order; problems go into `errors`.
    #[cfg(feature = "import")]
    fn import_models(
        &self,
        specs: &[crate::Spec],
        options: &Options,
        input: &mut dyn FnMut(PathBuf),
        generated: &mut Vec<Generated>,
        errors: &mut Vec<Error>,
    ) -> Vec<Imported> {
        let mut imported = Vec::new();
        for (path, import_options) in &self.onnx {
            input(path.clone());
            let result = crate::import::import_file(path, import_options).and_then(|i| {
                let dir = crate::import::ModelDir::of_model(path);
                for f in &i.data_files {
                    input(dir.dir().join(f));
                }
                let taken = specs
                    .iter()
                    .map(|s| (&s.model, &s.file))
                    .chain(imported.iter().map(|o: &Imported| (&o.model, &o.spec.file)))
                    .find(|(m, _)| **m == i.model);
                if let Some((_, other)) = taken {
                    return Err(Error::Model(vec![crate::Diagnostic {
                        file: i.spec.file.clone(),
                        path: "model".to_string(),
                        message: format!(
                            "\"{}\" is also the model name of {other}; model names must be unique in one build (name it with ImportOptions::model)",
                            i.model
                        ),
                    }]));
                }
                let step = import_step(path, import_options, &i.model);
                let w = crate::weights::from_safetensors(&i.spec.file, &i.weights, &i.spec)?;
                let g = crate::generate_inner(&i.spec, Some(&w), options, Some(&step))?;
                Ok((i, g))
            });
            match result {
                Ok((i, g)) => {
                    generated.push(g);
                    imported.push(i);
                }
                Err(e) => errors.push(e),
            }
        }
        imported
    }

    /// Whether any ONNX model was added.
    fn has_onnx(&self) -> bool {
        #[cfg(feature = "import")]
        return !self.onnx.is_empty();
        #[cfg(not(feature = "import"))]
        false
    }
}

/// The `gspc-codegen import` command that writes a model's spec and weights into `<DIR>`.
#[cfg(feature = "import")]
fn import_step(path: &Path, options: &ImportOptions, model: &str) -> ImportStep {
    let spec = format!("<DIR>/{model}.json");
    let weights = format!("<DIR>/{model}.safetensors");
    let mut command = format!(
        "gspc-codegen import {} --out {spec} --weights {weights}",
        shell_word(&path.display().to_string())
    );
    if options.all_convs {
        command.push_str(" --all-convs");
    }
    for (name, dims) in &options.input_shapes {
        let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
        command.push_str(&format!(
            " --input-shape {}",
            shell_word(&format!("{name}={}", dims.join("x")))
        ));
    }
    if let Some(m) = &options.model {
        command.push_str(&format!(" --model {}", shell_word(m)));
    }
    if let Some(r) = options.requantization {
        command.push_str(&format!(" --requantization {}", r.as_str()));
    }
    ImportStep {
        command,
        spec,
        weights,
    }
}

/// The index: `include!` of every generated file and the `MODELS` list.
fn index_file(generated: &[Generated], files: &[PathBuf]) -> Result<String, Error> {
    let mut s = format!(
        "// @generated by gspc-codegen {} -- do not edit.\n\n",
        crate::VERSION
    );
    for f in files {
        let abs = std::path::absolute(f)
            .map_err(|e| Error::io(f.display().to_string(), FileOp::ResolveOutput, e))?;
        let abs = abs.to_str().ok_or_else(|| {
            Error::option_value(
                Setting::OutDir,
                abs.display().to_string(),
                "the path is not valid UTF-8, which include! needs",
            )
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
    std::fs::write(path, contents)
        .map_err(|e| Error::io(path.display().to_string(), FileOp::Write, e))
}

/// Whether a build script should watch `path` with `cargo:rerun-if-changed`: not when it
/// lies in cargo's `OUT_DIR`. Such a file is the build script's own output (a spec or
/// weights it wrote before calling the builder), newer than the script's start on every
/// run, so watching it would make cargo rerun the script, and rebuild every generated
/// kernel, on every build.
fn watched(path: &Path, cargo_out: Option<&Path>) -> bool {
    !cargo_out.is_some_and(|out| path.starts_with(out))
}

#[cfg(test)]
mod tests {
    use super::watched;
    use std::path::Path;

    #[test]
    fn files_in_out_dir_are_not_watched() {
        let out = Path::new("/build/target/debug/build/x-1234/out");
        assert!(!watched(&out.join("random_layers_0.json"), Some(out)));
        assert!(!watched(&out.join("sub/w.safetensors"), Some(out)));
        assert!(watched(Path::new("specs/model.json"), Some(out)));
        assert!(watched(
            Path::new("/build/target/debug/build/x-1234/outside.json"),
            Some(out)
        ));
        assert!(watched(&out.join("random_layers_0.json"), None));
    }
}
