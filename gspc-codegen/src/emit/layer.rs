//! One layer's module: its shape and manifest entry, the weight packing, the input packing
//! ([`super::pack_input`]), the dispatch and entry points, and one module per ISA variant
//! ([`super::kernel`]). Each section is emitted by its own function, in the module's order.

use super::dispatch::{dispatch_body, dispatched_isa_body};
use super::{activation_path, ident, is_snake_case, isa_path, kernel, lit, pack_input};
use crate::plan::LayerPlan;
use crate::spec::Strategy;
use crate::target::Arch;
use gspc_runtime::Isa;
use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// One layer's module; `baked` = (length of the model's weight file, this layer's offset).
pub(super) fn layer_module(
    p: &LayerPlan,
    arch: Arch,
    outline_tiles: bool,
    baked: Option<(usize, usize)>,
) -> TokenStream {
    let l = &p.layer;
    let name = ident(&l.name);
    let allow = if is_snake_case(&l.name) {
        quote!()
    } else {
        quote!(#[allow(non_snake_case)])
    };
    let doc = layer_doc(p);
    let (baked_items, baked_entry) = baked_items(baked);
    let shape = shape_items(p);
    let manifest = manifest_item(p, baked_entry);
    let weights = weight_items(p);
    let pack_input = pack_input::pack_input(p);
    let dispatch = dispatch_items(p, arch);
    let entry_points = entry_points();
    let variant_slices = p.variants.iter().map(|v| variant_slice(v.isa));
    let variants = p
        .variants
        .iter()
        .map(|v| kernel::variant_module(p, v, outline_tiles));
    let half_rate = kernel::half_rate_module(p, outline_tiles);
    let one_group = p
        .one_group
        .as_ref()
        .map(|h| one_group_module(p, h, outline_tiles));
    quote! {
        #[doc = #doc]
        #allow
        pub mod #name {
            #shape
            #manifest

            #baked_items

            #weights

            #pack_input

            #dispatch

            #entry_points

            #(#variant_slices)*

            #(#variants)*

            #half_rate

            #one_group
        }
    }
}

/// The module `one_group` of a layer with a [`LayerPlan::one_group`] plan `h`: its lengths,
/// where its packed weights start in the layer's (`AT`), its weight layout, its
/// `pack_input` and its variants, whose `run_units` the layer's variants of the same ISA
/// call (AVX2 always, AVX-512 where it runs at half rate).
fn one_group_module(p: &LayerPlan, h: &LayerPlan, outline_tiles: bool) -> TokenStream {
    let u = lit;
    let at = p.one_group_at().unwrap_or(0);
    let (packed_len, scratch_len, at) = (u(h.packed_len), u(h.scratch_len), u(at));
    let block_len = u(h.oc_bn * h.output[0] * h.output[1]);
    let weight_layout = weight_layout(h);
    let pack_input = pack_input::pack_input(h);
    let variants = h
        .variants
        .iter()
        .map(|v| kernel::variant_module(h, v, outline_tiles));
    // Its own half-rate form, if it has one, which its AVX-512 variant switches to as any
    // layer's does.
    let half_rate = kernel::half_rate_module(h, outline_tiles);
    let doc = format!(
        " The layer with one group a block of {} channels instead of two groups side by side, on packed weights of its own that follow the layer's (from `AT`): the layer's AVX2 variant runs this module's, and its AVX-512 variant does where 512-bit FMAs run at half rate (Zen 4; docs/design.md, \"One group a block off full-rate AVX-512\").",
        h.oc_bn
    );
    quote! {
        #[doc = #doc]
        pub mod one_group {
            /// NCHW input length (the layer's).
            pub const INPUT_LEN: usize = super::INPUT_LEN;
            /// NCHW output length (the layer's).
            pub const OUTPUT_LEN: usize = super::OUTPUT_LEN;
            /// Packed weights and bias of this plan.
            pub const PACKED_LEN: usize = #packed_len;
            /// Where they start in the layer's packed weights.
            pub const AT: usize = #at;
            /// Per-call workspace of this plan (at most the layer's).
            pub const SCRATCH_LEN: usize = #scratch_len;
            /// Output values of one work unit of this plan.
            pub const BLOCK_LEN: usize = #block_len;
            /// Where this plan's kernels read each weight and bias, from [`AT`].
            pub const WEIGHT_LAYOUT: ::gspc_runtime::entry::WeightLayout = #weight_layout;

            #pack_input

            #(#variants)*

            #half_rate
        }
    }
}

/// The layer module's doc: the layer's shape and the plan's strategy, block and padding.
fn layer_doc(p: &LayerPlan) -> String {
    let l = &p.layer;
    let name_str = &l.name;
    let [kh, kw] = l.kernel;
    let [oh, ow] = p.output;
    let hp = p.padded[0];
    let wp = p.row_len;
    let strategy = p.strategy.as_str();
    format!(
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
    )
}

