"""Prepared data: crops cached once, splits by source image, failures reported, not fatal."""

import json

import numpy as np
import pytest

from conftest import image_bytes
from frlib.config import Config
from frlib.cropstore import DiskCrops
from frlib.data import prepare
from frlib.labels import MISSING


@pytest.fixture(scope="module")
def synthetic_config(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return Config.smoke(data=[f"synthetic:{root / 'syn'}?images=60"], cache_dir=str(root / "cache"))


def test_prepare_synthetic(synthetic_config):
    data = prepare(synthetic_config, progress=False)
    assert data.crops.dtype == np.uint8 and data.crops.shape[1:] == (64, 64, 3)
    assert len(data) == data.report["faces"]["usable"] == sum(data.report["splits"].values())
    images = [set(data.groups[idx]) for idx in data.split.values()]
    assert (
        not (images[0] & images[1]) and not (images[0] & images[2]) and not (images[1] & images[2])
    )
    assert (data.labels["emotion"] == 4).any()  # not_face boxes
    not_face = data.labels["emotion"] == 4
    assert (data.labels["gender"][not_face] == MISSING).all()
    # Second prepare reuses the on-disk crop cache instead of decoding images again.
    import frlib.data

    def no_rebuild(*args):
        raise AssertionError("crops rebuilt although cached")

    original, frlib.data._build_crops = frlib.data._build_crops, no_rebuild
    try:
        again = prepare(synthetic_config, progress=False)
        on_disk = prepare(synthetic_config.replace(in_memory_mb=0), progress=False)
    finally:
        frlib.data._build_crops = original
    assert np.array_equal(np.asarray(again.crops), np.asarray(data.crops))
    assert all(np.array_equal(again.split[k], data.split[k]) for k in data.split)
    # Larger-than-RAM mode reads the same crops from disk batch by batch.
    assert isinstance(on_disk.crops, DiskCrops) and len(on_disk.crops) == len(data)
    rows = np.array([5, 2, 3, 40, 4])
    assert np.array_equal(on_disk.crops[rows], np.asarray(data.crops)[rows])
    assert np.array_equal(on_disk.crops[7], np.asarray(data.crops)[7])


def test_bad_images_are_counted_and_skipped(tmp_path, http_server):
    (tmp_path / "ok.jpg").write_bytes(image_bytes("JPEG", size=(120, 100)))
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    url_ok = http_server.add("/remote.png", image_bytes("PNG", size=(90, 90)))
    url_dead = http_server.url("/dead.jpg")
    box = {
        "points": [{"x": 0.2, "y": 0.2}, {"x": 0.6, "y": 0.7}],
        "imageWidth": 1,
        "imageHeight": 1,
    }
    rows = [
        {"content": c, "annotation": [{**box, "label": ["Emotion_Happy", "G_Male"]}]}
        for c in ("ok.jpg", "corrupt.jpg", "missing.jpg", url_ok, url_dead)
    ]
    ann = tmp_path / "faces.json"
    ann.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    config = Config(data=[str(ann)], cache_dir=str(tmp_path / "cache"), image_size=32, retries=0)
    data = prepare(config, progress=False)
    assert len(data) == 2
    failed = {f["source"].rsplit("/", 1)[-1]: f["reason"] for f in data.report["images"]["failed"]}
    assert set(failed) == {"corrupt.jpg", "missing.jpg", "dead.jpg"}
    assert failed["dead.jpg"] == "HTTP 404" and failed["missing.jpg"] == "file not found"
    assert "not an image" in failed["corrupt.jpg"] or "corrupt" in failed["corrupt.jpg"]
    assert data.report["images"]["ok"] == 2
    assert any(s["reason"].startswith("malformed JSON") for s in data.report["faces"]["skipped"])
