//! Planning: from a validated layer and a target, the strategy, the packed layouts and the
//! register tile of every ISA variant. Pure arithmetic, no code.
//!
//! # Kernel kinds
//!
//! A spec's `strategy` (spec vocabulary, [`Strategy`]) fixes a layer's packed layouts; each
//! ISA variant then runs one [`Kind`] of kernel, and each kind has its own module with its
//! planning rules, bounds proof and line estimate:
//!
//! - [`packed_oc`]: `gspc-oc`, output channels on the vector axis;
//! - [`packed_ow`]: `gspc-ow` over the packed input, output columns on the vector axis;
//! - [`direct`]: `gspc-ow`'s x86 SIMD variants of depthwise layers, straight from the NCHW
//!   input (flat: the plane as one row);
//! - [`dwc`]: `gspc-dwc`, depthwise with channels on the vector axis;
//! - [`inplace_oc`]: `gspc-oc`'s AVX-512 tiles reading the input in place (no packing).
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

pub(crate) mod direct;
pub(crate) mod dwc;
pub(crate) mod inplace_oc;
pub(crate) mod packed_oc;
pub(crate) mod packed_ow;
pub(crate) mod quant;

use crate::error::Error;
use crate::spec::LayerSpec;
pub(crate) use crate::spec::{DWC_BLOCK, Strategy};
use crate::target::{Arch, Target};
use gspc_runtime::Isa;

/// Accumulator registers of one tile, at most (see `plan_layer`).
pub(crate) const MAX_ACCUMULATORS: usize = crate::spec::limits::MAX_ACCUMULATORS;

/// Independent accumulators a tile needs to keep the FMA pipes busy: 2 pipes x 4 cycles of
/// latency on Zen 4/5 and recent Intel cores.
pub(crate) const FMA_CHAINS: usize = 8;

/// Unrolled multiply-adds (vector FMAs) in one tile function, at most.
pub(crate) const MAX_TILE_FMAS: usize = 1024;

/// The kernel an ISA variant runs. The layer's [`Strategy`] gives its layouts; a `gspc-ow`
/// layer's variants run [`Kind::Direct`] where `direct::applies`, else [`Kind::PackedOw`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `gspc-oc` (see `packed_oc`): a tile is `reg_n` output columns x `oc_bn` output
    /// channels; one broadcast input value per column and tap.
    PackedOc,
    /// `gspc-oc`'s tiles over the NCHW input read in place, the taps over the padding left
    /// out at generation time (see `inplace_oc`).
    InPlaceOc,
    /// `gspc-ow` over the packed input (see `packed_ow`): a tile is `oc_bn` output
    /// channels of one group x a few vectors of consecutive output columns; one input
    /// vector load per tap serves every channel of the tile.
    PackedOw,
    /// `gspc-ow` computed straight from the NCHW input, without packing (see `direct`);
    /// `flat`: over the plane as one row, columns are positions in the plane.
    Direct {
        /// The plane as one row (see `direct::flat`).
        flat: bool,
    },
    /// `gspc-dwc` (see `dwc`): blocks of `DWC_BLOCK` channels packed as pixels; a tile
    /// is a few output pixels of a row.
    Dwc,
    /// The AVX-512 form of a `gspc-dwc` layer at stride 2 on rows of at most 8 columns
    /// (see `dwc::pairs_apply`): the NCHW input read in place, two output rows of one
    /// channel in a vector, on the `gspc-dwc` packed weights.
    DwcPairs,
}

impl Kind {
    /// Whether this is the direct kernel.
    pub fn is_direct(self) -> bool {
        matches!(self, Kind::Direct { .. })
    }

    /// Whether this is the direct kernel over the plane as one row.
    pub fn is_flat(self) -> bool {
        self == Kind::Direct { flat: true }
    }
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
    /// Kernel name (see `kernel_name`).
    pub kernel: String,
    /// The kernel this variant runs.
    pub kind: Kind,
}

impl VariantPlan {
    /// First column of the last tile.
    pub fn last_ow0(&self) -> usize {
        self.last_start
    }

    /// Unit offsets of the full tile (columns for `gspc-oc` and `gspc-dwc`, vectors for
    /// `gspc-ow`).
    pub fn full_offsets(&self) -> Vec<usize> {
        match self.kind {
            Kind::PackedOc | Kind::InPlaceOc | Kind::Dwc | Kind::DwcPairs => {
                (0..self.reg_n).collect()
            }
            Kind::PackedOw | Kind::Direct { .. } => {
                (0..self.nvec).map(|v| v * self.lanes).collect()
            }
        }
    }

