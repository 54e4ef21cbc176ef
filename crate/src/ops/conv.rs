//! 2-D convolution (batch 1, no groups) with bias, BatchNorm folding and a fused activation.
//!
//! Both forms run on the packed GEMM of [`crate::kernels::gemm`], with the weight
//! (O, I*kh*kw) packed once when the layer is built:
//!
//! - a 1x1, stride-1, unpadded convolution is one GEMM with the input read in place as its
//!   (I, H*W) matrix;
//! - any other kernel multiplies the weight by the column matrix (I*kh*kw, Ho*Wo), which
//!   [`Im2Col`] writes block by block straight into the GEMM's packed panels, so the full
//!   column matrix never exists.
//!
//! The bias and the activation are applied by the GEMM to each output tile while it is still
//! in cache. Output size per axis is `(H + 2p - k) / s + 1`, as in PyTorch.

use crate::error::{Error, Result};
use crate::kernels::gemm::{self, GemmOptions, Im2Col, Lhs, MatMut, MatRef, PackedA, Rhs};
use crate::kernels::Parallelism;
use crate::ops::Activation;
use crate::tensor::Tensor;

/// A convolution layer: PyTorch's `nn.Conv2d` with `groups = 1`, one stride for both axes and
/// symmetric padding. The weight is kept only in packed form; BatchNorm and per-channel
/// scales are folded in through [`Conv2d::fold_batch_norm`] and
/// [`Conv2d::scale_output_channels`].
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    out_channels: usize,
    in_channels: usize,
    kernel_h: usize,
    kernel_w: usize,
    stride: usize,
    padding: usize,
    /// (out_channels, in_channels * kernel_h * kernel_w), packed for the best GEMM kernel.
    weight: PackedA,
    /// (out_channels); zeros when the layer has no bias.
    bias: Vec<f32>,
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
        let expected: usize = weight_shape.iter().product();
        if weight.len() != expected {
            return Err(Error::Shape(format!(
                "conv2d weight {weight_shape:?} needs {expected} values, got {}",
                weight.len()
            )));
        }
        let bias = bias.unwrap_or_else(|| vec![0.0; out_channels]);
        if bias.len() != out_channels {
            return Err(Error::Shape(format!(
                "conv2d bias needs {out_channels} values, got {}",
                bias.len()
            )));
        }
        if stride == 0 {
            return Err(Error::InvalidInput(
                "conv2d stride must be at least 1".into(),
            ));
        }
        Ok(Conv2d {
            out_channels,
            in_channels,
            kernel_h,
            kernel_w,
            stride,
            padding,
            weight: pack_weight(&weight, out_channels),
            bias,
        })
    }

    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// (kernel_h, kernel_w).
    pub fn kernel_size(&self) -> (usize, usize) {
        (self.kernel_h, self.kernel_w)
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    pub fn padding(&self) -> usize {
        self.padding
    }

    /// The weight in PyTorch's (O, I, kh, kw) order (unpacked copy).
    pub fn weight(&self) -> Vec<f32> {
        self.weight.unpack()
    }

    /// The weight as packed for GEMM, (O, I*kh*kw).
    pub(crate) fn packed_weight(&self) -> &PackedA {
        &self.weight
    }

    pub fn bias(&self) -> &[f32] {
        &self.bias
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
        let mut weight = self.weight.unpack();
        let per_channel = weight.len() / o;
        for (c, w_row) in weight.chunks_exact_mut(per_channel).enumerate() {
            let factor = factors[c];
            for w in w_row {
                *w = (*w as f64 * factor) as f32;
            }
            let shifted = self.bias[c] as f64 - running_mean[c] as f64;
            self.bias[c] = (shifted * factor + beta[c] as f64) as f32;
        }
        self.weight = pack_weight(&weight, o);
        Ok(())
    }

    /// Multiplies output channel `o`'s weights and bias by `scale[o]` (in f32): folds a
    /// per-channel scale that follows the layer, such as a LayerScale.
    pub fn scale_output_channels(&mut self, scale: &[f32]) -> Result<()> {
        if scale.len() != self.out_channels {
            return Err(Error::Shape(format!(
                "conv2d output scale needs {} values, got {}",
                self.out_channels,
                scale.len()
            )));
        }
        let mut weight = self.weight.unpack();
        let per_channel = weight.len() / self.out_channels;
        for ((w_row, b), &s) in weight
            .chunks_exact_mut(per_channel)
            .zip(&mut self.bias)
            .zip(scale)
        {
            w_row.iter_mut().for_each(|w| *w *= s);
            *b *= s;
        }
        self.weight = pack_weight(&weight, self.out_channels);
        Ok(())
    }

    /// Output (height, width) for an input of `h x w`; a zero extent when the padded input is
    /// smaller than the kernel.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        let axis = |len: usize, k: usize| {
            let padded = len + 2 * self.padding;
            if padded < k {
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

    /// Whether the layer is a plain matrix product over channels (1x1, stride 1, no padding).
    pub fn is_pointwise(&self) -> bool {
        self.kernel_h == 1 && self.kernel_w == 1 && self.stride == 1 && self.padding == 0
    }

    /// Checks a (C, H, W) input and returns (C, H, W, Ho, Wo).
    fn check_input(&self, x: &Tensor) -> Result<(usize, usize, usize, usize, usize)> {
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
        Ok((c, h, w, ho, wo))
    }

    /// Convolves a (C, H, W) input, adds the bias and applies `act`; returns (O, Ho, Wo).
    pub fn forward(&self, x: &Tensor, act: Activation, par: Parallelism) -> Result<Tensor> {
        let (c, h, w, ho, wo) = self.check_input(x)?;
        let pixels = ho * wo;
        let mut out = vec![0.0; self.out_channels * pixels];
        let options = GemmOptions {
            bias: Some(&self.bias),
            activation: act,
            ..GemmOptions::default()
        };
        let columns;
        let rhs = if self.is_pointwise() {
            Rhs::Matrix(MatRef::row_major(x.data(), c, h * w))
        } else {
            columns = Im2Col::new(
                x.data(),
                (c, h, w),
                (self.kernel_h, self.kernel_w),
                self.stride,
                self.padding,
            );
            Rhs::Im2Col(&columns)
        };
        gemm::matmul(
            par,
            Lhs::Packed(&self.weight),
            rhs,
            MatMut::row_major(&mut out, self.out_channels, pixels),
            &options,
        );
        Tensor::new(&[self.out_channels, ho, wo], out)
    }
}

/// Packs an (O, K) row-major weight for the best kernel of this machine.
fn pack_weight(weight: &[f32], out_channels: usize) -> PackedA {
    let depth = weight.len() / out_channels;
    PackedA::new(
        gemm::best_kernel(),
        MatRef::row_major(weight, out_channels, depth),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, Rng};

    /// Direct seven-loop convolution, accumulated in f64.
    fn conv_direct(conv: &Conv2d, x: &[f32], h: usize, w: usize) -> Vec<f32> {
        let (ho, wo) = conv.output_size(h, w);
        let (kh, kw) = conv.kernel_size();
        let (weight, bias) = (conv.weight(), conv.bias());
        let (stride, padding) = (conv.stride(), conv.padding());
        let mut out = vec![0.0; conv.out_channels() * ho * wo];
        for o in 0..conv.out_channels() {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut sum = bias[o] as f64;
                    for c in 0..conv.in_channels() {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * stride + ky) as isize - padding as isize;
                                let ix = (ox * stride + kx) as isize - padding as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let wv = weight[((o * conv.in_channels() + c) * kh + ky) * kw + kx];
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
        assert_eq!(conv.bias(), &[0.0, 0.0]);
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
        assert!(matches!(
            conv.scale_output_channels(&[1.0; 3]),
            Err(Error::Shape(_))
        ));
    }
}
