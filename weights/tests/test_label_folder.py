"""label_folder: a pseudo-label cache becomes an images/ + labels/ folder that eval reads."""

from pathlib import Path

import numpy as np
import pytest

from effyolo_tools.cache import LabelCache, file_key
from effyolo_tools.labels import label_path_for, read_yolo_labels
from label_folder import build


def test_cache_to_folder_keeps_boxes_above_threshold(tmp_path):
    root = tmp_path / "pool"
    root.mkdir()
    cache = LabelCache({})
    for i in range(5):
        f = root / f"img{i}.jpg"
        f.write_bytes(bytes([i]) * 10)
        labels = {"boxes": np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]]),
                  "classes": np.array([i, 7]), "scores": np.array([0.9, 0.1]),
                  "teacher_scores": np.zeros((2, 2)), "members": np.ones(2)}
        cache.put(f, root, 100, 50, file_key(f), labels)
    out = tmp_path / "folder"
    assert build(cache, out, sample=3, seed=1, min_score=0.25) == (3, 3)
    images = sorted((out / "images").iterdir())
    assert [p.name for p in images] == ["0000.jpg", "0001.jpg", "0002.jpg"]
    sources = dict(line.split("\t") for line in (out / "sources.txt").read_text().splitlines())
    for img in images:
        src = sources[img.name]
        assert img.read_bytes() == Path(src).read_bytes()
        boxes, classes = read_yolo_labels(label_path_for(img), 100, 50)
        assert classes.tolist() == [int(src[-5])]                    # the 0.1-score box is dropped
        assert np.allclose(boxes, [[10, 10, 50, 30]], atol=1e-3)     # pixels, xyxy
    with pytest.raises(SystemExit):
        build(cache, out)                                            # never overwrites
