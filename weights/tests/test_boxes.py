"""NMS: early stopping after max_keep returns the prefix of the full result."""

import numpy as np

from effyolo_tools.boxes import batched_nms, box_iou, nms


def test_nms_prefix_and_suppression():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (500, 2))
    boxes = np.hstack([xy, xy + rng.uniform(5, 30, (500, 2))]).astype(np.float32)
    scores = rng.uniform(0, 1, 500)
    full = nms(boxes, scores, 0.5)
    assert np.array_equal(nms(boxes, scores, 0.5, max_keep=20), full[:20])
    iou = box_iou(boxes[full], boxes[full])
    np.fill_diagonal(iou, 0)
    assert iou.max() <= 0.5


def test_batched_nms_keeps_overlapping_boxes_of_other_classes():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    keep = batched_nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([0, 0, 1]), 0.5)
    assert sorted(keep.tolist()) == [0, 2]
