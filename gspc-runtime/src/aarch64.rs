//! aarch64 support: the NEON load/store helpers that need `unsafe`. Everything else the
//! NEON kernels use is a safe intrinsic.

/// Whether this code runs with NEON (always true on aarch64, where NEON is baseline).
#[inline]
pub const fn has_neon() -> bool {
    cfg!(all(target_arch = "aarch64", target_feature = "neon"))
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

    /// Stores 4 int32 lanes into an array.
    #[inline(always)]
    pub fn storei4(v: int32x4_t) -> [i32; 4] {
        let mut out = [0i32; 4];
        // SAFETY: `out` is 4 writable i32 values; NEON is baseline on aarch64.
        unsafe { vst1q_s32(out.as_mut_ptr(), v) };
        out
    }
}
