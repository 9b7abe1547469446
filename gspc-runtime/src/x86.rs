//! x86-64 support: CPU feature levels for the dispatcher and the SIMD load/store helpers
//! that need `unsafe`. Everything else the AVX2 / AVX-512 kernels use is a safe intrinsic.

/// Neither AVX2+FMA nor AVX-512F (or not x86-64).
pub const LEVEL_NONE: u8 = 0;
/// AVX2 and FMA.
pub const LEVEL_AVX2: u8 = 1;
/// AVX-512F (with AVX2 and FMA).
pub const LEVEL_AVX512: u8 = 2;

/// The best x86-64 SIMD level this CPU runs: detected once at run time with the `std`
/// feature (and cached), otherwise what the build enables statically; at most the cap of
/// `set_level_cap` (with `std`).
#[inline]
pub fn level() -> u8 {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        cpu_level().min(CAP.load(core::sync::atomic::Ordering::Relaxed))
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "std")))]
    {
        static_level()
    }
}

/// Caps what [`level`] reports, so that the dispatching entry points run a lower variant
/// (`None`: no cap): for tests that check every variant through the entry points, also
/// the ones a variant's `run` does not reach (the row bands of `gspc-dwc` layers:
/// `check::check_layer_on`). It can only lower the level, never claim one the CPU lacks.
/// It is process-wide: callers serialize with whatever else depends on the dispatch.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
pub fn set_level_cap(cap: Option<u8>) {
    CAP.store(
        cap.unwrap_or(u8::MAX),
        core::sync::atomic::Ordering::Relaxed,
    );
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
static CAP: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(u8::MAX);

/// The best x86-64 SIMD level this CPU runs, without the cap of `set_level_cap` (with `std`): what
/// `Isa::is_supported` asks (whether a variant may run at all), where [`level`] is what
/// the dispatchers ask (which variant to run).
#[inline]
pub fn cpu_level() -> u8 {
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

/// Whether this CPU runs 512-bit FMAs at twice the FLOP rate of 256-bit ones: Zen 5 with
/// its full-width datapath and Intel cores with two 512-bit FMA units do; Zen 4 (each
/// 512-bit operation is two 256-bit halves) and Intel cores with one 512-bit unit run both
/// widths at the same FLOP rate, where a layer whose 16-lane vectors waste lanes that
/// 8-lane ones would not is faster with its AVX2 variant (docs/design.md, "Dispatch"). The dispatcher of such a layer asks this before it runs AVX-512.
///
/// With the `std` feature it is measured once, at the first call, on a CPU with AVX-512F:
/// the best of 7 interleaved timings of 12 000 independent 512-bit FMAs against as many
/// 256-bit ones (about 60 us in all); full rate when the 512-bit ones take less than 1.5
/// times as long. [`set_avx512_full_rate`] overrides it. Without `std` (no timer) it is
/// `true`: a firmware build that enables AVX-512 statically chose it.
#[inline]
pub fn avx512_full_rate() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        use core::sync::atomic::Ordering;
        match RATE.load(Ordering::Relaxed) {
            RATE_FULL => true,
            RATE_HALF => false,
            _ => {
                let full = cpu_level() >= LEVEL_AVX512 && rate::measure_full();
                // A concurrent `set_avx512_full_rate` wins over the measurement.
                let value = if full { RATE_FULL } else { RATE_HALF };
                let _ = RATE.compare_exchange(
                    RATE_UNKNOWN,
                    value,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                RATE.load(Ordering::Relaxed) == RATE_FULL
            }
        }
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "std")))]
    {
        true
    }
}

/// Sets what [`avx512_full_rate`] answers from now on (`None`: measure again at the next
/// call), for a CPU the measurement misjudges, and for tests and benchmarks that run both
/// choices. Without `std` it has no effect.
pub fn set_avx512_full_rate(full: Option<bool>) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        let value = match full {
            Some(true) => RATE_FULL,
            Some(false) => RATE_HALF,
            None => RATE_UNKNOWN,
        };
        RATE.store(value, core::sync::atomic::Ordering::Relaxed);
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "std")))]
    let _ = full;
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
const RATE_UNKNOWN: u8 = 0;
#[cfg(all(target_arch = "x86_64", feature = "std"))]
const RATE_FULL: u8 = 1;
#[cfg(all(target_arch = "x86_64", feature = "std"))]
const RATE_HALF: u8 = 2;
#[cfg(all(target_arch = "x86_64", feature = "std"))]
static RATE: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(RATE_UNKNOWN);

/// The FMA rate measurement of [`avx512_full_rate`]. The loops are written in assembly so
/// that what is timed is the same instructions in every build profile: 12 independent
/// accumulators (more than the 2 pipes x 4 cycles of latency of any AVX-512 core keep in
/// flight) on zeros (no denormals), 1000 iterations.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
mod rate {
    use std::time::Instant;

    const ITERATIONS: u64 = 1000;
    const ROUNDS: usize = 7;

    /// Whether 512-bit FMAs run at the instruction rate of 256-bit ones (twice the FLOPs).
    /// Only called on a CPU with AVX-512F.
    pub(super) fn measure_full() -> bool {
        // The first round of each only wakes the units up (some cores power the upper
        // lanes on demand); the best of the others counts.
        let (mut t256, mut t512) = (f64::INFINITY, f64::INFINITY);
        for round in 0..=ROUNDS {
            let a = time(fma256);
            let b = time(fma512);
            if round > 0 {
                t256 = t256.min(a);
                t512 = t512.min(b);
            }
        }
        t512 < 1.5 * t256
    }

    fn time(f: fn(u64)) -> f64 {
        let start = Instant::now();
        f(ITERATIONS);
        start.elapsed().as_secs_f64()
    }

    fn fma256(n: u64) {
        // SAFETY: only called (through `measure_full`) when `cpu_level()` reported AVX-512F,
        // which implies AVX2 and FMA; the asm touches only the registers it declares.
        unsafe {
            core::arch::asm!(
                "vxorps ymm0, ymm0, ymm0", "vxorps ymm1, ymm1, ymm1", "vxorps ymm2, ymm2, ymm2",
                "vxorps ymm3, ymm3, ymm3", "vxorps ymm4, ymm4, ymm4", "vxorps ymm5, ymm5, ymm5",
                "vxorps ymm6, ymm6, ymm6", "vxorps ymm7, ymm7, ymm7", "vxorps ymm8, ymm8, ymm8",
                "vxorps ymm9, ymm9, ymm9", "vxorps ymm10, ymm10, ymm10", "vxorps ymm11, ymm11, ymm11",
                "vxorps ymm12, ymm12, ymm12", "vxorps ymm13, ymm13, ymm13",
                "2:",
                "vfmadd231ps ymm0, ymm12, ymm13", "vfmadd231ps ymm1, ymm12, ymm13",
                "vfmadd231ps ymm2, ymm12, ymm13", "vfmadd231ps ymm3, ymm12, ymm13",
                "vfmadd231ps ymm4, ymm12, ymm13", "vfmadd231ps ymm5, ymm12, ymm13",
                "vfmadd231ps ymm6, ymm12, ymm13", "vfmadd231ps ymm7, ymm12, ymm13",
                "vfmadd231ps ymm8, ymm12, ymm13", "vfmadd231ps ymm9, ymm12, ymm13",
                "vfmadd231ps ymm10, ymm12, ymm13", "vfmadd231ps ymm11, ymm12, ymm13",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) n => _,
                out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _,
                out("ymm5") _, out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _,
                out("ymm10") _, out("ymm11") _, out("ymm12") _, out("ymm13") _,
                options(nostack, nomem),
            );
        }
    }

    fn fma512(n: u64) {
        // SAFETY: only called (through `measure_full`) when `cpu_level()` reported AVX-512F;
        // the asm touches only the registers it declares.
        unsafe {
            core::arch::asm!(
                "vpxord zmm0, zmm0, zmm0", "vpxord zmm1, zmm1, zmm1", "vpxord zmm2, zmm2, zmm2",
                "vpxord zmm3, zmm3, zmm3", "vpxord zmm4, zmm4, zmm4", "vpxord zmm5, zmm5, zmm5",
                "vpxord zmm6, zmm6, zmm6", "vpxord zmm7, zmm7, zmm7", "vpxord zmm8, zmm8, zmm8",
                "vpxord zmm9, zmm9, zmm9", "vpxord zmm10, zmm10, zmm10", "vpxord zmm11, zmm11, zmm11",
                "vpxord zmm12, zmm12, zmm12", "vpxord zmm13, zmm13, zmm13",
                "2:",
                "vfmadd231ps zmm0, zmm12, zmm13", "vfmadd231ps zmm1, zmm12, zmm13",
                "vfmadd231ps zmm2, zmm12, zmm13", "vfmadd231ps zmm3, zmm12, zmm13",
                "vfmadd231ps zmm4, zmm12, zmm13", "vfmadd231ps zmm5, zmm12, zmm13",
                "vfmadd231ps zmm6, zmm12, zmm13", "vfmadd231ps zmm7, zmm12, zmm13",
                "vfmadd231ps zmm8, zmm12, zmm13", "vfmadd231ps zmm9, zmm12, zmm13",
                "vfmadd231ps zmm10, zmm12, zmm13", "vfmadd231ps zmm11, zmm12, zmm13",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) n => _,
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _,
                out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _,
                out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _,
                options(nostack, nomem),
            );
        }
    }
}

/// Where channel `k`'s row (of `4 * m` columns) lies in the vectors of
/// `channel_rows::<m>` (x86-64, AVX-512): the vector's index and the row's first byte.
/// The generated epilogues of the int8 channel-lane tiles store each row from there.
pub const fn channel_row_at(m: usize, k: usize) -> (usize, usize) {
    let (lane, i) = (k / 4, k % 4);
    match m {
        1 => (0, 4 * k),
        2 => (i / 2, 16 * lane + 8 * (i % 2)),
        _ => (i, 16 * lane),
    }
}

/// Whether this CPU has AVX-512 VBMI (`vpermb`, `vpermt2b`) beside the int8 AVX-512
/// variants' features ([`has_avx512_vnni`]): their grouped quad packing uses it
/// (`pack_grouped_vbmi`; Ice Lake and later, Zen 4 and later; not Cascade Lake). Detected
/// once at run time with the `std` feature, otherwise what the build enables statically;
/// `set_avx512_vbmi` (with the `std` feature) can turn it off.
#[inline]
pub fn has_avx512_vbmi() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        detected_once(&VBMI, || {
            has_avx512_vnni() && std::is_x86_feature_detected!("avx512vbmi")
        })
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "std")))]
    {
        has_avx512_vnni() && cfg!(all(target_arch = "x86_64", target_feature = "avx512vbmi"))
    }
}

