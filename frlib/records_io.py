"""Sharded TFRecords: export a prepared dataset, and stream it back as training batches.

Each split is written as `{split}-{i:05d}-of-{n:05d}.tfrecord` shards plus one `meta.json`
(vocabulary, image size, counts, label counts, split keys), written last and atomically: a
folder without meta.json is an unfinished export. Every file goes through `tf.io.gfile`, so
`gs://bucket/dir` works like a local folder (what a Cloud TPU reads from).

Crops are stored as raw uint8 bytes plus their shape, not PNG: decoding a PNG costs CPU on
every example of every epoch, the input pipeline's bottleneck on Colab's two vCPUs, while
face crops (noisy, textured) shrink only ~1.5x as PNG. Raw bytes are parsed for a whole batch
at once with a single decode_raw.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from frlib.config import Config
from frlib.data import FaceDataset
from frlib.labels import MISSING, TASKS, vocabulary
from frlib.splits import split_keys

FORMAT = "frlib-tfrecord/1"
PREFIX = "tfrecord:"
META = "meta.json"
CHUNK = 1024  # crops read from the (memory-mapped) dataset at a time while writing


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def tfrecord_dir(specs: list[str]) -> str | None:
    """The DIR of a `tfrecord:DIR` data spec, or None when `specs` name other sources."""
    dirs = [s[len(PREFIX) :] for s in specs if s.startswith(PREFIX)]
    if not dirs:
        return None
    if len(specs) != 1:
        raise ValueError(
            f"data {specs}: a tfrecord:DIR spec can't be combined with other specs; "
            "prepare them together and export once (frlib prepare --to-tfrecord DIR)"
        )
    return dirs[0]


def _int64(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def serialize(crop: np.ndarray, labels: dict[str, int], group: str) -> bytes:
    """One face as a serialized tf.train.Example: raw crop bytes, shape, labels, group key."""
    feature = {
        "image": _bytes(np.ascontiguousarray(crop, dtype=np.uint8).tobytes()),
        "shape": _int64(crop.shape),
        "group": _bytes(str(group).encode()),
        **{f"label/{task}": _int64([labels[task]]) for task in TASKS},
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_shard(path: str, data: FaceDataset, rows: np.ndarray) -> None:
    """Write `rows` in their given order, reading crops a chunk at a time (sequential reads)."""
    tmp = f"{path}.{os.getpid()}.part"
    with tf.io.TFRecordWriter(tmp) as writer:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            ordered = np.sort(chunk)
            crops = np.asarray(data.crops[ordered])[np.searchsorted(ordered, chunk)]
            for row, crop in zip(chunk, crops, strict=True):
                labels = {task: data.labels[task][row] for task in TASKS}
                writer.write(serialize(crop, labels, data.groups[row]))
    tf.io.gfile.rename(tmp, path, overwrite=True)


def _write_json(path: str, obj) -> None:
    """Write JSON through a temporary file and a rename (gfile: local or gs://)."""
    tmp = f"{path}.{os.getpid()}.part"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(obj, indent=2) + "\n")
    tf.io.gfile.rename(tmp, path, overwrite=True)


def _label_counts(data: FaceDataset, rows: np.ndarray) -> dict[str, list[int]]:
    counts = {}
    for task, classes in TASKS.items():
        known = data.labels[task][rows]
        counts[task] = np.bincount(known[known != MISSING], minlength=len(classes)).tolist()
    return counts


def read_meta(folder: str) -> dict:
    """A TFRecord export's meta.json."""
    path = tf.io.gfile.join(folder, META)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{path} not found: {folder} is not a finished TFRecord export; "
            "write one with `frlib prepare --data ... --out DIR --to-tfrecord FOLDER`"
        )
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def write_tfrecords(
    data: FaceDataset,
    out_dir: str,
    shards: int = 8,
    splits: tuple[str, ...] = ("train", "val", "test"),
    *,
    seed: int = 0,
) -> list[str]:
    """Export the splits of a prepared dataset as sharded TFRecords plus meta.json.

    Args:
        data: a prepared dataset (`frlib.data.prepare`).
        out_dir: a local folder or a gs:// URL.
        shards: files per split (fewer for a split with fewer faces; at least one).
        splits: which splits to write.
        seed: shuffles the faces once before sharding, so each shard is a random sample and
            streaming with a bounded shuffle buffer still mixes the whole split.
    Returns:
        The paths of the shards written.
    """
    if shards < 1:
        raise ValueError(f"shards={shards}: need at least one shard per split")
    tf.io.gfile.makedirs(out_dir)
    old = read_meta(out_dir) if tf.io.gfile.exists(tf.io.gfile.join(out_dir, META)) else None
    if old:  # a half-written export must not look finished
        tf.io.gfile.remove(tf.io.gfile.join(out_dir, META))
    rng = np.random.default_rng(seed)
    paths, names = [], {}
    for split in splits:
        rows = rng.permutation(data.split[split])
        count = max(1, min(shards, len(rows)))
        names[split] = [shard_name(split, i, count) for i in range(count)]
        for name, part in zip(names[split], np.array_split(rows, count), strict=True):
            paths.append(tf.io.gfile.join(out_dir, name))
            _write_shard(paths[-1], data, part)
    kept = {n for files in names.values() for n in files}
    for name in {n for files in (old or {}).get("shards", {}).values() for n in files} - kept:
        path = tf.io.gfile.join(out_dir, name)
        if tf.io.gfile.exists(path):  # a stale shard of an earlier export with other counts
            tf.io.gfile.remove(path)
    meta = {
        "format": FORMAT,
        "encoding": "raw uint8 bytes, shape (height, width, 3)",
        "image_size": int(data.crops.shape[1]),
        "tasks": list(TASKS),
        "vocabulary": vocabulary(),
        "counts": {split: int(len(data.split[split])) for split in splits},
        "shards": names,
        "label_counts": {split: _label_counts(data, data.split[split]) for split in splits},
        "split": split_keys(data.groups, {s: data.split[s] for s in splits}),
        "report": data.report,
    }
    _write_json(tf.io.gfile.join(out_dir, META), meta)
    return paths


