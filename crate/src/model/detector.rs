//! The public entry point: a loaded detector that turns RGB pixels into boxes.

use crate::error::{Error, Result};
use crate::model::postprocess::{DetectOptions, Detection};

/// Metadata of a loaded model (from the safetensors `__metadata__`).
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub variant: String,
    pub mhsa_blocks: usize,
    pub width_multiple: f32,
    pub depth_multiple: f32,
    pub train_size: (usize, usize),
    pub class_names: Vec<String>,
    pub anchors: [[[f32; 2]; 3]; 3],
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

pub struct Detector {
    info: ModelInfo,
}

impl Detector {
    /// Loads and validates a safetensors weight file.
    pub fn from_safetensors(_bytes: &[u8]) -> Result<Self> {
        Err(Error::Unsupported("weight loading is not implemented yet".into()))
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Runs letterbox -> network -> decode -> NMS on an RGB8 image (`rgb.len() == 3 * width * height`)
    /// at network input `size` = (height, width), both multiples of 32. Boxes are in image pixels.
    pub fn detect(
        &self,
        _rgb: &[u8],
        _width: usize,
        _height: usize,
        _size: (usize, usize),
        _options: &DetectOptions,
    ) -> Result<Vec<Detection>> {
        Err(Error::Unsupported("detection is not implemented yet".into()))
    }

    /// Number of stored parameters (after BatchNorm folding is not applied: as in the file).
    pub fn parameter_count(&self) -> usize {
        0
    }

    /// Multiply-accumulates of one forward pass at input (height, width).
    pub fn mac_count(&self, _size: (usize, usize)) -> Result<u64> {
        Err(Error::Unsupported("MAC counting is not implemented yet".into()))
    }
}
