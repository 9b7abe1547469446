//! The reference convolution on cases small enough to compute by hand, and the comparison
//! naming the coordinates of the first mismatch. Every expected value below is worked out
//! in a comment next to it.

use gspc_runtime::reference::{Mismatch, compare, conv2d};
use gspc_runtime::{Activation, Error, LayerInfo};

/// A layer with the given shape; the output size is given by hand so that the test, not
/// the code under test, states it.
#[allow(clippy::too_many_arguments)]
fn info(
    channels: [usize; 2],
    groups: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    input: [usize; 2],
    output: [usize; 2],
) -> LayerInfo {
    LayerInfo {
        name: "t",
        in_channels: channels[0],
        out_channels: channels[1],
        groups,
        kernel,
        stride,
        padding,
        dilation,
        input,
        output,
        bias: false,
        activation: Activation::None,
        count: 1,
    }
}

/// Runs the reference and returns its output.
fn run(info: &LayerInfo, input: &[f32], weights: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let mut out = vec![f32::NAN; info.output_len()];
    conv2d(info, input, weights, bias, &mut out).expect("buffer lengths are right");
    out
}

/// 1 2 3
/// 4 5 6
/// 7 8 9
const NINE: [f32; 9] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];

#[test]
fn ones_kernel_with_padding_gives_neighbourhood_sums() {
    let l = info([1, 1], 1, [3, 3], [1, 1], [1, 1], [1, 1], [3, 3], [3, 3]);
    let out = run(&l, &NINE, &[1.0; 9], None);
    #[rustfmt::skip]
    let want = [
        1.0 + 2.0 + 4.0 + 5.0,             // 12: top-left corner
        1.0 + 2.0 + 3.0 + 4.0 + 5.0 + 6.0, // 21: top edge
        2.0 + 3.0 + 5.0 + 6.0,             // 16
        1.0 + 2.0 + 4.0 + 5.0 + 7.0 + 8.0, // 27: left edge
        45.0,                              // the whole input
        2.0 + 3.0 + 5.0 + 6.0 + 8.0 + 9.0, // 33
        4.0 + 5.0 + 7.0 + 8.0,             // 24
        4.0 + 5.0 + 6.0 + 7.0 + 8.0 + 9.0, // 39
        5.0 + 6.0 + 8.0 + 9.0,             // 28
    ];
    assert_eq!(out, want);
    assert_eq!(want, [12.0, 21.0, 16.0, 27.0, 45.0, 33.0, 24.0, 39.0, 28.0]);
}

