//! Helpers shared by the importer's tests (`import.rs`, `import_ext.rs`,
//! `import_shapes.rs`, `import_int8.rs`) and `cli.rs`: fixtures, error messages, ONNX models built message by
//! message, temporary directories and runs of the binary.
//!
//! Each test file is its own crate and uses only part of this module.
#![allow(dead_code)]

use assert_cmd::assert::Assert;
use gspc_codegen::Error;
use gspc_codegen::import::onnx::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor,
    ValueInfoProto, attribute_type, data_type,
};
use gspc_codegen::import::{ImportOptions, Imported};
use prost::Message;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------
// files, results and runs

pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `dir`, relative to the crate directory.
pub fn fixtures(dir: &str) -> PathBuf {
    crate_dir().join(dir)
}

/// The bytes of `dir/name`.
pub fn fixture(dir: &str, name: &str) -> Vec<u8> {
    std::fs::read(fixtures(dir).join(name)).expect("read the fixture")
}

/// The messages of an import that must fail.
pub fn messages(r: Result<Imported, Error>) -> Vec<String> {
    match r {
        Ok(i) => panic!("expected an error, imported {:?}", i.spec_json),
        Err(e) => e.messages(),
    }
}

pub fn all_convs() -> ImportOptions {
    ImportOptions {
        all_convs: true,
        ..Default::default()
    }
}

/// Little-endian f32 bytes as values.
/// An imported layer's shape as the runtime's reference takes it.
pub fn layer_info(l: &gspc_codegen::LayerSpec) -> gspc_runtime::LayerInfo {
    gspc_runtime::LayerInfo {
        name: "layer",
        in_channels: l.in_channels,
        out_channels: l.out_channels,
        groups: l.groups,
        kernel: l.kernel,
        stride: l.stride,
        padding: l.padding,
        dilation: l.dilation,
        input: l.input,
        output: l.output(),
        bias: l.bias,
        activation: l.activation,
        count: 1,
    }
}

pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Values as little-endian f32 bytes.
pub fn le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A fresh temporary directory (tempfile's), removed on drop.
pub struct TempDir(pub tempfile::TempDir);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("gspc-test-{name}-"))
            .tempdir()
            .expect("create a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.0.path().join(p)
    }

    /// `p` under the directory, as a string argument.
    pub fn arg(&self, p: &str) -> String {
        self.path(p).display().to_string()
    }
}

/// `gspc-codegen args`, run in the crate directory to its end (assert_cmd's command: its
/// failures show the exit code, stdout and stderr).
pub fn gspc<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Assert {
    assert_cmd::Command::cargo_bin("gspc-codegen")
        .expect("the gspc-codegen binary")
        .current_dir(crate_dir())
        .args(args)
        .assert()
}

/// A small deterministic generator (xorshift64*), no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------
// ONNX messages

pub fn attr(name: &str, r#type: i32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type,
        ..Default::default()
    }
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        ..attr(name, attribute_type::INT)
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, attribute_type::INTS)
    }
}

pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        ..attr(name, attribute_type::FLOAT)
    }
}

pub fn attr_floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: v.to_vec(),
        ..attr(name, attribute_type::FLOATS)
    }
}

pub fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        ..attr(name, attribute_type::STRING)
    }
}

pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.to_string(),
        name: name.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

/// A float tensor with its values as raw data.
pub fn tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        raw_data: le(values),
        ..Default::default()
    }
}

/// A float tensor with its values in `float_data`.
pub fn floats(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        float_data: data.to_vec(),
        ..Default::default()
    }
}

/// An int64 tensor with its values in `int64_data`.
pub fn ints(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.to_vec(),
        data_type: data_type::INT64,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

/// A float tensor whose data is elsewhere: the `external_data` entries as given.
pub fn external(name: &str, dims: &[i64], entries: &[(&str, &str)]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        data_location: 1,
        external_data: entries
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        ..Default::default()
    }
}

/// One dimension of a value's shape: a number, or (as text) a number or a symbol.
pub trait Dim {
    fn dimension(&self) -> Dimension;
}

impl Dim for i64 {
    fn dimension(&self) -> Dimension {
        Dimension {
            dim_value: Some(*self),
            ..Default::default()
        }
    }
}

impl Dim for &str {
    fn dimension(&self) -> Dimension {
        match self.parse::<i64>() {
            Ok(v) => v.dimension(),
            Err(_) => Dimension {
                dim_param: Some(self.to_string()),
                ..Default::default()
            },
        }
    }
}

/// A value of float tensors with these dims.
pub fn value<D: Dim>(name: &str, dims: &[D]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(Dim::dimension).collect(),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A model of one graph "g" with these nodes, initializers and inputs, the named outputs
/// and the standard operator set `opset`; its bytes.
pub fn model(
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: &[&str],
    opset: i64,
) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            name: "g".to_string(),
            node: nodes,
            initializer,
            input: inputs,
            output: outputs
                .iter()
                .map(|o| ValueInfoProto {
                    name: o.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}
