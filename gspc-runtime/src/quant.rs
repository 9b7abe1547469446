//! int8 quantization (TFLite's int8 spec): a layer's quantization parameters, the
//! per-output-channel requantization derived from them once, and the requantization of an
//! int32 accumulator to int8 in the two modes a spec can name.
//!
//! The tensors (docs/quantization.md has the full statement and the sources):
//!
//! - input: int8, `real = input_scale * (q - input_zero_point)`;
//! - weights: int8, symmetric (zero point 0), one scale per output channel;
//! - bias: int32 at scale `input_scale * weight_scale[k]`, zero point 0;
//! - output: int8, `real = output_scale * (q - output_zero_point)`.
//!
//! An output value is `clamp(requantize_k(acc) + output_zero_point, min, max)` where
//! `acc = bias[k] + sum (x - input_zero_point) * w` (int32) and `[min, max]` is the
//! activation's range in the output's integer domain ([`activation_range`]).
//!
//! The two requantization modes ([`Requantization`]):
//!
//! - `fixed` ([`FixedMultiplier`]): the real multiplier
//!   `input_scale * weight_scale[k] / output_scale` (computed in f64 from the f32 scales)
//!   as an int32 Q0.31 multiplier and a shift, applied with integer arithmetic only: a
//!   rounding doubling high multiply, then a rounding right shift (TFLite's
//!   `MultiplyByQuantizedMultiplier` with double rounding, CMSIS-NN's `arm_nn_requantize`);
//! - `fp32` ([`requantize_fp32`]): the scale `input_scale * weight_scale[k] / output_scale`
//!   in f32, `f32(acc) * scale` rounded to nearest, ties to even (XNNPACK's fp32
//!   requantization, ONNX Runtime's MLAS).

use crate::{Activation, Error, LayerInfo};
use core::fmt;

/// The smallest int8 value.
pub const Q_MIN: i32 = i8::MIN as i32;
/// The largest int8 value.
pub const Q_MAX: i32 = i8::MAX as i32;

/// The smallest shift of a [`FixedMultiplier`]: a right shift by 31 at most (TFLite flushes
/// multipliers that would need more to zero; they are refused here).
pub const MIN_SHIFT: i32 = -31;
/// The largest shift of a [`FixedMultiplier`]: a left shift by 30 at most (TFLite's and
/// CMSIS-NN's `x * (1 << left_shift)` is an int32 product, so `1 << 31` is out; CMSIS-NN's
/// `arm_nn_requantize` documents its shift range as -31 to 30).
pub const MAX_SHIFT: i32 = 30;

/// The largest reduction length `(in_channels / groups) * KH * KW` of an int8 layer:
/// `|sum (x - input_zero_point) * w| <= 65793 * 255 * 128 < 2^31`, so the int32
/// accumulator never overflows before the bias is added.
pub const MAX_REDUCTION: usize = (i32::MAX / (255 * 128)) as usize;

/// How an int32 accumulator is scaled to the output (a spec's `"requantization"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Requantization {
    /// int32 multiplier and shift, integer arithmetic only (TFLite reference kernels,
    /// CMSIS-NN); for FPU-less microcontrollers.
    Fixed,
    /// f32 scale, round to nearest even (XNNPACK, ONNX Runtime).
    Fp32,
}

impl Requantization {
    /// The spelling used in specs (`"fixed"`, `"fp32"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Requantization::Fixed => "fixed",
            Requantization::Fp32 => "fp32",
        }
    }
}

/// `a * b / 2^31` rounded to nearest, ties toward positive infinity, saturated: gemmlowp's
/// and TFLite's `SaturatingRoundingDoublingHighMul`. The only product that saturates is
/// `i32::MIN * i32::MIN` (`2^62 / 2^31 = 2^31`), which gives `i32::MAX`.
#[inline(always)]
pub const fn rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    // |a * b| <= 2^62, so adding 2^30 cannot overflow; the arithmetic shift floors, and
    // floor((p + 2^30) / 2^31) is round-half-up of p / 2^31, which fits in an i32 for
    // every other (a, b).
    ((a as i64 * b as i64 + (1 << 30)) >> 31) as i32
}

