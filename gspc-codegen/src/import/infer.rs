//! Output shapes of one node from its input shapes, attributes and constant inputs: one
//! rule per operator (the lists below for the operators that share one, a `match` arm for
//! the others), and the folding of the small arithmetic around shapes ([`mod@fold`]).

mod fold;

pub(crate) use fold::{Num, Vals, fold};

use super::onnx::{AttributeProto, NodeProto, TensorProto, attribute_type};
use super::shape::{self, AutoPad, Dims, WindowAttrs};
use super::tensor;
use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

/// A constant tensor: borrowed from the model, or made from a Constant node's attribute;
/// shared, so that Identity chains copy nothing.
pub(crate) type Const<'m> = Rc<Cow<'m, TensorProto>>;

/// Constant tensors by value name: initializers and Constant outputs.
pub(crate) type Consts<'m> = HashMap<&'m str, Const<'m>>;

/// Why a node's output shapes are not known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    /// The importer has no shape rule for this operator.
    Unsupported,
    /// The rule failed: the message says why.
    Invalid(String),
}

impl From<String> for Fail {
    fn from(m: String) -> Fail {
        Fail::Invalid(m)
    }
}

/// Operators whose only (first) output has the first input's shape.
const SAME_SHAPE: &[&str] = &[
    "Relu",
    "Clip",
    "LeakyRelu",
    "PRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Identity",
    "Elu",
    "Selu",
    "Celu",
    "Softplus",
    "Softsign",
    "Abs",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Erf",
    "Gelu",
    "Mish",
    "Softmax",
    "LogSoftmax",
    "Cast",
    "Floor",
    "Ceil",
    "Round",
    "Reciprocal",
    "LRN",
    "InstanceNormalization",
    "LpNormalization",
    "ThresholdedRelu",
    "Shrink",
    "GroupNormalization",
    "MeanVarianceNormalization",
    "Hardmax",
    "CastLike",
    "Not",
    "Sign",
    "IsNaN",
    "IsInf",
    "BitwiseNot",
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "Trilu",
    "CumSum",
    "ScatterND",
    "ScatterElements",
    "Scatter",
    "QuantizeLinear",
    "DequantizeLinear",
];

/// Operators with numpy broadcasting over all inputs.
const BROADCAST: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Mod",
    "Pow",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "Where",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "BitShift",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
];

/// Reductions.
const REDUCE: &[&str] = &[
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceSum",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceSumSquare",
    "ReduceLogSumExp",
    "ReduceLogSum",
];

/// Every operator the importer infers output shapes of (for messages and docs/import.md).
pub fn supported_ops() -> Vec<&'static str> {
    let mut v: Vec<&str> = SAME_SHAPE.to_vec();
    v.extend_from_slice(BROADCAST);
    v.extend_from_slice(REDUCE);
    v.extend_from_slice(&[
        "Conv",
        "QLinearConv",
        "BatchNormalization",
        "Dropout",
        "MaxPool",
        "AveragePool",
        "LpPool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "GlobalLpPool",
        "Concat",
        "Flatten",
        "Gemm",
        "MatMul",
        "Reshape",
        "Transpose",
        "Split",
        "Pad",
        "Squeeze",
        "Unsqueeze",
        "Shape",
        "Gather",
        "Slice",
        "ConstantOfShape",
        "Expand",
        "Constant",
        "LayerNormalization",
        "Size",
        "Range",
        "Resize",
        "Upsample",
        "Einsum",
        "Tile",
        "DepthToSpace",
        "SpaceToDepth",
        "ArgMax",
        "ArgMin",
        "TopK",
        "GatherElements",
        "GatherND",
        "DynamicQuantizeLinear",
    ]);
    v
}

/// A node's attributes, with their types checked.
pub(crate) struct Attrs<'m>(pub &'m [AttributeProto]);

fn type_name(t: i32) -> &'static str {
    match t {
        attribute_type::FLOAT => "a float",
        attribute_type::INT => "an int",
        attribute_type::STRING => "a string",
        attribute_type::TENSOR => "a tensor",
        attribute_type::GRAPH => "a graph",
        attribute_type::FLOATS => "a list of floats",
        attribute_type::INTS => "a list of ints",
        attribute_type::STRINGS => "a list of strings",
        _ => "of an unknown type",
    }
}

