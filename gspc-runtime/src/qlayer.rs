//! int8 layers (docs/quantization.md): the manifest entry of a generated int8 layer
//! ([`QLayer`]), the packed layouts its kernels read ([`QLayout`]) and the packing of
//! weights and input into them.
//!
//! Every packed value is an int32 word holding two int16 values, low half first
//! ([`pair`]): one word times another is two multiply-adds, which is what x86's
//! `vpmaddwd` and `vpdpwssd`, NEON's `smlal`/`smlal2` pair and Cortex-M's `smlad` compute.
//! The input is packed as `x - input_zero_point` (in [-255, 255], an int16), a padded pixel
//! as 0, so the kernels need no zero-point correction; the weights (in [-127, 127]) as they
//! are.
//!
//! The kernels put output columns on the vector axis and broadcast one weight word to
//! every lane, so a packed input row is read as vectors of consecutive words. A row is
//! stored by column phase (`SW` phases, the column stride): word `j` of phase `ph` is
//! padded column `j * SW + ph`, so the words of consecutive output columns are adjacent
//! at every stride. `RL = ceil(WP / SW)` words per phase, `SW * RL` per row.
//!
//! - grouped (`depthwise: false`): a word pairs two consecutive input channels of one
//!   pixel. Input `[GROUPS][PAIRS][HP][SW][RL]` (`PAIRS = ceil(CPG / 2)`, the whole input,
//!   packed once per run); weights `[K / TILE][PAIRS][KH][KW][TILE]` (`TILE` output
//!   channels of one group side by side, the channels a tile computes);
//! - depthwise (`depthwise: true`, one input and one output channel per group): a word
//!   pairs a pixel with the one `DW` columns to its right, the inputs of kernel columns
//!   `2q` and `2q + 1`. Input `[HP][SW][RL]`, one channel at a time (packed just before
//!   its outputs are computed, so it is still in cache); weights `[K][KH][PAIRS]`
//!   (`PAIRS = ceil(KW / 2)`, the odd kernel column paired with 0).
//!
//! Both are followed by the bias, one int32 per output channel (0 without one).
//!
//! **Quads** (`elems: 4`, [`QLayout::quads`]): a word holds four 8-bit values where a pair
//! layout holds two int16 values, so one word product is four multiply-adds (x86's
//! `vpdpbusd`, Arm's `sdot`): four input channels of one pixel (grouped) or four
//! neighbouring kernel columns (depthwise), byte 0 first. The input cannot be packed as
//! `x - zero_point` (that needs 9 bits); it is packed as the byte `x + input_offset`, a
//! padded pixel as `zero_point + input_offset` ([`QLayout::pad_value`]), so each product
//! carries `pad_value * w` too much, which the packed bias takes back:
//! `bias - pad_value * sum(w)`. With `input_offset` 128 the bytes are unsigned (in [0, 255],
//! `vpdpbusd`'s unsigned operand), with 0 signed (`sdot`). A layer may have both layouts,
//! one after the other in its packed weights ([`pack_sections`]): each variant reads its own.

use crate::quant::{QuantParams, Requant};
use crate::{Error, Isa, LayerInfo};

/// An int8 layer's `pack_weights` over slices: `(OIHW weights, bias, packed)`.
pub type QPackFn = fn(&[i8], Option<&[i32]>, &mut [i32]) -> Result<(), Error>;
/// An int8 layer's (or variant's) `run` over slices: `(input, packed, output, scratch)`.
pub type QRunFn = fn(&[i8], &[i32], &mut [i8], &mut [i32]) -> Result<(), Error>;
/// An int8 layer's `run_parallel` over slices: `(input, packed, output, scratch, threads)`.
pub type QParallelFn = fn(&[i8], &[i32], &mut [i8], &mut [i32], usize) -> Result<(), Error>;

/// One instruction-set variant of an int8 layer.
#[derive(Clone, Copy, Debug)]
pub struct QVariant {
    /// Instruction set.
    pub isa: Isa,
    /// Kernel name.
    pub kernel: &'static str,
    /// The variant over slices; [`Error::Unsupported`] where the CPU lacks it.
    pub run: QRunFn,
}

/// The manifest entry of a generated int8 layer.
#[derive(Clone, Copy, Debug)]
pub struct QLayer {
    /// Shape.
    pub info: LayerInfo,
    /// The spec's quantization parameters (the reference derives the requantization from
    /// them, as the generator did).
    pub quant: QuantParams<'static>,
    /// Strategy (`gspc-oc` or `gspc-dwc`).
    pub strategy: &'static str,
    /// int8 input values.
    pub input_len: usize,
    /// int8 output values.
    pub output_len: usize,
    /// int8 OIHW weights.
    pub weights_len: usize,
    /// int32 words of packed weights and bias.
    pub packed_len: usize,
    /// int32 words of scratch per thread.
    pub scratch_len: usize,
    /// Packs OIHW weights and an optional int32 bias.
    pub pack_weights: QPackFn,
    /// Runs the layer with the best variant.
    pub run: QRunFn,
    /// Runs the layer on up to `threads` threads (`scratch`: `threads * scratch_len`).
    pub run_parallel: QParallelFn,
    /// [`QLayer::run_parallel`] in exactly `parts` parts (at most one per output block),
    /// however little work each gets (`scratch`: `parts * scratch_len`): for tests.
    pub run_split: QParallelFn,
    /// The variant `run` runs on this CPU.
    pub dispatched_isa: fn() -> Isa,
    /// Every variant.
    pub variants: &'static [QVariant],
    /// The weights packed at generation time, when baked.
    pub baked: Option<&'static [i32]>,
}

/// Whether this CPU runs the int8 variant of `isa`: as [`Isa::is_supported`], and on
/// AVX-512 also AVX-512BW and AVX-512 VNNI (`vpdpwssd`, `vpdpbusd`), which every AVX-512
/// CPU since Ice Lake and Zen 4 has.
pub fn supported(isa: Isa) -> bool {
    match isa {
        Isa::Avx512 => isa.is_supported() && crate::x86::has_avx512_vnni(),
        _ => isa.is_supported(),
    }
}

/// The 16 x 16 bytes `t` transposed: `out[k][j] = t[j][k]`.
#[inline(always)]
fn transpose16(t: &[[i8; 16]; 16]) -> [[i8; 16]; 16] {
    #[cfg(target_arch = "x86_64")]
    {
        crate::x86::transpose16_i8(t)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        core::array::from_fn(|k| core::array::from_fn(|j| t[j][k]))
    }
}

/// Packs OIHW int8 weights and an optional int32 bias into each of `layouts` (the layer's
/// sections: its pair layout, then its quads where a variant reads them), one section after
/// the other in `packed`; lengths and weights are checked as [`QLayout::pack_weights`]
/// checks them.
pub fn pack_sections(
    layouts: &[QLayout],
    weights: &[i8],
    bias: Option<&[i32]>,
    packed: &mut [i32],
) -> Result<(), Error> {
    crate::reference::check_len("packed", sections_len(layouts), packed.len())?;
    let mut rest = packed;
    for l in layouts {
        let (section, tail) = rest.split_at_mut(l.packed_len().min(rest.len()));
        l.pack_weights(weights, bias, section)?;
        rest = tail;
    }
    Ok(())
}