/// The layer's shape: the channel and length constants, `FLOPS` and `INFO`.
pub(super) fn shape_items(p: &LayerPlan) -> TokenStream {
    let l = &p.layer;
    let name_str = &l.name;
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
    quote! {
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
    }
}

/// The manifest entry `LAYER`: the shape, the slice entry points, one entry per variant and
/// the baked weights (`baked_entry`, from [`baked_items`]).
fn manifest_item(p: &LayerPlan, baked_entry: TokenStream) -> TokenStream {
    let strategy = p.strategy.as_str();
    let variant_entries = p.variants.iter().map(|v| {
        let isa = isa_path(v.isa);
        let kname = &v.kernel;
        let f = ident(&format!("run_{}_slice", v.isa));
        quote!(::gspc_runtime::Variant { isa: #isa, kernel: #kname, run: #f })
    });
    quote! {
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
    }
}

/// With baked weights (`baked` = (length of the model's weight file, this layer's offset)):
/// `PACKED` and `run_baked`, and the manifest's `baked` field; without, nothing and `None`.
fn baked_items(baked: Option<(usize, usize)>) -> (TokenStream, TokenStream) {
    baked_items_of(baked, quote!(f32), quote!(f32s), quote!(f32))
}

/// [`baked_items`] for packed words of type `word` viewed by `baked::<view>`, and
/// activations of type `act` (f32 layers: f32 throughout; int8 layers: i32 words, i8
/// activations).
pub(super) fn baked_items_of(
    baked: Option<(usize, usize)>,
    word: TokenStream,
    view: TokenStream,
    act: TokenStream,
) -> (TokenStream, TokenStream) {
    let Some((len, offset)) = baked else {
        return (quote!(), quote!(None));
    };
    let (len, offset) = (lit(len), lit(offset));
    let items = quote! {
        /// The layer's weights and bias, packed at generation time and baked into
        /// the binary (read-only memory): pass them to [`run`], or call
        /// [`run_baked`].
        pub static PACKED: &[#word; PACKED_LEN] =
            ::gspc_runtime::baked::#view::<#len, PACKED_LEN>(&super::WEIGHTS, #offset);

        /// [`run`] with the baked weights [`PACKED`].
        pub fn run_baked(
            input: &[#act; INPUT_LEN],
            output: &mut [#act; OUTPUT_LEN],
            scratch: &mut [#word; SCRATCH_LEN],
        ) {
            run(input, PACKED, output, scratch)
        }
    };
    (items, quote!(Some(PACKED)))
}

/// `WEIGHT_LAYOUT` and `pack_weights`, whose doc gives the packed layout.
fn weight_items(p: &LayerPlan) -> TokenStream {
    let pack_doc = packed_layout_doc(p);
    let weight_layout = weight_layout(p);
    let second_doc = p.one_group.as_ref().map(|_| {
        quote!(#[doc = " Then the same weights in the layout of [`one_group`], from its `AT`."])
    });
    let pack_own = quote!(WEIGHT_LAYOUT.pack(weights, bias.map(|b| b.as_slice()), packed));
    // With a second layout, its copy after the layer's own.
    let pack = match &p.one_group {
        None => pack_own,
        Some(_) => quote! {
            #pack_own;
            one_group::WEIGHT_LAYOUT.pack(
                weights,
                bias.map(|b| b.as_slice()),
                &mut packed[one_group::AT..],
            );
        },
    };
    quote! {
        /// Where the kernels read each weight and bias (see [`pack_weights`]).
        pub const WEIGHT_LAYOUT: ::gspc_runtime::entry::WeightLayout = #weight_layout;

        /// Packs OIHW weights `[OUT_CHANNELS][IN_CHANNELS / GROUPS][KH][KW]` and an
        /// optional bias (zero without one) into the layout the kernels read:
        #[doc = #pack_doc]
        #second_doc
        pub fn pack_weights(
            weights: &[f32; WEIGHTS_LEN],
            bias: Option<&[f32; OUT_CHANNELS]>,
            packed: &mut [f32; PACKED_LEN],
        ) {
            #pack
        }
    }
}

/// The last line of `pack_weights`' doc: the packed layout.
fn packed_layout_doc(p: &LayerPlan) -> &'static str {
    if p.gpv > 1 {
        return " `[GROUPS / GPV][CPG][KH][KW][OC_BN]` with lane `l` channel `l / GPV` of group `l % GPV` of the block, then the bias in the same lane order.";
    }
    match p.strategy {
        Strategy::GspcDwc => {
            " `[OUT_CHANNELS / 16][KH][KW][16]` (16 channels side by side), then the bias."
        }
        _ => " `[GROUPS][KPG / OC_BN][CPG][KH][KW][OC_BN]`, then the bias.",
    }
}

/// The value of `WEIGHT_LAYOUT`: [`crate::weights::layout`] as a runtime `WeightLayout`.
fn weight_layout(p: &LayerPlan) -> TokenStream {
    let w = crate::weights::layout(p);
    let u = lit;
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
}

/// `run` and what it dispatches through: the work-unit constants, `dispatched_isa`,
/// `run_units` (the best variant's) and `ENTRY`, the runtime's entry points over the
/// layer's lengths.
fn dispatch_items(p: &LayerPlan, arch: Arch) -> TokenStream {
    let [oh, ow] = p.output;
    let isas: Vec<Isa> = p.variants.iter().map(|v| v.isa).collect();
    let dispatch_units = dispatch_body(
        &isas,
        arch,
        "run_units",
        quote!(input, packed, first, blocks, scratch),
        false,
    );
    let dispatched_isa = dispatched_isa_body(&isas, arch, p.avx2_at_half_rate, false);
    let block_l = lit(p.oc_bn * oh * ow);
    let units_l = lit(p.units());
    let (band_fn, bands) = row_bands(p, &isas, arch);
    let entry = entry_const(quote!(), bands);
    quote! {
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

        #band_fn

        #entry
    }
}

/// A layer's `run_band` (the best variant's) and the value of `ENTRY.bands` that hands it
/// to the runtime, where it has row bands ([`LayerPlan::row_bands`]); else nothing and
/// `None`.
fn row_bands(p: &LayerPlan, isas: &[Isa], arch: Arch) -> (TokenStream, TokenStream) {
    if !p.row_bands {
        return (quote!(), quote!(None));
    }
    let dispatch = dispatch_body(
        isas,
        arch,
        "run_band",
        quote!(input, packed, unit, rows, planes, scratch),
        false,
    );
    let [oh, ow] = p.output;
    let (oh, ow, cb) = (lit(oh), lit(ow), lit(crate::plan::DWC_BLOCK));
    let band_fn = quote! {
        /// Computes output rows `rows` of work unit `unit` into `planes` (its 16 planes,
        /// each holding just those rows) with the best variant.
        fn run_band(
            input: &[f32; INPUT_LEN],
            packed: &[f32; PACKED_LEN],
            unit: usize,
            rows: ::core::ops::Range<usize>,
            planes: &mut [&mut [f32]; #cb],
            scratch: &mut [f32; SCRATCH_LEN],
        ) {
            #dispatch
        }
    };
    let bands = quote! {
        Some(::gspc_runtime::entry::RowBands { rows: #oh, row: #ow, run: run_band })
    };
    (band_fn, bands)
}

/// `ENTRY`, the layer's `gspc_runtime::entry::Entry` over its lengths and `run_units`;
/// `elements` are its element types after the lengths (none for f32 layers, `i8, i32` for
/// int8 ones), `bands` the value of its `bands` field.
pub(super) fn entry_const(elements: TokenStream, bands: TokenStream) -> TokenStream {
    quote! {
        /// The layer's entry points over its lengths, in gspc-runtime.
        const ENTRY: ::gspc_runtime::entry::Entry<
            INPUT_LEN,
            PACKED_LEN,
            OUTPUT_LEN,
            SCRATCH_LEN,
            BLOCK_LEN,
            #elements
        > = ::gspc_runtime::entry::Entry { flops: FLOPS, groups: GROUPS, run_units, bands: #bands };
    }
}

/// The entry points, all through `ENTRY`: `run`, `run_parallel` and `run_split`, and the
/// forms over slices the manifest holds (`pack_weights_slice`, `run_slice`,
/// `run_parallel_slice`, `run_split_slice`), written once in gspc-runtime's
/// `layer_entry_points!`.
fn entry_points() -> TokenStream {
    quote! {
        ::gspc_runtime::layer_entry_points!();
    }
}

/// `run_<isa>_slice`: one variant over slices, refusing when the CPU lacks its ISA (gspc-runtime's
/// `variant_slice!`, whose `simd` form carries the SAFETY argument).
fn variant_slice(isa: Isa) -> TokenStream {
    let f = ident(&format!("run_{isa}_slice"));
    let (variant, module) = (ident(&format!("{isa:?}")), ident(isa.as_str()));
    let doc = format!(" The {isa} variant of [`run`] over slices; refuses when the CPU lacks it.");
    if isa == Isa::Portable {
        quote!(::gspc_runtime::variant_slice!(#[doc = #doc] #f, #variant, #module);)
    } else {
        quote!(::gspc_runtime::variant_slice!(#[doc = #doc] #f, #variant, #module, simd);)
    }
}