/// The detected [`has_avx512_vbmi`], or `false` where VBMI is not to be used (tests of
/// the packing without it, on a CPU with it): `Some(false)` turns it off, `None` detects
/// again. `Some(true)` is the same as `None` (it never claims a feature the CPU lacks).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
pub fn set_avx512_vbmi(on: Option<bool>) {
    use core::sync::atomic::Ordering;
    let v = match on {
        Some(false) => 0,
        _ => u8::MAX,
    };
    VBMI.store(v, Ordering::Relaxed);
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
static VBMI: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(u8::MAX);

/// A CPU feature test run once: `cell` holds its answer (0 or 1) after the first call,
/// `u8::MAX` before it (or after a reset, as by [`set_avx512_vbmi`]).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[inline]
fn detected_once(cell: &core::sync::atomic::AtomicU8, detect: impl FnOnce() -> bool) -> bool {
    use core::sync::atomic::Ordering;
    match cell.load(Ordering::Relaxed) {
        0 => false,
        1 => true,
        _ => {
            let has = detect();
            cell.store(has as u8, Ordering::Relaxed);
            has
        }
    }
}

/// Whether this CPU has AVX-512BW and AVX-512 VNNI (with AVX-512F), which the int8
/// AVX-512 variants use (`vpdpwssd`, `vpdpbusd`): detected once at run time with the `std`
/// feature, otherwise what the build enables statically.
#[inline]
pub fn has_avx512_vnni() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        static VNNI: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(u8::MAX);
        detected_once(&VNNI, || {
            cpu_level() >= LEVEL_AVX512
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vnni")
        })
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "std")))]
    {
        cfg!(all(
            target_arch = "x86_64",
            target_feature = "avx512f",
            target_feature = "avx512bw",
            target_feature = "avx512vnni"
        ))
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

    /// Loads 4 int32 words.
    #[inline(always)]
    pub fn loadi4(a: &[i32; 4]) -> __m128i {
        // SAFETY: `a` is 16 readable bytes; the load is unaligned; SSE2 is baseline on
        // x86-64.
        unsafe { _mm_loadu_si128(a.as_ptr().cast()) }
    }

    /// Stores 4 int32 lanes into an array.
    #[inline(always)]
    pub fn storei4(v: __m128i) -> [i32; 4] {
        let mut out = [0i32; 4];
        // SAFETY: `out` is 16 writable bytes; the store is unaligned; SSE2 is baseline.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), v) };
        out
    }

    /// Loads 8 int32 words.
    ///
    /// # Safety
    ///
    /// Only callable where AVX is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx")]
    pub fn loadi8(a: &[i32; 8]) -> __m256i {
        // SAFETY: `a` is 32 readable bytes; the load is unaligned; AVX is enabled.
        unsafe { _mm256_loadu_si256(a.as_ptr().cast()) }
    }

    /// Stores 8 int32 lanes into an array.
    ///
    /// # Safety
    ///
    /// Only callable where AVX is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx")]
    pub fn storei8(v: __m256i) -> [i32; 8] {
        let mut out = [0i32; 8];
        // SAFETY: `out` is 32 writable bytes; the store is unaligned; AVX is enabled.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) };
        out
    }

    /// Loads 16 int32 words.
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn loadi16(a: &[i32; 16]) -> __m512i {
        // SAFETY: `a` is 64 readable bytes; the load is unaligned; AVX-512F is enabled.
        unsafe { _mm512_loadu_si512(a.as_ptr().cast()) }
    }

    /// Stores 16 int32 lanes into an array.
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn storei16(v: __m512i) -> [i32; 16] {
        let mut out = [0i32; 16];
        // SAFETY: `out` is 64 writable bytes; the store is unaligned; AVX-512F is enabled.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), v) };
        out
    }

    /// `fp32` requantization of 4 int32 lanes into 4 int8 values (`gspc_runtime::quant`'s
    /// `requantize_fp32` lane by lane): `acc * scale` in f32, clamped to `[lo, hi]` (the
    /// activation's range less the zero point), rounded to nearest even (the default
    /// MXCSR mode, which Rust never changes), plus `zp`.
    ///
    /// # Safety
    ///
    /// Only callable where SSE2 is enabled (from the generated AVX2 and AVX-512 kernels).
    #[inline]
    #[target_feature(enable = "sse2")]
    pub fn requant4(acc: __m128i, scale: f32, lo: f32, hi: f32, zp: i32, out: &mut [i8; 4]) {
        requant4_by(acc, _mm_set1_ps(scale), lo, hi, zp, out)
    }

    /// [`requant4`] with one scale per lane (lanes are output channels).
    ///
    /// # Safety
    ///
    /// Only callable where SSE2 is enabled (from the generated AVX2 and AVX-512 kernels).
    #[inline]
    #[target_feature(enable = "sse2")]
    pub fn requant4_by(acc: __m128i, scale: __m128, lo: f32, hi: f32, zp: i32, out: &mut [i8; 4]) {
        let v = _mm_mul_ps(_mm_cvtepi32_ps(acc), scale);
        let v = _mm_min_ps(_mm_max_ps(v, _mm_set1_ps(lo)), _mm_set1_ps(hi));
        let q = _mm_add_epi32(_mm_cvtps_epi32(v), _mm_set1_epi32(zp));
        // In [-128, 127] already: the saturating packs keep every value.
        let b = _mm_packs_epi16(_mm_packs_epi32(q, q), _mm_setzero_si128());
        *out = _mm_cvtsi128_si32(b).to_le_bytes().map(|x| x as i8);
    }

    /// [`requant4`] of 8 lanes.
    ///
    /// # Safety
    ///
    /// Only callable where AVX2 is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn requant8(acc: __m256i, scale: f32, lo: f32, hi: f32, zp: i32, out: &mut [i8; 8]) {
        requant8_by(acc, _mm256_set1_ps(scale), lo, hi, zp, out)
    }

    /// [`requant8`] with one scale per lane (lanes are output channels).
    ///
    /// # Safety
    ///
    /// Only callable where AVX2 is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn requant8_by(acc: __m256i, scale: __m256, lo: f32, hi: f32, zp: i32, out: &mut [i8; 8]) {
        let v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
        let v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
        let q = _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(zp));
        // Per 128-bit half: lanes 0-3 as bytes 0-3 (saturating packs of in-range values).
        let b = _mm256_packs_epi16(_mm256_packs_epi32(q, q), _mm256_setzero_si256());
        let lo4 = _mm_cvtsi128_si32(_mm256_castsi256_si128(b));
        let hi4 = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(b));
        let bytes = ((lo4 as u32 as u64) | ((hi4 as u32 as u64) << 32)).to_le_bytes();
        *out = bytes.map(|x| x as i8);
    }

    /// [`requant4`] of 16 lanes.
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn requant16(acc: __m512i, scale: f32, lo: f32, hi: f32, zp: i32, out: &mut [i8; 16]) {
        requant16_by(acc, _mm512_set1_ps(scale), lo, hi, zp, out)
    }

    /// [`requant16`] with one scale per lane (lanes are output channels).
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn requant16_by(
        acc: __m512i,
        scale: __m512,
        lo: f32,
        hi: f32,
        zp: i32,
        out: &mut [i8; 16],
    ) {
        let b = requant16_bytes(acc, scale, lo, hi, zp);
        // SAFETY: `out` is 16 writable bytes; the store is unaligned; SSE2 is baseline.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), b) };
    }

    /// [`requant16_by`]'s 16 int8 values, in a vector.
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn requant16_bytes(acc: __m512i, scale: __m512, lo: f32, hi: f32, zp: i32) -> __m128i {
        let q = _mm512_add_epi32(
            requant16_unshifted(acc, scale, lo, hi),
            _mm512_set1_epi32(zp),
        );
        // In [-128, 127] already: the truncating narrow keeps every value.
        _mm512_cvtepi32_epi8(q)
    }

    /// 16 lanes requantized as [`requant16_bytes`] does, before its zero point and its
    /// narrowing: the int32 value `round(clamp(acc * scale))`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn requant16_unshifted(acc: __m512i, scale: __m512, lo: f32, hi: f32) -> __m512i {
        let v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
        let v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
        _mm512_cvtps_epi32(v)
    }

    /// Four columns of a channel-lane tile (each `__m512i` one column's 16 output channels,
    /// before their `bias`) requantized as [`requant16_bytes`] does column by column, into
    /// one vector that holds them channel by channel: bytes `4k..4k + 4` are channel `k`'s
    /// columns 0-3 ([`channel_rows`] puts up to four such vectors together).
    ///
    /// Two saturating packs narrow them (exact: the clamped values before the zero point
    /// lie in [-255, 255], after it in [-128, 127]), the zero point is added to the
    /// 16-bit words, and one in-lane byte shuffle turns each 128-bit lane's 4 columns x 4
    /// channels around.
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F and BW are enabled (the generated AVX-512 kernels).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    #[allow(clippy::too_many_arguments)]
    pub fn requant_columns4(
        [a, b, c, d]: [__m512i; 4],
        bias: __m512i,
        scale: __m512,
        lo: f32,
        hi: f32,
        zp: i32,
    ) -> __m512i {
        let zp16 = _mm512_set1_epi16(zp as i16);
        // (Calls, not a closure: the packing kernels' lesson, closures there were compiled
        // without the caller's target features.)
        let ab = _mm512_packs_epi32(
            requant16_unshifted(_mm512_add_epi32(a, bias), scale, lo, hi),
            requant16_unshifted(_mm512_add_epi32(b, bias), scale, lo, hi),
        );
        let cd = _mm512_packs_epi32(
            requant16_unshifted(_mm512_add_epi32(c, bias), scale, lo, hi),
            requant16_unshifted(_mm512_add_epi32(d, bias), scale, lo, hi),
        );
        // Per 128-bit lane l: bytes 4j..4j + 4 are column j's channels 4l..4l + 4.
        let bytes = _mm512_packs_epi16(_mm512_add_epi16(ab, zp16), _mm512_add_epi16(cd, zp16));
        let order = _mm512_broadcast_i32x4(_mm_setr_epi8(
            0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
        ));
        _mm512_shuffle_epi8(bytes, order)
    }

    /// The rows of 16 channels out of `M` (1 to 4) vectors of [`requant_columns4`] (columns
    /// `4i..4i + 4` in vector `i`; the others are ignored): channel `k`'s columns
    /// `0..4 * M` are consecutive bytes, in the vector and from the byte that
    /// [`channel_row_at`](super::channel_row_at)`(M, k)` gives. Two 32-bit interleaves for `M = 2`, six for 3 and
    /// 4; none for 1.
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (the generated AVX-512 kernels).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn channel_rows<const M: usize>(b: [__m512i; 4]) -> [__m512i; 4] {
        const { assert!(M >= 1 && M <= 4) };
        let zero = _mm512_setzero_si512();
        match M {
            1 => [b[0], zero, zero, zero],
            2 => [
                _mm512_unpacklo_epi32(b[0], b[1]),
                _mm512_unpackhi_epi32(b[0], b[1]),
                zero,
                zero,
            ],
            _ => {
                // Channel 4l + i, l the 128-bit lane: columns 0-7 in qword i % 2 of lane l
                // of `u[i / 2]`, columns 8-15 likewise in `v`.
                let u = [
                    _mm512_unpacklo_epi32(b[0], b[1]),
                    _mm512_unpackhi_epi32(b[0], b[1]),
                ];
                let v = [
                    _mm512_unpacklo_epi32(b[2], b[3]),
                    _mm512_unpackhi_epi32(b[2], b[3]),
                ];
                [
                    _mm512_unpacklo_epi64(u[0], v[0]),
                    _mm512_unpackhi_epi64(u[0], v[0]),
                    _mm512_unpacklo_epi64(u[1], v[1]),
                    _mm512_unpackhi_epi64(u[1], v[1]),
                ]
            }
        }
    }

    /// [`store_bytes`] from a 64-byte vector: bytes `L0..L0 + N` of `v` into
    /// `out[AT..AT + N]` in one masked store (`L0 + N <= 64`, `AT + N <= W`, checked at
    /// compile time). The rows of [`channel_rows`] go out this way.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512BW, and the caller must be compiled with it (the
    /// AVX-512 variants of the generated kernels).
    #[inline(always)]
    pub unsafe fn store_bytes64<
        const W: usize,
        const AT: usize,
        const L0: usize,
        const N: usize,
    >(
        v: __m512i,
        out: &mut [i8; W],
    ) {
        const { assert!(N >= 1 && L0 % 16 + N <= 16 && L0 + N <= 64 && AT + N <= W) };
        // SAFETY: the caller has AVX-512F (this function's contract); the extracts only
        // move register values.
        let lane = unsafe {
            match L0 / 16 {
                0 => _mm512_castsi512_si128(v),
                1 => _mm512_extracti32x4_epi32::<1>(v),
                2 => _mm512_extracti32x4_epi32::<2>(v),
                _ => _mm512_extracti32x4_epi32::<3>(v),
            }
        };
        let l0 = L0 % 16;
        let m = (((1u32 << N) - 1) << l0) as u16;
        // SAFETY: the mask sets lanes l0..l0 + N, which the pointer (out + AT - l0, computed
        // with wrapping arithmetic) puts at out[AT..AT + N], inside `out` (the assert
        // above); AVX-512 masked stores neither write nor fault on the other lanes. The
        // caller has AVX-512BW and VL (this function's contract).
        unsafe {
            _mm_mask_storeu_epi8(out.as_mut_ptr().wrapping_add(AT).wrapping_sub(l0), m, lane)
        };
    }

    /// Bytes `L0..L0 + N` of `v` into `out[AT..AT + N]`, in one masked store (`N` and
    /// `AT + N <= W` checked at compile time; `L0 + N <= 16`). A flat int8 tile's lanes that
    /// are outputs of one row go out this way.
    ///
    /// Always inlined, with no target features of its own (like [`pack_lanes`]), so that
    /// the store is one instruction in the kernel.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512BW and VL, and the caller must be compiled with them (the
    /// AVX-512 variants of the generated kernels).
    #[inline(always)]
    pub unsafe fn store_bytes<const W: usize, const AT: usize, const L0: usize, const N: usize>(
        v: __m128i,
        out: &mut [i8; W],
    ) {
        const { assert!(N >= 1 && L0 + N <= 16 && AT + N <= W) };
        let m = (((1u32 << N) - 1) << L0) as u16;
        // SAFETY: the mask sets lanes L0..L0 + N, which the pointer (out + AT - L0, computed
        // with wrapping arithmetic) puts at out[AT..AT + N], inside `out` (the assert
        // above); AVX-512 masked stores neither write nor fault on the other lanes. The
        // caller has AVX-512BW and VL (this function's contract).
        unsafe { _mm_mask_storeu_epi8(out.as_mut_ptr().wrapping_add(AT).wrapping_sub(L0), m, v) };
    }

    /// The 16 x 16 bytes `t` transposed: `out[k][j] = t[j][k]`, in four rounds of byte,
    /// 16-bit, 32-bit and 64-bit interleaves (SSE2, baseline on x86-64): the portable
    /// channel-lane packing's transpose on x86-64. (The AVX-512 lane packer transposes in
    /// registers, [`transpose16_regs`], without a byte array on the stack; the generated
    /// epilogues narrow by packs instead, [`requant_columns4`] and [`channel_rows`].)
    ///
    /// SSE2, baseline on x86-64: callable from any x86-64 code. Always inlined (no target
    /// feature of its own, which would forbid it).
    #[inline(always)]
    pub fn transpose16_i8(t: &[[i8; 16]; 16]) -> [[i8; 16]; 16] {
        // SAFETY: SSE2 is part of every x86-64 target's baseline.
        let mut r = [unsafe { _mm_setzero_si128() }; 16];
        for (v, row) in r.iter_mut().zip(t) {
            // SAFETY: `row` is 16 readable bytes; the load is unaligned; SSE2 is part of
            // every x86-64 target's baseline.
            *v = unsafe { _mm_loadu_si128(row.as_ptr().cast()) };
        }
        let mut out = [[0i8; 16]; 16];
        for (o, v) in out.iter_mut().zip(transpose16_regs(r)) {
            // SAFETY: `o` is 16 writable bytes; the store is unaligned; SSE2 is part of every
            // x86-64 target's baseline.
            unsafe { _mm_storeu_si128(o.as_mut_ptr().cast(), v) };
        }
        out
    }

    /// [`transpose16_i8`] in registers: vector `k` of the result holds byte `k` of every
    /// vector of `r`, in order.
    ///
    /// SSE2, baseline on x86-64: callable from any x86-64 kernel; always inlined, as
    /// [`transpose16_i8`] (out of line, `x86::pack_lanes` made a call per 16 columns).
    #[inline(always)]
    pub fn transpose16_regs(r: [__m128i; 16]) -> [__m128i; 16] {
        // SAFETY: SSE2 (every intrinsic here) is part of every x86-64 target's baseline; the
        // intrinsics only move register values.
        unsafe {
            // Round 1: the bytes of rows 2p and 2p + 1: a[2p] holds their columns 0-7
            // interleaved, a[2p + 1] columns 8-15. Rounds 2-4 interleave 16-, 32- and 64-bit
            // units (2, 4 and 8 rows of one column) of two vectors, so that each vector ends up
            // holding one column of every row.
            let mut a = r;
            for p in 0..8 {
                a[2 * p] = _mm_unpacklo_epi8(r[2 * p], r[2 * p + 1]);
                a[2 * p + 1] = _mm_unpackhi_epi8(r[2 * p], r[2 * p + 1]);
            }
            let mut b = a;
            for i in 0..16 {
                let (x, y) = (a[i / 4 * 4 + i % 2], a[i / 4 * 4 + i % 2 + 2]);
                b[i] = if i % 4 < 2 {
                    _mm_unpacklo_epi16(x, y)
                } else {
                    _mm_unpackhi_epi16(x, y)
                };
            }
            let mut c = b;
            for i in 0..16 {
                let (x, y) = (b[i / 8 * 8 + i % 4], b[i / 8 * 8 + i % 4 + 4]);
                c[i] = if i % 8 < 4 {
                    _mm_unpacklo_epi32(x, y)
                } else {
                    _mm_unpackhi_epi32(x, y)
                };
            }
            // The rounds leave the columns in this order: vector i holds column COLUMN[i].
            const COLUMN: [usize; 16] = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];
            let mut out = [_mm_setzero_si128(); 16];
            for (i, &k) in COLUMN.iter().enumerate() {
                let (x, y) = (c[i % 8], c[i % 8 + 8]);
                out[k] = if i < 8 {
                    _mm_unpacklo_epi64(x, y)
                } else {
                    _mm_unpackhi_epi64(x, y)
                };
            }
            out
        }
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

    /// The 2 values of `a` repeated over 16 lanes (`[a0, a1, a0, a1, ...]`, one 64-bit
    /// broadcast): the input of 2 groups side by side (`gspc-oc` with 2 groups per vector).
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn bcast2x16(a: &[f32; 2]) -> __m512 {
        // SAFETY: `a` is 8 readable bytes; `_mm_load_sd` needs no alignment.
        let pair = unsafe { _mm_load_sd(a.as_ptr().cast::<f64>()) };
        _mm512_castpd_ps(_mm512_broadcastsd_pd(pair))
    }

    /// The 4 values of `a` repeated over 16 lanes (one 128-bit broadcast).
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn bcast4x16(a: &[f32; 4]) -> __m512 {
        _mm512_broadcast_f32x4(load4(a))
    }

    /// The 2 values of `a` repeated over 8 lanes (one 64-bit broadcast).
    ///
    /// # Safety
    ///
    /// Only callable where AVX2 is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn bcast2x8(a: &[f32; 2]) -> __m256 {
        // SAFETY: `a` is 8 readable bytes; `_mm_load_sd` needs no alignment.
        let pair = unsafe { _mm_load_sd(a.as_ptr().cast::<f64>()) };
        _mm256_castpd_ps(_mm256_broadcastsd_pd(pair))
    }

    /// The 4 values of `a` repeated over 8 lanes.
    ///
    /// # Safety
    ///
    /// Only callable where AVX2 is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn bcast4x8(a: &[f32; 4]) -> __m256 {
        let v = load4(a);
        _mm256_set_m128(v, v)
    }

    /// Lanes `i < lanes` (at most 64) of a load at column `at` of a row of `w` values that
    /// fall inside the row (`0 <= at + i < w`), as a mask (bit `i`: lane `i`).
    #[inline(always)]
    pub const fn clip_mask(w: usize, at: isize, lanes: usize) -> u64 {
        // The lanes below `k`. (Every function here that the generated kernels call per
        // row must be inlined across the crate boundary: `#[inline(always)]`. Without it,
        // `clip_mask16` was a call per row, and the int8 depthwise layers 2x slower.)
        #[inline(always)]
        const fn below(k: isize) -> u64 {
            match k {
                ..=0 => 0,
                64.. => u64::MAX,
                k => (1u64 << k) - 1,
            }
        }
        let end = w as isize - at;
        below(if end < lanes as isize {
            end
        } else {
            lanes as isize
        }) & !below(-at)
    }

    /// [`clip_mask`] of a 16-lane load.
    #[inline(always)]
    pub const fn clip_mask16(w: usize, at: isize) -> u16 {
        clip_mask(w, at, 16) as u16
    }

    /// The 16 values of `row` at columns `AT..AT + 16`, zero for columns outside the row
    /// (left and right zero padding of the direct `gspc-ow` kernels, which read the NCHW
    /// input in place). `AT` may be negative.
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn load16_clip<const W: usize, const AT: isize>(row: &[f32; W]) -> __m512 {
        let mask = const { clip_mask16(W, AT) };
        if mask == u16::MAX {
            // SAFETY: every lane is inside the row (full mask: 0 <= AT and AT + 16 <= W),
            // so the 16 values from AT are readable; the load is unaligned.
            unsafe { _mm512_loadu_ps(row.as_ptr().offset(AT)) }
        } else {
            // SAFETY: only the lanes set in `mask` are read, and those columns lie inside
            // the row; AVX-512 masked loads do not access (or fault on) the other lanes, so
            // the pointer may point before or past the row there.
            unsafe { _mm512_maskz_loadu_ps(mask, row.as_ptr().wrapping_offset(AT)) }
        }
    }

    /// The lanes of `mask` (bit `i`: lane `i`) as an AVX2 lane mask (all ones or zero).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn lane_mask8(mask: u16) -> __m256i {
        let bit = |i: u16| if mask >> i & 1 == 1 { -1 } else { 0 };
        _mm256_setr_epi32(
            bit(0),
            bit(1),
            bit(2),
            bit(3),
            bit(4),
            bit(5),
            bit(6),
            bit(7),
        )
    }

    /// [`load16_clip`] with 8 lanes (AVX2): the 8 values of `row` at columns `AT..AT + 8`,
    /// zero outside the row.
    ///
    /// # Safety
    ///
    /// Only callable where AVX2 is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn load8_clip<const W: usize, const AT: isize>(row: &[f32; W]) -> __m256 {
        let mask = const { clip_mask16(W, AT) & 0xFF };
        if mask == 0xFF {
            // SAFETY: every lane is inside the row (full mask: 0 <= AT and AT + 8 <= W), so
            // the 8 values from AT are readable; the load is unaligned.
            unsafe { _mm256_loadu_ps(row.as_ptr().offset(AT)) }
        } else {
            // SAFETY: only the lanes set in `mask` are read, and those columns lie inside
            // the row; AVX masked loads (vmaskmovps) do not access (or fault on) the other
            // lanes, so the pointer may point before or past the row there.
            unsafe { _mm256_maskload_ps(row.as_ptr().wrapping_offset(AT), lane_mask8(mask)) }
        }
    }

    /// Lanes 0, 2, .., 14 of the 16 values `a` then `b` (AVX2).
    ///
    /// # Safety
    ///
    /// Only callable where AVX2 is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn evens8(a: __m256, b: __m256) -> __m256 {
        // [a0 a2 b0 b2 | a4 a6 b4 b6], then the 64-bit quarters in the order 0, 2, 1, 3.
        let t = _mm256_shuffle_ps::<0x88>(a, b);
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(t)))
    }

    /// Lanes 1, 3, .., 15 of the 16 values `a` then `b` (AVX2).
    ///
    /// # Safety
    ///
    /// Only callable where AVX2 is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn odds8(a: __m256, b: __m256) -> __m256 {
        let t = _mm256_shuffle_ps::<0xDD>(a, b);
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(t)))
    }

    /// [`store16_part`] with 8 lanes (AVX2).
    ///
    /// # Safety
    ///
    /// Only callable where AVX2 is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn store8_part<const L: usize, const AT: usize, const N: usize>(
        dst: &mut [f32; L],
        v: __m256,
    ) {
        const { assert!(N <= 8 && AT + N <= L, "store8_part out of bounds") };
        let mask = lane_mask8(((1u32 << N) - 1) as u16);
        // SAFETY: AT + N <= L (asserted at compile time), so the N values from AT lie inside
        // `dst`; the masked store writes only those lanes and does not access the others.
        unsafe { _mm256_maskstore_ps(dst.as_mut_ptr().add(AT), mask, v) }
    }

    /// Stores the first `N` lanes of `v` at `AT` of `dst` (a row narrower than a vector).
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn store16_part<const L: usize, const AT: usize, const N: usize>(
        dst: &mut [f32; L],
        v: __m512,
    ) {
        const { assert!(N <= 16 && AT + N <= L, "store16_part out of bounds") };
        // SAFETY: AT + N <= L (asserted at compile time), so the N values from AT lie inside
        // `dst`; the masked store writes only those lanes and does not access the others.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr().add(AT), mask16(N), v) }
    }

    /// Lanes 0, 2, .., 30 of the 32 values `a` then `b` (stride-2 columns, even phase).
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn evens16(a: __m512, b: __m512) -> __m512 {
        let idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        _mm512_permutex2var_ps(a, idx, b)
    }

    /// Lanes 1, 3, .., 31 of the 32 values `a` then `b` (stride-2 columns, odd phase).
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn odds16(a: __m512, b: __m512) -> __m512 {
        let idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        _mm512_permutex2var_ps(a, idx, b)
    }

    /// Lanes `N..N + 16` of the 32 values `lo` then `hi` (columns shifted by `N`).
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn shift16<const N: i32>(lo: __m512, hi: __m512) -> __m512 {
        _mm512_castsi512_ps(_mm512_alignr_epi32::<N>(
            _mm512_castps_si512(hi),
            _mm512_castps_si512(lo),
        ))
    }

    /// The taps of kernel column `KW` of two output rows at stride 2 (the AVX-512 form of a
    /// `gspc-dwc` layer on rows of at most 8 columns): lanes `j < 8` are column `2j + KW` of
    /// `a` (the first row's input row, column `-PW` in lane 0), lanes `8 + j` column
    /// `2j + KW` of `b` (the second's); the lanes not set in `MASK` (taps over the padding,
    /// or past the output row) are zero.
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn pair_taps16<const KW: i32, const MASK: u16>(a: __m512, b: __m512) -> __m512 {
        // Index bit 4 picks `b`; only the low 5 bits count, and every lane set in MASK has
        // 2j + KW < 16 (the plan's rule: the row and its left padding fit one vector).
        let idx = _mm512_setr_epi32(
            KW,
            2 + KW,
            4 + KW,
            6 + KW,
            8 + KW,
            10 + KW,
            12 + KW,
            14 + KW,
            16 + KW,
            18 + KW,
            20 + KW,
            22 + KW,
            24 + KW,
            26 + KW,
            28 + KW,
            30 + KW,
        );
        _mm512_maskz_permutex2var_ps(MASK, a, idx, b)
    }

    /// Lanes 8..16 of `v` in lanes 0..8 (and 0..8 in 8..16): the second output row of a
    /// pair (see [`pair_taps16`]), ready for [`store16_part`].
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn high_half16(v: __m512) -> __m512 {
        _mm512_shuffle_f32x4::<0b0100_1110>(v, v)
    }

    use crate::dwc::CB;
    use crate::qlayer::QLayout;
    use core::ops::Range;

    /// Transposes 16 rows of 16 values in registers: afterwards `r[j]` holds column `j`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn transpose16(r: &mut [__m512; 16]) {
        // Interleave pairs of rows, then pairs of pairs: in every 128-bit lane k, t[4a + j]
        // holds rows 4a..4a + 4 of column 4k + j.
        let mut t = [_mm512_setzero_ps(); 16];
        for a in 0..4 {
            let (r0, r1, r2, r3) = (r[4 * a], r[4 * a + 1], r[4 * a + 2], r[4 * a + 3]);
            let (lo01, hi01) = (_mm512_unpacklo_ps(r0, r1), _mm512_unpackhi_ps(r0, r1));
            let (lo23, hi23) = (_mm512_unpacklo_ps(r2, r3), _mm512_unpackhi_ps(r2, r3));
            t[4 * a] = _mm512_shuffle_ps::<0x44>(lo01, lo23);
            t[4 * a + 1] = _mm512_shuffle_ps::<0xEE>(lo01, lo23);
            t[4 * a + 2] = _mm512_shuffle_ps::<0x44>(hi01, hi23);
            t[4 * a + 3] = _mm512_shuffle_ps::<0xEE>(hi01, hi23);
        }
        // Column 4k + j is lane k of t[j], t[4 + j], t[8 + j], t[12 + j].
        for j in 0..4 {
            let (a, b, c, d) = (t[j], t[4 + j], t[8 + j], t[12 + j]);
            let s0 = _mm512_shuffle_f32x4::<0x44>(a, b);
            let s1 = _mm512_shuffle_f32x4::<0xEE>(a, b);
            let s2 = _mm512_shuffle_f32x4::<0x44>(c, d);
            let s3 = _mm512_shuffle_f32x4::<0xEE>(c, d);
            r[j] = _mm512_shuffle_f32x4::<0x88>(s0, s2);
            r[4 + j] = _mm512_shuffle_f32x4::<0xDD>(s0, s2);
            r[8 + j] = _mm512_shuffle_f32x4::<0x88>(s1, s3);
            r[12 + j] = _mm512_shuffle_f32x4::<0xDD>(s1, s3);
        }
    }

    /// Stores `R` (1 to 16) vectors as 16 rows of `R` values: lane `l` of `cols[j]` goes to
    /// `out[l * stride + j]`. A `gspc-oc` tile's accumulators hold 16 output channels (lanes)
    /// of one output column each; this writes them to the channels' NCHW planes (`stride`
    /// values apart) with one transpose and 16 stores of `R` lanes, where storing lane by
    /// lane took `16 R` scalar stores (docs/benchmarks/2026-12-06-zen5.md). Writes nothing
    /// when `out` is shorter than `15 * stride + R` (the generator's bounds check rules that
    /// out).
    ///
    /// # Safety
    ///
    /// Only callable where AVX-512F is enabled (from the generated kernels of that ISA).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn store_rows16<const R: usize>(cols: [__m512; R], out: &mut [f32], stride: usize) {
        const { assert!(R >= 1 && R <= 16, "store_rows16: 1 to 16 columns") };
        if 15 * stride + R > out.len() {
            return;
        }
        let mut r = [_mm512_setzero_ps(); 16];
        r[..R].copy_from_slice(&cols);
        transpose16(&mut r);
        for (l, v) in r.iter().enumerate() {
            // SAFETY: the R lanes written end at l * stride + R <= 15 * stride + R <=
            // out.len() (checked above); the masked-off lanes are not written.
            unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(l * stride), mask16(R), *v) };
        }
    }

    /// The first `n` (at most 16) lanes.
    #[inline(always)]
    fn mask16(n: usize) -> __mmask16 {
        if n >= 16 { 0xFFFF } else { (1u16 << n) - 1 }
    }

    /// [`QLayout::pack_input_depthwise`] with AVX-512BW, 16 words per store, the padding
    /// and the zero point applied by masks: pair layouts at stride 1 (word `j` of a row:
    /// padded columns `j` and `j + DW`) and at stride 2 with `DW` 1 (word `j`: columns `2j`
    /// and `2j + 1`, so the packed row is the padded row widened to 16 bits; the odd phase,
    /// which such a kernel never reads, is left as it was), on rows of up to 256 words.
    /// Other layouts go to the portable packing. Same result as
    /// [`QLayout::pack_input_depthwise`].
    ///
    /// Like [`pack_lanes`], it has no target features of its own, so that it is always
    /// inlined into the generated kernel that calls it with the layer's layout folded in
    /// (the masks become constants).
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512F, BW and VL, and the caller must be compiled with them
    /// (the AVX-512 variants of the generated kernels).
    #[inline(always)]
    pub unsafe fn pack_depthwise(lay: &QLayout, input: &[i8], c: usize, out: &mut [i32]) {
        const MAX_CHUNKS: usize = 16;
        let [h, w] = lay.input;
        let [ph, pw] = lay.padding;
        let (s, dw, rl) = (lay.phases(), lay.dilation[1], lay.phase_len());
        let plane = h * w;
        let chunks = rl.div_ceil(16);
        // A depthwise row layout at stride 1, or at stride 2 without dilation where no
        // kernel reads the odd phase, with `input` and `out` long enough.
        let covered = lay.depthwise
            && !lay.channel_lanes
            && (s == 1 || (s == 2 && dw == 1 && !lay.phase_used(1)))
            && out.len() >= lay.plane_words()
            && input.len() >= (c + 1) * plane;
        if covered && lay.elems == 4 && dw == 1 {
            // SAFETY: as this function's (the caller's contract), with `input` and `out`
            // checked above.
            return unsafe { pack_depthwise_quads(lay, input, c, out) };
        }
        let vectorized = covered && lay.elems == 2 && chunks <= MAX_CHUNKS;
        if !vectorized {
            return lay.pack_input_depthwise(input, c, out);
        }
        let x = input.as_ptr().wrapping_add(c * plane);
        // SAFETY: the caller has AVX-512F and BW (this function's contract).
        let (zp32, zp16, low) = unsafe {
            (
                _mm512_set1_epi32(lay.input_zero_point),
                _mm512_set1_epi16(lay.input_zero_point as i16),
                _mm512_set1_epi32(0xFFFF),
            )
        };
        let pw = pw as isize;
        for (ih, words) in out.chunks_exact_mut(s * rl).take(lay.padded[0]).enumerate() {
            let i = ih.wrapping_sub(ph);
            if i >= h {
                words.fill(0);
                continue;
            }
            let row = x.wrapping_add(i * w);
            for k in 0..chunks {
                let j0 = 16 * k;
                let m_out = mask16(rl - j0);
                let v = if s == 1 {
                    let (lo, hi) = (j0 as isize - pw, (j0 + dw) as isize - pw);
                    let (m_lo, m_hi) = (clip_mask16(w, lo), clip_mask16(w, hi));
                    // SAFETY: only the lanes set in the masks are read, and their columns
                    // lie inside row i of channel c (`clip_mask`; c * plane + (i + 1) * w <=
                    // input.len(), checked above); AVX-512 masked loads do not access (or
                    // fault on) the other lanes, so the pointers may point outside the row
                    // there. The caller has AVX-512F, BW and VL.
                    unsafe {
                        let a = _mm_maskz_loadu_epi8(m_lo, row.wrapping_offset(lo));
                        let b = _mm_maskz_loadu_epi8(m_hi, row.wrapping_offset(hi));
                        let a = _mm512_maskz_sub_epi32(m_lo, _mm512_cvtepi8_epi32(a), zp32);
                        let b = _mm512_maskz_sub_epi32(m_hi, _mm512_cvtepi8_epi32(b), zp32);
                        _mm512_or_si512(_mm512_and_si512(a, low), _mm512_slli_epi32::<16>(b))
                    }
                } else {
                    let lo = 2 * j0 as isize - pw;
                    let m = clip_mask(w, lo, 32) as u32;
                    // SAFETY: as above, with the 32 lanes of `m`.
                    unsafe {
                        let b = _mm256_maskz_loadu_epi8(m, row.wrapping_offset(lo));
                        _mm512_maskz_sub_epi16(m, _mm512_cvtepi8_epi16(b), zp16)
                    }
                };
                // SAFETY: the words written end at j0 + n <= rl <= words.len() (`m_out`
                // sets the n = min(rl - j0, 16) lanes of the words inside the phase); the
                // masked-off lanes are not written. The caller has AVX-512F.
                unsafe { _mm512_mask_storeu_epi32(words.as_mut_ptr().add(j0), m_out, v) };
            }
        }
    }

    /// [`pack_depthwise`]' quad rows, at stride 1 or 2 without dilation: word `j` of a row
    /// holds padded columns `SW * j..SW * j + 4`, each byte offset by `input_offset` (the
    /// padding: the pad value). Per 16 words, one masked 64-byte load of the row from padded
    /// column `SW * j0` (the columns outside the row load as the zero point), a 32-bit
    /// permutation that gives each 128-bit lane the bytes of its four words, a byte shuffle
    /// that spreads them into the words, and the offset added to every byte. The odd phase
    /// at stride 2, which no kernel reads, is left as it was.
    ///
    /// # Safety
    ///
    /// As [`pack_depthwise`], and the caller has checked `input` and `out` as it does.
    #[inline(always)]
    unsafe fn pack_depthwise_quads(lay: &QLayout, input: &[i8], c: usize, out: &mut [i32]) {
        let [h, w] = lay.input;
        let [ph, pw] = lay.padding;
        let (s, rl) = (lay.phases(), lay.phase_len());
        let plane = h * w;
        let x = input.as_ptr().wrapping_add(c * plane);
        // Lane k's dword d: dword `s * k + d` of the load (its four words start at byte
        // `4 * s * k`); byte t of the lane's word m: byte `s * m + t` of the lane. Tables
        // in read-only data: built in local arrays, they were stored to the stack and
        // reloaded in every row.
        const fn dwords(s: usize) -> [i32; 16] {
            let mut a = [0; 16];
            let mut i = 0;
            while i < 16 {
                a[i] = (s * (i / 4) + i % 4) as i32;
                i += 1;
            }
            a
        }
        const fn bytes(s: usize) -> [i8; 64] {
            let mut a = [0; 64];
            let mut i = 0;
            while i < 64 {
                a[i] = (s * (i % 16 / 4) + i % 4) as i8;
                i += 1;
            }
            a
        }
        static DWORDS: [[i32; 16]; 2] = [dwords(1), dwords(2)];
        static BYTES: [[i8; 64]; 2] = [bytes(1), bytes(2)];
        let k = if s == 1 { 0 } else { 1 };
        // SAFETY: the caller has AVX-512F and BW (this function's contract); the loads read
        // the 64 bytes of a table above.
        let (fill, offset, dwords, bytes) = unsafe {
            (
                _mm512_set1_epi8(lay.input_zero_point as i8),
                _mm512_set1_epi8(lay.input_offset as i8),
                _mm512_loadu_si512(DWORDS[k].as_ptr().cast()),
                _mm512_loadu_si512(BYTES[k].as_ptr().cast()),
            )
        };
        let pad = lay.pad_word();
        for (ih, words) in out.chunks_exact_mut(s * rl).take(lay.padded[0]).enumerate() {
            let i = ih.wrapping_sub(ph);
            if i >= h {
                words.fill(pad);
                continue;
            }
            let row = x.wrapping_add(i * w);
            for j0 in (0..rl).step_by(16) {
                let lo = (s * j0) as isize - pw as isize;
                let m = clip_mask(w, lo, 64);
                // SAFETY: only the bytes set in `m` are read, and their columns lie inside
                // row i of channel c (`clip_mask`; c * plane + (i + 1) * w <= input.len(),
                // checked by the caller); AVX-512 masked loads do not access (or fault on)
                // the other bytes, so the pointer may point outside the row there. The
                // words written end at j0 + min(rl - j0, 16) <= rl <= words.len(), the
                // masked-off ones are not written. The caller has AVX-512F and BW.
                unsafe {
                    let v = _mm512_mask_loadu_epi8(fill, m, row.wrapping_offset(lo));
                    let v = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(dwords, v), bytes);
                    let v = _mm512_add_epi8(v, offset);
                    _mm512_mask_storeu_epi32(words.as_mut_ptr().add(j0), mask16(rl - j0), v)
                };
            }
        }
    }

    /// [`QLayout::pack_input_grouped`] with AVX-512BW, at strides 1 and 2: per input row,
    /// 16 padded columns of the word's channels at a time, one masked byte load per
    /// channel (the lanes outside the input row are not read), then a masked store of 16
    /// words. The padding columns come out of the same vectors: their lanes take the pad
    /// value in one blend. At stride 2 the even and odd columns are first gathered into
    /// the two halves of the vector, one half per column phase; the odd half goes out in a
    /// store that starts 8 words early with its low lanes masked off. Quads (`vpdpbusd`):
    /// four channels, widened and shifted into the four bytes of each word, offset by
    /// `input_offset`. Pairs (`vpdpwssd`): two channels, sign-extended, less the zero point,
    /// in the two halves of each word. The padding rows hold the pad value. Other layouts
    /// go to the portable packing. Same result as [`QLayout::pack_input_grouped`].
    ///
    /// Like [`pack_lanes`], it has no target features of its own, so that it is always
    /// inlined into the generated kernel that calls it with the layer's layout folded in.
    /// (Inside the kernels, the portable packing of stride-2 pairs came out unrolled and
    /// scalar.)
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512F, BW and VL, and the caller must be compiled with them
    /// (the AVX-512 variants of the generated kernels).
    #[inline(always)]
    pub unsafe fn pack_grouped(
        lay: &QLayout,
        input: &[i8],
        groups: core::ops::Range<usize>,
        out: &mut [i32],
    ) {
        // SAFETY: this function's contract is `pack_grouped_by::<false>`'s.
        unsafe { pack_grouped_by::<false>(lay, input, groups, out) }
    }

    /// [`pack_grouped`] with AVX-512 VBMI for quads: each input row 64 padded columns at a
    /// time, one masked 64-byte load per channel (the columns outside the row take the
    /// zero point), two byte permutations (`vpermt2b`) that gather two channels' bytes of
    /// 32 of the columns each (at stride 2 the even columns to one half of each 128-bit
    /// lane and the odd ones to the other), and two 16-bit interleaves that make the
    /// words of 16 columns each. Where [`pack_grouped`] spends four widenings, three
    /// shifts and three ORs on every 16 words (and a permutation at stride 2), this spends
    /// four shuffles on 32. Pairs go to [`pack_grouped`]'s code, other layouts to the
    /// portable packing; same result as [`QLayout::pack_input_grouped`].
    ///
    /// Always inlined, with no target features of its own: the generated AVX-512 variants
    /// call it from a small packing function of their own compiled with VBMI, where the
    /// layer's layout folds into it, and only after [`has_avx512_vbmi`](super::has_avx512_vbmi).
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512F, BW, VL and VBMI, and the caller must be compiled
    /// with them.
    #[inline(always)]
    pub unsafe fn pack_grouped_vbmi(
        lay: &QLayout,
        input: &[i8],
        groups: core::ops::Range<usize>,
        out: &mut [i32],
    ) {
        // SAFETY: this function's contract is `pack_grouped_by::<true>`'s.
        unsafe { pack_grouped_by::<true>(lay, input, groups, out) }
    }

    /// The `vpermt2b` indices of [`pack_grouped_vbmi`]: in 128-bit lane `l`, 16-bit word `j
    /// < 4` pairs the two sources' bytes of column `a(4l + j)` and word `4 + j` those of
    /// column `b(4l + j)`, where at stride 1 `a(t) = t` and `b(t) = 16 + t`, at stride 2
    /// `a(t) = 2t` and `b(t) = 2t + 1`; `from` is added to each column.
    const fn quad_pair_index(stride: usize, from: usize) -> [u8; 64] {
        let mut idx = [0u8; 64];
        let mut t = 0;
        while t < 16 {
            let (l, j) = (t / 4, t % 4);
            let (a, b) = if stride == 1 {
                (from + t, from + 16 + t)
            } else {
                (from + 2 * t, from + 2 * t + 1)
            };
            idx[16 * l + 2 * j] = a as u8;
            idx[16 * l + 2 * j + 1] = 64 + a as u8;
            idx[16 * l + 8 + 2 * j] = b as u8;
            idx[16 * l + 8 + 2 * j + 1] = 64 + b as u8;
            t += 1;
        }
        idx
    }

    /// The body of [`pack_grouped`] (`VBMI` false) and [`pack_grouped_vbmi`] (true).
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512F, BW and VL (and VBMI if `VBMI`), and the caller must
    /// be compiled with them.
    #[inline(always)]
    unsafe fn pack_grouped_by<const VBMI: bool>(
        lay: &QLayout,
        input: &[i8],
        groups: core::ops::Range<usize>,
        out: &mut [i32],
    ) {
        let [h, w] = lay.input;
        let [ph, pw] = lay.padding;
        let (s, rl, cpg, words) = (lay.phases(), lay.phase_len(), lay.cpg, lay.words);
        let elems = lay.elems;
        let plane = h * w;
        let plane_words = lay.plane_words();
        let vectorized = !lay.depthwise
            && (elems == 2 || elems == 4)
            && (s == 1 || s == 2)
            && w > 0
            && groups.end <= lay.groups
            && out.len() >= lay.groups * words * plane_words
            && input.len() >= lay.groups * cpg * plane;
        if !vectorized {
            return lay.pack_input_grouped(input, groups, out);
        }
        let quads = elems == 4;
        let pad = lay.pad_word();
        // Padded columns per packed row, 16 a vector.
        let chunks = (s * rl).div_ceil(16);
        // Quads with VBMI whose packed row fits one vector: `few` input rows a 64-byte load
        // (`pack_rows_quads_vbmi`; byte 63 stays outside them and holds the zero point).
        let few = if VBMI && quads && s * rl <= 16 {
            (63 / w).min(8)
        } else {
            0
        };
        let few_index = if few >= 2 {
            [0, 1, 2, 3].map(|k| rows_pair_index(lay, k))
        } else {
            [[0; 64]; 4]
        };
        // The portable packing leaves a phase of pairs that no kernel column reads as it
        // was; so does this one.
        let used = [quads || lay.phase_used(0), quads || lay.phase_used(1)];
        // SAFETY: the caller has AVX-512F and BW (this function's contract).
        let (pads, offset, zp, low, evens_odds) = unsafe {
            (
                _mm512_set1_epi32(pad),
                _mm512_set1_epi8(lay.input_offset as i8),
                _mm512_set1_epi32(lay.input_zero_point),
                _mm512_set1_epi32(0xFFFF),
                _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15),
            )
        };
        for g in groups {
            for p in 0..words {
                let c0 = g * cpg + elems * p;
                // The word's channels: quads' channels past the group's take the first
                // one's values (their weights are 0); a pair's missing second channel is
                // 0. (No closures in this function: a closure is compiled without the
                // caller's target features, and `array::map` of one stayed out of line.)
                let mut rows = [input.as_ptr(); 4];
                let mut present = 0;
                for (i, r) in rows.iter_mut().enumerate().take(elems) {
                    let c = if elems * p + i < cpg {
                        present += 1;
                        c0 + i
                    } else {
                        c0
                    };
                    *r = input.as_ptr().wrapping_add(c * plane);
                }
                let at = (g * words + p) * plane_words;
                let Some(dst) = out.get_mut(at..at + plane_words) else {
                    return;
                };
                if few >= 2 {
                    // SAFETY: `rows` are four channel rows below groups * cpg, whose planes
                    // lie inside `input` (checked above); `dst` is the word's packed plane
                    // of `padded[0]` rows of s * rl <= 16 words; few * w <= 63. The caller
                    // has AVX-512F, BW, VL and VBMI (this function's contract).
                    unsafe { pack_rows_quads_vbmi(lay, &rows, dst, few, &few_index) };
                    continue;
                }
                for (ih, row) in dst.chunks_exact_mut(s * rl).enumerate() {
                    let i = ih.wrapping_sub(ph);
                    if i >= h {
                        row.fill(pad);
                        continue;
                    }
                    if VBMI && quads {
                        // SAFETY: `rows` are four channel rows below groups * cpg, row i <
                        // h of each is inside `input` (checked above); `row` holds the
                        // packed row's s * rl words. The caller has AVX-512F, BW, VL and
                        // VBMI (this function's contract).
                        unsafe { pack_row_quads_vbmi(lay, &rows, i, row) };
                        continue;
                    }
                    for k in 0..chunks {
                        // Padded columns col..col + 16 are input columns from `lo`; the
                        // lanes outside the input row are not loaded and take the pad
                        // value below (the padding columns come out of the same vectors:
                        // written one at a time, they took a tenth of a strided layer's
                        // time).
                        let col = 16 * k;
                        let lo = col as isize - pw as isize;
                        let m = clip_mask(w, lo, 16) as u16;
                        let at = (i * w) as isize + lo;
                        // SAFETY: only the lanes set in `m` are read (at most 16 bytes of
                        // each row pointer), and their columns lie inside row i < h of a
                        // channel below groups * cpg, inside `input` (checked above);
                        // AVX-512 masked loads do not access (or fault on) the other
                        // bytes, so the pointers may point outside the row there. The
                        // caller has AVX-512F, BW and VL.
                        let v = unsafe {
                            let v = if quads {
                                // Four channels' 16 columns widened into the bytes of
                                // the words (a 4x4 byte transpose in shuffles instead,
                                // three of them and a blend, was 3-10% slower on
                                // Zen 5); the columns outside the input row take the pad
                                // value.
                                let b0 = _mm_maskz_loadu_epi8(m, rows[0].wrapping_offset(at));
                                let b1 = _mm_maskz_loadu_epi8(m, rows[1].wrapping_offset(at));
                                let b2 = _mm_maskz_loadu_epi8(m, rows[2].wrapping_offset(at));
                                let b3 = _mm_maskz_loadu_epi8(m, rows[3].wrapping_offset(at));
                                let lo = _mm512_or_si512(
                                    _mm512_cvtepu8_epi32(b0),
                                    _mm512_slli_epi32::<8>(_mm512_cvtepu8_epi32(b1)),
                                );
                                let hi = _mm512_or_si512(
                                    _mm512_slli_epi32::<16>(_mm512_cvtepu8_epi32(b2)),
                                    _mm512_slli_epi32::<24>(_mm512_cvtepu8_epi32(b3)),
                                );
                                let v = _mm512_add_epi8(_mm512_or_si512(lo, hi), offset);
                                _mm512_mask_blend_epi32(m, pads, v)
                            } else {
                                // Two channels sign-extended less the zero point into
                                // the halves of the words; the columns outside the input
                                // row take the pad value, 0.
                                let b0 = _mm_maskz_loadu_epi8(m, rows[0].wrapping_offset(at));
                                let lo = _mm512_sub_epi32(_mm512_cvtepi8_epi32(b0), zp);
                                let lo = _mm512_and_si512(lo, low);
                                let v = if present == 2 {
                                    let b1 = _mm_maskz_loadu_epi8(m, rows[1].wrapping_offset(at));
                                    let hi = _mm512_sub_epi32(_mm512_cvtepi8_epi32(b1), zp);
                                    _mm512_or_si512(lo, _mm512_slli_epi32::<16>(hi))
                                } else {
                                    lo
                                };
                                _mm512_maskz_mov_epi32(m, v)
                            };
                            // At stride 2 the even columns to the low half, the odd ones
                            // to the high half.
                            if s == 2 {
                                _mm512_permutexvar_epi32(evens_odds, v)
                            } else {
                                v
                            }
                        };
                        let base = row.as_mut_ptr();
                        if s == 1 {
                            // SAFETY: words col..col + n with n = min(16, rl - col), inside
                            // the row's rl words; masked-off lanes are not written.
                            // AVX-512F as above.
                            unsafe { _mm512_mask_storeu_epi32(base.add(col), mask16(rl - col), v) };
                            continue;
                        }
                        // Column col + 2t is word col / 2 + t of phase 0 (dword t of v),
                        // column col + 2t + 1 word col / 2 + t of phase 1 (dword 8 + t).
                        let n = (rl - col / 2).min(8);
                        let (ne, no) = (used[0] as usize * n, used[1] as usize * n);
                        // SAFETY: words col / 2 + t < rl of each phase (t < n), inside the
                        // row's 2 * rl words; the odd columns are stored from dword 8 of a
                        // store that starts 8 words early, its first 8 lanes masked off
                        // (masked-off lanes are neither written nor accessed, so that
                        // address may lie before the row). AVX-512F as above.
                        unsafe {
                            _mm512_mask_storeu_epi32(base.add(col / 2), mask16(ne), v);
                            _mm512_mask_storeu_epi32(
                                base.wrapping_add(rl + col / 2).wrapping_sub(8),
                                mask16(no) << 8,
                                v,
                            );
                        }
                    }
                }
            }
        }
    }

    /// Row `i` of the four channel rows `rows` (quads: channel `b` in byte `b` of each word)
    /// packed into `row` ([`pack_grouped_vbmi`]).
    ///
    /// # Safety
    ///
    /// Row `i` (`< h`) of each of `rows` is readable (`w` bytes from `i * w`); `row` has
    /// `phases * phase_len` words; the CPU supports AVX-512F, BW, VL and VBMI, and the
    /// caller is compiled with them.
    #[inline(always)]
    unsafe fn pack_row_quads_vbmi(lay: &QLayout, rows: &[*const i8; 4], i: usize, row: &mut [i32]) {
        let w = lay.input[1];
        let pw = lay.padding[1];
        let (s, rl) = (lay.phases(), lay.phase_len());
        const IDX: [[u8; 64]; 4] = [
            quad_pair_index(1, 0),
            quad_pair_index(1, 32),
            quad_pair_index(2, 0),
            quad_pair_index(2, 32),
        ];
        let first = if s == 1 { 0 } else { 2 };
        // SAFETY: the caller has AVX-512F and BW; the loads read 64 bytes of a constant.
        let (fill, offset, idx0, idx1) = unsafe {
            (
                _mm512_set1_epi8(lay.input_zero_point as i8),
                _mm512_set1_epi8(lay.input_offset as i8),
                _mm512_loadu_si512(IDX[first].as_ptr().cast()),
                _mm512_loadu_si512(IDX[first + 1].as_ptr().cast()),
            )
        };
        let base = row.as_mut_ptr();
        // Word `wd` of phase `ph` of the packed row takes `n` words (0 to 16) from `v`.
        // (A macro, not a closure: a closure is compiled without the caller's target
        // features.)
        macro_rules! put {
            ($v:expr, $ph:expr, $wd:expr) => {{
                let wd: usize = $wd;
                let n = rl.saturating_sub(wd).min(16);
                if n > 0 {
                    // Words wd..wd + n < rl of phase $ph, inside the row's s * rl words;
                    // the masked-off lanes are not written. (Used inside the `unsafe`
                    // block below, whose SAFETY line covers it.)
                    _mm512_mask_storeu_epi32(base.add($ph * rl + wd), mask16(n), $v);
                }
            }};
        }
        for k in 0..(s * rl).div_ceil(64) {
            // Padded columns col..col + 64 are input columns from `lo`; the bytes outside
            // the input row are not loaded and hold the zero point, which the offset
            // below turns into the pad value.
            let col = 64 * k;
            let lo = col as isize - pw as isize;
            let m = clip_mask(w, lo, 64);
            let at = (i * w) as isize + lo;
            // First word of this chunk in its phase(s).
            let w0 = col / s;
            // SAFETY: only the bytes set in `m` are read, columns inside row i of each
            // channel (the caller's contract); AVX-512 masked loads do not access (or
            // fault on) the other bytes. `put!` stores words below rl of a phase, inside
            // the row's s * rl words (the caller's contract). AVX-512F, BW and VBMI as
            // above.
            unsafe {
                let r0 = _mm512_mask_loadu_epi8(fill, m, rows[0].wrapping_offset(at));
                let r1 = _mm512_mask_loadu_epi8(fill, m, rows[1].wrapping_offset(at));
                let r2 = _mm512_mask_loadu_epi8(fill, m, rows[2].wrapping_offset(at));
                let r3 = _mm512_mask_loadu_epi8(fill, m, rows[3].wrapping_offset(at));
                // 32 of the chunk's columns with indices `$idx`, from word `$wx`: at
                // stride 1 words wx..wx + 32, at stride 2 words wx..wx + 16 of both phases.
                macro_rules! half {
                    ($idx:expr, $wx:expr) => {{
                        let wx: usize = $wx;
                        let p01 = _mm512_permutex2var_epi8(r0, $idx, r1);
                        let p23 = _mm512_permutex2var_epi8(r2, $idx, r3);
                        let x = _mm512_add_epi8(_mm512_unpacklo_epi16(p01, p23), offset);
                        put!(x, 0, wx);
                        let (yph, yw) = if s == 1 { (0, wx + 16) } else { (1, wx) };
                        if rl > yw {
                            let y = _mm512_add_epi8(_mm512_unpackhi_epi16(p01, p23), offset);
                            put!(y, yph, yw);
                        }
                    }};
                }
                half!(idx0, w0);
                // The last 32 columns, where the row has them.
                let w2 = if s == 1 { w0 + 32 } else { w0 + 16 };
                if rl > w2 {
                    half!(idx1, w2);
                }
            }
        }
    }

    /// The `vpermt2b` indices of [`pack_rows_quads_vbmi`]'s pair `k`: input rows `2k` and
    /// `2k + 1` of a chunk loaded whole (row `r` at bytes `r * w..`, byte 63 the zero point)
    /// into two packed rows of at most 16 words. In 128-bit lane `l`, 16-bit word `j < 4`
    /// pairs the two sources' bytes for word `4l + j` of packed row `2k`, word `4 + j` for
    /// the same word of row `2k + 1` (the 16-bit interleaves then make row `2k` of the low
    /// words and row `2k + 1` of the high ones). Packed word `d` is padded column `d` at
    /// stride 1, at stride 2 column `2d` (phase 0, `d < rl`) or `2(d - rl) + 1`; the padding
    /// columns, and the words past the row, read byte 63.
    #[inline(always)]
    fn rows_pair_index(lay: &QLayout, k: usize) -> [u8; 64] {
        let (w, pw) = (lay.input[1], lay.padding[1]);
        let (s, rl) = (lay.phases(), lay.phase_len());
        let mut idx = [63u8; 64];
        for l in 0..4 {
            for j in 0..8 {
                let r = 2 * k + j / 4;
                let d = 4 * l + j % 4;
                let col = match (s, d < rl) {
                    (1, _) => d,
                    (_, true) => 2 * d,
                    _ => 2 * (d - rl) + 1,
                };
                let src = match col.checked_sub(pw) {
                    Some(c) if d < s * rl && c < w && r * w + c < 63 => r * w + c,
                    _ => 63,
                };
                idx[16 * l + 2 * j] = src as u8;
                idx[16 * l + 2 * j + 1] = 64 + src as u8;
            }
        }
        idx
    }

    /// The packed plane `dst` of one word of quads (channel `b` of `rows` in byte `b`) for
    /// rows of at most 16 packed words ([`pack_grouped_vbmi`]): the padding rows filled with
    /// the pad word, then `few` input rows at a time, one masked 64-byte load per channel
    /// (the rows past the plane and byte 63 hold the zero point), and per two rows two
    /// `vpermt2b` and two 16-bit interleaves (indices from [`rows_pair_index`]), a packed row
    /// a vector. Rows of 14 input columns a load each left 50 of its 64 bytes unused, and
    /// packing took a sixth of ResNeXt-50's `s4_down` layer.
    ///
    /// # Safety
    ///
    /// Each of `rows` points to an `h * w`-byte channel plane; `dst` has `plane_words` words;
    /// the packed row has at most 16 words; `2 <= few <= 8` and `few * w <= 63`; the CPU
    /// supports AVX-512F, BW, VL and VBMI, and the caller is compiled with them.
    #[inline(always)]
    unsafe fn pack_rows_quads_vbmi(
        lay: &QLayout,
        rows: &[*const i8; 4],
        dst: &mut [i32],
        few: usize,
        index: &[[u8; 64]; 4],
    ) {
        let [h, w] = lay.input;
        let ph = lay.padding[0];
        let rw = lay.phases() * lay.phase_len();
        let pad = lay.pad_word();
        for (ih, row) in dst.chunks_exact_mut(rw).enumerate() {
            if ih.wrapping_sub(ph) >= h {
                row.fill(pad);
            }
        }
        let base = dst.as_mut_ptr();
        // SAFETY: the caller has AVX-512F and BW; the loads read 64 bytes of `index`.
        let (fill, offset, idx0, idx1, idx2, idx3) = unsafe {
            (
                _mm512_set1_epi8(lay.input_zero_point as i8),
                _mm512_set1_epi8(lay.input_offset as i8),
                _mm512_loadu_si512(index[0].as_ptr().cast()),
                _mm512_loadu_si512(index[1].as_ptr().cast()),
                _mm512_loadu_si512(index[2].as_ptr().cast()),
                _mm512_loadu_si512(index[3].as_ptr().cast()),
            )
        };
        let store = mask16(rw);
        let mut i = 0;
        while i < h {
            let n = (h - i).min(few);
            // The chunk's n * w <= 63 bytes of each plane from row i.
            let m = (1u64 << (n * w)) - 1;
            let at = i * w;
            // SAFETY: only the bytes set in `m` are read: rows i..i + n < h of each
            // channel plane (the caller's contract); masked loads do not access the other
            // bytes. Each store writes packed row ph + i + r (r < n), below padded[0], the
            // rw <= 16 words from its start, inside `dst`. AVX-512F, BW and VBMI as above.
            unsafe {
                let r0 = _mm512_mask_loadu_epi8(fill, m, rows[0].add(at));
                let r1 = _mm512_mask_loadu_epi8(fill, m, rows[1].add(at));
                let r2 = _mm512_mask_loadu_epi8(fill, m, rows[2].add(at));
                let r3 = _mm512_mask_loadu_epi8(fill, m, rows[3].add(at));
                // Rows 2k and 2k + 1 of the chunk, where it has them.
                macro_rules! pair {
                    ($idx:expr, $k:expr) => {{
                        let r = 2 * $k;
                        if r < n {
                            let p01 = _mm512_permutex2var_epi8(r0, $idx, r1);
                            let p23 = _mm512_permutex2var_epi8(r2, $idx, r3);
                            let x = _mm512_add_epi8(_mm512_unpacklo_epi16(p01, p23), offset);
                            _mm512_mask_storeu_epi32(base.add((ph + i + r) * rw), store, x);
                            if r + 1 < n {
                                let y = _mm512_add_epi8(_mm512_unpackhi_epi16(p01, p23), offset);
                                _mm512_mask_storeu_epi32(base.add((ph + i + r + 1) * rw), store, y);
                            }
                        }
                    }};
                }
                pair!(idx0, 0);
                pair!(idx1, 1);
                pair!(idx2, 2);
                pair!(idx3, 3);
            }
            i += n;
        }
    }

    /// [`QLayout::pack_input_lanes`] with AVX-512BW: per input row, the block's 16 channel
    /// rows transposed 16 columns at a time in registers ([`transpose16_regs`]), each column
    /// widened to 32 bits less the zero point, then each word position pairs a column with
    /// the one `DW` to its right in one 16-lane vector (the positions a kernel reads only,
    /// [`QLayout::lane_col_used`]). Layouts it does not cover go to the
    /// portable packing. Same result as [`QLayout::pack_input_lanes`].
    ///
    /// It has no target features of its own, so that it is always inlined into the
    /// generated kernel that calls it, where the layer's layout (a constant) folds into it:
    /// as a target-feature function it was inlined into some kernels and not into others,
    /// which moved the speed of layers of the same shape by up to 1.5x.
    ///
    /// `COLS` sizes its copy of a padded row: at least `WP + DW` columns (otherwise the
    /// portable packing runs).
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512F, BW and VL, and the caller must be compiled with them
    /// (the AVX-512 variants of the generated kernels).
    #[inline(always)]
    pub unsafe fn pack_lanes<const COLS: usize>(
        lay: &QLayout,
        input: &[i8],
        unit: usize,
        out: &mut [i32],
    ) {
        let [h, w] = lay.input;
        let [ph, pw] = lay.padding;
        let [hp, wp] = lay.padded;
        let dw = lay.dilation[1];
        let quads = lay.elems == 4;
        let plane = h * w;
        let row_words = wp * 16;
        if lay.block != 16
            || !lay.channel_lanes
            || !(lay.elems == 2 || quads)
            || wp + (lay.elems - 1) * dw > COLS
            || i8::try_from(lay.input_zero_point).is_err()
            || input.len() < (unit + 1) * 16 * plane
            || out.len() < hp * row_words
        {
            return lay.pack_input_lanes(input, unit, out);
        }
        if dw == 1 && lay.stride[1] == 2 {
            // SAFETY: as this function's (the caller's contract), with `input` and `out`
            // checked above.
            return unsafe { pack_lane_pairs(lay, input, unit, out) };
        }
        // SAFETY: the caller has AVX-512F (this function's contract).
        let (zp, low, offset, zero128) = unsafe {
            (
                _mm512_set1_epi32(lay.input_zero_point),
                _mm512_set1_epi32(0xFFFF),
                _mm_set1_epi8(lay.input_offset as i8),
                _mm_setzero_si128(),
            )
        };
        // cols[col]: the 16 channels' values at padded column `col` of the current row,
        // `x - zp` (pairs) or the byte `x + input_offset` (quads); the padding columns keep
        // the padding (0, or the pad value's byte), as every row rewrites the same inside
        // columns.
        // SAFETY: the caller has AVX-512F (this function's contract).
        let mut cols = [unsafe { _mm512_set1_epi32(lay.pad_value() & 0xFF) }; COLS];
        let base = unit * 16 * plane;
        for (ih, words) in out.chunks_exact_mut(row_words).take(hp).enumerate() {
            let Some(i) = ih.checked_sub(ph).filter(|&i| i < h) else {
                words.fill(lay.pad_word());
                continue;
            };
            for j0 in (0..w).step_by(16) {
                let n = (w - j0).min(16);
                let mut r = [zero128; 16];
                for (l, v) in r.iter_mut().enumerate() {
                    let at = base + l * plane + i * w + j0;
                    // SAFETY: the n bytes read end at base + l * plane + (i + 1) * w <=
                    // (unit + 1) * 16 * plane <= input.len() (checked above); the
                    // masked-off lanes are not read; the caller has AVX-512BW and VL.
                    *v = unsafe { _mm_maskz_loadu_epi8(mask16(n), input.as_ptr().add(at)) };
                }
                let t = transpose16_regs(r);
                for (col, v) in cols.iter_mut().skip(pw + j0).zip(&t[..n]) {
                    // SAFETY: the caller has AVX-512F and BW (this function's contract).
                    *col = unsafe {
                        if quads {
                            _mm512_cvtepu8_epi32(_mm_add_epi8(*v, offset))
                        } else {
                            _mm512_sub_epi32(_mm512_cvtepi8_epi32(*v), zp)
                        }
                    };
                }
            }
            for (col, word) in words.chunks_exact_mut(16).enumerate() {
                // Positions no kernel reads are left as they were (the odd ones at stride 2).
                if !lay.lane_col_used(col) {
                    continue;
                }
                let v = if quads {
                    let (Some(a), Some(b), Some(c), Some(d)) = (
                        cols.get(col),
                        cols.get(col + dw),
                        cols.get(col + 2 * dw),
                        cols.get(col + 3 * dw),
                    ) else {
                        continue;
                    };
                    // SAFETY: the caller has AVX-512F (this function's contract). The four
                    // bytes of each word: a | b << 8 | c << 16 (one three-way OR), | d << 24.
                    unsafe {
                        let abc = _mm512_ternarylogic_epi32::<0xFE>(
                            *a,
                            _mm512_slli_epi32::<8>(*b),
                            _mm512_slli_epi32::<16>(*c),
                        );
                        _mm512_or_si512(abc, _mm512_slli_epi32::<24>(*d))
                    }
                } else {
                    let (Some(lo), Some(hi)) = (cols.get(col), cols.get(col + dw)) else {
                        continue;
                    };
                    // SAFETY: the caller has AVX-512F (this function's contract).
                    unsafe {
                        _mm512_or_si512(_mm512_and_si512(*lo, low), _mm512_slli_epi32::<16>(*hi))
                    }
                };
                // SAFETY: `word` is 16 writable int32 values and the store is unaligned;
                // the caller has AVX-512F (this function's contract).
                unsafe { _mm512_storeu_si512(word.as_mut_ptr().cast(), v) };
            }
        }
    }

    /// [`pack_lanes`]' path at stride 2 without dilation, where a kernel reads only the even
    /// word positions `2j`: pairs of padded columns `2j` and `2j + 1`, or quads of columns
    /// `2j..2j + 4`. Per input row, 16 padded columns at a time: the 16 channel rows' bytes
    /// are loaded into the four 128-bit lanes of four registers ([`lane_rows`]: bytes
    /// outside the row load as the zero point, which is the padding); two rounds of 16- and
    /// 32-bit interleaves and one 64-bit permutation per register give each position's
    /// byte pairs, channel by channel ([`lane_byte_pairs`], [`lane_words`]). A pair widens to two 16-bit
    /// values less the zero point; a quad is the position's pair and the next one's, the
    /// bytes offset by `input_offset`. About half the work of the byte transpose per column
    /// that combines columns in 32-bit lanes; at stride 1, where every position is read,
    /// that one was faster (7x7 planes, Zen 5).
    ///
    /// # Safety
    ///
    /// As [`pack_lanes`], and the caller has checked `input` and `out` as it does.
    #[inline(always)]
    unsafe fn pack_lane_pairs(lay: &QLayout, input: &[i8], unit: usize, out: &mut [i32]) {
        let [h, w] = lay.input;
        let [ph, pw] = lay.padding;
        let [hp, wp] = lay.padded;
        let plane = h * w;
        let quads = lay.elems == 4;
        // The input zero point fits a byte (checked by the caller): as a byte it is the
        // padding, as a 16-bit value what every value is less.
        let zp = lay.input_zero_point;
        // SAFETY: the caller has AVX-512F and BW (this function's contract).
        let (zp16, offset) = unsafe {
            (
                _mm512_set1_epi16(zp as i16),
                _mm512_set1_epi8(lay.input_offset as i8),
            )
        };
        for (ih, words) in out.chunks_exact_mut(wp * 16).take(hp).enumerate() {
            let Some(i) = ih.checked_sub(ph).filter(|&i| i < h) else {
                words.fill(lay.pad_word());
                continue;
            };
            let rows = unit * 16 * plane + i * w;
            // The byte pairs of the 8 positions from padded column `first` on (here 0),
            // the bytes offset by `input_offset` (0 for pairs).
            let c0 = -(pw as isize);
            // SAFETY (this call and the next block's): the caller has AVX-512F, BW and VL,
            // and channel `l`'s row `i` (`rows + l * plane..+ w`, l < 16) is inside `input`
            // (checked by the caller).
            let mut cur =
                unsafe { lane_byte_pairs(lane_rows(input, rows, plane, w, c0, zp, offset)) };
            for first in (0..wp).step_by(16) {
                let c0 = (first + 16) as isize - pw as isize;
                // The next 16 columns' pairs: the high halves of this block's last quad, and
                // the next block's (none past the row's last block of pairs).
                let next = if quads || first + 16 < wp {
                    // SAFETY: as above.
                    unsafe { lane_byte_pairs(lane_rows(input, rows, plane, w, c0, zp, offset)) }
                } else {
                    cur
                };
                // SAFETY: the caller has AVX-512F and BW.
                unsafe { lane_words(cur, next[0], quads, first, wp, zp16, words) };
                cur = next;
            }
        }
    }

    /// The 16 bytes from column `c0` (input column; may be negative) of 16 channels' rows
    /// (channel `l`'s at `input[rows + l * plane..][..w]`) in the lanes of four registers:
    /// row `4g + i` in lane `g` of register `i`. Bytes outside the row are `zp`; `offset`
    /// is added to every byte.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512F, BW and VL, the caller must be compiled with them, and
    /// `rows + 15 * plane + w <= input.len()`.
    #[inline(always)]
    unsafe fn lane_rows(
        input: &[i8],
        rows: usize,
        plane: usize,
        w: usize,
        c0: isize,
        zp: i32,
        offset: __m512i,
    ) -> [__m512i; 4] {
        // The bytes `lo..hi` that are inside the row.
        let lo = (-c0).clamp(0, 16) as u32;
        let hi = (w as isize - c0).clamp(0, 16) as u32;
        // SAFETY: the caller has AVX-512F (this function's contract).
        let fill = unsafe { _mm_set1_epi8(zp as i8) };
        if hi <= lo {
            // SAFETY: as above.
            return [unsafe { _mm512_add_epi8(_mm512_broadcast_i32x4(fill), offset) }; 4];
        }
        let m = ((1u32 << hi) - (1u32 << lo)) as u16;
        let mut x = [fill; 16];
        for (l, v) in x.iter_mut().enumerate() {
            let at = (rows + l * plane) as isize + c0;
            // SAFETY: the mask sets bytes `lo..hi`, which the pointer (computed with
            // wrapping arithmetic) puts at channel l's columns `c0 + lo..c0 + hi`, inside
            // its row (`0 <= c0 + lo`, `c0 + hi <= w`), which is inside `input` (this
            // function's contract); masked-off bytes are neither read nor fault. The caller
            // has AVX-512BW and VL.
            *v = unsafe { _mm_mask_loadu_epi8(fill, m, input.as_ptr().wrapping_offset(at)) };
        }
        // Four 128-bit values in the four lanes of one register. (A function, not a
        // closure: a closure is compiled without the target features of the kernel this
        // is inlined into, and its intrinsics would be calls.)
        //
        // Safety: the caller must be compiled with AVX-512F.
        #[inline(always)]
        unsafe fn join(a: __m128i, b: __m128i, c: __m128i, d: __m128i) -> __m512i {
            // SAFETY: the intrinsics only move register values; the caller has AVX-512F
            // (this function's contract).
            unsafe {
                let lo = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(a), b);
                let hi = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(c), d);
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
            }
        }
        // SAFETY: the caller has AVX-512F and BW (this function's contract).
        unsafe {
            [
                _mm512_add_epi8(join(x[0], x[4], x[8], x[12]), offset),
                _mm512_add_epi8(join(x[1], x[5], x[9], x[13]), offset),
                _mm512_add_epi8(join(x[2], x[6], x[10], x[14]), offset),
                _mm512_add_epi8(join(x[3], x[7], x[11], x[15]), offset),
            ]
        }
    }

    /// [`lane_rows`]' registers of padded columns `first..first + 16` as the byte pairs of
    /// the 8 positions `first + 2u`: position `u`'s 16 pairs (channel `l`'s at bytes `2l`
    /// and `2l + 1`) in 256-bit half `u % 2` of register `u / 2` ([`pair_half`]).
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512F and BW, and the caller must be compiled with them.
    #[inline(always)]
    unsafe fn lane_byte_pairs(r: [__m512i; 4]) -> [__m512i; 4] {
        // SAFETY: the caller has AVX-512F and BW (this function's contract); the
        // intrinsics only move register values.
        unsafe {
            let a0 = _mm512_unpacklo_epi16(r[0], r[1]);
            let a1 = _mm512_unpackhi_epi16(r[0], r[1]);
            let a2 = _mm512_unpacklo_epi16(r[2], r[3]);
            let a3 = _mm512_unpackhi_epi16(r[2], r[3]);
            // Register q, lane g, 64-bit half j: byte pair 2q + j of rows 4g..4g + 4; the
            // permutation gathers each pair's four lanes.
            let by_lane = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
            [
                _mm512_permutexvar_epi64(by_lane, _mm512_unpacklo_epi32(a0, a2)),
                _mm512_permutexvar_epi64(by_lane, _mm512_unpackhi_epi32(a0, a2)),
                _mm512_permutexvar_epi64(by_lane, _mm512_unpacklo_epi32(a1, a3)),
                _mm512_permutexvar_epi64(by_lane, _mm512_unpackhi_epi32(a1, a3)),
            ]
        }
    }

    /// Position `u`'s pairs of [`lane_byte_pairs`].
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512F, and the caller must be compiled with it.
    #[inline(always)]
    unsafe fn pair_half(pairs: &[__m512i; 4], u: usize) -> __m256i {
        let p = pairs[u / 2 % 4];
        // SAFETY: the caller has AVX-512F (this function's contract).
        unsafe {
            if u.is_multiple_of(2) {
                _mm512_castsi512_si256(p)
            } else {
                _mm512_extracti64x4_epi64::<1>(p)
            }
        }
    }

    /// The words of positions `first, first + 2, ..` (at most 8, below `wp`) of a
    /// channel-lane row (`words`, 16 words a position) from their byte pairs (`pairs`,
    /// [`lane_byte_pairs`]). Pairs: each byte pair widened to two 16-bit values less the
    /// zero point (`zp16`). Quads: position `u`'s byte pairs in the low half of each word,
    /// position `u + 1`'s in the high half (the eighth's from `next`, the first pairs of the
    /// next 16 columns).
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512F and BW, and the caller must be compiled with them.
    #[inline(always)]
    unsafe fn lane_words(
        pairs: [__m512i; 4],
        next: __m512i,
        quads: bool,
        first: usize,
        wp: usize,
        zp16: __m512i,
        words: &mut [i32],
    ) {
        for (u, col) in (first..wp).step_by(2).take(8).enumerate() {
            let Some(word) = words.get_mut(col * 16..col * 16 + 16) else {
                break;
            };
            // SAFETY: `word` is 16 writable int32 values and the store is unaligned; the
            // caller has AVX-512F and BW.
            unsafe {
                let lo = pair_half(&pairs, u);
                let v = if !quads {
                    _mm512_sub_epi16(_mm512_cvtepi8_epi16(lo), zp16)
                } else {
                    let hi = if u < 7 {
                        pair_half(&pairs, u + 1)
                    } else {
                        _mm512_castsi512_si256(next)
                    };
                    _mm512_or_si512(
                        _mm512_cvtepu16_epi32(lo),
                        _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(hi)),
                    )
                };
                _mm512_storeu_si512(word.as_mut_ptr().cast(), v)
            };
        }
    }

    /// Transposes 8 rows of 8 values in registers: afterwards `r[j]` holds column `j`.
    ///
    /// # Safety
    ///
    /// The caller must be compiled with AVX2 (no target features of its own, so that it is
    /// always inlined: see [`dwc_pack_pixels_avx2`]).
    #[inline(always)]
    unsafe fn transpose8(r: &mut [__m256; 8]) {
        // SAFETY: the caller has AVX2 (this function's contract).
        unsafe {
            let mut t = [_mm256_setzero_ps(); 8];
            for a in 0..2 {
                let (r0, r1, r2, r3) = (r[4 * a], r[4 * a + 1], r[4 * a + 2], r[4 * a + 3]);
                let (lo01, hi01) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
                let (lo23, hi23) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
                t[4 * a] = _mm256_shuffle_ps::<0x44>(lo01, lo23);
                t[4 * a + 1] = _mm256_shuffle_ps::<0xEE>(lo01, lo23);
                t[4 * a + 2] = _mm256_shuffle_ps::<0x44>(hi01, hi23);
                t[4 * a + 3] = _mm256_shuffle_ps::<0xEE>(hi01, hi23);
            }
            for j in 0..4 {
                r[j] = _mm256_permute2f128_ps::<0x20>(t[j], t[4 + j]);
                r[4 + j] = _mm256_permute2f128_ps::<0x31>(t[j], t[4 + j]);
            }
        }
    }

    /// The first `n` (at most 8) lanes, as the mask `maskload`/`maskstore` take.
    ///
    /// # Safety
    ///
    /// The caller must be compiled with AVX2 (as [`transpose8`]).
    #[inline(always)]
    unsafe fn mask8(n: usize) -> __m256i {
        // SAFETY: the caller has AVX2 (this function's contract).
        unsafe {
            _mm256_cmpgt_epi32(
                _mm256_set1_epi32(n.min(8) as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            )
        }
    }

    /// The pixels `x0..x0 + n` of a range of `len` that the transposes take from the step
    /// at `x0` (a multiple of 8 below `len`): whole vectors where the range has 8 pixels,
    /// the last one ending at the range's end (overlapping the one before); else the
    /// `len - x0` pixels left, under a mask.
    #[inline(always)]
    fn span8(x0: usize, len: usize) -> (usize, usize) {
        if len >= 8 {
            (x0.min(len - 8), 8)
        } else {
            (x0, len - x0)
        }
    }

    /// [`crate::dwc::pack_pixels`] with AVX2: 8 pixels of 8 channels per transpose. Ranges
    /// of 8 pixels or more take whole vectors only, the last one overlapping the one before
    /// (masked stores are slow on AMD cores: docs/benchmarks/2026-12-02-zen4.md); shorter
    /// ones are loaded under a mask.
    ///
    /// It has no target features of its own, so that it is always inlined into the
    /// generated kernel that calls it: as a target-feature function, whether it was inlined
    /// depended on the build's codegen units, and its out-of-line copies were larger and
    /// slower.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2, and the caller must be compiled with it (the AVX2 and
    /// AVX-512 variants of the generated kernels).
    #[inline(always)]
    pub unsafe fn dwc_pack_pixels_avx2(
        input: &[f32],
        plane: usize,
        c0: usize,
        pixels: Range<usize>,
        dst: &mut [f32],
    ) {
        if !crate::dwc::pixels_fit(input, plane, c0, &pixels, dst) {
            return;
        }
        let (p0, len) = (pixels.start, pixels.len());
        for half in 0..CB / 8 {
            for x0 in (0..len).step_by(8) {
                let (x0, n) = span8(x0, len);
                // SAFETY: the caller has AVX2 (this function's contract).
                let (mask, mut r) = unsafe { (mask8(n), [_mm256_setzero_ps(); 8]) };
                for (c, v) in r.iter_mut().enumerate() {
                    let at = (c0 + 8 * half + c) * plane + p0 + x0;
                    // SAFETY: the n lanes read end at (c0 + 8 half + c) * plane + p0 + x0 +
                    // n <= (c0 + CB) * plane <= input.len() (`pixels_fit`: p0 + x0 + n <=
                    // pixels.end <= plane); with n < 8 the masked-off lanes are not read.
                    *v = unsafe {
                        if n == 8 {
                            _mm256_loadu_ps(input.as_ptr().add(at))
                        } else {
                            _mm256_maskload_ps(input.as_ptr().add(at), mask)
                        }
                    };
                }
                // SAFETY: the caller has AVX2 (this function's contract).
                unsafe { transpose8(&mut r) };
                for (j, v) in r.iter().take(n).enumerate() {
                    let at = (p0 + x0 + j) * CB + 8 * half;
                    // SAFETY: at + 8 <= pixels.end * CB <= dst.len() (`pixels_fit`).
                    unsafe { _mm256_storeu_ps(dst.as_mut_ptr().add(at), *v) };
                }
            }
        }
    }

    /// [`crate::dwc::unpack_pixels`] with AVX2: whole vectors where the planes hold 8
    /// pixels or more, the last one overlapping the one before (no masked stores, slow on
    /// AMD cores).
    ///
    /// Always inlined, as [`dwc_pack_pixels_avx2`].
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2, and the caller must be compiled with it (the AVX2 and
    /// AVX-512 variants of the generated kernels).
    #[inline(always)]
    pub unsafe fn dwc_unpack_pixels_avx2(src: &[f32], first: usize, planes: &mut [&mut [f32]; CB]) {
        let Some(len) = crate::dwc::planes_fit(src, first, planes) else {
            return;
        };
        // SAFETY: the caller has AVX2 (this function's contract); `src` holds pixels
        // `first..first + len` and every plane `len` values (`planes_fit`).
        unsafe { unpack8(src, first, len, |c| planes[c].as_mut_ptr()) }
    }

    /// [`dwc_unpack_pixels_avx2`] of a whole block: pixels `0..pixels` of `src` into the
    /// `CB` planes of `pixels` values at the start of `block` (`block[c * pixels + p] =
    /// src[p * CB + c]`). The planes are one pointer and a constant stride apart, which
    /// saves the whole-block path of the kernels the slices of
    /// [`crate::dwc::planes_mut`]: on 7x7 planes that took 5% of the layer's time.
    ///
    /// Always inlined, as [`dwc_pack_pixels_avx2`].
    ///
    /// # Safety
    ///
    /// As [`dwc_unpack_pixels_avx2`].
    #[inline(always)]
    pub unsafe fn dwc_unpack_block_avx2(src: &[f32], pixels: usize, block: &mut [f32]) {
        let total = pixels.saturating_mul(CB);
        if src.len() < total || block.len() < total {
            return;
        }
        let at = block.as_mut_ptr();
        // SAFETY: the caller has AVX2 (this function's contract); `src` holds `pixels`
        // pixels and plane `c` is `block[c * pixels..(c + 1) * pixels]`, inside `block`
        // (checked above), so `at.add(c * pixels)` stays in it.
        unsafe { unpack8(src, 0, pixels, |c| at.add(c * pixels)) }
    }

    /// Transposes the packed pixels `first..first + len` of `src` to the `CB` planes whose
    /// first values `plane(c)` points at.
    ///
    /// # Safety
    ///
    /// The caller must be compiled with AVX2; `src` must hold `(first + len) * CB` values,
    /// and `plane(c)`, for each `c < CB`, point at `len` writable values that no other
    /// plane overlaps.
    #[inline(always)]
    unsafe fn unpack8(
        src: &[f32],
        first: usize,
        len: usize,
        mut plane: impl FnMut(usize) -> *mut f32,
    ) {
        for half in 0..CB / 8 {
            for p0 in (0..len).step_by(8) {
                let (p0, n) = span8(p0, len);
                // SAFETY: the caller has AVX2 (this function's contract).
                let (mask, mut r) = unsafe { (mask8(n), [_mm256_setzero_ps(); 8]) };
                for (j, v) in r.iter_mut().take(n).enumerate() {
                    let at = (first + p0 + j) * CB + 8 * half;
                    // SAFETY: at + 8 <= (first + len) * CB <= src.len() (the contract).
                    *v = unsafe { _mm256_loadu_ps(src.as_ptr().add(at)) };
                }
                // SAFETY: the caller has AVX2 (this function's contract).
                unsafe { transpose8(&mut r) };
                for (c, v) in r.iter().enumerate() {
                    // SAFETY: the n lanes written end at p0 + n <= len values from the
                    // plane's start, all writable (the contract); with n < 8 the masked-off
                    // lanes are not written.
                    unsafe {
                        let to = plane(8 * half + c).add(p0);
                        if n == 8 {
                            _mm256_storeu_ps(to, *v)
                        } else {
                            _mm256_maskstore_ps(to, mask, *v)
                        }
                    };
                }
            }
        }
    }

    #[cfg(all(test, feature = "std"))]
    mod tests {
        use super::*;
        use crate::dwc::{pack_cases, reference_pack};
        use crate::x86::channel_row_at;

        /// A depthwise pair layout of 32 channels (blocks of 16).
        fn dw_layout(
            input: [usize; 2],
            kernel: [usize; 2],
            stride: usize,
            padding: [usize; 2],
            dilation: [usize; 2],
            zp: i32,
        ) -> QLayout {
            QLayout {
                depthwise: true,
                groups: 32,
                cpg: 1,
                kpg: 1,
                kernel,
                stride: [stride, stride],
                block: 16,
                elems: 2,
                words: kernel[1].div_ceil(2),
                input,
                padding,
                dilation,
                padded: [input[0] + 2 * padding[0], input[1] + 2 * padding[1]],
                input_zero_point: zp,
                input_offset: 0,
                channel_lanes: false,
            }
        }

        /// Shapes for the packers: rows narrower and wider than a vector, odd padded
        /// widths, padding from 0 to 3, dilation, strides 1 to 3 (the pair packer covers
        /// stride 1 and stride 2 without dilation, the rest goes to the portable one),
        /// zero points at both ends.
        fn dw_layouts() -> std::vec::Vec<QLayout> {
            let mut v = std::vec::Vec::new();
            for (hw, k, p, d) in [
                ([7, 7], [3, 3], [1, 1], [1, 1]),
                ([3, 1], [3, 3], [1, 1], [1, 1]),
                ([14, 15], [5, 5], [2, 2], [1, 1]),
                ([28, 28], [3, 3], [1, 1], [1, 1]),
                ([9, 40], [7, 7], [3, 3], [1, 1]),
                ([5, 56], [3, 3], [0, 0], [1, 1]),
                ([6, 37], [3, 3], [2, 2], [2, 2]),
                ([4, 33], [3, 5], [1, 2], [1, 1]),
            ] {
                for s in [1, 2, 3] {
                    for zp in [-128, 0, 5, 127] {
                        v.push(dw_layout(hw, k, s, p, d, zp));
                    }
                }
            }
            v
        }

        fn avx512bw() -> bool {
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
        }

        /// Pairs, and quads at both input offsets (the quad packer covers strides 1 and 2
        /// without dilation).
        #[test]
        fn depthwise_rows_packed_as_the_portable_packing() {
            if !avx512bw() {
                return;
            }
            let layouts = dw_layouts()
                .into_iter()
                .flat_map(|l| [l, l.quads(128), l.quads(0)]);
            for l in layouts {
                let plane = l.input[0] * l.input[1];
                let input: std::vec::Vec<i8> = (0..32 * plane)
                    .map(|i| (i * 37 % 256) as u8 as i8)
                    .collect();
                for c in [0, 17, 31] {
                    let mut want = vec![-99i32; l.plane_words()];
                    l.pack_input_depthwise(&input, c, &mut want);
                    let mut got = vec![-99i32; l.plane_words()];
                    // SAFETY: AVX-512F, BW and VL were detected above.
                    unsafe { pack_depthwise(&l, &input, c, &mut got) };
                    assert_eq!(got, want, "{l:?} channel {c}");
                }
            }
        }

        /// Grouped layouts, quads and pairs: channels per group that fill whole words and
        /// that do not (a quad's missing channels repeat the first, a pair's is 0), rows
        /// narrower and wider than a vector, odd padded widths, padding 0-3, dilation,
        /// strides 1-3 and 3 x 2 (a column stride of 3 goes to the portable packing), both
        /// input offsets. (The 13 x 17 input at stride 3 x 2 is the layer on which 256-bit
        /// masked stores went wrong: only inside a kernel, caught by the int8 kernel tests.)
        fn grouped_layouts() -> std::vec::Vec<QLayout> {
            let mut v = std::vec::Vec::new();
            for (groups, cpg, hw, p, d) in [
                (4, 4, [7, 7], [1, 1], [1, 1]),
                (3, 6, [5, 16], [1, 1], [1, 1]),
                (2, 8, [14, 15], [2, 2], [1, 1]),
                (2, 3, [4, 33], [1, 2], [2, 2]),
                (1, 16, [3, 1], [0, 0], [1, 1]),
                (2, 5, [2, 56], [1, 0], [1, 1]),
                (4, 4, [20, 18], [0, 0], [1, 1]),
                (5, 5, [7, 17], [3, 3], [1, 3]),
                (3, 3, [13, 17], [2, 1], [3, 3]),
                // ResNeXt's strided shape; padded rows of 32 and 33 columns.
                (2, 8, [14, 14], [1, 1], [1, 1]),
                (2, 4, [3, 30], [1, 1], [1, 1]),
                (2, 7, [3, 31], [1, 1], [1, 1]),
                // Rows of more than 64 padded columns (the VBMI packer's chunks), and of
                // exactly 64.
                (2, 4, [3, 70], [1, 1], [1, 1]),
                (1, 8, [2, 100], [2, 2], [1, 1]),
                (2, 4, [2, 62], [1, 1], [1, 1]),
                // Packed rows of at most 16 words (the VBMI packer's several rows a load):
                // 7 and 12 rows a load (an odd count), a last load of fewer rows, no
                // column padding.
                (2, 8, [9, 8], [1, 1], [1, 1]),
                (2, 8, [11, 12], [2, 2], [1, 1]),
                (3, 4, [5, 3], [1, 0], [1, 1]),
            ] {
                for stride in [[1, 1], [2, 2], [3, 3], [3, 2]] {
                    for (zp, off) in [(-128, 128), (3, 0), (127, 128), (-55, 128)] {
                        let l = QLayout {
                            depthwise: false,
                            groups,
                            cpg,
                            kpg: 4,
                            kernel: [3, 3],
                            stride,
                            block: 4,
                            elems: 2,
                            words: cpg.div_ceil(2),
                            input: hw,
                            padding: p,
                            dilation: d,
                            padded: [hw[0] + 2 * p[0], hw[1] + 2 * p[1]],
                            input_zero_point: zp,
                            input_offset: 0,
                            channel_lanes: false,
                        };
                        v.push(l.quads(off));
                        v.push(l);
                    }
                }
            }
            v
        }

        /// [`pack_grouped`] inlined into a function compiled with AVX-512.
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        fn grouped_avx512(
            l: &QLayout,
            input: &[i8],
            groups: core::ops::Range<usize>,
            out: &mut [i32],
        ) {
            // SAFETY: this function is compiled with AVX-512F, BW and VL, and its callers
            // run it only where the CPU has them.
            unsafe { pack_grouped(l, input, groups, out) }
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
        fn grouped_vbmi(
            l: &QLayout,
            input: &[i8],
            groups: core::ops::Range<usize>,
            out: &mut [i32],
        ) {
            // SAFETY: this function is compiled with AVX-512F, BW, VL and VBMI, and its
            // callers run it only where the CPU has them.
            unsafe { pack_grouped_vbmi(l, input, groups, out) }
        }

        #[test]
        fn grouped_input_packed_as_the_portable_packing() {
            if !avx512bw() {
                return;
            }
            for l in grouped_layouts() {
                let plane = l.input[0] * l.input[1];
                let input: std::vec::Vec<i8> = (0..l.groups * l.cpg * plane)
                    .map(|i| (i * 41 % 256) as u8 as i8)
                    .collect();
                let mut ranges = std::vec![0..l.groups, 0..1, l.groups - 1..l.groups];
                ranges.push(1.min(l.groups)..l.groups);
                for groups in ranges {
                    let mut want = vec![-99i32; l.input_words()];
                    l.pack_input_grouped(&input, groups.clone(), &mut want);
                    let mut got = vec![-99i32; l.input_words()];
                    // SAFETY: AVX-512F, BW and VL were detected above.
                    unsafe { pack_grouped(&l, &input, groups.clone(), &mut got) };
                    assert_eq!(got, want, "{l:?} groups {groups:?}");
                    // Inlined into a caller compiled with AVX-512, as in the kernels.
                    got.fill(-99);
                    // SAFETY: as above.
                    unsafe { grouped_avx512(&l, &input, groups.clone(), &mut got) };
                    assert_eq!(got, want, "{l:?} groups {groups:?}, AVX-512 caller");
                    if std::is_x86_feature_detected!("avx512vbmi") {
                        got.fill(-99);
                        // SAFETY: AVX-512F, BW, VL and VBMI were detected above.
                        unsafe { grouped_vbmi(&l, &input, groups.clone(), &mut got) };
                        assert_eq!(got, want, "{l:?} groups {groups:?}, VBMI");
                    }
                }
            }
        }

        #[test]
        fn channel_lanes_packed_as_the_portable_packing() {
            if !avx512bw() {
                return;
            }
            let layouts = dw_layouts()
                .into_iter()
                .flat_map(|l| [l.lanes(), l.quads(128).lanes(), l.quads(0).lanes()]);
            for l in layouts {
                let plane = l.input[0] * l.input[1];
                let input: std::vec::Vec<i8> = (0..32 * plane)
                    .map(|i| (i * 53 % 256) as u8 as i8)
                    .collect();
                for unit in [0, 1] {
                    let mut want = vec![-99i32; l.input_words()];
                    l.pack_input_lanes(&input, unit, &mut want);
                    let mut got = vec![-99i32; l.input_words()];
                    // SAFETY: AVX-512F, BW and VL were detected above.
                    unsafe { pack_lanes::<96>(&l, &input, unit, &mut got) };
                    assert_eq!(got, want, "{l:?} block {unit}");
                    // A row copy too short for the padded row: the portable packing runs.
                    got.fill(-99);
                    // SAFETY: as above.
                    unsafe { pack_lanes::<12>(&l, &input, unit, &mut got) };
                    assert_eq!(got, want, "{l:?} block {unit}, 12 columns");
                }
            }
        }

        #[test]
        fn byte_runs_stored_where_their_masks_say() {
            if !avx512bw() {
                return;
            }
            let bytes: [i8; 16] = core::array::from_fn(|i| i as i8 + 1);
            // SAFETY: SSE2 is baseline; `bytes` is 16 readable bytes.
            let v = unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) };
            fn check<const AT: usize, const L0: usize, const N: usize>(v: __m128i, b: &[i8; 16]) {
                let mut out = [-100i8; 20];
                // SAFETY: AVX-512BW and VL were detected by the caller.
                unsafe { store_bytes::<20, AT, L0, N>(v, &mut out) };
                for (i, &o) in out.iter().enumerate() {
                    let want = if (AT..AT + N).contains(&i) {
                        b[L0 + i - AT]
                    } else {
                        -100
                    };
                    assert_eq!(o, want, "AT {AT} L0 {L0} N {N}: byte {i}");
                }
            }
            // Runs at the start and end of the vector and of the buffer, and a run whose
            // vector starts before the buffer (AT < L0).
            check::<0, 0, 16>(v, &bytes);
            check::<0, 0, 14>(v, &bytes);
            check::<4, 0, 16>(v, &bytes);
            check::<0, 2, 14>(v, &bytes);
            check::<0, 15, 1>(v, &bytes);
            check::<19, 15, 1>(v, &bytes);
            check::<6, 3, 7>(v, &bytes);
            check::<12, 9, 7>(v, &bytes);
        }

        /// `requant_columns4` and `channel_rows` against `requant16_bytes` column by
        /// column, for 1 to 4 vectors of columns, zero points at both ends and inside,
        /// accumulators that clamp at both ends, and the rows stored by `store_bytes64`.
        #[test]
        fn channel_rows_hold_the_requantized_columns() {
            if !avx512bw() {
                return;
            }
            fn rows<const M: usize>(b: [__m512i; 4]) -> [[i8; 64]; 4] {
                // SAFETY: AVX-512F and BW were detected by the caller.
                let r = unsafe { channel_rows::<M>(b) };
                r.map(|v| {
                    let mut out = [0i8; 64];
                    // SAFETY: `out` is 64 writable bytes; the store is unaligned; AVX-512F.
                    unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), v) };
                    out
                })
            }
            let mut rng = crate::rng::Rng::new(7);
            for (zp, lo, hi) in [
                (-128, 0.0, 255.0),
                (127, -255.0, 0.0),
                (5, -5.0, 1.0),
                (0, -128.0, 127.0),
            ] {
                let scale: [f32; 16] = core::array::from_fn(|_| 1e-3 + rng.next_f32().abs());
                let bias: [i32; 16] = core::array::from_fn(|_| (rng.next_u64() as i32) >> 12);
                let cols: [[i32; 16]; 16] = core::array::from_fn(|j| {
                    core::array::from_fn(|k| match (j + k) % 7 {
                        0 => i32::MAX - 5,
                        1 => i32::MIN + 5,
                        _ => (rng.next_u64() as i32) >> (8 + (j + k) % 16),
                    })
                });
                // SAFETY: AVX-512F, BW and VL were detected above; the loads read 16 values.
                let (want, blocks) = unsafe {
                    let (s, b) = (load16(&scale), loadi16(&bias));
                    let want: [[i8; 16]; 16] = core::array::from_fn(|j| {
                        let mut o = [0i8; 16];
                        let v =
                            requant16_bytes(_mm512_add_epi32(loadi16(&cols[j]), b), s, lo, hi, zp);
                        _mm_storeu_si128(o.as_mut_ptr().cast(), v);
                        o
                    });
                    let blocks: [__m512i; 4] = core::array::from_fn(|i| {
                        let c = core::array::from_fn(|j| loadi16(&cols[4 * i + j]));
                        requant_columns4(c, b, s, lo, hi, zp)
                    });
                    (want, blocks)
                };
                for m in 1..=4 {
                    let got = match m {
                        1 => rows::<1>(blocks),
                        2 => rows::<2>(blocks),
                        3 => rows::<3>(blocks),
                        _ => rows::<4>(blocks),
                    };
                    for (j, col) in want.iter().enumerate().take(4 * m) {
                        for (k, &x) in col.iter().enumerate() {
                            let (v, at) = channel_row_at(m, k);
                            assert_eq!(
                                got[v][at + j],
                                x,
                                "zp {zp}, {m} vector(s): channel {k}, column {j}"
                            );
                        }
                    }
                }
                // One row stored: channel 5's 7 columns of 2 vectors, between others.
                let (v, at) = channel_row_at(2, 5);
                assert_eq!((v, at), (0, 24));
                let mut out = [-100i8; 12];
                // SAFETY: AVX-512F and BW were detected above.
                unsafe { store_bytes64::<12, 3, 24, 7>(channel_rows::<2>(blocks)[0], &mut out) };
                for (i, &o) in out.iter().enumerate() {
                    let want = if (3..10).contains(&i) {
                        want[i - 3][5]
                    } else {
                        -100
                    };
                    assert_eq!(o, want, "stored row, byte {i}");
                }
            }
        }

        #[test]
        fn byte_transpose() {
            let t: [[i8; 16]; 16] =
                core::array::from_fn(|j| core::array::from_fn(|k| (j * 16 + k) as u8 as i8));
            let out = transpose16_i8(&t);
            for j in 0..16 {
                for k in 0..16 {
                    assert_eq!(out[k][j], t[j][k], "({j}, {k})");
                }
            }
        }

        #[test]
        fn clipped_loads_and_column_selections() {
            for w in [1usize, 5, 16, 17, 40] {
                for at in -20isize..60 {
                    let mask = clip_mask16(w, at);
                    for l in 0..16 {
                        let col = at + l as isize;
                        assert_eq!(
                            mask >> l & 1 == 1,
                            col >= 0 && col < w as isize,
                            "{w} {at} {l}"
                        );
                    }
                    let mask = clip_mask(w, at, 32);
                    for l in 0..64 {
                        let col = at + l as isize;
                        assert_eq!(
                            mask >> l & 1 == 1,
                            l < 32 && col >= 0 && col < w as isize,
                            "{w} {at} {l} of 32 lanes"
                        );
                    }
                }
            }
            if !std::is_x86_feature_detected!("avx512f") {
                return;
            }
            let row: [f32; 20] = core::array::from_fn(|i| i as f32 + 1.0);
            let want = |at: isize| -> [f32; 16] {
                core::array::from_fn(|l| {
                    let c = at + l as isize;
                    if (0..20).contains(&c) {
                        row[c as usize]
                    } else {
                        0.0
                    }
                })
            };
            // SAFETY (every block below): AVX-512F is detected just above.
            let got = unsafe {
                [
                    store16(load16_clip::<20, -3>(&row)),
                    store16(load16_clip::<20, 0>(&row)),
                    store16(load16_clip::<20, 4>(&row)),
                    store16(load16_clip::<20, 5>(&row)),
                    store16(load16_clip::<20, 19>(&row)),
                    store16(load16_clip::<20, -16>(&row)),
                ]
            };
            for (g, at) in got.iter().zip([-3, 0, 4, 5, 19, -16]) {
                assert_eq!(*g, want(at), "load16_clip at {at}");
            }
            let seq: [f32; 32] = core::array::from_fn(|i| i as f32);
            let (lo, hi) = (
                crate::window::at::<_, 16, 32, 0>(&seq),
                crate::window::at::<_, 16, 32, 16>(&seq),
            );
            // SAFETY: as above.
            let (e, o, s3) = unsafe {
                let (a, b) = (load16(lo), load16(hi));
                (
                    store16(evens16(a, b)),
                    store16(odds16(a, b)),
                    store16(shift16::<3>(a, b)),
                )
            };
            for l in 0..16 {
                assert_eq!(e[l], (2 * l) as f32);
                assert_eq!(o[l], (2 * l + 1) as f32);
                assert_eq!(s3[l], (l + 3) as f32);
            }
            // AVX2 twins (AVX-512F implies AVX2 on every CPU this runs on).
            let want8 = |at: isize| -> [f32; 8] {
                let w = want(at);
                core::array::from_fn(|l| w[l])
            };
            // SAFETY: as above.
            let got8 = unsafe {
                [
                    store8(load8_clip::<20, -3>(&row)),
                    store8(load8_clip::<20, 0>(&row)),
                    store8(load8_clip::<20, 12>(&row)),
                    store8(load8_clip::<20, 15>(&row)),
                    store8(load8_clip::<20, -8>(&row)),
                ]
            };
            for (g, at) in got8.iter().zip([-3, 0, 12, 15, -8]) {
                assert_eq!(*g, want8(at), "load8_clip at {at}");
            }
            let (lo8, hi8) = (
                crate::window::at::<_, 8, 32, 0>(&seq),
                crate::window::at::<_, 8, 32, 8>(&seq),
            );
            let mut part = [f32::NAN; 10];
            // SAFETY: as above.
            let (e8, o8) = unsafe {
                let (a, b) = (load8(lo8), load8(hi8));
                store8_part::<10, 3, 5>(&mut part, a);
                (store8(evens8(a, b)), store8(odds8(a, b)))
            };
            for l in 0..8 {
                assert_eq!(e8[l], (2 * l) as f32);
                assert_eq!(o8[l], (2 * l + 1) as f32);
            }
            for (i, p) in part.iter().enumerate() {
                if (3..8).contains(&i) {
                    assert_eq!(*p, (i - 3) as f32);
                } else {
                    assert!(p.is_nan());
                }
            }
        }

        #[test]
        fn rows_stored_from_columns_are_the_transpose() {
            if !std::is_x86_feature_detected!("avx512f") {
                return;
            }
            fn check<const R: usize>() {
                let stride = R + 3;
                let cols: [[f32; 16]; R] =
                    core::array::from_fn(|j| core::array::from_fn(|l| (100 * l + j) as f32));
                let mut out = vec![f32::NAN; 15 * stride + R];
                // SAFETY: AVX-512F is detected by the caller.
                unsafe {
                    let v: [__m512; R] =
                        core::array::from_fn(|j| _mm512_loadu_ps(cols[j].as_ptr()));
                    store_rows16::<R>(v, &mut out, stride);
                }
                for (i, o) in out.iter().enumerate() {
                    let (l, j) = (i / stride, i % stride);
                    if j < R {
                        assert_eq!(*o, (100 * l + j) as f32, "R {R}: row {l} column {j}");
                    } else {
                        assert!(o.is_nan(), "R {R}: wrote past the row at {i}");
                    }
                }
                // Too short: nothing written.
                let mut short = vec![f32::NAN; 15 * stride + R - 1];
                // SAFETY: as above.
                unsafe {
                    let v: [__m512; R] =
                        core::array::from_fn(|j| _mm512_loadu_ps(cols[j].as_ptr()));
                    store_rows16::<R>(v, &mut short, stride);
                }
                assert!(short.iter().all(|o| o.is_nan()));
            }
            check::<1>();
            check::<2>();
            check::<3>();
            check::<4>();
            check::<5>();
            check::<7>();
            check::<8>();
            check::<13>();
            check::<14>();
            check::<15>();
            check::<16>();
        }

        #[test]
        fn group_broadcasts_repeat_their_values() {
            let store16 = |v: __m512| {
                let mut o = [0.0f32; 16];
                // SAFETY: `o` is 16 writable f32 values.
                unsafe { _mm512_storeu_ps(o.as_mut_ptr(), v) };
                o
            };
            let store8 = |v: __m256| {
                let mut o = [0.0f32; 8];
                // SAFETY: `o` is 8 writable f32 values.
                unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) };
                o
            };
            let (two, four) = ([1.5f32, -2.0], [1.0f32, 2.0, 3.0, 4.0]);
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F is detected just above.
                let (a, b) = unsafe { (bcast2x16(&two), bcast4x16(&four)) };
                let (a, b) = (store16(a), store16(b));
                for l in 0..16 {
                    assert_eq!(a[l], two[l % 2]);
                    assert_eq!(b[l], four[l % 4]);
                }
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is detected just above.
                let (a, b) = unsafe { (bcast2x8(&two), bcast4x8(&four)) };
                let (a, b) = (store8(a), store8(b));
                for l in 0..8 {
                    assert_eq!(a[l], two[l % 2]);
                    assert_eq!(b[l], four[l % 4]);
                }
            }
        }

        #[test]
        fn simd_pack_and_unpack_match_the_portable_ones() {
            if !std::is_x86_feature_detected!("avx2") {
                return;
            }
            for (plane, pixels) in pack_cases() {
                let input: Vec<f32> = (0..2 * CB * plane).map(|i| i as f32 + 0.5).collect();
                let want = reference_pack(&input, plane, CB, pixels.clone());
                let mut dst = vec![f32::NAN; plane * CB];
                // SAFETY: AVX2 is detected above.
                unsafe { dwc_pack_pixels_avx2(&input, plane, CB, pixels.clone(), &mut dst) };
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&dst), bits(&want), "{plane} pixels {pixels:?}");
                let src: Vec<f32> = (0..plane * CB).map(|i| i as f32).collect();
                let n = pixels.len();
                let mut want = vec![f32::NAN; n * CB];
                crate::dwc::unpack_pixels(
                    &src,
                    pixels.start,
                    &mut crate::dwc::planes_mut(&mut want, n),
                );
                // One value more on each side: nothing outside the planes is written.
                let mut got = vec![-1.0; n * CB + 2];
                let (_, inner) = got.split_at_mut(1);
                let (inner, _) = inner.split_at_mut(n * CB);
                // SAFETY: as above.
                unsafe {
                    dwc_unpack_pixels_avx2(
                        &src,
                        pixels.start,
                        &mut crate::dwc::planes_mut(inner, n),
                    )
                };
                assert_eq!(got[1..=n * CB], want[..], "{plane} pixels {pixels:?}");
                assert_eq!((got[0], got[n * CB + 1]), (-1.0, -1.0));
                // The whole-block form of the same pixels.
                let mut block = vec![-1.0; n * CB + 1];
                // SAFETY: as above.
                unsafe { dwc_unpack_block_avx2(&src[pixels.start * CB..], n, &mut block) };
                assert_eq!(block[..n * CB], want[..], "{plane} pixels {pixels:?}");
                assert_eq!(block[n * CB], -1.0);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64", feature = "std"))]
