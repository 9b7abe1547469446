//! Shape rules of the ONNX operators the importer infers through: pure functions on
//! dimension lists, every product and sum checked, every failure a message.

/// A static shape.
pub(crate) type Dims = Vec<u64>;

/// Largest rank the importer handles.
pub(crate) const MAX_RANK: usize = 16;
/// Largest single dimension.
pub(crate) const MAX_DIM: u64 = 1 << 32;
/// Largest element count of one tensor.
pub(crate) const MAX_ELEMENTS: u64 = 1 << 48;

/// `[a, b, c]`, for messages.
pub(crate) fn show(d: &[u64]) -> String {
    let parts: Vec<String> = d.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// `[a, b, c]` of signed numbers, for messages.
pub(crate) fn show_i(d: &[i64]) -> String {
    let parts: Vec<String> = d.iter().map(i64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// The product of `d`, checked.
pub(crate) fn product(d: &[u64]) -> Result<u64, String> {
    d.iter().try_fold(1u64, |acc, &x| {
        acc.checked_mul(x)
            .filter(|&p| p <= MAX_ELEMENTS)
            .ok_or_else(|| format!("the shape {} has too many elements", show(d)))
    })
}

/// Checks that a shape is within the importer's limits.
pub(crate) fn check(d: &[u64]) -> Result<(), String> {
    if d.len() > MAX_RANK {
        return Err(format!("rank {} is above the limit of {MAX_RANK}", d.len()));
    }
    if let Some(x) = d.iter().find(|&&x| x > MAX_DIM) {
        return Err(format!(
            "dimension {x} of {} is above the limit of {MAX_DIM}",
            show(d)
        ));
    }
    product(d)?;
    Ok(())
}

/// A dimension from a signed attribute value in `min..=MAX_DIM`.
pub(crate) fn dim_from(v: i64, min: u64, what: &str) -> Result<u64, String> {
    u64::try_from(v)
        .ok()
        .filter(|&x| x >= min && x <= MAX_DIM)
        .ok_or_else(|| format!("{what} {v} is out of range ({min} to {MAX_DIM})"))
}

/// An axis in `-rank..rank` made non-negative.
pub(crate) fn axis(a: i64, rank: usize, what: &str) -> Result<usize, String> {
    let r = i64::try_from(rank).unwrap_or(i64::MAX);
    let n = if a < 0 { a.checked_add(r) } else { Some(a) };
    match n {
        Some(n) if (0..r).contains(&n) => usize::try_from(n).map_err(|e| e.to_string()),
        _ => Err(format!(
            "{what} {a} is out of range for rank {rank} ({} to {})",
            -r,
            r - 1
        )),
    }
}

/// Multidirectional (numpy) broadcasting of every shape in `shapes`.
pub(crate) fn broadcast(shapes: &[&[u64]]) -> Result<Dims, String> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1u64; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == d || d == 1 {
                continue;
            }
            if *o == 1 {
                *o = d;
            } else {
                let all: Vec<String> = shapes.iter().map(|s| show(s)).collect();
                return Err(format!(
                    "the shapes {} do not broadcast (dimension {} differs and neither is 1)",
                    all.join(" and "),
                    off + i
                ));
            }
        }
    }
    Ok(out)
}

/// How a sliding window (Conv, pools) pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AutoPad {
    /// Explicit `pads`.
    NotSet,
    /// No padding.
    Valid,
    /// `ceil(in / stride)` outputs, the odd padding at the end.
    SameUpper,
    /// `ceil(in / stride)` outputs, the odd padding at the start.
    SameLower,
}

impl AutoPad {
    /// Parses the `auto_pad` attribute.
    pub(crate) fn parse(s: &str) -> Result<AutoPad, String> {
        match s {
            "" | "NOTSET" => Ok(AutoPad::NotSet),
            "VALID" => Ok(AutoPad::Valid),
            "SAME_UPPER" => Ok(AutoPad::SameUpper),
            "SAME_LOWER" => Ok(AutoPad::SameLower),
            other => Err(format!(
                "auto_pad {:?} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER",
                other.escape_debug().to_string()
            )),
        }
    }
}

/// A sliding window over the spatial dimensions, with the padding resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// Kernel size per spatial dimension.
    pub kernel: Vec<u64>,
    /// Strides.
    pub strides: Vec<u64>,
    /// Dilations.
    pub dilations: Vec<u64>,
    /// Padding before each spatial dimension.
    pub begin: Vec<u64>,
    /// Padding after each spatial dimension.
    pub end: Vec<u64>,
}

/// The window attributes as a node has them (`None` = absent).
pub(crate) struct WindowAttrs<'a> {
    pub kernel: &'a [u64],
    pub strides: Option<&'a [i64]>,
    pub dilations: Option<&'a [i64]>,
    pub pads: Option<&'a [i64]>,
    pub auto_pad: AutoPad,
}

impl Window {
    /// Resolves the window over the spatial input `spatial` (padding for SAME_* computed).
    pub(crate) fn resolve(spatial: &[u64], a: &WindowAttrs) -> Result<Window, String> {
        let n = spatial.len();
        if a.kernel.len() != n {
            return Err(format!(
                "the kernel {} has {} dimensions, the input has {n} spatial dimensions",
                show(a.kernel),
                a.kernel.len()
            ));
        }
        if let Some(k) = a.kernel.iter().find(|&&k| k == 0 || k > MAX_DIM) {
            return Err(format!("kernel size {k} is out of range"));
        }
        let list = |v: Option<&[i64]>, what: &str, len: usize| -> Result<Vec<u64>, String> {
            match v {
                None => Ok(vec![1; len]),
                Some(v) if v.len() != len => Err(format!(
                    "{what} {} has {} values, expected {len}",
                    show_i(v),
                    v.len()
                )),
                Some(v) => v.iter().map(|&x| dim_from(x, 1, what)).collect(),
            }
        };
        let strides = list(a.strides, "strides", n)?;
        let dilations = list(a.dilations, "dilations", n)?;
        let extent = |i: usize| -> Result<u64, String> {
            dilations[i]
                .checked_mul(a.kernel[i] - 1)
                .and_then(|x| x.checked_add(1))
                .ok_or_else(|| "the dilated kernel is too large".to_string())
        };
        let (begin, end) = match a.auto_pad {
            AutoPad::NotSet => match a.pads {
                None => (vec![0; n], vec![0; n]),
                Some(p) if p.len() != 2 * n => {
                    return Err(format!(
                        "pads {} has {} values, expected {} (begin and end of each spatial dimension)",
                        show_i(p),
                        p.len(),
                        2 * n
                    ));
                }
                Some(p) => {
                    let p: Vec<u64> = p
                        .iter()
                        .map(|&x| dim_from(x, 0, "pad"))
                        .collect::<Result<_, _>>()?;
                    (p[..n].to_vec(), p[n..].to_vec())
                }
            },
            AutoPad::Valid => (vec![0; n], vec![0; n]),
            AutoPad::SameUpper | AutoPad::SameLower => {
                let (mut b, mut e) = (vec![0; n], vec![0; n]);
                for i in 0..n {
                    let out = spatial[i].div_ceil(strides[i]);
                    let need = out
                        .saturating_sub(1)
                        .checked_mul(strides[i])
                        .and_then(|x| x.checked_add(extent(i).ok()?))
                        .ok_or_else(|| "the window is too large".to_string())?;
                    let total = need.saturating_sub(spatial[i]);
                    let small = total / 2;
                    if a.auto_pad == AutoPad::SameUpper {
                        (b[i], e[i]) = (small, total - small);
                    } else {
                        (b[i], e[i]) = (total - small, small);
                    }
                }
                (b, e)
            }
        };
        for i in 0..n {
            extent(i)?;
        }
        Ok(Window {
            kernel: a.kernel.to_vec(),
            strides,
            dilations,
            begin,
            end,
        })
    }

