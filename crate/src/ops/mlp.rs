//! The convolutional MLP of EfficientFormer's Meta4D block, fused: `x += fc2(act(fc1(x)))`
//! with two 1x1 convolutions, computed one spatial tile at a time.
//!
//! Unfused, `fc1` writes a hidden tensor four times the size of `x` (4C channels), and `fc2`
//! reads it back from memory: at 80x80 with C = 48 that is 4.9 MB out and in again per block.
//! Here each tile of `T` pixels goes through both products while its hidden part
//! (4C x T, at most a few hundred KiB) stays in cache: fc1 on the tile's columns with the
//! bias and activation fused, then fc2 on that into a tile-major buffer, which is added to
//! `x` at the end. Tiles are independent, so they are what threads share out.
//!
//! The result is bit-identical to running the two convolutions and the sum separately: every
//! output element sees the same products in the same order, whatever tile it falls in.

use std::cell::Cell;

use crate::error::{Error, Result};
use crate::kernels::gemm::{self, GemmOptions, Lhs, MatMut, MatRef, Rhs};
use crate::kernels::parallel::for_each_chunk_mut;
use crate::kernels::Parallelism;
use crate::ops::conv::Conv2d;
use crate::ops::Activation;
use crate::tensor::Tensor;

/// Widest tile, in pixels: the hidden tile of the largest block (4 x 448 channels) is then
/// 1792 x 256 floats at most, and fewer pixels per tile are used when that gives threads work.
const MAX_TILE: usize = 256;
/// Narrowest tile worth a part of its own; smaller maps run as one tile with the threads
/// inside the products instead.
const MIN_TILE: usize = 32;
/// Fewest additions of the residual worth a thread of their own.
const MIN_ADDS_PER_PART: u64 = 1 << 14;

