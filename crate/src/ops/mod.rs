//! Operators on [`crate::Tensor`]s: convolution, pooling, normalisation, attention and friends.
//! Each op is a free function (or a small weight-holding struct) that validates its inputs
//! and returns `Result`.
