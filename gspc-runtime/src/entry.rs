//! The shape-independent entry points of every generated layer.
//!
//! A generated layer module holds only what depends on its shape: its constants, its
//! weight layout, `pack_input`, the tile functions of each instruction-set variant and the
//! dispatch between them. Its slice, parallel and split entry points are one-line calls
//! into this module: [`Entry`] carries the layer's lengths as const generics and its
//! dispatching `run` and `run_units` as function pointers, and [`WeightLayout::pack`] is
//! the one place that writes the packed-weight order, both for the generated
//! `pack_weights` and for the weights `gspc-codegen` packs and bakes at generation time.
//!
//! Nothing here allocates.

use crate::{Error, Isa, as_array, as_array_mut, parallel};

/// A layer's `run_units`: `(input, packed, first unit, output blocks, scratch)`; `X` is the
/// activations' element type (`f32`, or `i8` for int8 layers), `W` the packed weights'
/// and the scratch's (`f32`, or `i32`).
pub type RunUnits<
    const I: usize,
    const P: usize,
    const S: usize,
    const B: usize,
    X = f32,
    W = f32,
> = fn(&[X; I], &[W; P], usize, &mut [[X; B]], &mut [W; S]);

/// A channel-blocked depthwise layer's `run_band`: `(input, packed, unit, rows, planes,
/// scratch)` computes output rows `rows` of work unit `unit` into `planes` (its `CB`
/// planes, each holding just those rows) with the best variant.
pub type RunBand<const I: usize, const P: usize, const S: usize, X = f32, W = f32> = fn(
    &[X; I],
    &[W; P],
    usize,
    core::ops::Range<usize>,
    &mut [&mut [X]; crate::dwc::CB],
    &mut [W; S],
);

/// How a layer's work units can also be cut into bands of output rows
/// ([`parallel::split_bands`]): the `gspc-dwc` layers, whose units (blocks of 16 channels)
/// are few when the channels are.
#[derive(Clone, Copy, Debug)]
pub struct RowBands<const I: usize, const P: usize, const S: usize, X = f32, W = f32> {
    /// Output rows of a unit (`OH`).
    pub rows: usize,
    /// Values of an output row (`OW`).
    pub row: usize,
    /// The layer's `run_band`.
    pub run: RunBand<I, P, S, X, W>,
}

/// A layer's buffers checked against its lengths: `(input, packed, output, scratch)`.
pub type Arrays<
    'a,
    const I: usize,
    const P: usize,
    const O: usize,
    const S: usize,
    X = f32,
    W = f32,
> = (&'a [X; I], &'a [W; P], &'a mut [X; O], &'a mut [W; S]);

/// The entry points of one generated layer: `I` = `INPUT_LEN`, `P` = `PACKED_LEN`, `O` =
/// `OUTPUT_LEN`, `S` = `SCRATCH_LEN`, `B` = `BLOCK_LEN` (the output values of one work
/// unit); `X` and `W` the element types of [`RunUnits`] (int8 layers: `Entry<..., i8,
/// i32>`). Every entry point runs the layer's `run_units`, which picks the best variant.
#[derive(Clone, Copy, Debug)]
pub struct Entry<
    const I: usize,
    const P: usize,
    const O: usize,
    const S: usize,
    const B: usize,
    X = f32,
    W = f32,
> {
    /// FLOPs of one run (decides how many threads are worth using).
    pub flops: u64,
    /// The layer's groups (decides how many parts `run_parallel` cuts it into:
    /// [`parallel::parts_for`]).
    pub groups: usize,
    /// The layer's `run_units`: output blocks `first..first + blocks.len()` with the best
    /// variant.
    pub run_units: RunUnits<I, P, S, B, X, W>,
    /// Row bands of the units, where the layer has them (`gspc-dwc` layers): the parallel
    /// entry points cut units into bands when the units alone would leave a thread idle
    /// for part of the layer ([`parallel::bands_for`]).
    pub bands: Option<RowBands<I, P, S, X, W>>,
}

