#!/usr/bin/env bash
# Prints the path of the weight file the demo and the end-to-end tests use: the shipped
# weights/effyolo-l1.safetensors, or, until that exists, synthetic reference weights
# (untrained, deterministic; the same tensors as the PyTorch reference's synthetic model),
# written to target/weights/effyolo-l1-synthetic.safetensors with the 80 COCO class names
# from $EFFYOLO_DATA/coco-classes.txt (default ../shared/data next to the checkout).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if [ -f weights/effyolo-l1.safetensors ]; then
  echo "$root/weights/effyolo-l1.safetensors"
  exit 0
fi
out=target/weights/effyolo-l1-synthetic.safetensors
classes="${EFFYOLO_DATA:-../shared/data}/coco-classes.txt"
args=("$out")
[ -f "$classes" ] && args+=(--classes "$classes")
# Written every time (a second): it must match the model code of this checkout.
cargo run --quiet --release --example export_synthetic -- "${args[@]}" >&2
echo "$root/$out"
