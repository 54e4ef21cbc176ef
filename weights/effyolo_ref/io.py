"""Weight files: export a reference model to effyolo safetensors and load one back."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from safetensors import safe_open

from .model import DetectorConfig, EffYolo


def export_state(model: EffYolo, path: str, dtype: str = "f32") -> None:
    """Writes every parameter and persistent buffer under its state-dict name, plus metadata."""
    np_dtype = {"f32": np.float32, "f16": np.float16}[dtype]
    tensors = {
        name: t.detach().cpu().float().numpy().astype(np_dtype)
        for name, t in model.state_dict().items()
        if not name.endswith("num_batches_tracked")
    }
    save_file(tensors, path, metadata=model.cfg.metadata())


def load_model(path: str) -> EffYolo:
    with safe_open(path, "np") as f:
        cfg = DetectorConfig.from_metadata(f.metadata())
    model = EffYolo(cfg)
    tensors = {k: torch.from_numpy(v.astype(np.float32)) for k, v in load_file(path).items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"missing keys {missing}, unused keys {unexpected}")
    return model.eval()
