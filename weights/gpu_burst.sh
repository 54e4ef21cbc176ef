#!/bin/bash
# Runs ON the lent GPU machine (the device tool's run), from the repository root, after
# weights/gpu_prepare.sh filled .gpu/ here: trains the shipped weights further on the pack for
# MINUTES minutes, the teacher on the GPU, and writes the model and EMA to $OUT/burst (parts
# under 16 MiB) with the log in $OUT/burst.log. See weights/gpu.md.
#
#   bash weights/gpu_burst.sh [MINUTES] [train.py options...]
set -euo pipefail
MINUTES=${1:-7}
[ $# -gt 0 ] && shift
OUT=${OUT:?OUT must name the folder that comes back}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
cd weights
python3 train.py --pack ../.gpu/pack --teacher ../.gpu/yolov5n.onnx --teacher-device train \
  --device cuda --workers "$(( $(nproc) - 2 ))" --worker-processes --threads 2 \
  --batch 64 --lr 3e-3 --repeat-thresh 0.05 \
  --init-weights effyolo-l1.safetensors --start-images "$(cat ../.gpu/start_images)" \
  --minutes "$MINUTES" --workdir /tmp/burst --eval-every 0 --ckpt-minutes 2 --log-every 20 \
  --export-dir "$OUT/burst" "$@" 2>&1 | tee "$OUT/burst.log"
