"""Deterministic synthetic weights, reproducible bit for bit in Rust (`model::synthetic`).

Every value comes from an integer hash of the tensor name and the element index, so test
fixtures need not store weights: both sides regenerate them. Not meant to detect anything;
meant to give every layer non-trivial, well-scaled values so parity checks mean something.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MASK = np.uint64(0xFFFFFFFF)


def fnv1a32(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def uniform(name: str, n: int) -> np.ndarray:
    """n values in [-1, 1) as float32: murmur3 fmix32 of (fnv1a(name) ^ (i * golden))."""
    i = np.arange(n, dtype=np.uint64)
    h = (np.uint64(fnv1a32(name)) ^ ((i * np.uint64(0x9E3779B9)) & MASK)) & MASK
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & MASK
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & MASK
    h ^= h >> np.uint64(16)
    u = (h >> np.uint64(8)).astype(np.float32) / np.float32(16777216.0)
    return np.float32(2.0) * u - np.float32(1.0)


def center_and_scale(name: str, shape) -> tuple[float, float]:
    """The distribution of a tensor, chosen by its role (read from its name and rank)."""
    if name.endswith("running_var"):
        return 1.0, 0.5
    if name.endswith("running_mean"):
        return 0.0, 0.1
    if name.endswith("attention_biases"):
        return 0.0, 0.5
    if name.endswith("gamma"):
        return 0.0, 0.5
    if len(shape) == 1 and name.endswith("weight"):  # BatchNorm/LayerNorm/GroupNorm scale
        return 1.0, 0.1
    if len(shape) == 1 and name.endswith("bias"):
        return 0.0, 0.1
    fan_in = int(np.prod(shape[1:]))
    return 0.0, math.sqrt(3.0 / fan_in)


def synthetic_tensor(name: str, shape) -> np.ndarray:
    center, scale = center_and_scale(name, shape)
    v = uniform(name, int(np.prod(shape)))
    return (np.float32(center) + np.float32(scale) * v).astype(np.float32).reshape(shape)


def apply_synthetic(model: torch.nn.Module) -> None:
    """Overwrites every parameter and persistent buffer (except counters) with synthetic values."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            t.copy_(torch.from_numpy(synthetic_tensor(name, tuple(t.shape))))


def synthetic_input(shape) -> np.ndarray:
    """A (3, H, W) input in [0, 1)."""
    return (np.float32(0.5) + np.float32(0.5) * uniform("input", int(np.prod(shape)))).reshape(shape)
