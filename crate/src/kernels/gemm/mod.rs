//! Single-precision matrix multiplication, `C = act(A·B + bias)` or `C = act(C + A·B + bias)`.
//!
//! # Design
//!
//! The implementation follows the blocked, packed scheme of BLIS and its descendants
//! (rten-gemm, tract, gemm): a small *micro-kernel* keeps an `MR x NR` tile of `C` in registers
//! and runs down the shared dimension over two *packed panels*, `MR` rows of `A` stored
//! column by column and `NR` columns of `B` stored row by row, so every step is one or two
//! contiguous vector loads, `MR` broadcasts and `MR * NR / lanes` multiply-adds. Around it, a
//! portable *driver* ([`driver`]) cuts the product into blocks that fit the caches
//! (`KC` deep, `MC` rows, `NC` columns), packs them, and handles the ragged edges, the
//! optional bias and activation (the *epilogue*, applied to each tile while it is still in
//! L1), and the split into parts for threads.
//!
//! The micro-kernels, each selected when it is compiled in and the machine supports it:
//!
//! | name      | where                                   | tile    | per step            |
//! |-----------|-----------------------------------------|---------|---------------------|
//! | `avx2`    | x86_64, run-time detected AVX2 + FMA    | 6 x 16  | 12 `vfmadd` (8 lanes) |
//! | `relaxed` | wasm32 built with `+relaxed-simd`       | 4 x 8   | 8 `f32x4.relaxed_madd` |
//! | `simd128` | wasm32 built with `+simd128`            | 4 x 8   | 8 `f32x4.mul` + 8 `f32x4.add` |
//! | `scalar`  | everywhere                              | 4 x 8   | 32 multiply-adds     |
//!
//! The wasm tile is 4 x 8 because V8 on x64 has 16 SIMD registers: 8 accumulators, two `B`
//! vectors and a broadcast fit without spilling, while 8 x 8 (16 accumulators) would spill.
//! A wasm module containing relaxed-SIMD instructions does not validate in engines without
//! the proposal, so `relaxed` is never chosen at run time: it exists only in a build compiled
//! with `-C target-feature=+relaxed-simd`, and the page picks that build by feature detection.
//!
//! Weights are constant, so the left operand of a layer can be packed once at load time
//! ([`PackedA`]) and the per-call work is packing `B` alone. `B` can also be a *virtual*
//! matrix: [`Im2Col`] packs convolution windows straight from the input image into `B`
//! panels, so a 3x3 convolution never materialises its column matrix beyond one block.
//!
//! # Numerics: the drift of fused multiply-add
//!
//! `scalar` and `simd128` round every product and every sum (`fl(c + fl(a * b))`), exactly
//! like the plain loop [`gemm_scalar`]. `avx2` always fuses (`fl(c + a * b)`, one rounding),
//! and `relaxed_madd` may fuse or not at the engine's choice (V8 and Wasmtime fuse on x86
//! with FMA; without FMA they round twice), so the same relaxed build can give bit-different
//! results on two machines. Per term, the difference is at most half an ulp of the product;
//! over a dot product of length `k` with terms of magnitude up to `t`, the two results differ
//! by at most about `k * t * 2^-24` (usually far less: the errors are random-signed and grow
//! like `sqrt(k)`), which is the same order as the rounding error of either method against
//! exact arithmetic. All kernels also sum in a different order from the plain loop (one
//! `KC`-deep partial sum per block, added to `C` between blocks).
//!
//! The kernel tests therefore compare every implementation against [`gemm_scalar`] with an
//! absolute tolerance of `1e-6 * (k + 1)` plus a relative `1e-5`, for operands in `[-1, 1]`
//! (`|sum| <= k`); measured differences are well below this. The model's per-stage parity
//! tests against PyTorch (bound `1e-4` relative to each activation's scale) hold unchanged
//! for every kernel.
//!
//! # Example
//!
//! ```
//! use effyolo::kernels::gemm::{self, GemmOptions, Lhs, MatMut, MatRef, PackedA, Rhs};
//! use effyolo::kernels::{vecmath::Activation, Parallelism};
//!
//! // relu(W · x + b) with W (2 x 3) packed once, x (3 x 2).
//! let kernel = gemm::best_kernel();
//! let w = PackedA::new(kernel, MatRef::row_major(&[1.0, 2.0, 3.0, -1.0, -2.0, -3.0], 2, 3));
//! let x = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
//! let mut y = [0.0; 4];
//! let options = GemmOptions {
//!     bias: Some(&[0.5, 0.5]),
//!     activation: Activation::Relu,
//!     ..GemmOptions::default()
//! };
//! gemm::matmul(
//!     Parallelism::Serial,
//!     Lhs::Packed(&w),
//!     Rhs::Matrix(MatRef::row_major(&x, 3, 2)),
//!     MatMut::row_major(&mut y, 2, 2),
//!     &options,
//! );
//! assert_eq!(y, [6.5, 3.5, 0.0, 0.0]);
//! ```

