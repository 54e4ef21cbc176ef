"""Initialisation, optimiser groups, learning-rate schedule, EMA and checkpoint files."""

from __future__ import annotations

import math
import os
from copy import deepcopy
from pathlib import Path

import torch
import torch.nn as nn

from effyolo_ref.model import EffYolo, LayerScale


def init_student(model: EffYolo, layer_scale: float = 0.1) -> None:
    """Random initialisation for training from scratch.

    EfficientFormer: trunc_normal(std 0.02) for Linear weights, zero biases; convolutions
    keep PyTorch's default; LayerScale gammas set to ``layer_scale``.  YOLOv5: BatchNorm
    momentum 0.03 in the neck (not stored in weight files) and the Detect bias prior.
    """
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, LayerScale):
            nn.init.constant_(m.gamma, layer_scale)
    for m in model.neck.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.03
    model.head.initialize_biases()


def param_groups(model: nn.Module, weight_decay: float):
    """Weight decay on conv/linear weights only (not norms, biases, LayerScale, attention biases)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name.endswith("attention_biases") or name.endswith(".gamma"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def learning_rate(images: int, base: float, warmup: int, total: int, final_frac: float) -> float:
    """Linear warmup to ``base`` over ``warmup`` image-iterations, then cosine down to
    ``base * final_frac`` at ``total``; constant afterwards.  A pure function of the
    image-iteration count, so resuming (or extending ``total``) needs no scheduler state."""
    if images < warmup:
        return base * (images + 1) / warmup
    t = min(1.0, (images - warmup) / max(1, total - warmup))
    return base * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * t)))


class ModelEMA:
    """YOLOv5 ``ModelEMA``: decay = d * (1 - exp(-updates / tau)), over all float state."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000, updates: int = 0):
        self.ema = deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.updates = updates
        self.decay, self.tau = decay, tau
        self._pairs = None

    def _float_pairs(self, model):
        msd = model.state_dict()
        ema_t, model_t = [], []
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                ema_t.append(v)
                model_t.append(msd[k])
        return ema_t, model_t

    def current_decay(self) -> float:
        return self.decay * (1 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        if self._pairs is None:
            self._pairs = self._float_pairs(model)
        ema_t, model_t = self._pairs
        torch._foreach_mul_(ema_t, d)
        torch._foreach_add_(ema_t, [t.detach() for t in model_t], alpha=1 - d)


def atomic_save(obj, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
