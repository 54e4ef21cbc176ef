#!/usr/bin/env python3
"""Score teacher detectors (or a pseudo-label cache) against YOLO-txt ground truth.

The dataset folder has the ``images/`` + ``labels/`` layout (e.g. ``coco-dev``).  For
every requested teacher and input size this prints COCO-style AP50 and AP50-95 over all
classes with ground truth and for the person class alone (see
``effyolo_tools/metrics.py``).  Evaluation uses the usual low-threshold settings
(score >= 0.001, multi-label, up to 300 boxes before the 100-per-class COCO cap).

Examples::

    python teacher_eval.py --data ../../shared/data/coco-dev \\
        --teachers-dir ../../shared/data/teachers \\
        --run yolov5n:256 yolov5n:320 yolov5n:416 yolov5n:640 yolox_nano:416

    # the fused pseudo-labels of a cache made by pseudo_label.py over the same images
    python teacher_eval.py --data ../../shared/data/coco-dev --cache /path/to/cache --run

``--data`` and ``--teachers-dir`` default to ``<repository>/../shared/data/coco-dev`` and
``<repository>/../shared/data/teachers``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from effyolo_tools.cache import LabelCache
from effyolo_tools.images import iter_images, load_bgr
from effyolo_tools.labels import label_path_for, read_yolo_labels
from effyolo_tools.metrics import ImageBoxes, evaluate, size_recall_table
from effyolo_tools.teachers import YOLOX_PREPROC, load_teacher

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_dataset(data_dir: Path):
    """Return [(path, image, ImageBoxes ground truth)] for every image under images/."""
    items = []
    for _, path in iter_images([data_dir / "images"]):
        img = load_bgr(path)
        h, w = img.shape[:2]
        boxes, classes = read_yolo_labels(label_path_for(path), w, h)
        items.append((path, img, ImageBoxes(boxes, classes)))
    return items


def eval_teacher(name, size, items, args):
    kwargs = {"threads": args.threads}
    if name == "yolox_nano":
        kwargs["preproc"] = args.yolox_preproc
    teacher = load_teacher(name, args.teachers_dir, size=size, **kwargs)
    preds, t0 = [], time.perf_counter()
    for _, img, _ in items:
        d = teacher.detect(img)
        preds.append(ImageBoxes(d.boxes, d.classes, d.scores))
    dt = (time.perf_counter() - t0) / max(len(items), 1)
    gts = [gt for _, _, gt in items]
    res = evaluate(preds, gts)
    if args.breakdown:
        print(size_recall_table(preds, gts, f"{name}@{teacher.size}"))
    return {"teacher": name, "size": teacher.size, "ms_per_image": 1000 * dt, **res.summary()}


def eval_cache(cache_dir, items, min_score):
    cache = LabelCache.load(Path(cache_dir))
    preds, missing = [], 0
    for path, img, _ in items:
        rec = cache.get(path)
        if rec is None:
            missing += 1
            rec = {"boxes": np.zeros((0, 4), np.float32), "classes": np.zeros(0, np.int64),
                   "scores": np.zeros(0, np.float32)}
        h, w = img.shape[:2]
        keep = rec["scores"] >= min_score
        boxes = rec["boxes"][keep] * np.array([w, h, w, h], np.float32)
        preds.append(ImageBoxes(boxes, rec["classes"][keep], rec["scores"][keep]))
    res = evaluate(preds, [gt for _, _, gt in items])
    out = {"teacher": "fused-cache", "size": None, "ms_per_image": None, **res.summary()}
    if missing:
        out["images_missing_from_cache"] = missing
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA_ROOT / "coco-dev",
                   help="folder with images/ and labels/ (default: %(default)s)")
    p.add_argument("--teachers-dir", type=Path, default=DEFAULT_DATA_ROOT / "teachers",
                   help="folder with yolov5n.onnx and yolox_nano.onnx (default: %(default)s)")
    p.add_argument("--run", nargs="*", default=["yolov5n:640", "yolox_nano:416"],
                   metavar="TEACHER:SIZE", help="teacher runs to score (default: %(default)s)")
    p.add_argument("--cache", type=Path, help="also score the fused labels of this cache")
    p.add_argument("--cache-min-score", type=float, default=0.0,
                   help="ignore cached boxes below this fused score")
    p.add_argument("--yolox-preproc", default="bgr-raw-topleft", choices=YOLOX_PREPROC,
                   help="YOLOX input preprocessing (default: %(default)s, the official one)")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--breakdown", action="store_true",
                   help="also print each teacher's recall by object size")
    args = p.parse_args(argv)

    items = load_dataset(args.data)
    n_gt = sum(len(gt.classes) for _, _, gt in items)
    print(f"{len(items)} images, {n_gt} ground-truth boxes in {args.data}", file=sys.stderr)
    results = []
    for spec in args.run:
        name, _, size = spec.partition(":")
        results.append(eval_teacher(name, int(size) if size else None, items, args))
        print(json.dumps(results[-1]), file=sys.stderr)
    if args.cache:
        results.append(eval_cache(args.cache, items, args.cache_min_score))

    print("| source | size | AP50 | AP50-95 | person AP50 | person AP50-95 | ms/img |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        ms = f"{r['ms_per_image']:.0f}" if r["ms_per_image"] is not None else "-"
        print(f"| {r['teacher']} | {r['size'] or '-'} | {r['AP50']:.3f} | {r['AP50-95']:.3f} "
              f"| {r['person_AP50']:.3f} | {r['person_AP50-95']:.3f} | {ms} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
