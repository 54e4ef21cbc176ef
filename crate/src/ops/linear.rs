//! Fully connected layer on token sequences: PyTorch's `nn.Linear` applied to each row of an
//! (N, in) tensor.
//!
//! The weight stays in PyTorch's (out, in) orientation and is packed once for GEMM, so the
//! product is computed as `y^T = W · x^T + b`: `x^T` and `y^T` are the input and output read
//! and written in place through transposed (strided) views, with no copies. The bias (one per
//! row of `y^T`) and the activation are applied by the GEMM epilogue.

use crate::error::{Error, Result};
use crate::kernels::gemm::{self, GemmOptions, Lhs, MatMut, MatRef, PackedA, Rhs};
use crate::kernels::Parallelism;
use crate::ops::Activation;
use crate::tensor::Tensor;

/// A linear layer `y = x W^T + b`, with `W` kept packed for GEMM.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    in_features: usize,
    out_features: usize,
    /// (out_features, in_features), packed for the best GEMM kernel.
    weight: PackedA,
    /// (out_features); zeros when the layer has no bias.
    bias: Vec<f32>,
}

impl Linear {
    /// Builds a layer from a PyTorch (out, in) weight and an optional bias.
    pub fn new(
        in_features: usize,
        out_features: usize,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
    ) -> Result<Self> {
        let expected = out_features * in_features;
        if weight.len() != expected {
            return Err(Error::Shape(format!(
                "linear weight ({out_features}, {in_features}) needs {expected} values, got {}",
                weight.len()
            )));
        }
        let bias = bias.unwrap_or_else(|| vec![0.0; out_features]);
        if bias.len() != out_features {
            return Err(Error::Shape(format!(
                "linear bias needs {out_features} values, got {}",
                bias.len()
            )));
        }
        let weight = PackedA::new(
            gemm::best_kernel(),
            MatRef::row_major(&weight, out_features, in_features),
        );
        Ok(Linear {
            in_features,
            out_features,
            weight,
            bias,
        })
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }

    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The (out, in) weight (unpacked copy).
    pub fn weight(&self) -> Vec<f32> {
        self.weight.unpack()
    }

    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// Multiply-accumulates for `n` tokens.
    pub fn macs(&self, n: usize) -> u64 {
        n as u64 * self.in_features as u64 * self.out_features as u64
    }

    /// Maps (N, in_features) to (N, out_features) and applies `act`.
    pub fn forward(&self, x: &Tensor, act: Activation, par: Parallelism) -> Result<Tensor> {
        let (n, c) = x.tokens("linear")?;
        if c != self.in_features {
            return Err(Error::Shape(format!(
                "linear expects {} input features, got {c}",
                self.in_features
            )));
        }
        let (fin, fout) = (self.in_features, self.out_features);
        let mut y = vec![0.0; n * fout];
        let options = GemmOptions {
            bias: Some(&self.bias),
            activation: act,
            ..GemmOptions::default()
        };
        gemm::matmul(
            par,
            Lhs::Packed(&self.weight),
            Rhs::Matrix(MatRef::row_major(x.data(), n, fin).t()),
            MatMut::row_major(&mut y, n, fout).t(),
            &options,
        );
        Tensor::new(&[n, fout], y)
    }
}