impl<
    const I: usize,
    const P: usize,
    const O: usize,
    const S: usize,
    const B: usize,
    X: Copy + Send + Sync,
    W: Copy + Send + Sync,
> Entry<I, P, O, S, B, X, W>
{
    /// The layer's `run`: every work unit, in order, on the calling thread.
    #[inline]
    pub fn run(&self, input: &[X; I], packed: &[W; P], output: &mut [X; O], scratch: &mut [W; S]) {
        let (blocks, _) = output.as_chunks_mut::<B>();
        (self.run_units)(input, packed, 0, blocks, scratch)
    }

    /// The layer's `run_parallel`: `run` on up to `threads` threads (with this crate's
    /// `std` feature; one thread otherwise). The layer's work units (output-channel blocks
    /// of a group) are split into contiguous parts, up to [`parallel::PARTS_PER_THREAD`] a
    /// thread with part boundaries on group boundaries ([`parallel::parts_for`]); each
    /// thread packs into its own `S`-value piece of `scratch`, which holds `threads * S`
    /// values at least. Fewer threads run if the layer has fewer units, or too little work
    /// to gain from them (see [`parallel::GRAIN_FLOPS`]). Allocates nothing per call; call
    /// it inside [`parallel::in_pool`] around the whole inference.
    #[inline]
    pub fn run_parallel(
        &self,
        input: &[X; I],
        packed: &[W; P],
        output: &mut [X; O],
        scratch: &mut [W],
        threads: usize,
    ) -> Result<(), Error> {
        let (threads, parts) = parallel::threads_and_parts(self.flops, self.groups, threads);
        self.run_parts(input, packed, output, scratch, threads, parts)
    }

    /// The layer's `run_split`: [`Entry::run_parallel`] split into exactly `parts` parts
    /// (at most one per work unit), however little work each gets: for tests and tuning.
    /// A layer with row bands whose units do not divide into `parts` is cut into bands of
    /// its units instead, `parts` or a few more ([`parallel::bands_for`]).
    #[inline]
    pub fn run_split(
        &self,
        input: &[X; I],
        packed: &[W; P],
        output: &mut [X; O],
        scratch: &mut [W],
        parts: usize,
    ) -> Result<(), Error> {
        self.run_parts(input, packed, output, scratch, parts, parts)
    }

    /// `parts` parts on up to `threads` threads: [`parallel::split_parts`], or
    /// [`parallel::split_bands`] where the layer has row bands and [`parallel::bands_for`]
    /// cuts its units into more than one.
    fn run_parts(
        &self,
        input: &[X; I],
        packed: &[W; P],
        output: &mut [X; O],
        scratch: &mut [W],
        threads: usize,
        parts: usize,
    ) -> Result<(), Error> {
        if let Some(b) = self.bands {
            let bands = parallel::bands_for(O.checked_div(B).unwrap_or(0), threads, parts, b.rows);
            if bands > 1 {
                return parallel::split_bands::<_, _, S>(
                    output,
                    b.rows,
                    b.row,
                    bands,
                    scratch,
                    threads,
                    &|unit, rows, planes, scratch| {
                        (b.run)(input, packed, unit, rows, planes, scratch)
                    },
                );
            }
        }
        let run_units = self.run_units;
        let (blocks, _) = output.as_chunks_mut::<B>();
        parallel::split_parts::<_, _, B, S>(
            blocks,
            scratch,
            threads,
            parts,
            &|first, blocks, scratch| run_units(input, packed, first, blocks, scratch),
        )
    }

    /// The layer's `run_slice`: `run` over slices, checking their lengths.
    #[inline]
    pub fn run_slice(
        &self,
        input: &[X],
        packed: &[W],
        output: &mut [X],
        scratch: &mut [W],
    ) -> Result<(), Error> {
        let (input, packed, output, scratch) = self.arrays(input, packed, output, scratch)?;
        self.run(input, packed, output, scratch);
        Ok(())
    }

    /// The layer's `run_parallel_slice`: [`Entry::run_parallel`] over slices, checking
    /// their lengths.
    #[inline]
    pub fn run_parallel_slice(
        &self,
        input: &[X],
        packed: &[W],
        output: &mut [X],
        scratch: &mut [W],
        threads: usize,
    ) -> Result<(), Error> {
        let (threads, parts) = parallel::threads_and_parts(self.flops, self.groups, threads);
        self.run_parts_slice(input, packed, output, scratch, threads, parts)
    }

    /// The layer's `run_split_slice`: [`Entry::run_split`] over slices, checking their
    /// lengths.
    #[inline]
    pub fn run_split_slice(
        &self,
        input: &[X],
        packed: &[W],
        output: &mut [X],
        scratch: &mut [W],
        parts: usize,
    ) -> Result<(), Error> {
        self.run_parts_slice(input, packed, output, scratch, parts, parts)
    }

    /// [`Entry::run_parts`] over slices, checking their lengths.
    fn run_parts_slice(
        &self,
        input: &[X],
        packed: &[W],
        output: &mut [X],
        scratch: &mut [W],
        threads: usize,
        parts: usize,
    ) -> Result<(), Error> {
        let input = as_array::<_, I>("input", input)?;
        let packed = as_array::<_, P>("packed", packed)?;
        let output = as_array_mut::<_, O>("output", output)?;
        self.run_parts(input, packed, output, scratch, threads, parts)
    }

    /// The buffers of one call as the layer's arrays, naming the first one whose length
    /// is wrong.
    #[inline]
    pub fn arrays<'a>(
        &self,
        input: &'a [X],
        packed: &'a [W],
        output: &'a mut [X],
        scratch: &'a mut [W],
    ) -> Result<Arrays<'a, I, P, O, S, X, W>, Error> {
        Ok((
            as_array::<_, I>("input", input)?,
            as_array::<_, P>("packed", packed)?,
            as_array_mut::<_, O>("output", output)?,
            as_array_mut::<_, S>("scratch", scratch)?,
        ))
    }

    /// [`Entry::arrays`] for one variant's `run_<isa>_slice`: then
    /// [`Error::Unsupported`] when the CPU running this code lacks `isa`
    /// ([`Isa::is_supported`]). `Ok` means the variant may run.
    #[inline]
    pub fn variant_arrays<'a>(
        &self,
        isa: Isa,
        input: &'a [X],
        packed: &'a [W],
        output: &'a mut [X],
        scratch: &'a mut [W],
    ) -> Result<Arrays<'a, I, P, O, S, X, W>, Error> {
        let arrays = self.arrays(input, packed, output, scratch)?;
        if !isa.is_supported() {
            return Err(Error::Unsupported(isa));
        }
        Ok(arrays)
    }
}

