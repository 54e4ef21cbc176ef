"""Reference pre/post-processing: letterbox, YOLOv5 decode, class-aware NMS, box mapping.

The letterbox is defined exactly (f32 bilinear with half-pixel centres) so the Rust crate
reproduces it bit for bit; it differs from OpenCV's fixed-point resize by at most a grey level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np
import torch

from .model import EffYolo

PAD_VALUE = np.float32(114.0 / 255.0)


@dataclass
class Letterbox:
    scale: float
    pad_x: int
    pad_y: int
    new_w: int
    new_h: int
    src_w: int
    src_h: int


def _axis(src: int, dst: int):
    scale = np.float32(src) / np.float32(dst)
    s = (np.arange(dst, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    s = np.maximum(s, np.float32(0.0))
    i0 = np.floor(s).astype(np.int64)
    clamped = i0 >= src - 1
    i0 = np.minimum(i0, src - 1)
    frac = np.where(clamped, np.float32(0.0), s - i0.astype(np.float32)).astype(np.float32)
    i1 = np.minimum(i0 + 1, src - 1)
    return i0, i1, frac


def resize_bilinear(rgb: np.ndarray, new_w: int, new_h: int) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (new_h, new_w, 3) in 0..255, half-pixel bilinear, no antialias."""
    h, w, _ = rgb.shape
    x0, x1, fx = _axis(w, new_w)
    y0, y1, fy = _axis(h, new_h)
    p = rgb.astype(np.float32)
    fx = fx[None, :, None]
    fy = fy[:, None, None]
    p00, p01 = p[y0][:, x0], p[y0][:, x1]
    p10, p11 = p[y1][:, x0], p[y1][:, x1]
    top = p00 + (p01 - p00) * fx
    bot = p10 + (p11 - p10) * fx
    return top + (bot - top) * fy


def letterbox(rgb: np.ndarray, size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)):
    """uint8 (H, W, 3) RGB -> float32 (3, S_h, S_w) tensor and the Letterbox that maps back."""
    sh, sw = size
    h, w, _ = rgb.shape
    r = min(sh / h, sw / w)
    new_w = min(max(int(np.floor(w * r + 0.5)), 1), sw)
    new_h = min(max(int(np.floor(h * r + 0.5)), 1), sh)
    pad_x, pad_y = (sw - new_w) // 2, (sh - new_h) // 2
    out = np.full((sh, sw, 3), PAD_VALUE, dtype=np.float32)
    out[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resize_bilinear(rgb, new_w, new_h) / np.float32(255.0)
    out = out.transpose(2, 0, 1).copy()
    if tuple(mean) != (0.0, 0.0, 0.0) or tuple(std) != (1.0, 1.0, 1.0):
        out = (out - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None]
    return out, Letterbox(r, pad_x, pad_y, new_w, new_h, w, h)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box `a` (4,) against boxes `b` (N, 4), xyxy, no +1."""
    ix1, iy1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    ix2, iy2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a + area_b - inter)


def non_max_suppression(pred: np.ndarray, conf: float = 0.25, iou: float = 0.45, max_det: int = 300, max_nms: int = 30000):
    """pred (N, 5+nc) decoded rows -> (M, 6) [x1, y1, x2, y2, score, class] as YOLOv5 v7.0."""
    x = pred[pred[:, 4] > conf]
    if not len(x):
        return np.zeros((0, 6), np.float32)
    cls = x[:, 5:] * x[:, 4:5]
    j = cls.argmax(1)
    score = cls[np.arange(len(x)), j]
    box = np.stack([x[:, 0] - x[:, 2] / 2, x[:, 1] - x[:, 3] / 2, x[:, 0] + x[:, 2] / 2, x[:, 1] + x[:, 3] / 2], 1)
    keep = score > conf
    box, score, j = box[keep], score[keep], j[keep]
    order = np.argsort(-score, kind="stable")[:max_nms]
    box, score, j = box[order], score[order], j[order]
    kept: List[int] = []
    suppressed = np.zeros(len(box), bool)
    for i in range(len(box)):
        if suppressed[i]:
            continue
        kept.append(i)
        if len(kept) == max_det:
            break
        rest = np.arange(i + 1, len(box))
        rest = rest[(j[rest] == j[i]) & ~suppressed[rest]]
        if len(rest):
            suppressed[rest[box_iou(box[i], box[rest]) > iou]] = True
    k = np.asarray(kept, np.int64)
    return np.concatenate([box[k], score[k, None], j[k, None].astype(np.float32)], 1).astype(np.float32)


def scale_boxes(det: np.ndarray, lb: Letterbox) -> np.ndarray:
    out = det.copy()
    out[:, [0, 2]] = np.clip((det[:, [0, 2]] - lb.pad_x) / lb.scale, 0, lb.src_w)
    out[:, [1, 3]] = np.clip((det[:, [1, 3]] - lb.pad_y) / lb.scale, 0, lb.src_h)
    return out


@torch.no_grad()
def detect(model: EffYolo, rgb: np.ndarray, size=(320, 320), conf=0.25, iou=0.45, max_det=300):
    """Full pipeline on one uint8 RGB image; returns a list of detection dicts in image pixels."""
    cfg = model.cfg
    x, lb = letterbox(rgb, size, cfg.mean, cfg.std)
    raw = model(torch.from_numpy(x)[None])
    pred = model.head.decode(raw)[0].numpy()
    det = scale_boxes(non_max_suppression(pred, conf, iou, max_det), lb)
    return [
        dict(x1=float(d[0]), y1=float(d[1]), x2=float(d[2]), y2=float(d[3]), score=float(d[4]), class_id=int(d[5]),
             label=cfg.class_names[int(d[5])])
        for d in det
    ]
