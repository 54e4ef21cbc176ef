//! In-place vector maths on `f32` slices: activations, `exp`, `erf` and a row softmax.
//!
//! The functions here are the entry points ops call; each dispatches to the best
//! implementation compiled for the target. [`scalar`] holds the element-by-element twins that
//! serve as test oracles, plus the per-element functions (`erf_f32`, ...) a vector
//! implementation mirrors lane by lane. Only the scalar implementation exists so far.

pub mod scalar;

/// `x = max(x, 0)`.
pub fn relu(xs: &mut [f32]) {
    scalar::relu(xs);
}

/// `x = x * sigmoid(x)` (SiLU / swish).
pub fn silu(xs: &mut [f32]) {
    scalar::silu(xs);
}

/// `x = 1 / (1 + exp(-x))`.
pub fn sigmoid(xs: &mut [f32]) {
    scalar::sigmoid(xs);
}

/// Exact GELU, `x = 0.5 * x * (1 + erf(x / sqrt(2)))` (PyTorch's `approximate='none'`).
pub fn gelu(xs: &mut [f32]) {
    scalar::gelu(xs);
}

/// `x = exp(x)`.
pub fn exp(xs: &mut [f32]) {
    scalar::exp(xs);
}

/// `x = erf(x)`, max abs error below 1e-6.
pub fn erf(xs: &mut [f32]) {
    scalar::erf(xs);
}

/// Softmax over the whole slice (one row), computed as `exp(x - max) / sum`. An empty slice
/// is left as is.
pub fn softmax(row: &mut [f32]) {
    scalar::softmax(row);
}
