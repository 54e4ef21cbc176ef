//! Single-precision matrix multiplication, `C = A·B` or `C += A·B`, on row-major slices with
//! leading dimensions (row strides) `lda`, `ldb`, `ldc`.
//!
//! The contract lives in [`GemmKernel`]; each instruction set provides one implementation
//! and [`KERNELS`] lists those compiled for the target, best first. [`gemm`] handles the
//! degenerate shapes and the [`Parallelism`] split (bands of rows of `C`), then hands each
//! band to the best kernel, so an implementation only ever sees `m, n, k >= 1`.
//! [`gemm_scalar`] is the plain twin every implementation is tested against.
//!
//! A packed, register-blocked implementation (SIMD128, relaxed SIMD) plugs in by adding a
//! type that implements [`GemmKernel`] and an entry in [`KERNELS`]; the shared test suite
//! picks it up without changes.

// The GEMM signature mirrors BLAS sgemm: (m, n, k, a, lda, b, ldb, c, ldc) plus flags.
#![allow(clippy::too_many_arguments)]

mod scalar;

pub use scalar::ScalarGemm;

use super::Parallelism;

/// One GEMM implementation.
///
/// `gemm` computes `C[i][j] (+)= sum_p A[i][p] * B[p][j]` for `i < m`, `j < n`, `p < k`,
/// where `A[i][p] = a[i * lda + p]`, `B[p][j] = b[p * ldb + j]` and
/// `C[i][j] = c[i * ldc + j]`. With `accumulate == false` the previous contents of `C` are
/// ignored (they may be NaN). Elements of `c` outside the `m x n` window are left untouched.
///
/// Callers guarantee `m, n, k >= 1`, `lda >= k`, `ldb >= n`, `ldc >= n`, and slices at least
/// [`required_len`] long.
pub trait GemmKernel: Sync {
    /// Short name for test failures and benchmark output.
    fn name(&self) -> &'static str;

    /// Whether the running machine can execute this implementation.
    fn is_supported(&self) -> bool {
        true
    }

    fn gemm(
        &self,
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
    );
}

/// The implementations compiled for this target, best first. The last entry is always the
/// portable scalar one.
pub static KERNELS: &[&dyn GemmKernel] = &[&ScalarGemm];

/// The best implementation the running machine supports.
pub fn best_kernel() -> &'static dyn GemmKernel {
    KERNELS
        .iter()
        .copied()
        .find(|k| k.is_supported())
        .unwrap_or(&ScalarGemm)
}

/// The smallest slice length holding `rows` rows of `cols` elements with row stride `ld`.
pub fn required_len(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * ld + cols
    }
}

/// `C = A·B` (or `C += A·B` when `accumulate`) with the best implementation for this machine.
/// See [`GemmKernel`] for the layout contract.
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
    debug_assert!(ldc >= n, "ldc {ldc} < n {n}");
    debug_assert!(c.len() >= required_len(m, n, ldc), "C slice too short");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in c.chunks_mut(ldc).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    debug_assert!(
        lda >= k && ldb >= n,
        "lda {lda} < k {k} or ldb {ldb} < n {n}"
    );
    debug_assert!(a.len() >= required_len(m, k, lda), "A slice too short");
    debug_assert!(b.len() >= required_len(k, n, ldb), "B slice too short");

    // Split C into bands of whole rows; each band is an independent GEMM sharing B.
    let band_rows = m.div_ceil(par.max_parts());
    let bands = m.div_ceil(band_rows);
    for (band, c_band) in c.chunks_mut(band_rows * ldc).take(bands).enumerate() {
        let row0 = band * band_rows;
        let rows = band_rows.min(m - row0);
        kernel.gemm(
            rows,
            n,
            k,
            &a[row0 * lda..],
            lda,
            b,
            ldb,
            c_band,
            ldc,
            accumulate,
        );
    }
}

/// The plain scalar GEMM: the test oracle for every other implementation. Same contract as
/// [`gemm`], including degenerate shapes; always serial.
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
    gemm_with(
        &ScalarGemm,
        Parallelism::Serial,
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
