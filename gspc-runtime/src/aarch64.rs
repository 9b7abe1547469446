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

    /// Stores 4 int32 lanes into an array.
    #[inline(always)]
    pub fn storei4(v: int32x4_t) -> [i32; 4] {
        let mut out = [0i32; 4];
        // SAFETY: `out` is 4 writable i32 values; NEON is baseline on aarch64.
        unsafe { vst1q_s32(out.as_mut_ptr(), v) };
        out
    }
}
