//! Folding of the small integer (and float) arithmetic exporters write around shapes:
//! `Shape -> Gather -> Cast -> Div -> Ceil -> Sub -> Max -> Concat -> Pad` (timm's "same"
//! padding), `ConstantOfShape -> Concat -> Reshape -> Slice -> Transpose -> Reshape` (the
//! TorchScript exporter's `F.pad`), `x.view(n, g, c // g, h, w)` with a dynamic batch.
//!
//! A folded value is at most [`MAX_FOLD`] elements, row-major, with the shape inference
//! gives it. Every operation is checked: an overflow, a division by zero, a value that is
//! not finite or operands of different kinds fold nothing (the shape rule that needs the
//! value then says so).

use super::super::onnx::{TensorProto, data_type};
use super::super::shape::{self, Dims};
use super::super::tensor;
use super::{Attrs, MAX_FOLD, Op};

/// One folded element: an integer (INT64, INT32, BOOL as 0/1, ...) or a float (FLOAT,
/// DOUBLE, kept as f64).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Num {
    /// An integer element.
    I(i64),
    /// A float element.
    F(f64),
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Num::I(v) => write!(f, "{v}"),
            Num::F(v) => write!(f, "{v:?}"),
        }
    }
}

/// A folded tensor's elements, row-major.
pub(crate) type Vals = Vec<Num>;

/// The elements of a small constant tensor (at most [`MAX_FOLD`]), if their type folds.
pub(crate) fn from_tensor(t: &TensorProto) -> Option<Vals> {
    let n = shape::product(&tensor::dims(t).ok()?).ok()?;
    if n > MAX_FOLD as u64 {
        return None;
    }
    match t.data_type {
        data_type::INT64 | data_type::INT32 => Some(
            tensor::ints(t, MAX_FOLD)
                .ok()?
                .into_iter()
                .map(Num::I)
                .collect(),
        ),
        data_type::FLOAT | data_type::DOUBLE => Some(
            tensor::floats(t)
                .ok()?
                .into_iter()
                .map(|x| Num::F(f64::from(x)))
                .collect(),
        ),
        _ => None,
    }
}

/// Integer kinds Cast folds to.
const INT_TYPES: &[i32] = &[
    data_type::INT64,
    data_type::INT32,
    data_type::INT16,
    data_type::INT8,
    data_type::UINT8,
    data_type::UINT16,
    data_type::UINT32,
    data_type::UINT64,
];

/// Casts one element to the ONNX type `to` (float to integer truncates, as ONNX Runtime
/// does); `None` for a type that does not fold or a value out of range.
fn cast(x: Num, to: i32) -> Option<Num> {
    match to {
        data_type::FLOAT => Some(Num::F(f64::from(as_f64(x)? as f32))),
        data_type::DOUBLE => Some(Num::F(as_f64(x)?)),
        data_type::BOOL => Some(Num::I(i64::from(as_f64(x)? != 0.0))),
        t if INT_TYPES.contains(&t) => match x {
            Num::I(v) => Some(Num::I(v)),
            Num::F(v) if v.is_finite() && v.abs() < 9.0e15 => Some(Num::I(v.trunc() as i64)),
            Num::F(_) => None,
        },
        _ => None,
    }
}

fn as_f64(x: Num) -> Option<f64> {
    match x {
        Num::I(v) if v.unsigned_abs() < (1 << 53) => Some(v as f64),
        Num::I(_) => None,
        Num::F(v) => Some(v),
    }
}

/// A finite float result.
fn float(v: f64) -> Option<Num> {
    v.is_finite().then_some(Num::F(v))
}

/// Integer modulo with ONNX's `fmod` attribute: 0 takes the divisor's sign (Python), 1 the
/// dividend's (C).
fn int_mod(a: i64, b: i64, fmod: bool) -> Option<i64> {
    let r = a.checked_rem(b)?;
    Some(if !fmod && r != 0 && ((r < 0) != (b < 0)) {
        r + b
    } else {
        r
    })
}

