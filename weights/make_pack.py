#!/usr/bin/env python3
"""Make a training pack (``effyolo_train/pack.py``): as many training images as fit a size
budget, shrunk and re-encoded as JPEG, with their pseudo-labels, for a training run on a
machine that receives only a few tens of MiB of files (see ``gpu.md``).

Images are drawn without replacement with probability growing with their repeat factor
(``--repeat-thresh``, as in ``train.py``), so images of rare classes come first; the rest
follow in random order until ``--budget-mib`` is reached.

    python make_pack.py --out ../.gpu/pack                 # the training pool, default labels
    python make_pack.py --out /tmp/p --budget-mib 2 ../../shared/data/pool
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from effyolo_tools.cache import LabelCache  # noqa: E402
from effyolo_tools.labels import read_class_names  # noqa: E402
from effyolo_train.data import ImagePool, repeat_factors, to_labels  # noqa: E402
from effyolo_train.pack import encode_image, write_pack  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
DEFAULT_WORKDIR = HERE.parent.parent / "cache" / "train"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="*",
                   help="image folders (default: the pool and every folder in <workdir>/images)")
    p.add_argument("--out", type=Path, required=True, help="pack folder to write")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p.add_argument("--labels", type=Path, help="label cache (default: <workdir>/labels)")
    p.add_argument("--classes", type=Path, default=DATA / "coco-classes.txt")
    p.add_argument("--eval-data", type=Path, default=DATA / "coco-dev",
                   help="refused as input (default: %(default)s)")
    p.add_argument("--budget-mib", type=float, default=28.0, help="size of images.bin at most")
    p.add_argument("--max-side", type=int, default=256, help="long side of the stored images")
    p.add_argument("--quality", type=int, default=70, help="JPEG quality")
    p.add_argument("--min-score", type=float, default=0.25, help="boxes kept (fused score)")
    p.add_argument("--repeat-thresh", type=float, default=0.05,
                   help="rare-class priority (repeat-factor threshold; 0 = uniform)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    folders = args.folders
    if not folders:
        folders = [str(DATA / "pool")]
        extra = args.workdir / "images"
        if extra.is_dir():
            folders += sorted(str(d) for d in extra.iterdir() if d.is_dir())
    labels_dir = args.labels or args.workdir / "labels"
    t0 = time.perf_counter()
    pool = ImagePool.load(folders, max_side=args.max_side,
                          exclude=[args.eval_data] if args.eval_data else [])
    cache = LabelCache.load(labels_dir)
    labels = [to_labels(cache.get(path), args.min_score, True) for path in pool.paths]
    print(f"{len(pool)} images, {sum(lab is not None for lab in labels)} labelled, "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)

    # weighted sampling without replacement (Efraimidis-Spirakis keys u^(1/w))
    weights = repeat_factors(labels, args.repeat_thresh)
    u = np.random.default_rng([args.seed, 4]).random(len(pool))
    order = np.argsort(-u ** (1.0 / weights), kind="stable")

    budget = int(args.budget_mib * 2**20)
    roots = [Path(f).resolve() for f in folders]
    names, jpegs, packed_labels, size = [], [], [], 0
    for i in order:
        jpeg = encode_image(pool.images[i], args.max_side, args.quality)
        if size + len(jpeg) > budget:
            break
        path = Path(pool.paths[i])
        root = next((r for r in roots if r == path or r in path.parents), path.parent)
        names.append(f"{root.name}/{path.relative_to(root)}")
        jpegs.append(jpeg)
        lab = labels[i]
        packed_labels.append(None if lab is None else
                             {"boxes": lab.boxes, "classes": lab.classes, "scores": lab.weights})
        size += len(jpeg)
    class_names = read_class_names(args.classes)
    meta = {"max_side": args.max_side, "quality": args.quality, "min_score": args.min_score,
            "class_names": class_names,
            "sources": dict(Counter(n.split("/")[0] for n in names)),
            "label_settings": cache.settings, "seed": args.seed,
            "repeat_thresh": args.repeat_thresh}
    meta = write_pack(args.out, names, jpegs, packed_labels, meta)
    boxes = sum(0 if lab is None else len(lab["scores"]) for lab in packed_labels)
    total = sum(f.stat().st_size for f in args.out.iterdir())
    print(json.dumps({"out": str(args.out), "images": meta["images"], "of": len(pool),
                      "boxes": boxes, "jpeg_mib": round(size / 2**20, 2),
                      "pack_mib": round(total / 2**20, 2),
                      "mean_kib_per_image": round(size / max(1, len(jpegs)) / 1024, 1),
                      "sources": meta["sources"]}, indent=1))


if __name__ == "__main__":
    main()
