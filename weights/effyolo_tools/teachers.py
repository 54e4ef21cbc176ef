"""onnxruntime wrappers for the COCO-80 teacher detectors.

Both wrappers take a BGR uint8 image (see :mod:`effyolo_tools.images`) and return
:class:`Detections` in the image's own pixel coordinates (``xyxy``, clipped).

YOLOv5 (``yolov5n.onnx``, dynamic batch/height/width)
    Letterbox: scale the long side to ``size`` (up- or down-scaling), centre the image,
    pad with grey 114, optionally only up to a multiple of 32 ("rect" mode, as
    YOLOv5's ``val.py`` does; same result, less compute).  RGB, /255.  Output
    ``(B, N, 85)`` = cx, cy, w, h in input pixels, objectness, 80 class
    probabilities (all sigmoided).  Score of a (box, class) pair = obj * cls.

YOLOX (``yolox_nano.onnx``, fixed 416x416)
    The official YOLOX preprocessing since v0.2: scale the long side to 416, place the
    image in the *top-left* corner, pad with 114, keep BGR and raw 0-255 values (no
    mean/std).  The export has no decoding: output ``(1, 3549, 85)`` = raw box
    regression (dx, dy, log w, log h) per grid cell for strides 8/16/32 (52x52 +
    26x26 + 13x13 cells, row-major), objectness and class probabilities already
    sigmoided.  Decoding: ``xy = (d_xy + cell) * stride``, ``wh = exp(d_wh) * stride``.
    Other preprocessing variants are kept selectable only so that the choice can be
    re-checked against labelled data (``teacher_eval.py --yolox-preproc``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .boxes import batched_nms, xywh_to_xyxy

PAD_VALUE = 114


@dataclass
class Detections:
    """Detections of one image: ``boxes`` (N, 4) xyxy pixels, ``scores`` (N,), ``classes`` (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                          np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_session(path: str | os.PathLike, threads: int = 2):
    """A CPU onnxruntime session with a fixed, small thread budget."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts,
                                providers=["CPUExecutionProvider"])


def select_candidates(boxes_xyxy: np.ndarray, obj: np.ndarray, cls_prob: np.ndarray,
                      conf_thres: float, iou_thres: float, multi_label: bool,
                      max_det: int, max_nms: int = 30000) -> Detections:
    """Turn dense (box, obj, class-probability) rows into final detections.

    Score = obj * class probability.  With ``multi_label`` every (box, class) pair above
    ``conf_thres`` is a candidate (as YOLOv5 evaluates); otherwise only the best class
    of each box.  Then class-aware NMS and the top ``max_det`` by score.
    """
    keep = obj > conf_thres
    boxes_xyxy, obj, cls_prob = boxes_xyxy[keep], obj[keep], cls_prob[keep]
    if len(obj) == 0:
        return Detections.empty()
    conf = cls_prob * obj[:, None]
    if multi_label:
        i, j = np.nonzero(conf > conf_thres)
        boxes, scores, classes = boxes_xyxy[i], conf[i, j], j
    else:
        j = conf.argmax(1)
        scores = conf[np.arange(len(conf)), j]
        m = scores > conf_thres
        boxes, scores, classes = boxes_xyxy[m], scores[m], j[m]
    if len(scores) > max_nms:
        top = np.argsort(-scores)[:max_nms]
        boxes, scores, classes = boxes[top], scores[top], classes[top]
    k = batched_nms(boxes, scores, classes, iou_thres, max_keep=max_det)
    return Detections(boxes[k].astype(np.float32), scores[k].astype(np.float32),
                      classes[k].astype(np.int64))


class Teacher:
    """Common interface: ``detect(img_bgr) -> Detections`` in original-image pixels."""

    name: str
    path: Path
    size: int

    def __init__(self, path, size, conf_thres, iou_thres, multi_label, max_det, threads):
        self.path = Path(path)
        self.size = int(size)
        self.conf_thres = float(conf_thres)
        self.iou_thres = float(iou_thres)
        self.multi_label = bool(multi_label)
        self.max_det = int(max_det)
        self.session = make_session(self.path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self._sha256 = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = file_sha256(self.path)
        return self._sha256

    def describe(self) -> dict:
        """Everything that determines this teacher's output (stored in cache manifests)."""
        return {"name": self.name, "file": self.path.name, "sha256": self.sha256,
                "size": self.size, "conf_thres": self.conf_thres,
                "iou_thres": self.iou_thres, "multi_label": self.multi_label,
                "max_det": self.max_det, **self._extra_settings()}

    def _extra_settings(self) -> dict:
        return {}

    def detect(self, img: np.ndarray) -> Detections:
        raise NotImplementedError


def _clip(boxes: np.ndarray, w: int, h: int) -> np.ndarray:
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes


class YoloV5Teacher(Teacher):
    name = "yolov5n"

    def __init__(self, path, size=640, conf_thres=0.001, iou_thres=0.6, multi_label=True,
                 max_det=300, threads=2, rect=True):
        super().__init__(path, size, conf_thres, iou_thres, multi_label, max_det, threads)
        self.rect = bool(rect)

    def _extra_settings(self) -> dict:
        return {"rect": self.rect, "preproc": "letterbox-centre-114-rgb-div255"}

    def letterbox(self, img: np.ndarray):
        """Resize + centre-pad; returns (rgb float32 CHW / 255, (sx, sy), (left, top))."""
        h, w = img.shape[:2]
        r = min(self.size / h, self.size / w)
        nw, nh = int(round(w * r)), int(round(h * r))
        dw, dh = self.size - nw, self.size - nh
        if self.rect:
            dw, dh = dw % 32, dh % 32
        if (nw, nh) != (w, h):
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        top, left = int(round(dh / 2 - 0.1)), int(round(dw / 2 - 0.1))
        img = cv2.copyMakeBorder(img, top, dh - top, left, dw - left, cv2.BORDER_CONSTANT,
                                 value=(PAD_VALUE,) * 3)
        x = img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) * (1 / 255.0)
        return np.ascontiguousarray(x), (nw / w, nh / h), (left, top)

    def detect(self, img: np.ndarray) -> Detections:
        h, w = img.shape[:2]
        x, (sx, sy), (left, top) = self.letterbox(img)
        out = self.session.run(None, {self.input_name: x[None]})[0][0]
        boxes = xywh_to_xyxy(out[:, :4])
        det = select_candidates(boxes, out[:, 4], out[:, 5:], self.conf_thres,
                                self.iou_thres, self.multi_label, self.max_det)
        det.boxes = _clip((det.boxes - [left, top, left, top]) / [sx, sy, sx, sy], w, h)
        det.boxes = det.boxes.astype(np.float32)
        return det