/// One element-wise binary operation; `None` for mixed kinds, overflow, division by zero.
fn binary(op_type: &str, fmod: bool, p: Num, q: Num) -> Option<Num> {
    use Num::{F, I};
    let bool_of = |b: bool| Some(I(i64::from(b)));
    match (p, q) {
        (I(x), I(y)) => match op_type {
            "Add" | "Sum" => x.checked_add(y).map(I),
            "Sub" => x.checked_sub(y).map(I),
            "Mul" => x.checked_mul(y).map(I),
            "Div" => x.checked_div(y).map(I),
            "Mod" => int_mod(x, y, fmod).map(I),
            "Pow" => x.checked_pow(u32::try_from(y).ok()?).map(I),
            "Max" => Some(I(x.max(y))),
            "Min" => Some(I(x.min(y))),
            "Equal" => bool_of(x == y),
            "Less" => bool_of(x < y),
            "Greater" => bool_of(x > y),
            "LessOrEqual" => bool_of(x <= y),
            "GreaterOrEqual" => bool_of(x >= y),
            "And" => bool_of(x != 0 && y != 0),
            "Or" => bool_of(x != 0 || y != 0),
            "Xor" => bool_of((x != 0) != (y != 0)),
            _ => None,
        },
        (F(x), F(y)) => match op_type {
            "Add" | "Sum" => float(x + y),
            "Sub" => float(x - y),
            "Mul" => float(x * y),
            "Div" => float(x / y),
            "Mod" if fmod => float(x % y),
            "Pow" => float(x.powf(y)),
            "Max" => float(x.max(y)),
            "Min" => float(x.min(y)),
            "Equal" => bool_of(x == y),
            "Less" => bool_of(x < y),
            "Greater" => bool_of(x > y),
            "LessOrEqual" => bool_of(x <= y),
            "GreaterOrEqual" => bool_of(x >= y),
            _ => None,
        },
        // Pow may raise a float to an integer power.
        (F(x), I(y)) if op_type == "Pow" => float(x.powi(i32::try_from(y).ok()?)),
        _ => None,
    }
}

/// One element-wise unary operation.
fn unary(op_type: &str, x: Num) -> Option<Num> {
    use Num::{F, I};
    match (op_type, x) {
        ("Neg", I(v)) => v.checked_neg().map(I),
        ("Neg", F(v)) => float(-v),
        ("Abs", I(v)) => v.checked_abs().map(I),
        ("Abs", F(v)) => float(v.abs()),
        ("Sign", I(v)) => Some(I(v.signum())),
        ("Sign", F(v)) => float(if v == 0.0 { 0.0 } else { v.signum() }),
        ("Relu", I(v)) => Some(I(v.max(0))),
        ("Relu", F(v)) => float(v.max(0.0)),
        ("Not", I(v)) => Some(I(i64::from(v == 0))),
        ("Floor", F(v)) => float(v.floor()),
        ("Ceil", F(v)) => float(v.ceil()),
        ("Round", F(v)) => float(v.round_ties_even()),
        ("Sqrt", F(v)) if v >= 0.0 => float(v.sqrt()),
        ("Reciprocal", F(v)) => float(1.0 / v),
        ("Identity" | "Floor" | "Ceil" | "Round", I(v)) => Some(I(v)),
        _ => None,
    }
}

/// The flat index into an input of shape `inp` (broadcast to `out`) of output element
/// `flat`.
fn broadcast_index(out: &[u64], inp: &[u64], mut flat: u64) -> usize {
    let off = out.len() - inp.len();
    let (mut idx, mut stride) = (0u64, 1u64);
    for k in (0..out.len()).rev() {
        let coord = flat % out[k];
        flat /= out[k];
        if k >= off {
            let d = inp[k - off];
            if d != 1 {
                idx += coord * stride;
            }
            stride *= d;
        }
    }
    usize::try_from(idx).unwrap_or(usize::MAX)
}

/// Row-major strides of `d`.
fn strides(d: &[u64]) -> Vec<u64> {
    let mut s = vec![1u64; d.len()];
    for k in (0..d.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * d[k + 1];
    }
    s
}

/// The coordinates of flat index `flat` in shape `d`.
fn coords(d: &[u64], mut flat: u64) -> Vec<u64> {
    let mut c = vec![0u64; d.len()];
    for k in (0..d.len()).rev() {
        c[k] = flat % d[k];
        flat /= d[k];
    }
    c
}

