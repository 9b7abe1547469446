//! The thread pool behind [`split`](super::split) with `std`: a fixed set of workers, each
//! handed one static share of every call, kept warm by a spin budget between calls.
//!
//! One thread dispatches at a time (the thread that made an [`in_pool`] pool, or whoever
//! holds the process-wide pool's lock). A call writes the job, opens one cursor per share
//! (share `t` is parts `parts * t / threads .. parts * (t + 1) / threads`), signals the
//! workers it needs, and claims and runs its own share's parts; then it claims any part of
//! another share that is still unclaimed (its worker is late: asleep, or descheduled by
//! the OS), and waits until every part is done. Workers do the same from their own share.
//! So when every thread is on time each runs its own share, always the same one, and a
//! late worker costs at most the time of the parts it has already claimed.
//!
//! Waiting (a worker for its next signal, the caller for the last parts) spins for
//! [`SPIN`], yields for [`YIELD`], then parks; the waker unparks a thread only if it
//! announced that it sleeps.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use super::bound;
use crate::dwc::CB;
use core::ops::Range;

/// How long a waiting thread spins (`core::hint::spin_loop`) before it starts yielding. A
/// worker spinning when the next layer's share arrives starts it in well under a
/// microsecond; one that sleeps may start it tens of microseconds to milliseconds later
/// on a virtual machine, where its idle vCPU halted (see `docs/threads.md`).
pub const SPIN: Duration = Duration::from_micros(300);

/// How long a waiting thread yields (`std::thread::yield_now`) after [`SPIN`], before it
/// parks: it still starts the next share at once, but gives the core to any other
/// runnable thread meanwhile.
pub const YIELD: Duration = Duration::from_millis(2);

/// Waits until `ready()`: spins for [`SPIN`], yields for [`YIELD`], then parks, having
/// stored `token` (not 0) in `sleeping` first; the waker, after making `ready()` true,
/// unparks this thread if it finds `token` there (and resets it to 0). `ready` must read
/// with `SeqCst`, so that either it sees the waker's write or the waker sees `token`.
fn wait(ready: impl Fn() -> bool, sleeping: &AtomicUsize, token: usize) {
    let start = Instant::now();
    loop {
        if ready() {
            return;
        }
        let waited = start.elapsed();
        if waited < SPIN {
            for _ in 0..16 {
                core::hint::spin_loop();
            }
        } else if waited < SPIN + YIELD {
            thread::yield_now();
        } else {
            break;
        }
    }
    loop {
        sleeping.store(token, SeqCst);
        if ready() {
            sleeping.store(0, SeqCst);
            return;
        }
        // Woken by the waker's unpark, or spuriously (a stale unpark): check again.
        thread::park();
    }
}

/// Bits of a cursor word for the call's thread count (the top quarter), and for the next
/// part to claim and the end of the share (`HALF` bits each, below it). A call with more
/// parts than `HALF` bits hold runs on one thread; one with more threads than `THREADS`
/// bits hold runs on fewer.
const THREADS: u32 = usize::BITS / 4;
const HALF: u32 = (usize::BITS - THREADS) / 2;
const LOW: usize = (1 << HALF) - 1;
const MAX_THREADS: usize = (1 << THREADS) - 1;

/// A share's cursor: `threads << 2 * HALF | next << HALF | end`; its parts `next..end`
/// are unclaimed, by thread `0..threads` of the call only.
#[repr(align(128))]
struct Cursor(AtomicUsize);

impl Cursor {
    /// Claims the next part of the share for thread `own`, if one is left and `own` is one
    /// of the call's threads. The thread count is read in the same word the claim swaps,
    /// so a worker still leaving an earlier call with more threads cannot take a part (and
    /// with it a scratch piece that does not exist) of this one.
    fn claim(&self, own: usize) -> Option<usize> {
        let mut word = self.0.load(SeqCst);
        loop {
            let (threads, next, end) = (word >> (2 * HALF), word >> HALF & LOW, word & LOW);
            if next >= end || own >= threads {
                return None;
            }
            match self
                .0
                .compare_exchange_weak(word, word + (1 << HALF), SeqCst, SeqCst)
            {
                Ok(_) => return Some(next),
                Err(now) => word = now,
            }
        }
    }
}

