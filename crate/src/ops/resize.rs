//! Spatial resizing of (C, H, W) feature maps: the nearest-neighbour 2x upsample of the
//! YOLOv5 neck (`nn.Upsample(scale_factor=2, mode='nearest')`).

use crate::error::Result;
use crate::tensor::Tensor;

/// Nearest-neighbour upsample by 2: output pixel (y, x) copies input (y / 2, x / 2).
pub fn upsample_nearest2x(x: &Tensor) -> Result<Tensor> {
    let (c, h, w) = x.chw("upsample_nearest2x")?;
    let mut out = Vec::with_capacity(c * 4 * h * w);
    if w > 0 {
        for row in x.data().chunks_exact(w) {
            let start = out.len();
            out.extend(row.iter().flat_map(|&v| [v, v]));
            out.extend_from_within(start..);
        }
    }
    Tensor::new(&[c, 2 * h, 2 * w], out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn duplicates_rows_and_columns() {
        let x = Tensor::new(&[2, 1, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let y = upsample_nearest2x(&x).unwrap();
        assert_eq!(y.shape(), &[2, 2, 4]);
        assert_eq!(
            y.data(),
            &[1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0]
        );
    }

    #[test]
    fn matches_index_formula_on_odd_sizes() {
        let (c, h, w) = (3, 3, 5);
        let data: Vec<f32> = (0..c * h * w).map(|v| v as f32).collect();
        let y = upsample_nearest2x(&Tensor::new(&[c, h, w], data.clone()).unwrap()).unwrap();
        for ch in 0..c {
            for oy in 0..2 * h {
                for ox in 0..2 * w {
                    let got = y.data()[(ch * 2 * h + oy) * 2 * w + ox];
                    assert_eq!(got, data[(ch * h + oy / 2) * w + ox / 2]);
                }
            }
        }
        let empty = upsample_nearest2x(&Tensor::zeros(&[2, 0, 3])).unwrap();
        assert_eq!(empty.shape(), &[2, 0, 6]);
    }

    #[test]
    fn rejects_non_feature_maps() {
        assert!(matches!(
            upsample_nearest2x(&Tensor::zeros(&[4, 4])),
            Err(Error::Shape(_))
        ));
    }
}
