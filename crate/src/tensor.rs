//! A minimal owned f32 tensor: a shape and row-major data. Batch size is always 1, so
//! feature maps are (C, H, W) and token sequences are (N, C).

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// Wraps `data` with `shape`; fails when the element counts differ.
    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::Shape(format!(
                "shape {shape:?} holds {n} elements but {} were given",
                data.len()
            )));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    pub fn zeros(shape: &[usize]) -> Self {
        let n = shape.iter().product();
        Tensor {
            shape: shape.to_vec(),
            data: vec![0.0; n],
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Same data, new shape with the same element count.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != self.data.len() {
            return Err(Error::Shape(format!(
                "cannot reshape {:?} to {shape:?}",
                self.shape
            )));
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    /// (C, H, W) of a feature map, or a shape error naming `what`.
    pub fn chw(&self, what: &str) -> Result<(usize, usize, usize)> {
        match self.shape[..] {
            [c, h, w] => Ok((c, h, w)),
            _ => Err(Error::Shape(format!(
                "{what} expects a (C, H, W) tensor, got {:?}",
                self.shape
            ))),
        }
    }

    /// (C, positions) of a channel-major tensor of two or more dimensions, e.g. (C, H, W) or
    /// (C, N), or a shape error naming `what`.
    pub fn channel_major(&self, what: &str) -> Result<(usize, usize)> {
        match &self.shape[..] {
            [c, rest @ ..] if !rest.is_empty() => Ok((*c, rest.iter().product())),
            _ => Err(Error::Shape(format!(
                "{what} expects a channel-major (C, ...) tensor, got {:?}",
                self.shape
            ))),
        }
    }

    /// (N, C) of a token sequence, or a shape error naming `what`.
    pub fn tokens(&self, what: &str) -> Result<(usize, usize)> {
        match self.shape[..] {
            [n, c] => Ok((n, c)),
            _ => Err(Error::Shape(format!(
                "{what} expects an (N, C) tensor, got {:?}",
                self.shape
            ))),
        }
    }
}
