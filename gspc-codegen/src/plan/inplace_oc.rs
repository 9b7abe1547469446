//! Kind [`Kind::InPlaceOc`]: `gspc-oc`'s tiles reading the NCHW input in place, without
//! packing it.
//!
//! `gspc-oc` packs each group's input into zero-padded planes before its tiles run; on
//! small planes and at stride 2 that copy took 4-20% of a layer's time on Zen 5, and it is
//! the part that gains least from a second thread (docs/benchmarks/2026-12-06-zen5.md,
//! "What the packing costs"). This kind computes the same tiles (the same `reg_n`, weights
//! and accumulators) straight from the input: a tile's taps over the zero padding are left
//! out at generation time, so each tile function is specialized to its output rows' class
//! (which kernel rows fall inside the input, [`row_classes`]) and to its column position
//! (which of its taps fall inside the row, [`TilePos`]).
//!
//! Where: the AVX-512 variant of a `gspc-oc` layer with one group per vector (`gpv` 1,
//! whose layers' other variants keep the packed kernel), not compact, with at most
//! [`MAX_POSITIONS`] tiles per row and [`MAX_ROW_CLASSES`] row classes, so that its tile
//! functions are at most 6 (the packed kernel has 1 to 4).

use super::{Kind, LayerPlan, VariantPlan};
use crate::spec::LayerSpec;
use gspc_runtime::Isa;

/// Tile positions in a row, at most.
pub(crate) const MAX_POSITIONS: usize = 2;

/// Row classes, at most.
pub(crate) const MAX_ROW_CLASSES: usize = 3;

/// Bytes of the weights of one output-channel block (`C/G x KH x KW x oc_bn` values), at
/// most, where AVX-512 runs at full rate. Fitted by `gspc-codegen tune` on Zen 5
/// (docs/benchmarks/2026-12-06-zen5-tuning.md): the in-place kernel wins on every
/// `gspc-oc` layer of `layer-specs/` up to 147 KiB per block (the packed input's copy took
/// 4-30% of their time), and loses on the three larger ones, ResNet-34's dense 7x7 layers
/// with 256 and 512 input channels (295 and 590 KiB: 1.10x, 1.16x and 1.01x the packed
/// kernel's time), whose weights no longer fit the 1 MiB L2 beside the input. Where
/// AVX-512 runs at half rate the in-place kernel wins on those too ([`at_half_rate`]).
pub(crate) const MAX_BLOCK_WEIGHT_BYTES: usize = 256 * 1024;

/// Output rows whose kernel rows inside the input are the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RowClass {
    /// First output row.
    pub start: usize,
    /// One past the last output row.
    pub end: usize,
    /// The kernel rows that fall inside the input for each of these output rows.
    pub kh: Vec<usize>,
}

/// The output rows of a layer grouped into runs of equal [`RowClass::kh`].
pub(crate) fn row_classes(layer: &LayerSpec) -> Vec<RowClass> {
    let oh = layer.output()[0];
    let h = layer.input[0] as isize;
    let (sh, ph, dh) = (
        layer.stride[0] as isize,
        layer.padding[0] as isize,
        layer.dilation[0] as isize,
    );
    let mut classes: Vec<RowClass> = Vec::new();
    for row in 0..oh {
        let kh: Vec<usize> = (0..layer.kernel[0])
            .filter(|&k| (0..h).contains(&(row as isize * sh - ph + k as isize * dh)))
            .collect();
        match classes.last_mut() {
            Some(c) if c.kh == kh => c.end = row + 1,
            _ => classes.push(RowClass {
                start: row,
                end: row + 1,
                kh,
            }),
        }
    }
    classes
}

/// One tile of a row: its first output column and its column count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TilePos {
    /// First output column.
    pub ow0: usize,
    /// Output columns.
    pub cols: usize,
}

/// The tiles of a row, left to right.
pub(crate) fn positions(v: &VariantPlan) -> Vec<TilePos> {
    let mut p: Vec<TilePos> = (0..v.full_tiles)
        .map(|t| TilePos {
            ow0: t * v.reg_n,
            cols: v.reg_n,
        })
        .collect();
    if v.tail > 0 {
        p.push(TilePos {
            ow0: v.last_start,
            cols: v.tail,
        });
    }
    p
}

/// One tap of a tile: kernel row and column, output column within the tile, and the
/// input offset relative to the tile's first input value (`xb`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tap {
    pub kh: usize,
    pub kw: usize,
    pub col: usize,
    pub at: usize,
}

/// The taps of a tile of row class `class` at `pos` that fall inside the input, with
/// `min`: the offset of the tile's first input value from `oh * SH * W` (its row's first
/// value), possibly negative (kernel rows above the output row), and the span of values
/// the taps read from there.
pub(crate) struct TileTaps {
    pub taps: Vec<Tap>,
    pub min: isize,
    pub span: usize,
}

