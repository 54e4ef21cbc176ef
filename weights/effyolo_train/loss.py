"""Losses: YOLOv5 v7.0 ``ComputeLoss`` on pseudo-label boxes and dense teacher distillation.

Both work on the student's raw head logits (``EffYolo.forward``), viewed per level as
``(B, na, ny, nx, no)`` (the layout of ``Detect.decode``) and computed in float32.

Box loss (``YoloLoss``), as ``utils/loss.py`` of YOLOv5 v7.0:
  * ``build_targets``: a target is matched to every anchor whose width/height ratio to it is
    below ``anchor_t`` (4.0), in its own cell and the two neighbouring cells nearest to its
    centre (offset 0.5);
  * box: 1 - CIoU of the decoded prediction ``(2 sigmoid - 0.5 + cell, (2 sigmoid)^2 anchor)``;
  * objectness: BCE against the (detached, clamped) CIoU at matched cells and 0 elsewhere,
    levels weighted (4.0, 1.0, 0.4);
  * class: BCE against one-hot targets.
  Pseudo-label boxes carry a weight (their fused score); box and class terms are weighted
  means.  Objectness is computed only over images whose every source image is labelled
  (an unlabelled image is unknown, not empty).

Dense distillation (``DenseDistillLoss``) against the teacher's output on the same batch:
  * objectness: BCE(student obj logit, teacher obj) at every cell, levels weighted as above;
  * class: BCE(student class logits, teacher class probabilities), weighted by teacher obj;
  * box: 1 - CIoU(student box, teacher box) where teacher obj > ``box_obj_thr``, weighted by
    teacher obj.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

BALANCE = (4.0, 1.0, 0.4)


def bbox_ciou(box1: torch.Tensor, box2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """CIoU of matching rows of two (n, 4) xywh tensors (YOLOv5 ``bbox_iou(..., CIoU=True)``)."""
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.unbind(-1), box2.unbind(-1)
    b1_x1, b1_x2, b1_y1, b1_y2 = x1 - w1 / 2, x1 + w1 / 2, y1 - h1 / 2, y1 + h1 / 2
    b2_x1, b2_x2, b2_y1, b2_y2 = x2 - w2 / 2, x2 + w2 / 2, y2 - h2 / 2, y2 + h2 / 2
    inter = (torch.min(b1_x2, b2_x2) - torch.max(b1_x1, b2_x1)).clamp(0) * \
            (torch.min(b1_y2, b2_y2) - torch.max(b1_y1, b2_y1)).clamp(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.max(b1_x2, b2_x2) - torch.min(b1_x1, b2_x1)
    ch = torch.max(b1_y2, b2_y2) - torch.min(b1_y1, b2_y1)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2) ** 2 + (b2_y1 + b2_y2 - b1_y1 - b1_y2) ** 2) / 4
    v = (4 / math.pi ** 2) * (torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps)).clamp(min=eps)   # 0/0 for identical boxes otherwise
    return iou - (rho2 / c2 + v * alpha)


def level_views(raw: Sequence[torch.Tensor], na: int) -> List[torch.Tensor]:
    """(B, na*no, ny, nx) logits -> (B, na, ny, nx, no) float32 views."""
    out = []
    for r in raw:
        b, c, ny, nx = r.shape
        out.append(r.float().view(b, na, c // na, ny, nx).permute(0, 1, 3, 4, 2))
    return out


@dataclass
class LossWeights:
    box: float = 0.05
    obj: float = 1.0
    cls: float = 0.5
    kd_obj: float = 1.0
    kd_cls: float = 0.5
    kd_box: float = 0.05

    @staticmethod
    def yolov5_scaled(img_size: int, nc: int, **over) -> "LossWeights":
        """YOLOv5's hyp scaling for 3 levels: obj *= (imgsz / 640)^2, cls *= nc / 80."""
        w = LossWeights(**over)
        w.obj *= (img_size / 640) ** 2
        w.kd_obj *= (img_size / 640) ** 2
        w.cls *= nc / 80
        w.kd_cls *= nc / 80
        return w


