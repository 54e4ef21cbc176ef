#!/usr/bin/env python3
"""Label unlabelled images with the fused boxes of the COCO teacher detectors.

For every image (jpg/jpeg/png/webp, searched recursively) under the given folders:

1. ``yolov5n.onnx`` at 640 (letterbox) and ``yolox_nano.onnx`` at 416 each predict boxes
   (score = objectness * class probability >= ``--teacher-conf``, multi-label,
   class-aware NMS, see ``effyolo_tools/teachers.py``);
2. the two box sets are fused with class-aware weighted box fusion at IoU
   ``--wbf-iou`` (``effyolo_tools/wbf.py``); every fused box keeps its fused score and
   each teacher's own score (0 when that teacher did not find it);
3. fused boxes with score >= ``--min-score`` are stored, so training can choose its own
   threshold or weight boxes by score later.

The cache (``labels.npz`` + ``manifest.json`` in ``--out``, format described in
``effyolo_tools/cache.py``) is updated incrementally: an image is labelled again only when
its size or modification time changed, or when any setting or teacher file changed (then
everything is relabelled).  Images from folders not named in this run stay in the cache;
images whose files were deleted are dropped.  Progress is saved every
``--save-every`` images, so an interrupted run resumes where it stopped.

Example (run heavy jobs at low priority on shared machines)::

    nice -n 10 python pseudo_label.py ../../shared/data/pool /data/more-images \\
        --out /data/cache/labels

``--teachers-dir`` defaults to ``<repository>/../shared/data/teachers``.

``--stats`` labels nothing: it prints what the cache in ``--out`` holds (images, boxes, and
boxes per class at fused score >= ``--stats-score``) as JSON, e.g.::

    python pseudo_label.py --out /data/cache/labels --stats --classes coco-classes.txt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from effyolo_tools.cache import MANIFEST, LabelCache, file_key
from effyolo_tools.images import iter_images, load_bgr
from effyolo_tools.labels import read_class_names
from effyolo_tools.teachers import YoloV5Teacher, YoloXTeacher
from effyolo_tools.wbf import weighted_boxes_fusion

DEFAULT_TEACHERS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "teachers"
LOADER = "cv2.imread IMREAD_COLOR (EXIF orientation applied), BGR uint8"


def build_teachers(args):
    common = {"conf_thres": args.teacher_conf, "multi_label": True, "max_det": 300,
              "threads": args.threads}
    return [YoloV5Teacher(args.teachers_dir / "yolov5n.onnx", size=args.yolov5_size,
                          iou_thres=0.6, **common),
            YoloXTeacher(args.teachers_dir / "yolox_nano.onnx", iou_thres=0.65, **common)]


def label_image(img: np.ndarray, teachers, args) -> dict:
    """Fused, normalised labels of one BGR image."""
    h, w = img.shape[:2]
    scale = np.array([w, h, w, h], np.float32)
    dets = [t.detect(img) for t in teachers]
    fused = weighted_boxes_fusion([d.boxes / scale for d in dets], [d.scores for d in dets],
                                  [d.classes for d in dets], weights=args.weights,
                                  iou_thr=args.wbf_iou)
    keep = fused.scores >= args.min_score
    return {"boxes": fused.boxes[keep].clip(0, 1), "classes": fused.classes[keep],
            "scores": fused.scores[keep], "teacher_scores": fused.detector_scores[keep],
            "members": np.minimum(fused.members[keep], 255)}


def cache_stats(cache_dir: Path, min_score: float, classes: Path | None) -> dict:
    """Images, boxes and per-class box counts (largest first) of a label cache."""
    if not (Path(cache_dir) / MANIFEST).exists():
        raise SystemExit(f"{cache_dir}: no label cache here ({MANIFEST} missing)")
    cache = LabelCache.load(cache_dir)
    names = read_class_names(classes) if classes is not None else None
    counts = cache.class_counts(min_score, len(names) if names else 80)
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    return {"images": len(cache.entries),
            "boxes": cache.num_boxes(),
            "min_score": min_score, "boxes_at_min_score": int(counts.sum()),
            "classes_under_100": int((counts < 100).sum()),
            "classes_under_20": int((counts < 20).sum()),
            "per_class": {(names[i] if names else str(i)): int(counts[i]) for i in order}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="*", type=Path, help="image folders (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="cache directory")
    p.add_argument("--teachers-dir", type=Path, default=DEFAULT_TEACHERS,
                   help="folder with yolov5n.onnx and yolox_nano.onnx (default: %(default)s)")
    p.add_argument("--yolov5-size", type=int, default=640, help="yolov5n input size")
    p.add_argument("--teacher-conf", type=float, default=0.01,
                   help="per-teacher score threshold before fusion (default: %(default)s)")
    p.add_argument("--wbf-iou", type=float, default=0.55, help="fusion IoU (default: %(default)s)")
    p.add_argument("--weights", type=float, nargs=2, default=[1.0, 1.0],
                   metavar=("YOLOV5", "YOLOX"), help="teacher weights in the fusion")
    p.add_argument("--min-score", type=float, default=0.02,
                   help="keep fused boxes with at least this score (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    p.add_argument("--save-every", type=int, default=250, help="checkpoint interval (images)")
    p.add_argument("--limit", type=int, default=0, help="label at most this many new images")
    p.add_argument("--stats", action="store_true",
                   help="print what the cache holds and label nothing")
    p.add_argument("--stats-score", type=float, default=0.25,
                   help="score threshold of the per-class counts (default: %(default)s)")
    p.add_argument("--classes", type=Path,
                   help="class names, one per line, for --stats (default: class indices)")
    args = p.parse_args(argv)
    if args.stats:
        print(json.dumps(cache_stats(args.out, args.stats_score, args.classes), indent=1))
        return
    if not args.folders:
        p.error("name at least one image folder (or use --stats)")

    teachers = build_teachers(args)
    settings = {"teachers": [t.describe() for t in teachers],
                "fusion": {"method": "weighted-boxes-fusion, class-aware",
                           "iou_thr": args.wbf_iou, "weights": list(args.weights),
                           "score": "weighted mean of per-teacher max scores",
                           "min_score": args.min_score},
                "image_loader": LOADER}
    cache = LabelCache.load(args.out)
    if cache.entries and json.dumps(cache.settings, sort_keys=True) != json.dumps(
            json.loads(json.dumps(settings)), sort_keys=True):
        print("settings or teachers changed: relabelling everything", file=sys.stderr)
        cache = LabelCache()
    cache.settings = settings
    dropped = cache.drop_missing()

    todo, fresh = [], 0
    for root, path in iter_images(args.folders):
        key = file_key(path)
        if cache.is_fresh(path, key):
            fresh += 1
        else:
            todo.append((root, path, key))
    if args.limit:
        todo = todo[:args.limit]
    print(f"{fresh} images up to date, {len(todo)} to label, {dropped} dropped",
          file=sys.stderr)

    done, failed, t0 = 0, 0, time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:   # decode the next image meanwhile
        def load(item):
            try:
                return load_bgr(item[1])
            except IOError as e:
                return e
        nxt = pool.submit(load, todo[0]) if todo else None
        for i, (root, path, key) in enumerate(todo):
            img = nxt.result()
            nxt = pool.submit(load, todo[i + 1]) if i + 1 < len(todo) else None
            if isinstance(img, Exception):
                print(f"skipping {path}: {img}", file=sys.stderr)
                failed += 1
                continue
            cache.put(path, root, img.shape[1], img.shape[0], key,
                      label_image(img, teachers, args))
            done += 1
            if done % args.save_every == 0:
                cache.save(args.out)
                rate = (time.perf_counter() - t0) / done
                print(f"{done}/{len(todo)} labelled, {rate:.3f} s/image", file=sys.stderr)
    elapsed = time.perf_counter() - t0
    stats = {"last_run": {"labelled": done, "reused": fresh, "failed": failed,
                          "dropped": dropped, "seconds": round(elapsed, 1),
                          "seconds_per_image": round(elapsed / max(done, 1), 4)}}
    cache.save(args.out, extra=stats)
    print(json.dumps({**stats["last_run"], "images_in_cache": len(cache.entries),
                      "boxes_in_cache": cache.num_boxes()}))


if __name__ == "__main__":
    main()
