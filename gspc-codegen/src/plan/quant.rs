//! Planning of int8 layers (docs/quantization.md, "Kernels"): the packed layout
//! ([`gspc_runtime::qlayer::QLayout`]: int16 pairs in int32 words, rows by column phase)
//! and each ISA variant's vector flavor and tile.
//!
//! Output columns are on the vector axis and one weight word is broadcast to every lane:
//! - depthwise layers (one input and one output channel per group) get `gspc-dwc`: a
//!   tile is a few vectors of one channel's output row, each word the input of two
//!   neighbouring kernel columns; a work unit is a block of up to 16 channels, which
//!   packs its own input;
//! - every other layer gets `gspc-oc`: a tile is a few vectors of several output
//!   channels' rows, each word two input channels, each input vector shared by the tile's
//!   channels; a work unit is a block of up to 16 (8 on 32-bit targets) channels of one
//!   group; the input is packed once per run.
//!
//! A variant uses the vector width of its ISA (16, 8 or 4 int32 lanes) that does the most
//! useful lanes per instruction over the output row (the last vector of a row may
//! overlap the one before it), with the flavor of its ISA: `vpdpwssd` or, on quads,
//! `vpdpbusd` (AVX-512 VNNI), `vpmaddwd` (AVX2), `smlal`/`smlal2` (NEON; `sdot` on quads in
//! the `neon_dot` kernels), plain int32 arrays (portable, and rows narrower than 4
//! columns). The tile's vectors and channels fill the register file less the input and
//! weight registers. Grouped layers may also have quads ([`QPlan::quads`]) and small
//! depthwise planes channel lanes ([`QPlan::depthwise_lanes`]).

use super::{Chosen, Kind, LayerPlan, VariantPlan};
use crate::error::{Diagnostic, Error};
use crate::spec::{LayerSpec, Strategy};
use crate::target::{Arch, Target};
use gspc_runtime::Isa;
use gspc_runtime::qlayer::{self, QLayout};
use gspc_runtime::quant::Requantization;

/// How a variant holds a block of int32 accumulators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `__m512i`, `vpdpwssd` (AVX-512 VNNI; `vpdpbusd` on quads): 16 lanes.
    Zmm,
    /// `__m256i`, `vpmaddwd` + `vpaddd`: 8 lanes.
    Ymm,
    /// `__m128i`, `pmaddwd` + `paddd`: 4 lanes.
    Xmm,
    /// `int32x4_t` pairs, `smlal` + `smlal2` (the two halves of each word summed once, in
    /// the epilogue): 4 lanes.
    Neon,
    /// `int32x4_t`, `sdot` over quads (the dot product extension): 4 lanes.
    NeonDot,
    /// `[i32; L]` arrays, plain Rust (the compiler may vectorize it).
    Scalar,
}

impl Flavor {
    /// int32 lanes of one vector (`Scalar`: none fixed; the block).
    pub fn lanes(self) -> Option<usize> {
        match self {
            Flavor::Zmm => Some(16),
            Flavor::Ymm => Some(8),
            Flavor::Xmm | Flavor::Neon | Flavor::NeonDot => Some(4),
            Flavor::Scalar => None,
        }
    }

    /// Vector registers of this flavor under `isa`.
    fn registers(self, isa: Isa) -> usize {
        match isa {
            Isa::Avx512 | Isa::Neon => 32,
            _ => 16,
        }
    }

    /// Registers one accumulator takes (`Neon`: two, the halves of each word summed in
    /// the epilogue).
    fn per_accumulator(self) -> usize {
        match self {
            Flavor::Neon => 2,
            _ => 1,
        }
    }
}

/// The tile of one variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QVariant {
    /// Vector flavor.
    pub flavor: Flavor,
    /// Reads the quads ([`QPlan::quads`]: `vpdpbusd`), not the pairs.
    pub quad: bool,
    /// Reads the depthwise channel-lane layout ([`QPlan::depthwise_lanes`]: 16 channels
    /// per vector, `columns` output pixels of a row per tile), not the row layout.
    pub depthwise_lanes: bool,
    /// Lanes are output channels (grouped layers on narrow rows or long reductions: one
    /// broadcast input word per column feeds a vector of channels' weights), not output
    /// columns. Then `nvec` vectors cover the tile's `channels`, and a tile is `columns`
    /// output columns.
    pub channel_lanes: bool,
    /// Output columns per full tile of a channel-lane tile (0 otherwise).
    pub columns: usize,
    /// Output rows per full tile of a channel-lane tile whose rows fit a tile whole: its
    /// `columns` are then the flat output indices `0..out_rows * OW` of rows `oh..oh +
    /// out_rows` (contiguous in the output too), and the rows left over (`OH % out_rows`)
    /// are tiles of one row. 1 otherwise.
    pub out_rows: usize,
    /// Channel-lane tiles of two groups at once (AVX-512 quads, 8 output channels per
    /// group and block, `fp32` requantization): the two groups' 8-lane weight vectors and
    /// broadcast input words side by side in one `__m512i`, so that every lane works where
    /// the group alone fills half a vector. Units are taken in pairs; an odd unit left over
    /// (a split between threads) runs the tile this variant otherwise describes.
    pub group_pairs: bool,
    /// Depthwise on small planes: the channel's packed plane read as one row, vectors over
    /// the flat index `oh * SH * RW + ow` (`RW` words per packed row, `SH` the row stride;
    /// the lanes past each row's `OW` columns are computed and not stored). Each entry is
    /// one tile (a list of vector starts, flat indices), which together cover the plane.
    /// At stride 1 the vectors run on over the row ends; strided, each output row gets its
    /// own vectors, and a tile holds several rows.
    pub flat: Vec<Vec<usize>>,
    /// int32 lanes (output columns, or channels) per vector.
    pub lanes: usize,
    /// Vectors per full tile.
    pub nvec: usize,
    /// Output channels per tile (divides the block; 1 for depthwise).
    pub channels: usize,
    /// Full tiles per output row (`nvec * lanes` columns each).
    pub full_tiles: usize,
    /// First columns of the last tile's vectors (absolute; empty: no last tile). The last
    /// may overlap the one before it. Channel-lane tiles: the last tile's columns.
    pub tail_starts: Vec<usize>,
}

/// Column lanes used per vector instruction over a row of `ow` columns: `lanes * ow /
/// (vectors * lanes)`.
fn column_use(lanes: usize, ow: usize) -> f64 {
    (ow * lanes) as f64 / (ow.div_ceil(lanes) * lanes) as f64
}