// The GEMM signatures mirror BLAS sgemm: (m, n, k, a, lda, b, ldb, c, ldc) plus flags.
#![allow(clippy::too_many_arguments)]

mod driver;
mod im2col;
mod matrix;
mod pack;
mod scalar;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use im2col::Im2Col;
pub use matrix::{MatMut, MatRef};
pub use pack::{PackedA, PackedB};
pub use scalar::ScalarGemm;

#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub use wasm::RelaxedGemm;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use wasm::Simd128Gemm;
#[cfg(target_arch = "x86_64")]
pub use x86_64::Avx2Gemm;

use super::vecmath::Activation;
use super::Parallelism;

/// Depth of one block of the shared dimension: a `KC x NR` panel of `B` (8 KiB for NR = 8)
/// stays in L1 while the micro-kernel streams `MR`-row panels of `A` past it. Shared by all
/// kernels, because [`PackedA`] lays its blocks out by it.
pub(crate) const KC: usize = 256;

/// Rows of `A` per block (rounded down to a multiple of the kernel's `MR`): a `MC x KC` block
/// of packed `A` (96 KiB) stays in L2 while every `B` panel of the block passes through it.
pub(crate) const MC: usize = 96;

/// Columns of `B` per block: a `KC x NC` packed block of `B` (256 KiB) stays in L2.
pub(crate) const NC: usize = 256;

/// Below this many multiply-accumulates per part, a product is not split for threads: handing
/// a part to a pool worker and joining it costs microseconds natively and more between Web
/// Workers, while 2^18 MACs take about 20 us at the SIMD128 kernel's 10-20 GMAC/s. So a
/// product gets at most `macs / 2^18` parts, and one smaller than two parts runs serially
/// whatever the [`Parallelism`].
pub const DEFAULT_MIN_MACS_PER_PART: u64 = 1 << 18;

/// The left operand `A` (`m x k`).
#[derive(Clone, Copy, Debug)]
pub enum Lhs<'a> {
    /// Any strided matrix; packed block by block during the call.
    Matrix(MatRef<'a>),
    /// Packed ahead of time (constant weights). Used as is when it was packed for the kernel
    /// that runs the product; otherwise it is unpacked and repacked for that kernel.
    Packed(&'a PackedA),
}

impl Lhs<'_> {
    /// (rows, columns) = (m, k).
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Lhs::Matrix(a) => (a.rows(), a.cols()),
            Lhs::Packed(a) => (a.rows(), a.depth()),
        }
    }
}

/// The right operand `B` (`k x n`).
#[derive(Clone, Copy, Debug)]
pub enum Rhs<'a> {
    /// Any strided matrix.
    Matrix(MatRef<'a>),
    /// The column matrix of a convolution, generated while packing.
    Im2Col(&'a Im2Col<'a>),
    /// Packed ahead of time: used as is when it was packed for the kernel that runs the
    /// product (no packing during the call); otherwise unpacked and packed again per block.
    Packed(&'a PackedB),
}

impl Rhs<'_> {
    /// (rows, columns) = (k, n).
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Rhs::Matrix(b) => (b.rows(), b.cols()),
            Rhs::Im2Col(b) => (b.rows(), b.cols()),
            Rhs::Packed(b) => (b.depth(), b.cols()),
        }
    }
}

/// What to do besides the product.
#[derive(Clone, Copy, Debug)]
pub struct GemmOptions<'a> {
    /// Add the product to the previous contents of `C` instead of overwriting them (which
    /// are then never read, so they may be NaN).
    pub accumulate: bool,
    /// One value per row of `C`, added once to every element of that row.
    pub bias: Option<&'a [f32]>,
    /// Applied to every element of `C` last, after the bias.
    pub activation: Activation,
    /// Work below which a part is not worth a thread; see [`DEFAULT_MIN_MACS_PER_PART`].
    pub min_macs_per_part: u64,
}

impl Default for GemmOptions<'_> {
    fn default() -> Self {
        GemmOptions {
            accumulate: false,
            bias: None,
            activation: Activation::None,
            min_macs_per_part: DEFAULT_MIN_MACS_PER_PART,
        }
    }
}

/// One GEMM implementation: a micro-kernel plus the shared driver.
///
/// [`GemmKernel::matmul`] computes `C = act(A·B + bias)` (or `act(C + A·B + bias)` with
/// [`GemmOptions::accumulate`]) for any shapes, including empty ones: with `k == 0` the
/// product is zero and only the bias and activation apply. Elements of `C`'s storage outside
/// its view are never touched.
///
/// # Panics
///
/// When the shapes of `A`, `B`, `C` and the bias disagree. Ops validate shapes before calling,
/// so this is a programming error, not an input error.
pub trait GemmKernel: Sync {
    /// Short name for test failures and benchmark output.
    fn name(&self) -> &'static str;

