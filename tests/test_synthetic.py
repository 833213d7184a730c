"""The built-in synthetic cartoon faces: format, determinism, reuse, balance, no colour cue."""

from __future__ import annotations

import collections
import json
import os

import numpy as np
import pytest
from PIL import Image

from frlib import synthetic
from frlib.labels import TASKS, parse_dataturks_labels

N_IMAGES = 200


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = synthetic.generate(tmp_path_factory.mktemp("synth") / "data", n_images=N_IMAGES, seed=0)
    records = [json.loads(line) for line in (root / "annotations.json").read_text().splitlines()]
    return root, records


def _pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _face_crops(root, records):
    """(mean RGB of the tight box, parsed labels) for every face box."""
    out = []
    for rec in records:
        img = _pixels(root / rec["content"])
        height, width, _ = img.shape
        for box in rec["annotation"]:
            labels, _ = parse_dataturks_labels(box["label"])
            if labels["emotion"] == "not_face":
                continue
            p0, p1 = box["points"]
            crop = img[
                round(p0["y"] * height) : round(p1["y"] * height),
                round(p0["x"] * width) : round(p1["x"] * width),
            ]
            out.append((crop.reshape(-1, 3).mean(0), labels))
    return out


def test_same_seed_is_identical_and_other_seed_differs(tmp_path):
    a = synthetic.generate(tmp_path / "a", n_images=6, seed=3)
    b = synthetic.generate(tmp_path / "b", n_images=6, seed=3)
    c = synthetic.generate(tmp_path / "c", n_images=6, seed=4)
    assert a == tmp_path / "a"
    assert (a / "annotations.json").read_bytes() == (b / "annotations.json").read_bytes()
    for i in range(6):
        name = f"images/img_{i:05d}.png"
        assert np.array_equal(_pixels(a / name), _pixels(b / name))
    assert (a / "annotations.json").read_bytes() != (c / "annotations.json").read_bytes()
    first_a, first_c = _pixels(a / "images/img_00000.png"), _pixels(c / "images/img_00000.png")
    assert first_a.shape != first_c.shape or not np.array_equal(first_a, first_c)


def test_fewer_images_give_a_prefix(tmp_path):
    small = synthetic.generate(tmp_path / "small", n_images=3, seed=7)
    big = synthetic.generate(tmp_path / "big", n_images=6, seed=7)
    small_lines = (small / "annotations.json").read_text().splitlines()
    assert small_lines == (big / "annotations.json").read_text().splitlines()[:3]