/// The channel-lane tile of a grouped layer's variant, if it beats output columns on the
/// vector axis: vectors of channels fill every lane at any row width, but each output
/// vector ends in a scatter of its channels over their planes. So: where the channel
/// vector uses over 1.1x the lanes of a column vector (narrow rows), or at least as many
/// on a reduction of 64 words or more (the scatter is a small part).
fn channel_variant(
    isa: Isa,
    (block, pairs): (usize, bool),
    [oh, ow]: [usize; 2],
    reduction_words: usize,
    max_acc: usize,
) -> Option<QVariant> {
    let (col_flavor, col_lanes) = width(isa, ow);
    let (flavor, lanes) = widths(isa)
        .iter()
        .copied()
        .find(|(f, l)| *f != Flavor::Scalar && block.is_multiple_of(*l))?;
    let col = if col_flavor == Flavor::Scalar {
        0.0
    } else {
        column_use(col_lanes, ow)
    };
    // A tile of two groups (`QVariant::group_pairs`) fills twice the lanes, but builds
    // each broadcast from two loads and an insert: against column tiles of 14 useful lanes
    // (28- and 56-column rows) on Zen 5 it was 0.85-0.98x the time on four layers and 1.2x
    // on ResNeXt-50's `s2_down` (at stride 2 fewer kernel columns share a broadcast), so
    // pairs need 1.5x the column tile's lanes (rows of 7, 8 and 14 columns: 0.37-0.69x).
    let (chan, need) = if pairs {
        (2.0 * lanes as f64, 1.5)
    } else {
        (lanes as f64, 1.1)
    };
    if !(chan > need * col || chan >= col && reduction_words >= 64) {
        return None;
    }
    let nvec = block / lanes;
    let per = flavor.per_accumulator();
    let free = flavor.registers(isa) - 2;
    // Accumulators, the block's weight vectors and a broadcast input.
    let fits = |r: usize| r * nvec <= max_acc.max(nvec) && r * nvec * per + nvec <= free;
    let columns = (1..=ow.min(16)).rev().find(|&r| fits(r))?;
    // Narrow rows that fit a tile whole: several rows per tile (up to 16 columns, for the
    // transposed epilogue), so that enough accumulators are in flight to hide the
    // multiply-add's latency (a 7-column row of one vector leaves 7).
    let out_rows = if columns == ow {
        (1..=oh.min(16 / ow))
            .rev()
            .find(|&r| fits(r * ow))
            .unwrap_or(1)
    } else {
        1
    };
    let (columns, full_tiles, tail_starts) = if out_rows > 1 {
        let tail = if oh % out_rows == 0 { 0 } else { ow };
        (out_rows * ow, 1, (0..tail).collect())
    } else {
        (
            columns,
            ow / columns,
            (ow / columns * columns..ow).collect(),
        )
    };
    Some(QVariant {
        flavor,
        quad: false,
        depthwise_lanes: false,
        channel_lanes: true,
        group_pairs: false,
        columns,
        out_rows,
        flat: Vec::new(),
        lanes,
        nvec,
        channels: block,
        full_tiles,
        tail_starts,
    })
}

/// The int8 specifics of a layer's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QPlan {
    /// The packed layout of int16 pairs.
    pub layout: QLayout,
    /// The layout of 8-bit quads, for the kernels that read them (AVX-512 VNNI's
    /// `vpdpbusd`, unsigned input bytes; Arm's `sdot`, signed ones), on grouped layers where
    /// quads take fewer words than pairs; packed after the pairs.
    pub quads: Option<QLayout>,
    /// The depthwise layout with channels on the lanes, for the AVX-512 and AVX2 variants on
    /// small planes whose rows do not fill their vectors; packed after the pairs.
    pub depthwise_lanes: Option<QLayout>,
    /// Per variant, in the order of `LayerPlan::variants`.
    pub variants: Vec<QVariant>,
    /// The tile of the `neon` variant's kernels over quads (`sdot`), which it runs where
    /// the CPU has the dot product extension.
    pub dot: Option<QVariant>,
}

impl QPlan {
    /// The packed sections, in their order in the packed weights.
    pub fn sections(&self) -> Vec<QLayout> {
        core::iter::once(self.layout)
            .chain(self.quads)
            .chain(self.depthwise_lanes)
            .collect()
    }

    /// The layout variant `v` reads.
    pub fn layout_of(&self, v: &QVariant) -> &QLayout {
        match (
            &self.quads,
            v.quad,
            &self.depthwise_lanes,
            v.depthwise_lanes,
        ) {
            (Some(q), true, _, _) => q,
            (_, _, Some(l), true) => l,
            _ => &self.layout,
        }
    }

    /// Word offset of the section variant `v` reads in the packed weights.
    pub fn base_of(&self, v: &QVariant) -> usize {
        if (v.quad && self.quads.is_some()) || (v.depthwise_lanes && self.depthwise_lanes.is_some())
        {
            self.layout.packed_len()
        } else {
            0
        }
    }
}

fn invalid(layer: &LayerSpec, field: &str, message: String) -> Error {
    Error::Invalid(vec![Diagnostic {
        file: String::new(),
        path: format!("{}.{field}", layer.name),
        message,
    }])
}

/// The vector widths of an ISA's int8 variant, widest first, with their flavors.
fn widths(isa: Isa) -> &'static [(Flavor, usize)] {
    match isa {
        Isa::Avx512 => &[(Flavor::Zmm, 16), (Flavor::Ymm, 8), (Flavor::Xmm, 4)],
        Isa::Avx2 => &[(Flavor::Ymm, 8), (Flavor::Xmm, 4)],
        Isa::Neon => &[(Flavor::Neon, 4)],
        Isa::Portable => &[(Flavor::Scalar, 8), (Flavor::Scalar, 4)],
    }
}

/// The flavor and lanes for rows of `ow` columns: the most useful lanes per vector
/// (`lanes * ow / (vectors * lanes)`), the wider on a tie; plain arrays of `ow` lanes on
/// rows narrower than every vector.
fn width(isa: Isa, ow: usize) -> (Flavor, usize) {
    widths(isa)
        .iter()
        .filter(|(_, l)| *l <= ow)
        .max_by_key(|(_, l)| (ow * l / ow.div_ceil(*l), *l))
        .copied()
        .unwrap_or((Flavor::Scalar, ow.max(1)))
}

