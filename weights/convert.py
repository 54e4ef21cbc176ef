"""Converts foreign checkpoints into an effyolo weight file.

Accepted inputs (PyTorch .pt/.pth state dicts, or safetensors):
- an EfficientFormer (V1) backbone in the official snap-research naming (`patch_embed.*`,
  `network.{k}.*`, `layer_scale_1`, detection `norm{0,2,4,6}`) or in timm's naming
  (`stem.*`, `stages.{i}.*`, `ls1.gamma`); classifier heads and the final norm are dropped;
- a YOLOv5-style checkpoint of this detector: `model.{i}.*` with the EfficientFormer backbone
  as layer 0 (either naming) and the yolov5s head topology after it (layer numbers below,
  overridable with --layer-map), anchors taken from the Detect layer;
- any mix: backbone from one file, neck/head from another (`--neck`).

Tensors the target model has but the inputs lack (e.g. the neck when converting a backbone
alone, or the tap GroupNorms of a classification checkpoint) keep the reference's default
initialisation and are listed; nothing is silently renamed twice.

    python convert.py --backbone efficientformer_l1.pth --variant l1 --out l1-backbone.safetensors
    python convert.py --backbone yolo_effformer.pt --neck yolo_effformer.pt --out detector.safetensors
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Dict, Tuple

import torch

from effyolo_ref.io import export_state
from effyolo_ref.model import STRIDES, DetectorConfig, EffYolo

# yolov5s head topology after a one-module backbone at index 0.
DEFAULT_LAYER_MAP = {
    1: "neck.sppf",
    2: "neck.lat5",
    5: "neck.td4",
    6: "neck.lat4",
    9: "neck.out3",
    10: "neck.down3",
    12: "neck.out4",
    13: "neck.down4",
    15: "neck.out5",
    16: "head",
}

# The official repo's `network` list alternates stages and downsampling embeddings.
SNAP_STAGE = {0: 0, 2: 1, 4: 2, 6: 3}
SNAP_EMBED = {1: 1, 3: 2, 5: 3}
SNAP_TAP_NORM = {"norm2": 0, "norm4": 1, "norm6": 2}
SNAP_STEM = {"0": "conv1", "1": "norm1", "3": "conv2", "4": "norm2"}
DROPPED = re.compile(r"^(head|head_dist|dist_head|norm|norm0)\.|attention_bias_idxs$|num_batches_tracked$")


def load_state(path: str) -> Dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    obj = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model", "state_dict", "ema"):
        if isinstance(obj, dict) and key in obj and obj[key] is not None:
            obj = obj[key]
            break
    if hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: no state dict found")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def backbone_name(name: str) -> str | None:
    """Maps one backbone key (snap or timm naming, without any `model.0.` prefix) to ours."""
    if DROPPED.search(name):
        return None
    m = re.match(r"patch_embed\.(\d)\.(.*)", name)
    if m:
        return f"backbone.stem.{SNAP_STEM[m.group(1)]}.{m.group(2)}"
    m = re.match(r"network\.(\d+)\.(.*)", name)
    if m:
        k, rest = int(m.group(1)), m.group(2)
        if k in SNAP_EMBED:
            rest = rest.replace("proj.", "conv.", 1)
            return f"backbone.stages.{SNAP_EMBED[k]}.downsample.{rest}"
        rest = rest.replace("layer_scale_1", "ls1.gamma").replace("layer_scale_2", "ls2.gamma")
        return f"backbone.stages.{SNAP_STAGE[k]}.blocks.{rest}"
    m = re.match(r"(norm[246])\.(.*)", name)
    if m:
        return f"backbone.norms.{SNAP_TAP_NORM[m.group(1)]}.{m.group(2)}"
    if name.startswith(("stem.", "stages.", "norms.")):
        return f"backbone.{name}"
    if name.startswith("backbone."):
        return name
    return None


def convert(sources: Dict[str, torch.Tensor], layer_map: Dict[int, str]) -> Tuple[Dict[str, torch.Tensor], list]:
    """Renames every tensor it can; returns (renamed, names it could not place)."""
    out, unplaced = {}, []
    for name, t in sources.items():
        target = None
        m = re.match(r"model\.(\d+)\.(.*)", name)
        if m:
            idx, rest = int(m.group(1)), m.group(2)
            if idx == 0:
                target = backbone_name(rest)
            elif idx in layer_map:
                target = f"{layer_map[idx]}.{rest}"
        else:
            target = backbone_name(name)
        if target is None:
            if not DROPPED.search(name.split("model.0.")[-1]):
                unplaced.append(name)
            continue
        out[target] = t
    return out, unplaced


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", required=True, help="EfficientFormer or YOLOv5-style checkpoint")
    ap.add_argument("--neck", help="YOLOv5-style checkpoint providing neck and head (default: --backbone)")
    ap.add_argument("--variant", default="l1", choices=["l1", "l3", "l7"])
    ap.add_argument("--mhsa-blocks", type=int)
    ap.add_argument("--width-multiple", type=float, default=0.25)
    ap.add_argument("--depth-multiple", type=float, default=0.33)
    ap.add_argument("--train-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                    help="input size the checkpoint was trained at (default: 32 x its bias grid)")
    ap.add_argument("--classes", help="text file with one class name per line (default: from the head's width)")
    ap.add_argument("--mean", type=float, nargs=3, default=(0.0, 0.0, 0.0))
    ap.add_argument("--std", type=float, nargs=3, default=(1.0, 1.0, 1.0))
    ap.add_argument("--layer-map", help='JSON {"1": "neck.sppf", ...} for other YOLOv5 layer numbers')
    ap.add_argument("--dtype", default="f16", choices=["f16", "f32"])
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    layer_map = {int(k): v for k, v in json.loads(args.layer_map).items()} if args.layer_map else DEFAULT_LAYER_MAP
    state = load_state(args.backbone)
    if args.neck and args.neck != args.backbone:
        state.update({k: v for k, v in load_state(args.neck).items() if not k.startswith("model.0.")})
    renamed, unplaced = convert(state, layer_map)

    anchors = None
    anchor_key = next((k for k in renamed if k == "head.anchors"), None)
    if anchor_key is not None:  # YOLOv5 stores anchors divided by the stride
        a = renamed.pop(anchor_key).float()
        anchors = tuple(tuple(tuple(float(v) * s for v in pair) for pair in lvl) for lvl, s in zip(a.tolist(), STRIDES))
    renamed.pop("head.stride", None)

    biases = [v for k, v in renamed.items() if k.endswith("token_mixer.attention_biases")]
    if args.train_size:
        train_size = tuple(args.train_size)
    elif biases:
        r = int(round(biases[0].shape[1] ** 0.5))
        train_size = (32 * r, 32 * r)
    else:
        train_size = (320, 320)
    if args.classes:
        names = [l.strip() for l in open(args.classes) if l.strip()]
    elif "head.m.0.weight" in renamed:
        names = [f"class{i}" for i in range(renamed["head.m.0.weight"].shape[0] // 3 - 5)]
    else:
        names = [f"class{i}" for i in range(80)]
    overrides = dict(width_multiple=args.width_multiple, depth_multiple=args.depth_multiple, train_size=train_size,
                     class_names=names, mean=tuple(args.mean), std=tuple(args.std))
    if args.mhsa_blocks is not None:
        overrides["mhsa_blocks"] = args.mhsa_blocks
    if anchors:
        overrides["anchors"] = anchors
    model = EffYolo(DetectorConfig.for_variant(args.variant, **overrides))

    target = model.state_dict()
    mismatched = [f"{k}: {tuple(v.shape)} vs {tuple(target[k].shape)}" for k, v in renamed.items()
                  if k in target and target[k].shape != v.shape]
    unknown = [k for k in renamed if k not in target]
    if mismatched or unknown or unplaced:
        sys.exit("cannot convert: " + "; ".join(
            part for part in (
                f"mis-shaped {mismatched}" if mismatched else "",
                f"no such tensor in the model {unknown}" if unknown else "",
                f"not understood {unplaced}" if unplaced else "",
            ) if part))
    missing = [k for k in target if k not in renamed and not k.endswith("num_batches_tracked")]
    model.load_state_dict(renamed, strict=False)
    export_state(model, args.out, args.dtype)
    print(f"wrote {args.out}: {len(renamed)} tensors converted, {len(missing)} left at initialisation")
    if missing:
        print("initialised, not converted: " + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""))


if __name__ == "__main__":
    main()
