//! Packing: copying operands into the panel layouts the micro-kernels read.
//!
//! - `A` (`m x k`) is cut into `KC`-deep blocks; within a block, every run of `MR` rows is one
//!   *panel* stored column by column, `panel[p * MR + lane] = A[row0 + lane][p0 + p]`, with
//!   zero rows past `m`. The blocks of a whole matrix lie one after another, so block `p0`
//!   starts at `p0 * m_pad` (`m_pad` = `m` rounded up to `MR`) and its panel `r` at
//!   `p0 * m_pad + r * kc * MR`.
//! - A block of `B` (`kc x nc`) is cut into panels of `NR` columns stored row by row,
//!   `panel[p * NR + lane] = B[p0 + p][j0 + panel * NR + lane]`, zero past the last column.

use std::ops::Range;

use super::{GemmKernel, MatRef, Rhs, KC};

/// A left operand packed once for one kernel's `MR`: the form constant weights are kept in.
/// Holds `m_pad * k` values (rows rounded up to `MR`), no copy of the original layout.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedA {
    data: Vec<f32>,
    rows: usize,
    depth: usize,
    mr: usize,
}

impl PackedA {
    /// Packs `a` for `kernel` (and any kernel with the same `MR`).
    pub fn new(kernel: &dyn GemmKernel, a: MatRef) -> Self {
        Self::pack_into(Vec::new(), kernel.tile_shape().0, a)
    }

    /// Packs `a` for panels of `mr` rows, reusing `storage`'s allocation.
    pub(crate) fn pack_into(mut storage: Vec<f32>, mr: usize, a: MatRef) -> Self {
        let (rows, depth) = (a.rows(), a.cols());
        let m_pad = rows.div_ceil(mr) * mr;
        storage.clear();
        storage.resize(m_pad * depth, 0.0);
        for p0 in (0..depth).step_by(KC) {
            let kc = KC.min(depth - p0);
            let block = &mut storage[p0 * m_pad..(p0 + kc) * m_pad];
            pack_a_block(block, mr, a, 0..rows, p0..p0 + kc);
        }
        PackedA {
            data: storage,
            rows,
            depth,
            mr,
        }
    }

    /// Rows of the original matrix (`m`).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of the original matrix (`k`).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The panel height it was packed for.
    pub fn mr(&self) -> usize {
        self.mr
    }

    /// Rows rounded up to whole panels.
    pub(crate) fn padded_rows(&self) -> usize {
        self.rows.div_ceil(self.mr) * self.mr
    }

    /// The packed block of depth `p0..p0 + kc` (`p0` a multiple of `KC`).
    pub(crate) fn block(&self, p0: usize, kc: usize) -> &[f32] {
        let m_pad = self.padded_rows();
        &self.data[p0 * m_pad..(p0 + kc) * m_pad]
    }

    /// The original matrix, row-major (`m x k`).
    pub fn unpack(&self) -> Vec<f32> {
        let (m, k, mr) = (self.rows, self.depth, self.mr);
        let mut out = vec![0.0; m * k];
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            let block = self.block(p0, kc);
            for (i, row) in out.chunks_exact_mut(k.max(1)).enumerate().take(m) {
                let panel = &block[(i / mr) * kc * mr..];
                for p in 0..kc {
                    row[p0 + p] = panel[p * mr + i % mr];
                }
            }
        }
        out
    }

    /// The storage, for reuse.
    pub(crate) fn into_storage(self) -> Vec<f32> {
        self.data
    }
}

/// A right operand packed once for one kernel's `NR`: every `KC`-deep block of `B` as its
/// `NR`-column panels, block after block (block `p0` starts at `p0 * n_pad`, `n_pad` = `n`
/// rounded up to `NR`). A product with it runs the micro-kernel loop with no packing at all,
/// which is how the benchmarks time the micro-kernel alone; the model packs `B` per call.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedB {
    data: Vec<f32>,
    depth: usize,
    cols: usize,
    nr: usize,
}

impl PackedB {
    /// Packs `b` for `kernel` (and any kernel with the same `NR`).
    pub fn new(kernel: &dyn GemmKernel, b: MatRef) -> Self {
        let nr = kernel.tile_shape().1;
        let (depth, cols) = (b.rows(), b.cols());
        let n_pad = cols.div_ceil(nr) * nr;
        let mut data = vec![0.0; n_pad * depth];
        for p0 in (0..depth).step_by(KC) {
            let kc = KC.min(depth - p0);
            let block = &mut data[p0 * n_pad..(p0 + kc) * n_pad];
            pack_rhs_block(nr, block, &Rhs::Matrix(b), p0..p0 + kc, 0..cols);
        }
        PackedB {
            data,
            depth,
            cols,
            nr,
        }
    }

    /// Rows of the original matrix (`k`).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Columns of the original matrix (`n`).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The panel width it was packed for.
    pub fn nr(&self) -> usize {
        self.nr
    }

