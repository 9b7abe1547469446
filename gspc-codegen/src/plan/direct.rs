//! Kind [`Kind::Direct`](super::Kind::Direct): the direct `gspc-ow` kernel (AVX-512 and AVX2, depthwise).
//!
//! For one input and one output channel per group, `gspc-ow`'s x86 SIMD variants read the
//! NCHW input in place (see [`applies`], [`flat`], [`row_tiles`]): masked loads give the
//! zero padding at the row ends, kernel rows over the top and bottom padding are left out
//! of each row tile at generation time, and every column tile of a row is unrolled;
//! "same"-padded stride-1 planes of up to 256 values are computed as one row (flat). The
//! packed weights are `gspc-ow`'s; the other variants of the same layer keep the packed
//! kernel ([`Kind::PackedOw`](super::Kind::PackedOw)). Planned by [`super::packed_ow`], which picks this kind.

use super::{LayerPlan, VariantPlan};
use crate::spec::LayerSpec;
use gspc_runtime::Isa;

/// Statements of a direct variant's tile functions (every column tile is unrolled in
/// each): per input row and vector two loads and the column taps (a shift or an even/odd
/// selection each), one FMA per tap, an initialisation and a store per accumulator.
fn statements(p: &LayerPlan, v: &VariantPlan) -> usize {
    let l = &p.layer;
    let kw = l.kernel[1];
    let vectors: usize = col_tiles(v).iter().map(Vec::len).sum();
    let taps_per_row = if l.stride[1] == 1 { kw } else { kw + 1 };
    if v.kind.is_flat() {
        let per_row = 2 + taps_per_row + kw;
        return vectors * (l.kernel[0] * per_row + 2) + 10;
    }
    let mut shapes: Vec<RowShape> = Vec::new();
    for t in row_tiles(l, v.rows) {
        if !shapes.contains(&t.shape) {
            shapes.push(t.shape);
        }
    }
    shapes
        .iter()
        .map(|s| {
            let rels = s.span.min(s.taps.len());
            let fmas = s.taps.len() * kw;
            vectors * (rels * (2 + taps_per_row) + fmas + 2 * s.rows) + 20 + rels
        })
        .sum()
}

/// Generated lines of a variant, estimated from its statements.
pub(super) fn estimated_lines(p: &LayerPlan, v: &VariantPlan, per: usize) -> usize {
    per * statements(p, v) + 80
}

/// Bounds of the direct `gspc-ow` kernel: its input rows inside the plane, its output rows
/// and vectors inside the block.
pub(super) fn check_bounds(p: &LayerPlan, v: &VariantPlan) -> Vec<String> {
    let l = &p.layer;
    let [oh, ow] = p.output;
    let mut problems = Vec::new();
    let ow = if v.kind.is_flat() { oh * ow } else { ow };
    for t in row_tiles(l, v.rows) {
        if t.ih0 + t.shape.span > l.input[0] {
            problems.push(format!(
                "{}: input rows end at {} > {}",
                v.isa,
                t.ih0 + t.shape.span,
                l.input[0]
            ));
        }
        if t.oh0 + t.shape.rows > oh {
            problems.push(format!(
                "{}: output rows end at {} > {oh}",
                v.isa,
                t.oh0 + t.shape.rows
            ));
        }
    }
    let cols = col_tiles(v);
    if cols.is_empty() {
        problems.push(format!("{}: no tiles", v.isa));
    }
    for c in cols.iter().flatten() {
        // A vector wider than the row is stored under a mask (narrow rows).
        if c + v.lanes.min(ow) > ow {
            problems.push(format!(
                "{}: output vector ends at {} > {ow}",
                v.isa,
                c + v.lanes
            ));
        }
    }
    let taps = l.kernel[0] * l.kernel[1];
    if l.groups * taps > p.bias_offset || p.bias_offset + l.groups > p.packed_len {
        problems.push(format!(
            "{}: weights or bias past the packed weights",
            v.isa
        ));
    }
    problems
}

/// Widest output row of the direct `gspc-ow` kernel, which unrolls whole rows (wider rows
/// keep the packed kernel and its loop over column tiles).
pub(crate) const MAX_WIDTH: usize = 256;

/// Vector lanes of the direct `gspc-ow` kernel on an ISA (0: none there).
pub(crate) fn lanes(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 8,
        Isa::Neon | Isa::Portable => 0,
    }
}

/// Tile of the direct kernel on an ISA: (vectors per row, output rows), at most. AVX-512:
/// 4 x 2, the 9 weights of a 3x3 kernel in registers beside 8 accumulators (4 x 4 spilled:
/// docs/benchmarks/2026-11-28-zen5.md); AVX2's 16 registers: 2 x 2.
pub(crate) fn tile(isa: Isa) -> (usize, usize) {
    match isa {
        Isa::Avx512 => (4, 2),
        _ => (2, 2),
    }
}