    /// Unit offsets of the last tile (empty: no last tile).
    pub fn tail_offsets(&self) -> Vec<usize> {
        match self.kind {
            Kind::PackedOc | Kind::InPlaceOc | Kind::Dwc | Kind::DwcPairs => {
                (0..self.tail).collect()
            }
            Kind::PackedOw | Kind::Direct { .. } => self.last_offsets.clone(),
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
    /// Packed weights and bias, then those of [`LayerPlan::one_group`] if the layer has
    /// one.
    pub packed_len: usize,
    /// Per-call scratch: the packed input of one group (packed just before its outputs are
    /// computed, so it is still in cache); with a [`LayerPlan::one_group`], enough for that
    /// plan's too.
    pub scratch_len: usize,
    /// `gspc-oc`: groups side by side in one vector block (1, 2 or 4). With `gpv > 1`,
    /// lane `l` of a block is channel `l / gpv` of group `l % gpv` of the block's groups, and
    /// the packed input interleaves those groups' pixels, so one broadcast of `gpv`
    /// consecutive values (64 or 128 bits) feeds every lane its own group's input.
    pub gpv: usize,
    /// Compact code: tiles of at most a quarter of `MAX_TILE_FMAS` multiply-adds and no
    /// direct kernel (which unrolls whole rows or planes), so the layer's code does not
    /// grow with its plane; pinned by the spec or chosen by [`crate::plan()`] for the largest
    /// layers of a model that would pass the generated-lines limit.
    pub compact: bool,
    /// On a CPU whose 512-bit FMAs run at the FLOP rate of 256-bit ones (Zen 4; see
    /// `gspc_runtime::x86::avx512_full_rate`), the dispatcher runs the AVX2 variant instead
    /// of the AVX-512 one (see `plan::avx2_at_half_rate` and docs/design.md, "Dispatch").
    pub avx2_at_half_rate: bool,
    /// The form the AVX-512 variant's `run_units` runs instead on a CPU whose 512-bit FMAs
    /// run at half rate, on the same packed weights, if the layer has one: the in-place
    /// form of a `gspc-oc` variant that packs its input (see `plan::inplace_oc::at_half_rate`),
    /// or narrower `gspc-ow` tiles (see `plan::packed_ow::at_half_rate`).
    pub half_rate: Option<VariantPlan>,
    /// Where this plan puts 2 groups side by side (`gpv` 2): the same layer with one group
    /// a vector block, on packed weights of its own (after the layer's, in `packed_len`),
    /// with the layer's AVX2 and AVX-512 variants. The AVX2 variant's `run_units` hands
    /// every block to it, the AVX-512 one's where 512-bit FMAs run at half rate, so groups
    /// side by side run only at full rate (see `plan::one_group` and docs/design.md, "One
    /// group a block off full-rate AVX-512"). `None` for other layers.
    pub one_group: Option<Box<LayerPlan>>,
    /// A `gspc-dwc` layer's blocks can also run as bands of output rows (each variant has
    /// a `run_band`), so that threads share a layer of few blocks: on targets with threads,
    /// and not for compact code (`run_band` repeats the row loops of `run_units`).
    pub row_bands: bool,
    /// One entry per ISA variant, in the order given.
    pub variants: Vec<VariantPlan>,
    /// What chose this plan.
    pub chosen: Chosen,
    /// An int8 layer's layout and vector flavors (see `plan::quant`); `None` for f32 layers.
    pub quant: Option<quant::QPlan>,
}

/// What chose a layer's plan (shown by `plan`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Chosen {
    /// The cost model.
    #[default]
    Model,
    /// The spec's pins (`"strategy"`, `"oc_block"`, `"compact"`).
    Spec,
    /// A tuning database (`Options::tuning`).
    Tuned,
}

impl Chosen {
    /// `model`, `spec` or `tuned`.
    pub fn as_str(self) -> &'static str {
        match self {
            Chosen::Model => "model",
            Chosen::Spec => "spec",
            Chosen::Tuned => "tuned",
        }
    }
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

    /// Where the packed weights of [`LayerPlan::one_group`] start, if the layer has one:
    /// just after the layer's own bias.
    pub fn one_group_at(&self) -> Option<usize> {
        self.one_group
            .as_ref()
            .map(|_| self.bias_offset + self.layer.out_channels)
    }

    /// Whether `v` is the layer's half-rate form ([`LayerPlan::half_rate`]).
    pub fn is_half_rate(&self, v: &VariantPlan) -> bool {
        self.half_rate.as_ref() == Some(v)
    }

    /// Generated lines of code, estimated (for the size limit).
    pub fn estimated_lines(&self) -> usize {
        if let Some(q) = &self.quant {
            return quant::estimated_lines(q);
        }
        let per_variant = |v: &VariantPlan| {
            // Formatted lines per statement: calls of intrinsics wrap over several lines.
            let per = match v.isa {
                Isa::Portable => 3,
                _ => 5,
            };
            match v.kind {
                Kind::PackedOc => packed_oc::estimated_lines(self, v, per),
                Kind::InPlaceOc => inplace_oc::estimated_lines(self, v, per),
                Kind::PackedOw => packed_ow::estimated_lines(self, v, per),
                Kind::Direct { .. } => direct::estimated_lines(self, v, per),
                Kind::Dwc => dwc::estimated_lines(self, v, per),
                Kind::DwcPairs => dwc::pairs_estimated_lines(self, per),
            }
        };
        // With a one-group plan, the AVX2 variant's module only hands over to it.
        self.variants
            .iter()
            .filter(|v| self.one_group.is_none() || v.isa != Isa::Avx2)
            .chain(self.half_rate.as_ref())
            .map(per_variant)
            .sum::<usize>()
            + 250
            + self.one_group.as_ref().map_or(0, |h| h.estimated_lines())
    }
}

