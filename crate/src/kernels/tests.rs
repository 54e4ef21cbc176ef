//! Every compiled kernel against its scalar twin, and the scalar twins against f64
//! references, on degenerate, odd and tail sizes.

use super::gemm::{self, gemm_scalar, gemm_with, required_len, GemmKernel, KERNELS};
use super::testing::{assert_close, Rng};
use super::vecmath::{self, scalar};
use super::Parallelism;

const SIZES: [usize; 8] = [0, 1, 3, 7, 8, 17, 33, 64];
const PARALLELISM: [Parallelism; 4] = [
    Parallelism::Serial,
    Parallelism::Threads(1),
    Parallelism::Threads(3),
    Parallelism::Threads(8),
];

fn supported_kernels() -> impl Iterator<Item = &'static dyn GemmKernel> {
    KERNELS.iter().copied().filter(|k| k.is_supported())
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
            k,
            lda,
            ldb,
            ldc,
            a: rng.vec(required_len(m, k, lda), -1.0, 1.0),
            b: rng.vec(required_len(k, n, ldb), -1.0, 1.0),
            c: vec![c_init; m * ldc],
        }
    }

    fn tolerance(&self) -> f32 {
        1e-6 * (self.k as f32 + 1.0)
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
                    assert_close(&got, &want, case.tolerance(), 1e-5, &what);
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
                    for accumulate in [false, true] {
                        for par in PARALLELISM {
                            // Padding of 0, 1 or 2 exercises lda/ldb/ldc > row length.
                            let pad = (m + n + k) % 3;
                            let case = GemmCase::new(&mut rng, m, n, k, pad, -0.25);
                            let GemmCase { lda, ldb, ldc, .. } = case;
                            let (a, b) = (&case.a, &case.b);
                            let mut got = case.c.clone();
                            gemm_with(
                                kernel, par, m, n, k, a, lda, b, ldb, &mut got, ldc, accumulate,
                            );
                            let mut want = case.c.clone();
                            gemm_scalar(m, n, k, a, lda, b, ldb, &mut want, ldc, accumulate);
                            let what = format!(
                                "{} m={m} n={n} k={k} pad={pad} acc={accumulate} {par:?}",
                                kernel.name()
                            );
                            assert_close(&got, &want, case.tolerance(), 1e-5, &what);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn gemm_leaves_padding_untouched() {
    let mut rng = Rng::new(3);
    for kernel in supported_kernels() {
        for (m, n, k) in [(5, 3, 4), (17, 9, 1), (2, 33, 0), (8, 8, 8)] {
            let case = GemmCase::new(&mut rng, m, n, k, 3, f32::NAN);
            let GemmCase { lda, ldb, ldc, .. } = case;
            let mut c = case.c.clone();
            gemm_with(
                kernel,
                Parallelism::Threads(3),
                m,
                n,
                k,
                &case.a,
                lda,
                &case.b,
                ldb,
                &mut c,
                ldc,
                false,
            );
            for (idx, &v) in c.iter().enumerate() {
                let inside = idx % ldc < n;
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