class YoloLoss:
    def __init__(self, anchors_px: torch.Tensor, strides: Sequence[int], nc: int,
                 anchor_t: float = 4.0, class_weights: torch.Tensor | None = None):
        self.anchors = torch.stack([anchors_px[i] / s for i, s in enumerate(strides)])  # grid units
        self.na = self.anchors.shape[1]
        self.nl = len(strides)
        self.nc = nc
        self.anchor_t = anchor_t
        self.class_weights = class_weights

    def build_targets(self, shapes: List[Tuple[int, int]], targets: torch.Tensor):
        """targets (nt, 7) = image, class, x, y, w, h (normalised), weight."""
        na, nt = self.na, targets.shape[0]
        tcls, tbox, indices, anch, twt = [], [], [], [], []
        gain = torch.ones(8)
        ai = torch.arange(na, dtype=torch.float32).view(na, 1).repeat(1, nt)
        targets = torch.cat((targets.repeat(na, 1, 1), ai[..., None]), 2)  # (na, nt, 8)
        g = 0.5
        off = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32) * g
        for i in range(self.nl):
            anchors = self.anchors[i]
            ny, nx = shapes[i]
            gain[2:6] = torch.tensor([nx, ny, nx, ny], dtype=torch.float32)
            t = targets * gain
            if nt:
                r = t[..., 4:6] / anchors[:, None]
                j = torch.max(r, 1 / r).max(2)[0] < self.anchor_t
                t = t[j]
                gxy = t[:, 2:4]
                gxi = gain[[2, 3]] - gxy
                j, k = ((gxy % 1 < g) & (gxy > 1)).T
                l, m = ((gxi % 1 < g) & (gxi > 1)).T
                j = torch.stack((torch.ones_like(j), j, k, l, m))
                t = t.repeat((5, 1, 1))[j]
                offsets = (torch.zeros_like(gxy)[None] + off[:, None])[j]
            else:
                t = targets[0]
                offsets = 0
            b, c = t[:, 0].long(), t[:, 1].long()
            gxy, gwh, w, a = t[:, 2:4], t[:, 4:6], t[:, 6], t[:, 7].long()
            gij = (gxy - offsets).long()
            gi, gj = gij.T
            indices.append((b, a, gj.clamp_(0, ny - 1), gi.clamp_(0, nx - 1)))
            tbox.append(torch.cat((gxy - gij, gwh), 1))
            anch.append(anchors[a])
            tcls.append(c)
            twt.append(w)
        return tcls, tbox, indices, anch, twt

    def __call__(self, p: List[torch.Tensor], targets: torch.Tensor, labelled: torch.Tensor):
        """p: per-level (B, na, ny, nx, no) float32; returns (box, obj, cls) unweighted losses."""
        zero = p[0].sum() * 0
        lbox, lobj, lcls = zero, zero, zero
        if not bool(labelled.any()):
            return lbox, lobj, lcls
        # Targets are matched on the CPU (a few hundred rows), then moved to the predictions.
        dev = p[0].device
        tcls, tbox, indices, anch, twt = self.build_targets([pi.shape[2:4] for pi in p], targets.cpu())
        to = lambda ts: [t.to(dev) for t in ts]  # noqa: E731
        tcls, tbox, anch, twt = to(tcls), to(tbox), to(anch), to(twt)
        indices = [tuple(to(ix)) for ix in indices]
        labelled = labelled.to(dev)
        class_weights = None if self.class_weights is None else self.class_weights.to(dev)
        wsum, matched = zero, False   # tensors: no device sync per level
        for i, pi in enumerate(p):
            b, a, gj, gi = indices[i]
            tobj = torch.zeros(pi.shape[:4], dtype=pi.dtype, device=dev)
            n = b.shape[0]
            if n:
                ps = pi[b, a, gj, gi]
                pxy = ps[:, :2].sigmoid() * 2 - 0.5
                pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anch[i]
                iou = bbox_ciou(torch.cat((pxy, pwh), 1), tbox[i])
                w = twt[i]
                lbox = lbox + ((1.0 - iou) * w).sum()
                tobj[b, a, gj, gi] = iou.detach().clamp(0).to(tobj.dtype)
                t = torch.zeros_like(ps[:, 5:])
                t[torch.arange(n, device=dev), tcls[i]] = 1.0
                bce = F.binary_cross_entropy_with_logits(ps[:, 5:], t, reduction="none")
                if class_weights is not None:
                    bce = bce * class_weights
                lcls = lcls + (bce.mean(1) * w).sum()
                wsum = wsum + w.sum()
                matched = True
            obj = F.binary_cross_entropy_with_logits(pi[..., 4], tobj, reduction="none")
            lobj = lobj + obj[labelled].mean() * BALANCE[i]
        if matched:   # every matched target weighs its fused score (> 0)
            lbox, lcls = lbox / wsum, lcls / wsum
        return lbox, lobj, lcls


