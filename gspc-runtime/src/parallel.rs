//! Splitting a layer's work units among threads.
//!
//! [`split_parts`] cuts a layer's output blocks into `parts` contiguous parts, part `p`
//! always the same range (`len * p / parts ..`), and runs them on up to `threads` threads,
//! each thread with its own scratch piece for the parts it runs one after another ([`split`]:
//! one part a thread). `run_parallel` takes a few parts a thread, with part boundaries on
//! group boundaries ([`parts_for`]). With the `std` feature the parts run on a small pool of
//! this crate's own (see `docs/threads.md`):
//!
//! - inside [`in_pool`] (build it around a whole inference), on that pool: the calling
//!   thread runs the first share of parts itself and worker `i` always runs share `i`, so
//!   each thread keeps the same input channels and scratch piece in its own cache from layer
//!   to layer; a thread that is done takes the unstarted parts of a late one. Between
//!   layers the workers spin for `pool::SPIN` (300 us), then yield for `pool::YIELD`
//!   (2 ms), and only then sleep, so that a worker of a running inference is awake when
//!   the next layer starts (a sleeping vCPU takes up to milliseconds to wake on a virtual
//!   machine);
//! - outside any [`in_pool`], on a process-wide pool of `available_parallelism()` threads
//!   made on first use, when no other thread is using it at that moment; otherwise the parts
//!   run one after another on the calling thread;
//! - a `split` inside a part (nested) runs its parts one after another on the thread that
//!   runs the part.
//!
//! With more parts than threads, thread `t` runs the parts `parts * t / threads ..
//! parts * (t + 1) / threads`. A panic in a part reaches the caller of `split` after every
//! other part has finished, also where the parts run one after another. Nothing is
//! allocated per call.
//!
//! Without `std` the parts run one after another on the calling thread.

use crate::Error;
use crate::dwc::CB;
use core::ops::Range;

#[cfg(feature = "std")]
mod pool;

#[cfg(feature = "std")]
pub use pool::{SPIN, YIELD};

/// FLOPs (or int8 operations) below which a layer gains nothing from another thread.
/// Handing a part to a warm worker of [`in_pool`] costs about a microsecond. A larger grain
/// left depthwise models single-threaded (docs/benchmarks/2026-11-27-zen5.md, "Thread
/// grain"). 300 kFLOP, the grain until 2026-12-07, kept small layers that run slower than
/// their FLOPs suggest on one thread: on Zen 4, the layers of 147-295 kFLOP (f32) and
/// 147-295 k operations (int8) of the WRN-40-2 suites took 0.65-0.82x the time on 2
/// threads with this grain, 1.8-8.6 us (docs/benchmarks/2026-12-07-zen4-dense.md, "Thread
/// grain"); no other layer moved beyond the noise.
pub const GRAIN_FLOPS: u64 = 100_000;

/// The most parts a thread gets from [`parts_for`].
pub const PARTS_PER_THREAD: usize = 4;

/// The least work of a part when [`parts_for`] gives a thread more than one: 2 MFLOP (about
/// 17 us of f32 work at a Zen 4 core's peak, 4 us of int8). On Zen 4, 8 parts on 2 threads
/// made int8 layers of 3.6-7 MOP (under 1 MOP a part) 1.14-1.22x slower
/// (docs/benchmarks/2026-12-07-zen4.md).
pub const PART_FLOPS: u64 = 2_000_000;

/// How many threads are worth using for `flops` of work, at most `threads`.
pub const fn useful_threads(flops: u64, threads: usize) -> usize {
    let by_work = (flops / GRAIN_FLOPS) as usize + 1;
    if by_work < threads { by_work } else { threads }
}

/// Runs `f` with a pool of `threads` threads (the calling thread and `threads - 1`
/// workers) that every [`split`] on this thread inside `f` uses; the workers stay warm
/// between layers (see the module documentation) and are stopped and joined when `f`
/// returns or unwinds. Build it around a whole inference, not around each layer: creating
/// the pool spawns threads. If threads cannot be spawned, fewer run (at worst only the
/// calling thread). `f` runs on the calling thread.
#[cfg(feature = "std")]
pub fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    pool::in_pool(threads, f)
}

