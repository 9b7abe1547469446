//! Input packing helpers shared by generated kernels.

/// Splits `src` into its even and odd elements: `even[i] = src[2 i]`, `odd[i] = src[2 i + 1]`
/// for as many as each holds (`even` up to `src.len().div_ceil(2)`, `odd` up to
/// `src.len() / 2`). Used to pack stride-2 input rows by column phase. On x86-64 CPUs with
/// AVX-512 (detected as for the kernels) 32 values take two loads, two permutes and two
/// stores. Always inlined: then its AVX-512 part inlines into callers built with AVX-512,
/// however the compiler partitions the crate (with one codegen unit it kept `split2` out of
/// line, and the stride-2 layers took 1.06-1.45x the time:
/// docs/benchmarks/2026-12-08-zen4-half-rate.md, section 6).
#[inline(always)]
pub fn split2(src: &[f32], even: &mut [f32], odd: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    let done = if crate::x86::level() >= crate::x86::LEVEL_AVX512 {
        // SAFETY: the CPU supports AVX-512F (x86::level just above).
        unsafe { split2_avx512(src, even, odd) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    let pairs = src[2 * done..]
        .chunks_exact(2)
        .zip(even[done..].iter_mut().zip(odd[done..].iter_mut()));
    for (pair, (e, o)) in pairs {
        *e = pair[0];
        *o = pair[1];
    }
    let n = src.len();
    if n % 2 == 1
        && let Some(e) = even.get_mut(n / 2)
    {
        *e = src[n - 1];
    }
}

/// The AVX-512 part of [`split2`]: whole blocks of 32 values; returns the pairs done.
///
/// # Safety
///
/// The CPU must support AVX-512F.
///
/// `#[inline]`, so that the AVX-512 variants' `pack_input` (built with AVX-512) inline it:
/// as a call per input row it took about a third of `wrn40_2_g16.b2_0_c32_32s2`'s time on
/// Zen 4, and inlined the stride-2 layers that pack rows of 32 columns and more took
/// 0.64-0.98x the time (docs/benchmarks/2026-12-08-zen4-half-rate.md).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn split2_avx512(src: &[f32], even: &mut [f32], odd: &mut [f32]) -> usize {
    use core::arch::x86_64::*;
    let blocks = (src.len() / 32).min(even.len() / 16).min(odd.len() / 16);
    let idx_even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let idx_odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for b in 0..blocks {
        let (s, d) = (32 * b, 16 * b);
        // SAFETY: b < blocks, so src[s..s + 32], even[d..d + 16] and odd[d..d + 16] are in
        // bounds (blocks is bounded by all three lengths); unaligned loads and stores.
        unsafe {
            let lo = _mm512_loadu_ps(src.as_ptr().add(s));
            let hi = _mm512_loadu_ps(src.as_ptr().add(s + 16));
            _mm512_storeu_ps(
                even.as_mut_ptr().add(d),
                _mm512_permutex2var_ps(lo, idx_even, hi),
            );
            _mm512_storeu_ps(
                odd.as_mut_ptr().add(d),
                _mm512_permutex2var_ps(lo, idx_odd, hi),
            );
        }
    }
    16 * blocks
}

#[cfg(test)]
mod tests {
    use super::split2;

    #[test]
    fn split2_matches_a_plain_loop_for_every_length() {
        check(split2);
    }

    /// The AVX-512 path alone, where the CPU has it (the scalar loop finishes what it
    /// leaves, as in `split2`). Detected here, not by `x86::level`, which without the `std`
    /// feature reports only what the build enables, so `split2` runs the scalar loop alone.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx512_path_matches_a_plain_loop() {
        extern crate std;
        if !std::is_x86_feature_detected!("avx512f") {
            return;
        }
        check(|src, even, odd| {
            // SAFETY: the CPU supports AVX-512F (detected just above).
            let done = unsafe { super::split2_avx512(src, even, odd) };
            for i in done..even.len() {
                even[i] = src[2 * i];
            }
            for i in done..odd.len() {
                odd[i] = src[2 * i + 1];
            }
        });
    }

    fn check(split: impl Fn(&[f32], &mut [f32], &mut [f32])) {
        for n in 0..80 {
            let src: [f32; 80] = core::array::from_fn(|i| i as f32 + 0.5);
            let src = &src[..n];
            let mut even = [f32::NAN; 41];
            let mut odd = [f32::NAN; 41];
            split(src, &mut even[..n.div_ceil(2)], &mut odd[..n / 2]);
            for i in 0..n.div_ceil(2) {
                assert_eq!(even[i], src[2 * i], "n {n} even {i}");
            }
            for i in 0..n / 2 {
                assert_eq!(odd[i], src[2 * i + 1], "n {n} odd {i}");
            }
            // Nothing written past the slices.
            assert!(even[n.div_ceil(2)..].iter().all(|v| v.is_nan()), "n {n}");
            assert!(odd[n / 2..].iter().all(|v| v.is_nan()), "n {n}");
        }
    }
}
