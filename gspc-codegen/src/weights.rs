//! Trained weights for a spec: read from safetensors or `.npy` files, checked against the
//! spec, then packed at generation time so the generated code can bake them in.
//!
//! Tensor names follow PyTorch's: `<layer>.weight`, OIHW `[OUT, IN / GROUPS, KH, KW]`, and
//! `<layer>.bias`, `[OUT]`, for layers whose spec says `"bias": true`. Everything is
//! checked before it is used: a missing tensor, a wrong shape or dtype, a bias the spec does
//! not expect (or the other way round), a tensor that matches no layer, a non-finite value,
//! and a truncated or malformed file are errors naming the file, the tensor and the rule.
//!
//! An int8 layer (`"dtype": "int8"`) takes `<layer>.weight` as int8 (safetensors `I8`,
//! `.npy` `'|i1'`), every value in `[-127, 127]` (symmetric weights: -128 is refused), and
//! `<layer>.bias` as int32 (`I32`, `'<i4'`) at scale `input_scale * weight_scales[k]`;
//! [`ModelWeights::layers`] then holds [`Weights::Int8`].

use crate::error::{Diagnostic, Error, FileOp};
use crate::spec::{Dtype, LayerSpec, Spec};
use std::collections::BTreeMap;
use std::path::Path;

/// The weights of one f32 layer, as the spec's layer expects them.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// OIHW weights, `weights_len()` values.
    pub weights: Vec<f32>,
    /// The bias, `out_channels` values, when the layer has one.
    pub bias: Option<Vec<f32>>,
}

/// The weights of one int8 layer (TFLite's int8 spec), as read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Int8Weights {
    /// OIHW weights, `weights_len()` values, each in `[-127, 127]`; their per-channel
    /// scales are the spec's `quantization.weight_scales`.
    pub weights: Vec<i8>,
    /// The int32 bias, `out_channels` values at scale `input_scale * weight_scales[k]`,
    /// when the layer has one.
    pub bias: Option<Vec<i32>>,
}

/// One layer's weights: f32 or int8, as its spec's `dtype` says.
#[derive(Clone, Debug, PartialEq)]
pub enum Weights {
    /// An f32 layer's.
    F32(LayerWeights),
    /// An int8 layer's.
    Int8(Int8Weights),
}

impl From<LayerWeights> for Weights {
    fn from(w: LayerWeights) -> Weights {
        Weights::F32(w)
    }
}

impl From<Int8Weights> for Weights {
    fn from(w: Int8Weights) -> Weights {
        Weights::Int8(w)
    }
}

impl Weights {
    /// The element type of these weights.
    pub fn dtype(&self) -> crate::spec::Dtype {
        match self {
            Weights::F32(_) => crate::spec::Dtype::F32,
            Weights::Int8(_) => crate::spec::Dtype::Int8,
        }
    }

    /// The number of weights (without the bias).
    pub fn weights_len(&self) -> usize {
        match self {
            Weights::F32(w) => w.weights.len(),
            Weights::Int8(w) => w.weights.len(),
        }
    }

    /// The number of bias values, if there is a bias.
    pub fn bias_len(&self) -> Option<usize> {
        match self {
            Weights::F32(w) => w.bias.as_ref().map(Vec::len),
            Weights::Int8(w) => w.bias.as_ref().map(Vec::len),
        }
    }
}

/// The weights of every layer of a spec, in spec order.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelWeights {
    /// The file they came from, as the caller named it (used in generated comments).
    pub file: String,
    /// One entry per layer of the spec, in spec order, of the layer's dtype.
    pub layers: Vec<Weights>,
}

/// The values of a tensor as read from a file, in its element type.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// float32 (safetensors `F32`, `.npy` `'<f4'`).
    F32(Vec<f32>),
    /// int8 (`I8`, `'|i1'`): int8 layers' weights.
    I8(Vec<i8>),
    /// int32 (`I32`, `'<i4'`): int8 layers' bias.
    I32(Vec<i32>),
}

impl Values {
    /// The number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::I8(v) => v.len(),
            Values::I32(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The float32 values, if the tensor is float32.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            Values::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The element type as safetensors names it (`F32`, `I8`, `I32`).
    pub fn dtype_name(&self) -> &'static str {
        match self {
            Values::F32(_) => "F32",
            Values::I8(_) => "I8",
            Values::I32(_) => "I32",
        }
    }