impl<'m> Attrs<'m> {
    fn get(
        &self,
        name: &str,
        want: i32,
        present: impl Fn(&AttributeProto) -> bool,
    ) -> Result<Option<&'m AttributeProto>, String> {
        let Some(a) = self.0.iter().find(|a| a.name == name) else {
            return Ok(None);
        };
        if a.r#type == want || (a.r#type == 0 && present(a)) {
            Ok(Some(a))
        } else {
            Err(format!(
                "attribute \"{name}\" is {}, expected {}",
                type_name(a.r#type),
                type_name(want)
            ))
        }
    }

    /// An int attribute.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, String> {
        Ok(self
            .get(name, attribute_type::INT, |a| a.i.is_some())?
            .map(|a| a.i.unwrap_or(0)))
    }

    /// An int attribute with a default.
    pub(crate) fn int_or(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    /// A list-of-ints attribute.
    pub(crate) fn ints(&self, name: &str) -> Result<Option<&'m [i64]>, String> {
        Ok(self
            .get(name, attribute_type::INTS, |a| !a.ints.is_empty())?
            .map(|a| a.ints.as_slice()))
    }

    /// A float attribute.
    pub(crate) fn float(&self, name: &str) -> Result<Option<f32>, String> {
        Ok(self
            .get(name, attribute_type::FLOAT, |a| a.f.is_some())?
            .map(|a| a.f.unwrap_or(0.0)))
    }

    /// A list-of-floats attribute.
    pub(crate) fn floats(&self, name: &str) -> Result<Option<&'m [f32]>, String> {
        Ok(self
            .get(name, attribute_type::FLOATS, |a| !a.floats.is_empty())?
            .map(|a| a.floats.as_slice()))
    }

    /// A string attribute (lossy UTF-8).
    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self
            .get(name, attribute_type::STRING, |a| a.s.is_some())?
            .map(|a| String::from_utf8_lossy(a.s.as_deref().unwrap_or_default()).into_owned()))
    }

    /// A tensor attribute.
    pub(crate) fn tensor(&self, name: &str) -> Result<Option<&'m TensorProto>, String> {
        Ok(self
            .get(name, attribute_type::TENSOR, |a| a.t.is_some())?
            .and_then(|a| a.t.as_ref()))
    }
}

/// The constant value of a Constant node, if the importer reads its kind.
pub(crate) fn constant_value<'m>(node: &'m NodeProto) -> Result<Cow<'m, TensorProto>, Fail> {
    let a = Attrs(&node.attribute);
    if let Some(t) = a.tensor("value")? {
        return Ok(Cow::Borrowed(t));
    }
    let float = |dims: Vec<i64>, v: Vec<f32>| TensorProto {
        dims,
        data_type: super::onnx::data_type::FLOAT,
        float_data: v,
        ..Default::default()
    };
    let int = |dims: Vec<i64>, v: Vec<i64>| TensorProto {
        dims,
        data_type: super::onnx::data_type::INT64,
        int64_data: v,
        ..Default::default()
    };
    let len = |n: usize| vec![i64::try_from(n).unwrap_or(i64::MAX)];
    if let Some(f) = a.float("value_float")? {
        return Ok(Cow::Owned(float(vec![], vec![f])));
    }
    if let Some(v) = a.floats("value_floats")? {
        return Ok(Cow::Owned(float(len(v.len()), v.to_vec())));
    }
    if let Some(i) = a.int("value_int")? {
        return Ok(Cow::Owned(int(vec![], vec![i])));
    }
    if let Some(v) = a.ints("value_ints")? {
        return Ok(Cow::Owned(int(len(v.len()), v.to_vec())));
    }
    Err(Fail::Unsupported)
}

/// One node's inputs, as inference sees them.
pub(crate) struct Op<'a, 'm> {
    /// The node.
    pub node: &'m NodeProto,
    /// Input shapes; `None` for an omitted optional input (empty name).
    pub inputs: &'a [Option<Dims>],
    /// Constant values known so far.
    pub consts: &'a Consts<'m>,
    /// Values folded so far (Shape, Gather, Concat, ...: see [`fold()`]).
    pub ivals: &'a HashMap<&'m str, Vals>,
    /// The model's version of the standard operator set.
    pub opset: i64,
}