    /// Output spatial size: floor (Conv, pools) or ceil (pools with `ceil_mode`), with
    /// ONNX Runtime's and PyTorch's rule that the last window starts inside the input or
    /// its leading padding.
    pub(crate) fn output(&self, spatial: &[u64], ceil_mode: bool) -> Result<Dims, String> {
        let mut out = Vec::with_capacity(spatial.len());
        for (i, &x) in spatial.iter().enumerate() {
            let padded = x
                .checked_add(self.begin[i])
                .and_then(|v| v.checked_add(self.end[i]))
                .ok_or_else(|| "the padded input is too large".to_string())?;
            let extent = self.dilations[i] * (self.kernel[i] - 1) + 1;
            if padded < extent {
                return Err(format!(
                    "the window of extent {extent} (kernel {}, dilation {}) is larger than the padded input {padded} = {} + {} + {} on spatial dimension {i}",
                    self.kernel[i], self.dilations[i], x, self.begin[i], self.end[i]
                ));
            }
            let span = padded - extent;
            let s = self.strides[i];
            let mut o = if ceil_mode {
                span.div_ceil(s) + 1
            } else {
                span / s + 1
            };
            if ceil_mode && (o - 1) * s >= x + self.begin[i] {
                o -= 1;
            }
            out.push(o);
        }
        Ok(out)
    }
}

/// `[N, C, spatial...]` split, for Conv and pools.
pub(crate) fn batch_channels_spatial(x: &[u64]) -> Result<(u64, u64, &[u64]), String> {
    match x {
        [n, c, rest @ ..] if !rest.is_empty() => Ok((*n, *c, rest)),
        _ => Err(format!(
            "the input shape {} is not [N, C, spatial...] (rank 3 or more)",
            show(x)
        )),
    }
}

/// Conv: `x` `[N, C, spatial...]`, `w` `[M, C / group, kernel...]`.
pub(crate) fn conv(
    x: &[u64],
    w: &[u64],
    group: u64,
    a: &WindowAttrs,
) -> Result<(Dims, Window), String> {
    let (n, c, spatial) = batch_channels_spatial(x)?;
    if w.len() != x.len() {
        return Err(format!(
            "the weight shape {} has rank {}, the input {} has rank {}",
            show(w),
            w.len(),
            show(x),
            x.len()
        ));
    }
    let m = w[0];
    if group == 0 || c.checked_rem(group) != Some(0) || m.checked_rem(group) != Some(0) {
        return Err(format!(
            "group {group} does not divide the input channels {c} and the output channels {m}"
        ));
    }
    if w[1] != c / group {
        return Err(format!(
            "the weights {} have {} input channels per group, the input {} has {c} channels in {group} groups ({} per group)",
            show(w),
            w[1],
            show(x),
            c / group
        ));
    }
    if a.kernel != &w[2..] {
        return Err(format!(
            "kernel_shape {} differs from the weights' kernel {}",
            show(a.kernel),
            show(&w[2..])
        ));
    }
    let win = Window::resolve(spatial, a)?;
    let mut out = vec![n, m];
    out.extend(win.output(spatial, false)?);
    Ok((out, win))
}

/// MaxPool / AveragePool / LpPool.
pub(crate) fn pool(x: &[u64], a: &WindowAttrs, ceil_mode: bool) -> Result<Dims, String> {
    let (n, c, spatial) = batch_channels_spatial(x)?;
    let win = Window::resolve(spatial, a)?;
    let mut out = vec![n, c];
    out.extend(win.output(spatial, ceil_mode)?);
    Ok(out)
}

/// GlobalAveragePool / GlobalMaxPool: `[N, C, 1, ...]`.
pub(crate) fn global_pool(x: &[u64]) -> Result<Dims, String> {
    let (n, c, spatial) = batch_channels_spatial(x)?;
    let mut out = vec![n, c];
    out.extend(spatial.iter().map(|_| 1));
    Ok(out)
}

/// Concat along `axis`.
pub(crate) fn concat(shapes: &[&[u64]], ax: i64) -> Result<Dims, String> {
    let first = shapes
        .first()
        .ok_or_else(|| "Concat has no inputs".to_string())?;
    let a = axis(ax, first.len(), "axis")?;
    let mut out = first.to_vec();
    for s in &shapes[1..] {
        let same_rest = s.len() == first.len()
            && s.iter()
                .zip(first.iter())
                .enumerate()
                .all(|(i, (x, y))| i == a || x == y);
        if !same_rest {
            return Err(format!(
                "the inputs {} and {} differ outside the axis {a}",
                show(first),
                show(s)
            ));
        }
        out[a] = out[a]
            .checked_add(s[a])
            .ok_or_else(|| "the concatenation is too large".to_string())?;
    }
    Ok(out)
}

