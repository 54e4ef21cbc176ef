//! Every compiled kernel against its scalar twin, and the scalar twins against f64
//! references, on degenerate, odd and tail sizes.
//!
//! GEMM tolerance: `|got - want| <= 1e-6 * (k + 1) + 1e-5 * |want|` against the plain loop
//! [`gemm_scalar`], operands in [-1, 1]. This covers the different summation order of the
//! blocked kernels and the fused rounding of FMA and relaxed madd (see the numerics notes in
//! [`super::gemm`]).

use super::gemm::{
    self, gemm_scalar, required_len, GemmKernel, GemmOptions, Im2Col, Lhs, MatMut, MatRef, PackedA,
    PackedB, Rhs, KERNELS,
};
use super::testing::{assert_close, Rng};
use super::vecmath::{self, scalar, Activation};
use super::Parallelism;

const SIZES: [usize; 9] = [0, 1, 3, 7, 8, 9, 17, 33, 64];
const PARALLELISM: [Parallelism; 4] = [
    Parallelism::Serial,
    Parallelism::Threads(1),
    Parallelism::Threads(3),
    Parallelism::Threads(8),
];

fn supported_kernels() -> impl Iterator<Item = &'static dyn GemmKernel> {
    KERNELS.iter().copied().filter(|k| k.is_supported())
}

/// Options that split even the smallest product, so the partitioning is under test.
fn split_always(accumulate: bool) -> GemmOptions<'static> {
    GemmOptions {
        accumulate,
        min_macs_per_part: 1,
        ..GemmOptions::default()
    }
}

fn tolerance(k: usize) -> f32 {
    1e-6 * (k as f32 + 1.0)
}

/// f64 dot-product reference over a strided layout.
#[allow(clippy::too_many_arguments)]
fn gemm_f64(
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
        for j in 0..n {
            let mut sum = if accumulate {
                c[i * ldc + j] as f64
            } else {
                0.0
            };
            for p in 0..k {
                sum += a[i * lda + p] as f64 * b[p * ldb + j] as f64;
            }
            c[i * ldc + j] = sum as f32;
        }
    }
}

/// Operands for an `m x n x k` product with row strides padded by `pad`; C starts as
/// `c_init` everywhere (including the padding, which must survive untouched).
struct GemmCase {
    m: usize,
    n: usize,
    k: usize,
    lda: usize,
    ldb: usize,
    ldc: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl GemmCase {
    fn new(rng: &mut Rng, m: usize, n: usize, k: usize, pad: usize, c_init: f32) -> Self {
        let (lda, ldb, ldc) = (k + pad, n + 2 * pad, n + pad);
        // Strides must stay >= 1 so row arithmetic in the checks is meaningful.
        let (lda, ldb, ldc) = (lda.max(1), ldb.max(1), ldc.max(1));
        GemmCase {
            m,
            n,
            k,
            lda,
            ldb,
            ldc,
            a: rng.vec(required_len(m, k, lda), -1.0, 1.0),
            b: rng.vec(required_len(k, n, ldb), -1.0, 1.0),
            c: vec![c_init; m * ldc],
        }
    }

    fn a(&self) -> MatRef<'_> {
        MatRef::new(&self.a, self.m, self.k, self.lda, 1)
    }

    fn b(&self) -> MatRef<'_> {
        MatRef::new(&self.b, self.k, self.n, self.ldb, 1)
    }

    /// The oracle's answer.
    fn expected(&self, accumulate: bool) -> Vec<f32> {
        let mut want = self.c.clone();
        let GemmCase { m, n, k, .. } = *self;
        gemm_scalar(
            m, n, k, &self.a, self.lda, &self.b, self.ldb, &mut want, self.ldc, accumulate,
        );
        want
    }

    /// `kernel`'s answer with `lhs` standing for A.
    fn run(
        &self,
        kernel: &dyn GemmKernel,
        par: Parallelism,
        lhs: Lhs,
        options: &GemmOptions,
    ) -> Vec<f32> {
        let mut got = self.c.clone();
        let out = MatMut::new(&mut got, self.m, self.n, self.ldc, 1);
        kernel.matmul(par, lhs, Rhs::Matrix(self.b()), out, options);
        got
    }
}

