//! Splitting a layer's work units among threads.
//!
//! With the `std` feature the parts run on rayon's thread pool (the field's standard
//! work-stealing pool; `join` runs its closures without allocating); without it, one
//! after the other on the calling thread.

use crate::Error;

/// FLOPs below which a layer gains nothing from another thread. Inside a pool
/// ([`in_pool`]) a join costs about a microsecond; 300 kFLOP is one to a few microseconds of
/// work (measured on 2 Zen 5 cores: 4 MFLOP left depthwise models single-threaded, 1 MFLOP
/// and 300 kFLOP made resnet34_gN 1.25x and 1.8x faster than that on 2 threads).
pub const GRAIN_FLOPS: u64 = 300_000;

/// How many threads are worth using for `flops` of work, at most `threads`.
pub const fn useful_threads(flops: u64, threads: usize) -> usize {
    let by_work = (flops / GRAIN_FLOPS) as usize + 1;
    if by_work < threads { by_work } else { threads }
}

/// Runs `f` inside a thread pool of `threads` threads (with `std`; directly otherwise), so
/// that every `run_parallel` in it splits work among that pool's threads and the calling
/// thread is one of them, not a sleeper woken per layer. Build it around a whole inference,
/// not around each layer: creating the pool spawns threads.
#[cfg(feature = "std")]
pub fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
    {
        Ok(pool) => pool.install(f),
        // No threads to be had: run on this one (run_parallel still splits, in turn).
        Err(_) => f(),
    }
}

/// Without `std` there are no threads: runs `f` directly.
#[cfg(not(feature = "std"))]
pub fn in_pool<R>(_threads: usize, f: impl FnOnce() -> R) -> R {
    f()
}

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
