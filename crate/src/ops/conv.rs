//! 2-D convolution (batch 1, no groups) with bias, BatchNorm folding and a fused activation.
//!
//! A 1x1 stride-1 unpadded convolution is one GEMM: weight (O, I) times the input viewed as
//! (I, H*W). Any other kernel is lowered with im2col to weight (O, I*kh*kw) times columns
//! (I*kh*kw, Ho*Wo). Output size per axis is `(H + 2p - k) / s + 1`, as in PyTorch.

use crate::error::{Error, Result};
use crate::kernels::gemm::gemm;
use crate::kernels::Parallelism;
use crate::ops::Activation;
use crate::tensor::Tensor;

/// A convolution layer: PyTorch's `nn.Conv2d` with `groups = 1`, one stride for both axes and
/// symmetric padding. The fields are public so a loader can fold extra per-channel scales into them;
/// [`Conv2d::forward`] re-checks their consistency.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    pub out_channels: usize,
    pub in_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    pub padding: usize,
    /// (out_channels, in_channels * kernel_h * kernel_w): PyTorch's (O, I, kh, kw), row-major.
    pub weight: Vec<f32>,
    /// (out_channels); zeros when the layer has no bias.
    pub bias: Vec<f32>,
}

impl Conv2d {
    /// Builds a layer from a PyTorch weight of shape `[out, in, kh, kw]` and an optional bias.
    pub fn new(
        weight_shape: [usize; 4],
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let [out_channels, in_channels, kernel_h, kernel_w] = weight_shape;
        if weight_shape.contains(&0) {
            return Err(Error::Shape(format!(
                "conv2d weight shape {weight_shape:?} has a zero dimension"
            )));
        }
        let bias = bias.unwrap_or_else(|| vec![0.0; out_channels]);
        let conv = Conv2d {
            out_channels,
            in_channels,
            kernel_h,
            kernel_w,
            stride,
            padding,
            weight,
            bias,
        };
        conv.check()?;
        Ok(conv)
    }