/// Words of packed weights and bias of every section of `layouts`.
pub const fn sections_len(layouts: &[QLayout]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < layouts.len() {
        n += layouts[i].packed_len();
        i += 1;
    }
    n
}

/// Words of packed input (scratch) the variants of a layer with these sections need: the
/// most any section's kernels pack.
pub const fn sections_scratch(layouts: &[QLayout]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < layouts.len() {
        let w = layouts[i].input_words();
        if w > n {
            n = w;
        }
        i += 1;
    }
    n
}

/// Two int16 values in one int32 word, `lo` in the low half (their low 16 bits).
#[inline(always)]
pub const fn pair(lo: i32, hi: i32) -> i32 {
    ((lo as u16 as u32) | ((hi as u16 as u32) << 16)) as i32
}

/// Four bytes in one int32 word, `b[0]` in the low byte.
#[inline(always)]
pub const fn quad(b: [u8; 4]) -> i32 {
    i32::from_le_bytes(b)
}

/// `acc + lo(x) * lo(w) + hi(x) * hi(w)`: the two int16 products of one word pair, wrapping
/// as int32 lanes do. With the `dsp` feature on 32-bit Arm, one `smlad` (the Armv7E-M DSP
/// extension's dual 16-bit multiply-accumulate: Cortex-M4, M7, M33 with DSP).
#[inline(always)]
pub fn madd_word(acc: i32, x: i32, w: i32) -> i32 {
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    {
        let r: i32;
        // SAFETY: `smlad` reads three registers and writes one, touches no memory and no
        // stack; the `dsp` feature is the build's promise that the CPU has the DSP
        // extension. Its result wraps like the portable sum (it only sets the sticky Q
        // flag on overflow, which nothing reads).
        unsafe {
            core::arch::asm!(
                "smlad {r}, {x}, {w}, {a}",
                r = lateout(reg) r,
                x = in(reg) x,
                w = in(reg) w,
                a = in(reg) acc,
                options(pure, nomem, nostack)
            )
        };
        r
    }
    #[cfg(not(all(target_arch = "arm", feature = "dsp")))]
    {
        let lo = (x as i16 as i32).wrapping_mul(w as i16 as i32);
        let hi = ((x >> 16) as i16 as i32).wrapping_mul((w >> 16) as i16 as i32);
        acc.wrapping_add(lo).wrapping_add(hi)
    }
}

/// [`madd_word`] per lane: each word of `x` and `w` holds two int16 values, and a lane adds
/// both products (what `vpmaddwd` computes).
#[inline(always)]
pub fn madd_lanes<const L: usize>(mut acc: [i32; L], x: &[i32; L], w: &[i32; L]) -> [i32; L] {
    for l in 0..L {
        acc[l] = madd_word(acc[l], x[l], w[l]);
    }
    acc
}

/// `acc + x . w` per lane over quads (what `vpdpbusd` computes): each word of `x` holds
/// four unsigned bytes, each word of `w` four signed ones, and a lane adds the four
/// products, wrapping.
#[inline(always)]
pub fn madd_quads_lanes<const L: usize>(mut acc: [i32; L], x: &[i32; L], w: &[i32; L]) -> [i32; L] {
    for l in 0..L {
        let (xb, wb) = (x[l].to_le_bytes(), w[l].to_le_bytes());
        for (a, b) in xb.into_iter().zip(wb) {
            acc[l] = acc[l].wrapping_add(a as i32 * (b as i8) as i32);
        }
    }
    acc
}

/// The epilogue of an int8 tile, lane by lane: lane `l` of `acc` is output channel `k` at
/// the `l`-th column of `out`; adds `bias` (wrapping), requantizes with channel `k` of
/// `rq` and stores.
#[inline(always)]
pub fn store_cols<const L: usize>(
    rq: &Requant<'_>,
    acc: [i32; L],
    k: usize,
    bias: i32,
    out: &mut [i8; L],
) {
    let Some(c) = rq.channels.get(k) else {
        return;
    };
    for (o, a) in out.iter_mut().zip(acc) {
        *o = c.requantize(a.wrapping_add(bias), rq.output_zero_point, rq.min, rq.max);
    }
}

/// The inside of a packed row phase at column stride `S`: `dst[j] = pair(a[j * S] - zp,
/// b[j * S] - zp)` (`b` absent: 0), as far as all three reach; specialized per stride so
/// that the compiler vectorizes it.
#[inline(always)]
fn interior<const S: usize>(dst: &mut [i32], a: &[i8], b: Option<&[i8]>, zp: i32) {
    let n = dst.len();
    // Whole chunks of S values, then the last value of a row whose chunk is cut short.
    let (ca, _) = a.as_chunks::<S>();
    match b {
        Some(b) => {
            let (cb, _) = b.as_chunks::<S>();
            for ((d, x), y) in dst.iter_mut().zip(ca).zip(cb) {
                *d = pair(x[0] as i32 - zp, y[0] as i32 - zp);
            }
            let done = n.min(ca.len()).min(cb.len());
            for (j, d) in dst.iter_mut().enumerate().skip(done) {
                let x = a.get(j * S).map_or(0, |&x| x as i32 - zp);
                let y = b.get(j * S).map_or(0, |&y| y as i32 - zp);
                *d = pair(x, y);
            }
        }
        None => {
            for (d, x) in dst.iter_mut().zip(ca) {
                *d = pair(x[0] as i32 - zp, 0);
            }
            let done = n.min(ca.len());
            for (j, d) in dst.iter_mut().enumerate().skip(done) {
                *d = pair(a.get(j * S).map_or(0, |&x| x as i32 - zp), 0);
            }
        }
    }
}

/// `out[j] = pair(a[j * S], b[j * S])` as far as `a` and `b` reach (0 past them);
/// specialized per stride so that the compiler vectorizes it.
#[inline(always)]
fn spread<const S: usize>(out: &mut [i32], a: &[i16], b: &[i16]) {
    let (ca, cb) = (a.as_chunks::<S>().0, b.as_chunks::<S>().0);
    let done = out.len().min(ca.len()).min(cb.len());
    for ((o, x), y) in out.iter_mut().zip(ca).zip(cb) {
        *o = pair(x[0] as i32, y[0] as i32);
    }
    for (j, o) in out.iter_mut().enumerate().skip(done) {
        let (x, y) = (a.get(j * S), b.get(j * S));
        *o = pair(x.map_or(0, |&v| v as i32), y.map_or(0, |&v| v as i32));
    }
}

/// Words `out[j] = quad(t[j * S], t[j * S + D], t[j * S + 2 D], t[j * S + 3 D])`, for the
/// `j` whose bytes `t` holds (the caller makes it long enough for all of `out`).
#[inline(always)]
fn spread_quads<const S: usize, const D: usize>(out: &mut [i32], t: &[u8]) {
    // Word `j` reads up to `t[j * S + 3 D]`: the words below `n` are inside `t`.
    let n = out.len().min(t.len().saturating_sub(3 * D).div_ceil(S));
    for (j, o) in out.iter_mut().take(n).enumerate() {
        let c = j * S;
        *o = quad([t[c], t[c + D], t[c + 2 * D], t[c + 3 * D]]);
    }
}

