//! gspc on a microcontroller: a small grouped/depthwise net (`spec/tiny_net.json`) whose
//! kernels the build script generates for a Cortex-M4F/M7, run with no allocator and no
//! `unsafe` in this crate.
//!
//! The weights were packed by the build script and are baked into flash (each layer's
//! `PACKED`, also `LAYERS[i].baked`): nothing is packed on the device. Every buffer is sized
//! at compile time from the generated constants and lives in one [`Net`] in `.bss`, handed
//! out once by cortex-m-rt's `#[entry]` (a `static mut` declared in the entry function
//! becomes a `&'static mut`, safely, because the entry runs once). Every inference runs
//! every layer, ping-ponging between two activation buffers.
//!
//! With the `qemu` feature it runs one inference on QEMU's mps2-an386 board, checks every
//! layer against the naive reference convolution, prints the results by semihosting and
//! exits 0 (all match) or 1.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use cortex_m_rt::entry;
use gspc_runtime::{Error, Layer, rng::Rng};
// Under QEMU, the critical section that semihosting's printing takes (cortex-m's
// single-core one); elsewhere the standard halting panic handler.
#[cfg(feature = "qemu")]
use cortex_m as _;
#[cfg(not(feature = "qemu"))]
use panic_halt as _;

/// The generated kernels: `models::tiny_net::<layer>::{run, pack_weights, ...}`.
// The generated code describes every layer in full (constants, manifest); a binary uses
// only part of it.
#[allow(dead_code)]
mod models {
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}

use models::tiny_net as net;

#[cfg(feature = "qemu")]
const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// One activation buffer holds the input or the output of any layer.
const ACT_LEN: usize = net::MAX_ACTIVATION_LEN;

/// The largest OIHW weights of any layer (for the reference check under QEMU).
#[cfg(feature = "qemu")]
const MAX_WEIGHTS_LEN: usize = {
    let mut m = 0;
    let mut i = 0;
    while i < net::LAYERS.len() {
        m = max(m, net::LAYERS[i].weights_len);
        i += 1;
    }
    m
};

/// The most output channels of any layer (for the reference check under QEMU).
#[cfg(feature = "qemu")]
const MAX_OUT_CHANNELS: usize = {
    let mut m = 0;
    let mut i = 0;
    while i < net::LAYERS.len() {
        m = max(m, net::LAYERS[i].info.out_channels);
        i += 1;
    }
    m
};

// The layers form a chain (each output is the next input), and every layer has baked
// weights: checked when this crate compiles.
const _: () = {
    let mut i = 0;
    while i < net::LAYERS.len() {
        if i > 0 {
            assert!(
                net::LAYERS[i - 1].output_len == net::LAYERS[i].input_len,
                "tiny_net: a layer's output is not the next layer's input"
            );
        }
        assert!(
            net::LAYERS[i].baked.is_some(),
            "tiny_net: weights not baked"
        );
        i += 1;
    }
};

/// Input of the net (the first layer's input).
const INPUT_LEN: usize = net::LAYERS[0].input_len;
/// Output of the net (the last layer's output).
const OUTPUT_LEN: usize = net::LAYERS[net::LAYERS.len() - 1].output_len;

/// All the RAM the net needs, f32 throughout: `4 * (2 * MAX_ACTIVATION_LEN +
/// MAX_SCRATCH_LEN)` bytes (the weights, `4 * TOTAL_PACKED_LEN` bytes, are in flash).
struct Net {
    /// Activations: the current layer reads one and writes the other.
    ping: [f32; ACT_LEN],
    pong: [f32; ACT_LEN],
    /// One workspace shared by every layer.
    scratch: [f32; net::MAX_SCRATCH_LEN],
}

impl Net {
    /// All zero, so that a `static` of it goes to `.bss` (no flash image).
    const ZERO: Net = Net {
        ping: [0.0; ACT_LEN],
        pong: [0.0; ACT_LEN],
        scratch: [0.0; net::MAX_SCRATCH_LEN],
    };
}

/// Bytes of RAM the net takes.
pub const NET_BYTES: usize = core::mem::size_of::<Net>();

/// The weights and bias of layer `index`, made up again as the build script made up the
/// ones it baked in (for the reference check under QEMU).
#[cfg(feature = "qemu")]
fn layer_weights(index: usize, layer: &Layer, weights: &mut [f32], bias: &mut [f32]) {
    let mut rng = Rng::new(0x5EED_0000 + index as u64);
    rng.fill(&mut weights[..layer.weights_len]);
    rng.fill(&mut bias[..layer.info.out_channels]);
}

/// `what` of length `expected` did not fit (cannot happen: the lengths are checked above).
fn too_short(buffer: &'static str, expected: usize, actual: usize) -> Error {
    Error::BufferLength {
        buffer,
        expected,
        actual,
    }
}

/// The slice `..len` of `buf`, or a length error.
fn prefix<'a>(buffer: &'static str, buf: &'a [f32], len: usize) -> Result<&'a [f32], Error> {
    buf.get(..len).ok_or(too_short(buffer, len, buf.len()))
}

