#!/usr/bin/env python3
"""Train the effyolo student (EfficientFormer-L1 + YOLOv5n-width neck) from scratch on CPU.

Targets, both computed on the same augmented batch:

* dense distillation from ``yolov5n.onnx`` run at the student's input size (objectness
  everywhere, classes weighted by teacher objectness, boxes where the teacher is confident),
  see ``effyolo_train/loss.py``;
* the YOLOv5 v7.0 box/objectness/class loss on the fused pseudo-labels of
  ``pseudo_label.py`` (``--labels``; boxes below ``--min-box-score`` are ignored, the others
  weigh their fused score).  Images missing from the cache only get the dense loss; the
  cache is re-read at checkpoints when it changes.

Images from the given folders are decoded once into RAM; batches are a pure function of
the seed and the image-iteration count (``effyolo_train/data.py``), so ``--resume``
continues exactly: same batches, same optimiser/EMA state.  Arguments of a resumed run
default to the checkpoint's; any given on the command line override them (e.g. a larger
``--total-images`` extends the cosine schedule).

Files in ``--workdir``: ``ckpt/last.pt`` (every ``--ckpt-minutes``, atomic), ``ckpt/best.pt``
(best AP50 of the EMA), ``train_log.csv`` (losses, learning rate, throughput),
``curve.csv`` (image_iterations, ap50_all, ap50_person on ``--eval-data``).

Defaults are relative to the repository: images ``../shared/data/pool`` plus every folder
in ``<workdir>/images/``; workdir ``../cache/train``; teacher
``../shared/data/teachers/yolov5n.onnx``; evaluation set ``../shared/data/coco-dev``
(which is refused as training input).  See ``train.md`` for the command lines.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import random
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from effyolo_ref.model import (DEFAULT_ANCHORS, STRIDES, DetectorConfig, EffYolo,  # noqa: E402
                               resample_attention_bias)
from effyolo_tools.labels import read_class_names  # noqa: E402
from effyolo_train.data import AugConfig, BatchMaker, ImagePool, label_stamp  # noqa: E402
from effyolo_train.engine import (ModelEMA, atomic_save, init_student, learning_rate,  # noqa: E402
                                  param_groups)
from effyolo_train.loss import DenseDistillLoss, LossWeights, YoloLoss, level_views  # noqa: E402
from effyolo_train.transfer import export_run, fit_state, read_export, weight_file_state  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
DEFAULT_WORKDIR = REPO.parent / "cache" / "train"
CKPT_FORMAT = "effyolo-train-checkpoint"
LOG_FIELDS = ["image_iterations", "step", "wall_s", "lr", "loss", "box", "obj", "cls", "kd_obj",
              "kd_cls", "kd_box", "cls_agree", "grad_norm", "img_per_s", "targets_per_img",
              "labelled_frac"]
CURVE_FIELDS = ["image_iterations", "ap50_all", "ap50_person"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("folders", nargs="*", default=None,
                   help="training image folders (default: ../shared/data/pool + <workdir>/images/*)")
    p.add_argument("--rescan", action="store_true",
                   help="on --resume, use the default folders as they are now instead of the "
                        "checkpoint's list (picks up new folders; the data order changes)")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="checkpoints and logs")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue from a checkpoint; bare --resume: <workdir>/ckpt/last.pt "
                        "if it exists, else start a new run")
    p.add_argument("--classes", type=Path, default=DATA / "coco-classes.txt")
    # data
    p.add_argument("--size", type=int, default=256, help="square training input size")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--max-side", type=int, default=512, help="shrink larger images when loading")
    p.add_argument("--mosaic", type=float, default=0.75)
    p.add_argument("--scale", type=float, default=0.5)
    p.add_argument("--translate", type=float, default=0.1)
    p.add_argument("--fliplr", type=float, default=0.5)
    p.add_argument("--hsv", type=float, nargs=3, default=[0.015, 0.7, 0.4], metavar=("H", "S", "V"))
    p.add_argument("--seed", type=int, default=0)
    # targets
    p.add_argument("--labels", type=Path, default=None,
                   help="pseudo-label cache of pseudo_label.py (default: <workdir>/labels)")
    p.add_argument("--box-loss", action=argparse.BooleanOptionalAction, default=True,
                   help="YOLOv5 loss on pseudo-label boxes (needs --labels)")
    p.add_argument("--min-box-score", type=float, default=0.25)
    p.add_argument("--box-weight", choices=["score", "one"], default="score")
    p.add_argument("--anchor-t", type=float, default=4.0)
    p.add_argument("--teacher", type=Path, default=DATA / "teachers" / "yolov5n.onnx")
    p.add_argument("--distill", action=argparse.BooleanOptionalAction, default=True,
                   help="dense distillation from --teacher")
    p.add_argument("--kd-box-obj", type=float, default=0.3, help="teacher obj above which boxes are distilled")
    p.add_argument("--teacher-threads", type=int, default=1)
    p.add_argument("--person-weight", type=float, default=1.0, help="class-loss weight of 'person'")
    p.add_argument("--repeat-thresh", type=float, default=0.0,
                   help="repeat-factor sampling threshold t (LVIS): images with classes in "
                        "fewer than a fraction t of the labelled images are drawn more often; "
                        "0 = plain epochs")
    for name, v in asdict(LossWeights()).items():
        p.add_argument(f"--w-{name.replace('_', '-')}", type=float, default=v,
                       help=f"loss weight {name} (before YOLOv5's size/class scaling)")
    # model
    p.add_argument("--layer-scale", type=float, default=0.1, help="LayerScale init")
    # optimisation
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--wd", type=float, default=0.05)
    p.add_argument("--warmup-images", type=int, default=20000)
    p.add_argument("--total-images", type=int, default=3_000_000, help="cosine schedule length")
    p.add_argument("--final-lr-frac", type=float, default=0.05)
    p.add_argument("--clip", type=float, default=10.0, help="gradient-norm clip")
    p.add_argument("--ema-decay", type=float, default=0.9999)
    p.add_argument("--ema-tau", type=float, default=2000)
    p.add_argument("--ema-updates", type=int, default=None,
                   help="set the EMA's update count at the start of this run (one-off): a large "
                        "value gives the full --ema-decay at once, e.g. for an EMA that starts "
                        "from --init-weights that are already an average")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bfloat16 autocast (default: on for CUDA and for a CPU with bfloat16 "
                        "instructions, float32 elsewhere); chosen afresh by each start, so "
                        "--resume does not carry it over")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--device", default="cpu",
                   help="where the student trains: cpu, cuda, cuda:N (augmentation and the "
                        "teacher run on the CPU either way)")
    p.add_argument("--workers", type=int, default=1,
                   help="threads building batches (augmentation + teacher) ahead of the "
                        "student; a GPU needs several")
    p.add_argument("--worker-processes", action=argparse.BooleanOptionalAction, default=False,
                   help="build batches in forked processes instead of threads (no GIL: for "
                        "machines with many cores); the run is the same either way")
    p.add_argument("--teacher-device", choices=["cpu", "train"], default="cpu",
                   help="where the dense teacher runs: on the CPU with the batch builders "
                        "(onnxruntime), or on the training device in the training loop "
                        "(PyTorch via onnx2torch; for a GPU)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                   help="torch.compile the student's forward (minutes of compilation per start)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    # bookkeeping
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--log-every", type=int, default=25, help="steps between log rows")
    p.add_argument("--eval-data", type=Path, default=DATA / "coco-dev",
                   help="labelled evaluation folder (images/ + labels/); never trained on")
    p.add_argument("--eval-size", type=int, default=320)
    p.add_argument("--eval-every", type=int, default=20000, help="image-iterations; 0 = never")
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop (with a checkpoint) after this many image-iterations in this run")
    p.add_argument("--minutes", type=float, default=0,
                   help="stop (with a checkpoint) after this many minutes of this run; 0 = no limit")
    # runs on another machine (gpu.md)
    p.add_argument("--pack", type=Path, default=None,
                   help="train on a training pack (make_pack.py) instead of image folders and "
                        "the label cache; its class names are used")
    p.add_argument("--init-weights", type=Path, default=None,
                   help="start a new run from this weight file (model and EMA; fresh optimiser)")
    p.add_argument("--start-images", type=int, default=0,
                   help="image-iteration count a new run starts at (schedule, logs, data order)")
    p.add_argument("--rewarm-images", type=int, default=4000,
                   help="after --init-weights or --adopt: ramp the learning rate up again over "
                        "this many image-iterations (the optimiser's moments start from zero)")
    p.add_argument("--export-dir", type=Path, default=None,
                   help="when the run stops, also write its model and EMA there as f16 "
                        "safetensors parts of at most 15 MiB, with export.json (for --adopt)")
    p.add_argument("--adopt", type=Path, default=None,
                   help="with --resume: replace the model and EMA by those of an --export-dir "
                        "from another run (a GPU burst) and continue from its image-iteration "
                        "count with a fresh optimiser")
    p.add_argument("--no-save", action="store_true", help="write no checkpoint or log (benchmarks)")
    return p


def parse_args(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    ckpt = None
    if args.resume:
        path = Path(args.workdir) / "ckpt" / "last.pt" if args.resume == "auto" else Path(args.resume)
        if args.resume == "auto" and not path.exists():
            print(f"no checkpoint at {path}: starting a new run", flush=True)
            args.resume = None
    if args.resume:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        if ckpt.get("format") != CKPT_FORMAT:
            raise SystemExit(f"{path} is not a training checkpoint")
        saved = dict(ckpt["args"])
        for k in ("resume", "stop_after", "no_save", "rescan", "minutes", "init_weights",
                  "export_dir", "adopt", "ema_updates", "bf16"):
            saved.pop(k, None)
        for k in ("workdir", "labels", "teacher", "eval_data", "classes", "pack"):
            if saved.get(k) is not None:
                saved[k] = Path(saved[k])
        p.set_defaults(**saved)
        args = p.parse_args(argv)   # explicit command-line values override the saved ones
        args.resume = str(path)
    elif args.adopt:
        raise SystemExit("--adopt needs --resume (a run to adopt into)")
    if args.init_weights and args.resume:
        raise SystemExit("--init-weights starts a new run; it cannot be combined with --resume")
    if args.labels is None:
        args.labels = Path(args.workdir) / "labels"
    if not args.folders or args.rescan:
        args.folders = [str(DATA / "pool")]
        extra = Path(args.workdir) / "images"
        if extra.is_dir():
            args.folders += sorted(str(d) for d in extra.iterdir() if d.is_dir())
    return args, ckpt


def jsonable_args(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


class Prefetcher:
    """Builds batches (augmentation + teacher pass) in background threads, handed out in order.

    With ``workers`` threads, worker ``k`` builds batches ``k, k + workers, ...`` from
    ``position`` on into a queue of its own, and ``get`` takes from the queues in turn: a batch is
    a pure function of its position, so the order, and the run, are the same for any number of
    workers (augmentation in OpenCV/numpy and the ONNX teacher release the GIL).
    """

    def __init__(self, maker: BatchMaker, teacher, position: int, batch_size: int, depth: int = 2,
                 workers: int = 1):
        self.maker, self.teacher = maker, teacher
        self.position, self.batch_size = position, batch_size
        self.workers = max(1, workers)
        self.queues = [queue.Queue(maxsize=depth) for _ in range(self.workers)]
        self.next = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True)
                        for k in range(self.workers)]
        for t in self.threads:
            t.start()

    def _run(self, k: int):
        q = self.queues[k]
        pos = self.position + k * self.batch_size
        try:
            while not self.stop.is_set():
                b = self.maker.batch(pos, self.batch_size)
                if self.teacher is not None:
                    b.teacher = self.teacher(b.images)
                while not self.stop.is_set():
                    try:
                        q.put(b, timeout=0.5)
                        break
                    except queue.Full:
                        pass
                pos += self.workers * self.batch_size
        except BaseException as e:  # surfaced in get()
            q.put(e)

    def get(self):
        b = self.queues[self.next % self.workers].get()
        self.next += 1
        if isinstance(b, BaseException):
            raise b
        return b

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join()


_WORKER: dict = {}


def _worker_init(maker: BatchMaker, cpu_teacher) -> None:
    # the parent's handlers (save and stop) are inherited through fork: a worker must die on
    # the SIGTERM of Pool.terminate and leave Ctrl-C to the parent
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    _WORKER["maker"] = maker   # inherited through fork, not pickled
    if cpu_teacher is not None:
        from effyolo_train.teacher import DenseTeacher
        _WORKER["teacher"] = DenseTeacher(*cpu_teacher)


def _worker_batch(position: int, batch_size: int):
    b = _WORKER["maker"].batch(position, batch_size)
    if "teacher" in _WORKER:
        b.teacher = _WORKER["teacher"](b.images)
    return b


class ProcessPrefetcher:
    """``Prefetcher`` with forked worker processes (no GIL between batch builders): batches
    ``position, position + B, ...`` are asked of the pool ahead of time and handed out in
    order, so the run is the same as with threads. ``cpu_teacher`` (path, threads) gives each
    worker its own onnxruntime teacher."""

    def __init__(self, maker: BatchMaker, cpu_teacher, position: int, batch_size: int,
                 depth: int = 2, workers: int = 1):
        import collections
        import multiprocessing

        self.pool = multiprocessing.get_context("fork").Pool(
            max(1, workers), initializer=_worker_init, initargs=(maker, cpu_teacher))
        self.batch_size, self.next_position = batch_size, position
        self.pending = collections.deque()
        for _ in range(max(1, workers) * depth):
            self._submit()

    def _submit(self):
        self.pending.append(self.pool.apply_async(_worker_batch, (self.next_position, self.batch_size)))
        self.next_position += self.batch_size

    def get(self):
        b = self.pending.popleft().get()
        self._submit()
        return b

    def close(self):
        self.pool.terminate()
        self.pool.join()


class CsvLog:
    def __init__(self, path: Path, fields, enabled=True):
        self.path, self.fields, self.enabled = Path(path), fields, enabled

    def truncate_after(self, images: int):
        """Drop rows logged after the checkpoint a run resumes from."""
        if not self.enabled or not self.path.exists():
            return
        with open(self.path) as f:
            rows = list(csv.DictReader(f))
        keep = [r for r in rows if float(r["image_iterations"]) <= images]
        if len(keep) != len(rows):
            self._write(keep, "w")

    def _write(self, rows, mode):
        new = mode == "w" or not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, mode, newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerows(rows)

    def append(self, row: dict):
        if self.enabled:
            self._write([row], "a")


def adapt_attention_biases(ckpt: dict, cfg: DetectorConfig, model, opt) -> None:
    """Resample the attention-bias tables (and their Adam moments) of a checkpoint trained at
    another size to this run's grid, in place (LeViT-style, ``resample_attention_bias``)."""
    src = tuple(json.loads(ckpt["cfg"]["train_size"]))
    if src == tuple(cfg.train_size):
        return
    sg, dg = (src[0] // 32, src[1] // 32), (cfg.train_size[0] // 32, cfg.train_size[1] // 32)
    for key in ("model", "ema"):
        for k, v in ckpt[key].items():
            if k.endswith("attention_biases"):
                ckpt[key][k] = resample_attention_bias(v, sg, dg)
    names = [n for g in opt.param_groups for n in g.get("param_names", [])]
    if not names:   # param index -> name, in optimiser order
        by_id = {id(p): n for n, p in model.named_parameters()}
        names = [by_id[id(p)] for g in opt.param_groups for p in g["params"]]
    state = ckpt["optimizer"]["state"]
    for i, n in enumerate(names):
        if n.endswith("attention_biases") and i in state:
            for k in ("exp_avg", "exp_avg_sq"):
                state[i][k] = resample_attention_bias(state[i][k], sg, dg).clamp_(min=0) \
                    if k == "exp_avg_sq" else resample_attention_bias(state[i][k], sg, dg)
    ckpt["cfg"] = cfg.metadata()


def fmt(v):
    return f"{v:.5g}" if isinstance(v, float) else v


def yield_to_foreground():
    """Carries this process's nice value into its scheduler autogroup.

    With autogroup scheduling (the Linux default on desktops and many VMs) a job started in
    its own session (setsid, nohup from another terminal) gets its own group, and groups share
    the CPU by the group's nice value, not the process's: `nice -n 19` alone still takes a
    whole core from a browser benchmark. Raising the group's nice needs no privilege."""
    niceness = os.nice(0)
    if niceness <= 0:
        return
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(niceness))
    except OSError:
        pass   # no autogroup support: the process nice value is what counts