/// The epilogue of an int8 tile whose lanes are output channels, lane by lane: lane `l` of
/// `acc` is output channel `k0 + l`; adds its bias (`bias[k0 + l]`, wrapping), requantizes
/// it and stores it at `out[at + l * plane]` (the channels' planes are `plane` apart).
#[inline(always)]
pub fn store_channels<const L: usize>(
    rq: &Requant<'_>,
    acc: [i32; L],
    bias: &[i32],
    k0: usize,
    out: &mut [i8],
    at: usize,
    plane: usize,
) {
    for (l, &a) in acc.iter().enumerate() {
        let k = k0 + l;
        let (Some(&b), Some(c), Some(o)) =
            (bias.get(k), rq.channels.get(k), out.get_mut(at + l * plane))
        else {
            continue;
        };
        *o = c.requantize(a.wrapping_add(b), rq.output_zero_point, rq.min, rq.max);
    }
}

/// Stores `values` (output channels `l` of one pixel) at `out[at + l * plane]`.
#[inline(always)]
pub fn scatter<const L: usize>(values: &[i8; L], out: &mut [i8], at: usize, plane: usize) {
    for (l, &v) in values.iter().enumerate() {
        if let Some(o) = out.get_mut(at + l * plane) {
            *o = v;
        }
    }
}

/// The packed layouts of one int8 layer (see the module documentation). The input packing
/// is inlined into each variant, where it is compiled (and vectorized) with the variant's
/// instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QLayout {
    /// The depthwise layout (else the grouped one).
    pub depthwise: bool,
    /// Groups.
    pub groups: usize,
    /// Input channels per group.
    pub cpg: usize,
    /// Output channels per group.
    pub kpg: usize,
    /// `[KH, KW]`.
    pub kernel: [usize; 2],
    /// `[SH, SW]`: `SW` column phases per packed row.
    pub stride: [usize; 2],
    /// Output channels per work unit (divides the output channels; grouped: `TILE`, which
    /// divides the channels per group).
    pub block: usize,
    /// Values per word: 2 (int16 pairs) or 4 (8-bit quads, see [`QLayout::quads`]).
    pub elems: usize,
    /// Words per tap (grouped: `ceil(CPG / elems)`) or per kernel row (depthwise:
    /// `ceil(KW / elems)`).
    pub words: usize,
    /// `[H, W]`.
    pub input: [usize; 2],
    /// `[PH, PW]`.
    pub padding: [usize; 2],
    /// `[DH, DW]`.
    pub dilation: [usize; 2],
    /// `[H + 2 PH, W + 2 PW]`.
    pub padded: [usize; 2],
    /// The input's zero point, subtracted when the input is packed.
    pub input_zero_point: i32,
    /// Quads: added to every input byte (128 where the multiply reads the input unsigned,
    /// x86's `vpdpbusd`; 0 where it reads it signed, Arm's `sdot`). 0 for pairs.
    pub input_offset: i32,
    /// Depthwise with channels on the lanes ([`QLayout::lanes`]): `block` channels side by
    /// side in every packed word position, weights and input alike.
    pub channel_lanes: bool,
}

impl QLayout {
    /// Output channels.
    pub const fn out_channels(&self) -> usize {
        self.groups * self.kpg
    }

    /// Work units: output-channel blocks.
    pub const fn units(&self) -> usize {
        self.out_channels() / self.block
    }

    /// Column phases of a packed row (the column stride).
    pub const fn phases(&self) -> usize {
        self.stride[1]
    }

    /// Words per phase of a packed row: `ceil(WP / SW)`.
    pub const fn phase_len(&self) -> usize {
        self.padded[1].div_ceil(self.stride[1])
    }

    /// The word of padded column `col` within a packed row: word `col / SW` of phase
    /// `col % SW` (a row stores its columns by phase).
    #[inline(always)]
    pub const fn phase_word(&self, col: usize) -> usize {
        let s = self.phases();
        (col % s) * self.phase_len() + col / s
    }

    /// Whether a kernel reads phase `ph` of a packed row: kernel column offsets `2q * DW`
    /// (depthwise) or `c * DW` (grouped) that fall on it. At stride 2 a depthwise layer
    /// reads only the even columns.
    pub const fn phase_used(&self, ph: usize) -> bool {
        let (kw, dw, s) = (self.kernel[1], self.dilation[1], self.phases());
        let mut c = 0;
        while c < kw {
            let off = if self.depthwise {
                self.elems * c * dw
            } else {
                c * dw
            };
            if (!self.depthwise || c < self.words) && off % s == ph {
                return true;
            }
            c += 1;
        }
        false
    }

    /// Words of one packed plane: `HP * SW * RL`.
    pub const fn plane_words(&self) -> usize {
        self.padded[0] * self.phases() * self.phase_len()
    }

    /// Words of packed weights (the bias follows at this offset).
    pub const fn weight_words(&self) -> usize {
        let [kh, kw] = self.kernel;
        if self.depthwise {
            self.out_channels() * kh * self.words
        } else {
            self.out_channels() * self.words * kh * kw
        }
    }

    /// Words of packed weights and bias.
    pub const fn packed_len(&self) -> usize {
        self.weight_words() + self.out_channels()
    }

    /// Words of packed input: the whole input (grouped), one channel (depthwise) or one
    /// block of channels (channel lanes: `HP * WP * block`).
    pub const fn input_words(&self) -> usize {
        if self.channel_lanes {
            self.padded[0] * self.padded[1] * self.block
        } else if self.depthwise {
            self.plane_words()
        } else {
            self.groups * self.words * self.plane_words()
        }
    }

    /// Packs OIHW int8 weights `[K][CPG][KH][KW]` and an optional int32 bias (0 without
    /// one). Refuses a weight of -128 (the int8 spec's weights are symmetric, in
    /// [-127, 127]) with [`Error::WeightRange`], and wrong lengths.
    pub fn pack_weights(
        &self,
        weights: &[i8],
        bias: Option<&[i32]>,
        packed: &mut [i32],
    ) -> Result<(), Error> {
        let [kh, kw] = self.kernel;
        let taps = kh * kw;
        let k_len = self.out_channels();
        let len = crate::reference::check_len;
        len("weights", k_len * self.cpg * taps, weights.len())?;
        len("packed", self.packed_len(), packed.len())?;
        if let Some(b) = bias {
            len("bias", k_len, b.len())?;
        }
        if let Some(index) = weights.iter().position(|&w| w == i8::MIN) {
            return Err(Error::WeightRange { index });
        }
        packed.fill(0);
        // Weight (k, input channel c, tap t); 0 past the channels of a group or the
        // kernel's columns.
        let w = |k: usize, c: usize, r: usize, col: usize| -> i32 {
            if c < self.cpg && col < kw {
                let at = (k * self.cpg + c) * taps + r * kw + col;
                weights.get(at).map_or(0, |&v| v as i32)
            } else {
                0
            }
        };
        let (words, bias_out) = packed.split_at_mut(self.weight_words());
        let mut put = |at: usize, word: i32| {
            if let Some(slot) = words.get_mut(at) {
                *slot = word;
            }
        };
        let tile = self.block;
        let e = self.elems;
        for k in 0..k_len {
            for r in 0..kh {
                if self.depthwise {
                    for q in 0..self.words {
                        let word = self.word(|i| w(k, 0, r, e * q + i));
                        let at = if self.channel_lanes {
                            ((k / tile * kh + r) * self.words + q) * tile + k % tile
                        } else {
                            (k * kh + r) * self.words + q
                        };
                        put(at, word);
                    }
                    continue;
                }
                for col in 0..kw {
                    for p in 0..self.words {
                        let word = self.word(|i| w(k, e * p + i, r, col));
                        let at =
                            (((k / tile * self.words + p) * kh + r) * kw + col) * tile + k % tile;
                        put(at, word);
                    }
                }
            }
        }
        // The bias, less what the padding value adds to every product (0 for pairs).
        let pad = self.pad_value();
        let per_k = self.cpg * taps;
        for (k, out) in bias_out.iter_mut().enumerate() {
            let sum = weights.get(k * per_k..(k + 1) * per_k).map_or(0, |ws| {
                ws.iter().fold(0i32, |a, &v| a.wrapping_add(v as i32))
            });
            let b = bias.and_then(|b| b.get(k)).copied().unwrap_or(0);
            *out = b.wrapping_sub(pad.wrapping_mul(sum));
        }
        Ok(())
    }

