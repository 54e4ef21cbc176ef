"""A training pack: images and pseudo-labels in three files, small enough to carry.

A pack holds a subset of the training pool, each image shrunk to a long side of at most
``max_side`` and re-encoded as JPEG, with its pseudo-label boxes (those with fused score >=
``min_score``). It is what a training run on another machine (a GPU lent for a few minutes,
with a limit on the files it receives) reads instead of the image folders and the label
cache, through ``train.py --pack DIR``.

Files:

``pack.json``
    ``format``, ``version``, ``images`` (count), ``max_side``, ``quality``, ``min_score``,
    ``class_names``, ``sources`` (images per source folder), ``label_settings`` (the label
    cache's settings: teachers and fusion).

``images.bin``
    The JPEG files, concatenated.

``index.npz``
    ============= ======== ===================================================
    array         dtype    meaning
    ============= ======== ===================================================
    names         str      (M,) source path of each image, relative to its folder
    jpeg_offsets  int64    (M + 1,) byte range of image ``i`` in images.bin
    labelled      bool     (M,) the image has pseudo-labels (possibly none)
    box_offsets   int64    (M + 1,) rows of image ``i`` in the box arrays
    boxes         float16  (N, 4) x1, y1, x2, y2 normalised to [0, 1]
    classes       uint8    (N,) COCO-80 class index
    scores        float16  (N,) fused score
    ============= ======== ===================================================
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

FORMAT = "effyolo-train-pack"
VERSION = 1
META, BLOB, INDEX = "pack.json", "images.bin", "index.npz"


def encode_image(rgb: np.ndarray, max_side: int, quality: int) -> bytes:
    """RGB uint8 -> JPEG bytes, long side shrunk to at most ``max_side`` (area filter)."""
    h, w = rgb.shape[:2]
    if max(h, w) > max_side:
        r = max_side / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * r)), max(1, round(h * r))),
                         interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def write_pack(out_dir: Path, names: Sequence[str], jpegs: Sequence[bytes],
               labels: Sequence[Optional[dict]], meta: dict) -> dict:
    """Write a pack. ``labels[i]`` is None (unlabelled) or a dict with ``boxes`` (n, 4)
    normalised xyxy, ``classes`` (n,) and ``scores`` (n,), already filtered by score."""
    if not (len(names) == len(jpegs) == len(labels)):
        raise ValueError("names, jpegs and labels differ in length")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jpeg_offsets = np.zeros(len(jpegs) + 1, np.int64)
    np.cumsum([len(j) for j in jpegs], out=jpeg_offsets[1:])
    counts = [0 if lab is None else len(lab["scores"]) for lab in labels]
    box_offsets = np.zeros(len(labels) + 1, np.int64)
    np.cumsum(counts, out=box_offsets[1:])
    present = [lab for lab in labels if lab is not None and len(lab["scores"])]

    def cat(key, dtype, shape):
        if not present:
            return np.zeros(shape, dtype)
        return np.concatenate([np.asarray(lab[key]).reshape((-1,) + shape[1:]) for lab in present]).astype(dtype)

    classes = cat("classes", np.int64, (0,))
    if classes.size and (classes.min() < 0 or classes.max() > 255):
        raise ValueError("class index outside 0..255")
    arrays = {
        "names": np.asarray(list(names), dtype=str),
        "jpeg_offsets": jpeg_offsets,
        "labelled": np.asarray([lab is not None for lab in labels], bool),
        "box_offsets": box_offsets,
        "boxes": cat("boxes", np.float16, (0, 4)),
        "classes": classes.astype(np.uint8),
        "scores": cat("scores", np.float16, (0,)),
    }
    meta = {"format": FORMAT, "version": VERSION, "images": len(jpegs), **meta}
    tmp = {name: out_dir / (name + ".tmp") for name in (META, BLOB, INDEX)}
    with open(tmp[BLOB], "wb") as f:
        for j in jpegs:
            f.write(j)
    with open(tmp[INDEX], "wb") as f:
        np.savez_compressed(f, **arrays)
    tmp[META].write_text(json.dumps(meta, indent=1) + "\n")
    for name, path in tmp.items():
        os.replace(path, out_dir / name)
    return meta


class Pack:
    """A pack read back: metadata, decoded images (RGB uint8) and labels."""

    def __init__(self, pack_dir: Path):
        pack_dir = Path(pack_dir)
        try:
            self.meta = json.loads((pack_dir / META).read_text())
        except FileNotFoundError:
            raise ValueError(f"{pack_dir} is not a training pack: no {META}") from None
        if self.meta.get("format") != FORMAT or self.meta.get("version") != VERSION:
            raise ValueError(f"{pack_dir / META}: not a version-{VERSION} {FORMAT}")
        with np.load(pack_dir / INDEX) as z:
            self.arrays = {k: z[k] for k in z.files}
        self.blob = (pack_dir / BLOB).read_bytes()
        off = self.arrays["jpeg_offsets"]
        n = len(self.arrays["names"])
        if len(off) != n + 1 or off[-1] != len(self.blob) or n != self.meta["images"]:
            raise ValueError(f"{pack_dir}: index and {BLOB} disagree (truncated pack?)")
        self.dir = pack_dir

    def __len__(self) -> int:
        return len(self.arrays["names"])

    @property
    def names(self) -> List[str]:
        return [str(s) for s in self.arrays["names"]]

    def fingerprint(self) -> str:
        return hashlib.sha256((self.dir / INDEX).read_bytes()).hexdigest()[:16]

    def decode(self, workers: int = 4) -> List[np.ndarray]:
        off = self.arrays["jpeg_offsets"]
        view = memoryview(self.blob)

        def one(i):
            buf = np.frombuffer(view[off[i]:off[i + 1]], np.uint8)
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f"{self.dir}: image {i} ({self.names[i]}) does not decode")
            return np.ascontiguousarray(img[:, :, ::-1])

        with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
            return list(ex.map(one, range(len(self))))

    def labels(self, i: int) -> Optional[dict]:
        """Boxes (normalised xyxy, float32), classes (int64), scores (float32) of image i."""
        if not self.arrays["labelled"][i]:
            return None
        a, b = self.arrays["box_offsets"][i:i + 2]
        return {"boxes": self.arrays["boxes"][a:b].astype(np.float32),
                "classes": self.arrays["classes"][a:b].astype(np.int64),
                "scores": self.arrays["scores"][a:b].astype(np.float32)}
