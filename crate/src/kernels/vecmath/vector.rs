//! The vector algorithms, written once over [`Lanes`] and run four elements at a time.
//!
//! - `exp`: Cephes' `expf`. `x = n ln2 + r` with `n` rounded to nearest and `|r| <= ln2 / 2`
//!   (`ln2` split in two so `r` is exact to f32), `e^r` by a degree-6 polynomial, then `2^n`
//!   built in the exponent field. Relative error about 2 ulp (below 3e-7) against libm.
//!   Inputs are clamped to [-87.33, 88.37]: below, the result is the smallest normal f32
//!   (1.2e-38) instead of a denormal or 0; above, it saturates at 2.4e38 instead of reaching
//!   infinity. NaN propagates.
//! - `erf`: the same rational function as [`super::scalar::erf_f32`], evaluated in the same
//!   order, so vector and scalar `erf` and GELU agree bit for bit.
//! - sigmoid, SiLU, GELU and ReLU from those; softmax with a vector `exp`, and the same
//!   floor as the scalar softmax ([`SOFTMAX_FLOOR`]).

use super::lanes::{Lanes, ROUNDING_MAGIC};
use super::scalar::{ERF_ALPHA, ERF_BETA, SOFTMAX_FLOOR};

const EXP_LO: f32 = -87.336_55;
const EXP_HI: f32 = 88.37;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2 = LN2_HI + LN2_LO`, with `LN2_HI` exact in few bits so `n * LN2_HI` is exact.
// 0.693359375 = 355 / 512, exact in f32.
#[allow(clippy::excessive_precision)]
const LN2_HI: f32 = 0.693_359_375;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes' minimax polynomial for `(e^r - 1 - r) / r^2`, highest power first.
#[allow(clippy::excessive_precision)]
const EXP_POLY: [f32; 6] = [
    1.987_569_15e-4,
    1.398_199_95e-3,
    8.333_451_9e-3,
    4.166_579_59e-2,
    1.666_666_55e-1,
    5.000_000_12e-1,
];

/// The constants of [`exp`], splatted once per slice.
///
/// Every algorithm here takes its constants as values built before its loop: a constant
/// written in the loop compiles to a `v128.const` at each use, which V8 materialises anew
/// each time (several instructions per constant, measured: a multiply-add chain with one
/// constant operand ran at half the speed of the same chain with a hoisted one). Passing the
/// scalars through `black_box` once per call keeps them out of constant folding, so the
/// splats are computed once and stay in registers or on the stack.
#[derive(Clone, Copy)]
pub(crate) struct ExpK<L> {
    hi: L,
    lo: L,
    log2_e: L,
    magic: L,
    ln2_hi: L,
    ln2_lo: L,
    poly: [L; 6],
    one: L,
}

/// `n` values, opaque to the optimiser (see [`ExpK`]).
#[inline(always)]
fn opaque<const N: usize>(values: [f32; N]) -> [f32; N] {
    std::hint::black_box(values)
}

impl<L: Lanes> ExpK<L> {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        let [hi, lo, log2_e, magic, ln2_hi, ln2_lo, one] =
            opaque([EXP_HI, EXP_LO, LOG2_E, ROUNDING_MAGIC, LN2_HI, LN2_LO, 1.0]).map(L::splat);
        ExpK {
            hi,
            lo,
            log2_e,
            magic,
            ln2_hi,
            ln2_lo,
            poly: opaque(EXP_POLY).map(L::splat),
            one,
        }
    }
}

#[inline(always)]
pub(crate) fn exp<L: Lanes>(x: L, k: &ExpK<L>) -> L {
    let x = x.min(k.hi).max(k.lo);
    let t = x.mul(k.log2_e).add(k.magic);
    let n = t.sub(k.magic);
    let r = x.sub(n.mul(k.ln2_hi)).sub(n.mul(k.ln2_lo));
    let mut p = k.poly[0];
    for &c in &k.poly[1..] {
        p = p.mul_add(r, c);
    }
    let e = p.mul(r.mul(r)).add(r).add(k.one);
    e.mul(t.pow2_of_rounded())
}

/// The constants of [`erf`] and [`gelu`] (see [`ExpK`]).
#[derive(Clone, Copy)]
pub(crate) struct ErfK<L> {
    four: L,
    neg_four: L,
    alpha: [L; 7],
    beta: [L; 5],
    one: L,
    neg_one: L,
    half: L,
    frac_1_sqrt_2: L,
}

impl<L: Lanes> ErfK<L> {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        let [four, neg_four, one, neg_one, half, frac_1_sqrt_2] =
            opaque([4.0, -4.0, 1.0, -1.0, 0.5, std::f32::consts::FRAC_1_SQRT_2]).map(L::splat);
        ErfK {
            four,
            neg_four,
            alpha: opaque(ERF_ALPHA).map(L::splat),
            beta: opaque(ERF_BETA).map(L::splat),
            one,
            neg_one,
            half,
            frac_1_sqrt_2,
        }
    }
}

#[inline(always)]
pub(crate) fn erf<L: Lanes>(x: L, k: &ErfK<L>) -> L {
    let x = x.min(k.four).max(k.neg_four);
    let x2 = x.mul(x);
    let mut p = k.alpha[0];
    for &c in &k.alpha[1..] {
        p = p.mul_add(x2, c);
    }
    let mut q = k.beta[0];
    for &c in &k.beta[1..] {
        q = q.mul_add(x2, c);
    }
    x.mul(p).div(q).min(k.one).max(k.neg_one)
}

#[inline(always)]
pub(crate) fn sigmoid<L: Lanes>(x: L, k: &ExpK<L>, zero: L) -> L {
    k.one.div(k.one.add(exp(zero.sub(x), k)))
}

#[inline(always)]
pub(crate) fn gelu<L: Lanes>(x: L, k: &ErfK<L>) -> L {
    let inner = erf(x.mul(k.frac_1_sqrt_2), k);
    k.half.mul(x).mul(k.one.add(inner))
}

/// `exp` of every element.
pub(crate) fn exp_slice<L: Lanes>(xs: &mut [f32]) {
    let k = ExpK::<L>::new();
    map(xs, |x: L| exp(x, &k));
}

/// `erf` of every element.
pub(crate) fn erf_slice<L: Lanes>(xs: &mut [f32]) {
    let k = ErfK::<L>::new();
    map(xs, |x: L| erf(x, &k));
}

/// Exact GELU of every element.
pub(crate) fn gelu_slice<L: Lanes>(xs: &mut [f32]) {
    let k = ErfK::<L>::new();
    map(xs, |x: L| gelu(x, &k));
}

/// Sigmoid of every element.
pub(crate) fn sigmoid_slice<L: Lanes>(xs: &mut [f32]) {
    let (k, zero) = (ExpK::<L>::new(), L::splat(opaque([0.0])[0]));
    map(xs, |x: L| sigmoid(x, &k, zero));
}

/// SiLU (`x * sigmoid(x)`) of every element.
pub(crate) fn silu_slice<L: Lanes>(xs: &mut [f32]) {
    let (k, zero) = (ExpK::<L>::new(), L::splat(opaque([0.0])[0]));
    map(xs, |x: L| x.mul(sigmoid(x, &k, zero)));
}

/// ReLU of every element.
pub(crate) fn relu_slice<L: Lanes>(xs: &mut [f32]) {
    let zero = L::splat(opaque([0.0])[0]);
    map(xs, |x: L| x.max(zero));
}

/// Applies `f` to every element, four at a time; a ragged tail goes through a padded buffer
/// so every element sees the same arithmetic.
#[inline(always)]
pub(crate) fn map<L: Lanes>(xs: &mut [f32], f: impl Fn(L) -> L) {
    let mut chunks = xs.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let chunk: &mut [f32; 4] = chunk.try_into().unwrap();
        f(L::load(chunk)).store(chunk);
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut buf = [0.0; 4];
        for (b, &v) in buf.iter_mut().zip(tail.iter()) {
            *b = v;
        }
        f(L::load(&buf)).store(&mut buf);
        for (v, &b) in tail.iter_mut().zip(buf.iter()) {
            *v = b;
        }
    }
}

/// Softmax of one row: `exp(x - max) / sum`.
pub(crate) fn softmax<L: Lanes>(row: &mut [f32]) {
    if row.is_empty() {
        return;
    }
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (shift, k) = (L::splat(max), ExpK::<L>::new());
    map(row, |x: L| exp(x.sub(shift), &k));
    let sum = row.iter().sum::<f32>();
    let (inv, floor) = (L::splat(1.0 / sum), L::splat(SOFTMAX_FLOOR * sum));
    map(row, |x: L| x.zero_below(floor).mul(inv));
}
