//! Fully connected layer on token sequences: PyTorch's `nn.Linear` applied to each row of an
//! (N, in) tensor.
//!
//! The weight stays in PyTorch's (out, in) layout, so the product is computed as
//! `y^T = W · x^T`: the input is transposed to (in, N), one GEMM writes (out, N) on top of the
//! broadcast bias, and the result is transposed back. The two transposes cost O(N * C) next
//! to the O(N * in * out) GEMM.

use crate::error::{Error, Result};
use crate::kernels::gemm::gemm;
use crate::kernels::{transpose, Parallelism};
use crate::ops::Activation;
use crate::tensor::Tensor;

/// A linear layer `y = x W^T + b`. The fields are public so a loader can fold per-output
/// scales into them; [`Linear::forward`] re-checks their consistency.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    pub in_features: usize,
    pub out_features: usize,
    /// (out_features, in_features), row-major, as in PyTorch.
    pub weight: Vec<f32>,
    /// (out_features); zeros when the layer has no bias.
    pub bias: Vec<f32>,
}

impl Linear {
    /// Builds a layer from a PyTorch (out, in) weight and an optional bias.
    pub fn new(
        in_features: usize,
        out_features: usize,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
    ) -> Result<Self> {
        let bias = bias.unwrap_or_else(|| vec![0.0; out_features]);
        let linear = Linear {
            in_features,
            out_features,
            weight,
            bias,
        };
        linear.check()?;
        Ok(linear)
    }

    fn check(&self) -> Result<()> {
        let expected = self.out_features * self.in_features;
        if self.weight.len() != expected {
            return Err(Error::Shape(format!(
                "linear weight ({}, {}) needs {expected} values, got {}",
                self.out_features,
                self.in_features,
                self.weight.len()
            )));
        }
        if self.bias.len() != self.out_features {
            return Err(Error::Shape(format!(
                "linear bias needs {} values, got {}",
                self.out_features,
                self.bias.len()
            )));
        }
        Ok(())
    }

    /// Multiply-accumulates for `n` tokens.
    pub fn macs(&self, n: usize) -> u64 {
        n as u64 * self.in_features as u64 * self.out_features as u64
    }

    /// Maps (N, in_features) to (N, out_features) and applies `act`.
    pub fn forward(&self, x: &Tensor, act: Activation, par: Parallelism) -> Result<Tensor> {
        self.check()?;
        let (n, c) = x.tokens("linear")?;
        if c != self.in_features {
            return Err(Error::Shape(format!(
                "linear expects {} input features, got {c}",
                self.in_features
            )));
        }
        let (fin, fout) = (self.in_features, self.out_features);
        let mut x_t = vec![0.0; fin * n];
        transpose(n, fin, x.data(), fin, &mut x_t, n);

        let mut y_t = Vec::with_capacity(fout * n);
        for &b in &self.bias {
            y_t.extend(std::iter::repeat_n(b, n));
        }
        gemm(
            par,
            fout,
            n,
            fin,
            &self.weight,
            fin,
            &x_t,
            n,
            &mut y_t,
            n,
            true,
        );

        let mut y = vec![0.0; n * fout];
        transpose(fout, n, &y_t, n, &mut y, fout);
        act.apply(&mut y);
        Tensor::new(&[n, fout], y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, Rng};

    fn linear_direct(l: &Linear, x: &[f32], n: usize) -> Vec<f32> {
        let mut y = vec![0.0; n * l.out_features];
        for t in 0..n {
            for o in 0..l.out_features {
                let mut sum = l.bias[o] as f64;
                for i in 0..l.in_features {
                    sum += l.weight[o * l.in_features + i] as f64 * x[t * l.in_features + i] as f64;
                }
                y[t * l.out_features + o] = sum as f32;
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
}
