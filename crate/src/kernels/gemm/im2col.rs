//! The column matrix of a 2-D convolution as a virtual GEMM operand.
//!
//! Convolving a (C, H, W) image with an (O, C, kh, kw) kernel is the product of the weight
//! viewed as (O, C*kh*kw) and the *column matrix* (C*kh*kw, Ho*Wo), whose row
//! `(c * kh + ky) * kw + kx` holds channel `c` shifted by `(ky, kx)` and sampled at the stride,
//! with zeros where the window hangs over the padding. Materialised, that matrix is kh*kw
//! times the image (9x for 3x3); [`Im2Col`] instead writes each `KC x NC` block straight into
//! the `B` panel layout while the GEMM packs it, so only one block ever exists.

use std::ops::Range;

/// A (C, H, W) image seen as its column matrix for a `kernel_h x kernel_w` convolution with
/// one `stride` for both axes and symmetric zero `padding`.
#[derive(Clone, Copy, Debug)]
pub struct Im2Col<'a> {
    input: &'a [f32],
    channels: usize,
    height: usize,
    width: usize,
    kernel_h: usize,
    kernel_w: usize,
    stride: usize,
    padding: usize,
    out_h: usize,
    out_w: usize,
}

impl<'a> Im2Col<'a> {
    /// `input` holds the image as (C, H, W). The output extent per axis is
    /// `(len + 2 * padding - kernel) / stride + 1`, or 0 when the kernel does not fit.
    ///
    /// # Panics
    /// When `input` is shorter than `C * H * W` or `stride` is 0.
    pub fn new(
        input: &'a [f32],
        (channels, height, width): (usize, usize, usize),
        (kernel_h, kernel_w): (usize, usize),
        stride: usize,
        padding: usize,
    ) -> Self {
        assert!(stride >= 1, "im2col stride must be at least 1");
        assert!(
            input.len() >= channels * height * width,
            "im2col image ({channels}, {height}, {width}) needs {} values, got {}",
            channels * height * width,
            input.len()
        );
        let axis = |len: usize, k: usize| {
            let padded = len + 2 * padding;
            if padded < k {
                0
            } else {
                (padded - k) / stride + 1
            }
        };
        Im2Col {
            input,
            channels,
            height,
            width,
            kernel_h,
            kernel_w,
            stride,
            padding,
            out_h: axis(height, kernel_h),
            out_w: axis(width, kernel_w),
        }
    }

    /// Rows of the column matrix: `C * kh * kw`.
    pub fn rows(&self) -> usize {
        self.channels * self.kernel_h * self.kernel_w
    }

    /// Columns of the column matrix: `Ho * Wo`.
    pub fn cols(&self) -> usize {
        self.out_h * self.out_w
    }

    /// (Ho, Wo).
    pub fn output_size(&self) -> (usize, usize) {
        (self.out_h, self.out_w)
    }

    /// Element `(row, col)` of the column matrix (for tests; packing does not use it).
    pub fn get(&self, row: usize, col: usize) -> f32 {
        let (kh, kw) = (self.kernel_h, self.kernel_w);
        let (c, ky, kx) = (row / (kh * kw), (row / kw) % kh, row % kw);
        let (oy, ox) = (col / self.out_w, col % self.out_w);
        let iy = (oy * self.stride + ky).wrapping_sub(self.padding);
        let ix = (ox * self.stride + kx).wrapping_sub(self.padding);
        if iy < self.height && ix < self.width {
            self.input[(c * self.height + iy) * self.width + ix]
        } else {
            0.0
        }
    }