fn at(v: &[Num], i: u64) -> Option<Num> {
    v.get(usize::try_from(i).ok()?).copied()
}

impl Op<'_, '_> {
    /// The shape of input `i`.
    fn shape_of(&self, i: usize) -> Option<&Dims> {
        self.inputs.get(i)?.as_ref()
    }

    /// The folded values of input `i`, checked against its shape (every dimension small,
    /// so that index arithmetic cannot overflow even when the tensor is empty).
    fn vals(&self, i: usize) -> Option<Vals> {
        let v = self.known_vals(i)?;
        let d = self.shape_of(i)?;
        if d.iter().any(|&x| x > MAX_FOLD as u64) {
            return None;
        }
        (v.len() as u64 == shape::product(d).ok()?).then_some(v)
    }

    /// Every input's shape and values, broadcast to the output shape.
    fn broadcast_all(&self) -> Option<(Dims, Vec<(Dims, Vals)>)> {
        let ins: Vec<(Dims, Vals)> = (0..self.node.input.len())
            .map(|i| Some((self.shape_of(i)?.clone(), self.vals(i)?)))
            .collect::<Option<_>>()?;
        let shapes: Vec<&[u64]> = ins.iter().map(|(d, _)| d.as_slice()).collect();
        let out = shape::broadcast(&shapes).ok()?;
        (shape::product(&out).ok()? <= MAX_FOLD as u64).then_some((out, ins))
    }
}

