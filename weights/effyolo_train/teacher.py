"""Dense outputs of the yolov5n teacher on an augmented training batch.

``yolov5n.onnx`` (dynamic batch/height/width) returns ``(B, N, 85)`` rows = cx, cy, w, h in
input pixels, objectness and 80 class probabilities (sigmoided), in the same row order as
``Detect.decode`` of the student (level, anchor, y, x) because both use YOLOv5's grid and
anchors.  Only these outputs are used as training targets; the teacher's internal features
and weights are not.
"""

from __future__ import annotations

import numpy as np

from effyolo_tools.teachers import make_session


class DenseTeacher:
    def __init__(self, path: str, threads: int = 1):
        self.session = make_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) uint8 RGB -> (B, N, 85) float32, input prepared exactly as the student's."""
        x = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)
        x *= np.float32(1 / 255.0)
        return self.session.run(None, {self.input_name: x})[0]
