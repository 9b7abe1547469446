//! Kind [`Kind::Dwc`]: strategy `gspc-dwc` (depthwise, channels on the vector axis).
//!
//! For depthwise layers (one input and one output channel per group) whose channel count
//! is a multiple of 16: blocks of 16 channels are packed per call as pixels of 16
//! channels without padding, `[H * W][16]` (in-register transposes over the plane as one
//! row), weights as `[C / 16][KH][KW][16]`, then the bias. A tile is `reg_n` output pixels
//! of one row, one vector of 16 channels per pixel; it loops over the kernel rows inside
//! the input (runs of output rows that read the same ones: [`row_runs`]) and, per
//! kernel row, loads the row's weight vectors and each input pixel once, with one FMA per
//! tap inside the input row ([`col_tiles`]): taps over the padding are left out at
//! generation time. No lane is wasted on narrow rows and strides need no phase split. The
//! tile writes `[OH * OW][16]` into the scratch, transposed back to 16 NCHW planes once
//! per block.

use super::{ColumnTiles, DWC_BLOCK, Kind, LayerPlan, Pin, Strategy, VariantPlan};
use crate::spec::LayerSpec;
use gspc_runtime::Isa;

/// The tile of a `gspc-dwc` variant: `lanes`-wide vectors, `16 / lanes` per pixel,
/// `reg_n` pixels per tile.
pub(super) fn plan(layer: &LayerSpec, isa: Isa, scalar: bool, pin: &Pin) -> VariantPlan {
    let (lanes, regs): (usize, usize) = match isa {
        Isa::Avx512 => (16, 32),
        Isa::Avx2 => (8, 16),
        Isa::Neon => (4, 32),
        Isa::Portable if scalar => (DWC_BLOCK, 32),
        Isa::Portable => (DWC_BLOCK, 16),
    };
    let nvec = DWC_BLOCK / lanes;
    // Registers one pixel's accumulators take (portable arrays: 4-lane registers, or
    // scalar ones on an FPU without vectors).
    let per_pixel = match isa {
        Isa::Portable if scalar => DWC_BLOCK,
        Isa::Portable => DWC_BLOCK / 4,
        _ => nvec,
    };
    let budget = (regs.saturating_sub(nvec + 2) / per_pixel)
        .min(pin.max_accumulators() / per_pixel)
        .max(1);
    let tiles = ColumnTiles {
        layer,
        isa,
        lanes,
        nvec,
        budget,
        per_column: per_pixel,
        compact: pin.compact,
        strategy: Strategy::GspcDwc,
        kind: Kind::Dwc,
    }
    .plan();
    if isa == Isa::Avx512 && !pin.compact && pairs_apply(layer) {
        VariantPlan {
            kind: Kind::DwcPairs,
            ..tiles
        }
    } else {
        tiles
    }
}

/// Whether the AVX-512 variant of a `gspc-dwc` layer runs [`Kind::DwcPairs`]: two output
/// rows of one channel in a 16-lane vector (lanes 0-7 and 8-15), read in place from the
/// NCHW input, each tap one two-source permute of the two input rows the pair reads. For
/// 3x3 kernels at stride 2 with rows of at most 8 output columns, dilation 1, an input row
/// and its left padding within one vector (`W + PW <= 16`: one masked load a row, every
/// tap's lane in it) and at most 32 input rows (16 row pairs, unrolled). It needs no
/// transposes and no scratch. Measured on Zen 4 against `gspc-dwc`'s AVX-512 variant,
/// 5 interleaved rounds (docs/depthwise.md, "Stride 2 on narrow rows"): MobileNetV1's
/// `dw12` (14x14 -> 7x7) 0.81x the time at 1 thread and 0.64x at 2, and out of the slow
/// mode the transposing kernel falls into from one process to the next; the 5x5 layers of
/// the same shape took 1.46-1.56x the time in a first build that let them in (a permute
/// for each of 25 taps against transposes shared by them), so 3x3 only.
pub(crate) fn pairs_apply(layer: &LayerSpec) -> bool {
    layer.in_per_group() == 1
        && layer.out_per_group() == 1
        && layer.kernel == [3, 3]
        && layer.stride == [2, 2]
        && layer.dilation == [1, 1]
        && layer.output()[1] <= 8
        && layer.input[1] + layer.padding[1] <= 16
        && layer.input[0] <= 32
}

/// The input row that kernel row `kh` of output row `r` reads in a [`Kind::DwcPairs`]
/// variant (stride 2): `2r + kh - PH`, `None` over the top or bottom padding.
pub(crate) fn pair_input_row(l: &LayerSpec, r: usize, kh: usize) -> Option<usize> {
    (2 * r + kh)
        .checked_sub(l.padding[0])
        .filter(|&ih| ih < l.input[0])
}