/// The values of `op`'s first output, when they follow from known values.
pub(crate) fn fold(op: &Op) -> Option<Vals> {
    let node = op.node;
    let a = Attrs(&node.attribute);
    let t = node.op_type.as_str();
    let out: Vals = match t {
        "Shape" => {
            let x = op.shape_of(0)?;
            let (s, e) = super::shape_range(&a, x.len()).ok()?;
            x.get(s..e)?
                .iter()
                .map(|&d| i64::try_from(d).ok().map(Num::I))
                .collect::<Option<_>>()?
        }
        "Size" => vec![Num::I(
            i64::try_from(shape::product(op.shape_of(0)?).ok()?).ok()?,
        )],
        // The same elements in another shape.
        "Identity" | "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten" => op.vals(0)?,
        "Cast" => {
            let to = i32::try_from(a.int("to").ok()??).ok()?;
            op.vals(0)?
                .into_iter()
                .map(|x| cast(x, to))
                .collect::<Option<_>>()?
        }
        "CastLike" => {
            let to = match op.consts.get(node.input.get(1)?.as_str()) {
                Some(c) => c.data_type,
                None => match op.vals(1)?.first()? {
                    Num::I(_) => data_type::INT64,
                    Num::F(_) => data_type::DOUBLE,
                },
            };
            op.vals(0)?
                .into_iter()
                .map(|x| cast(x, to))
                .collect::<Option<_>>()?
        }
        "Neg" | "Abs" | "Sign" | "Relu" | "Not" | "Floor" | "Ceil" | "Round" | "Sqrt"
        | "Reciprocal" => op
            .vals(0)?
            .into_iter()
            .map(|x| unary(t, x))
            .collect::<Option<_>>()?,
        "Add" | "Sub" | "Mul" | "Div" | "Mod" | "Pow" | "Max" | "Min" | "Sum" | "Mean"
        | "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or"
        | "Xor" => {
            let fmod = a.int_or("fmod", 0).ok()? != 0;
            let (out, ins) = op.broadcast_all()?;
            let (first, rest) = ins.split_first()?;
            let f = if t == "Mean" { "Sum" } else { t };
            let mut v = Vec::new();
            for k in 0..shape::product(&out).ok()? {
                let mut acc = at(&first.1, broadcast_index(&out, &first.0, k) as u64)?;
                for (d, x) in rest {
                    acc = binary(f, fmod, acc, at(x, broadcast_index(&out, d, k) as u64)?)?;
                }
                if t == "Mean" {
                    let n = f64::from(u32::try_from(ins.len()).ok()?);
                    acc = match acc {
                        Num::F(s) => float(s / n)?,
                        Num::I(_) => return None,
                    };
                }
                v.push(acc);
            }
            v
        }
        "Clip" => {
            // Bounds: optional inputs 1 and 2 (attributes before opset 11), each one value.
            let bound = |i: usize, name: &str| -> Option<Option<Num>> {
                if op.opset < 11 {
                    return Some(a.float(name).ok()?.map(|v| Num::F(f64::from(v))));
                }
                if node.input.get(i).is_none_or(|n| n.is_empty()) {
                    return Some(None);
                }
                match op.known_vals(i)?.as_slice() {
                    [v] => Some(Some(*v)),
                    _ => None,
                }
            };
            let (lo, hi) = (bound(1, "min")?, bound(2, "max")?);
            op.vals(0)?
                .into_iter()
                .map(|x| {
                    let x = match lo {
                        Some(l) => binary("Max", false, x, l)?,
                        None => x,
                    };
                    match hi {
                        Some(h) => binary("Min", false, x, h),
                        None => Some(x),
                    }
                })
                .collect::<Option<_>>()?
        }
        "Where" => {
            let (out, ins) = op.broadcast_all()?;
            let [c, x, y] = ins.as_slice() else {
                return None;
            };
            (0..shape::product(&out).ok()?)
                .map(|k| {
                    let pick = at(&c.1, broadcast_index(&out, &c.0, k) as u64)?;
                    let from = match pick {
                        Num::I(0) => y,
                        Num::I(_) => x,
                        Num::F(_) => return None,
                    };
                    at(&from.1, broadcast_index(&out, &from.0, k) as u64)
                })
                .collect::<Option<_>>()?
        }
        "Expand" => {
            let x = op.shape_of(0)?;
            let data = op.vals(0)?;
            let to: Dims = op
                .known(1)?
                .iter()
                .map(|&v| shape::dim_from(v, 0, "dimension").ok())
                .collect::<Option<_>>()?;
            let out = shape::broadcast(&[x, &to]).ok()?;
            if shape::product(&out).ok()? > MAX_FOLD as u64 {
                return None;
            }
            (0..shape::product(&out).ok()?)
                .map(|k| at(&data, broadcast_index(&out, x, k) as u64))
                .collect::<Option<_>>()?
        }
        "ConstantOfShape" => {
            let dims: Dims = op
                .known(0)?
                .iter()
                .map(|&v| shape::dim_from(v, 0, "dimension").ok())
                .collect::<Option<_>>()?;
            let n = shape::product(&dims).ok()?;
            if n > MAX_FOLD as u64 {
                return None;
            }
            let value = match a.tensor("value").ok()? {
                None => Num::F(0.0),
                Some(v) => *from_tensor(v)?.first()?,
            };
            vec![value; usize::try_from(n).ok()?]
        }
        "Range" => {
            let scalar = |i: usize| -> Option<Num> {
                let v = op.vals(i)?;
                (v.len() == 1).then(|| v[0])
            };
            range(scalar(0)?, scalar(1)?, scalar(2)?)?
        }
        "Gather" => {
            let x = op.shape_of(0)?;
            let data = op.vals(0)?;
            let ax = shape::axis(a.int_or("axis", 0).ok()?, x.len(), "axis").ok()?;
            let idx = op.known(1)?;
            let d = i64::try_from(x[ax]).ok()?;
            let outer = shape::product(&x[..ax]).ok()?;
            let inner = shape::product(&x[ax + 1..]).ok()?;
            let mut v = Vec::new();
            for o in 0..outer {
                for &i in &idx {
                    let i = if i < 0 { i.checked_add(d)? } else { i };
                    if !(0..d).contains(&i) {
                        return None;
                    }
                    let base = (o * x[ax] + i as u64) * inner;
                    for k in 0..inner {
                        v.push(at(&data, base + k)?);
                    }
                }
            }
            v
        }
        "Concat" => {
            let first = op.shape_of(0)?;
            let ax = shape::axis(a.int("axis").ok()??, first.len(), "axis").ok()?;
            let ins: Vec<(Dims, Vals)> = (0..node.input.len())
                .map(|i| Some((op.shape_of(i)?.clone(), op.vals(i)?)))
                .collect::<Option<_>>()?;
            let outer = shape::product(&first[..ax]).ok()?;
            let mut v = Vec::new();
            for o in 0..outer {
                for (d, x) in &ins {
                    let chunk = shape::product(&d[ax..]).ok()?;
                    for k in 0..chunk {
                        v.push(at(x, o * chunk + k)?);
                    }
                }
            }
            v
        }
        "Slice" => {
            let x = op.shape_of(0)?;
            let data = op.vals(0)?;
            let (starts, ends, axes, steps) = if op.opset < 10 {
                let get = |n: &str| a.ints(n).ok().flatten().map(<[i64]>::to_vec);
                (get("starts")?, get("ends")?, get("axes"), None)
            } else {
                (
                    op.known(1)?,
                    op.known(2)?,
                    op.const_ints(3, MAX_FOLD).ok()?,
                    op.const_ints(4, MAX_FOLD).ok()?,
                )
            };
            let ranges = shape::slice(x, &starts, &ends, axes.as_deref(), steps.as_deref()).ok()?;
            let out: Dims = ranges.iter().map(|r| r.len).collect();
            let st = strides(x);
            (0..shape::product(&out).ok()?)
                .map(|k| {
                    let c = coords(&out, k);
                    let mut flat = 0i64;
                    for (j, r) in ranges.iter().enumerate() {
                        let pos = r
                            .start
                            .checked_add(r.step.checked_mul(i64::try_from(c[j]).ok()?)?)?;
                        flat = flat.checked_add(pos.checked_mul(i64::try_from(st[j]).ok()?)?)?;
                    }
                    at(&data, u64::try_from(flat).ok()?)
                })
                .collect::<Option<_>>()?
        }
        "Transpose" => {
            let x = op.shape_of(0)?;
            let data = op.vals(0)?;
            let perm: Vec<usize> = match a.ints("perm").ok()? {
                Some(p) => p
                    .iter()
                    .map(|&v| usize::try_from(v).ok())
                    .collect::<Option<_>>()?,
                None => (0..x.len()).rev().collect(),
            };
            let out = shape::transpose(x, a.ints("perm").ok()?).ok()?;
            let st = strides(x);
            (0..shape::product(&out).ok()?)
                .map(|k| {
                    let c = coords(&out, k);
                    let flat: u64 = perm.iter().zip(&c).map(|(&p, &ci)| ci * st[p]).sum();
                    at(&data, flat)
                })
                .collect::<Option<_>>()?
        }
        "ReduceProd" | "ReduceSum" | "ReduceMax" | "ReduceMin" => {
            let x = op.shape_of(0)?;
            let data = op.vals(0)?;
            let axes = match op.const_ints(1, shape::MAX_RANK).ok()? {
                Some(v) => v,
                None => a
                    .ints("axes")
                    .ok()?
                    .map(<[i64]>::to_vec)
                    .unwrap_or_default(),
            };
            let noop = a.int_or("noop_with_empty_axes", 0).ok()? != 0;
            if axes.is_empty() && noop {
                data
            } else {
                let all = axes.is_empty();
                let axes: Vec<usize> = axes
                    .iter()
                    .map(|&v| shape::axis(v, x.len(), "axis").ok())
                    .collect::<Option<_>>()?;
                let kept: Dims = x
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| if all || axes.contains(&i) { 1 } else { d })
                    .collect();
                let f = match t {
                    "ReduceProd" => "Mul",
                    "ReduceSum" => "Add",
                    "ReduceMax" => "Max",
                    _ => "Min",
                };
                let n = usize::try_from(shape::product(&kept).ok()?).ok()?;
                let mut acc: Vec<Option<Num>> = vec![None; n];
                let st = strides(&kept);
                for (k, &v) in data.iter().enumerate() {
                    let c = coords(x, k as u64);
                    let o: u64 = c
                        .iter()
                        .zip(&kept)
                        .zip(&st)
                        .map(|((&ci, &d), &s)| if d == 1 { 0 } else { ci * s })
                        .sum();
                    let slot = acc.get_mut(usize::try_from(o).ok()?)?;
                    *slot = Some(match *slot {
                        None => v,
                        Some(p) => binary(f, false, p, v)?,
                    });
                }
                // An empty reduction has its identity: only the product and sum are folded.
                acc.into_iter()
                    .map(|s| match (s, t) {
                        (Some(v), _) => Some(v),
                        (None, "ReduceProd") => Some(Num::I(1)),
                        (None, "ReduceSum") => Some(Num::I(0)),
                        _ => None,
                    })
                    .collect::<Option<_>>()?
            }
        }
        _ => return None,
    };
    (out.len() <= MAX_FOLD).then_some(out)
}

