//! Checking generated layers against the reference (with the `std` feature): what the test
//! suite runs on every layer, and what an application can run once on its own device.

use crate::qlayer::QLayer;
use crate::quant::ChannelScale;
use crate::rng::Rng;
use crate::{Error, Isa, Layer, RunFn, reference};
use std::string::String;
use std::vec;
use std::vec::Vec;

/// What [`check_layer`] ran.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    /// Variants that ran and matched the reference.
    pub ran: Vec<Isa>,
    /// Variants skipped because this CPU lacks their instruction set.
    pub skipped: Vec<Isa>,
    /// With AVX-512 set to half rate (`x86::set_avx512_full_rate`), the dispatcher ran the
    /// AVX2 variant instead of the AVX-512 one (only checked on a CPU with AVX-512).
    pub avx2_at_half_rate: bool,
}

/// Runs every variant of `layer` (and the dispatching `run`, and `run_parallel` on 2 and
/// 3 threads) on random input, weights and
/// bias from `seed`, and compares each output with [`reference::conv2d`].
///
/// Output and scratch start as NaN, so a kernel that leaves an output unwritten or reads
/// scratch it did not write fails. The error names the variant and the coordinates
/// `(g, oc, oh, ow)` of the first mismatch.
pub fn check_layer(layer: &Layer, seed: u64) -> Result<Checked, String> {
    let info = &layer.info;
    let data = SeededData::new(seed, layer.input_len, layer.weights_len, info.out_channels);
    let expected = data.expected(layer)?;
    check_layer_on(layer, &data, &expected)
}

/// [`check_layer`] on given data and the reference's output for it
/// ([`SeededData::expected`]): for several layers of one shape (tuning candidates), which
/// share the reference's run.
pub fn check_layer_on(
    layer: &Layer,
    data: &SeededData,
    expected: &[f32],
) -> Result<Checked, String> {
    let info = &layer.info;
    let (input, weights) = (&data.input, &data.weights);
    let bias = info.bias.then_some(&data.bias[..]);
    let mut packed = vec![0.0f32; layer.packed_len];
    (layer.pack_weights)(weights, bias, &mut packed)
        .map_err(|e| format!("{}: pack_weights: {e}", info.name))?;

    let run = |what: &str, f: RunFn| -> Result<bool, String> {
        let mut output = vec![f32::NAN; layer.output_len];
        let mut scratch = vec![f32::NAN; layer.scratch_len];
        match f(input, &packed, &mut output, &mut scratch) {
            Ok(()) => {}
            Err(Error::Unsupported(_)) => return Ok(false),
            Err(e) => return Err(format!("{} ({what}): {e}", info.name)),
        }
        reference::compare(info, expected, &output)
            .map_err(|m| format!("{} ({what}): {m}", info.name))?;
        Ok(true)
    };
    let mut checked = Checked::default();
    for v in layer.variants {
        if run(v.kernel, v.run)? {
            checked.ran.push(v.isa);
        } else {
            checked.skipped.push(v.isa);
        }
    }
    // The parallel entry points: split in exactly 2 and 3 parts, and run_parallel on 2
    // threads (which may use one for a small layer); scratch for each part.
    let split = |what: &str, f: crate::ParallelFn, parts: usize| -> Result<(), String> {
        let mut output = vec![f32::NAN; layer.output_len];
        let mut scratch = vec![f32::NAN; layer.scratch_len * parts];
        f(input, &packed, &mut output, &mut scratch, parts)
            .map_err(|e| format!("{} ({what}, {parts}): {e}", info.name))?;
        reference::compare(info, expected, &output)
            .map_err(|m| format!("{} ({what}, {parts}): {m}", info.name))
    };
    run("run, dispatching", layer.run)?;
    checked.avx2_at_half_rate = check_dispatch(layer, &run, &split)?;
    split("run_split", layer.run_split, 2)?;
    split("run_split", layer.run_split, 3)?;
    split("run_parallel", layer.run_parallel, 2)?;
    check_lower_bands(layer, &split)?;
    Ok(checked)
}