/// The lanes of the taps of kernel column `kw` of a row pair that read the input (bit `j`
/// and `8 + j` for output column `j`): columns `2j + kw - PW` inside the row.
pub(crate) fn pair_mask(l: &LayerSpec, kw: usize) -> u16 {
    let ow = l.output()[1];
    let mut m = 0u16;
    for j in 0..ow.min(8) {
        let col = (2 * j + kw) as isize - l.padding[1] as isize;
        if col >= 0 && (col as usize) < l.input[1] {
            m |= (1 << j) | (1 << (8 + j));
        }
    }
    m
}

/// Bounds of a [`Kind::DwcPairs`] variant: the rule holds (every tap lane inside the two
/// input-row vectors), the weights and bias inside the packed weights.
pub(super) fn pairs_check_bounds(p: &LayerPlan, v: &VariantPlan) -> Vec<String> {
    let l = &p.layer;
    let mut problems = Vec::new();
    if !pairs_apply(l) {
        problems.push(format!("{}: two rows a vector do not apply", v.isa));
    }
    for kw in 0..l.kernel[1] {
        let m = pair_mask(l, kw);
        if (0..8).any(|j| m >> j & 1 == 1 && 2 * j + kw >= 16) {
            problems.push(format!("{}: kernel column {kw} reads past a vector", v.isa));
        }
    }
    let taps = l.kernel[0] * l.kernel[1];
    if p.units() * taps * DWC_BLOCK > p.bias_offset || p.bias_offset + l.out_channels > p.packed_len
    {
        problems.push(format!(
            "{}: weights or bias past the packed weights",
            v.isa
        ));
    }
    problems
}

/// Generated lines of a [`Kind::DwcPairs`] variant, estimated: per row pair and tap a
/// permute and an FMA, per input row a load, per output row a store, per tap a weight.
pub(super) fn pairs_estimated_lines(p: &LayerPlan, per: usize) -> usize {
    let l = &p.layer;
    let taps = l.kernel[0] * l.kernel[1];
    let pairs = p.output[0].div_ceil(2);
    per * (2 * pairs * taps + l.input[0] + p.output[0] + taps) * 2 + 200
}

/// One column tile of a `gspc-dwc` row: its pixels and the taps of each that read the
/// input (taps over the left and right zero padding are left out at generation time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ColTile {
    /// First output column.
    pub ow0: usize,
    /// What the tile computes, relative to `ow0` (shared by tiles that compute alike).
    pub shape: ColShape,
}

/// What a `gspc-dwc` column tile computes, relative to its first column.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ColShape {
    /// Output pixels.
    pub pixels: usize,
    /// Input column of the tile's first loaded pixel, relative to `ow0 * SW - PW` (the
    /// input column of the first pixel's tap 0); may be positive only.
    pub first: usize,
    /// Input pixels from `first` to the last one read.
    pub span: usize,
    /// `(pixel, kernel column, input column relative to first)` of every tap inside the
    /// input row.
    pub taps: Vec<(usize, usize, usize)>,
}

/// The column tiles of a `gspc-dwc` variant: full tiles of `reg_n` pixels, then the tail.
pub(crate) fn col_tiles(l: &LayerSpec, v: &VariantPlan) -> Vec<ColTile> {
    let w = l.input[1] as isize;
    let (sw, pw, dw) = (
        l.stride[1] as isize,
        l.padding[1] as isize,
        l.dilation[1] as isize,
    );
    let mut starts: Vec<(usize, usize)> =
        (0..v.full_tiles).map(|t| (t * v.reg_n, v.reg_n)).collect();
    if v.tail > 0 {
        starts.push((v.last_start, v.tail));
    }
    starts
        .into_iter()
        .map(|(ow0, pixels)| {
            let mut abs = Vec::new();
            for j in 0..pixels {
                for kw in 0..l.kernel[1] {
                    let iw = (ow0 + j) as isize * sw - pw + kw as isize * dw;
                    if (0..w).contains(&iw) {
                        abs.push((j, kw, iw));
                    }
                }
            }
            let base = ow0 as isize * sw - pw;
            let lo = abs.iter().map(|t| t.2).min().unwrap_or(base.max(0));
            let hi = abs.iter().map(|t| t.2 + 1).max().unwrap_or(lo);
            ColTile {
                ow0,
                shape: ColShape {
                    pixels,
                    first: (lo - base) as usize,
                    span: (hi - lo) as usize,
                    taps: abs
                        .iter()
                        .map(|&(j, kw, iw)| (j, kw, (iw - lo) as usize))
                        .collect(),
                },
            }
        })
        .collect()
}

