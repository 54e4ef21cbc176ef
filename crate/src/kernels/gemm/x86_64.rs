//! x86_64 AVX2 + FMA micro-kernel: a 6 x 16 tile in twelve 8-lane accumulators (of the 16
//! YMM registers, two hold `B` and one the broadcast of `A`). Chosen at run time when the CPU
//! has both extensions, so native builds (tests, the command-line tool) need no special
//! flags. Every term is a fused multiply-add (see the numerics notes in the parent module).

use core::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps,
    _mm256_setzero_ps, _mm256_storeu_ps,
};

use super::driver::MicroKernel;
use super::impl_gemm_kernel;

const MR: usize = 6;
const NR: usize = 16;

/// AVX2 + FMA implementation of [`super::GemmKernel`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Avx2Gemm;

impl MicroKernel for Avx2Gemm {
    const NAME: &'static str = "avx2";
    const MR: usize = MR;
    const NR: usize = NR;

    fn is_supported() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
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
        // Safety: same contract; the caller checked that the CPU has AVX2 and FMA.
        unsafe { tile_6x16(depth, a, b, out, ldo, accumulate, bias) }
    }
}

/// # Safety
/// As [`MicroKernel::tile`], and the CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_6x16(
    depth: usize,
    a: *const f32,
    b: *const f32,
    out: *mut f32,
    ldo: usize,
    accumulate: bool,
    bias: *const f32,
) {
    let mut acc: [[__m256; 2]; MR] = [[_mm256_setzero_ps(); 2]; MR];
    for p in 0..depth {
        // Safety: p < depth keeps the loads inside the panels the caller vouches for;
        // `loadu` needs no alignment.
        let (b0, b1, a_p) = unsafe {
            let b_p = b.add(p * NR);
            (
                _mm256_loadu_ps(b_p),
                _mm256_loadu_ps(b_p.add(8)),
                a.add(p * MR),
            )
        };
        for (i, acc_row) in acc.iter_mut().enumerate() {
            // Safety: i < MR values of this step's A panel column.
            let a_ip = unsafe { _mm256_broadcast_ss(&*a_p.add(i)) };
            acc_row[0] = _mm256_fmadd_ps(a_ip, b0, acc_row[0]);
            acc_row[1] = _mm256_fmadd_ps(a_ip, b1, acc_row[1]);
        }
    }
    for (i, acc_row) in acc.iter_mut().enumerate() {
        if !bias.is_null() {
            // Safety: MR values at `bias` when it is not null.
            let b_i = _mm256_set1_ps(unsafe { *bias.add(i) });
            acc_row[0] = _mm256_add_ps(acc_row[0], b_i);
            acc_row[1] = _mm256_add_ps(acc_row[1], b_i);
        }
        // Safety: NR values at `out + i * ldo`, owned by this call.
        unsafe {
            let row = out.add(i * ldo);
            if accumulate {
                acc_row[0] = _mm256_add_ps(acc_row[0], _mm256_loadu_ps(row));
                acc_row[1] = _mm256_add_ps(acc_row[1], _mm256_loadu_ps(row.add(8)));
            }
            _mm256_storeu_ps(row, acc_row[0]);
            _mm256_storeu_ps(row.add(8), acc_row[1]);
        }
    }
}

impl_gemm_kernel!(Avx2Gemm);
