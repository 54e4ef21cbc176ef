//! Four `f32` lanes: the few operations the vector algorithms need, implemented once with
//! wasm SIMD128 and once as a plain array. The array version is what native builds run (the
//! compiler maps it onto SSE registers) and is the lane-by-lane twin of the SIMD one: both
//! round every operation identically, so their results agree bit for bit on finite inputs.

/// Four `f32` values operated on together.
pub(crate) trait Lanes: Copy {
    fn splat(v: f32) -> Self;
    fn load(src: &[f32; 4]) -> Self;
    fn store(self, dst: &mut [f32; 4]);
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    /// `self * m + a` for polynomial steps: a multiply then an add (two roundings), except in
    /// a relaxed-SIMD build, where it is `f32x4.relaxed_madd` and the engine may fuse it.
    fn mul_add(self, m: Self, a: Self) -> Self;
    /// Lane-wise `if o < self { o } else { self }`: a NaN in `self` propagates (the
    /// algorithms clamp data against constants), and it is one instruction on x86 and ARM.
    fn min(self, o: Self) -> Self;
    /// Lane-wise `if o > self { o } else { self }`; a NaN in `self` propagates.
    fn max(self, o: Self) -> Self;
    /// Lane-wise `if self < t { 0 } else { self }`; a NaN in `self` propagates.
    fn zero_below(self, t: Self) -> Self;
    /// `2^n` where `self` holds `n + ROUNDING_MAGIC` for an integer `|n| < 2^22`: the integer
    /// sits in the low mantissa bits, so moving it into the exponent field is integer work.
    fn pow2_of_rounded(self) -> Self;
}

/// `1.5 * 2^23`: adding it rounds an `f32` of magnitude below `2^22` to the nearest integer
/// (ties to even), which then sits in the low mantissa bits.
pub(crate) const ROUNDING_MAGIC: f32 = 12_582_912.0;

/// `127 - bits(ROUNDING_MAGIC)`: turns those bits into a biased exponent.
const EXPONENT_FROM_MAGIC: i32 = 127 - 0x4B40_0000;

/// The portable implementation (on wasm with SIMD128, only the tests' twin).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128", not(test)),
    allow(dead_code)
)]
pub(crate) struct Array4([f32; 4]);

#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128", not(test)),
    allow(dead_code)
)]
impl Array4 {
    #[inline(always)]
    fn map2(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        Array4([
            f(self.0[0], o.0[0]),
            f(self.0[1], o.0[1]),
            f(self.0[2], o.0[2]),
            f(self.0[3], o.0[3]),
        ])
    }
}

impl Lanes for Array4 {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Array4([v; 4])
    }

    #[inline(always)]
    fn load(src: &[f32; 4]) -> Self {
        Array4(*src)
    }

    #[inline(always)]
    fn store(self, dst: &mut [f32; 4]) {
        *dst = self.0;
    }

    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.map2(o, |a, b| a + b)
    }

    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.map2(o, |a, b| a - b)
    }

    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.map2(o, |a, b| a * b)
    }

    #[inline(always)]
    fn div(self, o: Self) -> Self {
        self.map2(o, |a, b| a / b)
    }

    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.map2(o, |a, b| if b < a { b } else { a })
    }

    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.map2(o, |a, b| if b > a { b } else { a })
    }

    #[inline(always)]
    fn mul_add(self, m: Self, a: Self) -> Self {
        self.mul(m).add(a)
    }

    #[inline(always)]
    fn zero_below(self, t: Self) -> Self {
        self.map2(t, |a, t| if a < t { 0.0 } else { a })
    }

    #[inline(always)]
    fn pow2_of_rounded(self) -> Self {
        Array4(self.0.map(|t| {
            f32::from_bits(
                (t.to_bits() as i32)
                    .wrapping_add(EXPONENT_FROM_MAGIC)
                    .wrapping_shl(23) as u32,
            )
        }))
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) use wasm::V128;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use core::arch::wasm32::{
        f32x4_add, f32x4_div, f32x4_lt, f32x4_mul, f32x4_pmax, f32x4_pmin, f32x4_splat, f32x4_sub,
        i32x4_add, i32x4_shl, i32x4_splat, v128, v128_andnot, v128_load, v128_store,
    };

    use super::{Lanes, EXPONENT_FROM_MAGIC};

    /// The SIMD128 implementation.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct V128(v128);

    impl Lanes for V128 {
        #[inline(always)]
        fn splat(v: f32) -> Self {
            V128(f32x4_splat(v))
        }

        #[inline(always)]
        fn load(src: &[f32; 4]) -> Self {
            // Safety: `src` is 16 readable bytes; wasm loads need no alignment.
            V128(unsafe { v128_load(src.as_ptr() as *const v128) })
        }

        #[inline(always)]
        fn store(self, dst: &mut [f32; 4]) {
            // Safety: `dst` is 16 writable bytes; wasm stores need no alignment.
            unsafe { v128_store(dst.as_mut_ptr() as *mut v128, self.0) }
        }

        #[inline(always)]
        fn add(self, o: Self) -> Self {
            V128(f32x4_add(self.0, o.0))
        }

        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            V128(f32x4_sub(self.0, o.0))
        }

        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            V128(f32x4_mul(self.0, o.0))
        }

        #[inline(always)]
        fn div(self, o: Self) -> Self {
            V128(f32x4_div(self.0, o.0))
        }

        #[inline(always)]
        fn min(self, o: Self) -> Self {
            V128(f32x4_pmin(self.0, o.0))
        }

        #[inline(always)]
        fn max(self, o: Self) -> Self {
            V128(f32x4_pmax(self.0, o.0))
        }

        #[inline(always)]
        fn mul_add(self, m: Self, a: Self) -> Self {
            #[cfg(target_feature = "relaxed-simd")]
            return V128(core::arch::wasm32::f32x4_relaxed_madd(self.0, m.0, a.0));
            #[cfg(not(target_feature = "relaxed-simd"))]
            return self.mul(m).add(a);
        }

        #[inline(always)]
        fn zero_below(self, t: Self) -> Self {
            V128(v128_andnot(self.0, f32x4_lt(self.0, t.0)))
        }

        #[inline(always)]
        fn pow2_of_rounded(self) -> Self {
            let biased = i32x4_add(self.0, i32x4_splat(EXPONENT_FROM_MAGIC));
            V128(i32x4_shl(biased, 23))
        }
    }
}