/// The row bands of a `gspc-dwc` layer's lower x86 variants: the splits that band its
/// blocks run the dispatched variant's `run_band`, which a variant's own `run` never
/// reaches, so on a CPU with AVX-512 the AVX2 and portable `run_band` would go unchecked.
/// With the dispatch capped below the CPU's level ([`crate::x86::set_level_cap`], under the
/// lock of the other process-wide dispatch changes), `run_split` in 2 and 3 parts runs each
/// lower variant the layer has. (Other architectures have one SIMD level: the dispatched
/// variant is the only one whose bands run.)
fn check_lower_bands(
    layer: &Layer,
    split: &dyn Fn(&str, crate::ParallelFn, usize) -> Result<(), String>,
) -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::x86::{LEVEL_AVX2, LEVEL_NONE, cpu_level, set_level_cap};
        if layer.strategy != "gspc-dwc" {
            return Ok(());
        }
        let has = |isa: Isa| layer.variants.iter().any(|v| v.isa == isa);
        let _serial = RATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        struct Uncap;
        impl Drop for Uncap {
            fn drop(&mut self) {
                set_level_cap(None);
            }
        }
        let _uncap = Uncap;
        for (cap, isa) in [(LEVEL_AVX2, Isa::Avx2), (LEVEL_NONE, Isa::Portable)] {
            if cap >= cpu_level() || !has(isa) {
                continue;
            }
            set_level_cap(Some(cap));
            if (layer.dispatched_isa)() != isa {
                return Err(format!(
                    "{}: with the dispatch capped at {isa}, dispatched_isa() is {}",
                    layer.info.name,
                    (layer.dispatched_isa)()
                ));
            }
            let what = format!("run_split, {isa} capped");
            split(&what, layer.run_split, 2)?;
            split(&what, layer.run_split, 3)?;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (layer, split);
    Ok(())
}

/// Serializes [`check_dispatch`]'s changes of the process-wide AVX-512 rate.
static RATE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Serializes [`check_qlayer`]'s runs with AVX-512 VBMI turned off (process-wide).
#[cfg(target_arch = "x86_64")]
static VBMI_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The dispatcher's choice: `dispatched_isa()` names a variant of the layer that this CPU
/// runs; on a CPU with AVX-512, for a layer with AVX2 and AVX-512 variants, `run` once more
/// with AVX-512 set to full rate (which must dispatch to AVX-512) and to half rate (AVX-512
/// or AVX2, as the plan says), then the rate is set back. At the rate the CPU does not
/// have, `run_split` in 3 parts runs too: an AVX-512 variant may take another path at
/// each rate (the in-place form of a packing `gspc-oc` variant at half rate), whose
/// `run_units` from a block other than the first the other splits reach only at the
/// measured rate. Returns whether the half-rate dispatch chose AVX2.
fn check_dispatch(
    layer: &Layer,
    run: &dyn Fn(&str, RunFn) -> Result<bool, String>,
    split: &dyn Fn(&str, crate::ParallelFn, usize) -> Result<(), String>,
) -> Result<bool, String> {
    let name = layer.info.name;
    let has = |isa: Isa| layer.variants.iter().any(|v| v.isa == isa);
    let isa = (layer.dispatched_isa)();
    if !isa.is_supported() || !has(isa) {
        return Err(format!(
            "{name}: dispatched_isa() is {isa}, not a variant that this CPU runs"
        ));
    }
    if !(Isa::Avx512.is_supported() && has(Isa::Avx512) && has(Isa::Avx2)) {
        return Ok(false);
    }
    let _serial = RATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let measured = crate::x86::avx512_full_rate();
    let both = || -> Result<bool, String> {
        let mut avx2 = false;
        for full in [true, false] {
            crate::x86::set_avx512_full_rate(Some(full));
            let isa = (layer.dispatched_isa)();
            let rate = if full { "full" } else { "half" };
            let allowed = if full {
                isa == Isa::Avx512
            } else {
                matches!(isa, Isa::Avx512 | Isa::Avx2)
            };
            if !allowed {
                return Err(format!(
                    "{name}: with AVX-512 at {rate} rate dispatched_isa() is {isa}"
                ));
            }
            run(&format!("run, AVX-512 at {rate} rate: {isa}"), layer.run)?;
            if full != measured {
                split(
                    &format!("run_split, AVX-512 at {rate} rate: {isa}"),
                    layer.run_split,
                    3,
                )?;
            }
            avx2 |= !full && isa == Isa::Avx2;
        }
        Ok(avx2)
    };
    let result = both();
    crate::x86::set_avx512_full_rate(Some(measured));
    result
}

