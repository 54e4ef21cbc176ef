"""Writes the parity fixtures the Rust tests compare against (crate/tests/fixtures/).

Weights are synthetic (effyolo_ref.synthetic: a hash of name and index), so only the model
configurations, sampled activations, summary statistics and detections are stored.

    python make_fixtures.py --out ../crate/tests/fixtures --image ../../shared/data/coco-dev/images/<name>.jpg
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os

import numpy as np
import torch
from PIL import Image

from effyolo_ref.model import DetectorConfig, EffYolo
from effyolo_ref.pipeline import Letterbox, detect, non_max_suppression, scale_boxes
from effyolo_ref.synthetic import apply_synthetic, synthetic_input

SAMPLES = 192

CASES = [
    # name, config overrides, sizes (h, w)
    ("l1", dict(variant="l1"), [(224, 224), (320, 320), (256, 384)]),
    ("l1_mhsa0", dict(variant="l1", mhsa_blocks=0), [(320, 320)]),
    ("l1_mhsa4", dict(variant="l1", mhsa_blocks=4), [(320, 320)]),
    # L3 and L7 at reduced widths (structure checks), other neck multiples, class counts and
    # a non-square trained bias grid.
    ("l3_small", dict(variant="l3", widths=(32, 64, 160, 256), width_multiple=0.5, train_size=(256, 384),
                      class_names=["a", "b", "c"]), [(224, 224), (320, 320), (256, 384)]),
    ("l7_small", dict(variant="l7", widths=(48, 96, 192, 384), depth_multiple=0.67, train_size=(224, 224),
                      class_names=[f"k{i}" for i in range(20)]), [(224, 224), (320, 320), (256, 384)]),
]


def make_model(overrides) -> EffYolo:
    overrides = dict(overrides)
    variant = overrides.pop("variant")
    overrides.setdefault("class_names", [f"class{i}" for i in range(80)])
    cfg = DetectorConfig.for_variant(variant, **overrides)
    model = EffYolo(cfg).eval()
    apply_synthetic(model)
    return model


def weights_digest(model: EffYolo) -> str:
    """sha256 over (name, f32 little-endian bytes) of every exported tensor, in name order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if name.endswith("num_batches_tracked"):
            continue
        h.update(name.encode())
        h.update(t.detach().float().numpy().astype("<f4").tobytes())
    return h.hexdigest()


def sample(name: str, t: torch.Tensor, rng) -> dict:
    a = t.detach()[0].float().numpy()
    flat = a.reshape(-1)
    idx = np.sort(rng.choice(flat.size, size=min(SAMPLES, flat.size), replace=False))
    return dict(
        shape=list(a.shape),
        indices=[int(i) for i in idx],
        values=[float(v) for v in flat[idx]],
        mean=float(flat.astype(np.float64).mean()),
        abs_mean=float(np.abs(flat.astype(np.float64)).mean()),
        abs_max=float(np.abs(flat).max()),
    )


def pick_threshold(scores: np.ndarray, target: int = 40) -> float:
    """A confidence threshold near the `target`-th best score, in the widest gap around it, so
    float noise far below the gap cannot move a box across the threshold."""
    s = np.sort(scores)[::-1]
    lo, hi = max(target // 2, 1), min(target * 2, len(s) - 1)
    gaps = s[lo - 1 : hi - 1] - s[lo:hi]
    k = lo + int(np.argmax(gaps))
    return float((s[k - 1] + s[k]) / 2), float(s[k - 1] - s[k])


def candidate_scores(model, raw) -> np.ndarray:
    pred = model.head.decode(raw)[0].numpy()
    return (pred[:, 5:] * pred[:, 4:5]).max(1)


@torch.no_grad()
def stage_case(model: EffYolo, size, seed: int) -> dict:
    x = torch.from_numpy(synthetic_input((3, *size)))[None]
    trace = {}
    raw = model(x, trace)
    rng = np.random.default_rng(seed)
    acts = {k: sample(k, v, rng) for k, v in trace.items()}
    conf, gap = pick_threshold(candidate_scores(model, raw))
    pred = model.head.decode(raw)[0].numpy()
    h, w = size
    det = scale_boxes(non_max_suppression(pred, conf, 0.45, 300), Letterbox(1.0, 0, 0, w, h, w, h))
    return dict(size=list(size), activations=acts, conf=conf, conf_gap=gap, iou=0.45,
                detections=[[float(v) for v in d] for d in det])


@torch.no_grad()
def image_case(model: EffYolo, image_path: str, size) -> dict:
    rgb = np.asarray(Image.open(image_path).convert("RGB"))
    from effyolo_ref.pipeline import letterbox

    x, _ = letterbox(rgb, size)
    conf, gap = pick_threshold(candidate_scores(model, model(torch.from_numpy(x)[None])), target=30)
    dets = detect(model, rgb, size, conf=conf, iou=0.45)
    return dict(image=os.path.basename(image_path), size=list(size), conf=conf, conf_gap=gap, iou=0.45,
                width=int(rgb.shape[1]), height=int(rgb.shape[0]), detections=dets)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--image", required=True, help="a coco-dev image for the end-to-end CLI case")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    for ci, (name, overrides, sizes) in enumerate(CASES):
        model = make_model(overrides)
        doc = dict(name=name, metadata=model.cfg.metadata(), weights_sha256=weights_digest(model),
                   cases=[stage_case(model, s, seed=1000 * ci + si) for si, s in enumerate(sizes)])
        if name == "l1":
            doc["image_case"] = image_case(model, args.image, (320, 320))
        path = os.path.join(args.out, f"{name}.json")
        with open(path, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
        print(f"{path}: {os.path.getsize(path) / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
