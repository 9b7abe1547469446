//! ONNX import: a model's (grouped) Conv nodes into a layer spec and their weights into
//! safetensors.
//!
//! [`import`] decodes the model ([`onnx`] holds the protobuf messages), infers the static
//! shape of every value from the graph inputs through the operators in between (or takes
//! it from `value_info` and the graph outputs), and turns every grouped Conv (every Conv
//! with [`ImportOptions::all_convs`]) into a [`crate::LayerSpec`]: channels and the weights
//! from the weight initializer, group, kernel, strides, symmetric pads, dilations, the
//! bias, the BatchNormalization and per-channel constant Mul/Add nodes that alone follow it
//! folded into its weights and bias, and a Relu or Clip(0, 6) that alone consumes the
//! result as the fused activation. Every problem found is reported at once, each naming the
//! node; no input bytes make it panic or allocate more than a small multiple of their
//! length. Tensors stored in external data files ([`external`]) are read by
//! [`import_file`] (next to the model) and [`import_with`] (from any [`ExternalData`]).
//!
//! ```no_run
//! let path = std::path::Path::new("model.onnx");
//! let imported = gspc_codegen::import::import_file(path, &Default::default())?;
//! std::fs::write("model.json", &imported.spec_json).unwrap();
//! std::fs::write("model.safetensors", &imported.weights).unwrap();
//! # Ok::<(), gspc_codegen::Error>(())
//! ```

pub mod external;
mod infer;
pub mod onnx;
mod quant;
mod shape;
mod tensor;

pub use external::{ExternalData, InMemory, ModelDir, NoFiles};
pub use infer::supported_ops;

use crate::error::{Diagnostic, Error, FileOp, Setting};
use crate::spec::{self, Spec};
use gspc_runtime::Activation;
use infer::{Attrs, Consts, Fail, Op};
use onnx::{GraphProto, ModelProto, NodeProto};
use prost::Message;
use shape::{AutoPad, Dims, WindowAttrs};
use std::collections::{HashMap, HashSet};

/// What to import and how.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Import every 2-D Conv, not only grouped ones (`group > 1`).
    pub all_convs: bool,
    /// Shapes of graph inputs, by name: they replace the model's (dynamic or not).
    pub input_shapes: Vec<(String, Vec<usize>)>,
    /// The model name (a Rust identifier); `None`: the file's stem, made an identifier.
    pub model: Option<String>,
    /// The requantization of imported int8 layers; `None`: `"fp32"`, ONNX Runtime's
    /// arithmetic.
    pub requantization: Option<gspc_runtime::quant::Requantization>,
}

/// A model's imported layers.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The model name (the spec's `model`).
    pub model: String,
    /// The layer spec, validated (its `file` is the ONNX file's name).
    pub spec: Spec,
    /// The spec as JSON text, one layer per line, in the format of `layer-specs/*.json`.
    pub spec_json: String,
    /// The weights as a safetensors file: `<layer>.weight` (f32 `[K, C / G, KH, KW]`) and,
    /// for layers with a bias, `<layer>.bias` (f32 `[K]`); I8 weights and an I32 bias for
    /// int8 layers.
    pub weights: Vec<u8>,
    /// Where each layer of the spec comes from, in spec order.
    pub layers: Vec<ImportedLayer>,
    /// Things the user should know: assumptions made, what was folded, fused or skipped,
    /// which operators the app still runs itself.
    pub notes: Vec<String>,
    /// The external data files read (locations relative to the model's directory, as the
    /// model names them), in the order first read.
    pub data_files: Vec<String>,
}

/// Where one imported layer comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedLayer {
    /// The layer's name in the spec.
    pub name: String,
    /// Index of the Conv in `graph.node`.
    pub node: usize,
    /// The Conv as messages name it: `graph.node[3] "name" (Conv)`.
    pub source: String,
    /// The BatchNormalization and per-channel constant Mul/Add nodes folded into the
    /// layer's weights and bias, in graph order, as messages name them.
    pub folded: Vec<String>,
    /// The fused Relu or Clip node as messages name it, if one was fused.
    pub fused: Option<String>,
    /// The ONNX value the layer reads (an int8 layer's: the quantized value, the input of
    /// the DequantizeLinear before the Conv, or the QLinearConv's input).
    pub input: String,
    /// The ONNX value the layer produces: the output of the last folded or fused node (the
    /// Conv's own output when none is; an int8 layer's: the output of the QuantizeLinear
    /// after the Conv, or the QLinearConv's output).
    pub output: String,
    /// The key of the weights in [`Imported::weights`].
    pub weight_key: String,
    /// The key of the bias in [`Imported::weights`], if the Conv has one.
    pub bias_key: Option<String>,
}

/// Parses an input shape written `NAME=1x3x224x224` (dimensions separated by `x` or `,`),
/// as the command line takes it.
pub fn parse_input_shape(arg: &str) -> Result<(String, Vec<usize>), Error> {
    let bad = |why: &str| {
        Error::option_value(
            Setting::InputShape,
            format!("{arg:?}"),
            format!("{why} (expected NAME=DIMS, e.g. input=1x3x224x224)"),
        )
    };
    let (name, dims) = arg
        .rsplit_once('=')
        .ok_or_else(|| bad("no '=' between the input's name and its dimensions"))?;
    if name.is_empty() {
        return Err(bad("the input's name is empty"));
    }
    let dims = dims
        .split(['x', 'X', ','])
        .map(|d| d.trim().parse::<usize>().ok().filter(|&n| n >= 1))
        .collect::<Option<Vec<_>>>()
        .filter(|d| !d.is_empty() && d.len() <= shape::MAX_RANK)
        .ok_or_else(|| bad("the dimensions must be whole numbers of 1 or more"))?;
    Ok((name.to_string(), dims))
}

/// `s` made a valid, non-keyword, lower snake case Rust identifier of at most 64 bytes:
/// other characters become `_` (runs collapsed, ends trimmed), `camelCase` splits at the
/// capital, a leading digit gets `conv_` in front, a keyword `_conv` behind. Empty when
/// nothing is left.
pub fn identifier(s: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower {
                out.push('_');
            }
            prev_lower = c.is_ascii_lowercase();
            out.push(c.to_ascii_lowercase());
        } else {
            if !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
        }
        if out.len() > 2 * spec::limits::MAX_NAME_LEN {
            break;
        }
    }
    let mut out = out.trim_matches('_').to_string();
    if out.is_empty() {
        return out;
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "conv_");
    }
    out = truncate(&out, spec::limits::MAX_NAME_LEN);
    if spec::check_identifier(&out).is_err() {
        out = truncate(&out, spec::limits::MAX_NAME_LEN - 5) + "_conv";
    }
    out
}

/// A PyTorch-style scope name shortened: `/down/branch1/branch1.0/branch1.0.0/Conv` ->
/// `down/branch1.0.0` (a scope that the next one repeats with a `.` suffix is dropped, and
/// so is a last part that is just the operator's type). Other names are kept.
fn scope_name(name: &str, op_type: &str) -> String {
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() < 2 {
        return name.to_string();
    }
    let mut keep = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() && *p == op_type {
            continue;
        }
        let repeated = parts.get(i + 1).is_some_and(|next| {
            next.strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('.'))
        });
        if !repeated {
            keep.push(*p);
        }
    }
    keep.join("/")
}

/// At most `n` bytes of an ASCII identifier, without a trailing `_`.
fn truncate(s: &str, n: usize) -> String {
    s.get(..n.min(s.len()))
        .unwrap_or(s)
        .trim_end_matches('_')
        .to_string()
}

/// The first value that is not finite, as a message: the weights reader
/// ([`crate::weights::check`]) refuses such weights, so the import does too, naming the node.
fn non_finite(values: &[f32]) -> Option<String> {
    let i = values.iter().position(|v| !v.is_finite())?;
    Some(format!(
        "value {} at flat index {i} is not finite",
        values[i]
    ))
}

/// A name for messages: escaped to one line, shortened past 60 characters.
pub(crate) fn quote(s: &str) -> String {
    let e = s.escape_debug().to_string();
    if e.chars().count() > 60 {
        let cut: String = e.chars().take(57).collect();
        format!("{cut}...")
    } else {
        e
    }
}

