//! Emission of kind [`Kind::Direct`](crate::plan::Kind::Direct), the direct `gspc-ow`
//! kernel (AVX-512 and AVX2, one channel per group): the NCHW input read in place, no
//! packing and no scratch. By rows: one tile function per row-tile shape (its kernel rows
//! inside the input), every column tile of a row unrolled, the column taps made by
//! in-register shifts (stride 1) or even/odd selection (stride 2). Flat: the plane as one
//! row, the lanes of a tap whose column falls off the row masked out of its FMA.

use super::ops::Ops;
use super::{ModuleParts, inline_attr, linear, target_feature, variant_module_shell};
use crate::emit::lit;
use crate::plan::{LayerPlan, VariantPlan, direct};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use std::collections::{HashMap, HashSet};

/// The module of a direct `gspc-ow` variant (AVX-512 or AVX2, one channel per group): `run`,
/// `run_units` (per channel, the row tiles in order, or the one `flat` tile) and one tile
/// function per row-tile shape. The input is read in place: no packing, no scratch.
pub(super) fn variant_module(
    p: &LayerPlan,
    v: &VariantPlan,
    flat: bool,
    outline: bool,
) -> TokenStream {
    let l = &p.layer;
    let [h, w] = l.input;
    let [oh, ow] = p.output;
    let taps = l.kernel[0] * l.kernel[1];
    let (plane_l, block_l, taps_l) = (lit(h * w), lit(oh * ow), lit(taps));
    let bias_l = lit(p.bias_offset);
    let w_at = linear(&[("g", taps)], 0);
    let (calls, tiles) = if flat {
        (
            vec![quote!(tile_flat(x, w, b, out);)],
            vec![flat_tile_fn(p, v, outline)],
        )
    } else {
        by_rows(p, v, outline)
    };
    let doc = format!(
        " `{}`: direct (input read in place), {} lanes x up to {} vector(s) x {} output row(s) per tile.",
        v.kernel, v.lanes, v.nvec, v.rows
    );
    let units_doc = format!(
        " Computes output channels `first..first + blocks.len()` of layer `{}` with the {} variant, straight from the input (the scratch is not used).",
        l.name, v.isa
    );
    let body = quote! {
    for (i, out) in blocks.iter_mut().enumerate() {
        let g = first + i;
        let Some(x) = ::gspc_runtime::window::window::<_, #plane_l, { super::INPUT_LEN }>(input, g * #plane_l) else {
            return;
        };
        let Some(w) = ::gspc_runtime::window::window::<_, #taps_l, { super::PACKED_LEN }>(packed, #w_at) else {
            return;
        };
        let Some(&b) = packed.get(#bias_l + g) else {
            return;
        };
        #(#calls)*
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
            scratch: quote!(_scratch),
            body,
            items: tiles,
        },
    )
}

/// The calls of a direct variant by rows (runs of row tiles of one shape as loops), and
/// its tile functions, one per row-tile shape.
fn by_rows(p: &LayerPlan, v: &VariantPlan, outline: bool) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let l = &p.layer;
    let row_tiles = direct::row_tiles(l, v.rows);
    let step_ih = v.rows * l.stride[0];
    let mut shapes: Vec<direct::RowShape> = Vec::new();
    let mut calls = Vec::new();
    let mut i = 0;
    while i < row_tiles.len() {
        let t = &row_tiles[i];
        let k = match shapes.iter().position(|s| *s == t.shape) {
            Some(k) => k,
            None => {
                shapes.push(t.shape.clone());
                shapes.len() - 1
            }
        };
        let mut n = 1;
        while i + n < row_tiles.len()
            && row_tiles[i + n].shape == t.shape
            && row_tiles[i + n].ih0 == t.ih0 + n * step_ih
        {
            n += 1;
        }
        let f = format_ident!("tile_{}", k);
        if n == 1 {
            let (oh0, ih0) = (lit(t.oh0), lit(t.ih0));
            calls.push(quote!(#f(x, w, b, out, #oh0, #ih0);));
        } else {
            let n_l = lit(n);
            let oh0 = linear(&[("t", v.rows)], t.oh0);
            let ih0 = linear(&[("t", step_ih)], t.ih0);
            calls.push(quote! {
                for t in 0..#n_l {
                    #f(x, w, b, out, #oh0, #ih0);
                }
            });
        }
        i += n;
    }
    let tiles = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| tile_fn(p, v, k, s, outline))
        .collect();
    (calls, tiles)
}

