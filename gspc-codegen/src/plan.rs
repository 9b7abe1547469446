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
//! # Cost model
//!
//! `oc_bn` is the largest divisor of the channels per group up to 16 (8 on 32-bit and
//! other targets): it fixes the packed layout, shared by every variant of a build. Each
//! variant then takes the widest vector that divides `oc_bn` and the largest `reg_n` whose
//! accumulators, weight vectors and a broadcast register fit the ISA's register file
//! (AVX2: 16, AVX-512 and NEON: 32, portable: 16 registers of 4 lanes), at most the output
//! width and at most 1024 unrolled multiply-adds per tile; among the sizes from two thirds
//! of that maximum up, one that divides the output width is preferred (no tail tile).

use crate::error::Error;
use crate::spec::LayerSpec;
use crate::target::{Arch, Target};
use gspc_runtime::Isa;

/// Accumulator registers of one tile, at most (see `plan_layer`).
pub const MAX_ACCUMULATORS: usize = 20;

/// Unrolled multiply-adds (vector FMAs) in one tile function, at most.
pub const MAX_TILE_FMAS: usize = 1024;

/// How a layer is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// GSPC with output channels of one group on the vector axis.
    GspcOc,
}

impl Strategy {
    /// The name shown by `plan` and stored in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::GspcOc => "gspc-oc",
        }
    }
}

/// The register tile of one ISA variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantPlan {
    /// Instruction set.
    pub isa: Isa,
    /// f32 lanes per vector register (1 = scalar; for `portable`, `oc_bn`).
    pub lanes: usize,
    /// Vectors per accumulator column: `oc_bn / lanes`.
    pub nvec: usize,
    /// Output columns per tile.
    pub reg_n: usize,
    /// Output columns of the last, shorter tile of a row (0 = none).
    pub tail: usize,
    /// Kernel name (see [`kernel_name`]).
    pub kernel: String,
}

/// Everything the emitter needs to know about one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerPlan {
    /// The layer.
    pub layer: LayerSpec,
    /// Strategy.
    pub strategy: Strategy,
    /// Output channels per vector block (divides the channels per group).
    pub oc_bn: usize,
    /// `[OH, OW]`.
    pub output: [usize; 2],
    /// `[H + 2 PH, W + 2 PW]`.
    pub padded: [usize; 2],
    /// Offset of the bias in the packed weights (= number of packed weight values).
    pub bias_offset: usize,
    /// Packed weights and bias.
    pub packed_len: usize,
    /// Per-call scratch: the packed input.
    pub scratch_len: usize,
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
    /// Output-channel blocks per group.
    pub fn nocb(&self) -> usize {
        self.kpg() / self.oc_bn
    }
    /// Generated lines of code, estimated (for `plan` and the size limit).
    pub fn estimated_lines(&self) -> usize {
        let [kh, kw] = self.layer.kernel;
        let per_variant = |v: &VariantPlan| {
            let tiles = if v.tail > 0 { 2 } else { 1 };
            let tile = |r: usize| kh * kw * v.nvec * (1 + r) + r * (v.nvec + self.oc_bn) + 30;
            tiles * tile(v.reg_n.max(v.tail)) + 30
        };
        self.variants.iter().map(per_variant).sum::<usize>() + 120
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
        Isa::Portable => (&[], 16),
    }
}

/// Plans one layer for the given ISA variants.
pub fn plan_layer(layer: &LayerSpec, target: &Target, isas: &[Isa]) -> Result<LayerPlan, Error> {
    let kpg = layer.out_per_group();
    let max_oc_bn = match target.arch {
        Arch::X86_64 | Arch::Aarch64 => 16,
        Arch::Arm | Arch::Other => 8,
    };
    let oc_bn = largest_divisor_at_most(kpg, max_oc_bn);
    let output = layer.output();
    let padded = layer.padded();
    let bias_offset = layer.weights_len();
    let [kh, kw] = layer.kernel;
    let ow = output[1];
    let strategy = Strategy::GspcOc;
    let variants = isas
        .iter()
        .map(|&isa| {
            let (widths, regs) = isa_shape(isa);
            let (lanes, acc_regs_per_col) = match isa {
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
            let code_cap = MAX_TILE_FMAS / (nvec * kh * kw);
            let max_r = budget.min(code_cap).min(ow).max(1);
            let lo = (2 * max_r).div_ceil(3).max(1);
            let reg_n = (lo..=max_r)
                .rev()
                .find(|r| ow.is_multiple_of(*r))
                .unwrap_or(max_r);
            VariantPlan {
                isa,
                lanes,
                nvec,
                reg_n,
                tail: ow % reg_n,
                kernel: kernel_name(layer, strategy, isa),
            }
        })
        .collect();
    let plan = LayerPlan {
        layer: layer.clone(),
        strategy,
        oc_bn,
        output,
        padded,
        bias_offset,
        packed_len: bias_offset + layer.out_channels,
        scratch_len: layer.in_channels * padded[0] * padded[1],
        variants,
    };
    check_bounds(&plan)?;
    Ok(plan)
}

/// Input window of one tile of `r` columns for one channel: the span from its first to
/// its last value in the packed input.
pub fn input_span(p: &LayerPlan, r: usize) -> usize {
    let l = &p.layer;
    let wp = p.padded[1];
    (l.kernel[0] - 1) * l.dilation[0] * wp
        + (r - 1) * l.stride[1]
        + (l.kernel[1] - 1) * l.dilation[1]
        + 1
}

/// Output window of one tile of `r` columns: `oc_bn` channel planes, `r` columns each.
pub fn output_span(p: &LayerPlan, r: usize) -> usize {
    let [oh, ow] = p.output;
    (p.oc_bn - 1) * oh * ow + r
}

/// The generated kernels index fixed windows whose positions the generator computes; this
/// proves, for the last tile of every kind, that each window lies inside its buffer. A
/// failure is a generator bug, caught before any code is emitted.
fn check_bounds(p: &LayerPlan) -> Result<(), Error> {
    let l = &p.layer;
    let [hp, wp] = p.padded;
    let [oh, ow] = p.output;
    let (g, cpg, kpg) = (l.groups, p.cpg(), p.kpg());
    let window = l.kernel[0] * l.kernel[1] * p.oc_bn;
    let w_last = (((g - 1) * p.nocb() + p.nocb() - 1) * cpg + cpg - 1) * window + window;
    let mut problems = Vec::new();
    if w_last > p.bias_offset {
        problems.push(format!(
            "weights window ends at {w_last} > {}",
            p.bias_offset
        ));
    }
    for v in &p.variants {
        let full = ow / v.reg_n;
        let mut tiles = vec![((full - 1) * v.reg_n, v.reg_n)];
        if v.tail > 0 {
            tiles.push((full * v.reg_n, v.tail));
        }
        for (ow0, r) in tiles {
            let x_last = ((g - 1) * cpg + cpg - 1) * hp * wp
                + (oh - 1) * l.stride[0] * wp
                + ow0 * l.stride[1]
                + input_span(p, r);
            if x_last > p.scratch_len {
                problems.push(format!(
                    "{}: input window ends at {x_last} > {}",
                    v.isa, p.scratch_len
                ));
            }
            let o_last = ((g - 1) * kpg + (p.nocb() - 1) * p.oc_bn) * oh * ow
                + (oh - 1) * ow
                + ow0
                + output_span(p, r);
            if o_last > l.output_len() {
                problems.push(format!(
                    "{}: output window ends at {o_last} > {}",
                    v.isa,
                    l.output_len()
                ));
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
