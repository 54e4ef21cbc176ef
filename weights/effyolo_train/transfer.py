"""Moving a run's weights between machines: a run on a GPU lent for a few minutes starts from
a weight file and sends back its model and EMA in small files, which the long CPU run then
adopts (``train.py --init-weights``, ``--export-dir``, ``--adopt``; see ``gpu.md``).

An export folder holds ``export.json`` and, per state (``model``, ``ema``), safetensors
parts ``<state>-<k>.safetensors`` of at most ``max_part_bytes`` each (the machine that runs
the burst returns files of a limited size). Floating tensors are stored as f16 unless a
value would not fit it (then f32); integer buffers as they are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict

import torch

from effyolo_ref.model import DetectorConfig, resample_attention_bias

EXPORT_FORMAT = "effyolo-run-export"
MAX_PART_BYTES = 15 * 2**20


def _storable(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().cpu().contiguous()
    if t.dtype.is_floating_point:
        half = t.to(torch.float16)
        if bool(torch.isfinite(half).all()) or not bool(torch.isfinite(t).all()):
            return half
        return t.to(torch.float32)
    return t


def save_parts(state: Dict[str, torch.Tensor], out_dir: Path, name: str,
               max_part_bytes: int = MAX_PART_BYTES) -> list:
    """Write ``state`` as ``name-0.safetensors``, ``name-1...``; returns the file names."""
    from safetensors.torch import save_file

    parts, current, size = [], {}, 0
    for k, v in state.items():
        v = _storable(v)
        nbytes = v.numel() * v.element_size()
        if nbytes > max_part_bytes:
            raise ValueError(f"tensor {k} ({nbytes} bytes) does not fit a {max_part_bytes}-byte part")
        if current and size + nbytes > max_part_bytes:
            parts.append(current)
            current, size = {}, 0
        current[k] = v
        size += nbytes
    if current:
        parts.append(current)
    names = []
    for i, part in enumerate(parts):
        fname = f"{name}-{i}.safetensors"
        tmp = Path(out_dir) / (fname + ".tmp")
        save_file(part, str(tmp))
        os.replace(tmp, Path(out_dir) / fname)
        names.append(fname)
    return names


def load_parts(in_dir: Path, files: list) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state = {}
    for fname in files:
        state.update(load_file(str(Path(in_dir) / fname)))
    return state


def export_run(out_dir: Path, model, ema, info: dict) -> dict:
    """Write the model and EMA states plus ``export.json`` (``info`` + the part lists)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"format": EXPORT_FORMAT, "version": 1, **info,
            "model": save_parts(model.state_dict(), out_dir, "model"),
            "ema": save_parts(ema.state_dict(), out_dir, "ema")}
    tmp = out_dir / "export.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, out_dir / "export.json")
    return meta


def read_export(in_dir: Path):
    """(export.json contents, model state, EMA state) of an export folder."""
    in_dir = Path(in_dir)
    try:
        meta = json.loads((in_dir / "export.json").read_text())
    except FileNotFoundError:
        raise ValueError(f"{in_dir}: no export.json (not an --export-dir)") from None
    if meta.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{in_dir / 'export.json'}: not an {EXPORT_FORMAT}")
    return meta, load_parts(in_dir, meta["model"]), load_parts(in_dir, meta["ema"])


def fit_state(state: Dict[str, torch.Tensor], model, src_size, dst_size) -> Dict[str, torch.Tensor]:
    """``state`` converted to ``model``'s dtypes, with attention-bias tables resampled from the
    ``src_size`` training grid to ``dst_size``; checks that every key matches."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"weights do not fit the model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    out = {}
    for k, ref in own.items():
        v = state.get(k, ref)
        if k.endswith("attention_biases") and tuple(src_size) != tuple(dst_size):
            v = resample_attention_bias(v.float(), (src_size[0] // 32, src_size[1] // 32),
                                        (dst_size[0] // 32, dst_size[1] // 32))
        if v.shape != ref.shape:
            raise ValueError(f"{k}: shape {tuple(v.shape)} in the weights, {tuple(ref.shape)} in the model")
        out[k] = v.to(ref.dtype)
    return out


def weight_file_state(path: Path, model, cfg: DetectorConfig) -> Dict[str, torch.Tensor]:
    """The state of a shipped-format weight file (``effyolo_ref.io``), fitted to ``model``."""
    from effyolo_ref.io import load_model

    src = load_model(str(path))
    if src.cfg.class_names != cfg.class_names:
        raise ValueError(f"{path}: its class names differ from this run's")
    return fit_state(src.state_dict(), model, src.cfg.train_size, cfg.train_size)
