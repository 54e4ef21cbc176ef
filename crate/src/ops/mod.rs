//! Operators on [`crate::Tensor`]s: convolution, pooling, normalisation, attention and friends.
//! Each op is a free function (or a small weight-holding struct) that validates its inputs
//! and returns `Result`.
//!
//! Ops are the boundary where shapes are checked: a bad shape is an [`crate::Error::Shape`]
//! with a one-line message, never a panic, because a panic would take down a browser tab's
//! whole instance. Behind that check, the arithmetic runs in [`crate::kernels`]. Ops that
//! carry real work (convolution, linear, the fused MLP, attention, the pooling mixer) take a
//! [`crate::kernels::Parallelism`]: GEMM splits its output tiles, the others share out whole
//! spatial tiles, heads or channel planes. Layers keep their weights packed for GEMM from the
//! moment they are built, and per-thread scratch buffers are reused across calls.
//!
//! Tensors have batch size 1: feature maps are (C, H, W), token sequences are (N, C).
//!
//! ```
//! use effyolo::kernels::Parallelism;
//! use effyolo::ops::{conv::Conv2d, Activation};
//! use effyolo::Tensor;
//!
//! // A 1x1 convolution that doubles its single input channel, then ReLU.
//! let conv = Conv2d::new([1, 1, 1, 1], vec![2.0], None, 1, 0)?;
//! let x = Tensor::new(&[1, 1, 3], vec![-1.0, 0.5, 2.0])?;
//! let y = conv.forward(&x, Activation::Relu, Parallelism::Serial)?;
//! assert_eq!(y.data(), &[0.0, 1.0, 4.0]);
//! # Ok::<(), effyolo::Error>(())
//! ```

pub mod activation;
pub mod attention;
pub mod concat;
pub mod conv;
pub mod linear;
pub mod mlp;
pub mod norm;
pub mod pool;
pub mod resize;

pub use activation::Activation;
pub use concat::concat_channels;