/// [`TileTaps`] of a tile.
pub(crate) fn tile_taps(layer: &LayerSpec, class: &RowClass, pos: TilePos) -> TileTaps {
    let w = layer.input[1] as isize;
    let (sw, pw, dw, dh, ph) = (
        layer.stride[1] as isize,
        layer.padding[1] as isize,
        layer.dilation[1] as isize,
        layer.dilation[0] as isize,
        layer.padding[0] as isize,
    );
    let mut raw = Vec::new();
    for &kh in &class.kh {
        for kw in 0..layer.kernel[1] {
            for col in 0..pos.cols {
                let iw = (pos.ow0 + col) as isize * sw - pw + kw as isize * dw;
                if (0..w).contains(&iw) {
                    raw.push((kh, kw, col, (kh as isize * dh - ph) * w + iw));
                }
            }
        }
    }
    let min = raw.iter().map(|t| t.3).min().unwrap_or(0);
    let max = raw.iter().map(|t| t.3).max().unwrap_or(0);
    TileTaps {
        taps: raw
            .into_iter()
            .map(|(kh, kw, col, at)| Tap {
                kh,
                kw,
                col,
                at: (at - min) as usize,
            })
            .collect(),
        min,
        span: (max - min + 1) as usize,
    }
}

/// Whether the AVX-512 `gspc-oc` variant `v` of `layer` reads its input in place (see the
/// module docs).
pub(crate) fn applies(layer: &LayerSpec, v: &VariantPlan, gpv: usize, compact: bool) -> bool {
    fits(layer, v, gpv, compact) && block_weight_bytes(layer, v) <= MAX_BLOCK_WEIGHT_BYTES
}

/// Whether the AVX-512 `gspc-oc` variant `v` of `layer`, which packs its input because its
/// weight blocks pass [`MAX_BLOCK_WEIGHT_BYTES`], reads the input in place instead where
/// AVX-512 runs at half rate (`gspc_runtime::x86::avx512_full_rate` false: Zen 4). There
/// the FMAs take twice as long, and the weights streamed from L2 and beyond keep up:
/// measured on Zen 4 (docs/benchmarks/2026-12-07-zen4-dense.md), the in-place kernel took
/// 0.82-0.91x the packed kernel's time on all three layers the limit refuses, ResNet-34's
/// dense 7x7 layers of 295 and 590 KiB per block, at 1 and 2 threads. Both kernels read
/// the same packed weights, so the choice is made at run time, by the AVX-512 variant's
/// `run_units`.
pub(crate) fn at_half_rate(layer: &LayerSpec, v: &VariantPlan, gpv: usize, compact: bool) -> bool {
    fits(layer, v, gpv, compact) && block_weight_bytes(layer, v) > MAX_BLOCK_WEIGHT_BYTES
}

/// The shape conditions of the in-place kernel (see the module docs), without the weight
/// limit.
fn fits(layer: &LayerSpec, v: &VariantPlan, gpv: usize, compact: bool) -> bool {
    v.isa == Isa::Avx512
        && v.kind == Kind::PackedOc
        && v.lanes == 16
        && gpv == 1
        && !compact
        && v.rows == 1
        && positions(v).len() <= MAX_POSITIONS
        && row_classes(layer).len() <= MAX_ROW_CLASSES
}

/// Bytes of the weights of one output-channel block of variant `v`.
fn block_weight_bytes(layer: &LayerSpec, v: &VariantPlan) -> usize {
    layer.in_per_group() * layer.kernel[0] * layer.kernel[1] * v.nvec * v.lanes * 4
}

/// Generated lines of the variant, estimated: per tile function (row class x position)
/// its weight loads, FMAs and transposed stores.
pub(super) fn estimated_lines(p: &LayerPlan, v: &VariantPlan, per: usize) -> usize {
    let l = &p.layer;
    let mut lines = 80;
    for class in row_classes(l) {
        for pos in positions(v) {
            let taps = tile_taps(l, &class, pos).taps.len();
            let loads = class.kh.len() * l.kernel[1] * v.nvec;
            lines += per * (taps * v.nvec + loads + 2 * pos.cols * v.nvec) + 40;
        }
    }
    lines
}

