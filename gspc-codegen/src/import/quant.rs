//! int8 convolutions, as ONNX Runtime's `quantize_static` writes them (issue 13):
//!
//! - **QDQ**: `DequantizeLinear(x_q) -> Conv(w: DequantizeLinear(int8 initializer),
//!   bias: DequantizeLinear(int32 initializer) or a float initializer) [-> Relu or Clip(0, 6)]
//!   -> QuantizeLinear`;
//! - **QOperator**: `QLinearConv(x_q, x_scale, x_zero_point, w, w_scale, w_zero_point,
//!   y_scale, y_zero_point, int32 bias)`.
//!
//! Either becomes one int8 layer (TFLite's int8 spec: symmetric per-channel int8 weights,
//! int32 bias at scale `input_scale * weight_scale[k]`). What the spec cannot represent is
//! refused with the node and the rule: uint8 or asymmetric weights, weight zero points other
//! than 0, scales that are not finite and positive, a float input or output. uint8
//! activations (`activation_type=QuantType.QUInt8`) are converted exactly: `x_i8 = x_u8 -
//! 128` and `zp_i8 = zp_u8 - 128` give the same real values, so the layer reads and writes
//! int8 where the model has uint8 (a note says so).

use super::infer::Attrs;
use super::onnx::{NodeProto, TensorProto, data_type};
use super::shape::Dims;
use super::{Cx, is_op, quote, tensor};
use gspc_runtime::Activation;
use std::collections::{HashMap, HashSet};

/// How a convolution is quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Form {
    /// Conv between DequantizeLinear and QuantizeLinear nodes.
    Qdq,
    /// QLinearConv.
    QLinear,
}

/// An int8 layer read from the model: its parameters, weights and bias, and the nodes it
/// takes in.
#[derive(Clone, Debug)]
pub(super) struct QuantLayer<'m> {
    /// The int8 (or uint8) value the layer reads.
    pub input: &'m str,
    /// The int8 (or uint8) value the layer writes.
    pub output: &'m str,
    pub input_scale: f32,
    pub input_zero_point: i32,
    pub output_scale: f32,
    pub output_zero_point: i32,
    /// One per output channel.
    pub weight_scales: Vec<f32>,
    pub w_dims: Dims,
    pub weights: Vec<i8>,
    pub bias: Option<Vec<i32>>,
    /// The QuantizeLinear and DequantizeLinear nodes the layer takes in.
    pub nodes: Vec<usize>,
    /// The Relu or Clip between the Conv and its QuantizeLinear, and what it is.
    pub fused: Option<usize>,
    pub activation: Activation,
    /// The model's activations are uint8 here (converted to int8).
    pub uint8: bool,
    /// The bias was float and quantized by the importer.
    pub bias_from_f32: bool,
}

/// Whether `node` is a quantized convolution: a QLinearConv, or a Conv whose weights a
/// DequantizeLinear produces.
pub(super) fn form(cx: &Cx, node: &NodeProto) -> Option<Form> {
    if is_op(node, "QLinearConv") {
        return Some(Form::QLinear);
    }
    let w = node.input.get(1)?;
    cx.dequantized(w).map(|_| Form::Qdq)
}

/// A scale and zero point of activations, in int8.
struct Activations {
    scale: f32,
    zero_point: i32,
    uint8: bool,
}

/// The rule for scales, as messages say it.
const SCALE_RULE: &str = "scales must be finite and above 0";

/// The rule for weights, as messages say it.
const SYMMETRIC: &str = "gspc takes symmetric int8 weights with zero point 0 and values in [-127, 127] (TFLite's int8 spec)";

impl<'m> Cx<'m> {
    /// The DequantizeLinear node producing `value`, if one does.
    pub(super) fn dequantized(&self, value: &str) -> Option<(usize, &'m NodeProto)> {
        let &j = self.producers.get(value)?;
        let n = self.graph.node.get(j)?;
        is_op(n, "DequantizeLinear").then_some((j, n))
    }

    /// The initializer (or Constant) named by input `i` of `n`, as `what` for messages.
    fn constant_input(
        &self,
        n: &NodeProto,
        i: usize,
        what: &str,
    ) -> Result<Option<&TensorProto>, String> {
        let Some(name) = n.input.get(i).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        match self.consts.get(name.as_str()) {
            Some(t) => Ok(Some(t)),
            None => Err(format!(
                "the {what} \"{}\" is not an initializer or a Constant: gspc needs it at import time",
                quote(name)
            )),
        }
    }

