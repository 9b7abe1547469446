//! The int8 requantization and reference convolution: hand-computed values (each worked out
//! in a comment), the edges of the fixed multiplier's range, and a property test of both
//! modes against an independent i128/f64 model of the same formulas.

use gspc_runtime::quant::{
    ChannelScale, FixedMultiplier, MAX_REDUCTION, MAX_SHIFT, MIN_SHIFT, QuantError, QuantParams,
    Requantization, activation_range, conv2d, requantize_fixed, requantize_fp32,
    rounding_divide_by_pot, rounding_doubling_high_mul,
};
use gspc_runtime::rng::Rng;
use gspc_runtime::{Activation, Error, LayerInfo};

const P30: i32 = 1 << 30;

#[test]
fn doubling_high_mul_rounds_half_up_and_saturates_once() {
    // 2^30 * 2^30 / 2^31 = 2^29.
    assert_eq!(rounding_doubling_high_mul(P30, P30), 1 << 29);
    // 1 * 2^30 / 2^31 = 0.5 -> 1; -0.5 -> 0 (ties toward +infinity); 1.5 -> 2; -1.5 -> -1.
    assert_eq!(rounding_doubling_high_mul(1, P30), 1);
    assert_eq!(rounding_doubling_high_mul(-1, P30), 0);
    assert_eq!(rounding_doubling_high_mul(3, P30), 2);
    assert_eq!(rounding_doubling_high_mul(-3, P30), -1);
    // (2^31 - 1)^2 / 2^31 = 2^31 - 2 + 2^-31 -> 2^31 - 2.
    assert_eq!(rounding_doubling_high_mul(i32::MAX, i32::MAX), i32::MAX - 1);
    // -2^31 * (2^31 - 1) / 2^31 = -(2^31 - 1) exactly.
    assert_eq!(rounding_doubling_high_mul(i32::MIN, i32::MAX), -i32::MAX);
    // -2^31 * -2^31 / 2^31 = 2^31 does not fit: saturates.
    assert_eq!(rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
}

#[test]
fn divide_by_power_of_two_rounds_half_away_from_zero() {
    // 5/2 = 2.5 -> 3, -2.5 -> -3, 4/2 = 2.
    assert_eq!(rounding_divide_by_pot(5, 1), 3);
    assert_eq!(rounding_divide_by_pot(-5, 1), -3);
    assert_eq!(rounding_divide_by_pot(4, 1), 2);
    // 6/4 = 1.5 -> 2, -1.5 -> -2, 5/4 = 1.25 -> 1, -1.25 -> -1, 7/4 = 1.75 -> 2.
    assert_eq!(rounding_divide_by_pot(6, 2), 2);
    assert_eq!(rounding_divide_by_pot(-6, 2), -2);
    assert_eq!(rounding_divide_by_pot(5, 2), 1);
    assert_eq!(rounding_divide_by_pot(-5, 2), -1);
    assert_eq!(rounding_divide_by_pot(7, 2), 2);
    // The ends: -2^31 / 2^31 = -1; (2^31 - 1) / 2^31 -> 1; +-2^30 / 2^31 = +-0.5 -> +-1.
    assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
    assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
    assert_eq!(rounding_divide_by_pot(P30, 31), 1);
    assert_eq!(rounding_divide_by_pot(-P30, 31), -1);
    assert_eq!(rounding_divide_by_pot(P30 - 1, 31), 0);
    assert_eq!(rounding_divide_by_pot(i32::MIN, 0), i32::MIN);
    assert_eq!(rounding_divide_by_pot(i32::MAX, 0), i32::MAX);
}

fn fixed(multiplier: i32, shift: i32) -> FixedMultiplier {
    FixedMultiplier { multiplier, shift }
}

#[test]
fn quantize_multiplier_is_frexp_rounded() {
    // 0.5 = 0.5 * 2^0; 1 = 0.5 * 2^1; 0.75 = 0.75 * 2^0 and 0.75 * 2^31 = 1610612736.
    assert_eq!(FixedMultiplier::from_real(0.5), Some(fixed(P30, 0)));
    assert_eq!(FixedMultiplier::from_real(1.0), Some(fixed(P30, 1)));
    assert_eq!(
        FixedMultiplier::from_real(0.75),
        Some(fixed(1_610_612_736, 0))
    );
    // 0.5 + 2^-32: the significand times 2^31 is 2^30 + 0.5 exactly, rounded away from 0.
    assert_eq!(
        FixedMultiplier::from_real(0.5 + 2f64.powi(-32)),
        Some(fixed(P30 + 1, 0))
    );
    // 0.9 * 2^31 = 1932735283.2 -> 1932735283.
    assert_eq!(
        FixedMultiplier::from_real(0.9),
        Some(fixed(1_932_735_283, 0))
    );
    // The low end: 2^-32 = 0.5 * 2^-31 is the smallest shift; 2^-33 needs -32.
    assert_eq!(
        FixedMultiplier::from_real(2f64.powi(-32)),
        Some(fixed(P30, MIN_SHIFT))
    );
    assert_eq!(FixedMultiplier::from_real(2f64.powi(-33)), None);
    // Just below 2^-32: the significand (1 - 2^-40) * 2^31 rounds to 2^31, which is
    // halved with the shift incremented from -32 to -31: accepted.
    let below = (1.0 - 2f64.powi(-40)) * 2f64.powi(-32);
    assert_eq!(
        FixedMultiplier::from_real(below),
        Some(fixed(P30, MIN_SHIFT))
    );
    // The high end: 1.5 * 2^29 = 0.75 * 2^30; 2^30 = 0.5 * 2^31 needs shift 31; just below
    // 2^30 the significand rounds up to 2^31 and the shift becomes 31 too.
    assert_eq!(
        FixedMultiplier::from_real(1.5 * 2f64.powi(29)),
        Some(fixed(1_610_612_736, MAX_SHIFT))
    );
    assert_eq!(FixedMultiplier::from_real(2f64.powi(30)), None);
    assert_eq!(
        FixedMultiplier::from_real((1.0 - 2f64.powi(-40)) * 2f64.powi(30)),
        None
    );
    for bad in [0.0, -0.5, f64::NAN, f64::INFINITY, f64::MIN_POSITIVE / 4.0] {
        assert_eq!(FixedMultiplier::from_real(bad), None, "{bad}");
    }
    // Round trip within half a unit of the 31-bit significand.
    for r in [1e-9, 0.001_234_5, 0.3, 0.999_999_999, 1.7, 1234.5] {
        let m = FixedMultiplier::from_real(r).expect("in range");
        assert!((m.to_real() - r).abs() <= r * 2f64.powi(-31), "{r}");
    }
}

#[test]
fn fixed_multiply_rounds_twice() {
    let half = fixed(P30, 0); // 0.5
    // high_mul(3, 2^30) = round(1.5) = 2; -1.5 -> -1 (ties toward +infinity).
    assert_eq!(half.apply(3), 2);
    assert_eq!(half.apply(-3), -1);
    assert_eq!(half.apply(5), 3);
    assert_eq!(half.apply(-5), -2);
    let quarter = fixed(P30, -1); // 0.25
    // 6 * 0.5 = 3, then 3 / 2 = 1.5 -> 2; -6 -> -3 -> -1.5 -> -2.
    assert_eq!(quarter.apply(6), 2);
    assert_eq!(quarter.apply(-6), -2);
    // 2 * 0.5 = 1 -> 0.5 -> 1; -2 -> -1 -> -0.5 -> -1.
    assert_eq!(quarter.apply(2), 1);
    assert_eq!(quarter.apply(-2), -1);
    // Double rounding: 0.45 = 0.9 * 2^-1. 1 * 0.9 -> 1, then 1 / 2 = 0.5 -> 1, where
    // rounding 1 * 0.45 once would give 0.
    let m = FixedMultiplier::from_real(0.45).expect("in range");
    assert_eq!(m, fixed(1_932_735_283, -1));
    assert_eq!(m.apply(1), 1);
}

#[test]
fn fixed_multiply_at_both_ends_of_the_shift_range() {
    // Shift 30 (2^29): 1 << 30 = 2^30, times 2^30 / 2^31 = 2^29.
    let big = fixed(P30, MAX_SHIFT);
    assert_eq!(big.apply(1), 1 << 29);
    // 4 << 30 = 2^32 saturates to 2^31 - 1; (2^31 - 1) * 2^30 / 2^31 = 2^30 - 0.5 -> 2^30.
    assert_eq!(big.apply(4), P30);
    // -4 << 30 = -2^32 saturates to -2^31; -2^31 * 2^30 / 2^31 = -2^30.
    assert_eq!(big.apply(-4), -P30);
    assert_eq!(big.apply(0), 0);
    // Shift -31 (2^-32): (2^31 - 1) * 2^30 / 2^31 -> 2^30, then / 2^31 = 0.5 -> 1.
    let small = fixed(P30, MIN_SHIFT);
    assert_eq!(small.apply(i32::MAX), 1);
    assert_eq!(small.apply(i32::MIN), -1);
    // 2^30 -> 2^29 -> 0.25 -> 0.
    assert_eq!(small.apply(P30), 0);
    // A multiplier of -2^31 (never made by from_real) hits the one saturating product.
    assert_eq!(fixed(i32::MIN, 0).apply(i32::MIN), i32::MAX);
}

#[test]
fn fixed_requantization_adds_the_zero_point_and_clamps() {
    let half = fixed(P30, 0);
    // 100 * 0.5 + 10 = 60.
    assert_eq!(requantize_fixed(100, half, 10, -128, 127), 60);
    // 300 * 0.5 + 10 = 160 -> 127; -300 * 0.5 + 10 = -140 -> -128.
    assert_eq!(requantize_fixed(300, half, 10, -128, 127), 127);
    assert_eq!(requantize_fixed(-300, half, 10, -128, 127), -128);
    // A relu clamp at the zero point.
    assert_eq!(requantize_fixed(-40, half, 10, 10, 127), 10);
    // The zero point added to a saturated value saturates too.
    assert_eq!(
        requantize_fixed(i32::MAX, fixed(P30, MAX_SHIFT), 127, -128, 127),
        127
    );
}

#[test]
fn fp32_requantization_rounds_ties_to_even() {
    let r = |acc, scale, zp| requantize_fp32(acc, scale, zp, -128, 127);
    // 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, -3.5 -> -4, 1.25 -> 1.
    assert_eq!(r(5, 0.5, 0), 2);
    assert_eq!(r(7, 0.5, 0), 4);
    assert_eq!(r(-5, 0.5, 0), -2);
    assert_eq!(r(-7, 0.5, 0), -4);
    assert_eq!(r(5, 0.25, 0), 1);
    // The zero point comes after the rounding: 2.5 -> 2, + 10.
    assert_eq!(r(5, 0.5, 10), 12);
    // Clamped: 150 -> 127, -150 -> -128, and 100 + 50 -> 127.
    assert_eq!(r(150, 1.0, 0), 127);
    assert_eq!(r(-150, 1.0, 0), -128);
    assert_eq!(r(100, 1.0, 50), 127);
    // A relu clamp at the zero point 3.
    assert_eq!(requantize_fp32(-100, 1.0, 3, 3, 127), 3);
    // acc = 2^24 + 1 becomes 2^24 in f32; times 2^-25 that is 0.5 -> 0 (in exact
    // arithmetic 0.50000003 -> 1).
    assert_eq!(r((1 << 24) + 1, 2f32.powi(-25), 0), 0);
    // An infinite product clamps.
    assert_eq!(r(2, f32::MAX, 0), 127);
    assert_eq!(r(-2, f32::MAX, 0), -128);
    assert_eq!(r(0, f32::MAX, -7), -7);
}

#[test]
fn activation_ranges_follow_tflite() {
    assert_eq!(activation_range(Activation::None, 0.1, 5), (-128, 127));
    assert_eq!(activation_range(Activation::Relu, 0.1, -5), (-5, 127));
    // 6 / 0.05 = 119.99999 in f32 -> 120.
    assert_eq!(activation_range(Activation::Relu6, 0.05, 0), (0, 120));
    // 6 / (6 / 255) -> 255; -128 + 255 = 127.
    assert_eq!(
        activation_range(Activation::Relu6, 6.0 / 255.0, -128),
        (-128, 127)
    );
    // Ties are rounded away from zero (TfLiteRound): 6 / 12 = 0.5 -> 1, 6 / 4 = 1.5 -> 2.
    assert_eq!(activation_range(Activation::Relu6, 12.0, 0), (0, 1));
    assert_eq!(activation_range(Activation::Relu6, 4.0, -3), (-3, -1));
    // Far above 127 (6e10, beyond i32 too) and far below 1.
    assert_eq!(activation_range(Activation::Relu6, 1e-10, 100), (100, 127));
    assert_eq!(activation_range(Activation::Relu6, 1000.0, 0), (0, 0));
}

fn params(mode: Requantization, weight_scales: &[f32]) -> QuantParams<'_> {
    QuantParams {
        mode,
        input_scale: 0.5,
        input_zero_point: -10,
        output_scale: 1.0,
        output_zero_point: 3,
        weight_scales,
    }
}

