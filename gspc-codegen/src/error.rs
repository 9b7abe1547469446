//! Errors: a typed enum, every problem of a spec collected before failing, each message
//! naming the file, the JSON path, the value and the rule.

use std::fmt;

/// One problem found in a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The spec file, as the caller named it.
    pub file: String,
    /// JSON path of the offending value, e.g. `layers[2].groups` (empty for the whole file).
    pub path: String,
    /// What is wrong: the value and the rule it breaks, lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

/// Everything that can go wrong when generating kernels.
#[derive(Debug)]
pub enum Error {
    /// A spec or output file could not be read or written.
    Io {
        /// The file.
        file: String,
        /// The operating system's message.
        message: String,
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
    /// A caller's option is wrong (an unknown target triple or ISA name, say).
    Option(String),
    /// The generator produced something it should not have: a bug in gspc-codegen.
    Internal(String),
    /// Several of the above, from several spec files.
    Many(Vec<Error>),
}

impl Error {
    /// Every error, flattened, one message per line.
    pub fn messages(&self) -> Vec<String> {
        match self {
            Error::Io { file, message } => vec![format!("{file}: {message}")],
            Error::Syntax {
                file,
                line,
                column,
                message,
            } => vec![format!("{file}:{line}:{column}: malformed JSON: {message}")],
            Error::Invalid(ds) => ds.iter().map(|d| d.to_string()).collect(),
            Error::Option(m) => vec![m.clone()],
            Error::Internal(m) => vec![format!(
                "internal error (a bug in gspc-codegen, please report it): {m}"
            )],
            Error::Many(es) => es.iter().flat_map(Error::messages).collect(),
        }
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
        let messages = self.messages();
        let n = messages.len();
        for (i, m) in messages.iter().enumerate() {
            f.write_str(m)?;
            if i + 1 < n {
                f.write_str("\n")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