/// Imports the model in `bytes`. `file` names it in messages (and gives the default model
/// name). Reads no files: a tensor stored in an external data file is refused (see
/// [`import_file`] and [`import_with`]).
pub fn import(file: &str, bytes: &[u8], options: &ImportOptions) -> Result<Imported, Error> {
    import_with(file, bytes, options, &mut NoFiles)
}

/// Imports the model file at `path`, reading external data (see [`external`]) from its
/// directory ([`ModelDir`]). Messages name the file as `path` shows.
pub fn import_file(path: &std::path::Path, options: &ImportOptions) -> Result<Imported, Error> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::io(file.clone(), FileOp::ReadModel, e))?;
    import_with(&file, &bytes, options, &mut ModelDir::of_model(path))
}

/// Imports the model in `bytes`, with the data of tensors stored outside the model from
/// `data`. Every external reference is checked (location, range, length); only the data
/// the import uses is read: the weights and bias of the convs it imports and tensors of at
/// most [`EXTERNAL_READ_ALWAYS`] elements (BatchNormalization parameters, scales, shape
/// constants).
pub fn import_with(
    file: &str,
    bytes: &[u8],
    options: &ImportOptions,
    data: &mut dyn ExternalData,
) -> Result<Imported, Error> {
    let fail = |path: &str, message: String| {
        Error::Model(vec![Diagnostic {
            file: file.to_string(),
            path: path.to_string(),
            message,
        }])
    };
    let model = match &options.model {
        Some(m) => {
            spec::check_identifier(m).map_err(|e| Error::option(Setting::ModelName, e))?;
            m.clone()
        }
        None => {
            let stem = std::path::Path::new(file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Some(identifier(&stem))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "model".to_string())
        }
    };
    let proto = ModelProto::decode(bytes).map_err(|e| {
        fail(
            "",
            format!("not an ONNX model: the protobuf does not decode ({e})"),
        )
    })?;
    let graph = proto.graph.as_ref().ok_or_else(|| {
        fail(
            "",
            "not an ONNX model: it has no graph (ModelProto.graph)".to_string(),
        )
    })?;
    let opset = proto
        .opset_import
        .iter()
        .filter(|o| standard_domain(&o.domain))
        .map(|o| o.version)
        .max()
        .ok_or_else(|| {
            fail(
                "opset_import",
                "the model imports no version of the standard operator set (domain \"\")"
                    .to_string(),
            )
        })?;
    let resolved = resolve_external(file, graph, options, data);
    if !resolved.diags.is_empty() {
        return Err(Error::Model(resolved.diags));
    }
    let mut cx = Cx::new(file, graph, opset, resolved.tensors);
    cx.data_files = resolved.files;
    cx.inputs(options)?;
    cx.propagate();
    let layers = cx.convs(options);
    if !cx.diags.is_empty() {
        return Err(Error::Model(cx.diags));
    }
    let others = other_convs(graph);
    if layers.is_empty() {
        let convs = graph.node.iter().filter(|n| is_conv(n)).count();
        let message = if convs == 0 {
            match &others {
                Some(o) => format!("the model has no Conv node to import; {o}"),
                None => "the model has no Conv node to import".to_string(),
            }
        } else {
            format!(
                "the model has no grouped Conv to import: its {convs} Conv node(s) have group 1 (importing every Conv takes them too)"
            )
        };
        return Err(fail("graph", message));
    }
    if let Some(o) = others {
        cx.notes.push(o);
    }
    cx.finish(model, layers, options)
}

/// External tensors of at most this many elements are always read (when referenced by an
/// initializer): parameters to fold, shape constants. Larger ones only when an imported
/// Conv reads them as its weights or bias.
pub const EXTERNAL_READ_ALWAYS: u64 = 1 << 16;

/// The initializers whose data is in external files, read (by index into
/// `graph.initializer`), the locations read, and every problem.
struct Resolved {
    tensors: HashMap<usize, onnx::TensorProto>,
    files: Vec<String>,
    diags: Vec<Diagnostic>,
}

/// Checks every external reference of the initializers and reads the ones the import uses.
fn resolve_external(
    file: &str,
    graph: &GraphProto,
    options: &ImportOptions,
    data: &mut dyn ExternalData,
) -> Resolved {
    let mut out = Resolved {
        tensors: HashMap::new(),
        files: Vec::new(),
        diags: Vec::new(),
    };
    if !graph.initializer.iter().any(external::is_external) {
        return out;
    }
    // The values the imported convs read as weights and bias, through Identity nodes.
    let aliases: HashMap<&str, &str> = graph
        .node
        .iter()
        .filter(|n| is_op(n, "Identity") || is_op(n, "DequantizeLinear"))
        .filter_map(|n| Some((n.output.first()?.as_str(), n.input.first()?.as_str())))
        .collect();
    let mut needed: HashSet<&str> = HashSet::new();
    for n in graph.node.iter().filter(|n| is_conv(n)) {
        let group = Attrs(&n.attribute).int_or("group", 1).unwrap_or(1);
        if !(options.all_convs || group != 1) {
            continue;
        }
        // Conv: weights and bias (through DequantizeLinear); QLinearConv: w and B.
        let at: &[usize] = if is_op(n, "Conv") { &[1, 2] } else { &[3, 8] };
        for name in at.iter().filter_map(|&i| n.input.get(i)) {
            let mut name = name.as_str();
            for _ in 0..graph.node.len() {
                match aliases.get(name) {
                    Some(&src) => name = src,
                    None => break,
                }
            }
            needed.insert(name);
        }
    }
    // Problems with a file are reported once, with the number of other tensors in it.
    let mut file_problems: HashMap<String, (usize, usize)> = HashMap::new();
    let mut read_bytes: HashMap<String, u64> = HashMap::new();
    for (i, t) in graph.initializer.iter().enumerate() {
        if !external::is_external(t) {
            continue;
        }
        let path = format!("graph.initializer[{i}]");
        let named = if t.name.is_empty() {
            "the tensor".to_string()
        } else {
            format!("tensor \"{}\"", quote(&t.name))
        };
        let diag = |out: &mut Resolved, message: String| {
            out.diags.push(Diagnostic {
                file: file.to_string(),
                path: path.clone(),
                message,
            });
        };
        let elements = match tensor::dims(t).and_then(|d| shape::product(&d)) {
            Ok(n) => n,
            Err(e) => {
                diag(&mut out, e);
                continue;
            }
        };
        let problem = match external::range(t, elements, data) {
            Ok(r) if needed.contains(t.name.as_str()) || elements <= EXTERNAL_READ_ALWAYS => {
                let total = read_bytes.entry(r.location.clone()).or_insert(0);
                *total = total.saturating_add(r.length);
                let limit = data.size(&r.location).unwrap_or(0).saturating_mul(2);
                if *total > limit {
                    Err(external::Problem::Range(
                        r.location.clone(),
                        format!(
                            "the tensors read from this file overlap: more than twice its {} bytes in all",
                            limit / 2
                        ),
                    ))
                } else {
                    match external::load(t, &r, data) {
                        Ok(loaded) => {
                            if !out.files.contains(&r.location) {
                                out.files.push(r.location.clone());
                            }
                            out.tensors.insert(i, loaded);
                            Ok(())
                        }
                        Err(p) => Err(p),
                    }
                }
            }
            Ok(_) => Ok(()),
            Err(p) => Err(p),
        };
        match problem {
            Ok(()) => {}
            Err(external::Problem::NoLocation(m)) => diag(&mut out, format!("{named}: {m}")),
            Err(external::Problem::Range(loc, m)) => diag(
                &mut out,
                format!("{named}: external data \"{}\": {m}", quote(&loc)),
            ),
            Err(external::Problem::File(loc, m)) => match file_problems.get_mut(&loc) {
                Some((_, more)) => *more += 1,
                None => {
                    file_problems.insert(loc.clone(), (out.diags.len(), 0));
                    diag(
                        &mut out,
                        format!("{named}: external data \"{}\": {m}", quote(&loc)),
                    );
                }
            },
        }
    }
    for (at, more) in file_problems.into_values() {
        if more > 0
            && let Some(d) = out.diags.get_mut(at)
        {
            d.message
                .push_str(&format!(" (and {more} more tensor(s) stored in this file)"));
        }
    }
    out
}

