//! `cargo run --release -p gspc-runtime --example int8_peak -- [--threads-max N] [--json FILE]
//! [--rep-ms MS]`
//!
//! This CPU's int8 multiply-accumulate peak, the int8 counterpart of the fp32 FMA peak of
//! ../shared/peers/peak (same method: independent accumulator chains per thread, the same
//! loop on 1..=N threads started together, best of 5 repetitions; threads are not pinned,
//! as there). Each instruction is measured only where this CPU has it (run-time detection):
//!
//! - `vpdpbusd` (AVX-512 VNNI, 512-bit; AVX-VNNI, 256-bit): uint8 x int8 quads, 4 MACs per
//!   int32 lane, the instruction of XNNPACK's and ONNX Runtime's int8 kernels;
//! - `vpdpwssd` (AVX-512 VNNI, 512-bit; AVX-VNNI, 256-bit): int16 pairs, 2 MACs per lane,
//!   what gspc's AVX-512 int8 kernels use;
//! - `vpmaddwd` + `vpaddd` (AVX-512BW, 512-bit; AVX2, 256-bit): the same int16 pairs in two
//!   instructions, what gspc's AVX2 int8 kernels use.
//!
//! GOP/s count 2 operations per multiply-accumulate, as the benchmark's int8 GOP/s do. The
//! table gives GOP/s and the ratio to the 1-thread `vpdpwssd` (else AVX2 `vpmaddwd`) peak;
//! `--json FILE` writes `int8_<instruction>_<isa>_<T>t_gops` keys (e.g.
//! `int8_vpdpbusd_avx512_1t_gops`) next to `cpu`, in the style of the fp32 peak's JSON, for
//! `cargo bench --bench layers -- --int8-peak FILE` and `scripts/compare.py --int8`.

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;
    use std::sync::{Arc, Barrier};
    use std::time::Instant;

    /// Independent accumulator chains per thread: 16 of the 32 zmm registers; 12 of the 16
    /// ymm ones (AVX2 and AVX-VNNI), the others hold the operands. At 2 instructions per
    /// cycle they hide a step latency up to 8 cycles (zmm) or 6 (ymm).
    pub const CHAINS_512: usize = 16;
    pub const CHAINS_256: usize = 12;

    /// One measured instruction: its JSON name, the table's, its accumulator chains and
    /// MACs per instruction (per `vpmaddwd` + `vpaddd` pair), whether this CPU has it, and
    /// the loop (one instruction per chain per iteration; 0 where `detect` is false).
    pub struct Kernel {
        pub key: &'static str,
        pub label: &'static str,
        pub chains: usize,
        pub macs_per_instr: usize,
        pub detect: fn() -> bool,
        pub run: fn(u64, i32) -> i32,
    }

    /// Sums the `i32` lanes of an accumulator vector stored to `out`.
    fn lanes_sum(out: &[i32]) -> i32 {
        out.iter().fold(0i32, |s, &v| s.wrapping_add(v))
    }

    /// A [`Kernel`] whose loop applies `$step` to every chain: `$step(c)` gives the chain's
    /// next value from its current one. The chain is also the multiplicand: with two
    /// constant operands LLVM hoists the loop-invariant product (it knows `vpdpwssd` is
    /// `vpmaddwd` + `vpaddd`) and the loop measures additions.
    macro_rules! int8_kernel {
        ($key:literal, $label:literal, $macs:expr, [$($feat:tt),+], $vec:ty, $set1:ident,
         $add:ident, $store:ident, $lanes:expr, |$c:ident, $b:ident| $step:expr,
         [$($acc:ident),+]) => {{
            $( #[target_feature(enable = $feat)] )+
            fn kernel(iters: u64, seed: i32) -> i32 {
                let $b = $set1(0x0101_0101);
                let mut k = seed;
                $( let mut $acc = $set1(k); k = k.wrapping_add(1); )+
                black_box(k);
                for _ in 0..iters {
                    $( $acc = { let $c = $acc; $step }; )+
                }
                let mut s = $set1(0);
                $( s = $add(s, $acc); )+
                let mut out = [0i32; $lanes];
                // SAFETY: `out` holds `$lanes` i32s, one vector's worth; unaligned store.
                unsafe { $store(out.as_mut_ptr().cast::<$vec>(), s) };
                lanes_sum(&out)
            }
            fn detect() -> bool {
                $( is_x86_feature_detected!($feat) )&&+
            }
            fn run(iters: u64, seed: i32) -> i32 {
                if !detect() {
                    return 0;
                }
                // SAFETY: `detect` just found every feature `kernel` is compiled with.
                unsafe { kernel(iters, seed) }
            }
            Kernel {
                key: $key,
                label: $label,
                chains: [$(stringify!($acc)),+].len(),
                macs_per_instr: $macs,
                detect,
                run,
            }
        }};
    }

    /// [`int8_kernel`] on zmm registers, 16 chains.
    macro_rules! zmm_kernel {
        ($key:literal, $label:literal, $macs:expr, [$($feat:tt),+], $($step:tt)+) => {
            int8_kernel!($key, $label, $macs, [$($feat),+], __m512i, _mm512_set1_epi32,
                _mm512_add_epi32, _mm512_storeu_si512, 16, $($step)+,
                [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15])
        };
    }

    /// [`int8_kernel`] on ymm registers, 12 chains.
    macro_rules! ymm_kernel {
        ($key:literal, $label:literal, $macs:expr, [$($feat:tt),+], $($step:tt)+) => {
            int8_kernel!($key, $label, $macs, [$($feat),+], __m256i, _mm256_set1_epi32,
                _mm256_add_epi32, _mm256_storeu_si256, 8, $($step)+,
                [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11])
        };
    }

    /// Every kernel, in table order; MACs per instruction = lanes x MACs per lane.
    pub const KERNELS: [Kernel; 6] = [
        zmm_kernel!(
            "vpdpbusd_avx512",
            "vpdpbusd 512 (AVX-512 VNNI, u8 x i8)",
            64,
            ["avx512f", "avx512vnni"],
            |c, b| _mm512_dpbusd_epi32(c, c, b)
        ),
        zmm_kernel!(
            "vpdpwssd_avx512",
            "vpdpwssd 512 (AVX-512 VNNI, i16)",
            32,
            ["avx512f", "avx512vnni"],
            |c, b| _mm512_dpwssd_epi32(c, c, b)
        ),
        zmm_kernel!(
            "vpmaddwd_avx512",
            "vpmaddwd+vpaddd 512 (AVX-512BW)",
            32,
            ["avx512f", "avx512bw"],
            |c, b| _mm512_add_epi32(c, _mm512_madd_epi16(c, b))
        ),
        ymm_kernel!(
            "vpdpbusd_avxvnni",
            "vpdpbusd 256 (AVX-VNNI, u8 x i8)",
            32,
            ["avxvnni"],
            |c, b| _mm256_dpbusd_avx_epi32(c, c, b)
        ),
        ymm_kernel!(
            "vpdpwssd_avxvnni",
            "vpdpwssd 256 (AVX-VNNI, i16)",
            16,
            ["avxvnni"],
            |c, b| _mm256_dpwssd_avx_epi32(c, c, b)
        ),
        ymm_kernel!(
            "vpmaddwd_avx2",
            "vpmaddwd+vpaddd 256 (AVX2)",
            16,
            ["avx2"],
            |c, b| _mm256_add_epi32(c, _mm256_madd_epi16(c, b))
        ),
    ];

    // The chains the macros above write out are the ones the JSON reports.
    const _: () = assert!(KERNELS[0].chains == CHAINS_512 && KERNELS[5].chains == CHAINS_256);

    /// Runs `k`'s loop on `threads` threads started together: the best of 5 repetitions'
    /// GOP/s over all threads (`iters` calibrated to about `rep_ms` on one thread), or
    /// `None` where this CPU lacks the instruction.
    pub fn measure(k: &Kernel, threads: usize, rep_ms: f64) -> Option<f64> {
        if !(k.detect)() {
            return None;
        }
        let run = k.run;
        let mut iters = 10_000u64;
        loop {
            let t = Instant::now();
            black_box(run(iters, 1));
            let dt = t.elapsed().as_secs_f64();
            if dt > 0.02 {
                iters = ((iters as f64 * rep_ms / 1e3 / dt) as u64).max(1);
                break;
            }
            iters *= 4;
        }
        let ops_per_iter = 2.0 * (k.chains * k.macs_per_instr) as f64;
        let mut best = 0f64;
        for _ in 0..5 {
            let bar = Arc::new(Barrier::new(threads + 1));
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let bar = bar.clone();
                    std::thread::spawn(move || {
                        bar.wait();
                        let start = Instant::now();
                        black_box(run(iters, 1 + i as i32));
                        (start, Instant::now())
                    })
                })
                .collect();
            bar.wait();
            // Each thread times itself: the calling thread may not run again until the
            // workers are done (as many workers as cores), so its clock would miss them.
            let spans: Vec<(Instant, Instant)> =
                handles.into_iter().filter_map(|h| h.join().ok()).collect();
            let (Some(t0), Some(end)) = (
                spans.iter().map(|s| s.0).min(),
                spans.iter().map(|s| s.1).max(),
            ) else {
                continue;
            };
            if spans.len() != threads {
                continue;
            }
            let dt = (end - t0).as_secs_f64();
            best = best.max(threads as f64 * iters as f64 * ops_per_iter / dt / 1e9);
        }
        Some(best)
    }

    /// Approximate core clock in GHz: best of 3 runs of a chain of dependent 1-cycle
    /// integer adds, as the fp32 peak program measures it.
    pub fn clock_ghz() -> f64 {
        let n: u64 = 100_000_000;
        let mut best = 0f64;
        for _ in 0..3 {
            let t = Instant::now();
            let mut x: u64 = black_box(0);
            // SAFETY: register-only integer adds and a loop counted down from `n` (a
            // multiple of 8) to 0; no memory, no stack, flags declared clobbered by default.
            unsafe {
                std::arch::asm!(
                    "2:",
                    "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                    "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                    "sub {n}, 8",
                    "jnz 2b",
                    x = inout(reg) x,
                    n = inout(reg) n => _,
                    options(nomem, nostack),
                );
            }
            black_box(x);
            best = best.max(n as f64 / t.elapsed().as_secs_f64() / 1e9);
        }
        best
    }

    /// The CPU's name: /proc/cpuinfo's first `model name` (Linux), else "unknown".
    pub fn cpu_name() -> String {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        info.lines()
            .find_map(|l| l.strip_prefix("model name")?.trim_start().strip_prefix(':'))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or("unknown")
            .to_string()
    }
}