    /// The scales at input `i` of `n`, each finite and positive; exactly one if
    /// `per_tensor`.
    fn scales(
        &self,
        n: &NodeProto,
        i: usize,
        what: &str,
        per_tensor: bool,
    ) -> Result<Vec<f32>, String> {
        let t = self
            .constant_input(n, i, what)?
            .ok_or_else(|| format!("the {what} is missing"))?;
        let v = tensor::floats(t).map_err(|e| format!("the {what}: {e}"))?;
        if v.is_empty() {
            return Err(format!("the {what} has no values"));
        }
        if per_tensor && v.len() != 1 {
            return Err(format!(
                "the {what} has {} values; gspc takes one scale per activation tensor",
                v.len()
            ));
        }
        if let Some((k, s)) = v
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            let at = if v.len() == 1 {
                String::new()
            } else {
                format!(" at index {k}")
            };
            return Err(format!("the {what} {s}{at} is not valid: {SCALE_RULE}"));
        }
        Ok(v)
    }

    /// A per-tensor scale and zero point of activations (inputs `i`, `i + 1` of `n`),
    /// uint8 converted to int8.
    fn activations(&self, n: &NodeProto, i: usize, what: &str) -> Result<Activations, String> {
        let scales = self.scales(n, i, &format!("{what} scale"), true)?;
        let scale = scales.first().copied().unwrap_or(0.0);
        let zp_what = format!("{what} zero point");
        let t = self.constant_input(n, i + 1, &zp_what)?.ok_or_else(|| {
            format!(
                "the {zp_what} is missing; give it explicitly (its type says whether the tensor is int8 or uint8)"
            )
        })?;
        let (dtype, zps) = tensor::quantized(t).map_err(|e| format!("the {zp_what}: {e}"))?;
        let &[zp] = zps.as_slice() else {
            return Err(format!(
                "the {zp_what} has {} values; gspc takes one zero point per activation tensor",
                zps.len()
            ));
        };
        match dtype {
            data_type::INT8 => Ok(Activations {
                scale,
                zero_point: zp,
                uint8: false,
            }),
            data_type::UINT8 => Ok(Activations {
                scale,
                zero_point: zp - 128,
                uint8: true,
            }),
            other => Err(format!(
                "the {zp_what} is {}: gspc's int8 layers read and write int8 (or uint8, converted) activations",
                data_type::name(other)
            )),
        }
    }

    /// The int8 layer of the quantized convolution `node` (`idx`), or `None` with the
    /// problem recorded against the node.
    pub(super) fn quantized(
        &mut self,
        idx: usize,
        node: &'m NodeProto,
        form: Form,
        consumers: &HashMap<&str, Vec<usize>>,
        outputs: &HashSet<&str>,
    ) -> Option<QuantLayer<'m>> {
        let result = match form {
            Form::Qdq => self.qdq(node, consumers, outputs),
            Form::QLinear => self.qlinear(node),
        };
        match result {
            Ok(q) => Some(q),
            Err(e) => {
                let path = self.node_path(idx);
                self.diag(path, e);
                None
            }
        }
    }

    /// QLinearConv: every parameter is an input.
    fn qlinear(&self, node: &'m NodeProto) -> Result<QuantLayer<'m>, String> {
        let (Some(x), Some(y)) = (node.input.first(), node.output.first()) else {
            return Err("a QLinearConv needs an input and an output".to_string());
        };
        let input = self.activations(node, 1, "input")?;
        let output = self.activations(node, 6, "output")?;
        let w = self
            .constant_input(node, 3, "weights")?
            .ok_or("the weights are missing")?;
        let w_scales = self.scales(node, 4, "weight scale", false)?;
        let w_zeros = self.constant_input(node, 5, "weight zero point")?;
        let bias = match self.constant_input(node, 8, "bias")? {
            None => None,
            Some(t) => Some(int32_bias(t)?),
        };
        self.layer(x, y, input, output, w, &w_scales, w_zeros, bias)
    }

    /// Conv between DequantizeLinear and QuantizeLinear nodes.
    fn qdq(
        &self,
        node: &'m NodeProto,
        consumers: &HashMap<&str, Vec<usize>>,
        outputs: &HashSet<&str>,
    ) -> Result<QuantLayer<'m>, String> {
        let (Some(x), Some(w), Some(out)) =
            (node.input.first(), node.input.get(1), node.output.first())
        else {
            return Err("a Conv needs an input, weights and an output".to_string());
        };
        let mut nodes = Vec::new();
        let sole = |value: &str| consumers.get(value).is_some_and(|c| c.len() == 1);
        let Some((xj, xdq)) = self.dequantized(x) else {
            return Err(format!(
                "its weights are quantized but its input \"{}\" is float (no DequantizeLinear produces it): gspc's int8 layers read int8; quantize the activations too",
                quote(x)
            ));
        };
        if sole(x) {
            nodes.push(xj);
        }
        let x_q = xdq
            .input
            .first()
            .ok_or("the input's DequantizeLinear has no input")?;
        let input = self.activations(xdq, 1, "input")?;
        // The weights' DequantizeLinear.
        let (wj, wdq) = self
            .dequantized(w)
            .ok_or("the weights are not dequantized")?;
        if sole(w) {
            nodes.push(wj);
        }
        if Attrs(&wdq.attribute).int_or("block_size", 0)? != 0 {
            return Err(
                "the weights are block-quantized (block_size); gspc takes one scale per output channel"
                    .to_string(),
            );
        }
        let w_t = self
            .constant_input(wdq, 0, "weights")?
            .ok_or("the weights' DequantizeLinear has no input")?;
        let w_scales = self.scales(wdq, 1, "weight scale", false)?;
        if w_scales.len() > 1 {
            let axis = Attrs(&wdq.attribute).int_or("axis", 1)?;
            if axis != 0 && axis != -4 {
                return Err(format!(
                    "the weights are quantized along axis {axis}; gspc takes one scale per output channel (axis 0)"
                ));
            }
        }
        let w_zeros = self.constant_input(wdq, 2, "weight zero point")?;
        // The bias: an int32 DequantizeLinear, or float.
        let mut bias_scales = None;
        let mut float_bias = None;
        let bias = match node.input.get(2).filter(|b| !b.is_empty()) {
            None => None,
            Some(b) => match self.dequantized(b) {
                Some((bj, bdq)) => {
                    if sole(b) {
                        nodes.push(bj);
                    }
                    let t = self
                        .constant_input(bdq, 0, "bias")?
                        .ok_or("the bias's DequantizeLinear has no input")?;
                    let v = int32_bias(t)?;
                    bias_scales = Some(self.scales(bdq, 1, "bias scale", false)?);
                    if let Some(zt) = self.constant_input(bdq, 2, "bias zero point")? {
                        let (_, z) = tensor::quantized(zt)
                            .map_err(|e| format!("the bias zero point: {e}"))?;
                        if let Some(z) = z.iter().find(|&&z| z != 0) {
                            return Err(format!(
                                "the bias zero point {z} is not 0: gspc's int32 bias has zero point 0"
                            ));
                        }
                    }
                    Some(v)
                }
                None => {
                    let t = self.constant_input(node, 2, "bias")?.ok_or("no bias")?;
                    let v = tensor::floats(t).map_err(|e| format!("the bias: {e}"))?;
                    if let Some(m) = super::non_finite(&v) {
                        return Err(format!("the bias: {m}"));
                    }
                    float_bias = Some(v);
                    None
                }
            },
        };
        // The output: [Relu or Clip(0, 6)] then QuantizeLinear.
        let (fused, activation, cur) = match self.activation(out, consumers, outputs) {
            Some((j, a)) => {
                let o = self
                    .graph
                    .node
                    .get(j)
                    .and_then(|n| n.output.first())
                    .map_or("", String::as_str);
                (Some(j), a, o)
            }
            None => (None, Activation::None, out.as_str()),
        };
        let q = match consumers.get(cur).map(Vec::as_slice) {
            Some(&[j]) if !outputs.contains(cur) => self
                .graph
                .node
                .get(j)
                .filter(|n| {
                    is_op(n, "QuantizeLinear") && n.input.first().map(String::as_str) == Some(cur)
                })
                .map(|n| (j, n)),
            _ => None,
        };
        let Some((qj, qn)) = q else {
            return Err(format!(
                "its output \"{}\" is float: gspc's int8 layers write int8, so a single QuantizeLinear must read the Conv's output (after at most a Relu or Clip(0, 6))",
                quote(cur)
            ));
        };
        nodes.push(qj);
        let y = qn
            .output
            .first()
            .filter(|s| !s.is_empty())
            .ok_or("the output's QuantizeLinear has no output")?;
        let output = self.activations(qn, 1, "output")?;
        let mut l = self.layer(x_q, y, input, output, w_t, &w_scales, w_zeros, bias)?;
        if let (Some(bs), Some(_)) = (&bias_scales, &l.bias) {
            for (k, ws) in l.weight_scales.iter().enumerate() {
                let want = l.input_scale * ws;
                let got = if bs.len() == 1 {
                    bs[0]
                } else {
                    *bs.get(k).ok_or_else(|| {
                        format!(
                            "the bias has {} scales for {} output channels",
                            bs.len(),
                            l.weight_scales.len()
                        )
                    })?
                };
                if (f64::from(got) - f64::from(want)).abs() > 1e-5 * f64::from(want) {
                    return Err(format!(
                        "the bias scale {got} of output channel {k} is not input_scale * weight_scale = {want}: gspc's int32 bias has that scale (TFLite's int8 spec)"
                    ));
                }
            }
        }
        if let Some(fb) = float_bias {
            l.bias = Some(quantize_bias(&fb, l.input_scale, &l.weight_scales)?);
            l.bias_from_f32 = true;
        }
        l.nodes = nodes;
        l.fused = fused;
        l.activation = activation;
        Ok(l)
    }

    /// The parts every form has, checked: int8 symmetric weights with one scale per
    /// output channel, an int32 bias with one value per channel.
    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        x: &'m str,
        y: &'m str,
        input: Activations,
        output: Activations,
        w: &TensorProto,
        w_scales: &[f32],
        w_zeros: Option<&TensorProto>,
        bias: Option<Vec<i32>>,
    ) -> Result<QuantLayer<'m>, String> {
        let w_dims = tensor::dims(w).map_err(|e| format!("the weights: {e}"))?;
        if w_dims.len() != 4 {
            return Err(format!(
                "only 2-D convolutions (4-D weights) can be imported; the weights are {}",
                super::shape::show(&w_dims)
            ));
        }
        let k = usize::try_from(w_dims[0]).map_err(|_| "too many output channels".to_string())?;
        let (dtype, values) = tensor::quantized(w).map_err(|e| format!("the weights: {e}"))?;
        match dtype {
            data_type::INT8 => {}
            data_type::UINT8 => {
                return Err(format!(
                    "the weights are uint8: {SYMMETRIC}; quantize with weight_type=QuantType.QInt8"
                ));
            }
            other => {
                return Err(format!(
                    "the weights are {}: {SYMMETRIC}",
                    data_type::name(other)
                ));
            }
        }
        let weight_scales = match w_scales.len() {
            1 => vec![w_scales[0]; k],
            n if n == k => w_scales.to_vec(),
            n => {
                return Err(format!(
                    "{n} weight scales for {k} output channels; give one per output channel, or one"
                ));
            }
        };
        if let Some(zt) = w_zeros {
            let (_, zs) =
                tensor::quantized(zt).map_err(|e| format!("the weight zero point: {e}"))?;
            if zs.len() != 1 && zs.len() != k {
                return Err(format!(
                    "{} weight zero points for {k} output channels",
                    zs.len()
                ));
            }
            if let Some((c, z)) = zs.iter().enumerate().find(|(_, z)| **z != 0) {
                return Err(if zs.len() == 1 {
                    format!("the per-tensor weight zero point is {z}, not 0: {SYMMETRIC}")
                } else {
                    format!(
                        "the weight zero point of output channel {c} is {z}, not 0: asymmetric weights cannot be represented; {SYMMETRIC} (quantize with WeightSymmetric=True, the default)"
                    )
                });
            }
        }
        if let Some(i) = values.iter().position(|&v| v == -128) {
            return Err(format!("weight value -128 at flat index {i}: {SYMMETRIC}"));
        }
        if let Some(b) = &bias
            && b.len() != k
        {
            return Err(format!(
                "the bias has {} values, the weights {} have {k} output channels",
                b.len(),
                super::shape::show(&w_dims)
            ));
        }
        Ok(QuantLayer {
            input: x,
            output: y,
            input_scale: input.scale,
            input_zero_point: input.zero_point,
            output_scale: output.scale,
            output_zero_point: output.zero_point,
            weight_scales,
            w_dims,
            weights: values.iter().map(|&v| v as i8).collect(),
            bias,
            nodes: Vec::new(),
            fused: None,
            activation: Activation::None,
            uint8: input.uint8 || output.uint8,
            bias_from_f32: false,
        })
    }
}