/// `x / 2^exponent` rounded to nearest, ties away from zero: gemmlowp's and TFLite's
/// `RoundingDivideByPOT`, CMSIS-NN's `arm_nn_divide_by_power_of_two`. `exponent` is taken
/// modulo 32 (only 0..=31 are meaningful).
#[inline(always)]
pub const fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    let e = exponent % 32;
    let half = (1i64 << e) >> 1;
    let x = x as i64;
    // In i64: `-x` and `x + half` cannot overflow, and the result's magnitude is at most
    // |x|, so it fits in an i32.
    if x >= 0 {
        ((x + half) >> e) as i32
    } else {
        (-((-x + half) >> e)) as i32
    }
}

/// A real multiplier `multiplier * 2^(shift - 31)` with `multiplier` in `[2^30, 2^31)`:
/// TFLite's `QuantizeMultiplier` output, CMSIS-NN's per-channel `output_mult` and
/// `output_shift`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FixedMultiplier {
    /// The significand as Q0.31, in `[2^30, 2^31)`.
    pub multiplier: i32,
    /// The exponent, in [`MIN_SHIFT`]`..=`[`MAX_SHIFT`]: positive shifts left before the
    /// multiply, negative shifts right after it.
    pub shift: i32,
}

impl FixedMultiplier {
    /// The multiplier nearest `real` (TFLite's `QuantizeMultiplier`: `frexp`, the
    /// significand times 2^31 rounded half away from zero, a significand that rounds up to
    /// 2^31 halved with the shift incremented), or `None` when `real` is not finite and
    /// positive or its shift is outside `MIN_SHIFT..=MAX_SHIFT` (roughly `real` below
    /// 2^-32 or at least 2^30).
    pub const fn from_real(real: f64) -> Option<FixedMultiplier> {
        if real.is_nan() || real <= 0.0 || real.is_infinite() {
            return None;
        }
        let bits = real.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        if biased == 0 {
            // Subnormal: far below 2^-32.
            return None;
        }
        // real = sig * 2^(biased - 1075) with sig in [2^52, 2^53): frexp's significand is
        // sig / 2^53 in [0.5, 1) and its exponent biased - 1022.
        let sig = (bits & ((1 << 52) - 1)) | (1 << 52);
        // round(sig / 2^53 * 2^31) = round(sig / 2^22); sig > 0, so half-up is half away
        // from zero.
        let mut q = (sig + (1 << 21)) >> 22;
        let mut shift = biased - 1022;
        if q == 1 << 31 {
            q = 1 << 30;
            shift += 1;
        }
        if shift < MIN_SHIFT || shift > MAX_SHIFT {
            return None;
        }
        Some(FixedMultiplier {
            multiplier: q as i32,
            shift,
        })
    }

    /// The real value `multiplier * 2^(shift - 31)`.
    pub fn to_real(self) -> f64 {
        let mut r = self.multiplier as f64;
        // Beyond +-1100 the result is 0 or infinite anyway (fields set by hand).
        let mut e = self.shift.clamp(-1100, 1100) - 31;
        while e > 0 {
            r *= 2.0;
            e -= 1;
        }
        while e < 0 {
            r *= 0.5;
            e += 1;
        }
        r
    }

    /// `acc * real` rounded (TFLite's `MultiplyByQuantizedMultiplier`, double rounding):
    /// `acc` shifted left by `max(shift, 0)` (saturating; TFLite's int32 product would
    /// overflow there, and then the value is far outside int8 anyway), the rounding
    /// doubling high multiply by `multiplier`, then the rounding right shift by
    /// `max(-shift, 0)`.
    #[inline(always)]
    pub const fn apply(self, acc: i32) -> i32 {
        let (left, right) = if self.shift > 0 {
            (self.shift as u32, 0)
        } else {
            (0, self.shift.unsigned_abs())
        };
        let wide = (acc as i64) << (left % 32);
        let x = if wide > i32::MAX as i64 {
            i32::MAX
        } else if wide < i32::MIN as i64 {
            i32::MIN
        } else {
            wide as i32
        };
        rounding_divide_by_pot(rounding_doubling_high_mul(x, self.multiplier), right)
    }
}

