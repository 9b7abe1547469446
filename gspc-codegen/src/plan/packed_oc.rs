//! Kind [`Kind::PackedOc`]: strategy `gspc-oc` (GSPC, output channels on the vector axis).
//!
//! - Input, packed per call into the scratch: zero-padded planes `[C][H + 2 PH][W + 2 PW]`
//!   (GSPC's `[G][C/G / ic_bn][Hp][ic_bn][Wp]` with `ic_bn = 1`: the micro-kernel walks
//!   the channels of a group one at a time with the whole kernel window unrolled).
//! - Weights, packed once: `[G][KPG / oc_bn][CPG][KH][KW][oc_bn]`, then the bias `[K]`.
//! - Compute: for every group, block of `oc_bn` output channels and output row, tiles of
//!   `reg_n` output columns; a tile keeps `reg_n x (oc_bn / lanes)` vector accumulators in
//!   registers and, for each input channel, runs the unrolled `KH x KW` window: one weight
//!   vector load per kernel tap and vector, one broadcast per output column, one FMA per
//!   accumulator. Bias, activation and the unpack to NCHW are fused into the store.

use super::{ColumnTiles, Kind, LayerPlan, Pin, Strategy, VariantPlan, isa_shape};
use crate::spec::LayerSpec;
use gspc_runtime::Isa;

/// Columns of an x86 `gspc-oc` tile of one vector of 8 or 4 lanes (`oc_bn` 8 or 4), at
/// most. Measured on Zen 4 (docs/benchmarks/2026-12-08-zen4-half-rate.md, section 8),
/// 3x3, 8 lanes, rows of 10 to 16 columns: tiles of 11 to 16 columns took 1.2-1.8x the
/// time of two narrower tiles a row with AVX-512 (16: 114.9 against 63.0 us) and
/// 1.2-1.6x with AVX2 (13: 71.5 against 44.1 us); 10 columns tied with 5 (AVX-512) or beat
/// them (AVX2: 30.4 against 34.0 us). 4 lanes, 14 columns: 1.2x the time of 7.
const NARROW_TILE_COLUMNS: usize = 10;

/// The tile of a `gspc-oc` variant: the widest vector that divides `oc_bn`, and the
/// columns per tile that the register file and the code size allow ([`NARROW_TILE_COLUMNS`]
/// for one x86 vector of 8 or 4 lanes).
pub(super) fn plan(
    layer: &LayerSpec,
    oc_bn: usize,
    isa: Isa,
    scalar: bool,
    pin: &Pin,
) -> VariantPlan {
    let (widths, regs) = isa_shape(isa);
    let regs = if scalar { 32 } else { regs };
    let (lanes, acc_regs_per_col) = match isa {
        Isa::Portable if scalar => (oc_bn, oc_bn),
        Isa::Portable => (oc_bn, oc_bn.div_ceil(4)),
        _ => {
            let lanes = widths
                .iter()
                .copied()
                .find(|w| oc_bn.is_multiple_of(*w))
                .unwrap_or(1);
            (lanes, oc_bn / lanes)
        }
    };
    let nvec = oc_bn / lanes;
    // Accumulators + one weight register per vector + a broadcast + a spare; on
    // 32-register ISAs at most 20 accumulators: 28 spilled
    // (docs/benchmarks/2026-11-27-zen5.md, "Accumulators per tile").
    let budget = (regs.saturating_sub(acc_regs_per_col + 2) / acc_regs_per_col)
        .min(pin.max_accumulators() / acc_regs_per_col)
        .max(1);
    let budget = if matches!(isa, Isa::Avx2 | Isa::Avx512) && matches!(lanes, 4 | 8) && nvec == 1 {
        budget.min(NARROW_TILE_COLUMNS)
    } else {
        budget
    };
    ColumnTiles {
        layer,
        isa,
        lanes,
        nvec,
        budget,
        per_column: acc_regs_per_col,
        compact: pin.compact,
        strategy: Strategy::GspcOc,
        kind: Kind::PackedOc,
    }
    .plan()
}

/// Input window of one tile for one channel: the span from its first to its last value in
/// the packed input, for the tile's columns `offsets`.
pub(crate) fn input_span(p: &LayerPlan, offsets: &[usize], out_rows: usize) -> usize {
    let l = &p.layer;
    let last = offsets.iter().copied().max().unwrap_or(0);
    let rows = ((out_rows - 1) * l.stride[0] + (l.kernel[0] - 1) * l.dilation[0]) * p.row_len;
    (rows + last * l.stride[1] + (l.kernel[1] - 1) * l.dilation[1]) * p.gpv + p.gpv
}

/// Generated lines of a variant, estimated: per tile function of `cols` columns, the
/// weight loads, broadcasts, FMAs and stores.
pub(super) fn estimated_lines(p: &LayerPlan, v: &VariantPlan, per: usize) -> usize {
    let taps = p.layer.kernel[0] * p.layer.kernel[1];
    let tile = |cols: usize| {
        let broadcasts = if p.gpv > 1 { taps * cols } else { 0 };
        let per_column = if p.gpv > 1 { v.lanes } else { 2 };
        let fmas = taps * cols * v.nvec;
        let loads = taps * v.nvec + broadcasts;
        let stores = cols * v.nvec * per_column;
        per * (fmas + loads + stores) + 40
    };
    let mut lines = 80;
    if v.full_tiles > 0 {
        lines += tile(v.reg_n);
    }
    if v.tail > 0 {
        lines += tile(v.tail);
    }
    lines
}