#[test]
fn derive_computes_each_channel_once_and_checks_every_rule() {
    let mut ch = [ChannelScale::Fp32(0.0); 2];
    let r = params(Requantization::Fixed, &[0.25, 1.0])
        .derive(Activation::Relu, &mut ch)
        .expect("valid");
    // 0.5 * 0.25 / 1 = 0.125 = 0.5 * 2^-2; 0.5 * 1 / 1 = 0.5.
    assert_eq!(
        r.channels,
        [
            ChannelScale::Fixed(fixed(P30, -2)),
            ChannelScale::Fixed(fixed(P30, 0))
        ]
    );
    assert_eq!(
        (r.input_zero_point, r.output_zero_point, r.min, r.max),
        (-10, 3, 3, 127)
    );
    // One weight scale for every channel.
    let r = params(Requantization::Fp32, &[0.25])
        .derive(Activation::None, &mut ch)
        .expect("valid");
    assert_eq!(r.channels, [ChannelScale::Fp32(0.125); 2]);

    let mut ch = [ChannelScale::Fp32(0.0); 2];
    let mut err = |p: QuantParams<'_>| p.derive(Activation::None, &mut ch).unwrap_err();
    let ok = params(Requantization::Fixed, &[0.25, 1.0]);
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let e = err(QuantParams {
            input_scale: bad,
            ..ok
        });
        assert!(matches!(
            e,
            QuantError::Scale {
                what: "input_scale",
                index: None,
                ..
            }
        ));
        let e = err(QuantParams {
            output_scale: bad,
            ..ok
        });
        assert!(matches!(
            e,
            QuantError::Scale {
                what: "output_scale",
                ..
            }
        ));
        let ws = [0.25, bad];
        let e = err(QuantParams {
            weight_scales: &ws,
            ..ok
        });
        assert!(matches!(
            e,
            QuantError::Scale {
                what: "weight_scales",
                index: Some(1),
                ..
            }
        ));
    }
    let e = err(QuantParams {
        input_zero_point: 128,
        ..ok
    });
    assert_eq!(
        e,
        QuantError::ZeroPoint {
            what: "input_zero_point",
            value: 128
        }
    );
    assert_eq!(
        e.to_string(),
        "input_zero_point = 128 is outside the int8 range [-128, 127]"
    );
    let e = err(QuantParams {
        output_zero_point: -129,
        ..ok
    });
    assert_eq!(
        e,
        QuantError::ZeroPoint {
            what: "output_zero_point",
            value: -129
        }
    );
    let e = err(QuantParams {
        weight_scales: &[1.0, 1.0, 1.0],
        ..ok
    });
    assert_eq!(
        e,
        QuantError::WeightScales {
            expected: 2,
            actual: 3
        }
    );
    // 0.5 * 2^-40 / 1 = 2^-41 needs shift -40 in fixed mode; it is fine in fp32.
    let tiny = [0.25, 2f32.powi(-40)];
    let e = err(QuantParams {
        weight_scales: &tiny,
        ..ok
    });
    assert!(matches!(
        e,
        QuantError::Multiplier {
            mode: Requantization::Fixed,
            channel: 1,
            ..
        }
    ));
    assert!(
        e.to_string()
            .starts_with("output channel 1: the multiplier"),
        "{e}"
    );
    let fp32 = QuantParams {
        mode: Requantization::Fp32,
        weight_scales: &tiny,
        ..ok
    };
    assert!(
        fp32.derive(Activation::None, &mut [ChannelScale::Fp32(0.0); 2])
            .is_ok()
    );
    // 1e-30 * 1e-30 underflows to 0 in f32.
    let e = err(QuantParams {
        input_scale: 1e-30,
        weight_scales: &[1e-30],
        ..fp32
    });
    assert!(matches!(
        e,
        QuantError::Multiplier {
            mode: Requantization::Fp32,
            channel: 0,
            ..
        }
    ));
}

