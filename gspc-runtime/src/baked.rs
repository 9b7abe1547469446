//! Weights packed at generation time and baked into the binary.
//!
//! `gspc-codegen` writes a model's packed weights as one little-endian `f32` file next to
//! the generated source, each layer's part starting on a 64-byte boundary, and the
//! generated code includes it with `include_bytes!` into an [`Aligned`] static. [`f32s`]
//! views one layer's part as the `&[f32; PACKED_LEN]` its kernels take. Both run at compile
//! time, so the weights stay in read-only memory (flash on a microcontroller) and nothing
//! is packed or copied at run time.

/// Bytes aligned to 64 (a cache line, and the widest vector the kernels load).
#[repr(C, align(64))]
pub struct Aligned<T: ?Sized>(pub T);

/// Views `N` little-endian `f32`s at `offset` of a baked weight file.
///
/// Evaluated in a `static` initializer: an offset that is not a multiple of 64 or a part
/// that does not fit stops the build.
pub const fn f32s<const B: usize, const N: usize>(
    bytes: &'static Aligned<[u8; B]>,
    offset: usize,
) -> &'static [f32; N] {
    const {
        assert!(
            cfg!(target_endian = "little"),
            "baked gspc weights are little-endian f32; this target is big-endian"
        )
    };
    assert!(
        offset.is_multiple_of(64),
        "baked weights: offset not 64-byte aligned"
    );
    assert!(
        offset <= B && N <= (B - offset) / 4,
        "baked weights: the layer's part does not fit the file"
    );
    // SAFETY: `bytes` is 64-byte aligned and `offset` is a multiple of 64, so the pointer is
    // aligned for f32; the N * 4 bytes from `offset` lie inside the array (checked above);
    // every bit pattern is a valid f32 and the target is little-endian, like the file; the
    // data is immutable and 'static, like the returned reference.
    unsafe { &*(bytes.0.as_ptr().add(offset) as *const [f32; N]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BYTES: Aligned<[u8; 128]> = {
        let mut b = [0u8; 128];
        let mut i = 0;
        while i < 32 {
            let v = (i as f32).to_le_bytes();
            b[4 * i] = v[0];
            b[4 * i + 1] = v[1];
            b[4 * i + 2] = v[2];
            b[4 * i + 3] = v[3];
            i += 1;
        }
        Aligned(b)
    };
    static FIRST: &[f32; 3] = f32s::<128, 3>(&BYTES, 0);
    static SECOND: &[f32; 16] = f32s::<128, 16>(&BYTES, 64);

    #[test]
    fn views_the_parts() {
        assert_eq!(FIRST, &[0.0, 1.0, 2.0]);
        assert_eq!(SECOND[0], 16.0);
        assert_eq!(SECOND[15], 31.0);
        assert_eq!(SECOND.as_ptr() as usize % 64, 0);
    }
}