/// The largest divisor of `n` up to `max` (at least 1).
fn divisor_at_most(n: usize, max: usize) -> usize {
    (1..=max.min(n).max(1))
        .rev()
        .find(|d| n.is_multiple_of(*d))
        .unwrap_or(1)
}

/// The flat tiles of a depthwise layer at stride 1 (see [`QVariant::flat`]), if they need
/// at most 0.8x the vector instructions of row tiles (`row_vectors` per output row): small
/// planes, where a row leaves most lanes of a vector empty. At most 4 tiles of at most
/// `max_acc` vectors (16 lanes, else 8 or 4, the fewest instructions).
fn flat_variant(
    isa: Isa,
    out: [usize; 2],
    row_words: usize,
    row_vectors: usize,
    max_acc: usize,
) -> Option<QVariant> {
    let [oh, ow] = out;
    let span = (oh - 1) * row_words + ow;
    let (flavor, lanes) = widths(isa)
        .iter()
        .copied()
        .filter(|(f, l)| *f != Flavor::Scalar && *l <= span)
        .min_by_key(|(_, l)| span.div_ceil(*l))?;
    let n = span.div_ceil(lanes);
    let starts: Vec<usize> = (0..n).map(|i| (i * lanes).min(span - lanes)).collect();
    flat_tiles(isa, (flavor, lanes), starts, oh * row_vectors, max_acc)
}

/// The flat tiles of a strided depthwise layer (see [`QVariant::flat`]) on layout `lay`:
/// each output row's own vectors (one where the row is at most a vector wide, the last
/// overlapping the one before it otherwise) at flat index `oh * SH * RW`, several rows per
/// tile. A vector may run past its row into words no output reads (computed, not stored),
/// but not past the packed plane: the last rows' vectors move left where they would, if
/// they still cover their row. The width with the fewest vectors (the narrower on a tie:
/// as fast, and cheaper where 512-bit vectors run at half rate), under the rule of
/// [`flat_variant`].
fn strided_flat_variant(
    isa: Isa,
    lay: &QLayout,
    [oh, ow]: [usize; 2],
    row_vectors: usize,
    max_acc: usize,
) -> Option<QVariant> {
    let row_words = lay.phases() * lay.phase_len();
    let step = lay.stride[0] * row_words;
    // The farthest tap from a vector's start: the last kernel row's last word.
    let off = lay.elems * (lay.words - 1) * lay.dilation[1];
    let last_tap = (lay.kernel[0] - 1) * lay.dilation[0] * row_words + lay.phase_word(off);
    let (flavor, lanes, starts) = widths(isa)
        .iter()
        .rev()
        .filter(|(f, _)| *f != Flavor::Scalar)
        .filter_map(|&(flavor, lanes)| {
            let limit = lay.plane_words().checked_sub(last_tap + lanes)?;
            let per_row: Vec<usize> = if ow <= lanes {
                vec![0]
            } else {
                (0..ow.div_ceil(lanes))
                    .map(|i| (i * lanes).min(ow - lanes))
                    .collect()
            };
            // Planes of more vectors than 4 tiles hold are not flat: skip the check below.
            if oh * per_row.len() > 4 * max_acc {
                return None;
            }
            let mut starts: Vec<usize> = (0..oh)
                .flat_map(|r| per_row.iter().map(move |&c| (r * step + c).min(limit)))
                .collect();
            starts.dedup();
            let covered = |f: usize| starts.iter().any(|&st| (st..st + lanes).contains(&f));
            (0..oh)
                .all(|r| (0..ow).all(|c| covered(r * step + c)))
                .then_some((flavor, lanes, starts))
        })
        .min_by_key(|(_, _, starts)| starts.len())?;
    flat_tiles(isa, (flavor, lanes), starts, oh * row_vectors, max_acc)
}

/// The flat variant of vector `starts` of one flavor, if they are at most 0.8x the
/// `row_tile_vectors` of row tiles: at most 4 tiles of at most `max_acc` vectors (and the
/// registers less a weight and an input), the starts in order.
fn flat_tiles(
    isa: Isa,
    (flavor, lanes): (Flavor, usize),
    starts: Vec<usize>,
    row_tile_vectors: usize,
    max_acc: usize,
) -> Option<QVariant> {
    let n = starts.len();
    if n == 0 || 10 * n > 8 * row_tile_vectors {
        return None;
    }
    let per_tile = max_acc.min((flavor.registers(isa) - 2) / flavor.per_accumulator() - 1);
    let tiles = n.div_ceil(per_tile.max(1));
    if tiles > 4 {
        return None;
    }
    let flat = starts
        .chunks(n.div_ceil(tiles))
        .map(<[usize]>::to_vec)
        .collect();
    Some(QVariant {
        flavor,
        quad: false,
        depthwise_lanes: false,
        channel_lanes: false,
        group_pairs: false,
        columns: 0,
        out_rows: 1,
        flat,
        lanes,
        nvec: n,
        channels: 1,
        full_tiles: 0,
        tail_starts: Vec::new(),
    })
}

/// The AVX-512 variant's tile over the channel-lane layout: 16 channels in one vector per
/// output pixel, up to 14 pixels of a row per tile (at most `max_acc`). With 3x3 kernels
/// (at most 9 taps), rows that fit a tile whole go several to a tile (up to 14 pixels, as
/// [`QVariant::out_rows`] of grouped channel-lane tiles), the rows left over one at a
/// time: a 7x7 output keeps 14 accumulators in flight, not 7. Larger kernels keep one row
/// per tile: a lane tile loads an input vector per pixel and tap, and there two rows were
/// slower (Zen 5: 5x5 and 7x7 kernels on 7x7 planes 1.3-1.4x), where 3x3 ones gained.
fn lane_variant([oh, ow]: [usize; 2], kernel: [usize; 2], max_acc: usize) -> QVariant {
    let columns = ow.min(14).min(max_acc).max(1);
    let out_rows = if columns == ow && kernel[0] * kernel[1] <= 9 {
        (14.min(max_acc) / ow).clamp(1, oh.max(1))
    } else {
        1
    };
    let (columns, full_tiles, tail_starts) = if out_rows > 1 {
        let tail = if oh.is_multiple_of(out_rows) { 0 } else { ow };
        (out_rows * ow, 1, (0..tail).collect())
    } else {
        let full_tiles = ow / columns;
        (columns, full_tiles, (full_tiles * columns..ow).collect())
    };
    QVariant {
        flavor: Flavor::Zmm,
        quad: false,
        depthwise_lanes: true,
        channel_lanes: true,
        group_pairs: false,
        columns,
        out_rows,
        flat: Vec::new(),
        lanes: 16,
        nvec: 1,
        channels: 16,
        full_tiles,
        tail_starts,
    }
}