/// `f32_gconv_g{G}c{CPG}k{KPG}_k{KH}x{KW}s{SH}x{SW}d{DH}x{DW}p{PH}x{PW}_{H}x{W}_{strategy}__{isa}`:
/// data type, operation, groups and channels per group, kernel window, stride, dilation,
/// padding, input size, strategy, then the ISA after a double underscore.
pub(crate) fn kernel_name(l: &LayerSpec, strategy: Strategy, isa: Isa) -> String {
    format!(
        "f32_gconv_{}_{}__{}",
        crate::tuning::shape_signature(l),
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
pub(crate) struct Pin {
    /// Strategy, or the cost model's.
    pub strategy: Option<Strategy>,
    /// `oc_bn`, or the cost model's.
    pub oc_block: Option<usize>,
    /// Compact code (see [`LayerPlan::compact`]).
    pub compact: bool,
    /// The input always packed: no direct `gspc-ow` kernel, no in-place `gspc-oc`
    /// (`"direct": false`).
    pub pack_input: bool,
    /// Accumulator registers of one tile, at most (`"accumulators"`; default
    /// [`MAX_ACCUMULATORS`]): fewer make narrower tiles (fewer columns, or for `gspc-ow`
    /// fewer vectors and rows).
    pub accumulators: Option<usize>,
}

impl Pin {
    /// What the spec pins for `layer` (compact code only where it says `"compact": true`).
    pub fn of(layer: &LayerSpec) -> Self {
        Pin {
            strategy: layer.strategy,
            oc_block: layer.oc_block,
            compact: layer.compact == Some(true),
            pack_input: layer.direct == Some(false),
            accumulators: layer.accumulators,
        }
    }

    /// Accumulator registers of one tile, at most.
    pub fn max_accumulators(&self) -> usize {
        self.accumulators
            .unwrap_or(MAX_ACCUMULATORS)
            .min(MAX_ACCUMULATORS)
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

#[cfg(test)]
/// Plans one layer for the given ISA variants.
pub(crate) fn plan_layer(
    layer: &LayerSpec,
    target: &Target,
    isas: &[Isa],
) -> Result<LayerPlan, Error> {
    plan_layer_pinned(layer, target, isas, Pin::of(layer))
}

/// [`plan_layer`] with the strategy and/or `oc_bn` pinned.
pub(crate) fn plan_layer_pinned(
    layer: &LayerSpec,
    target: &Target,
    isas: &[Isa],
    pin: Pin,
) -> Result<LayerPlan, Error> {
    if layer.dtype() == crate::spec::Dtype::Int8 {
        // The pins int8 plans take (a tuned plan's, or the spec's own); int8 code has no
        // compact form, and `"direct"` stays the spec's, which int8 refuses.
        let pinned = LayerSpec {
            strategy: pin.strategy,
            oc_block: pin.oc_block,
            accumulators: pin.accumulators,
            ..layer.clone()
        };
        return quant::plan_layer(&pinned, target, isas);
    }
    let kpg = layer.out_per_group();
    let max_oc_bn = match target.arch {
        Arch::X86_64 | Arch::Aarch64 => 16,
        Arch::Arm | Arch::Other => 8,
    };
    let oc_bn_oc = largest_divisor_at_most(kpg, max_oc_bn);
    let strategy = pin.strategy.unwrap_or_else(|| {
        // The direct gspc-ow kernel (AVX-512 or AVX2) needs no transposes and beats
        // gspc-dwc on narrow depthwise rows (docs/benchmarks/2026-11-28-zen5.md).
        let direct = !pin.compact
            && !pin.pack_input
            && [Isa::Avx512, Isa::Avx2]
                .iter()
                .any(|i| isas.contains(i) && direct::applies(layer, *i, false, 1));
        if target.arch == Arch::X86_64
            && layer.dwc_applies()
            && (dwc_large_kernel_pays(layer)
                || dwc_strided_narrow_pays(layer)
                || dwc_pays(layer) && !direct)
        {
            Strategy::GspcDwc
        } else if quarter_groups_strided(layer, target, isas) {
            Strategy::GspcOw
        } else if groups_per_vector(layer, target, isas) > 1 && layer.output()[1] <= 8 {
            // Groups side by side fill the vector; at 8 columns or fewer `gspc-ow` cannot
            // (docs/benchmarks/2026-11-28-zen5.md, "Groups side by side").
            Strategy::GspcOc
        } else {
            choose_strategy(layer, isas, oc_bn_oc)
        }
    });
    // Narrow rows (OW <= 8) leave no more accumulators than FMAs in flight
    // (`FMA_CHAINS`): two vectors of channels per column fill them
    // (docs/benchmarks/2026-11-27-zen5.md, "`oc_bn` 32 on narrow rows").
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
        Strategy::GspcOw if quarter_groups_strided(layer, target, isas) => 2,
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
    let variants: Vec<VariantPlan> = isas
        .iter()
        .map(|&isa| match strategy {
            Strategy::GspcOc => {
                let mut v = packed_oc::plan(layer, oc_bn, isa, scalar_fpu(target), &pin);
                if !pin.pack_input && inplace_oc::applies(layer, &v, gpv, pin.compact) {
                    v.kind = Kind::InPlaceOc;
                }
                v
            }
            Strategy::GspcOw => packed_ow::plan(layer, oc_bn, isa, scalar_fpu(target), &pin),
            Strategy::GspcDwc => dwc::plan(layer, isa, scalar_fpu(target), &pin),
        })
        .collect();
    let avx2_at_half_rate = avx2_at_half_rate(layer, &variants);
    let avx512 = variants.iter().find(|v| v.isa == Isa::Avx512);
    let half_rate = match avx512 {
        Some(v) if !pin.pack_input && inplace_oc::at_half_rate(layer, v, gpv, pin.compact) => {
            Some(VariantPlan {
                kind: Kind::InPlaceOc,
                ..v.clone()
            })
        }
        Some(v) if !avx2_at_half_rate => packed_ow::at_half_rate(layer, v, oc_bn, &pin),
        _ => None,
    };
    let scratch_len = match strategy {
        // The packed input of one block, then its output pixels.
        Strategy::GspcDwc => (layer.input[0] * layer.input[1] + output[0] * output[1]) * DWC_BLOCK,
        _ => layer.in_per_group() * padded[0] * row_len * gpv,
    };
    let mut plan = LayerPlan {
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
        avx2_at_half_rate,
        half_rate,
        one_group: None,
        row_bands: strategy == Strategy::GspcDwc && target.has_threads() && !pin.compact,
        variants,
        chosen: Chosen::Model,
        quant: None,
    };
    check_bounds(&plan)?;
    if let Some(h) = one_group(&plan, target, isas, &pin)? {
        // Its weights after the layer's; the scratch holds either plan's packed input.
        plan.packed_len += h.packed_len;
        plan.scratch_len = plan.scratch_len.max(h.scratch_len);
        plan.half_rate = None;
        plan.one_group = Some(Box::new(h));
    }
    Ok(plan)
}

/// The one-group plan of `p` ([`LayerPlan::one_group`]): for a `gspc-oc` layer with 2 groups
/// side by side (`gpv` 2: 8 channels a group) that the cost model planned (nothing pinned)
/// and that has an AVX-512 variant, the same layer with one group a block (`oc_block` 8)
/// and the layer's AVX2 and AVX-512 variants (a half-rate form of its own, if it had one,
/// would be switched to by its AVX-512 variant as any plan's is).
///
/// Groups side by side fill a 16-lane vector with 2 groups of 8 channels, at the cost of a
/// packed input that interleaves the two groups' pixels (twice the scratch of one group)
/// and a 64-bit broadcast per input pixel. Where 512-bit FMAs run at full rate (Zen 5) the
/// full vector pays for both. Measured on Zen 4 (docs/benchmarks/2026-12-08-zen4-half-rate.md,
/// section 7), on 18 shapes of 8 channels a group (4 to 16 input channels a group, 7 to
/// 28 columns, stride 1 and 2), one group a block took:
/// - with AVX-512 at half rate: 0.64-0.96x the time at 1 thread, 0.43-0.91x at 2;
/// - with AVX2: 0.67-0.96x at 1 thread (the AVX2 variant on either layout).
///
/// (Its 8-lane tiles hold at most `packed_oc::NARROW_TILE_COLUMNS` columns: with 14, the
/// stride-1 shapes took 1.4-1.6x the time of groups side by side.) With 4 groups side by
/// side (4 channels a group) one group a block took 1.15-1.5x the time at half rate, so
/// those stay as they are.
fn one_group(
    p: &LayerPlan,
    target: &Target,
    isas: &[Isa],
    pin: &Pin,
) -> Result<Option<LayerPlan>, Error> {
    let pinned = pin.strategy.is_some() || pin.oc_block.is_some();
    // The packing AVX-512 kernel's `run_units` is where its hand-over is emitted.
    let avx512_packs = p
        .variants
        .iter()
        .any(|v| v.isa == Isa::Avx512 && v.kind == Kind::PackedOc);
    if p.gpv != 2 || p.strategy != Strategy::GspcOc || pinned || !avx512_packs {
        return Ok(None);
    }
    let one = Pin {
        strategy: Some(Strategy::GspcOc),
        oc_block: Some(p.kpg()),
        ..*pin
    };
    let own: Vec<Isa> = [Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|i| isas.contains(i))
        .collect();
    plan_layer_pinned(&p.layer, target, &own, one).map(Some)
}

/// Whether the AVX2 variant beats the AVX-512 one where 512-bit FMAs run at half rate
/// (the same FLOPs per cycle as 256-bit ones: Zen 4). There a 16-lane vector costs what two
/// 8-lane ones cost, so AVX-512 gains only from its 32 registers, and loses where its
/// vectors waste lanes that 8-lane ones would not. Measured on Zen 4 (docs/depthwise.md,
/// "Part 3", and docs/benchmarks/2026-12-07-zen4.md):
/// - the flat direct kernel takes 1.1-2x AVX2's time with AVX-512: 5x5 and 7x7 kernels
///   (7x7 and 14x14 planes: masked taps over 49 or 196 values), and also 3x3 ones (8x8,
///   7x7 and 14x14 planes: 1.1-1.5x);
/// - `gspc-ow` rows where AVX2 fills at least 1.25x the share of its lanes that AVX-512
///   does, and whole 8-lane vectors (rows of 8 columns at stride 2: 1.3x); not where AVX2's
///   last vector is part of one (rows of 7 columns at stride 2: AVX2's masked loads and
///   stores took 1.6x AVX-512's time);
/// - with the same lane use (rows of 14 columns and more) AVX-512 ties or wins (rows of 28
///   and 56 columns: 0.7-0.95x AVX2's time), as do `gspc-oc` and `gspc-dwc`, whose channel
///   blocks fill both.
///
/// On Zen 5, where these layers take 0.75-0.88x AVX2's time with AVX-512, the dispatcher
/// keeps AVX-512 (docs/benchmarks/2026-12-06-zen5.md).
fn avx2_at_half_rate(layer: &LayerSpec, variants: &[VariantPlan]) -> bool {
    let find = |isa| variants.iter().find(|v| v.isa == isa);
    let (Some(wide), Some(narrow)) = (find(Isa::Avx512), find(Isa::Avx2)) else {
        return false;
    };
    let [oh, ow] = layer.output();
    // The share of the lanes a variant issues over a row (over the plane: flat) that hold
    // real output columns.
    let lane_use = |v: &VariantPlan| {
        let cols = if v.kind.is_flat() { oh * ow } else { ow };
        let vectors = v.full_tiles * v.full_offsets().len() + v.tail_offsets().len();
        cols as f64 / (vectors * v.lanes) as f64
    };
    match wide.kind {
        Kind::Direct { flat: true } => true,
        Kind::Direct { .. } | Kind::PackedOw => {
            matches!(narrow.kind, Kind::Direct { .. } | Kind::PackedOw)
                && lane_use(narrow) >= 1.25 * lane_use(wide)
                && ow.is_multiple_of(narrow.lanes)
        }
        Kind::PackedOc | Kind::InPlaceOc | Kind::Dwc | Kind::DwcPairs => false,
    }
}

/// Groups side by side in a vector block for a `gspc-oc` layer: on x86-64 with AVX-512,
/// layers with 4 or 8 output channels per group (which would fill a quarter or half of a
/// 16-lane vector) get 4 or 2 groups per block, when the group count allows; 1 otherwise.
/// Faster than one group per block wherever it applies (docs/benchmarks/2026-11-28-zen5.md,
/// "Groups side by side"). `gspc-ow` stays ahead on rows of 16 columns and more, so the cost
/// model keeps
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

/// Where groups side by side lose to `gspc-ow` with `oc_block` 2 on rows of 8 columns or
/// fewer: 4 groups of 4 output channels a vector at stride 2 and more. Measured on
/// `wrn40_2_g16.b3_0_c64_16s2` (16x16 input, stride 2, 8x8 output) by `gspc-codegen tune`
/// on Zen 5 (3.5 against 5.0 us, in every run: docs/benchmarks/2026-12-06-zen5-tuning.md)
/// and on Zen 4 (6.1 against 10.7 us; `oc_block` 4 took 8.3, 1: 7.7:
/// docs/benchmarks/2026-12-07-zen4-dense.md). Groups of 8 channels (2 a vector) stay side
/// by side: on Zen 5 they were within 5% of the best plan.
fn quarter_groups_strided(layer: &LayerSpec, target: &Target, isas: &[Isa]) -> bool {
    groups_per_vector(layer, target, isas) == 4 && layer.stride[1] > 1 && layer.output()[1] <= 8
}

/// Where the cost model picks `gspc-dwc` over the packed `gspc-ow` for a depthwise layer
/// (x86-64, when no variant has the direct kernel):
/// rows narrower than a 16-lane vector, which `gspc-ow` computes with 8- or 4-lane vectors.
/// Its transposes pay off there and cost more than they save on wider rows
/// (docs/benchmarks/2026-11-27-zen5.md).
fn dwc_pays(layer: &LayerSpec) -> bool {
    layer.output()[1] < 16
}

/// Where `gspc-dwc` beats the direct `gspc-ow` kernel also with small kernels: strided
/// rows of fewer than 8 output columns, where a direct AVX-512 row fills 7 of 16 lanes and
/// an AVX2 one reads the stride-2 input with masked loads past the row's end. Measured on
/// Zen 4 (MobileNetV1's 512ch 3x3 stride-2 14x14 layer, 3 rounds): `gspc-dwc` 11.1 us,
/// the direct kernel 14.0 us with AVX-512 and 21.9 us with AVX2
/// (docs/benchmarks/2026-12-07-zen4.md). Stride 1 rows of 7 columns tie with the
/// direct AVX2 kernel there and stay direct.
fn dwc_strided_narrow_pays(layer: &LayerSpec) -> bool {
    layer.stride != [1, 1] && layer.output()[1] < 8
}

/// Where `gspc-dwc` beats the direct `gspc-ow` kernel: 5x5 and larger kernels on small
/// planes, whose taps it skips over the padding at generation time and whose transposes
/// it amortizes over 25 to 49 taps: outputs of up to 14 columns, and at stride 1 every
/// 7x7 or larger kernel. On wider 5x5 planes and at stride 2 beyond 14 output columns the
/// transposes dominate and the direct kernel stays ahead (docs/depthwise.md, "Which
/// kernel where"). Stride 2 with 8 to 14 columns was added by tuning on Zen 5
/// (MobileNetV3's 96ch 5x5 28x28: `gspc-dwc` at 0.90-0.93x the direct kernel's time in
/// three runs; a tie on Zen 4, docs/benchmarks/2026-12-06-zen5-tuning.md).
fn dwc_large_kernel_pays(layer: &LayerSpec) -> bool {
    let taps = layer.kernel[0] * layer.kernel[1];
    let ow = layer.output()[1];
    taps >= 25 && (ow <= 14 || layer.stride == [1, 1] && taps >= 49)
}

/// A variant whose tile is `reg_n` output columns of one row (`gspc-oc` and `gspc-dwc`):
/// `reg_n` from the register `budget` in columns, the code cap (`nvec` vectors per column
/// over the whole kernel window) and the row's width, then the row's full tiles and tail.
pub(super) struct ColumnTiles<'a> {
    pub layer: &'a LayerSpec,
    pub isa: Isa,
    pub lanes: usize,
    pub nvec: usize,
    /// Columns the register file holds.
    pub budget: usize,
    /// Accumulator registers one column takes.
    pub per_column: usize,
    pub compact: bool,
    pub strategy: Strategy,
    pub kind: Kind,
}

impl ColumnTiles<'_> {
    pub(super) fn plan(self) -> VariantPlan {
        let [kh, kw] = self.layer.kernel;
        let ow = self.layer.output()[1];
        let code_cap = tile_fmas(self.compact) / (self.nvec * kh * kw);
        let max_r = self.budget.min(code_cap).min(ow).max(1);
        let reg_n = tile_columns(ow, max_r, self.per_column);
        VariantPlan {
            isa: self.isa,
            lanes: self.lanes,
            nvec: self.nvec,
            reg_n,
            full_tiles: ow / reg_n,
            tail: ow % reg_n,
            last_start: ow / reg_n * reg_n,
            rows: 1,
            last_offsets: Vec::new(),
            kernel: kernel_name(self.layer, self.strategy, self.isa),
            kind: self.kind,
        }
    }
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

/// Whether the portable code runs on scalar floating-point registers only (Cortex-M and
/// other targets without vector units): then each f32 lane of an accumulator takes one of
/// about 32 registers (Cortex-M4F: s0-s31).
fn scalar_fpu(target: &Target) -> bool {
    matches!(target.arch, Arch::Arm | Arch::Other) && !target.has("neon")
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

/// The generated kernels index fixed windows whose positions the generator computes; this
/// proves, for the last tile of every kind, that each window lies inside its buffer. A
/// failure is a generator bug, caught before any code is emitted.
fn check_bounds(p: &LayerPlan) -> Result<(), Error> {
    let l = &p.layer;
    let mut problems = match p.strategy {
        Strategy::GspcDwc => dwc::check_layout(p),
        Strategy::GspcOc | Strategy::GspcOw => check_packed_layout(p),
    };
    for v in p.variants.iter().chain(p.half_rate.as_ref()) {
        problems.extend(match v.kind {
            Kind::PackedOc | Kind::PackedOw => check_bounds_packed(p, v),
            Kind::InPlaceOc => inplace_oc::check_bounds(p, v),
            Kind::Direct { .. } => direct::check_bounds(p, v),
            Kind::Dwc => dwc::check_bounds(p, v),
            Kind::DwcPairs => dwc::pairs_check_bounds(p, v),
        });
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

/// Bounds of the packed weights of `gspc-oc` and `gspc-ow`: the last block's weights before
/// the bias.
fn check_packed_layout(p: &LayerPlan) -> Vec<String> {
    let l = &p.layer;
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
    problems
}

/// Bounds of a variant over the packed input ([`Kind::PackedOc`], [`Kind::PackedOw`]): the
/// input and output windows of the last full and the last tile, in the last full and the
/// last row tile, inside the scratch and the output block.
fn check_bounds_packed(p: &LayerPlan, v: &VariantPlan) -> Vec<String> {
    let l = &p.layer;
    let hp = p.padded[0];
    let [oh, ow] = p.output;
    let cpg = p.cpg();
    // Input columns per unit of `offsets` (columns, or `gspc-ow`'s values of a phase).
    let col_step = match v.kind {
        Kind::PackedOw => 1,
        _ => l.stride[1],
    };
    let input_span = |offsets: &[usize], rows: usize| match v.kind {
        Kind::PackedOw => packed_ow::input_span(p, v, offsets, rows),
        _ => packed_oc::input_span(p, offsets, rows),
    };
    let mut problems = Vec::new();
    let mut tiles = Vec::new();
    if v.full_tiles > 0 {
        tiles.push(((v.full_tiles - 1) * v.reg_n, v.full_offsets()));
    }
    let tail = v.tail_offsets();
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
                    + input_span(&offsets, rows);
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
    problems
}

/// Output window of one tile: `oc_bn` channel planes, up to the tile's last column.
pub(crate) fn output_span(
    p: &LayerPlan,
    v: &VariantPlan,
    offsets: &[usize],
    out_rows: usize,
) -> usize {
    let [oh, ow] = p.output;
    let last = offsets.iter().copied().max().unwrap_or(0);
    let width = match v.kind {
        Kind::PackedOc | Kind::InPlaceOc | Kind::Dwc | Kind::DwcPairs => 1,
        Kind::PackedOw | Kind::Direct { .. } => v.lanes,
    };
    (p.oc_bn - 1) * oh * ow + (out_rows - 1) * ow + last + width
}

#[cfg(test)]
mod tests {
    use super::{
        Isa, Kind, LayerPlan, LayerSpec, Strategy, Target, VariantPlan, plan_layer, tile_columns,
    };
    use gspc_runtime::Activation;

    fn depthwise(c: usize, k: usize, stride: usize, hw: usize) -> LayerSpec {
        LayerSpec {
            name: "l".into(),
            in_channels: c,
            out_channels: c,
            groups: c,
            kernel: [k, k],
            stride: [stride, stride],
            padding: [k / 2, k / 2],
            dilation: [1, 1],
            input: [hw, hw],
            bias: false,
            activation: Activation::None,
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
    fn row_pairs_only_for_avx512_3x3_stride_2_on_narrow_rows() {
        let x86 = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
        let all = [Isa::Portable, Isa::Avx2, Isa::Avx512];
        let kinds = |l: &LayerSpec, isas: &[Isa]| -> Vec<(Isa, Kind)> {
            plan_layer(l, &x86, isas)
                .unwrap()
                .variants
                .iter()
                .map(|v| (v.isa, v.kind))
                .collect()
        };
        // MobileNetV1's dw12 (14x14 -> 7x7): the AVX-512 variant only; AVX2 and portable
        // keep gspc-dwc's transposes, on the same packed weights.
        assert_eq!(
            kinds(&depthwise(512, 3, 2, 14), &all),
            [
                (Isa::Portable, Kind::Dwc),
                (Isa::Avx2, Kind::Dwc),
                (Isa::Avx512, Kind::DwcPairs)
            ]
        );
        // 15 columns and padding 1 fill a vector; 16 do not. 5x5, stride 1: no.
        let pairs = |l: &LayerSpec| {
            let mut l = l.clone();
            l.strategy = Some(Strategy::GspcDwc);
            kinds(&l, &all).contains(&(Isa::Avx512, Kind::DwcPairs))
        };
        assert!(pairs(&depthwise(32, 3, 2, 15)));
        assert!(!pairs(&depthwise(32, 3, 2, 16)));
        assert!(!pairs(&depthwise(32, 5, 2, 14)));
        assert!(!pairs(&depthwise(32, 3, 1, 8)));
        // Compact code keeps the transposing tiles.
        let mut compact = depthwise(512, 3, 2, 14);
        compact.compact = Some(true);
        assert!(!pairs(&compact));
    }

    #[test]
    fn avx2_runs_at_half_rate_only_where_avx512_wastes_lanes() {
        let x86 = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
        let all = [Isa::Portable, Isa::Avx2, Isa::Avx512];
        let half =
            |l: &LayerSpec, isas: &[Isa]| plan_layer(l, &x86, isas).unwrap().avx2_at_half_rate;
        // Flat direct kernel, 5x5 on 14x14, 120 channels (not blocks of 16: no gspc-dwc).
        assert!(half(&depthwise(120, 5, 1, 14), &all));
        // Rows of 8 columns at stride 2: one 16-lane vector against one whole one of 8.
        assert!(half(&depthwise(24, 3, 2, 16), &all));
        // Rows of 7: AVX2's one vector is a part one (masked loads and stores).
        assert!(!half(&depthwise(24, 3, 2, 14), &all));
        // Flat 3x3 too; rows of 28 columns keep AVX-512.
        assert!(half(&depthwise(120, 3, 1, 14), &all));
        assert!(!half(&depthwise(24, 3, 1, 28), &all));
        // With channels in blocks of 16, stride-2 rows of 7 columns are gspc-dwc's.
        assert_eq!(
            plan_layer(&depthwise(512, 3, 2, 14), &x86, &all)
                .unwrap()
                .strategy,
            Strategy::GspcDwc
        );
        assert_eq!(
            plan_layer(&depthwise(512, 3, 2, 16), &x86, &all)
                .unwrap()
                .strategy,
            Strategy::GspcOw
        );
        // gspc-dwc (5x5 on 7x7, 96 channels) and gspc-oc fill both vector widths.
        let dwc = depthwise(96, 5, 1, 7);
        assert_eq!(
            plan_layer(&dwc, &x86, &all).unwrap().strategy,
            Strategy::GspcDwc
        );
        assert!(!half(&dwc, &all));
        let mut grouped = depthwise(64, 3, 1, 7);
        grouped.groups = 4;
        assert!(!half(&grouped, &all));
        // Only with both variants.
        assert!(!half(
            &depthwise(120, 5, 1, 14),
            &[Isa::Portable, Isa::Avx512]
        ));
        assert!(!half(
            &depthwise(120, 5, 1, 14),
            &[Isa::Avx2, Isa::Portable]
        ));
    }

    #[test]
    fn quarter_groups_at_stride_two_take_gspc_ow_with_oc_block_2() {
        let x86 = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
        let all = [Isa::Portable, Isa::Avx2, Isa::Avx512];
        // WRN-40-2's 64 channels in 16 groups (4 per group), 16x16 input.
        let grouped = |groups: usize, stride: usize| {
            let mut l = depthwise(64, 3, stride, 16);
            l.groups = groups;
            l
        };
        let plan = |l: &LayerSpec| {
            let p = plan_layer(l, &x86, &all).unwrap();
            (p.strategy, p.oc_bn, p.gpv)
        };
        assert_eq!(plan(&grouped(16, 2)), (Strategy::GspcOw, 2, 1));
        // 8 channels per group (2 a vector) stay side by side.
        assert_eq!(plan(&grouped(8, 2)), (Strategy::GspcOc, 16, 2));
        // At stride 1 (16 columns) the rule for rows of 8 or fewer does not apply.
        assert_ne!(plan(&grouped(16, 1)), (Strategy::GspcOw, 2, 1));
        // Without AVX-512 no groups side by side: the cost model's gspc-ow block.
        let p = plan_layer(&grouped(16, 2), &x86, &[Isa::Portable, Isa::Avx2]).unwrap();
        assert_eq!((p.strategy, p.oc_bn), (Strategy::GspcOw, 4));
    }

    #[test]
    fn in_place_at_half_rate_only_where_the_weight_limit_alone_refuses_it() {
        let x86 = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
        let all = [Isa::Portable, Isa::Avx2, Isa::Avx512];
        // ResNet-34's 512 -> 512 3x3 on 7x7 in G groups: oc_bn 32, so 32 x C/G x 9 x 4
        // bytes per block.
        let dense = |groups: usize| {
            let mut l = depthwise(512, 3, 1, 7);
            l.groups = groups;
            l
        };
        let plan = |l: &LayerSpec| plan_layer(l, &x86, &all).unwrap();
        let avx512 = |p: &LayerPlan| p.variants.iter().find(|v| v.isa == Isa::Avx512).cloned();
        // G=2: 295 KiB per block, past the limit: packed, in place at half rate only.
        let p = plan(&dense(2));
        assert_eq!(avx512(&p).unwrap().kind, Kind::PackedOc);
        let half = p.half_rate.clone().unwrap();
        assert_eq!(half.kind, Kind::InPlaceOc);
        assert_eq!(
            VariantPlan {
                kind: Kind::PackedOc,
                ..half
            },
            avx512(&p).unwrap()
        );
        // G=4: 147 KiB, in place at every rate: no second form.
        let p = plan(&dense(4));
        assert_eq!(avx512(&p).unwrap().kind, Kind::InPlaceOc);
        assert!(p.half_rate.is_none());
        // Pinned to the packed input, or compact: packed at every rate.
        let mut pinned = dense(2);
        pinned.direct = Some(false);
        assert!(plan(&pinned).half_rate.is_none());
        let mut compact = dense(2);
        compact.compact = Some(true);
        assert!(plan(&compact).half_rate.is_none());
        // Without AVX-512, nothing to run at half rate.
        assert!(
            plan_layer(&dense(2), &x86, &[Isa::Portable, Isa::Avx2])
                .unwrap()
                .half_rate
                .is_none()
        );
    }

    #[test]
    fn narrower_gspc_ow_tiles_at_half_rate_on_few_input_channels_a_group() {
        let x86 = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
        let all = [Isa::Portable, Isa::Avx2, Isa::Avx512];
        // WRN-40-2's 3x3 on 32x32 in 16 groups of `cpg` channels.
        let grouped = |cpg: usize, stride: usize| {
            let mut l = depthwise(16 * cpg, 3, stride, 32);
            l.groups = 16;
            l
        };
        let plan = |l: &LayerSpec| plan_layer(l, &x86, &all).unwrap();
        let avx512 = |p: &LayerPlan| p.variants.iter().find(|v| v.isa == Isa::Avx512).cloned();
        // 2 channels a group: 2 x 2 vectors x 4 rows at full rate, 3 rows at half rate,
        // on the same packed weights.
        let p = plan(&grouped(2, 1));
        let full = avx512(&p).unwrap();
        assert_eq!(
            (full.kind, p.oc_bn, full.nvec, full.rows),
            (Kind::PackedOw, 2, 2, 4)
        );
        let half = p.half_rate.clone().unwrap();
        assert!(p.is_half_rate(&half) && !p.is_half_rate(&full));
        assert_eq!(
            VariantPlan {
                rows: 4,
                ..half.clone()
            },
            full,
            "only the rows differ"
        );
        assert_eq!(half.rows, 3);
        // The same tiles as the spec's own `"accumulators": 12`.
        let mut pinned = grouped(2, 1);
        pinned.accumulators = Some(12);
        let p12 = plan(&pinned);
        assert_eq!(avx512(&p12), Some(half));
        // A pinned accumulator count, stride 2, 4 input channels a group, or no AVX-512:
        // one form at every rate.
        assert!(p12.half_rate.is_none());
        assert!(plan(&grouped(2, 2)).half_rate.is_none());
        assert!(plan(&grouped(4, 1)).half_rate.is_none());
        let no512 = plan_layer(&grouped(2, 1), &x86, &[Isa::Portable, Isa::Avx2]).unwrap();
        assert!(no512.half_rate.is_none());
    }

    #[test]
    fn one_group_a_block_off_full_rate_where_two_groups_share_a_vector() {
        let x86 = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
        let all = [Isa::Portable, Isa::Avx2, Isa::Avx512];
        // ResNet-34 G=32's 3x3 layers: `kpg` output channels a group, 14 output columns.
        let grouped = |kpg: usize, stride: usize| {
            let mut l = depthwise(32 * 8, 3, stride, 14 * stride);
            l.out_channels = 32 * kpg;
            l.groups = 32;
            l
        };
        let plan = |l: &LayerSpec| plan_layer(l, &x86, &all).unwrap();
        for stride in [1, 2] {
            let p = plan(&grouped(8, stride));
            assert_eq!((p.strategy, p.gpv, p.oc_bn), (Strategy::GspcOc, 2, 16));
            let h = p.one_group.as_deref().expect("a one-group plan");
            assert_eq!((h.strategy, h.gpv, h.oc_bn), (Strategy::GspcOc, 1, 8));
            let isas: Vec<Isa> = h.variants.iter().map(|v| v.isa).collect();
            assert_eq!(isas, [Isa::Avx2, Isa::Avx512]);
            // 7 columns a tile, not 14 (`packed_oc::NARROW_TILE_COLUMNS`).
            assert!(h.variants.iter().all(|v| v.lanes == 8 && v.reg_n == 7));
            assert!(h.one_group.is_none() && h.half_rate.is_none());
            // Its weights after the layer's own; a scratch for either.
            let own = p.bias_offset + p.layer.out_channels;
            assert_eq!(p.one_group_at(), Some(own));
            assert_eq!(p.packed_len, own + h.packed_len);
            assert!(p.scratch_len >= h.scratch_len);
            // Each block of the layer is 2 of the one-group plan's.
            assert_eq!(p.units() * 2, h.units());
        }
        // Pinned plans, 4 groups a vector, no AVX-512: one plan.
        let mut pinned = grouped(8, 1);
        pinned.strategy = Some(Strategy::GspcOc);
        assert!(plan(&pinned).one_group.is_none());
        let mut quarter = grouped(4, 1);
        quarter.input = [8, 8];
        let quarter = plan(&quarter);
        assert_eq!(quarter.gpv, 4);
        assert!(quarter.one_group.is_none());
        let no512 = plan_layer(&grouped(8, 1), &x86, &[Isa::Portable, Isa::Avx2]).unwrap();
        assert_eq!(no512.gpv, 1);
        assert!(no512.one_group.is_none());
    }

    #[test]
    fn narrow_gspc_oc_tiles_hold_at_most_ten_columns_on_x86() {
        let x86 = Target::from_triple("x86_64-unknown-linux-gnu").unwrap();
        let all = [Isa::Portable, Isa::Avx2, Isa::Avx512];
        // 19 groups (no groups side by side) of 8 input channels and `kpg` output channels,
        // `gspc-oc` pinned, on rows of `w` columns.
        let tiles = |kpg: usize, w: usize| {
            let mut l = depthwise(19 * 8, 3, 1, w);
            l.out_channels = 19 * kpg;
            l.groups = 19;
            l.strategy = Some(Strategy::GspcOc);
            let p = plan_layer(&l, &x86, &all).unwrap();
            let t = |isa| {
                let v = p.variants.iter().find(|v| v.isa == isa).unwrap();
                (v.lanes, v.reg_n, v.tail)
            };
            (t(Isa::Avx2), t(Isa::Avx512))
        };
        // 8 lanes: 13 columns as 7 + 6, 16 as 8 + 8, 10 in one tile.
        assert_eq!(tiles(8, 13), ((8, 7, 6), (8, 7, 6)));
        assert_eq!(tiles(8, 16), ((8, 8, 0), (8, 8, 0)));
        assert_eq!(tiles(8, 10), ((8, 10, 0), (8, 10, 0)));
        // 4 lanes alike; 16 lanes keep 14 columns with AVX-512.
        assert_eq!(tiles(4, 14).1, (4, 7, 0));
        assert_eq!(tiles(16, 14).1, (16, 14, 0));
    }

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