/// Other convolution operators (ConvInteger, ConvTranspose, custom ones) the importer
/// leaves alone, as a sentence.
fn other_convs(graph: &GraphProto) -> Option<String> {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for n in &graph.node {
        if is_conv(n) || !n.op_type.contains("Conv") {
            continue;
        }
        let op = if standard_domain(&n.domain) {
            quote(&n.op_type)
        } else {
            format!("{}.{}", quote(&n.domain), quote(&n.op_type))
        };
        match kinds.iter().position(|(k, _)| *k == op) {
            Some(at) => {
                if let Some((_, c)) = kinds.get_mut(at) {
                    *c += 1;
                }
            }
            None if kinds.len() < SHOWN => kinds.push((op, 1)),
            None => {}
        }
    }
    if kinds.is_empty() {
        return None;
    }
    let list: Vec<String> = kinds.iter().map(|(k, c)| format!("{k} x{c}")).collect();
    Some(format!(
        "not imported: {} (gspc compiles the standard Conv, float or between QuantizeLinear and DequantizeLinear, and QLinearConv)",
        list.join(", ")
    ))
}

/// Whether `n` is a convolution the importer reads: Conv (float, or between QuantizeLinear
/// and DequantizeLinear nodes) or QLinearConv.
fn is_conv(n: &NodeProto) -> bool {
    is_op(n, "Conv") || is_op(n, "QLinearConv")
}

/// Whether `d` names the standard operator set.
fn standard_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

fn is_op(n: &NodeProto, op: &str) -> bool {
    n.op_type == op && standard_domain(&n.domain)
}

/// Why a value's shape is not known; reported once, at the first Conv that needs it.
enum Cause {
    /// A node's output: no shape rule (`why` = `None`) or the rule failed, and no
    /// value_info.
    Node {
        node: usize,
        output: usize,
        why: Option<String>,
    },
    /// A graph input's shape is dynamic, unknown or out of range.
    Input {
        input: usize,
        problem: String,
        hint: String,
    },
    /// A value nothing defines (before its use), or an initializer that cannot be read.
    Value { name: String, why: Option<String> },
}

/// Why a node's output shape is not known.
#[derive(Clone)]
enum Unknown {
    /// An input's shape is not known: this cause.
    Upstream(usize),
    /// This node: no rule (`None`) or the rule failed.
    Here(Option<String>),
}

/// A per-channel scale and shift: `w'[k] = w[k] * scale[k]`, `b'[k] = b[k] * scale[k] +
/// shift[k]`.
type Affine = (Vec<f64>, Vec<f64>);

/// One Conv to import.
struct Layer<'m> {
    node: usize,
    /// The node's name and its output's name: the layer's name comes from the first that
    /// makes an identifier (PyTorch scopes shortened, see `scope_name`).
    raw_names: [&'m str; 2],
    input: &'m str,
    output: &'m str,
    /// Nodes folded into the weights and bias (BatchNormalization, constant Mul/Add).
    folded: Vec<usize>,
    /// The first node after the layer that looked foldable but is not, and why.
    unfolded: Option<(usize, String)>,
    fused: Option<usize>,
    activation: Activation,
    x: Dims,
    weights: Vec<f32>,
    w_dims: Dims,
    bias: Option<Vec<f32>>,
    group: u64,
    stride: [u64; 2],
    padding: [u64; 2],
    dilation: [u64; 2],
    /// An int8 layer's parameters, weights and bias (then `weights` and `bias` are empty).
    quant: Option<quant::QuantLayer<'m>>,
}

impl Layer<'_> {
    fn has_bias(&self) -> bool {
        self.bias.is_some() || self.quant.as_ref().is_some_and(|q| q.bias.is_some())
    }
}

struct Cx<'m> {
    file: String,
    graph: &'m GraphProto,
    opset: i64,
    consts: Consts<'m>,
    /// Integer values computed from shapes (see [`infer::fold`]).
    ivals: HashMap<&'m str, infer::Vals>,
    /// Static shapes from value_info and the graph outputs.
    info: HashMap<&'m str, Dims>,
    values: HashMap<&'m str, Result<Dims, usize>>,
    causes: Vec<Cause>,
    reported: HashSet<usize>,
    diags: Vec<Diagnostic>,
    notes: Vec<String>,
    conflicts: Vec<String>,
    batch_noted: bool,
    /// The nodes reading each value (a node once per input naming it).
    consumers: HashMap<&'m str, Vec<usize>>,
    /// The node producing each value (the first that does).
    producers: HashMap<&'m str, usize>,
    /// The external data files read.
    data_files: Vec<String>,
}

/// How many names a note lists before "and N more".
const SHOWN: usize = 8;

/// A static shape from a value_info entry, if it has one.
fn static_shape(vi: &onnx::ValueInfoProto) -> Option<Dims> {
    let shape = vi.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref()?;
    let d: Dims = shape
        .dim
        .iter()
        .map(|d| d.dim_value.and_then(|v| u64::try_from(v).ok()))
        .collect::<Option<_>>()?;
    shape::check(&d).ok().map(|_| d)
}

