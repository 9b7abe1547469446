//! `parallel::split` and the entry points of generated layers (`entry`) allocate nothing
//! per call, on an `in_pool` pool and on the process-wide pool (counted by a global
//! allocator; the only test of this binary, so no other test allocates meanwhile).
#![cfg(feature = "std")]

use gspc_runtime::parallel::{in_pool, split};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts the calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static A: Counting = Counting;

thread_local! {
    /// The warm-up round in which this thread last ran a part.
    static ROUND: Cell<usize> = const { Cell::new(0) };
}

/// The current warm-up round, and how many threads have run a part in it.
static WARM_ROUND: AtomicUsize = AtomicUsize::new(0);
static WARM_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Splits into `threads` parts until `threads` threads have each run one (or 10 s have
/// passed): the warm-up may set up the process-wide pool and thread handles, and std
/// allocates in a new thread as it starts, which may be after the first calls (until a
/// worker has run a part, the caller runs them all; a worker that gets no part in the
/// measured calls must have started before them, which under QEMU can take a while).
fn warm_up(threads: usize) {
    let mut blocks = [[0.0f32; 4]; 64];
    let mut scratch = [0.0f32; 8 * 2];
    let round = WARM_ROUND.fetch_add(1, Ordering::SeqCst) + 1;
    WARM_THREADS.store(0, Ordering::SeqCst);
    let f = |_: usize, _: &mut [[f32; 4]], _: &mut [f32; 2]| {
        ROUND.with(|r| {
            if r.get() != round {
                r.set(round);
                WARM_THREADS.fetch_add(1, Ordering::SeqCst);
            }
        });
    };
    let start = std::time::Instant::now();
    loop {
        split::<_, _, 4, 2>(&mut blocks, &mut scratch, threads, &f).unwrap();
        if WARM_THREADS.load(Ordering::SeqCst) >= threads || start.elapsed().as_secs() >= 10 {
            break;
        }
        std::thread::yield_now();
    }
}

/// Allocations during 500 splits into `parts` parts, after [`warm_up`] for `threads`.
fn allocations(parts: usize, threads: usize) -> usize {
    let mut blocks = [[0.0f32; 4]; 64];
    let mut scratch = [0.0f32; 8 * 2];
    let f = |first: usize, part: &mut [[f32; 4]], piece: &mut [f32; 2]| {
        for (i, b) in part.iter_mut().enumerate() {
            b[0] = (first + i) as f32;
        }
        piece[0] += 1.0;
    };
    warm_up(threads);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..500 {
        split::<_, _, 4, 2>(&mut blocks, &mut scratch, parts, &f).unwrap();
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(blocks.iter().enumerate().all(|(i, b)| b[0] == i as f32));
    after - before
}

#[test]
fn splits_allocate_nothing_per_call() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for parts in [1, 2, 3, 8] {
        assert_eq!(allocations(parts, cores), 0, "{parts} parts, no in_pool");
        for threads in [2, 3] {
            let n = in_pool(threads, || allocations(parts, threads));
            assert_eq!(n, 0, "{parts} parts, in_pool({threads})");
        }
    }
    // The generated layers' entry points (gspc_runtime::entry) around such splits.
    for threads in [1, 2, 4] {
        let n = in_pool(threads, || entry_allocations(threads));
        assert_eq!(n, 0, "entry points, in_pool({threads})");
    }
}

/// Allocations during 100 calls of every entry point of a tiny layer (input 4, packed 2,
/// output 8 in blocks of 2, scratch 2) and of a weight packing, after [`warm_up`] and one
/// call of each (a single warm-up call left a pool worker that had not yet run a part to
/// start, and allocate, during the measured calls under qemu-aarch64).
fn entry_allocations(threads: usize) -> usize {
    use gspc_runtime::entry::{Entry, WeightLayout, pack_weights_slice};
    fn run_units(i: &[f32; 4], p: &[f32; 2], first: usize, b: &mut [[f32; 2]], _: &mut [f32; 2]) {
        for (u, block) in b.iter_mut().enumerate() {
            block[0] = i[0] + p[1] + (first + u) as f32;
        }
    }
    fn pack(w: &[f32; 2], b: Option<&[f32; 2]>, p: &mut [f32; 4]) {
        let layout = WeightLayout {
            kpg: 1,
            cpg: 1,
            oc_bn: 1,
            nocb: 1,
            taps: 1,
            gpv: 1,
            bias_offset: 2,
            dwc: false,
        };
        layout.pack(w, b.map(|b| b.as_slice()), p);
    }
    // 4 groups: on 2 threads run_parallel cuts the 4 blocks into 4 parts.
    let entry: Entry<4, 2, 8, 2, 2> = Entry {
        flops: u64::MAX,
        groups: 4,
        run_units,
        bands: None,
    };
    // A depthwise layer of 3 units of 16 planes of 2 rows of 1 value, with row bands: 3
    // units on 2 or 4 threads run as bands.
    fn band_units(_: &[f32; 4], _: &[f32; 2], first: usize, b: &mut [[f32; 32]], _: &mut [f32; 2]) {
        for (u, block) in b.iter_mut().enumerate() {
            block.fill((first + u) as f32);
        }
    }
    fn run_band(
        _: &[f32; 4],
        _: &[f32; 2],
        unit: usize,
        _: core::ops::Range<usize>,
        planes: &mut [&mut [f32]; 16],
        _: &mut [f32; 2],
    ) {
        for p in planes.iter_mut() {
            p.fill(unit as f32);
        }
    }
    let banded: Entry<4, 2, 96, 2, 32> = Entry {
        flops: u64::MAX,
        groups: 48,
        run_units: band_units,
        bands: Some(gspc_runtime::entry::RowBands {
            rows: 2,
            row: 1,
            run: run_band,
        }),
    };
    let mut banded_output = [0.0f32; 96];
    let (input, packed) = ([1.0f32; 4], [2.0f32; 2]);
    let (mut output, mut scratch) = ([0.0f32; 8], [0.0f32; 8]);
    let mut packed_out = [0.0f32; 4];
    let mut calls = || {
        entry
            .run_slice(&input, &packed, &mut output, &mut scratch[..2])
            .unwrap();
        let output_array: &mut [f32; 8] = &mut output;
        entry
            .run_parallel(&input, &packed, output_array, &mut scratch, threads)
            .unwrap();
        entry
            .run_split_slice(&input, &packed, &mut output, &mut scratch, threads)
            .unwrap();
        entry
            .run_parallel_slice(&input, &packed, &mut output, &mut scratch, threads)
            .unwrap();
        pack_weights_slice(pack, &[1.0, 2.0], Some(&[3.0, 4.0]), &mut packed_out).unwrap();
        banded
            .run_parallel(&input, &packed, &mut banded_output, &mut scratch, threads)
            .unwrap();
    };
    warm_up(threads);
    calls();
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..100 {
        calls();
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(output[6], 1.0 + 2.0 + 3.0);
    assert_eq!(packed_out, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(banded_output[95], 2.0);
    after - before
}
