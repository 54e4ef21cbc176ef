"""The converter maps snap-research, timm and YOLOv5-style names back onto the reference."""

import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convert import DEFAULT_LAYER_MAP, convert  # noqa: E402
from effyolo_ref.model import DetectorConfig, EffYolo  # noqa: E402
from effyolo_ref.synthetic import apply_synthetic  # noqa: E402


def reference_state():
    model = EffYolo(DetectorConfig.for_variant("l1"))
    apply_synthetic(model)
    return {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def to_snap(name: str) -> str:
    stem = {"conv1": "0", "norm1": "1", "conv2": "3", "norm2": "4"}
    m = re.match(r"backbone\.stem\.(\w+)\.(.*)", name)
    if m:
        return f"patch_embed.{stem[m.group(1)]}.{m.group(2)}"
    m = re.match(r"backbone\.stages\.(\d)\.downsample\.(conv|norm)\.(.*)", name)
    if m:
        return f"network.{2 * int(m.group(1)) - 1}.{'proj' if m.group(2) == 'conv' else 'norm'}.{m.group(3)}"
    m = re.match(r"backbone\.stages\.(\d)\.blocks\.(.*)", name)
    if m:
        rest = m.group(2).replace("ls1.gamma", "layer_scale_1").replace("ls2.gamma", "layer_scale_2")
        return f"network.{2 * int(m.group(1))}.{rest}"
    m = re.match(r"backbone\.norms\.(\d)\.(.*)", name)
    return f"norm{2 * int(m.group(1)) + 2}.{m.group(2)}"


def test_snap_and_timm_backbones_convert_exactly():
    ref = {k: v for k, v in reference_state().items() if k.startswith("backbone.")}
    for rename in (to_snap, lambda n: n[len("backbone."):]):
        foreign = {rename(k): v for k, v in ref.items()}
        foreign["head.weight"] = torch.zeros(1000, 448)  # classifier: dropped
        out, unplaced = convert(foreign, DEFAULT_LAYER_MAP)
        assert unplaced == []
        assert out.keys() == ref.keys()
        assert all(torch.equal(out[k], ref[k]) for k in ref)


def test_yolov5_layout_converts_exactly():
    ref = reference_state()
    inverse = {v: k for k, v in DEFAULT_LAYER_MAP.items()}
    foreign = {}
    for k, v in ref.items():
        if k.startswith("backbone."):
            foreign["model.0." + k[len("backbone."):]] = v
        else:
            prefix = next(p for p in sorted(inverse, key=len, reverse=True) if k.startswith(p + "."))
            foreign[f"model.{inverse[prefix]}.{k[len(prefix) + 1:]}"] = v
    out, unplaced = convert(foreign, DEFAULT_LAYER_MAP)
    assert unplaced == []
    assert out.keys() == ref.keys()


def test_unknown_keys_are_reported():
    _, unplaced = convert({"model.7.weird.weight": torch.zeros(1), "foo.bar": torch.zeros(1)}, DEFAULT_LAYER_MAP)
    assert sorted(unplaced) == ["foo.bar", "model.7.weird.weight"]