    /// The values of `bytes` (little-endian) as `dtype`, `None` when the length is not a
    /// whole number of elements.
    fn from_le(dtype: ElementType, bytes: &[u8]) -> Option<Values> {
        if !bytes.len().is_multiple_of(dtype.size()) {
            return None;
        }
        Some(match dtype {
            ElementType::F32 => Values::F32(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            ElementType::I8 => Values::I8(bytes.iter().map(|&b| b as i8).collect()),
            ElementType::I32 => Values::I32(
                bytes
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
        })
    }
}

/// The element types weight files may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ElementType {
    F32,
    I8,
    I32,
}

impl ElementType {
    fn size(self) -> usize {
        match self {
            ElementType::I8 => 1,
            ElementType::F32 | ElementType::I32 => 4,
        }
    }
}

/// A tensor as read from a file: shape and values, in the file's element type.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Values,
}

fn invalid(file: &str, path: &str, message: String) -> Error {
    Error::Weights(vec![Diagnostic {
        file: file.to_string(),
        path: path.to_string(),
        message,
    }])
}

/// Reads the weights of `spec` from a safetensors file, or from a directory of `.npy` files
/// named `<layer>.weight.npy` and `<layer>.bias.npy`.
pub fn read(path: &Path, spec: &Spec) -> Result<ModelWeights, Error> {
    let file = path.display().to_string();
    if path.is_dir() {
        let mut tensors = BTreeMap::new();
        let entries = std::fs::read_dir(path)
            .map_err(|e| Error::io(file.clone(), FileOp::ReadWeightsDir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(file.clone(), FileOp::ReadWeightsDir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str().and_then(|n| n.strip_suffix(".npy")) else {
                continue;
            };
            let p = entry.path();
            let shown = p.display().to_string();
            let bytes = read_bytes(&p)?;
            tensors.insert(name.to_string(), parse_npy(&shown, &bytes)?);
        }
        check(&file, spec, tensors)
    } else {
        let bytes = read_bytes(path)?;
        from_safetensors(&file, &bytes, spec)
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), FileOp::ReadWeights, e))
}

/// Parses a safetensors file and checks it against `spec`.
pub fn from_safetensors(file: &str, bytes: &[u8], spec: &Spec) -> Result<ModelWeights, Error> {
    check(file, spec, parse_safetensors(file, bytes)?)
}

