//! Planning: from a validated layer and a target, the strategy, the packed layouts and the
//! register tile of every ISA variant. Pure arithmetic, no code.
//!
//! # Strategy `gspc-oc` (GSPC, output channels on the vector axis)
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
//!
//! # Strategy `gspc-dwc` (depthwise, channels on the vector axis)
//!
//! For depthwise layers (one input and one output channel per group) whose channel count
//! is a multiple of 16: blocks of 16 channels are packed per call as pixels of 16
//! channels without padding, `[H * W][16]` (in-register transposes over the plane as one
//! row), weights as `[C / 16][KH][KW][16]`, then the bias. A tile is `reg_n` output pixels
//! of one row, one vector of 16 channels per pixel; it loops over the kernel rows inside
//! the input (runs of output rows that read the same ones: [`dwc_row_runs`]) and, per
//! kernel row, loads the row's weight vectors and each input pixel once, with one FMA per
//! tap inside the input row ([`dwc_col_tiles`]): taps over the padding are left out at
//! generation time. No lane is wasted on narrow rows and strides need no phase split. The
//! tile writes `[OH * OW][16]` into the scratch, transposed back to 16 NCHW planes once
//! per block.
//!
//! # The direct `gspc-ow` kernel (AVX-512 and AVX2, depthwise)
//!
//! For one input and one output channel per group, `gspc-ow`'s x86 SIMD variants read the
//! NCHW input in place (see [`direct_applies`], [`direct_flat`], [`direct_row_tiles`]):
//! masked loads give the zero padding at the row ends, kernel rows over the top and bottom
//! padding are left out of each row tile at generation time, and every column tile of a
//! row is unrolled; "same"-padded stride-1 planes of up to 256 values are computed as one
//! row (flat). The packed weights are `gspc-ow`'s; the other variants of the same layer
//! keep the packed kernel.
//!
//! # Cost model
//!
//! `oc_bn` is the largest divisor of the channels per group up to 16 (8 on 32-bit and
//! other targets): it fixes the packed layout, shared by every variant of a build. Each
//! variant then takes the widest vector that divides `oc_bn` and the largest `reg_n` whose
//! accumulators, weight vectors and a broadcast register fit the ISA's register file
//! (AVX2: 16, AVX-512 and NEON: 32, portable: 16 registers of 4 lanes), at most the output
//! width and at most 1024 unrolled multiply-adds per tile; among the sizes from two thirds
//! of that maximum up, one that divides the output width is preferred (no tail tile), and
//! where the tail tile would hold fewer than [`FMA_CHAINS`] accumulators the row is split
//! into tiles of even width (as are `gspc-ow`'s vectors).

use crate::error::Error;
use crate::spec::LayerSpec;
use crate::target::{Arch, Target};
use gspc_runtime::Isa;

/// Accumulator registers of one tile, at most (see `plan_layer`).
pub const MAX_ACCUMULATORS: usize = 20;

/// Independent accumulators a tile needs to keep the FMA pipes busy: 2 pipes x 4 cycles of
/// latency on Zen 4/5 and recent Intel cores.
pub const FMA_CHAINS: usize = 8;

/// Unrolled multiply-adds (vector FMAs) in one tile function, at most.
pub const MAX_TILE_FMAS: usize = 1024;

/// How a layer is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// GSPC with output channels of one group on the vector axis: a tile is `reg_n` output
    /// columns x `oc_bn` output channels; one broadcast input value per column and tap.
    GspcOc,
    /// Output columns on the vector axis, for layers whose groups have fewer output channels
    /// than a vector holds (depthwise, ResNeXt's 4 per group, many-group ResNets): a tile is
    /// `oc_bn` output channels of one group x a few vectors of consecutive output columns;
    /// one input vector load per tap serves every channel of the tile. Stride is handled by
    /// packing each input row by column phase, so every load is contiguous.
    GspcOw,
    /// Depthwise layers with channels on the vector axis: blocks of [`DWC_BLOCK`] channels
    /// packed as pixels of 16 channels; a tile is a few output pixels of a row.
    GspcDwc,
}

impl Strategy {
    /// The name shown by `plan`, accepted in specs and stored in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::GspcOc => "gspc-oc",
            Strategy::GspcOw => "gspc-ow",
            Strategy::GspcDwc => "gspc-dwc",
        }
    }
}

/// Channels per block of `gspc-dwc`.
pub const DWC_BLOCK: usize = gspc_runtime::dwc::CB;

/// Whether `gspc-dwc` can compute a layer: depthwise (one input and one output channel per
/// group) with a multiple of [`DWC_BLOCK`] channels.
pub fn dwc_applies(l: &LayerSpec) -> bool {
    l.groups == l.in_channels
        && l.groups == l.out_channels
        && l.in_channels.is_multiple_of(DWC_BLOCK)
}