def test_reuse_and_regenerate(tmp_path):
    out = tmp_path / "data"
    synthetic.generate(out, n_images=4, seed=1)
    files = [out / "annotations.json", out / "params.json", out / "images/img_00000.png"]
    before = [f.stat().st_mtime_ns for f in files]
    assert synthetic.generate(out, n_images=4, seed=1) == out
    assert synthetic.ensure(out, n_images=4, seed=1) == out
    assert [f.stat().st_mtime_ns for f in files] == before

    synthetic.ensure(out, n_images=5, seed=1)  # different parameters: regenerated
    assert json.loads((out / "params.json").read_text()) == {
        "n_images": 5,
        "seed": 1,
        "version": synthetic.VERSION,
    }
    assert len(list((out / "images").iterdir())) == 5
    assert len((out / "annotations.json").read_text().splitlines()) == 5
    assert (out / "README.md").read_text().strip()
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no temporary siblings left


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    real = synthetic._make_image
    calls = []

    def failing(rng):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(rng)

    monkeypatch.setattr(synthetic, "_make_image", failing)
    with pytest.raises(KeyboardInterrupt):
        synthetic.generate(tmp_path / "data", n_images=5, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_stale_temporary_from_dead_process_is_removed(tmp_path):
    if os.name != "posix":
        pytest.skip("liveness check is POSIX-only")
    stale = tmp_path / ".data.partial-999999999-abc"
    (stale / "images").mkdir(parents=True)
    synthetic.generate(tmp_path / "data", n_images=2, seed=0)
    assert not stale.exists()


def test_foreign_folder_is_not_replaced(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        synthetic.generate(out, n_images=2, seed=0)
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_progress_bar(tmp_path, capsys):
    synthetic.generate(tmp_path / "data", n_images=2, seed=0, progress=True)
    assert "synthetic" in capsys.readouterr().err


def test_format_and_boxes(dataset):
    root, records = dataset
    assert len(records) == N_IMAGES
    assert [r["content"] for r in records] == [f"images/img_{i:05d}.png" for i in range(N_IMAGES)]
    for rec in records:
        assert set(rec) == {"content", "annotation", "extras"} and rec["extras"] is None
        with Image.open(root / rec["content"]) as im:
            assert im.mode == "RGB" and im.format == "PNG"
            width, height = im.size
        assert 240 <= width <= 400 and 240 <= height <= 400
        faces = 0
        pixel_boxes = []
        for box in rec["annotation"]:
            assert set(box) == {"label", "notes", "points", "imageWidth", "imageHeight"}
            assert (box["imageWidth"], box["imageHeight"]) == (width, height)
            labels, problems = parse_dataturks_labels(box["label"])
            assert all(p.startswith("conflicting") for p in problems), problems
            faces += labels["emotion"] != "not_face"
            p0, p1 = box["points"]
            assert 0 <= p0["x"] < p1["x"] <= 1 and 0 <= p0["y"] < p1["y"] <= 1
            x0, y0 = round(p0["x"] * width), round(p0["y"] * height)
            x1, y1 = round(p1["x"] * width), round(p1["y"] * height)
            assert 40 <= x1 - x0 <= 140 and 40 <= y1 - y0 <= 140
            pixel_boxes.append((x0, y0, x1, y1))
        assert 1 <= faces <= 4
        for i, a in enumerate(pixel_boxes):  # no two boxes overlap
            for b in pixel_boxes[i + 1 :]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_every_class_and_edge_case_occurs(dataset):
    root, records = dataset
    counts = {task: collections.Counter() for task in TASKS}
    raw = collections.Counter()
    orders = set()
    conflicts = missing = grey = 0
    for rec in records:
        img = _pixels(root / rec["content"])
        grey += bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())
        for box in rec["annotation"]:
            raw.update(box["label"])
            orders.add(tuple(label.split("_")[0] for label in box["label"]))
            labels, problems = parse_dataturks_labels(box["label"])
            conflicts += bool(problems)
            if labels["emotion"] != "not_face":
                missing += any(v is None for v in labels.values())
            for task, value in labels.items():
                counts[task][value] += 1
    for task, classes in TASKS.items():
        for name in classes:
            assert counts[task][name] > 0, (task, name)
        face_counts = [counts[task][c] for c in classes if c != "not_face"]
        assert max(face_counts) < 2.5 * min(face_counts), (task, face_counts)  # roughly balanced
    faces = sum(v for k, v in counts["emotion"].items() if k != "not_face")
    assert counts["emotion"]["not_face"] >= 10
    assert 0.05 * faces < missing < 0.25 * faces
    assert 0 < conflicts < 0.08 * faces
    assert 0.03 * N_IMAGES <= grey <= 0.2 * N_IMAGES
    for spelling in ("G_ Female", "E_Arab", "Age_below20", "Age_above_50", "Not_Face"):
        assert raw[spelling] > 0, spelling
    assert len(orders) > 10  # label order within a box varies, like the real file


def test_labels_not_predictable_from_mean_colour(dataset):
    """Guard against colour cues (e.g. skin tone): mean crop colour must say ~nothing."""
    root, records = dataset
    crops = _face_crops(root, records)
    assert len(crops) > 300
    for task, classes in TASKS.items():
        rows = [(m, labels[task]) for m, labels in crops if labels[task] is not None]
        x = np.array([m for m, _ in rows])
        y = np.array([c for _, c in rows])
        present = [c for c in classes if (y == c).any()]
        centroids = np.array([x[y == c].mean(0) for c in present])
        # Per-class mean colours stay within a few grey levels of the overall mean ...
        assert np.abs(centroids - x.mean(0)).max() < 15, task
        # ... and a nearest-centroid classifier on mean colour is at chance (2-fold).
        correct = 0
        for fold in (0, 1):
            train, test = np.arange(len(y)) % 2 != fold, np.arange(len(y)) % 2 == fold
            cents = np.array([x[train & (y == c)].mean(0) for c in present])
            dist = ((x[test][:, None, :] - cents[None]) ** 2).sum(-1)
            correct += (np.array(present)[dist.argmin(1)] == y[test]).sum()
        assert correct / len(y) < 1 / len(present) + 0.1, task
