//! Reading tensors (initializers, Constant values): dims and data, every length checked
//! against the dims before anything is allocated or indexed.

use super::onnx::{DATA_LOCATION_EXTERNAL, TensorProto, data_type};
use super::shape::{self, Dims};

/// The tensor's name for messages.
fn named(t: &TensorProto) -> String {
    if t.name.is_empty() {
        "the tensor".to_string()
    } else {
        format!("tensor \"{}\"", super::quote(&t.name))
    }
}

/// The dims of a tensor, checked (non-negative, within the limits).
pub(crate) fn dims(t: &TensorProto) -> Result<Dims, String> {
    let d: Dims = t
        .dims
        .iter()
        .map(|&x| shape::dim_from(x, 0, "dimension"))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", named(t)))?;
    shape::check(&d).map_err(|e| format!("{}: {e}", named(t)))?;
    Ok(d)
}

/// The element count, as a `usize`.
fn elements(t: &TensorProto) -> Result<usize, String> {
    let n = shape::product(&dims(t)?)?;
    usize::try_from(n).map_err(|_| format!("{} is too large for this machine", named(t)))
}

/// Refuses data stored in another file.
fn inline(t: &TensorProto) -> Result<(), String> {
    if t.data_location == DATA_LOCATION_EXTERNAL || !t.external_data.is_empty() {
        let location = t
            .external_data
            .iter()
            .find(|e| e.key == "location")
            .map(|e| format!(" (\"{}\")", super::quote(&e.value)))
            .unwrap_or_default();
        return Err(format!(
            "the data of {} is in an external file{location} that the importer did not read (it reads the weights and bias of the convs it imports and tensors of at most {} elements)",
            named(t),
            super::EXTERNAL_READ_ALWAYS
        ));
    }
    Ok(())
}

/// Fixed-width little-endian elements from `raw_data`, exactly `n` of them.
fn raw<const W: usize, T>(
    t: &TensorProto,
    n: usize,
    from: impl Fn([u8; W]) -> T,
) -> Result<Vec<T>, String> {
    let want = n.checked_mul(W);
    if want != Some(t.raw_data.len()) {
        return Err(format!(
            "{} has dims {} ({n} elements of {W} bytes) but {} bytes of raw_data",
            named(t),
            shape::show_i(&t.dims),
            t.raw_data.len()
        ));
    }
    Ok(t.raw_data
        .chunks_exact(W)
        .map(|c| {
            let mut b = [0u8; W];
            b.copy_from_slice(c);
            from(b)
        })
        .collect())
}

/// `field` holds exactly `n` elements.
fn typed<T: Copy, U>(
    t: &TensorProto,
    n: usize,
    field: &[T],
    what: &str,
    map: impl Fn(T) -> U,
) -> Result<Vec<U>, String> {
    if field.len() != n {
        return Err(format!(
            "{} has dims {} ({n} elements) but {} values in {what}",
            named(t),
            shape::show_i(&t.dims),
            field.len()
        ));
    }
    Ok(field.iter().map(|&x| map(x)).collect())
}

/// The elements as f32 (from FLOAT, or DOUBLE rounded), row-major.
pub(crate) fn floats(t: &TensorProto) -> Result<Vec<f32>, String> {
    inline(t)?;
    let n = elements(t)?;
    match t.data_type {
        data_type::FLOAT if !t.raw_data.is_empty() || t.float_data.is_empty() => {
            raw(t, n, f32::from_le_bytes)
        }
        data_type::FLOAT => typed(t, n, &t.float_data, "float_data", |x| x),
        data_type::DOUBLE if !t.raw_data.is_empty() || t.double_data.is_empty() => {
            raw(t, n, |b| f64::from_le_bytes(b) as f32)
        }
        data_type::DOUBLE => typed(t, n, &t.double_data, "double_data", |x| x as f32),
        other => Err(format!(
            "{} has data type {}; the importer reads FLOAT (and DOUBLE) tensors",
            named(t),
            data_type::name(other)
        )),
    }
}

/// The elements as i64 (from INT64 or INT32), at most `max` of them.
pub(crate) fn ints(t: &TensorProto, max: usize) -> Result<Vec<i64>, String> {
    inline(t)?;
    let n = elements(t)?;
    if n > max {
        return Err(format!(
            "{} has {n} elements, more than the {max} expected here",
            named(t)
        ));
    }
    match t.data_type {
        data_type::INT64 if !t.raw_data.is_empty() || t.int64_data.is_empty() => {
            raw(t, n, i64::from_le_bytes)
        }
        data_type::INT64 => typed(t, n, &t.int64_data, "int64_data", |x| x),
        data_type::INT32 if !t.raw_data.is_empty() || t.int32_data.is_empty() => {
            raw(t, n, |b| i64::from(i32::from_le_bytes(b)))
        }
        data_type::INT32 => typed(t, n, &t.int32_data, "int32_data", i64::from),
        other => Err(format!(
            "{} has data type {}; integers here must be INT64 (or INT32)",
            named(t),
            data_type::name(other)
        )),
    }
}

