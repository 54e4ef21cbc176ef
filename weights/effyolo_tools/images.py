"""Image discovery and loading.

Every tool (labelling, evaluation, training) must load images the same way so that
box coordinates mean the same thing everywhere:

* decoded with OpenCV (``cv2.imread`` with ``IMREAD_COLOR``), which applies the
  EXIF orientation tag, so ``width``/``height`` are those of the *displayed* image;
* colour order BGR, dtype uint8, shape (H, W, 3); grey and alpha inputs become 3-channel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def iter_images(folders: Iterable[str | os.PathLike]) -> Iterator[tuple[Path, Path]]:
    """Yield ``(root, path)`` for every image under each folder, recursively.

    Files are matched by suffix (case-insensitive), hidden files and folders are
    skipped, and the order is deterministic (sorted per folder).  ``root`` is the
    resolved folder the image was found under.
    """
    for folder in folders:
        root = Path(folder).resolve()
        if root.is_file():
            if root.suffix.lower() in IMAGE_SUFFIXES:
                yield root.parent, root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    yield root, Path(dirpath) / name


def load_bgr(path: str | os.PathLike) -> np.ndarray:
    """Load an image as a BGR uint8 (H, W, 3) array; raise ``IOError`` if unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise IOError(f"cannot decode image: {path}")
    return img