/// Without `std` there are no threads: runs `f` directly.
#[cfg(not(feature = "std"))]
pub fn in_pool<R>(_threads: usize, f: impl FnOnce() -> R) -> R {
    f()
}

/// The work of one part: `(first unit, output blocks, scratch)`.
pub type UnitsFn<'a, T, U, const B: usize, const S: usize> =
    dyn Fn(usize, &mut [[T; B]], &mut [U; S]) + Sync + 'a;

/// Runs `f(first_unit, blocks, scratch)` on `threads` contiguous parts of `blocks` (part `p`
/// is `blocks[len * p / threads..len * (p + 1) / threads]`), each part with its own
/// `S`-value piece of `scratch` (part `p` the `p`-th): [`split_parts`] with one part a
/// thread. Fewer parts run when there are fewer blocks. `scratch` must hold `threads * S`
/// values (for the parts that run). Which threads run the parts: see the module
/// documentation.
pub fn split<T: Send, U: Send, const B: usize, const S: usize>(
    blocks: &mut [[T; B]],
    scratch: &mut [U],
    threads: usize,
    f: &UnitsFn<'_, T, U, B, S>,
) -> Result<(), Error> {
    split_parts(blocks, scratch, threads, threads, f)
}

/// Runs `f(first_unit, blocks, scratch)` on `parts` contiguous parts of `blocks` (part `p`
/// is `blocks[len * p / parts..len * (p + 1) / parts]`) on up to `threads` threads, thread
/// `t` normally running the parts `parts * t / threads .. parts * (t + 1) / threads` one
/// after another, all with its own `S`-value piece of `scratch` (thread `t` the `t`-th).
/// Fewer parts run when there are fewer blocks, and fewer threads when there are fewer
/// parts. `scratch` must hold `min(threads, parts) * S` values (for the threads that run).
pub fn split_parts<T: Send, U: Send, const B: usize, const S: usize>(
    blocks: &mut [[T; B]],
    scratch: &mut [U],
    threads: usize,
    parts: usize,
    f: &UnitsFn<'_, T, U, B, S>,
) -> Result<(), Error> {
    let parts = parts.clamp(1, blocks.len().max(1));
    let threads = threads.clamp(1, parts);
    let pieces = pieces::<U, S>(scratch, threads)?;
    #[cfg(feature = "std")]
    {
        let view = pool::Parts::new(blocks, parts, pieces);
        pool::run(parts, threads, &|p, t| {
            // SAFETY: `pool::run` calls this closure at most once per part `p` in
            // `0..parts`, with `t < threads`, and thread `t` calls it for one part after
            // another (its contract): each part of `view` is taken at most once, and piece
            // `t` only after its previous part returned.
            let (first, blocks, piece) = unsafe { view.part(p, t) };
            f(first, blocks, piece)
        });
    }
    #[cfg(not(feature = "std"))]
    {
        let piece = &mut pieces[0];
        let len = blocks.len();
        let mut rest = blocks;
        let mut start = 0;
        for p in 0..parts {
            let end = bound(len, p + 1, parts);
            let (part, tail) = core::mem::take(&mut rest).split_at_mut(end - start);
            f(start, part, piece);
            rest = tail;
            start = end;
        }
    }
    Ok(())
}

/// The work of one band: `(unit, rows, planes, scratch)`: output rows `rows` of work unit
/// `unit`, whose `CB` planes (`planes[c]`) hold just those rows.
pub type BandFn<'a, T, U, const S: usize> =
    dyn Fn(usize, Range<usize>, &mut [&mut [T]; CB], &mut [U; S]) + Sync + 'a;