fn info(
    channels: [usize; 2],
    groups: usize,
    kernel: usize,
    pad: usize,
    hw: [usize; 2],
) -> LayerInfo {
    LayerInfo {
        name: "q",
        in_channels: channels[0],
        out_channels: channels[1],
        groups,
        kernel: [kernel; 2],
        stride: [1, 1],
        padding: [pad; 2],
        dilation: [1, 1],
        input: hw,
        output: [hw[0] + 2 * pad + 1 - kernel, hw[1] + 2 * pad + 1 - kernel],
        bias: false,
        activation: Activation::None,
        count: 1,
    }
}

#[test]
fn padding_equals_the_input_zero_point() {
    // 1 2 3 / 4 5 6 / 7 8 9, a 3x3 kernel of ones, padding 1, input zero point 1: each
    // output is the neighbourhood sum minus 1 per in-bounds tap (corners 4, edges 6,
    // centre 9): 12 - 4, 21 - 6, 16 - 4 / 27 - 6, 45 - 9, 33 - 6 / 24 - 4, 39 - 6, 28 - 4.
    let l = info([1, 1], 1, 3, 1, [3, 3]);
    let input: Vec<i8> = (1..=9).collect();
    // Multiplier 1: 0.5 * 2 / 1.
    let p = QuantParams {
        mode: Requantization::Fixed,
        input_scale: 0.5,
        input_zero_point: 1,
        output_scale: 1.0,
        output_zero_point: 0,
        weight_scales: &[2.0],
    };
    let mut ch = [ChannelScale::Fp32(0.0)];
    let r = p.derive(Activation::None, &mut ch).expect("valid");
    let mut out = [0i8; 9];
    conv2d(&l, &r, &input, &[1; 9], None, &mut out).expect("lengths");
    assert_eq!(out, [8, 15, 12, 21, 36, 27, 20, 33, 24]);
}

