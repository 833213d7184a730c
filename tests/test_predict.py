"""Prediction: faces found where they were placed, every input kind, clear errors for bad ones."""

import io

import numpy as np
import pytest
from PIL import Image

from conftest import image_bytes, png_bomb_bytes
from frlib.config import Config
from frlib.detect import compose_faces, iou
from frlib.images import ImageError
from frlib.labels import TASKS
from frlib.predict import Predictor, annotate
from frlib.train import train


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    config = Config.smoke(
        data=[f"synthetic:{root / 'syn'}?images=40"],
        cache_dir=str(root / "cache"),
        out=str(root / "run"),
        epochs=1,
    )
    return Predictor.load(train(config, verbose=0))


@pytest.fixture(scope="module")
def photo():
    return compose_faces()


def _jpeg(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_every_face_of_a_multi_face_photo(predictor, photo):
    image, boxes = photo
    result = predictor.predict(image)
    assert result["face_detected"] is True
    assert len(result["faces"]) == len(boxes) == 3
    for face, expected in zip(
        sorted(result["faces"], key=lambda f: f["box"][0]), sorted(boxes), strict=True
    ):
        assert iou(face["box"], expected) > 0.5
        for task, classes in TASKS.items():
            assert face[task]["label"] in classes
            assert sum(face[task]["probs"].values()) == pytest.approx(1.0, abs=1e-3)


def test_all_input_kinds_agree(predictor, photo, tmp_path, http_server):
    image, _ = photo
    data = _jpeg(image)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    url = http_server.add("/photo.jpg", data)
    results = [
        predictor.predict(x) for x in (str(path), path, url, data, Image.open(io.BytesIO(data)))
    ]
    boxes = [[f["box"] for f in r["faces"]] for r in results]
    assert all(b == boxes[0] for b in boxes)
    assert results[2]["input"] == url


def test_exif_rotated_photo_boxes_are_in_oriented_pixels(predictor, photo):
    image, boxes = photo
    rotated = np.ascontiguousarray(np.rot90(image, k=1))  # what the viewer shows
    stored = Image.fromarray(np.rot90(rotated, k=-1))  # what the camera stored ...
    exif = stored.getexif()
    exif[0x0112] = 8  # ... with "rotate 90 CW to display" (orientation 8)
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif, quality=92)
    result = predictor.predict(buf.getvalue())
    assert result["image_size"] == [rotated.shape[1], rotated.shape[0]]


def test_no_face_classifies_the_whole_image_flagged(predictor):
    blank = np.full((200, 300, 3), 180, np.uint8)
    result = predictor.predict(blank)
    assert result["face_detected"] is False
    assert result["faces"][0]["box"] == [0, 0, 300, 200]
    assert "emotion" in result["faces"][0]


@pytest.mark.parametrize(
    "bad,message",
    [
        (b"<html>404</html>", "not an image"),
        (png_bomb_bytes(50_000, 50_000), "pixel limit"),
        ("file:///etc/passwd", "unsupported scheme"),
        ("ftp://example.org/x.jpg", "unsupported scheme"),
        ("/no/such/photo.jpg", "not found"),
    ],
)
def test_bad_inputs_raise_image_error(predictor, bad, message):
    with pytest.raises(ImageError, match=message):
        predictor.predict(bad)


def test_unreachable_and_html_urls(predictor, http_server):
    html = http_server.add("/page", "<html>hi</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(ImageError, match="not an image"):
        predictor.predict(html)
    with pytest.raises(ImageError, match="404"):
        predictor.predict(http_server.url("/gone.jpg"))


def test_batch_prediction_keeps_going_after_a_bad_input(predictor, photo, tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(image_bytes("PNG", size=(120, 90)))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    results = predictor.predict_many([photo[0], str(bad), str(good)])
    assert len(results[0]["faces"]) == 3
    assert "error" in results[1] and "bad.jpg" in results[1]["error"]
    assert results[2]["face_detected"] is False and len(results[2]["faces"]) == 1


def test_annotate_draws_boxes(predictor, photo):
    image, _ = photo
    result = predictor.predict(image)
    drawn = np.asarray(annotate(image, result))
    assert drawn.shape == image.shape
    x0, y0, x1, y1 = result["faces"][0]["box"]
    assert not np.array_equal(drawn[y0, x0:x1], image[y0, x0:x1])  # the box's top edge