/// Runs `f(unit, rows, planes, scratch)` on every band of output rows of every work unit of
/// `output`, on up to `threads` threads: the units of a channel-blocked depthwise layer
/// (`gspc-dwc`), each `CB` planes of `rows` rows of `row` values, cut into `bands` bands of
/// rows (band `b` is rows `rows * b / bands .. rows * (b + 1) / bands`). Part `p` is band
/// `p % bands` of unit `p / bands`, and the parts are shared among the threads as by
/// [`split_parts`]: so a layer of few units (3 blocks on 2 threads, 1 on 4) keeps every
/// thread busy. `scratch` must hold `min(threads, parts) * S` values.
#[allow(clippy::too_many_arguments)]
pub fn split_bands<T: Send, U: Send, const S: usize>(
    output: &mut [T],
    rows: usize,
    row: usize,
    bands: usize,
    scratch: &mut [U],
    threads: usize,
    f: &BandFn<'_, T, U, S>,
) -> Result<(), Error> {
    let plane = rows.saturating_mul(row);
    let units = output
        .len()
        .checked_div(CB.saturating_mul(plane))
        .unwrap_or(0);
    let bands = bands.clamp(1, rows.max(1));
    let parts = units.saturating_mul(bands);
    let threads = threads.clamp(1, parts.max(1));
    let pieces = pieces::<U, S>(scratch, threads)?;
    #[cfg(feature = "std")]
    {
        let view = pool::Bands::new(output, units, rows, row, bands, pieces);
        pool::run(parts, threads, &|p, t| {
            // SAFETY: as in `split_parts`: `pool::run` calls this at most once per part `p`
            // in `0..parts`, with `t < threads`, one part after another per thread.
            let (unit, rows, mut planes, piece) = unsafe { view.band(p, t) };
            f(unit, rows, &mut planes, piece)
        });
    }
    #[cfg(not(feature = "std"))]
    {
        let piece = &mut pieces[0];
        for (unit, block) in output.chunks_exact_mut(CB * plane).take(units).enumerate() {
            for b in 0..bands {
                let r = band_rows(rows, b, bands);
                let q = r.start * row..r.end * row;
                let mut planes = crate::dwc::planes_mut(block, plane)
                    .map(|p| p.get_mut(q.clone()).unwrap_or_default());
                f(unit, r, &mut planes, piece);
            }
        }
    }
    Ok(())
}

/// The rows of band `band` of `bands` over `rows` rows: `rows * band / bands .. rows *
/// (band + 1) / bands`.
pub(crate) fn band_rows(rows: usize, band: usize, bands: usize) -> Range<usize> {
    bound(rows, band, bands)..bound(rows, band + 1, bands)
}

/// How many bands of rows [`split_bands`] should cut each of `units` work units of `rows`
/// rows into, for `threads` threads and (at least) the `parts` parts the layer would
/// otherwise be cut into: 1 (no bands) on one thread, or when the units alone give no
/// thread more than 1.25x the average (`ceil(units / threads) * threads <= 1.25 units`:
/// equal shares, or 7 units on 2 threads); else the fewest bands, up to
/// `PARTS_PER_THREAD * threads`, that give every thread the same number of parts and at
/// least `parts` (and `threads`) in all, at most one a row. Bands cost a little packing:
/// each packs the input rows its kernel rows reach beyond its own.
pub const fn bands_for(units: usize, threads: usize, parts: usize, rows: usize) -> usize {
    if threads <= 1 || units == 0 || rows <= 1 {
        return 1;
    }
    // The busiest thread's units against the average: bands pay where it exceeds 1.25
    // (3 units on 2 threads: 1.33; 1 on 4: 4). Below, the extra packing and parts cost
    // more than the balance gains (15 units on 2 threads, 1.07: 1.11x slower with bands
    // on Zen 4; docs/benchmarks/2026-12-07-zen4.md).
    let busiest = units.div_ceil(threads).saturating_mul(threads);
    if busiest.saturating_mul(4) < units.saturating_mul(5) {
        return 1;
    }
    let want = if parts > threads { parts } else { threads };
    let least = want.div_ceil(units);
    let most = PARTS_PER_THREAD * threads;
    let mut bands = least;
    while bands <= most && bands <= rows {
        if (units * bands).is_multiple_of(threads) {
            return bands;
        }
        bands += 1;
    }
    if least < rows { least } else { rows }
}

/// The first `threads` scratch pieces of `S` values of `scratch`, or the error naming it
/// when it is too short.
fn pieces<U, const S: usize>(scratch: &mut [U], threads: usize) -> Result<&mut [[U; S]], Error> {
    let actual = scratch.len();
    let (pieces, _) = scratch.as_chunks_mut::<S>();
    match pieces.get_mut(..threads) {
        Some(pieces) => Ok(pieces),
        None => Err(Error::BufferLength {
            buffer: "scratch",
            expected: threads * S,
            actual,
        }),
    }
}