impl Linear {
    /// The layer applied at every position of a channel-major (in_features, ...) tensor,
    /// e.g. (C, H, W) -> (out_features, H, W): a 1x1 convolution with this weight,
    /// `y = W · x + b` with `x` and `y` read and written row-major.
    pub fn forward_channels(
        &self,
        x: &Tensor,
        act: Activation,
        par: Parallelism,
    ) -> Result<Tensor> {
        let (c, n) = x.channel_major("linear (channel-major)")?;
        if c != self.in_features {
            return Err(Error::Shape(format!(
                "linear expects {} input channels, got {c}",
                self.in_features
            )));
        }
        let mut y = vec![0.0; self.out_features * n];
        gemm::matmul(
            par,
            Lhs::Packed(&self.weight),
            Rhs::Matrix(MatRef::row_major(x.data(), c, n)),
            MatMut::row_major(&mut y, self.out_features, n),
            &GemmOptions {
                bias: Some(&self.bias),
                activation: act,
                ..GemmOptions::default()
            },
        );
        let mut shape = x.shape().to_vec();
        shape[0] = self.out_features;
        Tensor::new(&shape, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, transposed, Rng};

    fn linear_direct(l: &Linear, x: &[f32], n: usize) -> Vec<f32> {
        let (fin, fout, weight) = (l.in_features(), l.out_features(), l.weight());
        let mut y = vec![0.0; n * fout];
        for t in 0..n {
            for o in 0..fout {
                let mut sum = l.bias()[o] as f64;
                for i in 0..fin {
                    sum += weight[o * fin + i] as f64 * x[t * fin + i] as f64;
                }
                y[t * fout + o] = sum as f32;
            }
        }
        y
    }

    #[test]
    fn matches_direct_product() {
        let mut rng = Rng::new(20);
        for (n, fin, fout) in [
            (1, 1, 1),
            (5, 3, 7),
            (17, 8, 33),
            (49, 64, 9),
            (0, 4, 3),
            (3, 1, 16),
        ] {
            let weight = rng.vec(fin * fout, -1.0, 1.0);
            let bias = rng.vec(fout, -1.0, 1.0);
            let layer = Linear::new(fin, fout, weight, Some(bias)).unwrap();
            let x = rng.vec(n * fin, -2.0, 2.0);
            let input = Tensor::new(&[n, fin], x.clone()).unwrap();
            for par in [Parallelism::Serial, Parallelism::Threads(4)] {
                let y = layer.forward(&input, Activation::None, par).unwrap();
                assert_eq!(y.shape(), &[n, fout]);
                let what = format!("linear n={n} {fin}->{fout}");
                assert_close(y.data(), &linear_direct(&layer, &x, n), 1e-5, 1e-5, &what);
            }
        }
    }

    #[test]
    fn applies_activation_and_counts_macs() {
        let layer = Linear::new(2, 2, vec![1.0, 0.0, 0.0, -1.0], None).unwrap();
        let x = Tensor::new(&[1, 2], vec![3.0, 4.0]).unwrap();
        let y = layer
            .forward(&x, Activation::Relu, Parallelism::Serial)
            .unwrap();
        assert_eq!(y.data(), &[3.0, 0.0]);
        assert_eq!(layer.macs(10), 40);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!(
            Linear::new(3, 2, vec![0.0; 5], None),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            Linear::new(3, 2, vec![0.0; 6], Some(vec![0.0; 3])),
            Err(Error::Shape(_))
        ));
        let layer = Linear::new(3, 2, vec![0.0; 6], None).unwrap();
        let wrong_features = Tensor::zeros(&[4, 2]);
        assert!(matches!(
            layer.forward(&wrong_features, Activation::None, Parallelism::Serial),
            Err(Error::Shape(_))
        ));
        let not_tokens = Tensor::zeros(&[1, 4, 3]);
        assert!(matches!(
            layer.forward(&not_tokens, Activation::None, Parallelism::Serial),
            Err(Error::Shape(_))
        ));
    }

    #[test]
    fn forward_channels_equals_forward_on_tokens() {
        let mut rng = Rng::new(72);
        for (fin, fout, h, w) in [(1, 1, 1, 1), (7, 5, 3, 3), (48, 96, 10, 10)] {
            let n = h * w;
            let l = Linear::new(
                fin,
                fout,
                rng.vec(fin * fout, -1.0, 1.0),
                Some(rng.vec(fout, -1.0, 1.0)),
            )
            .unwrap();
            let data = rng.vec(fin * n, -1.0, 1.0);
            for par in [Parallelism::Serial, Parallelism::Threads(3)] {
                let x = Tensor::new(&[fin, h, w], data.clone()).unwrap();
                let got = l.forward_channels(&x, Activation::Gelu, par).unwrap();
                let tokens = Tensor::new(&[n, fin], transposed(&data, fin, n)).unwrap();
                let want = l.forward(&tokens, Activation::Gelu, par).unwrap();
                assert_eq!(got.shape(), &[fout, h, w]);
                assert_eq!(
                    got.data(),
                    &transposed(want.data(), n, fout)[..],
                    "{fin}->{fout} at {n}"
                );
            }
        }
        let l = Linear::new(3, 2, vec![0.0; 6], None).unwrap();
        let par = Parallelism::Serial;
        assert!(matches!(
            l.forward_channels(&Tensor::zeros(&[4, 2]), Activation::None, par),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            l.forward_channels(&Tensor::zeros(&[3]), Activation::None, par),
            Err(Error::Shape(_))
        ));
    }
}
