//! Compute kernels: GEMM and vector maths on plain slices. Kernels know nothing about
//! tensors, layers or models. Every optimised kernel has a scalar twin that is its test oracle.