#[test]
fn depthwise_bias_ties_and_modes() {
    // Two channels of 1x3, 1x1 kernel, weights [3, -2], bias [104, -55], input zero point
    // -10, scales 0.5 * [0.25, 1] / 1 = [0.125, 0.5], output zero point 3.
    // Channel 0: x - zp = [20, -10, -40], acc = 104 + 3 * that = [164, 74, -16],
    //   times 0.125 = [20.5, 9.25, -2].
    // Channel 1: x - zp = [15, 17, 0], acc = -55 - 2 * that = [-85, -89, -55],
    //   times 0.5 = [-42.5, -44.5, -27.5].
    let l = info([2, 2], 2, 1, 0, [1, 3]);
    let input = [10, -20, -50, 5, 7, -10];
    let run = |mode, activation| {
        let mut ch = [ChannelScale::Fp32(0.0); 2];
        let r = params(mode, &[0.25, 1.0])
            .derive(activation, &mut ch)
            .expect("valid");
        let mut out = [0i8; 6];
        conv2d(&l, &r, &input, &[3, -2], Some(&[104, -55]), &mut out).expect("lengths");
        out
    };
    // fp32, ties to even: [20, 9, -2] + 3 and [-42, -44, -28] + 3.
    assert_eq!(
        run(Requantization::Fp32, Activation::None),
        [23, 12, 1, -39, -41, -25]
    );
    // fixed: 164 * 0.5 = 82 exactly, then 82 / 4 = 20.5 -> 21 (away from zero); -85 * 0.5
    // = -42.5 -> -42 (the high multiply's ties go up), -27.5 -> -27.
    assert_eq!(
        run(Requantization::Fixed, Activation::None),
        [24, 12, 1, -39, -41, -24]
    );
    // relu: everything below the zero point 3 becomes 3.
    assert_eq!(
        run(Requantization::Fixed, Activation::Relu),
        [24, 12, 3, 3, 3, 3]
    );
}