/// The register tile of one ISA variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantPlan {
    /// Instruction set.
    pub isa: Isa,
    /// f32 lanes per vector register (1 = scalar; for `portable`, the array length).
    pub lanes: usize,
    /// `gspc-oc`: vectors per output column (`oc_bn / lanes`); `gspc-ow`: vectors of
    /// columns per full tile.
    pub nvec: usize,
    /// Output columns per full tile.
    pub reg_n: usize,
    /// Full tiles per output row.
    pub full_tiles: usize,
    /// Output columns of the last, shorter tile of a row (0 = none).
    pub tail: usize,
    /// First column of the last tile.
    pub last_start: usize,
    /// Output rows per tile (`gspc-ow`: each input row loaded once serves up to this many
    /// output rows; `gspc-oc`: 1).
    pub rows: usize,
    /// `gspc-ow`: offsets (relative to the last tile's first column) of the last tile's
    /// vectors; the final vector may overlap the one before it, recomputing a few columns,
    /// so that no vector reads or writes past the row.
    pub last_offsets: Vec<usize>,
    /// Kernel name (see [`kernel_name`]).
    pub kernel: String,
    /// `gspc-ow` computed straight from the NCHW input, without packing (see
    /// [`direct_applies`]).
    pub direct: bool,
    /// The direct kernel over the plane as one row (see [`direct_flat`]): columns are
    /// positions in the plane.
    pub flat: bool,
}

impl VariantPlan {
    /// First column of the last tile.
    pub fn last_ow0(&self) -> usize {
        self.last_start
    }

    /// Unit offsets of the full tile (columns for `gspc-oc`, vectors for `gspc-ow`).
    pub fn full_offsets(&self, strategy: Strategy) -> Vec<usize> {
        match strategy {
            Strategy::GspcOc | Strategy::GspcDwc => (0..self.reg_n).collect(),
            Strategy::GspcOw => (0..self.nvec).map(|v| v * self.lanes).collect(),
        }
    }

    /// Unit offsets of the last tile (empty: no last tile).
    pub fn tail_offsets(&self, strategy: Strategy) -> Vec<usize> {
        match strategy {
            Strategy::GspcOc | Strategy::GspcDwc => (0..self.tail).collect(),
            Strategy::GspcOw => self.last_offsets.clone(),
        }
    }
}

/// Everything the emitter needs to know about one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerPlan {
    /// The layer.
    pub layer: LayerSpec,
    /// Strategy.
    pub strategy: Strategy,
    /// Output channels per weight block (divides the channels per group): the vector
    /// block for `gspc-oc`, the channels of a tile for `gspc-ow`.
    pub oc_bn: usize,
    /// `[OH, OW]`.
    pub output: [usize; 2],
    /// `[H + 2 PH, W + 2 PW]`.
    pub padded: [usize; 2],
    /// Length of a packed input row: `W + 2 PW`, rounded up to a multiple of the column
    /// stride when rows are packed by column phase (`gspc-ow` with stride > 1).
    pub row_len: usize,
    /// Column phases of a packed input row (the column stride for `gspc-ow`, else 1).
    pub phases: usize,
    /// Offset of the bias in the packed weights (= number of packed weight values).
    pub bias_offset: usize,
    /// Packed weights and bias.
    pub packed_len: usize,
    /// Per-call scratch: the packed input of one group (packed just before its outputs are
    /// computed, so it is still in cache).
    pub scratch_len: usize,
    /// `gspc-oc`: groups side by side in one vector block (1, 2 or 4). With `gpv > 1`,
    /// lane `l` of a block is channel `l / gpv` of group `l % gpv` of the block's groups, and
    /// the packed input interleaves those groups' pixels, so one broadcast of `gpv`
    /// consecutive values (64 or 128 bits) feeds every lane its own group's input.
    pub gpv: usize,
    /// Compact code: tiles of at most a quarter of [`MAX_TILE_FMAS`] multiply-adds and no
    /// direct kernel (which unrolls whole rows or planes), so the layer's code does not
    /// grow with its plane; pinned by the spec or chosen by [`crate::plan`] for the largest
    /// layers of a model that would pass the generated-lines limit.
    pub compact: bool,
    /// One entry per ISA variant, in the order given.
    pub variants: Vec<VariantPlan>,
}