/// Flatten at `axis` into 2-D.
pub(crate) fn flatten(x: &[u64], ax: i64) -> Result<Dims, String> {
    let r = i64::try_from(x.len()).unwrap_or(i64::MAX);
    let a = if ax < 0 { ax.checked_add(r) } else { Some(ax) };
    let a = match a {
        Some(a) if (0..=r).contains(&a) => usize::try_from(a).unwrap_or(0),
        _ => {
            return Err(format!(
                "axis {ax} is out of range for rank {} ({} to {})",
                x.len(),
                -r,
                r
            ));
        }
    };
    Ok(vec![product(&x[..a])?, product(&x[a..])?])
}

/// Gemm: `A` (`[M, K]`, transposed with `trans_a`) times `B` (`[K, N]`, or `[N, K]` with
/// `trans_b`).
pub(crate) fn gemm(a: &[u64], b: &[u64], trans_a: bool, trans_b: bool) -> Result<Dims, String> {
    let (&[a0, a1], &[b0, b1]) = (a, b) else {
        return Err(format!(
            "Gemm needs 2-D inputs, got {} and {}",
            show(a),
            show(b)
        ));
    };
    let (m, ka) = if trans_a { (a1, a0) } else { (a0, a1) };
    let (kb, n) = if trans_b { (b1, b0) } else { (b0, b1) };
    if ka != kb {
        return Err(format!(
            "the inner dimensions differ: A {} (transA {}) and B {} (transB {})",
            show(a),
            u8::from(trans_a),
            show(b),
            u8::from(trans_b)
        ));
    }
    Ok(vec![m, n])
}

/// MatMul with numpy semantics (1-D operands promoted, batch dimensions broadcast).
pub(crate) fn matmul(a: &[u64], b: &[u64]) -> Result<Dims, String> {
    if a.is_empty() || b.is_empty() {
        return Err("MatMul needs inputs of rank 1 or more".to_string());
    }
    let a2: Dims = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2: Dims = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    let (ra, rb) = (a2.len(), b2.len());
    let (m, ka) = (a2[ra - 2], a2[ra - 1]);
    let (kb, n) = (b2[rb - 2], b2[rb - 1]);
    if ka != kb {
        return Err(format!(
            "the inner dimensions differ: {} and {}",
            show(a),
            show(b)
        ));
    }
    let mut out = broadcast(&[&a2[..ra - 2], &b2[..rb - 2]])?;
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(out)
}

/// Reshape to `target` (0 copies the input's dimension unless `allow_zero`, one -1 is
/// inferred).
pub(crate) fn reshape(x: &[u64], target: &[i64], allow_zero: bool) -> Result<Dims, String> {
    if target.len() > MAX_RANK {
        return Err(format!(
            "the target shape has {} dimensions, more than the limit of {MAX_RANK}",
            target.len()
        ));
    }
    let total = product(x)?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_some() => {
                return Err(format!(
                    "the target shape {} has more than one -1",
                    show_i(target)
                ));
            }
            -1 => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allow_zero => match x.get(i) {
                Some(&d) => out.push(d),
                None => {
                    return Err(format!(
                        "the target shape {} copies dimension {i} (0) of the input {}, which has rank {}",
                        show_i(target),
                        show(x),
                        x.len()
                    ));
                }
            },
            t => out.push(dim_from(t, 0, "target dimension")?),
        }
    }
    let known = product(&out)?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return Err(format!(
                "cannot infer the -1 of the target shape {}: the input {} has {total} elements, not a multiple of {known}",
                show_i(target),
                show(x)
            ));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(format!(
            "the target shape {} has {known} elements, the input {} has {total}",
            show_i(target),
            show(x)
        ));
    }
    Ok(out)
}

/// Transpose by `perm` (default: reversed).
pub(crate) fn transpose(x: &[u64], perm: Option<&[i64]>) -> Result<Dims, String> {
    let Some(perm) = perm else {
        return Ok(x.iter().rev().copied().collect());
    };
    let mut seen = vec![false; x.len()];
    let ok = perm.len() == x.len()
        && perm.iter().all(|&p| match usize::try_from(p) {
            Ok(p) if p < x.len() && !seen[p] => {
                seen[p] = true;
                true
            }
            _ => false,
        });
    if !ok {
        return Err(format!(
            "perm {} is not a permutation of the {} axes of {}",
            show_i(perm),
            x.len(),
            show(x)
        ));
    }
    Ok(perm
        .iter()
        .filter_map(|&p| usize::try_from(p).ok().and_then(|p| x.get(p)).copied())
        .collect())
}

/// Split along `axis` into `outputs` pieces: sizes given, or equal (the last may be
/// smaller, as opset 18 allows).
pub(crate) fn split(
    x: &[u64],
    ax: i64,
    sizes: Option<&[i64]>,
    outputs: usize,
) -> Result<Vec<Dims>, String> {
    let a = axis(ax, x.len(), "axis")?;
    let d = x[a];
    let sizes: Vec<u64> = match sizes {
        Some(s) => {
            if s.len() != outputs {
                return Err(format!(
                    "split {} has {} sizes for {outputs} outputs",
                    show_i(s),
                    s.len()
                ));
            }
            let s: Vec<u64> = s
                .iter()
                .map(|&v| dim_from(v, 0, "split size"))
                .collect::<Result<_, _>>()?;
            let sum = s
                .iter()
                .try_fold(0u64, |acc, &v| acc.checked_add(v))
                .unwrap_or(u64::MAX);
            if sum != d {
                return Err(format!(
                    "the split sizes {} add up to {sum}, the axis {a} of {} has {d}",
                    show(&s),
                    show(x)
                ));
            }
            s
        }
        None => {
            let n = u64::try_from(outputs).unwrap_or(u64::MAX);
            if n == 0 {
                return Err("Split has no outputs".to_string());
            }
            let piece = d.div_ceil(n);
            let mut left = d;
            (0..outputs)
                .map(|_| {
                    let p = piece.min(left);
                    left -= p;
                    p
                })
                .collect()
        }
    };
    Ok(sizes
        .into_iter()
        .map(|s| {
            let mut o = x.to_vec();
            o[a] = s;
            o
        })
        .collect())
}

