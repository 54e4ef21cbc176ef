#!/usr/bin/env python3
"""Copy the photographs of a public repository snapshot into a training-image folder.

The training pool is kept outside the repository; `data_sources.tsv` lists where each of its
folders came from (repository, commit, which paths, how many). This tool rebuilds one folder
from a bare git directory of that repository (any clone or snapshot that holds the commit):

    python gather_images.py GITDIR --folder NAME --include REGEX [--exclude REGEX] \
        [--cap N] [--commit SHA] [--root <workdir>/images]

or every row of the table whose snapshot is found as MIRRORS/<owner>+<name>[/repo]:

    python gather_images.py --sources data_sources.tsv --mirrors DIR [--root ...]

Each image is decoded, turned upright (EXIF), converted to RGB, shrunk so its long side is at
most --max-side, and written as JPEG. Images whose short side is under --min-side are
skipped. The evaluation set is protected: files named like an evaluation image, paths with
`coco128` in them or a 12-digit COCO id of an evaluation image at the end of their name, and
images whose 16x16 grey thumbnail is within --eval-threshold (mean
absolute difference, 0-255) of an evaluation image's are dropped. Exact and near duplicates
(thumbnail within --dup-threshold) of images already gathered under --root are dropped too;
the thumbnails live in ROOT/.gather-state.npz. When there are more candidates than --cap,
every k-th one (sorted by path) is taken.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
DEFAULT_ROOT = HERE.parent.parent / "cache" / "train" / "images"
IMAGE_EXT = re.compile(r"\.(jpe?g|png|bmp|webp)$", re.I)
MAX_BLOB = 4 * 1024 * 1024  # snapshots leave out files of 4 MiB and more

Image.MAX_IMAGE_PIXELS = 200_000_000


def thumb(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L").resize((16, 16), Image.BOX), dtype=np.float32)


class State:
    """Thumbnails and content hashes of everything gathered under a root, and of the eval set."""

    def __init__(self, root: Path, eval_dir: Path):
        self.path = root / ".gather-state.npz"
        files = sorted(p for p in eval_dir.iterdir() if IMAGE_EXT.search(p.name))
        if not files:
            raise SystemExit(f"{eval_dir}: no evaluation images there (--eval-dir)")
        self.eval_names = {p.name.lower() for p in files}
        # COCO ids: the same picture is also shipped as COCO_train2014_000000000009.jpg etc.
        self.eval_ids = {p.stem for p in files if p.stem.isdigit() and len(p.stem) == 12}
        ev = []
        for p in files:
            with Image.open(p) as im:
                ev.append(thumb(ImageOps.exif_transpose(im).convert("RGB")))
        self.eval = np.stack(ev)
        if self.path.exists():
            d = np.load(self.path)
            self.thumbs, self.hashes, self.folders = d["thumbs"], d["hashes"], d["folders"]
        else:
            self.thumbs = np.zeros((0, 16, 16), np.float32)
            self.hashes = np.array([], dtype="<U32")
            self.folders = np.array([], dtype="<U64")

    def forget(self, folder: str) -> None:
        keep = self.folders != folder
        self.thumbs, self.hashes, self.folders = self.thumbs[keep], self.hashes[keep], self.folders[keep]

    def add(self, folder: str, thumbs: np.ndarray, hashes: list) -> None:
        if hashes:
            self.thumbs = np.concatenate([self.thumbs, thumbs])
            self.hashes = np.concatenate([self.hashes, np.array(hashes, dtype="<U32")])
            self.folders = np.concatenate([self.folders, np.array([folder] * len(hashes), dtype="<U64")])

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, thumbs=self.thumbs, hashes=self.hashes, folders=self.folders)
        tmp.replace(self.path)


def git_dir(path: Path) -> Path:
    for cand in (path, path / "repo", path / "repo" / ".git", path / ".git"):
        if (cand / "HEAD").is_file() and (cand / "objects").is_dir():
            return cand
    raise SystemExit(f"{path}: no git directory there")


def gather(gitdir: Path, folder: str, include: str, exclude: str | None, cap: int,
           commit: str, root: Path, state: State, args) -> dict:
    rx, ex = re.compile(include), re.compile(exclude) if exclude else None
    listing = subprocess.run(["git", "--git-dir", str(gitdir), "ls-tree", "-r", "-l", commit],
                             capture_output=True, text=True)
    if listing.returncode != 0:
        raise SystemExit(f"{gitdir}: cannot list {commit}: {listing.stderr.strip()}")
    cands = []
    for line in listing.stdout.splitlines():
        meta, path = line.split("\t", 1)
        _, typ, sha, size = meta.split()
        if typ != "blob" or not size.isdigit() or not IMAGE_EXT.search(path):
            continue
        if not rx.search(path) or (ex and ex.search(path)):
            continue
        stem = Path(path).stem
        if ("coco128" in path.lower() or Path(path).name.lower() in state.eval_names
                or stem[-12:] in state.eval_ids):
            continue
        if not 3000 <= int(size) < MAX_BLOB:
            continue
        cands.append((path, sha))
    cands.sort()
    stride = max(1, math.ceil(len(cands) / (cap * 1.1))) if cap else 1
    out = root / folder
    state.forget(folder)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    stats = dict(candidates=len(cands), stride=stride, kept=0, small=0, undecodable=0,
                 duplicate=0, eval_near=0)
    hashes = set(state.hashes.tolist())
    new_h = []
    # thumbnails of the images kept so far (new_h's order), filled in place, not re-stacked
    kept_t = np.empty((len(cands[::stride]), 16, 16), np.float32)
    cat = subprocess.Popen(["git", "--git-dir", str(gitdir), "cat-file", "--batch"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        for path, sha in cands[::stride]:
            if cap and stats["kept"] >= cap:
                break
            cat.stdin.write((sha + "\n").encode())
            cat.stdin.flush()
            header = cat.stdout.readline().split()
            data = cat.stdout.read(int(header[2]))
            cat.stdout.read(1)
            digest = hashlib.md5(data).hexdigest()
            if digest in hashes:
                stats["duplicate"] += 1
                continue
            try:
                im = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
            except Exception:
                stats["undecodable"] += 1
                continue
            if min(im.size) < args.min_side:
                stats["small"] += 1
                continue
            if max(im.size) > args.max_side:
                s = args.max_side / max(im.size)
                im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))),
                               Image.LANCZOS)
            t = thumb(im)
            if np.abs(state.eval - t).mean(axis=(1, 2)).min() < args.eval_threshold:
                stats["eval_near"] += 1
                continue
            if any(len(seen) and np.abs(seen - t).mean(axis=(1, 2)).min() < args.dup_threshold
                   for seen in (state.thumbs, kept_t[:len(new_h)])):
                stats["duplicate"] += 1
                continue
            kept_t[len(new_h)] = t
            hashes.add(digest)
            new_h.append(digest)
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(Path(path).with_suffix("")))[-120:]
            im.save(out / f"{name}.jpg", "JPEG", quality=90)
            stats["kept"] += 1
    finally:
        cat.stdin.close()
        cat.wait()
    state.add(folder, kept_t[:len(new_h)], new_h)
    state.save()
    return stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("gitdir", nargs="?", type=Path, help="git directory of one repository")
    p.add_argument("--folder", help="output folder name under --root")
    p.add_argument("--include", default="", help="regular expression a path must match")
    p.add_argument("--exclude", default=None, help="regular expression a path must not match")
    p.add_argument("--cap", type=int, default=0, help="at most this many images; 0 = all")
    p.add_argument("--commit", default="HEAD")
    p.add_argument("--sources", type=Path, help="a table like data_sources.tsv: rebuild its rows")
    p.add_argument("--mirrors", type=Path, help="with --sources: where <owner>+<name> snapshots are")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="training-image folders")
    p.add_argument("--eval-dir", type=Path, default=DATA / "coco-dev" / "images",
                   help="evaluation images that must never be gathered")
    p.add_argument("--eval-threshold", type=float, default=6.0)
    p.add_argument("--dup-threshold", type=float, default=3.0)
    p.add_argument("--min-side", type=int, default=160)
    p.add_argument("--max-side", type=int, default=512)
    args = p.parse_args()

    jobs = []
    if args.sources:
        if not args.mirrors:
            raise SystemExit("--sources needs --mirrors")
        with open(args.sources, newline="") as f:
            for row in csv.DictReader((l for l in f if not l.startswith("#")), delimiter="\t"):
                snap = args.mirrors / row["repository"].replace("/", "+")
                if not snap.exists():
                    print(f"{row['folder']}: no snapshot of {row['repository']} in {args.mirrors}; skipped",
                          file=sys.stderr)
                    continue
                jobs.append((git_dir(snap), row["folder"], row["include"],
                             row["exclude"] if row["exclude"] not in ("", "-") else None,
                             int(row["cap"]), row["commit"]))
    elif args.gitdir and args.folder:
        jobs.append((git_dir(args.gitdir), args.folder, args.include, args.exclude, args.cap,
                     args.commit))
    else:
        raise SystemExit("give GITDIR --folder NAME, or --sources TABLE --mirrors DIR")
    args.root.mkdir(parents=True, exist_ok=True)
    state = State(args.root, args.eval_dir)
    for job in jobs:
        stats = gather(*job, args.root, state, args)
        print(f"{job[1]}: {stats}", flush=True)


if __name__ == "__main__":
    main()
