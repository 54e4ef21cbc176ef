"""PyTorch reference of the effyolo detector: EfficientFormer (V1) L1/L3/L7 backbone with the
YOLOv5 v7.0 neck (SPPF, C3, PAN) and Detect head.

Sources followed: snap-research/EfficientFormer `models/efficientformer.py` and
`detection/backbone.py` (GroupNorm(1, C) on every tapped stage), timm
`timm/models/efficientformer.py` (parameter names), ultralytics/yolov5 v7.0 `models/common.py`
and `models/yolo.py`. The state-dict names of this module are the keys of the safetensors
weight files the Rust crate loads, so renaming anything here is a format change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

VARIANTS = {
    "l1": dict(widths=(48, 96, 224, 448), depths=(3, 2, 6, 4), mhsa_blocks=1),
    "l3": dict(widths=(64, 128, 320, 512), depths=(4, 4, 12, 6), mhsa_blocks=4),
    "l7": dict(widths=(96, 192, 384, 768), depths=(6, 6, 18, 8), mhsa_blocks=8),
}

DEFAULT_ANCHORS = (
    ((10.0, 13.0), (16.0, 30.0), (33.0, 23.0)),
    ((30.0, 61.0), (62.0, 45.0), (59.0, 119.0)),
    ((116.0, 90.0), (156.0, 198.0), (373.0, 326.0)),
)
STRIDES = (8, 16, 32)

# Fixed by the architecture, not stored in the weight file.
BACKBONE_BN_EPS = 1e-5
NECK_BN_EPS = 1e-3
LAYER_NORM_EPS = 1e-5
GROUP_NORM_EPS = 1e-5
KEY_DIM = 32
NUM_HEADS = 8
ATTN_RATIO = 4


@dataclass
class DetectorConfig:
    variant: str = "l1"
    widths: Tuple[int, int, int, int] = (48, 96, 224, 448)
    depths: Tuple[int, int, int, int] = (3, 2, 6, 4)
    mhsa_blocks: int = 1
    width_multiple: float = 0.25
    depth_multiple: float = 0.33
    train_size: Tuple[int, int] = (320, 320)  # (height, width): the attention-bias grid is train_size / 32
    class_names: List[str] = field(default_factory=lambda: [f"class{i}" for i in range(80)])
    anchors: Tuple = DEFAULT_ANCHORS
    mean: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: Tuple[float, float, float] = (1.0, 1.0, 1.0)

    @classmethod
    def for_variant(cls, variant: str, **overrides) -> "DetectorConfig":
        v = VARIANTS[variant]
        kw = dict(variant=variant, widths=v["widths"], depths=v["depths"], mhsa_blocks=v["mhsa_blocks"])
        kw.update(overrides)
        return cls(**kw)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def validate(self) -> None:
        if not 0 <= self.mhsa_blocks <= self.depths[3]:
            raise ValueError(f"mhsa_blocks must be in 0..={self.depths[3]} (stage 4 depth), got {self.mhsa_blocks}")
        if self.train_size[0] % 32 or self.train_size[1] % 32:
            raise ValueError(f"train_size must be multiples of 32, got {self.train_size}")

    def metadata(self) -> Dict[str, str]:
        """The safetensors `__metadata__` (all values are strings; JSON where structured)."""
        import json

        return {
            "format": "effyolo",
            "format_version": "1",
            "variant": self.variant,
            "widths": json.dumps(list(self.widths)),
            "depths": json.dumps(list(self.depths)),
            "mhsa_blocks": str(self.mhsa_blocks),
            "width_multiple": repr(float(self.width_multiple)),
            "depth_multiple": repr(float(self.depth_multiple)),
            "train_size": json.dumps(list(self.train_size)),
            "class_names": json.dumps(list(self.class_names)),
            "anchors": json.dumps([[list(map(float, a)) for a in lvl] for lvl in self.anchors]),
            "mean": json.dumps([float(x) for x in self.mean]),
            "std": json.dumps([float(x) for x in self.std]),
        }

    @classmethod
    def from_metadata(cls, md: Dict[str, str]) -> "DetectorConfig":
        import json

        if md.get("format") != "effyolo" or md.get("format_version") != "1":
            raise ValueError("not an effyolo v1 weight file")
        return cls(
            variant=md["variant"],
            widths=tuple(json.loads(md["widths"])),
            depths=tuple(json.loads(md["depths"])),
            mhsa_blocks=int(md["mhsa_blocks"]),
            width_multiple=float(md["width_multiple"]),
            depth_multiple=float(md["depth_multiple"]),
            train_size=tuple(json.loads(md["train_size"])),
            class_names=json.loads(md["class_names"]),
            anchors=tuple(tuple(tuple(a) for a in lvl) for lvl in json.loads(md["anchors"])),
            mean=tuple(json.loads(md["mean"])),
            std=tuple(json.loads(md["std"])),
        )


def make_divisible(x: float, divisor: int = 8) -> int:
    return int(math.ceil(x / divisor) * divisor)


def neck_width(channels: int, width_multiple: float) -> int:
    return make_divisible(channels * width_multiple, 8)


def neck_depth(n: int, depth_multiple: float) -> int:
    return max(round(n * depth_multiple), 1)


# ----------------------------------------------------------------------------------------
# EfficientFormer backbone (timm naming)


class Stem4(nn.Module):
    def __init__(self, in_chs: int, out_chs: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs // 2, 3, 2, 1)
        self.norm1 = nn.BatchNorm2d(out_chs // 2, eps=BACKBONE_BN_EPS)
        self.conv2 = nn.Conv2d(out_chs // 2, out_chs, 3, 2, 1)
        self.norm2 = nn.BatchNorm2d(out_chs, eps=BACKBONE_BN_EPS)

    def forward(self, x):
        x = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(x)))


class Downsample(nn.Module):
    def __init__(self, in_chs: int, out_chs: int):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 3, 2, 1)
        self.norm = nn.BatchNorm2d(out_chs, eps=BACKBONE_BN_EPS)

    def forward(self, x):
        return self.norm(self.conv(x))


class LayerScale(nn.Module):
    """Per-channel scale on the last dim (tokens) or on dim 1 (4-D maps)."""

    def __init__(self, dim: int, init: float = 1e-5, channels_first: bool = False):
        super().__init__()
        self.gamma = nn.Parameter(init * torch.ones(dim))
        self.channels_first = channels_first

    def forward(self, x):
        return x * (self.gamma.view(1, -1, 1, 1) if self.channels_first else self.gamma)


class ConvMlpWithNorm(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.norm1 = nn.BatchNorm2d(hidden, eps=BACKBONE_BN_EPS)
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.norm2 = nn.BatchNorm2d(dim, eps=BACKBONE_BN_EPS)

    def forward(self, x):
        x = F.gelu(self.norm1(self.fc1(x)))
        return self.norm2(self.fc2(x))


class Meta4D(nn.Module):
    """Pooling token mixer block on (B, C, H, W)."""

    def __init__(self, dim: int, mlp_ratio: int = 4):
        super().__init__()
        self.mlp = ConvMlpWithNorm(dim, dim * mlp_ratio)
        self.ls1 = LayerScale(dim, channels_first=True)
        self.ls2 = LayerScale(dim, channels_first=True)

    def forward(self, x):
        pooled = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        x = x + self.ls1(pooled - x)
        return x + self.ls2(self.mlp(x))


def attention_bias_index(grid: Tuple[int, int]) -> torch.Tensor:
    """idx(i, j) = |dy| * W + |dx| for tokens i, j of an H x W grid in raster order."""
    h, w = grid
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = (ys[:, None] - ys[None, :]).abs()
    dx = (xs[:, None] - xs[None, :]).abs()
    return dy * w + dx


def resample_attention_bias(table: torch.Tensor, src: Tuple[int, int], dst: Tuple[int, int]) -> torch.Tensor:
    """Resizes a (heads, Hs*Ws) table over (|dy|, |dx|) to (heads, Hd*Wd), bilinear, align_corners=False."""
    if tuple(src) == tuple(dst):
        return table
    heads = table.shape[0]
    t = table.reshape(1, heads, src[0], src[1])
    t = F.interpolate(t, size=tuple(dst), mode="bilinear", align_corners=False)
    return t.reshape(heads, dst[0] * dst[1])


class Attention(nn.Module):
    def __init__(self, dim: int, train_grid: Tuple[int, int]):
        super().__init__()
        self.num_heads = NUM_HEADS
        self.key_dim = KEY_DIM
        self.val_dim = KEY_DIM * ATTN_RATIO
        self.scale = KEY_DIM ** -0.5
        self.qkv = nn.Linear(dim, NUM_HEADS * (2 * KEY_DIM + self.val_dim))
        self.proj = nn.Linear(NUM_HEADS * self.val_dim, dim)
        self.train_grid = tuple(train_grid)
        self.attention_biases = nn.Parameter(torch.zeros(NUM_HEADS, train_grid[0] * train_grid[1]))

    def bias(self, grid: Tuple[int, int]) -> torch.Tensor:
        table = resample_attention_bias(self.attention_biases, self.train_grid, grid)
        return table[:, attention_bias_index(grid)]  # (heads, N, N)

    def forward(self, x, grid: Tuple[int, int]):
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, self.num_heads, -1).permute(0, 2, 1, 3)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.val_dim], dim=3)
        attn = (q @ k.transpose(-2, -1)) * self.scale + self.bias(grid)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, self.num_heads * self.val_dim)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Meta3D(nn.Module):
    """MHSA token mixer block on (B, N, C)."""

    def __init__(self, dim: int, train_grid: Tuple[int, int], mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.token_mixer = Attention(dim, train_grid)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, dim * mlp_ratio)
        self.ls2 = LayerScale(dim)

    def forward(self, x, grid):
        x = x + self.ls1(self.token_mixer(self.norm1(x), grid))
        return x + self.ls2(self.mlp(self.norm2(x)))


class Flat(nn.Module):
    """(B, C, H, W) -> (B, H*W, C); parameter-free, kept as a block so indices match timm."""

    def forward(self, x):
        return x.flatten(2).transpose(1, 2)


class Stage(nn.Module):
    def __init__(self, in_chs: int, dim: int, depth: int, mhsa_blocks: int, downsample: bool, train_grid):
        super().__init__()
        self.downsample = Downsample(in_chs, dim) if downsample else None
        blocks: List[nn.Module] = [Meta4D(dim) for _ in range(depth - mhsa_blocks)]
        if mhsa_blocks > 0:
            blocks.append(Flat())
            blocks += [Meta3D(dim, train_grid) for _ in range(mhsa_blocks)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        if self.downsample is not None:
            x = self.downsample(x)
        grid = (x.shape[2], x.shape[3])
        for blk in self.blocks:
            x = blk(x, grid) if isinstance(blk, Meta3D) else blk(x)
        if x.dim() == 3:  # back to a map for the neck
            x = x.transpose(1, 2).reshape(x.shape[0], -1, grid[0], grid[1])
        return x


class EfficientFormerBackbone(nn.Module):
    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        w, d = cfg.widths, cfg.depths
        train_grid = (cfg.train_size[0] // 32, cfg.train_size[1] // 32)
        self.stem = Stem4(3, w[0])
        self.stages = nn.ModuleList(
            Stage(w[max(i - 1, 0)], w[i], d[i], cfg.mhsa_blocks if i == 3 else 0, i > 0, train_grid) for i in range(4)
        )
        # GroupNorm(1, C) on the taps at strides 8, 16, 32 (stages 2, 3, 4).
        self.norms = nn.ModuleList(nn.GroupNorm(1, w[i], eps=GROUP_NORM_EPS) for i in (1, 2, 3))

    def forward(self, x, trace: Dict[str, torch.Tensor] | None = None):
        x = self.stem(x)
        if trace is not None:
            trace["stem"] = x
        taps = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if trace is not None:
                trace[f"stage{i + 1}"] = x
            if i >= 1:
                taps.append(self.norms[i - 1](x))
        if trace is not None:
            for i, t in enumerate(taps):
                trace[f"tap{i + 3}"] = t
        return taps


# ----------------------------------------------------------------------------------------
# YOLOv5 v7.0 neck and head (module names follow yolov5's Conv/C3/SPPF)


class Conv(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=NECK_BN_EPS)

    def forward(self, x):
        return F.silu(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool = True):
        super().__init__()
        self.cv1 = Conv(c1, c2, 1, 1)
        self.cv2 = Conv(c2, c2, 3, 1)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False):
        super().__init__()
        c_ = int(c2 * 0.5)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.k = k

    def forward(self, x):
        x = self.cv1(x)
        y1 = F.max_pool2d(x, self.k, 1, self.k // 2)
        y2 = F.max_pool2d(y1, self.k, 1, self.k // 2)
        y3 = F.max_pool2d(y2, self.k, 1, self.k // 2)
        return self.cv2(torch.cat((x, y1, y2, y3), 1))


class Neck(nn.Module):
    """yolov5s head topology: SPPF on P5, top-down FPN, bottom-up PAN."""

    def __init__(self, in_chs: Sequence[int], width_multiple: float, depth_multiple: float):
        super().__init__()
        c3, c4, c5 = in_chs
        w = lambda c: neck_width(c, width_multiple)  # noqa: E731
        n = neck_depth(3, depth_multiple)
        self.sppf = SPPF(c5, w(1024))
        self.lat5 = Conv(w(1024), w(512), 1, 1)
        self.td4 = C3(w(512) + c4, w(512), n, False)
        self.lat4 = Conv(w(512), w(256), 1, 1)
        self.out3 = C3(w(256) + c3, w(256), n, False)
        self.down3 = Conv(w(256), w(256), 3, 2)
        self.out4 = C3(w(256) + w(256), w(512), n, False)
        self.down4 = Conv(w(512), w(512), 3, 2)
        self.out5 = C3(w(512) + w(512), w(1024), n, False)
        self.out_channels = (w(256), w(512), w(1024))

    def forward(self, p3, p4, p5, trace=None):
        x10 = self.lat5(self.sppf(p5))
        x13 = self.td4(torch.cat((F.interpolate(x10, scale_factor=2.0, mode="nearest"), p4), 1))
        x14 = self.lat4(x13)
        o3 = self.out3(torch.cat((F.interpolate(x14, scale_factor=2.0, mode="nearest"), p3), 1))
        o4 = self.out4(torch.cat((self.down3(o3), x14), 1))
        o5 = self.out5(torch.cat((self.down4(o4), x10), 1))
        if trace is not None:
            trace["neck_p3"], trace["neck_p4"], trace["neck_p5"] = o3, o4, o5
        return o3, o4, o5


class Detect(nn.Module):
    def __init__(self, num_classes: int, anchors, in_chs: Sequence[int]):
        super().__init__()
        self.nc = num_classes
        self.no = num_classes + 5
        self.na = len(anchors[0])
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in in_chs)
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32), persistent=False)

    def initialize_biases(self):
        """YOLOv5's prior: low objectness everywhere, uniform class probability."""
        for mi, s in zip(self.m, STRIDES):
            b = mi.bias.view(self.na, -1)
            with torch.no_grad():
                b[:, 4] += math.log(8 / (640 / s) ** 2)
                b[:, 5:] += math.log(0.6 / (self.nc - 0.99)) if self.nc > 1 else 0.0

    def forward(self, feats):
        return [m(f) for m, f in zip(self.m, feats)]

    def decode(self, raw: List[torch.Tensor]) -> torch.Tensor:
        """Raw per-level logits -> (B, sum(na*ny*nx), 5+nc) in input pixels, as YOLOv5 inference."""
        out = []
        for i, r in enumerate(raw):
            b, _, ny, nx = r.shape
            y = r.view(b, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).float().sigmoid()
            yv, xv = torch.meshgrid(torch.arange(ny, dtype=torch.float32), torch.arange(nx, dtype=torch.float32), indexing="ij")
            grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2) - 0.5
            anchor_grid = self.anchors[i].view(1, self.na, 1, 1, 2)
            xy = (y[..., 0:2] * 2 + grid) * STRIDES[i]
            wh = (y[..., 2:4] * 2) ** 2 * anchor_grid
            out.append(torch.cat((xy, wh, y[..., 4:]), -1).view(b, -1, self.no))
        return torch.cat(out, 1)


class EffYolo(nn.Module):
    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.backbone = EfficientFormerBackbone(cfg)
        self.neck = Neck(cfg.widths[1:], cfg.width_multiple, cfg.depth_multiple)
        self.head = Detect(cfg.num_classes, cfg.anchors, self.neck.out_channels)

    def forward(self, x, trace: Dict[str, torch.Tensor] | None = None) -> List[torch.Tensor]:
        """x: (B, 3, H, W), H and W multiples of 32. Returns the raw per-level head logits."""
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f"input {tuple(x.shape[2:])} is not a multiple of 32")
        p3, p4, p5 = self.backbone(x, trace)
        feats = self.neck(p3, p4, p5, trace)
        raw = self.head(feats)
        if trace is not None:
            for i, r in enumerate(raw):
                trace[f"head{i}"] = r
        return raw
