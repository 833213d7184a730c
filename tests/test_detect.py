"""Face detection on composed multi-face photos of matplotlib's public-domain portrait."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from frlib import detect
from frlib.detect import compose_faces, detect_faces, iou

# (x, y, width, mirror) of each pasted face box; faces at least 60 px wide, apart from each other.
SCENES = {
    "one": [(250, 160, 150, False)],
    "one-mirrored-small": [(40, 300, 64, True)],
    "two": [(60, 80, 120, False), (380, 200, 180, True)],
    "three": [(45, 150, 110, False), (230, 60, 140, True), (430, 220, 170, False)],
    "four": [
        (40, 40, 90, False),
        (360, 30, 110, True),
        (70, 290, 130, True),
        (420, 270, 150, False),
    ],
}


def assert_matches(found, expected, min_iou=0.5):
    """Every expected face found once at IoU >= min_iou, and nothing else."""
    assert len(found) == len(expected), f"found {found}, expected {expected}"
    unused = list(found)
    for box in expected:
        best = max(unused, key=lambda b: iou(box, b))
        assert iou(box, best) >= min_iou, f"{box} best match {best} IoU {iou(box, best):.2f}"
        unused.remove(best)


@pytest.mark.parametrize("name", list(SCENES))
@pytest.mark.parametrize("textured", [True, False], ids=["textured", "plain"])
def test_finds_every_face_and_nothing_else(name, textured):
    img, expected = compose_faces((640, 480), SCENES[name], seed=3, textured=textured)
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    assert len(expected) == len(SCENES[name])
    found = detect_faces(img)
    assert_matches(found, expected)
    assert found == sorted(found), "boxes are sorted left-to-right then top-to-bottom"


def test_default_photo_has_three_faces_one_mirrored():
    img, expected = compose_faces()
    assert img.shape == (480, 640, 3)
    assert [b[2] - b[0] for b in expected] == [110, 140, 170]
    assert any(p[3] for p in detect.DEFAULT_PLACEMENTS)
    assert_matches(detect_faces(img), expected)


@pytest.mark.parametrize("seed", range(4))
def test_other_seeds_and_mirrors(seed):
    placements = [(60, 120, 120, bool(seed % 2)), (360, 160, 160, not seed % 2)]
    img, expected = compose_faces((640, 480), placements, seed=seed)
    assert_matches(detect_faces(img), expected)


def test_compose_is_deterministic_and_boxes_follow_placements():
    a, boxes_a = compose_faces(seed=5)
    b, boxes_b = compose_faces(seed=5)
    c, _ = compose_faces(seed=6)
    assert np.array_equal(a, b) and boxes_a == boxes_b
    assert not np.array_equal(a, c)
    for (x, y, w, _mirror), box in zip(detect.DEFAULT_PLACEMENTS, boxes_a, strict=True):
        assert abs(box[0] - x) <= 1 and abs(box[1] - y) <= 1 and abs(box[2] - (x + w)) <= 1


def test_portrait_face_constant_matches_the_detector():
    portrait = detect._portrait()
    h, w = portrait.shape[:2]
    (box,) = detect_faces(portrait)
    f = detect.PORTRAIT_FACE
    assert iou(box, (f[0] * w, f[1] * h, f[2] * w, f[3] * h)) > 0.9


@pytest.mark.parametrize("kind", ["uniform", "noise", "textured", "plain"])
def test_no_face_gives_no_box(kind):
    rng = np.random.default_rng(0)
    if kind == "uniform":
        img = np.full((480, 640, 3), 128, np.uint8)
    elif kind == "noise":
        img = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    else:
        img, boxes = compose_faces((640, 480), [], seed=1, textured=kind == "textured")
        assert boxes == []
    assert detect_faces(img) == []


def test_large_image_boxes_are_in_input_pixels():
    placements = [(200, 300, 500, False), (1100, 900, 700, True), (2150, 400, 600, False)]
    img, expected = compose_faces((3000, 2000), placements, seed=2)
    assert img.shape == (2000, 3000, 3)
    found = detect_faces(img)
    assert_matches(found, expected)
    assert max(b[2] for b in found) > 2500, "boxes are mapped back to the 3000 px image"
    # Searching the full-size image gives the same faces.
    assert_matches(detect_faces(img, max_side=4000), expected)


def test_grey_photo_converted_back_to_rgb():
    img, expected = compose_faces(seed=4)
    grey = (img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    assert_matches(detect_faces(rgb), expected)
    # A plain HxW grey array is accepted too.
    assert_matches(detect_faces(grey), expected)


def test_min_size_drops_smaller_faces():
    img, expected = compose_faces((640, 480), SCENES["two"], seed=0)
    assert_matches(detect_faces(img, min_size=150), expected[1:])


def test_rejects_non_uint8_and_bad_shapes():
    with pytest.raises(ValueError, match="uint8"):
        detect_faces(np.zeros((48, 48, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        detect_faces(np.zeros((48, 48, 2), np.uint8))


def test_missing_cascade_says_how_to_fix(monkeypatch, tmp_path):
    import cv2

    monkeypatch.setattr(detect, "_cascade_path", None)
    monkeypatch.setattr(detect, "_local", threading.local())
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path))
    with pytest.raises(RuntimeError, match=r'pip install "opencv-python-headless<5"'):
        detect_faces(np.zeros((64, 64, 3), np.uint8))


def test_detection_from_threads():
    img, expected = compose_faces()
    results = [None] * 4

    def work(i):
        results[i] = detect_faces(img)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for found in results:
        assert_matches(found, expected)


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (2, 2, 8, 8)) == pytest.approx(36 / 100)
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_overlapping_boxes_are_merged():
    boxes = [(0, 0, 100, 100), (10, 5, 105, 100), (300, 300, 350, 350), (20, 20, 90, 90)]
    kept = detect._suppress(boxes, [5.0, 9.0, 3.0, 1.0])
    assert sorted(kept) == [(10, 5, 105, 100), (300, 300, 350, 350)]