impl<'m> Cx<'m> {
    fn new(
        file: &str,
        graph: &'m GraphProto,
        opset: i64,
        mut external: HashMap<usize, onnx::TensorProto>,
    ) -> Cx<'m> {
        let mut consts = Consts::new();
        for (i, t) in graph.initializer.iter().enumerate() {
            let value = match external.remove(&i) {
                Some(loaded) => std::borrow::Cow::Owned(loaded),
                None => std::borrow::Cow::Borrowed(t),
            };
            consts.insert(t.name.as_str(), std::rc::Rc::new(value));
        }
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut producers: HashMap<&str, usize> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for name in &n.input {
                consumers.entry(name.as_str()).or_default().push(i);
            }
            for name in n.output.iter().filter(|o| !o.is_empty()) {
                producers.entry(name.as_str()).or_insert(i);
            }
        }
        let mut info = HashMap::new();
        for vi in graph.value_info.iter().chain(&graph.output) {
            if let Some(d) = static_shape(vi) {
                info.insert(vi.name.as_str(), d);
            }
        }
        Cx {
            file: file.to_string(),
            graph,
            opset,
            consts,
            ivals: HashMap::new(),
            info,
            values: HashMap::new(),
            causes: Vec::new(),
            reported: HashSet::new(),
            diags: Vec::new(),
            notes: Vec::new(),
            conflicts: Vec::new(),
            batch_noted: false,
            consumers,
            producers,
            data_files: Vec::new(),
        }
    }

    fn diag(&mut self, path: String, message: String) {
        self.diags.push(Diagnostic {
            file: self.file.clone(),
            path,
            message,
        });
    }

    fn cause(&mut self, c: Cause) -> usize {
        self.causes.push(c);
        self.causes.len() - 1
    }

    /// `graph.node[3] "name" (Conv)`.
    fn node_path(&self, i: usize) -> String {
        let Some(n) = self.graph.node.get(i) else {
            return format!("graph.node[{i}]");
        };
        let op = if standard_domain(&n.domain) {
            quote(&n.op_type)
        } else {
            format!("{}.{}", quote(&n.domain), quote(&n.op_type))
        };
        if n.name.is_empty() {
            format!("graph.node[{i}] ({op})")
        } else {
            format!("graph.node[{i}] \"{}\" ({op})", quote(&n.name))
        }
    }

    /// Shapes of the graph inputs: overridden, declared, or a cause.
    fn inputs(&mut self, options: &ImportOptions) -> Result<(), Error> {
        let graph = self.graph;
        let real: Vec<(usize, &'m onnx::ValueInfoProto)> = graph
            .input
            .iter()
            .enumerate()
            .filter(|(_, vi)| !self.consts.contains_key(vi.name.as_str()))
            .collect();
        for (name, _) in &options.input_shapes {
            if !real.iter().any(|(_, vi)| &vi.name == name) {
                let mut names: Vec<String> = real
                    .iter()
                    .take(SHOWN)
                    .map(|(_, vi)| format!("\"{}\"", quote(&vi.name)))
                    .collect();
                if real.len() > SHOWN {
                    names.push(format!("and {} more", real.len() - SHOWN));
                }
                return Err(Error::option_value(
                    Setting::InputShape,
                    quote(name),
                    format!(
                        "the model has no graph input \"{}\" (its inputs: {})",
                        quote(name),
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                ));
            }
        }
        for (i, vi) in real {
            let path = format!("graph.input[{i}] \"{}\"", quote(&vi.name));
            let declared: Option<Vec<Option<i64>>> = vi
                .r#type
                .as_ref()
                .and_then(|t| t.tensor_type.as_ref())
                .and_then(|t| t.shape.as_ref())
                .map(|s| s.dim.iter().map(|d| d.dim_value).collect());
            let params: Vec<String> = vi
                .r#type
                .as_ref()
                .and_then(|t| t.tensor_type.as_ref())
                .and_then(|t| t.shape.as_ref())
                .map(|s| {
                    s.dim
                        .iter()
                        .map(|d| match (d.dim_value, &d.dim_param) {
                            (Some(v), _) => v.to_string(),
                            (None, Some(p)) if !p.is_empty() => quote(p),
                            _ => "?".to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let over = options
                .input_shapes
                .iter()
                .rev()
                .find(|(n, _)| n == &vi.name);
            let result = if let Some((_, dims)) = over {
                let d: Dims = dims.iter().map(|&x| x as u64).collect();
                if let Err(e) = shape::check(&d) {
                    return Err(Error::option_value(
                        Setting::InputShape,
                        quote(&vi.name),
                        e.to_string(),
                    ));
                }
                if let Some(decl) = &declared {
                    if decl.len() != d.len() {
                        return Err(Error::option_value(
                            Setting::InputShape,
                            quote(&vi.name),
                            format!(
                                "{} dimensions, but the model declares the input with {} ([{}])",
                                d.len(),
                                decl.len(),
                                params.join(", ")
                            ),
                        ));
                    }
                    let differs = decl
                        .iter()
                        .zip(&d)
                        .any(|(a, b)| a.is_some_and(|a| u64::try_from(a).ok() != Some(*b)));
                    if differs {
                        self.notes.push(format!(
                            "{path}: the input shape {} given replaces the declared shape [{}]",
                            shape::show(&d),
                            params.join(", ")
                        ));
                    }
                }
                Ok(d)
            } else {
                self.declared_shape(i, &path, &vi.name, declared, &params)
            };
            self.values.insert(vi.name.as_str(), result);
        }
        Ok(())
    }

    /// A graph input's declared shape, or the cause of its absence.
    fn declared_shape(
        &mut self,
        i: usize,
        path: &str,
        name: &str,
        declared: Option<Vec<Option<i64>>>,
        params: &[String],
    ) -> Result<Dims, usize> {
        let example = |dims: &[String]| {
            let parts: Vec<String> = dims
                .iter()
                .enumerate()
                .map(|(j, p)| match p.parse::<u64>() {
                    Ok(v) => v.to_string(),
                    Err(_) if j == 0 && dims.len() == 4 => "1".to_string(),
                    Err(_) if p == "?" || p.parse::<i64>().is_ok() => format!("<d{j}>"),
                    Err(_) => format!("<{p}>"),
                })
                .collect();
            format!("set the input shape {}={}", quote(name), parts.join("x"))
        };
        let Some(decl) = declared else {
            let c = self.cause(Cause::Input {
                input: i,
                problem: "the model declares no shape for it".to_string(),
                hint: format!("set the input shape {}=NxCxHxW", quote(name)),
            });
            return Err(c);
        };
        let shown = format!("[{}]", params.join(", "));
        let dynamic: Vec<usize> = decl
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.is_some_and(|v| v >= 0))
            .map(|(j, _)| j)
            .collect();
        let batch_only = decl.len() == 4 && dynamic == [0];
        if !dynamic.is_empty() && !batch_only {
            let names: Vec<String> = dynamic
                .iter()
                .filter(|&&j| !(j == 0 && decl.len() == 4))
                .filter_map(|&j| params.get(j).cloned())
                .collect();
            let c = self.cause(Cause::Input {
                input: i,
                problem: format!(
                    "the shape {shown} has dynamic dimensions ({})",
                    names.join(", ")
                ),
                hint: example(params),
            });
            return Err(c);
        }
        let d: Dims = decl
            .iter()
            .map(|v| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(1))
            .collect();
        if let Err(e) = shape::check(&d) {
            let c = self.cause(Cause::Input {
                input: i,
                problem: format!("the shape {shown} is out of range: {e}"),
                hint: example(params),
            });
            return Err(c);
        }
        if batch_only {
            self.notes.push(format!(
                "{path}: the batch dimension {} is dynamic; assumed 1 (the spec is per image)",
                params.first().map(String::as_str).unwrap_or("?")
            ));
        }
        Ok(d)
    }

    /// The shape of a value used as an input.
    fn value(&mut self, name: &'m str) -> Result<Dims, usize> {
        if let Some(v) = self.values.get(name) {
            return v.clone();
        }
        let r = match self.consts.get(name).map(|t| tensor::dims(t)) {
            Some(Ok(d)) => Ok(d),
            Some(Err(e)) => Err(self.cause(Cause::Value {
                name: quote(name),
                why: Some(e),
            })),
            None => Err(self.cause(Cause::Value {
                name: quote(name),
                why: None,
            })),
        };
        self.values.insert(name, r.clone());
        r
    }

    /// Shapes of every node's outputs, in node order.
    fn propagate(&mut self) {
        let graph = self.graph;
        for (idx, node) in graph.node.iter().enumerate() {
            let mut shapes = Vec::with_capacity(node.input.len());
            let mut failed = None;
            for name in &node.input {
                if name.is_empty() {
                    shapes.push(None);
                    continue;
                }
                match self.value(name) {
                    Ok(d) => shapes.push(Some(d)),
                    Err(c) => {
                        failed.get_or_insert(c);
                        shapes.push(None);
                    }
                }
            }
            let standard = standard_domain(&node.domain);
            // Constants and Identity of constants: values the shape rules can read.
            if standard && node.op_type == "Constant" {
                if let (Some(out), Ok(t)) = (node.output.first(), infer::constant_value(node)) {
                    self.consts.insert(out.as_str(), std::rc::Rc::new(t));
                }
            } else if standard && node.op_type == "Identity" {
                let src = node.input.first().and_then(|n| self.consts.get(n.as_str()));
                if let (Some(out), Some(t)) = (node.output.first(), src.cloned()) {
                    self.consts.insert(out.as_str(), t);
                }
            }
            let result: Result<Vec<Option<Dims>>, Unknown> = if let Some(c) = failed {
                Err(Unknown::Upstream(c))
            } else if !standard {
                Err(Unknown::Here(None))
            } else if node.op_type == "Constant" {
                match self
                    .consts
                    .get(node.output.first().map(String::as_str).unwrap_or(""))
                {
                    Some(t) => tensor::dims(t)
                        .map(|d| vec![Some(d)])
                        .map_err(|e| Unknown::Here(Some(e))),
                    None => Err(Unknown::Here(None)),
                }
            } else {
                let op = Op {
                    node,
                    inputs: &shapes,
                    consts: &self.consts,
                    ivals: &self.ivals,
                    opset: self.opset,
                };
                let r = infer::infer(&op).map_err(|f| match f {
                    Fail::Unsupported => Unknown::Here(None),
                    Fail::Invalid(m) => Unknown::Here(Some(m)),
                });
                if r.is_ok()
                    && let (Some(v), Some(out)) = (infer::fold(&op), node.output.first())
                {
                    self.ivals.insert(out.as_str(), v);
                }
                r
            };
            for (j, out) in node.output.iter().enumerate() {
                if out.is_empty() {
                    continue;
                }
                let inferred: Result<Dims, Unknown> = match &result {
                    Ok(v) => match v.get(j).cloned().flatten() {
                        Some(d) => match shape::check(&d) {
                            Ok(()) => Ok(d),
                            Err(e) => Err(Unknown::Here(Some(e))),
                        },
                        None => Err(Unknown::Here(None)),
                    },
                    Err(e) => Err(e.clone()),
                };
                let info = self.info.get(out.as_str()).cloned();
                let r = match (inferred, info) {
                    (Ok(d), Some(vi)) => {
                        if d != vi {
                            self.conflicts.push(format!(
                                "\"{}\": inferred {}, value_info {}",
                                quote(out),
                                shape::show(&d),
                                shape::show(&vi)
                            ));
                        }
                        Ok(d)
                    }
                    (Ok(d), None) => Ok(d),
                    (Err(_), Some(vi)) => Ok(vi),
                    (Err(Unknown::Upstream(c)), None) => Err(c),
                    (Err(Unknown::Here(why)), None) => Err(self.cause(Cause::Node {
                        node: idx,
                        output: j,
                        why,
                    })),
                };
                // The first definition stands: a value read before a node defines it
                // (an unsorted graph) keeps its "not defined yet" cause.
                self.values.entry(out.as_str()).or_insert(r);
            }
        }
    }

    /// Reports why a value's shape is unknown, once, naming the Conv that needs it.
    fn report(&mut self, cause: usize, conv: usize) {
        if !self.reported.insert(cause) {
            return;
        }
        let needs = self.node_path(conv);
        let (path, message) = match self.causes.get(cause) {
            None => return,
            Some(Cause::Node { node, output, why }) => {
                let n = self.graph.node.get(*node);
                let op = n.map(|n| quote(&n.op_type)).unwrap_or_default();
                let out = n
                    .and_then(|n| n.output.get(*output))
                    .map(|s| quote(s))
                    .unwrap_or_default();
                let message = match why {
                    None => format!(
                        "the importer does not infer shapes through {op} and the model has no value_info for its output \"{out}\", which {needs} needs: save the model with its shapes (onnx.shape_inference.infer_shapes) or set them in value_info"
                    ),
                    Some(why) => {
                        format!(
                            "{why}; the input shape of {needs} depends on this node's output \"{out}\""
                        )
                    }
                };
                (self.node_path(*node), message)
            }
            Some(Cause::Input {
                input,
                problem,
                hint,
            }) => {
                let name = self
                    .graph
                    .input
                    .get(*input)
                    .map(|v| quote(&v.name))
                    .unwrap_or_default();
                (
                    format!("graph.input[{input}] \"{name}\""),
                    format!("{problem}, and {needs} needs static shapes: {hint}"),
                )
            }
            Some(Cause::Value { name, why: None }) => (
                "graph".to_string(),
                format!(
                    "\"{name}\" is not a graph input, an initializer or the output of an earlier node, and {needs} needs its shape (are the nodes sorted topologically?)"
                ),
            ),
            Some(Cause::Value {
                name,
                why: Some(why),
            }) => (
                "graph".to_string(),
                format!("initializer \"{name}\": {why}; {needs} needs its shape"),
            ),
        };
        self.diag(path, message);
    }

    /// Every Conv to import, with its problems recorded in `diags`.
    fn convs(&mut self, options: &ImportOptions) -> Vec<Layer<'m>> {
        let graph = self.graph;
        let consumers = std::mem::take(&mut self.consumers);
        let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        let mut layers = Vec::new();
        let mut skipped = Vec::new();
        for (idx, node) in graph.node.iter().enumerate() {
            if !is_conv(node) {
                continue;
            }
            let path = self.node_path(idx);
            let attrs = Attrs(&node.attribute);
            let group = match attrs.int_or("group", 1) {
                Ok(g) => g,
                Err(e) => {
                    self.diag(path, e);
                    continue;
                }
            };
            let form = quant::form(self, node);
            let w_at = if form == Some(quant::Form::QLinear) {
                3
            } else {
                1
            };
            let w_name = node.input.get(w_at).map(String::as_str).unwrap_or("");
            let w_rank = match self.consts.get(w_name) {
                Some(t) => Some(t.dims.len()),
                None => self
                    .values
                    .get(node.input.first().map(String::as_str).unwrap_or(""))
                    .and_then(|v| v.as_ref().ok())
                    .map(Vec::len),
            };
            if !(options.all_convs || group != 1) {
                skipped.push(idx);
                continue;
            }
            if let Some(r) = w_rank.filter(|&r| r != 4) {
                let d = r.saturating_sub(2);
                self.diag(
                    path,
                    format!(
                        "only 2-D convolutions (4-D input and weights) can be imported; this one is {d}-D"
                    ),
                );
                continue;
            }
            if let Some(l) = self.conv(idx, node, group, form, &consumers, &outputs) {
                layers.push(l);
            }
        }
        if !skipped.is_empty() {
            let mut names: Vec<String> = skipped
                .iter()
                .take(SHOWN)
                .map(|&i| self.node_path(i))
                .collect();
            if skipped.len() > SHOWN {
                names.push(format!("and {} more", skipped.len() - SHOWN));
            }
            self.notes.push(format!(
                "{} Conv node(s) with group 1 not imported (importing every Conv takes them too): {}",
                skipped.len(),
                names.join(", ")
            ));
        }
        self.consumers = consumers;
        layers
    }

    /// One Conv, or `None` with its problems recorded.
    fn conv(
        &mut self,
        idx: usize,
        node: &'m NodeProto,
        group: i64,
        form: Option<quant::Form>,
        consumers: &HashMap<&str, Vec<usize>>,
        outputs: &HashSet<&str>,
    ) -> Option<Layer<'m>> {
        let path = self.node_path(idx);
        let before = self.diags.len();
        let attrs = Attrs(&node.attribute);
        let (Some(x_name), Some(w_name), Some(out)) =
            (node.input.first(), node.input.get(1), node.output.first())
        else {
            self.diag(
                path,
                "a Conv needs an input, weights and an output".to_string(),
            );
            return None;
        };
        let group = match u64::try_from(group) {
            Ok(g) if g >= 1 => g,
            _ => {
                self.diag(path, format!("group {group} is not a positive number"));
                return None;
            }
        };
        let quant = match form {
            None => None,
            Some(f) => Some(self.quantized(idx, node, f, consumers, outputs)?),
        };
        // Weights: an initializer (or Constant) is required.
        let consts = if quant.is_some() {
            None
        } else {
            Some(&self.consts)
        };
        let weights = match consts.map(|c| c.get(w_name.as_str())) {
            None => quant.as_ref().map(|q| (q.w_dims.clone(), Vec::new())),
            Some(None) => {
                self.diag(
                    path.clone(),
                    format!(
                        "the weights \"{}\" are not an initializer or a Constant: gspc needs them at import time (export the model with constant weights)",
                        quote(w_name)
                    ),
                );
                None
            }
            Some(Some(t)) => match tensor::dims(t).and_then(|d| Ok((d, tensor::floats(t)?))) {
                Ok(v) => match non_finite(&v.1) {
                    Some(m) => {
                        self.diag(path.clone(), format!("weights: {m}"));
                        None
                    }
                    None => Some(v),
                },
                Err(e) => {
                    self.diag(path.clone(), format!("weights: {e}"));
                    None
                }
            },
        };
        let bias_input = node
            .input
            .get(2)
            .filter(|b| !b.is_empty() && quant.is_none());
        let bias = match bias_input {
            None => Some(None),
            Some(b) => match self.consts.get(b.as_str()) {
                None => {
                    self.diag(
                        path.clone(),
                        format!(
                            "the bias \"{}\" is not an initializer or a Constant: gspc needs it at import time",
                            quote(b)
                        ),
                    );
                    None
                }
                Some(t) => match tensor::floats(t) {
                    Ok(v) => match non_finite(&v) {
                        Some(m) => {
                            self.diag(path.clone(), format!("bias: {m}"));
                            None
                        }
                        None => Some(Some(v)),
                    },
                    Err(e) => {
                        self.diag(path.clone(), format!("bias: {e}"));
                        None
                    }
                },
            },
        };
        let x = match self.value(x_name) {
            Ok(d) => Some(d),
            Err(c) => {
                self.report(c, idx);
                None
            }
        };
        let (Some((w_dims, weights)), Some(bias), Some(x)) = (weights, bias, x) else {
            return None;
        };
        // The window: the same rule as shape inference, then the spec's restrictions.
        let window = (|| -> Result<_, String> {
            let kernel: Dims = match attrs.ints("kernel_shape")? {
                Some(k) => k
                    .iter()
                    .map(|&v| shape::dim_from(v, 1, "kernel size"))
                    .collect::<Result<_, _>>()?,
                None => w_dims.get(2..).unwrap_or_default().to_vec(),
            };
            let auto_pad = AutoPad::parse(&attrs.string("auto_pad")?.unwrap_or_default())?;
            let wa = WindowAttrs {
                kernel: &kernel,
                strides: attrs.ints("strides")?,
                dilations: attrs.ints("dilations")?,
                pads: attrs.ints("pads")?,
                auto_pad,
            };
            Ok((shape::conv(&x, &w_dims, group, &wa)?.1, auto_pad))
        })();
        let (win, auto_pad) = match window {
            Ok(w) => w,
            Err(e) => {
                self.diag(path, e);
                return None;
            }
        };
        if x.len() != 4 || win.kernel.len() != 2 {
            self.diag(
                path,
                format!(
                    "only 2-D convolutions (4-D input and weights) can be imported; the input is {}",
                    shape::show(&x)
                ),
            );
            return None;
        }
        if win.begin != win.end {
            let how = match auto_pad {
                AutoPad::NotSet => format!(
                    "pads {} (top, left, bottom, right) are asymmetric",
                    shape::show_i(attrs.ints("pads").ok().flatten().unwrap_or_default())
                ),
                _ => format!(
                    "auto_pad {} pads this input asymmetrically (top, left, bottom, right = {}, {}, {}, {})",
                    attrs.string("auto_pad").ok().flatten().unwrap_or_default(),
                    win.begin[0],
                    win.begin[1],
                    win.end[0],
                    win.end[1]
                ),
            };
            self.diag(
                path.clone(),
                format!(
                    "{how}; gspc pads both sides of an axis equally, so asymmetric padding is not supported (pad with an explicit Pad node in front of a Conv with symmetric pads)"
                ),
            );
        }
        let m = w_dims.first().copied().unwrap_or(0);
        if let Some(b) = &bias
            && u64::try_from(b.len()).ok() != Some(m)
        {
            self.diag(
                path.clone(),
                format!(
                    "the bias has {} values, the weights {} have {m} output channels",
                    b.len(),
                    shape::show(&w_dims)
                ),
            );
        }
        if self.diags.len() > before {
            return None;
        }
        if x.first().is_some_and(|&n| n != 1) && !self.batch_noted {
            self.batch_noted = true;
            self.notes.push(format!(
                "{path}: the input {} has batch {}; the spec is per image: run the layers once per image",
                shape::show(&x),
                x.first().copied().unwrap_or(0)
            ));
        }
        if let Some(q) = quant {
            return Some(Layer {
                node: idx,
                raw_names: [node.name.as_str(), out.as_str()],
                input: q.input,
                output: q.output,
                folded: Vec::new(),
                unfolded: None,
                fused: q.fused,
                activation: q.activation,
                x,
                weights: Vec::new(),
                w_dims,
                bias: None,
                group,
                stride: [win.strides[0], win.strides[1]],
                padding: [win.begin[0], win.begin[1]],
                dilation: [win.dilations[0], win.dilations[1]],
                quant: Some(q),
            });
        }
        let mut weights = weights;
        let mut bias = bias;
        let (folded_out, folded, unfolded) =
            self.fold(out, m, &mut weights, &mut bias, consumers, outputs);
        let (fused, activation) = match self.activation(folded_out, consumers, outputs) {
            Some((j, a)) => (Some(j), a),
            None => (None, Activation::None),
        };
        let output = match fused.and_then(|j| self.graph.node.get(j)?.output.first()) {
            Some(o) => o.as_str(),
            None => folded_out,
        };
        Some(Layer {
            node: idx,
            raw_names: [node.name.as_str(), out.as_str()],
            input: x_name,
            output,
            folded,
            unfolded,
            fused,
            activation,
            x,
            weights,
            w_dims,
            bias,
            group,
            stride: [win.strides[0], win.strides[1]],
            padding: [win.begin[0], win.begin[1]],
            dilation: [win.dilations[0], win.dilations[1]],
            quant: None,
        })
    }

    /// Folds the BatchNormalization and per-channel constant Mul/Add nodes that, one after
    /// the other, alone read the Conv's output `out` into its `weights` (`m` output
    /// channels) and `bias`, computing in f64. Returns the value after the last folded node,
    /// the folded nodes, and the first node that looked foldable but is not, with why.
    #[allow(clippy::type_complexity)]
    fn fold(
        &self,
        out: &'m str,
        m: u64,
        weights: &mut Vec<f32>,
        bias: &mut Option<Vec<f32>>,
        consumers: &HashMap<&str, Vec<usize>>,
        outputs: &HashSet<&str>,
    ) -> (&'m str, Vec<usize>, Option<(usize, String)>) {
        let graph = self.graph;
        let mut cur = out;
        let mut folded = Vec::new();
        let Ok(k) = usize::try_from(m) else {
            return (cur, folded, None);
        };
        if k == 0 || !weights.len().is_multiple_of(k) {
            return (cur, folded, None);
        }
        let per_channel = weights.len() / k;
        loop {
            let users = consumers.get(cur).map(Vec::as_slice).unwrap_or_default();
            let candidate = |j: usize| {
                graph.node.get(j).is_some_and(|n| {
                    is_op(n, "BatchNormalization")
                        || ((is_op(n, "Mul") || is_op(n, "Add"))
                            && n.input.iter().any(|i| self.consts.contains_key(i.as_str())))
                })
            };
            let &[j] = users else {
                let why = if users.is_empty() {
                    None
                } else {
                    users.iter().copied().find(|&j| candidate(j)).map(|j| {
                        (
                            j,
                            format!(
                                "\"{}\" has {} readers; only a node that alone reads it can be folded",
                                quote(cur),
                                users.len()
                            ),
                        )
                    })
                };
                return (cur, folded, why);
            };
            if outputs.contains(cur) {
                let why = candidate(j).then(|| {
                    (
                        j,
                        format!(
                            "\"{}\" is a graph output, which folding would change",
                            quote(cur)
                        ),
                    )
                });
                return (cur, folded, why);
            }
            let Some(n) = graph.node.get(j) else {
                return (cur, folded, None);
            };
            let step = match self.fold_step(n, cur, k) {
                Ok(Some(s)) => s,
                Ok(None) => return (cur, folded, None),
                Err(why) => return (cur, folded, Some((j, why))),
            };
            let (scale, shift) = step;
            let w: Vec<f32> = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| (f64::from(w) * scale[i / per_channel]) as f32)
                .collect();
            let b: Option<Vec<f32>> = match bias.as_ref() {
                Some(b) => Some(
                    b.iter()
                        .zip(scale.iter().zip(&shift))
                        .map(|(&b, (s, t))| (f64::from(b) * s + t) as f32)
                        .collect(),
                ),
                None if shift.iter().all(|&t| t == 0.0) => None,
                None => Some(shift.iter().map(|&t| t as f32).collect()),
            };
            let bad = non_finite(&w).map(|e| format!("weight {e}")).or_else(|| {
                b.as_deref()
                    .and_then(non_finite)
                    .map(|e| format!("bias {e}"))
            });
            if let Some(e) = bad {
                return (
                    cur,
                    folded,
                    Some((j, format!("folded, the layer's {e} (out of f32 range)"))),
                );
            }
            *weights = w;
            *bias = b;
            folded.push(j);
            match n.output.first() {
                Some(o) => cur = o.as_str(),
                None => return (cur, folded, None),
            }
        }
    }

    /// The per-channel scale and shift that folds node `n`, which reads `cur` (the output
    /// of a Conv with `k` channels): `Ok(None)` when `n` is not a candidate (not a
    /// BatchNormalization, Mul or Add, or a Mul/Add with no constant operand), `Err` with
    /// why a candidate cannot be folded.
    fn fold_step(&self, n: &NodeProto, cur: &str, k: usize) -> Result<Option<Affine>, String> {
        if n.output.first().is_none_or(|o| o.is_empty()) {
            return Ok(None);
        }
        let constant = |what: &str, name: Option<&String>| -> Result<(Dims, Vec<f32>), String> {
            let name = name
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("it has no {what}"))?;
            let t = self.consts.get(name.as_str()).ok_or_else(|| {
                format!(
                    "its {what} \"{}\" is not a constant (an initializer or a Constant node)",
                    quote(name)
                )
            })?;
            let d = tensor::dims(t).map_err(|e| format!("its {what}: {e}"))?;
            let v = tensor::floats(t).map_err(|e| format!("its {what}: {e}"))?;
            if let Some(e) = non_finite(&v) {
                return Err(format!("its {what}: {e}"));
            }
            Ok((d, v))
        };
        if is_op(n, "BatchNormalization") {
            if n.input.first().map(String::as_str) != Some(cur) {
                return Ok(None);
            }
            let a = Attrs(&n.attribute);
            if n.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err(
                    "it is in training form (it outputs the running mean or variance)".to_string(),
                );
            }
            if a.int("training_mode")?.unwrap_or(0) != 0 {
                return Err("it is in training form (training_mode 1)".to_string());
            }
            if self.opset < 9 && a.int("spatial")?.unwrap_or(1) != 1 {
                return Err(
                    "it has spatial 0 (statistics per position, not per channel)".to_string(),
                );
            }
            let eps = f64::from(a.float("epsilon")?.unwrap_or(1e-5));
            if !(eps.is_finite() && eps >= 0.0) {
                return Err(format!("epsilon {eps} is not a finite number of 0 or more"));
            }
            let mut params = Vec::with_capacity(4);
            for (i, what) in ["scale", "bias", "mean", "variance"].iter().enumerate() {
                let (_, v) = constant(what, n.input.get(i + 1))?;
                if v.len() != k {
                    return Err(format!(
                        "its {what} has {} values, the Conv has {k} output channels",
                        v.len()
                    ));
                }
                params.push(v);
            }
            let [scale, b, mean, var] = [0, 1, 2, 3].map(|i| &params[i]);
            let mut s = Vec::with_capacity(k);
            let mut t = Vec::with_capacity(k);
            for c in 0..k {
                let d = f64::from(var[c]) + eps;
                if d.is_nan() || d <= 0.0 {
                    return Err(format!(
                        "variance + epsilon of channel {c} is {d}, not positive"
                    ));
                }
                let sc = f64::from(scale[c]) / d.sqrt();
                s.push(sc);
                t.push(f64::from(b[c]) - f64::from(mean[c]) * sc);
            }
            return Ok(Some((s, t)));
        }
        let mul = is_op(n, "Mul");
        if !(mul || is_op(n, "Add")) {
            return Ok(None);
        }
        let other = match n.input.as_slice() {
            [a, b] if a == cur && b != cur => b,
            [a, b] if b == cur && a != cur => a,
            _ => return Ok(None),
        };
        if !self.consts.contains_key(other.as_str()) {
            return Ok(None);
        }
        let (d, v) = constant("constant operand", Some(other))?;
        let k64 = k as u64;
        let values: Vec<f64> = if v.len() == 1 && d.len() <= 4 {
            vec![f64::from(v[0]); k]
        } else if d == [k64, 1, 1] || d == [1, k64, 1, 1] {
            v.iter().map(|&x| f64::from(x)).collect()
        } else {
            return Err(format!(
                "its constant operand \"{}\" has shape {}; a per-channel constant has shape [{k}, 1, 1] or [1, {k}, 1, 1], or is a scalar",
                quote(other),
                shape::show(&d)
            ));
        };
        Ok(Some(if mul {
            (values, vec![0.0; k])
        } else {
            (vec![1.0; k], values)
        }))
    }

    /// The Relu or Clip(0, 6) that alone consumes `out`, and the activation it is.
    fn activation(
        &self,
        out: &str,
        consumers: &HashMap<&str, Vec<usize>>,
        outputs: &HashSet<&str>,
    ) -> Option<(usize, Activation)> {
        if outputs.contains(out) {
            return None;
        }
        let &[j] = consumers.get(out)?.as_slice() else {
            return None;
        };
        let n = self.graph.node.get(j)?;
        if n.input.first().map(String::as_str) != Some(out) || n.output.first()?.is_empty() {
            return None;
        }
        if is_op(n, "Relu") {
            return Some((j, Activation::Relu));
        }
        if !is_op(n, "Clip") {
            return None;
        }
        let (lo, hi) = if self.opset < 11 {
            let a = Attrs(&n.attribute);
            (
                a.float("min").ok()?.unwrap_or(f32::NEG_INFINITY),
                a.float("max").ok()?.unwrap_or(f32::INFINITY),
            )
        } else {
            let bound = |i: usize, default: f32| -> Option<f32> {
                match n.input.get(i).filter(|s| !s.is_empty()) {
                    None => Some(default),
                    Some(name) => tensor::scalar(self.consts.get(name.as_str())?).ok(),
                }
            };
            (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
        };
        if lo != 0.0 {
            return None;
        }
        if hi == 6.0 {
            Some((j, Activation::Relu6))
        } else if hi >= f32::MAX {
            Some((j, Activation::Relu))
        } else {
            None
        }
    }

    /// Names, the spec, the weights and the notes.
    fn finish(
        mut self,
        model: String,
        layers: Vec<Layer<'m>>,
        options: &ImportOptions,
    ) -> Result<Imported, Error> {
        if layers.len() > spec::limits::MAX_LAYERS {
            return Err(Error::Model(vec![Diagnostic {
                file: self.file.clone(),
                path: "graph".to_string(),
                message: format!(
                    "{} convolutions to import, more than the limit of {} layers per model",
                    layers.len(),
                    spec::limits::MAX_LAYERS
                ),
            }]));
        }
        let names = layer_names(&layers);
        let requantization = options
            .requantization
            .unwrap_or(gspc_runtime::quant::Requantization::Fp32);
        let json = spec_text(&model, &layers, &names, requantization);
        let spec = match spec::parse(&self.file, &json) {
            Ok(s) => s,
            Err(Error::Invalid(ds)) => {
                let ds = ds.into_iter().map(|d| self.spec_diag(d, &layers)).collect();
                return Err(Error::Model(ds));
            }
            Err(e) => return Err(Error::Internal(format!("the generated spec: {e}"))),
        };
        let weights = safetensors_file(&layers, &names)?;
        let out_layers = layers
            .iter()
            .zip(&names)
            .map(|(l, name)| ImportedLayer {
                name: name.clone(),
                node: l.node,
                source: self.node_path(l.node),
                folded: l.folded.iter().map(|&j| self.node_path(j)).collect(),
                fused: l.fused.map(|j| self.node_path(j)),
                input: l.input.to_string(),
                output: l.output.to_string(),
                weight_key: format!("{name}.weight"),
                bias_key: l.has_bias().then(|| format!("{name}.bias")),
            })
            .collect();
        self.closing_notes(&layers, &names, requantization);
        Ok(Imported {
            model,
            spec,
            spec_json: json,
            weights,
            layers: out_layers,
            notes: self.notes,
            data_files: self.data_files,
        })
    }

    /// What was fused, what follows a layer unfolded, what the app still runs.
    fn closing_notes(
        &mut self,
        layers: &[Layer],
        names: &[String],
        requantization: gspc_runtime::quant::Requantization,
    ) {
        let graph = self.graph;
        if !self.data_files.is_empty() {
            let files: Vec<String> = self
                .data_files
                .iter()
                .map(|f| format!("\"{}\"", quote(f)))
                .collect();
            self.notes.push(format!(
                "read external data from {} (next to the model)",
                files.join(", ")
            ));
        }
        let folded: Vec<usize> = layers
            .iter()
            .flat_map(|l| l.folded.iter().copied())
            .collect();
        if !folded.is_empty() {
            let mut kinds: Vec<(&str, usize)> = Vec::new();
            for &j in &folded {
                let op = graph.node.get(j).map_or("", |n| n.op_type.as_str());
                match kinds.iter_mut().find(|(o, _)| *o == op) {
                    Some((_, c)) => *c += 1,
                    None => kinds.push((op, 1)),
                }
            }
            let list: Vec<String> = kinds.iter().map(|(o, c)| format!("{o} x{c}")).collect();
            self.notes.push(format!(
                "{} node(s) folded into the weights and bias of the layer before them ({}): the layer's output is theirs; do not run them separately",
                folded.len(),
                list.join(", ")
            ));
        }
        let fused: Vec<usize> = layers.iter().filter_map(|l| l.fused).collect();
        if !fused.is_empty() {
            self.notes.push(format!(
                "{} Relu/Clip node(s) fused into the layer before them (the layer's output is theirs; do not run them separately)",
                fused.len()
            ));
        }
        for (l, name) in layers.iter().zip(names) {
            let unfolded = l.unfolded.clone().or_else(|| {
                let users = self.consumers.get(l.output)?;
                let j = users.iter().copied().find(|&j| {
                    graph.node.get(j).is_some_and(|n| {
                        is_op(n, "BatchNormalization")
                            && n.input.first().map(String::as_str) == Some(l.output)
                    })
                })?;
                Some((
                    j,
                    "it reads the fused activation's output; only what comes between the Conv and its activation is folded".to_string(),
                ))
            });
            if let Some((j, why)) = unfolded {
                self.notes.push(format!(
                    "{} follows layer {name} and is not folded into it: {why}; the app runs it",
                    self.node_path(j)
                ));
            }
        }
        self.int8_notes(layers, names, requantization);
        let taken_in = layers
            .iter()
            .flat_map(|l| l.quant.iter().flat_map(|q| q.nodes.iter().copied()));
        let imported: HashSet<usize> = layers
            .iter()
            .map(|l| l.node)
            .chain(fused)
            .chain(folded)
            .chain(taken_in)
            .collect();
        let mut rest: Vec<(&str, usize)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            if imported.contains(&i) || is_op(n, "Constant") {
                continue;
            }
            let op = n.op_type.as_str();
            match index.get(op) {
                Some(&k) => {
                    if let Some((_, c)) = rest.get_mut(k) {
                        *c += 1;
                    }
                }
                None => {
                    index.insert(op, rest.len());
                    rest.push((op, 1));
                }
            }
        }
        if !rest.is_empty() {
            let mut list: Vec<String> = rest
                .iter()
                .take(4 * SHOWN)
                .map(|(o, c)| format!("{} x{c}", quote(o)))
                .collect();
            if rest.len() > 4 * SHOWN {
                list.push(format!("and {} more kinds", rest.len() - 4 * SHOWN));
            }
            self.notes.push(format!(
                "the app runs the rest of the graph itself: {}",
                list.join(", ")
            ));
        }
        if let Some(first) = self.conflicts.first() {
            self.notes.push(format!(
                "{} value(s) whose inferred shape differs from the model's value_info (the inferred one is used), e.g. {first}",
                self.conflicts.len()
            ));
        }
    }

    /// A problem of the generated spec, blamed on the Conv it comes from.
    fn spec_diag(&self, d: Diagnostic, layers: &[Layer]) -> Diagnostic {
        let parsed = d.path.strip_prefix("layers[").and_then(|rest| {
            let (i, field) = rest.split_once(']')?;
            Some((i.parse::<usize>().ok()?, field.trim_start_matches('.')))
        });
        match parsed.and_then(|(i, f)| Some((layers.get(i)?, f))) {
            Some((l, field)) => Diagnostic {
                file: d.file,
                path: self.node_path(l.node),
                message: if field.is_empty() {
                    d.message
                } else {
                    format!("{field}: {}", d.message)
                },
            },
            None => Diagnostic {
                file: d.file,
                path: "graph".to_string(),
                message: d.message,
            },
        }
    }
}

