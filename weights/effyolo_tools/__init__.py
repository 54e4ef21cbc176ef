"""Shared helpers for the effyolo weight-building tools.

Modules:
    images   -- image discovery and loading (one convention for every tool)
    boxes    -- box conversions, IoU and non-maximum suppression (NumPy)
    teachers -- onnxruntime wrappers for the COCO teacher detectors
    wbf      -- class-aware weighted box fusion of several detectors' boxes
    metrics  -- COCO-style average precision (AP50, AP50-95)
    labels   -- YOLO-txt ground-truth reading
    cache    -- the pseudo-label cache (labels.npz + manifest.json)
"""

__all__ = ["images", "boxes", "teachers", "wbf", "metrics", "labels", "cache"]
