//! The detector: configuration, weight loading, the EfficientFormer backbone, the YOLOv5
//! neck and head, and pre/post-processing.

pub mod config;
pub mod detector;
pub mod efficientformer;
pub mod postprocess;
pub mod preprocess;
pub mod synthetic;
pub mod weights;
pub mod yolo;

pub use config::ModelConfig;
pub use detector::{Detector, MacCount};
pub use postprocess::{DetectOptions, Detection};
