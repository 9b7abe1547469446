//! aarch64 support: the NEON load/store helpers that need `unsafe`. Everything else the
//! NEON kernels use is a safe intrinsic.

/// Whether this code runs with NEON (always true on aarch64, where NEON is baseline).
#[inline]
pub const fn has_neon() -> bool {
    cfg!(all(target_arch = "aarch64", target_feature = "neon"))
}

/// Whether this CPU has the Armv8.2 dot product extension (`sdot`: Cortex-A76 and later,
/// the Raspberry Pi 5; not the Pi 4's Cortex-A72). With the `std` feature detected at run
/// time (once, cached by the standard library); without it, the build's target features
/// decide. int8 layers run their `neon_dot` kernels where it is true.
#[inline]
pub fn has_dotprod() -> bool {
    #[cfg(all(target_arch = "aarch64", feature = "std"))]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(not(all(target_arch = "aarch64", feature = "std")))]
    {
        cfg!(all(target_arch = "aarch64", target_feature = "dotprod"))
    }
}

#[cfg(target_arch = "aarch64")]
pub use simd::*;

#[cfg(target_arch = "aarch64")]
mod simd {
    use core::arch::aarch64::*;

    /// Loads 4 lanes.
    #[inline(always)]
    pub fn load4(a: &[f32; 4]) -> float32x4_t {
        // SAFETY: `a` is 4 readable f32 values; vld1q_f32 has no alignment requirement
        // beyond f32's; NEON is baseline on aarch64.
        unsafe { vld1q_f32(a.as_ptr()) }
    }

    /// Stores 4 lanes into an array.
    #[inline(always)]
    pub fn store4(v: float32x4_t) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        // SAFETY: `out` is 4 writable f32 values; NEON is baseline on aarch64.
        unsafe { vst1q_f32(out.as_mut_ptr(), v) };
        out
    }

    /// Loads 4 int32 words.
    #[inline(always)]
    pub fn loadi4(a: &[i32; 4]) -> int32x4_t {
        // SAFETY: `a` is 4 readable i32 values; vld1q_s32 has no alignment requirement
        // beyond i32's; NEON is baseline on aarch64.
        unsafe { vld1q_s32(a.as_ptr()) }
    }

    /// `acc + x . w` per lane over quads: each lane adds the four products of the signed
    /// bytes of `x` and `w` (`sdot`, the dot product extension; the intrinsic is not
    /// stable, so it is written as `asm!`).
    ///
    /// # Safety
    ///
    /// The CPU must have the dot product extension ([`super::has_dotprod`]); callers
    /// compiled with it (the `neon_dot` kernels) call it without `unsafe`.
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    pub fn sdot(acc: int32x4_t, x: int32x4_t, w: int32x4_t) -> int32x4_t {
        let mut r = acc;
        // SAFETY: `sdot` reads two vector registers and updates a third; it touches no
        // memory, stack or flags, and this function is compiled for (and only callable
        // from code that has checked) the dot product extension.
        unsafe {
            core::arch::asm!(
                "sdot {r:v}.4s, {x:v}.16b, {w:v}.16b",
                r = inout(vreg) r,
                x = in(vreg) x,
                w = in(vreg) w,
                options(pure, nomem, nostack, preserves_flags)
            )
        };
        r
    }

    /// `fp32` requantization of 4 int32 lanes into 4 int8 values (`gspc_runtime::quant`'s
    /// `requantize_fp32` lane by lane): `acc * scale` in f32, clamped to `[lo, hi]` (the
    /// activation's range less the zero point), rounded to nearest even (`fcvtns`), plus
    /// `zp`, narrowed with saturation (the values are in range already).
    ///
    /// # Safety
    ///
    /// Only callable where NEON is enabled (from the generated `neon` and `neon_dot`
    /// kernels, which call it without `unsafe`).
    #[inline]
    #[target_feature(enable = "neon")]
    pub fn requant4(acc: int32x4_t, scale: f32, lo: f32, hi: f32, zp: i32, out: &mut [i8; 4]) {
        requant4_by(acc, vdupq_n_f32(scale), lo, hi, zp, out)
    }

    /// [`requant4`] with one scale per lane (lanes are output channels).
    ///
    /// # Safety
    ///
    /// As [`requant4`].
    #[inline]
    #[target_feature(enable = "neon")]
    pub fn requant4_by(
        acc: int32x4_t,
        scale: float32x4_t,
        lo: f32,
        hi: f32,
        zp: i32,
        out: &mut [i8; 4],
    ) {
        let v = vmulq_f32(vcvtq_f32_s32(acc), scale);
        let v = vminq_f32(vmaxq_f32(v, vdupq_n_f32(lo)), vdupq_n_f32(hi));
        let q = vaddq_s32(vcvtnq_s32_f32(v), vdupq_n_s32(zp));
        let b = vqmovn_s16(vcombine_s16(vqmovn_s32(q), vdup_n_s16(0)));
        *out = vget_lane_u32::<0>(vreinterpret_u32_s8(b))
            .to_le_bytes()
            .map(|x| x as i8);
    }

    /// Stores 4 int32 lanes into an array.
    #[inline(always)]
    pub fn storei4(v: int32x4_t) -> [i32; 4] {
        let mut out = [0i32; 4];
        // SAFETY: `out` is 4 writable i32 values; NEON is baseline on aarch64.
        unsafe { vst1q_s32(out.as_mut_ptr(), v) };
        out
    }
}

#[cfg(all(test, target_arch = "aarch64"))]
mod tests {
    use super::*;
    use crate::quant::requantize_fp32;
    use core::arch::aarch64::*;

    #[test]
    fn vector_requantization_is_the_reference() {
        // Ties (odd accumulators at scale 0.5, both signs), values past both clamps, an
        // infinite product, and ordinary ones; zero points and clamps of both signs.
        let accs = [
            [1, -1, 3, -3],
            [5, -5, 255, -255],
            [i32::MAX, i32::MIN, 1 << 30, -(1 << 30)],
            [0, 7, -129, 1000],
        ];
        for scale in [0.5f32, 0.25, 0.013, 3.0e38, 1.0e-3] {
            for (zp, min, max) in [(0, -128, 127), (-128, -128, 127), (5, -3, 6), (127, 0, 127)] {
                let (lo, hi) = ((min - zp) as f32, (max - zp) as f32);
                for acc in accs {
                    let want = acc.map(|a| requantize_fp32(a, scale, zp, min, max) as i8);
                    let mut got = [0i8; 4];
                    // SAFETY: `acc` is 4 readable i32 values; NEON is baseline on aarch64.
                    let v = unsafe { vld1q_s32(acc.as_ptr()) };
                    // SAFETY: NEON is baseline on aarch64, the feature `requant4` needs.
                    unsafe { requant4(v, scale, lo, hi, zp, &mut got) };
                    assert_eq!(
                        got, want,
                        "acc {acc:?} scale {scale} zp {zp} [{min}, {max}]"
                    );
                    let scales = [scale, scale * 2.0, scale * 0.5, scale];
                    let want: [i8; 4] = core::array::from_fn(|l| {
                        requantize_fp32(acc[l], scales[l], zp, min, max) as i8
                    });
                    // SAFETY: as above; `scales` is 4 readable f32 values.
                    unsafe { requant4_by(v, vld1q_f32(scales.as_ptr()), lo, hi, zp, &mut got) };
                    assert_eq!(
                        got, want,
                        "acc {acc:?} scales {scales:?} zp {zp} [{min}, {max}]"
                    );
                }
            }
        }
    }
}
