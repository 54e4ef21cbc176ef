"""gather_images: photographs come out of a git snapshot resized, and the evaluation set stays out."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

TOOL = Path(__file__).resolve().parents[1] / "gather_images.py"


def picture(seed: int, size=(640, 480)) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BILINEAR)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True)


def test_gather_resizes_skips_small_and_protects_the_eval_set(tmp_path):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    picture(100).save(eval_dir / "000000000009.jpg", quality=95)
    picture(101).save(eval_dir / "000000000025.jpg", quality=95)

    repo = tmp_path / "src"
    (repo / "photos").mkdir(parents=True)
    (repo / "other").mkdir()
    for i in range(6):
        picture(i).save(repo / "photos" / f"p{i}.jpg", quality=95)
    picture(6, (120, 90)).save(repo / "photos" / "tiny.jpg", quality=95)       # short side < 160
    picture(100).save(repo / "photos" / "000000000009.jpg", quality=95)        # an eval file name
    picture(101).save(repo / "photos" / "renamed.jpg", quality=90)             # an eval image, renamed
    picture(8).save(repo / "photos" / "COCO_train2014_000000000025.jpg")      # an eval id
    picture(2).save(repo / "photos" / "p2_copy.png")                           # a near duplicate
    picture(7).save(repo / "other" / "q.jpg", quality=95)                      # not included
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")

    root = tmp_path / "images"
    r = run(repo / ".git", "--folder", "photos", "--include", "^photos/", "--root", root,
            "--eval-dir", eval_dir, "--max-side", 320)
    assert r.returncode == 0, r.stderr
    assert "'kept': 6" in r.stdout and "'small': 1" in r.stdout and "'eval_near': 1" in r.stdout
    assert "'duplicate': 1" in r.stdout
    out = sorted((root / "photos").iterdir())
    assert len(out) == 6
    for p in out:
        with Image.open(p) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and max(im.size) == 320
    assert not any("000000000" in p.name or "renamed" in p.name for p in out)

    # a second folder from the same snapshot: what is already gathered counts as a duplicate
    r = run(repo / ".git", "--folder", "again", "--include", "^photos/p[01]", "--root", root,
            "--eval-dir", eval_dir)
    assert r.returncode == 0, r.stderr
    assert "'kept': 0" in r.stdout and "'duplicate': 2" in r.stdout

    # rebuilding a folder replaces it; --cap takes every k-th candidate
    r = run(repo / ".git", "--folder", "photos", "--include", "^photos/p", "--cap", 3,
            "--root", root, "--eval-dir", eval_dir)
    assert r.returncode == 0, r.stderr
    assert len(list((root / "photos").iterdir())) == 3


def test_gather_refuses_what_is_not_a_git_directory(tmp_path):
    r = run(tmp_path, "--folder", "x", "--root", tmp_path / "images",
            "--eval-dir", tmp_path)
    assert r.returncode != 0 and "no git directory" in r.stderr


def test_gather_rebuilds_the_rows_of_a_sources_table(tmp_path):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    picture(100).save(eval_dir / "000000000009.jpg")
    repo = tmp_path / "mirrors" / "someone+photos" / "repo"
    (repo / "a").mkdir(parents=True)
    for i in range(4):
        picture(i).save(repo / "a" / f"p{i}.jpg")
    picture(9).save(repo / "a" / "skip_me.jpg")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    table = tmp_path / "sources.tsv"
    table.write_text(
        "# comment\n"
        "folder\trepository\tcommit\tinclude\texclude\tcap\timages\tlicence\tdescription\n"
        "pics\tsomeone/photos\tHEAD\t^a/\tskip\t0\t4\tnone\ttest\n"
        "gone\tnobody/absent\tHEAD\t^a/\t-\t0\t1\tnone\tnot fetched\n")
    root = tmp_path / "images"
    r = run("--sources", table, "--mirrors", tmp_path / "mirrors", "--root", root, "--eval-dir", eval_dir)
    assert r.returncode == 0, r.stderr
    assert "pics: " in r.stdout and "'kept': 4" in r.stdout
    assert "gone: no snapshot of nobody/absent" in r.stderr
    assert sorted(p.name for p in (root / "pics").iterdir()) == [f"a_p{i}.jpg" for i in range(4)]