    /// The value a padded pixel is packed as, which every packed input value carries on top
    /// of `x - input_zero_point`: 0 for pairs, `input_zero_point + input_offset` for quads.
    pub const fn pad_value(&self) -> i32 {
        if self.elems == 4 {
            self.input_zero_point + self.input_offset
        } else {
            0
        }
    }

    /// The packed word of a padded pixel: 0 for pairs, the pad value in each of the four
    /// bytes for quads (see [`QLayout::pad_value`]).
    pub const fn pad_word(&self) -> i32 {
        if self.elems == 4 {
            quad([self.pad_value() as u8; 4])
        } else {
            0
        }
    }

    /// This depthwise layout with channels on the lanes: `block` channels side by side.
    /// Weights `[K / block][KH][PAIRS][block]`; input, per block, `[HP][WP][block]`, word
    /// `(row, col)` of lane `l` pairing channel `l`'s padded pixels `col` and `col + DW`
    /// (the kernel columns `2q` and `2q + 1` of output column `ow` are at `col = ow * SW +
    /// 2q * DW`): a kernel reads one vector of `block` channels per output pixel and tap
    /// pair, for any stride, without phases. Of a quad layout ([`QLayout::quads`]), word
    /// `(row, col)` holds pixels `col`, `col + DW`, `col + 2 * DW` and `col + 3 * DW`
    /// (kernel columns `4q..4q + 4` at `col = ow * SW + 4q * DW`).
    pub const fn lanes(&self) -> QLayout {
        QLayout {
            channel_lanes: true,
            ..*self
        }
    }

    /// Whether a kernel reads word position `col` of a channel-lane row ([`QLayout::lanes`]):
    /// `col = ow * SW + elems * q * DW` for some kernel word `q` (tested by `col % SW`). At
    /// stride 2 without dilation, only the even positions; at stride 1, all.
    #[inline(always)]
    pub const fn lane_col_used(&self, col: usize) -> bool {
        let s = self.stride[1];
        let mut q = 0;
        while q < self.words {
            if (self.elems * q * self.dilation[1]) % s == col % s {
                return true;
            }
            q += 1;
        }
        false
    }

    /// This layout with quads in place of pairs, the input bytes offset by `input_offset`
    /// (see the module documentation). A depthwise layout's quads are four neighbouring
    /// columns (the generator gives them to the AVX-512 kernels).
    pub const fn quads(&self, input_offset: i32) -> QLayout {
        let per_word = if self.depthwise {
            self.kernel[1]
        } else {
            self.cpg
        };
        QLayout {
            elems: 4,
            words: per_word.div_ceil(4),
            input_offset,
            ..*self
        }
    }

    /// One packed word of `elems` values `v(0)`, `v(1)`, ...: an int16 pair, or four bytes,
    /// `v(0)` lowest.
    #[inline(always)]
    fn word(&self, v: impl Fn(usize) -> i32) -> i32 {
        if self.elems == 4 {
            quad([v(0) as u8, v(1) as u8, v(2) as u8, v(3) as u8])
        } else {
            pair(v(0), v(1))
        }
    }

    /// One packed row: word `j` of phase `ph` is `pair(v(lo, col), v(hi, col + shift))`
    /// for padded column `col = j * SW + ph`, where `v(row, col)` is `row[col - PW] -
    /// input_zero_point` inside the row and 0 in the padding (and without the row).
    #[inline(always)]
    fn pack_row(&self, lo: &[i8], hi: Option<&[i8]>, shift: usize, out: &mut [i32]) {
        let (w, pw, s, zp) = (
            self.input[1],
            self.padding[1],
            self.phases(),
            self.input_zero_point,
        );
        let rl = self.phase_len();
        let v = |row: Option<&[i8]>, col: usize| -> i32 {
            match row.and_then(|r| col.checked_sub(pw).and_then(|i| r.get(i))) {
                Some(&x) => x as i32 - zp,
                None => 0,
            }
        };
        for (ph, words) in out.chunks_exact_mut(rl).take(s).enumerate() {
            if !self.phase_used(ph) {
                // Never read (and left as it was).
                continue;
            }
            // Columns whose both values are inside the row: col >= PW and col + shift <
            // PW + W, i.e. j in [first, end).
            let first = pw.saturating_sub(ph).div_ceil(s).min(rl);
            let end = match (pw + w).checked_sub(1 + shift + ph) {
                Some(last) => (last / s + 1).clamp(first, rl),
                None => first,
            };
            // The borders, where a value may fall on the padding.
            for j in (0..first).chain(end..rl) {
                let col = j * s + ph;
                if let Some(word) = words.get_mut(j) {
                    *word = pair(v(Some(lo), col), v(hi, col + shift));
                }
            }
            // The inside, in one pass the compiler vectorizes at stride 1.
            let n = end - first;
            if n == 0 {
                continue;
            }
            let a0 = first * s + ph - pw;
            let (Some(dst), Some(a)) = (words.get_mut(first..end), lo.get(a0..)) else {
                continue;
            };
            let b = hi.and_then(|h| h.get(a0 + shift..));
            // Pairs of neighbours at stride 2 (a depthwise layer's kernel columns 2q and
            // 2q + 1): word j is the values 2j and 2j + 1, the row widened.
            let neighbours = s == 2
                && shift == 1
                && matches!((b, a.get(1..)), (Some(b), Some(a1)) if b.as_ptr() == a1.as_ptr());
            match s {
                2 if neighbours => {
                    let (ca, _) = a.as_chunks::<2>();
                    let done = dst.len().min(ca.len());
                    for (d, x) in dst.iter_mut().zip(ca) {
                        *d = pair(x[0] as i32 - zp, x[1] as i32 - zp);
                    }
                    for (j, d) in dst.iter_mut().enumerate().skip(done) {
                        let x = a.get(2 * j).map_or(0, |&x| x as i32 - zp);
                        let y = a.get(2 * j + 1).map_or(0, |&y| y as i32 - zp);
                        *d = pair(x, y);
                    }
                }
                1 => interior::<1>(dst, a, b, zp),
                2 => interior::<2>(dst, a, b, zp),
                3 => interior::<3>(dst, a, b, zp),
                4 => interior::<4>(dst, a, b, zp),
                _ => {
                    for (i, d) in dst.iter_mut().enumerate() {
                        let x = a.get(i * s).map_or(0, |&x| x as i32 - zp);
                        let y = b.and_then(|b| b.get(i * s)).map_or(0, |&y| y as i32 - zp);
                        *d = pair(x, y);
                    }
                }
            }
        }
    }