/// The random data [`check_layer`] uses: input, then weights, then a bias, drawn in that
/// order from one seed. A build script can bake the same weights (with `gspc-codegen`) and
/// [`check_baked`] then checks the baked copy against the run-time packing.
#[derive(Clone, Debug)]
pub struct SeededData {
    /// NCHW input.
    pub input: Vec<f32>,
    /// OIHW weights.
    pub weights: Vec<f32>,
    /// Bias (`out_channels` values; used when the layer has one).
    pub bias: Vec<f32>,
}

impl SeededData {
    /// The data for a layer with these lengths.
    pub fn new(seed: u64, input_len: usize, weights_len: usize, out_channels: usize) -> Self {
        let mut rng = Rng::new(seed);
        let mut d = SeededData {
            input: vec![0.0; input_len],
            weights: vec![0.0; weights_len],
            bias: vec![0.0; out_channels],
        };
        rng.fill(&mut d.input);
        rng.fill(&mut d.weights);
        rng.fill(&mut d.bias);
        d
    }

    /// The reference's output of `layer` on this data (with the bias where the layer has
    /// one).
    pub fn expected(&self, layer: &Layer) -> Result<Vec<f32>, String> {
        let info = &layer.info;
        let bias = info.bias.then_some(&self.bias[..]);
        let mut expected = vec![0.0f32; layer.output_len];
        reference::conv2d(info, &self.input, &self.weights, bias, &mut expected)
            .map_err(|e| format!("{}: reference: {e}", info.name))?;
        Ok(expected)
    }
}

/// For a layer generated with baked weights made from [`SeededData`] of `seed`: checks that
/// the baked copy equals the run-time `pack_weights` of the same data bit for bit, and that
/// `run` with it matches the reference.
pub fn check_baked(layer: &Layer, seed: u64) -> Result<(), String> {
    let info = &layer.info;
    let Some(baked) = layer.baked else {
        return Err(format!("{}: has no baked weights", info.name));
    };
    let data = SeededData::new(seed, layer.input_len, layer.weights_len, info.out_channels);
    let bias = info.bias.then_some(&data.bias[..]);
    let mut packed = vec![0.0f32; layer.packed_len];
    (layer.pack_weights)(&data.weights, bias, &mut packed)
        .map_err(|e| format!("{}: pack_weights: {e}", info.name))?;
    if baked.len() != packed.len() {
        return Err(format!(
            "{}: {} baked values, PACKED_LEN is {}",
            info.name,
            baked.len(),
            packed.len()
        ));
    }
    if let Some(i) = (0..packed.len()).find(|&i| baked[i].to_bits() != packed[i].to_bits()) {
        return Err(format!(
            "{}: baked[{i}] = {}, pack_weights gives {}",
            info.name, baked[i], packed[i]
        ));
    }
    let mut expected = vec![0.0f32; layer.output_len];
    reference::conv2d(info, &data.input, &data.weights, bias, &mut expected)
        .map_err(|e| format!("{}: reference: {e}", info.name))?;
    let mut output = vec![f32::NAN; layer.output_len];
    let mut scratch = vec![f32::NAN; layer.scratch_len];
    (layer.run)(&data.input, baked, &mut output, &mut scratch)
        .map_err(|e| format!("{} (run, baked): {e}", info.name))?;
    reference::compare(info, &expected, &output)
        .map_err(|m| format!("{} (run, baked): {m}", info.name))
}

/// A seed from a model and a layer name, so every layer gets its own data and a failure
/// replays with the same data.
pub fn seed_for(model: &str, layer: &str) -> u64 {
    model
        .bytes()
        .chain([b':'])
        .chain(layer.bytes())
        .fold(0xC0FF_EE00_u64, |h, b| {
            h.wrapping_mul(0x100_0000_01B3).wrapping_add(b as u64)
        })
}

