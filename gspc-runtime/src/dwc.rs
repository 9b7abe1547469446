//! Data movement of the channel-blocked depthwise strategy (`gspc-dwc`).
//!
//! A block of [`CB`] consecutive channels of an NCHW tensor is packed into the scratch as
//! pixels of `CB` channels, `[H * W][CB]` (the input plane as one row of pixels, no
//! padding: the kernels leave out the taps over it), so that the kernels load one vector
//! of channels per pixel and tap; the kernels write `[OH * OW][CB]`, and
//! [`unpack_pixels`] turns that back into `CB` NCHW planes. Both are transposes of a range
//! of pixels: a block can be computed in bands of output rows, each packing only the input
//! rows its rows read and writing only its rows of the planes (`parallel::split_bands`).
//! The portable versions here are plain loops; `x86` has AVX2 ones with in-register 8x8
//! transposes.
//!
//! Every function checks the lengths of its buffers first and does nothing when they are
//! too short (the generated callers pass buffers the generator sized, so that never
//! happens; nothing here panics).

use core::ops::Range;

/// Channels per block.
pub const CB: usize = 16;

/// Whether pixels `pixels` of channels `c0..c0 + CB` of `input` (planes of `plane` values)
/// and their packed form fit the buffers.
pub(crate) fn pixels_fit(
    input: &[f32],
    plane: usize,
    c0: usize,
    pixels: &Range<usize>,
    dst: &[f32],
) -> bool {
    pixels.start <= pixels.end
        && pixels.end <= plane
        && (c0 + CB)
            .checked_mul(plane)
            .is_some_and(|n| n <= input.len())
        && pixels.end.checked_mul(CB).is_some_and(|n| n <= dst.len())
}

/// Whether `src` holds the packed pixels `first..first + n` that [`unpack_pixels`] writes
/// to `planes`, `n` being the length of every plane (all the same); returns `n`.
pub(crate) fn planes_fit<T>(src: &[f32], first: usize, planes: &[&mut [T]; CB]) -> Option<usize> {
    let n = planes[0].len();
    let fits = planes.iter().all(|p| p.len() == n)
        && first
            .checked_add(n)
            .and_then(|end| end.checked_mul(CB))
            .is_some_and(|end| end <= src.len());
    fits.then_some(n)
}

/// Packs pixels `pixels` of channels `c0..c0 + CB` of the NCHW `input` (planes of `plane`
/// values) into `dst` as `[plane][CB]`: `dst[p * CB + c] = input[(c0 + c) * plane + p]`
/// for `p` in `pixels`; the other pixels of `dst` are left as they are.
pub fn pack_pixels(input: &[f32], plane: usize, c0: usize, pixels: Range<usize>, dst: &mut [f32]) {
    if !pixels_fit(input, plane, c0, &pixels, dst) {
        return;
    }
    for c in 0..CB {
        let src = &input[(c0 + c) * plane..][pixels.clone()];
        for (p, &v) in pixels.clone().zip(src) {
            dst[p * CB + c] = v;
        }
    }
}

/// Writes the packed pixels `first..first + n` of `src` (`[pixels][CB]`) to `CB` planes of
/// `n` values each: `planes[c][i] = src[(first + i) * CB + c]`. Does nothing when the
/// planes differ in length or `src` is short.
pub fn unpack_pixels(src: &[f32], first: usize, planes: &mut [&mut [f32]; CB]) {
    let Some(n) = planes_fit(src, first, planes) else {
        return;
    };
    for (c, plane) in planes.iter_mut().enumerate() {
        for (i, v) in plane[..n].iter_mut().enumerate() {
            *v = src[(first + i) * CB + c];
        }
    }
}

/// [`unpack_pixels`] of a whole block: pixels `0..pixels` of `src` into the `CB` planes of
/// `pixels` values at the start of `block`: `block[c * pixels + p] = src[p * CB + c]`.
pub fn unpack_block(src: &[f32], pixels: usize, block: &mut [f32]) {
    let total = pixels.saturating_mul(CB);
    if src.len() < total || block.len() < total {
        return;
    }
    for (p, px) in src[..total].chunks_exact(CB).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            block[c * pixels + p] = v;
        }
    }
}

