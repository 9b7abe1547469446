//! Emission of kind [`Kind::DwcPairs`](crate::plan::Kind::DwcPairs): the AVX-512 form of a
//! `gspc-dwc` layer at stride 2 on rows of at most 8 columns. Per channel, every input row
//! is one masked load (its columns from `-PW`, the padding zero); output rows `2p` and
//! `2p + 1` share a 16-lane vector (lanes 0-7 and 8-15), and each tap of a row pair is one
//! two-source permute of the two input rows it reads (`pair_taps16`), the lanes over the
//! padding zeroed by a mask fixed at generation time. The weights are the `gspc-dwc`
//! layout's (`[C/16][KH][KW][16]`, then the bias); no packing, no scratch.

use super::ops::Ops;
use super::{ModuleParts, dwc_band_fn, inline_attr, linear, target_feature, variant_module_shell};
use crate::emit::lit;
use crate::plan::{DWC_BLOCK, LayerPlan, VariantPlan, dwc};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The module of a [`Kind::DwcPairs`](crate::plan::Kind::DwcPairs) variant: `run`,
/// `run_units` (each channel of each block through `channel`), `run_band` where the layer
/// has row bands, and `channel`.
pub(super) fn variant_module(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    let l = &p.layer;
    let [h, w] = l.input;
    let [oh, ow] = p.output;
    let taps = l.kernel[0] * l.kernel[1];
    let cb = DWC_BLOCK;
    let (plane_l, oplane_l, block_l) = (lit(h * w), lit(oh * ow), lit(oh * ow * cb));
    let (wlen_l, taps_l, cb_l, oh_l) = (lit(taps * cb), lit(taps), lit(cb), lit(oh));
    let bias_l = lit(p.bias_offset);
    let doc = format!(
        " `{}`: two output rows of one channel a 16-lane vector, read in place (stride 2, rows of {} columns), on the `gspc-dwc` weights.",
        v.kernel, ow
    );
    let units_doc = format!(
        " Computes output blocks `first..first + blocks.len()` of layer `{}` with the {} variant, channel by channel straight from the input (the scratch is not used); block `u` is channels `u * 16 .. u * 16 + 16`.",
        l.name, v.isa
    );
    // One channel's input plane, weights (gathered from the block's interleaved layout) and
    // bias, for channel `j` of block `cb`.
    let operands = quote! {
        let c = cb * #cb_l + j;
        let Some(x) = ::gspc_runtime::window::window::<_, #plane_l, { super::INPUT_LEN }>(input, c * #plane_l) else {
            return;
        };
        let Some(&bias) = packed.get(#bias_l + c) else {
            return;
        };
        let wts: [f32; #taps_l] = ::core::array::from_fn(|t| wb.get(t * #cb_l + j).copied().unwrap_or(0.0));
    };
    let weights = quote! {
        let Some(wb) = ::gspc_runtime::window::window::<_, #wlen_l, { super::PACKED_LEN }>(packed, cb * #wlen_l) else {
            return;
        };
    };
    let body = quote! {
        for (i, block) in blocks.iter_mut().enumerate() {
            let cb = first + i;
            #weights
            let (planes, _) = block.as_chunks_mut::<#oplane_l>();
            for (j, out) in planes.iter_mut().enumerate() {
                #operands
                channel(x, &wts, bias, out, 0, #oh_l);
            }
        }
    };
    let (from, to) = (linear(&[("r0", ow)], 0), linear(&[("r1", ow)], 0));
    let band_fn = dwc_band_fn(
        p,
        v,
        quote!(_scratch),
        quote! {
            #weights
            for (j, band) in planes.iter_mut().enumerate() {
                #operands
                let mut out = [0.0f32; #oplane_l];
                channel(x, &wts, bias, &mut out, r0, r1);
                if let Some(src) = out.get(#from..#to) {
                    band.copy_from_slice(src);
                }
            }
        },
    );
    let mut items = vec![channel_fn(p, v, outline)];
    if p.row_bands {
        items.insert(0, band_fn);
    }
    variant_module_shell(
        p,
        v,
        ModuleParts {
            doc,
            units_doc,
            block_l,
            consts: quote!(),
            scratch: quote!(_scratch),
            body,
            items,
        },
    )
}

/// `channel`: output rows `r0..r1` of one channel (its input plane `x`, its weights `w`
/// and bias), every row pair that has one of them computed, unrolled: the input rows
/// loaded once each, one accumulator per pair starting at the bias, per kernel row and
/// column one `pair_taps16` and one FMA per pair, the activation, then the pair's rows
/// inside `r0..r1` stored.
fn channel_fn(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    let l = &p.layer;
    let [h, w] = l.input;
    let [oh, ow] = p.output;
    let [kh_n, kw_n] = l.kernel;
    let ops = Ops::of(v);
    let (plane_l, oplane_l, taps_l, w_l, ow_l) =
        (lit(h * w), lit(oh * ow), lit(kh_n * kw_n), lit(w), lit(ow));
    // The column of a row vector's lane 0: `-PW` (a negative constant argument needs
    // braces; zero must not have them).
    let pw = match l.padding[1] {
        0 => quote!(0),
        p => {
            let v = proc_macro2::Literal::isize_unsuffixed(-(p as isize));
            quote!({ #v })
        }
    };
    let load = ops.helper_with("load", "_clip");
    let (taps16, high, store) = (
        quote!(::gspc_runtime::x86::pair_taps16),
        quote!(::gspc_runtime::x86::high_half16),
        quote!(::gspc_runtime::x86::store16_part),
    );
    let zero = ops.zero();
    let pairs = oh.div_ceil(2);
    let mut body = Vec::new();
    // The input rows some pair reads, loaded once each (the compiler keeps or reloads them).
    let mut used = vec![false; h];
    for r in 0..oh {
        for kh in 0..kh_n {
            if let Some(ih) = dwc::pair_input_row(l, r, kh) {
                used[ih] = true;
            }
        }
    }
    for (ih, _) in used.iter().enumerate().filter(|(_, u)| **u) {
        let (id, at) = (format_ident!("x{}", ih), lit(ih * w));
        body.push(quote! {
            let #id = #load::<#w_l, #pw>(::gspc_runtime::window::at::<_, #w_l, #plane_l, #at>(x));
        });
    }
    for t in 0..kh_n * kw_n {
        let (id, t_l) = (format_ident!("w{}", t), lit(t));
        let set = ops.splat(quote!(w[#t_l]));
        body.push(quote!(let #id = #set;));
    }
    let b = ops.splat(quote!(bias));
    body.push(quote!(let b = #b;));
    for pr in 0..pairs {
        let (r_a, r_b) = (2 * pr, 2 * pr + 1);
        let acc = format_ident!("acc{}", pr);
        let mut fmas = Vec::new();
        for kh in 0..kh_n {
            // The input rows the pair's two output rows read (none past the output or over
            // the padding); a kernel row neither reads adds nothing.
            let (ia, ib) = (
                dwc::pair_input_row(l, r_a, kh),
                (r_b < oh)
                    .then(|| dwc::pair_input_row(l, r_b, kh))
                    .flatten(),
            );
            if ia.is_none() && ib.is_none() {
                continue;
            }
            let row = |ih: Option<usize>| match ih {
                Some(ih) => {
                    let id = format_ident!("x{}", ih);
                    quote!(#id)
                }
                None => zero.clone(),
            };
            let (a, bb) = (row(ia), row(ib));
            for kw in 0..kw_n {
                let mask = dwc::pair_mask(l, kw);
                if mask == 0 {
                    continue;
                }
                let (kw_l, mask_l) = (
                    proc_macro2::Literal::i32_unsuffixed(kw as i32),
                    proc_macro2::Literal::u16_unsuffixed(mask),
                );
                let wid = format_ident!("w{}", kh * kw_n + kw);
                let tap = quote!(#taps16::<#kw_l, #mask_l>(#a, #bb));
                fmas.push(ops.fma_vv(&quote!(#acc), &tap, &quote!(#wid)));
            }
        }
        let init = if fmas.is_empty() {
            quote!(let #acc = b;)
        } else {
            quote!(let mut #acc = b;)
        };
        let fin = ops.activation(quote!(#acc), l.activation);
        let (ra_l, at_a) = (lit(r_a), lit(r_a * ow));
        let mut stores = vec![quote! {
            if (r0..r1).contains(&#ra_l) {
                #store::<#oplane_l, #at_a, #ow_l>(out, v);
            }
        }];
        if r_b < oh {
            let (rb_l, at_b) = (lit(r_b), lit(r_b * ow));
            stores.push(quote! {
                if (r0..r1).contains(&#rb_l) {
                    #store::<#oplane_l, #at_b, #ow_l>(out, #high(v));
                }
            });
        }
        let last = lit(r_b.min(oh - 1) + 1);
        body.push(quote! {
            if r0 < #last && #ra_l < r1 {
                #init
                #(#fmas)*
                let v = #fin;
                #(#stores)*
            }
        });
    }
    let tf = target_feature(v.isa);
    let inline = inline_attr(outline);
    let doc = format!(
        " Output rows `r0..r1` of one channel: {} row pair(s) of a 16-lane vector, {} tap(s) each, from the channel's input plane `x`, weights `w` and `bias`.",
        pairs,
        kh_n * kw_n
    );
    quote! {
        #[doc = #doc]
        #tf
        #inline
        fn channel(
            x: &[f32; #plane_l],
            w: &[f32; #taps_l],
            bias: f32,
            out: &mut [f32; #oplane_l],
            r0: usize,
            r1: usize,
        ) {
            #(#body)*
        }
    }
}
