//! One ISA variant of a layer: its `run` and its tile functions (the micro-kernels).

use super::{ident, lit};
use crate::plan::{
    DWC_BLOCK, Kind, LayerPlan, VariantPlan, direct, dwc, output_span, packed_oc, packed_ow,
};
use gspc_runtime::{Activation, Isa};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use std::collections::HashMap;

/// The vector operations of one (ISA, lane count), as tokens.
struct Ops {
    isa: Isa,
    lanes: usize,
}

impl Ops {
    fn is_scalar(&self) -> bool {
        self.isa != Isa::Portable && self.lanes == 1
    }

    /// Prefix of the x86 intrinsics for this width.
    fn x86(&self) -> &'static str {
        match self.lanes {
            16 => "_mm512",
            8 => "_mm256",
            _ => "_mm",
        }
    }

    fn intrinsic(&self, op: &str) -> TokenStream {
        let name = match self.isa {
            Isa::Neon => format_ident!("{}", op),
            _ => format_ident!("{}_{}", self.x86(), op),
        };
        quote!(#name)
    }

    fn zero(&self) -> TokenStream {
        if self.isa == Isa::Portable {
            let n = lit(self.lanes);
            return quote!([0.0f32; #n]);
        }
        if self.is_scalar() {
            return quote!(0.0f32);
        }
        match self.isa {
            Isa::Neon => quote!(vdupq_n_f32(0.0)),
            _ => {
                let f = self.intrinsic("setzero_ps");
                quote!(#f())
            }
        }
    }

    fn helper(&self, what: &str) -> TokenStream {
        let module = match self.isa {
            Isa::Neon => quote!(aarch64),
            _ => quote!(x86),
        };
        let f = format_ident!("{}{}", what, self.lanes);
        quote!(::gspc_runtime::#module::#f)
    }

    /// A vector of `lanes` values at constant offset `at` of the array `src` (length `len`).
    fn load(&self, src: &TokenStream, len: usize, at: usize) -> TokenStream {
        let (n, len_l, at_l) = (lit(self.lanes), lit(len), lit(at));
        if self.isa == Isa::Portable {
            return quote!(::gspc_runtime::window::at::<#n, #len_l, #at_l>(#src));
        }
        if self.is_scalar() {
            return quote!(#src[#at_l]);
        }
        let load = self.helper("load");
        quote!(#load(::gspc_runtime::window::at::<#n, #len_l, #at_l>(#src)))
    }

    /// `acc += x * w` (fused on SIMD ISAs).
    fn fma(&self, acc: &TokenStream, x: TokenStream, w: &TokenStream) -> TokenStream {
        if self.isa == Isa::Portable {
            return quote!(::gspc_runtime::fma_lanes(&mut #acc, #x, #w););
        }
        if self.is_scalar() {
            return quote!(#acc += #x * #w;);
        }
        match self.isa {
            Isa::Neon => quote!(#acc = vfmaq_n_f32(#acc, #w, #x);),
            _ => {
                let fmadd = self.intrinsic("fmadd_ps");
                let set1 = self.intrinsic("set1_ps");
                quote!(#acc = #fmadd(#set1(#x), #w, #acc);)
            }
        }
    }

    /// `acc += x * w` with `x` a vector of columns and `w` one weight (`gspc-ow`).
    fn fma_columns(&self, acc: &TokenStream, x: &TokenStream, w: TokenStream) -> TokenStream {
        match self.isa {
            Isa::Portable => quote!(::gspc_runtime::fma_lanes(&mut #acc, #w, #x);),
            Isa::Neon => quote!(#acc = vfmaq_n_f32(#acc, #x, #w);),
            _ => {
                let fmadd = self.intrinsic("fmadd_ps");
                let set1 = self.intrinsic("set1_ps");
                quote!(#acc = #fmadd(#x, #set1(#w), #acc);)
            }
        }
    }

    /// The `gpv` values at `at` of `src` (length `len`), repeated over the lanes: the input
    /// of `gpv` groups side by side (`gspc-oc` with several groups per vector).
    fn group_input(&self, src: &TokenStream, len: usize, at: usize, gpv: usize) -> TokenStream {
        let (g, len_l, at_l) = (lit(gpv), lit(len), lit(at));
        let window = quote!(::gspc_runtime::window::at::<#g, #len_l, #at_l>(#src));
        match self.isa {
            Isa::Portable => window,
            Isa::Avx2 | Isa::Avx512 => {
                let f = format_ident!("bcast{}x{}", gpv, self.lanes);
                quote!(::gspc_runtime::x86::#f(#window))
            }
            // Not planned (groups side by side are x86-64 only); kept total.
            Isa::Neon => window,
        }
    }

    /// `acc += x * w` with `x` from [`Ops::group_input`].
    fn fma_grouped(&self, acc: &TokenStream, x: &TokenStream, w: &TokenStream) -> TokenStream {
        match self.isa {
            Isa::Portable | Isa::Neon => {
                quote!(::gspc_runtime::fma_lanes_grouped(&mut #acc, #x, #w);)
            }
            _ => {
                let fmadd = self.intrinsic("fmadd_ps");
                quote!(#acc = #fmadd(#x, #w, #acc);)
            }
        }
    }

    /// `acc += x * w`, both vectors (`gspc-dwc`).
    fn fma_vv(&self, acc: &TokenStream, x: &TokenStream, w: &TokenStream) -> TokenStream {
        match self.isa {
            Isa::Portable => quote!(::gspc_runtime::fma_vec_lanes(&mut #acc, #x, #w);),
            Isa::Neon => quote!(#acc = vfmaq_f32(#acc, #x, #w);),
            _ => {
                let fmadd = self.intrinsic("fmadd_ps");
                quote!(#acc = #fmadd(#x, #w, #acc);)
            }
        }
    }

    /// The same bias value in every lane (`gspc-ow`).
    fn splat(&self, b: TokenStream) -> TokenStream {
        match self.isa {
            Isa::Portable => {
                let n = lit(self.lanes);
                quote!(&[#b; #n])
            }
            Isa::Neon => quote!(vdupq_n_f32(#b)),
            _ => {
                let set1 = self.intrinsic("set1_ps");
                quote!(#set1(#b))
            }
        }
    }

    /// `act(acc + bias)` as an array of `lanes` values (a single f32 when scalar).
    fn finish(&self, acc: &TokenStream, bias: TokenStream, act: Activation) -> TokenStream {
        let act_path = match act {
            Activation::None => quote!(::gspc_runtime::Activation::None),
            Activation::Relu => quote!(::gspc_runtime::Activation::Relu),
            Activation::Relu6 => quote!(::gspc_runtime::Activation::Relu6),
        };
        if self.isa == Isa::Portable {
            return quote!(::gspc_runtime::finish_lanes(#acc, #bias, #act_path));
        }
        if self.is_scalar() {
            return quote!(#act_path.apply(#acc + #bias));
        }
        let (add, max, min, set1) = match self.isa {
            Isa::Neon => (
                quote!(vaddq_f32),
                quote!(vmaxq_f32),
                quote!(vminq_f32),
                quote!(vdupq_n_f32),
            ),
            _ => (
                self.intrinsic("add_ps"),
                self.intrinsic("max_ps"),
                self.intrinsic("min_ps"),
                self.intrinsic("set1_ps"),
            ),
        };
        let sum = quote!(#add(#acc, #bias));
        let v = match act {
            Activation::None => sum,
            Activation::Relu => quote!(#max(#sum, #set1(0.0))),
            Activation::Relu6 => quote!(#min(#max(#sum, #set1(0.0)), #set1(6.0))),
        };
        let store = self.helper("store");
        quote!(#store(#v))
    }
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
fn linear(terms: &[(&str, usize)], constant: usize) -> TokenStream {
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

/// The module of one variant: `run` and the tile functions.
pub(crate) fn variant_module(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    match v.kind {
        Kind::Dwc => return variant_module_dwc(p, v, outline),
        Kind::Direct { .. } => return variant_module_direct(p, v, outline),
        Kind::PackedOc | Kind::PackedOw => {}
    }
    let l = &p.layer;
    let oh = p.output[0];
    let nocb = lit(p.nocb());
    let full_n = lit(v.full_tiles);
    let ow0_full = linear(&[("t", v.reg_n)], 0);
    let full_offsets = v.full_offsets();
    let tail_offsets = v.tail_offsets();
    let tile = |name: &str, offsets: &[usize], rows: usize| match v.kind {
        Kind::PackedOw => tile_fn_ow(p, v, name, offsets, rows, outline),
        _ => tile_fn(p, v, name, offsets.len(), outline),
    };
    let row_tail = oh % v.rows;
    let mut tiles = Vec::new();
    // The block of a group: a tile argument only where a group has several.
    let ob = (p.nocb() > 1).then(|| quote!(ob,));
    let calls = |suffix: &str| {
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
        if !tail_offsets.is_empty() {
            let f = format_ident!("tile_last{}", suffix);
            let at = lit(v.last_ow0());
            c.push(quote!(#f(x, packed, block, g, #ob oh, #at);));
        }
        quote!(#(#c)*)
    };
    for (suffix, rows) in [("", v.rows), ("_rows", row_tail)] {
        if rows == 0 {
            continue;
        }
        if v.full_tiles > 0 {
            tiles.push(tile(&format!("tile_full{suffix}"), &full_offsets, rows));
        }
        if !tail_offsets.is_empty() {
            tiles.push(tile(&format!("tile_last{suffix}"), &tail_offsets, rows));
        }
    }
    let main_calls = calls("");
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
        let tail_calls = calls("_rows");
        let at = lit(oh / v.rows * v.rows);
        quote! {
            let oh = #at;
            #tail_calls
        }
    } else {
        quote!()
    };
    let doc = format!(
        " `{}`: {} lanes x {} vector(s), {} full tile(s) of {} column(s) per row{}.",
        v.kernel,
        v.lanes,
        v.nvec,
        v.full_tiles,
        v.reg_n,
        if v.tail > 0 {
            format!(" and a tail tile of {}", v.tail)
        } else {
            String::new()
        }
    );
    let run_doc = format!(" Runs layer `{}` with the {} variant.", l.name, v.isa);
    let group = match p.nocb() {
        1 => "u".to_string(),
        n => format!("u / {n}"),
    };
    let units_doc = format!(
        " Computes output blocks `first..first + blocks.len()` of layer `{}` with the {} variant; block `u` is output channels `u * {} ..` of group `{group}`.",
        l.name, v.isa, p.oc_bn
    );
    let block_l = lit(p.oc_bn * p.output[0] * p.output[1]);
    let unit_split = if p.nocb() == 1 {
        quote!(let g = unit;)
    } else {
        quote!(let (g, ob) = (unit / #nocb, unit % #nocb);)
    };
    let body = quote! {
        let mut packed_group = usize::MAX;
        for (i, block) in blocks.iter_mut().enumerate() {
            let unit = first + i;
            #unit_split
            if g != packed_group {
                super::pack_input(input, scratch, g);
                packed_group = g;
            }
            let x: &[f32; super::SCRATCH_LEN] = scratch;
            #row_loop
            #row_tail_block
        }
    };
    variant_module_shell(
        v,
        ModuleParts {
            doc,
            run_doc,
            units_doc,
            block_l,
            consts: quote!(),
            scratch: quote!(scratch),
            body,
            items: tiles,
        },
    )
}

/// `#[inline]` of a tile function, or `#[inline(never)]` to keep tiles out of line (for
/// `scripts/mca.py`).
fn inline_attr(outline: bool) -> TokenStream {
    if outline {
        quote!(#[inline(never)])
    } else {
        quote!(#[inline])
    }
}

/// What differs between the modules of the variant kinds.
struct ModuleParts {
    doc: String,
    run_doc: String,
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

/// The module of one variant: `run`, `run_units` and the tile functions.
fn variant_module_shell(v: &VariantPlan, m: ModuleParts) -> TokenStream {
    let module = ident(v.isa.as_str());
    let (tf, safety, uses) = (target_feature(v.isa), safety_doc(v.isa), arch_uses(v));
    let ModuleParts {
        doc,
        run_doc,
        units_doc,
        block_l,
        consts,
        scratch,
        body,
        items,
    } = m;
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

/// The module of one `gspc-dwc` variant: `run`, `run_units` (pack a block of 16 channels,
/// compute its output pixels row by row, transpose them back) and the tile functions.
///
/// The packed input has no padding: every tap over the zero padding is left out at
/// generation time (kernel rows by the range each run of output rows loops over, kernel
/// columns by the column tile's shape), so padding costs neither FMAs nor packing.
fn variant_module_dwc(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    let l = &p.layer;
    let [oh, ow] = p.output;
    let cb = DWC_BLOCK;
    let (xlen, olen) = (dwc::input_len(p), oh * ow * cb);
    let hw = l.input[0] * l.input[1];
    let (xlen_l, olen_l, block_l, pixels_l) = (lit(xlen), lit(olen), lit(olen), lit(oh * ow));
    let (hw_l, cb_l) = (lit(hw), lit(cb));
    // The AVX-512 variant transposes with AVX2 too: 8x8 transposes of ymm registers beat
    // 16x16 ones of zmm registers (docs/benchmarks/2026-11-27-zen5.md).
    let (pack, unpack) = match v.isa {
        Isa::Avx512 | Isa::Avx2 => (
            quote!(::gspc_runtime::x86::dwc_pack_input_avx2),
            quote!(::gspc_runtime::x86::dwc_unpack_output_avx2),
        ),
        Isa::Neon | Isa::Portable => (
            quote!(::gspc_runtime::dwc::pack_input),
            quote!(::gspc_runtime::dwc::unpack_output),
        ),
    };
    // One tile function per column shape; runs of tiles of one shape become loops.
    let col_tiles = dwc::col_tiles(l, v);
    let mut shapes: Vec<dwc::ColShape> = Vec::new();
    let mut tiles = Vec::new();
    // (shape index, first tile's ow0, first tile's input column, tiles in the run)
    let mut runs: Vec<(usize, usize, usize, usize)> = Vec::new();
    for t in &col_tiles {
        let k = match shapes.iter().position(|s| *s == t.shape) {
            Some(k) => k,
            None => {
                shapes.push(t.shape.clone());
                let name = format!("tile_{}", shapes.len() - 1);
                tiles.push(tile_fn_dwc(p, v, &name, &t.shape, outline));
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
    let mut rows = Vec::new();
    for (a, b, k0, k1) in dwc::row_runs(l) {
        let (k0, k1) = (lit(k0), lit(k1));
        let mut calls = Vec::new();
        for &(k, ow0, iw0, n) in &runs {
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
        let (a, b) = (lit(a), lit(b));
        rows.push(quote! {
            for oh in #a..#b {
                #(#calls)*
            }
        });
    }
    let doc = format!(
        " `{}`: {} lanes x {} vector(s) per pixel of 16 channels, {} full tile(s) of {} pixel(s) per row{}; {} tile shape(s), taps over the padding left out.",
        v.kernel,
        v.lanes,
        v.nvec,
        v.full_tiles,
        v.reg_n,
        if v.tail > 0 {
            format!(" and a tail tile of {}", v.tail)
        } else {
            String::new()
        },
        shapes.len()
    );
    let run_doc = format!(" Runs layer `{}` with the {} variant.", l.name, v.isa);
    let units_doc = format!(
        " Computes output blocks `first..first + blocks.len()` of layer `{}` with the {} variant; block `u` is channels `u * 16 .. u * 16 + 16`.",
        l.name, v.isa
    );
    let consts = quote! {
    /// Values of the packed input of one block of 16 channels, `[H * W][16]`.
    const XLEN: usize = #xlen_l;
    /// Values of the output pixels of one block, `[OH * OW][16]`.
    const OLEN: usize = #olen_l;
    /// The input plane as one row of pixels, without padding.
    const GEOMETRY: ::gspc_runtime::dwc::Geometry = ::gspc_runtime::dwc::Geometry {
        h: 1,
        w: #hw_l,
        ph: 0,
        pw: 0,
        hp: 1,
        wp: #hw_l,
    };
    };
    let body = quote! {
    let Some((xs, rest)) = scratch.split_first_chunk_mut::<XLEN>() else {
        return;
    };
    let Some(out) = rest.first_chunk_mut::<OLEN>() else {
        return;
    };
    for (i, block) in blocks.iter_mut().enumerate() {
        let cb = first + i;
        #pack(input, cb * #cb_l, &GEOMETRY, xs);
        let x: &[f32; XLEN] = xs;
        #(#rows)*
        #unpack(out, #pixels_l, block);
    }
    };
    variant_module_shell(
        v,
        ModuleParts {
            doc,
            run_doc,
            units_doc,
            block_l,
            consts,
            scratch: quote!(scratch),
            body,
            items: tiles,
        },
    )
}

/// One `gspc-dwc` tile function: the pixels of `shape`, 16 channels each. Kernel rows
/// `kh0..kh1` run in a loop (one input row window and one weight row each); within a row
/// each input pixel is loaded once and feeds every tap of the shape that reads it.
fn tile_fn_dwc(
    p: &LayerPlan,
    v: &VariantPlan,
    name: &str,
    shape: &dwc::ColShape,
    outline: bool,
) -> TokenStream {
    let l = &p.layer;
    let ops = Ops {
        isa: v.isa,
        lanes: v.lanes,
    };
    let tf = target_feature(v.isa);
    let name = format_ident!("{}", name);
    let [kh_n, kw_n] = l.kernel;
    let [_, ow] = p.output;
    let [_, w] = l.input;
    let cb = DWC_BLOCK;
    let r = shape.pixels;
    let taps = kh_n * kw_n;
    let xspan = dwc::input_span(shape);
    let (xlen, olen) = (dwc::input_len(p), p.output[0] * ow * cb);
    let row_at = linear(&[("oh", l.stride[0]), ("kh", l.dilation[0])], 0);
    let ph_l = lit(l.padding[0]);
    let x_at = linear(&[("ih", w * cb), ("iw0", cb)], 0);
    let w_at = linear(&[("cb", taps * cb), ("kh", kw_n * cb)], 0);
    let b_at = linear(&[("cb", cb)], p.bias_offset);
    let o_at = linear(&[("oh", ow * cb), ("ow0", cb)], 0);
    let (xspan_l, wspan_l, ospan_l, cb_l) = (lit(xspan), lit(kw_n * cb), lit(r * cb), lit(cb));
    let (xlen_l, olen_l, plen_l) = (lit(xlen), lit(olen), lit(p.packed_len));
    let acc = |j: usize, vv: usize| {
        let id = format_ident!("acc_p{}_v{}", j, vv);
        quote!(#id)
    };
    let zero = ops.zero();
    let mut init = Vec::new();
    for j in 0..r {
        // A pixel whose taps all fall on the padding keeps its zero (its output is the bias).
        let used = shape.taps.iter().any(|t| t.0 == j);
        for vv in 0..v.nvec {
            let a = acc(j, vv);
            init.push(if used {
                quote!(let mut #a = #zero;)
            } else {
                quote!(let #a = #zero;)
            });
        }
    }
    let (xw, wv, bw) = (quote!(xw), quote!(wv), quote!(bw));
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
    let kernel_rows = if shape.taps.is_empty() {
        // Pixels over the padding only: the bias.
        quote!(let _ = (x, iw0, kh0, kh1);)
    } else {
        quote! {
            for kh in kh0..kh1 {
                let Some(ih) = (#row_at).checked_sub(#ph_l) else {
                    return;
                };
                let Some(xw) = ::gspc_runtime::window::window::<#xspan_l, #xlen_l>(x, #x_at) else {
                    return;
                };
                let Some(wv) = ::gspc_runtime::window::window::<#wspan_l, #plen_l>(p, #w_at) else {
                    return;
                };
                #(#body)*
            }
        }
    };
    let n = lit(v.lanes);
    let mut epilogue = Vec::new();
    for j in 0..r {
        for vv in 0..v.nvec {
            let bias = ops.load(&bw, cb, vv * v.lanes);
            let fin = ops.finish(&acc(j, vv), bias, l.activation);
            let at = lit(j * cb + vv * v.lanes);
            epilogue.push(quote! {
                *::gspc_runtime::window::at_mut::<#n, #ospan_l, #at>(ow) = #fin;
            });
        }
    }
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
            let Some(bw) = ::gspc_runtime::window::window::<#cb_l, #plen_l>(p, #b_at) else {
                return;
            };
            let Some(ow) = ::gspc_runtime::window::window_mut::<#ospan_l, #olen_l>(out, #o_at) else {
                return;
            };
            #(#init)*
            #kernel_rows
            #(#epilogue)*
        }
    }
}

/// One `gspc-oc` tile function: `r` output columns x `oc_bn` output channels of one row.
fn tile_fn(p: &LayerPlan, v: &VariantPlan, name: &str, r: usize, outline: bool) -> TokenStream {
    let l = &p.layer;
    let ops = Ops {
        isa: v.isa,
        lanes: v.lanes,
    };
    let name = format_ident!("{}", name);
    let [kh_n, kw_n] = l.kernel;
    let [oh, ow] = p.output;
    let oc_bn = p.oc_bn;
    let wspan = kh_n * kw_n * oc_bn;
    let offsets: Vec<usize> = (0..r).collect();
    let xspan = packed_oc::input_span(p, &offsets, 1);
    let ospan = output_span(p, v, &offsets, 1);
    let ohw = oh * ow;
    let gpv = p.gpv;
    let xb = linear(
        &[
            ("oh", l.stride[0] * p.row_len * gpv),
            ("ow0", l.stride[1] * gpv),
        ],
        0,
    );

    let acc = |j: usize, vv: usize| {
        let id = format_ident!("acc_w{}_v{}", j, vv);
        quote!(#id)
    };
    let zero = ops.zero();
    let mut init = Vec::new();
    for j in 0..r {
        for vv in 0..v.nvec {
            let a = acc(j, vv);
            init.push(quote!(let mut #a = #zero;));
        }
    }

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

    let bw = quote!(bw);
    let mut epilogue = Vec::new();
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
            let fin = ops.finish(&a, bias, l.activation);
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

    let doc = format!(
        " Tile of {r} output column(s) x {oc_bn} output channel(s): accumulators `acc_w{{column}}_v{{vector}}`, {} x {} vector(s) of {} lane(s); per input channel a {kh_n}x{kw_n} window, unrolled.",
        r, v.nvec, v.lanes
    );
    tile_wrapper(
        p,
        v,
        outline,
        Tile {
            name,
            doc,
            xb,
            xspan,
            ospan,
            init,
            body,
            epilogue,
        },
    )
}

/// The parts in which the two strategies' tile functions differ.
struct Tile {
    name: proc_macro2::Ident,
    doc: String,
    /// First input value of the tile in the packed input plane of channel 0.
    xb: TokenStream,
    xspan: usize,
    ospan: usize,
    init: Vec<TokenStream>,
    body: Vec<TokenStream>,
    epilogue: Vec<TokenStream>,
}

/// A tile function: per input channel of the group, a checked window of the packed input
/// (`xw`) and of the packed weights (`wv`) around the unrolled `body`; then the bias
/// (`bw`) and output (`ow`) windows around the `epilogue`.
fn tile_wrapper(p: &LayerPlan, v: &VariantPlan, outline: bool, t: Tile) -> TokenStream {
    let l = &p.layer;
    let tf = target_feature(v.isa);
    let [oh, ow] = p.output;
    let (cpg, kpg, oc_bn) = (p.cpg(), p.kpg(), p.oc_bn);
    let plane = p.padded[0] * p.row_len * p.gpv;
    let wspan = l.kernel[0] * l.kernel[1] * oc_bn;
    // `ob`, the block within the group, only where a group has several.
    let ob = p.nocb() > 1;
    let ob_coeff = |c: usize| if ob { c } else { 0 };
    let wb = linear(
        &[("g", p.nocb() * cpg * wspan), ("ob", ob_coeff(cpg * wspan))],
        0,
    );
    // The loop over the group's input channels, only where it has several.
    let ci = |c: usize| if cpg > 1 { c } else { 0 };
    let x_at = linear(&[("xb", 1), ("ci", ci(plane))], 0);
    let w_at = linear(&[("wb", 1), ("ci", ci(wspan))], 0);
    // `g` is the group, or the block of gpv groups.
    let b_at = linear(
        &[("g", kpg * p.gpv), ("ob", ob_coeff(oc_bn))],
        p.bias_offset,
    );
    let ob_param = ob.then(|| quote!(ob: usize,));
    let o_at = linear(&[("oh", ow), ("ow0", 1)], 0);
    let (s_len, p_len, block_l) = (lit(p.scratch_len), lit(p.packed_len), lit(oc_bn * oh * ow));
    let (xspan_l, wspan_l, ospan_l, cpg_l, ocbn_l) =
        (lit(t.xspan), lit(wspan), lit(t.ospan), lit(cpg), lit(oc_bn));
    let Tile {
        name,
        doc,
        xb,
        init,
        body,
        epilogue,
        ..
    } = t;
    let inline = inline_attr(outline);
    let channel = quote! {
        let Some(xw) = ::gspc_runtime::window::window::<#xspan_l, #s_len>(x, #x_at) else {
            return;
        };
        let Some(wv) = ::gspc_runtime::window::window::<#wspan_l, #p_len>(p, #w_at) else {
            return;
        };
        #(#body)*
    };
    let channels = if cpg > 1 {
        quote! {
            for ci in 0..#cpg_l {
                #channel
            }
        }
    } else {
        channel
    };
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
            let Some(bw) = ::gspc_runtime::window::window::<#ocbn_l, #p_len>(p, #b_at) else {
                return;
            };
            let Some(ow) = ::gspc_runtime::window::window_mut::<#ospan_l, #block_l>(out, #o_at) else {
                return;
            };
            #(#epilogue)*
        }
    }
}

/// One `gspc-ow` tile function: `oc_bn` output channels of one group x vectors of output
/// columns starting at `offsets` (relative to `ow0`) of one row.
fn tile_fn_ow(
    p: &LayerPlan,
    v: &VariantPlan,
    name: &str,
    offsets: &[usize],
    rows: usize,
    outline: bool,
) -> TokenStream {
    let l = &p.layer;
    let ops = Ops {
        isa: v.isa,
        lanes: v.lanes,
    };
    let name = format_ident!("{}", name);
    let [kh_n, kw_n] = l.kernel;
    let rl = p.row_len;
    let [oh, ow] = p.output;
    let oc_bn = p.oc_bn;
    let xspan = packed_ow::input_span(p, v, offsets, rows);
    let ospan = output_span(p, v, offsets, rows);
    let ohw = oh * ow;
    let xb = linear(&[("oh", l.stride[0] * rl), ("ow0", 1)], 0);

    let acc = |c: usize, r: usize, i: usize| {
        let id = format_ident!("acc_c{}_r{}_v{}", c, r, i);
        quote!(#id)
    };
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
    let mut epilogue = Vec::new();
    let n = lit(v.lanes);
    let ospan_l = lit(ospan);
    for c in 0..oc_bn {
        let ci = lit(c);
        for r in 0..rows {
            for (i, off) in offsets.iter().enumerate() {
                let a = acc(c, r, i);
                let fin = ops.finish(&a, ops.splat(quote!(bw[#ci])), l.activation);
                let at = lit(c * ohw + r * ow + off);
                epilogue.push(quote! {
                    *::gspc_runtime::window::at_mut::<#n, #ospan_l, #at>(ow) = #fin;
                });
            }
        }
    }

    let doc = format!(
        " Tile of {oc_bn} output channel(s) x {rows} output row(s) x {} vector(s) of {} output columns: accumulators `acc_c{{channel}}_r{{row}}_v{{vector}}`; per input channel a {kh_n}x{kw_n} window, unrolled: each input row's vectors loaded once for every output row they reach, one FMA with a broadcast weight per channel.",
        offsets.len(),
        v.lanes
    );
    tile_wrapper(
        p,
        v,
        outline,
        Tile {
            name,
            doc,
            xb,
            xspan,
            ospan,
            init,
            body,
            epilogue,
        },
    )
}

/// The module of a direct `gspc-ow` variant (AVX-512 or AVX2, one channel per group): `run`,
/// `run_units` (per channel, the row tiles in order) and one tile function per row-tile
/// shape. The input is read in place: no packing, no scratch.
fn variant_module_direct(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    let l = &p.layer;
    let [h, w] = l.input;
    let [oh, ow] = p.output;
    let taps = l.kernel[0] * l.kernel[1];
    let (plane_l, block_l, taps_l) = (lit(h * w), lit(oh * ow), lit(taps));
    let bias_l = lit(p.bias_offset);
    let w_at = linear(&[("g", taps)], 0);
    let row_tiles = if v.kind.is_flat() {
        Vec::new()
    } else {
        direct::row_tiles(l, v.rows)
    };
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
    let tiles: Vec<TokenStream> = if v.kind.is_flat() {
        calls = vec![quote!(tile_flat(x, w, b, out);)];
        vec![tile_fn_flat(p, v, outline)]
    } else {
        shapes
            .iter()
            .enumerate()
            .map(|(k, s)| tile_fn_direct(p, v, k, s, outline))
            .collect()
    };
    let doc = format!(
        " `{}`: direct (input read in place), {} lanes x up to {} vector(s) x {} output row(s) per tile.",
        v.kernel, v.lanes, v.nvec, v.rows
    );
    let run_doc = format!(" Runs layer `{}` with the {} variant.", l.name, v.isa);
    let units_doc = format!(
        " Computes output channels `first..first + blocks.len()` of layer `{}` with the {} variant, straight from the input (the scratch is not used).",
        l.name, v.isa
    );
    let body = quote! {
    for (i, out) in blocks.iter_mut().enumerate() {
        let g = first + i;
        let Some(x) = ::gspc_runtime::window::window::<#plane_l, { super::INPUT_LEN }>(input, g * #plane_l) else {
            return;
        };
        let Some(w) = ::gspc_runtime::window::window::<#taps_l, { super::PACKED_LEN }>(packed, #w_at) else {
            return;
        };
        let Some(&b) = packed.get(#bias_l + g) else {
            return;
        };
        #(#calls)*
    }
    };
    variant_module_shell(
        v,
        ModuleParts {
            doc,
            run_doc,
            units_doc,
            block_l,
            consts: quote!(),
            scratch: quote!(_scratch),
            body,
            items: tiles,
        },
    )
}

/// The vectors computed from one input row in a direct tile, each once (`let`), by what
/// they are: loads by column, shifts, even/odd selections.
struct RowValues {
    rel: usize,
    row: TokenStream,
    w: usize,
    lanes: usize,
    memo: HashMap<String, proc_macro2::Ident>,
}

impl RowValues {
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
        let f = format_ident!("load{}_clip", self.lanes);
        let expr = quote!(::gspc_runtime::x86::#f::<#w_l, #at_arg>(#row));
        self.value(format!("l{at}"), expr, body)
    }
}

/// `let` of each accumulator at the bias; `mut` where an FMA updates it.
fn accumulator_inits(
    accs: impl Iterator<Item = proc_macro2::Ident>,
    fed: &std::collections::HashSet<proc_macro2::Ident>,
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

/// The x86 vector operations of the direct kernel, for its lane count (AVX-512: 16, AVX2: 8).
struct Dx {
    lanes: usize,
}

impl Dx {
    fn f(&self, op: &str) -> TokenStream {
        let prefix = if self.lanes == 16 { "_mm512" } else { "_mm256" };
        let id = format_ident!("{}_{}", prefix, op);
        quote!(#id)
    }

    /// A `gspc_runtime::x86` helper for this width (`name` + lanes + `suffix`).
    fn helper(&self, name: &str, suffix: &str) -> TokenStream {
        let id = format_ident!("{}{}{}", name, self.lanes, suffix);
        quote!(::gspc_runtime::x86::#id)
    }

    fn set1(&self, x: TokenStream) -> TokenStream {
        let f = self.f("set1_ps");
        quote!(#f(#x))
    }

    /// `acc += tap * w`.
    fn fma(
        &self,
        tap: &TokenStream,
        w: &proc_macro2::Ident,
        acc: &proc_macro2::Ident,
    ) -> TokenStream {
        let f = self.f("fmadd_ps");
        quote!(#acc = #f(#tap, #w, #acc);)
    }

    /// `acc += tap * w` in the lanes of `mask` only.
    fn fma_masked(
        &self,
        tap: &TokenStream,
        w: &proc_macro2::Ident,
        acc: &proc_macro2::Ident,
        mask: u32,
    ) -> TokenStream {
        if self.lanes == 16 {
            let m = proc_macro2::Literal::u16_unsuffixed(mask as u16);
            return quote!(#acc = _mm512_mask3_fmadd_ps(#tap, #w, #acc, #m););
        }
        // AVX2 has no masked FMA: the tap's other lanes are zeroed first.
        let lanes: Vec<TokenStream> = (0..8)
            .map(|l| {
                let v =
                    proc_macro2::Literal::i32_unsuffixed(if mask >> l & 1 == 1 { -1 } else { 0 });
                quote!(#v)
            })
            .collect();
        quote!(#acc = _mm256_fmadd_ps(_mm256_and_ps(#tap, _mm256_castsi256_ps(_mm256_setr_epi32(#(#lanes),*))), #w, #acc);)
    }

    /// `act(v)`.
    fn activation(&self, v: TokenStream, act: Activation) -> TokenStream {
        let (max, min, zero) = (self.f("max_ps"), self.f("min_ps"), self.f("setzero_ps"));
        let six = self.set1(quote!(6.0));
        match act {
            Activation::None => v,
            Activation::Relu => quote!(#max(#v, #zero())),
            Activation::Relu6 => quote!(#min(#max(#v, #zero()), #six)),
        }
    }
}

/// One tile function of the direct kernel: the output rows of `shape` (from `oh0`), every
/// column tile of the row in turn, each with its own accumulators.
fn tile_fn_direct(
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
    let (dw, pw, sw) = (l.dilation[1], l.padding[1] as isize, l.stride[1]);
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
    let dx = Dx { lanes: v.lanes };
    let lanes = v.lanes as isize;
    let mut pre = Vec::new();
    // The weights this tile uses, broadcast once.
    let mut used: Vec<usize> = shape
        .taps
        .iter()
        .flat_map(|&(_, kh, _)| (0..kw_n).map(move |kw| kh * kw_n + kw))
        .collect();
    used.sort_unstable();
    used.dedup();
    for t in &used {
        let (id, t_l) = (format_ident!("w{}", t), lit(*t));
        let set = dx.set1(quote!(w[#t_l]));
        pre.push(quote!(let #id = #set;));
    }
    let mut rels: Vec<usize> = shape.taps.iter().map(|t| t.2).collect();
    rels.sort_unstable();
    rels.dedup();
    for &rel in &rels {
        let (id, at) = (format_ident!("row{}", rel), lit(rel * w));
        pre.push(quote!(let #id = ::gspc_runtime::window::at::<#w_l, #spanw_l, #at>(xw);));
    }
    let mut col_blocks = Vec::new();
    for cols in direct::col_tiles(v) {
        let acc = |r: usize, j: usize| format_ident!("acc_r{}_v{}", r, j);
        let mut body = Vec::new();
        // Accumulators that get an FMA (those of rows over the padding only do not).
        let mut fed = std::collections::HashSet::new();
        for &rel in &rels {
            let row = format_ident!("row{}", rel);
            let uses: Vec<(usize, usize)> = shape
                .taps
                .iter()
                .filter(|t| t.2 == rel)
                .map(|t| (t.0, t.1))
                .collect();
            let mut vals = RowValues {
                rel,
                row: quote!(#row),
                w,
                lanes: v.lanes,
                memo: HashMap::new(),
            };
            for (j, &c) in cols.iter().enumerate() {
                for kw in 0..kw_n {
                    let o = (kw * dw) as isize;
                    let tap = if sw == 1 {
                        let at0 = c as isize - pw;
                        // As in the flat kernel: taps 0 and 1 loaded, the others shifted.
                        // AVX2 has no cross-lane shift: every tap is a load there.
                        if o <= 1 || lanes == 8 {
                            vals.load(at0 + o, &mut body)
                        } else if o == lanes {
                            vals.load(at0 + lanes, &mut body)
                        } else {
                            let lo = vals.load(at0, &mut body);
                            let hi = vals.load(at0 + lanes, &mut body);
                            let o_l = proc_macro2::Literal::i32_unsuffixed(o as i32);
                            vals.value(
                                format!("s{at0}_{o}"),
                                quote!(::gspc_runtime::x86::shift16::<#o_l>(#lo, #hi)),
                                &mut body,
                            )
                        }
                    } else {
                        let base = 2 * c as isize - pw + 2 * (o / 2);
                        if o == 2
                            && lanes == 16
                            && ow >= 8
                            && !vals.memo.contains_key(&format!("e{base}"))
                        {
                            // The even lanes from two columns on: the even lanes of the
                            // pair at `base - 2` shifted by one, the last lane the first
                            // of a load (shared with the next vector's pair). Faster from
                            // 8 output columns on, slower on narrower rows
                            // (docs/benchmarks/2026-11-28-zen5.md).
                            let lo = vals.load(base - 2, &mut body);
                            let hi = vals.load(base + 14, &mut body);
                            let evens = vals.value(
                                format!("e{}", base - 2),
                                quote!(::gspc_runtime::x86::evens16(#lo, #hi)),
                                &mut body,
                            );
                            let next = vals.load(base + 30, &mut body);
                            let tap = vals.value(
                                format!("e{base}"),
                                quote!(::gspc_runtime::x86::shift16::<1>(#evens, #next)),
                                &mut body,
                            );
                            for &(r, kh) in &uses {
                                let a = acc(r, j);
                                fed.insert(a.clone());
                                let wt = format_ident!("w{}", kh * kw_n + kw);
                                body.push(dx.fma(&tap, &wt, &a));
                            }
                            continue;
                        }
                        let lo = vals.load(base, &mut body);
                        let hi = vals.load(base + lanes, &mut body);
                        let (key, f) = if o % 2 == 0 {
                            (format!("e{base}"), dx.helper("evens", ""))
                        } else {
                            (format!("o{base}"), dx.helper("odds", ""))
                        };
                        vals.value(key, quote!(#f(#lo, #hi)), &mut body)
                    };
                    for &(r, kh) in &uses {
                        let a = acc(r, j);
                        fed.insert(a.clone());
                        let wt = format_ident!("w{}", kh * kw_n + kw);
                        body.push(dx.fma(&tap, &wt, &a));
                    }
                }
            }
        }
        for r in 0..shape.rows {
            for (j, &c) in cols.iter().enumerate() {
                let a = acc(r, j);
                let at = lit(r * ow + c);
                let val = dx.activation(quote!(#a), l.activation);
                if c + v.lanes > ow {
                    // A row narrower than the vector: its first lanes only.
                    let n = lit(ow - c);
                    let store = dx.helper("store", "_part");
                    body.push(quote! {
                        #store::<#rows_ow_l, #at, #n>(ov, #val);
                    });
                } else {
                    let (store, n) = (dx.helper("store", ""), lit(v.lanes));
                    body.push(quote! {
                        *::gspc_runtime::window::at_mut::<#n, #rows_ow_l, #at>(ov) = #store(#val);
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
        col_blocks.push(quote!({ #(#init)* #(#body)* }));
    }
    let inline = inline_attr(outline);
    let doc = format!(
        " Direct tile: {} output row(s) from `oh0`, reading {} input row(s) from `ih0` in place; per column tile, accumulators `acc_r{{row}}_v{{vector}}` start at the bias; each input row's vectors are loaded once (masked at the row's ends: the zero padding), the column taps made by in-register shifts (stride 1) or even/odd selection (stride 2), one FMA per tap, output row and vector.",
        shape.rows, shape.span
    );
    let bias_set = dx.set1(quote!(b));
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
            let Some(xw) = ::gspc_runtime::window::window::<#spanw_l, #plane_l>(x, ih0 * #w_l) else {
                return;
            };
            let Some(ov) = ::gspc_runtime::window::window_mut::<#rows_ow_l, #block_l>(out, oh0 * #ow_l) else {
                return;
            };
            let bias = #bias_set;
            #(#pre)*
            #(#col_blocks)*
        }
    }
}

/// The flat direct kernel's one tile function: the whole plane as one row of `H * W`
/// values, in column tiles of up to `nvec` vectors; a tap's lanes whose column falls off
/// the row are left out of its FMA by a constant mask.
fn tile_fn_flat(p: &LayerPlan, v: &VariantPlan, outline: bool) -> TokenStream {
    let l = &p.layer;
    let tf = target_feature(v.isa);
    let [h, w] = l.input;
    let hw = h * w;
    let [kh_n, kw_n] = l.kernel;
    let (dh, dw) = (l.dilation[0] as isize, l.dilation[1] as isize);
    let (ph, pw) = (l.padding[0] as isize, l.padding[1] as isize);
    let (hw_l, taps_l) = (lit(hw), lit(kh_n * kw_n));
    let dx = Dx { lanes: v.lanes };
    let lanes = v.lanes as isize;
    let bias_set = dx.set1(quote!(b));
    let mut pre = vec![quote!(let bias = #bias_set;)];
    for t in 0..kh_n * kw_n {
        let (id, t_l) = (format_ident!("w{}", t), lit(t));
        let set = dx.set1(quote!(w[#t_l]));
        pre.push(quote!(let #id = #set;));
    }
    let mut col_blocks = Vec::new();
    for cols in direct::col_tiles(v) {
        let acc = |j: usize| format_ident!("acc_v{}", j);
        let mut body = Vec::new();
        let mut fed = std::collections::HashSet::new();
        let mut vals = RowValues {
            rel: 0,
            row: quote!(x),
            w: hw,
            lanes: v.lanes,
            memo: HashMap::new(),
        };
        for kh in 0..kh_n {
            let row_off = (kh as isize * dh - ph) * w as isize;
            for (j, &f0) in cols.iter().enumerate() {
                let at0 = f0 as isize + row_off - pw;
                for kw in 0..kw_n {
                    let o = kw as isize * dw;
                    // Taps 0 and 1 are loads, the others shifts of two loads: the best
                    // balance of load and shuffle ports (docs/benchmarks/2026-11-28-zen5.md).
                    let tap = if o <= 1 || lanes == 8 {
                        vals.load(at0 + o, &mut body)
                    } else if o == lanes {
                        vals.load(at0 + lanes, &mut body)
                    } else {
                        let lo = vals.load(at0, &mut body);
                        let hi = vals.load(at0 + lanes, &mut body);
                        let o_l = proc_macro2::Literal::i32_unsuffixed(o as i32);
                        vals.value(
                            format!("s{at0}_{o}"),
                            quote!(::gspc_runtime::x86::shift16::<#o_l>(#lo, #hi)),
                            &mut body,
                        )
                    };
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
                    body.push(match mask {
                        0 => quote!(),
                        m if m == full => dx.fma(&tap, &wt, &a),
                        m => dx.fma_masked(&tap, &wt, &a, m),
                    });
                }
            }
        }
        for (j, &f0) in cols.iter().enumerate() {
            let a = acc(j);
            let at = lit(f0);
            let val = dx.activation(quote!(#a), l.activation);
            let (store, n) = (dx.helper("store", ""), lit(v.lanes));
            body.push(quote! {
                *::gspc_runtime::window::at_mut::<#n, #hw_l, #at>(out) = #store(#val);
            });
        }
        let init = accumulator_inits((0..cols.len()).map(acc), &fed);
        col_blocks.push(quote!({ #(#init)* #(#body)* }));
    }
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
