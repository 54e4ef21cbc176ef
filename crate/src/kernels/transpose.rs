//! Strided matrix transpose: the layout change between a GEMM operand stored by rows and
//! one needed by columns (k^T in attention, (N, C) <-> (C, N) around a linear layer).

/// Writes `dst[c * ld_dst + r] = src[r * ld_src + c]` for `r < rows`, `c < cols`.
/// Elements of `dst` outside that window are left untouched.
pub fn transpose(
    rows: usize,
    cols: usize,
    src: &[f32],
    ld_src: usize,
    dst: &mut [f32],
    ld_dst: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    debug_assert!(ld_src >= cols && ld_dst >= rows);
    debug_assert!(
        src.len() >= (rows - 1) * ld_src + cols,
        "transpose source too short"
    );
    debug_assert!(
        dst.len() >= (cols - 1) * ld_dst + rows,
        "transpose destination too short"
    );
    for r in 0..rows {
        let src_row = &src[r * ld_src..r * ld_src + cols];
        for (c, &v) in src_row.iter().enumerate() {
            dst[c * ld_dst + r] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_strided_window() {
        // 2 x 3 window inside rows of stride 4.
        let src = [1.0, 2.0, 3.0, -1.0, 4.0, 5.0, 6.0, -1.0];
        let mut dst = [9.0; 3 * 3];
        transpose(2, 3, &src, 4, &mut dst, 3);
        assert_eq!(dst, [1.0, 4.0, 9.0, 2.0, 5.0, 9.0, 3.0, 6.0, 9.0]);
        transpose(0, 3, &[], 3, &mut [], 0);
    }
}