    /// Checks that the weight and bias lengths fit the declared shape and the stride is usable.
    fn check(&self) -> Result<()> {
        let shape = [
            self.out_channels,
            self.in_channels,
            self.kernel_h,
            self.kernel_w,
        ];
        let expected: usize = shape.iter().product();
        if self.weight.len() != expected {
            return Err(Error::Shape(format!(
                "conv2d weight {shape:?} needs {expected} values, got {}",
                self.weight.len()
            )));
        }
        if self.bias.len() != self.out_channels {
            return Err(Error::Shape(format!(
                "conv2d bias needs {} values, got {}",
                self.out_channels,
                self.bias.len()
            )));
        }
        if self.stride == 0 {
            return Err(Error::InvalidInput(
                "conv2d stride must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Folds an inference-mode BatchNorm that follows this convolution into its weight and
    /// bias: with `f = gamma / sqrt(var + eps)`, `w' = w * f` and `b' = (b - mean) * f + beta`.
    /// `f` and the new bias are computed in f64 and rounded once, so the folded layer is as
    /// close to conv-then-BN in f32 as one rounding allows.
    pub fn fold_batch_norm(
        &mut self,
        gamma: &[f32],
        beta: &[f32],
        running_mean: &[f32],
        running_var: &[f32],
        eps: f32,
    ) -> Result<()> {
        let o = self.out_channels;
        for (name, v) in [
            ("gamma", gamma),
            ("beta", beta),
            ("running_mean", running_mean),
            ("running_var", running_var),
        ] {
            if v.len() != o {
                return Err(Error::Shape(format!(
                    "batch norm {name} needs {o} values (one per output channel), got {}",
                    v.len()
                )));
            }
        }
        self.check()?;
        let mut factors = Vec::with_capacity(o);
        for (c, (&g, &v)) in gamma.iter().zip(running_var).enumerate() {
            let denom = v as f64 + eps as f64;
            if denom <= 0.0 || denom.is_nan() {
                return Err(Error::InvalidInput(format!(
                    "batch norm running_var + eps must be positive, channel {c} has {denom}"
                )));
            }
            factors.push(g as f64 / denom.sqrt());
        }
        let per_channel = self.weight.len() / o;
        for (c, w_row) in self.weight.chunks_exact_mut(per_channel).enumerate() {
            let factor = factors[c];
            for w in w_row {
                *w = (*w as f64 * factor) as f32;
            }
            let shifted = self.bias[c] as f64 - running_mean[c] as f64;
            self.bias[c] = (shifted * factor + beta[c] as f64) as f32;
        }
        Ok(())
    }

    /// Output (height, width) for an input of `h x w`; a zero extent when the padded input is
    /// smaller than the kernel.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        let axis = |len: usize, k: usize| {
            let padded = len + 2 * self.padding;
            if padded < k || self.stride == 0 {
                0
            } else {
                (padded - k) / self.stride + 1
            }
        };
        (axis(h, self.kernel_h), axis(w, self.kernel_w))
    }

    /// Multiply-accumulates of one forward pass over an `h_in x w_in` input.
    pub fn macs(&self, h_in: usize, w_in: usize) -> u64 {
        let (ho, wo) = self.output_size(h_in, w_in);
        (self.out_channels * self.in_channels * self.kernel_h * self.kernel_w) as u64
            * (ho * wo) as u64
    }

    fn is_pointwise(&self) -> bool {
        self.kernel_h == 1 && self.kernel_w == 1 && self.stride == 1 && self.padding == 0
    }

    /// Convolves a (C, H, W) input, adds the bias and applies `act`; returns (O, Ho, Wo).
    pub fn forward(&self, x: &Tensor, act: Activation, par: Parallelism) -> Result<Tensor> {
        self.check()?;
        let (c, h, w) = x.chw("conv2d")?;
        if c != self.in_channels {
            return Err(Error::Shape(format!(
                "conv2d expects {} input channels, got {c}",
                self.in_channels
            )));
        }
        let (ho, wo) = self.output_size(h, w);
        if h == 0 || w == 0 || ho == 0 || wo == 0 {
            return Err(Error::Shape(format!(
                "conv2d input {h}x{w} is too small for a {}x{} kernel with padding {}",
                self.kernel_h, self.kernel_w, self.padding
            )));
        }

        let pixels = ho * wo;
        let mut out = Vec::with_capacity(self.out_channels * pixels);
        for &b in &self.bias {
            out.extend(std::iter::repeat_n(b, pixels));
        }
        // A pointwise convolution reads the input as its (I, H*W) column matrix directly.
        let cols = (!self.is_pointwise()).then(|| self.im2col(x.data(), h, w, ho, wo));
        let cols = cols.as_deref().unwrap_or(x.data());
        let depth = self.in_channels * self.kernel_h * self.kernel_w;
        gemm(
            par,
            self.out_channels,
            pixels,
            depth,
            &self.weight,
            depth,
            cols,
            pixels,
            &mut out,
            pixels,
            true,
        );
        act.apply(&mut out);
        Tensor::new(&[self.out_channels, ho, wo], out)
    }

    /// Unfolds the input into (I * kh * kw, Ho * Wo) columns; row `(c * kh + ky) * kw + kx`
    /// holds input channel `c` shifted by `(ky, kx)`, with zeros where the window hangs over
    /// the padding.
    fn im2col(&self, x: &[f32], h: usize, w: usize, ho: usize, wo: usize) -> Vec<f32> {
        let (kh, kw, s, p) = (self.kernel_h, self.kernel_w, self.stride, self.padding);
        let pixels = ho * wo;
        let mut cols = vec![0.0; self.in_channels * kh * kw * pixels];
        for (row, dst) in cols.chunks_exact_mut(pixels).enumerate() {
            let (c, ky, kx) = (row / (kh * kw), (row / kw) % kh, row % kw);
            let plane = &x[c * h * w..(c + 1) * h * w];
            for (oy, dst_row) in dst.chunks_exact_mut(wo).enumerate() {
                let Some(iy) = (oy * s + ky).checked_sub(p).filter(|&iy| iy < h) else {
                    continue;
                };
                let src_row = &plane[iy * w..(iy + 1) * w];
                for (ox, d) in dst_row.iter_mut().enumerate() {
                    if let Some(ix) = (ox * s + kx).checked_sub(p).filter(|&ix| ix < w) {
                        *d = src_row[ix];
                    }
                }
            }
        }
        cols
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, Rng};

    /// Direct seven-loop convolution, accumulated in f64.
    fn conv_direct(conv: &Conv2d, x: &[f32], h: usize, w: usize) -> Vec<f32> {
        let (ho, wo) = conv.output_size(h, w);
        let (kh, kw) = (conv.kernel_h, conv.kernel_w);
        let mut out = vec![0.0; conv.out_channels * ho * wo];
        for o in 0..conv.out_channels {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut sum = conv.bias[o] as f64;
                    for c in 0..conv.in_channels {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * conv.stride + ky) as isize - conv.padding as isize;
                                let ix = (ox * conv.stride + kx) as isize - conv.padding as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let wv =
                                    conv.weight[((o * conv.in_channels + c) * kh + ky) * kw + kx];
                                let xv = x[(c * h + iy as usize) * w + ix as usize];
                                sum += wv as f64 * xv as f64;
                            }
                        }
                    }
                    out[(o * ho + oy) * wo + ox] = sum as f32;
                }
            }
        }
        out
    }

    fn random_conv(rng: &mut Rng, shape: [usize; 4], stride: usize, padding: usize) -> Conv2d {
        let n = shape.iter().product();
        let bias = Some(rng.vec(shape[0], -1.0, 1.0));
        Conv2d::new(shape, rng.vec(n, -1.0, 1.0), bias, stride, padding).unwrap()
    }

    #[test]
    fn matches_direct_convolution() {
        let mut rng = Rng::new(10);
        // (out, in, kh, kw, stride, padding, h, w): pointwise, 3x3 s1/s2, odd sizes, even/odd
        // extents with stride 2, non-square kernels, a kernel larger than the input.
        let cases = [
            (4, 3, 1, 1, 1, 0, 5, 7),
            (1, 1, 1, 1, 1, 0, 1, 1),
            (5, 3, 3, 3, 1, 1, 6, 5),
            (8, 3, 3, 3, 2, 1, 9, 11),
            (7, 2, 3, 3, 2, 1, 8, 8),
            (3, 4, 1, 1, 2, 0, 7, 6),
            (2, 3, 5, 5, 1, 2, 4, 9),
            (3, 2, 1, 3, 1, 1, 3, 4),
            (2, 2, 3, 3, 1, 1, 1, 1),
            (6, 5, 3, 3, 1, 0, 3, 3),
        ];
        for (o, i, kh, kw, s, p, h, w) in cases {
            let conv = random_conv(&mut rng, [o, i, kh, kw], s, p);
            let x = rng.vec(i * h * w, -2.0, 2.0);
            let input = Tensor::new(&[i, h, w], x.clone()).unwrap();
            for par in [Parallelism::Serial, Parallelism::Threads(3)] {
                let y = conv.forward(&input, Activation::None, par).unwrap();
                let (ho, wo) = conv.output_size(h, w);
                assert_eq!(y.shape(), &[o, ho, wo]);
                let what = format!("conv {o}x{i}x{kh}x{kw} s{s} p{p} on {h}x{w}");
                assert_close(y.data(), &conv_direct(&conv, &x, h, w), 1e-5, 1e-5, &what);
            }
        }
    }

    #[test]
    fn fused_activation_matches_separate_apply() {
        let mut rng = Rng::new(11);
        let conv = random_conv(&mut rng, [4, 3, 3, 3], 1, 1);
        let x = Tensor::new(&[3, 5, 6], rng.vec(90, -2.0, 2.0)).unwrap();
        let plain = conv
            .forward(&x, Activation::None, Parallelism::Serial)
            .unwrap();
        for act in [
            Activation::Relu,
            Activation::Silu,
            Activation::Gelu,
            Activation::Sigmoid,
        ] {
            let fused = conv.forward(&x, act, Parallelism::Serial).unwrap();
            let mut want = plain.data().to_vec();
            act.apply(&mut want);
            assert_eq!(fused.data(), &want[..], "{act:?}");
        }
    }

    #[test]
    fn folded_batch_norm_matches_conv_then_bn() {
        let mut rng = Rng::new(12);
        let conv = random_conv(&mut rng, [5, 3, 3, 3], 2, 1);
        let gamma = rng.vec(5, 0.5, 1.5);
        let beta = rng.vec(5, -0.5, 0.5);
        let mean = rng.vec(5, -0.5, 0.5);
        let var = rng.vec(5, 0.1, 2.0);
        let eps = 1e-3;
        let x = Tensor::new(&[3, 7, 9], rng.vec(3 * 7 * 9, -2.0, 2.0)).unwrap();

        let y = conv
            .forward(&x, Activation::None, Parallelism::Serial)
            .unwrap();
        let pixels = y.len() / 5;
        let want: Vec<f32> = y
            .data()
            .iter()
            .enumerate()
            .map(|(idx, &v)| {
                let c = idx / pixels;
                (v - mean[c]) / (var[c] + eps).sqrt() * gamma[c] + beta[c]
            })
            .collect();

        let mut folded = conv.clone();
        folded
            .fold_batch_norm(&gamma, &beta, &mean, &var, eps)
            .unwrap();
        let got = folded
            .forward(&x, Activation::None, Parallelism::Serial)
            .unwrap();
        assert_close(got.data(), &want, 1e-5, 1e-5, "folded conv + bn");
    }

    #[test]
    fn bias_defaults_to_zero_and_macs_count() {
        let conv = Conv2d::new([2, 3, 3, 3], vec![0.5; 54], None, 2, 1).unwrap();
        assert_eq!(conv.bias, vec![0.0, 0.0]);
        assert_eq!(conv.output_size(9, 10), (5, 5));
        assert_eq!(conv.output_size(1, 1), (1, 1));
        assert_eq!(conv.macs(9, 10), 2 * 27 * 25);
        let conv = Conv2d::new([1, 1, 5, 5], vec![0.0; 25], None, 1, 0).unwrap();
        assert_eq!(conv.output_size(4, 4), (0, 0));
        assert_eq!(conv.macs(4, 4), 0);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!(
            Conv2d::new([2, 3, 3, 3], vec![0.0; 53], None, 1, 1),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            Conv2d::new([2, 3, 3, 3], vec![0.0; 54], Some(vec![0.0; 3]), 1, 1),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            Conv2d::new([0, 3, 3, 3], vec![], None, 1, 1),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            Conv2d::new([2, 3, 3, 3], vec![0.0; 54], None, 0, 1),
            Err(Error::InvalidInput(_))
        ));

        let mut conv = Conv2d::new([2, 3, 3, 3], vec![0.0; 54], None, 1, 0).unwrap();
        let wrong_channels = Tensor::zeros(&[4, 5, 5]);
        assert!(matches!(
            conv.forward(&wrong_channels, Activation::None, Parallelism::Serial),
            Err(Error::Shape(_))
        ));
        let too_small = Tensor::zeros(&[3, 2, 5]);
        assert!(matches!(
            conv.forward(&too_small, Activation::None, Parallelism::Serial),
            Err(Error::Shape(_))
        ));
        let not_chw = Tensor::zeros(&[3, 25]);
        assert!(matches!(
            conv.forward(&not_chw, Activation::None, Parallelism::Serial),
            Err(Error::Shape(_))
        ));

        let ones = [1.0; 2];
        assert!(matches!(
            conv.fold_batch_norm(&ones, &ones, &ones, &[1.0; 3], 1e-5),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            conv.fold_batch_norm(&ones, &ones, &ones, &[-1.0, 1.0], 1e-5),
            Err(Error::InvalidInput(_))
        ));

        conv.weight.pop();
        let x = Tensor::zeros(&[3, 5, 5]);
        assert!(matches!(
            conv.forward(&x, Activation::None, Parallelism::Serial),
            Err(Error::Shape(_))
        ));
    }
}