/// Unique layer names: from the node's name, else its output's, else `conv_<node>`;
/// repeats get `_2`, `_3`, ... within the length limit.
fn layer_names(layers: &[Layer]) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut next_suffix: HashMap<String, usize> = HashMap::new();
    let mut names = Vec::with_capacity(layers.len());
    for l in layers {
        let base = l
            .raw_names
            .iter()
            .map(|n| identifier(&scope_name(n, "Conv")))
            .find(|n| !n.is_empty())
            .unwrap_or_else(|| format!("conv_{}", l.node));
        let mut name = base.clone();
        let mut k = next_suffix.get(&base).copied().unwrap_or(2);
        while taken.contains(&name) {
            let suffix = format!("_{k}");
            name = truncate(&base, spec::limits::MAX_NAME_LEN - suffix.len()) + &suffix;
            k += 1;
        }
        next_suffix.insert(base, k);
        taken.insert(name.clone());
        names.push(name);
    }
    names
}

/// The spec as JSON, one layer per line.
fn spec_text(
    model: &str,
    layers: &[Layer],
    names: &[String],
    requantization: gspc_runtime::quant::Requantization,
) -> String {
    let mut json = format!(
        "{{\"model\": {}, \"layers\": [\n",
        serde_json::Value::String(model.to_string())
    );
    for (i, (l, name)) in layers.iter().zip(names).enumerate() {
        let [kh, kw] = [2, 3].map(|j| l.w_dims.get(j).copied().unwrap_or(0));
        json.push_str(&format!(
                "  {{\"name\": \"{name}\", \"in_channels\": {}, \"out_channels\": {}, \"groups\": {}, \"kernel\": [{kh}, {kw}], \"stride\": [{}, {}], \"padding\": [{}, {}], \"dilation\": [{}, {}], \"input\": [{}, {}], \"bias\": {}, \"activation\": \"{}\"{}}}{}\n",
                l.x[1],
                l.w_dims[0],
                l.group,
                l.stride[0],
                l.stride[1],
                l.padding[0],
                l.padding[1],
                l.dilation[0],
                l.dilation[1],
                l.x[2],
                l.x[3],
                l.has_bias(),
                l.activation.as_str(),
                match &l.quant {
                    Some(q) => quant::spec_fields(q, requantization),
                    None => String::new(),
                },
                if i + 1 < layers.len() { "," } else { "" }
            ));
    }
    json.push_str("]}\n");
    json
}