/// The AVX2 variant's tile over the channel-lane layout: 8 of a block's 16 channels in one
/// `__m256i` per output pixel (two passes over each block, its input packed once), up to 8
/// pixels of one row per tile (at most `max_acc`): 8 accumulators, two weight vectors (the
/// even and odd bytes of quads), a byte mask and the input leave 3 of the 16 registers.
/// Measured on Zen 4 with AVX2 forced, against the flat tiles over each channel's own
/// packed plane: see `docs/quantization.md`.
fn lane_variant_avx2(ow: usize, max_acc: usize) -> QVariant {
    let columns = ow.min(8).min(max_acc).max(1);
    let full_tiles = ow / columns;
    QVariant {
        flavor: Flavor::Ymm,
        quad: false,
        depthwise_lanes: true,
        channel_lanes: true,
        group_pairs: false,
        columns,
        out_rows: 1,
        flat: Vec::new(),
        lanes: 8,
        nvec: 1,
        channels: 8,
        full_tiles,
        tail_starts: (full_tiles * columns..ow).collect(),
    }
}

/// One variant's tile: `block` channels per unit, rows of `ow` columns, at most
/// `max_acc` accumulators.
fn variant(isa: Isa, block: usize, ow: usize, depthwise: bool, max_acc: usize) -> QVariant {
    let (flavor, lanes) = width(isa, ow);
    let row_vectors = ow.div_ceil(lanes);
    let per = flavor.per_accumulator();
    // Accumulators, the tile's input vectors (grouped) or one (depthwise), a broadcast
    // weight and a spare.
    let free = flavor.registers(isa) - 2;
    let fits = |ch: usize, nv: usize| {
        let inputs = if depthwise { 1 } else { nv };
        ch * nv <= max_acc && ch * nv * per + inputs <= free
    };
    let (channels, nvec) = if depthwise {
        let nv = (1..=row_vectors.min(8))
            .rev()
            .find(|&nv| fits(1, nv))
            .unwrap_or(1);
        (1, nv)
    } else {
        let nv0 = row_vectors.min(4);
        let ch = (1..=block)
            .rev()
            .find(|&c| block.is_multiple_of(c) && fits(c, nv0))
            .unwrap_or(1);
        let nv = (nv0..=row_vectors.min(8))
            .rev()
            .find(|&nv| fits(ch, nv))
            .unwrap_or(nv0);
        (ch, nv)
    };
    let cols = nvec * lanes;
    let full_tiles = ow / cols;
    let rem = ow - full_tiles * cols;
    let tail_starts = if rem == 0 {
        Vec::new()
    } else {
        let n = rem.div_ceil(lanes);
        let first = full_tiles * cols;
        let mut starts: Vec<usize> = (0..n - 1).map(|i| first + i * lanes).collect();
        starts.push(ow - lanes.min(ow));
        starts
    };
    QVariant {
        flavor,
        quad: false,
        depthwise_lanes: false,
        channel_lanes: false,
        group_pairs: false,
        columns: 0,
        out_rows: 1,
        flat: Vec::new(),
        lanes,
        nvec,
        channels,
        full_tiles,
        tail_starts,
    }
}

/// Generated lines of an int8 layer's module, estimated (for the size limit): about 350
/// for the module's items, and per variant about 60 plus, per tile, 3 lines per unrolled
/// statement (a multiply-add, a load or broadcast, a store; intrinsics calls wrap).
pub(crate) fn estimated_lines(q: &QPlan) -> usize {
    let [kh, kw] = q.layout.kernel;
    let per_variant = |v: &QVariant| {
        let lay = q.layout_of(v);
        let tiles = usize::from(v.full_tiles > 0) + usize::from(!v.tail_starts.is_empty());
        if !v.flat.is_empty() {
            // Every tap of every flat vector, and up to `lanes` stores per vector.
            return 60
                + 3 * (kh * lay.words * (v.flat.len() + 2 * v.nvec) + v.nvec * (8 + v.lanes));
        }
        let statements = if v.depthwise_lanes {
            kh * lay.words * (1 + 2 * v.columns) + v.columns * 12 + 16
        } else if v.channel_lanes {
            let cols = v.columns.max(v.tail_starts.len());
            kw * (v.nvec + cols * (1 + v.nvec)) + cols * v.nvec * 8
        } else if lay.depthwise {
            kh * lay.words * (1 + 2 * v.nvec) + v.nvec * 8
        } else {
            kw * (v.nvec + v.channels * (1 + v.nvec)) + v.channels * v.nvec * 8
        };
        60 + tiles * 3 * statements
    };
    350 + q
        .variants
        .iter()
        .chain(&q.dot)
        .map(per_variant)
        .sum::<usize>()
}

/// `i8_gconv_{signature}_{strategy}__{isa}`: as the f32 kernel names, with the element type.
fn kernel_name(l: &LayerSpec, strategy: Strategy, isa: Isa) -> String {
    format!(
        "i8_gconv_{}_{}__{}",
        crate::tuning::shape_signature(l),
        strategy.as_str().replace('-', "_"),
        isa
    )
}

