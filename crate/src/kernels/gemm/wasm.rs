//! WebAssembly SIMD128 micro-kernels: a 4 x 8 tile held in eight `f32x4` accumulators.
//!
//! Each step of the depth loop loads two `B` vectors, broadcasts four `A` values
//! (`v128.load32_splat`) and updates the eight accumulators: 11 live vector registers, which
//! V8's x64 back end (16 XMM registers) and Cranelift keep without spilling.
//!
//! - [`Simd128Gemm`]: `f32x4.mul` then `f32x4.add`, two roundings per term, like the scalar
//!   loop. Compiled whenever the build enables `simd128`.
//! - [`RelaxedGemm`]: `f32x4.relaxed_madd`, one instruction per term, fused or not at the
//!   engine's choice (see the numerics notes in the parent module). Compiled only when the
//!   build enables `relaxed-simd`, because such a module does not validate without it.

use core::arch::wasm32::{
    f32x4_add, f32x4_mul, f32x4_splat, v128, v128_load, v128_load32_splat, v128_store,
};

use super::driver::MicroKernel;
use super::impl_gemm_kernel;

const MR: usize = 4;
const NR: usize = 8;
/// Rows of the relaxed tile: 4 x 8 measured fastest in Chromium (5 x 8 and 6 x 8 were slower).
#[cfg(target_feature = "relaxed-simd")]
const RELAXED_MR: usize = 4;

/// How one `acc += a * b` step is computed.
trait MultiplyAdd {
    fn madd(a: v128, b: v128, acc: v128) -> v128;
}

/// Separate multiply and add.
struct MulThenAdd;

impl MultiplyAdd for MulThenAdd {
    #[inline(always)]
    fn madd(a: v128, b: v128, acc: v128) -> v128 {
        f32x4_add(acc, f32x4_mul(a, b))
    }
}

/// Relaxed multiply-add (possibly fused).
#[cfg(target_feature = "relaxed-simd")]
struct RelaxedMadd;

#[cfg(target_feature = "relaxed-simd")]
impl MultiplyAdd for RelaxedMadd {
    #[inline(always)]
    fn madd(a: v128, b: v128, acc: v128) -> v128 {
        core::arch::wasm32::f32x4_relaxed_madd(a, b, acc)
    }
}

/// The 4 x 8 tile with the contract of [`MicroKernel::tile`].
///
/// # Safety
/// As [`MicroKernel::tile`].
#[inline(always)]
unsafe fn tile_rx8<M: MultiplyAdd, const R: usize>(
    depth: usize,
    a: *const f32,
    b: *const f32,
    out: *mut f32,
    ldo: usize,
    accumulate: bool,
    bias: *const f32,
) {
    let zero = f32x4_splat(0.0);
    let mut acc = [[zero; 2]; R];
    // Both panels are walked by bumped pointers, so every load of a step is at a constant
    // offset from one of them: wasm `offset=` immediates that V8 folds into x64 addressing.
    // The wasm builds turn off LLVM's loop strength reduction (`pkg/build.sh`), which would
    // fold the two pointers into one counter plus an `i32.add` per load.
    let (mut a_p, mut b_p) = (a, b);
    for _ in 0..depth {
        // Safety: `depth` steps of NR values at `b` and R at `a` are inside the panels the
        // caller vouches for; wasm loads need no alignment.
        let (b0, b1) = unsafe {
            (
                v128_load(b_p as *const v128),
                v128_load(b_p.add(4) as *const v128),
            )
        };
        for (i, acc_row) in acc.iter_mut().enumerate() {
            // Safety: i < R values of this step's A panel column.
            let a_ip = unsafe { v128_load32_splat(a_p.add(i) as *const u32) };
            acc_row[0] = M::madd(a_ip, b0, acc_row[0]);
            acc_row[1] = M::madd(a_ip, b1, acc_row[1]);
        }
        // Safety: one past the last step at most.
        unsafe {
            a_p = a_p.add(R);
            b_p = b_p.add(NR);
        }
    }
    for (i, acc_row) in acc.iter_mut().enumerate() {
        if !bias.is_null() {
            // Safety: MR values at `bias` when it is not null.
            let b_i = f32x4_splat(unsafe { *bias.add(i) });
            acc_row[0] = f32x4_add(acc_row[0], b_i);
            acc_row[1] = f32x4_add(acc_row[1], b_i);
        }
        // Safety: NR values at `out + i * ldo`, owned by this call.
        unsafe {
            let row = out.add(i * ldo);
            let (lo, hi) = (row as *mut v128, row.add(4) as *mut v128);
            if accumulate {
                acc_row[0] = f32x4_add(acc_row[0], v128_load(lo));
                acc_row[1] = f32x4_add(acc_row[1], v128_load(hi));
            }
            v128_store(lo, acc_row[0]);
            v128_store(hi, acc_row[1]);
        }
    }
}

/// SIMD128 implementation of [`super::GemmKernel`] (multiply, then add).
#[derive(Clone, Copy, Debug, Default)]
pub struct Simd128Gemm;

impl MicroKernel for Simd128Gemm {
    const NAME: &'static str = "simd128";
    const MR: usize = MR;
    const NR: usize = NR;

    fn is_supported() -> bool {
        // Validated with the module: a module using SIMD128 does not load without it.
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
        // Safety: same contract.
        unsafe { tile_rx8::<MulThenAdd, MR>(depth, a, b, out, ldo, accumulate, bias) }
    }
}

impl_gemm_kernel!(Simd128Gemm);

/// Relaxed-SIMD implementation of [`super::GemmKernel`] (`f32x4.relaxed_madd`).
#[cfg(target_feature = "relaxed-simd")]
#[derive(Clone, Copy, Debug, Default)]
pub struct RelaxedGemm;

#[cfg(target_feature = "relaxed-simd")]
impl MicroKernel for RelaxedGemm {
    const NAME: &'static str = "relaxed";
    const MR: usize = RELAXED_MR;
    const NR: usize = NR;

    fn is_supported() -> bool {
        // Validated with the module, as for SIMD128.
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
        // Safety: same contract.
        unsafe { tile_rx8::<RelaxedMadd, RELAXED_MR>(depth, a, b, out, ldo, accumulate, bias) }
    }
}

#[cfg(target_feature = "relaxed-simd")]
impl_gemm_kernel!(RelaxedGemm);
