//! Emission: plans in, formatted Rust out.
//!
//! Tokens are built with `quote!`, parsed with `syn` (a failure is a generator bug,
//! reported with the tokens) and formatted with `prettyplease`; the header and the
//! `// SAFETY:` lines are added to the formatted text, since comments do not survive
//! `quote!`.
//!
//! Here: the model's module ([`model_module`]), the formatting and the `// SAFETY:` lines;
//! [`layer`] emits each layer's module, [`pack_input`] its input packing, [`dispatch`] the
//! choice of variant and the `unsafe` calls, [`kernel`] the variants' modules.

mod dispatch;
mod kernel;
mod layer;
mod pack_input;
mod quant;

use crate::error::Error;
use crate::plan::LayerPlan;
use crate::spec::Spec;
use crate::target::Arch;
use gspc_runtime::{Activation, Isa};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

pub(crate) fn lit(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

/// An identifier. Only ever called with names the spec validator accepted (ASCII Rust
/// identifiers that are not keywords) or with the generator's own names.
pub(crate) fn ident(s: &str) -> Ident {
    Ident::new(s, Span::call_site())
}

fn activation_path(a: Activation) -> TokenStream {
    match a {
        Activation::None => quote!(::gspc_runtime::Activation::None),
        Activation::Relu => quote!(::gspc_runtime::Activation::Relu),
        Activation::Relu6 => quote!(::gspc_runtime::Activation::Relu6),
    }
}

fn isa_path(isa: Isa) -> TokenStream {
    match isa {
        Isa::Portable => quote!(::gspc_runtime::Isa::Portable),
        Isa::Avx2 => quote!(::gspc_runtime::Isa::Avx2),
        Isa::Avx512 => quote!(::gspc_runtime::Isa::Avx512),
        Isa::Neon => quote!(::gspc_runtime::Isa::Neon),
    }
}

fn is_snake_case(s: &str) -> bool {
    !s.chars().any(|c| c.is_ascii_uppercase())
}

/// Where a model's baked weights are: the file included next to the generated source, its
/// length in bytes, the byte offset of every layer's part, and where they came from.
pub(crate) struct Baked<'a> {
    pub file_name: &'a str,
    pub len: usize,
    pub offsets: &'a [usize],
    pub source: &'a str,
}