/// What a call hands the workers. `f` is the caller's closure with its lifetime erased; it
/// is called only for a claimed part, and the caller returns only after every part is done
/// (see [`Pool::run`]).
struct Job {
    f: *const (dyn Fn(usize, usize) + Sync + 'static),
    parts: usize,
    epoch: usize,
    caller: Option<Thread>,
}

fn nothing(_: usize, _: usize) {}

impl Job {
    fn idle() -> Job {
        static NOTHING: fn(usize, usize) = nothing;
        Job {
            f: &NOTHING as &(dyn Fn(usize, usize) + Sync),
            parts: 0,
            epoch: 0,
            caller: None,
        }
    }
}

/// A worker's signal and sleep flag, on a cache line pair of its own.
#[repr(align(128))]
struct Slot {
    /// Bumped by the caller to wake the worker for the current call.
    go: AtomicUsize,
    /// 1 while the worker is (about to be) parked.
    sleeping: AtomicUsize,
}

struct Shared {
    /// One per worker (worker `i` has slot `i - 1`).
    slots: Box<[Slot]>,
    /// One per thread of the pool (the caller's is 0): the unclaimed parts of its share.
    cursors: Box<[Cursor]>,
    job: UnsafeCell<Job>,
    /// Parts of the current call done (run, or unwound).
    done: AtomicUsize,
    /// The epoch of the call whose caller is (about to be) parked, else 0.
    caller_sleeping: AtomicUsize,
    panicked: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    stop: AtomicBool,
}

// SAFETY: the fields that are not `Sync` are `job` (an `UnsafeCell`) and the raw pointer in
// it. `job` is written only by the dispatching thread in `Pool::run` while every cursor is
// empty (before it opens them, and after every part is done), so while no thread holds a
// claimed part; workers read it only while they hold a claimed part that is not done. The
// pointer is a `&(dyn Fn + Sync)`, callable from any thread while it is valid.
unsafe impl Sync for Shared {}
// SAFETY: as for `Sync`: what `job` points to is `Sync`, so the pointer may move to the
// workers; the rest of `Shared` is `Send`.
unsafe impl Send for Shared {}

impl Shared {
    /// Claims and runs parts as thread `own`, from share `own` first and then from the
    /// others, until every share is empty. Catches a part's panic (keeps the first),
    /// counts every part done, and wakes the caller after the last.
    fn claim_and_run(&self, own: usize) {
        let n = self.cursors.len();
        for share in (own..n).chain(0..own) {
            while let Some(p) = self.cursors[share].claim(own) {
                // SAFETY: this thread holds claimed part `p`, which is not done: the
                // caller of this call is inside `Pool::run`, waiting for it, and writes
                // `job` only when no claimed part is left undone.
                let (f, parts, epoch, caller) = unsafe {
                    let job = &*self.job.get();
                    (job.f, job.parts, job.epoch, job.caller.clone())
                };
                // SAFETY: `f` borrows from the caller's `Pool::run`, which returns only
                // after `done` counts this part (below).
                let result = panic::catch_unwind(AssertUnwindSafe(|| unsafe { (*f)(p, own) }));
                if let Err(payload) = result {
                    let mut first = self.panic.lock().unwrap_or_else(|e| e.into_inner());
                    first.get_or_insert(payload);
                    self.panicked.store(true, SeqCst);
                }
                // `job` is not read after this. The last part of call `epoch` wakes its
                // caller if it sleeps on this call (`epoch` tells calls apart).
                if self.done.fetch_add(1, SeqCst) + 1 == parts
                    && self
                        .caller_sleeping
                        .compare_exchange(epoch, 0, SeqCst, SeqCst)
                        .is_ok()
                    && let Some(caller) = caller
                {
                    caller.unpark();
                }
            }
        }
    }
}

/// The workers of one pool and what the dispatching thread needs to signal them.
pub(super) struct Pool {
    shared: Arc<Shared>,
    workers: Vec<Thread>,
    handles: Vec<JoinHandle<()>>,
    epoch: Cell<usize>,
}

impl Pool {
    /// A pool of `threads` threads: the caller and up to `threads - 1` workers (fewer if
    /// the OS refuses to spawn more).
    fn new(threads: usize) -> Pool {
        let want = threads.saturating_sub(1);
        let shared = Arc::new(Shared {
            slots: (0..want)
                .map(|_| Slot {
                    go: AtomicUsize::new(0),
                    sleeping: AtomicUsize::new(0),
                })
                .collect(),
            cursors: (0..=want).map(|_| Cursor(AtomicUsize::new(0))).collect(),
            job: UnsafeCell::new(Job::idle()),
            done: AtomicUsize::new(0),
            caller_sleeping: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            panic: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let mut handles = Vec::with_capacity(want);
        for index in 1..=want {
            let s = shared.clone();
            match thread::Builder::new()
                .name(format!("gspc-worker-{index}"))
                .spawn(move || work(&s, index))
            {
                Ok(h) => handles.push(h),
                Err(_) => break,
            }
        }
        Pool {
            shared,
            workers: handles.iter().map(|h| h.thread().clone()).collect(),
            handles,
            epoch: Cell::new(0),
        }
    }

    /// Calls `f(p, t)` exactly once for every part `p` in `0..parts`, on up to `threads`
    /// threads, `t` being the index of the thread that runs it (`t < threads`; thread 0 is
    /// the caller). Normally thread `t` runs its own share, the parts from `parts * t /
    /// threads` up to `parts * (t + 1) / threads`, one after another. Returns after every
    /// call has returned or unwound; then resumes the first panic, if any.
    fn run(&self, parts: usize, threads: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        let threads = threads
            .min(parts)
            .min(self.workers.len() + 1)
            .min(MAX_THREADS);
        if threads <= 1 || parts > LOW {
            one_by_one(parts, f);
            return;
        }
        let shared = &*self.shared;
        let epoch = self.epoch.get().wrapping_add(1).max(1);
        self.epoch.set(epoch);
        let short: *const (dyn Fn(usize, usize) + Sync + '_) = f;
        // SAFETY: only the lifetime changes. `f` is called only for a claimed part that is
        // not done, and this function returns (or unwinds) only after `done` counts every
        // part, when no claim is left (every cursor is empty); then `job` is reset.
        let f_erased: *const (dyn Fn(usize, usize) + Sync + 'static) =
            unsafe { std::mem::transmute(short) };
        // SAFETY: every cursor is empty (the previous call claimed and finished every
        // part), so no thread reads `job` until the cursors are opened below.
        unsafe {
            *shared.job.get() = Job {
                f: f_erased,
                parts,
                epoch,
                caller: Some(thread::current()),
            }
        };
        shared.done.store(0, SeqCst);
        for (t, cursor) in shared.cursors.iter().enumerate().take(threads) {
            let (next, end) = (bound(parts, t, threads), bound(parts, t + 1, threads));
            cursor
                .0
                .store(threads << (2 * HALF) | next << HALF | end, SeqCst);
        }
        for (slot, worker) in shared.slots.iter().zip(&self.workers).take(threads - 1) {
            slot.go.fetch_add(1, SeqCst);
            if slot.sleeping.swap(0, SeqCst) != 0 {
                worker.unpark();
            }
        }
        shared.claim_and_run(0);
        wait(
            || shared.done.load(SeqCst) == parts,
            &shared.caller_sleeping,
            epoch,
        );
        // SAFETY: every part is claimed and done: no thread reads `job`.
        unsafe { *shared.job.get() = Job::idle() };
        if shared.panicked.swap(false, SeqCst) {
            let payload = shared
                .panic
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(payload) = payload {
                panic::resume_unwind(payload);
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        for (slot, worker) in self.shared.slots.iter().zip(&self.workers) {
            slot.go.fetch_add(1, SeqCst);
            slot.sleeping.store(0, SeqCst);
            worker.unpark();
        }
        for h in self.handles.drain(..) {
            // A worker catches the panics of its parts; it cannot panic itself.
            let _ = h.join();
        }
    }
}

/// Worker `index` (1-based: thread 0 is the caller) of a pool.
fn work(shared: &Shared, index: usize) {
    BUSY.with(|b| b.set(true));
    let slot = &shared.slots[index - 1];
    let mut seen = 0;
    loop {
        wait(|| slot.go.load(SeqCst) != seen, &slot.sleeping, 1);
        seen = slot.go.load(SeqCst);
        if shared.stop.load(SeqCst) {
            return;
        }
        shared.claim_and_run(index);
    }
}

thread_local! {
    /// The pool of the innermost `in_pool` on this thread.
    static CURRENT: RefCell<Option<Rc<Pool>>> = const { RefCell::new(None) };
    /// Set on workers and on a caller while it dispatches: a `split` inside a part runs its
    /// parts on the thread that runs the part.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

pub(super) fn in_pool<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Rc<Pool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            // Drops this call's pool (it is the last `Rc`): its workers are joined.
            let _ = CURRENT.with(|c| c.replace(self.0.take()));
        }
    }
    let pool = Rc::new(Pool::new(threads.max(1)));
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(pool))));
    f()
}

/// The process-wide pool for calls outside any `in_pool`, made on first use;
/// `available_parallelism()` threads.
fn global() -> &'static Mutex<Pool> {
    static GLOBAL: OnceLock<Mutex<Pool>> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let threads = thread::available_parallelism().map_or(1, |n| n.get());
        Mutex::new(Pool::new(threads))
    })
}