/// Pad by `pads` (`[begin..., end...]` over `axes`, default every axis; negative crops).
pub(crate) fn pad(x: &[u64], pads: &[i64], axes: Option<&[i64]>) -> Result<Dims, String> {
    let axes: Vec<usize> = match axes {
        None => (0..x.len()).collect(),
        Some(a) => a
            .iter()
            .map(|&v| axis(v, x.len(), "axis"))
            .collect::<Result<_, _>>()?,
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!(
            "pads {} has {} values, expected {} (begin and end of each axis)",
            show_i(pads),
            pads.len(),
            2 * axes.len()
        ));
    }
    let mut out = x.to_vec();
    let n = axes.len();
    for (j, &a) in axes.iter().enumerate() {
        let v = i128::from(out[a]) + i128::from(pads[j]) + i128::from(pads[n + j]);
        out[a] = u64::try_from(v)
            .ok()
            .filter(|&v| v <= MAX_DIM)
            .ok_or_else(|| {
                format!(
                    "pads {} give axis {a} of {} the size {v}",
                    show_i(pads),
                    show(x)
                )
            })?;
    }
    Ok(out)
}

/// Squeeze `axes` (default: every dimension of size 1).
pub(crate) fn squeeze(x: &[u64], axes: Option<&[i64]>) -> Result<Dims, String> {
    let Some(axes) = axes else {
        return Ok(x.iter().copied().filter(|&d| d != 1).collect());
    };
    let axes: Vec<usize> = axes
        .iter()
        .map(|&v| axis(v, x.len(), "axis"))
        .collect::<Result<_, _>>()?;
    if let Some(&a) = axes.iter().find(|&&a| x[a] != 1) {
        return Err(format!(
            "cannot squeeze axis {a} of {}: its size is not 1",
            show(x)
        ));
    }
    Ok(x.iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, &d)| d)
        .collect())
}

/// Unsqueeze: insert dimensions of size 1 at `axes` (of the output).
pub(crate) fn unsqueeze(x: &[u64], axes: &[i64]) -> Result<Dims, String> {
    let rank = x.len() + axes.len();
    if rank > MAX_RANK {
        return Err(format!("rank {rank} is above the limit of {MAX_RANK}"));
    }
    let axes: Vec<usize> = axes
        .iter()
        .map(|&v| axis(v, rank, "axis"))
        .collect::<Result<_, _>>()?;
    let mut rest = x.iter();
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        if axes.contains(&i) {
            out.push(1);
        } else {
            match rest.next() {
                Some(&d) => out.push(d),
                None => return Err(format!("axes {:?} repeat an axis", axes)),
            }
        }
    }
    Ok(out)
}

/// Reductions (ReduceMean, ...): `axes` (empty: every axis, unless `noop_with_empty`).
pub(crate) fn reduce(
    x: &[u64],
    axes: &[i64],
    keepdims: bool,
    noop_with_empty: bool,
) -> Result<Dims, String> {
    if axes.is_empty() && noop_with_empty {
        return Ok(x.to_vec());
    }
    let axes: Vec<usize> = if axes.is_empty() {
        (0..x.len()).collect()
    } else {
        axes.iter()
            .map(|&v| axis(v, x.len(), "axis"))
            .collect::<Result<_, _>>()?
    };
    Ok(x.iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect())
}

/// One axis of a Slice: the first index, the step and the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SliceRange {
    /// First index taken.
    pub start: i64,
    /// Step (negative walks backwards).
    pub step: i64,
    /// Elements taken.
    pub len: u64,
}

/// Slice: one range per axis of `x` (axes not named take everything), with ONNX's clamping.
pub(crate) fn slice(
    x: &[u64],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Vec<SliceRange>, String> {
    let n = starts.len();
    if ends.len() != n || axes.is_some_and(|a| a.len() != n) || steps.is_some_and(|s| s.len() != n)
    {
        return Err(format!(
            "starts {}, ends {}, axes and steps of a Slice differ in length",
            show_i(starts),
            show_i(ends)
        ));
    }
    let mut out: Vec<SliceRange> = x
        .iter()
        .map(|&d| SliceRange {
            start: 0,
            step: 1,
            len: d,
        })
        .collect();
    let mut seen = vec![false; x.len()];
    for k in 0..n {
        let ax = match axes {
            Some(a) => axis(a[k], x.len(), "axis")?,
            None if k < x.len() => k,
            None => return Err(format!("Slice has {n} starts for rank {}", x.len())),
        };
        if std::mem::replace(&mut seen[ax], true) {
            return Err(format!("Slice names axis {ax} twice"));
        }
        let step = steps.map_or(1, |s| s[k]);
        if step == 0 {
            return Err("a Slice step is 0".to_string());
        }
        let dim = i128::from(x[ax]);
        let fix = |v: i64| {
            let v = i128::from(v);
            if v < 0 { v + dim } else { v }
        };
        let (mut s, mut e) = (fix(starts[k]), fix(ends[k]));
        let len = if step > 0 {
            s = s.clamp(0, dim);
            e = e.clamp(0, dim);
            ceil_div((e - s).max(0), i128::from(step))
        } else {
            s = s.clamp(0, (dim - 1).max(0));
            e = e.clamp(-1, (dim - 1).max(-1));
            let st = -i128::from(step);
            if dim == 0 {
                0
            } else {
                ceil_div((s - e).max(0), st)
            }
        };
        out[ax] = SliceRange {
            start: i64::try_from(s).map_err(|e| e.to_string())?,
            step,
            len: u64::try_from(len).map_err(|e| e.to_string())?,
        };
    }
    Ok(out)
}

/// `ceil(a / b)` for `a >= 0`, `b > 0`.
fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}

/// Gather along `axis`: `data.shape[..axis] + indices.shape + data.shape[axis + 1..]`.
pub(crate) fn gather(data: &[u64], indices: &[u64], ax: i64) -> Result<Dims, String> {
    let a = axis(ax, data.len(), "axis")?;
    let mut out = data[..a].to_vec();
    out.extend_from_slice(indices);
    out.extend_from_slice(&data[a + 1..]);
    if out.len() > MAX_RANK {
        return Err(format!(
            "rank {} is above the limit of {MAX_RANK}",
            out.len()
        ));
    }
    Ok(out)
}

/// Resize's targets: `scales` or `sizes` (over `axes`, default every axis).
pub(crate) struct Resize<'a> {
    pub scales: Option<Vec<f32>>,
    pub sizes: Option<Vec<i64>>,
    pub axes: Option<&'a [i64]>,
    /// `keep_aspect_ratio_policy` (opset 18): stretch, not_larger or not_smaller.
    pub policy: &'a str,
}

