//! Workloads for the benchmark programs and pages: a GEMM case with the left operand packed
//! once (as the model's weights are) and the SIMD peak of the running engine. They do no
//! timing themselves, so the native example and the browser page use the same code and time
//! it with their own clocks.

use crate::error::{Error, Result};
use crate::kernels::gemm::{
    self, GemmKernel, GemmOptions, Lhs, MatMut, MatRef, PackedA, PackedB, Rhs,
};
use crate::kernels::Parallelism;

/// Largest value of each of `m`, `n`, `k` a [`GemmCase`] accepts.
pub const MAX_GEMM_DIM: usize = 1 << 20;
/// Largest element count of any one operand of a [`GemmCase`] (64 MiB of `f32`).
pub const MAX_GEMM_ELEMENTS: usize = 16 << 20;

/// A deterministic fill in `[-1, 1)` (xorshift).
pub fn fill(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// `C (m x n) = A (m x k) . B (k x n)` with `A` pre-packed for one kernel. `B` is kept both
/// as a matrix, packed by every [`GemmCase::run`] as the model's activations are, and packed
/// ahead for [`GemmCase::run_prepacked`], which times the micro-kernel loop alone.
pub struct GemmCase {
    kernel: &'static dyn GemmKernel,
    shape: (usize, usize, usize),
    packed: PackedA,
    b: Vec<f32>,
    packed_b: PackedB,
    c: Vec<f32>,
}

impl GemmCase {
    /// A case for the named kernel (`None`: the best one compiled in and supported).
    pub fn new(kernel: Option<&str>, m: usize, n: usize, k: usize) -> Result<Self> {
        let kernel = match kernel {
            None => gemm::best_kernel(),
            Some(name) => gemm::kernel_by_name(name).ok_or_else(|| {
                Error::Unsupported(format!(
                    "GEMM kernel '{name}' is not available in this build (available: {})",
                    kernel_names().join(", ")
                ))
            })?,
        };
        let dims_ok = [m, n, k].iter().all(|&d| (1..=MAX_GEMM_DIM).contains(&d));
        let sizes_ok = [m * k, k * n, m * n]
            .iter()
            .all(|&e| e <= MAX_GEMM_ELEMENTS);
        if !dims_ok || !sizes_ok {
            return Err(Error::InvalidInput(format!(
                "GEMM shape {m}x{n}x{k}: each side must be 1..={MAX_GEMM_DIM} and each operand \
                 at most {MAX_GEMM_ELEMENTS} values"
            )));
        }
        let a = fill(m * k, 1);
        let b = fill(k * n, 2);
        Ok(GemmCase {
            kernel,
            shape: (m, n, k),
            packed: PackedA::new(kernel, MatRef::row_major(&a, m, k)),
            packed_b: PackedB::new(kernel, MatRef::row_major(&b, k, n)),
            b,
            c: vec![0.0; m * n],
        })
    }

    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name()
    }

    /// `m * n * k`.
    pub fn macs(&self) -> u64 {
        let (m, n, k) = self.shape;
        (m * n * k) as u64
    }

    /// One product: packs `B`, runs the blocked micro-kernel loop, writes `C`.
    pub fn run(&mut self, par: Parallelism) {
        self.product(par, false);
    }

    /// The same product with `B` packed ahead: the blocked micro-kernel loop alone, with no
    /// packing in the call.
    pub fn run_prepacked(&mut self, par: Parallelism) {
        self.product(par, true);
    }

    fn product(&mut self, par: Parallelism, prepacked: bool) {
        let (m, n, k) = self.shape;
        let rhs = if prepacked {
            Rhs::Packed(&self.packed_b)
        } else {
            Rhs::Matrix(MatRef::row_major(&self.b, k, n))
        };
        self.kernel.matmul(
            par,
            Lhs::Packed(&self.packed),
            rhs,
            MatMut::row_major(&mut self.c, m, n),
            &GemmOptions::default(),
        );
    }
}

/// Names of the GEMM kernels compiled in and supported here, best first.
pub fn kernel_names() -> Vec<&'static str> {
    gemm::KERNELS
        .iter()
        .filter(|k| k.is_supported())
        .map(|k| k.name())
        .collect::<Vec<_>>()
}

/// Runs `iters` steps of twelve independent `f32x4` multiply-add chains and returns the
/// number of multiply-adds done (`iters * 48`): the per-core limit of this build's
/// instructions, `relaxed_madd` in a relaxed-SIMD build (the accumulator as the addend, as
/// in the micro-kernel) and `f32x4.mul` + `f32x4.add` otherwise. Twelve chains hide the
/// latency and need 14 registers, which V8's x64 back end keeps without spilling.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub fn simd_peak_chains(iters: usize) -> Result<u64> {
    use core::arch::wasm32::{f32x4_add, f32x4_splat, v128};

    #[inline(always)]
    fn madd(acc: v128, x: v128, y: v128) -> v128 {
        // `x * y` is the same every step; the relaxed instruction is never split, and the
        // plain form multiplies the accumulator so the product cannot be hoisted.
        #[cfg(target_feature = "relaxed-simd")]
        return core::arch::wasm32::f32x4_relaxed_madd(x, y, acc);
        #[cfg(not(target_feature = "relaxed-simd"))]
        f32x4_add(core::arch::wasm32::f32x4_mul(acc, x), y)
    }

    #[inline(never)]
    fn chains(iters: usize, x: f32, y: f32) -> v128 {
        let (x, y) = (f32x4_splat(x), f32x4_splat(y));
        let mut acc = [f32x4_splat(1.0); 12];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = madd(*a, x, y);
            }
        }
        acc.iter().fold(f32x4_splat(0.0), |s, &a| f32x4_add(s, a))
    }

    // Both operands opaque: a constant operand would be rematerialised at every use by V8.
    let (x, y) = std::hint::black_box((0.999, 1e-3));
    std::hint::black_box(chains(iters, x, y));
    Ok(iters as u64 * 48)
}

/// The SIMD peak is measured for wasm SIMD builds only.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub fn simd_peak_chains(_iters: usize) -> Result<u64> {
    Err(Error::Unsupported(
        "the SIMD peak is measured in wasm SIMD builds only".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_case_checks_its_arguments() {
        assert!(matches!(
            GemmCase::new(Some("no-such-kernel"), 4, 4, 4),
            Err(Error::Unsupported(_))
        ));
        for (m, n, k) in [(0, 4, 4), (4, 0, 4), (4, 4, 0), (MAX_GEMM_DIM + 1, 1, 1)] {
            assert!(matches!(
                GemmCase::new(None, m, n, k),
                Err(Error::InvalidInput(_))
            ));
        }
        assert!(matches!(
            GemmCase::new(None, 8192, 8192, 8192),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn gemm_case_computes_the_product() {
        let (m, n, k) = (5, 11, 7);
        let mut case = GemmCase::new(Some("scalar"), m, n, k).unwrap();
        let (a, b) = (fill(m * k, 1), fill(k * n, 2));
        for prepacked in [false, true] {
            case.c.fill(f32::NAN);
            if prepacked {
                case.run_prepacked(Parallelism::Serial);
            } else {
                case.run(Parallelism::Serial);
            }
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                    assert!(
                        (case.c[i * n + j] - want).abs() < 1e-5,
                        "prepacked {prepacked}"
                    );
                }
            }
        }
        assert_eq!(case.macs(), (m * n * k) as u64);
        assert!(kernel_names().contains(&case.kernel_name()));
    }
}