    /// Whether the running machine can execute this implementation.
    fn is_supported(&self) -> bool;

    /// The micro-kernel's tile, (MR, NR).
    fn tile_shape(&self) -> (usize, usize);

    /// `out = act(lhs · rhs + bias)`, split into up to `par.max_parts()` parts.
    fn matmul(&self, par: Parallelism, lhs: Lhs, rhs: Rhs, out: MatMut, options: &GemmOptions);
}

/// The implementations compiled for this target, best first. The last entry is always the
/// portable [`ScalarGemm`].
pub static KERNELS: &[&dyn GemmKernel] = &[
    #[cfg(target_arch = "x86_64")]
    &Avx2Gemm,
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    &RelaxedGemm,
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    &Simd128Gemm,
    &ScalarGemm,
];

/// The best implementation the running machine supports.
pub fn best_kernel() -> &'static dyn GemmKernel {
    KERNELS
        .iter()
        .copied()
        .find(|k| k.is_supported())
        .unwrap_or(&ScalarGemm)
}

/// The implementation named `name` if it is compiled in and supported here.
pub fn kernel_by_name(name: &str) -> Option<&'static dyn GemmKernel> {
    KERNELS
        .iter()
        .copied()
        .find(|k| k.name() == name && k.is_supported())
}

/// The smallest slice length holding `rows` rows of `cols` elements with row stride `ld`.
pub fn required_len(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * ld + cols
    }
}

/// [`GemmKernel::matmul`] with the best implementation for this machine.
pub fn matmul(par: Parallelism, lhs: Lhs, rhs: Rhs, out: MatMut, options: &GemmOptions) {
    best_kernel().matmul(par, lhs, rhs, out, options);
}

/// `C = A·B` (or `C += A·B` when `accumulate`) on row-major slices with leading dimensions,
/// with the best implementation for this machine: `A[i][p] = a[i * lda + p]`,
/// `B[p][j] = b[p * ldb + j]`, `C[i][j] = c[i * ldc + j]`, `i < m`, `j < n`, `p < k`.
pub fn gemm(
    par: Parallelism,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    gemm_with(
        best_kernel(),
        par,
        m,
        n,
        k,
        a,
        lda,
        b,
        ldb,
        c,
        ldc,
        accumulate,
    );
}

/// [`gemm`] with an explicit implementation; used by tests and benchmarks to compare them.
pub fn gemm_with(
    kernel: &dyn GemmKernel,
    par: Parallelism,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    let options = GemmOptions {
        accumulate,
        ..GemmOptions::default()
    };
    kernel.matmul(
        par,
        Lhs::Matrix(MatRef::new(a, m, k, lda, 1)),
        Rhs::Matrix(MatRef::new(b, k, n, ldb, 1)),
        MatMut::new(c, m, n, ldc, 1),
        &options,
    );
}

/// The plain triple loop (i-k-j order, one rounding per multiply and per add): the test oracle
/// for every implementation. Same contract as [`gemm`], including degenerate shapes.
pub fn gemm_scalar(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    if n == 0 {
        return;
    }
    for i in 0..m {
        let c_row = &mut c[i * ldc..i * ldc + n];
        if !accumulate {
            c_row.fill(0.0);
        }
        for p in 0..k {
            let a_ip = a[i * lda + p];
            let b_row = &b[p * ldb..p * ldb + n];
            for (c_ij, &b_pj) in c_row.iter_mut().zip(b_row) {
                *c_ij += a_ip * b_pj;
            }
        }
    }
}

/// Implements [`GemmKernel`] for a micro-kernel type by running the shared driver with it.
macro_rules! impl_gemm_kernel {
    ($kernel:ty) => {
        impl $crate::kernels::gemm::GemmKernel for $kernel {
            fn name(&self) -> &'static str {
                <$kernel as $crate::kernels::gemm::driver::MicroKernel>::NAME
            }

            fn is_supported(&self) -> bool {
                <$kernel as $crate::kernels::gemm::driver::MicroKernel>::is_supported()
            }

            fn tile_shape(&self) -> (usize, usize) {
                (
                    <$kernel as $crate::kernels::gemm::driver::MicroKernel>::MR,
                    <$kernel as $crate::kernels::gemm::driver::MicroKernel>::NR,
                )
            }

            fn matmul(
                &self,
                par: $crate::kernels::Parallelism,
                lhs: $crate::kernels::gemm::Lhs,
                rhs: $crate::kernels::gemm::Rhs,
                out: $crate::kernels::gemm::MatMut,
                options: &$crate::kernels::gemm::GemmOptions,
            ) {
                $crate::kernels::gemm::driver::matmul::<$kernel>(par, lhs, rhs, out, options);
            }
        }
    };
}
pub(crate) use impl_gemm_kernel;
