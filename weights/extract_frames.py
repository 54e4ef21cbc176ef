#!/usr/bin/env python3
"""Extract still frames from video files (mp4, mkv, avi, mov, webm, gif) as JPEG images.

Frames are sampled every ``--every`` seconds (or every frame of short clips that have
fewer frames than that), and a frame that barely differs from the last one written
(mean absolute difference of 64x64 grey thumbnails below ``--min-change``) is skipped,
so static scenes do not flood the training pool with duplicates.  Output:
``OUT/<video name>/<video stem>_f<frame index>.jpg``.

Example::

    python extract_frames.py /data/videos --out /data/images/videos --every 1.0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".gif")


def thumb(img: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)


def extract(video: Path, out_dir: Path, every_s: float, min_change: float,
            max_frames: int, quality: int) -> int:
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    step = max(1, int(round(every_s * fps)))
    written, last, index = 0, None, 0
    out_dir.mkdir(parents=True, exist_ok=True)
    while written < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        if index % step == 0:
            t = thumb(frame)
            if last is None or float(np.abs(t - last).mean()) >= min_change:
                name = out_dir / f"{video.stem}_f{index:06d}.jpg"
                cv2.imwrite(str(name), frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
                written, last = written + 1, t
        index += 1
    cap.release()
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", type=Path, help="video files or folders (recursive)")
    p.add_argument("--out", type=Path, required=True, help="output image folder")
    p.add_argument("--every", type=float, default=1.0, help="seconds between frames")
    p.add_argument("--min-change", type=float, default=4.0,
                   help="skip frames whose thumbnail differs less than this (0-255 scale)")
    p.add_argument("--max-per-video", type=int, default=500)
    p.add_argument("--quality", type=int, default=95, help="JPEG quality")
    args = p.parse_args(argv)
    videos = []
    for i in args.inputs:
        videos += [i] if i.is_file() else sorted(
            f for f in i.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES)
    total = 0
    for v in videos:
        n = extract(v, args.out / v.stem, args.every, args.min_change, args.max_per_video,
                    args.quality)
        print(f"{v}: {n} frames", file=sys.stderr)
        total += n
    print(f"{total} frames from {len(videos)} videos")


if __name__ == "__main__":
    main()