    /// The panels of columns `cols` (whole panels from a multiple of `NR`) in the block of
    /// depth `p0..p0 + kc` (`p0` a multiple of `KC`).
    pub(crate) fn panels(&self, p0: usize, kc: usize, cols: Range<usize>) -> &[f32] {
        debug_assert!(cols.start.is_multiple_of(self.nr) && cols.end <= self.cols);
        let n_pad = self.cols.div_ceil(self.nr) * self.nr;
        let block = &self.data[p0 * n_pad..(p0 + kc) * n_pad];
        let first = cols.start / self.nr;
        let panels = cols.len().div_ceil(self.nr);
        &block[first * kc * self.nr..(first + panels) * kc * self.nr]
    }

    /// The original matrix, row-major (`k x n`).
    pub fn unpack(&self) -> Vec<f32> {
        let (k, n, nr) = (self.depth, self.cols, self.nr);
        let mut out = vec![0.0; k * n];
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            let block = self.panels(p0, kc, 0..n);
            for p in 0..kc {
                for j in 0..n {
                    out[(p0 + p) * n + j] = block[(j / nr) * kc * nr + p * nr + j % nr];
                }
            }
        }
        out
    }
}

/// Packs rows `rows` x depth `depth` of `a` into consecutive `mr`-row panels (see the module
/// docs); `dst` holds at least `ceil(rows / mr) * mr * depth.len()` values.
pub(crate) fn pack_a_block(
    dst: &mut [f32],
    mr: usize,
    a: MatRef,
    rows: Range<usize>,
    depth: Range<usize>,
) {
    let kc = depth.len();
    let panels = rows.len().div_ceil(mr);
    let (data, rs, cs) = (a.data(), a.row_stride(), a.col_stride());
    for (panel, out) in dst.chunks_exact_mut(kc * mr).take(panels).enumerate() {
        for lane in 0..mr {
            let i = rows.start + panel * mr + lane;
            if i >= rows.end {
                for p in 0..kc {
                    out[p * mr + lane] = 0.0;
                }
            } else if cs == 1 {
                let src = &data[i * rs + depth.start..i * rs + depth.end];
                for (p, &v) in src.iter().enumerate() {
                    out[p * mr + lane] = v;
                }
            } else {
                for p in 0..kc {
                    out[p * mr + lane] = a.get(i, depth.start + p);
                }
            }
        }
    }
}

/// Packs `depth` x `cols` of a right operand into `nr`-column panels (see the module docs).
pub(crate) fn pack_rhs_block(
    nr: usize,
    dst: &mut [f32],
    rhs: &Rhs,
    depth: Range<usize>,
    cols: Range<usize>,
) {
    match (rhs, nr) {
        (Rhs::Matrix(b), 8) => pack_b_block::<8>(dst, *b, depth, cols),
        (Rhs::Matrix(b), 16) => pack_b_block::<16>(dst, *b, depth, cols),
        (Rhs::Im2Col(b), 8) => b.pack_block::<8>(dst, depth, cols),
        (Rhs::Im2Col(b), 16) => b.pack_block::<16>(dst, depth, cols),
        (Rhs::Packed(_), _) => unreachable!("a packed B is read in place"),
        _ => unreachable!("no kernel has NR = {nr}"),
    }
}

/// Packs the block `depth` x `cols` of `b` into `NR`-column panels (see the module docs);
/// `dst` holds at least `ceil(cols / NR) * NR * depth.len()` values.
fn pack_b_block<const NR: usize>(
    dst: &mut [f32],
    b: MatRef,
    depth: Range<usize>,
    cols: Range<usize>,
) {
    let (kc, nc) = (depth.len(), cols.len());
    let panels = nc.div_ceil(NR);
    let dst = &mut dst[..panels * kc * NR];
    let (data, rs, cs) = (b.data(), b.row_stride(), b.col_stride());
    if cs == 1 {
        // Rows are contiguous: copy NR-wide pieces of each row into each panel. Fixed-size
        // copies compile to vector moves; a variable-length copy would become a call.
        let full = nc / NR;
        for p in 0..kc {
            let start = (depth.start + p) * rs + cols.start;
            let row = &data[start..start + nc];
            for (panel, src) in row.chunks_exact(NR).enumerate() {
                let out: &mut [f32; NR] = (&mut dst[panel * kc * NR + p * NR..][..NR])
                    .try_into()
                    .unwrap();
                *out = src.try_into().unwrap();
            }
            if full < panels {
                let out = &mut dst[full * kc * NR + p * NR..][..NR];
                for (lane, o) in out.iter_mut().enumerate() {
                    *o = row.get(full * NR + lane).copied().unwrap_or(0.0);
                }
            }
        }
        return;
    }
    for (panel, out) in dst.chunks_exact_mut(kc * NR).enumerate() {
        for lane in 0..NR {
            let j = cols.start + panel * NR + lane;
            if j >= cols.end {
                for p in 0..kc {
                    out[p * NR + lane] = 0.0;
                }
            } else if rs == 1 {
                // Columns are contiguous (a transposed view): read one column at a time.
                let src = &data[j * cs + depth.start..j * cs + depth.end];
                for (p, &v) in src.iter().enumerate() {
                    out[p * NR + lane] = v;
                }
            } else {
                for p in 0..kc {
                    out[p * NR + lane] = b.get(depth.start + p, j);
                }
            }
        }
    }
}
