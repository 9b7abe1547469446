//! Splitting a layer's work units among threads.
//!
//! [`split`] cuts a layer's output blocks into `parts` contiguous parts, part `p` always the
//! same range (`len * p / parts ..`), each with its own scratch piece. With the `std`
//! feature the parts run on a small pool of this crate's own (see `docs/threads.md`):
//!
//! - inside [`in_pool`] (build it around a whole inference), on that pool: the calling
//!   thread runs part 0 itself and worker `i` always runs part `i`, so each thread keeps the
//!   same input channels and scratch piece in its own cache from layer to layer. Between
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

#[cfg(feature = "std")]
mod pool;

#[cfg(feature = "std")]
pub use pool::{SPIN, YIELD};

/// FLOPs below which a layer gains nothing from another thread. Handing a part to a warm
/// worker of [`in_pool`] costs about a microsecond; 300 kFLOP is one to a few microseconds
/// of work. A larger grain left depthwise models single-threaded (measurements:
/// docs/benchmarks/2026-11-27-zen5.md, "Thread grain").
pub const GRAIN_FLOPS: u64 = 300_000;

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
/// `S`-value piece of `scratch` (part `p` the `p`-th). Fewer parts run when there are fewer
/// blocks. `scratch` must hold `threads * S` values (for the parts that run). Which threads
/// run the parts: see the module documentation.
pub fn split<T: Send, U: Send, const B: usize, const S: usize>(
    blocks: &mut [[T; B]],
    scratch: &mut [U],
    threads: usize,
    f: &UnitsFn<'_, T, U, B, S>,
) -> Result<(), Error> {
    let parts = threads.clamp(1, blocks.len().max(1));
    let actual = scratch.len();
    let (pieces, _) = scratch.as_chunks_mut::<S>();
    if pieces.len() < parts {
        return Err(Error::BufferLength {
            buffer: "scratch",
            expected: parts * S,
            actual,
        });
    }
    let pieces = &mut pieces[..parts];
    #[cfg(feature = "std")]
    {
        let view = pool::Parts::new(blocks, pieces);
        pool::run(parts, &|p| {
            // SAFETY: `pool::run` calls this closure at most once per part `p` in
            // `0..parts` (its contract), so each part of `view` is taken at most once.
            let (first, blocks, piece) = unsafe { view.part(p) };
            f(first, blocks, piece)
        });
    }
    #[cfg(not(feature = "std"))]
    {
        let len = blocks.len();
        let mut rest = blocks;
        let mut start = 0;
        for (p, piece) in pieces.iter_mut().enumerate() {
            let end = bound(len, p + 1, parts);
            let (part, tail) = core::mem::take(&mut rest).split_at_mut(end - start);
            f(start, part, piece);
            rest = tail;
            start = end;
        }
    }
    Ok(())
}

/// The first index of part `p` of `parts` over `len` items: `len * p / parts`, computed
/// in u128 so that `len * p` cannot overflow; at most `len` for `p <= parts`.
pub(crate) fn bound(len: usize, p: usize, parts: usize) -> usize {
    (len as u128 * p as u128 / parts as u128) as usize
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::{bound, in_pool, split};
    use std::panic::{self, AssertUnwindSafe};
    use std::string::String;
    use std::sync::Mutex;
    use std::vec;
    use std::vec::Vec;

    const B: usize = 3;
    const S: usize = 2;

    /// Splits `len` blocks into `threads` parts and checks that every part ran exactly once
    /// with its first unit, its blocks and its scratch piece, and that every block was
    /// handed to exactly one part.
    fn check_split(len: usize, threads: usize) {
        let parts = threads.clamp(1, len.max(1));
        let mut blocks = vec![[0.0f32; B]; len];
        // Scratch piece p holds p (and one more piece than needed, which no part may get).
        let mut scratch: Vec<f32> = (0..(parts + 1) * S).map(|i| (i / S) as f32).collect();
        let seen = Mutex::new(Vec::new());
        split::<_, _, B, S>(&mut blocks, &mut scratch, threads, &|first, part, piece| {
            for (i, b) in part.iter_mut().enumerate() {
                b[0] += 1.0;
                b[1] = (first + i) as f32;
            }
            assert!(
                piece.iter().all(|&v| v == piece[0]),
                "piece mixed: {piece:?}"
            );
            seen.lock()
                .unwrap()
                .push((first, part.len(), piece[0] as usize));
            // Scratch is the part's own: write it all.
            piece.fill(-1.0);
        })
        .unwrap();
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        let want: Vec<_> = (0..parts)
            .map(|p| {
                let (a, b) = (bound(len, p, parts), bound(len, p + 1, parts));
                (a, b - a, p)
            })
            .collect();
        assert_eq!(seen, want, "{len} blocks, {threads} threads");
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(b[0], 1.0, "block {i} of {len} ran {} times", b[0]);
            assert_eq!(b[1], i as f32, "block {i} of {len}: wrong first unit");
        }
        // Only the pieces of the parts were handed out.
        assert!(scratch[parts * S..].iter().all(|&v| v == parts as f32));
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
