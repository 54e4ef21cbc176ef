//! In-place vector maths on `f32` slices: activations, `exp`, `erf` and a row softmax.
//!
//! The functions here are the entry points ops call. They run the vector algorithms of
//! `vector` four elements at a time: on wasm32 with SIMD128 in `v128` registers, elsewhere on
//! plain four-element arrays that the compiler keeps in SSE/NEON registers. [`scalar`] holds
//! the element-by-element twins (libm `exp`, the rational `erf`) that serve as test oracles.
//!
//! Accuracy against the twins: `erf` and GELU are bit-identical (same rational function,
//! same evaluation order); `exp`, sigmoid, SiLU and softmax use a polynomial `exp` within
//! about 2 ulp of libm's (see `vector` for its clamping at the ends of the f32 range). In a
//! relaxed-SIMD build the polynomial steps are `f32x4.relaxed_madd`, which the engine may
//! fuse (one rounding instead of two): results then differ from the twins by a few ulp, and
//! GELU by at most 1e-6 absolute where `1 + erf` cancels; the bounds against the f64
//! references hold for every build (tests).

mod lanes;
pub mod scalar;
mod vector;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
type Best = lanes::V128;
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
type Best = lanes::Array4;

/// A pointwise activation, applied in place; GEMM fuses it into its epilogue.
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
            Activation::Relu => relu(xs),
            Activation::Silu => silu(xs),
            Activation::Gelu => gelu(xs),
            Activation::Sigmoid => sigmoid(xs),
        }
    }
}

/// `x = max(x, 0)` (NaN stays NaN).
pub fn relu(xs: &mut [f32]) {
    vector::relu_slice::<Best>(xs);
}

/// `x = x * sigmoid(x)` (SiLU / swish).
pub fn silu(xs: &mut [f32]) {
    vector::silu_slice::<Best>(xs);
}

/// `x = 1 / (1 + exp(-x))`.
pub fn sigmoid(xs: &mut [f32]) {
    vector::sigmoid_slice::<Best>(xs);
}

/// Exact GELU, `x = 0.5 * x * (1 + erf(x / sqrt(2)))` (PyTorch's `approximate='none'`).
pub fn gelu(xs: &mut [f32]) {
    vector::gelu_slice::<Best>(xs);
}

/// `x = exp(x)`, within about 2 ulp; saturates at 2.4e38 above 88.37 and gives 1.2e-38
/// below -87.33.
pub fn exp(xs: &mut [f32]) {
    vector::exp_slice::<Best>(xs);
}

/// `x = erf(x)`, max abs error below 1e-6.
pub fn erf(xs: &mut [f32]) {
    vector::erf_slice::<Best>(xs);
}

/// Softmax over the whole slice (one row), computed as `exp(x - max) / sum`. An empty slice
/// is left as is.
pub fn softmax(row: &mut [f32]) {
    vector::softmax::<Best>(row);
}

/// The portable four-lane implementation of each entry point, for comparing against the
/// SIMD one in tests.
#[cfg(test)]
pub(crate) mod portable {
    use super::lanes::Array4;
    use super::vector;

    pub fn relu(xs: &mut [f32]) {
        vector::relu_slice::<Array4>(xs);
    }
    pub fn silu(xs: &mut [f32]) {
        vector::silu_slice::<Array4>(xs);
    }
    pub fn sigmoid(xs: &mut [f32]) {
        vector::sigmoid_slice::<Array4>(xs);
    }
    pub fn gelu(xs: &mut [f32]) {
        vector::gelu_slice::<Array4>(xs);
    }
    pub fn exp(xs: &mut [f32]) {
        vector::exp_slice::<Array4>(xs);
    }
    pub fn erf(xs: &mut [f32]) {
        vector::erf_slice::<Array4>(xs);
    }
    pub fn softmax(row: &mut [f32]) {
        vector::softmax::<Array4>(row);
    }
}