    /// Writes rows `depth` x columns `cols` into `NR`-column panels, exactly as packing the
    /// materialised column matrix would (see the layout in the packing module).
    ///
    /// Panels are filled one at a time, down the rows. A panel's columns fix the output
    /// positions, so each lane's input offset is computed once per panel; a row then only adds
    /// its `(c, ky, kx)` base. When the whole panel's windows lie inside the image (everywhere
    /// but the borders) no lane needs a bounds check, and with the panel inside one output row
    /// the lanes are input pixels `stride` apart in one row: a plain vector copy for stride 1,
    /// a strided copy with one bounds check for the stride-2 convolutions.
    pub(crate) fn pack_block<const NR: usize>(
        &self,
        dst: &mut [f32],
        depth: Range<usize>,
        cols: Range<usize>,
    ) {
        let (kc, nc) = (depth.len(), cols.len());
        let panels = nc.div_ceil(NR);
        let (kh, kw, s, pad) = (self.kernel_h, self.kernel_w, self.stride, self.padding);
        let (h, w, wo) = (self.height, self.width, self.out_w);
        let input = &self.input[..self.channels * h * w];
        // Position of the first row of the block in (c, ky, kx).
        let (c0, ky0, kx0) = (
            depth.start / (kh * kw),
            (depth.start / kw) % kh,
            depth.start % kw,
        );

        for (panel, out) in dst[..panels * kc * NR]
            .chunks_exact_mut(kc * NR)
            .enumerate()
        {
            // Output positions of the panel's lanes, as input coordinates before the kernel
            // offset: (oy * s, ox * s), and their flat offset.
            let first = cols.start + panel * NR;
            let lanes = NR.min(cols.end - first);
            let (mut ys, mut xs, mut offs) = ([0usize; NR], [0usize; NR], [0usize; NR]);
            let (mut oy, mut ox) = (first / wo, first % wo);
            for lane in 0..lanes {
                (ys[lane], xs[lane]) = (oy * s, ox * s);
                offs[lane] = ys[lane] * w + xs[lane];
                ox += 1;
                if ox == wo {
                    (oy, ox) = (oy + 1, 0);
                }
            }
            let (y_min, y_max) = (ys[0], ys[lanes - 1]);
            let x_min = xs[..lanes].iter().copied().min().unwrap_or(0);
            let x_max = xs[..lanes].iter().copied().max().unwrap_or(0);
            // A full panel inside one output row reads its lanes `s` apart in one input row.
            let one_row = lanes == NR && y_min == y_max;

            let (mut c, mut ky, mut kx) = (c0, ky0, kx0);
            for row in out.chunks_exact_mut(NR) {
                let row: &mut [f32; NR] = row.try_into().unwrap();
                // Input index of lane l is `base + offs[l]` (wrapping: the kernel offset may
                // point before the image for lanes that are then out of bounds).
                let base = (c * h * w + ky * w + kx).wrapping_sub(pad * w + pad);
                let inside = y_min + ky >= pad
                    && y_max + ky < h + pad
                    && x_min + kx >= pad
                    && x_max + kx < w + pad;
                if inside && one_row {
                    let start = base.wrapping_add(offs[0]);
                    if s == 1 {
                        *row = input[start..start + NR].try_into().unwrap();
                    } else {
                        // One bounds check for the row's span instead of one per lane.
                        let span = &input[start..start + (NR - 1) * s + 1];
                        for (lane, v) in row.iter_mut().enumerate() {
                            *v = span[lane * s];
                        }
                    }
                } else if inside {
                    for (lane, v) in row.iter_mut().enumerate() {
                        *v = if lane < lanes {
                            input[base.wrapping_add(offs[lane])]
                        } else {
                            0.0
                        };
                    }
                } else {
                    for (lane, v) in row.iter_mut().enumerate() {
                        let iy = (ys[lane] + ky).wrapping_sub(pad);
                        let ix = (xs[lane] + kx).wrapping_sub(pad);
                        *v = if lane < lanes && iy < h && ix < w {
                            input[base.wrapping_add(offs[lane])]
                        } else {
                            0.0
                        };
                    }
                }
                kx += 1;
                if kx == kw {
                    kx = 0;
                    ky += 1;
                    if ky == kh {
                        ky = 0;
                        c += 1;
                    }
                }
            }
        }
    }
}
