//! Trained weights for a spec: read from safetensors or `.npy` files, checked against the
//! spec, then packed at generation time so the generated code can bake them in.
//!
//! Tensor names follow PyTorch's: `<layer>.weight`, OIHW `[OUT, IN / GROUPS, KH, KW]`, and
//! `<layer>.bias`, `[OUT]`, for layers whose spec says `"bias": true`. Everything is
//! checked before it is used: a missing tensor, a wrong shape or dtype, a bias the spec does
//! not expect (or the other way round), a tensor that matches no layer, a non-finite value,
//! and a truncated or malformed file are errors naming the file, the tensor and the rule.

use crate::error::{Diagnostic, Error, FileOp};
use crate::spec::{LayerSpec, Spec};
use std::collections::BTreeMap;
use std::path::Path;

/// The weights of one layer, as the spec's layer expects them.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// OIHW weights, `weights_len()` values.
    pub weights: Vec<f32>,
    /// The bias, `out_channels` values, when the layer has one.
    pub bias: Option<Vec<f32>>,
}

/// The weights of every layer of a spec, in spec order.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelWeights {
    /// The file they came from, as the caller named it (used in generated comments).
    pub file: String,
    /// One entry per layer of the spec, in spec order.
    pub layers: Vec<LayerWeights>,
}

/// A tensor as read from a file: shape and values (converted to f32 only from f32).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
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

/// Every tensor of a safetensors file. Only `F32` tensors are accepted (the kernels compute
/// in f32; convert others when exporting: `tensor.float()`).
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
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(invalid(
                file,
                &name,
                format!(
                    "dtype {:?}, expected F32 (export the weights as float32)",
                    view.dtype()
                ),
            ));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
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

/// Parses one `.npy` file (format versions 1 to 3) holding a little-endian float32 array in C
/// order.
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
    if !(descr.starts_with("'<f4'") || descr.starts_with("'f4'")) {
        let shown: String = descr.chars().take_while(|&c| c != ',').collect();
        return Err(bad(format!(
            "dtype {shown}, expected '<f4' (little-endian float32; use arr.astype('<f4'))"
        )));
    }
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
    if count.checked_mul(4) != Some(data.len()) {
        return Err(bad(format!(
            "shape {shape:?} needs {count} float32 values ({} bytes) but the file has {} data bytes (truncated?)",
            count.saturating_mul(4),
            data.len()
        )));
    }
    Ok(Tensor {
        shape,
        data: data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    })
}

/// Checks tensors against the spec: every layer's `.weight` (and `.bias` when the spec says
/// so) with the right shape and finite values, nothing left over.
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
        let weights = take(
            file,
            &mut tensors,
            &weight_name,
            &weight_shape(l),
            &mut problems,
        );
        let bias = match (l.bias, tensors.contains_key(&bias_name)) {
            (true, _) => take(
                file,
                &mut tensors,
                &bias_name,
                &[l.out_channels],
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
        if let Some(weights) = weights {
            layers.push(LayerWeights { weights, bias });
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

fn take(
    file: &str,
    tensors: &mut BTreeMap<String, Tensor>,
    name: &str,
    shape: &[usize],
    problems: &mut Vec<Diagnostic>,
) -> Option<Vec<f32>> {
    let mut problem = |message: String| {
        problems.push(Diagnostic {
            file: file.to_string(),
            path: name.to_string(),
            message,
        })
    };
    let Some(t) = tensors.remove(name) else {
        problem(format!(
            "missing: expected a float32 tensor of shape {shape:?}"
        ));
        return None;
    };
    if t.shape != shape {
        problem(format!("shape {:?}, expected {shape:?}", t.shape));
        return None;
    }
    if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
        problem(format!(
            "value {} at flat index {i} is not finite",
            t.data[i]
        ));
        return None;
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

/// Packs one layer's weights and bias into the layout of its plan, as the generated
/// `pack_weights` does at run time (both call [`gspc_runtime::entry::WeightLayout::pack`]).
pub fn pack(plan: &crate::LayerPlan, w: &LayerWeights) -> Vec<f32> {
    let mut packed = vec![0.0f32; plan.packed_len];
    layout(plan).pack(&w.weights, w.bias.as_deref(), &mut packed);
    packed
}

/// Writes tensors (name, shape, row-major values) as a safetensors file of F32 tensors; a
/// tensor whose values do not fill its shape is an [`Error::Weights`] naming it.
pub fn to_safetensors(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Result<Vec<u8>, Error> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, data)| data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, shape, _), b) in tensors.iter().zip(&bytes) {
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
            .map_err(|e| invalid("", name, format!("{e}")))?;
        views.push((name.clone(), view));
    }
    safetensors::serialize(views, None)
        .map_err(|e| Error::Internal(format!("cannot serialize safetensors: {e}")))
}

/// Writes one float32 C-order array as a `.npy` file (format 1.0).
pub fn to_npy(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(data.iter().flat_map(|v| v.to_le_bytes()));
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
            assert_eq!(t.data, data);
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
            "w.npy: dtype '<f8', expected '<f4' (little-endian float32; use arr.astype('<f4'))"
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
        assert_eq!(back["a.weight"].data, vec![1.0, -2.0]);
        let err = parse_safetensors("w.safetensors", &bytes[..bytes.len() - 3])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("w.safetensors: not a valid safetensors file (truncated or corrupt?)"),
            "{err}"
        );
    }
}
