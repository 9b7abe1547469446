//! Emission of kind [`Kind::PackedOc`](crate::plan::Kind::PackedOc), strategy `gspc-oc`:
//! tiles of `r` output columns x `oc_bn` output channels (output channels on the vector
//! axis), one broadcast input value per column and tap, or the input of `gpv` groups side
//! by side where a vector holds several groups.

use super::linear;
use super::ops::Ops;
use super::packed::{self, Tile};
use crate::emit::lit;
use crate::plan::{LayerPlan, VariantPlan, output_span, packed_oc};
use gspc_runtime::Isa;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The module of one `gspc-oc` variant: the packed module with `gspc-oc` tiles.
pub(super) fn variant_module(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    packed::variant_module(p, v, outline, |offsets, _rows| tile(p, v, offsets.len()))
}

/// The body of a `gspc-oc` tile function: `r` output columns x `oc_bn` output channels of one row.
fn tile(p: &LayerPlan, v: &VariantPlan, r: usize) -> Tile {
    let l = &p.layer;
    let ops = Ops::of(v);
    let [kh_n, kw_n] = l.kernel;
    let oc_bn = p.oc_bn;
    let offsets: Vec<usize> = (0..r).collect();
    let xspan = packed_oc::input_span(p, &offsets, 1);
    let ospan = output_span(p, v, &offsets, 1);
    let gpv = p.gpv;
    let xb = linear(
        &[
            ("oh", l.stride[0] * p.row_len * gpv),
            ("ow0", l.stride[1] * gpv),
        ],
        0,
    );

    let zero = ops.zero();
    let mut init = Vec::new();
    for j in 0..r {
        for vv in 0..v.nvec {
            let a = acc(j, vv);
            init.push(quote!(let mut #a = #zero;));
        }
    }
    let body = tile_body(p, v, r, xspan, &ops);
    let epilogue = tile_epilogue(p, v, r, &ops);

    let doc = format!(
        " Tile of {r} output column(s) x {oc_bn} output channel(s): accumulators `acc_w{{column}}_v{{vector}}`, {} x {} vector(s) of {} lane(s); per input channel a {kh_n}x{kw_n} window, unrolled.",
        r, v.nvec, v.lanes
    );
    Tile {
        doc,
        xb,
        xspan,
        ospan,
        init,
        body,
        epilogue,
    }
}

/// The accumulator of vector `vv` of a tile's output column `j`.
pub(super) fn acc(j: usize, vv: usize) -> TokenStream {
    let id = format_ident!("acc_w{}_v{}", j, vv);
    quote!(#id)
}

/// A tile's unrolled taps: per tap its weight vectors (from `wv`), then per output column
/// one FMA with the broadcast input value from `xw` (`xspan` values), or with the input of
/// the block's `gpv` groups side by side.
fn tile_body(
    p: &LayerPlan,
    v: &VariantPlan,
    r: usize,
    xspan: usize,
    ops: &Ops,
) -> Vec<TokenStream> {
    let l = &p.layer;
    let [kh_n, kw_n] = l.kernel;
    let oc_bn = p.oc_bn;
    let wspan = kh_n * kw_n * oc_bn;
    let gpv = p.gpv;
    let wv = quote!(wv);
    let mut body = Vec::new();
    for kh in 0..kh_n {
        for kw in 0..kw_n {
            let tap = kh * kw_n + kw;
            for vv in 0..v.nvec {
                let w = format_ident!("w_t{}_v{}", tap, vv);
                let load = ops.load(&wv, wspan, tap * oc_bn + vv * v.lanes);
                body.push(quote!(let #w = #load;));
            }
            for j in 0..r {
                let at =
                    (kh * l.dilation[0] * p.row_len + j * l.stride[1] + kw * l.dilation[1]) * gpv;
                if gpv == 1 {
                    let xi = lit(at);
                    for vv in 0..v.nvec {
                        let w = format_ident!("w_t{}_v{}", tap, vv);
                        body.push(ops.fma(&acc(j, vv), quote!(xw[#xi]), &quote!(#w)));
                    }
                } else {
                    // The input of the block's gpv groups at this pixel, side by side.
                    let x = format_ident!("x_t{}_c{}", tap, j);
                    let group = ops.group_input(&quote!(xw), xspan, at, gpv);
                    body.push(quote!(let #x = #group;));
                    for vv in 0..v.nvec {
                        let w = format_ident!("w_t{}_v{}", tap, vv);
                        body.push(ops.fma_grouped(&acc(j, vv), &quote!(#x), &quote!(#w)));
                    }
                }
            }
        }
    }
    body
}

/// A tile's output: each accumulator plus the bias (`bw`), activated, stored per channel
/// into the output window `ow` (channel `c` of column `j` at `c * OH * OW + j`).
pub(super) fn tile_epilogue(
    p: &LayerPlan,
    v: &VariantPlan,
    r: usize,
    ops: &Ops,
) -> Vec<TokenStream> {
    let [oh, ow] = p.output;
    let ohw = oh * ow;
    let (oc_bn, gpv) = (p.oc_bn, p.gpv);
    let bw = quote!(bw);
    let mut epilogue = Vec::new();
    if v.isa == Isa::Avx512 && v.lanes == 16 && gpv == 1 {
        // Each vector's 16 channels of the r columns, transposed in registers into the
        // channels' rows (x86::store_rows16, up to 16 columns at a time): 16 stores of r
        // lanes instead of 16 r scalar ones.
        let ohw_l = lit(ohw);
        for vv in 0..v.nvec {
            let bias = ops.load(&bw, oc_bn, vv * v.lanes);
            let mut outs = Vec::new();
            for j in 0..r {
                let o = format_ident!("o_w{}_v{}", j, vv);
                let fin = ops.finish_vector(&acc(j, vv), bias.clone(), p.layer.activation);
                epilogue.push(quote!(let #o = #fin;));
                outs.push(o);
            }
            // At most 16 columns per transpose.
            for (k, chunk) in outs.chunks(16).enumerate() {
                let (n, base) = (lit(chunk.len()), lit(vv * v.lanes * ohw + 16 * k));
                epilogue.push(quote! {
                    ::gspc_runtime::x86::store_rows16::<#n>([#(#chunk),*], &mut ow[#base..], #ohw_l);
                });
            }
        }
        return epilogue;
    }
    for j in 0..r {
        for vv in 0..v.nvec {
            let a = acc(j, vv);
            let o = format_ident!("o_w{}_v{}", j, vv);
            let bias = if ops.is_scalar() {
                let i = lit(vv);
                quote!(#bw[#i])
            } else {
                ops.load(&bw, oc_bn, vv * v.lanes)
            };
            let fin = ops.finish(&a, bias, p.layer.activation);
            epilogue.push(quote!(let #o = #fin;));
            if ops.is_scalar() {
                let oi = lit(vv * ohw + j);
                epilogue.push(quote!(ow[#oi] = #o;));
            } else if gpv > 1 {
                // Lane L of the block is channel L / gpv of group L % gpv.
                for lane in 0..v.lanes {
                    let big = vv * v.lanes + lane;
                    let channel = (big % gpv) * p.kpg() + big / gpv;
                    let (oi, li) = (lit(channel * ohw + j), lit(lane));
                    epilogue.push(quote!(ow[#oi] = #o[#li];));
                }
            } else {
                // Lane `lane` of vector `vv` is output channel `vv * lanes + lane`.
                let at = linear(&[("lane", ohw)], vv * v.lanes * ohw + j);
                epilogue.push(quote! {
                    for (lane, value) in #o.into_iter().enumerate() {
                        ow[#at] = value;
                    }
                });
            }
        }
    }
    epilogue
}
