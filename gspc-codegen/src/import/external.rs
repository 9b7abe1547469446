//! ONNX external data: tensors whose bytes are in another file (`data_location = EXTERNAL`,
//! keys `location`, `offset`, `length`), as `torch.onnx.export(..., dynamo=True)` and
//! `onnx.save_model(..., save_as_external_data=True)` write them.
//!
//! The location comes from an untrusted model. Before any file is touched it must be a
//! relative path of plain components (no absolute path, drive, `..`, `.`, empty component,
//! backslash or control character); [`ModelDir`] then refuses a file that resolves (through
//! symbolic links) outside the model's directory or is not a regular file. The range must
//! lie inside the file and hold exactly the tensor's bytes; only that range is read (seek
//! and read), never the whole file.

use super::onnx::{TensorProto, data_type};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where the bytes of tensors stored outside the model come from.
///
/// `location` is always a checked relative path (see [`check_location`]): components
/// separated by `/`, none of them empty, `.` or `..`.
pub trait ExternalData {
    /// The size in bytes of the file at `location`, or why it cannot be used (a message
    /// without the tensor's or the file's name: the caller adds them).
    fn size(&mut self, location: &str) -> Result<u64, String>;

    /// Fills `buf` with the bytes of the file at `location` from `offset`
    /// (`offset + buf.len()` is at most [`ExternalData::size`]).
    fn read(&mut self, location: &str, offset: u64, buf: &mut [u8]) -> Result<(), String>;
}

/// No external data: for callers that have the model's bytes only (every external tensor
/// is refused, naming the tensor and the file).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFiles;

impl ExternalData for NoFiles {
    fn size(&mut self, _location: &str) -> Result<u64, String> {
        Err("this import was given the model's bytes only and reads no files: import the model from its path (import::import_file, gspc-codegen import) or save it with its weights inside (onnx.save_model(model, path, save_as_external_data=False))".to_string())
    }

    fn read(&mut self, location: &str, _offset: u64, _buf: &mut [u8]) -> Result<(), String> {
        self.size(location).map(|_| ())
    }
}

/// Files in memory, by location: for tests, fuzzing and callers that have the bytes.
#[derive(Clone, Debug, Default)]
pub struct InMemory {
    /// The files' contents by location (`weights/model.data`).
    pub files: HashMap<String, Vec<u8>>,
}

impl ExternalData for InMemory {
    fn size(&mut self, location: &str) -> Result<u64, String> {
        match self.files.get(location) {
            Some(f) => Ok(f.len() as u64),
            None => Err("no such file".to_string()),
        }
    }

    fn read(&mut self, location: &str, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let f = self.files.get(location).ok_or("no such file")?;
        let range = usize::try_from(offset)
            .ok()
            .and_then(|o| f.get(o..o.checked_add(buf.len())?))
            .ok_or("the range is beyond the end of the file")?;
        buf.copy_from_slice(range);
        Ok(())
    }
}

/// Files in the model's directory or below it, opened once each.
#[derive(Debug)]
pub struct ModelDir {
    dir: PathBuf,
    /// The directory, canonical (symbolic links resolved); computed on first use.
    root: Option<Result<PathBuf, String>>,
    open: HashMap<String, Result<(File, u64), String>>,
}

impl ModelDir {
    /// Data files relative to `dir`.
    pub fn new(dir: impl AsRef<Path>) -> ModelDir {
        ModelDir {
            dir: dir.as_ref().to_path_buf(),
            root: None,
            open: HashMap::new(),
        }
    }

    /// Data files relative to the directory of the model file `model`.
    pub fn of_model(model: impl AsRef<Path>) -> ModelDir {
        let dir = match model.as_ref().parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        ModelDir::new(dir)
    }