/// A layer's `pack_weights_slice`: its `pack_weights` over slices, checking their lengths
/// (`W` = `WEIGHTS_LEN`, `K` = `OUT_CHANNELS`, `P` = `PACKED_LEN`).
#[inline]
pub fn pack_weights_slice<const W: usize, const K: usize, const P: usize>(
    pack_weights: fn(&[f32; W], Option<&[f32; K]>, &mut [f32; P]),
    weights: &[f32],
    bias: Option<&[f32]>,
    packed: &mut [f32],
) -> Result<(), Error> {
    let weights = as_array::<_, W>("weights", weights)?;
    let bias = match bias {
        Some(b) => Some(as_array::<_, K>("bias", b)?),
        None => None,
    };
    let packed = as_array_mut::<_, P>("packed", packed)?;
    pack_weights(weights, bias, packed);
    Ok(())
}

/// Where a layer's kernels read each weight and bias: the packed-weight order, for every
/// kernel kind.
///
/// Output channel `k` of group `k / kpg` is lane `lane` of block `block` (both below); its
/// weights `[cpg][taps]` and its bias go to
///
/// - depthwise (`dwc`, one input channel per group, 16 or so channels side by side):
///   `[out_channels / oc_bn][taps][oc_bn]`, the bias at `bias_offset + k`;
/// - otherwise `[blocks][cpg][taps][oc_bn]`, the bias at `bias_offset + block * oc_bn +
///   lane`, where with `gpv == 1` block `g * nocb + kk / oc_bn` holds channels of one
///   group (`kk = k % kpg`, lane `kk % oc_bn`), and with `gpv > 1` block `g / gpv` holds
///   `gpv` groups side by side (lane `kk * gpv + g % gpv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightLayout {
    /// Output channels per group.
    pub kpg: usize,
    /// Input channels per group.
    pub cpg: usize,
    /// Lanes of one block (output channels side by side).
    pub oc_bn: usize,
    /// Blocks per group (`kpg / oc_bn`; with `gpv > 1`, 1).
    pub nocb: usize,
    /// Kernel taps `KH * KW`.
    pub taps: usize,
    /// Groups side by side in one block.
    pub gpv: usize,
    /// Index of the first bias value.
    pub bias_offset: usize,
    /// The depthwise (`gspc-dwc`) layout.
    pub dwc: bool,
}

