"""Quick AP50 of a model on a labelled folder through the reference pipeline.

The model is written to a temporary f32 weight file with ``export_state`` and loaded back
with ``load_model`` (so the weight file format is exercised), then every image goes through
``pipeline.detect`` (letterbox, decode, class-aware NMS) with the usual evaluation settings
(conf 0.001, IoU 0.6) and is scored with ``effyolo_tools.metrics``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from effyolo_ref.io import export_state, load_model
from effyolo_ref.pipeline import detect
from effyolo_tools.images import iter_images, load_bgr
from effyolo_tools.labels import label_path_for, read_yolo_labels
from effyolo_tools.metrics import ImageBoxes, evaluate


class DetectionEval:
    def __init__(self, data_dir: str, size: int, conf: float = 0.001, iou: float = 0.6):
        self.size, self.conf, self.iou = int(size), conf, iou
        self.items = []
        for _, path in iter_images([Path(data_dir) / "images"]):
            img = load_bgr(path)
            h, w = img.shape[:2]
            boxes, classes = read_yolo_labels(label_path_for(path), w, h)
            self.items.append((np.ascontiguousarray(img[:, :, ::-1]), ImageBoxes(boxes, classes)))
        if not self.items:
            raise ValueError(f"no images under {data_dir}/images")

    def __call__(self, model, tmp_path: Path) -> dict:
        """AP of ``model`` (an EffYolo; its weights are exported, so any dtype/layout works)."""
        t0 = time.perf_counter()
        tmp_path = Path(tmp_path)
        tmp_path.parent.mkdir(parents=True, exist_ok=True)
        export_state(model, str(tmp_path), dtype="f32")
        try:
            ref = load_model(str(tmp_path))
        finally:
            os.remove(tmp_path)
        preds = []
        for rgb, _ in self.items:
            dets = detect(ref, rgb, (self.size, self.size), conf=self.conf, iou=self.iou)
            preds.append(ImageBoxes(
                np.array([[d["x1"], d["y1"], d["x2"], d["y2"]] for d in dets], np.float32).reshape(-1, 4),
                np.array([d["class_id"] for d in dets], np.int64),
                np.array([d["score"] for d in dets], np.float32)))
        res = evaluate(preds, [gt for _, gt in self.items]).summary()
        res["eval_seconds"] = time.perf_counter() - t0
        return res