/// The elements of an INT8, UINT8 or INT32 tensor (quantized weights, zero points, an int32
/// bias) as i32, with the tensor's data type.
pub(crate) fn quantized(t: &TensorProto) -> Result<(i32, Vec<i32>), String> {
    inline(t)?;
    let n = elements(t)?;
    let raw_data = !t.raw_data.is_empty() || t.int32_data.is_empty();
    let v = match t.data_type {
        data_type::INT8 if raw_data => raw(t, n, |b: [u8; 1]| i32::from(b[0] as i8))?,
        data_type::UINT8 if raw_data => raw(t, n, |b: [u8; 1]| i32::from(b[0]))?,
        data_type::INT32 if raw_data => raw(t, n, i32::from_le_bytes)?,
        data_type::INT8 | data_type::UINT8 | data_type::INT32 => {
            typed(t, n, &t.int32_data, "int32_data", |x| x)?
        }
        other => {
            return Err(format!(
                "{} has data type {}; quantized values here are INT8, UINT8 or INT32",
                named(t),
                data_type::name(other)
            ));
        }
    };
    let range = match t.data_type {
        data_type::INT8 => -128..=127,
        data_type::UINT8 => 0..=255,
        _ => i32::MIN..=i32::MAX,
    };
    if let Some(i) = v.iter().position(|x| !range.contains(x)) {
        return Err(format!(
            "{}: value {} at flat index {i} is out of range for {}",
            named(t),
            v[i],
            data_type::name(t.data_type)
        ));
    }
    Ok((t.data_type, v))
}

/// A single float (any shape with one element).
pub(crate) fn scalar(t: &TensorProto) -> Result<f32, String> {
    let v = floats(t)?;
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(format!(
            "{} has {} elements, expected one",
            named(t),
            v.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(dims: &[i64], data_type: i32) -> TensorProto {
        TensorProto {
            name: "w".to_string(),
            dims: dims.to_vec(),
            data_type,
            ..Default::default()
        }
    }

    #[test]
    fn raw_and_typed_data() {
        let mut a = t(&[2], data_type::FLOAT);
        a.raw_data = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(floats(&a), Ok(vec![1.5, -2.0]));
        let mut b = t(&[2], data_type::FLOAT);
        b.float_data = vec![3.0, 4.0];
        assert_eq!(floats(&b), Ok(vec![3.0, 4.0]));
        let mut c = t(&[3], data_type::INT64);
        c.int64_data = vec![0, -1, 7];
        assert_eq!(ints(&c, 8), Ok(vec![0, -1, 7]));
        let mut d = t(&[1], data_type::INT32);
        d.raw_data = (-5i32).to_le_bytes().to_vec();
        assert_eq!(ints(&d, 8), Ok(vec![-5]));
        let mut e = t(&[], data_type::DOUBLE);
        e.double_data = vec![6.0];
        assert_eq!(scalar(&e), Ok(6.0));
        assert_eq!(floats(&t(&[0, 3], data_type::FLOAT)), Ok(vec![]));
    }

    #[test]
    fn lengths_are_checked_before_use() {
        let mut a = t(&[2, 3], data_type::FLOAT);
        a.raw_data = vec![0; 23];
        assert_eq!(
            floats(&a),
            Err(
                "tensor \"w\" has dims [2, 3] (6 elements of 4 bytes) but 23 bytes of raw_data"
                    .to_string()
            )
        );
        let mut b = t(&[4], data_type::FLOAT);
        b.float_data = vec![1.0];
        assert!(floats(&b).unwrap_err().contains("1 values in float_data"));
        assert!(floats(&t(&[-1], data_type::FLOAT)).is_err());
        assert!(floats(&t(&[1 << 40, 1 << 40], data_type::FLOAT)).is_err());
        assert!(
            floats(&t(&[2], data_type::FLOAT16))
                .unwrap_err()
                .contains("FLOAT16")
        );
        assert!(
            ints(&t(&[100], data_type::INT64), 8)
                .unwrap_err()
                .contains("more than the 8")
        );
        let mut e = t(&[2], data_type::FLOAT);
        e.data_location = DATA_LOCATION_EXTERNAL;
        assert!(floats(&e).unwrap_err().contains("external file"));
    }
}
