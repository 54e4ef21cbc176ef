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


class TorchTeacher:
    """The same teacher as a PyTorch module (converted from the ONNX graph by ``onnx2torch``),
    so that it runs on the training device in the training loop: on a GPU the CPU then only
    builds batches. Its outputs match onnxruntime's to float rounding (``tests/test_teacher.py``).
    """

    def __init__(self, path: str, device):
        import onnx
        import torch
        from onnx2torch import convert

        self.torch = torch
        self.module = convert(onnx.load(path)).eval().to(device)
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.device = device

    def __call__(self, x):
        """(B, 3, S, S) float tensor in [0, 1] on the device -> (B, N, 85) float32 tensor."""
        with self.torch.no_grad(), self.torch.autocast(self.torch.device(self.device).type, enabled=False):
            out = self.module(x.float().contiguous())
        return out[0] if isinstance(out, (list, tuple)) else out