#[test]
fn gemm_scalar_matches_f64_reference() {
    let mut rng = Rng::new(1);
    for &m in &SIZES {
        for &n in &SIZES {
            for &k in &SIZES {
                for accumulate in [false, true] {
                    let case = GemmCase::new(&mut rng, m, n, k, 0, 0.5);
                    let GemmCase { lda, ldb, ldc, .. } = case;
                    let mut got = case.c.clone();
                    gemm_scalar(
                        m, n, k, &case.a, lda, &case.b, ldb, &mut got, ldc, accumulate,
                    );
                    let mut want = case.c.clone();
                    gemm_f64(
                        m, n, k, &case.a, lda, &case.b, ldb, &mut want, ldc, accumulate,
                    );
                    let what = format!("scalar m={m} n={n} k={k} acc={accumulate}");
                    assert_close(&got, &want, tolerance(k), 1e-5, &what);
                }
            }
        }
    }
}

#[test]
fn every_gemm_kernel_matches_scalar() {
    let mut rng = Rng::new(2);
    for kernel in supported_kernels() {
        for &m in &SIZES {
            for &n in &SIZES {
                for &k in &SIZES {
                    // Padding of 0, 1 or 2 exercises lda/ldb/ldc > row length.
                    let pad = (m + n + k) % 3;
                    let case = GemmCase::new(&mut rng, m, n, k, pad, -0.25);
                    for accumulate in [false, true] {
                        let want = case.expected(accumulate);
                        for par in PARALLELISM {
                            let got = case.run(
                                kernel,
                                par,
                                Lhs::Matrix(case.a()),
                                &split_always(accumulate),
                            );
                            let what = format!(
                                "{} m={m} n={n} k={k} pad={pad} acc={accumulate} {par:?}",
                                kernel.name()
                            );
                            assert_close(&got, &want, tolerance(k), 1e-5, &what);
                        }
                    }
                }
            }
        }
    }
}

/// Shapes that cross the cache blocks (KC = 256 deep, MC = 96 rows, NC = 256 columns), tall
/// and skinny ones, and matrix-vector products.
#[test]
fn gemm_kernels_handle_block_edges() {
    let mut rng = Rng::new(7);
    let shapes = [
        (97, 257, 257),
        (200, 70, 513),
        (5, 600, 300),
        (300, 5, 40),
        (1, 300, 700),
        (130, 1, 260),
        (2, 2, 1000),
    ];
    for kernel in supported_kernels() {
        for (m, n, k) in shapes {
            let case = GemmCase::new(&mut rng, m, n, k, 1, 0.75);
            for accumulate in [false, true] {
                let want = case.expected(accumulate);
                for par in [
                    Parallelism::Serial,
                    Parallelism::Threads(2),
                    Parallelism::Threads(5),
                ] {
                    let got = case.run(
                        kernel,
                        par,
                        Lhs::Matrix(case.a()),
                        &split_always(accumulate),
                    );
                    let what = format!(
                        "{} m={m} n={n} k={k} acc={accumulate} {par:?}",
                        kernel.name()
                    );
                    assert_close(&got, &want, tolerance(k), 1e-5, &what);
                }
            }
        }
    }
}

/// A pre-packed A gives the same result as packing during the call, for its own kernel and
/// for every other one (which must repack it).
#[test]
fn gemm_prepacked_lhs_matches_unpacked() {
    let mut rng = Rng::new(8);
    for (m, n, k) in [(1, 1, 1), (7, 9, 5), (13, 33, 300), (64, 17, 8)] {
        let case = GemmCase::new(&mut rng, m, n, k, 2, 0.0);
        let want = case.expected(false);
        for packer in supported_kernels() {
            let packed = PackedA::new(packer, case.a());
            assert_eq!(packed.rows(), m);
            assert_eq!(packed.depth(), k);
            let dense: Vec<f32> = (0..m * k)
                .map(|idx| case.a[idx / k * case.lda + idx % k])
                .collect();
            assert_eq!(packed.unpack(), dense, "{} unpack", packer.name());
            for kernel in supported_kernels() {
                let got = case.run(
                    kernel,
                    Parallelism::Threads(2),
                    Lhs::Packed(&packed),
                    &split_always(false),
                );
                let what = format!(
                    "{} packed for {} m={m} n={n} k={k}",
                    kernel.name(),
                    packer.name()
                );
                assert_close(&got, &want, tolerance(k), 1e-5, &what);
            }
        }
    }
}

