"""Ground-truth labels in YOLO txt format (``images/`` + ``labels/`` layout).

``<root>/images/a/b.jpg`` is labelled by ``<root>/labels/a/b.txt``; each line is
``class cx cy w h`` with coordinates normalised to the image size.  A missing or empty
file means "no objects".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .boxes import xywh_to_xyxy


def read_class_names(path: Path) -> list[str]:
    """Class names from a text file, one per line (blank lines skipped)."""
    return [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]


def label_path_for(image_path: Path) -> Path:
    """Map ``.../images/x/y.jpg`` to ``.../labels/x/y.txt`` (last ``images`` component)."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    raise ValueError(f"{image_path} is not under an 'images' folder")


def read_yolo_labels(path: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (boxes xyxy in pixels (N, 4) float32, classes (N,) int64)."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            vals = line.split()
            if len(vals) >= 5:
                rows.append([float(v) for v in vals[:5]])
    if not rows:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    a = np.asarray(rows, dtype=np.float32)
    boxes = xywh_to_xyxy(a[:, 1:5]) * np.array([width, height, width, height], np.float32)
    return boxes.astype(np.float32), a[:, 0].astype(np.int64)


def write_yolo_labels(path: Path, boxes: np.ndarray, classes: np.ndarray):
    """Write normalised xyxy ``boxes`` (N, 4) and ``classes`` (N,) as a YOLO txt file
    (``class cx cy w h``), the inverse of :func:`read_yolo_labels`."""
    lines = []
    for (x1, y1, x2, y2), c in zip(np.asarray(boxes, np.float64), np.asarray(classes)):
        lines.append(f"{int(c)} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} "
                     f"{x2 - x1:.6f} {y2 - y1:.6f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
