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
//! layer against the naive reference, prints the results by semihosting and exits 0 (all
//! match) or 1.
//!
//! With the `int8` feature the net is `spec/tiny_net_int8.json`, the same layers in int8
//! ("fixed" requantization: integer arithmetic only), checked bit for bit against the
//! integer reference: int8 activations, int32 packed weights and scratch.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use cortex_m_rt::entry;
use gspc_runtime::{Error, rng::Rng};
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

/// The net's element types: activations, and packed weights and scratch.
#[cfg(not(feature = "int8"))]
mod elements {
    pub use super::models::tiny_net as net;
    /// A layer of the net.
    pub type Layer = gspc_runtime::Layer;
    /// Activation values.
    pub type Act = f32;
    /// Packed weights and scratch.
    pub type Word = f32;
    /// The net's layers.
    pub const LAYERS: &[Layer] = net::LAYERS;
    /// An activation as f32 (for the printed checksum).
    #[cfg(feature = "qemu")]
    pub fn to_f32(v: Act) -> f32 {
        v
    }
}

/// The net's element types: activations, and packed weights and scratch.
#[cfg(feature = "int8")]
mod elements {
    pub use super::models::tiny_net_int8 as net;
    /// A layer of the net.
    pub type Layer = gspc_runtime::qlayer::QLayer;
    /// Activation values.
    pub type Act = i8;
    /// Packed weights and scratch.
    pub type Word = i32;
    /// The net's layers.
    pub const LAYERS: &[Layer] = net::QLAYERS;
    /// An activation as f32 (for the printed checksum).
    #[cfg(feature = "qemu")]
    pub fn to_f32(v: Act) -> f32 {
        f32::from(v)
    }
}

use elements::{Act, LAYERS, Layer, Word, net};

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
    while i < LAYERS.len() {
        m = max(m, LAYERS[i].weights_len);
        i += 1;
    }
    m
};

/// The most output channels of any layer (for the reference check under QEMU).
#[cfg(feature = "qemu")]
const MAX_OUT_CHANNELS: usize = {
    let mut m = 0;
    let mut i = 0;
    while i < LAYERS.len() {
        m = max(m, LAYERS[i].info.out_channels);
        i += 1;
    }
    m
};

// The layers form a chain (each output is the next input), and every layer has baked
// weights: checked when this crate compiles.
const _: () = {
    let mut i = 0;
    while i < LAYERS.len() {
        if i > 0 {
            assert!(
                LAYERS[i - 1].output_len == LAYERS[i].input_len,
                "tiny_net: a layer's output is not the next layer's input"
            );
        }
        assert!(LAYERS[i].baked.is_some(), "tiny_net: weights not baked");
        i += 1;
    }
};

/// Input of the net (the first layer's input).
const INPUT_LEN: usize = LAYERS[0].input_len;
/// Output of the net (the last layer's output).
const OUTPUT_LEN: usize = LAYERS[LAYERS.len() - 1].output_len;

/// All the RAM the net needs: two activation buffers of `MAX_ACTIVATION_LEN` values (f32,
/// or int8 with the `int8` feature) and `MAX_SCRATCH_LEN` 4-byte words of scratch (the
/// weights, `4 * TOTAL_PACKED_LEN` bytes, are in flash).
struct Net {
    /// Activations: the current layer reads one and writes the other.
    ping: [Act; ACT_LEN],
    pong: [Act; ACT_LEN],
    /// One workspace shared by every layer.
    scratch: [Word; net::MAX_SCRATCH_LEN],
}

impl Net {
    /// All zero, so that a `static` of it goes to `.bss` (no flash image).
    const ZERO: Net = Net {
        ping: [0 as Act; ACT_LEN],
        pong: [0 as Act; ACT_LEN],
        scratch: [0 as Word; net::MAX_SCRATCH_LEN],
    };
}

/// Bytes of RAM the net takes.
pub const NET_BYTES: usize = core::mem::size_of::<Net>();

/// The weights and bias of layer `index`, made up again as the build script made up the
/// ones it baked in (for the reference check under QEMU).
#[cfg(all(feature = "qemu", not(feature = "int8")))]
fn layer_weights(index: usize, layer: &Layer, weights: &mut [f32], bias: &mut [f32]) {
    let mut rng = Rng::new(0x5EED_0000 + index as u64);
    rng.fill(&mut weights[..layer.weights_len]);
    rng.fill(&mut bias[..layer.info.out_channels]);
}

/// The int8 twin of the f32 `layer_weights`: weights in [-127, 127], bias in [-512, 511].
#[cfg(all(feature = "qemu", feature = "int8"))]
fn layer_weights(index: usize, layer: &Layer, weights: &mut [i8], bias: &mut [i32]) {
    let mut rng = Rng::new(0x5EED_0000 + index as u64);
    for w in &mut weights[..layer.weights_len] {
        *w = ((rng.next_u64() % 255) as i32 - 127) as i8;
    }
    for b in &mut bias[..layer.info.out_channels] {
        *b = (rng.next_u64() % 1024) as i32 - 512;
    }
}