/// A pre-packed B gives the same bits as packing during the call for its own kernel (the
/// same panels in the same loop, split or not), and a close result for every other kernel
/// (which must repack it); `unpack` restores the matrix.
#[test]
fn gemm_prepacked_rhs_matches_unpacked() {
    let mut rng = Rng::new(18);
    for (m, n, k) in [
        (1, 1, 1),
        (7, 9, 5),
        (13, 33, 300),
        (64, 17, 8),
        (5, 600, 40),
    ] {
        let case = GemmCase::new(&mut rng, m, n, k, 2, 0.0);
        let want = case.expected(false);
        let dense: Vec<f32> = (0..k * n)
            .map(|idx| case.b[idx / n * case.ldb + idx % n])
            .collect();
        for packer in supported_kernels() {
            let packed = PackedB::new(packer, case.b());
            assert_eq!((packed.depth(), packed.cols()), (k, n));
            assert_eq!(packed.unpack(), dense, "{} unpack", packer.name());
            for kernel in supported_kernels() {
                for par in [Parallelism::Serial, Parallelism::Threads(3)] {
                    let options = split_always(false);
                    let run = |rhs: Rhs| {
                        let mut got = case.c.clone();
                        let out = MatMut::new(&mut got, m, n, case.ldc, 1);
                        kernel.matmul(par, Lhs::Matrix(case.a()), rhs, out, &options);
                        got
                    };
                    let got = run(Rhs::Packed(&packed));
                    let what = format!(
                        "{} with B packed for {} m={m} n={n} k={k} {par:?}",
                        kernel.name(),
                        packer.name()
                    );
                    assert_close(&got, &want, tolerance(k), 1e-5, &what);
                    if packer.tile_shape().1 == kernel.tile_shape().1 {
                        let unpacked = run(Rhs::Matrix(case.b()));
                        let same = got
                            .iter()
                            .zip(&unpacked)
                            .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "{what}: not bit-identical to packing in the call");
                    }
                }
            }
        }
    }
}

/// Transposed (strided) views of A, B and C.
#[test]
fn gemm_reads_and_writes_transposed_views() {
    let mut rng = Rng::new(9);
    for (m, n, k) in [(1, 5, 3), (9, 17, 33), (20, 3, 260), (33, 64, 7)] {
        // Stored transposed: a_t is (k, m), b_t is (n, k); C is written as (n, m).
        let a_t = rng.vec(k * m, -1.0, 1.0);
        let b_t = rng.vec(n * k, -1.0, 1.0);
        let a: Vec<f32> = (0..m * k).map(|idx| a_t[(idx % k) * m + idx / k]).collect();
        let b: Vec<f32> = (0..k * n).map(|idx| b_t[(idx % n) * k + idx / n]).collect();
        let mut want = vec![0.0; m * n];
        gemm_scalar(m, n, k, &a, k, &b, n, &mut want, n, false);
        for kernel in supported_kernels() {
            for par in [Parallelism::Serial, Parallelism::Threads(3)] {
                let mut c_t = vec![f32::NAN; n * m];
                kernel.matmul(
                    par,
                    Lhs::Matrix(MatRef::row_major(&a_t, k, m).t()),
                    Rhs::Matrix(MatRef::row_major(&b_t, n, k).t()),
                    MatMut::row_major(&mut c_t, n, m).t(),
                    &split_always(false),
                );
                let got: Vec<f32> = (0..m * n).map(|idx| c_t[(idx % n) * m + idx / n]).collect();
                let what = format!("{} transposed m={m} n={n} k={k} {par:?}", kernel.name());
                assert_close(&got, &want, tolerance(k), 1e-5, &what);
            }
        }
    }
}

