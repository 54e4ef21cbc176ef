//! The portable micro-kernel: a 4 x 8 tile of plain `f32` accumulators. Every product and
//! every sum is rounded separately, as in [`super::gemm_scalar`]; on targets with vector
//! units the compiler is free to vectorise the fixed-size loops.

use super::driver::MicroKernel;
use super::impl_gemm_kernel;

/// Portable implementation of [`super::GemmKernel`]; available on every target.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScalarGemm;

const MR: usize = 4;
const NR: usize = 8;

impl MicroKernel for ScalarGemm {
    const NAME: &'static str = "scalar";
    const MR: usize = MR;
    const NR: usize = NR;

    fn is_supported() -> bool {
        true
    }

    unsafe fn tile(
        depth: usize,
        a: *const f32,
        b: *const f32,
        out: *mut f32,
        ldo: usize,
        accumulate: bool,
        bias: *const f32,
    ) {
        // Safety: the caller guarantees `depth * MR` values at `a` and `depth * NR` at `b`.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, depth * MR),
                std::slice::from_raw_parts(b, depth * NR),
            )
        };
        let mut acc = [[0.0f32; NR]; MR];
        for (a_p, b_p) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            for (acc_row, &a_ip) in acc.iter_mut().zip(a_p) {
                for (c, &b_pj) in acc_row.iter_mut().zip(b_p) {
                    *c += a_ip * b_pj;
                }
            }
        }
        for (i, acc_row) in acc.iter().enumerate() {
            // Safety: the caller guarantees NR values at `out + i * ldo` for i < MR, not
            // aliased during the call, and MR values at `bias` when it is not null.
            let (row, bias_i) = unsafe {
                (
                    std::slice::from_raw_parts_mut(out.add(i * ldo), NR),
                    (!bias.is_null()).then(|| *bias.add(i)),
                )
            };
            for (o, &t) in row.iter_mut().zip(acc_row) {
                let t = bias_i.map_or(t, |b| t + b);
                *o = if accumulate { *o + t } else { t };
            }
        }
    }
}

impl_gemm_kernel!(ScalarGemm);