#[test]
fn wrong_lengths_are_errors() {
    let l = info([2, 2], 2, 1, 0, [1, 3]);
    let mut ch = [ChannelScale::Fp32(0.0); 2];
    let r = params(Requantization::Fp32, &[1.0])
        .derive(Activation::None, &mut ch)
        .expect("valid");
    let mut out = [0i8; 6];
    let len = |buffer, expected, actual| Error::BufferLength {
        buffer,
        expected,
        actual,
    };
    let input = [0i8; 6];
    assert_eq!(
        conv2d(&l, &r, &input[..5], &[1, 1], None, &mut out),
        Err(len("input", 6, 5))
    );
    assert_eq!(
        conv2d(&l, &r, &input, &[1], None, &mut out),
        Err(len("weights", 2, 1))
    );
    assert_eq!(
        conv2d(&l, &r, &input, &[1, 1], Some(&[1]), &mut out),
        Err(len("bias", 2, 1))
    );
    assert_eq!(
        conv2d(&l, &r, &input, &[1, 1], None, &mut out[..5]),
        Err(len("output", 6, 5))
    );
    let short = gspc_runtime::quant::Requant {
        channels: &r.channels[..1],
        ..r
    };
    let e = conv2d(&l, &short, &input, &[1, 1], None, &mut out).unwrap_err();
    assert_eq!(e, len("requantization", 2, 1));
    assert_eq!(e.to_string(), "requantization: expected 2 values, got 1");
}