/// Range's elements: `start + k * delta` while before `limit`.
pub(crate) fn range(start: Num, limit: Num, delta: Num) -> Option<Vals> {
    let n = range_len(start, limit, delta)?;
    if n > MAX_FOLD as u64 {
        return None;
    }
    (0..n)
        .map(|k| match (start, delta) {
            (Num::I(s), Num::I(d)) => Some(Num::I(s.checked_add(d.checked_mul(k as i64)?)?)),
            (Num::F(s), Num::F(d)) => float(s + d * k as f64),
            _ => None,
        })
        .collect()
}

/// Range's element count: `max(ceil((limit - start) / delta), 0)`.
pub(crate) fn range_len(start: Num, limit: Num, delta: Num) -> Option<u64> {
    match (start, limit, delta) {
        (Num::I(s), Num::I(l), Num::I(d)) if d != 0 => {
            let span = i128::from(l) - i128::from(s);
            let d = i128::from(d);
            let n = if (span > 0) == (d > 0) && span != 0 {
                (span.abs() + d.abs() - 1) / d.abs()
            } else {
                0
            };
            u64::try_from(n).ok()
        }
        (Num::F(s), Num::F(l), Num::F(d)) if d != 0.0 => {
            let n = ((l - s) / d).ceil().max(0.0);
            (n.is_finite() && n < 1.0e15).then_some(n as u64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elementwise_rules() {
        use Num::{F, I};
        assert_eq!(binary("Div", false, I(7), I(2)), Some(I(3)));
        assert_eq!(binary("Div", false, I(-7), I(2)), Some(I(-3)));
        assert_eq!(binary("Div", false, I(7), I(0)), None);
        assert_eq!(binary("Mod", false, I(-7), I(3)), Some(I(2)));
        assert_eq!(binary("Mod", true, I(-7), I(3)), Some(I(-1)));
        assert_eq!(binary("Add", false, I(i64::MAX), I(1)), None);
        assert_eq!(binary("Add", false, I(1), F(1.0)), None);
        assert_eq!(binary("Div", false, F(1.0), F(0.0)), None);
        assert_eq!(binary("Less", false, F(1.0), F(2.0)), Some(I(1)));
        assert_eq!(unary("Ceil", F(2.25)), Some(F(3.0)));
        assert_eq!(unary("Round", F(2.5)), Some(F(2.0)));
        assert_eq!(unary("Neg", I(i64::MIN)), None);
        assert_eq!(cast(F(-2.7), data_type::INT64), Some(I(-2)));
        assert_eq!(cast(F(f64::NAN), data_type::INT64), None);
        assert_eq!(cast(I(3), data_type::FLOAT), Some(F(3.0)));
        assert_eq!(cast(I(3), data_type::STRING), None);
    }

    #[test]
    fn ranges() {
        use Num::{F, I};
        assert_eq!(range(I(0), I(5), I(2)), Some(vec![I(0), I(2), I(4)]));
        assert_eq!(range(I(5), I(0), I(-2)), Some(vec![I(5), I(3), I(1)]));
        assert_eq!(range(I(0), I(5), I(-1)), Some(vec![]));
        assert_eq!(range(I(0), I(5), I(0)), None);
        assert_eq!(range_len(F(0.0), F(1.0), F(0.25)), Some(4));
        assert_eq!(range_len(I(0), I(1000), I(1)), Some(1000));
        assert_eq!(range(I(0), I(1000), I(1)), None); // above MAX_FOLD
    }

    #[test]
    fn indexing_helpers() {
        // [2, 3] broadcast from [3] and [2, 1].
        assert_eq!(broadcast_index(&[2, 3], &[3], 4), 1);
        assert_eq!(broadcast_index(&[2, 3], &[2, 1], 4), 1);
        assert_eq!(broadcast_index(&[2, 3], &[], 5), 0);
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(coords(&[2, 3, 4], 23), vec![1, 2, 3]);
    }
}