impl WeightLayout {
    /// Packs OIHW `weights` (`[out_channels][cpg][taps]`) and an optional `bias` (zero
    /// without one) into `packed`; values no channel owns are left as they are.
    ///
    /// # Panics
    ///
    /// If `packed` is shorter than the layout needs or `bias` shorter than the output
    /// channels (the generated `pack_weights` passes arrays of its layer's lengths).
    pub fn pack(&self, weights: &[f32], bias: Option<&[f32]>, packed: &mut [f32]) {
        let Self {
            kpg,
            cpg,
            oc_bn,
            nocb,
            taps,
            gpv,
            bias_offset,
            dwc,
        } = *self;
        let per_channel = cpg * taps;
        for (k, w) in weights.chunks_exact(per_channel).enumerate() {
            let (g, kk) = (k / kpg, k % kpg);
            let (block, lane) = if gpv > 1 {
                (g / gpv, kk * gpv + g % gpv)
            } else {
                (g * nocb + kk / oc_bn, kk % oc_bn)
            };
            let (first, bias_at) = if dwc {
                ((k / oc_bn) * taps * oc_bn + k % oc_bn, k)
            } else {
                (block * per_channel * oc_bn + lane, block * oc_bn + lane)
            };
            // Weight (ci, t) of the channel is at first + (ci * taps + t) * oc_bn in both
            // layouts (depthwise: ci is always 0).
            for (i, v) in w.iter().enumerate() {
                packed[first + i * oc_bn] = *v;
            }
            packed[bias_offset + bias_at] = bias.map_or(0.0, |b| b[k]);
        }
    }
}