#[test]
fn the_reduction_limit_keeps_the_sum_in_i32() {
    let worst = MAX_REDUCTION as i64 * 255 * 128;
    assert!(worst <= i32::MAX as i64);
    assert!((MAX_REDUCTION as i64 + 1) * 255 * 128 > i32::MAX as i64);
}

/// gemmlowp's formulation, written independently in i128 and f64: the high multiply with a
/// sign-dependent nudge and truncating division, the shift as an exact f64 division rounded
/// half away from zero.
fn fixed_model(acc: i32, m: FixedMultiplier) -> i64 {
    let left = m.shift.max(0);
    let right = (-m.shift).max(0);
    let x = ((acc as i128) << left).clamp(i32::MIN as i128, i32::MAX as i128);
    let p = x * m.multiplier as i128;
    let nudge: i128 = if p >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    let high = ((p + nudge) / (1i128 << 31)).clamp(i32::MIN as i128, i32::MAX as i128);
    (high as f64 / 2f64.powi(right)).round() as i64
}

/// f32(f32(acc) * scale) computed as an exact f64 product rounded once to f32, then rounded
/// ties-to-even in f64.
fn fp32_model(acc: i32, scale: f32) -> f64 {
    let v = ((acc as f32) as f64 * scale as f64) as f32;
    (v as f64).round_ties_even()
}

