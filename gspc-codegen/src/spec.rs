//! Layer specs: JSON in, a validated [`Spec`] out, every problem of a file collected.
//!
//! ```json
//! {"model": "resnet34_g8", "layers": [
//!   {"name": "s1_c64_56", "in_channels": 64, "out_channels": 64, "groups": 8,
//!    "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "input": [56, 56]}]}
//! ```
//! Optional per layer: `dilation` (`[1, 1]`), `bias` (`false`), `activation` (`"none"`,
//! `"relu"` or `"relu6"`; `"none"`), `count` (`1`), `dtype` (`"f32"` or `"int8"`; `"f32"`)
//! and, with `"int8"` only, `quantization` (docs/quantization.md):
//!
//! ```json
//! "dtype": "int8", "quantization": {"requantization": "fixed",
//!   "input_scale": 0.02, "input_zero_point": -3, "output_scale": 0.05,
//!   "output_zero_point": 7, "weight_scales": [0.004, 0.0031]}
//! ```

use crate::error::{Diagnostic, Error};
use gspc_runtime::Activation;
use gspc_runtime::quant::{self, ChannelScale, QuantParams, Requantization};
use serde_json::{Map, Value};

/// How a layer is computed: the names a spec may pin in `"strategy"`, shown by `plan` and
/// stored in the manifest. The planner maps each to its kernel kinds (`plan::Kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// `gspc-oc`: GSPC with output channels of one group on the vector axis.
    GspcOc,
    /// `gspc-ow`: output columns on the vector axis, for layers whose groups have fewer
    /// output channels than a vector holds (depthwise, ResNeXt's 4 per group, many-group
    /// ResNets).
    GspcOw,
    /// `gspc-dwc`: depthwise layers with channels on the vector axis, in blocks of
    /// 16 channels.
    GspcDwc,
}

impl Strategy {
    /// Every strategy, in the order the spec's error message lists them.
    const ALL: [Strategy; 3] = [Strategy::GspcOc, Strategy::GspcOw, Strategy::GspcDwc];

    /// The name shown by `plan`, accepted in specs and stored in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::GspcOc => "gspc-oc",
            Strategy::GspcOw => "gspc-ow",
            Strategy::GspcDwc => "gspc-dwc",
        }
    }

    /// The strategy a spec names, if any.
    pub(crate) fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Channels per block of `gspc-dwc` (the runtime's transposes work on blocks of this many).
pub(crate) const DWC_BLOCK: usize = gspc_runtime::dwc::CB;

/// The limits a spec must stay within. Each is checked with a message that names it.
pub mod limits {
    /// Channels (in, out) and groups.
    pub const MAX_CHANNELS: usize = 65_536;
    /// Input height and width.
    pub const MAX_SPATIAL: usize = 8_192;
    /// Kernel height and width (the kernel window is unrolled in the generated code).
    pub const MAX_KERNEL: usize = 15;
    /// Stride.
    pub const MAX_STRIDE: usize = 16;
    /// Dilation.
    pub const MAX_DILATION: usize = 16;
    /// Padding.
    pub const MAX_PADDING: usize = 64;
    /// Elements of any one buffer (input, output, weights, scratch): 2^28 f32 = 1 GiB, so
    /// every index fits comfortably in a 32-bit `usize`.
    pub const MAX_ELEMENTS: u64 = 1 << 28;
    /// Layers in one model.
    pub const MAX_LAYERS: usize = 512;
    /// `count`.
    pub const MAX_COUNT: usize = 1_000_000;
    /// Model and layer names, in bytes.
    pub const MAX_NAME_LEN: usize = 64;
    /// `oc_block` (output channels per weight block, pinned by a spec).
    pub const MAX_OC_BLOCK: usize = 32;
    /// `oc_block` with strategy `gspc-ow`.
    pub const MAX_OW_OC_BLOCK: usize = 16;
    /// `accumulators` (accumulator registers of one tile, pinned by a spec).
    pub const MAX_ACCUMULATORS: usize = 20;
    /// Estimated lines of generated code for one spec file.
    pub const MAX_GENERATED_LINES: usize = 400_000;
}

use limits::*;

/// A validated model: every size is in range and consistent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The file the spec came from, as the caller named it (used in messages and headers).
    pub file: String,
    /// Model name: a Rust identifier, the name of the model's module.
    pub model: String,
    /// The layers, in file order.
    pub layers: Vec<LayerSpec>,
}

