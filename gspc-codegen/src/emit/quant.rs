//! One int8 layer's module (docs/quantization.md, "Kernels"): its shape and quantization
//! constants (the per-channel requantization derived here, at generation time), the
//! manifest entry, the entry points and one module per ISA variant, whose tiles are
//! unrolled over the tile's columns and vectors and loop over the taps.
//!
//! The packed layouts and their packing are `gspc_runtime::qlayer`'s; the plan is
//! `plan::quant`'s.

use super::dispatch::{dispatch_body, dispatched_isa_body};
use super::kernel::{inline_attr, linear};
use super::layer::{baked_items_of, shape_items};
use super::{ident, is_snake_case, isa_path, lit};
use crate::plan::LayerPlan;
use crate::plan::quant::{Flavor, QPlan, QVariant};
use crate::target::Arch;
use gspc_runtime::Isa;
use gspc_runtime::qlayer::QLayout;
use gspc_runtime::quant::{ChannelScale, Requantization};
use proc_macro2::TokenStream;
use quote::quote;

/// An f32 as an exact constant expression.
fn f32_expr(v: f32) -> TokenStream {
    let bits = proc_macro2::Literal::u32_unsuffixed(v.to_bits());
    quote!(f32::from_bits(#bits))
}

fn i32_lit(v: i32) -> proc_macro2::Literal {
    proc_macro2::Literal::i32_unsuffixed(v)
}

/// The module of an int8 layer.
/// The module of an int8 layer; `baked` = (length of the model's weight file, this
/// layer's offset).
pub(super) fn layer_module(
    p: &LayerPlan,
    q: &QPlan,
    arch: Arch,
    outline: bool,
    baked: Option<(usize, usize)>,
) -> TokenStream {
    let l = &p.layer;
    let name = ident(&l.name);
    let allow = if is_snake_case(&l.name) {
        quote!()
    } else {
        quote!(#[allow(non_snake_case)])
    };
    let shape = shape_items(p);
    let quant = quant_items(p);
    let layout = layout_item(p, q);
    let (baked_items, baked_entry) = baked_items_of(baked, quote!(i32), quote!(i32s), quote!(i8));
    let entry = entry_items(p, arch, baked_entry);
    let fp32 = l
        .quantization
        .as_ref()
        .is_some_and(|q| q.requantization == Requantization::Fp32);
    let variants = p
        .variants
        .iter()
        .zip(&q.variants)
        .map(|(v, qv)| variant_module(p, q, v.isa, qv, fp32, outline))
        .chain(q.dot.iter().map(|d| dot_module(p, q, d, fp32, outline)));
    let doc = format!(
        " int8 layer `{}`: {} -> {} channels in {} group(s), {}x{} kernel, stride {:?}, padding {:?}, dilation {:?}, input {}x{}, output {}x{}, activation {}, {} requantization; strategy `{}`, blocks of {} channels.",
        l.name,
        l.in_channels,
        l.out_channels,
        l.groups,
        l.kernel[0],
        l.kernel[1],
        l.stride,
        l.padding,
        l.dilation,
        l.input[0],
        l.input[1],
        p.output[0],
        p.output[1],
        l.activation.as_str(),
        l.quantization
            .as_ref()
            .map_or("", |q| q.requantization.as_str()),
        p.strategy.as_str(),
        q.layout.block,
    );
    quote! {
        #[doc = #doc]
        #allow
        pub mod #name {
            #shape
            #quant
            #layout
            #baked_items
            #entry
            #(#variants)*
        }
    }
}

/// `QUANT` (the spec's parameters), `CHANNELS` (each output channel's requantization,
/// derived now as `QuantParams::derive` derives it) and `REQUANT`.
fn quant_items(p: &LayerPlan) -> TokenStream {
    let l = &p.layer;
    let Some(q) = l.quantization.as_ref() else {
        return quote!(compile_error!("int8 layer without quantization parameters"););
    };
    let params = q.params();
    let mut channels = vec![ChannelScale::Fp32(0.0); l.out_channels];
    let derived = params.derive(l.activation, &mut channels);
    let Ok(rq) = derived else {
        // The spec validator checked these parameters with the same rules.
        return quote!(compile_error!("int8 layer with invalid quantization parameters"););
    };
    let mode = match q.requantization {
        Requantization::Fixed => quote!(::gspc_runtime::quant::Requantization::Fixed),
        Requantization::Fp32 => quote!(::gspc_runtime::quant::Requantization::Fp32),
    };
    let (in_scale, out_scale) = (f32_expr(q.input_scale), f32_expr(q.output_scale));
    let (in_zp, out_zp) = (i32_lit(q.input_zero_point), i32_lit(q.output_zero_point));
    let scales = q.weight_scales.iter().map(|&s| f32_expr(s));
    let n_scales = lit(q.weight_scales.len());
    let channel_items = rq.channels.iter().map(|c| match *c {
        ChannelScale::Fixed(m) => {
            let (mult, shift) = (i32_lit(m.multiplier), i32_lit(m.shift));
            quote!(::gspc_runtime::quant::ChannelScale::Fixed(
                ::gspc_runtime::quant::FixedMultiplier { multiplier: #mult, shift: #shift }
            ))
        }
        ChannelScale::Fp32(s) => {
            let s = f32_expr(s);
            quote!(::gspc_runtime::quant::ChannelScale::Fp32(#s))
        }
    });
    let (min, max) = (i32_lit(rq.min), i32_lit(rq.max));
    // fp32 requantization in vectors: each channel's scale, and the clamp less the zero
    // point in f32 (what `quant::requantize_fp32` computes).
    let channel_scales = rq.channels.iter().map(|c| match *c {
        ChannelScale::Fp32(s) => f32_expr(s),
        ChannelScale::Fixed(_) => f32_expr(0.0),
    });
    let lo = f32_expr(rq.min.saturating_sub(rq.output_zero_point) as f32);
    let hi = f32_expr(rq.max.saturating_sub(rq.output_zero_point) as f32);
    quote! {
        /// fp32 requantization in vectors: each output channel's scale (0 in `fixed`
        /// mode, where the kernels requantize lane by lane).
        pub const SCALES: [f32; OUT_CHANNELS] = [#(#channel_scales),*];
        /// The activation's clamp less the output zero point, in f32.
        const CLAMP: (f32, f32) = (#lo, #hi);
        /// Per-output-channel weight scales.
        pub const WEIGHT_SCALES: [f32; #n_scales] = [#(#scales),*];
        /// The layer's quantization parameters, as the spec gives them.
        pub const QUANT: ::gspc_runtime::quant::QuantParams<'static> =
            ::gspc_runtime::quant::QuantParams {
                mode: #mode,
                input_scale: #in_scale,
                input_zero_point: #in_zp,
                output_scale: #out_scale,
                output_zero_point: #out_zp,
                weight_scales: &WEIGHT_SCALES,
            };
        /// Each output channel's requantization, derived from [`QUANT`] at generation time.
        pub const CHANNELS: [::gspc_runtime::quant::ChannelScale; OUT_CHANNELS] =
            [#(#channel_items),*];
        /// The requantization of every output: zero points, the activation's clamp and
        /// [`CHANNELS`].
        pub const REQUANT: ::gspc_runtime::quant::Requant<'static> =
            ::gspc_runtime::quant::Requant {
                input_zero_point: #in_zp,
                output_zero_point: #out_zp,
                min: #min,
                max: #max,
                channels: &CHANNELS,
            };
    }
}

/// `LAYOUT`, the work-unit constants, and the compile-time check that the layout's lengths
/// are the module's.
fn layout_item(p: &LayerPlan, q: &QPlan) -> TokenStream {
    let ql = &q.layout;
    let u = lit;
    let pairs = layout_expr(ql);
    let block_len = u(ql.block * p.output[0] * p.output[1]);
    let units = u(ql.units());
    let (quads, sections) = match (&q.quads, &q.depthwise_lanes) {
        (Some(quads), _) => {
            let e = layout_expr(quads);
            (
                quote! {
                    /// The packed layout of 8-bit quads (`vpdpbusd`), after [`LAYOUT`]'s
                    /// section in the packed weights.
                    pub const QUADS: ::gspc_runtime::qlayer::QLayout = #e;
                },
                quote!([LAYOUT, QUADS]),
            )
        }
        (None, Some(lanes)) => {
            let e = layout_expr(lanes);
            (
                quote! {
                    /// The depthwise layout with 16 channels on the lanes (the AVX-512
                    /// variant's), after [`LAYOUT`]'s section in the packed weights.
                    pub const LANES: ::gspc_runtime::qlayer::QLayout = #e;
                },
                quote!([LAYOUT, LANES]),
            )
        }
        (None, None) => (quote!(), quote!([LAYOUT])),
    };
    quote! {
        /// The packed layout of int16 pairs (`gspc_runtime::qlayer`).
        pub const LAYOUT: ::gspc_runtime::qlayer::QLayout = #pairs;
        #quads
        /// The sections of the packed weights, in order.
        pub const SECTIONS: &[::gspc_runtime::qlayer::QLayout] = &#sections;
        const _: () = assert!(
            ::gspc_runtime::qlayer::sections_len(SECTIONS) == PACKED_LEN
                && ::gspc_runtime::qlayer::sections_scratch(SECTIONS) == SCRATCH_LEN
                && LAYOUT.units() == UNITS
        );
        /// Output values of one work unit (a block of output channels).
        pub const BLOCK_LEN: usize = #block_len;
        /// Work units: output-channel blocks.
        pub const UNITS: usize = #units;
    }
}

/// A `QLayout` as a constant expression.
fn layout_expr(ql: &QLayout) -> TokenStream {
    let u = lit;
    let (groups, cpg, kpg, block, elems, words) = (
        u(ql.groups),
        u(ql.cpg),
        u(ql.kpg),
        u(ql.block),
        u(ql.elems),
        u(ql.words),
    );
    let pair = |a: [usize; 2]| {
        let (x, y) = (u(a[0]), u(a[1]));
        quote!([#x, #y])
    };
    let (kernel, stride, input, padding, dilation, padded) = (
        pair(ql.kernel),
        pair(ql.stride),
        pair(ql.input),
        pair(ql.padding),
        pair(ql.dilation),
        pair(ql.padded),
    );
    let (zp, offset) = (i32_lit(ql.input_zero_point), i32_lit(ql.input_offset));
    let (depthwise, channel_lanes) = (ql.depthwise, ql.channel_lanes);
    quote! {
        ::gspc_runtime::qlayer::QLayout {
            depthwise: #depthwise,
            groups: #groups,
            cpg: #cpg,
            kpg: #kpg,
            kernel: #kernel,
            stride: #stride,
            block: #block,
            elems: #elems,
            words: #words,
            input: #input,
            padding: #padding,
            dilation: #dilation,
            padded: #padded,
            input_zero_point: #zp,
            input_offset: #offset,
            channel_lanes: #channel_lanes,
        }
    }
}

/// `pack_weights`, `dispatched_isa`, `run_units`, `ENTRY` (gspc-runtime's `Entry` over
/// int8 activations and int32 words) with `run`, `run_parallel`, `run_split` and their
/// slice forms from `layer_entry_points!(int8)`, the variants' slice forms and `LAYER`.
fn entry_items(p: &LayerPlan, arch: Arch, baked_entry: TokenStream) -> TokenStream {
    let isas: Vec<Isa> = p.variants.iter().map(|v| v.isa).collect();
    let dispatch_units = dispatch_body(
        &isas,
        arch,
        "run_units",
        quote!(input, packed, first, blocks, scratch),
        true,
    );
    let dispatched = dispatched_isa_body(&isas, arch, false, true);
    let variant_slices = p.variants.iter().map(|v| variant_slice(v.isa));
    let variant_entries = p.variants.iter().map(|v| {
        let isa = isa_path(v.isa);
        let kname = &v.kernel;
        let f = ident(&format!("run_{}_slice", v.isa));
        quote!(::gspc_runtime::qlayer::QVariant { isa: #isa, kernel: #kname, run: #f })
    });
    let strategy = p.strategy.as_str();
    let entry = super::layer::entry_const(quote!(i8, i32), quote!(None));
    quote! {
        /// Packs OIHW int8 weights `[OUT_CHANNELS][IN_CHANNELS / GROUPS][KH][KW]` and an
        /// optional int32 bias (zero without one) into [`LAYOUT`]; refuses a weight of -128.
        pub fn pack_weights(
            weights: &[i8; WEIGHTS_LEN],
            bias: Option<&[i32; OUT_CHANNELS]>,
            packed: &mut [i32; PACKED_LEN],
        ) -> Result<(), ::gspc_runtime::Error> {
            ::gspc_runtime::qlayer::pack_sections(SECTIONS, weights, bias.map(|b| b.as_slice()), packed)
        }

        /// [`pack_weights`] over slices, checking their lengths.
        pub fn pack_weights_slice(
            weights: &[i8],
            bias: Option<&[i32]>,
            packed: &mut [i32],
        ) -> Result<(), ::gspc_runtime::Error> {
            ::gspc_runtime::qlayer::pack_sections(SECTIONS, weights, bias, packed)
        }

        /// The variant [`run`] runs on this CPU: the best one it supports.
        #[inline]
        pub fn dispatched_isa() -> ::gspc_runtime::Isa {
            #dispatched
        }

        /// Computes output blocks `first..first + blocks.len()` with the best variant, which
        /// packs the input they read into `scratch`.
        fn run_units(
            input: &[i8; INPUT_LEN],
            packed: &[i32; PACKED_LEN],
            first: usize,
            blocks: &mut [[i8; BLOCK_LEN]],
            scratch: &mut [i32; SCRATCH_LEN],
        ) {
            #dispatch_units
        }

        #entry

        ::gspc_runtime::layer_entry_points!(int8);

        #(#variant_slices)*

        /// The layer's manifest entry.
        pub const LAYER: ::gspc_runtime::qlayer::QLayer = ::gspc_runtime::qlayer::QLayer {
            info: INFO,
            quant: QUANT,
            strategy: #strategy,
            input_len: INPUT_LEN,
            output_len: OUTPUT_LEN,
            weights_len: WEIGHTS_LEN,
            packed_len: PACKED_LEN,
            scratch_len: SCRATCH_LEN,
            pack_weights: pack_weights_slice,
            run: run_slice,
            run_parallel: run_parallel_slice,
            run_split: run_split_slice,
            dispatched_isa,
            variants: &[#(#variant_entries),*],
            baked: #baked_entry,
        };
    }
}

/// `run_<isa>_slice`: one variant over slices, refusing where the CPU lacks it.
fn variant_slice(isa: Isa) -> TokenStream {
    let f = ident(&format!("run_{isa}_slice"));
    let m = ident(isa.as_str());
    let p = isa_path(isa);
    let doc = format!(" The {isa} variant of [`run`] over slices; refuses when the CPU lacks it.");
    let call = quote!(#m::run(input, packed, output, scratch));
    let call = if isa == Isa::Portable {
        call
    } else {
        let why = format!(
            "`qlayer::supported` just showed that this CPU runs the {isa} variant's instruction set, the features `{isa}::run` is compiled with"
        );
        quote! {
            gspc_safety!(#why);
            #[allow(unused_unsafe)]
            unsafe { #call }
        }
    };
    quote! {
        #[doc = #doc]
        pub fn #f(
            input: &[i8],
            packed: &[i32],
            output: &mut [i8],
            scratch: &mut [i32],
        ) -> Result<(), ::gspc_runtime::Error> {
            if !::gspc_runtime::qlayer::supported(#p) {
                return Err(::gspc_runtime::Error::Unsupported(#p));
            }
            let (input, packed, output, scratch) = ENTRY.arrays(input, packed, output, scratch)?;
            #call;
            Ok(())
        }
    }
}

/// The vector operations of a flavor, as tokens.
struct Ops {
    flavor: Flavor,
    lanes: usize,
    /// Words of four 8-bit values (`vpdpbusd`: unsigned input, signed weights), not two
    /// int16 values.
    quad: bool,
}

impl Ops {
    fn zero(&self) -> TokenStream {
        let l = lit(self.lanes);
        match self.flavor {
            Flavor::Zmm => quote!(_mm512_setzero_si512()),
            Flavor::Ymm => quote!(_mm256_setzero_si256()),
            Flavor::Xmm => quote!(_mm_setzero_si128()),
            Flavor::Neon => quote!((vdupq_n_s32(0), vdupq_n_s32(0))),
            Flavor::NeonDot => quote!(vdupq_n_s32(0)),
            Flavor::Scalar => quote!([0i32; #l]),
        }
    }

    /// A vector from `&[i32; lanes]`.
    fn load(&self, src: TokenStream) -> TokenStream {
        match self.flavor {
            Flavor::Zmm => quote!(::gspc_runtime::x86::loadi16(#src)),
            Flavor::Ymm => quote!(::gspc_runtime::x86::loadi8(#src)),
            Flavor::Xmm => quote!(::gspc_runtime::x86::loadi4(#src)),
            Flavor::Neon | Flavor::NeonDot => quote!(::gspc_runtime::aarch64::loadi4(#src)),
            Flavor::Scalar => quote!(*#src),
        }
    }

    /// One word in every lane.
    fn bcast(&self, word: TokenStream) -> TokenStream {
        let l = lit(self.lanes);
        match self.flavor {
            Flavor::Zmm => quote!(_mm512_set1_epi32(#word)),
            Flavor::Ymm => quote!(_mm256_set1_epi32(#word)),
            Flavor::Xmm => quote!(_mm_set1_epi32(#word)),
            Flavor::Neon | Flavor::NeonDot => quote!(vdupq_n_s32(#word)),
            Flavor::Scalar => quote!([#word; #l]),
        }
    }

    /// `acc + x . w` per lane (two int16 products per word, or four 8-bit ones).
    fn madd(&self, acc: &TokenStream, x: &TokenStream, w: &TokenStream) -> TokenStream {
        if self.quad {
            return match self.flavor {
                Flavor::Zmm => quote!(_mm512_dpbusd_epi32(#acc, #x, #w)),
                Flavor::Ymm => quote!(_mm256_dpbusd_epi32(#acc, #x, #w)),
                Flavor::Xmm => quote!(_mm_dpbusd_epi32(#acc, #x, #w)),
                Flavor::Scalar => quote!(::gspc_runtime::qlayer::madd_quads_lanes(#acc, &#x, &#w)),
                Flavor::NeonDot => quote!(::gspc_runtime::aarch64::sdot(#acc, #x, #w)),
                // The planner gives NEON's quads to the `NeonDot` flavor only.
                Flavor::Neon => quote!(compile_error!("int8 quads on NEON need sdot")),
            };
        }
        match self.flavor {
            Flavor::Zmm => quote!(_mm512_dpwssd_epi32(#acc, #x, #w)),
            Flavor::Ymm => quote!(_mm256_add_epi32(#acc, _mm256_madd_epi16(#x, #w))),
            Flavor::Xmm => quote!(_mm_add_epi32(#acc, _mm_madd_epi16(#x, #w))),
            Flavor::Neon => quote!({
                let xs = vreinterpretq_s16_s32(#x);
                let ws = vreinterpretq_s16_s32(#w);
                (
                    vmlal_s16(#acc.0, vget_low_s16(xs), vget_low_s16(ws)),
                    vmlal_high_s16(#acc.1, xs, ws),
                )
            }),
            Flavor::Scalar => quote!(::gspc_runtime::qlayer::madd_lanes(#acc, &#x, &#w)),
            Flavor::NeonDot => quote!(compile_error!("sdot reads quads")),
        }
    }

    /// The epilogue of accumulator `acc` of output channel `k` (global index expression)
    /// into `dst` (`&mut [i8; lanes]`): bias `b`, requantization, store. With `fp32`
    /// requantization in vectors on x86 and aarch64, otherwise lane by lane.
    fn store(&self, acc: &TokenStream, fp32: bool, k: &TokenStream) -> TokenStream {
        let vector = |add: TokenStream, f: TokenStream| {
            quote! {
                let Some(&scale) = super::SCALES.get(#k) else {
                    return;
                };
                #f(#add, scale, super::CLAMP.0, super::CLAMP.1, super::REQUANT.output_zero_point, dst);
            }
        };
        let lanes = |v: TokenStream| quote!(::gspc_runtime::qlayer::store_cols(&super::REQUANT, #v, #k, b, dst););
        match (self.flavor, fp32) {
            (Flavor::Zmm, true) => vector(
                quote!(_mm512_add_epi32(#acc, _mm512_set1_epi32(b))),
                quote!(::gspc_runtime::x86::requant16),
            ),
            (Flavor::Ymm, true) => vector(
                quote!(_mm256_add_epi32(#acc, _mm256_set1_epi32(b))),
                quote!(::gspc_runtime::x86::requant8),
            ),
            (Flavor::Xmm, true) => vector(
                quote!(_mm_add_epi32(#acc, _mm_set1_epi32(b))),
                quote!(::gspc_runtime::x86::requant4),
            ),
            (Flavor::Zmm, false) => lanes(quote!(::gspc_runtime::x86::storei16(#acc))),
            (Flavor::Ymm, false) => lanes(quote!(::gspc_runtime::x86::storei8(#acc))),
            (Flavor::Xmm, false) => lanes(quote!(::gspc_runtime::x86::storei4(#acc))),
            (Flavor::Neon | Flavor::NeonDot, true) => {
                let a = self.neon_sums(acc);
                vector(
                    quote!(vaddq_s32(#a, vdupq_n_s32(b))),
                    quote!(::gspc_runtime::aarch64::requant4),
                )
            }
            (Flavor::Neon | Flavor::NeonDot, false) => {
                let a = self.neon_sums(acc);
                lanes(quote!(::gspc_runtime::aarch64::storei4(#a)))
            }
            (Flavor::Scalar, _) => lanes(quote!(#acc)),
        }
    }

    /// A NEON accumulator as one `int32x4_t` of its 4 lanes' sums: `smlal` tiles keep two
    /// vectors of partial sums (added pairwise), `sdot` tiles one.
    fn neon_sums(&self, acc: &TokenStream) -> TokenStream {
        match self.flavor {
            Flavor::Neon => quote!(vpaddq_s32(#acc.0, #acc.1)),
            _ => quote!(#acc),
        }
    }
}

impl Ops {
    /// The epilogue of accumulator `acc` whose lanes are output channels `kg..kg + lanes`
    /// at one pixel: bias, requantization, then a scatter over the channels' planes
    /// (`out[at + l * plane]`). With `fp32` requantization in vectors on x86 and aarch64,
    /// otherwise lane by lane.
    fn store_channels(&self, acc: &TokenStream, fp32: bool, plane: usize) -> TokenStream {
        let l = lit(self.lanes);
        let plane = lit(plane);
        let vector = |ty: TokenStream, add: TokenStream, load_f: TokenStream, f: TokenStream| {
            quote! {
                let Some(bv) = ::gspc_runtime::window::window::<_, #l, { super::PACKED_LEN }>(p, BIAS_OFFSET + kg) else {
                    return;
                };
                let Some(sv) = ::gspc_runtime::window::window::<_, #l, { super::OUT_CHANNELS }>(&super::SCALES, kg) else {
                    return;
                };
                let a: #ty = #add;
                let mut q = [0i8; #l];
                #f(a, #load_f, super::CLAMP.0, super::CLAMP.1, super::REQUANT.output_zero_point, &mut q);
                ::gspc_runtime::qlayer::scatter(&q, out, at, #plane);
            }
        };
        let lanes = |v: TokenStream| {
            quote! {
                let Some(bias) = p.get(BIAS_OFFSET..) else {
                    return;
                };
                ::gspc_runtime::qlayer::store_channels(&super::REQUANT, #v, bias, kg, out, at, #plane);
            }
        };
        match (self.flavor, fp32) {
            (Flavor::Zmm, true) => vector(
                quote!(__m512i),
                quote!(_mm512_add_epi32(#acc, ::gspc_runtime::x86::loadi16(bv))),
                quote!(::gspc_runtime::x86::load16(sv)),
                quote!(::gspc_runtime::x86::requant16_by),
            ),
            (Flavor::Ymm, true) => vector(
                quote!(__m256i),
                quote!(_mm256_add_epi32(#acc, ::gspc_runtime::x86::loadi8(bv))),
                quote!(::gspc_runtime::x86::load8(sv)),
                quote!(::gspc_runtime::x86::requant8_by),
            ),
            (Flavor::Xmm, true) => vector(
                quote!(__m128i),
                quote!(_mm_add_epi32(#acc, ::gspc_runtime::x86::loadi4(bv))),
                quote!(::gspc_runtime::x86::load4(sv)),
                quote!(::gspc_runtime::x86::requant4_by),
            ),
            (Flavor::Zmm, false) => lanes(quote!(::gspc_runtime::x86::storei16(#acc))),
            (Flavor::Ymm, false) => lanes(quote!(::gspc_runtime::x86::storei8(#acc))),
            (Flavor::Xmm, false) => lanes(quote!(::gspc_runtime::x86::storei4(#acc))),
            (Flavor::Neon | Flavor::NeonDot, true) => {
                let a = self.neon_sums(acc);
                vector(
                    quote!(int32x4_t),
                    quote!(vaddq_s32(#a, ::gspc_runtime::aarch64::loadi4(bv))),
                    quote!(::gspc_runtime::aarch64::load4(sv)),
                    quote!(::gspc_runtime::aarch64::requant4_by),
                )
            }
            (Flavor::Neon | Flavor::NeonDot, false) => {
                let a = self.neon_sums(acc);
                lanes(quote!(::gspc_runtime::aarch64::storei4(#a)))
            }
            (Flavor::Scalar, _) => lanes(quote!(#acc)),
        }
    }
}

/// `#[target_feature]` of an int8 variant's functions.
fn target_feature(isa: Isa) -> TokenStream {
    match isa {
        Isa::Avx2 => quote!(#[target_feature(enable = "avx2")]),
        Isa::Avx512 => {
            quote!(#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")])
        }
        Isa::Neon => quote!(#[target_feature(enable = "neon")]),
        Isa::Portable => quote!(),
    }
}

/// `# Safety` doc lines of an int8 variant's public functions.
fn safety_doc(isa: Isa) -> TokenStream {
    let need = match isa {
        Isa::Avx2 => "The CPU must support AVX2.",
        Isa::Avx512 => {
            "The CPU must support AVX-512F, BW, VL and VNNI (`gspc_runtime::qlayer::supported`)."
        }
        Isa::Neon => "NEON, the aarch64 baseline.",
        Isa::Portable => return quote!(),
    };
    let need = format!(" {need}");
    quote!(#[doc = ""] #[doc = " # Safety"] #[doc = ""] #[doc = #need])
}

fn arch_uses(isa: Isa) -> TokenStream {
    match isa {
        Isa::Avx2 | Isa::Avx512 => quote!(
            #[allow(unused_imports)]
            use core::arch::x86_64::*;
        ),
        Isa::Neon => quote!(
            #[allow(unused_imports)]
            use core::arch::aarch64::*;
        ),
        Isa::Portable => quote!(),
    }
}

/// What names a variant's module and what its functions need.
struct ModuleKind {
    /// The module's name.
    name: proc_macro2::Ident,
    /// `#[target_feature]`.
    tf: TokenStream,
    /// `# Safety` doc lines.
    safety: TokenStream,
    /// The `neon` variant with a `neon_dot` module beside it: its `run_units` goes there
    /// where the CPU has the dot product extension.
    forward_dot: bool,
}

/// One variant's module: `run`, `run_units` and its tiles (a full one and, where the row
/// has a remainder, a last one).
fn variant_module(
    p: &LayerPlan,
    q: &QPlan,
    isa: Isa,
    v: &QVariant,
    fp32: bool,
    outline: bool,
) -> TokenStream {
    let kind = ModuleKind {
        name: ident(isa.as_str()),
        tf: target_feature(isa),
        safety: safety_doc(isa),
        forward_dot: isa == Isa::Neon && q.dot.is_some(),
    };
    module_of(p, q, isa, v, (fp32, outline), kind)
}

/// The module `neon_dot`: the `neon` variant's kernels over quads with `sdot`, which it
/// runs where the CPU has the dot product extension.
fn dot_module(p: &LayerPlan, q: &QPlan, v: &QVariant, fp32: bool, outline: bool) -> TokenStream {
    let kind = ModuleKind {
        name: ident("neon_dot"),
        tf: quote!(#[target_feature(enable = "neon,dotprod")]),
        safety: quote!(#[doc = ""] #[doc = " # Safety"] #[doc = ""] #[doc = " The CPU must have the dot product extension (`gspc_runtime::aarch64::has_dotprod`)."]),
        forward_dot: false,
    };
    module_of(p, q, Isa::Neon, v, (fp32, outline), kind)
}

/// The body of [`variant_module`] and [`dot_module`].
fn module_of(
    p: &LayerPlan,
    q: &QPlan,
    isa: Isa,
    v: &QVariant,
    (fp32, outline): (bool, bool),
    kind: ModuleKind,
) -> TokenStream {
    let lay = q.layout_of(v);
    let ops = Ops {
        flavor: v.flavor,
        lanes: v.lanes,
        quad: lay.elems == 4,
    };
    let section = if v.quad {
        quote!(super::QUADS)
    } else if v.depthwise_lanes {
        quote!(super::LANES)
    } else {
        quote!(super::LAYOUT)
    };
    let w0 = lit(q.base_of(v));
    let ModuleKind {
        name: module,
        tf,
        safety,
        forward_dot,
    } = kind;
    let uses = arch_uses(isa);
    // The `neon` variant's entry points go to `neon_dot` where the CPU has `sdot`.
    let forward = |call: TokenStream| {
        if !forward_dot {
            return quote!();
        }
        let why = "`has_dotprod()` just showed that this CPU has the dot product extension, the feature `neon_dot` is compiled with beside NEON";
        quote! {
            if ::gspc_runtime::aarch64::has_dotprod() {
                gspc_safety!(#why);
                unsafe { super::neon_dot::#call };
                return;
            }
        }
    };
    let forward_units = forward(quote!(run_units(input, packed, first, blocks, scratch)));
    let cols = if v.channel_lanes {
        v.columns
    } else {
        v.nvec * v.lanes
    };
    // Full tiles: vectors (or, with channel lanes, columns) from `ow0`; the last tile's at
    // absolute columns.
    let full_offsets: Vec<usize> = if v.channel_lanes {
        (0..v.columns).collect()
    } else {
        (0..v.nvec).map(|i| i * v.lanes).collect()
    };
    let has_tail = !v.tail_starts.is_empty();
    let mut tiles = Vec::new();
    let flat_names: Vec<proc_macro2::Ident> = (0..v.flat.len())
        .map(|i| ident(&format!("tile_flat_{i}")))
        .collect();
    for (name, starts) in flat_names.iter().zip(&v.flat) {
        tiles.push(flat_tile_fn(
            p,
            lay,
            &ops,
            &tf,
            name,
            starts,
            (fp32, outline),
        ));
    }
    for (name, offsets, present) in [
        (
            "tile_full",
            &full_offsets,
            v.full_tiles > 0 && v.flat.is_empty(),
        ),
        ("tile_tail", &v.tail_starts, has_tail && v.flat.is_empty()),
    ] {
        if !present {
            continue;
        }
        let settings = (v.channels, fp32, outline);
        tiles.push(if v.depthwise_lanes {
            lanes_tile_fn(p, lay, v.lanes, &tf, name, offsets, (fp32, outline))
        } else if v.channel_lanes {
            channel_tile_fn(
                p,
                lay,
                &ops,
                &tf,
                name,
                offsets,
                (v.channels, fp32, outline, false),
            )
        } else {
            tile_fn(p, lay, &ops, &tf, name, offsets, settings)
        });
        if v.group_pairs {
            // The same tile over two groups, in `__m512i`s of both groups' channels.
            let wide = Ops {
                flavor: Flavor::Zmm,
                lanes: 2 * v.lanes,
                quad: ops.quad,
            };
            let name = format!("{name}2");
            let settings = (2 * v.channels, fp32, outline, true);
            tiles.push(channel_tile_fn(
                p, lay, &wide, &tf, &name, offsets, settings,
            ));
        }
    }
    let (oh_l, full_l) = (lit(p.output[0]), lit(v.full_tiles));
    let t_expr = linear(&[("t", cols)], 0);
    // The loops over a unit's tiles (`suffix` "2": over a pair of units, `block` their
    // two blocks).
    let rows_loop_of = |suffix: &str| {
        let (full, tail) = (
            ident(&format!("tile_full{suffix}")),
            ident(&format!("tile_tail{suffix}")),
        );
        let full_call = if v.full_tiles > 0 {
            quote! {
                for t in 0..#full_l {
                    #full(x, packed, block, unit, kl, oh, #t_expr);
                }
            }
        } else {
            quote!()
        };
        let tail_call = if has_tail {
            quote!(#tail(x, packed, block, unit, kl, oh, 0);)
        } else {
            quote!()
        };
        let rows_loop = rows_loop_with(p, v, &full, [&full_call, &tail_call]);
        (full_call, tail_call, rows_loop)
    };
    let (full_call, tail_call, rows_loop) = rows_loop_of("");
    let passes = lit(lay.block / v.channels);
    let kl_expr = linear(&[("pass", v.channels)], 0);
    // Each unit of `blocks` (from unit `first`) through the one-group tiles.
    let one_by_one = quote! {
        for (i, block) in blocks.iter_mut().enumerate() {
            let unit = first + i;
            for pass in 0..#passes {
                let kl = #kl_expr;
                #rows_loop
            }
        }
    };
    let units_loop = if v.group_pairs {
        // Units in pairs through the two-group tiles, an odd one left over through the
        // one-group tiles.
        let (_, _, pair_rows) = rows_loop_of("2");
        quote! {
            let (two, blocks) = blocks.as_chunks_mut::<2>();
            for (i, block) in two.iter_mut().enumerate() {
                let unit = first + 2 * i;
                let kl = 0;
                #pair_rows
            }
            let first = first + 2 * two.len();
            #one_by_one
        }
    } else {
        one_by_one
    };
    let doc = format!(
        " The {isa} variant: {} of {} int32 lanes ({}); tiles of {} vector(s) x {} channel(s){}.",
        match v.flavor {
            Flavor::Ymm if ops.quad && isa == Isa::Avx2 => {
                "vpmaddwd over the even and the odd bytes of quads in vectors"
            }
            Flavor::Zmm | Flavor::Ymm | Flavor::Xmm if ops.quad => "vpdpbusd over vectors",
            Flavor::Zmm => "vpdpwssd over vectors",
            Flavor::Ymm | Flavor::Xmm => "vpmaddwd over vectors",
            Flavor::Neon => "smlal/smlal2 over vectors",
            Flavor::NeonDot => "sdot over vectors",
            Flavor::Scalar => "int32 arrays",
        },
        v.lanes,
        if v.channel_lanes {
            if v.out_rows > 1 {
                format!(
                    "output channels, {} pixel(s) of {} whole rows per tile",
                    v.columns, v.out_rows
                )
            } else {
                format!("output channels, {} column(s) per tile", v.columns)
            }
        } else {
            "output columns".to_string()
        },
        v.nvec,
        v.channels,
        if has_tail && v.out_rows > 1 {
            format!(
                ", then tiles of the {} row(s) left over",
                p.output[0] % v.out_rows
            )
        } else if has_tail {
            format!(", the last of each row at columns `{:?}`", v.tail_starts)
        } else {
            String::new()
        }
    );
    let block_l = lit(lay.block);
    let c_expr = linear(&[("unit", lay.block), ("kl", 1)], 0);
    let dw_loops = if v.out_rows > 1 {
        rows_loop
    } else if v.flat.is_empty() {
        quote! {
            for oh in 0..#oh_l {
                #full_call
                #tail_call
            }
        }
    } else {
        quote!(#(#flat_names(x, packed, block, unit, kl);)*)
    };
    // The AVX-512 variant packs with the runtime's AVX-512BW packers, inlined into it with
    // the layout folded in.
    let why = "this variant is compiled with AVX-512F, BW and VL, which the runtime's AVX-512 packers need of their caller, and runs only on a CPU with them";
    // Quads: where the CPU has AVX-512 VBMI, the packing runs in a function of this
    // module compiled with it (`pack_grouped_vbmi`), otherwise inline.
    let vbmi = isa == Isa::Avx512 && !lay.depthwise && lay.elems == 4;
    let pack_groups = if isa == Isa::Avx512 {
        quote! {
            gspc_safety!(#why);
            unsafe { ::gspc_runtime::x86::pack_grouped(&LAYOUT, input, groups, scratch) };
        }
    } else {
        quote!(LAYOUT.pack_input_grouped(input, groups, scratch);)
    };
    let pack_groups = if vbmi {
        let why_vbmi = "`has_avx512_vbmi()` just showed that this CPU has AVX-512 VBMI, which `pack_vbmi` is compiled with beside this variant's features";
        quote! {
            if ::gspc_runtime::x86::has_avx512_vbmi() {
                gspc_safety!(#why_vbmi);
                unsafe { pack_vbmi(input, groups, scratch) };
            } else {
                #pack_groups
            }
        }
    } else {
        pack_groups
    };
    let pack_vbmi_fn = if vbmi {
        let why = "this function is compiled with AVX-512F, BW, VL and VBMI, which `pack_grouped_vbmi` needs of its caller, and runs only on a CPU with them";
        quote! {
            /// The input of groups `groups` packed with AVX-512 VBMI
            /// (`gspc_runtime::x86::pack_grouped_vbmi`, the layout folded in).
            ///
            /// # Safety
            ///
            /// The CPU must support AVX-512F, BW, VL and VBMI (`gspc_runtime::x86::has_avx512_vbmi`).
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
            fn pack_vbmi(
                input: &[i8; super::INPUT_LEN],
                groups: ::core::ops::Range<usize>,
                scratch: &mut [i32; super::SCRATCH_LEN],
            ) {
                gspc_safety!(#why);
                unsafe { ::gspc_runtime::x86::pack_grouped_vbmi(&LAYOUT, input, groups, scratch) };
            }
        }
    } else {
        quote!()
    };
    let (pack_lanes, pack_channel) = if isa == Isa::Avx512 {
        let cols = lit(lay.padded[1] + (lay.elems - 1) * lay.dilation[1]);
        (
            quote! {
                gspc_safety!(#why);
                unsafe { ::gspc_runtime::x86::pack_lanes::<#cols>(&LAYOUT, input, unit, scratch) };
            },
            quote! {
                gspc_safety!(#why);
                unsafe { ::gspc_runtime::x86::pack_depthwise(&LAYOUT, input, #c_expr, scratch) };
            },
        )
    } else {
        (
            quote!(LAYOUT.pack_input_lanes(input, unit, scratch);),
            quote!(LAYOUT.pack_input_depthwise(input, #c_expr, scratch);),
        )
    };
    let dw_units = if v.depthwise_lanes {
        // The block's channels packed side by side, then its rows of pixel tiles (in passes
        // over the block's channels where a vector holds fewer).
        let block_loops = if v.channels < lay.block {
            quote! {
                for pass in 0..#passes {
                    let kl = #kl_expr;
                    #dw_loops
                }
            }
        } else {
            quote! {
                let kl = 0;
                #dw_loops
            }
        };
        quote! {
            for (i, block) in blocks.iter_mut().enumerate() {
                let unit = first + i;
                #pack_lanes
                let x: &[i32; super::SCRATCH_LEN] = scratch;
                #block_loops
            }
        }
    } else {
        quote! {
            #forward_units
            for (i, block) in blocks.iter_mut().enumerate() {
                let unit = first + i;
                for kl in 0..#block_l {
                    #pack_channel
                    let x: &[i32; super::SCRATCH_LEN] = scratch;
                    #dw_loops
                }
            }
        }
    };
    let units_body = if lay.depthwise {
        dw_units
    } else {
        // The groups of these blocks packed into `scratch`, then their tiles.
        quote! {
            #forward_units
            let groups = LAYOUT.unit_groups(first, blocks.len());
            #pack_groups
            let x: &[i32; super::SCRATCH_LEN] = scratch;
            #units_loop
        }
    };
    let units_doc = if lay.depthwise {
        " Output blocks `first..first + blocks.len()`: each channel (or block of channel lanes) packs its input into `scratch`, then runs its tiles."
    } else {
        " Output blocks `first..first + blocks.len()`: the input of their groups packed into `scratch`, then their tiles."
    };
    let run_fn = quote! {
        /// Runs the layer with this variant.
        #safety
        #tf
        pub fn run(
            input: &[i8; super::INPUT_LEN],
            packed: &[i32; super::PACKED_LEN],
            output: &mut [i8; super::OUTPUT_LEN],
            scratch: &mut [i32; super::SCRATCH_LEN],
        ) {
            let (blocks, _) = output.as_chunks_mut::<{ super::BLOCK_LEN }>();
            run_units(input, packed, 0, blocks, scratch);
        }
    };
    let units_fn = quote! {
        #[doc = #units_doc]
        #safety
        #tf
        pub fn run_units(
            input: &[i8; super::INPUT_LEN],
            packed: &[i32; super::PACKED_LEN],
            first: usize,
            blocks: &mut [[i8; super::BLOCK_LEN]],
            scratch: &mut [i32; super::SCRATCH_LEN],
        ) {
            #units_body
        }
    };
    quote! {
        #[doc = #doc]
        pub mod #module {
            #uses

            /// The packed layout this variant reads.
            const LAYOUT: ::gspc_runtime::qlayer::QLayout = #section;
            /// Offset of its section in the packed weights.
            const W0: usize = #w0;
            /// Offset of its section's bias.
            const BIAS_OFFSET: usize = W0 + LAYOUT.weight_words();

            #run_fn

            #units_fn

            #pack_vbmi_fn

            #(#tiles)*
        }
    }
}

/// The loop over a unit's output rows: tiles of `out_rows` whole rows, then a tile per row
/// left over; or per row its full tiles (`calls[0]`) and its last (`calls[1]`).
fn rows_loop_with(
    p: &LayerPlan,
    v: &QVariant,
    full: &proc_macro2::Ident,
    [full_call, tail_call]: [&TokenStream; 2],
) -> TokenStream {
    let oh_l = lit(p.output[0]);
    if v.out_rows > 1 {
        let r = v.out_rows;
        let (groups_l, rest_l) = (lit(p.output[0] / r), lit(p.output[0] / r * r));
        let oh_expr = linear(&[("i", r)], 0);
        let rest = if tail_call.is_empty() {
            quote!()
        } else {
            quote! {
                for oh in #rest_l..#oh_l {
                    #tail_call
                }
            }
        };
        quote! {
            for i in 0..#groups_l {
                let oh = #oh_expr;
                #full(x, packed, block, unit, kl, oh, 0);
            }
            #rest
        }
    } else {
        quote! {
            for oh in 0..#oh_l {
                #full_call
                #tail_call
            }
        }
    }
}

/// The index expressions of a grouped tile (`gspc-oc`, either tile shape): its group, the
/// packed input row of word `pp` and kernel row `r` from column `ow0`, and the block's
/// weights of word `pp` and kernel row `r` from local channel `kl`.
struct GroupedIndex {
    g_expr: TokenStream,
    row_expr: TokenStream,
    wrow_expr: TokenStream,
}

fn grouped_index(lay: &QLayout) -> GroupedIndex {
    let [kh, kw] = lay.kernel;
    let (pairs, block) = (lay.words, lay.block);
    let row_words = lay.phases() * lay.phase_len();
    let nb = lay.kpg / block;
    let g_expr = if nb == 1 {
        quote!(unit)
    } else {
        let nb = lit(nb);
        quote!(unit / #nb)
    };
    let plane_rows = lay.padded[0] * row_words;
    let row_expr = linear(
        &[
            ("g", pairs * plane_rows),
            ("pp", plane_rows),
            ("oh", lay.stride[0] * row_words),
            ("r", lay.dilation[0] * row_words),
            ("ow0", 1),
        ],
        0,
    );
    let wrow_expr = linear(
        &[
            ("unit", pairs * kh * kw * block),
            ("pp", kh * kw * block),
            ("r", kw * block),
            ("kl", 1),
        ],
        0,
    );
    let wrow_expr = quote!(W0 + #wrow_expr);
    GroupedIndex {
        g_expr,
        row_expr,
        wrow_expr,
    }
}

/// A tile of `channels` output channels (from local channel `kl` of the unit's block) x
/// vectors at columns `ow0 + offsets[i]` of output row `oh`; `fp32`: vector
/// requantization; `outline`: kept out of line (`#[inline(never)]`, for scripts/mca.py).
fn tile_fn(
    p: &LayerPlan,
    lay: &QLayout,
    ops: &Ops,
    tf: &TokenStream,
    name: &str,
    offsets: &[usize],
    (channels, fp32, outline): (usize, bool, bool),
) -> TokenStream {
    let lanes = ops.lanes;
    let nvec = offsets.len();
    let [kh, kw] = lay.kernel;
    let sh = lay.stride[0];
    let [dh, dw] = lay.dilation;
    let [oh_n, ow_n] = p.output;
    let plane = oh_n * ow_n;
    let pairs = lay.words;
    let row_words = lay.phases() * lay.phase_len();
    let u = lit;
    let name = ident(name);
    let acc = |k: usize, v: usize| ident(&format!("acc_{k}_{v}"));
    let zero = ops.zero();
    let init: Vec<TokenStream> = (0..channels)
        .flat_map(|k| (0..nvec).map(move |v| (k, v)))
        .map(|(k, v)| {
            let a = acc(k, v);
            quote!(let mut #a = #zero;)
        })
        .collect();
    let lanes_l = u(lanes);
    let max_off = offsets.iter().copied().max().unwrap_or(0);
    let body = if lay.depthwise {
        // Every tap unrolled: kernel row r, word q (kernel columns 2q and 2q + 1).
        let taps: Vec<(usize, usize, usize)> = (0..kh)
            .flat_map(|r| (0..pairs).map(move |qq| (r, qq)))
            .map(|(r, qq)| {
                (
                    r,
                    qq,
                    r * dh * row_words + lay.phase_word(lay.elems * qq * dw),
                )
            })
            .collect();
        let span = taps.iter().map(|t| t.2).max().unwrap_or(0) + max_off + lanes;
        let span_l = u(span);
        let wlen = u(kh * pairs);
        let mut fmas = Vec::new();
        for &(r, qq, at) in &taps {
            let wi = u(r * pairs + qq);
            let b = ops.bcast(quote!(wc[#wi]));
            fmas.push(quote!(let wb = #b;));
            for (v, &off) in offsets.iter().enumerate() {
                let a = acc(0, v);
                let at_l = u(at + off);
                let x =
                    ops.load(quote!(::gspc_runtime::window::at::<_, #lanes_l, #span_l, #at_l>(xw)));
                let m = ops.madd(&quote!(#a), &quote!(xv), &quote!(wb));
                fmas.push(quote! {
                    let xv = #x;
                    #a = #m;
                });
            }
        }
        let c_expr = linear(&[("unit", lay.block), ("kl", 1)], 0);
        let x_at = linear(&[("oh", sh * row_words), ("ow0", 1)], 0);
        let w_at = linear(&[("c", kh * pairs)], 0);
        let w_at = quote!(W0 + #w_at);
        quote! {
            let c = #c_expr;
            let Some(xw) = ::gspc_runtime::window::window::<_, #span_l, { super::SCRATCH_LEN }>(x, #x_at) else {
                return;
            };
            let Some(wc) = ::gspc_runtime::window::window::<_, #wlen, { super::PACKED_LEN }>(p, #w_at) else {
                return;
            };
            #(#fmas)*
        }
    } else {
        // Per word p of input channels and kernel row r (loops), every kernel column s
        // unrolled.
        let cols: Vec<(usize, usize)> = (0..kw).map(|s| (s, lay.phase_word(s * dw))).collect();
        let span = cols.iter().map(|c| c.1).max().unwrap_or(0) + max_off + lanes;
        let span_l = u(span);
        let block = lay.block;
        let wspan = (kw - 1) * block + channels;
        let wspan_l = u(wspan);
        let mut fmas = Vec::new();
        for &(s, at) in &cols {
            let mut loads = Vec::new();
            for (v, &off) in offsets.iter().enumerate() {
                let xv = ident(&format!("x_{v}"));
                let at_l = u(at + off);
                let x =
                    ops.load(quote!(::gspc_runtime::window::at::<_, #lanes_l, #span_l, #at_l>(xw)));
                loads.push(quote!(let #xv = #x;));
            }
            fmas.push(quote!(#(#loads)*));
            for k in 0..channels {
                let wi = u(s * block + k);
                let b = ops.bcast(quote!(wv[#wi]));
                fmas.push(quote!(let wb = #b;));
                for v in 0..nvec {
                    let a = acc(k, v);
                    let xv = ident(&format!("x_{v}"));
                    let m = ops.madd(&quote!(#a), &quote!(#xv), &quote!(wb));
                    fmas.push(quote!(#a = #m;));
                }
            }
        }
        let (kh_l, pairs_l) = (u(kh), u(pairs));
        let GroupedIndex {
            g_expr,
            row_expr,
            wrow_expr,
        } = grouped_index(lay);
        quote! {
            let g = #g_expr;
            for pp in 0..#pairs_l {
                for r in 0..#kh_l {
                    let row = #row_expr;
                    let Some(xw) = ::gspc_runtime::window::window::<_, #span_l, { super::SCRATCH_LEN }>(x, row) else {
                        return;
                    };
                    let wrow = #wrow_expr;
                    let Some(wv) = ::gspc_runtime::window::window::<_, #wspan_l, { super::PACKED_LEN }>(p, wrow) else {
                        return;
                    };
                    #(#fmas)*
                }
            }
        }
    };
    let stores: Vec<TokenStream> = (0..channels)
        .flat_map(|k| (0..nvec).map(move |v| (k, v)))
        .map(|(k, v)| {
            let a = acc(k, v);
            let store = ops.store(&quote!(#a), fp32, &quote!(kg));
            let kg = linear(&[("unit", lay.block), ("kl", 1)], k);
            let at = linear(&[("kl", plane), ("oh", ow_n), ("ow0", 1)], k * plane + offsets[v]);
            quote! {
                {
                    let kg = #kg;
                    let Some(&b) = p.get(BIAS_OFFSET + kg) else {
                        return;
                    };
                    let at = #at;
                    let Some(dst) = ::gspc_runtime::window::window_mut::<_, #lanes_l, { super::BLOCK_LEN }>(out, at) else {
                        return;
                    };
                    #store
                }
            }
        })
        .collect();
    let doc = format!(
        " {channels} output channel(s) x {nvec} vector(s) of {lanes} columns at offsets `{offsets:?}`."
    );
    row_tile_item(
        &doc,
        tf,
        (outline, quote!([i8; super::BLOCK_LEN])),
        &name,
        quote! {
            #(#init)*
            #body
            #(#stores)*
        },
    )
}

/// A row tile function (`tile_full`, `tile_tail`): output block `unit`, from local channel
/// `kl`, output row `oh`, from column `ow0`, over the packed input `x` and weights `p`.
fn row_tile_item(
    doc: &str,
    tf: &TokenStream,
    (outline, out_ty): (bool, TokenStream),
    name: &proc_macro2::Ident,
    body: TokenStream,
) -> TokenStream {
    let inline = inline_attr(outline);
    quote! {
        #[doc = #doc]
        #tf
        #inline
        #[allow(clippy::too_many_arguments)]
        fn #name(
            x: &[i32; super::SCRATCH_LEN],
            p: &[i32; super::PACKED_LEN],
            out: &mut #out_ty,
            unit: usize,
            kl: usize,
            oh: usize,
            ow0: usize,
        ) {
            #body
        }
    }
}

/// A channel-lane tile of a grouped layer: the block's channels (`nvec` vectors of
/// channels, from local channel `kl`) x the output columns `ow0 + columns[j]` of row `oh`.
/// Per input word and kernel row (loops), every kernel column unrolled: the block's weight
/// vectors loaded once, then per column one broadcast input word and a multiply-add per
/// vector.
fn channel_tile_fn(
    p: &LayerPlan,
    lay: &QLayout,
    ops: &Ops,
    tf: &TokenStream,
    name: &str,
    columns: &[usize],
    (channels, fp32, outline, pair): (usize, bool, bool, bool),
) -> TokenStream {
    let lanes = ops.lanes;
    let nvec = channels / lanes;
    // Two groups (`QVariant::group_pairs`): a vector is the block's 8 channels of group `g`
    // in its low half and of group `g + 1` in its high half.
    let half = lanes / 2;
    let [kh, kw] = lay.kernel;
    let sw = lay.stride[1];
    let dw = lay.dilation[1];
    let [oh_n, ow_n] = p.output;
    let plane = oh_n * ow_n;
    let pairs = lay.words;
    let block = lay.block;
    let u = lit;
    let name = ident(name);
    let acc = |j: usize, v: usize| ident(&format!("acc_{j}_{v}"));
    let zero = ops.zero();
    let init: Vec<TokenStream> = (0..columns.len())
        .flat_map(|j| (0..nvec).map(move |v| (j, v)))
        .map(|(j, v)| {
            let a = acc(j, v);
            quote!(let mut #a = #zero;)
        })
        .collect();
    let lanes_l = u(lanes);
    // Word of output column c at kernel column s: phase (s DW) % SW, word c * SW / SW + ...
    // i.e. `lay.phase_word(s * DW) + c` past the row's `ow0`: a column's words are adjacent
    // in its phase (the row is stored by column phase).
    // Column c of the tile is output row `oh + c / OW`, column `ow0 + c % OW`: a tile of
    // several rows (`QVariant::out_rows`, from column 0) counts its columns in flat output
    // order; in a tile of one row c < OW. A row further is `SH` packed input rows further.
    let row_words = lay.phases() * lay.phase_len();
    let place = |c: usize| (c / ow_n * lay.stride[0] * row_words, c % ow_n);
    let max_col = columns.iter().map(|&c| place(c).1).max().unwrap_or(0);
    let max_row = columns.iter().map(|&c| place(c).0).max().unwrap_or(0);
    let col_offsets: Vec<usize> = (0..kw).map(|s| lay.phase_word(s * dw)).collect();
    let span = max_row + col_offsets.iter().copied().max().unwrap_or(0) + max_col + 1;
    let span_l = u(span);
    let wspan = (kw - 1) * block + if pair { half } else { channels };
    let wspan_l = u(wspan);
    let mut body = Vec::new();
    if pair {
        // Each kernel column's weights of both groups, then per input word (every word the
        // tile reads, in order) one broadcast of both groups' words, multiply-added into
        // each column it feeds: a broadcast takes two loads and an insert, so it is built
        // once per word, not once per kernel column.
        let half_l = u(half);
        for s in 0..kw {
            let w = ident(&format!("w_{s}"));
            let wi = u(s * block);
            body.push(quote! {
                let #w = _mm512_inserti64x4::<1>(
                    _mm512_castsi256_si512(::gspc_runtime::x86::loadi8(::gspc_runtime::window::at::<_, #half_l, #wspan_l, #wi>(wv))),
                    ::gspc_runtime::x86::loadi8(::gspc_runtime::window::at::<_, #half_l, #wspan_l, #wi>(wvb)),
                );
            });
        }
        let mut feeds: Vec<(usize, usize, usize)> = col_offsets
            .iter()
            .enumerate()
            .flat_map(|(s, &at)| {
                columns.iter().enumerate().map(move |(j, &c)| {
                    let (row, col) = place(c);
                    (row + at + col, s, j)
                })
            })
            .collect();
        feeds.sort_unstable();
        for (i, chunk) in feeds.chunk_by(|a, b| a.0 == b.0).enumerate() {
            let xi = u(chunk[0].0);
            let xb = ident(&format!("xb_{i}"));
            body.push(quote! {
                let #xb = _mm512_inserti64x4::<1>(_mm512_set1_epi32(xw[#xi]), _mm256_set1_epi32(xwb[#xi]));
            });
            for &(_, s, j) in chunk {
                let a = acc(j, 0);
                let w = ident(&format!("w_{s}"));
                let m = ops.madd(&quote!(#a), &quote!(#xb), &quote!(#w));
                body.push(quote!(#a = #m;));
            }
        }
    } else {
        for (s, &at) in col_offsets.iter().enumerate() {
            for v in 0..nvec {
                let wv_name = ident(&format!("w_{v}"));
                let wi = u(s * block + v * lanes);
                let load =
                    ops.load(quote!(::gspc_runtime::window::at::<_, #lanes_l, #wspan_l, #wi>(wv)));
                body.push(quote!(let #wv_name = #load;));
            }
            for (j, &c) in columns.iter().enumerate() {
                let (row, col) = place(c);
                let xi = u(row + at + col);
                let b = ops.bcast(quote!(xw[#xi]));
                body.push(quote!(let xb = #b;));
                for v in 0..nvec {
                    let a = acc(j, v);
                    let w = ident(&format!("w_{v}"));
                    let m = ops.madd(&quote!(#a), &quote!(xb), &quote!(#w));
                    body.push(quote!(#a = #m;));
                }
            }
        }
    }
    let (kh_l, pairs_l) = (u(kh), u(pairs));
    let GroupedIndex {
        g_expr,
        row_expr,
        wrow_expr,
    } = grouped_index(lay);
    let (stores, transposed) =
        channel_stores(lay, ops, &acc, columns, (nvec, pair), fp32, [plane, ow_n]);
    assert!(
        transposed || !pair,
        "a tile of two groups stores through the transposed epilogue"
    );
    // The second group's input rows and weights: a group's packed input further, a
    // block's weights further.
    let second = if pair {
        let plane_rows = lay.padded[0] * row_words;
        let xb_at = u(pairs * plane_rows);
        let wb_at = u(pairs * kh * kw * block);
        quote! {
            let Some(xwb) = ::gspc_runtime::window::window::<_, #span_l, { super::SCRATCH_LEN }>(x, #row_expr + #xb_at) else {
                return;
            };
            let Some(wvb) = ::gspc_runtime::window::window::<_, #wspan_l, { super::PACKED_LEN }>(p, #wrow_expr + #wb_at) else {
                return;
            };
        }
    } else {
        quote!()
    };
    let doc = format!(
        " {channels} output channel(s){} in {nvec} vector(s) of {lanes} lanes x output columns `{columns:?}`; stride {sw} columns{}.",
        if pair {
            " (the block's of groups `unit` and `unit + 1`, side by side)"
        } else {
            ""
        },
        if transposed {
            "; the outputs transposed to channel rows"
        } else {
            ""
        }
    );
    let out_ty = if pair {
        quote!([[i8; super::BLOCK_LEN]; 2])
    } else {
        quote!([i8; super::BLOCK_LEN])
    };
    row_tile_item(
        &doc,
        tf,
        (outline, out_ty),
        &name,
        quote! {
                let g = #g_expr;
                #(#init)*
                for pp in 0..#pairs_l {
                    for r in 0..#kh_l {
                        let Some(xw) = ::gspc_runtime::window::window::<_, #span_l, { super::SCRATCH_LEN }>(x, #row_expr) else {
                            return;
                        };
                        let Some(wv) = ::gspc_runtime::window::window::<_, #wspan_l, { super::PACKED_LEN }>(p, #wrow_expr) else {
                            return;
                        };
                        #second
                        #(#body)*
                    }
                }
                #stores
        },
    )
}

/// A tile of a depthwise layer over the channel-lane layout (`QLayout::lanes`): `lanes`
/// channels from the block's channel `kl` in one vector per output pixel, at columns `ow0 +
/// columns[j]` of row `oh`; per kernel row and tap word (unrolled) one weight vector, then
/// one input vector and its multiply-add per pixel.
/// - 16 lanes (AVX-512, the whole block, `kl` 0): `vpdpbusd` on quads, `vpdpwssd` on
///   pairs; the transposed epilogue with `fp32` requantization, else lane by lane.
/// - 8 lanes (AVX2, half the block): `vpmaddwd` on pairs; on quads (unsigned input bytes,
///   signed weights, as `vpdpbusd` reads them) `vpmaddwd` on their even bytes and on their
///   odd ones, each widened to int16 in place (the weight's once per load), which sums
///   the four exact products as `vpdpbusd` does (each pair at most 2 x 255 x 127); the
///   epilogue vector by vector over the channels' planes.
fn lanes_tile_fn(
    p: &LayerPlan,
    lay: &QLayout,
    lanes: usize,
    tf: &TokenStream,
    name: &str,
    columns: &[usize],
    (fp32, outline): (bool, bool),
) -> TokenStream {
    let [kh, _] = lay.kernel;
    let [sh, sw] = lay.stride;
    let [dh, dw] = lay.dilation;
    let [oh_n, ow_n] = p.output;
    let plane = oh_n * ow_n;
    let (wp, words, b) = (lay.padded[1], lay.words, lay.block);
    let u = lit;
    let name = ident(name);
    let acc = |j: usize| ident(&format!("acc_{j}"));
    let zmm = lanes == 16;
    let init = (0..columns.len()).map(|j| {
        let a = acc(j);
        if zmm {
            quote!(let mut #a = _mm512_setzero_si512();)
        } else {
            quote!(let mut #a = _mm256_setzero_si256();)
        }
    });
    // Pixel c of the tile: output row `oh + c / OW`, column `ow0 + c % OW` (a tile of
    // several rows, `QVariant::out_rows`, counts its pixels in output order from column 0;
    // in a tile of one row c < OW), in padded input pixels from the tile's first.
    let place = |c: usize| c / ow_n * sh * wp + c % ow_n * sw;
    let max_at = columns.iter().map(|&c| place(c)).max().unwrap_or(0);
    // A word holds `elems` kernel columns (pairs, or quads read by `vpdpbusd`).
    let e = lay.elems;
    // The windows start at channel `kl` of the tile's first pixel and of the unit's weights,
    // and end with the last vector read: `b - lanes` words short of the block's end.
    let span = (((kh - 1) * dh * wp + max_at + e * (words - 1) * dw) + 1) * b - (b - lanes);
    let wspan = kh * words * b;
    let wwin = wspan - (b - lanes);
    let (span_l, wwin_l, l) = (u(span), u(wwin), u(lanes));
    let ops = Ops {
        flavor: if zmm { Flavor::Zmm } else { Flavor::Ymm },
        lanes,
        quad: e == 4,
    };
    let load = |from: TokenStream, span: &proc_macro2::Literal, at: proc_macro2::Literal| {
        let window = quote!(::gspc_runtime::window::at::<_, #l, #span, #at>(#from));
        if zmm {
            quote!(::gspc_runtime::x86::loadi16(#window))
        } else {
            quote!(::gspc_runtime::x86::loadi8(#window))
        }
    };
    // AVX2 on quads: int16 halves of the quads (see the doc above).
    let bytes = !zmm && ops.quad;
    let mut body = Vec::new();
    if bytes {
        body.push(quote!(let low_bytes = _mm256_set1_epi16(0xff);));
    }
    for r in 0..kh {
        for q in 0..words {
            let wv = load(quote!(wc), &wwin_l, u((r * words + q) * b));
            body.push(if bytes {
                quote! {
                    let wv = #wv;
                    let w_even = _mm256_srai_epi16::<8>(_mm256_slli_epi16::<8>(wv));
                    let w_odd = _mm256_srai_epi16::<8>(wv);
                }
            } else {
                quote!(let wv = #wv;)
            });
            for (j, &c) in columns.iter().enumerate() {
                let a = acc(j);
                let xi = u(((r * dh) * wp + place(c) + e * q * dw) * b);
                let x = load(quote!(xw), &span_l, xi);
                body.push(if bytes {
                    quote! {
                        let xv = #x;
                        #a = _mm256_add_epi32(
                            #a,
                            _mm256_add_epi32(
                                _mm256_madd_epi16(_mm256_and_si256(xv, low_bytes), w_even),
                                _mm256_madd_epi16(_mm256_srli_epi16::<8>(xv), w_odd),
                            ),
                        );
                    }
                } else {
                    let m = ops.madd(&quote!(#a), &x, &quote!(wv));
                    quote!(#a = #m;)
                });
            }
        }
    }
    let (stores, _) = channel_stores(
        lay,
        &ops,
        &|j, _| acc(j),
        columns,
        (1, false),
        fp32,
        [plane, ow_n],
    );
    // (`kl` is 0 where a vector holds the whole block.)
    let kl = if lanes < b {
        vec![("kl", 1)]
    } else {
        Vec::new()
    };
    let x_at = linear(
        &[&[("oh", sh * wp * b), ("ow0", sw * b)], &kl[..]].concat(),
        0,
    );
    let w_at = linear(&[&[("unit", wspan)], &kl[..]].concat(), 0);
    let doc = format!(
        " {lanes} channels x output pixels `{columns:?}` (in output order from the tile's first; rows of {ow_n}), channels on the lanes; stride {sw} columns."
    );
    row_tile_item(
        &doc,
        tf,
        (outline, quote!([i8; super::BLOCK_LEN])),
        &name,
        quote! {
            #(#init)*
            let Some(xw) = ::gspc_runtime::window::window::<_, #span_l, { super::SCRATCH_LEN }>(x, #x_at) else {
                return;
            };
            let Some(wc) = ::gspc_runtime::window::window::<_, #wwin_l, { super::PACKED_LEN }>(p, W0 + #w_at) else {
                return;
            };
            #(#body)*
            #stores
        },
    )
}

/// The epilogue of a channel-lane tile (accumulator `acc(j, v)`: column `columns[j]`, vector
/// `v` of `nvec` vectors of channels), and whether it is the transposed one: with `fp32`
/// requantization in zmm vectors over consecutive columns, each vector of channels is
/// transposed to channel rows ([`transposed_stores`]); otherwise each output vector is
/// scattered over the channels' planes.
fn channel_stores(
    lay: &QLayout,
    ops: &Ops,
    acc: &dyn Fn(usize, usize) -> proc_macro2::Ident,
    columns: &[usize],
    (nvec, pair): (usize, bool),
    fp32: bool,
    [plane, ow_n]: [usize; 2],
) -> (TokenStream, bool) {
    let lanes = ops.lanes;
    let contiguous = columns.windows(2).all(|w| w[1] == w[0] + 1);
    let transposed = ops.flavor == Flavor::Zmm && fp32 && contiguous && !columns.is_empty();
    let stores: Vec<TokenStream> = if transposed {
        (0..nvec)
            .map(|v| {
                let accs: Vec<_> = (0..columns.len()).map(|j| acc(j, v)).collect();
                let s = transposed_stores(lay, &accs, (v * lanes, pair), plane, [ow_n, columns[0]]);
                quote!({ #s })
            })
            .collect()
    } else {
        (0..columns.len())
            .flat_map(|j| (0..nvec).map(move |v| (j, v)))
            .map(|(j, v)| {
                let a = acc(j, v);
                let store = ops.store_channels(&quote!(#a), fp32, plane);
                let kg = linear(&[("unit", lay.block), ("kl", 1)], v * lanes);
                let at = linear(
                    &[("kl", plane), ("oh", ow_n), ("ow0", 1)],
                    v * lanes * plane + columns[j],
                );
                quote! {
                    {
                        let kg = #kg;
                        let at = #at;
                        #store
                    }
                }
            })
            .collect()
    };
    (quote!(#(#stores)*), transposed)
}

/// The SAFETY reason of a generated `x86::store_bytes` call (AVX-512 variants only).
const STORE_BYTES_WHY: &str = "this variant is compiled with AVX-512BW and VL, which `store_bytes` and `store_bytes64` need of their caller, and runs only on a CPU with them";

/// The epilogue of one vector of 16 channels (from local channel `kl + k0`) of a
/// channel-lane tile (`accs`: one `__m512i` per column, up to 16 consecutive columns from
/// `first` of row `oh`), with `fp32` requantization: each 4 columns requantized and
/// narrowed together into one vector of their bytes channel by channel
/// (`x86::requant_columns4`), up to four such vectors interleaved into channel rows
/// (`x86::channel_rows`), each channel's row stored in one masked store
/// (`x86::store_bytes64`: the row's 128-bit lane extracted, then a masked 16-byte store; a
/// masked 64-byte store from the whole vector made the grouped layers 1-7% slower). Until
/// 2026-12-07 each column was narrowed on its own and the 16 vectors of bytes transposed
/// in registers (`x86::transpose16_regs`): the depthwise lane tiles on 7x7 outputs take
/// 0.92x that time now, the grouped tiles 0.96-0.99x.
fn transposed_stores(
    lay: &QLayout,
    accs: &[proc_macro2::Ident],
    (k0, pair): (usize, bool),
    plane: usize,
    [ow_n, first]: [usize; 2],
) -> TokenStream {
    let n = accs.len();
    assert!(
        (1..=16).contains(&n),
        "a transposed epilogue stores 1 to 16 columns"
    );
    let m = n.div_ceil(4);
    let kg = linear(&[("unit", lay.block), ("kl", 1)], k0);
    let col = |j: usize| match accs.get(j) {
        Some(a) => quote!(#a),
        None => quote!(_mm512_setzero_si512()),
    };
    let blocks = (0..4).map(|i| {
        if i < m {
            let cols = (0..4).map(|j| col(4 * i + j));
            quote! {
                ::gspc_runtime::x86::requant_columns4([#(#cols),*], bias, scale, super::CLAMP.0, super::CLAMP.1, super::REQUANT.output_zero_point)
            }
        } else {
            quote!(_mm512_setzero_si512())
        }
    });
    let (n_l, m_l) = (lit(n), lit(m));
    let why = STORE_BYTES_WHY;
    let puts = (0..16).map(|k| {
        // A tile of two groups (`out`: their two blocks) stores channel `k` of the vector
        // as channel `k % 8` of block `k / 8`.
        let (dst, k_in) = if pair {
            let b = lit(k / lay.block);
            (quote!(&mut out[#b]), k % lay.block)
        } else {
            (quote!(out), k)
        };
        let at = linear(&[("kl", plane), ("oh", ow_n), ("ow0", 1)], (k0 + k_in) * plane + first);
        let (v, l0) = ::gspc_runtime::x86::channel_row_at(m, k);
        let (v, l0) = (lit(v), lit(l0));
        quote! {
            let Some(o) = ::gspc_runtime::window::window_mut::<_, #n_l, { super::BLOCK_LEN }>(#dst, #at) else {
                return;
            };
            gspc_safety!(#why);
            unsafe { ::gspc_runtime::x86::store_bytes64::<#n_l, 0, #l0, #n_l>(c[#v], o) };
        }
    });
    quote! {
        let kg = #kg;
        let Some(bv) = ::gspc_runtime::window::window::<_, 16, { super::PACKED_LEN }>(p, BIAS_OFFSET + kg) else {
            return;
        };
        let Some(sv) = ::gspc_runtime::window::window::<_, 16, { super::OUT_CHANNELS }>(&super::SCALES, kg) else {
            return;
        };
        let (bias, scale) = (::gspc_runtime::x86::loadi16(bv), ::gspc_runtime::x86::load16(sv));
        let c = ::gspc_runtime::x86::channel_rows::<#m_l>([#(#blocks),*]);
        #(#puts)*
    }
}

/// A flat tile of a depthwise layer (`QVariant::flat`): the channel's packed plane read as
/// one row, vectors at flat indices `starts` (`oh * SH * RW + ow`); every tap unrolled;
/// each lane stored where it is a real output (`ow < OW`).
fn flat_tile_fn(
    p: &LayerPlan,
    lay: &QLayout,
    ops: &Ops,
    tf: &TokenStream,
    name: &proc_macro2::Ident,
    starts: &[usize],
    (fp32, outline): (bool, bool),
) -> TokenStream {
    let lanes = ops.lanes;
    let [kh, _] = lay.kernel;
    let [dh, dw] = lay.dilation;
    let [oh_n, ow_n] = p.output;
    let plane = oh_n * ow_n;
    let pairs = lay.words;
    let row_words = lay.phases() * lay.phase_len();
    // Flat indices between output rows.
    let step = lay.stride[0] * row_words;
    let u = lit;
    let lanes_l = u(lanes);
    let acc = |v: usize| ident(&format!("acc_{v}"));
    // The AVX-512 fp32 epilogue: the accumulators start at the bias (one instruction a
    // vector less than adding it at the end).
    let zmm_fp32 = ops.flavor == Flavor::Zmm && fp32;
    let zero = if zmm_fp32 {
        quote!(_mm512_set1_epi32(b))
    } else {
        ops.zero()
    };
    let init = (0..starts.len()).map(|v| {
        let a = acc(v);
        quote!(let mut #a = #zero;)
    });
    let taps: Vec<(usize, usize)> = (0..kh)
        .flat_map(|r| (0..pairs).map(move |qq| (r, qq)))
        .map(|(r, qq)| {
            let at = r * dh * row_words + lay.phase_word(lay.elems * qq * dw);
            (r * pairs + qq, at)
        })
        .collect();
    let span =
        taps.iter().map(|t| t.1).max().unwrap_or(0) + starts.iter().max().unwrap_or(&0) + lanes;
    let span_l = u(span);
    let mut body = Vec::new();
    for &(wi, off) in &taps {
        let wi = u(wi);
        let b = ops.bcast(quote!(wc[#wi]));
        body.push(quote!(let wb = #b;));
        for (v, &st) in starts.iter().enumerate() {
            let a = acc(v);
            let at = u(off + st);
            let x = ops.load(quote!(::gspc_runtime::window::at::<_, #lanes_l, #span_l, #at>(xw)));
            let m = ops.madd(&quote!(#a), &quote!(xv), &quote!(wb));
            body.push(quote! {
                let xv = #x;
                #a = #m;
            });
        }
    }
    let plane_l = u(plane);
    let stores = starts.iter().enumerate().map(|(v, &st)| {
        let a = acc(v);
        // The lanes that are real outputs (`ow < OW`), as runs of consecutive lanes, each
        // copied to its row in one move.
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for l in 0..lanes {
            let f = st + l;
            let (oh, ow) = (f / step, f % step);
            if ow >= ow_n || oh >= oh_n {
                continue;
            }
            let o = oh * ow_n + ow;
            match runs.last_mut() {
                Some((l0, o0, n)) if *l0 + *n == l && *o0 + *n == o => *n += 1,
                _ => runs.push((l, o, 1)),
            }
        }
        if zmm_fp32 {
            // The AVX-512 variant: the 16 bytes in a register, each run one masked store.
            let why = STORE_BYTES_WHY;
            let puts = runs.iter().map(|&(l0, o0, n)| {
                let (l0, o0, n) = (u(l0), u(o0), u(n));
                quote! {
                    gspc_safety!(#why);
                    unsafe { ::gspc_runtime::x86::store_bytes::<#plane_l, #o0, #l0, #n>(q, o) };
                }
            });
            return quote! {
                {
                    let Some(&scale) = super::SCALES.get(c) else {
                        return;
                    };
                    let q = ::gspc_runtime::x86::requant16_bytes(
                        #a,
                        _mm512_set1_ps(scale),
                        super::CLAMP.0,
                        super::CLAMP.1,
                        super::REQUANT.output_zero_point,
                    );
                    #(#puts)*
                }
            };
        }
        let store = ops.store(&quote!(#a), fp32, &quote!(c));
        let puts = runs.iter().map(|&(l0, o0, n)| {
            let (l0, l1, o0, o1) = (u(l0), u(l0 + n), u(o0), u(o0 + n));
            quote!(o[#o0..#o1].copy_from_slice(&q[#l0..#l1]);)
        });
        quote! {
            {
                let mut q = [0i8; #lanes_l];
                let dst = &mut q;
                #store
                #(#puts)*
            }
        }
    });
    let wlen = u(kh * pairs);
    let c_expr = linear(&[("unit", lay.block), ("kl", 1)], 0);
    let w_at = linear(&[("c", kh * pairs)], 0);
    let w_at = quote!(W0 + #w_at);
    let o_at = linear(&[("kl", plane)], 0);
    let doc = format!(
        " The channel's whole plane as one row: {} vector(s) of {lanes} at flat indices `{starts:?}` (output rows {step} words apart).",
        starts.len()
    );
    let inline = inline_attr(outline);
    quote! {
        #[doc = #doc]
        #tf
        #inline
        fn #name(
            x: &[i32; super::SCRATCH_LEN],
            p: &[i32; super::PACKED_LEN],
            out: &mut [i8; super::BLOCK_LEN],
            unit: usize,
            kl: usize,
        ) {
            let c = #c_expr;
            let Some(&b) = p.get(BIAS_OFFSET + c) else {
                return;
            };
            #(#init)*
            let Some(xw) = ::gspc_runtime::window::window::<_, #span_l, { super::SCRATCH_LEN }>(x, 0) else {
                return;
            };
            let Some(wc) = ::gspc_runtime::window::window::<_, #wlen, { super::PACKED_LEN }>(p, #w_at) else {
                return;
            };
            #(#body)*
            let Some(o) = ::gspc_runtime::window::window_mut::<_, #plane_l, { super::BLOCK_LEN }>(out, #o_at) else {
                return;
            };
            #(#stores)*
        }
    }
}
