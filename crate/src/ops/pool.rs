//! Spatial pooling on (C, H, W) feature maps: the EfficientFormer pooling mixer (3x3 average
//! that ignores padding) and the YOLOv5 SPPF max pool.
//!
//! The 3x3 window sum is separable: each output adds three sums of three neighbours along a
//! row, so a plane costs two passes of two additions per pixel instead of eight, and both
//! passes are straight loops the compiler vectorises. The additions happen in the same order
//! as the direct window sum (row by row, left to right), so both give the same bits.

use std::cell::Cell;

use crate::error::{Error, Result};
use crate::kernels::parallel::for_each_chunk_mut;
use crate::kernels::Parallelism;
use crate::tensor::Tensor;

thread_local! {
    /// Per-thread row sums of one plane plus one row of column sums, reused across calls.
    static ROW_SUMS: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Planes smaller than this many pixels in total are not worth splitting over threads.
const MIN_PIXELS_PER_PART: u64 = 1 << 14;

/// Writes the sums of each pixel's in-bounds horizontal neighbours (x - 1, x, x + 1) of an
/// `h x w` plane into `sums`, adding left to right.
fn row_sums(plane: &[f32], w: usize, sums: &mut [f32]) {
    for (src, dst) in plane.chunks_exact(w).zip(sums.chunks_exact_mut(w)) {
        if w == 1 {
            dst[0] = src[0];
            continue;
        }
        dst[0] = src[0] + src[1];
        for ((d, a), (b, c)) in dst[1..w - 1]
            .iter_mut()
            .zip(&src[..w - 2])
            .zip(src[1..w - 1].iter().zip(&src[2..]))
        {
            *d = a + b + c;
        }
        dst[w - 1] = src[w - 2] + src[w - 1];
    }
}

/// For every pixel of an `h x w` plane, the 3x3 mean excluding padding computed from the
/// plane's row sums: `out[i] = update(mean, out[i])`. `column` is a scratch row of `w` values.
#[inline(always)]
fn apply_window_means(
    sums: &[f32],
    (h, w): (usize, usize),
    column: &mut [f32],
    out: &mut [f32],
    update: impl Fn(f32, f32) -> f32,
) {
    for (oy, out_row) in out.chunks_exact_mut(w).enumerate() {
        // Vertical sums of the in-bounds rows, added top to bottom.
        let (lo, hi) = (oy.saturating_sub(1), (oy + 2).min(h));
        column.copy_from_slice(&sums[lo * w..(lo + 1) * w]);
        for r in lo + 1..hi {
            for (c, &v) in column.iter_mut().zip(&sums[r * w..(r + 1) * w]) {
                *c += v;
            }
        }
        let rows = (hi - lo) as f32;
        if w == 1 {
            out_row[0] = update(column[0] / rows, out_row[0]);
            continue;
        }
        let (edge, inner) = (rows * 2.0, rows * 3.0);
        out_row[0] = update(column[0] / edge, out_row[0]);
        for (o, &c) in out_row[1..w - 1].iter_mut().zip(&column[1..w - 1]) {
            *o = update(c / inner, *o);
        }
        out_row[w - 1] = update(column[w - 1] / edge, out_row[w - 1]);
    }
}

/// 3x3 average pool, stride 1, padding 1, `count_include_pad=False`: each output is the mean
/// of the in-bounds pixels of its window (4 at a corner, 6 on an edge, 9 inside), so the
/// output has the input's shape.
pub fn avg_pool3x3_exclude_pad(x: &Tensor) -> Result<Tensor> {
    let (c, h, w) = x.chw("avg_pool3x3_exclude_pad")?;
    let mut out = vec![0.0; c * h * w];
    let plane_len = h * w;
    if plane_len == 0 {
        return Tensor::new(&[c, h, w], out);
    }
    let mut sums = vec![0.0; plane_len];
    let mut column = vec![0.0; w];
    for (src, dst) in x
        .data()
        .chunks_exact(plane_len)
        .zip(out.chunks_exact_mut(plane_len))
    {
        row_sums(src, w, &mut sums);
        apply_window_means(&sums, (h, w), &mut column, dst, |mean, _| mean);
    }
    Tensor::new(&[c, h, w], out)
}

/// The EfficientFormer pooling token mixer with its residual and LayerScale, in place:
/// `x[c] += scale[c] * (avg_pool3x3_exclude_pad(x)[c] - x[c])`. Channels are independent, so
/// threads take whole planes.
pub fn pool_mixer_residual(x: &mut Tensor, scale: &[f32], par: Parallelism) -> Result<()> {
    let (c, h, w) = x.chw("pool_mixer_residual")?;
    if scale.len() != c {
        return Err(Error::Shape(format!(
            "pool_mixer_residual needs one scale per channel ({c}), got {}",
            scale.len()
        )));
    }
    let plane_len = h * w;
    if plane_len == 0 || c == 0 {
        return Ok(());
    }
    let parts = par.parts_for((c * plane_len) as u64, MIN_PIXELS_PER_PART);
    let planes_per_part = c.div_ceil(parts);
    for_each_chunk_mut(x.data_mut(), planes_per_part * plane_len, |part, planes| {
        let mut scratch = ROW_SUMS.with(Cell::take);
        scratch.resize(plane_len + w, 0.0);
        let (sums, column) = scratch.split_at_mut(plane_len);
        for (i, plane) in planes.chunks_exact_mut(plane_len).enumerate() {
            let s = scale[part * planes_per_part + i];
            row_sums(plane, w, sums);
            apply_window_means(sums, (h, w), column, plane, |mean, v| v + s * (mean - v));
        }
        ROW_SUMS.with(|cell| cell.set(scratch));
    });
    Ok(())
}

/// Max pool with a square `kernel`, `stride` and symmetric padding `pad`, padding with
/// -infinity as PyTorch does; NaN propagates. Output size per axis is
/// `(H + 2 * pad - kernel) / stride + 1`. As in PyTorch, `pad` may be at most `kernel / 2`.
pub fn max_pool(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    pad: usize,
    par: Parallelism,
) -> Result<Tensor> {
    let (c, h, w) = x.chw("max_pool")?;
    if kernel == 0 || stride == 0 {
        return Err(Error::InvalidInput(format!(
            "max_pool kernel and stride must be at least 1, got kernel {kernel} stride {stride}"
        )));
    }
    if pad > kernel / 2 {
        return Err(Error::InvalidInput(format!(
            "max_pool padding {pad} exceeds half the kernel size {kernel}"
        )));
    }
    if h + 2 * pad < kernel || w + 2 * pad < kernel || h == 0 || w == 0 {
        return Err(Error::Shape(format!(
            "max_pool input {h}x{w} is too small for kernel {kernel} with padding {pad}"
        )));
    }
    let ho = (h + 2 * pad - kernel) / stride + 1;
    let wo = (w + 2 * pad - kernel) / stride + 1;
    let mut out = vec![0.0; c * ho * wo];
    let parts = par.parts_for((c * ho * wo * kernel) as u64, MIN_PIXELS_PER_PART);
    let planes_per_part = c.div_ceil(parts);
    let input = x.data();
    for_each_chunk_mut(&mut out, planes_per_part * ho * wo, |part, planes| {
        // The window is separable: the max over each row's horizontal windows first (h x wo),
        // then over `kernel` of those rows: 2k comparisons per output instead of k^2.
        let mut row_max = vec![f32::NEG_INFINITY; h * wo];
        for (i, dst) in planes.chunks_exact_mut(ho * wo).enumerate() {
            let ch = part * planes_per_part + i;
            let src = &input[ch * h * w..(ch + 1) * h * w];
            for (src_row, max_row) in src.chunks_exact(w).zip(row_max.chunks_exact_mut(wo)) {
                max_row.fill(f32::NEG_INFINITY);
                for d in 0..kernel {
                    // Outputs whose tap `d` falls inside the row: ox * stride + d - pad in 0..w.
                    let first = pad.saturating_sub(d).div_ceil(stride);
                    let end = ((w + pad).saturating_sub(d)).div_ceil(stride).min(wo);
                    if first >= end {
                        continue;
                    }
                    let x0 = first * stride + d - pad;
                    if stride == 1 {
                        for (m, &v) in max_row[first..end].iter_mut().zip(&src_row[x0..]) {
                            *m = max_nan(*m, v);
                        }
                    } else {
                        for (k, m) in max_row[first..end].iter_mut().enumerate() {
                            *m = max_nan(*m, src_row[x0 + k * stride]);
                        }
                    }
                }
            }
            for (oy, dst_row) in dst.chunks_exact_mut(wo).enumerate() {
                let rows = (oy * stride).saturating_sub(pad)..(oy * stride + kernel - pad).min(h);
                dst_row.copy_from_slice(&row_max[rows.start * wo..(rows.start + 1) * wo]);
                for r in rows.start + 1..rows.end {
                    for (m, &v) in dst_row.iter_mut().zip(&row_max[r * wo..(r + 1) * wo]) {
                        *m = max_nan(*m, v);
                    }
                }
            }
        }
    });
    Tensor::new(&[c, ho, wo], out)
}

/// The larger of two values, NaN if either is NaN (as PyTorch's max pooling).
#[inline(always)]
fn max_nan(a: f32, b: f32) -> f32 {
    if a > b || a.is_nan() {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, Rng};

    fn at(x: &[f32], h: usize, w: usize, c: usize, y: isize, xx: isize) -> Option<f32> {
        (y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < w)
            .then(|| x[(c * h + y as usize) * w + xx as usize])
    }

    #[test]
    fn avg_pool_matches_direct_window_mean() {
        let mut rng = Rng::new(30);
        for (c, h, w) in [(1, 1, 1), (2, 1, 5), (3, 4, 1), (2, 5, 7), (4, 8, 8)] {
            let data = rng.vec(c * h * w, -3.0, 3.0);
            let x = Tensor::new(&[c, h, w], data.clone()).unwrap();
            let y = avg_pool3x3_exclude_pad(&x).unwrap();
            assert_eq!(y.shape(), &[c, h, w]);
            let mut want = Vec::new();
            for ch in 0..c {
                for oy in 0..h as isize {
                    for ox in 0..w as isize {
                        let vals: Vec<f32> = (-1..=1)
                            .flat_map(|dy| (-1..=1).map(move |dx| (dy, dx)))
                            .filter_map(|(dy, dx)| at(&data, h, w, ch, oy + dy, ox + dx))
                            .collect();
                        want.push(vals.iter().sum::<f32>() / vals.len() as f32);
                    }
                }
            }
            assert_close(
                y.data(),
                &want,
                1e-6,
                1e-6,
                &format!("avg pool {c}x{h}x{w}"),
            );
        }
    }

    #[test]
    fn pool_mixer_equals_separate_steps() {
        let mut rng = Rng::new(32);
        for (c, h, w) in [(1, 1, 1), (2, 1, 5), (3, 4, 1), (5, 7, 9), (48, 20, 20)] {
            let x = Tensor::new(&[c, h, w], rng.vec(c * h * w, -3.0, 3.0)).unwrap();
            let scale = rng.vec(c, -1.0, 1.0);
            let pooled = avg_pool3x3_exclude_pad(&x).unwrap();
            let mut want = x.clone();
            let plane = h * w;
            for (i, v) in want.data_mut().iter_mut().enumerate() {
                *v += scale[i / plane] * (pooled.data()[i] - *v);
            }
            for par in [Parallelism::Serial, Parallelism::Threads(4)] {
                let mut got = x.clone();
                pool_mixer_residual(&mut got, &scale, par).unwrap();
                assert!(got == want, "{c}x{h}x{w} {par:?}");
            }
        }
        let mut x = Tensor::zeros(&[2, 3, 3]);
        assert!(matches!(
            pool_mixer_residual(&mut x, &[1.0], Parallelism::Serial),
            Err(Error::Shape(_))
        ));
    }

    #[test]
    fn avg_pool_counts_in_bounds_pixels() {
        let x = Tensor::new(&[1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let y = avg_pool3x3_exclude_pad(&x).unwrap();
        assert_eq!(y.data(), &[2.5; 4]);
    }

    #[test]
    fn max_pool_matches_direct_window_max() {
        let mut rng = Rng::new(31);
        for (c, h, w, k, s, p) in [
            (2, 6, 7, 5, 1, 2),
            (1, 1, 1, 5, 1, 2),
            (3, 5, 4, 3, 2, 1),
            (1, 9, 9, 2, 2, 0),
            (2, 3, 8, 3, 1, 0),
            (1, 4, 4, 1, 1, 0),
            (37, 23, 29, 5, 1, 2),
            (9, 40, 33, 3, 2, 1),
        ] {
            let data = rng.vec(c * h * w, -3.0, 3.0);
            let x = Tensor::new(&[c, h, w], data.clone()).unwrap();
            let y = max_pool(&x, k, s, p, Parallelism::Serial).unwrap();
            for parts in [2, 3, 8] {
                let threaded = max_pool(&x, k, s, p, Parallelism::Threads(parts)).unwrap();
                assert!(threaded == y, "max pool {c}x{h}x{w} in {parts} parts");
            }
            let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
            assert_eq!(y.shape(), &[c, ho, wo]);
            let mut want = Vec::new();
            for ch in 0..c {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut m = f32::NEG_INFINITY;
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as isize - p as isize;
                                let ix = (ox * s + kx) as isize - p as isize;
                                if let Some(v) = at(&data, h, w, ch, iy, ix) {
                                    m = m.max(v);
                                }
                            }
                        }
                        want.push(m);
                    }
                }
            }
            assert_eq!(y.data(), &want[..], "max pool {c}x{h}x{w} k{k} s{s} p{p}");
        }
    }

    #[test]
    fn max_pool_propagates_nan() {
        let x = Tensor::new(&[1, 1, 3], vec![1.0, f32::NAN, 2.0]).unwrap();
        let y = max_pool(&x, 3, 1, 1, Parallelism::Serial).unwrap();
        assert!(y.data().iter().all(|v| v.is_nan()));
    }

    #[test]
    fn pools_reject_bad_shapes() {
        let flat = Tensor::zeros(&[3, 4]);
        assert!(matches!(
            avg_pool3x3_exclude_pad(&flat),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            max_pool(&flat, 5, 1, 2, Parallelism::Serial),
            Err(Error::Shape(_))
        ));
        let x = Tensor::zeros(&[1, 2, 2]);
        assert!(matches!(
            max_pool(&x, 5, 1, 0, Parallelism::Serial),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            max_pool(&x, 3, 1, 2, Parallelism::Serial),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            max_pool(&x, 3, 0, 1, Parallelism::Serial),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            max_pool(&x, 0, 1, 0, Parallelism::Serial),
            Err(Error::InvalidInput(_))
        ));
    }
}