/// Checks one layer's output against the reference (f32: within the reference's
/// tolerance).
#[cfg(all(feature = "qemu", not(feature = "int8")))]
fn check(
    layer: &Layer,
    input: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    output: &[f32],
    expected: &mut [f32],
) -> Result<(), ()> {
    use gspc_runtime::reference;
    let info = &layer.info;
    reference::conv2d(info, input, weights, bias, expected).map_err(|_| ())?;
    reference::compare(info, expected, output).map_err(|m| {
        cortex_m_semihosting::hprintln!("  {}: MISMATCH {}", info.name, m);
    })
}

/// Checks one int8 layer's output against the integer reference, bit for bit.
#[cfg(all(feature = "qemu", feature = "int8"))]
fn check(
    layer: &Layer,
    input: &[i8],
    weights: &[i8],
    bias: Option<&[i32]>,
    output: &[i8],
    expected: &mut [i8],
) -> Result<(), ()> {
    use gspc_runtime::quant::{self, ChannelScale};
    let info = &layer.info;
    let mut channels = [ChannelScale::Fp32(0.0); MAX_OUT_CHANNELS];
    let rq = layer
        .quant
        .derive(info.activation, &mut channels[..info.out_channels])
        .map_err(|_| ())?;
    quant::conv2d(info, &rq, input, weights, bias, expected).map_err(|_| ())?;
    match expected.iter().zip(output).position(|(e, o)| e != o) {
        None => Ok(()),
        Some(i) => {
            cortex_m_semihosting::hprintln!(
                "  {}: MISMATCH at {}: {} (reference {})",
                info.name,
                i,
                output[i],
                expected[i]
            );
            Err(())
        }
    }
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
fn prefix<'a, T>(buffer: &'static str, buf: &'a [T], len: usize) -> Result<&'a [T], Error> {
    buf.get(..len).ok_or(too_short(buffer, len, buf.len()))
}

/// Mutable twin of [`prefix`].
fn prefix_mut<'a, T>(
    buffer: &'static str,
    buf: &'a mut [T],
    len: usize,
) -> Result<&'a mut [T], Error> {
    let actual = buf.len();
    buf.get_mut(..len).ok_or(too_short(buffer, len, actual))
}

/// One inference: the input is in `ping`; every layer runs, in order. `after` sees each
/// layer's input and output. Returns the net's output.
fn infer(
    n: &mut Net,
    mut after: impl FnMut(usize, &Layer, &[Act], &[Act]),
) -> Result<&[Act], Error> {
    let (mut src, mut dst) = (&mut n.ping, &mut n.pong);
    // Through the layer table, as an app that loads a model description would: without the
    // black box the compiler would unroll this loop and inline every layer into `main`, and
    // scripts/firmware-size.sh could not tell the layers' code apart.
    for (i, layer) in core::hint::black_box(LAYERS).iter().enumerate() {
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
#[cfg(not(feature = "int8"))]
fn read_input(frame: u64, input: &mut [f32]) {
    Rng::new(frame).fill(input);
}

/// A stand-in for a sensor frame, int8.
#[cfg(feature = "int8")]
fn read_input(frame: u64, input: &mut [i8]) {
    let mut rng = Rng::new(frame);
    for x in input {
        *x = rng.next_u64() as u8 as i8;
    }
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

    // The reference's output and the layer's own weights and bias, unpacked again (on the
    // stack: QEMU's board has 4 MiB of RAM).
    let mut expected = [0 as Act; ACT_LEN];
    let mut weights = [0 as Act; MAX_WEIGHTS_LEN];
    let mut bias = [0 as Word; MAX_OUT_CHANNELS];
    let mut failures = 0usize;

    hprintln!(
        "gspc firmware example: model {} ({} layers), {} bytes of RAM for the net, {} bytes of baked weights in flash",
        net::NAME,
        LAYERS.len(),
        NET_BYTES,
        4 * net::TOTAL_PACKED_LEN
    );
    read_input(0, &mut n.ping[..INPUT_LEN]);
    let result = infer(n, |i, layer, input, output| {
        layer_weights(i, layer, &mut weights, &mut bias);
        let info = &layer.info;
        let b = info.bias.then_some(&bias[..info.out_channels]);
        let checked = check(
            layer,
            input,
            &weights[..layer.weights_len],
            b,
            output,
            &mut expected[..layer.output_len],
        );
        match checked {
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
            let sum = out.iter().fold(0.0f32, |s, &v| s + elements::to_f32(v));
            hprintln!("output: {} values, sum {}", out.len(), sum);
        }
        Err(e) => {
            hprintln!("inference failed: {}", e);
            failures += 1;
        }
    }
    if failures == 0 {
        hprintln!("all {} layers match the reference", LAYERS.len());
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