/// `v` rounded to nearest, ties to even (core has no `round_ties_even`): below 2^23 in
/// magnitude, adding and subtracting 2^23 leaves no fraction bits, and IEEE addition rounds
/// ties to even; from 2^23 on every f32 is a whole number.
#[inline(always)]
fn round_ties_even(v: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    if v.abs() >= TWO_23 {
        v
    } else if v >= 0.0 {
        (v + TWO_23) - TWO_23
    } else {
        (v - TWO_23) + TWO_23
    }
}

/// The fp32 requantization: `clamp(round_ties_even(f32(acc) * scale) + zero_point, min,
/// max)`, every f32 operation rounded to nearest even. The clamp is done in f32 before the
/// rounding against `[min - zero_point, max - zero_point]`, as XNNPACK and MLAS do; since
/// the bounds are integers this equals clamping after it.
#[inline(always)]
pub fn requantize_fp32(acc: i32, scale: f32, zero_point: i32, min: i32, max: i32) -> i32 {
    let v = acc as f32 * scale;
    let lo = min.saturating_sub(zero_point) as f32;
    let hi = max.saturating_sub(zero_point) as f32;
    // An infinite product clamps (a NaN scale gives NaN, which `as` turns into 0).
    let v = if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    };
    (round_ties_even(v) as i32).saturating_add(zero_point)
}

/// The fixed requantization: `clamp(m.apply(acc) + zero_point, min, max)` (the addition
/// saturating).
#[inline(always)]
pub const fn requantize_fixed(
    acc: i32,
    m: FixedMultiplier,
    zero_point: i32,
    min: i32,
    max: i32,
) -> i32 {
    let v = m.apply(acc).saturating_add(zero_point);
    if v < min {
        min
    } else if v > max {
        max
    } else {
        v
    }
}

