//! One ISA variant of a layer: its `run` and its tile functions (the micro-kernels).
//!
//! Each kernel kind ([`Kind`]) owns its emission in a module of its own, as it owns its
//! planning in `plan`: [`packed_oc`] (`gspc-oc`), [`packed_ow`] (`gspc-ow` over the packed
//! input), both through the shared [`packed`] module and tile shell, [`direct`] (`gspc-ow`
//! read in place, flat or by rows), [`inplace_oc`] (`gspc-oc` read in place) and [`dwc`]
//! (`gspc-dwc`), with [`dwc_pairs`] its AVX-512 form at stride 2 on narrow rows. Every
//! kind emits its vector
//! code through the one ISA abstraction [`ops::Ops`]. Here: the dispatch from a variant's
//! kind to its emitter and what every kind's module shares (the variant module's shell
//! and `run`, `#[target_feature]`, `# Safety` docs, intrinsics `use`, inline attributes,
//! index expressions).

mod direct;
mod dwc;
mod dwc_pairs;
mod inplace_oc;
mod ops;
mod packed;
mod packed_oc;
mod packed_ow;

use super::{ident, lit};
use crate::plan::{Kind, LayerPlan, VariantPlan};
use gspc_runtime::Isa;
use proc_macro2::TokenStream;
use quote::quote;

/// The module of one variant: `run`, `run_units` and the tile functions, by the variant's
/// kernel kind.
pub(crate) fn variant_module(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    if p.one_group.is_some() && v.isa == Isa::Avx2 {
        return one_group_avx2_module(p, v);
    }
    match v.kind {
        Kind::PackedOc => packed_oc::variant_module(p, v, outline),
        Kind::InPlaceOc => inplace_oc::variant_module(p, v, outline),
        Kind::PackedOw => packed_ow::variant_module(p, v, outline),
        Kind::Direct { flat } => direct::variant_module(p, v, flat, outline),
        Kind::Dwc => dwc::variant_module(p, v, outline),
        Kind::DwcPairs => dwc_pairs::variant_module(p, v, outline),
    }
}

/// The module of the form the AVX-512 variant's `run_units` runs instead where AVX-512 is
/// half rate ([`LayerPlan::half_rate`]: in-place `gspc-oc`, or narrower `gspc-ow` tiles),
/// if the layer has one.
pub(crate) fn half_rate_module(p: &LayerPlan, outline: bool) -> Option<TokenStream> {
    p.half_rate.as_ref().map(|v| variant_module(p, v, outline))
}

/// A variant's module: its ISA's name, or for the half-rate form `avx512_in_place`
/// (in-place `gspc-oc`) or `avx512_half_rate` (narrower tiles).
fn module_ident(p: &LayerPlan, v: &VariantPlan) -> proc_macro2::Ident {
    ident(if !p.is_half_rate(v) {
        v.isa.as_str()
    } else if v.kind == Kind::InPlaceOc {
        "avx512_in_place"
    } else {
        "avx512_half_rate"
    })
}

/// The start of the AVX-512 variant's `run_units` where the layer has a half-rate form:
/// there, its blocks go to that form's `run_units` (same arguments, same features).
///
/// With a [`LayerPlan::one_group`] plan they go to its AVX-512 variant instead
/// ([`one_group_hand_over`]).
fn half_rate_branch(p: &LayerPlan, v: &VariantPlan) -> TokenStream {
    if v.isa != Isa::Avx512 || p.is_half_rate(v) {
        return quote!();
    }
    if p.one_group.is_some() {
        let hand_over = one_group_hand_over(p, v);
        return quote! {
            if !::gspc_runtime::x86::avx512_full_rate() {
                #hand_over
                return;
            }
        };
    }
    let Some(half) = &p.half_rate else {
        return quote!();
    };
    let m = module_ident(p, half);
    quote! {
        if !::gspc_runtime::x86::avx512_full_rate() {
            super::#m::run_units(input, packed, first, blocks, scratch);
            return;
        }
    }
}

/// The call of the [`LayerPlan::one_group`] plan's variant of `v`'s ISA from `v`'s
/// `run_units`: on that plan's packed weights (from `one_group::AT`) and the start of the
/// scratch. Each of the layer's blocks (2 groups) is `p.oc_bn / h.oc_bn` of that plan's
/// (one group each), holding the same channels in the same order.
fn one_group_hand_over(p: &LayerPlan, v: &VariantPlan) -> TokenStream {
    let Some(h) = &p.one_group else {
        return quote!();
    };
    let per_block = lit(p.oc_bn / h.oc_bn);
    let m = ident(v.isa.as_str());
    quote! {
        use super::one_group as h;
        let packed = ::gspc_runtime::window::at::<_, { h::PACKED_LEN }, { super::PACKED_LEN }, { h::AT }>(packed);
        let scratch = ::gspc_runtime::window::at_mut::<_, { h::SCRATCH_LEN }, { super::SCRATCH_LEN }, 0>(scratch);
        let (blocks, _) = blocks.as_flattened_mut().as_chunks_mut::<{ h::BLOCK_LEN }>();
        h::#m::run_units(input, packed, first * #per_block, blocks, scratch);
    }
}

