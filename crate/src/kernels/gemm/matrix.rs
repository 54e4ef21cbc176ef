//! Strided matrix views over slices: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
//! A transposed operand is the same view with the strides swapped, so GEMM reads `k^T` or
//! `x^T` in place instead of copying them.

/// A read-only `rows x cols` view.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// Smallest slice length that holds every element of the view.
fn extent(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * row_stride + (cols - 1) * col_stride + 1
    }
}

impl<'a> MatRef<'a> {
    /// # Panics
    /// When `data` is too short for the view.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        let need = extent(rows, cols, row_stride, col_stride);
        assert!(
            data.len() >= need,
            "matrix view {rows}x{cols} (strides {row_stride}, {col_stride}) needs {need} values, got {}",
            data.len()
        );
        MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// A dense row-major view (row stride `cols`).
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The same elements viewed as the transposed matrix.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// Element `(i, j)`.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> f32 {
        debug_assert!(i < self.rows && j < self.cols);
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

/// A writable `rows x cols` view. Distinct `(i, j)` always address distinct elements (checked
/// at construction), which is what lets GEMM hand disjoint tiles to different threads.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatMut<'a> {
    /// # Panics
    /// When `data` is too short, or when the strides could map two elements to one place
    /// (they must be at least 1 and one must step over a whole row or column of the other).
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        let need = extent(rows, cols, row_stride, col_stride);
        assert!(
            data.len() >= need,
            "matrix view {rows}x{cols} (strides {row_stride}, {col_stride}) needs {need} values, got {}",
            data.len()
        );
        let disjoint = rows <= 1 && (cols <= 1 || col_stride >= 1)
            || cols <= 1 && row_stride >= 1
            || col_stride >= 1 && row_stride >= cols * col_stride
            || row_stride >= 1 && col_stride >= rows * row_stride;
        assert!(
            disjoint,
            "matrix view {rows}x{cols} with strides ({row_stride}, {col_stride}) overlaps itself"
        );
        MatMut {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// A dense row-major view (row stride `cols`).
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The same elements viewed as the transposed matrix.
    pub fn t(self) -> Self {
        MatMut {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// Element `(i, j)`, writable.
    #[inline]
    pub fn at(&mut self, i: usize, j: usize) -> &mut f32 {
        debug_assert!(i < self.rows && j < self.cols);
        &mut self.data[i * self.row_stride + j * self.col_stride]
    }

    /// The underlying storage: for the driver, which writes tiles through raw pointers.
    pub(crate) fn into_raw(self) -> &'a mut [f32] {
        self.data
    }
}