mod rate_tests {
    use super::*;

    #[test]
    fn the_level_cap_only_lowers_the_dispatch() {
        let cpu = cpu_level();
        assert_eq!(level(), cpu);
        set_level_cap(Some(LEVEL_NONE));
        let capped = (level(), crate::Isa::Avx2.is_supported());
        set_level_cap(Some(u8::MAX - 1));
        let high = level();
        set_level_cap(None);
        assert_eq!(capped.0, LEVEL_NONE);
        // Whether a variant may run is the CPU's answer, not the cap's.
        assert_eq!(capped.1, cpu >= LEVEL_AVX2);
        assert_eq!(high, cpu, "a cap above the CPU's level claims nothing more");
        assert_eq!(level(), cpu);
    }

    #[test]
    fn avx512_rate_is_measured_once_and_can_be_set() {
        // The CPU's level: `the_level_cap_only_lowers_the_dispatch` may cap `level()`
        // while this runs.
        if cpu_level() < LEVEL_AVX512 {
            assert!(!avx512_full_rate(), "no AVX-512F: never full rate");
            return;
        }
        let measured = avx512_full_rate();
        assert_eq!(avx512_full_rate(), measured, "cached");
        set_avx512_full_rate(Some(!measured));
        assert_eq!(avx512_full_rate(), !measured);
        set_avx512_full_rate(None);
        // Measured again; the two timings agree on a machine that is not preempted for a
        // whole round of each, which 7 rounds make likely but not certain: only print.
        eprintln!(
            "AVX-512 full rate: {} (before: {measured})",
            avx512_full_rate()
        );
    }
}
