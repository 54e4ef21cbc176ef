"""The pseudo-label cache written by ``pseudo_label.py``.

A cache directory holds two files, always written together (atomically, by rename):

``manifest.json``
    ``settings`` (teachers with their file hashes and thresholds, fusion settings),
    ``roots`` (the resolved image folders) and ``images``: one entry per labelled image,
    in the same order as the arrays, with ``root`` (index into ``roots``), ``path``
    (relative to that root), ``width``/``height`` (after EXIF orientation), ``bytes``,
    ``mtime_ns`` and ``n`` (number of boxes).

``labels.npz``
    Concatenated boxes of all images; image ``i`` owns rows ``offsets[i]:offsets[i+1]``.

    ============== ========== ==============================================
    array          dtype      meaning
    ============== ========== ==============================================
    offsets        int64      (M + 1,) row offsets per image
    boxes          float32    (N, 4) x1, y1, x2, y2 normalised to [0, 1]
    classes        int16      (N,) COCO-80 class index
    scores         float32    (N,) fused score (weighted mean of teacher scores)
    teacher_scores float16    (N, T) each teacher's score, 0 = not found by it
    members        uint8      (N,) boxes merged into this one (all teachers)
    ============== ========== ==============================================

Training code should use :meth:`LabelCache.load` and :meth:`LabelCache.records` (or read
the two files directly; both are plain formats).  Re-labelling is needed for an image
when its size or modification time changes, or when the settings change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"
ARRAYS = "labels.npz"
FORMAT = "effyolo-pseudo-labels"
VERSION = 1
FIELDS = ("boxes", "classes", "scores", "teacher_scores", "members")
DTYPES = {"boxes": np.float32, "classes": np.int16, "scores": np.float32,
          "teacher_scores": np.float16, "members": np.uint8}


def file_key(path: Path) -> dict:
    st = path.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _dump_manifest(manifest: dict) -> str:
    """JSON with one line per top-level key and one line per image entry."""
    lines = []
    for k, v in manifest.items():
        if k == "images":
            body = ",\n".join(json.dumps(e, separators=(",", ":")) for e in v)
            lines.append(f'"images": [\n{body}\n]')
        else:
            lines.append(f"{json.dumps(k)}: {json.dumps(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


class LabelCache:
    """In-memory view of a cache: settings, image entries and their box arrays."""

    def __init__(self, settings: dict | None = None):
        self.settings = settings or {}
        self.entries: dict[str, dict] = {}   # absolute path -> entry (with "labels")

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def load(cls, cache_dir: Path) -> "LabelCache":
        """Load a cache; an absent cache gives an empty one."""
        cache = cls()
        mpath, apath = Path(cache_dir) / MANIFEST, Path(cache_dir) / ARRAYS
        if not mpath.exists() or not apath.exists():
            return cache
        manifest = json.loads(mpath.read_text())
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise ValueError(f"{mpath}: not a version-{VERSION} {FORMAT} manifest")
        cache.settings = manifest["settings"]
        with np.load(apath) as z:
            arrays = {k: z[k] for k in z.files}
        off = arrays["offsets"]
        roots = manifest["roots"]
        for i, e in enumerate(manifest["images"]):
            labels = {k: arrays[k][off[i]:off[i + 1]] for k in FIELDS}
            root = roots[e["root"]]
            entry = {k: v for k, v in e.items() if k != "root"}
            cache.entries[str(Path(root) / e["path"])] = {**entry, "root_path": root,
                                                           "labels": labels}
        return cache

    def get(self, image_path) -> dict | None:
        """Labels of one image: ``boxes`` (normalised xyxy), ``classes`` (int64), ``scores``,
        ``teacher_scores``, ``members``; None if the image is not in the cache."""
        e = self.entries.get(str(Path(image_path).resolve()))
        if e is None:
            return None
        lab = dict(e["labels"])
        lab["classes"] = lab["classes"].astype(np.int64)
        return lab

    def records(self):
        """Yield ``(absolute image path, entry)`` in cache order."""
        yield from self.entries.items()

    def num_boxes(self) -> int:
        """Boxes over all images."""
        return sum(e["n"] for e in self.entries.values())

    def class_counts(self, min_score: float = 0.0, num_classes: int = 80) -> np.ndarray:
        """Boxes per class index (``num_classes`` long) over all images, counting boxes whose
        fused score is at least ``min_score``; a class index outside the range is an error."""
        counts = np.zeros(num_classes, np.int64)
        for e in self.entries.values():
            lab = e["labels"]
            cls = lab["classes"][lab["scores"] >= min_score].astype(np.int64)
            bad = cls[(cls < 0) | (cls >= num_classes)]
            if bad.size:
                raise ValueError(f"class index {int(bad[0])} outside 0..{num_classes - 1}")
            counts += np.bincount(cls, minlength=num_classes)
        return counts

    def is_fresh(self, path: Path, key: dict) -> bool:
        e = self.entries.get(str(path))
        return e is not None and e["bytes"] == key["bytes"] and e["mtime_ns"] == key["mtime_ns"]

    # -- writing -------------------------------------------------------------------------
    def put(self, path: Path, root: Path, width: int, height: int, key: dict, labels: dict):
        labels = {k: np.asarray(labels[k], dtype=DTYPES[k]) for k in FIELDS}
        self.entries[str(path)] = {"root_path": str(root), "path": str(path.relative_to(root)),
                                   "width": int(width), "height": int(height), **key,
                                   "n": int(len(labels["scores"])), "labels": labels}

    def drop_missing(self) -> int:
        """Forget images whose file no longer exists; returns how many were dropped."""
        gone = [p for p in self.entries if not os.path.exists(p)]
        for p in gone:
            del self.entries[p]
        return len(gone)

    def save(self, cache_dir: Path, extra: dict | None = None):
        """Write manifest.json + labels.npz atomically (temporary files, then rename)."""
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        roots: list[str] = []
        images, chunks = [], {k: [] for k in FIELDS}
        offsets = [0]
        for e in self.entries.values():
            root = e["root_path"]
            if root not in roots:
                roots.append(root)
            images.append({"root": roots.index(root), "path": e["path"],
                           "width": e["width"], "height": e["height"], "bytes": e["bytes"],
                           "mtime_ns": e["mtime_ns"], "n": e["n"]})
            for k in FIELDS:
                chunks[k].append(e["labels"][k])
            offsets.append(offsets[-1] + e["n"])
        n_teachers = len(self.settings.get("teachers", [])) or 1
        arrays = {"offsets": np.asarray(offsets, np.int64)}
        for k in FIELDS:
            empty_shape = {"boxes": (0, 4), "teacher_scores": (0, n_teachers)}.get(k, (0,))
            arrays[k] = (np.concatenate(chunks[k]) if chunks[k]
                         else np.zeros(empty_shape, DTYPES[k]))
        manifest = {"format": FORMAT, "version": VERSION, "settings": self.settings,
                    "columns": {"boxes": "x1 y1 x2 y2 normalised", "teacher_scores":
                                [t["name"] for t in self.settings.get("teachers", [])]},
                    "num_images": len(images), "num_boxes": int(offsets[-1]),
                    **(extra or {}), "roots": roots, "images": images}
        tmp_a = cache_dir / (ARRAYS + ".tmp.npz")
        tmp_m = cache_dir / (MANIFEST + ".tmp")
        np.savez_compressed(tmp_a, **arrays)
        tmp_m.write_text(_dump_manifest(manifest))
        os.replace(tmp_a, cache_dir / ARRAYS)
        os.replace(tmp_m, cache_dir / MANIFEST)
