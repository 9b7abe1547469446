//! `cargo run --release -p gspc-runtime --features std --example wake -- [--rounds N] [--work US]`
//!
//! Measures how late a sleeping thread starts work it is handed, on this machine:
//!
//! - `park`: a thread parked (`std::thread::park`) after an idle gap, woken with `unpark`:
//!   the delay from `unpark` to the woken thread running, which on a virtual machine
//!   includes waking the idle vCPU;
//! - `rayon`: `rayon::join` inside a 2-thread rayon pool, after the same idle gaps: the
//!   delay until the second half starts, and how often another thread ran it at all (if
//!   none steals it in time the caller runs both halves and the join takes 2x);
//! - `gspc`: `gspc_runtime::parallel::split` into 2 parts inside `in_pool(2)`: the delay
//!   until part 1 starts (it always runs on the pool's worker).
//!
//! Each half is `--work` microseconds of spinning (default 200, a layer of 400 us). The idle
//! gap is spent spinning on the calling thread, so only the other core goes idle, as between
//! two layers of an inference. Prints the median, 90th percentile and maximum delay in
//! microseconds per gap, and the median time of the whole join.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const GAPS_US: [u64; 6] = [0, 20, 100, 1_000, 10_000, 50_000];

fn spin_for(us: f64) {
    let t = Instant::now();
    while t.elapsed().as_secs_f64() * 1e6 < us {
        std::hint::spin_loop();
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Row {
    delays: Vec<f64>,
    totals: Vec<f64>,
    other: usize,
}

impl Row {
    fn print(mut self, what: &str, gap: u64) {
        let n = self.delays.len();
        self.delays.sort_by(f64::total_cmp);
        self.totals.sort_by(f64::total_cmp);
        let total = if self.totals.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1}", self.totals[self.totals.len() / 2])
        };
        println!(
            "{what:<6} {gap:>7} {:>9.1} {:>9.1} {:>9.1} {:>10} {:>6}/{n}",
            self.delays[n / 2],
            self.delays[n * 9 / 10],
            self.delays[n - 1],
            total,
            self.other,
        );
    }
}

fn park(rounds: usize, gap: u64) -> Row {
    let woken_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let go = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (w, g, s) = (woken_at.clone(), go.clone(), stop.clone());
    let sleeper = thread::spawn(move || {
        loop {
            while !g.swap(false, Ordering::Acquire) {
                if s.load(Ordering::Acquire) {
                    return;
                }
                thread::park();
            }
            *w.lock().unwrap() = Some(Instant::now());
        }
    });
    let mut delays = Vec::new();
    for _ in 0..rounds {
        spin_for(gap as f64);
        let t0 = Instant::now();
        go.store(true, Ordering::Release);
        sleeper.thread().unpark();
        let t1 = loop {
            if let Some(t) = woken_at.lock().unwrap().take() {
                break t;
            }
            std::hint::spin_loop();
        };
        delays.push(us(t1.saturating_duration_since(t0)));
    }
    stop.store(true, Ordering::Release);
    sleeper.thread().unpark();
    sleeper.join().unwrap();
    Row {
        delays,
        totals: Vec::new(),
        other: rounds,
    }
}

fn rayon_join(rounds: usize, gap: u64, work: f64) -> Row {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        let mut row = Row {
            delays: Vec::new(),
            totals: Vec::new(),
            other: 0,
        };
        for _ in 0..rounds {
            spin_for(gap as f64);
            let caller = thread::current().id();
            let t0 = Instant::now();
            let (_, (t1, who)) = rayon::join(
                || spin_for(work),
                || {
                    let t1 = Instant::now();
                    spin_for(work);
                    (t1, thread::current().id())
                },
            );
            row.totals.push(us(t0.elapsed()));
            row.delays.push(us(t1.saturating_duration_since(t0)));
            row.other += usize::from(who != caller);
        }
        row
    })
}

fn gspc_split(rounds: usize, gap: u64, work: f64) -> Row {
    gspc_runtime::parallel::in_pool(2, || {
        let mut row = Row {
            delays: Vec::new(),
            totals: Vec::new(),
            other: 0,
        };
        let mut blocks = [[0.0f32; 1]; 2];
        let mut scratch = [0.0f32; 2];
        for _ in 0..rounds {
            spin_for(gap as f64);
            let caller = thread::current().id();
            let started = std::sync::Mutex::new(None);
            let t0 = Instant::now();
            gspc_runtime::parallel::split::<_, _, 1, 1>(
                &mut blocks,
                &mut scratch,
                2,
                &|first, _, _| {
                    if first == 1 {
                        *started.lock().unwrap() = Some((Instant::now(), thread::current().id()));
                    }
                    spin_for(work);
                },
            )
            .unwrap();
            row.totals.push(us(t0.elapsed()));
            let (t1, who) = started.lock().unwrap().take().unwrap();
            row.delays.push(us(t1.saturating_duration_since(t0)));
            row.other += usize::from(who != caller);
        }
        row
    })
}

fn main() {
    let mut rounds = 200;
    let mut work = 200.0;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().and_then(|v| v.parse::<f64>().ok());
        match (arg.as_str(), value) {
            ("--rounds", Some(v)) if v >= 10.0 => rounds = v as usize,
            ("--work", Some(v)) if v > 0.0 => work = v,
            _ => {
                eprintln!("usage: wake [--rounds N (>= 10)] [--work US]");
                std::process::exit(2);
            }
        }
    }
    println!(
        "# delay (us) until a sleeping thread runs what it is handed; {rounds} rounds per gap, halves of {work} us"
    );
    println!(
        "{:<6} {:>7} {:>9} {:>9} {:>9} {:>10} {:>8}",
        "what", "gap us", "median", "p90", "max", "join us", "other"
    );
    for gap in GAPS_US {
        let r = rounds.min(if gap >= 10_000 { 40 } else { rounds });
        park(r, gap).print("park", gap);
        rayon_join(r, gap, work).print("rayon", gap);
        gspc_split(r, gap, work).print("gspc", gap);
    }
}
