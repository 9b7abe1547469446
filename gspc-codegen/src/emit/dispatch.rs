//! Dispatch: which variant of a layer runs on the CPU at hand, and the `unsafe` calls of the
//! SIMD variants with the reason each is sound (the `// SAFETY:` line of
//! [`super::format_tokens`]).

use super::{ident, isa_path};
use crate::target::Arch;
use gspc_runtime::Isa;
use proc_macro2::TokenStream;
use quote::quote;

/// The level check that must pass before a variant runs (`None`: it always runs where it
/// is generated); int8 AVX-512 variants also need AVX-512BW and VNNI
/// (`qlayer::supported`).
fn guard(isa: Isa, int8: bool) -> Option<TokenStream> {
    if int8 && isa == Isa::Avx512 {
        return Some(quote!(::gspc_runtime::qlayer::supported(
            ::gspc_runtime::Isa::Avx512
        )));
    }
    let level = match isa {
        Isa::Portable | Isa::Neon => return None,
        Isa::Avx2 => quote!(::gspc_runtime::x86::LEVEL_AVX2),
        Isa::Avx512 => quote!(::gspc_runtime::x86::LEVEL_AVX512),
    };
    Some(quote!(::gspc_runtime::x86::level() >= #level))
}

/// What makes a variant's `unsafe` call sound where it is emitted: the reason its
/// `// SAFETY:` line gives ([`safety_reason`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// `dispatched_isa()` returned the ISA, which it does only after `x86::level()` showed
    /// that the CPU runs it.
    Dispatched,
    /// The build enables the ISA for the whole program (no portable fallback), or the ISA
    /// is the target's baseline (NEON on aarch64).
    Static,
}

/// Calls one variant's `f` with `args`; the `unsafe` block gets the `// SAFETY:` line of
/// [`safety_reason`] for `proof` (see [`super::add_safety_comments`]).
fn call_fn(isa: Isa, f: &str, args: &TokenStream, proof: Proof) -> TokenStream {
    let m = ident(isa.as_str());
    let f = ident(f);
    if isa != Isa::Portable {
        let why = safety_reason(isa, proof);
        // Where the build may enable the ISA statically, calling the variant is safe.
        let allow = (proof != Proof::Dispatched && guard(isa, false).is_some())
            .then(|| quote!(#[allow(unused_unsafe)]));
        quote!(gspc_safety!(#why); #allow unsafe { #m::#f(#args) })
    } else {
        quote!(#m::#f(#args))
    }
}

/// The variants in dispatch order, best first, each with the run-time condition under which
/// it runs (`None`: the last, which runs where no other does).
fn dispatch_order(
    isas: &[Isa],
    avx2_at_half_rate: bool,
    int8: bool,
) -> Vec<(Isa, Option<TokenStream>)> {
    let mut ordered: Vec<Isa> = isas.to_vec();
    ordered.sort();
    ordered.reverse();
    let last = ordered.len() - 1;
    ordered
        .iter()
        .enumerate()
        .map(|(i, &isa)| {
            let condition = guard(isa, int8).filter(|_| i != last).map(|g| {
                if isa == Isa::Avx512 && avx2_at_half_rate && isas.contains(&Isa::Avx2) {
                    quote!(#g && ::gspc_runtime::x86::avx512_full_rate())
                } else {
                    g
                }
            });
            (isa, condition)
        })
        .collect()
}

/// The body of `dispatched_isa`: the best variant the CPU runs, where the layer's
/// dispatcher decides at run time (x86-64); with `avx2_at_half_rate` (see
/// `LayerPlan::avx2_at_half_rate`) AVX-512 only where `x86::avx512_full_rate()`; `int8`:
/// for an int8 layer.
pub(super) fn dispatched_isa_body(
    isas: &[Isa],
    arch: Arch,
    avx2_at_half_rate: bool,
    int8: bool,
) -> TokenStream {
    let order = dispatch_order(isas, avx2_at_half_rate, int8);
    if arch != Arch::X86_64 {
        // NEON is baseline where it is generated; otherwise portable.
        let best = isa_path(order[0].0);
        return quote!(#best);
    }
    let branches = order.iter().map(|(isa, condition)| {
        let p = isa_path(*isa);
        match condition {
            Some(c) => quote!(if #c { return #p; }),
            None => quote!(#p),
        }
    });
    quote!(#(#branches)*)
}

/// The body of a dispatching function: `f(args)` of the variant `dispatched_isa()` names.
pub(super) fn dispatch_body(
    isas: &[Isa],
    arch: Arch,
    f: &str,
    args: TokenStream,
    int8: bool,
) -> TokenStream {
    let order = dispatch_order(isas, false, int8);
    if arch != Arch::X86_64 {
        return call_fn(order[0].0, f, &args, Proof::Static);
    }
    let arms = order.iter().map(|(isa, condition)| {
        if condition.is_some() {
            let c = call_fn(*isa, f, &args, Proof::Dispatched);
            let p = isa_path(*isa);
            quote!(#p => { #c })
        } else {
            // The last: without a portable fallback, the build enables it statically.
            let c = call_fn(*isa, f, &args, Proof::Static);
            quote!(_ => { #c })
        }
    });
    quote!(match dispatched_isa() { #(#arms)* })
}

/// Why calling a SIMD variant of `isa` is sound at its call site, given what `proof` holds.
fn safety_reason(isa: Isa, proof: Proof) -> String {
    match (isa, proof) {
        (Isa::Neon, _) => "NEON is part of the aarch64 baseline, the only target the neon variant is generated for".to_string(),
        (_, Proof::Dispatched) => format!("`dispatched_isa()` returns {isa} only where the CPU check (`x86::level()`; for int8 AVX-512 `qlayer::supported`) shows that the CPU runs it, the features this variant is compiled with"),
        (_, Proof::Static) => format!("the build enables {isa} for the whole program (no portable fallback is generated), so every CPU it runs on has it"),
    }
}
