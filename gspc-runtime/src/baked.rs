//! Weights packed at generation time and baked into the binary.
//!
//! `gspc-codegen` writes a model's packed weights as one little-endian file next to the
//! generated source (`f32` values for f32 layers, `i32` words for int8 layers), each
//! layer's part starting on a 64-byte boundary, and the generated code includes it with
//! `include_bytes!` into an [`Aligned`] static. [`f32s`] and [`i32s`] view one layer's
//! part as the `&[f32; PACKED_LEN]` or `&[i32; PACKED_LEN]` its kernels take. Both run at compile
//! time, so the weights stay in read-only memory (flash on a microcontroller) and nothing
//! is packed or copied at run time.

/// Bytes aligned to 64 (a cache line, and the widest vector the kernels load).
#[repr(C, align(64))]
pub struct Aligned<T: ?Sized>(pub T);

/// A 4-byte value every bit pattern of which is valid: what a baked part holds.
///
/// # Safety
///
/// Implementors are 4 bytes with an alignment of at most 4, and every bit pattern is a
/// valid value.
pub unsafe trait Word: Copy {}
// SAFETY: f32 is 4 bytes, aligned to 4; every bit pattern is an f32 (NaNs included).
unsafe impl Word for f32 {}
// SAFETY: i32 is 4 bytes, aligned to 4; every bit pattern is an i32.
unsafe impl Word for i32 {}

/// Views `N` little-endian words at `offset` of a baked weight file.
///
/// Evaluated in a `static` initializer: an offset that is not a multiple of 64 or a part
/// that does not fit stops the build.
const fn words<T: Word, const B: usize, const N: usize>(
    bytes: &'static Aligned<[u8; B]>,
    offset: usize,
) -> &'static [T; N] {
    const {
        assert!(
            cfg!(target_endian = "little"),
            "baked gspc weights are little-endian; this target is big-endian"
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
    // aligned for T (at most 4, `Word`); the N * 4 bytes from `offset` lie inside the array
    // (checked above); every bit pattern is a valid T (`Word`) and the target is
    // little-endian, like the file; the data is immutable and 'static, like the returned
    // reference.
    unsafe { &*(bytes.0.as_ptr().add(offset) as *const [T; N]) }
}

/// Views `N` little-endian `f32`s at `offset` of a baked weight file (an f32 layer's
/// part); a bad offset or length stops the build.
pub const fn f32s<const B: usize, const N: usize>(
    bytes: &'static Aligned<[u8; B]>,
    offset: usize,
) -> &'static [f32; N] {
    words::<f32, B, N>(bytes, offset)
}

/// Views `N` little-endian `i32` words at `offset` of a baked weight file (an int8
/// layer's part); a bad offset or length stops the build.
pub const fn i32s<const B: usize, const N: usize>(
    bytes: &'static Aligned<[u8; B]>,
    offset: usize,
) -> &'static [i32; N] {
    words::<i32, B, N>(bytes, offset)
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
    static WORDS: &[i32; 2] = i32s::<128, 2>(&BYTES, 64);

    #[test]
    fn views_the_parts() {
        assert_eq!(FIRST, &[0.0, 1.0, 2.0]);
        assert_eq!(SECOND[0], 16.0);
        assert_eq!(SECOND[15], 31.0);
        assert_eq!(SECOND.as_ptr() as usize % 64, 0);
        assert_eq!(WORDS[0], 16.0f32.to_bits() as i32);
    }
}
