"""Training code: losses, batches, schedule and exact resume (small, CPU-only)."""

import csv
import math

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from effyolo_ref.model import DEFAULT_ANCHORS, STRIDES, Detect  # noqa: E402
from effyolo_train.data import AugConfig, BatchMaker, ImagePool  # noqa: E402
from effyolo_train.engine import learning_rate  # noqa: E402
from effyolo_train.loss import DenseDistillLoss, YoloLoss, bbox_ciou, level_views  # noqa: E402

ANCHORS = torch.tensor(DEFAULT_ANCHORS)


def test_ciou_identical_boxes_is_one_and_finite():
    b = torch.tensor([[10.0, 20.0, 5.0, 7.0], [100.0, 50.0, 30.0, 60.0]])
    iou = bbox_ciou(b, b.clone())
    assert torch.isfinite(iou).all()
    assert torch.allclose(iou, torch.ones(2), atol=1e-5)


def _logit(v):
    v = v.clamp(1e-6, 1 - 1e-6)
    return torch.log(v / (1 - v))


def test_yolo_loss_is_small_for_perfect_predictions():
    size, nc, na = 256, 80, 3
    loss = YoloLoss(ANCHORS, STRIDES, nc)
    targets = torch.tensor([[0, 0, 0.5, 0.5, 0.2, 0.4, 1.0], [1, 5, 0.3, 0.7, 0.05, 0.06, 0.5]])
    shapes = [(size // s, size // s) for s in STRIDES]
    tcls, tbox, ind, anch, _ = loss.build_targets(shapes, targets)
    assert sum(len(i[0]) for i in ind) >= 2 * 3  # each target matches several cells
    p = [torch.full((2, na, ny, nx, nc + 5), -12.0) for ny, nx in shapes]
    for i in range(3):
        b, a, gj, gi = ind[i]
        p[i][b, a, gj, gi, 0:2] = _logit((tbox[i][:, :2] + 0.5) / 2)
        p[i][b, a, gj, gi, 2:4] = _logit(torch.sqrt(tbox[i][:, 2:] / anch[i]) / 2)
        p[i][b, a, gj, gi, 4] = 12.0
        p[i][b, a, gj, gi, 5 + tcls[i]] = 12.0
    labelled = torch.tensor([True, True])
    lbox, lobj, lcls = loss(p, targets, labelled)
    assert float(lbox) < 1e-4 and float(lobj) < 1e-3 and float(lcls) < 1e-3
    rbox, robj, rcls = loss([torch.randn_like(x) for x in p], targets, labelled)
    assert float(rbox) > 0.1 and float(robj) > 0.1 and float(rcls) > 0.1
    # unlabelled images contribute no objectness term
    _, lobj_none, _ = loss(p, targets[:0], torch.tensor([False, False]))
    assert float(lobj_none) == 0.0


def test_dense_distillation_against_own_decode():
    nc, na, size = 80, 3, 128
    head = Detect(nc, DEFAULT_ANCHORS, [8, 8, 8])
    shapes = [(size // s, size // s) for s in STRIDES]
    torch.manual_seed(0)
    raw = [torch.randn(2, na * (nc + 5), ny, nx) for ny, nx in shapes]
    raw[0][:, 4::nc + 5] += 3.0  # some confident cells
    teacher = head.decode(raw)
    kobj, kcls, kbox, agree = DenseDistillLoss(ANCHORS, STRIDES, 0.3)(level_views(raw, na), teacher)
    assert float(kbox) < 1e-4 and float(agree) == 1.0
    # objectness/class BCE against its own probabilities is at its minimum (the entropy)
    other, _, _, _ = DenseDistillLoss(ANCHORS, STRIDES)(level_views([r + 1 for r in raw], na), teacher)
    assert float(other) > float(kobj)


def _image_folder(tmp_path, n=6):
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(n):
        h, w = int(rng.integers(40, 120)), int(rng.integers(40, 120))
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    return folder


def _label_cache(tmp_path, folder):
    from effyolo_tools.cache import LabelCache, file_key

    cache = LabelCache({"teachers": [{"name": "a"}, {"name": "b"}]})
    for i, path in enumerate(sorted(folder.glob("*.png"))):
        img = cv2.imread(str(path))
        boxes = np.array([[0.1, 0.2, 0.6, 0.9], [0.5, 0.5, 0.7, 0.6]], np.float32)
        cache.put(path.resolve(), folder.resolve(), img.shape[1], img.shape[0], file_key(path),
                  {"boxes": boxes, "classes": [0, 2 + i % 3], "scores": [0.9, 0.2 + 0.1 * i],
                   "teacher_scores": np.zeros((2, 2)), "members": [2, 1]})
    cache.save(tmp_path / "labels")
    return tmp_path / "labels"


def test_batches_are_deterministic_and_boxes_in_range(tmp_path):
    folder = _image_folder(tmp_path)
    pool = ImagePool.load([folder])
    assert pool.attach_labels(str(_label_cache(tmp_path, folder)), min_score=0.25) == len(pool)
    maker = BatchMaker(pool, 64, seed=3, aug=AugConfig(mosaic=0.5))
    a, b = maker.batch(8, 4), BatchMaker(pool, 64, seed=3, aug=AugConfig(mosaic=0.5)).batch(8, 4)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.targets, b.targets)
    assert not np.array_equal(a.images, maker.batch(12, 4).images)
    assert a.images.shape == (4, 64, 64, 3) and a.labelled.all()
    t = a.targets
    assert (t[:, 2:6] >= 0).all() and (t[:, 2:6] <= 1).all() and (t[:, 6] >= 0.25).all()
    # the sample stream visits every image once per epoch
    assert sorted(maker.stream(0, len(pool))) == list(range(len(pool)))


def test_repeat_factor_sampling():
    from effyolo_train.data import Labels, repeat_factors

    def lab(*classes):
        n = len(classes)
        return Labels(np.zeros((n, 4), np.float32), np.array(classes, np.int64), np.ones(n, np.float32))

    # five labelled images (one without boxes): class 0 in four (f = 0.8), class 1 in one
    # (f = 0.2); the unlabelled image and the empty one keep factor 1
    labels = [lab(0), lab(0, 1), lab(0), lab(0), None, lab()]
    assert np.allclose(repeat_factors(labels, 0.0), 1.0)
    r = repeat_factors(labels, 0.8)
    assert np.allclose(r, [1.0, 2.0, 1.0, 1.0, 1.0, 1.0])      # sqrt(0.8 / 0.2) = 2
    r = repeat_factors(labels, 0.4)
    assert np.allclose(r[1], np.sqrt(2.0)) and np.allclose(np.delete(r, 1), 1.0)

    class FakePool:
        def __init__(self, labels):
            self.labels = labels

        def __len__(self):
            return len(self.labels)

    plain = BatchMaker(FakePool(labels), 64, seed=5, aug=AugConfig())
    assert plain.epoch_length == len(labels)
    # t = 0.8: image 1 twice per epoch, every other image once; a pure function of position
    maker = BatchMaker(FakePool(labels), 64, seed=5, aug=AugConfig(), repeat_thresh=0.8)
    assert maker.epoch_length == len(labels) + 1
    epoch = maker.stream(0, maker.epoch_length)
    assert sorted(epoch) == [0, 1, 1, 2, 3, 4, 5]
    again = BatchMaker(FakePool(labels), 64, seed=5, aug=AugConfig(), repeat_thresh=0.8)
    assert np.array_equal(again.stream(3, 20), maker.stream(3, 20))
    # fractional factors: floor or floor + 1 per image, the same every epoch
    frac = BatchMaker(FakePool(labels), 64, seed=5, aug=AugConfig(), repeat_thresh=0.4)
    assert frac.epoch_length in (len(labels), len(labels) + 1)
    assert sorted(frac.stream(0, frac.epoch_length)) == sorted(
        frac.stream(frac.epoch_length, frac.epoch_length))


def test_evaluation_folder_is_refused(tmp_path):
    folder = _image_folder(tmp_path)
    with pytest.raises(ValueError):
        ImagePool.load([folder], exclude=[folder])


def test_learning_rate_schedule():
    lr = lambda i: learning_rate(i, 1e-3, 100, 1100, 0.05)  # noqa: E731
    assert lr(0) == pytest.approx(1e-5) and lr(99) == pytest.approx(1e-3)
    assert lr(600) == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))
    assert lr(1100) == pytest.approx(5e-5) and lr(5000) == pytest.approx(5e-5)
    assert all(lr(i) >= lr(i + 50) for i in range(100, 1100, 50))


def _losses(path):
    with open(path) as f:
        return {int(r["image_iterations"]): float(r["loss"]) for r in csv.DictReader(f)}


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    import train

    folder = _image_folder(tmp_path)
    labels = _label_cache(tmp_path, folder)
    common = [str(folder), "--labels", str(labels), "--no-distill", "--size", "64", "--batch", "2",
              "--log-every", "1", "--eval-every", "0", "--warmup-images", "4", "--threads", "1"]
    train.main(common + ["--workdir", str(tmp_path / "a"), "--stop-after", "8"])
    train.main(common + ["--workdir", str(tmp_path / "b"), "--stop-after", "4"])
    train.main(["--workdir", str(tmp_path / "b"), "--resume", "--stop-after", "4"])
    a, b = _losses(tmp_path / "a" / "train_log.csv"), _losses(tmp_path / "b" / "train_log.csv")
    assert sorted(a) == sorted(b) == [2, 4, 6, 8]
    for k in a:
        assert math.isfinite(a[k]) and a[k] == b[k]


def test_batch_workers_do_not_change_the_run(tmp_path):
    """Batches built by several threads arrive in the same order: the same losses, bit for bit."""
    import train

    folder = _image_folder(tmp_path)
    labels = _label_cache(tmp_path, folder)
    common = [str(folder), "--labels", str(labels), "--no-distill", "--size", "64", "--batch", "2",
              "--log-every", "1", "--eval-every", "0", "--warmup-images", "4", "--threads", "1",
              "--stop-after", "8", "--device", "cpu"]
    train.main(common + ["--workdir", str(tmp_path / "one")])
    train.main(common + ["--workdir", str(tmp_path / "three"), "--workers", "3"])
    one, three = _losses(tmp_path / "one" / "train_log.csv"), _losses(tmp_path / "three" / "train_log.csv")
    assert sorted(one) == sorted(three) == [2, 4, 6, 8]
    assert all(one[k] == three[k] for k in one)


def test_missing_cuda_device_is_refused(tmp_path):
    import torch
    import train

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    folder = _image_folder(tmp_path)
    labels = _label_cache(tmp_path, folder)
    with pytest.raises(SystemExit, match="no CUDA device"):
        train.main([str(folder), "--labels", str(labels), "--no-distill", "--size", "64",
                    "--workdir", str(tmp_path / "w"), "--device", "cuda", "--stop-after", "2"])


def test_bf16_default_and_warning_read_cpu_flags():
    from train import cpu_has_native_bf16, cpu_lacks_native_bf16
    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma f16c\n"
    bf16 = "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"
    amx = "flags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n"
    arm_bf16 = "Features\t: fp asimd bf16\n"
    arm = "Features\t: fp asimd\n"
    assert cpu_lacks_native_bf16(avx2) and not cpu_has_native_bf16(avx2)
    assert not cpu_lacks_native_bf16(bf16) and cpu_has_native_bf16(bf16)
    assert not cpu_lacks_native_bf16(amx) and cpu_has_native_bf16(amx)
    assert not cpu_lacks_native_bf16(arm_bf16) and cpu_has_native_bf16(arm_bf16)
    assert not cpu_lacks_native_bf16(arm) and not cpu_has_native_bf16(arm)   # not x86: no warning
    assert not cpu_lacks_native_bf16("") and not cpu_has_native_bf16("")


def test_resume_chooses_bf16_afresh(tmp_path):
    """A checkpoint's bf16 setting belongs to the machine it was made on: --resume leaves it
    to the default (or to --bf16 / --no-bf16 given now) and keeps the other arguments."""
    import torch
    import train

    workdir = tmp_path / "w"
    (workdir / "ckpt").mkdir(parents=True)
    saved = vars(train.parse_args(["--workdir", str(workdir), "--size", "320", "--bf16"])[0])
    assert saved["bf16"] is True
    torch.save({"format": train.CKPT_FORMAT, "args": saved}, workdir / "ckpt" / "last.pt")
    args, _ = train.parse_args(["--workdir", str(workdir), "--resume"])
    assert args.bf16 is None and args.size == 320
    args, _ = train.parse_args(["--workdir", str(workdir), "--resume", "--bf16"])
    assert args.bf16 is True
    args, _ = train.parse_args(["--workdir", str(workdir), "--resume", "--no-bf16"])
    assert args.bf16 is False