/// Calls `f(p, t)` exactly once for every `p` in `0..parts` and returns when all have
/// returned, resuming the first panic: on up to `threads` threads of this thread's
/// `in_pool` pool, else of the process-wide pool if it is free, else (or nested in a part)
/// one after another on this thread. `t < threads` is the index of the thread that runs
/// part `p`: one thread runs its parts one after another.
pub(super) fn run(parts: usize, threads: usize, f: &(dyn Fn(usize, usize) + Sync)) {
    if parts <= 1 || threads <= 1 || BUSY.with(|b| b.get()) {
        one_by_one(parts, f);
        return;
    }
    struct Busy;
    impl Drop for Busy {
        fn drop(&mut self) {
            BUSY.with(|b| b.set(false));
        }
    }
    BUSY.with(|b| b.set(true));
    let _busy = Busy;
    if let Some(pool) = CURRENT.with(|c| c.borrow().clone()) {
        return pool.run(parts, threads, f);
    }
    match global().try_lock() {
        Ok(pool) => pool.run(parts, threads, f),
        // A part panicked in an earlier call; the pool itself is consistent (that call
        // waited for every part before it unwound).
        Err(TryLockError::Poisoned(e)) => e.into_inner().run(parts, threads, f),
        Err(TryLockError::WouldBlock) => one_by_one(parts, f),
    }
}

