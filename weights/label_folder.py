#!/usr/bin/env python3
"""Turn images of a pseudo-label cache into an evaluation folder (``images/`` + ``labels/``).

The labels are the cached fused teacher boxes with score >= ``--min-score`` (the training
threshold), written in YOLO txt format, so ``eval`` can score a checkpoint against its own
training targets.  Scoring it on a sample of training images and on images it never trained
on (labelled the same way by ``pseudo_label.py``) separates what the model has not fitted
from what it does not generalise::

    python label_folder.py --cache ../../cache/train/labels --sample 400 --out /tmp/fit-train
    python pseudo_label.py ../../shared/data/coco-dev/images --out /tmp/dev-cache
    python label_folder.py --cache /tmp/dev-cache --out /tmp/fit-dev
    python eval --data /tmp/fit-train --no-teacher     # and --data /tmp/fit-dev

Images are copied (renamed ``0000.jpg``, ``0001.png``, ...); ``sources.txt`` maps each one
back to its original path.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

from effyolo_tools.cache import LabelCache
from effyolo_tools.labels import write_yolo_labels


def build(cache: LabelCache, out: Path, sample: int = 0, seed: int = 0,
          min_score: float = 0.25) -> tuple[int, int]:
    """Write ``out/images``, ``out/labels`` and ``out/sources.txt``; returns the number of
    images and of boxes written."""
    paths = sorted(p for p, _ in cache.records())
    if sample and sample < len(paths):
        random.Random(seed).shuffle(paths)
        paths = sorted(paths[:sample])
    if (out / "images").exists() or (out / "labels").exists():
        raise SystemExit(f"{out} already holds images/ or labels/: choose a new --out")
    (out / "images").mkdir(parents=True)
    boxes_written = 0
    sources = []
    for i, src in enumerate(paths):
        lab = cache.get(src)
        keep = lab["scores"] >= min_score
        name = f"{i:04d}{Path(src).suffix.lower()}"
        shutil.copyfile(src, out / "images" / name)
        write_yolo_labels(out / "labels" / Path(name).with_suffix(".txt"),
                          lab["boxes"][keep], lab["classes"][keep])
        boxes_written += int(keep.sum())
        sources.append(f"{name}\t{src}")
    (out / "sources.txt").write_text("".join(s + "\n" for s in sources))
    return len(paths), boxes_written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, required=True, help="pseudo-label cache directory")
    p.add_argument("--out", type=Path, required=True, help="new folder to write")
    p.add_argument("--sample", type=int, default=0, help="take this many images at random (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-score", type=float, default=0.25, help="fused-score threshold")
    args = p.parse_args(argv)
    cache = LabelCache.load(args.cache)
    if not cache.entries:
        raise SystemExit(f"{args.cache}: no pseudo-label cache there (or it is empty)")
    images, n = build(cache, args.out, args.sample, args.seed, args.min_score)
    print(f"{args.out}: {images} images, {n} boxes with score >= {args.min_score}")


if __name__ == "__main__":
    sys.exit(main())