/// Bias and activation in the epilogue equal the product followed by a separate pass.
#[test]
fn gemm_epilogue_matches_separate_passes() {
    let mut rng = Rng::new(10);
    let activations = [
        Activation::None,
        Activation::Relu,
        Activation::Silu,
        Activation::Gelu,
        Activation::Sigmoid,
    ];
    for (m, n, k) in [
        (3, 5, 0),
        (1, 1, 1),
        (7, 19, 9),
        (30, 40, 300),
        (9, 300, 20),
    ] {
        let case = GemmCase::new(&mut rng, m, n, k, 1, 0.5);
        let bias = rng.vec(m, -1.0, 1.0);
        for accumulate in [false, true] {
            let mut want = case.expected(accumulate);
            for (i, row) in want.chunks_mut(case.ldc).enumerate() {
                row[..n].iter_mut().for_each(|v| *v += bias[i]);
            }
            for act in activations {
                let mut want = want.clone();
                for row in want.chunks_mut(case.ldc) {
                    act.apply(&mut row[..n]);
                }
                let options = GemmOptions {
                    bias: Some(&bias),
                    activation: act,
                    ..split_always(accumulate)
                };
                for kernel in supported_kernels() {
                    let got = case.run(
                        kernel,
                        Parallelism::Threads(2),
                        Lhs::Matrix(case.a()),
                        &options,
                    );
                    let what = format!(
                        "{} {act:?} m={m} n={n} k={k} acc={accumulate}",
                        kernel.name()
                    );
                    assert_close(&got, &want, tolerance(k) * 4.0, 1e-5, &what);
                }
            }
        }
    }
}

/// The im2col operand equals packing its materialised column matrix.
#[test]
fn gemm_im2col_matches_materialised_columns() {
    let mut rng = Rng::new(11);
    // (channels, h, w, kh, kw, stride, padding)
    let geometries = [
        (1, 1, 1, 1, 1, 1, 0),
        (3, 5, 7, 3, 3, 1, 1),
        (2, 9, 11, 3, 3, 2, 1),
        (4, 8, 8, 3, 3, 2, 1),
        (2, 6, 5, 5, 5, 1, 2),
        (3, 4, 9, 1, 3, 1, 1),
        (1, 3, 3, 3, 3, 1, 0),
        (5, 7, 6, 1, 1, 2, 0),
        (30, 12, 13, 3, 3, 1, 1),
        (2, 2, 2, 3, 3, 3, 1),
    ];
    for (c, h, w, kh, kw, s, p) in geometries {
        let image = rng.vec(c * h * w, -1.0, 1.0);
        let columns = Im2Col::new(&image, (c, h, w), (kh, kw), s, p);
        let (rows, cols) = (columns.rows(), columns.cols());
        let dense: Vec<f32> = (0..rows * cols)
            .map(|idx| columns.get(idx / cols, idx % cols))
            .collect();
        let m = 11;
        let weight = rng.vec(m * rows, -1.0, 1.0);
        let mut want = vec![0.0; m * cols];
        gemm_scalar(
            m, cols, rows, &weight, rows, &dense, cols, &mut want, cols, false,
        );
        for kernel in supported_kernels() {
            for par in [Parallelism::Serial, Parallelism::Threads(3)] {
                let mut got = vec![f32::NAN; m * cols];
                kernel.matmul(
                    par,
                    Lhs::Matrix(MatRef::row_major(&weight, m, rows)),
                    Rhs::Im2Col(&columns),
                    MatMut::row_major(&mut got, m, cols),
                    &split_always(false),
                );
                let what = format!(
                    "{} im2col c={c} {h}x{w} k{kh}x{kw} s{s} p{p} {par:?}",
                    kernel.name()
                );
                assert_close(&got, &want, tolerance(rows), 1e-5, &what);
            }
        }
    }
}