/// Runs of output rows of a `gspc-dwc` layer that read the same kernel rows:
/// `(first row, end row, first kernel row, end kernel row)`; kernel rows over the top and
/// bottom zero padding are left out (rows over the padding only read none).
pub(crate) fn row_runs(l: &LayerSpec) -> Vec<(usize, usize, usize, usize)> {
    let h = l.input[0] as isize;
    let (sh, ph, dh) = (
        l.stride[0] as isize,
        l.padding[0] as isize,
        l.dilation[0] as isize,
    );
    let mut runs: Vec<(usize, usize, usize, usize)> = Vec::new();
    for oh in 0..l.output()[0] {
        let inside: Vec<usize> = (0..l.kernel[0])
            .filter(|&kh| (0..h).contains(&(oh as isize * sh - ph + kh as isize * dh)))
            .collect();
        let (k0, k1) = match (inside.first(), inside.last()) {
            (Some(&a), Some(&b)) => (a, b + 1),
            _ => (0, 0),
        };
        match runs.last_mut() {
            Some(r) if r.1 == oh && r.2 == k0 && r.3 == k1 => r.1 = oh + 1,
            _ => runs.push((oh, oh + 1, k0, k1)),
        }
    }
    runs
}

/// Input window of a `gspc-dwc` tile (one input row of it), in values.
pub(crate) fn input_span(shape: &ColShape) -> usize {
    shape.span.max(1) * DWC_BLOCK
}

/// Values of the packed input of one `gspc-dwc` block, `[H][W][16]` without padding (the
/// rest of the scratch holds its output pixels).
pub(crate) fn input_len(p: &LayerPlan) -> usize {
    p.layer.input[0] * p.layer.input[1] * DWC_BLOCK
}

/// Bounds of the `gspc-dwc` layout: the weights before the bias, the packed input and the
/// output pixels inside the scratch, each row run's kernel rows inside the input.
pub(super) fn check_layout(p: &LayerPlan) -> Vec<String> {
    let l = &p.layer;
    let [oh, ow] = p.output;
    let h = l.input[0];
    let taps = l.kernel[0] * l.kernel[1];
    let mut problems = Vec::new();
    if p.units() * taps * DWC_BLOCK > p.bias_offset {
        problems.push("weights window past the bias offset".to_string());
    }
    let (xlen, olen) = (input_len(p), oh * ow * DWC_BLOCK);
    if xlen + olen > p.scratch_len {
        problems.push(format!("scratch {} < {xlen} + {olen}", p.scratch_len));
    }
    let runs = row_runs(l);
    for &(a, b, k0, k1) in &runs {
        for r in [a, b - 1] {
            for kh in k0..k1 {
                let ih = (r * l.stride[0] + kh * l.dilation[0]).checked_sub(l.padding[0]);
                if ih.is_none_or(|ih| ih >= h) {
                    problems.push(format!(
                        "output row {r}, kernel row {kh}: outside the input"
                    ));
                }
            }
        }
    }
    problems
}

/// Bounds of a `gspc-dwc` variant: every column tile's input pixels inside the row and the
/// packed input, its output pixels inside the scratch.
pub(super) fn check_bounds(p: &LayerPlan, v: &VariantPlan) -> Vec<String> {
    let l = &p.layer;
    let [oh, ow] = p.output;
    let [h, w] = l.input;
    let (xlen, olen) = (input_len(p), oh * ow * DWC_BLOCK);
    let mut problems = Vec::new();
    let tiles = col_tiles(l, v);
    if tiles.is_empty() {
        problems.push(format!("{}: no tiles", v.isa));
    }
    for t in &tiles {
        let first = (t.ow0 * l.stride[1] + t.shape.first).checked_sub(l.padding[1]);
        let Some(first) = first else {
            if !t.shape.taps.is_empty() {
                problems.push(format!(
                    "{}: tile at {} starts left of the row",
                    v.isa, t.ow0
                ));
            }
            continue;
        };
        if !t.shape.taps.is_empty() && first + t.shape.span > w {
            problems.push(format!(
                "{}: tile at {} ends right of the row",
                v.isa, t.ow0
            ));
        }
        // The last input row any tile reads.
        let x_last = ((h - 1) * w + first) * DWC_BLOCK + input_span(&t.shape);
        if !t.shape.taps.is_empty() && x_last > xlen {
            problems.push(format!("{}: input window ends at {x_last} > {xlen}", v.isa));
        }
        let o_last = ((oh - 1) * ow + t.ow0 + t.shape.pixels) * DWC_BLOCK;
        if o_last > olen {
            problems.push(format!(
                "{}: output window ends at {o_last} > {olen}",
                v.isa
            ));
        }
    }
    problems
}

/// Generated lines of a variant, estimated: one tile function per column shape, its kernel
/// rows in a loop: per kernel column the weight vectors, per tap inside the row a load and
/// an FMA per vector; per pixel and vector a store.
pub(super) fn estimated_lines(p: &LayerPlan, v: &VariantPlan, per: usize) -> usize {
    let l = &p.layer;
    let kw = l.kernel[1];
    let mut shapes: Vec<ColShape> = Vec::new();
    for t in col_tiles(l, v) {
        if !shapes.contains(&t.shape) {
            shapes.push(t.shape);
        }
    }
    let calls = row_runs(l).len() * (shapes.len() + 2);
    shapes
        .iter()
        .map(|s| per * ((kw + 2 * s.taps.len() + 2 * s.pixels) * v.nvec) + 50)
        .sum::<usize>()
        + 3 * calls
        + 80
}