/// Whether a `gspc-ow` variant computes straight from the NCHW input (the direct kernel):
/// AVX-512 or AVX2, one input and one output channel per group, rows up to 256 columns,
/// column stride 1 (AVX-512: the kernel's column taps `kw * DW` at most 16 apart, made by
/// shifts of two loads) or 2 (each tap the even or odd lanes of two loads). Each input row
/// is read in place with masked loads at the row's ends (the zero padding), so the input is
/// not packed. Rows narrower than a vector take one vector each, stored under a mask.
/// Measurements: docs/benchmarks/2026-11-28-zen5.md ("The direct kernel").
pub(crate) fn applies(layer: &LayerSpec, isa: Isa, scalar: bool, oc_bn: usize) -> bool {
    let lanes = lanes(isa);
    let span = (layer.kernel[1] - 1) * layer.dilation[1];
    lanes > 0
        && layer.output()[1] <= MAX_WIDTH
        && !scalar
        && oc_bn == 1
        && layer.in_per_group() == 1
        && layer.out_per_group() == 1
        && match layer.stride[1] {
            1 => span <= lanes,
            2 => true,
            _ => false,
        }
}

/// Largest plane (`H * W`) the flat direct kernel unrolls whole.
pub(crate) const FLAT_MAX: usize = 256;

/// Whether the direct kernel sees the plane as one row of `H * W` values (flat): depthwise
/// (as [`applies`]) with stride 1 and "same" padding (output plane = input plane), so
/// output `f` and its taps are `f + (kh DH - PH) W + kw DW - PW` of the flat input plane:
/// vectors span rows and no lane is wasted on narrow rows (14x14: 13 vectors of 16 for 196
/// values); a tap's lanes whose column falls outside the row are masked out of the FMA,
/// rows above and below the plane load as zeros. Planes of one vector to
/// [`FLAT_MAX`] values.
pub(crate) fn flat(layer: &LayerSpec, isa: Isa, scalar: bool, oc_bn: usize) -> bool {
    let hw = layer.input[0] * layer.input[1];
    applies(layer, isa, scalar, oc_bn)
        && layer.stride == [1, 1]
        && layer.output() == layer.input
        && (lanes(isa)..=FLAT_MAX).contains(&hw)
}

/// One tile of output rows of the direct kernel and the input rows it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RowTile {
    /// First output row.
    pub oh0: usize,
    /// First input row read (0 if none is).
    pub ih0: usize,
    /// The tile's shape, shared by tiles that compute alike.
    pub shape: RowShape,
}

/// What a row tile of the direct kernel computes, relative to its first rows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RowShape {
    /// Output rows.
    pub rows: usize,
    /// Input rows read, from `ih0`.
    pub span: usize,
    /// `(output row, kernel row, input row)` of every kernel row inside the input,
    /// relative to `oh0` and `ih0`; kernel rows over the zero padding are left out.
    pub taps: Vec<(usize, usize, usize)>,
}

/// The row tiles of the direct kernel: `rows` output rows each (fewer in the last).
pub(crate) fn row_tiles(layer: &LayerSpec, rows: usize) -> Vec<RowTile> {
    let [oh, _] = layer.output();
    let h = layer.input[0] as isize;
    let (sh, ph, dh) = (
        layer.stride[0] as isize,
        layer.padding[0] as isize,
        layer.dilation[0] as isize,
    );
    let mut tiles = Vec::new();
    for oh0 in (0..oh).step_by(rows.max(1)) {
        let n = rows.min(oh - oh0);
        let mut abs = Vec::new();
        for r in 0..n {
            for kh in 0..layer.kernel[0] {
                let ih = (oh0 + r) as isize * sh - ph + kh as isize * dh;
                if (0..h).contains(&ih) {
                    abs.push((r, kh, ih as usize));
                }
            }
        }
        let ih0 = abs.iter().map(|t| t.2).min().unwrap_or(0);
        let span = abs.iter().map(|t| t.2 + 1 - ih0).max().unwrap_or(0);
        let taps = abs.iter().map(|&(r, kh, ih)| (r, kh, ih - ih0)).collect();
        tiles.push(RowTile {
            oh0,
            ih0,
            shape: RowShape {
                rows: n,
                span,
                taps,
            },
        });
    }
    tiles
}

/// The column blocks of the direct kernel: per column tile, the first column of each vector.
pub(crate) fn col_tiles(v: &VariantPlan) -> Vec<Vec<usize>> {
    let mut tiles: Vec<Vec<usize>> = (0..v.full_tiles)
        .map(|t| (0..v.nvec).map(|i| t * v.reg_n + i * v.lanes).collect())
        .collect();
    if !v.last_offsets.is_empty() {
        tiles.push(v.last_offsets.iter().map(|o| v.last_start + o).collect());
    }
    tiles
}