/// Mutable twin of [`prefix`].
fn prefix_mut<'a>(
    buffer: &'static str,
    buf: &'a mut [f32],
    len: usize,
) -> Result<&'a mut [f32], Error> {
    let actual = buf.len();
    buf.get_mut(..len).ok_or(too_short(buffer, len, actual))
}

/// One inference: the input is in `ping`; every layer runs, in order. `after` sees each
/// layer's input and output. Returns the net's output.
fn infer(
    n: &mut Net,
    mut after: impl FnMut(usize, &Layer, &[f32], &[f32]),
) -> Result<&[f32], Error> {
    let (mut src, mut dst) = (&mut n.ping, &mut n.pong);
    // Through the layer table, as an app that loads a model description would: without the
    // black box the compiler would unroll this loop and inline every layer into `main`, and
    // scripts/firmware-size.sh could not tell the layers' code apart.
    for (i, layer) in core::hint::black_box(net::LAYERS).iter().enumerate() {
        let p = layer
            .baked
            .ok_or(too_short("packed", layer.packed_len, 0))?;
        let input = prefix("input", &src[..], layer.input_len)?;
        let output = prefix_mut("output", &mut dst[..], layer.output_len)?;
        let scratch = prefix_mut("scratch", &mut n.scratch, layer.scratch_len)?;
        (layer.run)(input, p, output, scratch)?;
        after(i, layer, input, output);
        core::mem::swap(&mut src, &mut dst);
    }
    prefix("output", &src[..], OUTPUT_LEN)
}

/// A stand-in for a sensor frame.
fn read_input(frame: u64, input: &mut [f32]) {
    Rng::new(frame).fill(input);
}

#[entry]
fn main() -> ! {
    // cortex-m-rt turns this into a `&'static mut Net`: the entry function runs once.
    static mut NET: Net = Net::ZERO;
    let n: &'static mut Net = NET;
    run(n)
}

/// Inference forever, one "frame" after another.
#[cfg(not(feature = "qemu"))]
fn run(n: &mut Net) -> ! {
    let mut frame = 0u64;
    loop {
        read_input(frame, &mut n.ping[..INPUT_LEN]);
        match infer(n, |_, _, _, _| {}) {
            // Hand the result to the optimizer as if it were used (sent, displayed...).
            Ok(out) => {
                core::hint::black_box(out);
            }
            Err(_) => halt(),
        }
        frame += 1;
    }
}

/// One inference, every layer checked against the reference, the verdict as exit status.
#[cfg(feature = "qemu")]
fn run(n: &mut Net) -> ! {
    use cortex_m_semihosting::{debug, hprintln};
    use gspc_runtime::reference;

    // The reference's output and the layer's own weights and bias, unpacked again (on the
    // stack: QEMU's board has 4 MiB of RAM).
    let mut expected = [0.0f32; ACT_LEN];
    let mut weights = [0.0f32; MAX_WEIGHTS_LEN];
    let mut bias = [0.0f32; MAX_OUT_CHANNELS];
    let mut failures = 0usize;

    hprintln!(
        "gspc firmware example: model {} ({} layers), {} bytes of RAM for the net, {} bytes of baked weights in flash",
        net::NAME,
        net::LAYERS.len(),
        NET_BYTES,
        4 * net::TOTAL_PACKED_LEN
    );
    read_input(0, &mut n.ping[..INPUT_LEN]);
    let result = infer(n, |i, layer, input, output| {
        layer_weights(i, layer, &mut weights, &mut bias);
        let info = &layer.info;
        let b = info.bias.then_some(&bias[..info.out_channels]);
        let checked = reference::conv2d(
            info,
            input,
            &weights[..layer.weights_len],
            b,
            &mut expected[..layer.output_len],
        );
        match checked.map_err(|_| ()).and_then(|()| {
            reference::compare(info, &expected[..layer.output_len], output).map_err(|m| {
                hprintln!("  {}: MISMATCH {}", info.name, m);
            })
        }) {
            Ok(()) => hprintln!(
                "  {:<16} {:>6} -> {:<6} {:>9} FLOP  ok",
                info.name,
                layer.input_len,
                layer.output_len,
                info.flops()
            ),
            Err(()) => failures += 1,
        }
    });
    match result {
        Ok(out) => {
            let sum: f32 = out.iter().sum();
            hprintln!("output: {} values, sum {}", out.len(), sum);
        }
        Err(e) => {
            hprintln!("inference failed: {}", e);
            failures += 1;
        }
    }
    if failures == 0 {
        hprintln!("all {} layers match the reference", net::LAYERS.len());
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        hprintln!("{} layer(s) failed", failures);
        debug::exit(debug::EXIT_FAILURE);
    }
    halt()
}

/// Stops here; a debugger finds the core spinning in this function.
fn halt() -> ! {
    #[cfg(feature = "qemu")]
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        core::hint::spin_loop();
    }
}

/// Under QEMU a panic prints its message and fails the run instead of spinning forever.
#[cfg(feature = "qemu")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cortex_m_semihosting::hprintln!("panic: {}", info);
    halt()
}
