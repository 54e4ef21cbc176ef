//! Normalisation layers: LayerNorm over the channels of each token (EfficientFormer Meta3D
//! blocks) and GroupNorm with one group (the backbone taps of snap's detection backbone).
//!
//! Statistics are accumulated in f64 with two passes (mean, then squared deviations), and
//! the variance is the biased one, as PyTorch uses for both layers.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Mean and biased variance of `xs` (empty input gives zeros).
fn mean_var(xs: &[f32]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

fn check_affine(op: &str, channels: usize, gamma: &[f32], beta: &[f32]) -> Result<()> {
    if gamma.len() != channels || beta.len() != channels {
        return Err(Error::Shape(format!(
            "{op} needs gamma and beta of {channels} values, got {} and {}",
            gamma.len(),
            beta.len()
        )));
    }
    Ok(())
}

/// LayerNorm over the last dimension of an (N, C) tensor:
/// `y = (x - mean) / sqrt(var + eps) * gamma + beta`, per token.
pub fn layer_norm(x: &Tensor, gamma: &[f32], beta: &[f32], eps: f32) -> Result<Tensor> {
    let (n, c) = x.tokens("layer_norm")?;
    check_affine("layer_norm", c, gamma, beta)?;
    let mut out = Vec::with_capacity(n * c);
    if c > 0 {
        for row in x.data().chunks_exact(c) {
            let (mean, var) = mean_var(row);
            let inv_std = 1.0 / (var + eps as f64).sqrt();
            out.extend(
                row.iter()
                    .zip(gamma.iter().zip(beta))
                    .map(|(&v, (&g, &b))| {
                        ((v as f64 - mean) * inv_std * g as f64 + b as f64) as f32
                    }),
            );
        }
    }
    Tensor::new(&[n, c], out)
}

/// LayerNorm over the channels of every position of a channel-major (C, ...) tensor, e.g.
/// (C, H, W): position `p` is normalised over `x[.., p]`. The same statistics, in the same
/// order, as [`layer_norm`] on the transposed (N, C) tokens, so the results are identical.
pub fn layer_norm_channels(x: &Tensor, gamma: &[f32], beta: &[f32], eps: f32) -> Result<Tensor> {
    let (c, n) = x.channel_major("layer_norm_channels")?;
    check_affine("layer_norm_channels", c, gamma, beta)?;
    let mut out = vec![0.0; c * n];
    if n > 0 {
        let rows = || x.data().chunks_exact(n);
        let mut mean = vec![0.0f64; n];
        for row in rows() {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= c as f64);
        let mut var = vec![0.0f64; n];
        for row in rows() {
            for ((s, &m), &v) in var.iter_mut().zip(&mean).zip(row) {
                *s += (v as f64 - m).powi(2);
            }
        }
        let inv_std: Vec<f64> = var
            .iter()
            .map(|&s| 1.0 / (s / c as f64 + eps as f64).sqrt())
            .collect();
        for (((dst, src), &g), &b) in out.chunks_exact_mut(n).zip(rows()).zip(gamma).zip(beta) {
            for (((o, &v), &m), &is) in dst.iter_mut().zip(src).zip(&mean).zip(&inv_std) {
                *o = ((v as f64 - m) * is * g as f64 + b as f64) as f32;
            }
        }
    }
    Tensor::new(x.shape(), out)
}

/// `GroupNorm(1, C)` on a (C, H, W) tensor: one mean and variance over all C * H * W values,
/// then a per-channel affine `gamma[c]`, `beta[c]`.
pub fn group_norm_1(x: &Tensor, gamma: &[f32], beta: &[f32], eps: f32) -> Result<Tensor> {
    let (c, h, w) = x.chw("group_norm_1")?;
    check_affine("group_norm_1", c, gamma, beta)?;
    let plane = h * w;
    let mut out = Vec::with_capacity(c * plane);
    if plane > 0 {
        let (mean, var) = mean_var(x.data());
        let inv_std = 1.0 / (var + eps as f64).sqrt();
        for ((src, &g), &b) in x.data().chunks_exact(plane).zip(gamma).zip(beta) {
            let scale = inv_std * g as f64;
            let shift = b as f64 - mean * scale;
            out.extend(src.iter().map(|&v| (v as f64 * scale + shift) as f32));
        }
    }
    Tensor::new(&[c, h, w], out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, transposed, Rng};

    /// Direct f32 two-pass normalisation of one group of values with per-value affine.
    fn normalise(xs: &[f32], eps: f32, affine: impl Fn(usize) -> (f32, f32)) -> Vec<f32> {
        let n = xs.len() as f32;
        let mean = xs.iter().sum::<f32>() / n;
        let var = xs.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        xs.iter()
            .enumerate()
            .map(|(i, v)| {
                let (g, b) = affine(i);
                (v - mean) / (var + eps).sqrt() * g + b
            })
            .collect()
    }

    #[test]
    fn layer_norm_matches_direct() {
        let mut rng = Rng::new(40);
        for (n, c) in [(1, 1), (1, 7), (5, 48), (13, 33), (0, 4)] {
            let data = rng.vec(n * c, -3.0, 5.0);
            let gamma = rng.vec(c, 0.5, 1.5);
            let beta = rng.vec(c, -0.5, 0.5);
            let y = layer_norm(
                &Tensor::new(&[n, c], data.clone()).unwrap(),
                &gamma,
                &beta,
                1e-5,
            )
            .unwrap();
            assert_eq!(y.shape(), &[n, c]);
            let want: Vec<f32> = data
                .chunks(c)
                .flat_map(|row| normalise(row, 1e-5, |i| (gamma[i], beta[i])))
                .collect();
            assert_close(y.data(), &want, 2e-5, 1e-5, &format!("layer_norm {n}x{c}"));
        }
    }

    #[test]
    fn layer_norm_of_constant_row_is_beta() {
        let x = Tensor::new(&[1, 3], vec![2.0; 3]).unwrap();
        let y = layer_norm(&x, &[1.0, 2.0, 3.0], &[0.1, 0.2, 0.3], 1e-5).unwrap();
        assert_eq!(y.data(), &[0.1, 0.2, 0.3]);
    }

    #[test]
    fn group_norm_matches_direct() {
        let mut rng = Rng::new(41);
        for (c, h, w) in [(1, 1, 1), (3, 4, 5), (8, 7, 3), (2, 1, 9)] {
            let data = rng.vec(c * h * w, -2.0, 6.0);
            let gamma = rng.vec(c, 0.5, 1.5);
            let beta = rng.vec(c, -0.5, 0.5);
            let y = group_norm_1(
                &Tensor::new(&[c, h, w], data.clone()).unwrap(),
                &gamma,
                &beta,
                1e-5,
            )
            .unwrap();
            assert_eq!(y.shape(), &[c, h, w]);
            let plane = h * w;
            let want = normalise(&data, 1e-5, |i| (gamma[i / plane], beta[i / plane]));
            assert_close(
                y.data(),
                &want,
                2e-5,
                1e-5,
                &format!("group_norm_1 {c}x{h}x{w}"),
            );
        }
    }

    #[test]
    fn norms_reject_bad_shapes() {
        let tokens = Tensor::zeros(&[2, 3]);
        let map = Tensor::zeros(&[3, 2, 2]);
        let three = [1.0; 3];
        assert!(matches!(
            layer_norm(&map, &three, &three, 1e-5),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            layer_norm(&tokens, &[1.0; 2], &three, 1e-5),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            group_norm_1(&tokens, &three, &three, 1e-5),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            group_norm_1(&map, &three, &[0.0; 4], 1e-5),
            Err(Error::Shape(_))
        ));
    }

    #[test]
    fn layer_norm_channels_equals_layer_norm_on_tokens() {
        let mut rng = Rng::new(71);
        for (c, h, w) in [(1, 1, 1), (5, 3, 7), (48, 4, 4)] {
            let n = h * w;
            let data = rng.vec(c * n, -4.0, 4.0);
            let (g, b) = (rng.vec(c, 0.5, 1.5), rng.vec(c, -1.0, 1.0));
            let x = Tensor::new(&[c, h, w], data.clone()).unwrap();
            let got = layer_norm_channels(&x, &g, &b, 1e-5).unwrap();
            let tokens = Tensor::new(&[n, c], transposed(&data, c, n)).unwrap();
            let want = layer_norm(&tokens, &g, &b, 1e-5).unwrap();
            assert_eq!(got.shape(), &[c, h, w]);
            assert_eq!(
                got.data(),
                &transposed(want.data(), n, c)[..],
                "{c}x{h}x{w}"
            );
        }
        let x = Tensor::zeros(&[4, 2, 2]);
        assert!(matches!(
            layer_norm_channels(&x, &[1.0; 3], &[0.0; 3], 1e-5),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            layer_norm_channels(&Tensor::zeros(&[4]), &[1.0; 4], &[0.0; 4], 1e-5),
            Err(Error::Shape(_))
        ));
    }
}
