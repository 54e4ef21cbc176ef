//! Letterbox preprocessing: an RGB8 image becomes the network's (3, S_h, S_w) input tensor.
//!
//! The image is scaled by one factor `r` so it fits the input while keeping its aspect ratio,
//! centred, and the rest filled with YOLOv5's grey (114). The recipe is the one YOLOv5 uses,
//! but every step is pinned down so that the Python reference reproduces it bit for bit in
//! f32 (OpenCV's fixed-point resize would differ by up to a grey level):
//!
//! - `r = min(S_h / h, S_w / w)` in f64; the resized size is `floor(w r + 0.5)` x
//!   `floor(h r + 0.5)`, each clamped to `1..=S`; padding is split with the odd pixel on the
//!   right/bottom (`pad = (S - new) / 2`, integer division).
//! - Resampling is bilinear with half-pixel centres (`align_corners = False`), no antialias,
//!   in f32 with a fixed operation order; see [`letterbox`].
//! - Values are divided by 255, then optionally normalised per channel when the checkpoint
//!   was trained with a mean/std (the identity mean/std is skipped so values stay exact).
//!
//! The returned [`Letterbox`] records the geometry, which post-processing uses to map boxes
//! back to image pixels.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Largest accepted source image, in pixels (64 Mi). Bigger inputs are almost certainly a
/// mistake, and the RGB8 buffer alone would already be 192 MiB.
pub const MAX_IMAGE_PIXELS: usize = 64 << 20;

/// Largest accepted network input side.
pub const MAX_INPUT_SIDE: usize = 8192;

/// Network input sides must be multiples of the coarsest head stride.
pub const INPUT_MULTIPLE: usize = 32;

/// The letterbox fill, YOLOv5's grey 114, in network units (before mean/std).
pub const PAD_VALUE: f32 = 114.0 / 255.0;

/// Geometry of one letterbox: how the source image sits inside the network input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    /// Resize factor `r` from source pixels to network pixels.
    pub scale: f64,
    /// Columns of padding left of the resized image.
    pub pad_x: usize,
    /// Rows of padding above the resized image.
    pub pad_y: usize,
    /// Width of the resized image inside the input.
    pub new_w: usize,
    /// Height of the resized image inside the input.
    pub new_h: usize,
    /// Source image width.
    pub src_w: usize,
    /// Source image height.
    pub src_h: usize,
}

impl Letterbox {
    /// The geometry that fits a `src_w` x `src_h` image into a network input of
    /// `size` = (height, width).
    pub fn fit(src_w: usize, src_h: usize, size: (usize, usize)) -> Result<Self> {
        validate_input_size(size)?;
        validate_image_size(src_w, src_h)?;
        let (s_h, s_w) = size;
        let r = (s_h as f64 / src_h as f64).min(s_w as f64 / src_w as f64);
        let new_w = ((src_w as f64 * r + 0.5).floor() as usize).clamp(1, s_w);
        let new_h = ((src_h as f64 * r + 0.5).floor() as usize).clamp(1, s_h);
        Ok(Letterbox {
            scale: r,
            pad_x: (s_w - new_w) / 2,
            pad_y: (s_h - new_h) / 2,
            new_w,
            new_h,
            src_w,
            src_h,
        })
    }
}

/// Checks a network input size (height, width): both positive multiples of 32, at most
/// [`MAX_INPUT_SIDE`].
pub fn validate_input_size(size: (usize, usize)) -> Result<()> {
    let (h, w) = size;
    let ok = |s: usize| s > 0 && s.is_multiple_of(INPUT_MULTIPLE) && s <= MAX_INPUT_SIDE;
    if ok(h) && ok(w) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "input size {h}x{w} (height x width) is not usable: both sides must be positive \
             multiples of {INPUT_MULTIPLE}, at most {MAX_INPUT_SIDE}"
        )))
    }
}

fn validate_image_size(width: usize, height: usize) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::InvalidInput(format!(
            "image is {width}x{height} pixels: width and height must be non-zero"
        )));
    }
    match width.checked_mul(height) {
        Some(n) if n <= MAX_IMAGE_PIXELS => Ok(()),
        _ => Err(Error::InvalidInput(format!(
            "image is {width}x{height} pixels: at most {MAX_IMAGE_PIXELS} pixels are accepted"
        ))),
    }
}