/// Calls `f(p, 0)` for every `p` in `0..parts` on this thread, in order, and then resumes the
/// first panic, if any: as on the pool, a panic in one part does not keep the others from
/// running (another thread may be using the process-wide pool, and a caller must not see
/// different parts run depending on that).
fn one_by_one(parts: usize, f: &(dyn Fn(usize, usize) + Sync)) {
    let mut first = None;
    for p in 0..parts {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| f(p, 0))) {
            first.get_or_insert(payload);
        }
    }
    if let Some(payload) = first {
        panic::resume_unwind(payload);
    }
}

/// Disjoint parts of a layer's output blocks, taken by index from several threads at once,
/// and one scratch piece per thread, for the parts that thread runs one after another.
pub(super) struct Parts<'a, T, U, const B: usize, const S: usize> {
    blocks: *mut [T; B],
    len: usize,
    parts: usize,
    pieces: *mut [U; S],
    threads: usize,
    _blocks: PhantomData<&'a mut [[T; B]]>,
    _pieces: PhantomData<&'a mut [[U; S]]>,
}

// SAFETY: `Parts` is a `&mut` borrow of buffers of `Send` values split into disjoint
// parts, each handed to one thread at most, and pieces, each used by one thread at a time
// (the contract of `part`), like `split_at_mut` halves sent to threads.
unsafe impl<T: Send, U: Send, const B: usize, const S: usize> Sync for Parts<'_, T, U, B, S> {}

impl<'a, T, U, const B: usize, const S: usize> Parts<'a, T, U, B, S> {
    /// Part `p` of `parts` is `blocks[bound(len, p)..bound(len, p + 1)]`; thread `t` of
    /// `pieces.len()` uses `pieces[t]`.
    pub(super) fn new(blocks: &'a mut [[T; B]], parts: usize, pieces: &'a mut [[U; S]]) -> Self {
        Parts {
            len: blocks.len(),
            blocks: blocks.as_mut_ptr(),
            parts,
            threads: pieces.len(),
            pieces: pieces.as_mut_ptr(),
            _blocks: PhantomData,
            _pieces: PhantomData,
        }
    }