/// The entry points every generated layer module has, written once here: `run`,
/// `run_parallel`, `run_split`, their `*_slice` forms over slices, and (f32 layers)
/// `pack_weights_slice`. The generated module invokes it once
/// (`::gspc_runtime::layer_entry_points!();`, or `(int8)` in an int8 layer's module) and
/// supplies what it uses: the constants `INPUT_LEN`, `PACKED_LEN`, `OUTPUT_LEN` and
/// `SCRATCH_LEN`, the layer's [`Entry`] `ENTRY` and (f32) its `pack_weights`.
#[macro_export]
macro_rules! layer_entry_points {
    () => {
        $crate::layer_entry_points!(@run f32, f32,
            /// Runs the layer: `output = act(conv(input, weights) + bias)`, NCHW, with the
            /// best variant this CPU supports. Allocates nothing; `scratch` may hold
            /// anything on entry.
        );

        /// [`pack_weights`] over slices, checking their lengths.
        pub fn pack_weights_slice(
            weights: &[f32],
            bias: Option<&[f32]>,
            packed: &mut [f32],
        ) -> Result<(), $crate::Error> {
            $crate::entry::pack_weights_slice(pack_weights, weights, bias, packed)
        }
    };
    (int8) => {
        $crate::layer_entry_points!(@run i8, i32,
            /// Runs the layer: int8 `output = requantize(conv(input - input_zero_point,
            /// weights) + bias)`, NCHW, with the best variant this CPU supports. Allocates
            /// nothing; `scratch` may hold anything on entry.
        );
    };
    (@run $x:ty, $w:ty, $(#[$run_doc:meta])*) => {
        $(#[$run_doc])*
        pub fn run(
            input: &[$x; INPUT_LEN],
            packed: &[$w; PACKED_LEN],
            output: &mut [$x; OUTPUT_LEN],
            scratch: &mut [$w; SCRATCH_LEN],
        ) {
            ENTRY.run(input, packed, output, scratch)
        }

        /// [`run`] on up to `threads` threads, fewer when the layer is small; `scratch`
        /// holds `threads * SCRATCH_LEN` values: see
        /// [`gspc_runtime::entry::Entry::run_parallel`].
        pub fn run_parallel(
            input: &[$x; INPUT_LEN],
            packed: &[$w; PACKED_LEN],
            output: &mut [$x; OUTPUT_LEN],
            scratch: &mut [$w],
            threads: usize,
        ) -> Result<(), $crate::Error> {
            ENTRY.run_parallel(input, packed, output, scratch, threads)
        }

        /// [`run_parallel`] split into exactly `parts` parts: for tests and tuning.
        pub fn run_split(
            input: &[$x; INPUT_LEN],
            packed: &[$w; PACKED_LEN],
            output: &mut [$x; OUTPUT_LEN],
            scratch: &mut [$w],
            parts: usize,
        ) -> Result<(), $crate::Error> {
            ENTRY.run_split(input, packed, output, scratch, parts)
        }

        /// [`run`] over slices, checking their lengths.
        pub fn run_slice(
            input: &[$x],
            packed: &[$w],
            output: &mut [$x],
            scratch: &mut [$w],
        ) -> Result<(), $crate::Error> {
            ENTRY.run_slice(input, packed, output, scratch)
        }

        /// [`run_parallel`] over slices, checking their lengths.
        pub fn run_parallel_slice(
            input: &[$x],
            packed: &[$w],
            output: &mut [$x],
            scratch: &mut [$w],
            threads: usize,
        ) -> Result<(), $crate::Error> {
            ENTRY.run_parallel_slice(input, packed, output, scratch, threads)
        }

        /// [`run_split`] over slices, checking their lengths.
        pub fn run_split_slice(
            input: &[$x],
            packed: &[$w],
            output: &mut [$x],
            scratch: &mut [$w],
            parts: usize,
        ) -> Result<(), $crate::Error> {
            ENTRY.run_split_slice(input, packed, output, scratch, parts)
        }
    };
}

/// `run_<isa>_slice` of a generated layer module: the variant in module `$module` (whose
/// `run` takes the layer's arrays) over slices, refusing with [`crate::Error::Unsupported`]
/// where the CPU lacks its instruction set (through `ENTRY.variant_arrays`). The `simd`
/// form is for SIMD variants, whose `run` is compiled with their target features.
#[macro_export]
macro_rules! variant_slice {
    ($(#[$doc:meta])* $name:ident, $isa:ident, $module:ident) => {
        $(#[$doc])*
        pub fn $name(
            input: &[f32],
            packed: &[f32],
            output: &mut [f32],
            scratch: &mut [f32],
        ) -> Result<(), $crate::Error> {
            let (input, packed, output, scratch) =
                ENTRY.variant_arrays($crate::Isa::$isa, input, packed, output, scratch)?;
            $module::run(input, packed, output, scratch);
            Ok(())
        }
    };
    ($(#[$doc:meta])* $name:ident, $isa:ident, $module:ident, simd) => {
        $(#[$doc])*
        pub fn $name(
            input: &[f32],
            packed: &[f32],
            output: &mut [f32],
            scratch: &mut [f32],
        ) -> Result<(), $crate::Error> {
            let (input, packed, output, scratch) =
                ENTRY.variant_arrays($crate::Isa::$isa, input, packed, output, scratch)?;
            // SAFETY: `variant_arrays` returned Ok, which it does only where
            // `Isa::is_supported` says this CPU runs the variant's instruction set
            // (detected at run time on x86-64; NEON is the aarch64 baseline), the features
            // `$module::run` is compiled with. (Where the build enables them statically the
            // call needs no `unsafe`.)
            #[allow(unused_unsafe)]
            unsafe {
                $module::run(input, packed, output, scratch)
            };
            Ok(())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order as the generator wrote it before this module: one loop per channel, input
    /// channel and tap, with the index of each layout spelled out.
    fn pack_spelled_out(l: &WeightLayout, out_channels: usize, packed: &mut [f32]) {
        let bias = |k: usize| 1000.0 + k as f32;
        for k in 0..out_channels {
            let (g, kk) = (k / l.kpg, k % l.kpg);
            let (block, lane) = if l.gpv > 1 {
                (g / l.gpv, kk * l.gpv + g % l.gpv)
            } else {
                (g * l.nocb + kk / l.oc_bn, kk % l.oc_bn)
            };
            for ci in 0..l.cpg {
                for t in 0..l.taps {
                    let at = if l.dwc {
                        ((k / l.oc_bn) * l.taps + t) * l.oc_bn + k % l.oc_bn
                    } else {
                        ((block * l.cpg + ci) * l.taps + t) * l.oc_bn + lane
                    };
                    packed[at] = ((k * l.cpg + ci) * l.taps + t) as f32;
                }
            }
            let at = if l.dwc { k } else { block * l.oc_bn + lane };
            packed[l.bias_offset + at] = bias(k);
        }
    }

    #[test]
    fn pack_follows_every_layout() {
        // (layout, groups): one block per group, several blocks, groups side by side,
        // depthwise.
        let layouts = [
            (
                WeightLayout {
                    kpg: 8,
                    cpg: 8,
                    oc_bn: 4,
                    nocb: 2,
                    taps: 9,
                    gpv: 1,
                    bias_offset: 0,
                    dwc: false,
                },
                2,
            ),
            (
                WeightLayout {
                    kpg: 1,
                    cpg: 1,
                    oc_bn: 1,
                    nocb: 1,
                    taps: 9,
                    gpv: 1,
                    bias_offset: 0,
                    dwc: false,
                },
                5,
            ),
            (
                WeightLayout {
                    kpg: 4,
                    cpg: 4,
                    oc_bn: 16,
                    nocb: 1,
                    taps: 9,
                    gpv: 4,
                    bias_offset: 0,
                    dwc: false,
                },
                8,
            ),
            (
                WeightLayout {
                    kpg: 1,
                    cpg: 1,
                    oc_bn: 16,
                    nocb: 1,
                    taps: 9,
                    gpv: 1,
                    bias_offset: 0,
                    dwc: true,
                },
                32,
            ),
        ];
        for (mut l, groups) in layouts {
            let k = l.kpg * groups;
            let weights: [f32; 4096] = core::array::from_fn(|i| i as f32);
            let bias: [f32; 64] = core::array::from_fn(|k| 1000.0 + k as f32);
            let len = k * l.cpg * l.taps;
            l.bias_offset = len.next_multiple_of(16);
            let (mut want, mut got) = ([f32::NAN; 4096], [f32::NAN; 4096]);
            pack_spelled_out(&l, k, &mut want);
            l.pack(&weights[..len], Some(&bias[..k]), &mut got);
            assert_eq!(want.map(f32::to_bits), got.map(f32::to_bits), "{l:?}");
            l.pack(&weights[..len], None, &mut got);
            // Without a bias every channel's bias is zero (each layout puts the bias of
            // the k channels in the k values from bias_offset).
            let zero = got[l.bias_offset..l.bias_offset + k]
                .iter()
                .all(|&b| b == 0.0);
            assert!(zero, "{l:?}");
        }
    }
}