/// Resize / Upsample: `floor(x * scale)` per axis (in f32, as ONNX's shape inference and
/// ONNX Runtime compute it), or `sizes`, with the aspect-ratio policy.
pub(crate) fn resize(x: &[u64], r: &Resize) -> Result<Dims, String> {
    let axes: Vec<usize> = match r.axes {
        None => (0..x.len()).collect(),
        Some(a) => a
            .iter()
            .map(|&v| axis(v, x.len(), "axis"))
            .collect::<Result<_, _>>()?,
    };
    let n = axes.len();
    let mut out = x.to_vec();
    match (&r.scales, &r.sizes) {
        (Some(_), Some(_)) => Err("Resize has both scales and sizes; give one".to_string()),
        (None, None) => Err("Resize needs scales or sizes".to_string()),
        (Some(s), None) => {
            if s.len() != n {
                return Err(format!(
                    "scales has {} values for {n} axes of {}",
                    s.len(),
                    show(x)
                ));
            }
            for (&a, &f) in axes.iter().zip(s) {
                if !(f.is_finite() && f > 0.0) {
                    return Err(format!("scale {f} is not a positive number"));
                }
                let v = (x[a] as f32 * f).floor();
                out[a] = dim_from(v as i64, 0, "the resized dimension")?;
            }
            Ok(out)
        }
        (None, Some(s)) => {
            if s.len() != n {
                return Err(format!(
                    "sizes {} has {} values for {n} axes of {}",
                    show_i(s),
                    s.len(),
                    show(x)
                ));
            }
            let sizes: Vec<u64> = s
                .iter()
                .map(|&v| dim_from(v, 0, "size"))
                .collect::<Result<_, _>>()?;
            let pick: fn(f32, f32) -> f32 = match r.policy {
                "stretch" => {
                    for (&a, &v) in axes.iter().zip(&sizes) {
                        out[a] = v;
                    }
                    return Ok(out);
                }
                "not_larger" => f32::min,
                "not_smaller" => f32::max,
                other => {
                    return Err(format!(
                        "keep_aspect_ratio_policy {:?} is not one of stretch, not_larger, not_smaller",
                        other.escape_debug().to_string()
                    ));
                }
            };
            let mut scale: Option<f32> = None;
            for (&a, &v) in axes.iter().zip(&sizes) {
                if x[a] == 0 {
                    return Err(format!("axis {a} of {} is empty", show(x)));
                }
                let f = v as f32 / x[a] as f32;
                scale = Some(scale.map_or(f, |s| pick(s, f)));
            }
            let scale = scale.unwrap_or(1.0);
            for &a in &axes {
                let v = (scale * x[a] as f32).round();
                out[a] = dim_from(v as i64, 0, "the resized dimension")?;
            }
            Ok(out)
        }
    }
}

/// One term of an Einsum equation: its labels, with `None` standing for the ellipsis.
fn einsum_term(term: &str) -> Result<Vec<Option<char>>, String> {
    let t = term.trim();
    let mut out = Vec::new();
    let mut rest = t;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("...") {
            if out.contains(&None) {
                return Err(format!("the term {t:?} has two ellipses"));
            }
            out.push(None);
            rest = r;
            continue;
        }
        let mut chars = rest.chars();
        match chars.next() {
            Some(c) if c.is_ascii_alphabetic() => out.push(Some(c)),
            Some(c) => {
                return Err(format!(
                    "the term {:?} has {c:?}, not a letter",
                    t.escape_debug().to_string()
                ));
            }
            None => break,
        }
        rest = chars.as_str();
    }
    Ok(out)
}

/// Einsum: every label's size from the inputs (a repeated label must agree; the ellipsis
/// broadcasts), the output in the explicit order after `->`, else the ellipsis then the
/// labels used once, in alphabetical order.
pub(crate) fn einsum(equation: &str, shapes: &[&[u64]]) -> Result<Dims, String> {
    if equation.len() > 256 {
        return Err("the Einsum equation is longer than 256 bytes".to_string());
    }
    let (lhs, rhs) = match equation.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (equation, None),
    };
    let terms: Vec<Vec<Option<char>>> =
        lhs.split(',').map(einsum_term).collect::<Result<_, _>>()?;
    if terms.len() != shapes.len() {
        return Err(format!(
            "the equation {:?} has {} inputs, the node {}",
            equation.escape_debug().to_string(),
            terms.len(),
            shapes.len()
        ));
    }
    let mut size: Vec<(char, u64)> = Vec::new();
    let mut count: Vec<(char, usize)> = Vec::new();
    let mut ellipses: Vec<&[u64]> = Vec::new();
    for (term, &x) in terms.iter().zip(shapes) {
        let letters = term.iter().filter(|l| l.is_some()).count();
        let has_ellipsis = term.contains(&None);
        if letters > x.len() || (!has_ellipsis && letters != x.len()) {
            return Err(format!(
                "the term {:?} does not fit the input {} (rank {})",
                term.iter()
                    .map(|l| l.map_or("...".to_string(), String::from))
                    .collect::<String>(),
                show(x),
                x.len()
            ));
        }
        let e = x.len() - letters;
        let mut k = 0;
        for l in term {
            match l {
                None => {
                    ellipses.push(&x[k..k + e]);
                    k += e;
                }
                Some(c) => {
                    let d = x[k];
                    k += 1;
                    match size.iter_mut().find(|(l, _)| l == c) {
                        Some((_, s)) if *s == d => {}
                        Some((_, s)) => {
                            return Err(format!("label {c:?} has size {s} and {d} in the inputs"));
                        }
                        None => size.push((*c, d)),
                    }
                    match count.iter_mut().find(|(l, _)| l == c) {
                        Some((_, n)) => *n += 1,
                        None => count.push((*c, 1)),
                    }
                }
            }
        }
    }
    let ellipsis = broadcast(&ellipses)?;
    let output: Vec<Option<char>> = match rhs {
        Some(r) => einsum_term(r)?,
        None => {
            let mut once: Vec<char> = count
                .iter()
                .filter(|&&(_, n)| n == 1)
                .map(|&(c, _)| c)
                .collect();
            once.sort_unstable();
            std::iter::once(None)
                .filter(|_| !ellipses.is_empty())
                .chain(once.into_iter().map(Some))
                .collect()
        }
    };
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for l in output {
        match l {
            None => out.extend_from_slice(&ellipsis),
            Some(c) => {
                if seen.contains(&c) {
                    return Err(format!("the output repeats label {c:?}"));
                }
                seen.push(c);
                match size.iter().find(|(l, _)| *l == c) {
                    Some(&(_, d)) => out.push(d),
                    None => return Err(format!("the output label {c:?} is in no input")),
                }
            }
        }
    }
    check(&out)?;
    Ok(out)
}

