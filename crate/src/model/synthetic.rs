//! Deterministic synthetic weights, the twin of `weights/effyolo_ref/synthetic.py`.
//!
//! Every value is an integer hash of the tensor name and element index mapped to [-1, 1),
//! then scaled by the tensor's role. Parity fixtures therefore store no weights, and untrained
//! variants (benchmarks) get well-scaled values without a file.

/// FNV-1a, 32-bit.
fn fnv1a32(text: &str) -> u32 {
    text.bytes()
        .fold(0x811c_9dc5, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

/// `n` values in [-1, 1): murmur3's fmix32 of (fnv1a(name) ^ (i * 0x9E3779B9)).
pub fn uniform(name: &str, n: usize) -> Vec<f32> {
    let seed = fnv1a32(name);
    (0..n)
        .map(|i| {
            let mut h = seed ^ (i as u32).wrapping_mul(0x9e37_79b9);
            h ^= h >> 16;
            h = h.wrapping_mul(0x85eb_ca6b);
            h ^= h >> 13;
            h = h.wrapping_mul(0xc2b2_ae35);
            h ^= h >> 16;
            let u = (h >> 8) as f32 / 16_777_216.0;
            2.0 * u - 1.0
        })
        .collect()
}

/// (centre, half-width) of a tensor's values, chosen by its role.
fn centre_and_scale(name: &str, shape: &[usize]) -> (f32, f32) {
    let vector = shape.len() == 1;
    if name.ends_with("running_var") {
        (1.0, 0.5)
    } else if name.ends_with("running_mean") {
        (0.0, 0.1)
    } else if name.ends_with("attention_biases") || name.ends_with("gamma") {
        (0.0, 0.5)
    } else if vector && name.ends_with("weight") {
        (1.0, 0.1)
    } else if vector && name.ends_with("bias") {
        (0.0, 0.1)
    } else {
        let fan_in: usize = shape[1..].iter().product();
        (0.0, (3.0 / fan_in as f64).sqrt() as f32)
    }
}

/// The synthetic tensor `name` of `shape`.
pub fn tensor(name: &str, shape: &[usize]) -> Vec<f32> {
    let (centre, scale) = centre_and_scale(name, shape);
    uniform(name, shape.iter().product())
        .into_iter()
        .map(|v| centre + scale * v)
        .collect()
}

/// A (3, H, W) input in [0, 1), as the reference's `synthetic_input`.
pub fn input(height: usize, width: usize) -> Vec<f32> {
    uniform("input", 3 * height * width)
        .into_iter()
        .map(|v| 0.5 + 0.5 * v)
        .collect()
}
