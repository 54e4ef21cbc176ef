"""Training on another machine: packs, batch-building processes, the device-side teacher,
and moving weights between runs (init from a weight file, export, adopt). CPU-only."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from effyolo_train.data import ImagePool  # noqa: E402
from test_train import _image_folder, _label_cache, _losses  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _classes(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("\n".join(f"c{i}" for i in range(80)) + "\n")
    return path


def _make_pack(tmp_path, folder, labels, *extra):
    import make_pack

    out = tmp_path / "pack"
    make_pack.main([str(folder), "--out", str(out), "--labels", str(labels),
                    "--classes", str(_classes(tmp_path)), "--eval-data", str(tmp_path / "none"),
                    "--max-side", "64", *extra])
    return out


def test_pack_holds_the_images_and_their_labels(tmp_path):
    folder = _image_folder(tmp_path)
    labels = _label_cache(tmp_path, folder)
    pack = _make_pack(tmp_path, folder, labels)
    meta = json.loads((pack / "pack.json").read_text())
    assert meta["images"] == 6 and meta["class_names"][3] == "c3" and meta["min_score"] == 0.25

    src = ImagePool.load([folder], max_side=64)
    src.attach_labels(str(labels), 0.25)
    packed = ImagePool.from_pack(str(pack), 0.25)
    assert sorted(p.split("/")[-1] for p in packed.paths) == sorted(Path(p).name for p in src.paths)
    by_name = {Path(p).name: i for i, p in enumerate(src.paths)}
    for i, p in enumerate(packed.paths):
        j = by_name[p.split("/")[-1]]
        assert packed.images[i].shape == src.images[j].shape
        # JPEG at quality 70 of noise: close on average, not equal
        assert np.abs(packed.images[i].astype(int) - src.images[j]).mean() < 60
        a, b = packed.labels[i], src.labels[j]
        assert np.array_equal(a.classes, b.classes)
        assert np.allclose(a.boxes, b.boxes, atol=1e-3) and np.allclose(a.weights, b.weights, atol=1e-3)
    # boxes below the pack's score threshold are not in it
    with pytest.raises(ValueError, match="min-box-score"):
        ImagePool.from_pack(str(pack), 0.1)


def test_pack_budget_and_truncation(tmp_path):
    folder = _image_folder(tmp_path)
    labels = _label_cache(tmp_path, folder)
    full = _make_pack(tmp_path, folder, labels)
    with np.load(full / "index.npz") as z:
        two = int(z["jpeg_offsets"][2])   # the first two images of the (seeded) order
    pack = _make_pack(tmp_path, folder, labels, "--budget-mib", str((two + 1) / 2**20))
    assert json.loads((pack / "pack.json").read_text())["images"] == 2
    assert (pack / "images.bin").stat().st_size == two
    blob = pack / "images.bin"
    blob.write_bytes(blob.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        ImagePool.from_pack(str(pack))


def _run(tmp_path, name, *args):
    import train

    train.main(["--size", "64", "--batch", "2", "--log-every", "1", "--eval-every", "0",
                "--warmup-images", "4", "--threads", "1", "--workdir", str(tmp_path / name), *args])
    return tmp_path / name


def test_worker_processes_do_not_change_the_run(tmp_path):
    folder = _image_folder(tmp_path)
    labels = _label_cache(tmp_path, folder)
    common = [str(folder), "--labels", str(labels), "--no-distill", "--stop-after", "8"]
    threads = _run(tmp_path, "threads", *common, "--workers", "2")
    procs = _run(tmp_path, "procs", *common, "--workers", "2", "--worker-processes")
    a, b = _losses(threads / "train_log.csv"), _losses(procs / "train_log.csv")
    assert sorted(a) == sorted(b) == [2, 4, 6, 8]
    assert all(a[k] == b[k] for k in a)


def test_burst_from_weights_on_a_pack_then_adopted(tmp_path):
    from effyolo_ref.io import export_state, load_model
    from effyolo_ref.model import DetectorConfig, EffYolo
    from effyolo_train.transfer import read_export

    folder = _image_folder(tmp_path)
    labels = _label_cache(tmp_path, folder)
    pack = _make_pack(tmp_path, folder, labels)
    # a weight file in the shipped format, trained at another size (the bias grid resamples)
    cfg = DetectorConfig.for_variant("l1", class_names=[f"c{i}" for i in range(80)],
                                     train_size=(128, 128))
    torch.manual_seed(1)
    src = EffYolo(cfg)
    export_state(src.eval(), str(tmp_path / "w.safetensors"), dtype="f16")

    # the burst: lr 0 keeps the weights, so they must equal the file's
    burst = _run(tmp_path, "burst", "--pack", str(pack), "--no-distill", "--init-weights",
                 str(tmp_path / "w.safetensors"), "--start-images", "1000", "--stop-after", "4",
                 "--lr", "0", "--export-dir", str(tmp_path / "export"))
    meta, model_state, ema_state = read_export(tmp_path / "export")
    assert meta["start_images"] == 1000 and meta["image_iterations"] == 1004
    assert meta["image_iterations_done"] == 4 and meta["steps"] == 2 and meta["ema_updates"] == 2
    assert all(p.stat().st_size < 16 * 2**20 for p in (tmp_path / "export").iterdir())   # the return limit
    shipped = load_model(str(tmp_path / "w.safetensors")).state_dict()
    name = next(k for k, v in shipped.items() if v.ndim == 4)
    assert torch.equal(model_state[name].float(), shipped[name].float())
    assert sorted(_losses(burst / "train_log.csv")) == [1002, 1004]

    # a CPU run adopts it: continues at the burst's count with the burst's weights (lr 0
    # keeps them) and EMA update count
    common = [str(folder), "--labels", str(labels), "--no-distill"]
    for run in ("kept", "ramp"):
        _run(tmp_path, run, *common, "--stop-after", "4")
    _run(tmp_path, "kept", "--resume", "--adopt", str(tmp_path / "export"), "--stop-after", "4",
         "--lr", "0")
    ckpt = torch.load(tmp_path / "kept" / "ckpt" / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["image_iterations"] == 1008 and ckpt["ema_updates"] == 4
    assert torch.equal(ckpt["model"][name], model_state[name].float())
    # with a learning rate, it ramps up again from the adoption
    ramp = _run(tmp_path, "ramp", "--resume", "--adopt", str(tmp_path / "export"), "--stop-after", "4")
    rows = list(csv.DictReader(open(ramp / "train_log.csv")))
    assert [int(r["image_iterations"]) for r in rows] == [2, 4, 1006, 1008]
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    lrs = [float(r["lr"]) for r in rows]
    assert 0 < lrs[2] < lrs[3] and lrs[2] < lrs[1]

    # --ema-updates sets the EMA's count once; the next resume goes on counting from there
    _run(tmp_path, "kept", "--resume", "--ema-updates", "50000", "--stop-after", "4", "--lr", "0")
    ckpt = torch.load(tmp_path / "kept" / "ckpt" / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["ema_updates"] == 50002
    _run(tmp_path, "kept", "--resume", "--stop-after", "4", "--lr", "0")
    ckpt = torch.load(tmp_path / "kept" / "ckpt" / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["ema_updates"] == 50004


def test_pack_run_keeps_its_labels_at_checkpoints(tmp_path):
    """A label cache at --labels is for folder runs: a run on a pack keeps the pack's labels
    when checkpoints look for a changed cache."""
    folder = _image_folder(tmp_path)
    labels = _label_cache(tmp_path, folder)
    pack = _make_pack(tmp_path, folder, labels)
    run = _run(tmp_path, "p", "--pack", str(pack), "--no-distill", "--labels", str(labels),
               "--ckpt-minutes", "0", "--stop-after", "6")
    rows = list(csv.DictReader(open(run / "train_log.csv")))
    assert len(rows) == 3 and all(float(r["labelled_frac"]) == 1.0 for r in rows)


def test_adopt_needs_resume(tmp_path):
    with pytest.raises(SystemExit, match="--adopt needs --resume"):
        _run(tmp_path, "x", "--adopt", str(tmp_path))


def test_device_teacher_matches_onnxruntime():
    pytest.importorskip("onnx2torch")
    path = DATA / "teachers" / "yolov5n.onnx"
    if not path.exists():
        pytest.skip(f"no teacher at {path}")
    from effyolo_train.teacher import DenseTeacher, TorchTeacher

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (2, 96, 128, 3), dtype=np.uint8)
    want = DenseTeacher(str(path))(images)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    got = TorchTeacher(str(path), "cpu")(x.contiguous(memory_format=torch.channels_last)).numpy()
    assert got.shape == want.shape
    # boxes in pixels (up to ~100), probabilities in [0, 1]
    assert np.abs(got - want).max() < 1e-3 * max(1.0, np.abs(want).max())