impl Spec {
    /// The int8 twin of a model, `<model>_int8`: the same layers as int8 with synthetic
    /// quantization parameters and none of the f32 plan pins, for benchmarks and tests
    /// (`Builder::int8_twins`). The parameters are those of `scripts/peers_int8.py`, so
    /// both sides time the same layers: input scale 0.02, zero point -3; weight scales
    /// 0.003 to 0.005 over the output channels; output scale `0.01 * sqrt(fan_in)` and zero
    /// point 4, or after relu zero point -128, and after relu6 also scale 6 / 255 (the
    /// output range is the activation, as quantizers make it); `fp32` requantization.
    /// Layers that are int8 already keep their parameters.
    pub fn int8_twin(&self) -> Spec {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let mut t = l.clone();
                if t.quantization.is_some() {
                    return t;
                }
                let k = l.out_channels;
                let fan_in = (l.in_per_group() * l.kernel[0] * l.kernel[1]) as f64;
                let output_scale = match l.activation {
                    Activation::Relu6 => (6.0f64 / 255.0) as f32,
                    _ => (0.01 * fan_in.sqrt()) as f32,
                };
                t.quantization = Some(Quantization {
                    requantization: Requantization::Fp32,
                    input_scale: 0.02,
                    input_zero_point: -3,
                    output_scale,
                    output_zero_point: if l.activation == Activation::None {
                        4
                    } else {
                        -128
                    },
                    weight_scales: (0..k)
                        .map(|c| (0.004 * (0.75 + 0.5 * c as f64 / (k.max(2) - 1) as f64)) as f32)
                        .collect(),
                });
                t.strategy = None;
                t.oc_block = None;
                t.compact = None;
                t.direct = None;
                t.accumulators = None;
                t
            })
            .collect();
        Spec {
            file: self.file.clone(),
            model: format!("{}_int8", self.model),
            layers,
        }
    }
}

/// A layer's element type (a spec's `"dtype"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// f32 input, weights, bias and output.
    F32,
    /// int8 input, weights and output, int32 bias, with [`Quantization`] parameters.
    Int8,
}

impl Dtype {
    /// The spelling used in specs (`"f32"`, `"int8"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Int8 => "int8",
        }
    }
}

/// The quantization parameters of an int8 layer (TFLite's int8 spec), validated: scales
/// finite and positive in f32, zero points in `[-128, 127]`, one weight scale per output
/// channel, every channel's multiplier representable in the requantization mode.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantization {
    /// How accumulators are scaled to the output.
    pub requantization: Requantization,
    /// Input scale.
    pub input_scale: f32,
    /// Input zero point.
    pub input_zero_point: i32,
    /// Output scale.
    pub output_scale: f32,
    /// Output zero point.
    pub output_zero_point: i32,
    /// One weight scale per output channel (a single number in the spec is repeated).
    pub weight_scales: Vec<f32>,
}

// Every scale is finite (validated), so `==` is an equivalence.
impl Eq for Quantization {}

impl Quantization {
    /// The parameters as the runtime takes them ([`QuantParams::derive`] gives each
    /// channel's requantization and the activation's clamp).
    pub fn params(&self) -> QuantParams<'_> {
        QuantParams {
            mode: self.requantization,
            input_scale: self.input_scale,
            input_zero_point: self.input_zero_point,
            output_scale: self.output_scale,
            output_zero_point: self.output_zero_point,
            weight_scales: &self.weight_scales,
        }
    }
}

/// A validated layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    /// Layer name: a Rust identifier, unique in the model.
    pub name: String,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Groups (divides both channel counts).
    pub groups: usize,
    /// `[KH, KW]`.
    pub kernel: [usize; 2],
    /// `[SH, SW]`.
    pub stride: [usize; 2],
    /// `[PH, PW]`, both sides.
    pub padding: [usize; 2],
    /// `[DH, DW]`.
    pub dilation: [usize; 2],
    /// `[H, W]`.
    pub input: [usize; 2],
    /// Whether the model has a bias here.
    pub bias: bool,
    /// Fused activation.
    pub activation: Activation,
    /// Occurrences in the model.
    pub count: usize,
    /// Strategy pinned by the spec (`"strategy"`), or `None` for the cost model's.
    pub strategy: Option<Strategy>,
    /// `oc_bn` pinned by the spec (`"oc_block"`), or `None` for the cost model's.
    pub oc_block: Option<usize>,
    /// Compact code pinned by the spec (`"compact"`): `Some(true)`, tiles with fewer
    /// unrolled multiply-adds and no whole-row unrolling; `Some(false)`, never; `None`, only
    /// where the model would otherwise pass the generated-lines limit.
    pub compact: Option<bool>,
    /// Direct kernels pinned by the spec (`"direct"`): `Some(false)`, the input is always
    /// packed (no direct `gspc-ow` kernel, no in-place `gspc-oc`); `Some(true)` or `None`,
    /// a direct kernel wherever one applies.
    pub direct: Option<bool>,
    /// Accumulator registers of one tile, at most, pinned by the spec (`"accumulators"`,
    /// 1 to 20), or `None` for the cost model's (20 where the register file allows).
    pub accumulators: Option<usize>,
    /// The quantization parameters of an int8 layer (`"dtype": "int8"`); `None` for f32.
    pub quantization: Option<Quantization>,
}

