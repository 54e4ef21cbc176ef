"""Pseudo-label cache: save, load, lookup and forgetting deleted images."""

import numpy as np

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