class DenseDistillLoss:
    """Dense targets from a teacher with the same grid/anchor layout (see module docstring)."""

    def __init__(self, anchors_px: torch.Tensor, strides: Sequence[int], box_obj_thr: float = 0.3,
                 class_weights: torch.Tensor | None = None):
        self.anchors_px = anchors_px  # (nl, na, 2)
        self.strides = strides
        self.box_obj_thr = box_obj_thr
        self.class_weights = class_weights
        self._grid_cache: Dict[Tuple, Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _grid(self, shapes, device):
        key = (tuple(shapes), str(device))
        if key not in self._grid_cache:
            cells, strides, anchors = [], [], []
            na = self.anchors_px.shape[1]
            for i, (ny, nx) in enumerate(shapes):
                yv, xv = torch.meshgrid(torch.arange(ny, dtype=torch.float32),
                                        torch.arange(nx, dtype=torch.float32), indexing="ij")
                xy = torch.stack((xv, yv), -1).view(1, ny * nx, 2).expand(na, -1, -1)
                cells.append(xy.reshape(-1, 2))
                strides.append(torch.full((na * ny * nx, 1), float(self.strides[i])))
                anchors.append(self.anchors_px[i].view(na, 1, 2).expand(-1, ny * nx, -1).reshape(-1, 2))
            self._grid_cache[key] = tuple(torch.cat(t).to(device) for t in (cells, strides, anchors))
        return self._grid_cache[key]

    def __call__(self, p: List[torch.Tensor], teacher: torch.Tensor):
        """p: per-level (B, na, ny, nx, no); teacher (B, N, 85). Returns obj, cls, box losses and
        the class agreement (student argmax == teacher argmax where teacher obj > threshold; a
        0-d tensor, left on the device, or None when the teacher sees no object)."""
        b = p[0].shape[0]
        flat = [pi.reshape(b, -1, pi.shape[-1]) for pi in p]
        sizes = [f.shape[1] for f in flat]
        t_levels = teacher.split(sizes, 1)
        lobj = p[0].sum() * 0
        for i, (f, t) in enumerate(zip(flat, t_levels)):
            lobj = lobj + F.binary_cross_entropy_with_logits(f[..., 4], t[..., 4]) * BALANCE[i]
        s = torch.cat(flat, 1)
        t_obj = teacher[..., 4]
        bce = F.binary_cross_entropy_with_logits(s[..., 5:], teacher[..., 5:], reduction="none")
        if self.class_weights is not None:
            bce = bce * self.class_weights.to(s.device)
        lcls = (bce.mean(-1) * t_obj).sum() / t_obj.sum().clamp(min=1e-6)

        mask = t_obj > self.box_obj_thr
        lbox = lobj * 0
        agree = None
        if bool(mask.any()):
            cell, stride, anchor = self._grid([pi.shape[2:4] for pi in p], s.device)
            bi, ni = mask.nonzero(as_tuple=True)
            ps = s[bi, ni]
            pxy = (ps[:, :2].sigmoid() * 2 - 0.5 + cell[ni]) * stride[ni]
            pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anchor[ni]
            w = t_obj[bi, ni]
            iou = bbox_ciou(torch.cat((pxy, pwh), 1), teacher[bi, ni, :4])
            lbox = ((1.0 - iou) * w).sum() / w.sum()
            with torch.no_grad():
                agree = (ps[:, 5:].argmax(1) == teacher[bi, ni, 5:].argmax(1)).float().mean()
        return lobj, lcls, lbox, agree