#[test]
fn both_modes_match_an_independent_model() {
    let mut rng = Rng::new(13);
    let mut accs: Vec<i32> = vec![
        0,
        1,
        -1,
        2,
        -2,
        i32::MAX,
        i32::MIN,
        i32::MAX - 1,
        i32::MIN + 1,
    ];
    for e in 0..31 {
        for d in [-1, 0, 1] {
            accs.push((1i32 << e).wrapping_add(d));
            accs.push((-(1i64 << e) + d as i64) as i32);
        }
    }
    for _ in 0..2000 {
        let bits = rng.next_u64();
        // Magnitudes spread over every bit length.
        let len = (bits % 32) as u32;
        let v = (bits >> 8) as u32 & ((1u64 << len) - 1) as u32;
        accs.push(if bits & 1 == 0 {
            v as i32
        } else {
            (v as i32).wrapping_neg()
        });
    }
    let mut multipliers: Vec<FixedMultiplier> = Vec::new();
    for shift in MIN_SHIFT..=MAX_SHIFT {
        multipliers.push(fixed(P30, shift));
        multipliers.push(fixed(i32::MAX, shift));
        for _ in 0..4 {
            let m = P30 + (rng.next_u64() % (1 << 30)) as i32;
            multipliers.push(fixed(m, shift));
        }
    }
    let mut checked = 0u64;
    for &m in &multipliers {
        let real = m.to_real();
        let scale = real as f32;
        for &acc in &accs {
            let got = m.apply(acc) as i64;
            assert_eq!(got, fixed_model(acc, m), "fixed {m:?} acc {acc}");
            // Within 1 of the exact product wherever nothing saturates.
            let exact = acc as f64 * real;
            if exact.abs() < 2f64.powi(30) {
                assert!(
                    (got as f64 - exact).abs() <= 1.0,
                    "{m:?} {acc}: {got} vs {exact}"
                );
            }
            for zp in [-128, -1, 0, 77, 127] {
                let model = (fp32_model(acc, scale) + zp as f64).clamp(-128.0, 127.0) as i32;
                assert_eq!(
                    requantize_fp32(acc, scale, zp, -128, 127),
                    model,
                    "fp32 {scale:e} acc {acc} zp {zp}"
                );
                let model = (fixed_model(acc, m) + zp as i64).clamp(-128, 127) as i32;
                assert_eq!(requantize_fixed(acc, m, zp, -128, 127), model);
            }
            checked += 1;
        }
    }
    assert!(checked > 300_000, "{checked}");
}

#[test]
fn channel_scales_compute_the_multiplier_as_the_peers_do() {
    // fixed: in f64 from the f32 scales; fp32: in f32, (input * weight) / output.
    let (i, w, o) = (0.1f32, 0.003f32, 0.07f32);
    let real = i as f64 * w as f64 / o as f64;
    assert_eq!(
        ChannelScale::new(Requantization::Fixed, i, w, o, 0),
        Ok(ChannelScale::Fixed(
            FixedMultiplier::from_real(real).expect("in range")
        ))
    );
    assert_eq!(
        ChannelScale::new(Requantization::Fp32, i, w, o, 0),
        Ok(ChannelScale::Fp32(i * w / o))
    );
}

#[test]
fn extreme_arguments_do_not_panic() {
    let wide = |acc, scale| requantize_fp32(acc, scale, 0, i32::MIN, i32::MAX);
    // (2^23 + 3) / 2 = 4194305.5 (exact in f32, whose step is 0.5 there) -> 4194306 (even);
    // -4194305.5 -> -4194306; (2^24 + 6) / 2 = 2^23 + 3, a whole number already.
    assert_eq!(wide((1 << 23) + 3, 0.5), 4_194_306);
    assert_eq!(wide(-(1 << 23) - 3, 0.5), -4_194_306);
    assert_eq!(wide((1 << 24) + 6, 0.5), (1 << 23) + 3);
    assert_eq!(wide(i32::MAX, 1.0), i32::MAX);
    // Bounds and zero points far outside int8 saturate instead of overflowing.
    assert_eq!(
        requantize_fp32(5, 1.0, i32::MAX, i32::MIN, i32::MAX),
        i32::MAX
    );
    assert_eq!(
        requantize_fixed(5, fixed(P30, 0), i32::MAX, i32::MIN, i32::MAX),
        i32::MAX
    );
    // Hand-set fields outside the ranges from_real makes.
    for shift in [i32::MIN, -40, 31, 40, i32::MAX] {
        let _ = fixed(i32::MAX, shift).apply(i32::MIN);
        let _ = fixed(i32::MAX, shift).to_real();
    }
    // A zero point outside int8 in a hand-made Requant.
    let l = info([1, 1], 1, 1, 0, [1, 2]);
    let ch = [ChannelScale::Fp32(1.0)];
    let r = gspc_runtime::quant::Requant {
        input_zero_point: i32::MIN,
        output_zero_point: 0,
        min: -128,
        max: 127,
        channels: &ch,
    };
    let mut out = [0i8; 2];
    conv2d(&l, &r, &[1, -1], &[127], Some(&[i32::MAX]), &mut out).expect("lengths");
}
