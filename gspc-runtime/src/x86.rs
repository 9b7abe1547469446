//! x86-64 support: CPU feature levels for the dispatcher and the SIMD load/store helpers
//! that need `unsafe`. Everything else the AVX2 / AVX-512 kernels use is a safe intrinsic.

/// Neither AVX2+FMA nor AVX-512F (or not x86-64).
pub const LEVEL_NONE: u8 = 0;
/// AVX2 and FMA.
pub const LEVEL_AVX2: u8 = 1;
/// AVX-512F (with AVX2 and FMA).
pub const LEVEL_AVX512: u8 = 2;

/// The best x86-64 SIMD level this CPU runs: detected once at run time with the `std`
/// feature (and cached), otherwise what the build enables statically.
#[inline]
pub fn level() -> u8 {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        use core::sync::atomic::{AtomicU8, Ordering};
        static LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);
        let cached = LEVEL.load(Ordering::Relaxed);
        if cached != u8::MAX {
            return cached;
        }
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        let level = if avx2 && std::is_x86_feature_detected!("avx512f") {
            LEVEL_AVX512
        } else if avx2 {
            LEVEL_AVX2
        } else {
            LEVEL_NONE
        };
        LEVEL.store(level, Ordering::Relaxed);
        level
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "std")))]
    {
        static_level()
    }
}

/// What the build enables statically (`-C target-feature` / `target-cpu`).
#[inline]
pub const fn static_level() -> u8 {
    if cfg!(all(
        target_arch = "x86_64",
        target_feature = "avx512f",
        target_feature = "avx2",
        target_feature = "fma"
    )) {
        LEVEL_AVX512
    } else if cfg!(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    )) {
        LEVEL_AVX2
    } else {
        LEVEL_NONE
    }
}

#[cfg(target_arch = "x86_64")]
pub use simd::*;

#[cfg(target_arch = "x86_64")]
mod simd {
    use core::arch::x86_64::*;

    /// Loads 4 lanes.
    #[inline(always)]
    pub fn load4(a: &[f32; 4]) -> __m128 {
        // SAFETY: `a` is 4 readable f32 values; the load is unaligned; SSE is baseline on
        // x86-64.
        unsafe { _mm_loadu_ps(a.as_ptr()) }
    }

    /// Stores 4 lanes into an array.
    #[inline(always)]
    pub fn store4(v: __m128) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        // SAFETY: `out` is 4 writable f32 values; the store is unaligned; SSE is baseline.
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), v) };
        out
    }

    /// Loads 8 lanes.
    ///
    /// # Safety
    ///
    /// Only callable where AVX is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx")]
    pub fn load8(a: &[f32; 8]) -> __m256 {
        // SAFETY: `a` is 8 readable f32 values; the load is unaligned; AVX is enabled on
        // this function.
        unsafe { _mm256_loadu_ps(a.as_ptr()) }
    }

    /// Stores 8 lanes into an array.
    ///
    /// # Safety
    ///
    /// Only callable where AVX is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx")]
    pub fn store8(v: __m256) -> [f32; 8] {
        let mut out = [0.0f32; 8];
        // SAFETY: `out` is 8 writable f32 values; the store is unaligned; AVX is enabled.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        out
    }

    /// Loads 16 lanes.
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn load16(a: &[f32; 16]) -> __m512 {
        // SAFETY: `a` is 16 readable f32 values; the load is unaligned; AVX-512F is
        // enabled on this function.
        unsafe { _mm512_loadu_ps(a.as_ptr()) }
    }

    /// Stores 16 lanes into an array.
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn store16(v: __m512) -> [f32; 16] {
        let mut out = [0.0f32; 16];
        // SAFETY: `out` is 16 writable f32 values; the store is unaligned; AVX-512F is
        // enabled.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), v) };
        out
    }
}
