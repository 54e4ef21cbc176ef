//! Spatial pooling on (C, H, W) feature maps: the EfficientFormer pooling mixer (3x3 average
//! that ignores padding) and the YOLOv5 SPPF max pool.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

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
    for (src, dst) in x
        .data()
        .chunks_exact(plane_len)
        .zip(out.chunks_exact_mut(plane_len))
    {
        for oy in 0..h {
            let rows = oy.saturating_sub(1)..(oy + 2).min(h);
            for ox in 0..w {
                let cols = ox.saturating_sub(1)..(ox + 2).min(w);
                let mut sum = 0.0;
                for iy in rows.clone() {
                    sum += src[iy * w + cols.start..iy * w + cols.end]
                        .iter()
                        .sum::<f32>();
                }
                dst[oy * w + ox] = sum / (rows.len() * cols.len()) as f32;
            }
        }
    }
    Tensor::new(&[c, h, w], out)
}

/// Max pool with a square `kernel`, `stride` and symmetric padding `pad`, padding with
/// -infinity as PyTorch does; NaN propagates. Output size per axis is
/// `(H + 2 * pad - kernel) / stride + 1`. As in PyTorch, `pad` may be at most `kernel / 2`.
pub fn max_pool(x: &Tensor, kernel: usize, stride: usize, pad: usize) -> Result<Tensor> {
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
    // In-bounds input range of the window starting at output index `o` along an axis.
    let window = |o: usize, len: usize| {
        (o * stride).saturating_sub(pad)..(o * stride + kernel - pad).min(len)
    };

    let mut out = Vec::with_capacity(c * ho * wo);
    for src in x.data().chunks_exact(h * w) {
        for oy in 0..ho {
            let rows = window(oy, h);
            for ox in 0..wo {
                let cols = window(ox, w);
                let mut max = f32::NEG_INFINITY;
                for iy in rows.clone() {
                    for &v in &src[iy * w + cols.start..iy * w + cols.end] {
                        if v > max || v.is_nan() {
                            max = v;
                        }
                    }
                }
                out.push(max);
            }
        }
    }
    Tensor::new(&[c, ho, wo], out)
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
        ] {
            let data = rng.vec(c * h * w, -3.0, 3.0);
            let x = Tensor::new(&[c, h, w], data.clone()).unwrap();
            let y = max_pool(&x, k, s, p).unwrap();
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
        let y = max_pool(&x, 3, 1, 1).unwrap();
        assert!(y.data().iter().all(|v| v.is_nan()));
    }

    #[test]
    fn pools_reject_bad_shapes() {
        let flat = Tensor::zeros(&[3, 4]);
        assert!(matches!(
            avg_pool3x3_exclude_pad(&flat),
            Err(Error::Shape(_))
        ));
        assert!(matches!(max_pool(&flat, 5, 1, 2), Err(Error::Shape(_))));
        let x = Tensor::zeros(&[1, 2, 2]);
        assert!(matches!(max_pool(&x, 5, 1, 0), Err(Error::Shape(_))));
        assert!(matches!(max_pool(&x, 3, 1, 2), Err(Error::InvalidInput(_))));
        assert!(matches!(max_pool(&x, 3, 0, 1), Err(Error::InvalidInput(_))));
        assert!(matches!(max_pool(&x, 0, 1, 0), Err(Error::InvalidInput(_))));
    }
}