/// An int32 bias's values.
fn int32_bias(t: &TensorProto) -> Result<Vec<i32>, String> {
    let (dtype, v) = tensor::quantized(t).map_err(|e| format!("the bias: {e}"))?;
    if dtype != data_type::INT32 {
        return Err(format!(
            "the bias is {}, expected INT32 (at scale input_scale * weight_scale)",
            data_type::name(dtype)
        ));
    }
    Ok(v)
}

/// A float bias quantized as TFLite's converter does: `round(bias / (input_scale *
/// weight_scale[k]))`, half away from zero, the product in f32.
fn quantize_bias(
    bias: &[f32],
    input_scale: f32,
    weight_scales: &[f32],
) -> Result<Vec<i32>, String> {
    if bias.len() != weight_scales.len() {
        return Err(format!(
            "the bias has {} values for {} output channels",
            bias.len(),
            weight_scales.len()
        ));
    }
    bias.iter()
        .zip(weight_scales)
        .enumerate()
        .map(|(k, (&b, &ws))| {
            let q = (f64::from(b) / f64::from(input_scale * ws)).round();
            if q.is_finite() && q >= f64::from(i32::MIN) && q <= f64::from(i32::MAX) {
                Ok(q as i32)
            } else {
                Err(format!(
                    "the float bias {b} of output channel {k} is {q} at scale input_scale * weight_scale, outside int32"
                ))
            }
        })
        .collect()
}

