#!/usr/bin/env python3
"""Export the EMA weights of a training checkpoint to the shipped effyolo weight file.

Reads ``<workdir>/ckpt/best.pt`` (or ``--ckpt``), builds the detector from the configuration
stored in the checkpoint (class names, anchors, train_size, mean/std), loads the EMA state
and writes it with ``effyolo_ref.io.export_state`` (f16 by default), replacing the output
atomically.  Prints the checkpoint's image-iteration count and evaluation result.

    python export_best.py                        # best.pt -> weights/effyolo-l1.safetensors
    python export_best.py --ckpt ../../cache/train/ckpt/last.pt --out /tmp/last.safetensors
    python export_best.py --ckpt <burst export folder> --out /tmp/burst.safetensors
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from effyolo_ref.io import export_state, load_model  # noqa: E402
from effyolo_ref.model import DetectorConfig, EffYolo  # noqa: E402
from effyolo_train.transfer import read_export  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_WORKDIR = HERE.parents[0].parent / "cache" / "train"


def export_checkpoint(ckpt_path: Path, out: Path, dtype: str = "f16", which: str = "ema") -> dict:
    if Path(ckpt_path).is_dir():   # an --export-dir of train.py (a GPU burst, gpu.md)
        meta, model_state, ema_state = read_export(ckpt_path)
        ckpt = {"cfg": meta["cfg"], "model": model_state, "ema": ema_state,
                "image_iterations": meta["image_iterations"]}
    else:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    cfg = DetectorConfig.from_metadata(ckpt["cfg"])
    model = EffYolo(cfg)
    model.load_state_dict({k: v.float() if v.dtype.is_floating_point else v
                           for k, v in ckpt[which].items()})   # copies into contiguous parameters
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    export_state(model.eval(), str(tmp), dtype=dtype)
    load_model(str(tmp))   # the file must load back with the reference loader
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return {"checkpoint": str(ckpt_path), "out": str(out), "dtype": dtype, "weights": which,
            "image_iterations": ckpt["image_iterations"], "train_size": list(cfg.train_size),
            "eval": ckpt.get("eval"), "best": ckpt.get("best")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                   help="training workdir (default: %(default)s)")
    p.add_argument("--ckpt", type=Path, help="checkpoint (default: <workdir>/ckpt/best.pt), or "
                   "the --export-dir folder of a run elsewhere (a GPU burst)")
    p.add_argument("--out", type=Path, default=HERE / "effyolo-l1.safetensors",
                   help="weight file to write (default: %(default)s)")
    p.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    p.add_argument("--raw", action="store_true", help="export the raw weights instead of the EMA")
    args = p.parse_args(argv)
    ckpt = args.ckpt or args.workdir / "ckpt" / "best.pt"
    info = export_checkpoint(ckpt, args.out, args.dtype, "model" if args.raw else "ema")
    print(json.dumps(info, indent=1, default=str))


if __name__ == "__main__":
    main()