fn validate_normalisation(mean: [f32; 3], std: [f32; 3]) -> Result<()> {
    if mean.iter().all(|m| m.is_finite()) && std.iter().all(|s| s.is_finite() && *s != 0.0) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "normalisation mean {mean:?} / std {std:?} must be finite with a non-zero std"
        )))
    }
}

/// Letterboxes an interleaved RGB8 image (`rgb.len() == 3 * width * height`, rows top to
/// bottom) into a (3, S_h, S_w) channel-planar tensor for network input `size` = (S_h, S_w).
///
/// Resampling, per output pixel and channel, in f32 (`p` are source values as f32):
/// `scale_x = w / new_w`, `sx = max((x + 0.5) * scale_x - 0.5, 0)`, `x0 = min(floor(sx), w - 1)`,
/// `x1 = min(x0 + 1, w - 1)`, `fx = sx - x0` (0 when `x0` was clamped), likewise for y;
/// `top = p00 + (p01 - p00) * fx`, `bot = p10 + (p11 - p10) * fx`,
/// `v = (top + (bot - top) * fy) / 255`. When `mean`/`std` are not the identity
/// (`[0; 3]`/`[1; 3]`), every value, padding included, becomes `(v - mean[c]) / std[c]`.
pub fn letterbox(
    rgb: &[u8],
    width: usize,
    height: usize,
    size: (usize, usize),
    mean: [f32; 3],
    std: [f32; 3],
) -> Result<(Tensor, Letterbox)> {
    let geometry = Letterbox::fit(width, height, size)?;
    // `fit` bounded width * height, so this cannot overflow.
    let expected = 3 * width * height;
    if rgb.len() != expected {
        return Err(Error::InvalidInput(format!(
            "RGB buffer has {} bytes but a {width}x{height} image needs {expected} (3 per pixel)",
            rgb.len()
        )));
    }
    validate_normalisation(mean, std)?;

    let (s_h, s_w) = size;
    let plane = s_h * s_w;
    let mut data = vec![PAD_VALUE; 3 * plane];
    let xs = axis_taps(width, geometry.new_w);
    let ys = axis_taps(height, geometry.new_h);
    for (y, ty) in ys.iter().enumerate() {
        let row0 = &rgb[ty.i0 * width * 3..(ty.i0 + 1) * width * 3];
        let row1 = &rgb[ty.i1 * width * 3..(ty.i1 + 1) * width * 3];
        let out_row = (geometry.pad_y + y) * s_w + geometry.pad_x;
        for (x, tx) in xs.iter().enumerate() {
            for c in 0..3 {
                let p00 = f32::from(row0[tx.i0 * 3 + c]);
                let p01 = f32::from(row0[tx.i1 * 3 + c]);
                let p10 = f32::from(row1[tx.i0 * 3 + c]);
                let p11 = f32::from(row1[tx.i1 * 3 + c]);
                let top = p00 + (p01 - p00) * tx.frac;
                let bot = p10 + (p11 - p10) * tx.frac;
                let v = top + (bot - top) * ty.frac;
                data[c * plane + out_row + x] = v / 255.0;
            }
        }
    }

    if mean != [0.0; 3] || std != [1.0; 3] {
        for (c, channel) in data.chunks_exact_mut(plane).enumerate() {
            for v in channel {
                *v = (*v - mean[c]) / std[c];
            }
        }
    }
    Ok((Tensor::new(&[3, s_h, s_w], data)?, geometry))
}

/// Source indices and weight of one output column (or row) of the bilinear resize.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Tap {
    i0: usize,
    i1: usize,
    frac: f32,
}