/// The weights (and biases) of every layer as a safetensors file: F32, or I8 weights and an
/// I32 bias for int8 layers.
fn safetensors_file(layers: &[Layer], names: &[String]) -> Result<Vec<u8>, Error> {
    use crate::weights::Values;
    let mut tensors: Vec<(String, Vec<usize>, Values)> = Vec::new();
    for (l, name) in layers.iter().zip(names) {
        let shape: Vec<usize> = l
            .w_dims
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect();
        let (weights, bias) = match &l.quant {
            Some(q) => (
                Values::I8(q.weights.clone()),
                q.bias.clone().map(Values::I32),
            ),
            None => (
                Values::F32(l.weights.clone()),
                l.bias.clone().map(Values::F32),
            ),
        };
        tensors.push((format!("{name}.weight"), shape, weights));
        if let Some(b) = bias {
            tensors.push((format!("{name}.bias"), vec![b.len()], b));
        }
    }
    crate::weights::to_safetensors_values(&tensors)
        .map_err(|e| Error::Internal(format!("writing the safetensors: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytorch_scopes_are_shortened() {
        let cases = [
            (
                "/down/branch1/branch1.0/branch1.0.0/Conv",
                "down/branch1.0.0",
            ),
            ("/features/features.3/conv/conv.1/Conv", "features.3/conv.1"),
            ("/c1/Conv", "c1"),
            ("/block1/conv.0", "/block1/conv.0"),
            ("/Conv", "/Conv"),
            ("Conv_2", "Conv_2"),
            ("stage2/expand", "stage2/expand"),
            ("a/ab/Conv", "a/ab"),
        ];
        for (name, want) in cases {
            let got = scope_name(name, "Conv");
            // Unchanged names stay byte for byte; shortened ones lose their slashes' empty
            // parts.
            assert_eq!(
                got.trim_start_matches('/'),
                want.trim_start_matches('/'),
                "{name}"
            );
        }
        assert_eq!(
            identifier(&scope_name("/ir/dw/dw.0/Conv", "Conv")),
            "ir_dw_0"
        );
    }
}
