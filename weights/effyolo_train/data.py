"""Training images in RAM, YOLOv5-style augmentation and deterministic batches.

Every image is decoded once (``effyolo_tools.images.load_bgr``, so EXIF orientation and
box coordinates agree with the pseudo-label cache), converted to RGB, optionally shrunk so
that its long side is at most ``max_side``, and kept as uint8.

A batch is a pure function of ``(seed, position)``, where ``position`` is the number of
images drawn from the sample stream so far (the image-iteration count):

* the stream is the concatenation of per-epoch permutations of the pool, epoch ``e``
  permuted by ``default_rng([seed, 1, e])``; with repeat-factor sampling (``repeat_thresh``
  > 0) an epoch is a permutation of the pool with each image repeated by its factor;
* all random choices of a batch (mosaic partners, affine, flip, HSV) come from
  ``default_rng([seed, 2, position])``.

So a resumed run continues with exactly the batches it would have drawn, whatever the
batch size, as long as the pool (image list) and the label cache are unchanged.

Augmentation follows YOLOv5 v7.0 ``utils/dataloaders.py`` / ``utils/augmentations.py``:
4-image mosaic on a 2S x 2S canvas (probability ``mosaic``), otherwise a centred
letterbox; random affine (scale 1 +- ``scale``, translation +- ``translate``, no rotation
or shear), horizontal flip, HSV gain jitter, grey 114 fill; boxes are transformed with the
image and filtered with YOLOv5's ``box_candidates``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

from effyolo_tools.cache import LabelCache
from effyolo_tools.images import iter_images, load_bgr

PAD = 114


@dataclass
class Labels:
    """Pseudo-label boxes of one image: normalised xyxy, class, weight in (0, 1]."""

    boxes: np.ndarray    # (n, 4) float32
    classes: np.ndarray  # (n,) int64
    weights: np.ndarray  # (n,) float32


@dataclass
class AugConfig:
    mosaic: float = 0.75      # probability of a 4-image mosaic
    scale: float = 0.5        # random scale in [1 - scale, 1 + scale]
    translate: float = 0.1    # random translation, fraction of the output size
    fliplr: float = 0.5
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4


class ImagePool:
    """All training images, decoded once (RGB uint8), with optional pseudo-labels."""

    def __init__(self, paths: List[str], images: List[np.ndarray]):
        self.paths = paths
        self.images = images
        self.labels: List[Optional[Labels]] = [None] * len(images)
        self.label_stamp: Optional[str] = None
        self.pack_meta: Optional[dict] = None   # set when the pool comes from a pack

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def load(cls, folders: Sequence[str], max_side: int = 0, exclude: Sequence[str] = (),
             workers: int = 2) -> "ImagePool":
        """Decode every image under ``folders`` (recursively, deterministic order).

        Images under any folder in ``exclude`` are refused (the evaluation set must never
        be trained on); unreadable files are skipped with a warning.
        """
        excluded = [Path(e).resolve() for e in exclude]
        paths = []
        seen = set()
        for _, path in iter_images(folders):
            path = path.resolve()
            if any(ex == path or ex in path.parents for ex in excluded):
                raise ValueError(f"{path} is inside an excluded (evaluation) folder")
            if str(path) not in seen:
                seen.add(str(path))
                paths.append(path)

        def load(path):
            try:
                img = load_bgr(path)
            except IOError as e:
                return e
            h, w = img.shape[:2]
            if max_side and max(h, w) > max_side:
                r = max_side / max(h, w)
                img = cv2.resize(img, (max(1, round(w * r)), max(1, round(h * r))),
                                 interpolation=cv2.INTER_AREA)
            return np.ascontiguousarray(img[:, :, ::-1])

        keep_paths, images = [], []
        with ThreadPoolExecutor(max_workers=workers) as ex:
            for path, img in zip(paths, ex.map(load, paths)):
                if isinstance(img, Exception):
                    print(f"skipping {path}: {img}", file=sys.stderr)
                    continue
                keep_paths.append(str(path))
                images.append(img)
        if not images:
            raise ValueError(f"no readable images under {list(folders)}")
        return cls(keep_paths, images)

    def fingerprint(self) -> str:
        """Identifies the image list (paths and decoded sizes) for resume checks."""
        h = hashlib.sha256()
        for p, im in zip(self.paths, self.images):
            h.update(f"{p}:{im.shape[0]}x{im.shape[1]}\n".encode())
        return h.hexdigest()[:16]

    def nbytes(self) -> int:
        return sum(im.nbytes for im in self.images)

    def attach_labels(self, cache_dir: str, min_score: float = 0.25,
                      weight_by_score: bool = True) -> int:
        """Attach the pseudo-label cache; returns how many pool images it labels.

        Boxes with fused score below ``min_score`` are dropped.  Kept boxes weigh their
        fused score (or 1).  Images absent from the cache stay unlabelled (``None``): the
        box loss skips them instead of treating them as empty.
        """
        cache = LabelCache.load(Path(cache_dir))
        self.label_stamp = label_stamp(cache_dir)
        self.labels = [to_labels(cache.get(p), min_score, weight_by_score) for p in self.paths]
        return self.num_labelled()

    @classmethod
    def from_pack(cls, pack_dir: str, min_score: float = 0.25, weight_by_score: bool = True,
                  workers: int = 4) -> "ImagePool":
        """The images and pseudo-labels of a training pack (``effyolo_train.pack``)."""
        from effyolo_train.pack import Pack

        pack = Pack(Path(pack_dir))
        if min_score < pack.meta["min_score"]:
            raise ValueError(f"{pack_dir} holds boxes with score >= {pack.meta['min_score']} "
                             f"only; --min-box-score {min_score} needs a pack made with it")
        pool = cls([f"pack:{n}" for n in pack.names], pack.decode(workers))
        pool.labels = [to_labels(pack.labels(i), min_score, weight_by_score)
                       for i in range(len(pack))]
        pool.label_stamp = "pack:" + pack.fingerprint()
        pool.pack_meta = pack.meta
        return pool

    def num_labelled(self) -> int:
        return sum(lab is not None for lab in self.labels)


def to_labels(rec: Optional[dict], min_score: float, weight_by_score: bool) -> Optional[Labels]:
    """Training labels from a cache or pack record: boxes with score >= ``min_score``, each
    weighing its score (or 1); None (unlabelled) stays None."""
    if rec is None:
        return None
    keep = rec["scores"] >= min_score
    scores = rec["scores"][keep].astype(np.float32)
    return Labels(rec["boxes"][keep].astype(np.float32).reshape(-1, 4),
                  rec["classes"][keep].astype(np.int64),
                  scores if weight_by_score else np.ones_like(scores))


def label_stamp(cache_dir: str) -> Optional[str]:
    """Changes whenever the label cache is rewritten (manifest size and mtime)."""
    m = Path(cache_dir) / "manifest.json"
    if not m.exists():
        return None
    st = m.stat()
    return json.dumps([st.st_size, st.st_mtime_ns])


# ----------------------------------------------------------------------------------------
# augmentation primitives (YOLOv5 v7.0)


def resize_long_side(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    r = size / max(h, w)
    if r == 1:
        return img
    interp = cv2.INTER_LINEAR if r > 1 else cv2.INTER_AREA
    return cv2.resize(img, (max(1, round(w * r)), max(1, round(h * r))), interpolation=interp)


def random_affine(img, boxes, rng, out_size, border, scale, translate):
    """Scale about the centre and translate; boxes (n, 4) xyxy pixels. Returns img, boxes, keep."""
    height = img.shape[0] + border * 2
    width = img.shape[1] + border * 2
    assert height == out_size and width == out_size
    C = np.eye(3)
    C[0, 2] = -img.shape[1] / 2
    C[1, 2] = -img.shape[0] / 2
    s = rng.uniform(1 - scale, 1 + scale)
    R = np.eye(3)
    R[0, 0] = R[1, 1] = s
    T = np.eye(3)
    T[0, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * width
    T[1, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * height
    M = T @ R @ C
    img = cv2.warpAffine(img, M[:2], dsize=(width, height), flags=cv2.INTER_LINEAR,
                         borderValue=(PAD, PAD, PAD))
    n = len(boxes)
    if not n:
        return img, boxes, np.zeros(0, bool)
    xy = np.ones((n * 4, 3))
    xy[:, :2] = boxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(n * 4, 2)
    xy = (xy @ M.T)[:, :2].reshape(n, 8)
    x, y = xy[:, [0, 2, 4, 6]], xy[:, [1, 3, 5, 7]]
    new = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], 1)
    new[:, [0, 2]] = new[:, [0, 2]].clip(0, width)
    new[:, [1, 3]] = new[:, [1, 3]].clip(0, height)
    keep = box_candidates(boxes.T * s, new.T)
    return img, new.astype(np.float32), keep


def box_candidates(box1, box2, wh_thr=2, ar_thr=100, area_thr=0.1, eps=1e-16):
    """YOLOv5: keep boxes that stay > wh_thr px, keep > area_thr of their area, aspect < ar_thr."""
    w1, h1 = box1[2] - box1[0], box1[3] - box1[1]
    w2, h2 = box2[2] - box2[0], box2[3] - box2[1]
    ar = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & (ar < ar_thr)


def augment_hsv(img: np.ndarray, rng, hgain, sgain, vgain) -> None:
    """In-place HSV gain jitter of an RGB uint8 image (YOLOv5 LUT method)."""
    if not (hgain or sgain or vgain):
        return
    r = rng.uniform(-1, 1, 3) * [hgain, sgain, vgain] + 1
    hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_RGB2HSV))
    x = np.arange(0, 256, dtype=r.dtype)
    lut_hue = ((x * r[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * r[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB, dst=img)


# ----------------------------------------------------------------------------------------
# batches


@dataclass
class Batch:
    position: int             # image-iteration count at the start of this batch
    images: np.ndarray        # (B, S, S, 3) uint8 RGB
    targets: np.ndarray       # (n, 7) float32: image, class, cx, cy, w, h (normalised), weight
    labelled: np.ndarray      # (B,) bool: every source image of the sample has pseudo-labels
    teacher: Optional[np.ndarray] = None  # (B, N, 85) float32 dense teacher output


def repeat_factors(labels: Sequence[Optional[Labels]], threshold: float) -> np.ndarray:
    """Repeat-factor sampling (Gupta et al., LVIS, 2019): per image, how often one epoch
    shows it.

    A class present in a fraction ``f`` of the labelled images gets ``max(1, sqrt(t / f))``;
    an image gets the largest factor of its classes, and 1 when it has no boxes or no
    labels.  ``threshold`` <= 0 gives all ones (plain epochs).
    """
    factors = np.ones(len(labels), np.float64)
    labelled = [lab for lab in labels if lab is not None]
    if threshold <= 0 or not labelled:
        return factors
    present = [np.unique(lab.classes) for lab in labelled]
    num_classes = 1 + max((int(c.max()) for c in present if c.size), default=0)
    freq = np.zeros(num_classes)
    for c in present:
        freq[c] += 1
    freq /= len(labelled)
    with np.errstate(divide="ignore"):
        class_factor = np.where(freq > 0, np.maximum(1.0, np.sqrt(threshold / freq)), 1.0)
    for i, lab in enumerate(labels):
        if lab is not None and lab.classes.size:
            factors[i] = class_factor[lab.classes].max()
    return factors


class BatchMaker:
    """Deterministic augmented batches: ``batch(position, size)`` (see module docstring)."""

    def __init__(self, pool: ImagePool, img_size: int, seed: int, aug: AugConfig,
                 repeat_thresh: float = 0.0):
        self.pool = pool
        self.size = int(img_size)
        self.seed = int(seed)
        self.aug = aug
        self.repeat_thresh = float(repeat_thresh)
        self._perm_lock = threading.Lock()   # batches may be built by several threads
        self.refresh_repeats()

    def refresh_repeats(self) -> None:
        """Recompute the epoch's image multiset from the pool's labels (after a relabel).

        Image ``i`` appears ``floor(r_i)`` times, plus once more when a fixed uniform draw
        (``default_rng([seed, 3])``) falls below the fraction of ``r_i``, so an epoch has a
        constant length and the stream stays a function of the position.
        """
        factors = repeat_factors(self.pool.labels, self.repeat_thresh)
        u = np.random.default_rng([self.seed, 3]).random(len(factors))
        counts = np.floor(factors).astype(np.int64) + (u < factors - np.floor(factors))
        with self._perm_lock:
            self._epoch_images = np.repeat(np.arange(len(factors)), counts)
            self._perm_epoch = -1
            self._perm = None

    @property
    def epoch_length(self) -> int:
        return len(self._epoch_images)

    def stream(self, start: int, count: int) -> np.ndarray:
        n = self.epoch_length
        out = np.empty(count, np.int64)
        for i in range(count):
            k = start + i
            out[i] = self._permutation(k // n)[k % n]
        return out

    def _permutation(self, epoch: int) -> np.ndarray:
        """The image order of one epoch (the last one is cached)."""
        with self._perm_lock:
            if epoch != self._perm_epoch:
                rng = np.random.default_rng([self.seed, 1, epoch])
                self._perm = self._epoch_images[rng.permutation(len(self._epoch_images))]
                self._perm_epoch = epoch
            return self._perm

    def _load(self, index: int):
        """Image resized to long side S, its boxes in those pixels, labelled flag."""
        img = resize_long_side(self.pool.images[index], self.size)
        lab = self.pool.labels[index]
        if lab is None:
            return img, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32), False
        h, w = img.shape[:2]
        boxes = lab.boxes * np.array([w, h, w, h], np.float32)
        return img, boxes, lab.classes, lab.weights, True

    def _mosaic(self, indices, rng):
        s = self.size
        yc, xc = (int(rng.uniform(s / 2, 3 * s / 2)) for _ in range(2))
        canvas = np.full((s * 2, s * 2, 3), PAD, np.uint8)
        all_boxes, all_cls, all_w, labelled = [], [], [], True
        for i, index in enumerate(indices):
            img, boxes, cls, wts, lab = self._load(index)
            h, w = img.shape[:2]
            if i == 0:
                x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
                x1b, y1b, x2b, y2b = w - (x2a - x1a), h - (y2a - y1a), w, h
            elif i == 1:
                x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, s * 2), yc
                x1b, y1b, x2b, y2b = 0, h - (y2a - y1a), min(w, x2a - x1a), h
            elif i == 2:
                x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(s * 2, yc + h)
                x1b, y1b, x2b, y2b = w - (x2a - x1a), 0, w, min(y2a - y1a, h)
            else:
                x1a, y1a, x2a, y2a = xc, yc, min(xc + w, s * 2), min(s * 2, yc + h)
                x1b, y1b, x2b, y2b = 0, 0, min(w, x2a - x1a), min(y2a - y1a, h)
            canvas[y1a:y2a, x1a:x2a] = img[y1b:y2b, x1b:x2b]
            padw, padh = x1a - x1b, y1a - y1b
            all_boxes.append(boxes + np.array([padw, padh, padw, padh], np.float32))
            all_cls.append(cls)
            all_w.append(wts)
            labelled &= lab
        boxes = np.concatenate(all_boxes).clip(0, 2 * s)
        img, boxes, keep = random_affine(canvas, boxes, rng, s, -s // 2, self.aug.scale,
                                         self.aug.translate)
        return img, boxes[keep], np.concatenate(all_cls)[keep], np.concatenate(all_w)[keep], labelled

    def _single(self, index, rng):
        s = self.size
        img, boxes, cls, wts, lab = self._load(index)
        h, w = img.shape[:2]
        canvas = np.full((s, s, 3), PAD, np.uint8)
        top, left = (s - h) // 2, (s - w) // 2
        canvas[top:top + h, left:left + w] = img
        boxes = boxes + np.array([left, top, left, top], np.float32)
        img, boxes, keep = random_affine(canvas, boxes, rng, s, 0, self.aug.scale,
                                         self.aug.translate)
        return img, boxes[keep], cls[keep], wts[keep], lab

    def sample(self, index: int, rng):
        """One augmented sample: (S, S, 3) uint8, boxes xyxy px, classes, weights, labelled."""
        if rng.random() < self.aug.mosaic:
            others = rng.integers(0, len(self.pool), 3)
            img, boxes, cls, wts, lab = self._mosaic([index, *others], rng)
        else:
            img, boxes, cls, wts, lab = self._single(index, rng)
        if rng.random() < self.aug.fliplr:
            img = img[:, ::-1]
            boxes = boxes.copy()
            boxes[:, [0, 2]] = self.size - boxes[:, [2, 0]]
        img = np.ascontiguousarray(img)
        augment_hsv(img, rng, self.aug.hsv_h, self.aug.hsv_s, self.aug.hsv_v)
        return img, boxes, cls, wts, lab

    def batch(self, position: int, batch_size: int) -> Batch:
        rng = np.random.default_rng([self.seed, 2, position])
        indices = self.stream(position, batch_size)
        s = self.size
        images = np.empty((batch_size, s, s, 3), np.uint8)
        targets, labelled = [], np.zeros(batch_size, bool)
        for b, index in enumerate(indices):
            img, boxes, cls, wts, lab = self.sample(int(index), rng)
            images[b] = img
            labelled[b] = lab
            if len(boxes):
                xywh = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                                 boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1) / s
                targets.append(np.concatenate([np.full((len(boxes), 1), b), cls[:, None], xywh,
                                               wts[:, None]], 1).astype(np.float32))
        targets = np.concatenate(targets) if targets else np.zeros((0, 7), np.float32)
        return Batch(position, images, targets, labelled)