    /// The directory data files are read from (as given).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn root(&mut self) -> Result<PathBuf, String> {
        let dir = &self.dir;
        self.root
            .get_or_insert_with(|| {
                std::fs::canonicalize(dir).map_err(|e| {
                    format!(
                        "cannot resolve the model's directory {}: {e}",
                        dir.display()
                    )
                })
            })
            .clone()
    }

    fn file(&mut self, location: &str) -> Result<&mut (File, u64), String> {
        if !self.open.contains_key(location) {
            let opened = self.open_checked(location);
            self.open.insert(location.to_string(), opened);
        }
        match self.open.get_mut(location) {
            Some(Ok(f)) => Ok(f),
            Some(Err(e)) => Err(e.clone()),
            None => Err("internal: the file was not opened".to_string()),
        }
    }

    fn open_checked(&mut self, location: &str) -> Result<(File, u64), String> {
        check_location(location)?;
        let root = self.root()?;
        let path = self.dir.join(location);
        let real = std::fs::canonicalize(&path).map_err(|e| {
            format!(
                "cannot open it in the model's directory {}: {e}",
                self.dir.display()
            )
        })?;
        if !real.starts_with(&root) {
            return Err(format!(
                "it resolves to {}, outside the model's directory {} (through a symbolic link); external data must be in the model's directory or below it",
                real.display(),
                root.display()
            ));
        }
        // Checked before opening too: opening a FIFO for reading would wait for a writer.
        let regular = |m: std::io::Result<std::fs::Metadata>| match m {
            Ok(m) if m.is_file() => Ok(m),
            Ok(_) => Err("it is not a regular file".to_string()),
            Err(e) => Err(format!("cannot read its size: {e}")),
        };
        regular(std::fs::metadata(&real))?;
        let file = File::open(&real).map_err(|e| format!("cannot open it: {e}"))?;
        let meta = regular(file.metadata())?;
        Ok((file, meta.len()))
    }
}

impl ExternalData for ModelDir {
    fn size(&mut self, location: &str) -> Result<u64, String> {
        self.file(location).map(|f| f.1)
    }

    fn read(&mut self, location: &str, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let (file, _) = self.file(location)?;
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(buf))
            .map_err(|e| format!("cannot read {} bytes at offset {offset}: {e}", buf.len()))
    }
}

/// Checks a location from a model: a relative path of plain components separated by `/`.
pub fn check_location(location: &str) -> Result<(), String> {
    if location.is_empty() {
        return Err("the location is empty".to_string());
    }
    if location.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(
            "the location holds a backslash or a control character; components are separated by \"/\""
                .to_string(),
        );
    }
    let drive =
        location.as_bytes().get(1) == Some(&b':') && location.as_bytes()[0].is_ascii_alphabetic();
    if location.starts_with('/') || drive || Path::new(location).is_absolute() {
        return Err(
            "the location is an absolute path; external data must be a path relative to the model's directory"
                .to_string(),
        );
    }
    for part in location.split('/') {
        match part {
            "" => {
                return Err("the location has an empty component".to_string());
            }
            "." => {
                return Err("the location has a \".\" component".to_string());
            }
            ".." => {
                return Err("the location has a \"..\" component; external data must be in the model's directory or below it".to_string());
            }
            _ => {}
        }
    }
    Ok(())
}

/// Bytes per element of the types external data is read for.
fn element_size(t: i32) -> Option<u64> {
    match t {
        data_type::FLOAT | data_type::INT32 | data_type::UINT32 => Some(4),
        data_type::DOUBLE | data_type::INT64 | data_type::UINT64 => Some(8),
        data_type::FLOAT16 | data_type::BFLOAT16 | data_type::INT16 | data_type::UINT16 => Some(2),
        data_type::INT8 | data_type::UINT8 | data_type::BOOL => Some(1),
        _ => None,
    }
}

/// Whether a tensor's data is in another file.
pub(crate) fn is_external(t: &TensorProto) -> bool {
    t.data_location == super::onnx::DATA_LOCATION_EXTERNAL || !t.external_data.is_empty()
}

/// Where one tensor's data is: the checked location and range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub location: String,
    pub offset: u64,
    pub length: u64,
}