/// Tile: every dimension times its repeat.
pub(crate) fn tile(x: &[u64], repeats: &[i64]) -> Result<Dims, String> {
    if repeats.len() != x.len() {
        return Err(format!(
            "repeats {} has {} values for the rank-{} input {}",
            show_i(repeats),
            repeats.len(),
            x.len(),
            show(x)
        ));
    }
    let out = x
        .iter()
        .zip(repeats)
        .map(|(&d, &r)| {
            dim_from(r, 0, "repeat")?
                .checked_mul(d)
                .ok_or_else(|| "the tiled shape is too large".to_string())
        })
        .collect::<Result<Dims, _>>()?;
    check(&out)?;
    Ok(out)
}

/// DepthToSpace (`to_space`) or SpaceToDepth on `[N, C, H, W]` with `blocksize`.
pub(crate) fn depth_space(x: &[u64], blocksize: i64, to_space: bool) -> Result<Dims, String> {
    let &[n, c, h, w] = x else {
        return Err(format!("the input {} is not [N, C, H, W]", show(x)));
    };
    let b = dim_from(blocksize, 1, "blocksize")?;
    let big = || "the block size is too large".to_string();
    let bb = b.checked_mul(b).ok_or_else(big)?;
    let out = if to_space {
        if c % bb != 0 {
            return Err(format!(
                "the channels {c} are not a multiple of blocksize^2 = {bb}"
            ));
        }
        vec![
            n,
            c / bb,
            h.checked_mul(b).ok_or_else(big)?,
            w.checked_mul(b).ok_or_else(big)?,
        ]
    } else {
        if h % b != 0 || w % b != 0 {
            return Err(format!(
                "the height {h} and width {w} are not multiples of blocksize {b}"
            ));
        }
        vec![n, c.checked_mul(bb).ok_or_else(big)?, h / b, w / b]
    };
    check(&out)?;
    Ok(out)
}

