//! The blocked GEMM loop shared by every micro-kernel.
//!
//! Loop nest of one part (a range of rows and columns of `C`), outermost first:
//!
//! 1. `jc`: `NC` columns at a time;
//! 2. `pc`: `KC` of depth at a time; the `KC x NC` block of `B` is packed here, once, into a
//!    scratch buffer owned by the thread (or read in place from a [`super::PackedB`]);
//! 3. `ic`: `MC` rows at a time (the packed `A` block in L2);
//! 4. `jr`: one `NR`-column panel of `B` (in L1);
//! 5. `ir`: one `MR`-row panel of `A`: the micro-kernel computes the `MR x NR` tile.
//!
//! The first depth block overwrites `C` (unless the caller accumulates), later ones add to
//! it; the last one also adds the bias (in the micro-kernel) and applies the activation, to
//! each `MC x NC` block's rows as soon as its tiles are written, while they are in cache.
//! Full tiles of a row-major `C` are written in place; edge tiles and strided `C` go through a
//! small buffer on the stack (a strided `C` also gets its activation there).
//!
//! Parts: the product is split along the columns of `C` (each part then packs only its own
//! columns of `B`) unless whole `MR`-row panels share out more evenly, then along the rows.
//! Parts are whole panels, so every part sees the same panel boundaries as a serial run; with
//! the same kernel the result is bit-identical whatever the split.

use std::cell::Cell;
use std::ops::Range;

use super::pack::{pack_rhs_block, PackedA};
use super::{GemmOptions, Lhs, MatMut, MatRef, Rhs, KC, MC, NC};
use crate::kernels::parallel::{for_each_part, SharedPtr};
use crate::kernels::vecmath::Activation;
use crate::kernels::Parallelism;

/// The largest tile any kernel uses, for stack buffers.
const MAX_MR: usize = 8;
const MAX_TILE: usize = 8 * 16;

/// A register-blocked micro-kernel.
pub(crate) trait MicroKernel: 'static {
    const NAME: &'static str;
    /// Rows of the tile (at most [`MAX_MR`]).
    const MR: usize;
    /// Columns of the tile (`MR * NR` at most [`MAX_TILE`]).
    const NR: usize;

    fn is_supported() -> bool;

    /// Computes the `MR x NR` tile `T[i][j] = sum_p a[p * MR + i] * b[p * NR + j]` over
    /// `depth` steps, adds `bias[i]` to row `i` when `bias` is not null, and stores
    /// `out[i * ldo + j] = T[i][j]`, or adds `T[i][j]` to it when `accumulate`.
    ///
    /// # Safety
    /// `depth >= 1`; `a` is valid for `depth * MR` reads and `b` for `depth * NR`; `out` is
    /// valid for reads and writes of `NR` consecutive values at `out + i * ldo` for each
    /// `i < MR`, and nothing else accesses them during the call; `bias` is null or valid for
    /// `MR` reads; the running machine supports the kernel ([`MicroKernel::is_supported`]).
    unsafe fn tile(
        depth: usize,
        a: *const f32,
        b: *const f32,
        out: *mut f32,
        ldo: usize,
        accumulate: bool,
        bias: *const f32,
    );
}

thread_local! {
    /// Per-thread packing buffers, reused across calls so steady-state inference allocates
    /// nothing here. Taken out while in use, so a re-entrant call just allocates its own.
    static SCRATCH_A: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static SCRATCH_B: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Geometry of the output, shared by all parts.
#[derive(Clone, Copy)]
struct Out {
    ptr: SharedPtr,
    row_stride: usize,
    col_stride: usize,
}

/// Entry point for `GemmKernel::matmul` of kernel `K`.
pub(crate) fn matmul<K: MicroKernel>(
    par: Parallelism,
    lhs: Lhs,
    rhs: Rhs,
    out: MatMut,
    options: &GemmOptions,
) {
    let (m, k) = lhs.shape();
    let (k_rhs, n) = rhs.shape();
    assert!(
        k == k_rhs && out.rows() == m && out.cols() == n,
        "gemm shapes disagree: A {m}x{k}, B {k_rhs}x{n}, C {}x{}",
        out.rows(),
        out.cols()
    );
    if let Some(bias) = options.bias {
        assert_eq!(bias.len(), m, "gemm bias needs one value per row of C");
    }
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        epilogue_only(out, options);
        return;
    }
    debug_assert!(K::is_supported(), "{} is not supported here", K::NAME);

    // The packed left operand: as given when it fits this kernel, else packed now.
    let mut packed_here = None;
    let a: &PackedA = match lhs {
        Lhs::Packed(a) if a.mr() == K::MR => a,
        Lhs::Packed(a) => {
            let dense = a.unpack();
            let storage = SCRATCH_A.with(Cell::take);
            let view = MatRef::row_major(&dense, m, k);
            packed_here.insert(PackedA::pack_into(storage, K::MR, view))
        }
        Lhs::Matrix(view) => {
            let storage = SCRATCH_A.with(Cell::take);
            packed_here.insert(PackedA::pack_into(storage, K::MR, view))
        }
    };

    // The packed right operand: read in place when it fits this kernel, else packed again.
    let dense_b;
    let rhs = match rhs {
        Rhs::Packed(b) if b.nr() != K::NR => {
            dense_b = b.unpack();
            Rhs::Matrix(MatRef::row_major(&dense_b, k, n))
        }
        rhs => rhs,
    };

    let (row_stride, col_stride) = (out.row_stride(), out.col_stride());
    let c = Out {
        // The parts write disjoint tiles of a `MatMut` whose elements are pairwise distinct
        // (checked by `MatMut::new`), and `for_each_part` returns after all of them.
        ptr: SharedPtr(out.into_raw().as_mut_ptr()),
        row_stride,
        col_stride,
    };

    let plan = Plan::new::<K>(par, m, n, k, options.min_macs_per_part);
    for_each_part(plan.parts, |part| {
        let (rows, cols) = plan.part(part, m, n);
        run_part::<K>(a, &rhs, c, rows, cols, k, options);
    });

    if let Some(packed) = packed_here {
        SCRATCH_A.with(|s| s.set(packed.into_storage()));
    }
}

