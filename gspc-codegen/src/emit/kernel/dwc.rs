//! Emission of kind [`Kind::Dwc`](crate::plan::Kind::Dwc), strategy `gspc-dwc`: blocks of
//! `DWC_BLOCK` (16) channels packed as pixels, transposed back after; one tile function per
//! column shape (the taps of its pixels that fall inside the input), called in runs of
//! tiles of one shape per run of output rows with the same kernel rows inside the input.

use super::ops::Ops;
use super::{
    ModuleParts, dwc_band_fn, inline_attr, linear, tail_doc, target_feature, variant_module_shell,
    zeroed_accumulators,
};
use crate::emit::lit;
use crate::plan::{DWC_BLOCK, LayerPlan, VariantPlan, dwc};
use gspc_runtime::Isa;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The module of one `gspc-dwc` variant: `run`, `run_units` (pack a block of 16 channels,
/// compute its output pixels row by row, transpose them back) and the tile functions.
///
/// The packed input has no padding: every tap over the zero padding is left out at
/// generation time (kernel rows by the range each run of output rows loops over, kernel
/// columns by the column tile's shape), so padding costs neither FMAs nor packing.
pub(super) fn variant_module(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    let l = &p.layer;
    let [oh, ow] = p.output;
    let cb = DWC_BLOCK;
    let (xlen, olen) = (dwc::input_len(p), oh * ow * cb);
    let [h, w] = l.input;
    let (xlen_l, olen_l, block_l) = (lit(xlen), lit(olen), lit(olen));
    let (hw_l, h_l, oh_l) = (lit(h * w), lit(h), lit(oh));
    // The input rows a band of output rows `r0..r1` reads: from `r0 * SH - PH` to `(r1 - 1)
    // * SH + (KH - 1) * DH - PH`, inside the input.
    let reach = (l.kernel[0] - 1) * l.dilation[0] + 1;
    let last_in = linear(&[("last", l.stride[0])], reach);
    let first_in = linear(&[("r0", l.stride[0])], 0);
    let ph_l = lit(l.padding[0]);
    let packers = Packers {
        isa: v.isa,
        plane: h * w,
    };
    let pack_all = packers.pack(quote!(0..#hw_l));
    let (from_px, to_px) = (linear(&[("ih0", w)], 0), linear(&[("ih1", w)], 0));
    let pack_band = packers.pack(quote!(#from_px..#to_px));
    let unpack_all = packers.unpack_block(oh * ow);
    let unpack_band = packers.unpack(linear(&[("r0", ow)], 0));
    // The packed input and the output pixels of one block, in the scratch.
    let split_scratch = quote! {
        let Some((xs, rest)) = scratch.split_first_chunk_mut::<XLEN>() else {
            return;
        };
        let Some(out) = rest.first_chunk_mut::<OLEN>() else {
            return;
        };
    };
    let (mut tiles, runs) = column_tiles(p, v, outline);
    let rows = row_loops(p, v, &runs);
    let doc = format!(
        " `{}`: {} lanes x {} vector(s) per pixel of 16 channels, {} full tile(s) of {} pixel(s) per row{}; {} tile shape(s), taps over the padding left out.",
        v.kernel,
        v.lanes,
        v.nvec,
        v.full_tiles,
        v.reg_n,
        tail_doc(v),
        tiles.len()
    );
    let units_doc = format!(
        " Computes output blocks `first..first + blocks.len()` of layer `{}` with the {} variant; block `u` is channels `u * 16 .. u * 16 + 16`.",
        l.name, v.isa
    );
    let consts = quote! {
    /// Values of the packed input of one block of 16 channels, `[H * W][16]`.
    const XLEN: usize = #xlen_l;
    /// Values of the output pixels of one block, `[OH * OW][16]`.
    const OLEN: usize = #olen_l;
    };
    // The whole block: the row loops of `run_band` again, with the band's rows and the
    // packing and transposing ranges constant (with every block through `run_band`, the
    // ranges became run-time values and the tiles stopped being inlined with their kernel
    // rows folded in: small planes ran 1.1-1.25x slower on Zen 4).
    let body = quote! {
    #split_scratch
    for (i, block) in blocks.iter_mut().enumerate() {
        let cb = first + i;
        #pack_all
        let (x, r0, r1): (&[f32; XLEN], usize, usize) = (xs, 0, #oh_l);
        #(#rows)*
        #unpack_all
    }
    };
    let band_fn = dwc_band_fn(
        p,
        v,
        quote!(scratch),
        quote! {
                #split_scratch
                // The input rows the band reads (padded rows: `reach` is one past the
                // last one of the last output row's window).
                let last = r1 - 1;
                let (first, reach) = (#first_in, #last_in);
                let ih1 = reach.saturating_sub(#ph_l).min(#h_l);
                let ih0 = first.saturating_sub(#ph_l).min(ih1);
                #pack_band
                let x: &[f32; XLEN] = xs;
                #(#rows)*
                #unpack_band
        },
    );
    if p.row_bands {
        tiles.insert(0, band_fn);
    }
    variant_module_shell(
        p,
        v,
        ModuleParts {
            doc,
            units_doc,
            block_l,
            consts,
            scratch: quote!(scratch),
            body,
            items: tiles,
        },
    )
}

/// The data movement of a `gspc-dwc` variant of `isa` whose input planes have `plane`
/// pixels: the calls that pack input pixels into `xs` and transpose output pixels from
/// `out` back to the planes. The AVX-512 variant transposes with AVX2 too: 8x8 transposes
/// of ymm registers beat 16x16 ones of zmm registers (docs/benchmarks/2026-11-27-zen5.md).
/// The AVX2 packers are inlined into the variant (they have no target features of their
/// own), with constant ranges folded in where the caller has them.
struct Packers {
    isa: Isa,
    plane: usize,
}

impl Packers {
    /// Why the call of a runtime AVX2 packer is sound.
    const WHY: &str = "this variant is compiled with AVX2, which the runtime's AVX2 packers need of their caller, and runs only on a CPU with it";

    fn avx2(&self) -> bool {
        matches!(self.isa, Isa::Avx512 | Isa::Avx2)
    }

    /// Packs the input pixels `pixels` (a range expression) of block `cb` into `xs`.
    fn pack(&self, pixels: TokenStream) -> TokenStream {
        let (plane, why) = (lit(self.plane), Self::WHY);
        if self.avx2() {
            quote! {
                gspc_safety!(#why);
                unsafe { ::gspc_runtime::x86::dwc_pack_pixels_avx2(input, #plane, cb * 16, #pixels, xs) };
            }
        } else {
            quote!(::gspc_runtime::dwc::pack_pixels(input, #plane, cb * 16, #pixels, xs);)
        }
    }

    /// Transposes the output pixels from `first` (an expression) into the band's `planes`.
    fn unpack(&self, first: TokenStream) -> TokenStream {
        let why = Self::WHY;
        if self.avx2() {
            quote! {
                gspc_safety!(#why);
                unsafe { ::gspc_runtime::x86::dwc_unpack_pixels_avx2(out, #first, planes) };
            }
        } else {
            quote!(::gspc_runtime::dwc::unpack_pixels(out, #first, planes);)
        }
    }

    /// Transposes a whole block's `pixels` output pixels into `block`.
    fn unpack_block(&self, pixels: usize) -> TokenStream {
        let (pixels, why) = (lit(pixels), Self::WHY);
        if self.avx2() {
            quote! {
                gspc_safety!(#why);
                unsafe { ::gspc_runtime::x86::dwc_unpack_block_avx2(out, #pixels, block) };
            }
        } else {
            quote!(::gspc_runtime::dwc::unpack_block(out, #pixels, block);)
        }
    }
}

/// A run of column tiles of one shape: (shape index, first tile's `ow0`, first tile's input
/// column, tiles in the run).
type Run = (usize, usize, usize, usize);

/// The tile functions of a `gspc-dwc` variant, one per column shape, and the runs of
/// consecutive column tiles of one shape (each a loop in a row).
fn column_tiles(p: &LayerPlan, v: &VariantPlan, outline: bool) -> (Vec<TokenStream>, Vec<Run>) {
    let l = &p.layer;
    let col_tiles = dwc::col_tiles(l, v);
    let mut shapes: Vec<dwc::ColShape> = Vec::new();
    let mut tiles = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    for t in &col_tiles {
        let k = match shapes.iter().position(|s| *s == t.shape) {
            Some(k) => k,
            None => {
                shapes.push(t.shape.clone());
                let name = format!("tile_{}", shapes.len() - 1);
                tiles.push(tile_fn(p, v, &name, &t.shape, outline));
                shapes.len() - 1
            }
        };
        // Input column of the tile's first loaded pixel (never left of the row).
        let iw0 = (t.ow0 * l.stride[1] + t.shape.first).saturating_sub(l.padding[1]);
        match runs.last_mut() {
            Some(r) if r.0 == k && r.1 + r.3 * v.reg_n == t.ow0 && !t.shape.taps.is_empty() => {
                r.3 += 1
            }
            _ => runs.push((k, t.ow0, iw0, 1)),
        }
    }
    (tiles, runs)
}

/// Per run of output rows with the same kernel rows inside the input, the loop over those
/// rows calling every column run's tiles.
fn row_loops(p: &LayerPlan, v: &VariantPlan, runs: &[Run]) -> Vec<TokenStream> {
    let l = &p.layer;
    let mut rows = Vec::new();
    for (a, b, k0, k1) in dwc::row_runs(l) {
        let (k0, k1) = (lit(k0), lit(k1));
        let mut calls = Vec::new();
        for &(k, ow0, iw0, n) in runs {
            let f = format_ident!("tile_{}", k);
            if n == 1 {
                let (ow0, iw0) = (lit(ow0), lit(iw0));
                calls.push(quote!(#f(x, packed, out, cb, oh, #ow0, #iw0, #k0, #k1);));
            } else {
                let n = lit(n);
                let ow0 = linear(&[("t", v.reg_n)], ow0);
                let iw0 = linear(&[("t", v.reg_n * l.stride[1])], iw0);
                calls.push(quote! {
                    for t in 0..#n {
                        #f(x, packed, out, cb, oh, #ow0, #iw0, #k0, #k1);
                    }
                });
            }
        }
        // The run's rows inside the band `r0..r1` (r1 <= OH).
        let from = if a == 0 {
            quote!(r0)
        } else {
            let a = lit(a);
            quote!(r0.max(#a))
        };
        let to = if b == p.output[0] {
            quote!(r1)
        } else {
            let b = lit(b);
            quote!(r1.min(#b))
        };
        rows.push(quote! {
            for oh in #from..#to {
                #(#calls)*
            }
        });
    }
    rows
}

/// One `gspc-dwc` tile function: the pixels of `shape`, 16 channels each. Kernel rows
/// `kh0..kh1` run in a loop (one input row window and one weight row each); within a row
/// each input pixel is loaded once and feeds every tap of the shape that reads it.
fn tile_fn(
    p: &LayerPlan,
    v: &VariantPlan,
    name: &str,
    shape: &dwc::ColShape,
    outline: bool,
) -> TokenStream {
    let l = &p.layer;
    let ops = Ops::of(v);
    let tf = target_feature(v.isa);
    let name = format_ident!("{}", name);
    let kw_n = l.kernel[1];
    let ow = p.output[1];
    let cb = DWC_BLOCK;
    let r = shape.pixels;
    let (xlen, olen) = (dwc::input_len(p), p.output[0] * ow * cb);
    let b_at = linear(&[("cb", cb)], p.bias_offset);
    let o_at = linear(&[("oh", ow * cb), ("ow0", cb)], 0);
    let (ospan_l, cb_l) = (lit(r * cb), lit(cb));
    let (xlen_l, olen_l, plen_l) = (lit(xlen), lit(olen), lit(p.packed_len));
    let init = tile_init(v, shape, &ops);
    let kernel_rows = tile_kernel_rows(p, v, shape, &ops);
    let epilogue = tile_epilogue(p, v, shape, &ops);
    let inline = inline_attr(outline);
    let doc = format!(
        " Tile of {r} output pixel(s) x 16 channels: accumulators `acc_p{{pixel}}_v{{vector}}`, {r} x {} vector(s) of {} lane(s); kernel rows `kh0..kh1` in a loop, {} of the {} taps of a kernel row inside the input, unrolled.",
        v.nvec,
        v.lanes,
        shape.taps.len(),
        r * kw_n
    );
    quote! {
        #[doc = #doc]
        #tf
        #inline
        #[allow(clippy::too_many_arguments)]
        fn #name(
            x: &[f32; #xlen_l],
            p: &[f32; #plen_l],
            out: &mut [f32; #olen_l],
            cb: usize,
            oh: usize,
            ow0: usize,
            iw0: usize,
            kh0: usize,
            kh1: usize,
        ) {
            let Some(bw) = ::gspc_runtime::window::window::<_, #cb_l, #plen_l>(p, #b_at) else {
                return;
            };
            let Some(ow) = ::gspc_runtime::window::window_mut::<_, #ospan_l, #olen_l>(out, #o_at) else {
                return;
            };
            #(#init)*
            #kernel_rows
            #(#epilogue)*
        }
    }
}

/// The accumulator of vector `vv` of a tile's pixel `j`.
fn acc(j: usize, vv: usize) -> TokenStream {
    let id = format_ident!("acc_p{}_v{}", j, vv);
    quote!(#id)
}

/// A tile's accumulators, zeroed; those of a pixel no tap reads are not `mut`.
fn tile_init(v: &VariantPlan, shape: &dwc::ColShape, ops: &Ops) -> Vec<TokenStream> {
    zeroed_accumulators(ops, shape.pixels, v.nvec, acc, |j| {
        shape.taps.iter().any(|t| t.0 == j)
    })
}

/// A tile's loop over kernel rows `kh0..kh1`: the row's input and weight windows (`xw`,
/// `wv`) around [`tile_row_body`]; with no tap inside the input, only the bias remains.
fn tile_kernel_rows(
    p: &LayerPlan,
    v: &VariantPlan,
    shape: &dwc::ColShape,
    ops: &Ops,
) -> TokenStream {
    if shape.taps.is_empty() {
        // Pixels over the padding only: the bias.
        return quote!(let _ = (x, iw0, kh0, kh1););
    }
    let l = &p.layer;
    let [kh_n, kw_n] = l.kernel;
    let cb = DWC_BLOCK;
    let taps = kh_n * kw_n;
    let row_at = linear(&[("oh", l.stride[0]), ("kh", l.dilation[0])], 0);
    let ph_l = lit(l.padding[0]);
    let x_at = linear(&[("ih", l.input[1] * cb), ("iw0", cb)], 0);
    let w_at = linear(&[("cb", taps * cb), ("kh", kw_n * cb)], 0);
    let (xspan_l, wspan_l) = (lit(dwc::input_span(shape)), lit(kw_n * cb));
    let (xlen_l, plen_l) = (lit(dwc::input_len(p)), lit(p.packed_len));
    let body = tile_row_body(p, v, shape, ops);
    quote! {
        for kh in kh0..kh1 {
            let Some(ih) = (#row_at).checked_sub(#ph_l) else {
                return;
            };
            let Some(xw) = ::gspc_runtime::window::window::<_, #xspan_l, #xlen_l>(x, #x_at) else {
                return;
            };
            let Some(wv) = ::gspc_runtime::window::window::<_, #wspan_l, #plen_l>(p, #w_at) else {
                return;
            };
            #(#body)*
        }
    }
}

/// One kernel row of a tile, unrolled: the weight vectors of the kernel columns some tap
/// uses, then each input pixel loaded once and multiplied into every tap that reads it.
fn tile_row_body(
    p: &LayerPlan,
    v: &VariantPlan,
    shape: &dwc::ColShape,
    ops: &Ops,
) -> Vec<TokenStream> {
    let kw_n = p.layer.kernel[1];
    let cb = DWC_BLOCK;
    let xspan = dwc::input_span(shape);
    let (xw, wv) = (quote!(xw), quote!(wv));
    let mut body = Vec::new();
    // The weight vectors of the kernel columns that some tap uses.
    for kw in 0..kw_n {
        if !shape.taps.iter().any(|t| t.1 == kw) {
            continue;
        }
        for vv in 0..v.nvec {
            let wid = format_ident!("w_k{}_v{}", kw, vv);
            let load = ops.load(&wv, kw_n * cb, kw * cb + vv * v.lanes);
            body.push(quote!(let #wid = #load;));
        }
    }
    // Each input pixel once, then every tap that reads it.
    for c in 0..shape.span {
        let users: Vec<&(usize, usize, usize)> = shape.taps.iter().filter(|t| t.2 == c).collect();
        if users.is_empty() {
            continue;
        }
        for vv in 0..v.nvec {
            let xid = format_ident!("x_c{}_v{}", c, vv);
            let load = ops.load(&xw, xspan, c * cb + vv * v.lanes);
            body.push(quote!(let #xid = #load;));
            for &&(j, kw, _) in &users {
                let wid = format_ident!("w_k{}_v{}", kw, vv);
                body.push(ops.fma_vv(&acc(j, vv), &quote!(#xid), &quote!(#wid)));
            }
        }
    }
    body
}

/// A tile's output: each accumulator plus the bias (`bw`), activated, stored into the
/// output window `ow`.
fn tile_epilogue(
    p: &LayerPlan,
    v: &VariantPlan,
    shape: &dwc::ColShape,
    ops: &Ops,
) -> Vec<TokenStream> {
    let cb = DWC_BLOCK;
    let bw = quote!(bw);
    let (n, ospan_l) = (lit(v.lanes), lit(shape.pixels * cb));
    let mut epilogue = Vec::new();
    for j in 0..shape.pixels {
        for vv in 0..v.nvec {
            let bias = ops.load(&bw, cb, vv * v.lanes);
            let fin = ops.finish(&acc(j, vv), bias, p.layer.activation);
            let at = lit(j * cb + vv * v.lanes);
            epilogue.push(quote! {
                *::gspc_runtime::window::at_mut::<_, #n, #ospan_l, #at>(ow) = #fin;
            });
        }
    }
    epilogue
}