# CPU flags of bfloat16 instructions that autocast uses: x86 (AVX-512 BF16, AMX) and Arm.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (or the text given): x86 "flags" and Arm
    "Features" lines; empty when there is no such file."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return set()
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    return flags


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU has bfloat16 instructions that autocast can use: avx512_bf16 or
    amx_bf16 on x86, bf16 on Arm. --bf16's default on the CPU."""
    return bool(BF16_CPU_FLAGS & cpu_flags(cpuinfo))


def cpu_lacks_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when /proc/cpuinfo (or the text given) shows an x86 CPU without bfloat16
    instructions (avx512_bf16, amx_bf16). There, bfloat16 autocast falls back to slow
    conversions: measured on an AVX2-only 2-core machine, 0.57 images/s against 6.85 in
    float32. False when nothing can be told (no /proc/cpuinfo, not x86)."""
    flags = cpu_flags(cpuinfo)
    return bool({"avx2", "sse2"} & flags) and not (BF16_CPU_FLAGS & flags)


def main(argv=None):
    args, ckpt = parse_args(argv)
    yield_to_foreground()
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:   # already set (a second main() in the same process)
        pass
    cv2.setNumThreads(1)
    workdir = Path(args.workdir)
    ckpt_dir = workdir / "ckpt"
    say = lambda *a: print(time.strftime("%H:%M:%S"), *a, flush=True)  # noqa: E731

    # ---- data
    t0 = time.perf_counter()
    if args.pack:
        pool = ImagePool.from_pack(str(args.pack), args.min_box_score, args.box_weight == "score")
        source = f"pack {args.pack}"
        box_loss_on = args.box_loss and pool.num_labelled() > 0
    else:
        pool = ImagePool.load(args.folders, max_side=args.max_side,
                              exclude=[args.eval_data] if args.eval_data else [])
        source = args.folders
        box_loss_on = args.box_loss and (Path(args.labels) / "manifest.json").exists()
        if args.box_loss and not box_loss_on:
            say(f"no label cache at {args.labels}: dense distillation only until it appears")
        if box_loss_on:
            pool.attach_labels(str(args.labels), args.min_box_score, args.box_weight == "score")
    say(f"{len(pool)} images ({pool.nbytes() / 2**20:.0f} MiB in RAM) from {source} "
        f"in {time.perf_counter() - t0:.1f} s")
    if box_loss_on:
        say(f"pseudo-labels for {pool.num_labelled()}/{len(pool)} images")
    if not args.distill and not box_loss_on:
        raise SystemExit("nothing to train on: enable --distill or provide --labels")
    aug = AugConfig(mosaic=args.mosaic, scale=args.scale, translate=args.translate,
                    fliplr=args.fliplr, hsv_h=args.hsv[0], hsv_s=args.hsv[1], hsv_v=args.hsv[2])
    maker = BatchMaker(pool, args.size, args.seed, aug, repeat_thresh=args.repeat_thresh)
    if args.repeat_thresh > 0:
        say(f"repeat-factor sampling (t={args.repeat_thresh}): {maker.epoch_length} draws per "
            f"epoch of {len(pool)} images")
    teacher, device_teacher = None, None   # on the CPU with the batch builders / in the loop
    if args.distill and args.teacher_device == "cpu":
        from effyolo_train.teacher import DenseTeacher
        teacher = DenseTeacher(str(args.teacher), threads=args.teacher_threads)

    # ---- model
    if pool.pack_meta is not None:
        class_names = list(pool.pack_meta["class_names"])
    else:
        class_names = read_class_names(args.classes)
    cfg = DetectorConfig.for_variant("l1", class_names=class_names, train_size=(args.size, args.size))
    torch.manual_seed(args.seed)
    model = EffYolo(cfg)
    init_student(model, args.layer_scale)
    if args.init_weights and ckpt is None:
        model.load_state_dict(weight_file_state(args.init_weights, model, cfg))
        say(f"initialised from {args.init_weights}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: this torch has no CUDA device")
    if args.distill and args.teacher_device == "train":
        from effyolo_train.teacher import TorchTeacher
        device_teacher = TorchTeacher(str(args.teacher), device)
    mem = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=mem).train()
    ema = ModelEMA(model, args.ema_decay, args.ema_tau)
    opt = torch.optim.AdamW(param_groups(model, args.wd), lr=args.lr, betas=(0.9, 0.999))
    images, step, wall = 0, 0, 0.0
    best = {"ap50": -1.0, "image_iterations": 0}
    if ckpt is not None:
        if list(ckpt["args"].get("folders", [])) != list(args.folders) or \
                ckpt.get("pool_fingerprint") != pool.fingerprint():
            say("WARNING: the image pool differs from the checkpoint's: the data order will differ")
        if ckpt.get("label_stamp") != pool.label_stamp:
            say("note: the label cache changed since the checkpoint")
        adapt_attention_biases(ckpt, cfg, model, opt)
        model.load_state_dict(ckpt["model"])
        ema.ema.load_state_dict(ckpt["ema"])
        ema.updates = ckpt["ema_updates"]
        opt.load_state_dict(ckpt["optimizer"])
        images, step, wall = ckpt["image_iterations"], ckpt["step"], ckpt["wall_s"]
        best = ckpt["best"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        np.random.set_state(ckpt["rng"]["numpy"])
        random.setstate(ckpt["rng"]["python"])
        say(f"resumed {args.resume} at {images} image-iterations (step {step})")
        if args.adopt:
            meta, model_state, ema_state = read_export(args.adopt)
            size = tuple(meta["train_size"])
            model.load_state_dict(fit_state(model_state, model, size, cfg.train_size))
            ema.ema.load_state_dict(fit_state(ema_state, ema.ema, size, cfg.train_size))
            ema.updates = meta["ema_updates"]
            opt = torch.optim.AdamW(param_groups(model, args.wd), lr=args.lr, betas=(0.9, 0.999))
            say(f"adopted {args.adopt}: {meta['image_iterations_done']} image-iterations from "
                f"{meta['start_images']} in {meta['wall_s'] / 60:.1f} min on {meta['device']}; "
                f"this run continues at {meta['image_iterations']} (was {images}) with a fresh optimiser")
            images, step, wall = meta["image_iterations"], step + meta["steps"], wall + meta["wall_s"]
            args.rewarm_start = images
    else:
        random.seed(args.seed)
        np.random.seed(args.seed)
        images = args.start_images
        args.rewarm_start = images if args.init_weights else None
    if args.ema_updates is not None:
        ema.updates = args.ema_updates
        say(f"EMA update count set to {ema.updates} (decay now {ema.current_decay():.6f})")
    if args.bf16 is None:
        args.bf16 = device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
    elif args.bf16 and device.type == "cpu" and cpu_lacks_native_bf16():
        say("warning: --bf16 on a CPU without bfloat16 instructions (avx512_bf16, amx_bf16): "
            "autocast runs about ten times slower than float32 here; without --bf16 it "
            "trains in float32")
    nparams = sum(p.numel() for p in model.parameters())
    say(f"student: {nparams / 1e6:.2f} M parameters, size {args.size}, batch {args.batch}, "
        f"bf16 {args.bf16}, channels_last {args.channels_last}, layer-scale init {args.layer_scale}")

    # ---- losses
    anchors = torch.tensor(DEFAULT_ANCHORS, dtype=torch.float32)
    cw = torch.ones(cfg.num_classes)
    cw[0] = args.person_weight
    cw = None if args.person_weight == 1.0 else cw
    yolo_loss = YoloLoss(anchors, STRIDES, cfg.num_classes, args.anchor_t, cw)
    kd_loss = DenseDistillLoss(anchors, STRIDES, args.kd_box_obj, cw)
    W = LossWeights.yolov5_scaled(args.size, cfg.num_classes, box=args.w_box, obj=args.w_obj,
                                  cls=args.w_cls, kd_obj=args.w_kd_obj, kd_cls=args.w_kd_cls,
                                  kd_box=args.w_kd_box)

    # ---- evaluation, logs
    evaluator = None
    if args.eval_every and args.eval_data and not args.no_save:
        from effyolo_train.evaluate import DetectionEval
        evaluator = DetectionEval(str(args.eval_data), args.eval_size)
    train_log = CsvLog(workdir / "train_log.csv", LOG_FIELDS, not args.no_save)
    curve = CsvLog(workdir / "curve.csv", CURVE_FIELDS, not args.no_save)
    train_log.truncate_after(images)
    curve.truncate_after(images)

    def checkpoint(path: Path, extra=None):
        if args.no_save:
            return
        atomic_save({
            "format": CKPT_FORMAT, "version": 1,
            "model": model.state_dict(), "ema": ema.ema.state_dict(), "ema_updates": ema.updates,
            "optimizer": opt.state_dict(),
            "image_iterations": images, "step": step, "wall_s": wall, "best": best,
            "args": jsonable_args(args), "cfg": cfg.metadata(),
            "pool_fingerprint": pool.fingerprint(), "pool_size": len(pool),
            "label_stamp": pool.label_stamp,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                    "python": random.getstate()},
            **(extra or {}),
        }, path)

    def export():
        """Model and EMA to --export-dir (also at each checkpoint, so that a run killed on a
        lent machine still sends back its last state)."""
        return export_run(args.export_dir, model, ema.ema, {
            "image_iterations": images, "start_images": start_images,
            "image_iterations_done": images - start_images, "steps": step - start_steps,
            "wall_s": round(time.perf_counter() - t_start, 1), "ema_updates": ema.updates,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "train_size": list(cfg.train_size), "cfg": cfg.metadata(), "pool_size": len(pool),
            "pool_fingerprint": pool.fingerprint(), "args": jsonable_args(args)})

    def run_eval():
        nonlocal best
        snapshot = EffYolo(cfg)
        snapshot.load_state_dict(ema.ema.state_dict())
        res = evaluator(snapshot, workdir / "tmp" / f"ema-{images}.safetensors")
        curve.append({"image_iterations": images, "ap50_all": f"{res['AP50']:.5f}",
                      "ap50_person": f"{res['person_AP50']:.5f}"})
        say(f"eval @ {images}: AP50 {res['AP50']:.4f}  person AP50 {res['person_AP50']:.4f}  "
            f"AP50-95 {res['AP50-95']:.4f}  ({res['eval_seconds']:.0f} s)")
        if res["AP50"] > best["ap50"]:
            best = {"ap50": res["AP50"], "person_ap50": res["person_AP50"], "image_iterations": images}
            checkpoint(ckpt_dir / "best.pt", {"eval": res})
            say(f"new best -> {ckpt_dir / 'best.pt'}")

    stop_signal = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: stop_signal.append(s))

    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)
    forward = torch.compile(model) if args.compile else model   # shares model's parameters
    def make_prefetcher(position):
        if args.worker_processes:
            cpu_teacher = (str(args.teacher), args.teacher_threads) if teacher is not None else None
            return ProcessPrefetcher(maker, cpu_teacher, position, args.batch, workers=args.workers)
        return Prefetcher(maker, teacher, position, args.batch, workers=args.workers)

    def rewarm(position):
        start = getattr(args, "rewarm_start", None)
        if start is None or args.rewarm_images <= 0:
            return 1.0
        return min(1.0, max(0, position - start + args.batch) / args.rewarm_images)

    prefetch = make_prefetcher(images)
    start_images, start_steps, t_start = images, step, time.perf_counter()
    bad_steps = 0
    last_ckpt = time.time()
    acc, acc_n, t_log, img_log = {}, 0, time.perf_counter(), images
    t_wall = time.perf_counter()
    say(f"training from {images} to {args.total_images} image-iterations")
    try:
        while images < args.total_images:
            if args.stop_after and images - start_images >= args.stop_after:
                break
            if args.minutes and time.perf_counter() - t_start >= args.minutes * 60:
                say(f"{args.minutes} minutes: saving and stopping")
                break
            if stop_signal:
                say(f"signal {stop_signal[0]}: saving and stopping")
                break
            lr = learning_rate(images, args.lr, args.warmup_images, args.total_images,
                               args.final_lr_frac) * rewarm(images)
            for g in opt.param_groups:
                g["lr"] = lr
            b = prefetch.get()
            assert b.position == images
            x = torch.from_numpy(b.images).to(device, non_blocking=True)
            x = x.permute(0, 3, 1, 2).float().div_(255).contiguous(memory_format=mem)
            with autocast:
                raw = forward(x)
            p = level_views(raw, model.head.na)
            parts = {}
            loss = p[0].sum() * 0
            if box_loss_on:
                lbox, lobj, lcls = yolo_loss(p, torch.from_numpy(b.targets), torch.from_numpy(b.labelled))
                parts.update(box=lbox, obj=lobj, cls=lcls)
                loss = loss + W.box * lbox + W.obj * lobj + W.cls * lcls
            if teacher is not None or device_teacher is not None:
                dense = device_teacher(x) if device_teacher is not None else \
                    torch.from_numpy(b.teacher).to(device)
                kobj, kcls, kbox, agree = kd_loss(p, dense)
                parts.update(kd_obj=kobj, kd_cls=kcls, kd_box=kbox)
                loss = loss + W.kd_obj * kobj + W.kd_cls * kcls + W.kd_box * kbox
                if agree is not None:
                    acc["cls_agree"] = acc.get("cls_agree", 0.0) + agree
                    acc["n_agree"] = acc.get("n_agree", 0) + 1
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip).detach()
            # the step's one wait for the device; the logged figures stay there until a log row
            if bool(torch.isfinite(loss.detach()) & torch.isfinite(gnorm)):
                opt.step()
                ema.update(model)
                bad_steps = 0
            else:   # skip the update; give up if it keeps happening
                bad_steps += 1
                say(f"non-finite loss or gradient at {images} image-iterations: update skipped")
                if bad_steps >= 10:
                    raise FloatingPointError("10 consecutive non-finite steps")
            images += args.batch
            step += 1

            acc["loss"] = acc.get("loss", 0.0) + loss.detach().float()
            acc["grad_norm"] = acc.get("grad_norm", 0.0) + gnorm
            acc["targets"] = acc.get("targets", 0) + len(b.targets)
            acc["labelled"] = acc.get("labelled", 0) + int(b.labelled.sum())
            for k, v in parts.items():
                acc[k] = acc.get(k, 0.0) + v.detach().float()
            acc_n += 1
            if step % args.log_every == 0:
                now = time.perf_counter()
                wall += now - t_wall
                t_wall = now
                ips = (images - img_log) / (now - t_log)
                row = {"image_iterations": images, "step": step, "wall_s": round(wall, 1), "lr": lr,
                       "img_per_s": round(ips, 2),
                       "targets_per_img": round(acc["targets"] / (acc_n * args.batch), 2),
                       "labelled_frac": round(acc["labelled"] / (acc_n * args.batch), 3)}
                for k in ("loss", "grad_norm", "box", "obj", "cls", "kd_obj", "kd_cls", "kd_box"):
                    if k in acc:
                        row[k] = round(float(acc[k]) / acc_n, 5)
                if acc.get("n_agree"):
                    row["cls_agree"] = round(float(acc["cls_agree"]) / acc["n_agree"], 4)
                train_log.append(row)
                say(" ".join(f"{k}={fmt(v)}" for k, v in row.items()))
                acc, acc_n, t_log, img_log = {}, 0, now, images
            if evaluator is not None and images // args.eval_every != (images - args.batch) // args.eval_every:
                run_eval()
            if time.time() - last_ckpt >= args.ckpt_minutes * 60:
                # pick up a new or updated label cache at a checkpoint boundary, so that a run
                # resumed from this checkpoint sees the same labels (a pack holds its own)
                stamp = None if args.pack else label_stamp(str(args.labels))
                if args.box_loss and stamp is not None and stamp != pool.label_stamp:
                    prefetch.close()
                    n = pool.attach_labels(str(args.labels), args.min_box_score, args.box_weight == "score")
                    maker.refresh_repeats()
                    say(f"label cache changed: pseudo-labels for {n}/{len(pool)} images")
                    box_loss_on = True
                    prefetch = make_prefetcher(images)
                wall += time.perf_counter() - t_wall
                t_wall = time.perf_counter()
                checkpoint(ckpt_dir / "last.pt")
                if args.export_dir:
                    export()
                last_ckpt = time.time()
    finally:
        prefetch.close()
    wall += time.perf_counter() - t_wall
    checkpoint(ckpt_dir / "last.pt")
    say(f"stopped at {images} image-iterations; checkpoint {ckpt_dir / 'last.pt'}")
    if args.export_dir:
        meta = export()
        say(f"exported model and EMA to {args.export_dir}: {meta['model'] + meta['ema']}")


if __name__ == "__main__":
    main()
