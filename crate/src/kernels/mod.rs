//! Compute kernels: GEMM and vector maths on plain slices. Kernels know nothing about
//! tensors, layers or models. Every optimised kernel has a scalar twin that is its test oracle.
//!
//! Design:
//!
//! - [`gemm`] is a packed, register-blocked matrix multiplication with a fused bias and
//!   activation. One contract ([`gemm::GemmKernel`]) and a list of the implementations
//!   compiled for the target, best first: portable scalar always, wasm SIMD128 and relaxed
//!   SIMD by build flags, x86_64 AVX2 by run-time detection. One test suite runs every entry
//!   against the plain loop [`gemm::gemm_scalar`].
//! - [`vecmath`] holds in-place slice functions (activations, `exp`, `erf`, softmax), run four
//!   lanes at a time (wasm SIMD128, or arrays the compiler maps onto SSE/NEON);
//!   [`vecmath::scalar`] is the element-by-element twin.
//! - [`transpose()`] moves strided matrices between row and column order (GEMM itself reads
//!   transposed operands in place through strided views).
//! - Every kernel that can split its work takes a [`Parallelism`] argument, so the caller
//!   decides whether a call may use threads; nothing reads a global setting. [`parallel`] is
//!   the one switch between rayon (cargo feature `threads`) and serial execution.
//!
//! Kernels trust their callers: shapes are validated by the ops in [`crate::ops`]. GEMM still
//! asserts that its views fit their slices, because its tiles are written through raw
//! pointers; after the ops' checks those assertions never fire.
//!
//! ```
//! use effyolo::kernels::{gemm, Parallelism};
//!
//! // (2 x 3) . (3 x 1)
//! let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let b = [1.0, 0.0, -1.0];
//! let mut c = [0.0; 2];
//! gemm::gemm(Parallelism::Serial, 2, 1, 3, &a, 3, &b, 1, &mut c, 1, false);
//! assert_eq!(c, [-2.0, -2.0]);
//! ```

pub mod gemm;
pub mod parallel;
pub mod transpose;
pub mod vecmath;

pub use transpose::transpose;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

/// How a kernel call may split its work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Parallelism {
    /// Run on the calling thread only.
    #[default]
    Serial,
    /// Split the work into up to this many independent parts, run on rayon's current pool
    /// when the crate is built with the `threads` feature and one after another on the
    /// calling thread otherwise. Work too small to pay for a thread is not split (see
    /// [`gemm::DEFAULT_MIN_MACS_PER_PART`]).
    Threads(usize),
}

impl Parallelism {
    /// The number of independent parts work may be split into (at least 1).
    pub fn max_parts(self) -> usize {
        match self {
            Parallelism::Serial => 1,
            Parallelism::Threads(n) => n.max(1),
        }
    }

    /// How many parts `work` units should be split into when a part is only worth a thread
    /// from `min_per_part` units on: at most [`Parallelism::max_parts`], at least 1.
    pub fn parts_for(self, work: u64, min_per_part: u64) -> usize {
        let by_work = (work / min_per_part.max(1)).clamp(1, usize::MAX as u64) as usize;
        self.max_parts().min(by_work)
    }
}
