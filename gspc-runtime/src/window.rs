//! Fixed-size views into fixed-size arrays.
//!
//! The generated micro-kernels take one checked window of the input, the weights and the
//! output per tile (a single bounds check), then index it with literals only, which the
//! compiler verifies at compile time and which need no run-time checks. The functions are
//! generic over the element (`f32` for f32 layers, `i32` words for int8 layers); the f32
//! kernels name only the lengths, and the element is inferred.

/// The `N` values of `a` starting at the constant offset `AT`.
///
/// `AT + N <= L` is checked at compile time, so this cannot fail.
#[inline(always)]
pub fn at<T, const N: usize, const L: usize, const AT: usize>(a: &[T; L]) -> &[T; N] {
    const { assert!(AT + N <= L, "window::at out of bounds") };
    // SAFETY: AT + N <= L is asserted at compile time just above, so the N values starting
    // at AT lie inside `a`; [T; N] has the alignment of T.
    unsafe { &*(a.as_ptr().add(AT) as *const [T; N]) }
}

/// The `N` values of `a` starting at `start`, or `None` if they do not fit.
#[inline(always)]
pub fn window<T, const N: usize, const L: usize>(a: &[T; L], start: usize) -> Option<&[T; N]> {
    a.get(start..)?.first_chunk::<N>()
}

/// Mutable twin of [`window`].
#[inline(always)]
pub fn window_mut<T, const N: usize, const L: usize>(
    a: &mut [T; L],
    start: usize,
) -> Option<&mut [T; N]> {
    a.get_mut(start..)?.first_chunk_mut::<N>()
}

/// Mutable twin of [`at`].
#[inline(always)]
pub fn at_mut<T, const N: usize, const L: usize, const AT: usize>(a: &mut [T; L]) -> &mut [T; N] {
    const { assert!(AT + N <= L, "window::at_mut out of bounds") };
    // SAFETY: AT + N <= L is asserted at compile time just above, so the N values starting
    // at AT lie inside `a`, which is borrowed mutably for the returned lifetime; [T; N]
    // has the alignment of T.
    unsafe { &mut *(a.as_mut_ptr().add(AT) as *mut [T; N]) }
}
