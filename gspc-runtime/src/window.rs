//! Fixed-size views into fixed-size arrays.
//!
//! The generated micro-kernels take one checked window of the input, the weights and the
//! output per tile (a single bounds check), then index it with literals only, which the
//! compiler verifies at compile time and which need no run-time checks.

/// The `N` values of `a` starting at the constant offset `AT`.
///
/// `AT + N <= L` is checked at compile time, so this cannot fail.
#[inline(always)]
pub fn at<const N: usize, const L: usize, const AT: usize>(a: &[f32; L]) -> &[f32; N] {
    const { assert!(AT + N <= L, "window::at out of bounds") };
    // SAFETY: AT + N <= L is asserted at compile time just above, so the N values starting
    // at AT lie inside `a`; [f32; N] has the alignment of f32.
    unsafe { &*(a.as_ptr().add(AT) as *const [f32; N]) }
}

/// The `N` values of `a` starting at `start`, or `None` if they do not fit.
#[inline(always)]
pub fn window<const N: usize, const L: usize>(a: &[f32; L], start: usize) -> Option<&[f32; N]> {
    a.get(start..)?.first_chunk::<N>()
}

/// Mutable twin of [`window`].
#[inline(always)]
pub fn window_mut<const N: usize, const L: usize>(
    a: &mut [f32; L],
    start: usize,
) -> Option<&mut [f32; N]> {
    a.get_mut(start..)?.first_chunk_mut::<N>()
}

/// Mutable twin of [`at`].
#[inline(always)]
pub fn at_mut<const N: usize, const L: usize, const AT: usize>(a: &mut [f32; L]) -> &mut [f32; N] {
    const { assert!(AT + N <= L, "window::at_mut out of bounds") };
    // SAFETY: AT + N <= L is asserted at compile time just above, so the N values starting
    // at AT lie inside `a`, which is borrowed mutably for the returned lifetime; [f32; N]
    // has the alignment of f32.
    unsafe { &mut *(a.as_mut_ptr().add(AT) as *mut [f32; N]) }
}
