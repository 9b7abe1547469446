//! Data movement of the channel-blocked depthwise strategy (`gspc-dwc`).
//!
//! A block of [`CB`] consecutive channels of an NCHW tensor is packed into the scratch as
//! zero-padded pixels of `CB` channels, `[H + 2 PH][W + 2 PW][CB]`, so that the kernels
//! load one vector of channels per pixel and tap; the kernels write `[OH * OW][CB]`, and
//! [`unpack_output`] turns that back into `CB` NCHW planes. Both are transposes: the
//! portable versions here are plain loops; `x86` has AVX-512 and AVX2 ones with in-register
//! 16x16 / 8x8 transposes.
//!
//! Every function checks the lengths of its buffers first and does nothing when they are
//! too short (the generated callers pass buffers the generator sized, so that never
//! happens; nothing here panics).

/// Channels per block.
pub const CB: usize = 16;

/// The shape of one layer's packed input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Rows of zeros above (and at least below) the input.
    pub ph: usize,
    /// Columns of zeros left of (and at least right of) the input.
    pub pw: usize,
    /// Packed rows (`h + 2 ph`).
    pub hp: usize,
    /// Packed columns (`w + 2 pw`).
    pub wp: usize,
}

impl Geometry {
    /// Values of the packed input: `hp * wp * CB`.
    pub const fn packed_len(&self) -> usize {
        self.hp * self.wp * CB
    }

    /// Whether channels `c0..c0 + CB` of `input` and the packed input fit the buffers.
    pub(crate) fn fits(&self, input: &[f32], c0: usize, dst: &[f32]) -> bool {
        let plane = self.h * self.w;
        self.hp >= self.h + self.ph
            && self.wp >= self.w + self.pw
            && (c0 + CB)
                .checked_mul(plane)
                .is_some_and(|n| n <= input.len())
            && dst.len() >= self.packed_len()
    }

    /// Zeroes the padding of the packed input (the rows above and below, and the columns
    /// left and right of every input row).
    pub(crate) fn zero_padding(&self, dst: &mut [f32]) {
        let row = self.wp * CB;
        let (top, bottom) = (self.ph * row, (self.ph + self.h) * row);
        let end = self.packed_len().min(dst.len());
        if let Some(s) = dst.get_mut(..top) {
            s.fill(0.0);
        }
        if let Some(s) = dst.get_mut(bottom..end) {
            s.fill(0.0);
        }
        let right = (self.w + self.pw) * CB;
        for y in 0..self.h {
            let at = (self.ph + y) * row;
            if let Some(s) = dst.get_mut(at..at + self.pw * CB) {
                s.fill(0.0);
            }
            if let Some(s) = dst.get_mut(at + right..at + row) {
                s.fill(0.0);
            }
        }
    }
}

/// Packs channels `c0..c0 + CB` of the NCHW `input` into `dst` as `[hp][wp][CB]`, zero
/// padded.
pub fn pack_input(input: &[f32], c0: usize, g: &Geometry, dst: &mut [f32]) {
    if !g.fits(input, c0, dst) {
        return;
    }
    g.zero_padding(dst);
    let plane = g.h * g.w;
    for y in 0..g.h {
        let row = ((g.ph + y) * g.wp + g.pw) * CB;
        for c in 0..CB {
            let src = &input[(c0 + c) * plane + y * g.w..][..g.w];
            for (x, &v) in src.iter().enumerate() {
                dst[row + x * CB + c] = v;
            }
        }
    }
}

/// Writes the `pixels` x `CB` values of `src` (`[pixels][CB]`) to `CB` NCHW planes of
/// `pixels` values: `dst[c * pixels + p] = src[p * CB + c]`.
pub fn unpack_output(src: &[f32], pixels: usize, dst: &mut [f32]) {
    let n = pixels * CB;
    if src.len() < n || dst.len() < n {
        return;
    }
    for (p, px) in src[..n].chunks_exact(CB).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            dst[c * pixels + p] = v;
        }
    }
}

// (For the tests of the x86 packers.)
#[cfg(all(test, feature = "std", target_arch = "x86_64"))]
pub(crate) use tests::{geometries, reference_pack};

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::vec;
    use std::vec::Vec;

    pub(crate) fn reference_pack(input: &[f32], c0: usize, g: &Geometry) -> Vec<f32> {
        let mut out = vec![0.0; g.packed_len()];
        for y in 0..g.h {
            for x in 0..g.w {
                for c in 0..CB {
                    out[((g.ph + y) * g.wp + g.pw + x) * CB + c] =
                        input[(c0 + c) * g.h * g.w + y * g.w + x];
                }
            }
        }
        out
    }

    pub(crate) fn geometries() -> Vec<Geometry> {
        let mut v = Vec::new();
        for (h, w) in [(1, 1), (3, 7), (14, 14), (5, 16), (4, 17), (2, 33)] {
            for (ph, pw) in [(0, 0), (1, 1), (2, 3)] {
                v.push(Geometry {
                    h,
                    w,
                    ph,
                    pw,
                    hp: h + 2 * ph,
                    wp: w + 2 * pw + (w % 2),
                });
            }
        }
        v
    }

    #[test]
    fn portable_pack_and_unpack_transpose() {
        for g in geometries() {
            let input: Vec<f32> = (0..2 * CB * g.h * g.w).map(|i| i as f32 + 0.5).collect();
            let mut dst = vec![f32::NAN; g.packed_len()];
            pack_input(&input, CB, &g, &mut dst);
            assert_eq!(dst, reference_pack(&input, CB, &g), "{g:?}");
            let pixels = g.h * g.w;
            let mut planes = vec![f32::NAN; pixels * CB];
            let src: Vec<f32> = (0..pixels * CB).map(|i| i as f32).collect();
            unpack_output(&src, pixels, &mut planes);
            for p in 0..pixels {
                for c in 0..CB {
                    assert_eq!(planes[c * pixels + p], src[p * CB + c]);
                }
            }
        }
    }

    #[test]
    fn short_buffers_are_left_alone() {
        let g = Geometry {
            h: 2,
            w: 2,
            ph: 1,
            pw: 1,
            hp: 4,
            wp: 4,
        };
        let mut dst = vec![1.0; g.packed_len() - 1];
        pack_input(&[0.0; 64], 0, &g, &mut dst);
        assert!(dst.iter().all(|&v| v == 1.0));
        let mut out = vec![1.0; 3];
        unpack_output(&[0.0; 64], 4, &mut out);
        assert_eq!(out, vec![1.0; 3]);
    }
}
