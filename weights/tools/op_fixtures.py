"""Writes small golden files for single ops, computed with PyTorch (crate/tests/fixtures/ops/).

Each file holds one case: the inputs (seeded random, stored), the parameters, and PyTorch's
output. The Rust test `crate/tests/ops_vs_pytorch.rs` runs the same op and compares with a max
abs error of 1e-5. Regenerate with:

    python weights/tools/op_fixtures.py [--out crate/tests/fixtures/ops]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "crate" / "tests" / "fixtures" / "ops"


def array(t: torch.Tensor) -> dict:
    """Shape and flat row-major values, each written as the shortest decimal that reads back
    as the same float32."""
    values = t.detach().to(torch.float32).contiguous().numpy().ravel()
    data = [float(np.format_float_positional(v, unique=True, trim="0")) for v in values]
    return {"shape": list(t.shape), "data": data}


def uniform(gen: torch.Generator, shape, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(shape, generator=gen, dtype=torch.float32) * (hi - lo) + lo


def batch_norm(gen: torch.Generator, channels: int, eps: float) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=eps).eval()
    with torch.no_grad():
        bn.weight.copy_(uniform(gen, channels, 0.5, 1.5))
        bn.bias.copy_(uniform(gen, channels, -0.5, 0.5))
        bn.running_mean.copy_(uniform(gen, channels, -0.5, 0.5))
        bn.running_var.copy_(uniform(gen, channels, 0.2, 2.0))
    return bn


def conv_bn_case(gen, name, x_shape, out_channels, kernel, stride, bias, eps, activation):
    """Conv2d (+ bias) -> BatchNorm2d (eval) -> activation, unfused, as the model runs it."""
    in_channels = x_shape[0]
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=bias)
    with torch.no_grad():
        conv.weight.copy_(uniform(gen, conv.weight.shape, -0.5, 0.5))
        if bias:
            conv.bias.copy_(uniform(gen, out_channels, -0.5, 0.5))
    bn = batch_norm(gen, out_channels, eps)
    x = uniform(gen, x_shape, -2.0, 2.0)
    act = {"none": nn.Identity(), "relu": nn.ReLU(), "silu": nn.SiLU()}[activation]
    y = act(bn(conv(x[None])))[0]
    return name, {
        "op": "conv2d_batch_norm",
        "params": {"stride": stride, "padding": kernel // 2, "eps": eps, "activation": activation},
        "inputs": {
            "x": array(x),
            "weight": array(conv.weight),
            "bias": array(conv.bias) if bias else None,
            "gamma": array(bn.weight),
            "beta": array(bn.bias),
            "running_mean": array(bn.running_mean),
            "running_var": array(bn.running_var),
        },
        "output": array(y),
    }


def avg_pool_case(gen):
    x = uniform(gen, (3, 6, 7), -2.0, 2.0)
    y = nn.AvgPool2d(3, 1, 1, count_include_pad=False)(x[None])[0]
    return "avg_pool3x3_exclude_pad", {"op": "avg_pool3x3_exclude_pad", "params": {},
                                       "inputs": {"x": array(x)}, "output": array(y)}


def max_pool_case(gen):
    x = uniform(gen, (3, 6, 7), -2.0, 2.0)
    y = nn.MaxPool2d(5, 1, 2)(x[None])[0]
    return "max_pool_k5_s1_p2", {"op": "max_pool", "params": {"kernel": 5, "stride": 1, "pad": 2},
                                 "inputs": {"x": array(x)}, "output": array(y)}


def group_norm_case(gen):
    x = uniform(gen, (6, 5, 7), -1.0, 3.0)
    gn = nn.GroupNorm(1, 6, eps=1e-5)
    with torch.no_grad():
        gn.weight.copy_(uniform(gen, 6, 0.5, 1.5))
        gn.bias.copy_(uniform(gen, 6, -0.5, 0.5))
    y = gn(x[None])[0]
    return "group_norm_1", {"op": "group_norm_1", "params": {"eps": 1e-5},
                            "inputs": {"x": array(x), "gamma": array(gn.weight), "beta": array(gn.bias)},
                            "output": array(y)}


def layer_norm_case(gen):
    x = uniform(gen, (7, 48), -1.0, 5.0)
    ln = nn.LayerNorm(48, eps=1e-5)
    with torch.no_grad():
        ln.weight.copy_(uniform(gen, 48, 0.5, 1.5))
        ln.bias.copy_(uniform(gen, 48, -0.5, 0.5))
    y = ln(x)
    return "layer_norm", {"op": "layer_norm", "params": {"eps": 1e-5},
                          "inputs": {"x": array(x), "gamma": array(ln.weight), "beta": array(ln.bias)},
                          "output": array(y)}


def gelu_case(gen):
    x = torch.cat([torch.linspace(-8.0, 8.0, 321), uniform(gen, 64, -4.0, 4.0)])
    y = F.gelu(x, approximate="none")
    return "gelu", {"op": "gelu", "params": {}, "inputs": {"x": array(x)}, "output": array(y)}


def linear_gelu_case(gen):
    x = uniform(gen, (5, 12), -2.0, 2.0)
    fc = nn.Linear(12, 20)
    with torch.no_grad():
        fc.weight.copy_(uniform(gen, (20, 12), -0.5, 0.5))
        fc.bias.copy_(uniform(gen, 20, -0.5, 0.5))
    y = F.gelu(fc(x))
    return "linear_gelu", {"op": "linear", "params": {"activation": "gelu"},
                           "inputs": {"x": array(x), "weight": array(fc.weight), "bias": array(fc.bias)},
                           "output": array(y)}


def bilinear_case(gen, heads, src, dst):
    table = uniform(gen, (heads, src[0] * src[1]), -2.0, 2.0)
    y = F.interpolate(table.view(1, heads, *src), size=dst, mode="bilinear", align_corners=False)
    y = y.reshape(heads, dst[0] * dst[1])
    name = f"bias_bilinear_{src[0]}x{src[1]}_to_{dst[0]}x{dst[1]}"
    return name, {"op": "resample_attention_bias", "params": {"heads": heads, "from": list(src), "to": list(dst)},
                  "inputs": {"table": array(table)}, "output": array(y)}


def attention_case(gen, grid, heads, key_dim, val_dim):
    """EfficientFormer's Attention.forward after the qkv projection, with the bias table
    indexed as in the published code (offsets numbered in order of first appearance)."""
    n = grid[0] * grid[1]
    points = list(itertools.product(range(grid[0]), range(grid[1])))
    offsets, idxs = {}, []
    for p1 in points:
        for p2 in points:
            off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
            idxs.append(offsets.setdefault(off, len(offsets)))
    idxs = torch.tensor(idxs).view(n, n)

    qkv = uniform(gen, (n, heads * (2 * key_dim + val_dim)), -1.5, 1.5)
    table = uniform(gen, (heads, len(offsets)), -1.0, 1.0)
    scale = key_dim ** -0.5
    q, k, v = qkv.reshape(1, n, heads, -1).permute(0, 2, 1, 3).split([key_dim, key_dim, val_dim], dim=3)
    attn = (q @ k.transpose(-2, -1)) * scale + table[:, idxs]
    y = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(n, heads * val_dim)
    return f"attention_{grid[0]}x{grid[1]}", {
        "op": "multi_head_attention",
        "params": {"grid": list(grid), "heads": heads, "key_dim": key_dim, "val_dim": val_dim, "scale": scale},
        "inputs": {"qkv": array(qkv), "table": array(table)},
        "output": array(y),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    torch.set_grad_enabled(False)
    gen = torch.Generator().manual_seed(20240607)
    cases = [
        conv_bn_case(gen, "conv3x3_s2_bias_bn", (3, 9, 11), 8, 3, 2, True, 1e-5, "none"),
        conv_bn_case(gen, "conv1x1_bn_silu", (6, 5, 4), 4, 1, 1, False, 1e-3, "silu"),
        avg_pool_case(gen),
        max_pool_case(gen),
        group_norm_case(gen),
        layer_norm_case(gen),
        gelu_case(gen),
        linear_gelu_case(gen),
        bilinear_case(gen, 8, (7, 7), (10, 10)),
        bilinear_case(gen, 2, (7, 7), (4, 6)),
        bilinear_case(gen, 2, (3, 5), (5, 5)),
        attention_case(gen, (3, 4), 2, 8, 16),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, case in cases:
        case["generator"] = f"weights/tools/op_fixtures.py (torch {torch.__version__})"
        text = json.dumps(case, separators=(",", ":"))
        (args.out / f"{name}.json").write_text(text + "\n")
        total += len(text) + 1
    print(f"wrote {len(cases)} fixtures, {total / 1024:.1f} KiB, to {args.out}")


if __name__ == "__main__":
    main()