/// The `CB` planes of `pixels` values at the start of `block` (one output block of `CB`
/// channels), as the slices [`unpack_pixels`] writes; planes past the end of a short
/// `block` are empty (and then `unpack_pixels` writes nothing).
pub fn planes_mut<T>(block: &mut [T], pixels: usize) -> [&mut [T]; CB] {
    let mut planes = block.chunks_exact_mut(pixels.max(1));
    core::array::from_fn(|_| planes.next().unwrap_or_default())
}

// (For the tests of the x86 packers.)
#[cfg(all(test, feature = "std", target_arch = "x86_64"))]
pub(crate) use tests::{pack_cases, reference_pack};

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// The packed pixels `pixels` of channels `c0..` of `input`, NaN elsewhere.
    pub(crate) fn reference_pack(
        input: &[f32],
        plane: usize,
        c0: usize,
        pixels: Range<usize>,
    ) -> Vec<f32> {
        let mut out = vec![f32::NAN; plane * CB];
        for p in pixels {
            for c in 0..CB {
                out[p * CB + c] = input[(c0 + c) * plane + p];
            }
        }
        out
    }

    /// `(plane, pixels)`: whole planes narrower and wider than a vector, and ranges that
    /// start and end off a vector's edge.
    pub(crate) fn pack_cases() -> Vec<(usize, Range<usize>)> {
        let mut v = Vec::new();
        for plane in [1, 3, 7, 8, 21, 49, 196, 200] {
            v.push((plane, 0..plane));
            v.push((plane, plane / 3..plane));
            v.push((plane, 0..plane / 2));
            v.push((plane, plane / 4..plane - plane / 5));
            v.push((plane, plane / 2..plane / 2));
        }
        v
    }

    #[test]
    fn portable_pack_and_unpack_transpose_ranges() {
        for (plane, pixels) in pack_cases() {
            let input: Vec<f32> = (0..2 * CB * plane).map(|i| i as f32 + 0.5).collect();
            let mut dst = vec![f32::NAN; plane * CB];
            pack_pixels(&input, plane, CB, pixels.clone(), &mut dst);
            let want = reference_pack(&input, plane, CB, pixels.clone());
            assert_eq!(dst.map_bits(), want.map_bits(), "{plane} pixels {pixels:?}");
            let src: Vec<f32> = (0..plane * CB).map(|i| i as f32).collect();
            let n = pixels.len();
            let mut block = vec![f32::NAN; n * CB];
            unpack_pixels(&src, pixels.start, &mut planes_mut(&mut block, n));
            for i in 0..n {
                for c in 0..CB {
                    assert_eq!(block[c * n + i], src[(pixels.start + i) * CB + c]);
                }
            }
            let mut whole = vec![f32::NAN; n * CB];
            unpack_block(&src[pixels.start * CB..], n, &mut whole);
            assert_eq!(whole.map_bits(), block.map_bits());
        }
    }

    trait Bits {
        fn map_bits(&self) -> Vec<u32>;
    }

    impl Bits for Vec<f32> {
        fn map_bits(&self) -> Vec<u32> {
            self.iter().map(|v| v.to_bits()).collect()
        }
    }

    #[test]
    fn short_buffers_are_left_alone() {
        let mut dst = vec![1.0; 4 * CB - 1];
        pack_pixels(&[0.0; 64], 4, 0, 0..4, &mut dst);
        assert!(dst.iter().all(|&v| v == 1.0));
        // Pixels past the plane, or a reversed range.
        let mut dst = vec![1.0; 8 * CB];
        pack_pixels(&[0.0; 4 * CB], 4, 0, 2..5, &mut dst);
        #[allow(clippy::reversed_empty_ranges)]
        pack_pixels(&[0.0; 4 * CB], 4, 0, 3..2, &mut dst);
        // Channels past the input.
        pack_pixels(&[0.0; 4 * CB], 4, 1, 0..4, &mut dst);
        assert!(dst.iter().all(|&v| v == 1.0));
        // Planes of different lengths, or a short source.
        let mut block = vec![1.0; 4 * CB - 1];
        unpack_pixels(&[0.0; 64], 0, &mut planes_mut(&mut block, 4));
        assert!(block.iter().all(|&v| v == 1.0));
        let mut block = vec![1.0; 4 * CB];
        unpack_pixels(&[0.0; 64], 1, &mut planes_mut(&mut block, 4));
        assert!(block.iter().all(|&v| v == 1.0));
        unpack_block(&[0.0; 63], 4, &mut block);
        unpack_block(&[0.0; 64], 5, &mut block);
        assert!(block.iter().all(|&v| v == 1.0));
    }
}