/// Plans an int8 layer (validated, `dtype` int8) for the given variants. The spec's
/// `strategy` may pin `gspc-oc` or `gspc-dwc` (where it applies), `oc_block` the block,
/// and `accumulators` the tile; `gspc-ow` and `"direct"` have no int8 kernels and are
/// refused.
pub(crate) fn plan_layer(
    layer: &LayerSpec,
    target: &Target,
    isas: &[Isa],
) -> Result<LayerPlan, Error> {
    let max_block = match target.arch {
        Arch::X86_64 | Arch::Aarch64 => 16,
        Arch::Arm | Arch::Other => 8,
    };
    let depthwise_shape = layer.in_per_group() == 1 && layer.out_per_group() == 1;
    let strategy = match layer.strategy {
        None if depthwise_shape => Strategy::GspcDwc,
        None => Strategy::GspcOc,
        Some(Strategy::GspcOw) => {
            return Err(invalid(
                layer,
                "strategy",
                "int8 layers have gspc-oc and gspc-dwc kernels, not gspc-ow".to_string(),
            ));
        }
        Some(Strategy::GspcDwc) if !depthwise_shape => {
            return Err(invalid(
                layer,
                "strategy",
                "int8 gspc-dwc needs one input and one output channel per group".to_string(),
            ));
        }
        Some(s) => s,
    };
    if layer.direct.is_some() {
        return Err(invalid(
            layer,
            "direct",
            "int8 layers always pack their input; \"direct\" applies to f32 layers only"
                .to_string(),
        ));
    }
    let depthwise = strategy == Strategy::GspcDwc;
    // The channels a unit's block divides: all of them (depthwise) or a group's.
    let channels = if depthwise {
        layer.out_channels
    } else {
        layer.out_per_group()
    };
    let block = match layer.oc_block {
        Some(b) if b >= 1 && channels.is_multiple_of(b) => b,
        Some(b) => {
            return Err(invalid(
                layer,
                "oc_block",
                format!(
                    "{b} does not divide the {channels} output channels {}",
                    if depthwise {
                        "of the layer"
                    } else {
                        "of a group"
                    }
                ),
            ));
        }
        // Rows of at most 8 columns on x86-64: 32 channels, so that a channel-lane tile
        // keeps two vectors of accumulators per column, enough to hide the multiply-add's
        // latency (16 would leave at most 8 in flight).
        None if target.arch == Arch::X86_64
            && !depthwise
            && layer.output()[1] <= 8
            && channels.is_multiple_of(32) =>
        {
            32
        }
        None => divisor_at_most(channels, max_block),
    };
    let [ph, pw] = layer.padding;
    let [h, w] = layer.input;
    let padded = [h + 2 * ph, w + 2 * pw];
    let q = layer.quantization.as_ref().ok_or_else(|| {
        invalid(
            layer,
            "quantization",
            "an int8 layer needs its quantization parameters".to_string(),
        )
    })?;
    let layout = QLayout {
        depthwise,
        groups: layer.groups,
        cpg: layer.in_per_group(),
        kpg: layer.out_per_group(),
        kernel: layer.kernel,
        stride: layer.stride,
        block,
        elems: 2,
        words: if depthwise {
            layer.kernel[1].div_ceil(2)
        } else {
            layer.in_per_group().div_ceil(2)
        },
        input: layer.input,
        padding: layer.padding,
        dilation: layer.dilation,
        padded,
        input_zero_point: q.input_zero_point,
        input_offset: 0,
        channel_lanes: false,
    };
    let output = layer.output();
    let fp32 = q.requantization == Requantization::Fp32;
    let max_acc = layer
        .accumulators
        .unwrap_or(super::MAX_ACCUMULATORS)
        .min(super::MAX_ACCUMULATORS);
    // AVX-512 VNNI's `vpdpbusd` (unsigned input bytes: offset 128) and Arm's `sdot` (signed:
    // offset 0) read quads where they take fewer words than pairs, grouped and depthwise
    // layers (four neighbouring columns a word) alike: one instruction for four taps, where
    // the pairs take two (`vpdpwssd`, which comes out of LLVM as `vpmaddwd` + `vpaddd`;
    // NEON's `smlal` + `smlal2`) for two.
    let quad_layout = layout.quads(if target.arch == Arch::X86_64 { 128 } else { 0 });
    // Depthwise layers on AVX-512 with blocks of 16 channels put the channels on the lanes
    // on small planes whose output rows are at most 8 columns: a block's packed plane (16
    // words a pixel) stays in L1 up to 512 padded pixels (32 KB). Measured on Zen 5 against
    // the quad row and flat tiles: 1.5-1.9x faster on 7x7 outputs (stride 1 on 7x7 planes,
    // stride 2 on 14x14 ones), 1.2-2.2x slower on 14x14 outputs; against the pair tiles
    // before them, slower on 16x16 planes and on 28x28 ones (out of L1). Quads where they
    // take fewer words, as for the other tiles.
    let depthwise_lanes = (depthwise
        && target.arch == Arch::X86_64
        && (isas.contains(&Isa::Avx512) || isas.contains(&Isa::Avx2))
        && block == 16
        && output[1] <= 8
        && padded[1] + 3 * layer.dilation[1] <= 96
        && padded[0] * padded[1] <= 512)
        .then(|| {
            if quad_layout.words < layout.words {
                quad_layout.lanes()
            } else {
                layout.lanes()
            }
        });
    let quad_isa = |isa: Isa| match isa {
        Isa::Avx512 => target.arch == Arch::X86_64,
        Isa::Neon => target.arch == Arch::Aarch64,
        _ => false,
    };
    let quads = (isas.iter().any(|&i| quad_isa(i))
        && quad_layout.words < layout.words
        && depthwise_lanes.is_none())
    .then_some(quad_layout);
    // A depthwise layer's tile for `isa`: its flat tiles where they pay (small planes), else
    // rows.
    let depthwise_tile = |isa: Isa, rows: QVariant| {
        let row_vectors = output[1].div_ceil(rows.lanes);
        let flat = if layer.stride == [1, 1] {
            let row_words = layout.phases() * layout.phase_len();
            flat_variant(isa, output, row_words, row_vectors, max_acc)
        } else {
            strided_flat_variant(isa, &layout, output, row_vectors, max_acc)
        };
        flat.unwrap_or(rows)
    };
    let qvariants: Vec<QVariant> = isas
        .iter()
        .map(|&isa| {
            match isa {
                Isa::Avx512 if depthwise_lanes.is_some() => {
                    return lane_variant(output, layer.kernel, max_acc);
                }
                Isa::Avx2 if depthwise_lanes.is_some() => {
                    return lane_variant_avx2(output[1], max_acc);
                }
                _ => {}
            }
            // NEON's quads are its `dot` tile; the variant itself keeps the pairs.
            let quad = isa == Isa::Avx512 && quads.is_some();
            let lay = if quad { &quad_layout } else { &layout };
            let reduction_words = lay.words * lay.kernel[0] * lay.kernel[1];
            let rows = variant(isa, block, output[1], depthwise, max_acc);
            // Two groups a tile where a group's 8 channels fill half an AVX-512 vector
            // (`QVariant::group_pairs`: quads, `fp32` requantization, its epilogue).
            let pairable =
                quad && !depthwise && block == 8 && layout.kpg == 8 && layer.groups >= 2 && fp32;
            let v = if depthwise {
                depthwise_tile(isa, rows)
            } else {
                channel_variant(isa, (block, pairable), output, reduction_words, max_acc)
                    .unwrap_or(rows)
            };
            let group_pairs = pairable && v.channel_lanes && v.lanes == 8;
            QVariant {
                quad,
                group_pairs,
                ..v
            }
        })
        .collect();
    // The `sdot` tile: NEON's over quads, where it has vectors (rows narrower than 4
    // columns keep the pairs); a depthwise layer's is the `neon` variant's tile.
    let dot = quads
        .filter(|_| isas.contains(&Isa::Neon) && quad_isa(Isa::Neon))
        .filter(|_| width(Isa::Neon, output[1]).0 == Flavor::Neon)
        .map(|q| {
            let reduction_words = q.words * q.kernel[0] * q.kernel[1];
            let rows = variant(Isa::Neon, block, output[1], depthwise, max_acc);
            let v = if depthwise {
                depthwise_tile(Isa::Neon, rows)
            } else {
                channel_variant(Isa::Neon, (block, false), output, reduction_words, max_acc)
                    .unwrap_or(rows)
            };
            QVariant {
                flavor: Flavor::NeonDot,
                quad: true,
                ..v
            }
        });
    let variants = isas
        .iter()
        .zip(&qvariants)
        .map(|(&isa, v)| {
            // (A tile of several rows counts as one full tile per row.)
            let cols = if v.channel_lanes {
                v.columns.min(output[1])
            } else {
                v.nvec * v.lanes
            };
            let tail = output[1] - v.full_tiles * cols;
            VariantPlan {
                isa,
                lanes: v.lanes,
                nvec: v.nvec,
                reg_n: cols,
                full_tiles: v.full_tiles,
                tail,
                last_start: output[1] - tail,
                rows: v.channels,
                last_offsets: v.tail_starts.clone(),
                kernel: kernel_name(layer, strategy, isa),
                kind: if depthwise { Kind::Dwc } else { Kind::PackedOc },
            }
        })
        .collect();
    let quant = QPlan {
        layout,
        quads,
        depthwise_lanes,
        variants: qvariants,
        dot,
    };
    let sections = quant.sections();
    Ok(LayerPlan {
        layer: layer.clone(),
        strategy,
        oc_bn: block,
        output,
        padded,
        row_len: layout.phase_len() * layout.phases(),
        phases: layout.phases(),
        bias_offset: layout.weight_words(),
        packed_len: qlayer::sections_len(&sections),
        scratch_len: qlayer::sections_scratch(&sections),
        gpv: 1,
        compact: true,
        avx2_at_half_rate: false,
        half_rate: None,
        one_group: None,
        row_bands: false,
        variants,
        chosen: if layer.pins_plan() {
            Chosen::Spec
        } else {
            Chosen::Model
        },
        quant: Some(quant),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_rows_of_grouped_layers_put_channels_on_the_lanes() {
        // 7x7 outputs: two rows (14 accumulators) per tile, then a tile of the last row.
        let v = channel_variant(Isa::Avx512, (16, false), [7, 7], 9, 20).expect("channel lanes");
        assert_eq!(
            (v.flavor, v.lanes, v.nvec, v.columns, v.out_rows),
            (Flavor::Zmm, 16, 1, 14, 2)
        );
        assert_eq!(v.tail_starts, (0..7).collect::<Vec<_>>());
        // An even number of rows leaves no row over; 4-column rows go four to a tile.
        let v = channel_variant(Isa::Avx512, (16, false), [8, 4], 9, 20).expect("channel lanes");
        assert_eq!((v.columns, v.out_rows, v.tail_starts.len()), (16, 4, 0));
        // Two vectors of channels: 14 accumulators in one row already.
        let v = channel_variant(Isa::Avx512, (32, false), [7, 7], 9, 20).expect("channel lanes");
        assert_eq!((v.nvec, v.columns, v.out_rows), (2, 7, 1));
        let v = channel_variant(Isa::Avx2, (16, false), [14, 14], 9, 20).expect("channel lanes");
        assert_eq!(
            (v.flavor, v.lanes, v.nvec, v.out_rows),
            (Flavor::Ymm, 8, 2, 1)
        );
        assert_eq!(v.full_tiles * v.columns + v.tail_starts.len(), 14);
        // Wide rows with a short reduction keep columns on the lanes.
        assert!(channel_variant(Isa::Avx512, (16, false), [64, 64], 9, 20).is_none());
        assert!(channel_variant(Isa::Portable, (16, false), [7, 7], 9, 20).is_none());
    }

    /// An int8 layer: `c` channels in `groups` groups, 3x3, 14x14.
    fn int8_layer(c: usize, groups: usize, ow: usize) -> LayerSpec {
        let text = format!(
            r#"{{"model": "q", "layers": [{{"name": "l", "in_channels": {c}, "out_channels": {c},
            "groups": {groups}, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1],
            "input": [14, {ow}], "dtype": "int8", "quantization": {{"requantization": "fp32",
            "input_scale": 0.02, "input_zero_point": 3, "output_scale": 0.05,
            "output_zero_point": -1, "weight_scales": 0.004}}}}]}}"#
        );
        crate::spec::parse("q.json", &text)
            .unwrap()
            .layers
            .remove(0)
    }

    #[test]
    fn groups_of_8_channels_go_two_to_an_avx512_tile() {
        let plan = |l: &LayerSpec| {
            let t = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
            plan_layer(l, &t, &t.default_isas()).unwrap().quant.unwrap()
        };
        // 8 channels per group on 14-column rows: the AVX-512 variant's channel-lane tile
        // of 8 lanes takes two groups; AVX2 has no wider vector.
        let q = plan(&int8_layer(256, 32, 14));
        let pairs: Vec<bool> = q.variants.iter().map(|v| v.group_pairs).collect();
        assert_eq!(pairs, [false, false, true], "portable, avx2, avx512");
        let v = &q.variants[2];
        assert_eq!(
            (v.flavor, v.lanes, v.channel_lanes, v.columns),
            (Flavor::Ymm, 8, true, 14)
        );
        // On 8-column rows 8 lanes of columns tie with 8 of one group's channels, so the
        // columns kept the lanes; two groups' 16 channels win.
        let v = &plan(&int8_layer(128, 16, 8)).variants[2];
        assert!(v.group_pairs && v.channel_lanes);
        assert_eq!((v.columns, v.out_rows), (16, 2));
        // Not for 16 channels per group (a full vector), one group, or `fixed`
        // requantization (the pair tile has only the vector epilogue).
        assert!(
            plan(&int8_layer(256, 16, 14))
                .variants
                .iter()
                .all(|v| !v.group_pairs)
        );
        assert!(
            plan(&int8_layer(8, 1, 14))
                .variants
                .iter()
                .all(|v| !v.group_pairs)
        );
        let mut fixed = int8_layer(256, 32, 14);
        if let Some(q) = fixed.quantization.as_mut() {
            q.requantization = Requantization::Fixed;
        }
        assert!(plan(&fixed).variants.iter().all(|v| !v.group_pairs));
    }

    #[test]
    fn quads_go_to_vnni_and_sdot_on_grouped_layers() {
        let plan = |l: &LayerSpec, triple: &str| {
            let t = Target::from_triple(triple).unwrap();
            plan_layer(l, &t, &t.default_isas()).unwrap().quant.unwrap()
        };
        // 8 channels per group: 4 pairs or 2 quads per tap.
        let grouped = int8_layer(64, 8, 14);
        let x86 = plan(&grouped, "x86_64-unknown-linux-gnu");
        let quads = x86.quads.expect("quads on x86");
        assert_eq!(
            (quads.words, quads.input_offset, x86.layout.words),
            (2, 128, 4)
        );
        let isas: Vec<bool> = x86.variants.iter().map(|v| v.quad).collect();
        assert_eq!(isas, [false, false, true], "portable, avx2, avx512");
        assert!(x86.dot.is_none());
        let arm = plan(&grouped, "aarch64-unknown-linux-gnu");
        assert_eq!(arm.quads.map(|q| q.input_offset), Some(0));
        assert!(arm.variants.iter().all(|v| !v.quad));
        let dot = arm.dot.expect("an sdot tile on aarch64");
        assert_eq!((dot.flavor, dot.quad), (Flavor::NeonDot, true));
        assert_eq!(x86.base_of(&x86.variants[2]), x86.layout.packed_len());
        // Depthwise layers: quads for AVX-512's row and flat tiles (four kernel columns a
        // word: one for a 3x3 row), not for its channel lanes (rows of 7); NEON's `sdot`
        // tile (signed bytes: offset 0), the `neon` variant's tile over quads.
        let dw = plan(&int8_layer(64, 64, 14), "x86_64-unknown-linux-gnu");
        assert_eq!(
            (dw.quads.map(|q| (q.words, q.input_offset)), dw.layout.words),
            (Some((1, 128)), 2)
        );
        let isas: Vec<bool> = dw.variants.iter().map(|v| v.quad).collect();
        assert_eq!(isas, [false, false, true], "portable, avx2, avx512");
        assert!(
            plan(&int8_layer(64, 64, 7), "x86_64-unknown-linux-gnu")
                .quads
                .is_none()
        );
        let dw_arm = plan(&int8_layer(64, 64, 14), "aarch64-unknown-linux-gnu");
        assert_eq!(
            (
                dw_arm.quads.map(|q| (q.words, q.input_offset)),
                dw_arm.layout.words
            ),
            (Some((1, 0)), 2)
        );
        let (neon, dot) = (&dw_arm.variants[1], dw_arm.dot.as_ref().unwrap());
        assert!(!neon.quad && dot.quad && dot.flavor == Flavor::NeonDot);
        assert_eq!(
            (dot.lanes, dot.nvec, &dot.flat, &dot.tail_starts),
            (neon.lanes, neon.nvec, &neon.flat, &neon.tail_starts)
        );
        // No quads for Cortex-M, or rows narrower than a NEON vector.
        assert!(plan(&grouped, "thumbv7em-none-eabihf").quads.is_none());
        assert!(
            plan(&int8_layer(64, 8, 3), "aarch64-unknown-linux-gnu")
                .dot
                .is_none()
        );
        // Two channels per group: a quad takes as many words as a pair.
        assert!(
            plan(&int8_layer(16, 8, 14), "x86_64-unknown-linux-gnu")
                .quads
                .is_none()
        );
    }

    #[test]
    fn small_depthwise_planes_put_channels_on_the_lanes_on_avx512_and_avx2() {
        let plan = |l: &LayerSpec, triple: &str| {
            let t = Target::from_triple(triple).unwrap();
            plan_layer(l, &t, &t.default_isas()).unwrap().quant.unwrap()
        };
        let x86 = "x86_64-unknown-linux-gnu";
        // 14x7 (padded 16x9): lanes for the AVX-512 and AVX2 variants, after the pairs.
        let q = plan(&int8_layer(64, 64, 7), x86);
        let lanes = q.depthwise_lanes.expect("channel lanes");
        assert!(lanes.channel_lanes && lanes.depthwise);
        // Quads (`vpdpbusd`): one word of a 3x3 kernel's row.
        assert_eq!((lanes.elems, lanes.words, lanes.input_offset), (4, 1, 128));
        assert_eq!(lanes.input_words(), 16 * 9 * 16);
        let which: Vec<bool> = q.variants.iter().map(|v| v.depthwise_lanes).collect();
        assert_eq!(which, [false, true, true], "portable, avx2, avx512");
        let v = &q.variants[2];
        assert_eq!((v.lanes, v.columns), (16, 14));
        assert_eq!(q.base_of(v), q.layout.packed_len());
        // AVX2: half the block a vector, the 7-column row in one tile.
        let v = &q.variants[1];
        assert_eq!((v.flavor, v.lanes, v.channels), (Flavor::Ymm, 8, 8));
        assert_eq!((v.columns, v.out_rows, v.full_tiles), (7, 1, 1));
        assert!(v.tail_starts.is_empty());
        assert_eq!(q.base_of(v), q.layout.packed_len());
        // An AVX2-only build reads the same section.
        let t = Target::from_triple(x86).unwrap();
        let avx2 = plan_layer(&int8_layer(64, 64, 7), &t, &[Isa::Portable, Isa::Avx2]).unwrap();
        let avx2 = avx2.quant.unwrap();
        assert_eq!(avx2.depthwise_lanes, Some(lanes));
        assert!(avx2.variants[1].depthwise_lanes);
        // At most `max_acc` pixels a tile, the rest of the row the last tile.
        let v = lane_variant_avx2(7, 4);
        assert_eq!(
            (v.columns, v.full_tiles, v.tail_starts),
            (4, 1, vec![4, 5, 6])
        );
        // Output rows wider than 8 columns (14: the quad tiles were faster), rows of one
        // vector, planes out of L1, other targets, grouped layers: none.
        assert!(plan(&int8_layer(64, 64, 14), x86).depthwise_lanes.is_none());
        assert!(plan(&int8_layer(64, 64, 16), x86).depthwise_lanes.is_none());
        assert!(plan(&int8_layer(64, 64, 40), x86).depthwise_lanes.is_none());
        assert!(
            plan(&int8_layer(64, 64, 7), "aarch64-unknown-linux-gnu")
                .depthwise_lanes
                .is_none()
        );
        assert!(plan(&int8_layer(64, 8, 14), x86).depthwise_lanes.is_none());
    }

    #[test]
    fn small_depthwise_planes_are_flat() {
        // 7x7 outputs of a 9x9 padded plane: 61 flat words in 4 vectors of 16, against 7
        // rows of 2 vectors of 4.
        let v = flat_variant(Isa::Avx512, [7, 7], 9, 2, 20).expect("flat");
        assert_eq!((v.flavor, v.lanes), (Flavor::Zmm, 16));
        assert_eq!(v.flat, vec![vec![0, 16, 32, 45]]);
        // Rows of 56 fill their vectors: no flat tiles.
        assert!(flat_variant(Isa::Avx512, [56, 56], 58, 4, 20).is_none());
    }

    #[test]
    fn lane_tiles_take_two_narrow_rows_with_3x3_kernels_only() {
        // 7x7 outputs: two rows (14 pixels) per tile, the seventh row a tile of its own.
        let v = lane_variant([7, 7], [3, 3], 20);
        assert_eq!((v.columns, v.out_rows, v.full_tiles), (14, 2, 1));
        assert_eq!(v.tail_starts, (0..7).collect::<Vec<_>>());
        // Six 4-column rows: three to a tile (12 pixels), none left over.
        let v = lane_variant([6, 4], [3, 3], 20);
        assert_eq!((v.columns, v.out_rows, v.tail_starts.len()), (12, 3, 0));
        // 5x5 kernels, and rows wider than half a tile, keep one row per tile.
        assert_eq!(lane_variant([7, 7], [5, 5], 20).out_rows, 1);
        let v = lane_variant([14, 14], [3, 3], 20);
        assert_eq!((v.columns, v.out_rows, v.full_tiles), (14, 1, 1));
        // The accumulator limit holds.
        assert_eq!(lane_variant([7, 7], [3, 3], 8).columns, 7);
    }

    #[test]
    fn strided_depthwise_rows_get_a_vector_each_several_rows_a_tile() {
        let plan = |text: &str| {
            let l = crate::spec::parse("q.json", text).unwrap().layers.remove(0);
            let t = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
            plan_layer(&l, &t, &[Isa::Avx2, Isa::Avx512])
                .unwrap()
                .quant
                .unwrap()
        };
        let layer = |c: usize, k: usize, input: usize| {
            format!(
                r#"{{"model": "q", "layers": [{{"name": "l", "in_channels": {c}, "out_channels": {c},
                "groups": {c}, "kernel": [{k}, {k}], "stride": [2, 2], "padding": [{p}, {p}],
                "input": [{input}, {input}], "dtype": "int8", "quantization": {{"requantization": "fp32",
                "input_scale": 0.02, "input_zero_point": 3, "output_scale": 0.05,
                "output_zero_point": -1, "weight_scales": 0.004}}}}]}}"#,
                p = k / 2
            )
        };
        // MobileNet's 3x3 at stride 2 on 28x28 (a 30x30 padded plane of 2 phases of 15
        // words): 14 rows of 14 columns, one 16-lane vector a row (60 words apart) on
        // AVX-512 against two of 8 in row tiles; two of 8 on AVX2, no gain there.
        let q = plan(&layer(256, 3, 28));
        let v = &q.variants[1];
        assert_eq!(
            (v.flavor, v.lanes, v.nvec, v.flat.len()),
            (Flavor::Zmm, 16, 14, 1)
        );
        let starts: Vec<usize> = v.flat.concat();
        assert_eq!(starts, (0..14).map(|r| r * 60).collect::<Vec<_>>());
        assert!(q.variants[0].flat.is_empty());
        // 5x5 on a 9x9 input (13x13 padded, 2 phases of 7 words; 8 channels, which keeps
        // them off the lanes): 5 rows of 5 columns, one vector a row. 16 lanes would run
        // past the plane from the last row (4 * 28 + 4 * 14 + 2 + 16 > 182) and move left;
        // 8 lanes fit, and the narrower width wins the tie.
        let q = plan(&layer(8, 5, 9));
        let v = &q.variants[1];
        assert_eq!((v.flavor, v.nvec), (Flavor::Ymm, 5));
        assert_eq!(v.flat.concat(), vec![0, 28, 56, 84, 112]);
        // Wide rows fill their row tiles' vectors: not flat.
        assert!(plan(&layer(64, 3, 112)).variants[1].flat.is_empty());
    }

    #[test]
    fn widths_use_the_most_lanes() {
        assert_eq!(width(Isa::Avx512, 56), (Flavor::Zmm, 16));
        assert_eq!(width(Isa::Avx512, 14), (Flavor::Ymm, 8));
        assert_eq!(width(Isa::Avx512, 7), (Flavor::Xmm, 4));
        assert_eq!(width(Isa::Avx2, 3), (Flavor::Scalar, 3));
        assert_eq!(width(Isa::Neon, 7), (Flavor::Neon, 4));
        assert_eq!(width(Isa::Portable, 112), (Flavor::Scalar, 8));
    }

    #[test]
    fn tails_overlap_and_cover_the_row() {
        for ow in 1..70 {
            for isa in [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Portable] {
                for depthwise in [true, false] {
                    let v = variant(isa, 8, ow, depthwise, 20);
                    let cols = v.nvec * v.lanes;
                    let mut covered = vec![false; ow];
                    let mut starts: Vec<usize> = (0..v.full_tiles)
                        .flat_map(|t| (0..v.nvec).map(move |i| t * cols + i * v.lanes))
                        .collect();
                    starts.extend(&v.tail_starts);
                    for s in starts {
                        assert!(s + v.lanes <= ow, "{isa} ow {ow}: {v:?}");
                        covered[s..s + v.lanes].iter_mut().for_each(|c| *c = true);
                    }
                    assert!(covered.iter().all(|&c| c), "{isa} ow {ow}: {v:?}");
                    assert!(v.channels * v.nvec <= 20 && 8 % v.channels == 0);
                }
            }
        }
    }
}
