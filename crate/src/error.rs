//! The one error type of the crate. Every message is a single line that names the problem
//! and, where it can, what to do about it.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The weight file is not a readable safetensors file (truncated, foreign, bad header).
    WeightFormat(String),
    /// The weight file is readable but its tensors do not fit the model it describes.
    WeightMismatch(String),
    /// A tensor or input has a shape an operation cannot take.
    Shape(String),
    /// An input value is out of range (image size, thresholds, options).
    InvalidInput(String),
    /// A path that exists in principle but is not implemented.
    Unsupported(String),
    /// Reading or writing a file failed.
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WeightFormat(m) => write!(f, "invalid weight file: {m}"),
            Error::WeightMismatch(m) => write!(f, "weights do not fit the model: {m}"),
            Error::Shape(m) => write!(f, "shape error: {m}"),
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::Unsupported(m) => write!(f, "not supported: {m}"),
            Error::Io(m) => write!(f, "i/o error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