/// Every tensor of a safetensors file. `F32` tensors are accepted, and `I8` and `I32` ones
/// for int8 layers ([`check`] matches each against its layer's dtype); convert others when
/// exporting: `tensor.float()`.
pub fn parse_safetensors(file: &str, bytes: &[u8]) -> Result<BTreeMap<String, Tensor>, Error> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
        invalid(
            file,
            "",
            format!("not a valid safetensors file (truncated or corrupt?): {e}"),
        )
    })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => ElementType::F32,
            safetensors::Dtype::I8 => ElementType::I8,
            safetensors::Dtype::I32 => ElementType::I32,
            other => {
                return Err(invalid(
                    file,
                    &name,
                    format!(
                        "dtype {other:?}, expected F32 (export the weights as float32), or I8 weights and an I32 bias for an int8 layer"
                    ),
                ));
            }
        };
        let data = Values::from_le(dtype, view.data()).ok_or_else(|| {
            invalid(
                file,
                &name,
                format!(
                    "{} bytes of data are not a whole number of {:?} values",
                    view.data().len(),
                    view.dtype()
                ),
            )
        })?;
        out.insert(
            name,
            Tensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Parses one `.npy` file (format versions 1 to 3) holding a C-order array of little-endian
/// float32 (`'<f4'`), or, for int8 layers, int8 (`'|i1'`) or little-endian int32 (`'<i4'`).
pub fn parse_npy(file: &str, bytes: &[u8]) -> Result<Tensor, Error> {
    let bad = |m: String| invalid(file, "", m);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file (no \\x93NUMPY magic)".to_string()));
    }
    let (header_len, start): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        2 | 3 => return Err(bad("truncated .npy header".to_string())),
        v => {
            return Err(bad(format!(
                ".npy format version {v} is not supported (1-3)"
            )));
        }
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("truncated .npy header".to_string()))?;
    let header = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| bad(".npy header is not text".to_string()))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))?;
        let rest = header[at + key.len() + 2..]
            .trim_start()
            .strip_prefix(':')?;
        Some(rest.trim_start())
    };
    let descr = field("descr").ok_or_else(|| bad("the .npy header has no 'descr'".to_string()))?;
    let dtype = if descr.starts_with("'<f4'") || descr.starts_with("'f4'") {
        ElementType::F32
    } else if descr.starts_with("'|i1'") || descr.starts_with("'i1'") {
        ElementType::I8
    } else if descr.starts_with("'<i4'") || descr.starts_with("'i4'") {
        ElementType::I32
    } else {
        let shown: String = descr.chars().take_while(|&c| c != ',').collect();
        return Err(bad(format!(
            "dtype {shown}, expected '<f4' (little-endian float32; use arr.astype('<f4')), or '|i1' weights and a '<i4' bias for an int8 layer"
        )));
    };
    let fortran = field("fortran_order")
        .ok_or_else(|| bad("the .npy header has no 'fortran_order'".to_string()))?;
    if !fortran.starts_with("False") {
        return Err(bad(
            "fortran_order is not False: save a C-ordered array (np.ascontiguousarray)".to_string(),
        ));
    }
    let shape_text = field("shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.split_once(')'))
        .map(|(inner, _)| inner)
        .ok_or_else(|| bad("the .npy header has no 'shape' tuple".to_string()))?;
    let mut shape = Vec::new();
    for part in shape_text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let d: usize = part
            .parse()
            .map_err(|_| bad(format!("shape dimension {part:?} is not a number")))?;
        shape.push(d);
    }
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    let data = &bytes[end..];
    let (size, kind) = match dtype {
        ElementType::F32 => (4, "float32"),
        ElementType::I8 => (1, "int8"),
        ElementType::I32 => (4, "int32"),
    };
    let short = || {
        bad(format!(
            "shape {shape:?} needs {count} {kind} values ({} bytes) but the file has {} data bytes (truncated?)",
            count.saturating_mul(size),
            data.len()
        ))
    };
    if count.checked_mul(size) != Some(data.len()) {
        return Err(short());
    }
    let data = Values::from_le(dtype, data).ok_or_else(short)?;
    Ok(Tensor { shape, data })
}

/// Checks tensors against the spec: every layer's `.weight` (and `.bias` when the spec says
/// so) with the right shape and element type and valid values (finite for f32, in
/// `[-127, 127]` for int8 weights), nothing left over.
pub fn check(
    file: &str,
    spec: &Spec,
    mut tensors: BTreeMap<String, Tensor>,
) -> Result<ModelWeights, Error> {
    let mut problems = Vec::new();
    let mut layers = Vec::new();
    for l in &spec.layers {
        let weight_name = format!("{}.weight", l.name);
        let bias_name = format!("{}.bias", l.name);
        let (w_type, b_type) = match l.dtype() {
            Dtype::F32 => (ElementType::F32, ElementType::F32),
            Dtype::Int8 => (ElementType::I8, ElementType::I32),
        };
        let expect = |name, shape, dtype| Expected {
            file,
            spec,
            layer: l,
            name,
            shape,
            dtype,
        };
        let w_shape = weight_shape(l);
        let weights = take(
            &expect(&weight_name, &w_shape, w_type),
            &mut tensors,
            &mut problems,
        );
        let bias = match (l.bias, tensors.contains_key(&bias_name)) {
            (true, _) => take(
                &expect(&bias_name, &[l.out_channels], b_type),
                &mut tensors,
                &mut problems,
            ),
            (false, true) => {
                tensors.remove(&bias_name);
                problems.push(Diagnostic {
                    file: file.to_string(),
                    path: bias_name.clone(),
                    message: format!(
                        "layer {:?} has no bias in {} (\"bias\": false) but the weights have one; set \"bias\": true",
                        l.name, spec.file
                    ),
                });
                None
            }
            (false, false) => None,
        };
        match (weights, bias) {
            (Some(Values::F32(weights)), bias) => layers.push(Weights::F32(LayerWeights {
                weights,
                bias: match bias {
                    Some(Values::F32(b)) => Some(b),
                    _ => None,
                },
            })),
            (Some(Values::I8(weights)), bias) => layers.push(Weights::Int8(Int8Weights {
                weights,
                bias: match bias {
                    Some(Values::I32(b)) => Some(b),
                    _ => None,
                },
            })),
            _ => {}
        }
    }
    for name in tensors.keys() {
        problems.push(Diagnostic {
            file: file.to_string(),
            path: name.clone(),
            message: format!(
                "matches no layer of model {:?} ({}): tensors are named <layer>.weight and <layer>.bias",
                spec.model, spec.file
            ),
        });
    }
    if problems.is_empty() {
        Ok(ModelWeights {
            file: file.to_string(),
            layers,
        })
    } else {
        Err(Error::Weights(problems))
    }
}

