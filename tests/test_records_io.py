"""Sharded TFRecords: export, read back the same faces and labels, train from the shards."""

import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import collect_batches
from frlib.cli import main
from frlib.config import Config
from frlib.data import prepare
from frlib.labels import TASKS
from frlib.records_io import read_examples, read_tfrecords, tfrecord_dir, write_tfrecords
from frlib.train import train

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    config = Config.smoke(data=[f"synthetic:{root / 'syn'}?images=40"], cache_dir=str(root / "c"))
    data = prepare(config, progress=False)
    paths = write_tfrecords(data, str(root / "shards"), shards=3, seed=config.seed)
    return config, data, root / "shards", paths


def _as_multiset(images: np.ndarray, labels: dict[str, np.ndarray]) -> list[tuple]:
    """Each face as (pixels, labels...), sorted: compares two datasets regardless of order."""
    rows = zip(images.astype(np.uint8), *(labels[t] for t in TASKS), strict=True)
    return sorted((image.tobytes(), *map(int, tags)) for image, *tags in rows)


def test_shards_and_meta_are_written_per_split(exported):
    config, data, folder, paths = exported
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["image_size"] == config.image_size == 64
    assert meta["counts"] == {s: len(data.split[s]) for s in SPLITS}
    for split in SPLITS:
        count = min(3, len(data.split[split]))
        expected = [f"{split}-{i:05d}-of-{count:05d}.tfrecord" for i in range(count)]
        assert meta["shards"][split] == expected
        assert all((folder / name).is_file() for name in expected)
    assert len(paths) == sum(len(names) for names in meta["shards"].values())
    assert not list(folder.glob("*.part"))
    assert set(meta["vocabulary"]) == set(TASKS)


@pytest.mark.parametrize("split", SPLITS)
def test_read_back_gives_the_same_faces_and_labels(exported, split):
    config, data, folder, _ = exported
    images, labels = collect_batches(read_tfrecords(str(folder), split, config, training=False))
    assert images.dtype == np.float32 and images.shape[1:] == (64, 64, 3)
    assert all(labels[t].dtype == np.int32 for t in TASKS)
    assert _as_multiset(images, labels) == _as_multiset(*data.subset(split))


def test_group_keys_travel_with_their_faces(exported):
    config, data, folder, _ = exported
    groups = [
        g.decode()
        for batch in read_examples(str(folder), "train", config.image_size)
        for g in batch["group"].numpy()
    ]
    assert sorted(groups) == sorted(str(g) for g in data.groups[data.split["train"]])


def test_training_stream_is_shuffled_augmented_and_complete(exported):
    config, data, folder, _ = exported
    plain = config.replace(augment=False, shuffle_buffer=8)
    images, labels = collect_batches(read_tfrecords(str(folder), "train", plain, batch_size=7))
    assert _as_multiset(images, labels) == _as_multiset(*data.subset("train"))
    augmented, _ = collect_batches(read_tfrecords(str(folder), "train", config))
    assert augmented.shape == images.shape
    assert augmented.min() >= 0.0 and augmented.max() <= 255.0
    assert not np.array_equal(np.sort(augmented, axis=None), np.sort(images, axis=None))


def test_a_glob_of_shards_can_be_read_too(exported):
    config, data, folder, _ = exported
    images, labels = collect_batches(
        read_tfrecords(str(folder / "val-*.tfrecord"), "val", config, training=False)
    )
    assert _as_multiset(images, labels) == _as_multiset(*data.subset("val"))


def test_clear_errors(exported, tmp_path):
    config, _, folder, _ = exported
    with pytest.raises(FileNotFoundError, match="meta.json not found"):
        read_tfrecords(str(tmp_path), "train", config)
    with pytest.raises(ValueError, match="set image_size=64"):
        read_tfrecords(str(folder), "train", config.replace(image_size=96))
    with pytest.raises(FileNotFoundError, match="no TFRecord files match"):
        read_tfrecords(str(tmp_path / "*.tfrecord"), "train", config)
    with pytest.raises(ValueError, match="can't be combined"):
        tfrecord_dir([f"tfrecord:{folder}", "synthetic:data/x"])
    assert tfrecord_dir(["synthetic:data/x"]) is None


def test_a_changed_image_size_in_the_records_is_caught(exported, tmp_path):
    config, data, _, _ = exported
    small = tmp_path / "shards"
    write_tfrecords(data, str(small), shards=1)
    meta = json.loads((small / "meta.json").read_text())
    meta["image_size"] = 32  # lie about the size: the per-example shape check must catch it
    (small / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(tf.errors.InvalidArgumentError, match="image sizes differ"):
        collect_batches(read_tfrecords(str(small), "val", config.replace(image_size=32)))


def test_train_from_tfrecords_runs_an_epoch(exported, tmp_path):
    config, data, folder, _ = exported
    run_config = config.replace(data=[f"tfrecord:{folder}"], epochs=1, out=str(tmp_path / "run"))
    run = train(run_config, verbose=0)
    with (run / "history.csv").open() as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0]
    for name in ("model.keras", "config.json", "vocabulary.json", "split.json", "run.json"):
        assert (run / name).is_file(), name
    meta = json.loads((folder / "meta.json").read_text())
    assert json.loads((run / "split.json").read_text()) == meta["split"]
    from frlib.evaluate import evaluate_run

    report = evaluate_run(run)  # scores the test shards
    assert report["gender"]["support"] == int(
        (data.labels["gender"][data.split["test"]] >= 0).sum()
    )


def test_cli_prepare_exports_tfrecords(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FRLIB_CACHE", str(tmp_path / "cache"))
    code = main(
        [
            "prepare",
            "--smoke",
            "--data",
            f"synthetic:{tmp_path / 'syn'}?images=20",
            "--out",
            str(tmp_path / "prepared"),
            "--to-tfrecord",
            str(tmp_path / "shards"),
            "--shards",
            "2",
        ]
    )
    assert code == 0
    meta = json.loads((tmp_path / "shards" / "meta.json").read_text())
    files = sorted(p.name for p in (tmp_path / "shards").glob("*.tfrecord"))
    assert files == sorted(n for names in meta["shards"].values() for n in names)
    assert len(meta["shards"]["train"]) == 2
    assert f"wrote {len(files)} TFRecord shards" in capsys.readouterr().out
