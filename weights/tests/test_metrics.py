"""COCO-style AP on hand-made cases with known answers."""

import numpy as np
import pytest

from effyolo_tools.metrics import ImageBoxes, evaluate, recall_by_size


def gt(boxes, classes):
    return ImageBoxes(np.array(boxes, np.float32).reshape(-1, 4), np.array(classes))


def pred(boxes, classes, scores):
    return ImageBoxes(np.array(boxes, np.float32).reshape(-1, 4), np.array(classes),
                      np.array(scores, np.float64))


def test_perfect_detections_give_ap_one():
    g = [gt([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 3])]
    p = [pred([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 3], [0.9, 0.8])]
    r = evaluate(p, g)
    assert r.ap50() == pytest.approx(1.0)
    assert r.ap50_95() == pytest.approx(1.0)
    assert r.ap50([0]) == pytest.approx(1.0)


def test_no_detections_give_zero_and_classes_without_gt_are_ignored():
    g = [gt([[0, 0, 10, 10]], [0])]
    p = [pred([[50, 50, 60, 60]], [5], [0.9])]       # class 5 has no ground truth
    r = evaluate(p, g)
    assert r.ap50() == 0.0
    assert np.isnan(r.ap[5, 0])


def test_half_recall_and_ranking():
    # Two objects; the top-scored detection is a false positive, then one true positive.
    g = [gt([[0, 0, 10, 10], [20, 0, 30, 10]], [0, 0])]
    p = [pred([[100, 100, 110, 110], [0, 0, 10, 10]], [0, 0], [0.9, 0.5])]
    r = evaluate(p, g)
    # precision envelope is 0.5 up to recall 0.5 (51 of the 101 points), 0 after
    assert r.ap50() == pytest.approx(51 * 0.5 / 101)


def test_iou_threshold_dependence():
    # IoU of these boxes is 0.6: a hit for thresholds 0.50..0.60 (3 of 10)
    g = [gt([[0, 0, 10, 10]], [0])]
    p = [pred([[0, 0, 10, 6]], [0], [0.9])]
    r = evaluate(p, g)
    assert r.ap50() == pytest.approx(1.0)
    assert r.ap50_95() == pytest.approx(0.3)


def test_duplicate_detection_is_a_false_positive():
    g = [gt([[0, 0, 10, 10]], [0])]
    p = [pred([[0, 0, 10, 10], [0, 0, 10, 10]], [0, 0], [0.9, 0.8])]
    r = evaluate(p, g)
    assert r.ap50() == pytest.approx(1.0)   # the duplicate ranks after full recall


def test_recall_by_size_buckets_classes_and_scores():
    gt = ImageBoxes(np.array([[0, 0, 10, 10],       # small, class 0
                              [0, 0, 50, 50],       # medium, class 0
                              [0, 0, 200, 200],     # large, class 1
                              [300, 300, 310, 310]  # small, class 0, missed
                              ], np.float32), np.array([0, 0, 1, 0]))
    pred = ImageBoxes(np.array([[0, 0, 10, 10],     # finds the small one
                                [0, 0, 50, 50],     # right place, score too low
                                [0, 0, 200, 200],   # wrong class for the large box
                                [1, 1, 10, 10]      # duplicate of the small one: no second hit
                                ], np.float32),
                      np.array([0, 0, 2, 0]), np.array([0.9, 0.1, 0.9, 0.8]))
    r = recall_by_size([pred], [gt], min_score=0.25)
    assert r == {"small": (1, 2), "medium": (0, 1), "large": (0, 1)}
    assert recall_by_size([pred], [gt], min_score=0.05, classes=[0]) == \
        {"small": (1, 2), "medium": (1, 1), "large": (0, 0)}
