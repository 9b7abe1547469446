//! The naive grouped convolution every generated kernel is tested against.
//!
//! Written for obviousness, not speed: one output value at a time, straight from the
//! definition, accumulating in f64.

use crate::{Error, LayerInfo};

/// `output = act(conv2d(input, weights, groups) + bias)`, NCHW input and output, OIHW
/// weights `[out][in / groups][kh][kw]`, zero padding, f64 accumulation.
pub fn conv2d(
    info: &LayerInfo,
    input: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) -> Result<(), Error> {
    check_lengths(info, input.len(), weights.len(), bias.map(<[f32]>::len))?;
    check_len("output", info.output_len(), output.len())?;
    // Every index below is in bounds: the lengths were checked above.
    direct(
        info,
        |k| bias.map_or(0.0, |b| b[k] as f64),
        |sum: &mut f64, i, j| *sum += input[i] as f64 * weights[j] as f64,
        |_, o, sum| output[o] = info.activation.apply(sum as f32),
    );
    Ok(())
}

/// The convolution's loop nest, straight from the definition, shared by the f32 and the
/// int8 reference: for every output value `(k, oh, ow)` in NCHW order, `init(k)` starts
/// the accumulator, `tap(acc, input_index, weight_index)` adds each tap that falls inside
/// the input (input channel, then kernel row, then kernel column; taps in the padding are
/// skipped), and `store(k, output_index, acc)` finishes it.
pub(crate) fn direct<A>(
    info: &LayerInfo,
    init: impl Fn(usize) -> A,
    tap: impl Fn(&mut A, usize, usize),
    mut store: impl FnMut(usize, usize, A),
) {
    let [h, w] = info.input;
    let [oh_n, ow_n] = info.output;
    let [kh_n, kw_n] = info.kernel;
    let cpg = info.in_per_group();
    let kpg = info.out_per_group();
    for k in 0..info.out_channels {
        let g = k / kpg;
        for oh in 0..oh_n {
            for ow in 0..ow_n {
                let mut acc = init(k);
                for c in 0..cpg {
                    let ic = g * cpg + c;
                    for kh in 0..kh_n {
                        // Input row, in padded coordinates minus the padding.
                        let ih = (oh * info.stride[0] + kh * info.dilation[0]) as isize
                            - info.padding[0] as isize;
                        if ih < 0 || ih >= h as isize {
                            continue;
                        }
                        for kw in 0..kw_n {
                            let iw = (ow * info.stride[1] + kw * info.dilation[1]) as isize
                                - info.padding[1] as isize;
                            if iw < 0 || iw >= w as isize {
                                continue;
                            }
                            tap(
                                &mut acc,
                                (ic * h + ih as usize) * w + iw as usize,
                                ((k * cpg + c) * kh_n + kh) * kw_n + kw,
                            );
                        }
                    }
                }
                store(k, (k * oh_n + oh) * ow_n + ow, acc);
            }
        }
    }
}

/// Checks the input, weights and (given) bias lengths of a layer.
pub(crate) fn check_lengths(
    info: &LayerInfo,
    input: usize,
    weights: usize,
    bias: Option<usize>,
) -> Result<(), Error> {
    check_len("input", info.input_len(), input)?;
    check_len("weights", info.weights_len(), weights)?;
    if let Some(b) = bias {
        check_len("bias", info.out_channels, b)?;
    }
    Ok(())
}

pub(crate) fn check_len(buffer: &'static str, expected: usize, actual: usize) -> Result<(), Error> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::BufferLength {
            buffer,
            expected,
            actual,
        })
    }
}

/// The first output value outside the tolerance, with its coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mismatch {
    /// Group.
    pub g: usize,
    /// Output channel within the group.
    pub oc: usize,
    /// Output row.
    pub oh: usize,
    /// Output column.
    pub ow: usize,
    /// Reference value.
    pub expected: f32,
    /// Kernel value.
    pub actual: f32,
    /// Tolerance that was exceeded.
    pub tolerance: f32,
    /// How many values were outside the tolerance in all.
    pub count: usize,
    /// `Some((expected, actual))` when the two outputs differ in length (then no values are
    /// compared).
    pub lengths: Option<(usize, usize)>,
}

impl core::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some((expected, actual)) = self.lengths {
            return write!(
                f,
                "output length mismatch: expected {expected} values, got {actual}"
            );
        }
        write!(
            f,
            "(g, oc, oh, ow) = ({}, {}, {}, {}): expected {} got {} (tolerance {}); {} values out of tolerance",
            self.g,
            self.oc,
            self.oh,
            self.ow,
            self.expected,
            self.actual,
            self.tolerance,
            self.count
        )
    }
}

/// Tolerance for one output value of a layer: f32 rounding grows with the square root of
/// the reduction length `(in / groups) * KH * KW` for random data, and with the magnitude
/// of the value.
pub fn tolerance(info: &LayerInfo, expected: f32) -> f32 {
    let n = info.reduction_len() as f32;
    let scale = if expected.abs() > 1.0 {
        expected.abs()
    } else {
        1.0
    };
    1e-5 * (1.0 + sqrt(n)) * scale
}

// core has no f32::sqrt; Newton's method is plenty for a tolerance.
fn sqrt(x: f32) -> f32 {
    if x <= 0.0 {
        return 0.0;
    }
    let mut r = if x > 1.0 { x } else { 1.0 };
    for _ in 0..40 {
        r = 0.5 * (r + x / r);
    }
    r
}

/// Compares a kernel's output with the reference's. NaN never matches.
pub fn compare(info: &LayerInfo, expected: &[f32], actual: &[f32]) -> Result<(), Mismatch> {
    if expected.len() != actual.len() {
        return Err(Mismatch {
            g: 0,
            oc: 0,
            oh: 0,
            ow: 0,
            expected: f32::NAN,
            actual: f32::NAN,
            tolerance: 0.0,
            count: 0,
            lengths: Some((expected.len(), actual.len())),
        });
    }
    let [oh_n, ow_n] = info.output;
    let kpg = info.out_per_group();
    let mut first: Option<Mismatch> = None;
    let mut count = 0;
    for (i, (&e, &a)) in expected.iter().zip(actual).enumerate() {
        let tol = tolerance(info, e);
        // Written so that a NaN on either side counts as a mismatch.
        let ok = (e - a).abs() <= tol;
        if !ok {
            count += 1;
            if first.is_none() {
                let k = i / (oh_n * ow_n);
                first = Some(Mismatch {
                    g: k / kpg,
                    oc: k % kpg,
                    oh: i / ow_n % oh_n,
                    ow: i % ow_n,
                    expected: e,
                    actual: a,
                    tolerance: tol,
                    count: 0,
                    lengths: None,
                });
            }
        }
    }
    match first {
        None => Ok(()),
        Some(m) => Err(Mismatch { count, ..m }),
    }
}
