//! The portable GEMM: i-k-j loop order, so the inner loop streams one row of `B` into one
//! row of `C` with unit stride (cache-friendly and auto-vectorisable).

use super::GemmKernel;

/// Portable scalar implementation of [`GemmKernel`]; available on every target.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScalarGemm;

impl GemmKernel for ScalarGemm {
    fn name(&self) -> &'static str {
        "scalar"
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
    ) {
        for i in 0..m {
            let c_row = &mut c[i * ldc..i * ldc + n];
            if !accumulate {
                c_row.fill(0.0);
            }
            let a_row = &a[i * lda..i * lda + k];
            for (p, &a_ip) in a_row.iter().enumerate() {
                let b_row = &b[p * ldb..p * ldb + n];
                for (c_ij, &b_pj) in c_row.iter_mut().zip(b_row) {
                    *c_ij += a_ip * b_pj;
                }
            }
        }
    }
}
