//! Emission of kind [`Kind::InPlaceOc`](crate::plan::Kind::InPlaceOc): `gspc-oc`'s tiles
//! (`r` output columns x `oc_bn` output channels, the same accumulators, weights and
//! transposed stores as [`super::packed_oc`]) over the NCHW input read in place. One tile
//! function per row class and column position (`plan::inplace_oc`), each with the taps
//! over the zero padding left out; `run_units` calls them row by row, packing nothing.

use super::ops::Ops;
use super::packed;
use super::packed_oc::{acc, tile_epilogue};
use super::{
    ModuleParts, inline_attr, linear, target_feature, variant_module_shell, zeroed_accumulators,
};
use crate::emit::lit;
use crate::plan::inplace_oc::{self, RowClass, TilePos, TileTaps};
use crate::plan::{LayerPlan, VariantPlan, output_span};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The module of one in-place `gspc-oc` variant.
pub(super) fn variant_module(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    let l = &p.layer;
    let classes = inplace_oc::row_classes(l);
    let positions = inplace_oc::positions(v);
    let mut items = Vec::new();
    let mut rows = Vec::new();
    let ob = (p.nocb() > 1).then(|| quote!(ob,));
    for (k, class) in classes.iter().enumerate() {
        let mut calls = Vec::new();
        for (i, pos) in positions.iter().enumerate() {
            let name = format_ident!("tile_r{}_c{}", k, i);
            items.push(tile_fn(p, v, outline, &name, class, *pos));
            calls.push(quote!(#name(input, packed, block, g, #ob oh);));
        }
        rows.push(if class.end - class.start == 1 {
            let at = lit(class.start);
            quote! {
                let oh = #at;
                #(#calls)*
            }
        } else {
            let (start, end) = (lit(class.start), lit(class.end));
            quote! {
                for oh in #start..#end {
                    #(#calls)*
                }
            }
        });
    }
    let unit_split = packed::unit_split(p);
    let body = quote! {
        for (i, block) in blocks.iter_mut().enumerate() {
            let unit = first + i;
            #unit_split
            #(#rows)*
        }
    };
    let doc = format!(
        " `{}`: {} lanes x {} vector(s), tiles of {} column(s) over the input read in place ({} row class(es) x {} column position(s)){}.",
        v.kernel,
        v.lanes,
        v.nvec,
        v.reg_n,
        classes.len(),
        positions.len(),
        if p.is_half_rate(v) {
            "; the form the packing AVX-512 variant's `run_units` runs instead where AVX-512 is half rate"
        } else {
            ""
        }
    );
    let units_doc = format!(
        " Computes output blocks `first..first + blocks.len()` of layer `{}` with the {} variant, reading the input in place; block `u` is output channels `u * {} ..` of group `u / {}`.",
        l.name,
        v.isa,
        p.oc_bn,
        p.nocb()
    );
    variant_module_shell(
        p,
        v,
        ModuleParts {
            doc,
            units_doc,
            block_l: lit(p.oc_bn * p.output[0] * p.output[1]),
            consts: quote!(),
            scratch: quote!(_scratch),
            body,
            items,
        },
    )
}

/// The tile function `name` of the rows of `class` at column position `pos`: per input
/// channel of the group, a checked window of the channel's input plane (`xw`) from the
/// tile's first value read and of the packed weights (`wv`) around the unrolled taps that
/// fall inside the input; then bias, activation and the store as `gspc-oc`'s.
fn tile_fn(
    p: &LayerPlan,
    v: &VariantPlan,
    outline: bool,
    name: &proc_macro2::Ident,
    class: &RowClass,
    pos: TilePos,
) -> TokenStream {
    let l = &p.layer;
    let ops = Ops::of(v);
    let [oh_n, ow_n] = p.output;
    let taps = inplace_oc::tile_taps(l, class, pos);
    let ob = p.nocb() > 1;
    let ob_coeff = |c: usize| if ob { c } else { 0 };
    let b_at = linear(&[("g", p.kpg()), ("ob", ob_coeff(p.oc_bn))], p.bias_offset);
    let o_at = linear(&[("oh", ow_n)], pos.ow0);
    let offsets: Vec<usize> = (0..pos.cols).collect();
    let ospan = output_span(p, v, &offsets, 1);
    let init = zeroed_accumulators(&ops, pos.cols, v.nvec, acc, |j| {
        taps.taps.iter().any(|t| t.col == j)
    });
    let epilogue = tile_epilogue(p, v, pos.cols, &ops);
    let store = packed::bias_and_output(p, b_at, ospan, o_at, &epilogue);
    let (start, channels) = if taps.taps.is_empty() {
        // Every tap of these rows falls on the padding: the output is the bias.
        (quote!(), quote!())
    } else {
        channel_loop(p, v, class, &taps, &ops)
    };
    let doc = format!(
        " Output rows {}..{} (kernel rows {:?} inside the input), columns {}..{}: {} accumulators of {} lane(s), {} taps inside the input per input channel.",
        class.start,
        class.end,
        class.kh,
        pos.ow0,
        pos.ow0 + pos.cols,
        pos.cols * v.nvec,
        v.lanes,
        taps.taps.len()
    );
    let (tf, inline) = (target_feature(v.isa), inline_attr(outline));
    let (p_len, block_l) = (lit(p.packed_len), lit(p.oc_bn * oh_n * ow_n));
    let ob_param = ob.then(|| quote!(ob: usize,));
    // The input is not read where every tap falls on the padding.
    let x = if taps.taps.is_empty() {
        quote!(_x)
    } else {
        quote!(x)
    };
    quote! {
        #[doc = #doc]
        #tf
        #inline
        fn #name(
            #x: &[f32; super::INPUT_LEN],
            p: &[f32; #p_len],
            out: &mut [f32; #block_l],
            g: usize,
            #ob_param
            oh: usize,
        ) {
            #start
            #(#init)*
            #channels
            #store
        }
    }
}

/// The tile's first input value and weight (`xb`, `wb`), and its loop over the group's
/// input channels: per channel the checked windows of its input plane (`xw`) and of its
/// packed weights (`wv`) around the unrolled taps.
fn channel_loop(
    p: &LayerPlan,
    v: &VariantPlan,
    class: &RowClass,
    taps: &TileTaps,
    ops: &Ops,
) -> (TokenStream, TokenStream) {
    let l = &p.layer;
    let [h, w] = l.input;
    let cpg = p.cpg();
    let wspan = l.kernel[0] * l.kernel[1] * p.oc_bn;
    // The tile's first input value: `oh * SH * W + min` (>= 0 for every row of the class:
    // `inplace_oc::check_bounds`).
    let step = l.stride[0] * w;
    let xb = if taps.min >= 0 {
        linear(&[("oh", step)], taps.min as usize)
    } else {
        let (s, back) = (lit(step), lit(taps.min.unsigned_abs()));
        quote!(oh * #s - #back)
    };
    let ob_coeff = |c: usize| if p.nocb() > 1 { c } else { 0 };
    let ci = |c: usize| if cpg > 1 { c } else { 0 };
    let wb = linear(
        &[("g", p.nocb() * cpg * wspan), ("ob", ob_coeff(cpg * wspan))],
        0,
    );
    let x_at = linear(&[("g", cpg * h * w), ("ci", ci(h * w)), ("xb", 1)], 0);
    let w_at = linear(&[("wb", 1), ("ci", ci(wspan))], 0);
    let body = tap_body(p, v, class, taps, ops);
    let (span, p_len, wspan_l) = (lit(taps.span), lit(p.packed_len), lit(wspan));
    let channel = quote! {
        let Some(xw) = ::gspc_runtime::window::window::<_, #span, { super::INPUT_LEN }>(x, #x_at) else {
            return;
        };
        let Some(wv) = ::gspc_runtime::window::window::<_, #wspan_l, #p_len>(p, #w_at) else {
            return;
        };
        #(#body)*
    };
    let channels = if cpg > 1 {
        let cpg_l = lit(cpg);
        quote! {
            for ci in 0..#cpg_l {
                #channel
            }
        }
    } else {
        channel
    };
    let start = quote! {
        let xb = #xb;
        let wb = #wb;
    };
    (start, channels)
}