impl Op<'_, '_> {
    fn input(&self, i: usize) -> Result<&Dims, Fail> {
        self.inputs
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| Fail::Invalid(format!("{} needs input {i}", self.node.op_type)))
    }

    /// The integer values at input `i`: a constant, or computed from shapes; `None` when
    /// the input is omitted.
    pub(crate) fn const_ints(&self, i: usize, max: usize) -> Result<Option<Vec<i64>>, Fail> {
        let Some(name) = self.node.input.get(i).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        if let Some(v) = self.ivals.get(name.as_str()) {
            if v.len() > max {
                return Err(Fail::Invalid(format!(
                    "input {i} \"{}\" has {} values, more than the {max} expected here",
                    super::quote(name),
                    v.len()
                )));
            }
            return v
                .iter()
                .map(|x| match x {
                    Num::I(v) => Ok(*v),
                    Num::F(_) => Err(Fail::Invalid(format!(
                        "input {i} \"{}\" holds floats, integers are expected here",
                        super::quote(name)
                    ))),
                })
                .collect::<Result<_, _>>()
                .map(Some);
        }
        match self.consts.get(name.as_str()) {
            Some(t) => Ok(Some(tensor::ints(t, max)?)),
            None => Err(Fail::Invalid(format!(
                "input {i} \"{}\" is neither a constant (an initializer or a Constant node) nor computed from shapes by ops the importer folds ({})",
                super::quote(name),
                FOLDED
            ))),
        }
    }

    /// Known integer values at input `i`, if any (no error).
    fn known(&self, i: usize) -> Option<Vec<i64>> {
        self.const_ints(i, MAX_FOLD).ok().flatten()
    }

    /// Known values (integers or floats) at input `i`, if any.
    fn known_vals(&self, i: usize) -> Option<Vals> {
        let name = self.node.input.get(i).filter(|n| !n.is_empty())?;
        match self.ivals.get(name.as_str()) {
            Some(v) => Some(v.clone()),
            None => fold::from_tensor(self.consts.get(name.as_str())?),
        }
    }

    /// The float values at input `i` (Resize's scales): a constant or folded; `None` when
    /// the input is omitted.
    fn const_floats(&self, i: usize) -> Result<Option<Vec<f32>>, Fail> {
        let Some(name) = self.node.input.get(i).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        match self.known_vals(i) {
            Some(v) => Ok(Some(
                v.iter()
                    .map(|x| match *x {
                        Num::F(f) => f as f32,
                        Num::I(n) => n as f32,
                    })
                    .collect(),
            )),
            None => Err(Fail::Invalid(format!(
                "input {i} \"{}\" is neither a small constant nor computed from shapes by ops the importer folds ({})",
                super::quote(name),
                FOLDED
            ))),
        }
    }

    fn window(&self, kernel: Option<&[u64]>) -> Result<(Dims, AutoPad), Fail> {
        let a = Attrs(&self.node.attribute);
        let kernel: Dims = match (a.ints("kernel_shape")?, kernel) {
            (Some(k), _) => k
                .iter()
                .map(|&v| shape::dim_from(v, 1, "kernel size"))
                .collect::<Result<_, _>>()?,
            (None, Some(k)) => k.to_vec(),
            (None, None) => return Err(Fail::Invalid("kernel_shape is missing".to_string())),
        };
        let auto_pad = AutoPad::parse(&a.string("auto_pad")?.unwrap_or_default())?;
        Ok((kernel, auto_pad))
    }
}

