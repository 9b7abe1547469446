//! The one ISA abstraction of emission: [`Ops`], the vector operations of an (ISA, lane
//! count) as tokens, for every kernel kind (portable arrays, NEON, AVX2 and AVX-512, and
//! the scalar fallback of a SIMD ISA with one lane).

use crate::emit::{activation_path, lit};
use crate::plan::VariantPlan;
use gspc_runtime::{Activation, Isa};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The vector operations of one (ISA, lane count), as tokens.
pub(super) struct Ops {
    isa: Isa,
    lanes: usize,
}

impl Ops {
    /// The operations of a variant's ISA and lane count.
    pub(super) fn of(v: &VariantPlan) -> Ops {
        Ops {
            isa: v.isa,
            lanes: v.lanes,
        }
    }

    /// A SIMD ISA at one lane: plain `f32` arithmetic.
    pub(super) fn is_scalar(&self) -> bool {
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

    /// The intrinsic `op` (the x86 name without its width prefix; NEON's as is).
    fn intrinsic(&self, op: &str) -> TokenStream {
        let name = match self.isa {
            Isa::Neon => format_ident!("{}", op),
            _ => format_ident!("{}_{}", self.x86(), op),
        };
        quote!(#name)
    }

    /// A vector of zeros.
    pub(super) fn zero(&self) -> TokenStream {
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

    /// The `gspc_runtime` helper `what` for this width (`what` + lanes).
    pub(super) fn helper(&self, what: &str) -> TokenStream {
        self.helper_with(what, "")
    }

    /// The `gspc_runtime` helper `what` + lanes + `suffix` of this ISA's module.
    pub(super) fn helper_with(&self, what: &str, suffix: &str) -> TokenStream {
        let module = match self.isa {
            Isa::Neon => quote!(aarch64),
            _ => quote!(x86),
        };
        let f = format_ident!("{}{}{}", what, self.lanes, suffix);
        quote!(::gspc_runtime::#module::#f)
    }

    /// A vector of `lanes` values at constant offset `at` of the array `src` (length `len`).
    pub(super) fn load(&self, src: &TokenStream, len: usize, at: usize) -> TokenStream {
        let (n, len_l, at_l) = (lit(self.lanes), lit(len), lit(at));
        if self.isa == Isa::Portable {
            return quote!(::gspc_runtime::window::at::<_, #n, #len_l, #at_l>(#src));
        }
        if self.is_scalar() {
            return quote!(#src[#at_l]);
        }
        let load = self.helper("load");
        quote!(#load(::gspc_runtime::window::at::<_, #n, #len_l, #at_l>(#src)))
    }

    /// `acc += x * w` (fused on SIMD ISAs), `x` one value broadcast (`gspc-oc`).
    pub(super) fn fma(&self, acc: &TokenStream, x: TokenStream, w: &TokenStream) -> TokenStream {
        if self.isa == Isa::Portable {
            return quote!(::gspc_runtime::fma_lanes(&mut #acc, #x, #w););
        }
        if self.is_scalar() {
            return quote!(#acc += #x * #w;);
        }
        match self.isa {
            Isa::Neon => quote!(#acc = vfmaq_n_f32(#acc, #w, #x);),
            _ => self.fma_vv(acc, &self.splat(x), w),
        }
    }

    /// `acc += x * w` with `x` a vector of columns and `w` one weight (`gspc-ow`).
    pub(super) fn fma_columns(
        &self,
        acc: &TokenStream,
        x: &TokenStream,
        w: TokenStream,
    ) -> TokenStream {
        match self.isa {
            Isa::Portable => quote!(::gspc_runtime::fma_lanes(&mut #acc, #w, #x);),
            Isa::Neon => quote!(#acc = vfmaq_n_f32(#acc, #x, #w);),
            _ => self.fma_vv(acc, x, &self.splat(w)),
        }
    }

    /// The `gpv` values at `at` of `src` (length `len`), repeated over the lanes: the input
    /// of `gpv` groups side by side (`gspc-oc` with several groups per vector).
    pub(super) fn group_input(
        &self,
        src: &TokenStream,
        len: usize,
        at: usize,
        gpv: usize,
    ) -> TokenStream {
        let (g, len_l, at_l) = (lit(gpv), lit(len), lit(at));
        let window = quote!(::gspc_runtime::window::at::<_, #g, #len_l, #at_l>(#src));
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
    pub(super) fn fma_grouped(
        &self,
        acc: &TokenStream,
        x: &TokenStream,
        w: &TokenStream,
    ) -> TokenStream {
        match self.isa {
            Isa::Portable | Isa::Neon => {
                quote!(::gspc_runtime::fma_lanes_grouped(&mut #acc, #x, #w);)
            }
            _ => self.fma_vv(acc, x, w),
        }
    }

    /// `acc += x * w`, both vectors (`gspc-dwc`, the direct kernel).
    pub(super) fn fma_vv(
        &self,
        acc: &TokenStream,
        x: &TokenStream,
        w: &TokenStream,
    ) -> TokenStream {
        match self.isa {
            Isa::Portable => quote!(::gspc_runtime::fma_vec_lanes(&mut #acc, #x, #w);),
            Isa::Neon => quote!(#acc = vfmaq_f32(#acc, #x, #w);),
            _ => {
                let fmadd = self.intrinsic("fmadd_ps");
                quote!(#acc = #fmadd(#x, #w, #acc);)
            }
        }
    }

    /// `acc += x * w`, both vectors, in the lanes of `mask` only (x86, the flat direct
    /// kernel): AVX-512's masked FMA; AVX2 has none, so `x`'s other lanes are zeroed first.
    pub(super) fn fma_masked(
        &self,
        acc: &TokenStream,
        x: &TokenStream,
        w: &TokenStream,
        mask: u32,
    ) -> TokenStream {
        if self.lanes == 16 {
            let m = proc_macro2::Literal::u16_unsuffixed(mask as u16);
            return quote!(#acc = _mm512_mask3_fmadd_ps(#x, #w, #acc, #m););
        }
        let lanes: Vec<TokenStream> = (0..8)
            .map(|l| {
                let v =
                    proc_macro2::Literal::i32_unsuffixed(if mask >> l & 1 == 1 { -1 } else { 0 });
                quote!(#v)
            })
            .collect();
        quote!(#acc = _mm256_fmadd_ps(_mm256_and_ps(#x, _mm256_castsi256_ps(_mm256_setr_epi32(#(#lanes),*))), #w, #acc);)
    }

    /// The same value in every lane (`gspc-ow`'s bias, the direct kernel's weights).
    pub(super) fn splat(&self, b: TokenStream) -> TokenStream {
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

    /// `add`, `max`, `min` of two vectors and `set1` of a SIMD ISA.
    fn arithmetic(&self) -> [TokenStream; 4] {
        match self.isa {
            Isa::Neon => [
                quote!(vaddq_f32),
                quote!(vmaxq_f32),
                quote!(vminq_f32),
                quote!(vdupq_n_f32),
            ],
            _ => [
                self.intrinsic("add_ps"),
                self.intrinsic("max_ps"),
                self.intrinsic("min_ps"),
                self.intrinsic("set1_ps"),
            ],
        }
    }

    /// `act(v)` of a SIMD vector, with `zero` as the vector of zeros.
    fn clamp(&self, v: TokenStream, act: Activation, zero: TokenStream) -> TokenStream {
        let [_, max, min, set1] = self.arithmetic();
        match act {
            Activation::None => v,
            Activation::Relu => quote!(#max(#v, #zero)),
            Activation::Relu6 => quote!(#min(#max(#v, #zero), #set1(6.0))),
        }
    }

    /// `act(v)` of a SIMD vector, in registers (the direct kernel).
    pub(super) fn activation(&self, v: TokenStream, act: Activation) -> TokenStream {
        self.clamp(v, act, self.zero())
    }

    /// `act(acc + bias)` as an array of `lanes` values (a single f32 when scalar).
    pub(super) fn finish(
        &self,
        acc: &TokenStream,
        bias: TokenStream,
        act: Activation,
    ) -> TokenStream {
        let act_path = activation_path(act);
        if self.isa == Isa::Portable {
            return quote!(::gspc_runtime::finish_lanes(#acc, #bias, #act_path));
        }
        if self.is_scalar() {
            return quote!(#act_path.apply(#acc + #bias));
        }
        let v = self.finish_vector(acc, bias, act);
        let store = self.helper("store");
        quote!(#store(#v))
    }

    /// `act(acc + bias)` of a SIMD vector, left in a register.
    pub(super) fn finish_vector(
        &self,
        acc: &TokenStream,
        bias: TokenStream,
        act: Activation,
    ) -> TokenStream {
        let [add, _, _, set1] = self.arithmetic();
        self.clamp(quote!(#add(#acc, #bias)), act, quote!(#set1(0.0)))
    }
}
