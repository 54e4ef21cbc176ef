//! Channel concatenation of (C, H, W) feature maps (`torch.cat(dim=1)` at batch 1), used by
//! the YOLOv5 C3, SPPF and neck joins.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Stacks feature maps with the same (H, W) along the channel axis, in order.
pub fn concat_channels(inputs: &[&Tensor]) -> Result<Tensor> {
    let Some(first) = inputs.first() else {
        return Err(Error::Shape(
            "concat_channels needs at least one tensor".into(),
        ));
    };
    let (_, h, w) = first.chw("concat_channels")?;
    let mut channels = 0;
    for (i, t) in inputs.iter().enumerate() {
        let (c, th, tw) = t.chw("concat_channels")?;
        if (th, tw) != (h, w) {
            return Err(Error::Shape(format!(
                "concat_channels input {i} is {th}x{tw} but input 0 is {h}x{w}"
            )));
        }
        channels += c;
    }
    let mut data = Vec::with_capacity(channels * h * w);
    for t in inputs {
        data.extend_from_slice(t.data());
    }
    Tensor::new(&[channels, h, w], data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_channels_in_order() {
        let a = Tensor::new(&[1, 1, 2], vec![1.0, 2.0]).unwrap();
        let b = Tensor::new(&[2, 1, 2], vec![3.0, 4.0, 5.0, 6.0]).unwrap();
        let y = concat_channels(&[&a, &b, &a]).unwrap();
        assert_eq!(y.shape(), &[4, 1, 2]);
        assert_eq!(y.data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0, 2.0]);
    }

    #[test]
    fn rejects_mismatched_or_missing_inputs() {
        let a = Tensor::zeros(&[1, 2, 3]);
        let b = Tensor::zeros(&[1, 3, 2]);
        let flat = Tensor::zeros(&[1, 6]);
        assert!(matches!(concat_channels(&[]), Err(Error::Shape(_))));
        assert!(matches!(concat_channels(&[&a, &b]), Err(Error::Shape(_))));
        assert!(matches!(
            concat_channels(&[&a, &flat]),
            Err(Error::Shape(_))
        ));
    }
}
