//! Multi-head self-attention with a learned relative-position bias, as in the EfficientFormer
//! Meta3D blocks (timm / snap-research layout), plus the bias-table indexing and resampling
//! that let a checkpoint trained on one token grid run on any other.
//!
//! Layout: a token's qkv row is viewed as (heads, 2 * key_dim + val_dim) and each head's
//! slice is split into `[q (key_dim), k (key_dim), v (val_dim)]`, interleaved per head, not
//! Q|K|V blocks. The bias table of a grid (Hg, Wg) has Hg * Wg entries per head, indexed by
//! `|dy| * Wg + |dx|` between two token positions (for a square R x R grid this is the
//! published `|dy| * R + |dx|`).

use std::cell::Cell;

use crate::error::{Error, Result};
use crate::kernels::gemm::{self, GemmOptions, Lhs, MatMut, MatRef, Rhs};
use crate::kernels::parallel::for_each_chunk_mut;
use crate::kernels::{transpose, vecmath, Parallelism};
use crate::tensor::Tensor;

thread_local! {
    /// Per-thread (N, N) score matrix, reused across heads and calls.
    static SCORES: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Attention over N tokens: `out[n, h * val_dim + d] =
/// sum_m softmax_m(scale * q_h[n] . k_h[m] + bias[h, n, m]) * v_h[m, d]`.
///
/// `qkv` is (N, heads * (2 * key_dim + val_dim)) in the per-head interleaved layout, `bias`
/// is (heads, N, N) already gathered from the table (see [`gather_attention_bias`]). Returns
/// (N, heads * val_dim). Computed by [`multi_head_attention_channels`] on the transposed
/// input, its result transposed back (the same values, bit for bit).
pub fn multi_head_attention(
    qkv: &Tensor,
    heads: usize,
    key_dim: usize,
    val_dim: usize,
    bias: &[f32],
    scale: f32,
    par: Parallelism,
) -> Result<Tensor> {
    // The tokens are the columns of the channel-major layout; the model runs that one directly.
    let (n, width) = qkv.tokens("multi_head_attention")?;
    let mut channels = vec![0.0; n * width];
    transpose(n, width, qkv.data(), width, &mut channels, n);
    let y = multi_head_attention_channels(
        &Tensor::new(&[width, n], channels)?,
        heads,
        key_dim,
        val_dim,
        bias,
        scale,
        par,
    )?;
    let out_width = heads * val_dim;
    let mut out = vec![0.0; n * out_width];
    transpose(out_width, n, y.data(), n, &mut out, out_width);
    Tensor::new(&[n, out_width], out)
}

/// [`multi_head_attention`] on channel-major data: `qkv` is (heads * (2 * key_dim + val_dim),
/// N) (or (width, H, W)), each head's q, k and v rows in that order as in the token layout's
/// columns; the result is (heads * val_dim, N) (or (heads * val_dim, H, W)), head `h` in rows
/// `h * val_dim..`. Both products run on GEMM reading `q^T`, `k` and `v` in place, and each
/// head writes its own block of rows; with [`Parallelism::Threads`], heads are shared out
/// between threads.
pub fn multi_head_attention_channels(
    qkv: &Tensor,
    heads: usize,
    key_dim: usize,
    val_dim: usize,
    bias: &[f32],
    scale: f32,
    par: Parallelism,
) -> Result<Tensor> {
    let (width, n) = qkv.channel_major("multi_head_attention_channels")?;
    let head_width = 2 * key_dim + val_dim;
    if heads == 0 || head_width == 0 {
        return Err(Error::Shape(format!(
            "multi_head_attention needs heads >= 1 and a non-empty head, got heads {heads}, \
             key_dim {key_dim}, val_dim {val_dim}"
        )));
    }
    if width != heads * head_width {
        return Err(Error::Shape(format!(
            "multi_head_attention expects qkv width {} ({heads} heads x (2 x {key_dim} + {val_dim})), got {width}",
            heads * head_width
        )));
    }
    if bias.len() != heads * n * n {
        return Err(Error::Shape(format!(
            "multi_head_attention expects a ({heads}, {n}, {n}) bias, got {} values",
            bias.len()
        )));
    }
    let mut shape = qkv.shape().to_vec();
    shape[0] = heads * val_dim;
    let mut out = vec![0.0; heads * val_dim * n];
    if n == 0 || val_dim == 0 {
        return Tensor::new(&shape, out);
    }

    let work = (heads * n * n * (key_dim + val_dim)) as u64;
    let parts = par
        .parts_for(work, gemm::DEFAULT_MIN_MACS_PER_PART)
        .min(heads);
    let inner_par = if parts > 1 { Parallelism::Serial } else { par };
    let heads_per_part = heads.div_ceil(parts);
    let head_len = val_dim * n;
    let data = qkv.data();
    for_each_chunk_mut(&mut out, heads_per_part * head_len, |part, block| {
        let mut scores = SCORES.with(Cell::take);
        scores.resize(n * n, 0.0);
        for (i, head_out) in block.chunks_exact_mut(head_len).enumerate() {
            let h = part * heads_per_part + i;
            let head = &data[h * head_width * n..(h + 1) * head_width * n];
            // q (N, key_dim) is the transpose of the head's q rows; k (key_dim, N) and
            // v (val_dim, N) are its k and v rows as they are.
            let q = MatRef::new(head, n, key_dim, 1, n);
            let k = MatRef::row_major(&head[key_dim * n..2 * key_dim * n], key_dim, n);
            let v = MatRef::row_major(&head[2 * key_dim * n..], val_dim, n);
            gemm::matmul(
                inner_par,
                Lhs::Matrix(q),
                Rhs::Matrix(k),
                MatMut::row_major(&mut scores, n, n),
                &GemmOptions::default(),
            );
            let head_bias = &bias[h * n * n..(h + 1) * n * n];
            for (row, bias_row) in scores.chunks_exact_mut(n).zip(head_bias.chunks_exact(n)) {
                for (s, &b) in row.iter_mut().zip(bias_row) {
                    *s = *s * scale + b;
                }
                vecmath::softmax(row);
            }
            // out_h (val_dim, N) = v · P^T.
            gemm::matmul(
                inner_par,
                Lhs::Matrix(v),
                Rhs::Matrix(MatRef::row_major(&scores, n, n).t()),
                MatMut::row_major(head_out, val_dim, n),
                &GemmOptions::default(),
            );
        }
        SCORES.with(|cell| cell.set(scores));
    });
    Tensor::new(&shape, out)
}

/// For a (grid_h, grid_w) token grid in raster order, the table index of every token pair:
/// `idx[i * N + j] = |y_i - y_j| * grid_w + |x_i - x_j|`, N = grid_h * grid_w.
pub fn attention_bias_index(grid_h: usize, grid_w: usize) -> Vec<usize> {
    let n = grid_h * grid_w;
    let mut index = Vec::with_capacity(n * n);
    for i in 0..n {
        let (yi, xi) = (i / grid_w, i % grid_w);
        for j in 0..n {
            let (yj, xj) = (j / grid_w, j % grid_w);
            index.push(yi.abs_diff(yj) * grid_w + xi.abs_diff(xj));
        }
    }
    index
}

/// Expands a (heads, grid_h * grid_w) bias table into the (heads, N, N) bias that
/// [`multi_head_attention`] takes, using [`attention_bias_index`].
pub fn gather_attention_bias(
    table: &[f32],
    heads: usize,
    grid: (usize, usize),
) -> Result<Vec<f32>> {
    let cells = grid.0 * grid.1;
    if table.len() != heads * cells {
        return Err(Error::Shape(format!(
            "attention bias table for {heads} heads on a {}x{} grid needs {} values, got {}",
            grid.0,
            grid.1,
            heads * cells,
            table.len()
        )));
    }
    let index = attention_bias_index(grid.0, grid.1);
    let mut bias = Vec::with_capacity(heads * index.len());
    if cells > 0 {
        for head_table in table.chunks_exact(cells) {
            bias.extend(index.iter().map(|&i| head_table[i]));
        }
    }
    Ok(bias)
}

/// Source indices and weights of one output position for a linear resize with
/// `align_corners=False`, computed in f32 exactly as PyTorch's CPU kernel does.
#[derive(Clone, Copy, Debug)]
struct LinearTap {
    i0: usize,
    i1: usize,
    w0: f32,
    w1: f32,
}

fn linear_taps(in_len: usize, out_len: usize) -> Vec<LinearTap> {
    let ratio = in_len as f32 / out_len as f32;
    (0..out_len)
        .map(|o| {
            let src = (ratio * (o as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(in_len - 1);
            let w1 = (src - i0 as f32).clamp(0.0, 1.0);
            let i1 = if i0 + 1 < in_len { i0 + 1 } else { i0 };
            LinearTap {
                i0,
                i1,
                w0: 1.0 - w1,
                w1,
            }
        })
        .collect()
}

/// Resizes each head's bias table, viewed as an image over (|dy|, |dx|) of size `from`, to
/// `to` with bilinear interpolation: the same result as
/// `F.interpolate(t.view(1, heads, *from), size=to, mode='bilinear', align_corners=False)`.
/// Equal sizes copy the table.
pub fn resample_attention_bias(
    table: &[f32],
    heads: usize,
    from: (usize, usize),
    to: (usize, usize),
) -> Result<Vec<f32>> {
    let cells = from.0 * from.1;
    if cells == 0 || to.0 == 0 || to.1 == 0 {
        return Err(Error::Shape(format!(
            "attention bias resampling needs non-empty grids, got {}x{} -> {}x{}",
            from.0, from.1, to.0, to.1
        )));
    }
    if table.len() != heads * cells {
        return Err(Error::Shape(format!(
            "attention bias table for {heads} heads on a {}x{} grid needs {} values, got {}",
            from.0,
            from.1,
            heads * cells,
            table.len()
        )));
    }
    if from == to {
        return Ok(table.to_vec());
    }
    let rows = linear_taps(from.0, to.0);
    let cols = linear_taps(from.1, to.1);
    let mut out = Vec::with_capacity(heads * to.0 * to.1);
    for head_table in table.chunks_exact(cells) {
        for ty in &rows {
            let r0 = &head_table[ty.i0 * from.1..(ty.i0 + 1) * from.1];
            let r1 = &head_table[ty.i1 * from.1..(ty.i1 + 1) * from.1];
            for tx in &cols {
                let top = tx.w0 * r0[tx.i0] + tx.w1 * r0[tx.i1];
                let bottom = tx.w0 * r1[tx.i0] + tx.w1 * r1[tx.i1];
                out.push(ty.w0 * top + ty.w1 * bottom);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, transposed, Rng};

    /// Direct attention in f64 with explicit per-head q/k/v indexing.
    fn attention_direct(
        qkv: &[f32],
        n: usize,
        heads: usize,
        kd: usize,
        vd: usize,
        bias: &[f32],
        scale: f32,
    ) -> Vec<f32> {
        let width = heads * (2 * kd + vd);
        let at = |t: usize, h: usize, i: usize| qkv[t * width + h * (2 * kd + vd) + i] as f64;
        let mut out = vec![0.0; n * heads * vd];
        for h in 0..heads {
            for i in 0..n {
                let logits: Vec<f64> = (0..n)
                    .map(|j| {
                        let dot: f64 = (0..kd).map(|d| at(i, h, d) * at(j, h, kd + d)).sum();
                        dot * scale as f64 + bias[(h * n + i) * n + j] as f64
                    })
                    .collect();
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                for d in 0..vd {
                    let v: f64 = (0..n).map(|j| exps[j] / sum * at(j, h, 2 * kd + d)).sum();
                    out[i * heads * vd + h * vd + d] = v as f32;
                }
            }
        }
        out
    }

    #[test]
    fn matches_direct_attention() {
        let mut rng = Rng::new(50);
        for (n, heads, kd, vd) in [
            (1, 1, 1, 1),
            (6, 2, 4, 8),
            (10, 3, 5, 7),
            (17, 8, 32, 128),
            (4, 2, 0, 3),
            // Large enough to be split over heads.
            (64, 4, 16, 32),
            (50, 3, 32, 128),
        ] {
            let width = heads * (2 * kd + vd);
            let qkv = rng.vec(n * width, -1.5, 1.5);
            let bias = rng.vec(heads * n * n, -1.0, 1.0);
            let scale = (kd.max(1) as f32).powf(-0.5);
            let input = Tensor::new(&[n, width], qkv.clone()).unwrap();
            for par in [
                Parallelism::Serial,
                Parallelism::Threads(2),
                Parallelism::Threads(3),
            ] {
                let y = multi_head_attention(&input, heads, kd, vd, &bias, scale, par).unwrap();
                assert_eq!(y.shape(), &[n, heads * vd]);
                let want = attention_direct(&qkv, n, heads, kd, vd, &bias, scale);
                assert_close(
                    y.data(),
                    &want,
                    1e-5,
                    1e-5,
                    &format!("attention n={n} h={heads} kd={kd} vd={vd}"),
                );
            }
        }
    }

    #[test]
    fn empty_sequence_gives_empty_output() {
        let qkv = Tensor::zeros(&[0, 2 * 12]);
        let y = multi_head_attention(&qkv, 2, 4, 4, &[], 0.5, Parallelism::Serial).unwrap();
        assert_eq!(y.shape(), &[0, 8]);
    }

    #[test]
    fn attention_rejects_bad_shapes() {
        let qkv = Tensor::zeros(&[4, 2 * 12]);
        let bias = vec![0.0; 2 * 16];
        let par = Parallelism::Serial;
        assert!(matches!(
            multi_head_attention(&qkv, 2, 4, 5, &bias, 1.0, par),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            multi_head_attention(&qkv, 2, 4, 4, &bias[1..], 1.0, par),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            multi_head_attention(&qkv, 0, 4, 4, &[], 1.0, par),
            Err(Error::Shape(_))
        ));
        let not_tokens = Tensor::zeros(&[1, 4, 24]);
        assert!(matches!(
            multi_head_attention(&not_tokens, 2, 4, 4, &bias, 1.0, par),
            Err(Error::Shape(_))
        ));
    }

    #[test]
    fn bias_index_matches_published_square_table() {
        // The published construction: offsets numbered in order of first appearance while
        // scanning point pairs of the R x R grid in raster order.
        let r = 4;
        let points: Vec<(usize, usize)> =
            (0..r).flat_map(|y| (0..r).map(move |x| (y, x))).collect();
        let mut offsets: Vec<(usize, usize)> = Vec::new();
        let mut want = Vec::new();
        for p1 in &points {
            for p2 in &points {
                let off = (p1.0.abs_diff(p2.0), p1.1.abs_diff(p2.1));
                let idx = offsets.iter().position(|&o| o == off).unwrap_or_else(|| {
                    offsets.push(off);
                    offsets.len() - 1
                });
                want.push(idx);
            }
        }
        assert_eq!(attention_bias_index(r, r), want);
    }

    #[test]
    fn bias_index_non_square() {
        let idx = attention_bias_index(2, 3);
        assert_eq!(idx.len(), 36);
        // Token 0 = (0, 0), token 5 = (1, 2): |dy| = 1, |dx| = 2 -> 1 * 3 + 2.
        assert_eq!(idx[5], 5);
        assert_eq!(idx[5 * 6], 5);
        // Token 1 = (0, 1), token 3 = (1, 0): |dy| = 1, |dx| = 1.
        assert_eq!(idx[6 + 3], 4);
        assert!(idx.iter().all(|&i| i < 6));
        assert!(attention_bias_index(0, 5).is_empty());
    }

    #[test]
    fn gather_uses_index() {
        let table = [0.0, 1.0, 2.0, 10.0, 11.0, 12.0];
        let bias = gather_attention_bias(&table, 2, (1, 3)).unwrap();
        assert_eq!(
            bias,
            [
                0.0, 1.0, 2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0, 10.0, 11.0, 12.0, 11.0, 10.0, 11.0,
                12.0, 11.0, 10.0
            ]
        );
        assert!(matches!(
            gather_attention_bias(&table, 2, (2, 2)),
            Err(Error::Shape(_))
        ));
    }

    #[test]
    fn resample_copies_equal_sizes_and_preserves_constants() {
        let mut rng = Rng::new(51);
        let table = rng.vec(2 * 49, -1.0, 1.0);
        assert_eq!(
            resample_attention_bias(&table, 2, (7, 7), (7, 7)).unwrap(),
            table
        );

        let constant = vec![0.75; 3 * 12];
        for to in [(1, 1), (2, 9), (5, 4), (13, 7)] {
            let out = resample_attention_bias(&constant, 3, (3, 4), to).unwrap();
            assert_eq!(out.len(), 3 * to.0 * to.1);
            assert_close(
                &out,
                &vec![0.75; out.len()],
                1e-6,
                0.0,
                &format!("constant to {to:?}"),
            );
        }
    }

    #[test]
    fn resample_matches_hand_computed_bilinear() {
        // One row [0, 1, 2, 3] resized 4 -> 2 samples source positions 0.5 and 2.5.
        let out = resample_attention_bias(&[0.0, 1.0, 2.0, 3.0], 1, (1, 4), (1, 2)).unwrap();
        assert_close(&out, &[0.5, 2.5], 1e-7, 0.0, "downsample");
        // 2 -> 4: positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the last pixel).
        let out = resample_attention_bias(&[0.0, 4.0], 1, (2, 1), (4, 1)).unwrap();
        assert_close(&out, &[0.0, 1.0, 3.0, 4.0], 1e-7, 0.0, "upsample");
        // A linear ramp in both axes stays linear away from the clamped borders.
        let table: Vec<f32> = (0..3)
            .flat_map(|y| (0..3).map(move |x| (y * 10 + x) as f32))
            .collect();
        let out = resample_attention_bias(&table, 1, (3, 3), (6, 6)).unwrap();
        // Output (2, 3) samples source (0.75, 1.25).
        assert!((out[2 * 6 + 3] - 8.75).abs() < 1e-6);
    }

    #[test]
    fn resample_rejects_bad_shapes() {
        assert!(matches!(
            resample_attention_bias(&[0.0; 10], 2, (2, 3), (3, 3)),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            resample_attention_bias(&[], 2, (0, 3), (3, 3)),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            resample_attention_bias(&[0.0; 9], 1, (3, 3), (0, 3)),
            Err(Error::Shape(_))
        ));
    }

    #[test]
    fn channel_major_attention_equals_token_attention() {
        let mut rng = Rng::new(73);
        for (heads, kd, vd, h, w) in [(1, 1, 1, 1, 1), (2, 4, 8, 3, 5), (8, 32, 128, 7, 7)] {
            let (n, width) = (h * w, heads * (2 * kd + vd));
            let data = rng.vec(n * width, -2.0, 2.0);
            let bias = rng.vec(heads * n * n, -1.0, 1.0);
            let tokens = Tensor::new(&[n, width], data.clone()).unwrap();
            let channels = Tensor::new(&[width, h, w], transposed(&data, n, width)).unwrap();
            for par in [Parallelism::Serial, Parallelism::Threads(3)] {
                let want = multi_head_attention(&tokens, heads, kd, vd, &bias, 0.3, par).unwrap();
                let got = multi_head_attention_channels(&channels, heads, kd, vd, &bias, 0.3, par)
                    .unwrap();
                assert_eq!(got.shape(), &[heads * vd, h, w]);
                assert_eq!(
                    got.data(),
                    &transposed(want.data(), n, heads * vd)[..],
                    "{heads} heads, {n} tokens"
                );
            }
        }
        let par = Parallelism::Serial;
        let qkv = Tensor::zeros(&[2 * 12, 2, 2]);
        assert!(multi_head_attention_channels(&qkv, 2, 4, 4, &[0.0; 32], 1.0, par).is_ok());
        assert!(matches!(
            multi_head_attention_channels(&qkv, 2, 4, 5, &[0.0; 32], 1.0, par),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            multi_head_attention_channels(&qkv, 2, 4, 4, &[0.0; 31], 1.0, par),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            multi_head_attention_channels(&Tensor::zeros(&[24]), 2, 4, 4, &[], 1.0, par),
            Err(Error::Shape(_))
        ));
    }
}
