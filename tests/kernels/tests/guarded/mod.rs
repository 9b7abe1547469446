//! Buffers fenced by guard pages (the only `unsafe` of the test) and the check that runs
//! every entry point of a layer on them.

use gspc_runtime::check::{Checked, seed_for};
use gspc_runtime::rng::Rng;
use gspc_runtime::{Error, Layer, ParallelFn, RunFn, reference};
use std::io::Write;

/// Where the elements sit in their mapping.
#[derive(Clone, Copy, Debug)]
pub enum Place {
    /// The last element ends where the guard page after it starts: overruns fault.
    End,
    /// The first element starts where the guard page before it ends: underruns fault.
    Start,
}

/// `len` f32 in a private anonymous mapping `[guard page][data pages][guard page]`, both
/// guards `PROT_NONE`, the elements flush against one of them. Unmapped on drop.
pub struct Guarded {
    map: *mut libc::c_void,
    map_len: usize,
    page: usize,
    data: *mut f32,
    len: usize,
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a configuration value.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
}

impl Guarded {
    /// A buffer of `len` elements, each set to `fill`.
    pub fn new(len: usize, place: Place, fill: f32) -> Guarded {
        let page = page_size();
        let bytes = len * size_of::<f32>();
        let data_pages = bytes.div_ceil(page).max(1);
        let map_len = (data_pages + 2) * page;
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(
            map != libc::MAP_FAILED,
            "mmap of {map_len} bytes failed: {}",
            std::io::Error::last_os_error()
        );
        let base = map.cast::<u8>();
        let data_start = page;
        let data_end = page + data_pages * page;
        for guard in [0, data_end] {
            // SAFETY: `guard..guard + page` is a whole page inside the mapping made above.
            let r = unsafe { libc::mprotect(base.add(guard).cast(), page, libc::PROT_NONE) };
            assert_eq!(
                r,
                0,
                "mprotect of a guard page failed: {}",
                std::io::Error::last_os_error()
            );
        }
        let offset = match place {
            Place::End => data_end - bytes,
            Place::Start => data_start,
        };
        // SAFETY: `offset..offset + bytes` lies in the readable, writable data pages of
        // the mapping (offset >= data_start, offset + bytes <= data_end), and the offset is
        // a multiple of 4, so the pointer is aligned for f32.
        let data = unsafe { base.add(offset) }.cast::<f32>();
        let mut g = Guarded {
            map,
            map_len,
            page,
            data,
            len,
        };
        g.as_mut_slice().fill(fill);
        g
    }

    /// The elements.
    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: `data` points to `len` initialized (filled in `new`) f32 in the mapping,
        // which lives as long as `self`; no `&mut` to it exists while `&self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    /// The elements, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only reference. The
        // data pages are writable unless `freeze` was called, which consumes `self`.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }

    /// Makes the data pages read-only: a write to them faults from now on.
    pub fn freeze(self) -> Frozen {
        let data_len = self.map_len - 2 * self.page;
        // SAFETY: the data pages are whole pages inside the mapping; only `Frozen`'s
        // shared access (`as_slice`) follows.
        let r = unsafe {
            libc::mprotect(
                self.map.cast::<u8>().add(self.page).cast(),
                data_len,
                libc::PROT_READ,
            )
        };
        assert_eq!(
            r,
            0,
            "mprotect of the data failed: {}",
            std::io::Error::last_os_error()
        );
        Frozen(self)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no slice of it outlives `self`.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// A read-only [`Guarded`].
pub struct Frozen(Guarded);

impl Frozen {
    /// The elements.
    pub fn as_slice(&self) -> &[f32] {
        self.0.as_slice()
    }
}

fn trace(what: &str) {
    if std::env::var_os("GSPC_GUARD_TRACE").is_some() {
        // Written directly, not through the test harness's capture, so it is there when the
        // process dies of a fault.
        let _ = writeln!(std::io::stderr().lock(), "guard pages: {what}");
    }
}

/// Every entry point of `layer` on guarded buffers at `place`, against the reference.
pub fn check_layer(model: &str, layer: &Layer, place: Place) -> Result<Checked, String> {
    let info = &layer.info;
    let name = format!("{} [{place:?}, strategy {}]", info.name, layer.strategy);
    let mut rng = Rng::new(seed_for(model, info.name));
    let mut input = Guarded::new(layer.input_len, place, 0.0);
    let mut weights = Guarded::new(layer.weights_len, place, 0.0);
    let mut bias = Guarded::new(info.out_channels, place, 0.0);
    rng.fill(input.as_mut_slice());
    rng.fill(weights.as_mut_slice());
    rng.fill(bias.as_mut_slice());
    let (input, weights, bias) = (input.freeze(), weights.freeze(), bias.freeze());
    let bias = info.bias.then_some(bias.as_slice());

    let mut expected = vec![0.0f32; layer.output_len];
    reference::conv2d(
        info,
        input.as_slice(),
        weights.as_slice(),
        bias,
        &mut expected,
    )
    .map_err(|e| format!("{name}: reference: {e}"))?;
    let mut packed = Guarded::new(layer.packed_len, place, f32::NAN);
    trace(&format!("{model}::{name}: pack_weights"));
    (layer.pack_weights)(weights.as_slice(), bias, packed.as_mut_slice())
        .map_err(|e| format!("{name}: pack_weights: {e}"))?;
    let packed = packed.freeze();

    let run = |what: &str, f: RunFn| -> Result<bool, String> {
        let mut output = Guarded::new(layer.output_len, place, f32::NAN);
        let mut scratch = Guarded::new(layer.scratch_len, place, f32::NAN);
        trace(&format!("{model}::{name}: {what}"));
        match f(
            input.as_slice(),
            packed.as_slice(),
            output.as_mut_slice(),
            scratch.as_mut_slice(),
        ) {
            Ok(()) => {}
            Err(Error::Unsupported(_)) => return Ok(false),
            Err(e) => return Err(format!("{name} ({what}): {e}")),
        }
        reference::compare(info, &expected, output.as_slice())
            .map_err(|m| format!("{name} ({what}): {m}"))?;
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
    run("run, dispatching", layer.run)?;

    let split = |what: &str, f: ParallelFn, parts: usize| -> Result<(), String> {
        let mut output = Guarded::new(layer.output_len, place, f32::NAN);
        let mut scratch = Guarded::new(layer.scratch_len * parts, place, f32::NAN);
        trace(&format!("{model}::{name}: {what} {parts}"));
        f(
            input.as_slice(),
            packed.as_slice(),
            output.as_mut_slice(),
            scratch.as_mut_slice(),
            parts,
        )
        .map_err(|e| format!("{name} ({what}, {parts}): {e}"))?;
        reference::compare(info, &expected, output.as_slice())
            .map_err(|m| format!("{name} ({what}, {parts}): {m}"))
    };
    split("run_split", layer.run_split, 2)?;
    split("run_split", layer.run_split, 3)?;
    split("run_parallel", layer.run_parallel, 2)?;
    Ok(checked)
}