def _shard_files(pattern_or_dir: str, split: str, image_size: int) -> tuple[list[str], int | None]:
    """Shards of `split` and their face count: from meta.json for an export folder, else the
    files a glob matches (count unknown)."""
    if tf.io.gfile.isdir(pattern_or_dir):
        meta = read_meta(pattern_or_dir)
        if meta["image_size"] != image_size:
            raise ValueError(
                f"{pattern_or_dir} holds {meta['image_size']} px crops but the config asks "
                f"for {image_size} px: set image_size={meta['image_size']} or export again"
            )
        if split not in meta["shards"]:
            raise ValueError(f"{pattern_or_dir} has no {split!r} split: {sorted(meta['shards'])}")
        names = meta["shards"][split]
        return [tf.io.gfile.join(pattern_or_dir, n) for n in names], meta["counts"][split]
    files = sorted(tf.io.gfile.glob(pattern_or_dir))
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {pattern_or_dir!r}")
    return files, None


def _parser(image_size: int):
    """Parse a batch of serialized Examples into uint8 images, group keys and int32 labels."""
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "shape": tf.io.FixedLenFeature([3], tf.int64),
        "group": tf.io.FixedLenFeature([], tf.string, default_value=""),
        **{f"label/{t}": tf.io.FixedLenFeature([], tf.int64, MISSING) for t in TASKS},
    }
    shape = [image_size, image_size, 3]

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        example = tf.io.parse_example(serialized, spec)
        check = tf.debugging.assert_equal(
            example["shape"],
            tf.constant(shape, tf.int64),
            message=f"TFRecord crops are not {shape}: export and config image sizes differ",
        )
        with tf.control_dependencies([check]):
            images = tf.reshape(tf.io.decode_raw(example["image"], tf.uint8), [-1, *shape])
        labels = {t: tf.cast(example[f"label/{t}"], tf.int32) for t in TASKS}
        return {"image": images, "group": example["group"], **labels}

    return parse


def _records(files: list[str], count: int | None, seed: int, training: bool) -> tf.data.Dataset:
    """Serialized Examples from all shards, read in parallel (shard order shuffled if training).

    A known count is declared, so Keras knows an epoch's length (progress bar, no warning).
    """
    names = tf.data.Dataset.list_files(files, shuffle=training, seed=seed)
    records = names.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not training,
    )
    if count is None:
        return records
    return records.apply(tf.data.experimental.assert_cardinality(count))


def read_examples(
    pattern_or_dir: str, split: str, image_size: int, batch_size: int = 256
) -> tf.data.Dataset:
    """Batches of {"image": uint8, "group": string, task: int32} in file order, unshuffled."""
    files, count = _shard_files(pattern_or_dir, split, image_size)
    records = _records(files, count, seed=0, training=False).batch(batch_size)
    return records.map(_parser(image_size), num_parallel_calls=tf.data.AUTOTUNE)


def read_tfrecords(
    pattern_or_dir: str,
    split: str,
    config: Config,
    training: bool | None = None,
    *,
    batch_size: int | None = None,
) -> tf.data.Dataset:
    """Stream shards as batches of (float32 images 0..255, {task: int32, -1 missing}).

    The same batches as `frlib.pipeline.make_dataset`, without holding the split in memory:
    shard order and a `config.shuffle_buffer`-example buffer do the shuffling, and the same
    `frlib.pipeline.augment` runs when `training` (default: split == "train").

    Args:
        pattern_or_dir: an export folder (local or gs://), or a glob of shard files.
        split: "train", "val" or "test" (ignored for a glob, which names the files itself).
        config: image_size, seed, shuffle_buffer, augment, grayscale_prob, batch_size.
        training: shuffle and augment.
        batch_size: the global batch (default config.batch_size).
    """
    from frlib.pipeline import finish

    training = split == "train" if training is None else training
    files, count = _shard_files(pattern_or_dir, split, config.image_size)
    ds = _records(files, count, config.seed, training)
    if training:
        ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    parse = _parser(config.image_size)

    def to_batch(serialized):
        example = parse(serialized)
        return tf.cast(example["image"], tf.float32), {t: example[t] for t in TASKS}

    ds = ds.batch(batch_size or config.batch_size).map(
        to_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training
    )
    return finish(ds, config, training)
