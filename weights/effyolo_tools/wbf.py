"""Class-aware weighted box fusion (WBF) of several detectors' outputs.

Solovyev et al., "Weighted boxes fusion: ensembling boxes from object detection
models" (2021), with soft per-detector scores kept for training:

1. Per class, all boxes of all detectors are visited in descending score order.  A box
   joins the cluster whose current fused box overlaps it most if that IoU is > ``iou_thr``
   (0.55 by default); otherwise it starts a new cluster.
2. A cluster's fused box is the average of its members' coordinates weighted by
   ``score * detector_weight``, updated as members join.
3. Per detector, the cluster's detector score is the highest score that detector gave to
   a member (0 when it contributed nothing).  The fused score is the weighted mean of the
   detector scores: a box that only one of two equal-weight detectors found keeps half
   its score, a box both found with scores s1, s2 gets (s1 + s2) / 2.

Inputs are boxes normalised to [0, 1] (any common scale works).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .boxes import box_iou


@dataclass
class FusedBoxes:
    boxes: np.ndarray            # (N, 4) xyxy, same scale as the inputs
    classes: np.ndarray          # (N,) int64
    scores: np.ndarray           # (N,) fused score
    detector_scores: np.ndarray  # (N, D) per-detector score (0 = not found by it)
    members: np.ndarray          # (N,) number of input boxes in the cluster

    def __len__(self) -> int:
        return len(self.scores)


def weighted_boxes_fusion(boxes: Sequence[np.ndarray], scores: Sequence[np.ndarray],
                          classes: Sequence[np.ndarray], weights: Sequence[float] | None = None,
                          iou_thr: float = 0.55, skip_thr: float = 0.0) -> FusedBoxes:
    """Fuse per-detector lists of (boxes (N_d, 4), scores (N_d,), classes (N_d,))."""
    n_det = len(boxes)
    w = np.ones(n_det) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != n_det:
        raise ValueError("one weight per detector is needed")
    b = np.concatenate([np.asarray(x, np.float64).reshape(-1, 4) for x in boxes])
    s = np.concatenate([np.asarray(x, np.float64).reshape(-1) for x in scores])
    c = np.concatenate([np.asarray(x, np.int64).reshape(-1) for x in classes])
    d = np.concatenate([np.full(len(x), i) for i, x in enumerate(scores)]).astype(np.int64)
    keep = s >= skip_thr
    b, s, c, d = b[keep], s[keep], c[keep], d[keep]

    out_b, out_c, out_s, out_ds, out_m = [], [], [], [], []
    for cls in np.unique(c):
        idx = np.where(c == cls)[0]
        idx = idx[np.argsort(-s[idx], kind="stable")]
        k = len(idx)
        fused = np.zeros((k, 4))              # current fused box per cluster
        wsum_box = np.zeros((k, 4))           # sum(weight * box) per cluster
        wsum = np.zeros(k)                    # sum(weight) per cluster
        det_score = np.zeros((k, n_det))
        members = np.zeros(k, dtype=np.int64)
        n = 0                                 # clusters so far
        for i in idx:
            wi = s[i] * w[d[i]]
            j = -1
            if n:
                ious = box_iou(b[i:i + 1], fused[:n])[0]
                j = int(np.argmax(ious))
                if ious[j] <= iou_thr:
                    j = -1
            if j < 0:
                j, n = n, n + 1
                fused[j] = b[i]
                wsum_box[j] = b[i] * wi
                wsum[j] = wi
            else:
                wsum_box[j] += b[i] * wi
                wsum[j] += wi
                fused[j] = wsum_box[j] / max(wsum[j], 1e-12)
            det_score[j, d[i]] = max(det_score[j, d[i]], s[i])
            members[j] += 1
        fused, det_score, members = fused[:n], det_score[:n], members[:n]
        out_b.append(fused)
        out_c.append(np.full(len(fused), cls, dtype=np.int64))
        out_s.append(det_score @ w / w.sum())
        out_ds.append(det_score)
        out_m.append(members)
    if not out_b:
        return FusedBoxes(np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                          np.zeros(0, np.float32), np.zeros((0, n_det), np.float32),
                          np.zeros(0, np.int64))
    scores_all = np.concatenate(out_s)
    order = np.argsort(-scores_all, kind="stable")
    return FusedBoxes(np.concatenate(out_b)[order].astype(np.float32),
                      np.concatenate(out_c)[order],
                      scores_all[order].astype(np.float32),
                      np.concatenate(out_ds)[order].astype(np.float32),
                      np.concatenate(out_m)[order])
