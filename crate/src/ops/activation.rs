//! Pointwise activations applied after a convolution or linear layer. The type lives with
//! the vector maths so GEMM can fuse it into its epilogue; ops use it from here.

pub use crate::kernels::vecmath::Activation;

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