/// How one product is split.
struct Plan {
    parts: usize,
    /// Split along columns (else rows).
    by_cols: bool,
    /// Elements of the split axis per part (a multiple of the tile size).
    per_part: usize,
}

impl Plan {
    fn new<K: MicroKernel>(par: Parallelism, m: usize, n: usize, k: usize, min_macs: u64) -> Self {
        let wanted = par.parts_for(m as u64 * n as u64 * k as u64, min_macs);
        let (m_panels, n_panels) = (m.div_ceil(K::MR), n.div_ceil(K::NR));
        // Split the axis whose panels share out more evenly (the largest part is what the
        // others wait for); on a tie, the columns, so no two parts pack the same B.
        let largest_share = |panels: usize| {
            let parts = wanted.min(panels);
            panels.div_ceil(parts) as f64 / panels as f64
        };
        let by_cols = largest_share(n_panels) <= largest_share(m_panels);
        let (panels, tile) = if by_cols {
            (n_panels, K::NR)
        } else {
            (m_panels, K::MR)
        };
        let per_panels = panels.div_ceil(wanted.min(panels));
        Plan {
            parts: panels.div_ceil(per_panels),
            by_cols,
            per_part: per_panels * tile,
        }
    }

    /// Rows and columns of `C` that part `part` computes.
    fn part(&self, part: usize, m: usize, n: usize) -> (Range<usize>, Range<usize>) {
        let axis = |len: usize| part * self.per_part..((part + 1) * self.per_part).min(len);
        if self.by_cols {
            (0..m, axis(n))
        } else {
            (axis(m), 0..n)
        }
    }
}

/// `C = act(C? + bias)` for an empty depth.
fn epilogue_only(mut out: MatMut, options: &GemmOptions) {
    let mut row = vec![0.0; out.cols()];
    for i in 0..out.rows() {
        let bias = options.bias.map_or(0.0, |b| b[i]);
        for (j, v) in row.iter_mut().enumerate() {
            let prev = if options.accumulate {
                *out.at(i, j)
            } else {
                0.0
            };
            *v = prev + bias;
        }
        options.activation.apply(&mut row);
        for (j, &v) in row.iter().enumerate() {
            *out.at(i, j) = v;
        }
    }
}

