//! # effyolo
//!
//! A real-time object detector: the YOLOv5 (v7.0) neck and Detect head on an
//! EfficientFormer (L1/L3/L7) backbone, written for native targets and WebAssembly.
//!
//! Layers, strictly one way: [`kernels`] (GEMM and vector maths, each with a scalar twin)
//! <- [`ops`] (convolution, pooling, normalisation, attention: free functions returning
//! `Result`) <- [`model`] (the network, weight loading, pre/post-processing) <- bindings
//! (the CLI in `src/bin`, the wasm API).

pub mod bench;
pub mod error;
pub mod kernels;
pub mod model;
pub mod ops;
pub mod tensor;

pub use error::{Error, Result};
pub use tensor::Tensor;

#[cfg(all(feature = "wasm", target_arch = "wasm32"))]
pub mod wasm_api;
