//! The detector: configuration, weight loading, the EfficientFormer backbone, the YOLOv5
//! neck and head, and pre/post-processing.

pub mod detector;
pub mod postprocess;
pub mod preprocess;

pub use detector::Detector;
pub use postprocess::{DetectOptions, Detection};