YOLOX_PREPROC = ("bgr-raw-topleft", "bgr-raw-centre", "rgb-raw-topleft",
                 "rgb-meanstd-topleft", "bgr-div255-topleft")


class YoloXTeacher(Teacher):
    name = "yolox_nano"
    strides = (8, 16, 32)

    def __init__(self, path, conf_thres=0.001, iou_thres=0.65, multi_label=True,
                 max_det=300, threads=2, preproc="bgr-raw-topleft"):
        super().__init__(path, 416, conf_thres, iou_thres, multi_label, max_det, threads)
        shape = self.session.get_inputs()[0].shape
        if isinstance(shape[2], int):
            self.size = shape[2]        # the export's fixed input size
        if preproc not in YOLOX_PREPROC:
            raise ValueError(f"unknown YOLOX preprocessing {preproc!r}; one of {YOLOX_PREPROC}")
        self.preproc = preproc
        grids, strides = [], []
        for s in self.strides:
            n = self.size // s
            yv, xv = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
            grids.append(np.stack([xv, yv], -1).reshape(-1, 2))
            strides.append(np.full((n * n, 1), s))
        self.grid = np.concatenate(grids).astype(np.float32)
        self.stride = np.concatenate(strides).astype(np.float32)

    def _extra_settings(self) -> dict:
        return {"preproc": self.preproc}

    def prepare(self, img: np.ndarray):
        """Resize + pad to the fixed input; returns (CHW float32, scale, (left, top))."""
        h, w = img.shape[:2]
        r = min(self.size / h, self.size / w)
        nw, nh = int(w * r), int(h * r)
        resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((self.size, self.size, 3), PAD_VALUE, np.uint8)
        left = top = 0
        if self.preproc.endswith("centre"):
            left, top = (self.size - nw) // 2, (self.size - nh) // 2
        canvas[top:top + nh, left:left + nw] = resized
        x = canvas.astype(np.float32)
        if self.preproc.startswith("rgb"):
            x = x[:, :, ::-1]
        if "meanstd" in self.preproc:
            x = (x / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
        elif "div255" in self.preproc:
            x = x / 255.0
        x = np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)
        return x, r, (left, top)

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """Raw (N, 85) head output -> (N, 85) with cx, cy, w, h in input pixels."""
        out = raw.copy()
        out[:, :2] = (raw[:, :2] + self.grid) * self.stride
        out[:, 2:4] = np.exp(np.clip(raw[:, 2:4], None, 20)) * self.stride
        return out

    def detect(self, img: np.ndarray) -> Detections:
        h, w = img.shape[:2]
        x, r, (left, top) = self.prepare(img)
        out = self.decode(self.session.run(None, {self.input_name: x[None]})[0][0])
        boxes = xywh_to_xyxy(out[:, :4])
        det = select_candidates(boxes, out[:, 4], out[:, 5:], self.conf_thres,
                                self.iou_thres, self.multi_label, self.max_det)
        det.boxes = _clip((det.boxes - [left, top, left, top]) / r, w, h).astype(np.float32)
        return det


TEACHER_FILES = {"yolov5n": "yolov5n.onnx", "yolox_nano": "yolox_nano.onnx"}


def load_teacher(name: str, teachers_dir: str | os.PathLike, size: int | None = None,
                 **kwargs) -> Teacher:
    """Build a teacher by name (``yolov5n`` or ``yolox_nano``) from ``teachers_dir``."""
    path = Path(teachers_dir) / TEACHER_FILES[name]
    if name == "yolov5n":
        return YoloV5Teacher(path, size=size or 640, **kwargs)
    if size not in (None, 416):
        raise ValueError("yolox_nano.onnx has a fixed 416x416 input")
    return YoloXTeacher(path, **kwargs)