/// `(threads, parts)` for a layer's `run_parallel` on up to `threads` threads: the threads
/// worth using for `flops` of work ([`useful_threads`], at least 1) and the parts of
/// [`parts_for`] for them. The one decision of the f32 entry points and the int8 modules.
pub const fn threads_and_parts(flops: u64, groups: usize, threads: usize) -> (usize, usize) {
    let threads = useful_threads(flops, threads);
    let threads = if threads == 0 { 1 } else { threads };
    (threads, parts_for(threads, groups, flops))
}

/// How many parts [`split_parts`] should cut a layer of `groups` groups and `flops`
/// FLOPs (or int8 operations) into for `threads` threads: `threads * k` for the largest
/// `k` of [`PARTS_PER_THREAD`] down to 2 with `threads * k` dividing `groups` and at least
/// [`PART_FLOPS`] a part, else `threads` (so also for one thread). Every part boundary then
/// falls on a group boundary (no group's input is packed by two parts), and a thread on
/// time takes the unstarted parts of a late one. Smaller parts also keep two threads from
/// slowing each other down on layers whose data exceeds their L2 (`docs/threads.md`);
/// small layers keep one part a thread, where a part's fixed costs would show.
pub const fn parts_for(threads: usize, groups: usize, flops: u64) -> usize {
    if threads <= 1 {
        return threads;
    }
    let mut k = PARTS_PER_THREAD;
    while k > 1 {
        let parts = threads.saturating_mul(k);
        if groups.is_multiple_of(parts) && flops / parts as u64 >= PART_FLOPS {
            return parts;
        }
        k -= 1;
    }
    threads
}