/// Bounds of the in-place kernel: every tile's window of `span` values from
/// `(g * CPG + ci) * H * W + oh * SH * W + min` lies inside its channel's plane for every
/// output row of its class (the taps themselves are inside by construction).
pub(super) fn check_bounds(p: &LayerPlan, v: &VariantPlan) -> Vec<String> {
    let l = &p.layer;
    let [h, w] = l.input;
    let plane = (h * w) as isize;
    let step = (l.stride[0] * w) as isize;
    let mut problems = Vec::new();
    for class in row_classes(l) {
        for pos in positions(v) {
            let t = tile_taps(l, &class, pos);
            if t.taps.is_empty() {
                continue;
            }
            let first = class.start as isize * step + t.min;
            let last = (class.end - 1) as isize * step + t.min + t.span as isize;
            if first < 0 || last > plane {
                problems.push(format!(
                    "{}: in-place tile at rows {}..{} column {} reads {first}..{last} of a plane of {plane}",
                    v.isa, class.start, class.end, pos.ow0
                ));
            }
        }
    }
    let ow = p.output[1];
    if positions(v).iter().any(|q| q.ow0 + q.cols > ow) {
        problems.push(format!("{}: in-place tile past the row", v.isa));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(hw: usize, stride: usize, pad: usize) -> LayerSpec {
        LayerSpec {
            name: "l".into(),
            in_channels: 32,
            out_channels: 64,
            groups: 2,
            kernel: [3, 3],
            stride: [stride, stride],
            padding: [pad, pad],
            dilation: [1, 1],
            input: [hw, hw],
            bias: false,
            activation: gspc_runtime::Activation::None,
            count: 1,
            strategy: None,
            oc_block: None,
            compact: None,
            direct: None,
            accumulators: None,
            quantization: None,
        }
    }

    #[test]
    fn rows_are_classed_by_the_kernel_rows_inside_the_input() {
        // 3x3, stride 2, padding 1 on 14 rows: row 0 misses kernel row 0, the rest see all.
        let c = row_classes(&layer(14, 2, 1));
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].start, c[0].end, c[0].kh.clone()), (0, 1, vec![1, 2]));
        assert_eq!(
            (c[1].start, c[1].end, c[1].kh.clone()),
            (1, 7, vec![0, 1, 2])
        );
        // Stride 1: the last row misses kernel row 2 too.
        let c = row_classes(&layer(7, 1, 1));
        assert_eq!(c.len(), 3);
        assert_eq!(c[2].kh, vec![0, 1]);
        // No padding: one class.
        assert_eq!(row_classes(&layer(9, 1, 0)).len(), 1);
    }

    /// The edge cases the kernel tests run for this kind (tests/specs/edge_cases_inplace.json)
    /// cover every form its tiles take.
    #[test]
    fn the_edge_case_spec_covers_every_form() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/specs/edge_cases_inplace.json"
        );
        let spec = crate::read_specs(&[path]).unwrap().remove(0);
        let x86 = crate::Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
        let isas = [Isa::Portable, Isa::Avx2, Isa::Avx512];
        let mut seen = std::collections::BTreeSet::new();
        for l in &spec.layers {
            let p = super::super::plan_layer(l, &x86, &isas).unwrap();
            let Some(v) = p.variants.iter().find(|v| v.kind == Kind::InPlaceOc) else {
                continue;
            };
            let classes = row_classes(l);
            let pos = positions(v);
            let mut note = |what: &'static str, yes: bool| {
                if yes {
                    seen.insert(what);
                }
            };
            note("groups", l.groups > 1);
            note("several blocks per group", p.nocb() > 1);
            note("one input channel per group", p.cpg() == 1);
            note("two vectors per column", v.nvec == 2);
            note("three row classes", classes.len() == 3);
            note("two tile positions", pos.len() == 2);
            note("more than 16 columns", pos.iter().any(|q| q.cols > 16));
            note("stride 2", l.stride == [2, 2]);
            note("stride 3", l.stride[0] == 3);
            note("dilation", l.dilation[0] > 1);
            note("no padding", l.padding == [0, 0]);
            note("padding on one axis", l.padding[0] == 0 && l.padding[1] > 0);
            note(
                "bias and activation",
                l.bias && l.activation != gspc_runtime::Activation::None,
            );
            for c in &classes {
                for q in &pos {
                    let t = tile_taps(l, c, *q);
                    note("tile starting rows above", t.min < 0);
                    note("rows of padding only", t.taps.is_empty());
                }
            }
        }
        let want = [
            "groups",
            "several blocks per group",
            "one input channel per group",
            "two vectors per column",
            "three row classes",
            "two tile positions",
            "more than 16 columns",
            "stride 2",
            "stride 3",
            "dilation",
            "no padding",
            "padding on one axis",
            "bias and activation",
            "tile starting rows above",
            "rows of padding only",
        ];
        let missing: Vec<_> = want.iter().filter(|w| !seen.contains(*w)).collect();
        assert!(missing.is_empty(), "not covered: {missing:?}");
    }

    #[test]
    fn taps_over_the_padding_are_left_out() {
        let l = layer(7, 1, 1);
        let classes = row_classes(&l);
        let t = tile_taps(&l, &classes[0], TilePos { ow0: 0, cols: 7 });
        // Kernel rows 1 and 2, 3 kernel columns x 7 output columns minus the 2 that fall
        // left and right of the row, per kernel row.
        assert_eq!(t.taps.len(), 2 * (3 * 7 - 2));
        // The first value read is the row's own first (kernel row 1 = output row 0).
        assert_eq!(t.min, 0);
        assert_eq!(t.span, 2 * 7);
        // Middle rows start one row up.
        let t = tile_taps(&l, &classes[1], TilePos { ow0: 0, cols: 7 });
        assert_eq!(t.min, -7);
        assert_eq!(t.span, 3 * 7);
    }
}