/// Prints `msg` and exits with status 2.
fn usage(msg: &str) -> ! {
    eprintln!("int8_peak: {msg}\nusage: int8_peak [--threads-max N] [--json FILE] [--rep-ms MS]");
    std::process::exit(2)
}

/// The value after `args[*i]`, parsed, or a usage error.
#[cfg(target_arch = "x86_64")]
fn value<T: std::str::FromStr>(args: &[String], i: &mut usize) -> T {
    let flag = &args[*i];
    *i += 1;
    match args.get(*i).map(|v| v.parse()) {
        Some(Ok(v)) => v,
        _ => usage(&format!("{flag} needs a valid value")),
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut json: Option<String> = None;
    let mut tmax = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rep_ms = 100.0f64;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--json" => json = Some(value(&args, &mut i)),
            "--threads-max" => tmax = value(&args, &mut i),
            "--rep-ms" => rep_ms = value(&args, &mut i),
            a => usage(&format!("unknown argument {a}")),
        }
        i += 1;
    }
    if tmax == 0 || !rep_ms.is_finite() || rep_ms <= 0.0 {
        usage("--threads-max and --rep-ms must be positive");
    }
    let cpu = x86::cpu_name();
    println!("int8 multiply-accumulate peak, {cpu}");
    println!(
        "  GOP/s (2 ops per MAC, best of 5), instructions (vpmaddwd+vpaddd pairs) per cycle per thread, ratio to gspc's instruction"
    );
    // The clock: the best of a reading before and one after each thread count's kernels (a
    // single reading came out 25% low while another process held the core for a moment).
    let mut ghz = x86::clock_ghz();
    let mut kv: Vec<(String, f64)> = Vec::new();
    for t in 1..=tmax {
        let rows: Vec<(&x86::Kernel, f64)> = x86::KERNELS
            .iter()
            .filter_map(|k| Some((k, x86::measure(k, t, rep_ms)?)))
            .collect();
        ghz = ghz.max(x86::clock_ghz());
        println!("  approx. clock {ghz:.2} GHz");
        // The ratio column: to vpdpwssd 512 where this CPU has it (gspc's AVX-512 int8
        // instruction), else to AVX2's vpmaddwd pair (its AVX2 one).
        let base = ["vpdpwssd_avx512", "vpmaddwd_avx2"]
            .iter()
            .find_map(|key| rows.iter().find(|(k, _)| k.key == *key).map(|r| r.1));
        for (k, g) in rows {
            let ratio = base.map_or("-".to_string(), |b| format!("{:.2}x", g / b));
            let ipc = g / (2.0 * k.macs_per_instr as f64) / ghz / t as f64;
            println!(
                "  {:<38} {t} thread(s): {g:8.1} GOP/s {ipc:5.2}/cycle {ratio:>6}",
                k.label
            );
            kv.push((format!("int8_{}_{t}t_gops", k.key), g));
        }
    }
    kv.insert(0, ("clock_ghz".to_string(), ghz));
    if let Some(path) = json {
        let body: Vec<String> = kv
            .iter()
            .map(|(k, v)| format!("  \"{k}\": {v:.3}"))
            .collect();
        let text = format!(
            "{{\n  \"cpu\": \"{}\",\n  \"acc_chains_256\": {},\n  \"acc_chains_512\": {},\n{}\n}}\n",
            cpu.replace(['"', '\\'], ""),
            x86::CHAINS_256,
            x86::CHAINS_512,
            body.join(",\n")
        );
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("int8_peak: --json {path}: cannot write: {e}");
            std::process::exit(1);
        }
        println!("wrote {path}");
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    usage("measures x86-64 instructions only (vpdpbusd, vpdpwssd, vpmaddwd)");
}
