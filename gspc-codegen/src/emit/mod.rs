//! Emission: plans in, formatted Rust out.
//!
//! Tokens are built with `quote!`, parsed with `syn` (a failure is a generator bug,
//! reported with the tokens) and formatted with `prettyplease`; the header and the
//! `// SAFETY:` lines are added to the formatted text, since comments do not survive
//! `quote!`.

mod kernel;

use crate::error::Error;
use crate::plan::LayerPlan;
use crate::spec::Spec;
use crate::spec::Strategy;
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
            layer_module(p, arch, outline_tiles, part)
        })
        .collect();
    let weights_static = match baked {
        None => quote!(),
        Some(b) => {
            let (file_name, len) = (b.file_name, lit(b.len));
            let doc = format!(
                " Every layer's packed weights, baked in at generation time from `{}`: little-endian f32, each layer's part 64-byte aligned.",
                b.source.escape_debug()
            );
            quote! {
                #[doc = #doc]
                static WEIGHTS: ::gspc_runtime::baked::Aligned<[u8; #len]> =
                    ::gspc_runtime::baked::Aligned(*include_bytes!(#file_name));
            }
        }
    };
    let layer_names: Vec<Ident> = plans.iter().map(|p| ident(&p.layer.name)).collect();
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
            /// Every layer, in spec order.
            pub const LAYERS: &[::gspc_runtime::Layer] = &[#(#layer_names::LAYER),*];
            /// The model's manifest entry.
            pub const MODEL: ::gspc_runtime::Model = ::gspc_runtime::Model {
                name: NAME,
                spec_file: SPEC_FILE,
                layers: LAYERS,
            };

            #weights_static

            #(#layers)*
        }
    }
}

/// One layer's module; `baked` = (length of the model's weight file, this layer's offset).
fn layer_module(
    p: &LayerPlan,
    arch: Arch,
    outline_tiles: bool,
    baked: Option<(usize, usize)>,
) -> TokenStream {
    let l = &p.layer;
    let name = ident(&l.name);
    let name_str = &l.name;
    let [kh, kw] = l.kernel;
    let [oh, ow] = p.output;
    let hp = p.padded[0];
    let wp = p.row_len;
    let u = lit;
    let (c, k, g) = (u(l.in_channels), u(l.out_channels), u(l.groups));
    let (input_len, output_len, weights_len) =
        (u(l.input_len()), u(l.output_len()), u(l.weights_len()));
    let (packed_len, scratch_len) = (u(p.packed_len), u(p.scratch_len));
    let flops = Literal::u64_unsuffixed(l.flops());
    let pair = |a: [usize; 2]| {
        let (x, y) = (u(a[0]), u(a[1]));
        quote!([#x, #y])
    };
    let (kernel, stride, padding, dilation, input, output) = (
        pair(l.kernel),
        pair(l.stride),
        pair(l.padding),
        pair(l.dilation),
        pair(l.input),
        pair(p.output),
    );
    let bias = l.bias;
    let act = activation_path(l.activation);
    let count = u(l.count);
    let strategy = p.strategy.as_str();
    let (baked_items, baked_entry) = match baked {
        None => (quote!(), quote!(None)),
        Some((len, offset)) => {
            let (len, offset) = (u(len), u(offset));
            (
                quote! {
                    /// The layer's weights and bias, packed at generation time and baked into
                    /// the binary (read-only memory): pass them to [`run`], or call
                    /// [`run_baked`].
                    pub static PACKED: &[f32; PACKED_LEN] =
                        ::gspc_runtime::baked::f32s::<#len, PACKED_LEN>(&super::WEIGHTS, #offset);

                    /// [`run`] with the baked weights [`PACKED`].
                    pub fn run_baked(
                        input: &[f32; INPUT_LEN],
                        output: &mut [f32; OUTPUT_LEN],
                        scratch: &mut [f32; SCRATCH_LEN],
                    ) {
                        run(input, PACKED, output, scratch)
                    }
                },
                quote!(Some(PACKED)),
            )
        }
    };

    let variants: Vec<TokenStream> = p
        .variants
        .iter()
        .map(|v| kernel::variant_module(p, v, outline_tiles))
        .collect();
    let variant_entries: Vec<TokenStream> = p
        .variants
        .iter()
        .map(|v| {
            let isa = isa_path(v.isa);
            let kname = &v.kernel;
            let f = ident(&format!("run_{}_slice", v.isa));
            quote!(::gspc_runtime::Variant { isa: #isa, kernel: #kname, run: #f })
        })
        .collect();
    let variant_slices: Vec<TokenStream> =
        p.variants.iter().map(|v| variant_slice(v.isa)).collect();
    let isas: Vec<Isa> = p.variants.iter().map(|v| v.isa).collect();
    let dispatch_units = dispatch_body(
        &isas,
        arch,
        "run_units",
        quote!(input, packed, first, blocks, scratch),
    );
    let dispatched_isa = dispatched_isa_body(&isas, arch, p.avx2_at_half_rate);
    let block_l = u(p.oc_bn * oh * ow);
    let units_l = u(p.units());
    let pack_input = match p.strategy {
        Strategy::GspcDwc => quote!(),
        _ if p.gpv > 1 => pack_input_grouped_fn(p),
        _ => pack_input_fn(p),
    };
    let pack_doc = match p.strategy {
        Strategy::GspcDwc => {
            " `[OUT_CHANNELS / 16][KH][KW][16]` (16 channels side by side), then the bias."
        }
        _ => " `[GROUPS][KPG / OC_BN][CPG][KH][KW][OC_BN]`, then the bias.",
    };
    let pack_doc = if p.gpv > 1 {
        " `[GROUPS / GPV][CPG][KH][KW][OC_BN]` with lane `l` channel `l / GPV` of group `l % GPV` of the block, then the bias in the same lane order."
    } else {
        pack_doc
    };
    let weight_layout = {
        let w = crate::weights::layout(p);
        let (kpg, cpg, oc_bn, nocb, taps, gpv, bias_offset, dwc) = (
            u(w.kpg),
            u(w.cpg),
            u(w.oc_bn),
            u(w.nocb),
            u(w.taps),
            u(w.gpv),
            u(w.bias_offset),
            w.dwc,
        );
        quote! {
            ::gspc_runtime::entry::WeightLayout {
                kpg: #kpg,
                cpg: #cpg,
                oc_bn: #oc_bn,
                nocb: #nocb,
                taps: #taps,
                gpv: #gpv,
                bias_offset: #bias_offset,
                dwc: #dwc,
            }
        }
    };
    let allow = if is_snake_case(&l.name) {
        quote!()
    } else {
        quote!(#[allow(non_snake_case)])
    };
    let doc = format!(
        " Layer `{name_str}`: {} -> {} channels in {} group(s), {kh}x{kw} kernel, stride {:?}, padding {:?}, dilation {:?}, input {}x{}, output {oh}x{ow}, activation {}; strategy `{strategy}`, oc_bn {}, padded input {hp}x{wp}.",
        l.in_channels,
        l.out_channels,
        l.groups,
        l.stride,
        l.padding,
        l.dilation,
        l.input[0],
        l.input[1],
        l.activation.as_str(),
        p.oc_bn,
    );
    quote! {
        #[doc = #doc]
        #allow
        pub mod #name {
            /// Input channels.
            pub const IN_CHANNELS: usize = #c;
            /// Output channels.
            pub const OUT_CHANNELS: usize = #k;
            /// Groups.
            pub const GROUPS: usize = #g;
            /// NCHW input length: `IN_CHANNELS * H * W`.
            pub const INPUT_LEN: usize = #input_len;
            /// NCHW output length: `OUT_CHANNELS * OH * OW`.
            pub const OUTPUT_LEN: usize = #output_len;
            /// OIHW weights length: `OUT_CHANNELS * IN_CHANNELS / GROUPS * KH * KW`.
            pub const WEIGHTS_LEN: usize = #weights_len;
            /// Packed weights and bias.
            pub const PACKED_LEN: usize = #packed_len;
            /// Per-call workspace (the padded, packed input of one group).
            pub const SCRATCH_LEN: usize = #scratch_len;
            /// FLOPs of one run (a multiply-add counts 2).
            pub const FLOPS: u64 = #flops;
            /// The layer's shape.
            pub const INFO: ::gspc_runtime::LayerInfo = ::gspc_runtime::LayerInfo {
                name: #name_str,
                in_channels: #c,
                out_channels: #k,
                groups: #g,
                kernel: #kernel,
                stride: #stride,
                padding: #padding,
                dilation: #dilation,
                input: #input,
                output: #output,
                bias: #bias,
                activation: #act,
                count: #count,
            };
            /// The layer's manifest entry.
            pub const LAYER: ::gspc_runtime::Layer = ::gspc_runtime::Layer {
                info: INFO,
                strategy: #strategy,
                input_len: INPUT_LEN,
                output_len: OUTPUT_LEN,
                weights_len: WEIGHTS_LEN,
                packed_len: PACKED_LEN,
                scratch_len: SCRATCH_LEN,
                pack_weights: pack_weights_slice,
                run: run_slice,
                run_parallel: run_parallel_slice,
                run_split: run_split_slice,
                dispatched_isa,
                variants: &[#(#variant_entries),*],
                baked: #baked_entry,
            };

            #baked_items

            /// Where the kernels read each weight and bias (see [`pack_weights`]).
            pub const WEIGHT_LAYOUT: ::gspc_runtime::entry::WeightLayout = #weight_layout;

            /// Packs OIHW weights `[OUT_CHANNELS][IN_CHANNELS / GROUPS][KH][KW]` and an
            /// optional bias (zero without one) into the layout the kernels read:
            #[doc = #pack_doc]
            pub fn pack_weights(
                weights: &[f32; WEIGHTS_LEN],
                bias: Option<&[f32; OUT_CHANNELS]>,
                packed: &mut [f32; PACKED_LEN],
            ) {
                WEIGHT_LAYOUT.pack(weights, bias.map(|b| b.as_slice()), packed)
            }

            #pack_input

            /// Runs the layer: `output = act(conv(input, weights) + bias)`, NCHW, with the
            /// best variant this CPU supports. Allocates nothing; `scratch` may hold
            /// anything on entry.
            pub fn run(
                input: &[f32; INPUT_LEN],
                packed: &[f32; PACKED_LEN],
                output: &mut [f32; OUTPUT_LEN],
                scratch: &mut [f32; SCRATCH_LEN],
            ) {
                ENTRY.run(input, packed, output, scratch)
            }

            /// Output channels per work unit (one output-channel block of one group).
            pub const BLOCK_LEN: usize = #block_l;
            /// Work units: `GROUPS * OUT_CHANNELS / GROUPS / OC_BN`; [`run_parallel`] splits
            /// them among threads.
            pub const UNITS: usize = #units_l;

            /// The variant [`run`] runs on this CPU: the best one it supports, decided at run
            /// time on x86-64 (docs/design.md, "Dispatch").
            #[inline]
            pub fn dispatched_isa() -> ::gspc_runtime::Isa {
                #dispatched_isa
            }

            /// Computes output blocks `first..first + blocks.len()` with the best variant.
            fn run_units(
                input: &[f32; INPUT_LEN],
                packed: &[f32; PACKED_LEN],
                first: usize,
                blocks: &mut [[f32; BLOCK_LEN]],
                scratch: &mut [f32; SCRATCH_LEN],
            ) {
                #dispatch_units
            }

            /// The layer's entry points over its lengths, in gspc-runtime.
            const ENTRY: ::gspc_runtime::entry::Entry<
                INPUT_LEN,
                PACKED_LEN,
                OUTPUT_LEN,
                SCRATCH_LEN,
                BLOCK_LEN,
            > = ::gspc_runtime::entry::Entry { flops: FLOPS, run_units };

            /// [`run`] on up to `threads` threads, fewer when the layer is small; `scratch`
            /// holds `threads * SCRATCH_LEN` values: see
            /// [`gspc_runtime::entry::Entry::run_parallel`].
            pub fn run_parallel(
                input: &[f32; INPUT_LEN],
                packed: &[f32; PACKED_LEN],
                output: &mut [f32; OUTPUT_LEN],
                scratch: &mut [f32],
                threads: usize,
            ) -> Result<(), ::gspc_runtime::Error> {
                ENTRY.run_parallel(input, packed, output, scratch, threads)
            }

            /// [`run_parallel`] split into exactly `parts` parts: for tests and tuning.
            pub fn run_split(
                input: &[f32; INPUT_LEN],
                packed: &[f32; PACKED_LEN],
                output: &mut [f32; OUTPUT_LEN],
                scratch: &mut [f32],
                parts: usize,
            ) -> Result<(), ::gspc_runtime::Error> {
                ENTRY.run_split(input, packed, output, scratch, parts)
            }

            /// [`pack_weights`] over slices, checking their lengths.
            pub fn pack_weights_slice(
                weights: &[f32],
                bias: Option<&[f32]>,
                packed: &mut [f32],
            ) -> Result<(), ::gspc_runtime::Error> {
                ::gspc_runtime::entry::pack_weights_slice(pack_weights, weights, bias, packed)
            }

            /// [`run`] over slices, checking their lengths.
            pub fn run_slice(
                input: &[f32],
                packed: &[f32],
                output: &mut [f32],
                scratch: &mut [f32],
            ) -> Result<(), ::gspc_runtime::Error> {
                ENTRY.run_slice(input, packed, output, scratch)
            }

            /// [`run_parallel`] over slices, checking their lengths.
            pub fn run_parallel_slice(
                input: &[f32],
                packed: &[f32],
                output: &mut [f32],
                scratch: &mut [f32],
                threads: usize,
            ) -> Result<(), ::gspc_runtime::Error> {
                ENTRY.run_parallel_slice(input, packed, output, scratch, threads)
            }

            /// [`run_split`] over slices, checking their lengths.
            pub fn run_split_slice(
                input: &[f32],
                packed: &[f32],
                output: &mut [f32],
                scratch: &mut [f32],
                parts: usize,
            ) -> Result<(), ::gspc_runtime::Error> {
                ENTRY.run_split_slice(input, packed, output, scratch, parts)
            }

            #(#variant_slices)*

            #(#variants)*
        }
    }
}

/// The level check that must pass before a variant runs (`None`: it always runs where it
/// is generated).
fn guard(isa: Isa) -> Option<TokenStream> {
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
    /// `ENTRY.variant_arrays` returned `Ok`, which it does only on a CPU with the ISA.
    VariantArrays,
    /// The build enables the ISA for the whole program (no portable fallback), or the ISA
    /// is the target's baseline (NEON on aarch64).
    Static,
}

/// Calls one variant's `f` with `args`; the `unsafe` block gets the `// SAFETY:` line of
/// [`safety_reason`] for `proof` (see [`add_safety_comments`]).
fn call_fn(isa: Isa, f: &str, args: &TokenStream, proof: Proof) -> TokenStream {
    let m = ident(isa.as_str());
    let f = ident(f);
    if isa != Isa::Portable {
        let why = safety_reason(isa, proof);
        // Where the build may enable the ISA statically, calling the variant is safe.
        let allow = (proof != Proof::Dispatched && guard(isa).is_some())
            .then(|| quote!(#[allow(unused_unsafe)]));
        quote!(gspc_safety!(#why); #allow unsafe { #m::#f(#args) })
    } else {
        quote!(#m::#f(#args))
    }
}

/// The variants in dispatch order, best first, each with the run-time condition under which
/// it runs (`None`: the last, which runs where no other does).
fn dispatch_order(isas: &[Isa], avx2_at_half_rate: bool) -> Vec<(Isa, Option<TokenStream>)> {
    let mut ordered: Vec<Isa> = isas.to_vec();
    ordered.sort();
    ordered.reverse();
    let last = ordered.len() - 1;
    ordered
        .iter()
        .enumerate()
        .map(|(i, &isa)| {
            let condition = guard(isa).filter(|_| i != last).map(|g| {
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
/// `LayerPlan::avx2_at_half_rate`) AVX-512 only where `x86::avx512_full_rate()`.
fn dispatched_isa_body(isas: &[Isa], arch: Arch, avx2_at_half_rate: bool) -> TokenStream {
    let order = dispatch_order(isas, avx2_at_half_rate);
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
fn dispatch_body(isas: &[Isa], arch: Arch, f: &str, args: TokenStream) -> TokenStream {
    let order = dispatch_order(isas, false);
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

/// `run_<isa>_slice`: one variant over slices, refusing when the CPU lacks its ISA.
fn variant_slice(isa: Isa) -> TokenStream {
    let f = ident(&format!("run_{isa}_slice"));
    let isa_p = isa_path(isa);
    let c = call_fn(
        isa,
        "run",
        &quote!(input, packed, output, scratch),
        Proof::VariantArrays,
    );
    let doc = format!(" The {isa} variant of [`run`] over slices; refuses when the CPU lacks it.");
    quote! {
        #[doc = #doc]
        pub fn #f(
            input: &[f32],
            packed: &[f32],
            output: &mut [f32],
            scratch: &mut [f32],
        ) -> Result<(), ::gspc_runtime::Error> {
            let (input, packed, output, scratch) =
                ENTRY.variant_arrays(#isa_p, input, packed, output, scratch)?;
            #c;
            Ok(())
        }
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
                        let Some(src) = ::gspc_runtime::window::window::<W, INPUT_LEN>(input, (((g * GPV + gi) * C + c) * H + h) * W) else {
                            return;
                        };
                        let Some(dst) = ::gspc_runtime::window::window_mut::<{ W * GPV }, SCRATCH_LEN>(scratch, ((c * HP + PH + h) * WP + PW) * GPV) else {
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
    let [ph, pw] = l.padding;
    let hp = p.padded[0];
    let rl = p.row_len;
    let u = lit;
    let (c_l, h_l, w_l, hp_l, rl_l) = (u(p.cpg()), u(h), u(w), u(hp), u(rl));
    // With one input channel per group there is no channel loop: plane 0, channel `g`.
    let one = p.cpg() == 1;
    let plane = |offset: usize| match (one, offset) {
        (true, _) => {
            let o = u(offset);
            quote!(#o)
        }
        (false, 0) => quote!(c * (HP * ROW)),
        (false, _) => {
            let o = u(offset);
            quote!(c * (HP * ROW) + #o)
        }
    };
    let pad_rows = if ph > 0 {
        let n = u(ph * rl);
        let (top_at, bottom_at) = (plane(0), plane((ph + h) * rl));
        quote! {
            let Some(top) = ::gspc_runtime::window::window_mut::<#n, SCRATCH_LEN>(scratch, #top_at) else {
                return;
            };
            *top = [0.0; #n];
            let Some(bottom) = ::gspc_runtime::window::window_mut::<#n, SCRATCH_LEN>(scratch, #bottom_at) else {
                return;
            };
            *bottom = [0.0; #n];
        }
    } else {
        quote!()
    };
    let row = if p.phases == 2 {
        // Stride 2: the row's first half is phase 0 (even padded columns), the second half
        // phase 1. Input column w is padded column w + PW, so the even input columns go to
        // phase PW % 2 from index PW / 2 and the odd ones to the other from (PW + 1) / 2.
        let pl = p.phase_len();
        let even_phase = pw % 2;
        let (ne, no) = (w.div_ceil(2), w / 2);
        let (e0, o0) = (pw / 2, pw.div_ceil(2));
        let (e_a, e_b, o_a, o_b) = (u(e0), u(e0 + ne), u(o0), u(o0 + no));
        let (even_half, odd_half) = if even_phase == 0 {
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
        if w >= 32 {
            quote! {
                let (lo, hi) = dst.split_at_mut(#split);
                #(#zeros)*
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
                let (lo, hi) = dst.split_at_mut(#split);
                #(#zeros)*
                for (pair, (e, o)) in src[..#pairs]
                    .chunks_exact(2)
                    .zip(#even_half[#e_a..#e_b].iter_mut().zip(#odd_half[#o_a..#o_b].iter_mut()))
                {
                    *e = pair[0];
                    *o = pair[1];
                }
                #last
            }
        }
    } else if p.phases > 1 {
        // Phase `ph` holds padded columns ph, ph + S, ...: zero the row, then copy each
        // phase's input columns with literal bounds.
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
    } else if pw > 0 {
        let (pw_l, end) = (u(pw), u(pw + w));
        quote! {
            dst[..#pw_l].fill(0.0);
            dst[#pw_l..#end].copy_from_slice(src);
            dst[#end..].fill(0.0);
        }
    } else {
        quote!(*dst = *src;)
    };
    let dst_at = match (one && ph == 0, plane(ph * rl)) {
        (true, _) => quote!(h * ROW),
        (false, first_row) => quote!(#first_row + h * ROW),
    };
    let src_at = if one {
        quote!((g * H + h) * W)
    } else {
        quote!(((g * C + c) * H + h) * W)
    };
    let rows = quote! {
        #pad_rows
        for h in 0..H {
            let Some(src) = ::gspc_runtime::window::window::<W, INPUT_LEN>(input, #src_at) else {
                return;
            };
            let Some(dst) = ::gspc_runtime::window::window_mut::<ROW, SCRATCH_LEN>(scratch, #dst_at) else {
                return;
            };
            #row
        }
    };
    let channels = if one {
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
        /// `[IN_CHANNELS / GROUPS][H + 2 PH][ROW]`.
        fn pack_input(input: &[f32; INPUT_LEN], scratch: &mut [f32; SCRATCH_LEN], g: usize) {
            const H: usize = #h_l;
            const W: usize = #w_l;
            const ROW: usize = #rl_l;
            #channels
        }
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

/// Why calling a SIMD variant of `isa` is sound at its call site, given what `proof` holds.
fn safety_reason(isa: Isa, proof: Proof) -> String {
    match (isa, proof) {
        (Isa::Neon, _) => "NEON is part of the aarch64 baseline, the only target the neon variant is generated for".to_string(),
        (_, Proof::Dispatched) => format!("`dispatched_isa()` returns {isa} only where `x86::level()` shows that the CPU runs it, the features this variant is compiled with"),
        (_, Proof::VariantArrays) => format!("`variant_arrays` returned Ok only because this CPU runs {isa}, the features this variant is compiled with"),
        (_, Proof::Static) => format!("the build enables {isa} for the whole program (no portable fallback is generated), so every CPU it runs on has it"),
    }
}

/// Turns each `gspc_safety!("reason");` marker, emitted just before an `unsafe` block by
/// [`call_fn`] with the reason that holds there, into a `// SAFETY: reason` line (comments do
/// not survive `quote!`); the formatter may have spread a marker over several lines.
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