/// The vectors computed from one input row in a direct tile, each once (`let`), by what
/// they are: loads by column, shifts, even/odd selections.
struct RowValues<'a> {
    ops: &'a Ops,
    lanes: isize,
    rel: usize,
    row: TokenStream,
    w: usize,
    memo: HashMap<String, proc_macro2::Ident>,
}

impl<'a> RowValues<'a> {
    /// The values of row `row` (`rel` rows below the tile's first), `w` values long.
    fn new(ops: &'a Ops, v: &VariantPlan, rel: usize, row: TokenStream, w: usize) -> Self {
        RowValues {
            ops,
            lanes: v.lanes as isize,
            rel,
            row,
            w,
            memo: HashMap::new(),
        }
    }

    fn value(
        &mut self,
        key: String,
        expr: TokenStream,
        body: &mut Vec<TokenStream>,
    ) -> TokenStream {
        let id = self
            .memo
            .entry(key)
            .or_insert_with_key(|key| {
                let id = format_ident!("x{}_{}", self.rel, key.replace('-', "m"));
                body.push(quote!(let #id = #expr;));
                id
            })
            .clone();
        quote!(#id)
    }

    /// The `lanes` values of the row from column `at` (zero outside the row).
    fn load(&mut self, at: isize, body: &mut Vec<TokenStream>) -> TokenStream {
        let at_l = proc_macro2::Literal::isize_unsuffixed(at);
        let (row, w_l) = (&self.row, lit(self.w));
        // A negative constant argument needs braces; a positive one must not have them.
        let at_arg = if at < 0 {
            quote!({ #at_l })
        } else {
            quote!(#at_l)
        };
        let f = self.ops.helper_with("load", "_clip");
        let expr = quote!(#f::<#w_l, #at_arg>(#row));
        self.value(format!("l{at}"), expr, body)
    }

    /// The `lanes` values of the row from column `at0 + o` (`o` the tap's column offset,
    /// stride 1): taps 0 and 1 are loads, the others shifts of two loads, the best balance
    /// of load and shuffle ports (docs/benchmarks/2026-11-28-zen5.md). AVX2 has no
    /// cross-lane shift: every tap is a load there.
    fn shifted(&mut self, at0: isize, o: isize, body: &mut Vec<TokenStream>) -> TokenStream {
        let lanes = self.lanes;
        if o <= 1 || lanes == 8 {
            return self.load(at0 + o, body);
        }
        if o == lanes {
            return self.load(at0 + lanes, body);
        }
        let lo = self.load(at0, body);
        let hi = self.load(at0 + lanes, body);
        let (o_l, shift) = (
            proc_macro2::Literal::i32_unsuffixed(o as i32),
            self.ops.helper("shift"),
        );
        self.value(
            format!("s{at0}_{o}"),
            quote!(#shift::<#o_l>(#lo, #hi)),
            body,
        )
    }

    /// The even (`o` even) or odd lanes of the pair of vectors of the row from column
    /// `base` (stride 2).
    fn selected(&mut self, base: isize, o: isize, body: &mut Vec<TokenStream>) -> TokenStream {
        let lo = self.load(base, body);
        let hi = self.load(base + self.lanes, body);
        let (key, f) = if o % 2 == 0 {
            (format!("e{base}"), self.ops.helper("evens"))
        } else {
            (format!("o{base}"), self.ops.helper("odds"))
        };
        self.value(key, quote!(#f(#lo, #hi)), body)
    }
}

/// `let` of each accumulator at the bias; `mut` where an FMA updates it.
fn accumulator_inits(
    accs: impl Iterator<Item = proc_macro2::Ident>,
    fed: &HashSet<proc_macro2::Ident>,
) -> Vec<TokenStream> {
    accs.map(|a| {
        if fed.contains(&a) {
            quote!(let mut #a = bias;)
        } else {
            quote!(let #a = bias;)
        }
    })
    .collect()
}

/// `let w{t} = ..` of each weight tap in `taps`: the weight broadcast once.
fn weight_splats(ops: &Ops, taps: impl Iterator<Item = usize>) -> Vec<TokenStream> {
    taps.map(|t| {
        let (id, t_l) = (format_ident!("w{}", t), lit(t));
        let set = ops.splat(quote!(w[#t_l]));
        quote!(let #id = #set;)
    })
    .collect()
}

/// One tile function of the direct kernel by rows: the output rows of `shape` (from
/// `oh0`), every column tile of the row in turn, each with its own accumulators.
fn tile_fn(
    p: &LayerPlan,
    v: &VariantPlan,
    k: usize,
    shape: &direct::RowShape,
    outline: bool,
) -> TokenStream {
    let l = &p.layer;
    let tf = target_feature(v.isa);
    let name = format_ident!("tile_{}", k);
    let [h, w] = l.input;
    let [oh, ow] = p.output;
    let kw_n = l.kernel[1];
    let taps = l.kernel[0] * kw_n;
    let spanw = shape.span * w;
    let rows_ow = shape.rows * ow;
    let ow_l = lit(ow);
    let (plane_l, block_l, taps_l, w_l, spanw_l, rows_ow_l) = (
        lit(h * w),
        lit(oh * ow),
        lit(taps),
        lit(w),
        lit(spanw),
        lit(rows_ow),
    );
    let ops = Ops::of(v);
    // The weights this tile uses, broadcast once.
    let mut used: Vec<usize> = shape
        .taps
        .iter()
        .flat_map(|&(_, kh, _)| (0..kw_n).map(move |kw| kh * kw_n + kw))
        .collect();
    used.sort_unstable();
    used.dedup();
    let mut pre = weight_splats(&ops, used.into_iter());
    let mut rels: Vec<usize> = shape.taps.iter().map(|t| t.2).collect();
    rels.sort_unstable();
    rels.dedup();
    for &rel in &rels {
        let (id, at) = (format_ident!("row{}", rel), lit(rel * w));
        pre.push(quote!(let #id = ::gspc_runtime::window::at::<_, #w_l, #spanw_l, #at>(xw);));
    }
    let col_blocks: Vec<TokenStream> = direct::col_tiles(v)
        .iter()
        .map(|cols| col_block(p, v, &ops, shape, &rels, cols))
        .collect();
    let inline = inline_attr(outline);
    let doc = format!(
        " Direct tile: {} output row(s) from `oh0`, reading {} input row(s) from `ih0` in place; per column tile, accumulators `acc_r{{row}}_v{{vector}}` start at the bias; each input row's vectors are loaded once (masked at the row's ends: the zero padding), the column taps made by in-register shifts (stride 1) or even/odd selection (stride 2), one FMA per tap, output row and vector.",
        shape.rows, shape.span
    );
    let bias_set = ops.splat(quote!(b));
    quote! {
        #[doc = #doc]
        #tf
        #inline
        fn #name(
            x: &[f32; #plane_l],
            w: &[f32; #taps_l],
            b: f32,
            out: &mut [f32; #block_l],
            oh0: usize,
            ih0: usize,
        ) {
            let Some(xw) = ::gspc_runtime::window::window::<_, #spanw_l, #plane_l>(x, ih0 * #w_l) else {
                return;
            };
            let Some(ov) = ::gspc_runtime::window::window_mut::<_, #rows_ow_l, #block_l>(out, oh0 * #ow_l) else {
                return;
            };
            let bias = #bias_set;
            #(#pre)*
            #(#col_blocks)*
        }
    }
}

/// One column tile (output columns `cols`, a vector each) of a direct tile by rows, as a
/// block: its accumulators at the bias; per input row `rels` of the tile, column and
/// kernel column, the tap and one FMA per output row it reaches; the stores.
fn col_block(
    p: &LayerPlan,
    v: &VariantPlan,
    ops: &Ops,
    shape: &direct::RowShape,
    rels: &[usize],
    cols: &[usize],
) -> TokenStream {
    let l = &p.layer;
    let ow = p.output[1];
    let kw_n = l.kernel[1];
    let rows_ow_l = lit(shape.rows * ow);
    let acc = |r: usize, j: usize| format_ident!("acc_r{}_v{}", r, j);
    let mut body = Vec::new();
    // Accumulators that get an FMA (those of rows over the padding only do not).
    let mut fed = HashSet::new();
    for &rel in rels {
        let row = format_ident!("row{}", rel);
        let uses: Vec<(usize, usize)> = shape
            .taps
            .iter()
            .filter(|t| t.2 == rel)
            .map(|t| (t.0, t.1))
            .collect();
        let mut vals = RowValues::new(ops, v, rel, quote!(#row), l.input[1]);
        for (j, &c) in cols.iter().enumerate() {
            for kw in 0..kw_n {
                let tap = row_tap(p, &mut vals, c, kw, &mut body);
                for &(r, kh) in &uses {
                    let a = acc(r, j);
                    fed.insert(a.clone());
                    let wt = format_ident!("w{}", kh * kw_n + kw);
                    body.push(ops.fma_vv(&quote!(#a), &tap, &quote!(#wt)));
                }
            }
        }
    }
    for r in 0..shape.rows {
        for (j, &c) in cols.iter().enumerate() {
            let a = acc(r, j);
            let at = lit(r * ow + c);
            let val = ops.activation(quote!(#a), l.activation);
            if c + v.lanes > ow {
                // A row narrower than the vector: its first lanes only.
                let n = lit(ow - c);
                let store = ops.helper_with("store", "_part");
                body.push(quote! {
                    #store::<#rows_ow_l, #at, #n>(ov, #val);
                });
            } else {
                let (store, n) = (ops.helper("store"), lit(v.lanes));
                body.push(quote! {
                    *::gspc_runtime::window::at_mut::<_, #n, #rows_ow_l, #at>(ov) = #store(#val);
                });
            }
        }
    }
    let init = accumulator_inits(
        (0..shape.rows)
            .flat_map(|r| (0..cols.len()).map(move |j| (r, j)))
            .map(|(r, j)| acc(r, j)),
        &fed,
    );
    quote!({ #(#init)* #(#body)* })
}

/// Kernel column `kw`'s tap of the vector of output columns from `c`, from the row of
/// `vals`: shifted (stride 1) or selected (stride 2).
fn row_tap(
    p: &LayerPlan,
    vals: &mut RowValues,
    c: usize,
    kw: usize,
    body: &mut Vec<TokenStream>,
) -> TokenStream {
    let l = &p.layer;
    let (pw, sw) = (l.padding[1] as isize, l.stride[1]);
    let o = (kw * l.dilation[1]) as isize;
    if sw == 1 {
        return vals.shifted(c as isize - pw, o, body);
    }
    let base = 2 * c as isize - pw + 2 * (o / 2);
    if o == 2
        && vals.lanes == 16
        && p.output[1] >= 8
        && !vals.memo.contains_key(&format!("e{base}"))
    {
        // The even lanes from two columns on: the even lanes of the pair at `base - 2`
        // shifted by one, the last lane the first of a load (shared with the next vector's
        // pair). Faster from 8 output columns on, slower on narrower rows
        // (docs/benchmarks/2026-11-28-zen5.md).
        let evens = vals.selected(base - 2, 0, body);
        let next = vals.load(base + 30, body);
        let shift = vals.ops.helper("shift");
        return vals.value(format!("e{base}"), quote!(#shift::<1>(#evens, #next)), body);
    }
    vals.selected(base, o, body)
}

/// The flat direct kernel's one tile function: the whole plane as one row of `H * W`
/// values, in column tiles of up to `nvec` vectors; a tap's lanes whose column falls off
/// the row are left out of its FMA by a constant mask.
fn flat_tile_fn(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    let l = &p.layer;
    let tf = target_feature(v.isa);
    let [h, w] = l.input;
    let hw = h * w;
    let [kh_n, kw_n] = l.kernel;
    let (hw_l, taps_l) = (lit(hw), lit(kh_n * kw_n));
    let ops = Ops::of(v);
    let bias_set = ops.splat(quote!(b));
    let mut pre = vec![quote!(let bias = #bias_set;)];
    pre.extend(weight_splats(&ops, 0..kh_n * kw_n));
    let col_blocks: Vec<TokenStream> = direct::col_tiles(v)
        .iter()
        .map(|cols| flat_col_block(p, v, &ops, cols))
        .collect();
    let inline = inline_attr(outline);
    let doc = format!(
        " Flat direct tile: the {h}x{w} plane as one row of {hw} values, column tiles of up to {} vectors; accumulators `acc_v{{vector}}` start at the bias; per tap, the input at `f + (kh DH - PH) W + kw DW - PW` (zero outside the plane) from two loads and a shift, its lanes whose column falls off the row masked out of the FMA.",
        v.nvec
    );
    quote! {
        #[doc = #doc]
        #tf
        #inline
        fn tile_flat(x: &[f32; #hw_l], w: &[f32; #taps_l], b: f32, out: &mut [f32; #hw_l]) {
            #(#pre)*
            #(#col_blocks)*
        }
    }
}

/// One column tile (plane positions `cols`, a vector each) of the flat direct tile, as a
/// block: its accumulators at the bias, per tap one FMA of the lanes inside the row, the
/// stores.
fn flat_col_block(p: &LayerPlan, v: &VariantPlan, ops: &Ops, cols: &[usize]) -> TokenStream {
    let l = &p.layer;
    let [h, w] = l.input;
    let hw = h * w;
    let [kh_n, kw_n] = l.kernel;
    let (dh, dw) = (l.dilation[0] as isize, l.dilation[1] as isize);
    let (ph, pw) = (l.padding[0] as isize, l.padding[1] as isize);
    let hw_l = lit(hw);
    let acc = |j: usize| format_ident!("acc_v{}", j);
    let mut body = Vec::new();
    let mut fed = HashSet::new();
    let mut vals = RowValues::new(ops, v, 0, quote!(x), hw);
    for kh in 0..kh_n {
        let row_off = (kh as isize * dh - ph) * w as isize;
        for (j, &f0) in cols.iter().enumerate() {
            let at0 = f0 as isize + row_off - pw;
            for kw in 0..kw_n {
                let o = kw as isize * dw;
                let tap = vals.shifted(at0, o, &mut body);
                // Lanes whose input column is inside the row.
                let mut mask = 0u32;
                for lane in 0..v.lanes {
                    let col = ((f0 + lane) % w) as isize + o - pw;
                    if (0..w as isize).contains(&col) {
                        mask |= 1 << lane;
                    }
                }
                let (a, wt) = (acc(j), format_ident!("w{}", kh * kw_n + kw));
                if mask != 0 {
                    fed.insert(a.clone());
                }
                let full = (1u32 << v.lanes) - 1;
                let (a, wt) = (quote!(#a), quote!(#wt));
                body.push(match mask {
                    0 => quote!(),
                    m if m == full => ops.fma_vv(&a, &tap, &wt),
                    m => ops.fma_masked(&a, &tap, &wt, m),
                });
            }
        }
    }
    for (j, &f0) in cols.iter().enumerate() {
        let a = acc(j);
        let at = lit(f0);
        let val = ops.activation(quote!(#a), l.activation);
        let (store, n) = (ops.helper("store"), lit(v.lanes));
        body.push(quote! {
            *::gspc_runtime::window::at_mut::<_, #n, #hw_l, #at>(out) = #store(#val);
        });
    }
    let init = accumulator_inits((0..cols.len()).map(acc), &fed);
    quote!({ #(#init)* #(#body)* })
}