impl LayerSpec {
    /// The element type: [`Dtype::Int8`] when the layer has quantization parameters.
    pub fn dtype(&self) -> Dtype {
        match self.quantization {
            Some(_) => Dtype::Int8,
            None => Dtype::F32,
        }
    }

    /// Whether the spec pins any part of the plan (`strategy`, `oc_block`, `compact`,
    /// `direct`): then neither the cost model nor a tuning database chooses it.
    pub fn pins_plan(&self) -> bool {
        self.strategy.is_some()
            || self.oc_block.is_some()
            || self.compact.is_some()
            || self.direct.is_some()
            || self.accumulators.is_some()
    }

    /// Whether `gspc-dwc` can compute the layer: depthwise (one input and one output
    /// channel per group) with a multiple of [`DWC_BLOCK`] channels.
    pub(crate) fn dwc_applies(&self) -> bool {
        self.groups == self.in_channels
            && self.groups == self.out_channels
            && self.in_channels.is_multiple_of(DWC_BLOCK)
    }

    /// `[OH, OW]`.
    pub fn output(&self) -> [usize; 2] {
        [0, 1].map(|i| {
            (self.input[i] + 2 * self.padding[i] - self.dilation[i] * (self.kernel[i] - 1) - 1)
                / self.stride[i]
                + 1
        })
    }
    /// Input channels per group.
    pub fn in_per_group(&self) -> usize {
        self.in_channels / self.groups
    }
    /// Output channels per group.
    pub fn out_per_group(&self) -> usize {
        self.out_channels / self.groups
    }
    /// `in_channels * H * W`.
    pub fn input_len(&self) -> usize {
        self.in_channels * self.input[0] * self.input[1]
    }
    /// `out_channels * OH * OW`.
    pub fn output_len(&self) -> usize {
        let [oh, ow] = self.output();
        self.out_channels * oh * ow
    }
    /// `out_channels * in_channels / groups * KH * KW`.
    pub fn weights_len(&self) -> usize {
        self.out_channels * self.in_per_group() * self.kernel[0] * self.kernel[1]
    }
    /// Padded input size `[H + 2 PH, W + 2 PW]`.
    pub fn padded(&self) -> [usize; 2] {
        [0, 1].map(|i| self.input[i] + 2 * self.padding[i])
    }
    /// FLOPs of one run (a multiply-add counts 2).
    pub fn flops(&self) -> u64 {
        2 * self.output_len() as u64
            * (self.in_per_group() * self.kernel[0] * self.kernel[1]) as u64
    }
}

const MODEL_FIELDS: &[&str] = &["model", "layers"];
const LAYER_FIELDS: &[&str] = &[
    "name",
    "in_channels",
    "out_channels",
    "groups",
    "kernel",
    "stride",
    "padding",
    "input",
    "dilation",
    "bias",
    "activation",
    "count",
    "strategy",
    "oc_block",
    "compact",
    "direct",
    "accumulators",
    "dtype",
    "quantization",
];
const QUANT_FIELDS: &[&str] = &[
    "requantization",
    "input_scale",
    "input_zero_point",
    "output_scale",
    "output_zero_point",
    "weight_scales",
];