impl LayerPlan {
    /// Channels per group.
    pub fn cpg(&self) -> usize {
        self.layer.in_per_group()
    }
    /// Output channels per group.
    pub fn kpg(&self) -> usize {
        self.layer.out_per_group()
    }
    /// Output-channel blocks per group, or per block of `gpv` groups (`gspc-dwc`: 1, its
    /// blocks span groups).
    pub fn nocb(&self) -> usize {
        (self.kpg() * self.gpv / self.oc_bn).max(1)
    }
    /// Work units: output blocks of `oc_bn` channels (`BLOCK_LEN` values each).
    pub fn units(&self) -> usize {
        match self.strategy {
            Strategy::GspcDwc => self.layer.out_channels / self.oc_bn,
            _ => self.layer.groups / self.gpv * self.nocb(),
        }
    }
    /// Values per column phase of a packed input row.
    pub fn phase_len(&self) -> usize {
        self.row_len / self.phases
    }
    /// Offset, within a packed input row, of padded column `col`.
    pub fn col_index(&self, col: usize) -> usize {
        (col % self.phases) * self.phase_len() + col / self.phases
    }
    /// Statements of a direct variant's tile functions (every column tile is unrolled in
    /// each): per input row and vector two loads and the column taps (a shift or an even/odd
    /// selection each), one FMA per tap, an initialisation and a store per accumulator.
    fn direct_statements(&self, v: &VariantPlan) -> usize {
        let l = &self.layer;
        let kw = l.kernel[1];
        let vectors: usize = direct_col_tiles(v).iter().map(Vec::len).sum();
        let taps_per_row = if l.stride[1] == 1 { kw } else { kw + 1 };
        if v.flat {
            let per_row = 2 + taps_per_row + kw;
            return vectors * (l.kernel[0] * per_row + 2) + 10;
        }
        let mut shapes: Vec<DirectRowShape> = Vec::new();
        for t in direct_row_tiles(l, v.rows) {
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

    /// Generated lines of code, estimated (for the size limit).
    pub fn estimated_lines(&self) -> usize {
        let l = &self.layer;
        let [kh, kw] = l.kernel;
        let taps = kh * kw;
        let oh = self.output[0];
        let per_variant = |v: &VariantPlan| {
            // Formatted lines per statement: calls of intrinsics wrap over several lines.
            let per = match v.isa {
                Isa::Portable => 3,
                _ => 5,
            };
            if v.direct {
                return per * self.direct_statements(v) + 80;
            }
            if self.strategy == Strategy::GspcDwc {
                // One tile function per column shape, its kernel rows in a loop: per
                // kernel column the weight vectors, per tap inside the row a load and an
                // FMA per vector; per pixel and vector a store.
                let mut shapes: Vec<DwcColShape> = Vec::new();
                for t in dwc_col_tiles(l, v) {
                    if !shapes.contains(&t.shape) {
                        shapes.push(t.shape);
                    }
                }
                let calls = dwc_row_runs(l).len() * (shapes.len() + 2);
                return shapes
                    .iter()
                    .map(|s| per * ((kw + 2 * s.taps.len() + 2 * s.pixels) * v.nvec) + 50)
                    .sum::<usize>()
                    + 3 * calls
                    + 80;
            }
            // One tile function of `cols` columns (gspc-ow: vectors) and `rows` rows.
            let tile = |cols: usize, rows: usize| -> usize {
                let (fmas, loads, stores) = match self.strategy {
                    Strategy::GspcOc => {
                        let broadcasts = if self.gpv > 1 { taps * cols } else { 0 };
                        let per_column = if self.gpv > 1 { v.lanes } else { 2 };
                        (
                            taps * cols * v.nvec,
                            taps * v.nvec + broadcasts,
                            cols * v.nvec * per_column,
                        )
                    }
                    Strategy::GspcOw => {
                        let in_rows = ((rows - 1) * l.stride[0] + (kh - 1) * l.dilation[0] + 1)
                            .min(rows * kh);
                        (
                            rows * taps * self.oc_bn * cols,
                            in_rows * kw * cols,
                            self.oc_bn * rows * cols,
                        )
                    }
                    // Planned above.
                    Strategy::GspcDwc => (0, 0, 0),
                };
                per * (fmas + loads + stores) + 40
            };
            let mut kinds = Vec::new();
            match self.strategy {
                Strategy::GspcOw => {
                    for rows in [v.rows, oh % v.rows] {
                        if rows == 0 {
                            continue;
                        }
                        if v.full_tiles > 0 {
                            kinds.push((v.nvec, rows));
                        }
                        if !v.last_offsets.is_empty() {
                            kinds.push((v.last_offsets.len(), rows));
                        }
                    }
                }
                _ => {
                    if v.full_tiles > 0 {
                        kinds.push((v.reg_n, 1));
                    }
                    if v.tail > 0 {
                        kinds.push((v.tail, 1));
                    }
                }
            }
            kinds.iter().map(|&(c, r)| tile(c, r)).sum::<usize>() + 80
        };
        self.variants.iter().map(per_variant).sum::<usize>() + 250
    }
}

/// `f32_gconv_g{G}c{CPG}k{KPG}_k{KH}x{KW}s{SH}x{SW}d{DH}x{DW}p{PH}x{PW}_{H}x{W}_{strategy}__{isa}`:
/// data type, operation, groups and channels per group, kernel window, stride, dilation,
/// padding, input size, strategy, then the ISA after a double underscore.
pub fn kernel_name(l: &LayerSpec, strategy: Strategy, isa: Isa) -> String {
    format!(
        "f32_gconv_g{}c{}k{}_k{}x{}s{}x{}d{}x{}p{}x{}_{}x{}_{}__{}",
        l.groups,
        l.in_per_group(),
        l.out_per_group(),
        l.kernel[0],
        l.kernel[1],
        l.stride[0],
        l.stride[1],
        l.dilation[0],
        l.dilation[1],
        l.padding[0],
        l.padding[1],
        l.input[0],
        l.input[1],
        strategy.as_str().replace('-', "_"),
        isa
    )
}

fn largest_divisor_at_most(n: usize, max: usize) -> usize {
    (1..=max.min(n))
        .rev()
        .find(|d| n.is_multiple_of(*d))
        .unwrap_or(1)
}

/// Vector widths (f32 lanes) of an ISA, widest first, and its vector register count.
fn isa_shape(isa: Isa) -> (&'static [usize], usize) {
    match isa {
        Isa::Avx512 => (&[16, 8, 4, 1], 32),
        Isa::Avx2 => (&[8, 4, 1], 16),
        Isa::Neon => (&[4, 1], 32),
        Isa::Portable => (&[8, 4, 1], 16),
    }
}

/// The lanes of the target's best vector ISA (for the cost model).
fn primary_lanes(isas: &[Isa]) -> usize {
    isas.iter()
        .map(|&i| match i {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
            Isa::Neon | Isa::Portable => 4,
        })
        .max()
        .unwrap_or(4)
}

/// A layout-level choice pinned by the spec (`strategy`, `oc_block`), if any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pin {
    /// Strategy, or the cost model's.
    pub strategy: Option<Strategy>,
    /// `oc_bn`, or the cost model's.
    pub oc_block: Option<usize>,
    /// Compact code (see [`LayerPlan::compact`]).
    pub compact: bool,
}

impl Pin {
    /// What the spec pins for `layer` (compact code only where it says `"compact": true`).
    pub fn of(layer: &LayerSpec) -> Self {
        Pin {
            strategy: layer.strategy,
            oc_block: layer.oc_block,
            compact: layer.compact == Some(true),
        }
    }
}

/// The cost model: `gspc-oc` keeps `oc_bn` output channels in a vector, so its lane use is
/// `oc_bn / lanes` of the best ISA; `gspc-ow` fills vectors with output columns, so its lane
/// use is the fraction of computed columns that are real (the last vector of a row may
/// overlap), with narrower vectors counted at their width, and a 10% charge for its extra
/// input loads. The larger wins; `gspc-ow` needs at least 4 output columns.
fn choose_strategy(layer: &LayerSpec, isas: &[Isa], oc_bn_oc: usize) -> Strategy {
    let ow = layer.output()[1];
    if ow < 4 {
        return Strategy::GspcOc;
    }
    let l = primary_lanes(isas);
    let used = |n: usize| {
        // Lanes of the widest vector that a block of n channels fills.
        [16, 8, 4, 1]
            .into_iter()
            .find(|w| *w <= l && n.is_multiple_of(*w))
            .unwrap_or(1)
    };
    let eff_oc = used(oc_bn_oc) as f64 / l as f64;
    let lw = [16, 8, 4]
        .into_iter()
        .find(|w| *w <= l && *w <= ow)
        .unwrap_or(4);
    let eff_ow = ow as f64 / (ow.div_ceil(lw) * lw) as f64 * lw as f64 / l as f64 * 0.9;
    if eff_ow > eff_oc {
        Strategy::GspcOw
    } else {
        Strategy::GspcOc
    }
}

/// Plans one layer for the given ISA variants.
pub fn plan_layer(layer: &LayerSpec, target: &Target, isas: &[Isa]) -> Result<LayerPlan, Error> {
    plan_layer_pinned(layer, target, isas, Pin::of(layer))
}

/// [`plan_layer`] with the strategy and/or `oc_bn` pinned.
pub fn plan_layer_pinned(
    layer: &LayerSpec,
    target: &Target,
    isas: &[Isa],
    pin: Pin,
) -> Result<LayerPlan, Error> {
    let kpg = layer.out_per_group();
    let max_oc_bn = match target.arch {
        Arch::X86_64 | Arch::Aarch64 => 16,
        Arch::Arm | Arch::Other => 8,
    };
    let oc_bn_oc = largest_divisor_at_most(kpg, max_oc_bn);
    let strategy = pin.strategy.unwrap_or_else(|| {
        // The direct gspc-ow kernel (AVX-512 or AVX2) needs no transposes and took about
        // half to two thirds of the time of gspc-dwc on mobilenet_v1_dw's narrow rows (Zen 5,
        // each ISA).
        let direct = !pin.compact
            && [Isa::Avx512, Isa::Avx2]
                .iter()
                .any(|i| isas.contains(i) && direct_applies(layer, *i, false, 1));
        if target.arch == Arch::X86_64
            && dwc_applies(layer)
            && (dwc_large_kernel_pays(layer) || dwc_pays(layer) && !direct)
        {
            Strategy::GspcDwc
        } else if groups_per_vector(layer, target, isas) > 1 && layer.output()[1] <= 8 {
            // Groups side by side fill the vector; at 8 columns or fewer `gspc-ow` cannot
            // (measured: wrn40_2_g16's 16x16 stride-2 layer, 6.0 -> 4.4 us).
            Strategy::GspcOc
        } else {
            choose_strategy(layer, isas, oc_bn_oc)
        }
    });
    // Narrow rows (OW <= 8) leave no more accumulators than FMAs in flight (2 pipes x 4
    // cycles on Zen 4/5): two vectors of channels per column fill them (measured: 7x7
    // layers went from 75% to 90-95% of peak on AVX-512; wrn40_2_g1's 8x8 layer 80 -> 68 us).
    let oc_bn_oc =
        if target.arch == Arch::X86_64 && layer.output()[1] <= 8 && kpg.is_multiple_of(32) {
            32
        } else {
            oc_bn_oc
        };
    let gpv = if strategy == Strategy::GspcOc && pin.oc_block.is_none() {
        groups_per_vector(layer, target, isas)
    } else {
        1
    };
    let oc_bn = pin.oc_block.unwrap_or(match strategy {
        Strategy::GspcOc if gpv > 1 => kpg * gpv,
        Strategy::GspcOc => oc_bn_oc,
        Strategy::GspcOw => largest_divisor_at_most(kpg, 4),
        Strategy::GspcDwc => DWC_BLOCK,
    });
    let output = layer.output();
    let padded = layer.padded();
    let phases = match strategy {
        Strategy::GspcOw => layer.stride[1],
        Strategy::GspcOc | Strategy::GspcDwc => 1,
    };
    let row_len = padded[1].div_ceil(phases) * phases;
    let bias_offset = layer.weights_len();
    let variants = isas
        .iter()
        .map(|&isa| match strategy {
            Strategy::GspcOc => {
                plan_oc(layer, strategy, oc_bn, isa, scalar_fpu(target), pin.compact)
            }
            Strategy::GspcOw => {
                plan_ow(layer, strategy, oc_bn, isa, scalar_fpu(target), pin.compact)
            }
            Strategy::GspcDwc => plan_dwc(layer, isa, scalar_fpu(target), pin.compact),
        })
        .collect();
    let scratch_len = match strategy {
        // The packed input of one block, then its output pixels.
        Strategy::GspcDwc => (layer.input[0] * layer.input[1] + output[0] * output[1]) * DWC_BLOCK,
        _ => layer.in_per_group() * padded[0] * row_len * gpv,
    };
    let plan = LayerPlan {
        layer: layer.clone(),
        strategy,
        oc_bn,
        output,
        padded,
        row_len,
        phases,
        bias_offset,
        packed_len: bias_offset + layer.out_channels,
        scratch_len,
        gpv,
        compact: pin.compact,
        variants,
    };
    check_bounds(&plan)?;
    Ok(plan)
}

/// Groups side by side in a vector block for a `gspc-oc` layer: on x86-64 with AVX-512,
/// layers with 4 or 8 output channels per group (which would fill a quarter or half of a
/// 16-lane vector) get 4 or 2 groups per block, when the group count allows; 1 otherwise.
/// Measured on Zen 5 (same layers, both layouts pinned): resnet34_g32's 14x14 layer 102.9 ->
/// 37.0 us, its 28x28 stride-2 one 49.6 -> 32.8 us, wrn40_2_g16's 8x8 one 10.8 -> 6.8 us.
/// `gspc-ow` stays ahead on rows of 16 columns and more (1.3-2.3x), so the cost model keeps
/// choosing between them as before, and picks `gspc-oc` outright for rows of 8 or fewer.
fn groups_per_vector(layer: &LayerSpec, target: &Target, isas: &[Isa]) -> usize {
    let kpg = layer.out_per_group();
    let gpv = match kpg {
        4 | 8 => 16 / kpg,
        _ => return 1,
    };
    if target.arch == Arch::X86_64
        && isas.contains(&Isa::Avx512)
        && layer.groups.is_multiple_of(gpv)
    {
        gpv
    } else {
        1
    }
}

/// Where the cost model picks `gspc-dwc` over the packed `gspc-ow` for a depthwise layer
/// (x86-64, when no variant has the direct kernel):
/// rows narrower than a 16-lane vector, which `gspc-ow` computes with 8- or 4-lane vectors.
/// Measured on Zen 5 (mobilenet_v1_dw, both strategies pinned in one run): `gspc-dwc` took
/// 0.5-0.7x the time of `gspc-ow` at 14 and 7 output columns, 1.0x at 28 with stride 2,
/// 1.4-1.5x at 28 with stride 1 and at 56 and 112 (its transposes cost more than they save).
fn dwc_pays(layer: &LayerSpec) -> bool {
    layer.output()[1] < 16
}

/// Where `gspc-dwc` beats the direct `gspc-ow` kernel: 5x5 and larger kernels on small
/// planes, whose taps it skips over the padding at generation time and whose transposes
/// it amortizes over 25 to 49 taps. Measured on Zen 4 (layer-specs/efficient_dw.json, both
/// strategies pinned, AVX-512 and AVX2, 2 rounds; see docs/depthwise.md): stride 1, 7x7
/// kernels on 7x7 to 56x56 planes 0.23-0.85x the direct kernel's time, 5x5 kernels on 7x7
/// and 14x14 planes 0.5-0.6x, but 1.0-1.3x on 28x28; stride 2, 7x7 outputs 0.8x, 14x14 and
/// 28x28 outputs 1.0-1.5x (the transposes of the 4x larger input then dominate).
fn dwc_large_kernel_pays(layer: &LayerSpec) -> bool {
    let taps = layer.kernel[0] * layer.kernel[1];
    let ow = layer.output()[1];
    taps >= 25 && (ow <= 7 || layer.stride == [1, 1] && (taps >= 49 || ow <= 14))
}

/// Columns per full tile of a row of `ow` columns, at most `max_r`, a column taking
/// `per_column` accumulator registers. Among the widths from two thirds of `max_r` up, one
/// that divides `ow` is preferred (no tail tile); otherwise [`without_short_tail`].
fn tile_columns(ow: usize, max_r: usize, per_column: usize) -> usize {
    let lo = (2 * max_r).div_ceil(3).max(1);
    let reg_n = (lo..=max_r)
        .rev()
        .find(|r| ow.is_multiple_of(*r))
        .unwrap_or(max_r);
    without_short_tail(ow, reg_n, per_column)
}

/// The width of a row's tiles (`total` units, in tiles of `width` and a last, shorter
/// one), a unit taking `per_unit` accumulator registers: `width`, or, where the last tile
/// would hold fewer than [`FMA_CHAINS`] accumulators and so run at the FMA latency, not
/// its throughput, the even width that gives the same number of tiles a longer last one
/// (AVX2's 14-column rows: 6 + 6 + 2 -> 5 + 5 + 4 columns; 28 columns of 4 channels:
/// 3 + 1 -> 2 + 2 vectors).
fn without_short_tail(total: usize, width: usize, per_unit: usize) -> usize {
    let tiles = total.div_ceil(width);
    let last = total - (tiles - 1) * width;
    let even = total.div_ceil(tiles);
    if last * per_unit < FMA_CHAINS && total - (tiles - 1) * even > last {
        even
    } else {
        width
    }
}

/// The tile of a `gspc-dwc` variant: `lanes`-wide vectors, `16 / lanes` per pixel,
/// `reg_n` pixels per tile.
fn plan_dwc(layer: &LayerSpec, isa: Isa, scalar: bool, compact: bool) -> VariantPlan {
    let [kh, kw] = layer.kernel;
    let ow = layer.output()[1];
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
        .min(MAX_ACCUMULATORS / per_pixel)
        .max(1);
    let code_cap = tile_fmas(compact) / (nvec * kh * kw);
    let max_r = budget.min(code_cap).min(ow).max(1);
    let reg_n = tile_columns(ow, max_r, per_pixel);
    VariantPlan {
        isa,
        lanes,
        nvec,
        reg_n,
        full_tiles: ow / reg_n,
        tail: ow % reg_n,
        last_start: ow / reg_n * reg_n,
        rows: 1,
        last_offsets: Vec::new(),
        kernel: kernel_name(layer, Strategy::GspcDwc, isa),
        direct: false,
        flat: false,
    }
}

/// One column tile of a `gspc-dwc` row: its pixels and the taps of each that read the
/// input (taps over the left and right zero padding are left out at generation time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DwcColTile {
    /// First output column.
    pub ow0: usize,
    /// What the tile computes, relative to `ow0` (shared by tiles that compute alike).
    pub shape: DwcColShape,
}