/// The unrolled taps of one input channel: per kernel tap with any column inside the
/// input, its weight vectors, then one FMA per such column and vector.
fn tap_body(
    p: &LayerPlan,
    v: &VariantPlan,
    class: &RowClass,
    taps: &TileTaps,
    ops: &Ops,
) -> Vec<TokenStream> {
    let kw_n = p.layer.kernel[1];
    let wspan = p.layer.kernel[0] * kw_n * p.oc_bn;
    let mut body = Vec::new();
    for &kh in &class.kh {
        for kw in 0..kw_n {
            let here: Vec<_> = taps
                .taps
                .iter()
                .filter(|t| t.kh == kh && t.kw == kw)
                .collect();
            if here.is_empty() {
                continue;
            }
            let tap = kh * kw_n + kw;
            for vv in 0..v.nvec {
                let wt = format_ident!("w_t{}_v{}", tap, vv);
                let load = ops.load(&quote!(wv), wspan, tap * p.oc_bn + vv * v.lanes);
                body.push(quote!(let #wt = #load;));
            }
            for t in here {
                let xi = lit(t.at);
                for vv in 0..v.nvec {
                    let wt = format_ident!("w_t{}_v{}", tap, vv);
                    body.push(ops.fma(&acc(t.col, vv), quote!(xw[#xi]), &quote!(#wt)));
                }
            }
        }
    }
    body
}