/// Rust's strict, reserved and edition-2024 keywords: not usable as module names.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// Parses and validates one spec file's text. Reads no files: `file` only names the spec
/// in messages and in the generated header.
pub fn parse(file: &str, text: &str) -> Result<Spec, Error> {
    let syntax = |e: serde_json::Error| Error::Syntax {
        file: file.to_string(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    };
    // JSON allows a key twice in one object and serde_json keeps the last value: refuse it,
    // since which value the author meant is anyone's guess.
    serde_json::from_str::<NoDuplicateKeys>(text).map_err(syntax)?;
    let value: Value = serde_json::from_str(text).map_err(syntax)?;
    let mut cx = Cx {
        file: file.to_string(),
        diags: Vec::new(),
    };
    let spec = cx.model(&value);
    match spec {
        Some(spec) if cx.diags.is_empty() => Ok(spec),
        _ => Err(Error::Invalid(cx.diags)),
    }
}

/// Any JSON value, refused when an object has a key twice (at the second one's position).
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> Result<NoDuplicateKeys, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<NoDuplicateKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "key {key:?} given twice in one object"
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

/// serde_json appends " at line L column C"; the caller prints its own position.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Whether `s` can name a generated module: an ASCII Rust identifier, not a keyword,
/// not `_`, at most [`limits::MAX_NAME_LEN`] bytes.
pub fn check_identifier(s: &str) -> Result<(), String> {
    let shown = show(&Value::String(s.to_string()));
    if s.is_empty() {
        return Err("an empty name is not a Rust identifier".to_string());
    }
    if s.len() > MAX_NAME_LEN {
        return Err(format!(
            "{shown} is {} bytes long; names are at most {MAX_NAME_LEN}",
            s.len()
        ));
    }
    let mut chars = s.chars();
    let first = chars.next().unwrap_or('0');
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "{shown} is not a Rust identifier (ASCII letters, digits and '_', not starting with a digit)"
        ));
    }
    if s == "_" {
        return Err("\"_\" is not a usable Rust identifier".to_string());
    }
    if KEYWORDS.contains(&s) {
        return Err(format!(
            "{shown} is a Rust keyword and cannot name a module"
        ));
    }
    Ok(())
}

/// A JSON value shortened for messages.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(37).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

struct Cx {
    file: String,
    diags: Vec<Diagnostic>,
}