/// GatherND: `indices.shape[..-1] + data.shape[batch_dims + indices.shape[-1]..]`.
pub(crate) fn gather_nd(data: &[u64], indices: &[u64], batch_dims: i64) -> Result<Dims, String> {
    let b = usize::try_from(batch_dims)
        .ok()
        .filter(|&b| b < data.len().min(indices.len()))
        .ok_or_else(|| {
            format!(
                "batch_dims {batch_dims} is out of range for the data {} and indices {}",
                show(data),
                show(indices)
            )
        })?;
    let (&last, lead) = indices
        .split_last()
        .ok_or_else(|| "GatherND needs indices of rank 1 or more".to_string())?;
    if data[..b] != indices[..b] {
        return Err(format!(
            "the first {b} (batch) dimensions of the data {} and indices {} differ",
            show(data),
            show(indices)
        ));
    }
    let end = usize::try_from(last)
        .ok()
        .and_then(|k| k.checked_add(b))
        .filter(|&e| e <= data.len())
        .ok_or_else(|| {
            format!(
                "the indices {} index {last} dimensions after {b} batch dimensions of the data {}",
                show(indices),
                show(data)
            )
        })?;
    let mut out = lead.to_vec();
    out.extend_from_slice(&data[end..]);
    check(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(
        kernel: &[u64],
        strides: &[i64],
        pads: &[i64],
        auto_pad: AutoPad,
    ) -> WindowAttrs<'static> {
        WindowAttrs {
            kernel: kernel.to_vec().leak(),
            strides: Some(strides.to_vec().leak()),
            dilations: None,
            pads: Some(pads.to_vec().leak()),
            auto_pad,
        }
    }

    #[test]
    fn pool_ceil_mode_matches_onnx_runtime() {
        // (input, kernel, stride, pad begin, pad end, ceil_mode) -> output, as ONNX Runtime
        // 1.32 computes it (the last window must start inside the input or its leading
        // padding: 4, 2, 3, 1, 1 gives 2 where ceil alone gives 3).
        let cases = [
            (2, 2, 2, 1, 1, true, 2),
            (5, 2, 2, 0, 0, true, 3),
            (5, 2, 2, 0, 0, false, 2),
            (6, 3, 2, 1, 1, true, 4),
            (6, 3, 2, 1, 1, false, 3),
            (14, 3, 2, 0, 0, true, 7),
            (14, 3, 2, 0, 0, false, 6),
            (4, 2, 3, 1, 1, true, 2),
            (3, 2, 2, 1, 0, true, 2),
            (8, 3, 3, 2, 2, true, 4),
        ];
        for (i, k, s, pb, pe, ceil, o) in cases {
            let a = win(&[k], &[s], &[pb, pe], AutoPad::NotSet);
            assert_eq!(
                pool(&[1, 1, i], &a, ceil),
                Ok(vec![1, 1, o]),
                "{i} {k} {s} {pb} {pe} {ceil}"
            );
        }
    }

    #[test]
    fn same_padding_puts_the_odd_pad_where_asked() {
        let up = win(&[3, 2], &[2, 1], &[], AutoPad::SameUpper);
        let w = Window::resolve(&[8, 5], &up).unwrap();
        // Height: out 4, need 3*2 + 3 = 9 > 8: total 1, at the end. Width: total 1.
        assert_eq!((w.begin.clone(), w.end.clone()), (vec![0, 0], vec![1, 1]));
        assert_eq!(w.output(&[8, 5], false), Ok(vec![4, 5]));
        let low = win(&[3, 2], &[2, 1], &[], AutoPad::SameLower);
        let w = Window::resolve(&[8, 5], &low).unwrap();
        assert_eq!((w.begin, w.end), (vec![1, 1], vec![0, 0]));
        let valid = win(&[3, 3], &[1, 1], &[], AutoPad::Valid);
        assert_eq!(pool(&[1, 2, 5, 5], &valid, false), Ok(vec![1, 2, 3, 3]));
    }

    #[test]
    fn conv_checks_channels_and_window() {
        let a = win(&[3, 3], &[2, 2], &[1, 1, 1, 1], AutoPad::NotSet);
        let (out, w) = conv(&[1, 16, 12, 10], &[32, 1, 3, 3], 16, &a).unwrap();
        assert_eq!(out, vec![1, 32, 6, 5]);
        assert_eq!(w.begin, vec![1, 1]);
        assert!(
            conv(&[1, 16, 12, 10], &[32, 2, 3, 3], 16, &a)
                .unwrap_err()
                .contains("2 input channels per group")
        );
        assert!(conv(&[1, 16, 12, 10], &[32, 1, 3, 3], 0, &a).is_err());
        let big = win(&[3, 3], &[1, 1], &[0, 0, 0, 0], AutoPad::NotSet);
        assert!(
            conv(&[1, 1, 2, 9], &[1, 1, 3, 3], 1, &big)
                .unwrap_err()
                .contains("larger than the padded input")
        );
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(
            broadcast(&[&[1, 48, 4, 4], &[1, 48, 1, 1]]),
            Ok(vec![1, 48, 4, 4])
        );
        assert_eq!(
            broadcast(&[&[8, 1, 6, 1], &[7, 1, 5]]),
            Ok(vec![8, 7, 6, 5])
        );
        assert_eq!(broadcast(&[&[3], &[]]), Ok(vec![3]));
        assert_eq!(broadcast(&[&[2, 0], &[1]]), Ok(vec![2, 0]));
        assert_eq!(
            broadcast(&[&[2, 3], &[4, 3]]),
            Err("the shapes [2, 3] and [4, 3] do not broadcast (dimension 0 differs and neither is 1)".to_string())
        );
    }

    #[test]
    fn reshape_zero_and_minus_one() {
        assert_eq!(
            reshape(&[1, 16, 8, 7], &[0, 4, 4, 8, -1], false),
            Ok(vec![1, 4, 4, 8, 7])
        );
        assert_eq!(reshape(&[2, 3, 4], &[-1], false), Ok(vec![24]));
        assert_eq!(reshape(&[2, 3, 4], &[0, -1], false), Ok(vec![2, 12]));
        // allowzero: 0 is a real zero-size dimension.
        assert_eq!(reshape(&[0, 3], &[3, 0], true), Ok(vec![3, 0]));
        assert!(
            reshape(&[2, 3], &[-1, -1], false)
                .unwrap_err()
                .contains("more than one -1")
        );
        assert!(
            reshape(&[2, 3], &[4, -1], false)
                .unwrap_err()
                .contains("not a multiple of 4")
        );
        assert!(
            reshape(&[2, 3], &[0, 0, 0], false)
                .unwrap_err()
                .contains("copies dimension 2")
        );
        assert!(
            reshape(&[2, 3], &[7], false)
                .unwrap_err()
                .contains("has 7 elements")
        );
        assert!(reshape(&[2, 3], &[-2, 3], false).is_err());
        assert!(reshape(&[0, 3], &[0, -1], false).is_err()); // -1 against zero elements
    }

    #[test]
    fn transpose_flatten_gemm_matmul() {
        assert_eq!(
            transpose(&[1, 4, 4, 8, 7], Some(&[0, 2, 1, 3, 4])),
            Ok(vec![1, 4, 4, 8, 7])
        );
        assert_eq!(transpose(&[2, 3, 4], None), Ok(vec![4, 3, 2]));
        assert!(transpose(&[2, 3], Some(&[0, 0])).is_err());
        assert!(transpose(&[2, 3], Some(&[0, 5])).is_err());
        assert_eq!(flatten(&[2, 3, 4, 5], 1), Ok(vec![2, 60]));
        assert_eq!(flatten(&[2, 3, 4, 5], 0), Ok(vec![1, 120]));
        assert_eq!(flatten(&[2, 3, 4, 5], -1), Ok(vec![24, 5]));
        assert_eq!(flatten(&[2, 3, 4, 5], 4), Ok(vec![120, 1]));
        assert!(flatten(&[2, 3], 3).is_err());
        assert_eq!(gemm(&[1, 24], &[10, 24], false, true), Ok(vec![1, 10]));
        assert_eq!(gemm(&[24, 1], &[24, 10], true, false), Ok(vec![1, 10]));
        assert!(gemm(&[1, 24], &[10, 24], false, false).is_err());
        assert_eq!(matmul(&[2, 1, 3, 4], &[5, 4, 6]), Ok(vec![2, 5, 3, 6]));
        assert_eq!(matmul(&[4], &[4, 6]), Ok(vec![6]));
        assert_eq!(matmul(&[3, 4], &[4]), Ok(vec![3]));
        assert!(matmul(&[3, 4], &[5, 6]).is_err());
    }

    #[test]
    fn concat_split_pad_squeeze_reduce() {
        assert_eq!(
            concat(&[&[1, 32, 4, 4], &[1, 16, 4, 4]], 1),
            Ok(vec![1, 48, 4, 4])
        );
        assert_eq!(
            concat(&[&[1, 32, 4, 4], &[1, 16, 4, 4]], -3),
            Ok(vec![1, 48, 4, 4])
        );
        assert!(concat(&[&[1, 32, 4, 4], &[1, 16, 4, 5]], 1).is_err());
        assert_eq!(
            split(&[1, 10, 4], 1, None, 3),
            Ok(vec![vec![1, 4, 4], vec![1, 4, 4], vec![1, 2, 4]])
        );
        assert_eq!(
            split(&[1, 10, 4], -2, Some(&[3, 7]), 2),
            Ok(vec![vec![1, 3, 4], vec![1, 7, 4]])
        );
        assert!(split(&[1, 10, 4], 1, Some(&[3, 6]), 2).is_err());
        assert_eq!(
            pad(&[1, 48, 4, 4], &[0, 0, 1, 1, 0, 0, 1, 1], None),
            Ok(vec![1, 48, 6, 6])
        );
        assert_eq!(
            pad(&[1, 48, 4, 4], &[0, 0, -1, 0, 0, 0, 0, 2], None),
            Ok(vec![1, 48, 3, 6])
        );
        assert_eq!(
            pad(&[1, 48, 4, 4], &[1, 2, 3, 4], Some(&[2, 3])),
            Ok(vec![1, 48, 8, 10])
        );
        assert!(pad(&[1, 2], &[0, -3, 0, 0], None).is_err());
        assert_eq!(squeeze(&[1, 24, 1, 1], Some(&[2, 3])), Ok(vec![1, 24]));
        assert_eq!(squeeze(&[1, 24, 1, 1], None), Ok(vec![24]));
        assert!(squeeze(&[1, 24], Some(&[1])).is_err());
        assert_eq!(unsqueeze(&[24], &[0, -1]), Ok(vec![1, 24, 1]));
        assert!(unsqueeze(&[24], &[0, 0]).is_err());
        assert_eq!(
            reduce(&[1, 24, 5, 5], &[2, 3], true, false),
            Ok(vec![1, 24, 1, 1])
        );
        assert_eq!(
            reduce(&[1, 24, 5, 5], &[-1, -2], false, false),
            Ok(vec![1, 24])
        );
        assert_eq!(reduce(&[1, 24, 5, 5], &[], false, false), Ok(vec![]));
        assert_eq!(
            reduce(&[1, 24, 5, 5], &[], true, true),
            Ok(vec![1, 24, 5, 5])
        );
    }

    #[test]
    fn slice_clamps_like_onnx() {
        let r = |v: &[SliceRange]| {
            v.iter()
                .map(|r| (r.start, r.step, r.len))
                .collect::<Vec<_>>()
        };
        // x[1:] of [4]; x[-2:] ; x[::-1]; ends of i64::MAX; an empty range.
        assert_eq!(
            r(&slice(&[4], &[1], &[i64::MAX], None, None).unwrap()),
            [(1, 1, 3)]
        );
        assert_eq!(
            r(&slice(&[4], &[-2], &[4], None, None).unwrap()),
            [(2, 1, 2)]
        );
        assert_eq!(
            r(&slice(&[4], &[-1], &[i64::MIN], None, Some(&[-1])).unwrap()),
            [(3, -1, 4)]
        );
        assert_eq!(
            r(&slice(&[4], &[3], &[1], None, None).unwrap()),
            [(3, 1, 0)]
        );
        assert_eq!(
            r(&slice(&[2, 10], &[1], &[9], Some(&[-1]), Some(&[3])).unwrap()),
            [(0, 1, 2), (1, 3, 3)]
        );
        assert!(slice(&[4], &[0], &[1], None, Some(&[0])).is_err());
        assert!(slice(&[4, 4], &[0, 0], &[1, 1], Some(&[1, 1]), None).is_err());
        assert_eq!(gather(&[1, 16, 8, 7], &[], 0), Ok(vec![16, 8, 7]));
        assert_eq!(gather(&[4], &[2], 0), Ok(vec![2]));
        assert_eq!(gather(&[5, 6], &[2, 3], 1), Ok(vec![5, 2, 3]));
    }

    #[test]
    fn limits_are_checked_not_overflowed() {
        assert!(product(&[1 << 32, 1 << 32, 1 << 32]).is_err());
        assert!(check(&[1; 17]).is_err());
        assert!(check(&[(1 << 32) + 1]).is_err());
        assert!(flatten(&[0, 1 << 32, 1 << 32, 1 << 32], 1).is_err());
        assert!(dim_from(-1, 0, "pad").is_err());
        assert!(axis(i64::MIN, 3, "axis").is_err());
        let a = win(&[u64::MAX], &[1], &[0, 0], AutoPad::NotSet);
        assert!(pool(&[1, 1, 4], &a, false).is_err());
        let d = WindowAttrs {
            kernel: &[3],
            strides: None,
            dilations: Some(&[i64::MAX]),
            pads: None,
            auto_pad: AutoPad::SameUpper,
        };
        assert!(pool(&[1, 1, 4], &d, false).is_err());
    }

    #[test]
    fn einsum_resize_tile_depth_space() {
        assert_eq!(
            einsum("bhij,bhjk->bhik", &[&[2, 3, 4, 5], &[2, 3, 5, 6]]),
            Ok(vec![2, 3, 4, 6])
        );
        assert_eq!(
            einsum("...ij->...ji", &[&[2, 3, 4, 5]]),
            Ok(vec![2, 3, 5, 4])
        );
        // Implicit output: ellipsis first, then the labels used once, alphabetical.
        assert_eq!(
            einsum("...ba,cb", &[&[7, 2, 3], &[4, 2]]),
            Ok(vec![7, 3, 4])
        );
        assert_eq!(einsum("ii->i", &[&[3, 3]]), Ok(vec![3]));
        assert!(einsum("ij,jk->ik", &[&[2, 3], &[4, 5]]).is_err());
        assert!(einsum("ij->ii", &[&[2, 2]]).is_err());
        assert!(einsum("ij,jk->ik", &[&[2, 3]]).is_err());
        assert!(einsum("ijk->i", &[&[2, 3]]).is_err());
        assert!(einsum("i.j->i", &[&[2, 3]]).is_err());
        let r = |scales: Option<Vec<f32>>, sizes: Option<Vec<i64>>, policy| Resize {
            scales,
            sizes,
            axes: None,
            policy,
        };
        assert_eq!(
            resize(
                &[1, 2, 5, 7],
                &r(Some(vec![1.0, 1.0, 1.9, 0.5]), None, "stretch")
            ),
            Ok(vec![1, 2, 9, 3])
        );
        assert_eq!(
            resize(&[1, 2, 5, 7], &r(None, Some(vec![1, 2, 3, 3]), "stretch")),
            Ok(vec![1, 2, 3, 3])
        );
        assert!(resize(&[1, 2], &r(Some(vec![1.0, f32::NAN]), None, "stretch")).is_err());
        assert!(resize(&[1, 2], &r(Some(vec![1.0, 1.0e30]), None, "stretch")).is_err());
        assert!(resize(&[1, 0], &r(None, Some(vec![1, 4]), "not_larger")).is_err());
        assert_eq!(tile(&[2, 3], &[2, 1]), Ok(vec![4, 3]));
        assert!(tile(&[2, 3], &[2]).is_err());
        assert!(tile(&[1 << 32, 1], &[1 << 32, 1]).is_err());
        assert_eq!(depth_space(&[1, 8, 2, 3], 2, true), Ok(vec![1, 2, 4, 6]));
        assert_eq!(depth_space(&[1, 2, 4, 6], 2, false), Ok(vec![1, 8, 2, 3]));
        assert!(depth_space(&[1, 6, 2, 3], 2, true).is_err());
        assert!(depth_space(&[1, 1, 2, 2], 1 << 32, true).is_err());
        assert!(depth_space(&[1, 1, 2], 2, true).is_err());

        assert_eq!(gather_nd(&[2, 2], &[2, 2], 0), Ok(vec![2]));
        assert_eq!(gather_nd(&[2, 2], &[2, 1], 0), Ok(vec![2, 2]));
        assert_eq!(gather_nd(&[2, 2, 2], &[2, 1], 1), Ok(vec![2, 2]));
        assert!(gather_nd(&[2, 2], &[2, 3], 0).is_err());
        assert!(gather_nd(&[2, 2], &[3, 1], 1).is_err());
        assert!(gather_nd(&[2, 2], &[], 0).is_err());
        assert!(gather_nd(&[2, 2], &[2, 1], -1).is_err());
    }
}
