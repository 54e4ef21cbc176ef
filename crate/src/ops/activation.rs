//! Pointwise activations applied in place after a convolution or linear layer.

use crate::kernels::vecmath;

/// The activation fused at the end of an op.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    Relu,
    /// `x * sigmoid(x)`, the YOLOv5 activation.
    Silu,
    /// Exact (erf) GELU, the EfficientFormer activation.
    Gelu,
    Sigmoid,
}

impl Activation {
    /// Applies the activation to every element of `xs` in place.
    pub fn apply(self, xs: &mut [f32]) {
        match self {
            Activation::None => {}
            Activation::Relu => vecmath::relu(xs),
            Activation::Silu => vecmath::silu(xs),
            Activation::Gelu => vecmath::gelu(xs),
            Activation::Sigmoid => vecmath::sigmoid(xs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::vecmath::scalar;

    #[test]
    fn apply_matches_scalar_functions() {
        let xs = [-3.0, -0.5, 0.0, 0.25, 2.0];
        type Pointwise = fn(f32) -> f32;
        let cases: [(Activation, Pointwise); 5] = [
            (Activation::None, |x| x),
            (Activation::Relu, scalar::relu_f32),
            (Activation::Silu, scalar::silu_f32),
            (Activation::Gelu, scalar::gelu_f32),
            (Activation::Sigmoid, scalar::sigmoid_f32),
        ];
        for (act, f) in cases {
            let mut got = xs;
            act.apply(&mut got);
            let want = xs.map(f);
            assert_eq!(got, want, "{act:?}");
        }
    }
}
