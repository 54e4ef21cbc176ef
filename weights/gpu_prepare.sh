#!/bin/sh
# Prepares .gpu/ (ignored by git) for a training burst on a lent GPU machine: the onnx2torch
# wheel, the yolov5n teacher, the image-iteration count of the shipped weights (the burst's
# starting point) and a training pack sized so that the working tree that travels stays
# under 64 MiB. See weights/gpu.md.
#
#   weights/gpu_prepare.sh START_IMAGES [make_pack.py options...]
#
# START_IMAGES: the image-iteration count of weights/effyolo-l1.safetensors (MODEL_CARD.md).
# Environment: PY (python with the requirements, default python3), DATA (../shared/data).
set -eu
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 START_IMAGES [make_pack.py options...]" >&2; exit 2; }
START=$1; shift
case $START in *[!0-9]*|'') echo "START_IMAGES must be a number, got '$START'" >&2; exit 2;; esac
PY=${PY:-python3}
DATA=${DATA:-../shared/data}
LIMIT_MIB=63   # the device takes 64 MiB of working tree; keep one for margin

rm -rf .gpu && mkdir -p .gpu
"$PY" -m pip download -q --no-deps --only-binary=:all: -d .gpu 'onnx2torch==1.5.15'
cp "$DATA/teachers/yolov5n.onnx" .gpu/
echo "$START" > .gpu/start_images

# what travels besides the pack: tracked files, untracked files git does not ignore, .gpu/
tracked=$(git ls-files -z | xargs -0 stat -c %s | awk '{s+=$1} END {print s+0}')
untracked=$( (git ls-files -z --others --exclude-standard | xargs -0 -r stat -c %s) | awk '{s+=$1} END {print s+0}')
extra=$(du -sb .gpu | cut -f1)
budget=$(awk -v t="$tracked" -v u="$untracked" -v e="$extra" -v l="$LIMIT_MIB" \
  'BEGIN {b = l - (t + u + e) / 1048576 - 0.3; printf "%.2f", b}')
echo "tracked $((tracked / 1048576)) MiB, untracked $((untracked / 1048576)) MiB, .gpu so far $((extra / 1024)) KiB: pack budget $budget MiB"
awk -v b="$budget" 'BEGIN {exit !(b > 4)}' || { echo "no room left for a pack" >&2; exit 1; }
(cd weights && "$PY" make_pack.py --out ../.gpu/pack --budget-mib "$budget" "$@")
total=$(( tracked + untracked + $(du -sb .gpu | cut -f1) ))
echo "travels: $((total / 1048576)) MiB of 64 (carry .gpu)"