/// The first index of part `p` of `parts` over `len` items: `len * p / parts`, computed
/// in u128 so that `len * p` cannot overflow; at most `len` for `p <= parts`.
pub(crate) fn bound(len: usize, p: usize, parts: usize) -> usize {
    (len as u128 * p as u128 / parts as u128) as usize
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::{
        CB, PART_FLOPS, PARTS_PER_THREAD, bands_for, bound, in_pool, parts_for, split, split_bands,
        split_parts, threads_and_parts,
    };
    use std::panic::{self, AssertUnwindSafe};
    use std::string::String;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::vec;
    use std::vec::Vec;

    const B: usize = 3;
    const S: usize = 2;

    /// Splits `len` blocks into `threads` parts and checks that every part ran exactly once
    /// with its first unit and its blocks, that every block was handed to exactly one
    /// part, and that no scratch piece was used by two parts at once.
    fn check_split(len: usize, threads: usize) {
        check_split_parts(len, threads, threads);
    }

    /// [`check_split`] with `parts` parts on `threads` threads.
    fn check_split_parts(len: usize, threads: usize, parts: usize) {
        let parts = parts.clamp(1, len.max(1));
        let pieces = threads.clamp(1, parts);
        let mut blocks = vec![[0.0f32; B]; len];
        // Scratch piece t holds t (and one more piece than needed, which no part may get).
        let mut scratch: Vec<f32> = (0..(pieces + 1) * S).map(|i| (i / S) as f32).collect();
        let busy: Vec<AtomicBool> = (0..pieces).map(|_| AtomicBool::new(false)).collect();
        let seen = Mutex::new(Vec::new());
        let f = |first: usize, part: &mut [[f32; B]], piece: &mut [f32; S]| {
            let t = piece[0] as usize;
            assert!(
                piece.iter().all(|&v| v == piece[0]) && t < pieces,
                "piece mixed or not one of the {pieces}: {piece:?}"
            );
            assert!(
                !busy[t].swap(true, SeqCst),
                "piece {t} used by two parts at once"
            );
            for (i, b) in part.iter_mut().enumerate() {
                b[0] += 1.0;
                b[1] = (first + i) as f32;
            }
            seen.lock().unwrap().push((first, part.len()));
            // Scratch is the thread's own while the part runs: write it all, then give it
            // back as it was for the next part of the same thread.
            piece.fill(-1.0);
            piece.fill(t as f32);
            busy[t].store(false, SeqCst);
        };
        split_parts::<_, _, B, S>(&mut blocks, &mut scratch, threads, parts, &f).unwrap();
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        let want: Vec<_> = (0..parts)
            .map(|p| {
                let (a, b) = (bound(len, p, parts), bound(len, p + 1, parts));
                (a, b - a)
            })
            .collect();
        assert_eq!(seen, want, "{len} blocks, {parts} parts, {threads} threads");
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(b[0], 1.0, "block {i} of {len} ran {} times", b[0]);
            assert_eq!(b[1], i as f32, "block {i} of {len}: wrong first unit");
        }
        // Only the pieces of the threads were handed out.
        assert!(scratch[pieces * S..].iter().all(|&v| v == pieces as f32));
    }

    #[test]
    fn more_parts_than_threads_share_each_thread_piece() {
        for pool in [1, 2, 3] {
            in_pool(pool, || {
                for (len, threads, parts) in [
                    (64, 2, 8),
                    (64, 2, 3),
                    (7, 2, 8),
                    (100, 3, 12),
                    (5, 4, 2),
                    (1, 2, 4),
                    (0, 2, 8),
                ] {
                    check_split_parts(len, threads, parts);
                }
            });
        }
        for _ in 0..500 {
            in_pool(2, || check_split_parts(32, 2, 8));
        }
        // Calls on fewer threads right after calls on more: a worker still leaving the
        // wider call must not take a part (and a piece that does not exist) of the next.
        in_pool(4, || {
            for i in 0..20_000 {
                let threads = [4, 2, 1, 3][i % 4];
                check_split_parts(40, threads, threads * 4);
            }
        });
    }

    /// Cuts `units` units of `CB` planes of `rows` x `row` values into `bands` bands on
    /// `threads` threads and checks that every value was written by exactly one band, the
    /// band of its row, with its unit, and that no scratch piece was used by two bands at
    /// once.
    fn check_bands(units: usize, rows: usize, row: usize, bands: usize, threads: usize) {
        let plane = rows * row;
        let mut output = vec![0.0f32; units * CB * plane];
        let nb = bands.clamp(1, rows.max(1));
        let pieces = threads.clamp(1, (units * nb).max(1));
        let mut scratch: Vec<f32> = (0..pieces * S).map(|i| (i / S) as f32).collect();
        let busy: Vec<AtomicBool> = (0..pieces).map(|_| AtomicBool::new(false)).collect();
        let f = |unit: usize,
                 r: core::ops::Range<usize>,
                 planes: &mut [&mut [f32]; CB],
                 piece: &mut [f32; S]| {
            let t = piece[0] as usize;
            assert!(!busy[t].swap(true, SeqCst), "piece {t} used by two bands");
            for (c, p) in planes.iter_mut().enumerate() {
                assert_eq!(p.len(), r.len() * row, "unit {unit} rows {r:?}");
                for (i, v) in p.iter_mut().enumerate() {
                    // unit, channel, row and column of the value, as one number.
                    *v +=
                        (((unit * CB + c) * rows + r.start + i / row) * row + i % row) as f32 + 1.0;
                }
            }
            busy[t].store(false, SeqCst);
        };
        split_bands::<_, _, S>(&mut output, rows, row, bands, &mut scratch, threads, &f).unwrap();
        for (i, v) in output.iter().enumerate() {
            assert_eq!(
                *v,
                i as f32 + 1.0,
                "value {i}: {units} units of {rows}x{row}, {bands} bands, {threads} threads"
            );
        }
    }

    #[test]
    fn every_band_runs_once_with_its_rows() {
        let shapes = [
            // (units, rows, row, bands, threads)
            (3, 56, 4, 2, 2),
            (1, 7, 7, 4, 4),
            (1, 3, 2, 8, 2),
            (5, 7, 3, 4, 4),
            (2, 14, 1, 3, 3),
            (0, 4, 4, 2, 2),
            (3, 1, 5, 2, 2),
            (4, 9, 2, 1, 2),
        ];
        for (units, rows, row, bands, threads) in shapes {
            check_bands(units, rows, row, bands, threads);
        }
        for pool in [2, 3] {
            in_pool(pool, || {
                for (units, rows, row, bands, threads) in shapes {
                    check_bands(units, rows, row, bands, threads);
                }
                for i in 0..300 {
                    check_bands(1 + i % 5, 3 + i % 11, 2, 1 + i % 4, 1 + i % 3);
                }
            });
        }
        // Too little scratch is an error.
        let mut output = vec![0.0f32; 3 * CB * 4];
        let mut scratch = vec![0.0f32; S];
        let r = split_bands::<_, _, S>(&mut output, 2, 2, 2, &mut scratch, 2, &|_, _, _, _| {});
        assert_eq!(
            r.unwrap_err(),
            crate::Error::BufferLength {
                buffer: "scratch",
                expected: 2 * S,
                actual: S
            }
        );
    }

    #[test]
    fn bands_only_where_units_leave_a_thread_idle() {
        // (units, threads, parts, rows) -> bands
        for (units, threads, parts, rows, want) in [
            (3, 1, 1, 56, 1),
            (4, 2, 8, 56, 1),
            (48, 2, 8, 7, 1),
            // 3 blocks on 2 threads: 2 bands (6 parts, 3 a thread).
            (3, 2, 2, 56, 2),
            (3, 2, 6, 56, 2),
            // 7 blocks on 2 threads (4 against 3.5), 15 on 2: no bands.
            (7, 2, 8, 14, 1),
            (15, 2, 2, 14, 1),
            // 5 on 2 (3 against 2.5): no bands; 6 on 4 (2 against 1.5): 2 bands.
            (5, 2, 2, 7, 1),
            (6, 4, 4, 14, 2),
            // 1 block on 4 threads: 4 bands; 5 on 4: 4 bands.
            (1, 4, 4, 56, 4),
            (5, 4, 4, 28, 4),
            (2, 3, 3, 14, 3),
            // No more bands than rows.
            (1, 4, 4, 3, 3),
            (3, 2, 2, 1, 1),
            (0, 2, 2, 7, 1),
        ] {
            assert_eq!(
                bands_for(units, threads, parts, rows),
                want,
                "{units} units, {threads} threads, {parts} parts, {rows} rows"
            );
        }
        for units in 1..40 {
            for threads in 2..9 {
                for rows in 1..60 {
                    let b = bands_for(units, threads, threads, rows);
                    assert!(b >= 1 && b <= rows.max(1));
                    if b > 1 {
                        assert!(!units.is_multiple_of(threads));
                    }
                    if 4 * units.div_ceil(threads) * threads < 5 * units {
                        assert_eq!(b, 1);
                    }
                    if b > 1 && rows >= threads {
                        assert!(units * b >= threads, "{units} {threads} {rows}: {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn parts_fall_on_group_boundaries() {
        let big = 100_000_000;
        assert_eq!(parts_for(1, 32, big), 1);
        assert_eq!(parts_for(0, 32, big), 0);
        assert_eq!(parts_for(2, 32, big), 8);
        assert_eq!(parts_for(2, 512, big), 8);
        assert_eq!(parts_for(2, 12, big), 6);
        assert_eq!(parts_for(2, 4, big), 4);
        assert_eq!(parts_for(2, 2, big), 2);
        assert_eq!(parts_for(2, 1, big), 2);
        assert_eq!(parts_for(3, 9, big), 9);
        assert_eq!(parts_for(4, 16, big), 16);
        assert_eq!(parts_for(usize::MAX, 64, big), usize::MAX);
        // Parts of at least PART_FLOPS: 14.5 MFLOP on 2 threads: 4 parts, not 8.
        assert_eq!(parts_for(2, 32, 14_500_000), 4);
        assert_eq!(parts_for(2, 32, 16 * PART_FLOPS), 8);
        assert_eq!(parts_for(2, 32, 3_600_000), 2);
        // run_parallel's decision: the grain first, at least one thread.
        assert_eq!(threads_and_parts(100_000_000, 32, 2), (2, 8));
        assert_eq!(threads_and_parts(90_000, 32, 2), (1, 1));
        assert_eq!(threads_and_parts(150_000, 32, 2), (2, 2));
        assert_eq!(threads_and_parts(100_000_000, 32, 0), (1, 1));
        for threads in 2..9 {
            for groups in 1..200 {
                for flops in [0, PART_FLOPS, 5 * PART_FLOPS, big] {
                    let parts = parts_for(threads, groups, flops);
                    assert!(parts == threads || groups % parts == 0);
                    assert!(parts == threads || flops / parts as u64 >= PART_FLOPS);
                    assert!(parts.is_multiple_of(threads) && parts <= threads * PARTS_PER_THREAD);
                }
            }
        }
    }

    const SHAPES: [(usize, usize); 14] = [
        (0, 1),
        (0, 3),
        (1, 1),
        (1, 4),
        (2, 2),
        (3, 2),
        (3, 8),
        (7, 2),
        (7, 3),
        (8, 4),
        (64, 2),
        (64, 5),
        (100, 7),
        (1000, 16),
    ];

    #[test]
    fn every_part_runs_once_with_its_blocks_and_scratch_outside_a_pool() {
        for (len, threads) in SHAPES {
            check_split(len, threads);
        }
    }

    #[test]
    fn every_part_runs_once_with_its_blocks_and_scratch_in_pools() {
        for pool in [1, 2, 3, 4] {
            in_pool(pool, || {
                for (len, threads) in SHAPES {
                    check_split(len, threads);
                }
            });
        }
    }

    #[test]
    fn many_sequential_calls_in_one_pool() {
        in_pool(2, || {
            for i in 0..2000 {
                check_split(1 + i % 9, 1 + i % 4);
            }
        });
        // And a pool again after that one was stopped.
        in_pool(3, || check_split(10, 3));
    }

    #[test]
    fn nested_splits_run_inside_the_part() {
        let outer = |_| {
            let mut blocks = vec![[0.0f32; B]; 8];
            let mut scratch = vec![0.0f32; 8 * S];
            let mut total = 0.0;
            let mut seen = Vec::new();
            split::<_, _, B, S>(&mut blocks, &mut scratch, 4, &|first, part, _| {
                for (i, b) in part.iter_mut().enumerate() {
                    // The inner split of each block's three values.
                    let mut inner = [[0.0f32; 1]; 3];
                    let mut s = [0.0f32; 3];
                    split::<_, _, 1, 1>(&mut inner, &mut s, 3, &|f, p, _| {
                        p[0][0] = (first + i) as f32 * 10.0 + f as f32;
                    })
                    .unwrap();
                    *b = [inner[0][0], inner[1][0], inner[2][0]];
                }
            })
            .unwrap();
            for b in &blocks {
                total += b.iter().sum::<f32>();
                seen.push(b[2] - b[0]);
            }
            // sum over blocks k of (30 k + 3) = 30 * 28 + 24
            assert_eq!(total, 864.0);
            assert!(seen.iter().all(|&d| d == 2.0));
        };
        outer(());
        in_pool(2, || outer(()));
        // A pool inside a part, and a split inside that pool.
        in_pool(2, || {
            let mut blocks = [[0.0f32; 1]; 2];
            let mut scratch = [0.0f32; 2];
            split::<_, _, 1, 1>(&mut blocks, &mut scratch, 2, &|_, _, _| {
                in_pool(2, || outer(()));
            })
            .unwrap();
        });
    }

    fn message(payload: std::boxed::Box<dyn core::any::Any + Send>) -> String {
        match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(p) => String::from(*p.downcast::<&str>().unwrap()),
        }
    }

    /// A panic in part `bad` of `parts` reaches the caller, after every other part ran
    /// (with `std`).
    fn check_panic(parts: usize, bad: usize) {
        let mut blocks = vec![[0.0f32; B]; parts];
        let mut scratch = vec![0.0f32; parts * S];
        let ran = Mutex::new(Vec::new());
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            split::<_, _, B, S>(&mut blocks, &mut scratch, parts, &|first, _, _| {
                ran.lock().unwrap().push(first);
                if first == bad {
                    panic!("part {first} failed");
                }
            })
        }));
        let payload = result.expect_err("the panic must reach the caller");
        assert_eq!(message(payload), std::format!("part {bad} failed"));
        let mut ran = ran.into_inner().unwrap();
        ran.sort();
        // With threads every part runs; without, the parts after the bad one do not.
        let last = if cfg!(feature = "std") {
            parts
        } else {
            bad + 1
        };
        assert_eq!(ran, (0..last).collect::<Vec<_>>());
    }

    #[test]
    fn a_panic_in_a_part_reaches_the_caller() {
        // Silence this test's own panics only; any other (a failed assertion) is printed.
        let default = panic::take_hook();
        panic::set_hook(std::boxed::Box::new(move |info| {
            let text = info.payload_as_str().unwrap_or("");
            if !(text.starts_with("part ") && text.ends_with(" failed") || text == "in f") {
                default(info);
            }
        }));
        for (parts, bad) in [(1, 0), (2, 0), (2, 1), (5, 3)] {
            check_panic(parts, bad);
            in_pool(2, || check_panic(parts, bad));
            in_pool(3, || {
                check_panic(parts, bad);
                // The pool still works after a panic.
                check_split(9, 3);
            });
            // Nested in a part, the parts run one after another on its thread: every part
            // still runs before the panic reaches the caller.
            in_pool(2, || {
                let mut blocks = [[0.0f32; 1]; 2];
                let mut scratch = [0.0f32; 2];
                split::<_, _, 1, 1>(&mut blocks, &mut scratch, 2, &|_, _, _| {
                    check_panic(parts, bad)
                })
                .unwrap();
            });
        }
        // A panic in `f` of in_pool itself stops the pool and reaches the caller.
        let r = panic::catch_unwind(|| in_pool(2, || panic!("in f")));
        // Back to the default hook.
        drop(panic::take_hook());
        assert_eq!(message(r.expect_err("in_pool must unwind")), "in f");
    }

    #[test]
    fn too_little_scratch_is_an_error_naming_it() {
        let mut blocks = vec![[0.0f32; B]; 3];
        let mut scratch = vec![0.0f32; 2 * S];
        // 8 threads on 3 blocks: 3 parts, 3 pieces needed.
        let err = split::<_, _, B, S>(&mut blocks, &mut scratch, 8, &|_, _, _| {}).unwrap_err();
        assert_eq!(
            err,
            crate::Error::BufferLength {
                buffer: "scratch",
                expected: 3 * S,
                actual: 2 * S
            }
        );
        let mut scratch = vec![0.0f32; 3 * S];
        split::<_, _, B, S>(&mut blocks, &mut scratch, 8, &|_, _, _| {}).unwrap();
        // 8 parts on 2 threads: a piece a thread.
        let mut blocks = vec![[0.0f32; B]; 64];
        let mut scratch = vec![0.0f32; S];
        let err = split_parts::<_, _, B, S>(&mut blocks, &mut scratch, 2, 8, &|_, _, _| {});
        assert_eq!(
            err.unwrap_err(),
            crate::Error::BufferLength {
                buffer: "scratch",
                expected: 2 * S,
                actual: S
            }
        );
        let mut scratch = vec![0.0f32; 2 * S];
        split_parts::<_, _, B, S>(&mut blocks, &mut scratch, 2, 8, &|_, _, _| {}).unwrap();
    }

    #[test]
    fn one_thread_runs_everything_on_the_caller() {
        let me = std::thread::current().id();
        for pool in [1, 2] {
            in_pool(pool, || {
                let mut blocks = vec![[0.0f32; B]; 5];
                let mut scratch = vec![0.0f32; S];
                let calls = Mutex::new(0);
                split::<_, _, B, S>(&mut blocks, &mut scratch, 1, &|first, part, _| {
                    assert_eq!((first, part.len()), (0, 5));
                    assert_eq!(std::thread::current().id(), me);
                    *calls.lock().unwrap() += 1;
                })
                .unwrap();
                assert_eq!(calls.into_inner().unwrap(), 1);
            });
        }
    }

    #[test]
    fn bound_splits_evenly_and_does_not_overflow() {
        assert_eq!(bound(10, 0, 3), 0);
        assert_eq!(bound(10, 1, 3), 3);
        assert_eq!(bound(10, 2, 3), 6);
        assert_eq!(bound(10, 3, 3), 10);
        assert_eq!(bound(usize::MAX, usize::MAX, usize::MAX), usize::MAX);
        assert_eq!(bound(usize::MAX, 1, 2), usize::MAX / 2);
    }
}