/// Fails when an ISA named in `required` (as in `GSPC_REQUIRE_ISA=avx2,avx512`) was
/// skipped anywhere or never ran.
pub fn enforce_required(required: &[String], all: &[Checked]) -> Result<(), String> {
    for want in required {
        let ran = all.iter().any(|c| c.ran.iter().any(|i| i.as_str() == want));
        let skipped = all
            .iter()
            .any(|c| c.skipped.iter().any(|i| i.as_str() == want));
        if skipped {
            return Err(format!(
                "GSPC_REQUIRE_ISA names {want}, but it was skipped: this CPU lacks it"
            ));
        }
        if !ran {
            return Err(format!(
                "GSPC_REQUIRE_ISA names {want}, but no layer has that variant for this target"
            ));
        }
    }
    Ok(())
}

/// `GSPC_REQUIRE_ISA`, split on commas.
pub fn required_from_env() -> Vec<String> {
    std::env::var("GSPC_REQUIRE_ISA")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// [`check_layer`] (or [`check_qlayer`]) on every layer of `models`, each with its own
/// [`seed_for`] data, in model and spec order (f32 layers, then int8 ones). The layers are
/// checked on `available_parallelism()` threads at once, the largest first (each check is
/// independent; under QEMU, which emulates one guest thread on one host thread, this took
/// `tests/models.rs` from 220 s to 137-147 s on 2 cores), and the results come back in
/// that order. Fails with every wrong layer listed, named
/// `model::layer (variant): ...`.
pub fn check_models(models: &[&crate::Model]) -> Result<Vec<Checked>, String> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    enum Job {
        F32(&'static Layer),
        Int8(&'static QLayer),
    }
    let jobs: Vec<(&str, Job)> = models
        .iter()
        .flat_map(|m| {
            let f32s = m.layers.iter().map(|l| (m.name, Job::F32(l)));
            f32s.chain(m.qlayers.iter().map(|l| (m.name, Job::Int8(l))))
        })
        .collect();
    let check = |(model, job): &(&str, Job)| match job {
        Job::F32(layer) => check_layer(layer, seed_for(model, layer.info.name))
            .map_err(|e| format!("{model}::{e} [strategy {}]", layer.strategy)),
        Job::Int8(layer) => check_qlayer(layer, seed_for(model, layer.info.name))
            .map_err(|e| format!("{model}::{e} [int8, strategy {}]", layer.strategy)),
    };
    let results: Vec<Mutex<Option<Result<Checked, String>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    // The largest layers first, so that no thread is left with one at the end while the
    // others have nothing to do (in spec order, a suite's largest layers came last).
    let flops = |(_, job): &(&str, Job)| match job {
        Job::F32(layer) => layer.info.flops(),
        Job::Int8(layer) => layer.info.flops(),
    };
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| core::cmp::Reverse(flops(&jobs[i])));
    let next = AtomicUsize::new(0);
    let work = || {
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let Some(job) = jobs.get(i) else { break };
            let result = check(job);
            *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, jobs.len().max(1));
    // A panic in a check (a kernel's assertion) reaches the caller when the scope ends.
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    let mut all = Vec::new();
    let mut failures = Vec::new();
    for result in results {
        match result.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(c)) => all.push(c),
            Some(Err(e)) => failures.push(e),
            None => unreachable!("every job index below jobs.len() was claimed and stored"),
        }
    }
    if failures.is_empty() {
        Ok(all)
    } else {
        Err(format!(
            "{} layer(s) wrong:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}

/// The random data [`check_qlayer`] uses, from one seed: int8 input over the whole range,
/// weights in [-127, 127] and an int32 bias, in that order. One layer in four of the seeds
/// gets biases near the int32 limits on its even channels, so that the wrapping
/// accumulator is exercised; its odd channels keep small biases (a bias near the limits
/// saturates every output of its channel, which would hide a wrong sum).
#[derive(Clone, Debug)]
pub struct SeededQData {
    /// NCHW input.
    pub input: Vec<i8>,
    /// OIHW weights.
    pub weights: Vec<i8>,
    /// Bias (`out_channels` values; used when the layer has one).
    pub bias: Vec<i32>,
}

impl SeededQData {
    /// The data for a layer with these lengths.
    pub fn new(seed: u64, input_len: usize, weights_len: usize, out_channels: usize) -> Self {
        let mut rng = Rng::new(seed);
        let input = (0..input_len).map(|_| rng.next_u64() as u8 as i8).collect();
        let weights = (0..weights_len)
            .map(|_| (rng.next_u64() % 255) as i32 - 127)
            .map(|w| w as i8)
            .collect();
        let wide = seed % 4 == 3;
        let bias = (0..out_channels)
            .map(|k| {
                let r = rng.next_u64();
                if wide && k % 2 == 0 {
                    r as i32
                } else {
                    (r % (1 << 17)) as i32 - (1 << 16)
                }
            })
            .collect();
        SeededQData {
            input,
            weights,
            bias,
        }
    }

    /// The integer reference's output of `layer` on this data.
    pub fn expected(&self, layer: &QLayer) -> Result<Vec<i8>, String> {
        let info = &layer.info;
        let mut channels = vec![ChannelScale::Fp32(0.0); info.out_channels];
        let rq = layer
            .quant
            .derive(info.activation, &mut channels)
            .map_err(|e| format!("{}: quantization: {e}", info.name))?;
        let bias = info.bias.then_some(&self.bias[..]);
        let mut expected = vec![0i8; layer.output_len];
        crate::quant::conv2d(info, &rq, &self.input, &self.weights, bias, &mut expected)
            .map_err(|e| format!("{}: reference: {e}", info.name))?;
        Ok(expected)
    }
}

/// The first output where `got` differs from `expected`, as `(oc, oh, ow)` with both
/// values.
fn q_mismatch(info: &crate::LayerInfo, expected: &[i8], got: &[i8]) -> Option<String> {
    let plane = info.output[0] * info.output[1];
    let i = (0..expected.len()).find(|&i| expected.get(i) != got.get(i))?;
    let (k, at) = (i / plane, i % plane);
    Some(format!(
        "output (oc {k}, oh {}, ow {}) = {:?}, the reference gives {}",
        at / info.output[1],
        at % info.output[1],
        got.get(i),
        expected[i]
    ))
}

/// The int8 twin of [`check_layer`]: every variant of `layer`, its dispatching `run`,
/// `run_split` in 2 and 3 parts and `run_parallel` on 2 threads, on [`SeededQData`] of
/// `seed`, against the integer reference ([`crate::quant::conv2d`]) bit for bit. Output
/// and scratch start as garbage (output 0x55, scratch 0x5555_5555), so an output left
/// unwritten or scratch read before it is written shows. Also checks that `pack_weights`
/// refuses a weight of -128.
pub fn check_qlayer(layer: &QLayer, seed: u64) -> Result<Checked, String> {
    let info = &layer.info;
    let data = SeededQData::new(seed, layer.input_len, layer.weights_len, info.out_channels);
    let expected = data.expected(layer)?;
    let bias = info.bias.then_some(&data.bias[..]);
    let mut packed = vec![0i32; layer.packed_len];
    (layer.pack_weights)(&data.weights, bias, &mut packed)
        .map_err(|e| format!("{}: pack_weights: {e}", info.name))?;
    let compare = |what: &str, out: &[i8]| match q_mismatch(info, &expected, out) {
        Some(m) => Err(format!("{} ({what}): {m}", info.name)),
        None => Ok(()),
    };
    let mut checked = Checked::default();
    for v in layer.variants {
        let mut output = vec![0x55i8; layer.output_len];
        let mut scratch = vec![0x5555_5555i32; layer.scratch_len];
        match (v.run)(&data.input, &packed, &mut output, &mut scratch) {
            Ok(()) => {
                compare(v.isa.as_str(), &output)?;
                checked.ran.push(v.isa);
            }
            Err(Error::Unsupported(_)) => checked.skipped.push(v.isa),
            Err(e) => return Err(format!("{} ({}): {e}", info.name, v.isa)),
        }
    }
    // The AVX-512 variant once more without AVX-512 VBMI, where the CPU has it: its
    // grouped quad packing then takes the path of CPUs without it. (The switch is
    // process-wide: other threads that run meanwhile take either path, which give the same
    // result; `VBMI_LOCK` keeps another check from turning it back on during this run.)
    #[cfg(target_arch = "x86_64")]
    if crate::x86::has_avx512_vbmi()
        && let Some(v) = layer.variants.iter().find(|v| v.isa == Isa::Avx512)
    {
        let mut output = vec![0x55i8; layer.output_len];
        let mut scratch = vec![0x5555_5555i32; layer.scratch_len];
        let ran = {
            let _serial = VBMI_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            crate::x86::set_avx512_vbmi(Some(false));
            let ran = (v.run)(&data.input, &packed, &mut output, &mut scratch);
            crate::x86::set_avx512_vbmi(None);
            ran
        };
        ran.map_err(|e| format!("{} (avx512 without VBMI): {e}", info.name))?;
        compare("avx512 without VBMI", &output)?;
    }
    let mut output = vec![0x55i8; layer.output_len];
    let mut scratch = vec![0x5555_5555i32; layer.scratch_len];
    (layer.run)(&data.input, &packed, &mut output, &mut scratch)
        .map_err(|e| format!("{} (run): {e}", info.name))?;
    compare("run", &output)?;
    // Exactly 2 and 3 parts, each packing the input of its own blocks (a group may be
    // split between two parts), and run_parallel on 2 threads.
    let parallel: [(&str, crate::qlayer::QParallelFn, usize); 3] = [
        ("run_split", layer.run_split, 2),
        ("run_split", layer.run_split, 3),
        ("run_parallel", layer.run_parallel, 2),
    ];
    for (what, f, parts) in parallel {
        let mut output = vec![0x55i8; layer.output_len];
        let mut scratch = vec![0x5555_5555i32; parts * layer.scratch_len];
        f(&data.input, &packed, &mut output, &mut scratch, parts)
            .map_err(|e| format!("{} ({what} {parts}): {e}", info.name))?;
        compare(&format!("{what} {parts}"), &output)?;
    }
    if !data.weights.is_empty() {
        let mut bad = data.weights.clone();
        let middle = bad.len() / 2;
        bad[middle] = i8::MIN;
        if (layer.pack_weights)(&bad, bias, &mut packed).is_ok() {
            return Err(format!(
                "{}: pack_weights accepted a weight of -128",
                info.name
            ));
        }
    }
    Ok(checked)
}

/// The int8 twin of [`check_baked`]: for an int8 layer generated with baked weights made
/// from [`SeededQData`] of `seed`, the baked words equal the run-time `pack_weights` of
/// the same data, and `run` with them matches the integer reference.
pub fn check_qbaked(layer: &QLayer, seed: u64) -> Result<(), String> {
    let info = &layer.info;
    let Some(baked) = layer.baked else {
        return Err(format!("{}: has no baked weights", info.name));
    };
    let data = SeededQData::new(seed, layer.input_len, layer.weights_len, info.out_channels);
    let bias = info.bias.then_some(&data.bias[..]);
    let mut packed = vec![0i32; layer.packed_len];
    (layer.pack_weights)(&data.weights, bias, &mut packed)
        .map_err(|e| format!("{}: pack_weights: {e}", info.name))?;
    if baked != &packed[..] {
        let i = (0..packed.len())
            .find(|&i| baked.get(i) != packed.get(i))
            .unwrap_or(0);
        return Err(format!(
            "{}: baked[{i}] = {:?}, pack_weights gives {:?}",
            info.name,
            baked.get(i),
            packed.get(i)
        ));
    }
    let expected = data.expected(layer)?;
    let mut output = vec![0x55i8; layer.output_len];
    let mut scratch = vec![0x5555_5555i32; layer.scratch_len];
    (layer.run)(&data.input, baked, &mut output, &mut scratch)
        .map_err(|e| format!("{} (run, baked): {e}", info.name))?;
    match q_mismatch(info, &expected, &output) {
        Some(m) => Err(format!("{} (run, baked): {m}", info.name)),
        None => Ok(()),
    }
}
