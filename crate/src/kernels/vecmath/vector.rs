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
//! - sigmoid, SiLU, GELU and ReLU from those; softmax with a vector `exp`.

use super::lanes::{Lanes, ROUNDING_MAGIC};
use super::scalar::{ERF_ALPHA, ERF_BETA};

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

#[inline(always)]
pub(crate) fn exp<L: Lanes>(x: L) -> L {
    let x = x.min(L::splat(EXP_HI)).max(L::splat(EXP_LO));
    let t = x.mul(L::splat(LOG2_E)).add(L::splat(ROUNDING_MAGIC));
    let n = t.sub(L::splat(ROUNDING_MAGIC));
    let r = x.sub(n.mul(L::splat(LN2_HI))).sub(n.mul(L::splat(LN2_LO)));
    let mut p = L::splat(EXP_POLY[0]);
    for &c in &EXP_POLY[1..] {
        p = p.mul(r).add(L::splat(c));
    }
    let e = p.mul(r.mul(r)).add(r).add(L::splat(1.0));
    e.mul(t.pow2_of_rounded())
}

#[inline(always)]
pub(crate) fn erf<L: Lanes>(x: L) -> L {
    let x = x.min(L::splat(4.0)).max(L::splat(-4.0));
    let x2 = x.mul(x);
    let mut p = L::splat(ERF_ALPHA[0]);
    for &c in &ERF_ALPHA[1..] {
        p = p.mul(x2).add(L::splat(c));
    }
    let mut q = L::splat(ERF_BETA[0]);
    for &c in &ERF_BETA[1..] {
        q = q.mul(x2).add(L::splat(c));
    }
    x.mul(p).div(q).min(L::splat(1.0)).max(L::splat(-1.0))
}

#[inline(always)]
pub(crate) fn sigmoid<L: Lanes>(x: L) -> L {
    let one = L::splat(1.0);
    one.div(one.add(exp(L::splat(0.0).sub(x))))
}

#[inline(always)]
pub(crate) fn silu<L: Lanes>(x: L) -> L {
    x.mul(sigmoid(x))
}

#[inline(always)]
pub(crate) fn gelu<L: Lanes>(x: L) -> L {
    let inner = erf(x.mul(L::splat(std::f32::consts::FRAC_1_SQRT_2)));
    L::splat(0.5).mul(x).mul(L::splat(1.0).add(inner))
}

#[inline(always)]
pub(crate) fn relu<L: Lanes>(x: L) -> L {
    x.max(L::splat(0.0))
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
    let shift = L::splat(max);
    map(row, |x: L| exp(x.sub(shift)));
    let inv = L::splat(1.0 / row.iter().sum::<f32>());
    map(row, |x: L| x.mul(inv));
}