/// Taps of a half-pixel-centred bilinear resize from `src` to `dst` samples (both > 0).
fn axis_taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = src as f32 / dst as f32;
    let last = src - 1;
    (0..dst)
        .map(|d| {
            let s = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
            // `s` is non-negative and finite, so the cast is a plain floor. At the last
            // sample both taps coincide; its weight is zeroed as in the reference.
            let floor = s.floor() as usize;
            let (i0, frac) = if floor >= last {
                (last, 0.0)
            } else {
                (floor, s - floor as f32)
            };
            Tap {
                i0,
                i1: (i0 + 1).min(last),
                frac,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY_MEAN: [f32; 3] = [0.0; 3];
    const IDENTITY_STD: [f32; 3] = [1.0; 3];

    fn solid(width: usize, height: usize, rgb: [u8; 3]) -> Vec<u8> {
        rgb.iter()
            .copied()
            .cycle()
            .take(3 * width * height)
            .collect()
    }

    fn at(t: &Tensor, c: usize, y: usize, x: usize) -> f32 {
        let (_, h, w) = t.chw("test").unwrap();
        t.data()[(c * h + y) * w + x]
    }

    #[test]
    fn geometry_matches_the_definition() {
        let lb = Letterbox::fit(640, 480, (320, 320)).unwrap();
        assert_eq!(
            (lb.scale, lb.new_w, lb.new_h, lb.pad_x, lb.pad_y),
            (0.5, 320, 240, 0, 40)
        );

        // r = 0.32: 33 * 0.32 + 0.5 = 11.06 -> 11 rows, odd padding row goes to the bottom.
        let lb = Letterbox::fit(100, 33, (32, 32)).unwrap();
        assert_eq!((lb.new_w, lb.new_h, lb.pad_x, lb.pad_y), (32, 11, 0, 10));

        // Non-square input: the tighter side decides.
        let lb = Letterbox::fit(100, 100, (64, 128)).unwrap();
        assert_eq!(
            (lb.scale, lb.new_w, lb.new_h, lb.pad_x, lb.pad_y),
            (0.64, 64, 64, 32, 0)
        );

        // A sliver never collapses to zero pixels.
        let lb = Letterbox::fit(1, 1000, (32, 32)).unwrap();
        assert_eq!((lb.new_w, lb.new_h, lb.pad_x), (1, 32, 15));
    }

    #[test]
    fn same_size_is_an_exact_copy() {
        let (w, h) = (32, 64);
        let rgb: Vec<u8> = (0..3 * w * h).map(|i| (i * 7 % 256) as u8).collect();
        let (t, lb) = letterbox(&rgb, w, h, (64, 32), IDENTITY_MEAN, IDENTITY_STD).unwrap();
        assert_eq!((lb.pad_x, lb.pad_y, lb.new_w, lb.new_h), (0, 0, 32, 64));
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let want = f32::from(rgb[(y * w + x) * 3 + c]) / 255.0;
                    assert_eq!(at(&t, c, y, x).to_bits(), want.to_bits());
                }
            }
        }
    }

    #[test]
    fn padding_is_grey_and_centred() {
        let rgb = solid(64, 32, [255, 0, 10]);
        let (t, lb) = letterbox(&rgb, 64, 32, (64, 64), IDENTITY_MEAN, IDENTITY_STD).unwrap();
        assert_eq!(t.shape(), &[3, 64, 64]);
        assert_eq!((lb.pad_x, lb.pad_y, lb.new_h), (0, 16, 32));
        for c in 0..3 {
            assert_eq!(at(&t, c, 15, 5), PAD_VALUE);
            assert_eq!(at(&t, c, 48, 5), PAD_VALUE);
        }
        assert_eq!(at(&t, 0, 16, 0), 1.0);
        assert_eq!(at(&t, 1, 47, 63), 0.0);
        assert_eq!(at(&t, 2, 30, 30), 10.0 / 255.0);
    }

    #[test]
    fn halving_averages_pixel_pairs() {
        // 64x64 -> 32x32: every output sample sits exactly between two source samples.
        let (w, h) = (64, 64);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i % w) as u8 * 2, (i / w) as u8, 0])
            .collect();
        let (t, _) = letterbox(&rgb, w, h, (32, 32), IDENTITY_MEAN, IDENTITY_STD).unwrap();
        for i in 0..32 {
            // Columns 2i and 2i+1 hold 4i and 4i+2.
            assert_eq!(at(&t, 0, 3, i), (4 * i + 1) as f32 / 255.0);
            // Rows 2i and 2i+1 hold 2i and 2i+1.
            assert_eq!(at(&t, 1, i, 3), ((2 * i) as f32 + 0.5) / 255.0);
        }
    }

    #[test]
    fn doubling_interpolates_and_clamps_the_edges() {
        // A horizontal ramp 0, 8, 16, ... upsampled x2: samples at source x = -0.25 (clamped
        // to 0), 0.25, 0.75, ..., 30.75 and 31.25 (past the last sample, so flat).
        let (w, h) = (32, 32);
        let rgb: Vec<u8> = (0..w * h).flat_map(|i| [(i % w) as u8 * 8, 0, 0]).collect();
        let (t, _) = letterbox(&rgb, w, h, (64, 64), IDENTITY_MEAN, IDENTITY_STD).unwrap();
        assert_eq!(at(&t, 0, 0, 0), 0.0);
        assert_eq!(at(&t, 0, 0, 1), 2.0 / 255.0);
        assert_eq!(at(&t, 0, 0, 2), 6.0 / 255.0);
        assert_eq!(at(&t, 0, 0, 62), 246.0 / 255.0);
        assert_eq!(at(&t, 0, 0, 63), 248.0 / 255.0);
    }

    #[test]
    fn taps_follow_the_definition() {
        // 6 -> 4: scale 1.5, sample positions 0.25, 1.75, 3.25, 4.75.
        let want = [(0, 1, 0.25), (1, 2, 0.75), (3, 4, 0.25), (4, 5, 0.75)];
        for (tap, (i0, i1, frac)) in axis_taps(6, 4).into_iter().zip(want) {
            assert_eq!(tap, Tap { i0, i1, frac });
        }
        // 3 -> 2: scale 1.5, the second sample (1.75) falls between 1 and the last.
        assert_eq!(
            axis_taps(3, 2)[1],
            Tap {
                i0: 1,
                i1: 2,
                frac: 0.75
            }
        );
        // Upsampling a single sample: everything clamps to it.
        assert!(axis_taps(1, 4).iter().all(|t| *t
            == Tap {
                i0: 0,
                i1: 0,
                frac: 0.0
            }));
    }

    #[test]
    fn normalisation_applies_only_when_asked() {
        let rgb = solid(32, 32, [51, 102, 153]);
        let mean = [0.485, 0.456, 0.406];
        let std = [0.229, 0.224, 0.225];
        let (t, _) = letterbox(&rgb, 32, 32, (32, 64), mean, std).unwrap();
        for c in 0..3 {
            let raw = f32::from(51 * (c as u8 + 1)) / 255.0;
            assert_eq!(at(&t, c, 10, 40), (raw - mean[c]) / std[c]);
            assert_eq!(at(&t, c, 10, 2), (PAD_VALUE - mean[c]) / std[c]);
        }
        let bad = letterbox(&rgb, 32, 32, (32, 32), mean, [1.0, 0.0, 1.0]);
        assert!(matches!(bad, Err(Error::InvalidInput(_))));
    }

    #[test]
    fn rejects_bad_inputs() {
        let rgb = solid(32, 32, [0, 0, 0]);
        let run = |rgb: &[u8], w, h, size| letterbox(rgb, w, h, size, IDENTITY_MEAN, IDENTITY_STD);
        for size in [
            (100, 100),
            (0, 32),
            (32, 0),
            (320, 330),
            (MAX_INPUT_SIDE + 32, 32),
        ] {
            let err = run(&rgb, 32, 32, size).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidInput(m) if m.contains("multiples of 32")),
                "{err}"
            );
        }
        assert!(matches!(
            run(&rgb, 0, 32, (32, 32)),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            run(&rgb, 32, 31, (32, 32)),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            run(&rgb[1..], 32, 32, (32, 32)),
            Err(Error::InvalidInput(_))
        ));
        let huge = run(&rgb, usize::MAX / 2, 3, (32, 32)).unwrap_err();
        assert!(huge.to_string().contains("at most"), "{huge}");
        for err in [huge, run(&rgb, 0, 0, (32, 32)).unwrap_err()] {
            assert!(!err.to_string().contains('\n'));
        }
    }
}
