"""Pseudo-label cache: save, load, lookup and forgetting deleted images."""

import numpy as np
import pytest

from effyolo_tools.cache import LabelCache, file_key


def labels(n, t=2):
    return {"boxes": np.random.rand(n, 4), "classes": np.arange(n), "scores": np.full(n, 0.5),
            "teacher_scores": np.full((n, t), 0.5), "members": np.ones(n)}


def test_round_trip_and_freshness(tmp_path):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    a, b = root / "a.jpg", root / "sub" / "b.jpg"
    a.write_bytes(b"x")
    b.write_bytes(b"yy")
    cache = LabelCache({"teachers": [{"name": "t1"}, {"name": "t2"}]})
    cache.put(a, root, 64, 48, file_key(a), labels(3))
    cache.put(b, root, 32, 32, file_key(b), labels(0))
    cache.save(tmp_path / "cache")

    loaded = LabelCache.load(tmp_path / "cache")
    assert loaded.settings == cache.settings
    la = loaded.get(a)
    assert la["boxes"].shape == (3, 4) and la["teacher_scores"].shape == (3, 2)
    assert np.allclose(la["boxes"], cache.get(a)["boxes"])
    assert loaded.get(b)["scores"].shape == (0,)
    assert loaded.is_fresh(a, file_key(a))
    b.write_bytes(b"changed")
    assert not loaded.is_fresh(b, file_key(b))

    a.unlink()
    assert loaded.drop_missing() == 1
    loaded.save(tmp_path / "cache")
    again = LabelCache.load(tmp_path / "cache")
    assert again.get(a) is None and again.get(b) is not None


def cache_with(tmp_path, images):
    """A one-teacher cache of files under tmp_path/imgs: name -> (classes, scores)."""
    root = tmp_path / "imgs"
    root.mkdir()
    cache = LabelCache({"teachers": [{"name": "t1"}]})
    for name, (classes, scores) in images.items():
        f = root / name
        f.write_bytes(name.encode())
        n = len(classes)
        cache.put(f, root, 8, 8, file_key(f), {
            "boxes": np.zeros((n, 4)), "classes": np.array(classes), "scores": np.array(scores),
            "teacher_scores": np.zeros((n, 1)), "members": np.ones(n)})
    return cache


def test_class_counts_by_score(tmp_path):
    cache = cache_with(tmp_path, {"a.jpg": ([0, 0, 2], [0.9, 0.1, 0.3]),
                                  "b.jpg": ([2], [0.25])})
    assert cache.class_counts(0.25, 3).tolist() == [1, 0, 2]
    assert cache.class_counts(0.0, 3).tolist() == [2, 0, 2]
    with pytest.raises(ValueError, match="outside"):
        cache.class_counts(0.0, 2)


def test_pseudo_label_stats_prints_named_counts(tmp_path, capsys):
    import json

    from pseudo_label import main

    cache_with(tmp_path, {"a.jpg": ([1, 1, 0], [0.5, 0.6, 0.1])}).save(tmp_path / "cache")
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n")
    main(["--out", str(tmp_path / "cache"), "--stats", "--classes", str(names)])
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 1 and out["boxes"] == 3 and out["boxes_at_min_score"] == 2
    assert list(out["per_class"].items()) == [("dog", 2), ("cat", 0)]
    with pytest.raises(SystemExit, match="no label cache"):
        main(["--out", str(tmp_path / "absent"), "--stats"])