impl Cx {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.clone(),
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn unknown_fields(&mut self, path: &str, obj: &Map<String, Value>, known: &[&str]) {
        for key in obj.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let best = known
                .iter()
                .map(|k| (distance(key, k), *k))
                .min()
                .filter(|(d, _)| *d <= 2);
            match best {
                Some((_, k)) => self.err(&field, format!("unknown field (did you mean \"{k}\"?)")),
                None => self.err(
                    &field,
                    format!("unknown field (known fields: {})", known.join(", ")),
                ),
            }
        }
    }

    fn model(&mut self, v: &Value) -> Option<Spec> {
        let Some(obj) = v.as_object() else {
            self.err(
                "",
                format!(
                    "the spec must be a JSON object {{\"model\": ..., \"layers\": [...]}}, got {}",
                    show(v)
                ),
            );
            return None;
        };
        self.unknown_fields("", obj, MODEL_FIELDS);
        let model = match obj.get("model") {
            None => {
                self.err("", "missing field \"model\" (the model's name)");
                None
            }
            Some(m) => self.ident("model", m),
        };
        let layers = match obj.get("layers") {
            None => {
                self.err("", "missing field \"layers\" (the list of layers)");
                None
            }
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    self.err("layers", "a model needs at least one layer, got []");
                }
                if items.len() > MAX_LAYERS {
                    self.err(
                        "layers",
                        format!(
                            "{} layers is more than the limit of {MAX_LAYERS} per model",
                            items.len()
                        ),
                    );
                }
                let mut layers = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if let Some(l) = self.layer(&format!("layers[{i}]"), item) {
                        layers.push((i, l));
                    }
                }
                // Duplicate names.
                for (n, (i, l)) in layers.iter().enumerate() {
                    if let Some((j, _)) = layers[..n].iter().find(|(_, o)| o.name == l.name) {
                        self.err(
                            &format!("layers[{i}].name"),
                            format!(
                                "\"{}\" is already the name of layers[{j}]; layer names must be unique",
                                l.name
                            ),
                        );
                    }
                }
                Some(layers.into_iter().map(|(_, l)| l).collect::<Vec<_>>())
            }
            Some(other) => {
                self.err(
                    "layers",
                    format!("expected an array of layers, got {}", show(other)),
                );
                None
            }
        };
        Some(Spec {
            file: self.file.clone(),
            model: model?,
            layers: layers?,
        })
    }

    fn ident(&mut self, path: &str, v: &Value) -> Option<String> {
        let Some(s) = v.as_str() else {
            self.err(path, format!("expected a string, got {}", show(v)));
            return None;
        };
        match check_identifier(s) {
            Ok(()) => Some(s.to_string()),
            Err(m) => {
                self.err(path, m);
                None
            }
        }
    }

    /// An integer in `min..=max`.
    /// A JSON boolean, or an error naming `path`.
    fn boolean(&mut self, path: &str, v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.err(path, format!("expected true or false, got {}", show(v)));
                None
            }
        }
    }

    fn int(&mut self, path: &str, v: &Value, min: usize, max: usize, what: &str) -> Option<usize> {
        let n = match v {
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        match n {
            Some(n) if n >= min as u64 && n <= max as u64 => Some(n as usize),
            Some(n) if n < min as u64 => {
                self.err(
                    path,
                    format!("{n} is below the minimum of {min} for {what}"),
                );
                None
            }
            Some(n) => {
                self.err(path, format!("{n} is above the limit of {max} for {what}"));
                None
            }
            None => {
                self.err(
                    path,
                    format!(
                        "expected a whole number from {min} to {max}, got {}",
                        show(v)
                    ),
                );
                None
            }
        }
    }

    /// `[a, b]`, each in `min..=max`.
    fn pair(
        &mut self,
        path: &str,
        v: &Value,
        min: usize,
        max: usize,
        what: &str,
    ) -> Option<[usize; 2]> {
        let Some(items) = v.as_array().filter(|a| a.len() == 2) else {
            self.err(
                path,
                format!(
                    "expected [height, width] (two whole numbers from {min} to {max}), got {}",
                    show(v)
                ),
            );
            return None;
        };
        let a = self.int(&format!("{path}[0]"), &items[0], min, max, what);
        let b = self.int(&format!("{path}[1]"), &items[1], min, max, what);
        Some([a?, b?])
    }

    /// A JSON number as an f32 scale: finite and above 0, also after rounding to f32.
    fn scale(&mut self, path: &str, v: &Value) -> Option<f32> {
        let Some(x) = v.as_f64() else {
            self.err(path, format!("expected a number above 0, got {}", show(v)));
            return None;
        };
        let f = x as f32;
        if x <= 0.0 {
            self.err(
                path,
                format!("{} is not above 0; scales are positive", show(v)),
            );
            None
        } else if f == 0.0 || f.is_infinite() {
            self.err(
                path,
                format!(
                    "{} is {} in f32 (scales are f32, as in TFLite and ONNX); it must be a finite number above 0",
                    show(v),
                    if f == 0.0 { "0" } else { "infinite" }
                ),
            );
            None
        } else {
            Some(f)
        }
    }

    /// A zero point: a whole number in `[-128, 127]`.
    fn zero_point(&mut self, path: &str, v: &Value) -> Option<i32> {
        match v.as_i64() {
            Some(n) if (-128..=127).contains(&n) => Some(n as i32),
            Some(n) => {
                self.err(
                    path,
                    format!("{n} is outside the int8 range [-128, 127] of a zero point"),
                );
                None
            }
            None => {
                self.err(
                    path,
                    format!("expected a whole number from -128 to 127, got {}", show(v)),
                );
                None
            }
        }
    }

    /// The `quantization` object of an int8 layer (field by field; the multipliers are
    /// checked by [`Cx::quantization_fits`] once the layer's shape is valid).
    fn quantization(
        &mut self,
        path: &str,
        v: &Value,
        out_channels: Option<usize>,
    ) -> Option<Quantization> {
        let Some(obj) = v.as_object() else {
            self.err(
                path,
                format!(
                    "expected an object {{\"requantization\", \"input_scale\", \"input_zero_point\", \"output_scale\", \"output_zero_point\", \"weight_scales\"}}, got {}",
                    show(v)
                ),
            );
            return None;
        };
        self.unknown_fields(path, obj, QUANT_FIELDS);
        let field = |name: &str| format!("{path}.{name}");
        let get = |cx: &mut Cx, name: &str| -> Option<&Value> {
            let got = obj.get(name);
            if got.is_none() {
                cx.err(path, format!("missing field \"{name}\""));
            }
            got
        };
        let requantization = get(self, "requantization").and_then(|v| match v.as_str() {
            Some("fixed") => Some(Requantization::Fixed),
            Some("fp32") => Some(Requantization::Fp32),
            _ => {
                self.err(
                    &field("requantization"),
                    format!("{} is not one of \"fixed\", \"fp32\"", show(v)),
                );
                None
            }
        });
        let input_scale =
            get(self, "input_scale").and_then(|v| self.scale(&field("input_scale"), v));
        let input_zero_point = get(self, "input_zero_point")
            .and_then(|v| self.zero_point(&field("input_zero_point"), v));
        let output_scale =
            get(self, "output_scale").and_then(|v| self.scale(&field("output_scale"), v));
        let output_zero_point = get(self, "output_zero_point")
            .and_then(|v| self.zero_point(&field("output_zero_point"), v));
        let weight_scales = get(self, "weight_scales").and_then(|v| {
            let path = field("weight_scales");
            match v {
                Value::Array(items) => {
                    if let Some(k) = out_channels
                        && items.len() != k
                    {
                        self.err(
                            &path,
                            format!(
                                "{} weight scales for out_channels = {k}; give one per output channel, or one number for all",
                                items.len()
                            ),
                        );
                        return None;
                    }
                    let scales: Vec<Option<f32>> = items
                        .iter()
                        .enumerate()
                        .map(|(i, s)| self.scale(&format!("{path}[{i}]"), s))
                        .collect();
                    scales.into_iter().collect::<Option<Vec<f32>>>()
                }
                v => {
                    let s = self.scale(&path, v)?;
                    Some(vec![s; out_channels?])
                }
            }
        });
        Some(Quantization {
            requantization: requantization?,
            input_scale: input_scale?,
            input_zero_point: input_zero_point?,
            output_scale: output_scale?,
            output_zero_point: output_zero_point?,
            weight_scales: weight_scales?,
        })
    }

    /// The rules of an int8 layer that need its shape: the reduction is short enough for an
    /// int32 accumulator, and every channel's multiplier is representable in the mode.
    fn quantization_fits(&mut self, path: &str, l: &LayerSpec, q: &Quantization) -> bool {
        let mut ok = true;
        let reduction = l.in_per_group() * l.kernel[0] * l.kernel[1];
        if reduction > quant::MAX_REDUCTION {
            self.err(
                &format!("{path}.kernel"),
                format!(
                    "an int8 layer's (in_channels / groups) * KH * KW = {reduction} is above the limit of {}, which keeps its int32 accumulator from overflowing ({} * 255 * 128 < 2^31)",
                    quant::MAX_REDUCTION,
                    quant::MAX_REDUCTION
                ),
            );
            ok = false;
        }
        let bad: Vec<(usize, quant::QuantError)> = q
            .weight_scales
            .iter()
            .enumerate()
            .filter_map(|(k, &ws)| {
                ChannelScale::new(q.requantization, q.input_scale, ws, q.output_scale, k)
                    .err()
                    .map(|e| (k, e))
            })
            .collect();
        if let Some((k, e)) = bad.first() {
            let more = match bad.len() {
                1 => String::new(),
                n => format!(" ({n} of the {} channels are out of range)", l.out_channels),
            };
            // One scale for every channel (as a single number gives) is blamed as a whole.
            let uniform = q.weight_scales.iter().all(|&s| s == q.weight_scales[0]);
            let at = if uniform {
                format!("{path}.quantization.weight_scales")
            } else {
                format!("{path}.quantization.weight_scales[{k}]")
            };
            self.err(&at, format!("{e}{more}"));
            ok = false;
        }
        ok
    }

    fn layer(&mut self, path: &str, v: &Value) -> Option<LayerSpec> {
        let Some(obj) = v.as_object() else {
            self.err(path, format!("expected a layer object, got {}", show(v)));
            return None;
        };
        self.unknown_fields(path, obj, LAYER_FIELDS);
        let before = self.diags.len();
        let field = |name: &str| format!("{path}.{name}");
        let required = |cx: &mut Cx, name: &str| -> Option<Value> {
            let got = obj.get(name).cloned();
            if got.is_none() {
                cx.err(path, format!("missing field \"{name}\""));
            }
            got
        };
        let name = required(self, "name").and_then(|v| self.ident(&field("name"), &v));
        let in_channels = required(self, "in_channels")
            .and_then(|v| self.int(&field("in_channels"), &v, 1, MAX_CHANNELS, "channels"));
        let out_channels = required(self, "out_channels")
            .and_then(|v| self.int(&field("out_channels"), &v, 1, MAX_CHANNELS, "channels"));
        let groups = required(self, "groups")
            .and_then(|v| self.int(&field("groups"), &v, 1, MAX_CHANNELS, "groups"));
        let kernel = required(self, "kernel")
            .and_then(|v| self.pair(&field("kernel"), &v, 1, MAX_KERNEL, "the kernel size"));
        let stride = required(self, "stride")
            .and_then(|v| self.pair(&field("stride"), &v, 1, MAX_STRIDE, "the stride"));
        let padding = required(self, "padding")
            .and_then(|v| self.pair(&field("padding"), &v, 0, MAX_PADDING, "the padding"));
        let input = required(self, "input")
            .and_then(|v| self.pair(&field("input"), &v, 1, MAX_SPATIAL, "the input size"));
        let dilation = match obj.get("dilation") {
            None => Some([1, 1]),
            Some(v) => self.pair(&field("dilation"), v, 1, MAX_DILATION, "the dilation"),
        };
        let bias = match obj.get("bias") {
            None => Some(false),
            Some(v) => self.boolean(&field("bias"), v),
        };
        let activation = match obj.get("activation") {
            None => Some(Activation::None),
            Some(v) => match v.as_str() {
                Some("none") => Some(Activation::None),
                Some("relu") => Some(Activation::Relu),
                Some("relu6") => Some(Activation::Relu6),
                _ => {
                    self.err(
                        &field("activation"),
                        format!("{} is not one of \"none\", \"relu\", \"relu6\"", show(v)),
                    );
                    None
                }
            },
        };
        let count = match obj.get("count") {
            None => Some(1),
            Some(v) => self.int(&field("count"), v, 1, MAX_COUNT, "count"),
        };
        let strategy = match obj.get("strategy") {
            None => Some(None),
            Some(v) => match v.as_str().and_then(Strategy::from_name) {
                Some(s) => Some(Some(s)),
                None => {
                    self.err(
                        &field("strategy"),
                        format!(
                            "{} is not one of \"gspc-oc\", \"gspc-ow\", \"gspc-dwc\"",
                            show(v)
                        ),
                    );
                    None
                }
            },
        };
        let compact = match obj.get("compact") {
            None => Some(None),
            Some(v) => self.boolean(&field("compact"), v).map(Some),
        };
        let accumulators = match obj.get("accumulators") {
            None => Some(None),
            Some(v) => self
                .int(
                    &field("accumulators"),
                    v,
                    1,
                    MAX_ACCUMULATORS,
                    "accumulators",
                )
                .map(Some),
        };
        let direct = match obj.get("direct") {
            None => Some(None),
            Some(v) => self.boolean(&field("direct"), v).map(Some),
        };
        let oc_block = match obj.get("oc_block") {
            None => Some(None),
            Some(v) => self
                .int(&field("oc_block"), v, 1, MAX_OC_BLOCK, "oc_block")
                .map(Some),
        };
        let dtype = match obj.get("dtype") {
            None => Some(Dtype::F32),
            Some(v) => match v.as_str() {
                Some("f32") => Some(Dtype::F32),
                Some("int8") => Some(Dtype::Int8),
                _ => {
                    self.err(
                        &field("dtype"),
                        format!("{} is not one of \"f32\", \"int8\"", show(v)),
                    );
                    None
                }
            },
        };
        let quantization = match (dtype, obj.get("quantization")) {
            (Some(Dtype::Int8), None) => {
                self.err(
                    path,
                    "missing field \"quantization\" (an int8 layer needs its scales and zero points)",
                );
                None
            }
            (Some(Dtype::Int8), Some(v)) => self
                .quantization(&field("quantization"), v, out_channels)
                .map(Some),
            (Some(Dtype::F32), Some(_)) => {
                self.err(
                    &field("quantization"),
                    "quantization parameters are for \"dtype\": \"int8\" layers; this one is f32",
                );
                None
            }
            (_, _) => Some(None),
        };
        if self.diags.len() > before {
            return None;
        }
        let l = LayerSpec {
            name: name?,
            in_channels: in_channels?,
            out_channels: out_channels?,
            groups: groups?,
            kernel: kernel?,
            stride: stride?,
            padding: padding?,
            dilation: dilation?,
            input: input?,
            bias: bias?,
            activation: activation?,
            count: count?,
            strategy: strategy?,
            oc_block: oc_block?,
            compact: compact?,
            direct: direct?,
            accumulators: accumulators?,
            quantization: quantization?,
        };
        // Consistency rules, once every field is in range.
        let mut ok = true;
        if !l.in_channels.is_multiple_of(l.groups) {
            self.err(
                &field("groups"),
                format!(
                    "{} does not divide in_channels = {}",
                    l.groups, l.in_channels
                ),
            );
            ok = false;
        }
        if !l.out_channels.is_multiple_of(l.groups) {
            self.err(
                &field("groups"),
                format!(
                    "{} does not divide out_channels = {}",
                    l.groups, l.out_channels
                ),
            );
            ok = false;
        }
        for (i, axis) in ["height", "width"].iter().enumerate() {
            let extent = l.dilation[i] * (l.kernel[i] - 1) + 1;
            let padded = l.input[i] + 2 * l.padding[i];
            if extent > padded {
                self.err(
                    &field("kernel"),
                    format!(
                        "the {axis} of the dilated kernel, {extent} = {} * ({} - 1) + 1, is larger than the padded input {axis} {padded} = {} + 2 * {}, so the output {axis} would be below 1",
                        l.dilation[i], l.kernel[i], l.input[i], l.padding[i]
                    ),
                );
                ok = false;
            }
        }
        // An int8 depthwise layer's block spans groups (`plan::quant`): it divides the
        // channels.
        let int8_depthwise = l.quantization.is_some()
            && l.in_per_group() == 1
            && l.out_per_group() == 1
            && l.strategy != Some(Strategy::GspcOc);
        if let Some(b) = l.oc_block
            && ok
            && int8_depthwise
            && !l.out_channels.is_multiple_of(b)
        {
            self.err(
                &field("oc_block"),
                format!(
                    "{b} does not divide out_channels = {} (an int8 depthwise layer's block of channels)",
                    l.out_channels
                ),
            );
            ok = false;
        }
        if let Some(b) = l.oc_block
            && ok
            && !int8_depthwise
            && !l.out_per_group().is_multiple_of(b)
        {
            self.err(
                &field("oc_block"),
                format!(
                    "{b} does not divide the output channels per group, {} = {} / {}",
                    l.out_per_group(),
                    l.out_channels,
                    l.groups
                ),
            );
            ok = false;
        }
        if l.strategy == Some(Strategy::GspcOw) && ok {
            let ow = l.output()[1];
            if ow < 4 {
                self.err(
                    &field("strategy"),
                    format!("\"gspc-ow\" needs at least 4 output columns, this layer has {ow}"),
                );
                ok = false;
            }
            if l.oc_block.is_some_and(|b| b > MAX_OW_OC_BLOCK) {
                self.err(
                    &field("oc_block"),
                    format!(
                        "{} is above the limit of {MAX_OW_OC_BLOCK} for \"gspc-ow\" (one accumulator per channel and vector)",
                        l.oc_block.unwrap_or(0)
                    ),
                );
                ok = false;
            }
        }
        if l.strategy == Some(Strategy::GspcDwc) && ok {
            if !l.dwc_applies() {
                self.err(
                    &field("strategy"),
                    format!(
                        "\"gspc-dwc\" needs a depthwise layer (groups = in_channels = out_channels) with a multiple of {} channels; this one has {} -> {} channels in {} groups",
                        DWC_BLOCK,
                        l.in_channels,
                        l.out_channels,
                        l.groups
                    ),
                );
                ok = false;
            }
            if l.oc_block.is_some() {
                self.err(
                    &field("oc_block"),
                    "cannot be pinned with \"gspc-dwc\" (its blocks are 16 channels)".to_string(),
                );
                ok = false;
            }
        }
        if let Some(q) = &l.quantization {
            ok &= self.quantization_fits(path, &l, q);
        }
        if !ok {
            return None;
        }
        // In u64: a 32-bit host must not overflow while checking the limits.
        let u = |x: usize| x as u64;
        let [ph, pw] = [0, 1].map(|i| u(l.input[i]) + 2 * u(l.padding[i]));
        let [oh, ow] = l.output().map(u);
        let cpg = u(l.in_channels / l.groups);
        let sizes: [(&str, u64, &str); 4] = [
            (
                "input",
                u(l.in_channels) * u(l.input[0]) * u(l.input[1]),
                "in_channels * H * W",
            ),
            (
                "out_channels",
                u(l.out_channels) * oh * ow,
                "out_channels * OH * OW",
            ),
            (
                "kernel",
                u(l.out_channels) * cpg * u(l.kernel[0]) * u(l.kernel[1]),
                "out_channels * in_channels / groups * KH * KW",
            ),
            (
                "padding",
                u(l.in_channels) * ph * pw,
                "in_channels * (H + 2 PH) * (W + 2 PW), the packed input",
            ),
        ];
        let input_too_large = sizes[0].1 > MAX_ELEMENTS;
        for (f, n, what) in sizes {
            // The packed input only adds the padding to the input: blame the padding only
            // when the input itself is within the limit.
            if f == "padding" && input_too_large {
                continue;
            }
            if n > MAX_ELEMENTS {
                self.err(
                    &field(f),
                    format!(
                        "{what} = {n} elements is more than the limit of {MAX_ELEMENTS} (1 GiB of f32) per buffer"
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(l)
    }
}