/// OIHW shape of a layer's weights.
pub fn weight_shape(l: &LayerSpec) -> [usize; 4] {
    [
        l.out_channels,
        l.in_channels / l.groups,
        l.kernel[0],
        l.kernel[1],
    ]
}

/// What one tensor must be.
struct Expected<'a> {
    file: &'a str,
    spec: &'a Spec,
    layer: &'a LayerSpec,
    name: &'a str,
    shape: &'a [usize],
    dtype: ElementType,
}

/// Removes the tensor `e.name` and returns its values if they are what `e` says; a
/// problem otherwise.
fn take(
    e: &Expected,
    tensors: &mut BTreeMap<String, Tensor>,
    problems: &mut Vec<Diagnostic>,
) -> Option<Values> {
    let mut problem = |message: String| {
        problems.push(Diagnostic {
            file: e.file.to_string(),
            path: e.name.to_string(),
            message,
        })
    };
    let (kind, st) = match e.dtype {
        ElementType::F32 => ("a float32", "F32"),
        ElementType::I8 => ("an int8", "I8"),
        ElementType::I32 => ("an int32", "I32"),
    };
    let shape = e.shape;
    let Some(t) = tensors.remove(e.name) else {
        problem(format!(
            "missing: expected {kind} tensor of shape {shape:?}"
        ));
        return None;
    };
    if t.shape != shape {
        problem(format!("shape {:?}, expected {shape:?}", t.shape));
        return None;
    }
    match &t.data {
        Values::F32(v) if e.dtype == ElementType::F32 => {
            if let Some(i) = v.iter().position(|v| !v.is_finite()) {
                problem(format!("value {} at flat index {i} is not finite", v[i]));
                return None;
            }
        }
        Values::I8(v) if e.dtype == ElementType::I8 => {
            if let Some(i) = v.iter().position(|&v| v == i8::MIN) {
                problem(format!(
                    "value -128 at flat index {i} is outside [-127, 127]: int8 weights are symmetric (TFLite's int8 spec; quantize them to [-127, 127])"
                ));
                return None;
            }
        }
        Values::I32(_) if e.dtype == ElementType::I32 => {}
        other => {
            let dtype = e.layer.dtype().as_str();
            problem(format!(
                "dtype {}, expected {st}: layer {:?} is \"dtype\": \"{dtype}\" in {}{}",
                other.dtype_name(),
                e.layer.name,
                e.spec.file,
                match e.layer.dtype() {
                    Dtype::F32 => " (f32 layers take float32 weights and bias)",
                    Dtype::Int8 => " (int8 layers take int8 weights and an int32 bias)",
                }
            ));
            return None;
        }
    }
    Some(t.data)
}

/// Where the kernels of a plan read each weight and bias: the layout both
/// [`pack`] and the generated `pack_weights` pack with.
pub(crate) fn layout(plan: &crate::LayerPlan) -> gspc_runtime::entry::WeightLayout {
    let [kh, kw] = plan.layer.kernel;
    gspc_runtime::entry::WeightLayout {
        kpg: plan.kpg(),
        cpg: plan.cpg(),
        oc_bn: plan.oc_bn,
        nocb: plan.nocb(),
        taps: kh * kw,
        gpv: plan.gpv,
        bias_offset: plan.bias_offset,
        dwc: plan.strategy == crate::Strategy::GspcDwc,
    }
}