/// The blocked loop over one part.
fn run_part<K: MicroKernel>(
    a: &PackedA,
    rhs: &Rhs,
    c: Out,
    rows: Range<usize>,
    cols: Range<usize>,
    k: usize,
    options: &GemmOptions,
) {
    const { assert!(K::MR <= MAX_MR && K::MR * K::NR <= MAX_TILE) };
    let (mr, nr) = (K::MR, K::NR);
    let mc_step = (MC / mr).max(1) * mr;
    let mut b_buf = SCRATCH_B.with(Cell::take);
    for jc in cols.clone().step_by(NC) {
        let nc = NC.min(cols.end - jc);
        let n_panels = nc.div_ceil(nr);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let b_len = n_panels * nr * kc;
            let b_block: &[f32] = match rhs {
                Rhs::Packed(b) => b.panels(pc, kc, jc..jc + nc),
                _ => {
                    if b_buf.len() < b_len {
                        b_buf.resize(b_len, 0.0);
                    }
                    pack_rhs_block(nr, &mut b_buf[..b_len], rhs, pc..pc + kc, jc..jc + nc);
                    &b_buf[..b_len]
                }
            };
            let a_block = a.block(pc, kc);
            let last = pc + kc == k;
            // The activation runs over whole rows of the block once its tiles are done (long
            // contiguous runs), except for a strided C, whose tiles apply it before storing.
            let activation = if last {
                options.activation
            } else {
                Activation::None
            };
            let (tile_activation, row_activation) = if c.col_stride == 1 {
                (Activation::None, activation)
            } else {
                (activation, Activation::None)
            };
            let step = Step {
                depth: kc,
                accumulate: options.accumulate || pc > 0,
                bias: if last { options.bias } else { None },
                activation: tile_activation,
            };
            for ic in rows.clone().step_by(mc_step) {
                let ic_end = (ic + mc_step).min(rows.end);
                for (jr, b_panel) in b_block.chunks_exact(kc * nr).enumerate() {
                    let j = jc + jr * nr;
                    let tile_cols = nr.min(jc + nc - j);
                    for i in (ic..ic_end).step_by(mr) {
                        let a_panel = &a_block[(i / mr) * kc * mr..][..kc * mr];
                        let tile_rows = mr.min(ic_end - i);
                        tile::<K>(&step, a_panel, b_panel, c, (i, tile_rows), (j, tile_cols));
                    }
                }
                if row_activation != Activation::None {
                    for i in ic..ic_end {
                        // Safety: row i, columns jc..jc + nc of C (unit column stride): inside
                        // the view and owned by this part; no tile is being written.
                        let row = unsafe {
                            std::slice::from_raw_parts_mut(c.ptr.0.add(i * c.row_stride + jc), nc)
                        };
                        row_activation.apply(row);
                    }
                }
            }
        }
    }
    SCRATCH_B.with(|s| s.set(b_buf));
}

/// What one depth block does to each tile.
struct Step<'a> {
    depth: usize,
    accumulate: bool,
    bias: Option<&'a [f32]>,
    activation: Activation,
}

/// One `MR x NR` tile at `(i, j)` of which `rows x cols` lie inside `C`.
#[inline]
fn tile<K: MicroKernel>(
    step: &Step,
    a_panel: &[f32],
    b_panel: &[f32],
    c: Out,
    (i, rows): (usize, usize),
    (j, cols): (usize, usize),
) {
    let (mr, nr) = (K::MR, K::NR);
    debug_assert!(a_panel.len() == step.depth * mr && b_panel.len() == step.depth * nr);
    // The kernel reads MR bias values: in place for a full tile, padded for an edge tile.
    let mut bias_tile = [0.0f32; MAX_MR];
    let bias = match step.bias {
        Some(bias) if rows == mr => bias[i..i + mr].as_ptr(),
        Some(bias) => {
            for (b, &v) in bias_tile.iter_mut().zip(&bias[i..i + rows]) {
                *b = v;
            }
            bias_tile.as_ptr()
        }
        None => std::ptr::null(),
    };
    let (rs, cs) = (c.row_stride, c.col_stride);

    if rows == mr && cols == nr && cs == 1 {
        // Safety: the tile lies inside C (rows i..i + MR, columns j..j + NR), whose elements
        // are valid and distinct, and belongs to this part alone; the panels hold
        // `depth * MR` and `depth * NR` values (checked above); the kernel was selected
        // because the machine supports it.
        let out = unsafe { c.ptr.0.add(i * rs + j) };
        unsafe {
            K::tile(
                step.depth,
                a_panel.as_ptr(),
                b_panel.as_ptr(),
                out,
                rs,
                step.accumulate,
                bias,
            )
        };
        debug_assert!(step.activation == Activation::None, "applied per row block");
        return;
    }

    let mut buf = [0.0f32; MAX_TILE];
    // Safety: `buf` holds MR rows of NR values at stride NR; panels as above.
    unsafe {
        K::tile(
            step.depth,
            a_panel.as_ptr(),
            b_panel.as_ptr(),
            buf.as_mut_ptr(),
            nr,
            false,
            bias,
        )
    };
    for r in 0..rows {
        let row = &mut buf[r * nr..r * nr + cols];
        let at = |col: usize| (i + r) * rs + (j + col) * cs;
        if step.accumulate {
            for (col, v) in row.iter_mut().enumerate() {
                // Safety: element (i + r, j + col) of C: r < rows and col < cols keep it
                // inside the view, and the tile belongs to this part.
                *v += unsafe { *c.ptr.0.add(at(col)) };
            }
        }
        step.activation.apply(row);
        for (col, &v) in row.iter().enumerate() {
            // Safety: as above.
            unsafe { *c.ptr.0.add(at(col)) = v };
        }
    }
}
