"""COCO-style average precision for box detections (NumPy only).

Follows ``pycocotools.COCOeval`` for the "all areas" setting without crowd regions:

* per image and class, detections are sorted by score and only the top ``max_dets``
  (default 100) are kept;
* each detection, in score order, is matched to the unmatched ground-truth box of the
  same class with the highest IoU, if that IoU is >= the threshold;
* per class, precision/recall over all images are computed, the precision envelope is
  taken (monotone from the right) and sampled at 101 recall points 0.00, 0.01, ..., 1.00
  (zero beyond the highest recall reached);
* AP is averaged over the classes that have at least one ground-truth box (classes
  without ground truth are ignored, so their detections cost nothing); AP50-95 also
  averages over IoU thresholds 0.50:0.05:0.95.

Inputs are plain arrays so that any producer can be scored (a teacher, the fused
pseudo-labels, the Rust CLI's JSON output).  Boxes are ``xyxy`` and only need to use
the same coordinate system for the predictions and ground truth of one image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .boxes import box_area, box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass
class ImageBoxes:
    """Boxes of one image: ``boxes`` (N, 4) xyxy, ``classes`` (N,), ``scores`` (N,) or None."""

    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray | None = None


@dataclass
class APResult:
    """Per-class, per-threshold AP; classes without ground truth hold NaN."""

    ap: np.ndarray                  # (num_classes, num_thresholds)
    num_gt: np.ndarray              # (num_classes,)
    iou_thresholds: np.ndarray = field(default_factory=lambda: IOU_THRESHOLDS.copy())

    def _rows(self, classes: Iterable[int] | None) -> np.ndarray:
        rows = self.ap if classes is None else self.ap[list(classes)]
        return rows[~np.isnan(rows[:, 0])]

    def ap50(self, classes: Iterable[int] | None = None) -> float:
        """Mean AP at IoU 0.5 over ``classes`` (default: all classes with ground truth)."""
        rows = self._rows(classes)
        i = int(np.argmin(np.abs(self.iou_thresholds - 0.5)))
        return float(rows[:, i].mean()) if len(rows) else float("nan")

    def ap50_95(self, classes: Iterable[int] | None = None) -> float:
        """Mean AP over IoU 0.50:0.95 and ``classes``."""
        rows = self._rows(classes)
        return float(rows.mean()) if len(rows) else float("nan")

    def summary(self, person_class: int = 0) -> dict:
        return {"AP50": self.ap50(), "AP50-95": self.ap50_95(),
                "person_AP50": self.ap50([person_class]),
                "person_AP50-95": self.ap50_95([person_class]),
                "classes_with_gt": int((self.num_gt > 0).sum()),
                "gt_boxes": int(self.num_gt.sum())}


def _greedy_match(ious: np.ndarray, thr: float) -> tuple[np.ndarray, np.ndarray]:
    """Which ground-truth boxes (columns of ``ious``, detections in score order as rows) are
    matched: each detection takes the free box it overlaps most, if that IoU is >= ``thr``.
    Returns (D,) flags, True where the detection matched, and (G,) flags of the taken boxes."""
    taken = np.zeros(ious.shape[1], dtype=bool)
    hit = np.zeros(ious.shape[0], dtype=bool)
    for d, row in enumerate(ious):
        cand = np.where(taken, -1.0, row)
        g = int(np.argmax(cand))
        if cand[g] >= thr:
            taken[g] = hit[d] = True
    return hit, taken


def _match_image_class(det_boxes, gt_boxes, thresholds):
    """TP flags (T, D) for score-sorted detections of one class in one image."""
    tp = np.zeros((len(thresholds), len(det_boxes)), dtype=bool)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return tp
    ious = box_iou(det_boxes, gt_boxes)
    for t, thr in enumerate(thresholds):
        tp[t] = _greedy_match(ious, min(thr, 1 - 1e-10))[0]
    return tp


def _average_precision(tp: np.ndarray, scores: np.ndarray, num_gt: int) -> np.ndarray:
    """101-point interpolated AP per threshold, from TP flags (T, D) and scores (D,)."""
    order = np.argsort(-scores, kind="mergesort")
    tp = tp[:, order]
    tps = np.cumsum(tp, axis=1, dtype=np.float64)
    fps = np.cumsum(~tp, axis=1, dtype=np.float64)
    out = np.zeros(tp.shape[0])
    for t in range(tp.shape[0]):
        if tp.shape[1] == 0:
            continue
        rc = tps[t] / num_gt
        pr = tps[t] / np.maximum(tps[t] + fps[t], np.finfo(np.float64).eps)
        pr = np.maximum.accumulate(pr[::-1])[::-1]          # precision envelope
        idx = np.searchsorted(rc, RECALL_POINTS, side="left")
        q = np.where(idx < len(pr), pr[np.minimum(idx, len(pr) - 1)], 0.0)
        out[t] = q.mean()
    return out


def evaluate(predictions: Sequence[ImageBoxes], ground_truth: Sequence[ImageBoxes],
             num_classes: int = 80, max_dets: int = 100,
             iou_thresholds: np.ndarray = IOU_THRESHOLDS) -> APResult:
    """COCO-style AP of ``predictions`` against ``ground_truth`` (same image order)."""
    if len(predictions) != len(ground_truth):
        raise ValueError("predictions and ground_truth must cover the same images")
    thr = np.asarray(iou_thresholds, dtype=np.float64)
    per_class_tp = [[] for _ in range(num_classes)]
    per_class_scores = [[] for _ in range(num_classes)]
    num_gt = np.zeros(num_classes, dtype=np.int64)
    for pred, gt in zip(predictions, ground_truth):
        gt_cls = np.asarray(gt.classes, dtype=np.int64)
        gt_boxes = np.asarray(gt.boxes, dtype=np.float32).reshape(-1, 4)
        p_cls = np.asarray(pred.classes, dtype=np.int64)
        p_boxes = np.asarray(pred.boxes, dtype=np.float32).reshape(-1, 4)
        p_scores = np.asarray(pred.scores, dtype=np.float64)
        num_gt += np.bincount(gt_cls, minlength=num_classes)[:num_classes]
        for c in np.union1d(np.unique(gt_cls), np.unique(p_cls)):
            if c < 0 or c >= num_classes:
                continue
            m = p_cls == c
            order = np.argsort(-p_scores[m], kind="mergesort")[:max_dets]
            boxes, scores = p_boxes[m][order], p_scores[m][order]
            per_class_tp[c].append(_match_image_class(boxes, gt_boxes[gt_cls == c], thr))
            per_class_scores[c].append(scores)
    ap = np.full((num_classes, len(thr)), np.nan)
    for c in range(num_classes):
        if num_gt[c] == 0:
            continue
        if per_class_tp[c]:
            tp = np.concatenate(per_class_tp[c], axis=1)
            scores = np.concatenate(per_class_scores[c])
        else:
            tp, scores = np.zeros((len(thr), 0), bool), np.zeros(0)
        ap[c] = _average_precision(tp, scores, int(num_gt[c]))
    return APResult(ap=ap, num_gt=num_gt, iou_thresholds=thr)


SIZE_BUCKETS = (("small", 0.0, 32.0 ** 2), ("medium", 32.0 ** 2, 96.0 ** 2),
                ("large", 96.0 ** 2, float("inf")))


def recall_by_size(predictions: Sequence[ImageBoxes], ground_truth: Sequence[ImageBoxes],
                   min_score: float = 0.25, iou: float = 0.5,
                   classes: Iterable[int] | None = None) -> dict:
    """Recall per COCO area bucket (small < 32^2 <= medium < 96^2 <= large, in the boxes'
    units): the share of ground-truth boxes that a detection of the same class with score
    >= ``min_score`` overlaps by IoU >= ``iou``. Each detection counts for one box at most
    (greedy, best score first). Returns ``{bucket: (found, total)}``; ``classes`` restricts
    the ground truth (and the detections) to those classes."""
    wanted = None if classes is None else set(int(c) for c in classes)
    out = {name: [0, 0] for name, _, _ in SIZE_BUCKETS}
    for pred, gt in zip(predictions, ground_truth, strict=True):
        g_boxes = np.asarray(gt.boxes, dtype=np.float32).reshape(-1, 4)
        g_cls = np.asarray(gt.classes, dtype=np.int64)
        p_boxes = np.asarray(pred.boxes, dtype=np.float32).reshape(-1, 4)
        p_cls = np.asarray(pred.classes, dtype=np.int64)
        p_scores = (np.ones(len(p_cls)) if pred.scores is None
                    else np.asarray(pred.scores, dtype=np.float64))
        area = box_area(g_boxes)
        for c in np.unique(g_cls):
            if wanted is not None and int(c) not in wanted:
                continue
            gi = np.where(g_cls == c)[0]
            pm = (p_cls == c) & (p_scores >= min_score)
            found = np.zeros(len(gi), dtype=bool)
            if pm.any():
                order = np.argsort(-p_scores[pm], kind="mergesort")
                found = _greedy_match(box_iou(p_boxes[pm][order], g_boxes[gi]), iou)[1]
            for k, g in enumerate(gi):
                for name, lo, hi in SIZE_BUCKETS:
                    if lo <= area[g] < hi:
                        out[name][0] += int(found[k])
                        out[name][1] += 1
    return {name: tuple(v) for name, v in out.items()}


def size_recall_table(predictions: Sequence[ImageBoxes], ground_truth: Sequence[ImageBoxes],
                      source: str, min_score: float = 0.25) -> str:
    """Markdown table of :func:`recall_by_size` for all classes and for person (class 0)."""
    lines = [f"recall of {source} at IoU 0.5, detections with score >= {min_score}, by object "
             "area (small < 32^2 <= medium < 96^2 <= large pixels; boxes in brackets)",
             "| classes | small | medium | large |", "|---|---|---|---|"]
    for label, classes in (("all", None), ("person", [0])):
        r = recall_by_size(predictions, ground_truth, min_score=min_score, classes=classes)
        cells = [f"{f / n:.2f} ({n})" if n else "- (0)" for f, n in r.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