    /// `(first block, blocks, scratch piece)` of part `p` run by thread `t` (`p < parts`
    /// and `t < pieces.len()`, else a panic).
    ///
    /// # Safety
    /// Each `p` may be taken at most once while `self` lives, and piece `t` only after
    /// the piece of the previous take with the same `t` is no longer used (thread `t`
    /// runs its parts one after another).
    pub(super) unsafe fn part(
        &self,
        p: usize,
        t: usize,
    ) -> (usize, &'a mut [[T; B]], &'a mut [U; S]) {
        assert!(p < self.parts, "part {p} of {}", self.parts);
        assert!(t < self.threads, "thread {t} of {}", self.threads);
        let (start, end) = (
            bound(self.len, p, self.parts),
            bound(self.len, p + 1, self.parts),
        );
        // SAFETY: `start <= end <= len` (bound is monotonic in `p`, and `bound(len, parts,
        // parts) = len`), and `t` is in the pieces, so both are in the borrowed buffers;
        // parts `p` have disjoint ranges, each taken at most once, and piece `t` is taken
        // again only after its previous take is dead (the caller's promises), so no two
        // live `&mut` alias; both buffers stay borrowed for `'a`.
        unsafe {
            (
                start,
                std::slice::from_raw_parts_mut(self.blocks.add(start), end - start),
                &mut *self.pieces.add(t),
            )
        }
    }
}

/// Disjoint bands of rows of a depthwise layer's output units (`units` units of `CB`
/// planes of `rows * row` values), taken by index from several threads at once, and one
/// scratch piece per thread, as [`Parts`].
pub(super) struct Bands<'a, T, U, const S: usize> {
    output: *mut T,
    units: usize,
    rows: usize,
    row: usize,
    bands: usize,
    pieces: *mut [U; S],
    threads: usize,
    _output: PhantomData<&'a mut [T]>,
    _pieces: PhantomData<&'a mut [[U; S]]>,
}

// SAFETY: as for `Parts`: a `&mut` borrow of buffers of `Send` values split into disjoint
// bands, each handed to one thread at most, and pieces, each used by one thread at a time
// (the contract of `band`).
unsafe impl<T: Send, U: Send, const S: usize> Sync for Bands<'_, T, U, S> {}

impl<'a, T, U, const S: usize> Bands<'a, T, U, S> {
    /// Part `p` is band `p % bands` of unit `p / bands`; thread `t` of `pieces.len()` uses
    /// `pieces[t]`. Panics if `output` is shorter than the units.
    pub(super) fn new(
        output: &'a mut [T],
        units: usize,
        rows: usize,
        row: usize,
        bands: usize,
        pieces: &'a mut [[U; S]],
    ) -> Self {
        let need = units
            .checked_mul(CB)
            .and_then(|n| n.checked_mul(rows))
            .and_then(|n| n.checked_mul(row));
        assert!(
            need.is_some_and(|n| n <= output.len()) && bands >= 1,
            "{units} units of {CB} planes of {rows} x {row} in {} values",
            output.len()
        );
        Bands {
            output: output.as_mut_ptr(),
            units,
            rows,
            row,
            bands,
            threads: pieces.len(),
            pieces: pieces.as_mut_ptr(),
            _output: PhantomData,
            _pieces: PhantomData,
        }
    }

    /// `(unit, rows, planes, scratch piece)` of part `p` run by thread `t` (`p < units *
    /// bands` and `t < pieces.len()`, else a panic): `planes[c]` is rows `rows` of plane
    /// `c` of the unit.
    ///
    /// # Safety
    /// As [`Parts::part`]: each `p` may be taken at most once while `self` lives, and
    /// piece `t` only after the piece of the previous take with the same `t` is no longer
    /// used.
    pub(super) unsafe fn band(
        &self,
        p: usize,
        t: usize,
    ) -> (usize, Range<usize>, [&'a mut [T]; CB], &'a mut [U; S]) {
        assert!(
            p < self.units * self.bands,
            "band {p} of {}",
            self.units * self.bands
        );
        assert!(t < self.threads, "thread {t} of {}", self.threads);
        let (unit, band) = (p / self.bands, p % self.bands);
        let rows = super::band_rows(self.rows, band, self.bands);
        let plane = self.rows * self.row;
        let (at, len) = (rows.start * self.row, rows.len() * self.row);
        let planes = core::array::from_fn(|c| {
            // SAFETY: rows.end <= self.rows, so the range ends at (unit * CB + c) * plane +
            // rows.end * row <= (unit * CB + c + 1) * plane <= units * CB * plane <=
            // output.len() (checked in `new`); the ranges of two planes, or of two bands of
            // one plane, are disjoint, and each part is taken at most once (the caller's
            // promise), so no two live `&mut` alias; the output stays borrowed for `'a`.
            unsafe {
                std::slice::from_raw_parts_mut(self.output.add((unit * CB + c) * plane + at), len)
            }
        });
        // SAFETY: `t` is in the pieces, taken again only after its previous take is dead
        // (the caller's promise).
        let piece = unsafe { &mut *self.pieces.add(t) };
        (unit, rows, planes, piece)
    }
}
