//! Kind [`Kind::PackedOw`]: strategy `gspc-ow` over the packed input, output columns on the
//! vector axis, for layers whose groups have fewer output channels than a vector holds
//! (depthwise, ResNeXt's 4 per group, many-group ResNets). A tile is `oc_bn` output channels
//! of one group x a few vectors of consecutive output columns; one input vector load per tap
//! serves every channel of the tile. Stride is handled by packing each input row by column
//! phase, so every load is contiguous.
//!
//! The planning of a `gspc-ow` variant lives here; where [`direct::applies`], the variant
//! runs [`Kind::Direct`] instead, on the same packed weights.

use super::{
    Kind, LayerPlan, Pin, Strategy, VariantPlan, direct, isa_shape, kernel_name, tile_fmas,
    without_short_tail,
};
use crate::spec::LayerSpec;
use gspc_runtime::Isa;

/// The tile of a `gspc-ow` variant, [`Kind::PackedOw`] or [`Kind::Direct`]: the widest
/// vector that fits the row, the vectors and output rows per tile that the register file
/// and the code size allow, and the last tile's vectors.
pub(super) fn plan(
    layer: &LayerSpec,
    oc_bn: usize,
    isa: Isa,
    scalar: bool,
    pin: &Pin,
) -> VariantPlan {
    let (compact, pack_input) = (pin.compact, pin.pack_input);
    let [kh, kw] = layer.kernel;
    // The direct kernel unrolls whole rows or the plane, so compact code does without it,
    // as does a plan that packs the input (`"direct": false`).
    let no_direct = compact || pack_input;
    // The flat direct kernel sees the whole output plane as one row.
    let flat = !no_direct && direct::flat(layer, isa, scalar, oc_bn);
    let ow = if flat {
        layer.output()[0] * layer.output()[1]
    } else {
        layer.output()[1]
    };
    let (widths, regs) = isa_shape(isa);
    let (widths, regs): (&[usize], usize) = if scalar {
        (&[4, 1], 32)
    } else {
        (widths, regs)
    };
    // The widest vector that fits in the row (rows have at least 4 columns).
    let lanes = widths.iter().copied().find(|w| *w <= ow).unwrap_or(1);
    // Rows narrower than 16 columns that the flat kernel does not take: the direct kernel
    // with one 16-lane vector per row, its last lanes unused (stored under a mask).
    let dl = direct::lanes(isa);
    let narrow = !no_direct && !flat && ow < dl && direct::applies(layer, isa, scalar, oc_bn);
    let lanes = if narrow || flat { dl } else { lanes };
    let acc_per_vec = match isa {
        Isa::Portable if scalar => lanes,
        Isa::Portable => lanes.div_ceil(4),
        _ => 1,
    };
    let budget = (regs.saturating_sub(acc_per_vec + 2) / acc_per_vec)
        .min(pin.max_accumulators())
        .max(1);
    let code_cap = tile_fmas(compact) / (oc_bn * kh * kw);
    let vectors = ow.div_ceil(lanes);
    let nvec = without_short_tail(
        vectors,
        (budget / oc_bn).min(code_cap).min(vectors).clamp(1, 4),
        oc_bn * acc_per_vec,
    );
    // Output rows per tile: every input row a tile loads serves up to KH output rows, so
    // loads per FMA fall from 1 towards 1 / KH (depthwise 3x3, 4 rows: 0.5).
    let oh = layer.output()[0];
    let rows = (budget / (oc_bn * nvec))
        .min(tile_fmas(compact) / (oc_bn * nvec * kh * kw))
        .min(oh)
        .clamp(1, 4);
    // The direct kernel (depthwise, AVX-512 or AVX2): tiles of `direct_tile`; flat, a
    // row twice as long; narrow, one vector per row and twice the rows.
    let direct =
        flat || narrow || (!no_direct && lanes == dl && direct::applies(layer, isa, scalar, oc_bn));
    let (dv, dr) = direct::tile(isa);
    let (nvec, rows) = if flat {
        (vectors.min(2 * dv), 1)
    } else if narrow {
        (1, oh.min(2 * dr))
    } else if direct {
        (vectors.min(dv), oh.min(dr))
    } else {
        (nvec, rows)
    };
    // Vector starts: every `lanes` columns, the last one ending at the row's end.
    let exact = ow.is_multiple_of(lanes);
    let uniform = if exact { vectors } else { vectors - 1 };
    let full_tiles = uniform / nvec;
    let mut last_ow0 = full_tiles * nvec * lanes;
    let mut last_offsets: Vec<usize> = (0..uniform % nvec).map(|v| v * lanes).collect();
    if narrow {
        last_ow0 = 0;
        last_offsets = vec![0];
    } else if !exact {
        if last_offsets.is_empty() {
            // Only the overlapping vector is left: the tile starts where it does.
            last_ow0 = ow - lanes;
        }
        last_offsets.push(ow - lanes - last_ow0);
    }
    VariantPlan {
        isa,
        lanes,
        nvec,
        reg_n: nvec * lanes,
        full_tiles,
        tail: if last_offsets.is_empty() {
            0
        } else {
            ow - last_ow0
        },
        last_start: last_ow0,
        rows,
        last_offsets,
        kernel: kernel_name(layer, Strategy::GspcOw, isa),
        kind: if direct {
            Kind::Direct { flat }
        } else {
            Kind::PackedOw
        },
    }
}

