"""tf.data pipeline: augmentation only in train, labels keyed by task with -1 for missing."""

import numpy as np
import pytest

from conftest import collect_batches
from frlib.config import Config
from frlib.data import prepare
from frlib.labels import TASKS


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    config = Config.smoke(data=[f"synthetic:{root / 'syn'}?images=40"], cache_dir=str(root / "c"))
    return config, prepare(config, progress=False)


def test_val_batches_are_the_crops_unchanged(data):
    from frlib.pipeline import make_dataset

    config, prepared = data
    images, labels = collect_batches(make_dataset(prepared, "val", config))
    rows = prepared.split["val"]
    assert images.dtype == np.float32
    assert np.array_equal(images, np.asarray(prepared.crops[rows], np.float32))
    for task in TASKS:
        assert np.array_equal(labels[task], prepared.labels[task][rows])
    again, _ = collect_batches(make_dataset(prepared, "val", config))
    assert np.array_equal(images, again)


def test_train_batches_are_augmented_and_keep_labels(data):
    from frlib.pipeline import make_dataset

    config, prepared = data
    first, labels = collect_batches(make_dataset(prepared, "train", config))
    rows = prepared.split["train"]
    assert first.shape == (len(rows), config.image_size, config.image_size, 3)
    assert first.min() >= 0.0 and first.max() <= 255.0
    # Shuffled and augmented: no image equals its source crop, labels follow their images.
    raw = np.asarray(prepared.crops[rows], np.float32)
    assert not any(np.array_equal(first[0], r) for r in raw)
    for task in TASKS:
        assert sorted(labels[task].tolist()) == sorted(prepared.labels[task][rows].tolist())
        assert (labels[task] >= -1).all()
    # Augmentation without shuffling: each image stays close to its own crop.
    plain = config.replace(augment=False)
    unaugmented, _ = collect_batches(make_dataset(prepared, "train", plain))
    assert not np.array_equal(np.sort(unaugmented.ravel()), np.sort(first.ravel()))
    assert np.array_equal(np.sort(unaugmented, axis=None), np.sort(raw, axis=None))