/// The module of the AVX2 variant of a layer with a [`LayerPlan::one_group`] plan: its
/// `run_units` hands every block to that plan's AVX2 variant.
fn one_group_avx2_module(p: &LayerPlan, v: &VariantPlan) -> TokenStream {
    let hand_over = one_group_hand_over(p, v);
    let doc = format!(
        " `{}`: hands every block to the AVX2 variant of `one_group` (one group a block, on its own packed weights).",
        v.kernel
    );
    let units_doc = format!(
        " Computes output blocks `first..first + blocks.len()` of layer `{}` with the AVX2 variant of the one-group plan; block `u` is output channels `u * {} ..`.",
        p.layer.name, p.oc_bn
    );
    variant_module_shell(
        p,
        v,
        ModuleParts {
            doc,
            units_doc,
            block_l: lit(p.oc_bn * p.output[0] * p.output[1]),
            consts: quote!(),
            scratch: quote!(scratch),
            body: hand_over,
            items: Vec::new(),
        },
    )
}

/// A `gspc-dwc` layer's `run_band` for variant `v` (row bands of its blocks of 16
/// channels): the doc, the signature with the scratch parameter named `scratch`, and the
/// checks of `rows` and `planes`, which leave `r0`, `r1` and `n = r1 - r0`; then `body`.
fn dwc_band_fn(
    p: &LayerPlan,
    v: &VariantPlan,
    scratch: TokenStream,
    body: TokenStream,
) -> TokenStream {
    let (tf, safety) = (target_feature(v.isa), safety_doc(v.isa));
    let [oh, ow] = p.output;
    let (oh_l, cb_l) = (lit(oh), lit(crate::plan::DWC_BLOCK));
    let band_len = linear(&[("n", ow)], 0);
    let doc = format!(
        " Computes output rows `rows` of block `cb` (channels `cb * 16 .. cb * 16 + 16`) of layer `{}` with the {} variant into `planes`, the block's 16 planes, each holding just those rows. Does nothing when `rows` is empty or past the output, or the planes do not hold its rows.",
        p.layer.name, v.isa
    );
    quote! {
        #[doc = #doc]
        #safety
        #tf
        pub fn run_band(
            input: &[f32; super::INPUT_LEN],
            packed: &[f32; super::PACKED_LEN],
            cb: usize,
            rows: ::core::ops::Range<usize>,
            planes: &mut [&mut [f32]; #cb_l],
            #scratch: &mut [f32; super::SCRATCH_LEN],
        ) {
            let (r0, r1) = (rows.start, rows.end);
            if r0 >= r1 || r1 > #oh_l {
                return;
            }
            let n = r1 - r0;
            if planes.iter().any(|p| p.len() != #band_len) {
                return;
            }
            #body
        }
    }
}

