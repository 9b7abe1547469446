//! What the two packed kinds, [`Kind::PackedOc`](crate::plan::Kind::PackedOc) (see
//! [`super::packed_oc`]) and [`Kind::PackedOw`](crate::plan::Kind::PackedOw) (see
//! [`super::packed_ow`]), emit alike: the variant module, whose `run_units` packs each
//! group's input into the scratch and calls the tiles of every output row, and the shell of
//! a tile function around a kind's unrolled body.

use super::{
    ModuleParts, half_rate_branch, inline_attr, linear, tail_doc, target_feature,
    variant_module_shell,
};
use crate::emit::lit;
use crate::plan::{LayerPlan, VariantPlan};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The module of one packed variant: `run`, `run_units` (per output block, the group's
/// input packed once, then the row tiles in order) and the tile functions, each in the
/// shell of [`tile_wrapper`] around the kind's `tile(column offsets, output rows)`.
pub(super) fn variant_module(
    p: &LayerPlan,
    v: &VariantPlan,
    outline: bool,
    tile: impl Fn(&[usize], usize) -> Tile,
) -> TokenStream {
    let l = &p.layer;
    let tiles = tile_fns(p, v, outline, tile);
    let row_tiles = row_tiles(p, v);
    let doc = format!(
        " `{}`: {} lanes x {} vector(s), {} full tile(s) of {} column(s) per row{}{}.",
        v.kernel,
        v.lanes,
        v.nvec,
        v.full_tiles,
        v.reg_n,
        tail_doc(v),
        if p.is_half_rate(v) {
            "; the narrower tiles the AVX-512 variant's `run_units` runs instead where AVX-512 is half rate"
        } else {
            ""
        }
    );
    let group = match p.nocb() {
        1 => "u".to_string(),
        n => format!("u / {n}"),
    };
    let units_doc = format!(
        " Computes output blocks `first..first + blocks.len()` of layer `{}` with the {} variant; block `u` is output channels `u * {} ..` of group `{group}`.",
        l.name, v.isa, p.oc_bn
    );
    let block_l = lit(p.oc_bn * p.output[0] * p.output[1]);
    let unit_split = unit_split(p);
    let half_rate = half_rate_branch(p, v);
    let body = quote! {
        #half_rate
        let mut packed_group = usize::MAX;
        for (i, block) in blocks.iter_mut().enumerate() {
            let unit = first + i;
            #unit_split
            if g != packed_group {
                super::pack_input(input, scratch, g);
                packed_group = g;
            }
            let x: &[f32; super::SCRATCH_LEN] = scratch;
            #row_tiles
        }
    };
    variant_module_shell(
        p,
        v,
        ModuleParts {
            doc,
            units_doc,
            block_l,
            consts: quote!(),
            scratch: quote!(scratch),
            body,
            items: tiles,
        },
    )
}

/// `run_units`' group `g` (and block `ob` within it, where a group has several) of output
/// block `unit`.
pub(super) fn unit_split(p: &LayerPlan) -> TokenStream {
    if p.nocb() == 1 {
        quote!(let g = unit;)
    } else {
        let nocb = lit(p.nocb());
        quote!(let (g, ob) = (unit / #nocb, unit % #nocb);)
    }
}

/// The tile functions: `tile_full` (a full tile of `reg_n` columns) and `tile_last` (the
/// row's last columns), each of `rows` output rows, and, where the output rows leave a
/// remainder, `tile_full_rows` and `tile_last_rows` of the remaining rows.
fn tile_fns(
    p: &LayerPlan,
    v: &VariantPlan,
    outline: bool,
    tile: impl Fn(&[usize], usize) -> Tile,
) -> Vec<TokenStream> {
    let full_offsets = v.full_offsets();
    let tail_offsets = v.tail_offsets();
    let row_tail = p.output[0] % v.rows;
    let mut tiles = Vec::new();
    for (suffix, rows) in [("", v.rows), ("_rows", row_tail)] {
        if rows == 0 {
            continue;
        }
        if v.full_tiles > 0 {
            let name = format_ident!("tile_full{}", suffix);
            tiles.push(tile_wrapper(p, v, outline, name, tile(&full_offsets, rows)));
        }
        if !tail_offsets.is_empty() {
            let name = format_ident!("tile_last{}", suffix);
            tiles.push(tile_wrapper(p, v, outline, name, tile(&tail_offsets, rows)));
        }
    }
    tiles
}

/// The tile calls of every output row of a block: the rows in steps of `rows` (in a loop
/// where there are several steps), then the remaining rows with the `_rows` tiles.
fn row_tiles(p: &LayerPlan, v: &VariantPlan) -> TokenStream {
    let oh = p.output[0];
    let row_tail = oh % v.rows;
    let main_calls = tile_calls(p, v, "");
    let row_loop = match oh / v.rows {
        0 => quote!(),
        1 => quote! {
            let oh = 0;
            #main_calls
        },
        n => {
            let row_tiles = lit(n);
            let oh_at = linear(&[("r", v.rows)], 0);
            quote! {
                for r in 0..#row_tiles {
                    let oh = #oh_at;
                    #main_calls
                }
            }
        }
    };
    let row_tail_block = if row_tail > 0 {
        let tail_calls = tile_calls(p, v, "_rows");
        let at = lit(oh / v.rows * v.rows);
        quote! {
            let oh = #at;
            #tail_calls
        }
    } else {
        quote!()
    };
    quote! {
        #row_loop
        #row_tail_block
    }
}

/// The tile calls of one step of output rows from `oh`: the full tiles (in a loop where
/// there are several), then the last; `suffix` names the tiles (`""` or `"_rows"`).
fn tile_calls(p: &LayerPlan, v: &VariantPlan, suffix: &str) -> TokenStream {
    let full_n = lit(v.full_tiles);
    let ow0_full = linear(&[("t", v.reg_n)], 0);
    // The block of a group: a tile argument only where a group has several.
    let ob = (p.nocb() > 1).then(|| quote!(ob,));
    let mut c = Vec::new();
    let f = format_ident!("tile_full{}", suffix);
    match v.full_tiles {
        0 => {}
        1 => c.push(quote!(#f(x, packed, block, g, #ob oh, 0);)),
        _ => c.push(quote! {
            for t in 0..#full_n {
                #f(x, packed, block, g, #ob oh, #ow0_full);
            }
        }),
    }
    if !v.tail_offsets().is_empty() {
        let f = format_ident!("tile_last{}", suffix);
        let at = lit(v.last_ow0());
        c.push(quote!(#f(x, packed, block, g, #ob oh, #at);));
    }
    quote!(#(#c)*)
}

/// The parts in which the two packed kinds' tile functions differ.
pub(super) struct Tile {
    pub(super) doc: String,
    /// First input value of the tile in the packed input plane of channel 0.
    pub(super) xb: TokenStream,
    pub(super) xspan: usize,
    pub(super) ospan: usize,
    pub(super) init: Vec<TokenStream>,
    pub(super) body: Vec<TokenStream>,
    pub(super) epilogue: Vec<TokenStream>,
}

/// The tile function `name`: per input channel of the group, a checked window of the packed input
/// (`xw`) and of the packed weights (`wv`) around the unrolled `body`; then the bias
/// (`bw`) and output (`ow`) windows around the `epilogue`.
fn tile_wrapper(
    p: &LayerPlan,
    v: &VariantPlan,
    outline: bool,
    name: proc_macro2::Ident,
    t: Tile,
) -> TokenStream {
    let l = &p.layer;
    let tf = target_feature(v.isa);
    let [oh, ow] = p.output;
    let (cpg, kpg, oc_bn) = (p.cpg(), p.kpg(), p.oc_bn);
    let wspan = l.kernel[0] * l.kernel[1] * oc_bn;
    // `ob`, the block within the group, only where a group has several.
    let ob = p.nocb() > 1;
    let ob_coeff = |c: usize| if ob { c } else { 0 };
    let wb = linear(
        &[("g", p.nocb() * cpg * wspan), ("ob", ob_coeff(cpg * wspan))],
        0,
    );
    // `g` is the group, or the block of gpv groups.
    let b_at = linear(
        &[("g", kpg * p.gpv), ("ob", ob_coeff(oc_bn))],
        p.bias_offset,
    );
    let ob_param = ob.then(|| quote!(ob: usize,));
    let o_at = linear(&[("oh", ow), ("ow0", 1)], 0);
    let (s_len, p_len, block_l) = (lit(p.scratch_len), lit(p.packed_len), lit(oc_bn * oh * ow));
    let channels = channel_loop(p, t.xspan, &t.body);
    let store = bias_and_output(p, b_at, t.ospan, o_at, &t.epilogue);
    let Tile { doc, xb, init, .. } = t;
    let inline = inline_attr(outline);
    quote! {
        #[doc = #doc]
        #tf
        #inline
        fn #name(
            x: &[f32; #s_len],
            p: &[f32; #p_len],
            out: &mut [f32; #block_l],
            g: usize,
            #ob_param
            oh: usize,
            ow0: usize,
        ) {
            let xb = #xb;
            let wb = #wb;
            #(#init)*
            #channels
            #store
        }
    }
}

/// The end of a tile function: the checked windows of the bias (`bw`, `oc_bn` values at
/// `b_at` of the packed weights) and of the output block (`ow`, `ospan` values at `o_at`)
/// around the tile's `epilogue`.
pub(super) fn bias_and_output(
    p: &LayerPlan,
    b_at: TokenStream,
    ospan: usize,
    o_at: TokenStream,
    epilogue: &[TokenStream],
) -> TokenStream {
    let [oh, ow] = p.output;
    let (p_len, block_l) = (lit(p.packed_len), lit(p.oc_bn * oh * ow));
    let (ospan_l, ocbn_l) = (lit(ospan), lit(p.oc_bn));
    quote! {
        let Some(bw) = ::gspc_runtime::window::window::<_, #ocbn_l, #p_len>(p, #b_at) else {
            return;
        };
        let Some(ow) = ::gspc_runtime::window::window_mut::<_, #ospan_l, #block_l>(out, #o_at) else {
            return;
        };
        #(#epilogue)*
    }
}

/// A tile's loop over the group's input channels (none with one): the channel's checked
/// windows of the packed input (`xw`, `xspan` values) and of the packed weights (`wv`)
/// around the unrolled `body`.
fn channel_loop(p: &LayerPlan, xspan: usize, body: &[TokenStream]) -> TokenStream {
    let l = &p.layer;
    let cpg = p.cpg();
    let plane = p.padded[0] * p.row_len * p.gpv;
    let wspan = l.kernel[0] * l.kernel[1] * p.oc_bn;
    // The loop over the group's input channels, only where it has several.
    let ci = |c: usize| if cpg > 1 { c } else { 0 };
    let x_at = linear(&[("xb", 1), ("ci", ci(plane))], 0);
    let w_at = linear(&[("wb", 1), ("ci", ci(wspan))], 0);
    let (s_len, p_len) = (lit(p.scratch_len), lit(p.packed_len));
    let (xspan_l, wspan_l, cpg_l) = (lit(xspan), lit(wspan), lit(cpg));
    let channel = quote! {
        let Some(xw) = ::gspc_runtime::window::window::<_, #xspan_l, #s_len>(x, #x_at) else {
            return;
        };
        let Some(wv) = ::gspc_runtime::window::window::<_, #wspan_l, #p_len>(p, #w_at) else {
            return;
        };
        #(#body)*
    };
    if cpg > 1 {
        quote! {
            for ci in 0..#cpg_l {
                #channel
            }
        }
    } else {
        channel
    }
}
