//! The layer module's `pack_input`: one group's (or block of groups') NCHW input copied into
//! the scratch as the zero-padded planes the kernels of `gspc-oc` and `gspc-ow` read.

use super::lit;
use crate::plan::{Kind, LayerPlan};
use crate::spec::Strategy;
use proc_macro2::TokenStream;
use quote::quote;

/// The layer's `pack_input`: none for `gspc-dwc` (its variants pack the input through the
/// runtime), the grouped form with `gpv` groups side by side, else the planes of one group.
pub(super) fn pack_input(p: &LayerPlan) -> TokenStream {
    // No variant packs: every one reads the input in place.
    if p.variants.iter().all(|v| v.kind == Kind::InPlaceOc) {
        return quote!();
    }
    match p.strategy {
        Strategy::GspcDwc => quote!(),
        _ if p.gpv > 1 => pack_input_grouped_fn(p),
        _ => pack_input_fn(p),
    }
}

/// `pack_input` of a `gspc-oc` layer with `gpv` groups side by side: block `g` holds groups
/// `g * GPV ..`, packed as `[CPG][H + 2 PH][W + 2 PW][GPV]` (each pixel's values of the
/// block's groups next to each other, for one broadcast of them), zero padded.
fn pack_input_grouped_fn(p: &LayerPlan) -> TokenStream {
    let l = &p.layer;
    let [h, w] = l.input;
    let [ph, pw] = l.padding;
    let u = lit;
    let (c_l, h_l, w_l, hp_l, wp_l, gpv_l, ph_l, pw_l) = (
        u(p.cpg()),
        u(h),
        u(w),
        u(p.padded[0]),
        u(p.row_len),
        u(p.gpv),
        u(ph),
        u(pw),
    );
    quote! {
        /// Copies the input channels of block `g` (groups `g * GPV ..`) into the scratch as
        /// zero-padded `[IN_CHANNELS / GROUPS][H + 2 PH][W + 2 PW][GPV]`, groups interleaved.
        /// (Not forced inline as the plain packing is: inlined into the AVX-512 variant,
        /// a `gspc-oc` layer of ResNeXt-50 took 1.9x the time, on Zen 5.)
        fn pack_input(input: &[f32; INPUT_LEN], scratch: &mut [f32; SCRATCH_LEN], g: usize) {
            const C: usize = #c_l;
            const H: usize = #h_l;
            const W: usize = #w_l;
            const HP: usize = #hp_l;
            const WP: usize = #wp_l;
            const GPV: usize = #gpv_l;
            const PH: usize = #ph_l;
            const PW: usize = #pw_l;
            scratch.fill(0.0);
            for gi in 0..GPV {
                for c in 0..C {
                    for h in 0..H {
                        let Some(src) = ::gspc_runtime::window::window::<_, W, INPUT_LEN>(input, (((g * GPV + gi) * C + c) * H + h) * W) else {
                            return;
                        };
                        let Some(dst) = ::gspc_runtime::window::window_mut::<_, { W * GPV }, SCRATCH_LEN>(scratch, ((c * HP + PH + h) * WP + PW) * GPV) else {
                            return;
                        };
                        for (x, v) in src.iter().enumerate() {
                            dst[x * GPV + gi] = *v;
                        }
                    }
                }
            }
        }
    }
}