/// Input window of one tile for one channel: the span from its first to its last value in
/// the packed input, for the tile's vector starts `offsets`.
pub(crate) fn input_span(
    p: &LayerPlan,
    v: &VariantPlan,
    offsets: &[usize],
    out_rows: usize,
) -> usize {
    let l = &p.layer;
    let last = offsets.iter().copied().max().unwrap_or(0);
    let rows = ((out_rows - 1) * l.stride[0] + (l.kernel[0] - 1) * l.dilation[0]) * p.row_len;
    let taps = (0..l.kernel[1])
        .map(|kw| p.col_index(kw * l.dilation[1]))
        .max()
        .unwrap_or(0);
    rows + taps + last + v.lanes
}

/// Generated lines of a variant, estimated: per tile function of `cols` vectors and `rows`
/// output rows, the input loads, FMAs and stores.
pub(super) fn estimated_lines(p: &LayerPlan, v: &VariantPlan, per: usize) -> usize {
    let l = &p.layer;
    let [kh, kw] = l.kernel;
    let tile = |cols: usize, rows: usize| {
        let in_rows = ((rows - 1) * l.stride[0] + (kh - 1) * l.dilation[0] + 1).min(rows * kh);
        let fmas = rows * kh * kw * p.oc_bn * cols;
        let loads = in_rows * kw * cols;
        let stores = p.oc_bn * rows * cols;
        per * (fmas + loads + stores) + 40
    };
    let mut lines = 80;
    for rows in [v.rows, p.output[0] % v.rows] {
        if rows == 0 {
            continue;
        }
        if v.full_tiles > 0 {
            lines += tile(v.nvec, rows);
        }
        if !v.last_offsets.is_empty() {
            lines += tile(v.last_offsets.len(), rows);
        }
    }
    lines
}

/// Accumulators of a tile of the half-rate form ([`at_half_rate`]), at most.
const HALF_RATE_ACCUMULATORS: usize = 12;

/// The narrower tiles the AVX-512 `gspc-ow` variant `v` of `layer` runs instead where
/// AVX-512 is half rate (`gspc_runtime::x86::avx512_full_rate` false: Zen 4), if it has
/// them: at stride 1, tiles of 16 accumulators as 4 output rows, on groups of at most 2
/// input channels, become tiles of at most [`HALF_RATE_ACCUMULATORS`] (3 rows), on the
/// same packed weights and input. Measured on Zen 4
/// (docs/benchmarks/2026-12-08-zen4-half-rate.md): `gspc-codegen tune` found them
/// 1.16x and 1.10x faster on the two such layers of `layer-specs/`
/// (`wrn40_2_g16.b1_c32_32`, `wrn40_2_g8.b1_0_c16_32`), and 6 interleaved rounds of the
/// benchmark at both rates 1.09x and 1.08x (best against best). Layers with 4 or 8 input
/// channels a group were 0.95-1.01x, so they keep their tiles. The three stride-2 layers
/// of ResNet-34 G=C/2 with such tiles, 1.04-1.10x in `tune`, were 0.95-1.05x in the
/// benchmark, their times swinging 1.5x from process to process, so they are left out.
/// On Zen 5, where the rules were fitted, the 16 accumulators stay.
pub(super) fn at_half_rate(
    layer: &LayerSpec,
    v: &VariantPlan,
    oc_bn: usize,
    pin: &Pin,
) -> Option<VariantPlan> {
    let wide = v.isa == Isa::Avx512
        && v.kind == Kind::PackedOw
        && layer.stride == [1, 1]
        && v.rows == 4
        && oc_bn * v.nvec * v.rows == 16
        && layer.in_per_group() <= 2
        && pin.accumulators.is_none();
    if !wide {
        return None;
    }
    let pin = Pin {
        accumulators: Some(HALF_RATE_ACCUMULATORS),
        ..*pin
    };
    let narrow = plan(layer, oc_bn, v.isa, false, &pin);
    (narrow != *v && narrow.kind == Kind::PackedOw).then_some(narrow)
}