#[test]
fn kernel_taps_are_read_row_major_as_oihw() {
    // Only tap (kh, kw) = (0, 1) is set: output(oh, ow) = input(oh - 1, ow), i.e. the
    // image shifted down by one row with zeros entering at the top.
    let mut w = [0.0f32; 9];
    w[1] = 1.0;
    let l = info([1, 1], 1, [3, 3], [1, 1], [1, 1], [1, 1], [3, 3], [3, 3]);
    assert_eq!(
        run(&l, &NINE, &w, None),
        [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    // Tap (kh, kw) = (1, 2): output(oh, ow) = input(oh, ow + 1), shifted left.
    let mut w = [0.0f32; 9];
    w[5] = 1.0;
    assert_eq!(
        run(&l, &NINE, &w, None),
        [2.0, 3.0, 0.0, 5.0, 6.0, 0.0, 8.0, 9.0, 0.0]
    );
}

#[test]
fn stride_two_keeps_every_other_position() {
    // (3 + 2 * 1 - 3) / 2 + 1 = 2: the corners of the neighbourhood sums above.
    let l = info([1, 1], 1, [3, 3], [2, 2], [1, 1], [1, 1], [3, 3], [2, 2]);
    assert_eq!(run(&l, &NINE, &[1.0; 9], None), [12.0, 16.0, 24.0, 28.0]);
    // Stride in one direction only: rows 0 and 2, every column.
    let l = info([1, 1], 1, [3, 3], [2, 1], [1, 1], [1, 1], [3, 3], [2, 3]);
    assert_eq!(
        run(&l, &NINE, &[1.0; 9], None),
        [12.0, 21.0, 16.0, 24.0, 39.0, 28.0]
    );
}

#[test]
fn dilation_two_skips_every_other_input() {
    // 5x5 input, value 5 * row + col; a dilated 3x3 window spans 5x5 and sees rows and
    // columns 0, 2, 4: (0 + 2 + 4) + (10 + 12 + 14) + (20 + 22 + 24) = 108.
    let input: Vec<f32> = (0..25).map(|v| v as f32).collect();
    let l = info([1, 1], 1, [3, 3], [1, 1], [0, 0], [2, 2], [5, 5], [1, 1]);
    assert_eq!(run(&l, &input, &[1.0; 9], None), [108.0]);

    // The 3x3 input with padding 2: output(oh, ow) sums input rows oh - 2, oh, oh + 2 and
    // columns ow - 2, ow, ow + 2 that exist. Corners see rows {0, 2} x cols {0, 2}:
    // 1 + 3 + 7 + 9 = 20; edges see one row or column: 2 + 8 = 10 or 4 + 6 = 10; the
    // centre sees only itself: 5.
    let l = info([1, 1], 1, [3, 3], [1, 1], [2, 2], [2, 2], [3, 3], [3, 3]);
    assert_eq!(
        run(&l, &NINE, &[1.0; 9], None),
        [20.0, 10.0, 20.0, 10.0, 5.0, 10.0, 20.0, 10.0, 20.0]
    );
}

#[test]
fn each_group_sees_only_its_own_channels() {
    // 4 -> 4 channels in 2 groups, 1x1 kernel, 1x1 input: group 0 is channels 0, 1 (in
    // and out), group 1 is channels 2, 3. Weights are [out][in / groups] = [4][2].
    let l = info([4, 4], 2, [1, 1], [1, 1], [0, 0], [1, 1], [1, 1], [1, 1]);
    let input = [1.0, 2.0, 3.0, 4.0];
    #[rustfmt::skip]
    let weights = [
        1.0, 10.0,     // out 0 <- in 0, 1
        100.0, 1000.0, // out 1 <- in 0, 1
        1.0, 10.0,     // out 2 <- in 2, 3
        100.0, 1000.0, // out 3 <- in 2, 3
    ];
    assert_eq!(
        run(&l, &input, &weights, None),
        [
            1.0 + 10.0 * 2.0,           // 21
            100.0 + 1000.0 * 2.0,       // 2100
            3.0 + 10.0 * 4.0,           // 43
            100.0 * 3.0 + 1000.0 * 4.0, // 4300
        ]
    );
}

#[test]
fn depthwise_sums_each_channel_alone() {
    // 2 channels, groups = 2, ones 3x3 kernel, padding 1, 2x2 input: every output of a
    // channel sees the whole 2x2 plane of that channel only.
    let l = info([2, 2], 2, [3, 3], [1, 1], [1, 1], [1, 1], [2, 2], [2, 2]);
    let input = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
    assert_eq!(
        run(&l, &input, &[1.0; 18], None),
        [10.0, 10.0, 10.0, 10.0, 100.0, 100.0, 100.0, 100.0]
    );
}

#[test]
fn bias_then_activation() {
    // 1 -> 2 channels, 1x1 kernel with weights [1, 2], bias [1, -10], input row
    // [-2, 0.5, 3, 10]. Before the activation:
    //   channel 0: x + 1        = [-1, 1.5, 4, 11]
    //   channel 1: 2 x - 10     = [-14, -9, -4, 10]
    let mut l = info([1, 2], 1, [1, 1], [1, 1], [0, 0], [1, 1], [1, 4], [1, 4]);
    l.bias = true;
    let input = [-2.0, 0.5, 3.0, 10.0];
    let (w, b) = ([1.0, 2.0], [1.0, -10.0]);

    l.activation = Activation::None;
    assert_eq!(
        run(&l, &input, &w, Some(&b)),
        [-1.0, 1.5, 4.0, 11.0, -14.0, -9.0, -4.0, 10.0]
    );
    l.activation = Activation::Relu;
    assert_eq!(
        run(&l, &input, &w, Some(&b)),
        [0.0, 1.5, 4.0, 11.0, 0.0, 0.0, 0.0, 10.0]
    );
    l.activation = Activation::Relu6;
    assert_eq!(
        run(&l, &input, &w, Some(&b)),
        [0.0, 1.5, 4.0, 6.0, 0.0, 0.0, 0.0, 6.0]
    );
    // Without a bias the activation applies to the bare sum.
    assert_eq!(
        run(&l, &input, &w, None),
        [0.0, 0.5, 3.0, 6.0, 0.0, 1.0, 6.0, 6.0]
    );
}

#[test]
fn a_wrong_buffer_length_names_the_buffer() {
    let mut l = info([1, 1], 1, [3, 3], [1, 1], [1, 1], [1, 1], [3, 3], [3, 3]);
    l.bias = true;
    let mut out = [0.0f32; 9];
    let len_error = |buffer, expected, actual| Error::BufferLength {
        buffer,
        expected,
        actual,
    };

    let e = conv2d(&l, &NINE[..8], &[1.0; 9], None, &mut out).unwrap_err();
    assert_eq!(e, len_error("input", 9, 8));
    assert_eq!(e.to_string(), "input: expected 9 values, got 8");

    let e = conv2d(&l, &NINE, &[1.0; 10], None, &mut out).unwrap_err();
    assert_eq!(e, len_error("weights", 9, 10));

    let e = conv2d(&l, &NINE, &[1.0; 9], None, &mut out[..4]).unwrap_err();
    assert_eq!(e, len_error("output", 9, 4));

    let e = conv2d(&l, &NINE, &[1.0; 9], Some(&[1.0, 2.0]), &mut out).unwrap_err();
    assert_eq!(e, len_error("bias", 1, 2));
    assert_eq!(e.to_string(), "bias: expected 1 values, got 2");

    // Nothing was written on any of these errors.
    assert_eq!(out, [0.0; 9]);
}

/// 4 output channels in 2 groups (2 per group), output 3x5: 60 values.
fn compare_layer() -> LayerInfo {
    info([4, 4], 2, [3, 3], [1, 1], [1, 1], [1, 1], [3, 5], [3, 5])
}

/// Flat NCHW index of output `(g, oc, oh, ow)` of [`compare_layer`].
fn at(g: usize, oc: usize, oh: usize, ow: usize) -> usize {
    ((g * 2 + oc) * 3 + oh) * 5 + ow
}

#[test]
fn compare_accepts_equal_and_nearly_equal_outputs() {
    let l = compare_layer();
    let expected: Vec<f32> = (0..60).map(|i| i as f32 * 0.25 - 3.0).collect();
    assert_eq!(compare(&l, &expected, &expected), Ok(()));
    // Well inside the tolerance: 1e-5 * (1 + sqrt(2 * 3 * 3)) = 5.2e-5 for |x| <= 1.
    let mut actual = expected.clone();
    actual[at(0, 1, 1, 2)] += 1e-6;
    assert_eq!(compare(&l, &expected, &actual), Ok(()));
}

#[test]
fn compare_names_the_first_mismatch_and_counts_them_all() {
    let l = compare_layer();
    let expected: Vec<f32> = (0..60).map(|i| i as f32).collect();
    let mut actual = expected.clone();
    // (g, oc, oh, ow) = (1, 0, 2, 3): output channel 2, row 2, column 3 = index 43.
    assert_eq!(at(1, 0, 2, 3), 43);
    actual[43] = 1000.0;
    actual[at(1, 1, 0, 0)] = -1.0;
    let m: Mismatch = compare(&l, &expected, &actual).unwrap_err();
    assert_eq!(
        (m.g, m.oc, m.oh, m.ow, m.expected, m.actual, m.count),
        (1, 0, 2, 3, 43.0, 1000.0, 2)
    );
    assert!(m.tolerance > 0.0 && m.tolerance < 1e-2, "{m}");
    assert!(
        m.to_string()
            .starts_with("(g, oc, oh, ow) = (1, 0, 2, 3): expected 43 got 1000 (tolerance "),
        "{m}"
    );
    assert!(
        m.to_string().ends_with("); 2 values out of tolerance"),
        "{m}"
    );

    // A mismatch in group 0 comes first.
    actual[at(0, 1, 1, 4)] = 0.5;
    let m = compare(&l, &expected, &actual).unwrap_err();
    assert_eq!((m.g, m.oc, m.oh, m.ow, m.count), (0, 1, 1, 4, 3));
}

#[test]
fn nan_is_always_a_mismatch() {
    let l = compare_layer();
    let expected = vec![1.0f32; 60];
    let mut actual = expected.clone();
    actual[at(1, 1, 2, 4)] = f32::NAN;
    let m = compare(&l, &expected, &actual).unwrap_err();
    assert_eq!((m.g, m.oc, m.oh, m.ow, m.count), (1, 1, 2, 4, 1));
    assert!(m.actual.is_nan());

    // NaN on both sides does not match either, nor does an infinity compared to itself.
    let mut expected = expected;
    expected[at(0, 0, 0, 1)] = f32::NAN;
    actual[at(0, 0, 0, 1)] = f32::NAN;
    let m = compare(&l, &expected, &actual).unwrap_err();
    assert_eq!((m.g, m.oc, m.oh, m.ow, m.count), (0, 0, 0, 1, 2));
    let inf = vec![f32::INFINITY; 60];
    assert_eq!(compare(&l, &inf, &inf).unwrap_err().count, 60);

    // An output left entirely NaN (a kernel that wrote nothing) fails on every value.
    let nan = vec![f32::NAN; 60];
    assert_eq!(compare(&l, &vec![0.0; 60], &nan).unwrap_err().count, 60);
}

#[test]
fn compare_reports_a_length_mismatch() {
    let l = compare_layer();
    let expected = vec![0.0f32; 60];
    let m = compare(&l, &expected, &expected[..59]).unwrap_err();
    assert_eq!(m.lengths, Some((60, 59)));
}

#[test]
fn a_length_mismatch_says_so() {
    let l = compare_layer();
    let expected = vec![0.0f32; 60];
    let m = compare(&l, &expected, &expected[..59]).unwrap_err();
    let shown = m.to_string();
    assert!(
        shown.contains("length") && shown.contains("60") && shown.contains("59"),
        "{shown}"
    );
}
