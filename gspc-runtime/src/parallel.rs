//! Splitting a layer's work units among threads.
//!
//! With the `std` feature the parts run on rayon's thread pool (the field's standard
//! work-stealing pool; `join` runs its closures without allocating); without it, one
//! after the other on the calling thread.

use crate::Error;

/// The work of one part: `(first unit, output blocks, scratch)`.
pub type UnitsFn<'a, const B: usize, const S: usize> =
    dyn Fn(usize, &mut [[f32; B]], &mut [f32; S]) + Sync + 'a;

/// Runs `f(first_unit, blocks, scratch)` on `threads` contiguous parts of `blocks` (as
/// equal as can be), each part with its own `S`-value piece of `scratch`. Fewer threads run
/// when there are fewer blocks. `scratch` must hold `threads * S` values (for the threads
/// that run).
pub fn split<const B: usize, const S: usize>(
    blocks: &mut [[f32; B]],
    scratch: &mut [f32],
    threads: usize,
    f: &UnitsFn<'_, B, S>,
) -> Result<(), Error> {
    let threads = threads.clamp(1, blocks.len().max(1));
    let actual = scratch.len();
    let (pieces, _) = scratch.as_chunks_mut::<S>();
    if pieces.len() < threads {
        return Err(Error::BufferLength {
            buffer: "scratch",
            expected: threads * S,
            actual,
        });
    }
    run(0, blocks, &mut pieces[..threads], f);
    Ok(())
}

fn run<const B: usize, const S: usize>(
    first: usize,
    blocks: &mut [[f32; B]],
    pieces: &mut [[f32; S]],
    f: &UnitsFn<'_, B, S>,
) {
    let n = pieces.len();
    if n <= 1 || blocks.len() <= 1 {
        if let Some(piece) = pieces.first_mut() {
            f(first, blocks, piece);
        }
        return;
    }
    let half = n / 2;
    let at = blocks.len() * half / n;
    let (b1, b2) = blocks.split_at_mut(at);
    let (p1, p2) = pieces.split_at_mut(half);
    #[cfg(feature = "std")]
    rayon::join(|| run(first, b1, p1, f), || run(first + at, b2, p2, f));
    #[cfg(not(feature = "std"))]
    {
        run(first, b1, p1, f);
        run(first + at, b2, p2, f);
    }
}