/// Packs one layer's weights and bias into the layout of its plan, then (where the plan has
/// one) into that of its one-group plan after them, as the generated `pack_weights` does at
/// run time (both call [`gspc_runtime::entry::WeightLayout::pack`]).
pub fn pack(plan: &crate::LayerPlan, w: &LayerWeights) -> Vec<f32> {
    let mut packed = vec![0.0f32; plan.packed_len];
    layout(plan).pack(&w.weights, w.bias.as_deref(), &mut packed);
    if let (Some(h), Some(at)) = (&plan.one_group, plan.one_group_at()) {
        layout(h).pack(&w.weights, w.bias.as_deref(), &mut packed[at..]);
    }
    packed
}

/// Writes tensors (name, shape, row-major values) as a safetensors file of F32 tensors; a
/// tensor whose values do not fill its shape is an [`Error::Weights`] naming it.
pub fn to_safetensors(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Result<Vec<u8>, Error> {
    let typed: Vec<(String, Vec<usize>, Values)> = tensors
        .iter()
        .map(|(n, s, d)| (n.clone(), s.clone(), Values::F32(d.clone())))
        .collect();
    to_safetensors_values(&typed)
}

impl Values {
    /// The values as little-endian bytes, and their safetensors dtype.
    fn to_le(&self) -> (Vec<u8>, safetensors::Dtype) {
        match self {
            Values::F32(v) => (
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                safetensors::Dtype::F32,
            ),
            Values::I8(v) => (
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                safetensors::Dtype::I8,
            ),
            Values::I32(v) => (
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                safetensors::Dtype::I32,
            ),
        }
    }
}

/// Writes tensors of any element type [`Values`] holds (F32, I8, I32) as a safetensors
/// file; a tensor whose values do not fill its shape is an [`Error::Weights`] naming it.
pub fn to_safetensors_values(tensors: &[(String, Vec<usize>, Values)]) -> Result<Vec<u8>, Error> {
    let bytes: Vec<(Vec<u8>, safetensors::Dtype)> =
        tensors.iter().map(|(_, _, data)| data.to_le()).collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, shape, _), (b, dtype)) in tensors.iter().zip(&bytes) {
        let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), b)
            .map_err(|e| invalid("", name, format!("{e}")))?;
        views.push((name.clone(), view));
    }
    safetensors::serialize(views, None)
        .map_err(|e| Error::Internal(format!("cannot serialize safetensors: {e}")))
}

/// Writes one float32 C-order array as a `.npy` file (format 1.0).
pub fn to_npy(shape: &[usize], data: &[f32]) -> Vec<u8> {
    to_npy_values(shape, &Values::F32(data.to_vec()))
}