/// Why a tensor's external data cannot be read: about the file (every tensor in it shares
/// it) or about this tensor's range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// No usable location: the message.
    NoLocation(String),
    /// The file named by the location cannot be used: the location and the message.
    File(String, String),
    /// The range or the length: the location and the message.
    Range(String, String),
}

fn key<'t>(t: &'t TensorProto, k: &str) -> Option<&'t str> {
    t.external_data
        .iter()
        .rev()
        .find(|e| e.key == k)
        .map(|e| e.value.as_str())
}

/// The tensor's location and range, checked against the tensor (`elements`) and the file.
pub(crate) fn range(
    t: &TensorProto,
    elements: u64,
    data: &mut dyn ExternalData,
) -> Result<Range, Problem> {
    let Some(location) = key(t, "location") else {
        return Err(Problem::NoLocation(
            "its external data has no \"location\" entry".to_string(),
        ));
    };
    let loc = location.to_string();
    let at = |m: String| Problem::Range(loc.clone(), m);
    check_location(location).map_err(|m| Problem::File(loc.clone(), m))?;
    let number = |k: &str| -> Result<Option<u64>, Problem> {
        match key(t, k) {
            None => Ok(None),
            Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                at(format!(
                    "{k} \"{}\" is not a whole number of bytes",
                    super::quote(v)
                ))
            }),
        }
    };
    let offset = number("offset")?.unwrap_or(0);
    let length = number("length")?;
    let size = element_size(t.data_type).ok_or_else(|| {
        at(format!(
            "data type {} is not read from external data",
            data_type::name(t.data_type)
        ))
    })?;
    let want = elements
        .checked_mul(size)
        .ok_or_else(|| at("the tensor is too large".to_string()))?;
    let tensor = format!(
        "dims {} of {} are {want} bytes",
        super::shape::show_i(&t.dims),
        data_type::name(t.data_type)
    );
    if let Some(len) = length
        && len != want
    {
        return Err(at(format!(
            "length {len} does not match the tensor: {tensor}"
        )));
    }
    let file_size = data
        .size(location)
        .map_err(|m| Problem::File(loc.clone(), m))?;
    if offset > file_size {
        return Err(at(format!(
            "offset {offset} is beyond the end of the file ({file_size} bytes)"
        )));
    }
    let length = match length {
        Some(len) => {
            if offset.checked_add(len).is_none_or(|end| end > file_size) {
                return Err(at(format!(
                    "offset {offset} + length {len} goes beyond the end of the file ({file_size} bytes)"
                )));
            }
            len
        }
        None => {
            let rest = file_size - offset;
            if rest != want {
                return Err(at(format!(
                    "no length is given and the {rest} bytes from offset {offset} to the end of the file do not match the tensor: {tensor}"
                )));
            }
            rest
        }
    };
    Ok(Range {
        location: loc,
        offset,
        length,
    })
}

/// The tensor with its data read into `raw_data` (a checked range).
pub(crate) fn load(
    t: &TensorProto,
    r: &Range,
    data: &mut dyn ExternalData,
) -> Result<TensorProto, Problem> {
    let len = usize::try_from(r.length)
        .map_err(|_| Problem::Range(r.location.clone(), "too large for this machine".into()))?;
    let mut buf = vec![0u8; len];
    data.read(&r.location, r.offset, &mut buf)
        .map_err(|m| Problem::Range(r.location.clone(), m))?;
    Ok(TensorProto {
        dims: t.dims.clone(),
        data_type: t.data_type,
        name: t.name.clone(),
        raw_data: buf,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        for ok in ["w.bin", "model.onnx.data", "data/w.bin", "a b/c..d", "...x"] {
            assert_eq!(check_location(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("C:/x", "absolute"),
            ("../w.bin", "\"..\""),
            ("a/../../w.bin", "\"..\""),
            ("a//b", "empty component"),
            ("a/", "empty component"),
            ("./w.bin", "\".\""),
            ("a\\..\\b", "backslash"),
            ("w\0.bin", "control"),
            ("w\n.bin", "control"),
        ] {
            let e = check_location(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