    /// The rows of one packed plane from the rows of `lo` (and `hi`): padding rows 0.
    #[inline(always)]
    fn pack_plane(&self, lo: &[i8], hi: Option<&[i8]>, shift: usize, out: &mut [i32]) {
        let [h, w] = self.input;
        let ph = self.padding[0];
        let row_words = self.phases() * self.phase_len();
        for (ih, words) in out.chunks_exact_mut(row_words).enumerate() {
            let i = ih.checked_sub(ph).filter(|&i| i < h);
            let range = i.map(|i| i * w..(i + 1) * w);
            let a = range.clone().and_then(|r| lo.get(r));
            let b = range.and_then(|r| hi.and_then(|hi| hi.get(r)));
            match a {
                Some(a) if self.depthwise && self.pack_row_padded(a, words) => {}
                Some(a) => self.pack_row(a, b, shift, words),
                None => words.fill(0),
            }
        }
    }

    /// A packed row's geometry: the input width, the left padding, the column phases, the
    /// words per phase and the column dilation.
    #[inline(always)]
    fn row_geometry(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.input[1],
            self.padding[1],
            self.phases(),
            self.phase_len(),
            self.dilation[1],
        )
    }

    /// A depthwise layout's packed row of pairs through a padded copy of the row on the
    /// stack: the copy (`x - input_zero_point` inside, 0 around it), then word `j` of phase
    /// `ph` = the copy's columns `col` and `col + DW` (`col = j * SW + ph`), loops without
    /// borders that the compiler vectorizes (the direct [`QLayout::pack_row`] spends most
    /// of a small row's time on its borders). `false` (nothing written) for rows of more
    /// than `MAX` padded columns, where the direct packing is faster: reading the copy
    /// at an offset from how it was written stalls store forwarding, once per vector.
    #[inline(always)]
    fn pack_row_padded(&self, row: &[i8], out: &mut [i32]) -> bool {
        const MAX: usize = 40;
        let (w, pw, s, rl, dw) = self.row_geometry();
        let need = s * rl + dw;
        if need > MAX || pw + w > need {
            return false;
        }
        let mut t = [0i16; MAX];
        let zp = self.input_zero_point as i16;
        if let (Some(dst), Some(src)) = (t.get_mut(pw..pw + w), row.get(..w)) {
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = x as i16 - zp;
            }
        }
        let t = &t[..need];
        for (ph, words) in out.chunks_exact_mut(rl).take(s).enumerate() {
            if !self.phase_used(ph) {
                continue;
            }
            let (a, b) = (&t[ph..], &t[ph + dw..]);
            match s {
                1 => spread::<1>(words, a, b),
                2 => spread::<2>(words, a, b),
                3 => spread::<3>(words, a, b),
                4 => spread::<4>(words, a, b),
                _ => {
                    for (j, o) in words.iter_mut().enumerate() {
                        let (x, y) = (a.get(j * s), b.get(j * s));
                        *o = pair(x.map_or(0, |&v| v as i32), y.map_or(0, |&v| v as i32));
                    }
                }
            }
        }
        true
    }

    /// A depthwise layout's packed row of quads through a padded copy of the row on the
    /// stack (`x + input_offset` inside, the pad value around it): word `j` of phase `ph`
    /// is the copy's bytes at `col`, `col + DW`, `col + 2 DW` and `col + 3 DW` (`col = j *
    /// SW + ph`), the same words as [`QLayout::pack_row_quads`] in loops without borders
    /// (the NEON `sdot` and portable-fallback packing of depthwise quads). `false` (nothing
    /// written) for rows of more than `MAX` padded bytes.
    #[inline(always)]
    fn pack_row_quads_padded(&self, row: &[i8], out: &mut [i32]) -> bool {
        const MAX: usize = 128;
        let (w, pw, s, rl, dw) = self.row_geometry();
        let need = s * rl + 3 * dw;
        if need > MAX || pw + w > need {
            return false;
        }
        let off = self.input_offset as u8;
        let mut t = [self.pad_value() as u8; MAX];
        if let (Some(dst), Some(src)) = (t.get_mut(pw..pw + w), row.get(..w)) {
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = (x as u8).wrapping_add(off);
            }
        }
        for (ph, words) in out.chunks_exact_mut(rl).take(s).enumerate() {
            if !self.phase_used(ph) {
                continue;
            }
            let t = &t[ph..need];
            match (s, dw) {
                (1, 1) => spread_quads::<1, 1>(words, t),
                (2, 1) => spread_quads::<2, 1>(words, t),
                (1, 2) => spread_quads::<1, 2>(words, t),
                (2, 2) => spread_quads::<2, 2>(words, t),
                _ => {
                    for (j, o) in words.iter_mut().enumerate() {
                        let b = |i: usize| t.get(j * s + i * dw).copied().unwrap_or(0);
                        *o = quad([b(0), b(1), b(2), b(3)]);
                    }
                }
            }
        }
        true
    }

    /// One packed row of quads: word `j` of phase `ph` is the bytes `v(i, col + i * shift)`,
    /// `i` in 0..4, for padded column `col = j * SW + ph`, where `v(i, col)` is
    /// `rows[i][col - PW] + input_offset` inside the row and the pad value outside it.
    /// Depthwise rows (`shift` = DW) come here only where
    /// [`QLayout::pack_row_quads_padded`] does not take them (wide rows), so it is written
    /// plainly, word by word.
    #[inline(always)]
    fn pack_row_quads(&self, rows: [&[i8]; 4], shift: usize, out: &mut [i32]) {
        let (pw, s, rl) = (self.padding[1], self.phases(), self.phase_len());
        let off = self.input_offset as u8;
        let pad = self.pad_value() as u8;
        let v = |i: usize, col: usize| -> u8 {
            match col.checked_sub(pw).and_then(|c| rows[i].get(c)) {
                Some(&x) => (x as u8).wrapping_add(off),
                None => pad,
            }
        };
        for (ph, words) in out.chunks_exact_mut(rl).take(s).enumerate() {
            if !self.phase_used(ph) {
                continue;
            }
            for (j, word) in words.iter_mut().enumerate() {
                let col = j * s + ph;
                *word = quad([0, 1, 2, 3].map(|i| v(i, col + i * shift)));
            }
        }
    }

    /// [`QLayout::pack_row_quads`] of four channels' rows (`shift` 0: the grouped layout),
    /// in two passes over chunks of columns that the compiler vectorizes: the words of
    /// consecutive columns (four rows interleaved), then their distribution over the column
    /// phases.
    #[inline(always)]
    fn pack_row_channel_quads(&self, rows: [&[i8]; 4], out: &mut [i32]) {
        const CHUNK: usize = 64;
        let (w, pw, s, rl) = (
            self.input[1],
            self.padding[1],
            self.phases(),
            self.phase_len(),
        );
        let off = self.input_offset as u8;
        let pad = self.pad_word();
        let put = |out: &mut [i32], col: usize, word: i32| {
            if let Some(o) = out.get_mut(self.phase_word(col)) {
                *o = word;
            }
        };
        for col in (0..pw).chain(pw + w..s * rl) {
            put(out, col, pad);
        }
        let mut words = [0i32; CHUNK];
        let mut c0 = 0;
        while c0 < w {
            let n = CHUNK.min(w - c0);
            let [Some(a), Some(b), Some(c), Some(d)] = rows.map(|r| r.get(c0..c0 + n)) else {
                return;
            };
            let b8 = |x: i8| (x as u8).wrapping_add(off) as u32;
            for ((((o, &x0), &x1), &x2), &x3) in words.iter_mut().zip(a).zip(b).zip(c).zip(d) {
                *o = (b8(x0) | (b8(x1) << 8) | (b8(x2) << 16) | (b8(x3) << 24)) as i32;
            }
            let first = pw + c0;
            match s {
                1 => {
                    if let Some(dst) = out.get_mut(first..first + n) {
                        dst.copy_from_slice(&words[..n]);
                    }
                }
                2 => {
                    // Even and odd columns of the chunk, to their phases.
                    let (pairs, rest) = words[..n].as_chunks::<2>();
                    let (p0, p1) = out.split_at_mut(rl.min(out.len()));
                    let (j0, j1) = (first / 2, first.div_ceil(2));
                    let (e, o) = if first % 2 == 0 { (p0, p1) } else { (p1, p0) };
                    // Column first + 2k is word first / 2 + k of its phase, column
                    // first + 2k + 1 word (first + 1) / 2 + k of the other.
                    if let (Some(e), Some(o)) = (
                        e.get_mut(j0..j0 + pairs.len()),
                        o.get_mut(j1..j1 + pairs.len()),
                    ) {
                        for ((e, o), pr) in e.iter_mut().zip(o.iter_mut()).zip(pairs) {
                            *e = pr[0];
                            *o = pr[1];
                        }
                    }
                    if let Some(&last) = rest.first() {
                        put(out, first + n - 1, last);
                    }
                }
                _ => {
                    for (i, &word) in words[..n].iter().enumerate() {
                        put(out, first + i, word);
                    }
                }
            }
            c0 += n;
        }
    }

    /// The rows of one packed plane of quads from the planes `planes` (value `i` of a word
    /// from `planes[i]`, `shift * i` columns further): padding rows hold the pad value.
    #[inline(always)]
    fn pack_plane_quads(&self, planes: [&[i8]; 4], shift: usize, out: &mut [i32]) {
        let [h, w] = self.input;
        let ph = self.padding[0];
        let row_words = self.phases() * self.phase_len();
        for (ih, words) in out.chunks_exact_mut(row_words).enumerate() {
            let i = ih.checked_sub(ph).filter(|&i| i < h);
            match i {
                Some(i) => {
                    let rows = planes.map(|p| p.get(i * w..(i + 1) * w).unwrap_or(&[]));
                    if shift == 0 {
                        self.pack_row_channel_quads(rows, words);
                    } else if !(self.depthwise && self.pack_row_quads_padded(rows[0], words)) {
                        self.pack_row_quads(rows, shift, words);
                    }
                }
                None => words.fill(self.pad_word()),
            }
        }
    }

    /// The depthwise layout's packed input of channel `c` into `out` (`input_words()`
    /// words). Lengths are the generated layer's, checked at its compile time; a shorter
    /// buffer is left partly unwritten, never overrun.
    #[inline(always)]
    pub fn pack_input_depthwise(&self, input: &[i8], c: usize, out: &mut [i32]) {
        let plane = self.input[0] * self.input[1];
        if let Some(x) = input.get(c * plane..(c + 1) * plane) {
            if self.elems == 4 {
                self.pack_plane_quads([x; 4], self.dilation[1], out);
            } else {
                self.pack_plane(x, Some(x), self.dilation[1], out);
            }
        }
    }

    /// The channel-lane layout's packed input of block `unit` (channels `unit * block..`,
    /// at most 16) into `out` (`input_words()` words); lengths as for
    /// [`QLayout::pack_input_depthwise`]. Per input row: the block's rows as 16 x 16 byte
    /// tiles transposed to columns of channels, less the zero point, in a padded copy of
    /// the row; then each word position a kernel reads ([`QLayout::lane_col_used`]) pairs a
    /// column with the one `DW` to its right, or (quads) holds it and the three `DW`,
    /// `2 * DW` and `3 * DW` to its right, offset by `input_offset` (the others are left as
    /// they were). Padding rows are the pad word.
    #[inline(always)]
    pub fn pack_input_lanes(&self, input: &[i8], unit: usize, out: &mut [i32]) {
        const MAX_W: usize = 96;
        let [h, w] = self.input;
        let [ph, pw] = self.padding;
        let [hp, wp] = self.padded;
        let (dw, b) = (self.dilation[1], self.block);
        let plane = h * w;
        let zp = self.input_zero_point as i16;
        if b > 16 || wp + dw > MAX_W {
            return;
        }
        let row_words = wp * b;
        // cols[col][l]: channel l's value at padded column col of the current row; the
        // padding columns stay 0 (every row rewrites the same inside columns).
        let pad = self.pad_value();
        let mut cols = [[0i16; 16]; MAX_W];
        for (ih, words) in out.chunks_exact_mut(row_words).take(hp).enumerate() {
            let Some(i) = ih.checked_sub(ph).filter(|&i| i < h) else {
                words.fill(self.pad_word());
                continue;
            };
            let mut j0 = 0;
            while j0 < w {
                let n = 16.min(w - j0);
                let mut t = [[0i8; 16]; 16];
                for (l, row) in t.iter_mut().enumerate().take(b) {
                    let at = (unit * b + l) * plane + i * w + j0;
                    if let (Some(dst), Some(src)) = (row.get_mut(..n), input.get(at..at + n)) {
                        dst.copy_from_slice(src);
                    }
                }
                let tt = transpose16(&t);
                for (col, v) in cols.iter_mut().skip(pw + j0).zip(tt.iter().take(n)) {
                    for (c, &x) in col.iter_mut().zip(v) {
                        *c = x as i16 - zp;
                    }
                }
                j0 += n;
            }
            for (col, word) in words.chunks_exact_mut(b).enumerate() {
                // Positions no kernel reads are left as they were.
                if !self.lane_col_used(col) {
                    continue;
                }
                // Value t of the word (`x - zp`, 0 in the padding and past the copy) plus the
                // pad value: `x - zp` for pairs, the byte `x + input_offset` for quads.
                for (l, o) in word.iter_mut().enumerate() {
                    *o = self.word(|t| cols.get(col + t * dw).map_or(0, |c| c[l] as i32) + pad);
                }
            }
        }
    }

    /// The groups whose input the work units `first..first + units` read (grouped layout):
    /// a unit is `block` output channels of one group.
    pub const fn unit_groups(&self, first: usize, units: usize) -> core::ops::Range<usize> {
        if units == 0 || self.kpg == 0 {
            return 0..0;
        }
        let g0 = first * self.block / self.kpg;
        let g1 = ((first + units) * self.block - 1) / self.kpg + 1;
        g0..if g1 < self.groups { g1 } else { self.groups }
    }

    /// The grouped layout's packed input of the groups `groups` into their places in `out`
    /// (`input_words()` words; the other groups' places are left as they were); lengths as
    /// for [`QLayout::pack_input_depthwise`].
    #[inline(always)]
    pub fn pack_input_grouped(
        &self,
        input: &[i8],
        groups: core::ops::Range<usize>,
        out: &mut [i32],
    ) {
        let plane = self.input[0] * self.input[1];
        let words = self.plane_words();
        let mut planes = out.chunks_exact_mut(words).skip(groups.start * self.words);
        for g in groups {
            for p in 0..self.words {
                let Some(dst) = planes.next() else {
                    return;
                };
                if self.elems == 4 {
                    // Channels past the group's take the first one's values: their
                    // weights are 0.
                    let c0 = g * self.cpg + 4 * p;
                    let first = input.get(c0 * plane..(c0 + 1) * plane).unwrap_or(&[]);
                    let src = [0, 1, 2, 3].map(|i| {
                        let c = c0 + i;
                        match (4 * p + i < self.cpg).then(|| input.get(c * plane..(c + 1) * plane))
                        {
                            Some(Some(x)) => x,
                            _ => first,
                        }
                    });
                    self.pack_plane_quads(src, 0, dst);
                    continue;
                }
                let c0 = g * self.cpg + 2 * p;
                let lo = input.get(c0 * plane..(c0 + 1) * plane);
                let hi = (2 * p + 1 < self.cpg)
                    .then(|| input.get((c0 + 1) * plane..(c0 + 2) * plane))
                    .flatten();
                match lo {
                    Some(lo) => self.pack_plane(lo, hi, 0, dst),
                    None => dst.fill(0),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn pair_keeps_both_halves() {
        for (lo, hi) in [(0, 0), (-1, 1), (-255, 255), (255, -255), (-127, -128)] {
            let w = pair(lo, hi);
            assert_eq!((w as i16 as i32, (w >> 16) as i16 as i32), (lo, hi));
        }
    }

    fn layout(depthwise: bool, stride: usize) -> QLayout {
        QLayout {
            depthwise,
            groups: if depthwise { 8 } else { 2 },
            cpg: if depthwise { 1 } else { 3 },
            kpg: if depthwise { 1 } else { 4 },
            kernel: [3, 3],
            stride: [stride, stride],
            block: 4,
            elems: 2,
            words: 2,
            input: [4, 5],
            padding: [1, 1],
            dilation: [1, 1],
            padded: [6, 7],
            input_zero_point: -3,
            input_offset: 0,
            channel_lanes: false,
        }
    }

    #[test]
    fn weights_refuse_minus_128_and_wrong_lengths() {
        let l = layout(false, 1);
        let mut w = [1i8; 8 * 3 * 9];
        let mut packed = [0i32; 8 * 9 * 2 + 8];
        assert!(l.pack_weights(&w, None, &mut packed).is_ok());
        w[17] = i8::MIN;
        assert_eq!(
            l.pack_weights(&w, None, &mut packed),
            Err(Error::WeightRange { index: 17 })
        );
        assert!(matches!(
            l.pack_weights(&w[1..], None, &mut packed),
            Err(Error::BufferLength { .. })
        ));
    }

    /// The packed word of plane `plane` at padded (row, col), spelled out.
    fn word_at(l: &QLayout, out: &[i32], plane: usize, row: usize, col: usize) -> i32 {
        let (s, rl) = (l.phases(), l.phase_len());
        out[plane * l.plane_words() + (row * s + col % s) * rl + col / s]
    }

    #[test]
    fn grouped_input_pairs_channels_and_pads_with_zero() {
        for stride in [1, 2, 3] {
            let l = layout(false, stride);
            let input: [i8; 6 * 20] = core::array::from_fn(|i| i as i8);
            let mut out = vec![7i32; l.input_words()];
            l.pack_input_grouped(&input, 0..l.groups, &mut out);
            let x = |c: usize, r: usize, col: usize| input[c * 20 + r * 5 + col] as i32 + 3;
            assert!((0..stride).all(|ph| l.phase_used(ph)) || stride > 3);
            for r in 0..4 {
                for col in 0..5 {
                    // Group 1, pair 0 = channels 3 and 4, pair 1 = channel 5 and nothing.
                    assert_eq!(
                        word_at(&l, &out, 2, r + 1, col + 1),
                        pair(x(3, r, col), x(4, r, col))
                    );
                    assert_eq!(word_at(&l, &out, 3, r + 1, col + 1), pair(x(5, r, col), 0));
                }
            }
            for col in 0..7 {
                assert_eq!(word_at(&l, &out, 1, 0, col), 0);
                assert_eq!(word_at(&l, &out, 1, 5, col), 0);
            }
            for r in 0..6 {
                assert_eq!(word_at(&l, &out, 0, r, 0), 0);
                assert_eq!(word_at(&l, &out, 0, r, 6), 0);
            }
        }
    }

    /// A layout's packed value of `x` (or the padding) as its words hold it.
    fn packed_value(l: &QLayout, x: Option<i8>) -> i32 {
        match x {
            Some(x) if l.elems == 4 => (x as u8).wrapping_add(l.input_offset as u8) as i32,
            Some(x) => x as i32 - l.input_zero_point,
            None if l.elems == 4 => l.pad_value() as u8 as i32,
            None => 0,
        }
    }

    #[test]
    fn grouped_quads_hold_four_channels_and_the_pad_value() {
        // 6 channels per group: quad 0 = channels 0-3, quad 1 = channels 4, 5 and two
        // channels past the group (any value: their weights are 0).
        for (stride, pw, w) in [(1, 1, 5), (2, 1, 5), (2, 2, 70), (2, 0, 9), (3, 1, 5)] {
            let l = QLayout {
                cpg: 6,
                input: [3, w],
                padding: [1, pw],
                padded: [5, w + 2 * pw],
                ..layout(false, stride)
            }
            .quads(128);
            assert_eq!((l.elems, l.words), (4, 2));
            let plane = 3 * w;
            let input: std::vec::Vec<i8> = (0..12 * plane)
                .map(|i| (i * 37 % 256) as u8 as i8)
                .collect();
            let mut out = vec![7i32; l.input_words()];
            l.pack_input_grouped(&input, 0..l.groups, &mut out);
            let x = |c: usize, r: usize, col: usize| -> Option<i8> {
                let inside = (1..=3).contains(&r) && (pw..pw + w).contains(&col);
                inside.then(|| input[c * plane + (r - 1) * w + col - pw])
            };
            for r in 0..5 {
                for col in 0..w + 2 * pw {
                    for (p, c0) in [(2, 6), (3, 10)] {
                        let bytes = word_at(&l, &out, p, r, col).to_le_bytes();
                        for (i, &b) in bytes.iter().enumerate().take(if c0 == 10 { 2 } else { 4 }) {
                            assert_eq!(
                                b as i32,
                                packed_value(&l, x(c0 + i, r, col)),
                                "stride {stride} pw {pw} w {w}: plane {p} ({r}, {col}) byte {i}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn quad_weights_and_the_bias_take_back_the_pad_value() {
        let l = layout(false, 1).quads(128);
        let w: [i8; 8 * 3 * 9] = core::array::from_fn(|i| (i as i32 * 7 % 255 - 127) as i8);
        let bias: [i32; 8] = core::array::from_fn(|k| k as i32 * 1000 - 3000);
        let mut packed = vec![0i32; l.packed_len()];
        l.pack_weights(&w, Some(&bias), &mut packed).unwrap();
        // Output channel 5 (tile 1, lane 1), tap (2, 1), input channels 0-2 and a 0.
        let at = (l.words * 3 + 2) * 3 * 4 + 4 + 1;
        let word = packed[at].to_le_bytes();
        let wv = |c: usize| w[(5 * 3 + c) * 9 + 2 * 3 + 1];
        assert_eq!(word, [wv(0) as u8, wv(1) as u8, wv(2) as u8, 0]);
        let sum: i32 = w[5 * 27..6 * 27].iter().map(|&v| v as i32).sum();
        assert_eq!(packed[l.weight_words() + 5], bias[5] - (128 - 3) * sum);
    }

    /// A depthwise layout of 32 channels in blocks of 16, a 3x3 kernel on 3 rows of `w`
    /// columns, padding 1 x 2.
    fn lane_test_layout(stride: usize, dil: usize, w: usize) -> QLayout {
        QLayout {
            groups: 32,
            block: 16,
            kernel: [3, 3],
            input: [3, w],
            padding: [1, 2],
            dilation: [1, dil],
            padded: [5, w + 4],
            ..layout(true, stride)
        }
    }

    #[test]
    fn channel_lanes_put_a_block_of_channels_side_by_side() {
        for (stride, dil, w) in [(1, 1, 5), (2, 1, 19), (1, 2, 7)] {
            let l = lane_test_layout(stride, dil, w).lanes();
            let plane = 3 * w;
            let input: std::vec::Vec<i8> = (0..32 * plane)
                .map(|i| (i * 29 % 256) as u8 as i8)
                .collect();
            let mut out = vec![7i32; l.input_words()];
            l.pack_input_lanes(&input, 1, &mut out);
            let v = |c: usize, r: usize, col: usize| -> i32 {
                let inside = (1..=3).contains(&r) && (2..2 + w).contains(&col);
                if inside {
                    input[c * plane + (r - 1) * w + col - 2] as i32 + 3
                } else {
                    0
                }
            };
            for r in 0..5 {
                for col in 0..w + 4 {
                    // At stride 2 a 3x3 kernel reads the even positions only; the odd ones
                    // of the input rows are left as they were (padding rows are 0).
                    assert_eq!(l.lane_col_used(col), stride == 1 || col % 2 == 0);
                    for lane in 0..16 {
                        let want = if l.lane_col_used(col) || !(1..=3).contains(&r) {
                            pair(v(16 + lane, r, col), v(16 + lane, r, col + dil))
                        } else {
                            7
                        };
                        assert_eq!(
                            out[(r * (w + 4) + col) * 16 + lane],
                            want,
                            "stride {stride} w {w} ({r}, {col}) lane {lane}"
                        );
                    }
                }
            }
            // Weights: block 1, kernel row 2, pair 1 (columns 2 and none), lane 3.
            let wts: std::vec::Vec<i8> = (0..32 * 9)
                .map(|i| i % 200 - 100)
                .map(|v| v as i8)
                .collect();
            let mut packed = vec![0i32; l.packed_len()];
            l.pack_weights(&wts, None, &mut packed).unwrap();
            let k = 16 + 3;
            assert_eq!(
                packed[((3 + 2) * 2 + 1) * 16 + 3],
                pair(wts[k * 9 + 8] as i32, 0)
            );
        }
    }

    #[test]
    fn channel_lane_quads_hold_four_columns_offset() {
        for (stride, dil, w) in [(1, 1, 5), (2, 1, 19), (1, 2, 7)] {
            let l = lane_test_layout(stride, dil, w).quads(128).lanes();
            let plane = 3 * w;
            let input: std::vec::Vec<i8> = (0..32 * plane)
                .map(|i| (i * 31 % 256) as u8 as i8)
                .collect();
            let mut out = vec![7i32; l.input_words()];
            l.pack_input_lanes(&input, 1, &mut out);
            // The byte of channel c's padded pixel (r, col): x + 128, the pad value
            // (zero point -3, + 128) outside the input.
            let byte = |c: usize, r: usize, col: usize| -> u8 {
                let inside = (1..=3).contains(&r) && (2..2 + w).contains(&col);
                if inside {
                    (input[c * plane + (r - 1) * w + col - 2] as i32 + 128) as u8
                } else {
                    125
                }
            };
            for r in 0..5 {
                for col in 0..w + 4 {
                    for lane in 0..16 {
                        let want = if l.lane_col_used(col) || !(1..=3).contains(&r) {
                            quad([0, 1, 2, 3].map(|t| byte(16 + lane, r, col + t * dil)))
                        } else {
                            7
                        };
                        assert_eq!(
                            out[(r * (w + 4) + col) * 16 + lane],
                            want,
                            "stride {stride} w {w} ({r}, {col}) lane {lane}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn depthwise_quads_hold_four_neighbouring_columns() {
        for stride in [1, 2, 3] {
            let l = layout(true, stride).quads(0);
            assert_eq!((l.elems, l.words), (4, 1));
            let input: [i8; 8 * 20] = core::array::from_fn(|i| (i as i8).wrapping_mul(7));
            let mut out = vec![7i32; l.input_words()];
            l.pack_input_depthwise(&input, 5, &mut out);
            let x = |r: usize, col: usize| -> Option<i8> {
                let inside = (1..=4).contains(&r) && (1..=5).contains(&col);
                inside.then(|| input[5 * 20 + (r - 1) * 5 + col - 1])
            };
            for r in 0..6 {
                for col in (0..7).filter(|c| l.phase_used(c % stride)) {
                    let bytes = word_at(&l, &out, 0, r, col).to_le_bytes();
                    for (i, &b) in bytes.iter().enumerate() {
                        assert_eq!(
                            b as i32,
                            packed_value(&l, x(r, col + i)),
                            "stride {stride} ({r}, {col}) byte {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn padded_depthwise_quads_match_the_plain_packing() {
        for (stride, dilation, w) in [
            (1, 1, 5),
            (2, 1, 5),
            (1, 2, 9),
            (2, 2, 14),
            (3, 1, 11),
            (3, 2, 16),
            (1, 1, 56),
            (2, 1, 112),
        ] {
            let mut l = layout(true, stride);
            l.dilation = [1, dilation];
            l.input = [4, w];
            l.padded = [6, w + 2];
            let l = l.quads(128);
            let all: [i8; 112] = core::array::from_fn(|i| (i as i8).wrapping_mul(37));
            let row = &all[..w];
            let words = l.phases() * l.phase_len();
            let mut plain = vec![7i32; words];
            l.pack_row_quads([row; 4], dilation, &mut plain);
            let mut padded = vec![7i32; words];
            assert!(
                l.pack_row_quads_padded(row, &mut padded),
                "stride {stride} dilation {dilation} width {w}"
            );
            assert_eq!(
                padded, plain,
                "stride {stride} dilation {dilation} width {w}"
            );
        }
    }

    #[test]
    fn depthwise_input_pairs_columns() {
        for stride in [1, 2, 3] {
            let l = layout(true, stride);
            let input: [i8; 8 * 20] = core::array::from_fn(|i| (i as i8).wrapping_mul(3));
            let mut out = vec![7i32; l.input_words()];
            l.pack_input_depthwise(&input, 6, &mut out);
            let v = |r: usize, col: usize| -> i32 {
                if (1..=4).contains(&r) && (1..=5).contains(&col) {
                    input[6 * 20 + (r - 1) * 5 + col - 1] as i32 + 3
                } else {
                    0
                }
            };
            for r in 0..6 {
                for col in (0..7).filter(|c| l.phase_used(c % stride)) {
                    assert_eq!(
                        word_at(&l, &out, 0, r, col),
                        pair(v(r, col), v(r, col + 1)),
                        "stride {stride} ({r}, {col})"
                    );
                }
            }
        }
    }
}
