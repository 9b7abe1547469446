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
    /// The variant `run` runs on this CPU.
    pub dispatched_isa: fn() -> Isa,
    /// Every variant.
    pub variants: &'static [QVariant],
    /// The weights packed at generation time, when baked.
    pub baked: Option<&'static [i32]>,
}

/// Whether this CPU runs the int8 variant of `isa`: as [`Isa::is_supported`], and on
/// AVX-512 also AVX-512BW and AVX-512 VNNI (`vpdpwssd`), which every AVX-512 CPU since
/// Ice Lake and Zen 4 has.
pub fn supported(isa: Isa) -> bool {
    match isa {
        Isa::Avx512 => isa.is_supported() && crate::x86::has_avx512_vnni(),
        _ => isa.is_supported(),
    }
}

/// Two int16 values in one int32 word, `lo` in the low half (their low 16 bits).
#[inline(always)]
pub const fn pair(lo: i32, hi: i32) -> i32 {
    ((lo as u16 as u32) | ((hi as u16 as u32) << 16)) as i32
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
    /// Words per tap (grouped: `ceil(CPG / 2)`) or per kernel row (depthwise:
    /// `ceil(KW / 2)`).
    pub pairs: usize,
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

    /// Whether a kernel reads phase `ph` of a packed row: kernel column offsets `2q * DW`
    /// (depthwise) or `c * DW` (grouped) that fall on it. At stride 2 a depthwise layer
    /// reads only the even columns.
    pub const fn phase_used(&self, ph: usize) -> bool {
        let (kw, dw, s) = (self.kernel[1], self.dilation[1], self.phases());
        let mut c = 0;
        while c < kw {
            let off = if self.depthwise { 2 * c * dw } else { c * dw };
            if (!self.depthwise || c < self.pairs) && off % s == ph {
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
            self.out_channels() * kh * self.pairs
        } else {
            self.out_channels() * self.pairs * kh * kw
        }
    }

    /// Words of packed weights and bias.
    pub const fn packed_len(&self) -> usize {
        self.weight_words() + self.out_channels()
    }

    /// Words of packed input: the whole input (grouped) or one channel (depthwise).
    pub const fn input_words(&self) -> usize {
        if self.depthwise {
            self.plane_words()
        } else {
            self.groups * self.pairs * self.plane_words()
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
        for k in 0..k_len {
            for r in 0..kh {
                if self.depthwise {
                    for q in 0..self.pairs {
                        let word = pair(w(k, 0, r, 2 * q), w(k, 0, r, 2 * q + 1));
                        put((k * kh + r) * self.pairs + q, word);
                    }
                    continue;
                }
                for col in 0..kw {
                    for p in 0..self.pairs {
                        let word = pair(w(k, 2 * p, r, col), w(k, 2 * p + 1, r, col));
                        let at =
                            (((k / tile * self.pairs + p) * kh + r) * kw + col) * tile + k % tile;
                        put(at, word);
                    }
                }
            }
        }
        if let Some(b) = bias {
            bias_out.copy_from_slice(b);
        }
        Ok(())
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
                Some(a) => self.pack_row(a, b, shift, words),
                None => words.fill(0),
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
            self.pack_plane(x, Some(x), self.dilation[1], out);
        }
    }

    /// The grouped layout's packed input (every group) into `out` (`input_words()` words);
    /// lengths as for [`QLayout::pack_input_depthwise`].
    #[inline(always)]
    pub fn pack_input_grouped(&self, input: &[i8], out: &mut [i32]) {
        let plane = self.input[0] * self.input[1];
        let words = self.plane_words();
        let mut planes = out.chunks_exact_mut(words);
        for g in 0..self.groups {
            for p in 0..self.pairs {
                let Some(dst) = planes.next() else {
                    return;
                };
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
            pairs: 2,
            input: [4, 5],
            padding: [1, 1],
            dilation: [1, 1],
            padded: [6, 7],
            input_zero_point: -3,
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
            l.pack_input_grouped(&input, &mut out);
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