/// `v` rounded half away from zero to an int32, saturating (C's `round` then a cast, as
/// TFLite's `TfLiteRound` and `static_cast<int32_t>`).
fn round_half_away(v: f32) -> i32 {
    // `as` truncates toward zero and saturates; for |v| < 2^31 the fraction is exact.
    let t = v as i32;
    let frac = v - t as f32;
    if frac >= 0.5 {
        t.saturating_add(1)
    } else if frac <= -0.5 {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// The activation as a clamp `[min, max]` in the output's integer domain, as TFLite's
/// `CalculateActivationRangeQuantized` computes it: `none` is `[-128, 127]`; `relu`'s lower
/// bound is `output_zero_point`; `relu6`'s upper bound is `output_zero_point +
/// round(6.0 / output_scale)` (f32 division, rounded half away from zero); both within
/// `[-128, 127]`.
pub fn activation_range(
    activation: Activation,
    output_scale: f32,
    output_zero_point: i32,
) -> (i32, i32) {
    let zero = output_zero_point.clamp(Q_MIN, Q_MAX);
    match activation {
        Activation::None => (Q_MIN, Q_MAX),
        Activation::Relu => (zero, Q_MAX),
        Activation::Relu6 => {
            let six = output_zero_point.saturating_add(round_half_away(6.0 / output_scale));
            (zero, six.clamp(zero, Q_MAX))
        }
    }
}

/// What is wrong with a layer's quantization parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QuantError {
    /// A scale is not finite and positive: `what` is `input_scale`, `output_scale` or
    /// `weight_scales`, `index` the position in `weight_scales`.
    Scale {
        /// Which scale.
        what: &'static str,
        /// The output channel, for a weight scale.
        index: Option<usize>,
        /// The value.
        value: f32,
    },
    /// A zero point is outside `[-128, 127]`.
    ZeroPoint {
        /// `input_zero_point` or `output_zero_point`.
        what: &'static str,
        /// The value.
        value: i32,
    },
    /// `weight_scales` holds neither one value nor one per output channel.
    WeightScales {
        /// The output channels.
        expected: usize,
        /// The values given.
        actual: usize,
    },
    /// Channel `channel`'s multiplier `input_scale * weight_scale / output_scale` cannot be
    /// represented in the mode: in `fixed`, its shift is outside
    /// `MIN_SHIFT..=MAX_SHIFT`; in `fp32`, the f32 scale is zero or infinite.
    Multiplier {
        /// The requantization mode.
        mode: Requantization,
        /// The output channel.
        channel: usize,
        /// The real multiplier (in f64).
        value: f64,
    },
    /// The destination of [`QuantParams::derive`] does not hold one entry per output
    /// channel.
    Channels {
        /// The output channels.
        expected: usize,
        /// The entries given.
        actual: usize,
    },
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QuantError::Scale {
                what,
                index: Some(i),
                value,
            } => write!(f, "{what}[{i}] = {value:e} is not a finite number above 0"),
            QuantError::Scale {
                what,
                index: None,
                value,
            } => write!(f, "{what} = {value:e} is not a finite number above 0"),
            QuantError::ZeroPoint { what, value } => {
                write!(f, "{what} = {value} is outside the int8 range [-128, 127]")
            }
            QuantError::WeightScales { expected, actual } => write!(
                f,
                "weight_scales holds {actual} values; it needs 1 or one per output channel ({expected})"
            ),
            QuantError::Multiplier {
                mode,
                channel,
                value,
            } => match mode {
                Requantization::Fixed => write!(
                    f,
                    "output channel {channel}: the multiplier input_scale * weight_scale / output_scale = {value:.4e} needs a shift outside [{MIN_SHIFT}, {MAX_SHIFT}] (it must be in about [2^-32, 2^30)) for \"fixed\" requantization"
                ),
                Requantization::Fp32 => write!(
                    f,
                    "output channel {channel}: the scale input_scale * weight_scale / output_scale = {value:.4e} is zero or infinite in f32"
                ),
            },
            QuantError::Channels { expected, actual } => write!(
                f,
                "requantization: expected {expected} channels, got {actual}"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for QuantError {}

/// One output channel's requantization, derived once from the layer's scales.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ChannelScale {
    /// `fixed` mode.
    Fixed(FixedMultiplier),
    /// `fp32` mode: `input_scale * weight_scale / output_scale` in f32.
    Fp32(f32),
}

impl ChannelScale {
    /// The requantization of one channel with real multiplier
    /// `input_scale * weight_scale / output_scale`, or the error naming `channel`. `fixed`
    /// computes the multiplier in f64 from the f32 scales (as TFLite's per-channel
    /// `PopulateConvolutionQuantizationParams`); `fp32` in f32, left to right (as ONNX
    /// Runtime's QLinearConv and XNNPACK).
    pub fn new(
        mode: Requantization,
        input_scale: f32,
        weight_scale: f32,
        output_scale: f32,
        channel: usize,
    ) -> Result<ChannelScale, QuantError> {
        let real = input_scale as f64 * weight_scale as f64 / output_scale as f64;
        let err = QuantError::Multiplier {
            mode,
            channel,
            value: real,
        };
        match mode {
            Requantization::Fixed => FixedMultiplier::from_real(real)
                .map(ChannelScale::Fixed)
                .ok_or(err),
            Requantization::Fp32 => {
                let s = input_scale * weight_scale / output_scale;
                if s > 0.0 && s.is_finite() {
                    Ok(ChannelScale::Fp32(s))
                } else {
                    Err(err)
                }
            }
        }
    }

    /// `clamp(requantize(acc) + zero_point, min, max)` in this channel's mode.
    #[inline(always)]
    pub fn requantize(self, acc: i32, zero_point: i32, min: i32, max: i32) -> i8 {
        let v = match self {
            ChannelScale::Fixed(m) => requantize_fixed(acc, m, zero_point, min, max),
            ChannelScale::Fp32(s) => requantize_fp32(acc, s, zero_point, min, max),
        };
        // In [min, max], within [-128, 127] for every `Requant` `derive` makes.
        v.clamp(Q_MIN, Q_MAX) as i8
    }
}

/// A layer's quantization parameters, as a spec gives them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantParams<'a> {
    /// Requantization mode.
    pub mode: Requantization,
    /// Input scale.
    pub input_scale: f32,
    /// Input zero point, in `[-128, 127]`.
    pub input_zero_point: i32,
    /// Output scale.
    pub output_scale: f32,
    /// Output zero point, in `[-128, 127]`.
    pub output_zero_point: i32,
    /// Weight scales: one per output channel, or one for every channel.
    pub weight_scales: &'a [f32],
}

fn check_scale(what: &'static str, index: Option<usize>, value: f32) -> Result<(), QuantError> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(QuantError::Scale { what, index, value })
    }
}