thread_local! {
    /// Per-thread hidden tile, reused across calls.
    static HIDDEN: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// The calling thread's tile-major output buffer, reused across calls.
    static OUTPUT: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// `x += fc2(act(fc1(x)))` for a (C, H, W) `x`, with `fc1` (C -> hidden) and `fc2`
/// (hidden -> C) pointwise convolutions.
pub fn conv_mlp_residual(
    x: &mut Tensor,
    fc1: &Conv2d,
    fc2: &Conv2d,
    act: Activation,
    par: Parallelism,
) -> Result<()> {
    let (c, h, w) = x.chw("conv_mlp_residual")?;
    let hidden = fc1.out_channels();
    if !fc1.is_pointwise() || !fc2.is_pointwise() {
        return Err(Error::Shape(
            "conv_mlp_residual needs 1x1, stride-1, unpadded convolutions".into(),
        ));
    }
    if fc1.in_channels() != c || fc2.in_channels() != hidden || fc2.out_channels() != c {
        return Err(Error::Shape(format!(
            "conv_mlp_residual on {c} channels needs fc1 {c} -> n and fc2 n -> {c}, got \
             fc1 {} -> {hidden} and fc2 {} -> {}",
            fc1.in_channels(),
            fc2.in_channels(),
            fc2.out_channels()
        )));
    }
    let pixels = h * w;
    if pixels == 0 || c == 0 {
        return Ok(());
    }

    // Tiles: as wide as allowed, their count a multiple of the parts so that every part gets
    // the same number of (nearly) equal tiles; maps too small for that run as one tile.
    let parts = par.max_parts();
    let (tile, inner_par) = if parts == 1 || pixels < parts * MIN_TILE {
        (pixels.min(MAX_TILE), par)
    } else {
        let tiles = pixels.div_ceil(MAX_TILE).div_ceil(parts) * parts;
        (pixels.div_ceil(tiles).div_ceil(8) * 8, Parallelism::Serial)
    };
    let tiles = pixels.div_ceil(tile);
    let tiles_per_part = tiles.div_ceil(parts.min(tiles));

    // y holds fc2's output tile-major: tile t is a (C, width) block at t * C * tile. Every
    // value is written before it is read, so a reused buffer needs no clearing.
    let mut y_storage = OUTPUT.with(Cell::take);
    if y_storage.len() < c * pixels {
        y_storage.resize(c * pixels, 0.0);
    }
    let y = &mut y_storage[..c * pixels];
    let input = x.data();
    for_each_chunk_mut(y, tiles_per_part * c * tile, |part, y_part| {
        let mut scratch = HIDDEN.with(Cell::take);
        for (t, y_tile) in y_part.chunks_mut(c * tile).enumerate() {
            let j0 = (part * tiles_per_part + t) * tile;
            let width = y_tile.len() / c;
            scratch.resize(hidden * width, 0.0);
            gemm::matmul(
                inner_par,
                Lhs::Packed(fc1.packed_weight()),
                Rhs::Matrix(MatRef::new(&input[j0..], c, width, pixels, 1)),
                MatMut::row_major(&mut scratch, hidden, width),
                &GemmOptions {
                    bias: Some(fc1.bias()),
                    activation: act,
                    ..GemmOptions::default()
                },
            );
            gemm::matmul(
                inner_par,
                Lhs::Packed(fc2.packed_weight()),
                Rhs::Matrix(MatRef::row_major(&scratch, hidden, width)),
                MatMut::row_major(y_tile, c, width),
                &GemmOptions {
                    bias: Some(fc2.bias()),
                    ..GemmOptions::default()
                },
            );
        }
        HIDDEN.with(|s| s.set(scratch));
    });

    // x += y, split by channels (whole rows of x) when there are enough of them to share.
    let y = &y_storage[..c * pixels];
    let add_parts = par.parts_for((c * pixels) as u64, MIN_ADDS_PER_PART).min(c);
    let channels_per_part = c.div_ceil(add_parts);
    for_each_chunk_mut(x.data_mut(), channels_per_part * pixels, |part, rows| {
        for (i, x_row) in rows.chunks_exact_mut(pixels).enumerate() {
            let ch = part * channels_per_part + i;
            for (t, x_tile) in x_row.chunks_mut(tile).enumerate() {
                let width = x_tile.len();
                let y_row = &y[t * c * tile + ch * width..][..width];
                for (a, &b) in x_tile.iter_mut().zip(y_row) {
                    *a += b;
                }
            }
        }
    });
    OUTPUT.with(|cell| cell.set(y_storage));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::Rng;

    fn layer(rng: &mut Rng, out: usize, inp: usize) -> Conv2d {
        let weight = rng.vec(out * inp, -0.5, 0.5);
        Conv2d::new(
            [out, inp, 1, 1],
            weight,
            Some(rng.vec(out, -0.5, 0.5)),
            1,
            0,
        )
        .unwrap()
    }

    #[test]
    fn equals_unfused_convolutions() {
        let mut rng = Rng::new(60);
        for (c, h, w) in [
            (1, 1, 1),
            (3, 5, 7),
            (8, 20, 20),
            (16, 9, 40),
            (5, 1, 600),
            (48, 40, 40),
        ] {
            let (fc1, fc2) = (layer(&mut rng, 4 * c, c), layer(&mut rng, c, 4 * c));
            let x = Tensor::new(&[c, h, w], rng.vec(c * h * w, -2.0, 2.0)).unwrap();
            for par in [
                Parallelism::Serial,
                Parallelism::Threads(2),
                Parallelism::Threads(3),
                Parallelism::Threads(16),
            ] {
                let hidden = fc1.forward(&x, Activation::Gelu, par).unwrap();
                let y = fc2.forward(&hidden, Activation::None, par).unwrap();
                let mut want = x.clone();
                want.data_mut()
                    .iter_mut()
                    .zip(y.data())
                    .for_each(|(a, b)| *a += b);

                let mut got = x.clone();
                conv_mlp_residual(&mut got, &fc1, &fc2, Activation::Gelu, par).unwrap();
                assert!(got == want, "c={c} {h}x{w} {par:?}");
            }
        }
    }

    #[test]
    fn rejects_mismatched_layers() {
        let mut rng = Rng::new(61);
        let (fc1, fc2) = (layer(&mut rng, 8, 2), layer(&mut rng, 2, 8));
        let par = Parallelism::Serial;
        let mut x = Tensor::zeros(&[3, 4, 4]);
        assert!(matches!(
            conv_mlp_residual(&mut x, &fc1, &fc2, Activation::Gelu, par),
            Err(Error::Shape(_))
        ));
        let mut x = Tensor::zeros(&[2, 4, 4]);
        assert!(matches!(
            conv_mlp_residual(&mut x, &fc2, &fc1, Activation::Gelu, par),
            Err(Error::Shape(_))
        ));
        let spatial = Conv2d::new([8, 2, 3, 3], vec![0.0; 144], None, 1, 1).unwrap();
        assert!(matches!(
            conv_mlp_residual(&mut x, &spatial, &fc2, Activation::Gelu, par),
            Err(Error::Shape(_))
        ));
        let mut tokens = Tensor::zeros(&[2, 4]);
        assert!(matches!(
            conv_mlp_residual(&mut tokens, &fc1, &fc2, Activation::Gelu, par),
            Err(Error::Shape(_))
        ));
    }
}
