//! Errors: a typed enum whose variants are the kinds of failure (a file that cannot be read
//! or written, a spec, weights or model that break the rules, a wrong setting, a generator
//! bug), every problem collected before failing, each message naming the file, the place in
//! it (JSON path, tensor or graph node), the value and the rule.
//!
//! Messages describe values, never command-line flags: a front-end that takes settings
//! from flags names them itself ([`Error::Option`] carries the [`Setting`]).

use std::fmt;

/// One problem found in an input file: a spec, a weights file or an ONNX model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the caller named it (empty when the values came from memory).
    pub file: String,
    /// Where in the file: a spec's JSON path (`layers[2].groups`), a weights file's tensor
    /// (`conv1.weight`), or a model's graph path (`graph.node[3] "conv" (Conv)`); empty for
    /// the whole file.
    pub path: String,
    /// What is wrong: the value and the rule it breaks, lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [&self.file, &self.path, &self.message];
        let mut first = true;
        for p in parts.into_iter().filter(|p| !p.is_empty()) {
            if !first {
                f.write_str(": ")?;
            }
            f.write_str(p)?;
            first = false;
        }
        Ok(())
    }
}

/// What the generator was doing with a file when the operating system failed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileOp {
    /// Reading a spec.
    ReadSpec,
    /// Reading a weights file.
    ReadWeights,
    /// Listing a directory of `.npy` weights.
    ReadWeightsDir,
    /// Reading an ONNX model.
    ReadModel,
    /// Creating the output directory.
    CreateOutputDir,
    /// Writing an output file.
    Write,
    /// Making an output path absolute (for the index's `include!`).
    ResolveOutput,
    /// Reading a tuning database.
    ReadTuning,
    /// Running a tool (cargo, a tuning batch, its runner).
    Run,
}

impl FileOp {
    /// Whether the file is one of the caller's inputs (spec, weights, model), not an output.
    pub fn is_input(self) -> bool {
        matches!(
            self,
            FileOp::ReadSpec
                | FileOp::ReadWeights
                | FileOp::ReadWeightsDir
                | FileOp::ReadModel
                | FileOp::ReadTuning
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            FileOp::ReadSpec => "cannot read the spec",
            FileOp::ReadWeights => "cannot read the weights",
            FileOp::ReadWeightsDir => "cannot read the weights directory",
            FileOp::ReadModel => "cannot read the model",
            FileOp::CreateOutputDir => "cannot create the output directory",
            FileOp::Write => "cannot write",
            FileOp::ResolveOutput => "cannot make the path absolute",
            FileOp::ReadTuning => "cannot read the tuning database",
            FileOp::Run => "cannot run",
        }
    }
}

/// A setting a caller gives the generator (an option of [`crate::Options`],
/// [`crate::Builder`] or the importer's `ImportOptions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setting {
    /// The target triple.
    Target,
    /// The ISA variants to emit.
    Isas,
    /// The spec files to read.
    Specs,
    /// The weights files.
    Weights,
    /// The output directory.
    OutDir,
    /// The shape of a graph input of a model to import.
    InputShape,
    /// The model name of an import.
    ModelName,
    /// The CPU whose tuning records to use.
    Cpu,
    /// A tuning setting (budget, runner, threads, layers).
    Tune,
}

impl Setting {
    /// The setting as messages name it: `target`, `ISA`, `input shape`...
    pub fn as_str(self) -> &'static str {
        match self {
            Setting::Target => "target",
            Setting::Isas => "ISA",
            Setting::Specs => "spec files",
            Setting::Weights => "weights",
            Setting::OutDir => "output directory",
            Setting::InputShape => "input shape",
            Setting::ModelName => "model name",
            Setting::Cpu => "CPU",
            Setting::Tune => "tuning",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong when generating kernels, one variant per kind of failure.
#[derive(Debug)]
pub enum Error {
    /// A file could not be read or written; the operating system's error is the
    /// [`source`](std::error::Error::source).
    Io {
        /// The file.
        file: String,
        /// What was being done with it.
        op: FileOp,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A spec is not well-formed JSON.
    Syntax {
        /// The spec file.
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A spec is well-formed JSON but breaks the spec's rules (all problems, in file order).
    Invalid(Vec<Diagnostic>),
    /// Weights do not fit their spec, or the file holding them is malformed: each problem
    /// names the file, the tensor (its `path`) and the rule.
    Weights(Vec<Diagnostic>),
    /// An ONNX model cannot be imported: each problem names the file, the graph node or
    /// value (its `path`) and the rule.
    Model(Vec<Diagnostic>),
    /// A setting is wrong (an unknown target triple or ISA name, say).
    Option {
        /// Which setting.
        setting: Setting,
        /// The value as given, quoted when it helps, if the message does not show it.
        value: Option<String>,
        /// What is wrong with it: lowercase, no trailing period.
        message: String,
    },
    /// The generator produced something it should not have: a bug in gspc-codegen.
    Internal(String),
    /// Several of the above, from several files.
    Many(Vec<Error>),
}

impl Error {
    /// An [`Error::Io`].
    pub fn io(file: impl Into<String>, op: FileOp, source: std::io::Error) -> Error {
        Error::Io {
            file: file.into(),
            op,
            source,
        }
    }

    /// An [`Error::Option`] whose message shows the value.
    pub fn option(setting: Setting, message: impl Into<String>) -> Error {
        Error::Option {
            setting,
            value: None,
            message: message.into(),
        }
    }

    /// An [`Error::Option`] about `value`, which the message does not show.
    pub fn option_value(
        setting: Setting,
        value: impl Into<String>,
        message: impl Into<String>,
    ) -> Error {
        Error::Option {
            setting,
            value: Some(value.into()),
            message: message.into(),
        }
    }

    /// Every error, flattened: the members of [`Error::Many`] (recursively), else itself.
    pub fn errors(&self) -> Vec<&Error> {
        match self {
            Error::Many(es) => es.iter().flat_map(Error::errors).collect(),
            e => vec![e],
        }
    }

    /// Every error, flattened, one message per line. [`Error::Option`] names its setting
    /// with `name` (e.g. a command-line flag), then the value.
    pub fn messages_naming(&self, name: impl Fn(Setting) -> String) -> Vec<String> {
        self.errors()
            .into_iter()
            .flat_map(|e| match e {
                Error::Io { file, op, source } => {
                    vec![format!("{file}: {}: {source}", op.as_str())]
                }
                Error::Syntax {
                    file,
                    line,
                    column,
                    message,
                } => vec![format!("{file}:{line}:{column}: malformed JSON: {message}")],
                Error::Invalid(ds) | Error::Weights(ds) | Error::Model(ds) => {
                    ds.iter().map(|d| d.to_string()).collect()
                }
                Error::Option {
                    setting,
                    value,
                    message,
                } => vec![match value {
                    Some(v) => format!("{} {v}: {message}", name(*setting)),
                    None => format!("{}: {message}", name(*setting)),
                }],
                Error::Internal(m) => vec![format!(
                    "internal error (a bug in gspc-codegen, please report it): {m}"
                )],
                Error::Many(_) => Vec::new(),
            })
            .collect()
    }

    /// Every error, flattened, one message per line.
    pub fn messages(&self) -> Vec<String> {
        self.messages_naming(|s| s.as_str().to_string())
    }

    /// Combines a list of errors into one (`Many` unless there is exactly one).
    pub fn combine(mut errors: Vec<Error>) -> Error {
        if errors.len() == 1 {
            errors.pop().unwrap_or(Error::Many(Vec::new()))
        } else {
            Error::Many(errors)
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.messages().join("\n"))
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