/// Writes one C-order array of float32 (`'<f4'`), int8 (`'|i1'`) or int32 (`'<i4'`) as a
/// `.npy` file (format 1.0).
pub fn to_npy_values(shape: &[usize], data: &Values) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let descr = match data {
        Values::F32(_) => "<f4",
        Values::I8(_) => "|i1",
        Values::I32(_) => "<i4",
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let (bytes, _) = data.to_le();
    let mut out = Vec::with_capacity(10 + header.len() + bytes.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip() {
        for shape in [vec![3usize], vec![2, 3, 1, 2], vec![]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 1.0).collect();
            let bytes = to_npy(&shape, &data);
            assert_eq!((bytes.len() - 4 * n) % 64, 0);
            let t = parse_npy("t.npy", &bytes).unwrap();
            assert_eq!(t.shape, shape);
            assert_eq!(t.data, Values::F32(data));
        }
    }

    #[test]
    fn npy_errors_name_the_rule() {
        let ok = to_npy(&[2, 2], &[1.0; 4]);
        let msg = |b: &[u8]| parse_npy("w.npy", b).unwrap_err().to_string();
        assert_eq!(
            msg(&ok[..ok.len() - 1]),
            "w.npy: shape [2, 2] needs 4 float32 values (16 bytes) but the file has 15 data bytes (truncated?)"
        );
        assert_eq!(
            msg(b"PK\x03\x04"),
            "w.npy: not a .npy file (no \\x93NUMPY magic)"
        );
        let replace = |from: &[u8], to: &[u8]| {
            let at = ok.windows(from.len()).position(|w| w == from).unwrap();
            let mut b = ok.clone();
            b[at..at + to.len()].copy_from_slice(to);
            b
        };
        let f8 = replace(b"<f4", b"<f8");
        assert_eq!(
            msg(&f8),
            "w.npy: dtype '<f8', expected '<f4' (little-endian float32; use arr.astype('<f4')), or '|i1' weights and a '<i4' bias for an int8 layer"
        );
        let fortran = replace(b"False", b"True ");
        assert!(msg(&fortran).contains("fortran_order is not False"));
        let mut huge = ok.clone();
        huge.truncate(10);
        assert_eq!(msg(&huge), "w.npy: truncated .npy header");
    }

    #[test]
    fn safetensors_round_trip_and_errors() {
        let t = vec![("a.weight".to_string(), vec![2, 1, 1, 1], vec![1.0f32, -2.0])];
        let bytes = to_safetensors(&t).unwrap();
        let back = parse_safetensors("w.safetensors", &bytes).unwrap();
        assert_eq!(back["a.weight"].shape, vec![2, 1, 1, 1]);
        assert_eq!(back["a.weight"].data, Values::F32(vec![1.0, -2.0]));
        let err = parse_safetensors("w.safetensors", &bytes[..bytes.len() - 3])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("w.safetensors: not a valid safetensors file (truncated or corrupt?)"),
            "{err}"
        );
    }

    const INT8_SPEC: &str = r#"{"model": "q", "layers": [
      {"name": "dw", "in_channels": 2, "out_channels": 2, "groups": 2, "kernel": [1, 2],
       "stride": [1, 1], "padding": [0, 0], "input": [4, 4], "bias": true,
       "dtype": "int8", "quantization": {"requantization": "fp32", "input_scale": 0.02,
       "input_zero_point": 3, "output_scale": 0.05, "output_zero_point": -1,
       "weight_scales": 0.004}},
      {"name": "f", "in_channels": 2, "out_channels": 2, "groups": 2, "kernel": [1, 1],
       "stride": [1, 1], "padding": [0, 0], "input": [4, 4]}]}"#;

    fn int8_tensors(w: Vec<i8>, b: Vec<i32>) -> Vec<(String, Vec<usize>, Values)> {
        vec![
            ("dw.weight".to_string(), vec![2, 1, 1, 2], Values::I8(w)),
            ("dw.bias".to_string(), vec![2], Values::I32(b)),
            (
                "f.weight".to_string(),
                vec![2, 1, 1, 1],
                Values::F32(vec![0.5, -1.0]),
            ),
        ]
    }

    fn messages(e: Error) -> Vec<String> {
        e.to_string().lines().map(str::to_string).collect()
    }

    #[test]
    fn int8_layers_take_int8_weights_and_an_int32_bias() {
        let spec = crate::spec::parse("q.json", INT8_SPEC).unwrap();
        let bytes =
            to_safetensors_values(&int8_tensors(vec![1, -127, 127, 0], vec![-70000, 5])).unwrap();
        let w = from_safetensors("w.safetensors", &bytes, &spec).unwrap();
        assert_eq!(
            w.layers,
            vec![
                Weights::Int8(Int8Weights {
                    weights: vec![1, -127, 127, 0],
                    bias: Some(vec![-70000, 5]),
                }),
                Weights::F32(LayerWeights {
                    weights: vec![0.5, -1.0],
                    bias: None,
                }),
            ]
        );
        // The same from .npy files.
        let dir = tempfile::tempdir().unwrap();
        for (name, shape, values) in int8_tensors(vec![1, -127, 127, 0], vec![-70000, 5]) {
            let path = dir.path().join(format!("{name}.npy"));
            std::fs::write(path, to_npy_values(&shape, &values)).unwrap();
        }
        assert_eq!(read(dir.path(), &spec).unwrap().layers, w.layers);
    }

    #[test]
    fn int8_weight_errors_name_the_tensor_and_the_rule() {
        let spec = crate::spec::parse("q.json", INT8_SPEC).unwrap();
        let check = |t: Vec<(String, Vec<usize>, Values)>| {
            from_safetensors("w.safetensors", &to_safetensors_values(&t).unwrap(), &spec)
                .map_err(messages)
                .unwrap_err()
        };
        assert_eq!(
            check(int8_tensors(vec![1, 2, -128, 0], vec![0, 0])),
            [
                "w.safetensors: dw.weight: value -128 at flat index 2 is outside [-127, 127]: int8 weights are symmetric (TFLite's int8 spec; quantize them to [-127, 127])"
            ]
        );
        let mut f32_weights = int8_tensors(vec![0; 4], vec![0, 0]);
        f32_weights[0].2 = Values::F32(vec![0.0; 4]);
        f32_weights[2].2 = Values::I8(vec![0; 2]);
        assert_eq!(
            check(f32_weights),
            [
                "w.safetensors: dw.weight: dtype F32, expected I8: layer \"dw\" is \"dtype\": \"int8\" in q.json (int8 layers take int8 weights and an int32 bias)",
                "w.safetensors: f.weight: dtype I8, expected F32: layer \"f\" is \"dtype\": \"f32\" in q.json (f32 layers take float32 weights and bias)"
            ]
        );
        let mut i8_bias = int8_tensors(vec![0; 4], vec![0, 0]);
        i8_bias[1].2 = Values::I8(vec![0; 2]);
        assert_eq!(
            check(i8_bias),
            [
                "w.safetensors: dw.bias: dtype I8, expected I32: layer \"dw\" is \"dtype\": \"int8\" in q.json (int8 layers take int8 weights and an int32 bias)"
            ]
        );
        let mut short = int8_tensors(vec![0; 4], vec![0, 0]);
        short.remove(1);
        short[0].1 = vec![2, 1, 2, 1];
        assert_eq!(
            check(short),
            [
                "w.safetensors: dw.weight: shape [2, 1, 2, 1], expected [2, 1, 1, 2]",
                "w.safetensors: dw.bias: missing: expected an int32 tensor of shape [2]"
            ]
        );
        let mut extra = int8_tensors(vec![0; 4], vec![0, 0]);
        extra.push(("dw.scale".to_string(), vec![1], Values::I32(vec![1])));
        assert_eq!(
            check(extra),
            [
                "w.safetensors: dw.scale: matches no layer of model \"q\" (q.json): tensors are named <layer>.weight and <layer>.bias"
            ]
        );
    }

    #[test]
    fn int8_npy_round_trip_and_errors() {
        let bytes = to_npy_values(&[3], &Values::I8(vec![-1, 0, 127]));
        assert_eq!(bytes.len() % 64, 3);
        let t = parse_npy("w.npy", &bytes).unwrap();
        assert_eq!(t.data, Values::I8(vec![-1, 0, 127]));
        assert_eq!(
            parse_npy("w.npy", &bytes[..bytes.len() - 1])
                .unwrap_err()
                .to_string(),
            "w.npy: shape [3] needs 3 int8 values (3 bytes) but the file has 2 data bytes (truncated?)"
        );
        let bytes = to_npy_values(&[2], &Values::I32(vec![-70000, 1]));
        assert_eq!(
            parse_npy("b.npy", &bytes).unwrap().data,
            Values::I32(vec![-70000, 1])
        );
        let u8 = {
            let mut b = to_npy_values(&[1], &Values::I8(vec![1]));
            let at = b.windows(3).position(|w| w == b"|i1").unwrap();
            b[at..at + 3].copy_from_slice(b"|u1");
            b
        };
        assert!(
            parse_npy("w.npy", &u8)
                .unwrap_err()
                .to_string()
                .starts_with("w.npy: dtype '|u1', expected '<f4'"),
        );
        // A safetensors file of another integer type is refused while parsing.
        let st = safetensors::serialize(
            [(
                "a.weight",
                safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![1], &[1u8])
                    .unwrap(),
            )],
            None,
        )
        .unwrap();
        assert_eq!(
            parse_safetensors("w.safetensors", &st)
                .unwrap_err()
                .to_string(),
            "w.safetensors: a.weight: dtype U8, expected F32 (export the weights as float32), or I8 weights and an I32 bias for an int8 layer"
        );
    }
}
