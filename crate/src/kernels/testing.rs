//! Test helpers shared by the kernel and op tests: a seeded RNG, tolerance checks and a
//! transposed copy.

/// A small deterministic generator (SplitMix64), so tests need no dependency and every run
/// sees the same data.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    pub(crate) fn vec(&mut self, len: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..len).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// Panics with the first offending index unless `|a - e| <= atol + rtol * |e|` everywhere
/// and the lengths agree.
#[track_caller]
pub(crate) fn assert_close(actual: &[f32], expected: &[f32], atol: f32, rtol: f32, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length differs");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let ok = a == e || (a - e).abs() <= atol + rtol * e.abs() || (a.is_nan() && e.is_nan());
        assert!(
            ok,
            "{what}: index {i}: got {a}, expected {e} (atol {atol}, rtol {rtol})"
        );
    }
}

/// A (rows, cols) row-major matrix as its (cols, rows) row-major transpose.
pub(crate) fn transposed(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    super::transpose(rows, cols, data, cols, &mut out, rows);
    out
}