fn check_zero_point(what: &'static str, value: i32) -> Result<(), QuantError> {
    if (Q_MIN..=Q_MAX).contains(&value) {
        Ok(())
    } else {
        Err(QuantError::ZeroPoint { what, value })
    }
}

impl QuantParams<'_> {
    /// The weight scale of output channel `k` (`weight_scales[0]` when there is one).
    pub fn weight_scale(&self, k: usize) -> Option<f32> {
        match self.weight_scales {
            [s] => Some(*s),
            s => s.get(k).copied(),
        }
    }

    /// Checks the parameters and derives every output channel's requantization into
    /// `channels` (one entry per output channel) and the activation's clamp: what a kernel
    /// needs, computed once. The first problem found is the error.
    pub fn derive<'c>(
        &self,
        activation: Activation,
        channels: &'c mut [ChannelScale],
    ) -> Result<Requant<'c>, QuantError> {
        check_scale("input_scale", None, self.input_scale)?;
        check_scale("output_scale", None, self.output_scale)?;
        check_zero_point("input_zero_point", self.input_zero_point)?;
        check_zero_point("output_zero_point", self.output_zero_point)?;
        let n = channels.len();
        if self.weight_scales.len() != 1 && self.weight_scales.len() != n {
            return Err(QuantError::WeightScales {
                expected: n,
                actual: self.weight_scales.len(),
            });
        }
        for (i, &s) in self.weight_scales.iter().enumerate() {
            check_scale("weight_scales", Some(i), s)?;
        }
        for (k, c) in channels.iter_mut().enumerate() {
            let ws = self.weight_scale(k).unwrap_or(0.0);
            *c = ChannelScale::new(self.mode, self.input_scale, ws, self.output_scale, k)?;
        }
        let (min, max) = activation_range(activation, self.output_scale, self.output_zero_point);
        Ok(Requant {
            input_zero_point: self.input_zero_point,
            output_zero_point: self.output_zero_point,
            min,
            max,
            channels,
        })
    }
}

/// What an int8 layer's epilogue needs, derived once by [`QuantParams::derive`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Requant<'a> {
    /// Input zero point (subtracted from every input value; padding equals it).
    pub input_zero_point: i32,
    /// Output zero point (added after the scaling).
    pub output_zero_point: i32,
    /// The activation's lower bound, in `[-128, 127]`.
    pub min: i32,
    /// The activation's upper bound, in `[min, 127]`.
    pub max: i32,
    /// Each output channel's requantization.
    pub channels: &'a [ChannelScale],
}

impl Requant<'_> {
    /// Output channel `k`'s int8 value for accumulator `acc` (bias included), or `None` for
    /// a channel out of range.
    #[inline(always)]
    pub fn output(&self, k: usize, acc: i32) -> Option<i8> {
        let c = self.channels.get(k)?;
        Some(c.requantize(acc, self.output_zero_point, self.min, self.max))
    }
}

/// `output = clamp(requantize(bias + sum (x - input_zero_point) * w) + output_zero_point)`:
/// the int8 twin of [`reference::conv2d`](crate::reference::conv2d), NCHW int8 input and
/// output, OIHW int8 weights, optional int32 bias, int32 accumulation (wrapping, as int32
/// lanes do; an int8 spec's reduction length is at most [`MAX_REDUCTION`], so only the bias
/// can make it wrap). A padded pixel equals the input zero point, so it adds nothing.
pub fn conv2d(
    info: &LayerInfo,
    requant: &Requant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i8],
) -> Result<(), Error> {
    crate::reference::check_lengths(info, input.len(), weights.len(), bias.map(<[i32]>::len))?;
    crate::reference::check_len("output", info.output_len(), output.len())?;
    crate::reference::check_len("requantization", info.out_channels, requant.channels.len())?;
    let izp = requant.input_zero_point;
    // Every index below is in bounds: the lengths were checked above.
    crate::reference::direct(
        info,
        |k| bias.map_or(0, |b| b[k]),
        |acc: &mut i32, i, j| {
            let x = (input[i] as i32).wrapping_sub(izp);
            *acc = acc.wrapping_add(x.wrapping_mul(weights[j] as i32));
        },
        |k, o, acc| {
            output[o] = requant.channels[k].requantize(
                acc,
                requant.output_zero_point,
                requant.min,
                requant.max,
            );
        },
    );
    Ok(())
}