#[test]
fn im2col_elements_follow_the_convolution_window() {
    // One channel 3x3, kernel 3x3, padding 1: column 0 is output (0, 0), whose window
    // covers input rows/cols -1..=1.
    let image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let columns = Im2Col::new(&image, (1, 3, 3), (3, 3), 1, 1);
    assert_eq!(columns.output_size(), (3, 3));
    let window: Vec<f32> = (0..9).map(|row| columns.get(row, 0)).collect();
    assert_eq!(window, [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
    let centre: Vec<f32> = (0..9).map(|row| columns.get(row, 4)).collect();
    assert_eq!(centre, image);
    // A kernel larger than the padded image has no output.
    assert_eq!(Im2Col::new(&image, (1, 3, 3), (5, 5), 1, 0).cols(), 0);
}

/// Splitting never changes the result of a kernel: parts see the same panel boundaries.
#[test]
fn gemm_split_is_bit_identical_to_serial() {
    let mut rng = Rng::new(12);
    for kernel in supported_kernels() {
        for (m, n, k) in [(50, 70, 300), (8, 500, 33), (200, 9, 17)] {
            let case = GemmCase::new(&mut rng, m, n, k, 0, 0.0);
            let serial = case.run(
                kernel,
                Parallelism::Serial,
                Lhs::Matrix(case.a()),
                &split_always(false),
            );
            for parts in [2, 3, 4, 7] {
                let split = case.run(
                    kernel,
                    Parallelism::Threads(parts),
                    Lhs::Matrix(case.a()),
                    &split_always(false),
                );
                assert!(
                    serial == split,
                    "{} m={m} n={n} k={k} split {parts}",
                    kernel.name()
                );
            }
        }
    }
}

#[test]
fn gemm_leaves_padding_untouched() {
    let mut rng = Rng::new(3);
    for kernel in supported_kernels() {
        for (m, n, k) in [(5, 3, 4), (17, 9, 1), (2, 33, 0), (8, 8, 8), (13, 21, 300)] {
            let case = GemmCase::new(&mut rng, m, n, k, 3, f32::NAN);
            let c = case.run(
                kernel,
                Parallelism::Threads(3),
                Lhs::Matrix(case.a()),
                &split_always(false),
            );
            for (idx, &v) in c.iter().enumerate() {
                let inside = idx % case.ldc < n;
                assert_eq!(
                    inside,
                    !v.is_nan(),
                    "{} m={m} n={n} k={k}: index {idx} = {v}",
                    kernel.name()
                );
            }
        }
    }
}

#[test]
fn gemm_overwrite_ignores_nan_in_c() {
    let (m, n, k) = (3, 4, 5);
    let mut rng = Rng::new(4);
    let case = GemmCase::new(&mut rng, m, n, k, 0, f32::NAN);
    let mut c = case.c.clone();
    gemm::gemm(
        Parallelism::Serial,
        m,
        n,
        k,
        &case.a,
        k,
        &case.b,
        n,
        &mut c,
        n,
        false,
    );
    assert!(c.iter().all(|v| v.is_finite()));
}

#[test]
fn best_gemm_kernel_is_supported() {
    assert!(gemm::best_kernel().is_supported());
    assert_eq!(KERNELS.last().map(|k| k.name()), Some("scalar"));
    assert_eq!(
        gemm::kernel_by_name("scalar").map(|k| k.name()),
        Some("scalar")
    );
    assert!(gemm::kernel_by_name("no such kernel").is_none());
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    assert!(gemm::kernel_by_name("simd128").is_some());
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    assert_eq!(gemm::best_kernel().name(), "relaxed");
}

/// erf(x) in f64 from the everywhere-convergent series
/// erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)),
/// whose terms are all positive (no cancellation); |erf(x)| = 1 to f64 precision beyond 6.
fn erf_f64(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let ax = x.abs();
    if ax > 6.0 {
        return x.signum();
    }
    let (mut term, mut sum) = (ax, ax);
    let mut n = 0.0;
    while term > sum * 1e-18 {
        n += 1.0;
        term *= 2.0 * ax * ax / (2.0 * n + 1.0);
        sum += term;
    }
    let value = 2.0 / std::f64::consts::PI.sqrt() * (-ax * ax).exp() * sum;
    value.min(1.0).copysign(x)
}

fn gelu_f64(x: f64) -> f64 {
    0.5 * x * (1.0 + erf_f64(x / std::f64::consts::SQRT_2))
}

/// Dense grid over `[lo, hi]` plus special values.
fn grid(lo: f32, hi: f32, steps: usize) -> Vec<f32> {
    let mut xs: Vec<f32> = (0..=steps)
        .map(|i| lo + (hi - lo) * i as f32 / steps as f32)
        .collect();
    xs.extend([0.0, -0.0, 1e-30, -1e-30, 1e-7, -1e-7, f32::MIN_POSITIVE]);
    xs
}

#[test]
fn erf_reference_is_accurate() {
    // Known values of erf to 16 digits.
    for (x, want) in [
        (0.5, 0.520_499_877_813_046_5),
        (1.0, 0.842_700_792_949_714_9),
        (2.0, 0.995_322_265_018_952_7),
        (3.5, 0.999_999_256_901_627_7),
    ] {
        assert!((erf_f64(x) - want).abs() < 4e-15, "erf({x})");
        assert!((erf_f64(-x) + want).abs() < 4e-15, "erf(-{x})");
    }
}

#[test]
fn erf_max_abs_error_below_1e6() {
    let mut worst = (0.0f64, 0.0f32);
    for x in grid(-8.0, 8.0, 400_000) {
        let err = (scalar::erf_f32(x) as f64 - erf_f64(x as f64)).abs();
        if err > worst.0 {
            worst = (err, x);
        }
    }
    assert!(worst.0 <= 1e-6, "erf error {} at {}", worst.0, worst.1);
    assert_eq!(scalar::erf_f32(f32::INFINITY), 1.0);
    assert_eq!(scalar::erf_f32(f32::NEG_INFINITY), -1.0);
    assert!(scalar::erf_f32(f32::NAN).is_nan());
    assert_eq!(scalar::erf_f32(0.0), 0.0);
}

#[test]
fn gelu_matches_f64_reference() {
    for x in grid(-12.0, 12.0, 200_000) {
        let want = gelu_f64(x as f64);
        let got = scalar::gelu_f32(x) as f64;
        assert!(
            (got - want).abs() <= 2e-6 + 1e-6 * want.abs(),
            "gelu({x}) = {got}, expected {want}"
        );
    }
}

#[test]
fn pointwise_twins_match_f64_formulas() {
    let xs = grid(-30.0, 30.0, 20_000);
    let check = |name: &str, f: fn(f32) -> f32, reference: fn(f64) -> f64| {
        for &x in &xs {
            let want = reference(x as f64);
            let got = f(x) as f64;
            let tol = 1e-6 * want.abs().max(1e-30) + 1e-7;
            assert!(
                (got - want).abs() <= tol,
                "{name}({x}) = {got}, expected {want}"
            );
        }
    };
    check("relu", scalar::relu_f32, |x| x.max(0.0));
    check("sigmoid", scalar::sigmoid_f32, |x| 1.0 / (1.0 + (-x).exp()));
    check("silu", scalar::silu_f32, |x| x / (1.0 + (-x).exp()));
    check("exp", scalar::exp_f32, f64::exp);
}

/// The public entry points against the scalar twins, on lengths with vector tails.
#[test]
fn vecmath_entry_points_match_scalar() {
    type SliceFn = fn(&mut [f32]);
    let pairs: [(&str, SliceFn, SliceFn); 7] = [
        ("relu", vecmath::relu, scalar::relu),
        ("silu", vecmath::silu, scalar::silu),
        ("sigmoid", vecmath::sigmoid, scalar::sigmoid),
        ("gelu", vecmath::gelu, scalar::gelu),
        ("exp", vecmath::exp, scalar::exp),
        ("erf", vecmath::erf, scalar::erf),
        ("softmax", vecmath::softmax, scalar::softmax),
    ];
    let mut rng = Rng::new(5);
    for (name, vector, twin) in pairs {
        for len in [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 100] {
            let input = rng.vec(len, -8.0, 8.0);
            let mut got = input.clone();
            vector(&mut got);
            let mut want = input;
            twin(&mut want);
            assert_close(&got, &want, 1e-6, 1e-6, &format!("{name} len={len}"));
        }
    }
}

#[test]
fn softmax_matches_f64_and_is_stable() {
    let mut rng = Rng::new(6);
    for len in [1, 2, 7, 49, 100] {
        for offset in [0.0, 80.0, 1000.0, -1000.0] {
            let row: Vec<f32> = rng
                .vec(len, -10.0, 10.0)
                .iter()
                .map(|x| x + offset)
                .collect();
            let max = row
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, |m, x| m.max(x as f64));
            let exps: Vec<f64> = row.iter().map(|&x| (x as f64 - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            let want: Vec<f32> = exps.iter().map(|e| (e / sum) as f32).collect();
            let mut got = row;
            vecmath::softmax(&mut got);
            assert_close(
                &got,
                &want,
                1e-6,
                1e-5,
                &format!("softmax len={len} offset={offset}"),
            );
        }
    }
    let mut empty: [f32; 0] = [];
    vecmath::softmax(&mut empty);
}

/// A saturated row (one score far above the others) gives exact zeros, never denormals, in
/// both softmax implementations, and the large probabilities are untouched.
#[test]
fn softmax_flushes_tiny_probabilities_to_zero() {
    let mut row = vec![0.0f32; 37];
    row[5] = 200.0;
    row[6] = 200.0 - 30.0; // e^-30 = 9.4e-14: above the floor, kept
    row[7] = 200.0 - 60.0; // e^-60 = 8.8e-27: below it
    for (name, f) in [
        ("vector", vecmath::softmax as fn(&mut [f32])),
        ("scalar", scalar::softmax),
    ] {
        let mut got = row.clone();
        f(&mut got);
        assert!(
            got.iter().all(|v| *v == 0.0 || v.is_normal()),
            "{name}: {got:?}"
        );
        assert_eq!(
            got.iter().filter(|v| **v != 0.0).count(),
            2,
            "{name}: {got:?}"
        );
        assert!(
            (got[5] - 1.0).abs() < 1e-6 && (got[6] / 9.357_623e-14 - 1.0).abs() < 1e-5,
            "{name}"
        );
    }
}

/// The vector `exp` against f64 over the whole range it is exact in, and its documented
/// behaviour at the ends.
#[test]
fn vector_exp_is_within_a_few_ulp() {
    let mut xs = grid(-87.3, 88.3, 200_000);
    let want: Vec<f64> = xs.iter().map(|&x| (x as f64).exp()).collect();
    vecmath::exp(&mut xs);
    for (&got, &want) in xs.iter().zip(&want) {
        let rel = (got as f64 - want).abs() / want;
        assert!(
            rel <= 4e-7,
            "exp: got {got}, expected {want} (relative error {rel:e})"
        );
    }
    let mut ends = [
        -1000.0,
        -88.0,
        89.0,
        1000.0,
        f32::NEG_INFINITY,
        f32::INFINITY,
        f32::NAN,
        0.0,
    ];
    vecmath::exp(&mut ends);
    assert!(ends[..2].iter().all(|&v| v > 0.0 && v < 1.2e-38));
    assert!(ends[2..4].iter().all(|&v| v.is_finite() && v > 2.3e38));
    assert!(ends[4] < 1.2e-38 && ends[5] > 2.3e38);
    assert!(ends[6].is_nan());
    assert_eq!(ends[7], 1.0);
}

/// Whether the vector maths may fuse its polynomial steps (`f32x4.relaxed_madd` in a
/// relaxed-SIMD build): then it is within a few rounding errors of its twins, not bit-equal.
const FUSED_POLYNOMIALS: bool = cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd"));

/// Equal bits (or equal values), or with fused polynomial steps within `1e-6 * (1 + |want|)`:
/// a fused step differs from a multiply then add by at most one rounding, a few ulp after the
/// division of erf's rational function, more relative to a GELU output that cancels towards 0
/// (`1 + erf` at large negative inputs) but never more than that absolute bound.
fn twin_agrees(got: f32, want: f32) -> bool {
    got.to_bits() == want.to_bits()
        || got == want
        || (FUSED_POLYNOMIALS && (got - want).abs() <= 1e-6 * (1.0 + want.abs()))
}

/// The vector GELU and erf against the f64 reference, with the scalar twins' bounds: what
/// holds for every build, fused polynomial steps or not.
#[test]
fn vector_gelu_and_erf_match_f64_reference() {
    let xs = grid(-12.0, 12.0, 200_000);
    let mut gelu = xs.clone();
    vecmath::gelu(&mut gelu);
    let mut erf = xs.clone();
    vecmath::erf(&mut erf);
    for (i, &x) in xs.iter().enumerate() {
        let want = gelu_f64(x as f64);
        let got = gelu[i] as f64;
        assert!(
            (got - want).abs() <= 2e-6 + 1e-6 * want.abs(),
            "gelu({x}) = {got}, expected {want}"
        );
        let want = erf_f64(x as f64);
        let got = erf[i] as f64;
        assert!(
            (got - want).abs() <= 1e-6,
            "erf({x}) = {got}, expected {want}"
        );
    }
}

/// GELU and erf use the scalar twin's rational function in the same order: bit-identical
/// (within [`twin_agrees`] where polynomial steps are fused).
#[test]
fn vector_gelu_and_erf_equal_scalar_twins() {
    type SliceFn = fn(&mut [f32]);
    let pairs: [(&str, SliceFn, SliceFn); 2] = [
        ("gelu", vecmath::gelu, scalar::gelu),
        ("erf", vecmath::erf, scalar::erf),
    ];
    for (name, vector, twin) in pairs {
        let input = grid(-10.0, 10.0, 100_003);
        let mut got = input.clone();
        vector(&mut got);
        let mut want = input;
        twin(&mut want);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!(twin_agrees(g, w), "{name} index {i}: {g} vs {w}");
        }
    }
}

/// The SIMD lanes against the portable four-element lanes: the same arithmetic, so the same
/// bits on finite inputs (on native targets both sides are the portable implementation), or
/// within [`twin_agrees`] where polynomial steps are fused.
#[test]
fn simd_lanes_equal_portable_lanes() {
    type SliceFn = fn(&mut [f32]);
    use super::vecmath::portable;
    let pairs: [(&str, SliceFn, SliceFn); 7] = [
        ("relu", vecmath::relu, portable::relu),
        ("silu", vecmath::silu, portable::silu),
        ("sigmoid", vecmath::sigmoid, portable::sigmoid),
        ("gelu", vecmath::gelu, portable::gelu),
        ("exp", vecmath::exp, portable::exp),
        ("erf", vecmath::erf, portable::erf),
        ("softmax", vecmath::softmax, portable::softmax),
    ];
    let mut rng = Rng::new(13);
    for (name, simd, plain) in pairs {
        for len in [1, 3, 4, 5, 64, 1001] {
            let input = rng.vec(len, -100.0, 100.0);
            let mut got = input.clone();
            simd(&mut got);
            let mut want = input;
            plain(&mut want);
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert!(twin_agrees(g, w), "{name} len={len} index {i}: {g} vs {w}");
            }
        }
    }
}

#[test]
fn activations_propagate_nan_and_saturate() {
    type SliceFn = fn(&mut [f32]);
    let fns: [(&str, SliceFn); 6] = [
        ("relu", vecmath::relu),
        ("silu", vecmath::silu),
        ("sigmoid", vecmath::sigmoid),
        ("gelu", vecmath::gelu),
        ("exp", vecmath::exp),
        ("erf", vecmath::erf),
    ];
    for (name, f) in fns {
        let mut xs = [f32::NAN, 1.0, f32::NAN];
        f(&mut xs);
        assert!(
            xs[0].is_nan() && xs[2].is_nan() && !xs[1].is_nan(),
            "{name}: {xs:?}"
        );
    }
    let mut xs = [-1e4, -100.0, 100.0, 1e4];
    vecmath::sigmoid(&mut xs);
    assert_close(&xs, &[0.0, 0.0, 1.0, 1.0], 1e-30, 0.0, "sigmoid ends");
    let mut xs = [-1e4, -100.0, 100.0, 1e4];
    vecmath::silu(&mut xs);
    assert_close(&xs, &[0.0, 0.0, 100.0, 1e4], 1e-30, 0.0, "silu ends");
    let mut xs = [-1e4, -100.0, 100.0, 1e4];
    vecmath::gelu(&mut xs);
    assert_close(&xs, &[0.0, 0.0, 100.0, 1e4], 0.0, 0.0, "gelu ends");
}
