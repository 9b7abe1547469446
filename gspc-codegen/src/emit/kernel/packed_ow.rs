//! Emission of kind [`Kind::PackedOw`](crate::plan::Kind::PackedOw), strategy `gspc-ow`
//! over the packed input: tiles of `oc_bn` output channels of one group x output rows x
//! vectors of consecutive output columns (output columns on the vector axis); each input
//! vector loaded once per tile feeds every channel and output row it reaches.

use super::linear;
use super::ops::Ops;
use super::packed::{self, Tile};
use crate::emit::lit;
use crate::plan::{LayerPlan, VariantPlan, output_span, packed_ow};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use std::collections::HashMap;

/// The module of one packed `gspc-ow` variant: the packed module with `gspc-ow` tiles.
pub(super) fn variant_module(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    packed::variant_module(p, v, outline, |offsets, rows| tile(p, v, offsets, rows))
}

/// The body of a `gspc-ow` tile function: `oc_bn` output channels of one group x vectors of output
/// columns starting at `offsets` (relative to `ow0`) of `rows` output rows.
fn tile(p: &LayerPlan, v: &VariantPlan, offsets: &[usize], rows: usize) -> Tile {
    let l = &p.layer;
    let ops = Ops::of(v);
    let [kh_n, kw_n] = l.kernel;
    let oc_bn = p.oc_bn;
    let xspan = packed_ow::input_span(p, v, offsets, rows);
    let ospan = output_span(p, v, offsets, rows);
    let xb = linear(&[("oh", l.stride[0] * p.row_len), ("ow0", 1)], 0);

    let zero = ops.zero();
    let mut init = Vec::new();
    for c in 0..oc_bn {
        for r in 0..rows {
            for i in 0..offsets.len() {
                let a = acc(c, r, i);
                init.push(quote!(let mut #a = #zero;));
            }
        }
    }
    let body = tile_body(p, offsets, rows, xspan, &ops);
    let epilogue = tile_epilogue(p, v, offsets, rows, ospan, &ops);

    let doc = format!(
        " Tile of {oc_bn} output channel(s) x {rows} output row(s) x {} vector(s) of {} output columns: accumulators `acc_c{{channel}}_r{{row}}_v{{vector}}`; per input channel a {kh_n}x{kw_n} window, unrolled: each input row's vectors loaded once for every output row they reach, one FMA with a broadcast weight per channel.",
        offsets.len(),
        v.lanes
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

/// The accumulator of output channel `c`, output row `r` and column vector `i` of a tile.
fn acc(c: usize, r: usize, i: usize) -> TokenStream {
    let id = format_ident!("acc_c{}_r{}_v{}", c, r, i);
    quote!(#id)
}

/// A tile's unrolled window: each input row's vectors (from `xw`, `xspan` values) loaded
/// once, each feeding one FMA with a broadcast weight (from `wv`) per output row it reaches
/// and channel.
fn tile_body(
    p: &LayerPlan,
    offsets: &[usize],
    rows: usize,
    xspan: usize,
    ops: &Ops,
) -> Vec<TokenStream> {
    let l = &p.layer;
    let [kh_n, kw_n] = l.kernel;
    let rl = p.row_len;
    let oc_bn = p.oc_bn;
    let xw = quote!(xw);
    let mut body = Vec::new();
    // Each input row of the window is loaded once and feeds every output row it reaches.
    let in_rows = (rows - 1) * l.stride[0] + (kh_n - 1) * l.dilation[0] + 1;
    for ir in 0..in_rows {
        // A position of the row that two taps' vectors share is loaded once.
        let mut loaded: HashMap<usize, proc_macro2::Ident> = HashMap::new();
        let uses: Vec<(usize, usize)> = (0..rows)
            .filter_map(|r| {
                let d = ir.checked_sub(r * l.stride[0])?;
                (d % l.dilation[0] == 0 && d / l.dilation[0] < kh_n)
                    .then_some((r, d / l.dilation[0]))
            })
            .collect();
        if uses.is_empty() {
            continue;
        }
        for kw in 0..kw_n {
            let base = ir * rl + p.col_index(kw * l.dilation[1]);
            for (i, off) in offsets.iter().enumerate() {
                let x = loaded
                    .entry(base + off)
                    .or_insert_with(|| {
                        let x = format_ident!("x_r{}_k{}_v{}", ir, kw, i);
                        let load = ops.load(&xw, xspan, base + off);
                        body.push(quote!(let #x = #load;));
                        x
                    })
                    .clone();
                for &(r, kh) in &uses {
                    let tap = kh * kw_n + kw;
                    for c in 0..oc_bn {
                        let wi = lit(tap * oc_bn + c);
                        body.push(ops.fma_columns(&acc(c, r, i), &quote!(#x), quote!(wv[#wi])));
                    }
                }
            }
        }
    }
    body
}

/// A tile's output: each accumulator plus its channel's bias (`bw`), activated, stored into
/// the output window `ow` (`ospan` values).
fn tile_epilogue(
    p: &LayerPlan,
    v: &VariantPlan,
    offsets: &[usize],
    rows: usize,
    ospan: usize,
    ops: &Ops,
) -> Vec<TokenStream> {
    let [oh, ow] = p.output;
    let ohw = oh * ow;
    let mut epilogue = Vec::new();
    let n = lit(v.lanes);
    let ospan_l = lit(ospan);
    for c in 0..p.oc_bn {
        let ci = lit(c);
        for r in 0..rows {
            for (i, off) in offsets.iter().enumerate() {
                let a = acc(c, r, i);
                let fin = ops.finish(&a, ops.splat(quote!(bw[#ci])), p.layer.activation);
                let at = lit(c * ohw + r * ow + off);
                epilogue.push(quote! {
                    *::gspc_runtime::window::at_mut::<_, #n, #ospan_l, #at>(ow) = #fin;
                });
            }
        }
    }
    epilogue
}