/// `pack_input`: NCHW input to zero-padded planes in the scratch; with column phases
/// (`gspc-ow`, stride > 1) each row holds its padded columns `phase, phase + S, ...` for
/// every phase in turn, so that strided reads become contiguous.
fn pack_input_fn(p: &LayerPlan) -> TokenStream {
    let l = &p.layer;
    let [h, w] = l.input;
    let ph = l.padding[0];
    let rl = p.row_len;
    let u = lit;
    let (c_l, h_l, w_l, hp_l, rl_l) = (u(p.cpg()), u(h), u(w), u(p.padded[0]), u(rl));
    let plane = Plane { one: p.cpg() == 1 };
    let pad_rows = pad_rows(p, plane);
    let row = row_copy(p);
    let dst_at = match (plane.one && ph == 0, plane.at(ph * rl)) {
        (true, _) => quote!(h * ROW),
        (false, first_row) => quote!(#first_row + h * ROW),
    };
    let src_at = if plane.one {
        quote!((g * H + h) * W)
    } else {
        quote!(((g * C + c) * H + h) * W)
    };
    let rows = quote! {
        #pad_rows
        for h in 0..H {
            let Some(src) = ::gspc_runtime::window::window::<_, W, INPUT_LEN>(input, #src_at) else {
                return;
            };
            let Some(dst) = ::gspc_runtime::window::window_mut::<_, ROW, SCRATCH_LEN>(scratch, #dst_at) else {
                return;
            };
            #row
        }
    };
    let channels = if plane.one {
        rows
    } else {
        quote! {
            const C: usize = #c_l;
            const HP: usize = #hp_l;
            for c in 0..C {
                #rows
            }
        }
    };
    quote! {
        /// Copies the input channels of group `g` into the scratch as zero-padded planes
        /// `[IN_CHANNELS / GROUPS][H + 2 PH][ROW]`. Always inlined, so each ISA variant
        /// compiles it with its own instruction set (out of line it is baseline x86-64 code:
        /// 1.45x the time of a stride-2 `gspc-ow` layer on Zen 5).
        #[inline(always)]
        fn pack_input(input: &[f32; INPUT_LEN], scratch: &mut [f32; SCRATCH_LEN], g: usize) {
            const H: usize = #h_l;
            const W: usize = #w_l;
            const ROW: usize = #rl_l;
            #channels
        }
    }
}

/// The plane a scratch offset is in: with one input channel per group (`one`) there is no
/// channel loop and only plane 0; otherwise plane `c` of the loop over `C` channels.
#[derive(Clone, Copy)]
struct Plane {
    one: bool,
}

impl Plane {
    /// The scratch offset `offset` into the current plane (`HP * ROW` values each).
    fn at(self, offset: usize) -> TokenStream {
        match (self.one, offset) {
            (true, _) => {
                let o = lit(offset);
                quote!(#o)
            }
            (false, 0) => quote!(c * (HP * ROW)),
            (false, _) => {
                let o = lit(offset);
                quote!(c * (HP * ROW) + #o)
            }
        }
    }
}

/// Zeroes the plane's `PH` padding rows above and below the input rows (nothing without
/// vertical padding).
fn pad_rows(p: &LayerPlan, plane: Plane) -> TokenStream {
    let [ph, h] = [p.layer.padding[0], p.layer.input[0]];
    if ph == 0 {
        return quote!();
    }
    let rl = p.row_len;
    let n = lit(ph * rl);
    let (top_at, bottom_at) = (plane.at(0), plane.at((ph + h) * rl));
    quote! {
        let Some(top) = ::gspc_runtime::window::window_mut::<_, #n, SCRATCH_LEN>(scratch, #top_at) else {
            return;
        };
        *top = [0.0; #n];
        let Some(bottom) = ::gspc_runtime::window::window_mut::<_, #n, SCRATCH_LEN>(scratch, #bottom_at) else {
            return;
        };
        *bottom = [0.0; #n];
    }
}

/// Copies one input row `src` into its scratch row `dst` (`ROW` values), zeroing the
/// horizontal padding: split into two column phases at stride 2, into `S` phases at a
/// larger stride, else copied between the padding columns.
fn row_copy(p: &LayerPlan) -> TokenStream {
    let (w, pw) = (p.layer.input[1], p.layer.padding[1]);
    if p.phases == 2 {
        row_copy_stride2(p)
    } else if p.phases > 1 {
        row_copy_phases(p)
    } else if pw > 0 {
        let (pw_l, end) = (lit(pw), lit(pw + w));
        quote! {
            dst[..#pw_l].fill(0.0);
            dst[#pw_l..#end].copy_from_slice(src);
            dst[#end..].fill(0.0);
        }
    } else {
        quote!(*dst = *src;)
    }
}

/// [`row_copy`] at stride 2: the row's first half is phase 0 (even padded columns), the
/// second half phase 1. Input column w is padded column w + PW, so the even input columns go
/// to phase PW % 2 from index PW / 2 and the odd ones to the other from (PW + 1) / 2.
fn row_copy_stride2(p: &LayerPlan) -> TokenStream {
    let (w, pw) = (p.layer.input[1], p.layer.padding[1]);
    let u = lit;
    let pl = p.phase_len();
    let (ne, no) = (w.div_ceil(2), w / 2);
    let (e0, o0) = (pw / 2, pw.div_ceil(2));
    let (e_a, e_b, o_a, o_b) = (u(e0), u(e0 + ne), u(o0), u(o0 + no));
    let (even_half, odd_half) = if pw % 2 == 0 {
        (quote!(lo), quote!(hi))
    } else {
        (quote!(hi), quote!(lo))
    };
    let split = u(pl);
    // Zero only the padding of each half (the columns the split does not write).
    let mut zeros = Vec::new();
    for (half, a, b) in [(&even_half, e0, e0 + ne), (&odd_half, o0, o0 + no)] {
        if a > 0 {
            let a = u(a);
            zeros.push(quote!(#half[..#a].fill(0.0);));
        }
        if b < pl {
            let b = u(b);
            zeros.push(quote!(#half[#b..].fill(0.0);));
        }
    }
    // Rows of 32 columns or more: the runtime's SIMD deinterleave; shorter ones: a
    // loop the compiler sees whole, faster below 32 columns than either the
    // deinterleave or masked AVX-512 loads and stores (docs/benchmarks/2026-11-27-zen5.md).
    let copy = if w >= 32 {
        quote! {
            ::gspc_runtime::pack::split2(src, &mut #even_half[#e_a..#e_b], &mut #odd_half[#o_a..#o_b]);
        }
    } else {
        let pairs = u(2 * no);
        let last = if w % 2 == 1 {
            let at = u(w - 1);
            quote!(#even_half[#e_b - 1] = src[#at];)
        } else {
            quote!()
        };
        quote! {
            for (pair, (e, o)) in src[..#pairs]
                .chunks_exact(2)
                .zip(#even_half[#e_a..#e_b].iter_mut().zip(#odd_half[#o_a..#o_b].iter_mut()))
            {
                *e = pair[0];
                *o = pair[1];
            }
            #last
        }
    };
    quote! {
        let (lo, hi) = dst.split_at_mut(#split);
        #(#zeros)*
        #copy
    }
}

/// [`row_copy`] at a stride `S` above 2: phase `ph` holds padded columns ph, ph + S, ...;
/// zero the row, then copy each phase's input columns with literal bounds.
fn row_copy_phases(p: &LayerPlan) -> TokenStream {
    let (w, pw) = (p.layer.input[1], p.layer.padding[1]);
    let u = lit;
    let (st, pl) = (p.phases, p.phase_len());
    let mut copies = Vec::new();
    for phase in 0..st {
        // Padded column c = i * S + phase is input column c - PW when in range.
        let first = (0..pl).find(|i| i * st + phase >= pw);
        let Some(i0) = first else { continue };
        let i1 = (0..pl)
            .rev()
            .find(|i| i * st + phase < pw + w)
            .map_or(i0, |i| i + 1);
        if i1 <= i0 {
            continue;
        }
        let (d0, d1) = (u(phase * pl + i0), u(phase * pl + i1));
        let s0 = u(i0 * st + phase - pw);
        let step = u(st);
        copies.push(quote! {
            for (d, s) in dst[#d0..#d1].iter_mut().zip(src[#s0..].iter().step_by(#step)) {
                *d = *s;
            }
        });
    }
    quote! {
        *dst = [0.0; ROW];
        #(#copies)*
    }
}