/// What a `gspc-dwc` column tile computes, relative to its first column.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DwcColShape {
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
pub fn dwc_col_tiles(l: &LayerSpec, v: &VariantPlan) -> Vec<DwcColTile> {
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
            DwcColTile {
                ow0,
                shape: DwcColShape {
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
pub fn dwc_row_runs(l: &LayerSpec) -> Vec<(usize, usize, usize, usize)> {
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
pub fn dwc_input_span(shape: &DwcColShape) -> usize {
    shape.span.max(1) * DWC_BLOCK
}

/// Values of the packed input of one `gspc-dwc` block, `[H][W][16]` without padding (the
/// rest of the scratch holds its output pixels).
pub fn dwc_input_len(p: &LayerPlan) -> usize {
    p.layer.input[0] * p.layer.input[1] * DWC_BLOCK
}

fn check_bounds_dwc(p: &LayerPlan) -> Vec<String> {
    let l = &p.layer;
    let [oh, ow] = p.output;
    let [h, w] = l.input;
    let taps = l.kernel[0] * l.kernel[1];
    let mut problems = Vec::new();
    if p.units() * taps * DWC_BLOCK > p.bias_offset {
        problems.push("weights window past the bias offset".to_string());
    }
    let (xlen, olen) = (dwc_input_len(p), oh * ow * DWC_BLOCK);
    if xlen + olen > p.scratch_len {
        problems.push(format!("scratch {} < {xlen} + {olen}", p.scratch_len));
    }
    let runs = dwc_row_runs(l);
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
    for v in &p.variants {
        let tiles = dwc_col_tiles(l, v);
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
            let x_last = ((h - 1) * w + first) * DWC_BLOCK + dwc_input_span(&t.shape);
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
    }
    problems
}

/// Bounds of the direct `gspc-ow` kernel: its input rows inside the plane, its output rows
/// and vectors inside the block.
fn check_bounds_direct(p: &LayerPlan, v: &VariantPlan) -> Vec<String> {
    let l = &p.layer;
    let [oh, ow] = p.output;
    let mut problems = Vec::new();
    let ow = if v.flat { oh * ow } else { ow };
    for t in direct_row_tiles(l, v.rows) {
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
    let cols = direct_col_tiles(v);
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

/// Whether the portable code runs on scalar floating-point registers only (Cortex-M and
/// other targets without vector units): then each f32 lane of an accumulator takes one of
/// about 32 registers (Cortex-M4F: s0-s31).
fn scalar_fpu(target: &Target) -> bool {
    matches!(target.arch, Arch::Arm | Arch::Other) && !target.has("neon")
}

fn plan_oc(
    layer: &LayerSpec,
    strategy: Strategy,
    oc_bn: usize,
    isa: Isa,
    scalar: bool,
    compact: bool,
) -> VariantPlan {
    let [kh, kw] = layer.kernel;
    let ow = layer.output()[1];
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
    // 32-register ISAs at most 20 accumulators: 28 spilled on Zen 5 (measured: 56x56
    // layers ran at half the speed of 14x14 ones with 28, at the same speed with 14-20).
    let budget = (regs.saturating_sub(acc_regs_per_col + 2) / acc_regs_per_col)
        .min(MAX_ACCUMULATORS / acc_regs_per_col);
    let code_cap = tile_fmas(compact) / (nvec * kh * kw);
    let max_r = budget.min(code_cap).min(ow).max(1);
    let reg_n = tile_columns(ow, max_r, acc_regs_per_col);
    VariantPlan {
        isa,
        lanes,
        nvec,
        reg_n,
        full_tiles: ow / reg_n,
        tail: ow % reg_n,
        last_start: ow / reg_n * reg_n,
        rows: 1,
        last_offsets: Vec::new(),
        kernel: kernel_name(layer, strategy, isa),
        direct: false,
        flat: false,
    }
}

fn plan_ow(
    layer: &LayerSpec,
    strategy: Strategy,
    oc_bn: usize,
    isa: Isa,
    scalar: bool,
    compact: bool,
) -> VariantPlan {
    let [kh, kw] = layer.kernel;
    // The flat direct kernel sees the whole output plane as one row (it unrolls the
    // plane, so compact code does without it).
    let flat = !compact && direct_flat(layer, isa, scalar, oc_bn);
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
    let dl = direct_lanes(isa);
    let narrow = !compact && !flat && ow < dl && direct_applies(layer, isa, scalar, oc_bn);
    let lanes = if narrow || flat { dl } else { lanes };
    let acc_per_vec = match isa {
        Isa::Portable if scalar => lanes,
        Isa::Portable => lanes.div_ceil(4),
        _ => 1,
    };
    let budget = (regs.saturating_sub(acc_per_vec + 2) / acc_per_vec).min(MAX_ACCUMULATORS);
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
        flat || narrow || (!compact && lanes == dl && direct_applies(layer, isa, scalar, oc_bn));
    let (dv, dr) = direct_tile(isa);
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
        kernel: kernel_name(layer, strategy, isa),
        direct,
        flat,
    }
}

/// Unrolled multiply-adds per tile function: [`MAX_TILE_FMAS`], or a quarter of it for
/// compact code.
fn tile_fmas(compact: bool) -> usize {
    if compact {
        MAX_TILE_FMAS / 4
    } else {
        MAX_TILE_FMAS
    }
}

/// Widest output row of the direct `gspc-ow` kernel, which unrolls whole rows (wider rows
/// keep the packed kernel and its loop over column tiles).
pub const DIRECT_MAX_WIDTH: usize = 256;

/// Vector lanes of the direct `gspc-ow` kernel on an ISA (0: none there).
pub fn direct_lanes(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 8,
        Isa::Neon | Isa::Portable => 0,
    }
}

/// Tile of the direct kernel on an ISA: (vectors per row, output rows), at most. AVX-512:
/// 4 x 2, the 9 weights of a 3x3 kernel in registers beside 8 accumulators (4 x 4 spilled
/// on Zen 5); AVX2's 16 registers: 2 x 2.
pub fn direct_tile(isa: Isa) -> (usize, usize) {
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
/// Measured on Zen 5 (mobilenet_v1_dw shapes, both kernels in one run): see the README.
pub fn direct_applies(layer: &LayerSpec, isa: Isa, scalar: bool, oc_bn: usize) -> bool {
    let lanes = direct_lanes(isa);
    let span = (layer.kernel[1] - 1) * layer.dilation[1];
    lanes > 0
        && layer.output()[1] <= DIRECT_MAX_WIDTH
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
pub const DIRECT_FLAT_MAX: usize = 256;

/// Whether the direct kernel sees the plane as one row of `H * W` values (flat): depthwise
/// (as [`direct_applies`]) with stride 1 and "same" padding (output plane = input plane), so
/// output `f` and its taps are `f + (kh DH - PH) W + kw DW - PW` of the flat input plane:
/// vectors span rows and no lane is wasted on narrow rows (14x14: 13 vectors of 16 for 196
/// values); a tap's lanes whose column falls outside the row are masked out of the FMA,
/// rows above and below the plane load as zeros. Planes of one vector to
/// [`DIRECT_FLAT_MAX`] values.
pub fn direct_flat(layer: &LayerSpec, isa: Isa, scalar: bool, oc_bn: usize) -> bool {
    let hw = layer.input[0] * layer.input[1];
    direct_applies(layer, isa, scalar, oc_bn)
        && layer.stride == [1, 1]
        && layer.output() == layer.input
        && (direct_lanes(isa)..=DIRECT_FLAT_MAX).contains(&hw)
}

/// One tile of output rows of the direct kernel and the input rows it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectRowTile {
    /// First output row.
    pub oh0: usize,
    /// First input row read (0 if none is).
    pub ih0: usize,
    /// The tile's shape, shared by tiles that compute alike.
    pub shape: DirectRowShape,
}

/// What a row tile of the direct kernel computes, relative to its first rows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DirectRowShape {
    /// Output rows.
    pub rows: usize,
    /// Input rows read, from `ih0`.
    pub span: usize,
    /// `(output row, kernel row, input row)` of every kernel row inside the input,
    /// relative to `oh0` and `ih0`; kernel rows over the zero padding are left out.
    pub taps: Vec<(usize, usize, usize)>,
}

/// The row tiles of the direct kernel: `rows` output rows each (fewer in the last).
pub fn direct_row_tiles(layer: &LayerSpec, rows: usize) -> Vec<DirectRowTile> {
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
        tiles.push(DirectRowTile {
            oh0,
            ih0,
            shape: DirectRowShape {
                rows: n,
                span,
                taps,
            },
        });
    }
    tiles
}

/// The column blocks of the direct kernel: per column tile, the first column of each vector.
pub fn direct_col_tiles(v: &VariantPlan) -> Vec<Vec<usize>> {
    let mut tiles: Vec<Vec<usize>> = (0..v.full_tiles)
        .map(|t| (0..v.nvec).map(|i| t * v.reg_n + i * v.lanes).collect())
        .collect();
    if !v.last_offsets.is_empty() {
        tiles.push(v.last_offsets.iter().map(|o| v.last_start + o).collect());
    }
    tiles
}

/// Input window of one tile for one channel: the span from its first to its last value in
/// the packed input, for unit offsets `offsets` (columns for `gspc-oc`, vector starts for
/// `gspc-ow`).
pub fn input_span(p: &LayerPlan, v: &VariantPlan, offsets: &[usize], out_rows: usize) -> usize {
    let l = &p.layer;
    let last = offsets.iter().copied().max().unwrap_or(0);
    let rows = ((out_rows - 1) * l.stride[0] + (l.kernel[0] - 1) * l.dilation[0]) * p.row_len;
    match p.strategy {
        Strategy::GspcOc => {
            (rows + last * l.stride[1] + (l.kernel[1] - 1) * l.dilation[1]) * p.gpv + p.gpv
        }
        // Not used: gspc-dwc tiles read one input row at a time (see `dwc_col_tiles`).
        Strategy::GspcDwc => (last + l.kernel[1]) * DWC_BLOCK,
        Strategy::GspcOw => {
            let taps = (0..l.kernel[1])
                .map(|kw| p.col_index(kw * l.dilation[1]))
                .max()
                .unwrap_or(0);
            rows + taps + last + v.lanes
        }
    }
}

/// Output window of one tile: `oc_bn` channel planes, up to the tile's last column.
pub fn output_span(p: &LayerPlan, v: &VariantPlan, offsets: &[usize], out_rows: usize) -> usize {
    let [oh, ow] = p.output;
    let last = offsets.iter().copied().max().unwrap_or(0);
    let width = match p.strategy {
        Strategy::GspcOc | Strategy::GspcDwc => 1,
        Strategy::GspcOw => v.lanes,
    };
    (p.oc_bn - 1) * oh * ow + (out_rows - 1) * ow + last + width
}

/// The generated kernels index fixed windows whose positions the generator computes; this
/// proves, for the last tile of every kind, that each window lies inside its buffer. A
/// failure is a generator bug, caught before any code is emitted.
fn check_bounds(p: &LayerPlan) -> Result<(), Error> {
    let l = &p.layer;
    if p.strategy == Strategy::GspcDwc {
        let problems = check_bounds_dwc(p);
        return if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Internal(format!(
                "layer {}: {}",
                l.name,
                problems.join("; ")
            )))
        };
    }
    let hp = p.padded[0];
    let [oh, ow] = p.output;
    let (g, cpg) = (l.groups, p.cpg());
    let window = l.kernel[0] * l.kernel[1] * p.oc_bn;
    // The last block's weights: blocks are (group or block of gpv groups) x nocb.
    let blocks = g / p.gpv * p.nocb();
    let w_last = ((blocks - 1) * cpg + cpg - 1) * window + window;
    let mut problems = Vec::new();
    if w_last > p.bias_offset {
        problems.push(format!(
            "weights window ends at {w_last} > {}",
            p.bias_offset
        ));
    }
    let col_step = match p.strategy {
        Strategy::GspcOc | Strategy::GspcDwc => l.stride[1],
        Strategy::GspcOw => 1,
    };
    for v in &p.variants {
        if v.direct {
            problems.extend(check_bounds_direct(p, v));
            continue;
        }
        let mut tiles = Vec::new();
        if v.full_tiles > 0 {
            tiles.push(((v.full_tiles - 1) * v.reg_n, v.full_offsets(p.strategy)));
        }
        let tail = v.tail_offsets(p.strategy);
        if !tail.is_empty() {
            tiles.push((v.last_ow0(), tail));
        }
        if tiles.is_empty() {
            problems.push(format!("{}: no tiles", v.isa));
        }
        // Row tiles: full ones of `rows` rows, then the rest.
        let mut row_tiles = vec![(oh / v.rows * v.rows - v.rows, v.rows)];
        if oh % v.rows > 0 {
            row_tiles.push((oh / v.rows * v.rows, oh % v.rows));
        }
        for (ow0, offsets) in tiles {
            for &(oh0, rows) in &row_tiles {
                let x_last =
                    ((cpg - 1) * hp * p.row_len + oh0 * l.stride[0] * p.row_len + ow0 * col_step)
                        * p.gpv
                        + input_span(p, v, &offsets, rows);
                if x_last > p.scratch_len {
                    problems.push(format!(
                        "{}: input window ends at {x_last} > {}",
                        v.isa, p.scratch_len
                    ));
                }
                let o_last = oh0 * ow + ow0 + output_span(p, v, &offsets, rows);
                if o_last > p.oc_bn * oh * ow {
                    problems.push(format!(
                        "{}: output window ends at {o_last} > {}",
                        v.isa,
                        p.oc_bn * oh * ow
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "layer {}: {}",
            l.name,
            problems.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::tile_columns;

    #[test]
    fn rows_are_split_without_short_last_tiles() {
        // A divisor of the width from two thirds of the maximum up wins.
        assert_eq!(tile_columns(56, 6, 2), 4);
        assert_eq!(tile_columns(56, 20, 1), 14);
        assert_eq!(tile_columns(14, 20, 1), 14);
        // AVX2's 14 columns of 2 vectors: 6 + 6 + 2 left 4 accumulators in the last tile.
        assert_eq!(tile_columns(14, 6, 2), 5);
        // 21 columns, up to 20: 20 + 1 -> 11 + 10.
        assert_eq!(tile_columns(21, 20, 1), 11);
        // 13 columns of 2 vectors: 6 + 6 + 1 -> 5 + 5 + 3.
        assert_eq!(tile_columns(13, 6, 2), 5);
        // A tail that already holds enough accumulators stays.
        assert_eq!(tile_columns(50, 20, 1), 20);
        // Nothing better exists: 7 columns of 4 vectors, at most 2 per tile.
        assert_eq!(tile_columns(7, 2, 4), 2);
        assert_eq!(tile_columns(1, 1, 1), 1);
    }
}
