"""Weighted box fusion on small, hand-checkable inputs."""

import numpy as np
import pytest

from effyolo_tools.wbf import weighted_boxes_fusion


def arr(x):
    return np.array(x, np.float32).reshape(-1, 4)


def test_agreeing_boxes_are_fused_with_score_weighted_coordinates():
    f = weighted_boxes_fusion([arr([0.0, 0.0, 0.4, 0.4]), arr([0.02, 0.0, 0.42, 0.4])],
                              [np.array([0.9]), np.array([0.3])],
                              [np.array([0]), np.array([0])])
    assert len(f) == 1
    assert f.scores[0] == pytest.approx(0.6)
    assert f.detector_scores[0] == pytest.approx([0.9, 0.3])
    assert f.boxes[0, 0] == pytest.approx(0.02 * 0.3 / 1.2)
    assert f.members[0] == 2


def test_one_detector_only_keeps_half_score():
    f = weighted_boxes_fusion([arr([0.1, 0.1, 0.2, 0.2]), arr([])],
                              [np.array([0.8]), np.array([])],
                              [np.array([2]), np.array([], np.int64)])
    assert f.scores[0] == pytest.approx(0.4)
    assert f.detector_scores[0] == pytest.approx([0.8, 0.0])


def test_class_aware_and_iou_threshold():
    b = arr([0.0, 0.0, 0.5, 0.5])
    # same box, different classes: not fused
    f = weighted_boxes_fusion([b, b], [np.array([0.5]), np.array([0.5])],
                              [np.array([0]), np.array([1])])
    assert len(f) == 2
    # same class, IoU 0.5 < 0.55: not fused
    f = weighted_boxes_fusion([b, arr([0.0, 0.0, 0.5, 0.25])],
                              [np.array([0.5]), np.array([0.5])],
                              [np.array([0]), np.array([0])])
    assert len(f) == 2


def test_weights():
    b = arr([0.0, 0.0, 0.5, 0.5])
    f = weighted_boxes_fusion([b, b], [np.array([0.9]), np.array([0.3])],
                              [np.array([0]), np.array([0])], weights=[2, 1])
    assert f.scores[0] == pytest.approx((2 * 0.9 + 0.3) / 3)