/// The spec fields of an int8 layer, after `"activation"`: `, "dtype": "int8",
/// "quantization": {...}`. Scales are written as the exact decimal value of their f32 (the
/// spec reads them back to the same f32).
pub(super) fn spec_fields(q: &QuantLayer, mode: gspc_runtime::quant::Requantization) -> String {
    let f = |x: f32| serde_json::Value::from(f64::from(x)).to_string();
    let scales: Vec<String> = q.weight_scales.iter().map(|&s| f(s)).collect();
    format!(
        ", \"dtype\": \"int8\", \"quantization\": {{\"requantization\": \"{}\", \"input_scale\": {}, \"input_zero_point\": {}, \"output_scale\": {}, \"output_zero_point\": {}, \"weight_scales\": [{}]}}",
        mode.as_str(),
        f(q.input_scale),
        q.input_zero_point,
        f(q.output_scale),
        q.output_zero_point,
        scales.join(", ")
    )
}

impl Cx<'_> {
    /// What the user should know about the int8 layers: the requantization chosen, uint8
    /// activations converted, float biases quantized, activations ONNX Runtime's quantizer
    /// folded into the output range.
    pub(super) fn int8_notes(
        &mut self,
        layers: &[super::Layer],
        names: &[String],
        mode: gspc_runtime::quant::Requantization,
    ) {
        let int8: Vec<(&QuantLayer, &String)> = layers
            .iter()
            .zip(names)
            .filter_map(|(l, n)| Some((l.quant.as_ref()?, n)))
            .collect();
        if int8.is_empty() {
            return;
        }
        let list = |pick: &dyn Fn(&QuantLayer) -> bool| -> Option<String> {
            let picked: Vec<&str> = int8
                .iter()
                .filter(|(q, _)| pick(q))
                .map(|(_, n)| n.as_str())
                .collect();
            if picked.is_empty() {
                return None;
            }
            let shown: Vec<&str> = picked.iter().take(super::SHOWN).copied().collect();
            let more = picked.len().saturating_sub(super::SHOWN);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            Some(format!("{}{more}", shown.join(", ")))
        };
        self.notes.push(format!(
            "{} int8 layer(s), requantization \"{}\"{}",
            int8.len(),
            mode.as_str(),
            match mode {
                gspc_runtime::quant::Requantization::Fp32 =>
                    " (ONNX Runtime's and XNNPACK's arithmetic; \"fixed\" is TFLite's and CMSIS-NN's)",
                gspc_runtime::quant::Requantization::Fixed =>
                    " (integer multiplier and shift, TFLite's and CMSIS-NN's arithmetic: ONNX Runtime's outputs may differ by 1)",
            }
        ));
        if let Some(l) = list(&|q| q.uint8) {
            self.notes.push(format!(
                "uint8 activations converted to int8 in {l}: x_i8 = x_u8 - 128 (flip the top bit) and zero point - 128 give the same real values, so these layers read and write int8 where the model has uint8; convert at the model's uint8 boundaries (or quantize with activation_type=QuantType.QInt8)"
            ));
        }
        if let Some(l) = list(&|q| q.bias_from_f32) {
            self.notes.push(format!(
                "float bias quantized to int32 in {l}: round(bias / (input_scale * weight_scale[k])), half away from zero, as TFLite's converter does (ONNX Runtime computes the float bias in float, so its outputs may differ by 1)"
            ));
        }
        if let Some(l) = list(&|q| q.fused.is_none() && q.output_zero_point == -128) {
            self.notes.push(format!(
                "output zero point -128 with no activation in {l}: where the quantizer folded a Relu or Clip into the output range, clamping to int8 does the same"
            ));
        }
    }
}