/// The module of one model.
pub(crate) fn model_module(
    spec: &Spec,
    plans: &[LayerPlan],
    arch: Arch,
    outline_tiles: bool,
    baked: Option<&Baked>,
) -> TokenStream {
    let name = ident(&spec.model);
    let model_str = &spec.model;
    let file = &spec.file;
    let layers: Vec<TokenStream> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let part = baked.map(|b| (b.len, b.offsets[i]));
            match &p.quant {
                Some(q) => quant::layer_module(p, q, arch, outline_tiles, part),
                None => layer::layer_module(p, arch, outline_tiles, part),
            }
        })
        .collect();
    let weights_static = baked.map(weights_static);
    let names = |int8: bool| -> Vec<Ident> {
        plans
            .iter()
            .filter(|p| p.quant.is_some() == int8)
            .map(|p| ident(&p.layer.name))
            .collect()
    };
    let (layer_names, qlayer_names) = (names(false), names(true));
    let max = |f: fn(&LayerPlan) -> usize| lit(plans.iter().map(f).max().unwrap_or(0));
    let max_scratch = max(|p| p.scratch_len);
    let max_input = max(|p| p.layer.input_len());
    let max_output = max(|p| p.layer.output_len());
    let max_activation = max(|p| p.layer.input_len().max(p.layer.output_len()));
    let total_packed = lit(plans.iter().map(|p| p.packed_len).sum());
    // A binary that uses some layers only must not warn about the rest of the API.
    let allow = if is_snake_case(&spec.model) {
        quote!(#[allow(dead_code)])
    } else {
        quote!(#[allow(dead_code, non_snake_case)])
    };
    let doc = format!(
        " Model `{model_str}`, generated from `{}`.",
        file.escape_debug()
    );
    quote! {
        #[doc = #doc]
        #allow
        pub mod #name {
            /// Model name.
            pub const NAME: &str = #model_str;
            /// The spec file the model was generated from.
            pub const SPEC_FILE: &str = #file;
            /// The largest `SCRATCH_LEN` of the model's layers: one scratch buffer of this
            /// length serves every layer.
            pub const MAX_SCRATCH_LEN: usize = #max_scratch;
            /// The largest `INPUT_LEN` of the model's layers.
            pub const MAX_INPUT_LEN: usize = #max_input;
            /// The largest `OUTPUT_LEN` of the model's layers.
            pub const MAX_OUTPUT_LEN: usize = #max_output;
            /// The largest `INPUT_LEN` or `OUTPUT_LEN`: two buffers of this length serve a
            /// chain of the model's layers, each layer's output the next one's input.
            pub const MAX_ACTIVATION_LEN: usize = #max_activation;
            /// The sum of the layers' `PACKED_LEN`.
            pub const TOTAL_PACKED_LEN: usize = #total_packed;
            /// Every f32 layer, in spec order.
            pub const LAYERS: &[::gspc_runtime::Layer] = &[#(#layer_names::LAYER),*];
            /// Every int8 layer, in spec order.
            pub const QLAYERS: &[::gspc_runtime::qlayer::QLayer] = &[#(#qlayer_names::LAYER),*];
            /// The model's manifest entry.
            pub const MODEL: ::gspc_runtime::Model = ::gspc_runtime::Model {
                name: NAME,
                spec_file: SPEC_FILE,
                layers: LAYERS,
                qlayers: QLAYERS,
            };

            #weights_static

            #(#layers)*
        }
    }
}

/// The model's `WEIGHTS`: its baked weight file, included, every layer's part in it.
fn weights_static(b: &Baked) -> TokenStream {
    let (file_name, len) = (b.file_name, lit(b.len));
    let doc = format!(
        " Every layer's packed weights, baked in at generation time from `{}`: little-endian f32 (f32 layers) or int32 words (int8 layers), each layer's part 64-byte aligned.",
        b.source.escape_debug()
    );
    quote! {
        #[doc = #doc]
        static WEIGHTS: ::gspc_runtime::baked::Aligned<[u8; #len]> =
            ::gspc_runtime::baked::Aligned(*include_bytes!(#file_name));
    }
}

/// Formats a token stream as a Rust file; a parse failure is a generator bug.
pub(crate) fn format_tokens(tokens: TokenStream) -> Result<String, Error> {
    let file: syn::File = syn::parse2(tokens.clone()).map_err(|e| {
        let text = tokens.to_string();
        let shown: String = text.chars().take(2000).collect();
        Error::Internal(format!(
            "generated tokens do not parse as Rust: {e}; tokens: {shown}"
        ))
    })?;
    Ok(add_safety_comments(&prettyplease::unparse(&file)))
}

/// Turns each `gspc_safety!("reason");` marker, emitted just before an `unsafe` block by
/// `dispatch::call_fn` with the reason that holds there, into a `// SAFETY: reason` line
/// (comments do not survive `quote!`); the formatter may have spread a marker over several
/// lines.
fn add_safety_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 1024);
    let mut marker: Option<(String, String)> = None;
    for line in code.lines() {
        let text = line.trim_start();
        if marker.is_none() && text.starts_with("gspc_safety!(") {
            let indent = line[..line.len() - text.len()].to_string();
            marker = Some((indent, String::new()));
        }
        let Some((indent, mut joined)) = marker.take() else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        joined.push_str(text);
        if !joined.ends_with(");") {
            marker = Some((indent, joined));
            continue;
        }
        let reason = joined
            .split_once('"')
            .and_then(|(_, rest)| rest.rsplit_once('"'))
            .map_or("", |(reason, _)| reason);
        out.push_str(&indent);
        out.push_str("// SAFETY: ");
        out.push_str(reason);
        out.push('\n');
    }
    out
}