/// The output shapes of `op` (fewer than its outputs when some are not inferred).
pub(crate) fn infer(op: &Op) -> Result<Vec<Option<Dims>>, Fail> {
    let node = op.node;
    let a = Attrs(&node.attribute);
    let t = node.op_type.as_str();
    let one = |d: Dims| Ok(vec![Some(d)]);
    if SAME_SHAPE.contains(&t) {
        return one(op.input(0)?.clone());
    }
    if BROADCAST.contains(&t) {
        let shapes: Vec<&[u64]> = (0..node.input.len())
            .map(|i| op.input(i).map(Vec::as_slice))
            .collect::<Result<_, _>>()?;
        return one(shape::broadcast(&shapes)?);
    }
    if REDUCE.contains(&t) {
        let x = op.input(0)?;
        let axes = match op.const_ints(1, shape::MAX_RANK)? {
            Some(v) => v,
            None => a.ints("axes")?.map(<[i64]>::to_vec).unwrap_or_default(),
        };
        let keep = a.int_or("keepdims", 1)? != 0;
        let noop = a.int_or("noop_with_empty_axes", 0)? != 0;
        return one(shape::reduce(x, &axes, keep, noop)?);
    }
    match t {
        "Dropout" => {
            let x = op.input(0)?.clone();
            Ok(vec![Some(x.clone()), Some(x)])
        }
        "BatchNormalization" => {
            let x = op.input(0)?.clone();
            let c = shape::batch_channels_spatial(&x)?.1;
            Ok(vec![Some(x), Some(vec![c]), Some(vec![c])])
        }
        "Conv" | "QLinearConv" => {
            // QLinearConv: x, x_scale, x_zero_point, w, ...
            let x = op.input(0)?;
            let w = op.input(if op.node.op_type == "Conv" { 1 } else { 3 })?;
            let (kernel, auto_pad) = op.window(w.get(2..))?;
            let group = u64::try_from(a.int_or("group", 1)?)
                .map_err(|_| "group must be positive".to_string())?;
            let wa = WindowAttrs {
                kernel: &kernel,
                strides: a.ints("strides")?,
                dilations: a.ints("dilations")?,
                pads: a.ints("pads")?,
                auto_pad,
            };
            one(shape::conv(x, w, group, &wa)?.0)
        }
        "MaxPool" | "AveragePool" | "LpPool" => {
            let x = op.input(0)?;
            let (kernel, auto_pad) = op.window(None)?;
            let wa = WindowAttrs {
                kernel: &kernel,
                strides: a.ints("strides")?,
                dilations: a.ints("dilations")?,
                pads: a.ints("pads")?,
                auto_pad,
            };
            let ceil = a.int_or("ceil_mode", 0)? != 0;
            let y = shape::pool(x, &wa, ceil)?;
            Ok(vec![Some(y.clone()), Some(y)])
        }
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => {
            one(shape::global_pool(op.input(0)?)?)
        }
        "Concat" => {
            let shapes: Vec<&[u64]> = (0..node.input.len())
                .map(|i| op.input(i).map(Vec::as_slice))
                .collect::<Result<_, _>>()?;
            let axis = a
                .int("axis")?
                .ok_or_else(|| "Concat needs the attribute axis".to_string())?;
            one(shape::concat(&shapes, axis)?)
        }
        "Flatten" => one(shape::flatten(op.input(0)?, a.int_or("axis", 1)?)?),
        "Gemm" => one(shape::gemm(
            op.input(0)?,
            op.input(1)?,
            a.int_or("transA", 0)? != 0,
            a.int_or("transB", 0)? != 0,
        )?),
        "MatMul" => one(shape::matmul(op.input(0)?, op.input(1)?)?),
        "Reshape" => {
            let x = op.input(0)?;
            let target = if op.opset < 5 {
                a.ints("shape")?.map(<[i64]>::to_vec)
            } else {
                op.const_ints(1, shape::MAX_RANK)?
            };
            let target = target.ok_or_else(|| "Reshape needs the target shape".to_string())?;
            one(shape::reshape(x, &target, a.int_or("allowzero", 0)? != 0)?)
        }
        "Transpose" => one(shape::transpose(op.input(0)?, a.ints("perm")?)?),
        "Split" => {
            let x = op.input(0)?;
            let sizes = match op.const_ints(1, node.output.len())? {
                Some(v) => Some(v),
                None => a.ints("split")?.map(<[i64]>::to_vec),
            };
            // Opset 18: `num_outputs` equal pieces, the last one smaller.
            if let Some(n) = a.int("num_outputs")?
                && usize::try_from(n).ok() != Some(node.output.len())
            {
                return Err(Fail::Invalid(format!(
                    "num_outputs {n} differs from the node's {} outputs",
                    node.output.len()
                )));
            }
            let outs = shape::split(x, a.int_or("axis", 0)?, sizes.as_deref(), node.output.len())?;
            Ok(outs.into_iter().map(Some).collect())
        }
        "Pad" => {
            let x = op.input(0)?;
            let pads = if op.opset < 11 {
                a.ints("pads")?.map(<[i64]>::to_vec)
            } else {
                op.const_ints(1, 2 * shape::MAX_RANK)?
            };
            let pads = pads.ok_or_else(|| "Pad needs pads".to_string())?;
            let axes = op.const_ints(3, shape::MAX_RANK)?;
            one(shape::pad(x, &pads, axes.as_deref())?)
        }
        "Squeeze" => {
            let x = op.input(0)?;
            let axes = match op.const_ints(1, shape::MAX_RANK)? {
                Some(v) => Some(v),
                None => a.ints("axes")?.map(<[i64]>::to_vec),
            };
            one(shape::squeeze(x, axes.as_deref())?)
        }
        "Unsqueeze" => {
            let x = op.input(0)?;
            let axes = match op.const_ints(1, shape::MAX_RANK)? {
                Some(v) => Some(v),
                None => a.ints("axes")?.map(<[i64]>::to_vec),
            };
            let axes = axes.ok_or_else(|| "Unsqueeze needs axes".to_string())?;
            one(shape::unsqueeze(x, &axes)?)
        }
        "Shape" => {
            let x = op.input(0)?;
            let (s, e) = shape_range(&a, x.len())?;
            one(vec![u64::try_from(e - s).unwrap_or(u64::MAX)])
        }
        "Gather" => one(shape::gather(
            op.input(0)?,
            op.input(1)?,
            a.int_or("axis", 0)?,
        )?),
        "Slice" => {
            let x = op.input(0)?;
            let (starts, ends, axes, steps) = if op.opset < 10 {
                let get = |n: &str| a.ints(n).map(|v| v.map(<[i64]>::to_vec));
                (get("starts")?, get("ends")?, get("axes")?, None)
            } else {
                (
                    op.const_ints(1, shape::MAX_RANK)?,
                    op.const_ints(2, shape::MAX_RANK)?,
                    op.const_ints(3, shape::MAX_RANK)?,
                    op.const_ints(4, shape::MAX_RANK)?,
                )
            };
            let (starts, ends) = starts
                .zip(ends)
                .ok_or_else(|| "Slice needs starts and ends".to_string())?;
            let ranges = shape::slice(x, &starts, &ends, axes.as_deref(), steps.as_deref())?;
            one(ranges.iter().map(|r| r.len).collect())
        }
        "ConstantOfShape" => {
            let dims = op
                .const_ints(0, shape::MAX_RANK)?
                .ok_or_else(|| "ConstantOfShape needs its shape".to_string())?;
            let d: Dims = dims
                .iter()
                .map(|&v| shape::dim_from(v, 0, "dimension"))
                .collect::<Result<_, _>>()?;
            one(d)
        }
        "Expand" => {
            let x = op.input(0)?;
            let dims = op
                .const_ints(1, shape::MAX_RANK)?
                .ok_or_else(|| "Expand needs its shape".to_string())?;
            let d: Dims = dims
                .iter()
                .map(|&v| shape::dim_from(v, 0, "dimension"))
                .collect::<Result<_, _>>()?;
            one(shape::broadcast(&[x, &d])?)
        }
        "LayerNormalization" => {
            // Y as X; Mean and InvStdDev keep the axes before `axis` and 1 from it on.
            let x = op.input(0)?;
            let ax = shape::axis(a.int_or("axis", -1)?, x.len(), "axis")?;
            let mut stats = x[..ax].to_vec();
            stats.resize(x.len(), 1);
            Ok(vec![Some(x.clone()), Some(stats.clone()), Some(stats)])
        }
        "Size" => one(vec![]),
        "Range" => {
            let scalar = |i: usize| -> Result<Num, Fail> {
                match op.known_vals(i).as_deref() {
                    Some([v]) => Ok(*v),
                    _ => Err(Fail::Invalid(format!(
                        "input {i} of Range is not a known scalar (a constant or folded from shapes)"
                    ))),
                }
            };
            let (s, l, d) = (scalar(0)?, scalar(1)?, scalar(2)?);
            let n = fold::range_len(s, l, d).ok_or_else(|| {
                format!("Range({s}, {l}, {d}) has no valid length (a zero delta, mixed types or too many elements)")
            })?;
            one(vec![n])
        }
        "Resize" | "Upsample" => {
            let x = op.input(0)?;
            // Opset 7-8 Upsample: a scales attribute; Upsample 9 and Resize 10: input 1;
            // Resize 11+: roi, scales, sizes at 1, 2, 3.
            let (scales, sizes) = if t == "Upsample" && op.opset < 9 {
                (a.floats("scales")?.map(<[f32]>::to_vec), None)
            } else if t == "Upsample" || op.opset < 11 {
                (op.const_floats(1)?, None)
            } else {
                (op.const_floats(2)?, op.const_ints(3, shape::MAX_RANK)?)
            };
            let policy = a.string("keep_aspect_ratio_policy")?;
            let r = shape::Resize {
                scales: scales.filter(|s| !s.is_empty()),
                sizes: sizes.filter(|s| !s.is_empty()),
                axes: a.ints("axes")?,
                policy: policy.as_deref().unwrap_or("stretch"),
            };
            one(shape::resize(x, &r)?)
        }
        "Einsum" => {
            let eq = a
                .string("equation")?
                .ok_or_else(|| "Einsum needs the attribute equation".to_string())?;
            let shapes: Vec<&[u64]> = (0..node.input.len())
                .map(|i| op.input(i).map(Vec::as_slice))
                .collect::<Result<_, _>>()?;
            one(shape::einsum(&eq, &shapes)?)
        }
        "Tile" => {
            let x = op.input(0)?;
            let reps = op
                .const_ints(1, shape::MAX_RANK)?
                .ok_or_else(|| "Tile needs repeats".to_string())?;
            one(shape::tile(x, &reps)?)
        }
        "DepthToSpace" | "SpaceToDepth" => {
            let x = op.input(0)?;
            let b = a
                .int("blocksize")?
                .ok_or_else(|| format!("{t} needs the attribute blocksize"))?;
            one(shape::depth_space(x, b, t == "DepthToSpace")?)
        }
        "ArgMax" | "ArgMin" => {
            let x = op.input(0)?;
            let keep = a.int_or("keepdims", 1)? != 0;
            one(shape::reduce(x, &[a.int_or("axis", 0)?], keep, false)?)
        }
        "TopK" => {
            let x = op.input(0)?;
            let k = match op.const_ints(1, 1)?.as_deref() {
                Some([k]) => *k,
                _ if op.opset < 10 => a
                    .int("k")?
                    .ok_or_else(|| "TopK needs the attribute k".to_string())?,
                _ => return Err(Fail::Invalid("TopK needs a scalar k".to_string())),
            };
            let ax = shape::axis(a.int_or("axis", -1)?, x.len(), "axis")?;
            let k = shape::dim_from(k, 0, "k")?;
            if k > x[ax] {
                return Err(Fail::Invalid(format!(
                    "k {k} is larger than axis {ax} of {}",
                    shape::show(x)
                )));
            }
            let mut y = x.clone();
            y[ax] = k;
            Ok(vec![Some(y.clone()), Some(y)])
        }
        "GatherND" => one(shape::gather_nd(
            op.input(0)?,
            op.input(1)?,
            a.int_or("batch_dims", 0)?,
        )?),
        "DynamicQuantizeLinear" => {
            // y as x; y_scale and y_zero_point are scalars.
            Ok(vec![Some(op.input(0)?.clone()), Some(vec![]), Some(vec![])])
        }
        "GatherElements" => {
            op.input(0)?;
            one(op.input(1)?.clone())
        }
        _ => Err(Fail::Unsupported),
    }
}

/// Most values one folded integer tensor may have (shapes, axes, pads).
pub(crate) const MAX_FOLD: usize = 64;

/// What the importer folds (computes the values of), for messages.
pub(crate) const FOLDED: &str = "Shape, Size, Gather, Slice, Concat, Reshape, Squeeze, Unsqueeze, Flatten, Transpose, Identity, Cast, CastLike, element-wise arithmetic (Add, Sub, Mul, Div, Mod, Pow, Neg, Abs, Floor, Ceil, Round, Sqrt, Max, Min, Clip, ...), comparisons, Where, Range, ConstantOfShape, Expand, ReduceProd/Sum/Max/Min on known values";

/// `Shape`'s `start` and `end` (opset 15), clamped into `0..=rank`.
fn shape_range(a: &Attrs, rank: usize) -> Result<(usize, usize), Fail> {
    let r = i64::try_from(rank).unwrap_or(i64::MAX);
    let clamp = |v: i64| -> usize {
        let v = if v < 0 { v.saturating_add(r) } else { v };
        usize::try_from(v.clamp(0, r)).unwrap_or(0)
    };
    let s = clamp(a.int_or("start", 0)?);
    let e = clamp(a.int_or("end", r)?);
    Ok((s, e.max(s)))
}