/// A tile's accumulators `acc(j, vv)`, zeroed, for `cols` columns (or pixels) x `nvec`
/// vectors; those of a column no tap reaches (`summed(j)` false: every tap falls on the
/// padding, so its output is the bias) are not `mut`.
fn zeroed_accumulators(
    ops: &ops::Ops,
    cols: usize,
    nvec: usize,
    acc: impl Fn(usize, usize) -> TokenStream,
    summed: impl Fn(usize) -> bool,
) -> Vec<TokenStream> {
    let zero = ops.zero();
    let mut init = Vec::new();
    for j in 0..cols {
        let summed = summed(j);
        for vv in 0..nvec {
            let a = acc(j, vv);
            init.push(if summed {
                quote!(let mut #a = #zero;)
            } else {
                quote!(let #a = #zero;)
            });
        }
    }
    init
}

/// `#[target_feature]` of a variant's functions, if any.
fn target_feature(isa: Isa) -> TokenStream {
    match isa {
        Isa::Avx2 => quote!(#[target_feature(enable = "avx2,fma")]),
        Isa::Avx512 => quote!(#[target_feature(enable = "avx512f,avx2,fma")]),
        Isa::Neon => quote!(#[target_feature(enable = "neon")]),
        Isa::Portable => quote!(),
    }
}

/// `a * x + b * y + c`, leaving out zero terms and unit factors.
pub(super) fn linear(terms: &[(&str, usize)], constant: usize) -> TokenStream {
    let mut parts: Vec<TokenStream> = Vec::new();
    for &(name, coeff) in terms {
        let id = ident(name);
        match coeff {
            0 => {}
            1 => parts.push(quote!(#id)),
            c => {
                let c = lit(c);
                parts.push(quote!(#id * #c));
            }
        }
    }
    if constant > 0 || parts.is_empty() {
        let c = lit(constant);
        parts.push(quote!(#c));
    }
    quote!(#(#parts)+*)
}

/// `#[inline]` of a tile function, or `#[inline(never)]` to keep tiles out of line (for
/// `scripts/mca.py`).
pub(super) fn inline_attr(outline: bool) -> TokenStream {
    if outline {
        quote!(#[inline(never)])
    } else {
        quote!(#[inline])
    }
}

/// The ` and a tail tile of N` of a variant's module doc, if it has a tail tile.
fn tail_doc(v: &VariantPlan) -> String {
    if v.tail > 0 {
        format!(" and a tail tile of {}", v.tail)
    } else {
        String::new()
    }
}

/// What differs between the modules of the variant kinds.
struct ModuleParts {
    doc: String,
    units_doc: String,
    block_l: proc_macro2::Literal,
    /// Module-level constants.
    consts: TokenStream,
    /// The name of `run_units`'s scratch parameter (`_scratch` where unused).
    scratch: TokenStream,
    /// `run_units`'s body, over `input`, `packed`, `first`, `blocks` and the scratch.
    body: TokenStream,
    /// Tile functions.
    items: Vec<TokenStream>,
}

/// The module of one variant of layer `p`: `run`, `run_units` and the tile functions.
fn variant_module_shell(p: &LayerPlan, v: &VariantPlan, m: ModuleParts) -> TokenStream {
    let module = module_ident(p, v);
    let (tf, safety) = (target_feature(v.isa), safety_doc(v.isa));
    // The intrinsics are used by tile functions; a module without any (the one-group
    // hand-over) has no use for them.
    let uses = if m.items.is_empty() {
        quote!()
    } else {
        arch_uses(v)
    };
    let ModuleParts {
        doc,
        units_doc,
        block_l,
        consts,
        scratch,
        body,
        items,
    } = m;
    let run_doc = format!(" Runs layer `{}` with the {} variant.", p.layer.name, v.isa);
    let run_fn = variant_run_fn(v, &run_doc, &block_l);
    quote! {
        #[doc = #doc]
        pub mod #module {
            #uses

            #consts

            #run_fn

            #[doc = #units_doc]
            #safety
            #tf
            pub fn run_units(
                input: &[f32; super::INPUT_LEN],
                packed: &[f32; super::PACKED_LEN],
                first: usize,
                blocks: &mut [[f32; #block_l]],
                #scratch: &mut [f32; super::SCRATCH_LEN],
            ) {
                #body
            }

            #(#items)*
        }
    }
}

/// A variant's `run`: every output block through its `run_units`.
fn variant_run_fn(v: &VariantPlan, doc: &str, block_l: &proc_macro2::Literal) -> TokenStream {
    let (tf, safety) = (target_feature(v.isa), safety_doc(v.isa));
    quote! {
        #[doc = #doc]
        #safety
        #tf
        pub fn run(
            input: &[f32; super::INPUT_LEN],
            packed: &[f32; super::PACKED_LEN],
            output: &mut [f32; super::OUTPUT_LEN],
            scratch: &mut [f32; super::SCRATCH_LEN],
        ) {
            let (blocks, _) = output.as_chunks_mut::<#block_l>();
            run_units(input, packed, 0, blocks, scratch);
        }
    }
}

/// `# Safety` doc lines of a variant's functions.
fn safety_doc(isa: Isa) -> TokenStream {
    match isa {
        Isa::Avx2 => {
            quote!(#[doc = ""] #[doc = " # Safety"] #[doc = ""] #[doc = " The CPU must support AVX2 and FMA."])
        }
        Isa::Avx512 => {
            quote!(#[doc = ""] #[doc = " # Safety"] #[doc = ""] #[doc = " The CPU must support AVX-512F, AVX2 and FMA."])
        }
        Isa::Neon => {
            quote!(#[doc = ""] #[doc = " # Safety"] #[doc = ""] #[doc = " The CPU must support NEON (baseline on aarch64)."])
        }
        Isa::Portable => quote!(),
    }
}

/// The `use` of a variant's intrinsics.
fn arch_uses(v: &VariantPlan) -> TokenStream {
    match v.isa {
        _ if v.lanes == 1 => quote!(),
        Isa::Avx2 | Isa::Avx512 => quote!(
            use ::core::arch::x86_64::*;
        ),
        Isa::Neon => quote!(
            use ::core::arch::aarch64::*;
        ),
        Isa::Portable => quote!(),
    }
}
